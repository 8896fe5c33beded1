// One rank of a data-parallel test job (tests/train/test_distributed.cpp
// starts K of these, as torchrun would: RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT). It trains the tiny run of tiny_run.h from a
// TrainConfig JSON file and writes its final weights.
//   grpo_dist_worker CONFIG.json WEIGHTS_OUT [--fail-rank R --fail-call C]
// --fail-rank: on rank R, the C-th call of the reward (1-based) throws, as a
// user's reward function might. Exit code 0, or 1 with the error on stderr.
#include <grpo/io/weights.h>
#include <grpo/train/distributed.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "train/tiny_run.h"

namespace {

grpo::RewardSet rewards(int fail_rank, int fail_call, int rank) {
  grpo::RewardSet set = grpo_test::a_fraction_reward();
  if (fail_rank == rank) {
    set.add(std::make_unique<grpo::FunctionReward>("fails", [fail_call](const grpo::Sample&) {
      static std::atomic<int> calls{0};  // NB: one call a completion; the C-th one scored on this rank throws
      if (++calls == fail_call) throw std::runtime_error("the reward failed on purpose");
      return 0.0f;
    }));
  } else if (fail_rank >= 0) {
    set.add(std::make_unique<grpo::FunctionReward>("fails", [](const grpo::Sample&) { return 0.0f; }));
  }
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 7) {
    std::cerr << "usage: grpo_dist_worker CONFIG.json WEIGHTS_OUT [--fail-rank R --fail-call C]\n";
    return 2;
  }
  const int fail_rank = argc == 7 ? std::atoi(argv[4]) : -1;
  const int fail_call = argc == 7 ? std::atoi(argv[6]) : 0;
  try {
    std::ifstream in(argv[1]);
    const grpo::TrainConfig config = grpo::TrainConfig::from_json(nlohmann::json::parse(in));
    auto dist = grpo::Distributed::from_env(config.distributed, config.model.device);
    auto tokenizer = grpo::make_tokenizer(config.tokenizer);
    auto model = grpo::make_model(config.model, *tokenizer, config.seed);
    grpo::GRPOTrainer trainer(config, model, tokenizer, rewards(fail_rank, fail_call, dist->rank()),
                              grpo_test::tiny_prompts(), grpo_test::tiny_prompts(8), dist);
    trainer.train();
    grpo::save_weights(trainer.master_model().module(), std::string(argv[2]) + ".rank" + std::to_string(dist->rank()));
  } catch (const std::exception& e) {
    std::cerr << "worker: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
