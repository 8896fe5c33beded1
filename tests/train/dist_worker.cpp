// One rank of a data-parallel test job (tests/train/test_distributed.cpp
// starts K of these, as torchrun would: RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT). It trains the tiny run of tiny_run.h from a
// TrainConfig JSON file and writes its final weights.
//   grpo_dist_worker CONFIG.json WEIGHTS_OUT [--sft] [--fail-rank R --fail-call C [--hang]]
// --sft: SFT (SFTTrainer) on a dozen pairs instead of GRPO. --hang: the
// failing call sleeps for an hour instead of throwing.
// --fail-rank: on rank R, the C-th call of the reward (1-based) throws, as a
// user's reward function might. Exit code 0, or 1 with the error on stderr.
#include <grpo/io/weights.h>
#include <grpo/train/distributed.h>
#include <grpo/train/sft_trainer.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "train/tiny_run.h"

namespace {

grpo::RewardSet rewards(int fail_rank, int fail_call, bool hang, int rank) {
  grpo::RewardSet set = grpo_test::a_fraction_reward();
  if (fail_rank == rank) {
    set.add(std::make_unique<grpo::FunctionReward>("fails", [fail_call, hang](const grpo::Sample&) {
      static std::atomic<int> calls{0};  // NB: one call a completion; the C-th one scored on this rank fails
      if (++calls == fail_call) {
        if (hang) std::this_thread::sleep_for(std::chrono::hours(1));
        throw std::runtime_error("the reward failed on purpose");
      }
      return 0.0f;
    }));
  } else if (fail_rank >= 0) {
    set.add(std::make_unique<grpo::FunctionReward>("fails", [](const grpo::Sample&) { return 0.0f; }));
  }
  return set;
}

}  // namespace

// SFT pairs of the tiny alphabet: the completion repeats the prompt's first letter.
grpo::PromptDataset sft_pairs() {
  std::vector<nlohmann::json> records;
  for (int i = 0; i < 12; ++i) {
    const std::string p = std::string(1 + i % 3, i % 2 ? 'a' : 'b') + "ab";
    records.push_back({{"prompt", p}, {"completion", std::string(1 + i % 4, p[0])}});
  }
  return grpo::PromptDataset::from_records(records);
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int fail_rank = -1, fail_call = 0;
  bool sft = false, hang = false;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--fail-rank" && i + 1 < args.size()) fail_rank = std::stoi(args[++i]);
    else if (args[i] == "--fail-call" && i + 1 < args.size()) fail_call = std::stoi(args[++i]);
    else if (args[i] == "--sft") sft = true;
    else if (args[i] == "--hang") hang = true;
    else positional.push_back(args[i]);
  }
  if (positional.size() != 2) {
    std::cerr << "usage: grpo_dist_worker CONFIG.json WEIGHTS_OUT [--sft] [--fail-rank R --fail-call C [--hang]]\n";
    return 2;
  }
  try {
    std::ifstream in(positional[0]);
    const grpo::TrainConfig config = grpo::TrainConfig::from_json(nlohmann::json::parse(in));
    auto dist = grpo::Distributed::from_env(config.distributed, config.model.device);
    auto tokenizer = grpo::make_tokenizer(config.tokenizer);
    auto model = grpo::make_model(config.model, *tokenizer, config.seed);
    const std::string out = positional[1] + ".rank" + std::to_string(dist->rank());
    if (sft) {
      grpo::SFTTrainer trainer(config, model, tokenizer, sft_pairs(), dist);
      trainer.train();
      grpo::save_weights(trainer.master_model().module(), out);
    } else {
      grpo::GRPOTrainer trainer(config, model, tokenizer, rewards(fail_rank, fail_call, hang, dist->rank()),
                                grpo_test::tiny_prompts(), grpo_test::tiny_prompts(8), dist);
      trainer.train();
      grpo::save_weights(trainer.master_model().module(), out);
    }
  } catch (const std::exception& e) {
    std::cerr << "worker: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
