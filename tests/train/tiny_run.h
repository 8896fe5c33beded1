// The tiny run the training suites share: a trivial task (prompts of "a"s and
// "b"s, rewarded by the fraction of 'a' in the completion) on the tiny
// transformer of tiny_models.h, with a CharTokenizer.
#pragma once

#include <grpo/config/config.h>
#include <grpo/data/prompt_dataset.h>
#include <grpo/rewards/reward.h>
#include <grpo/train/factory.h>
#include <grpo/train/grpo_trainer.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tiny_models.h"

namespace grpo_test {

using nlohmann::json;

// A trivial task: prompts of "a"s and "b"s; the reward is the fraction of 'a' in the completion.
inline constexpr const char* kChars = "ab";

inline grpo::TrainConfig tiny_config(const std::string& output_dir) {
  grpo::TrainConfig c;
  c.seed = 3;
  c.output_dir = output_dir;
  c.threads = 1;
  c.tokenizer.characters = kChars;
  c.model.config = tiny_transformer_config(/*vocab_size=*/0, /*tied=*/true, /*bias=*/false, /*max_positions=*/32);
  c.sampling.max_new_tokens = 6;
  c.loss.policy.beta = 0.04;
  c.optimizer.lr = 3e-3;
  c.optimizer.warmup_steps = 0;
  c.optimizer.schedule = "constant";
  c.grpo.steps = 20;
  c.grpo.prompts_per_step = 4;
  c.grpo.group_size = 8;
  c.checkpoint.resume = false;
  c.logging.console = false;
  return c;
}

// Twelve prompt → completion pairs over "ab=" for the supervised stages' tests.
inline std::vector<json> ab_pairs() {
  std::vector<json> out;
  for (int i = 0; i < 12; ++i) {
    std::string p, q;
    for (int k = 0; k <= i % 3; ++k) p += (i + k) % 2 ? "a" : "b";
    for (int k = 0; k <= (i + 1) % 4; ++k) q += (i * k) % 3 ? "b" : "a";
    out.push_back({{"prompt", p + "="}, {"completion", q}});
  }
  return out;
}

// The tiny run set up for ab_pairs(): float64, batches of 6, a constant lr of 1e-2.
inline grpo::TrainConfig pairs_config(const std::string& output_dir) {
  grpo::TrainConfig c = tiny_config(output_dir);
  c.tokenizer.characters = "ab=";
  c.model.dtype = "float64";
  c.sft.batch_size = 6;
  c.sft.steps = 4;
  c.sft.optimizer.warmup_steps = 0;
  c.sft.optimizer.schedule = "constant";
  c.sft.optimizer.lr = 1e-2;
  return c;
}

inline grpo::PromptDataset tiny_prompts(int64_t n = 16) {
  std::vector<json> records;
  for (int64_t i = 0; i < n; ++i) {
    std::string p;
    for (int64_t k = 0; k <= i % 4; ++k) p += (i + k) % 2 ? "a" : "b";
    records.push_back({{"prompt", p}, {"answer", "a"}});
  }
  return grpo::PromptDataset::from_records(records);
}

inline grpo::RewardSet a_fraction_reward() {
  grpo::RewardSet set;
  set.add(std::make_unique<grpo::FunctionReward>("a_fraction", [](const grpo::Sample& s) {
    if (s.completion.empty()) return 0.0f;
    return static_cast<float>(std::count(s.completion.begin(), s.completion.end(), 'a')) /
           static_cast<float>(s.completion.size());
  }));
  return set;
}

inline std::unique_ptr<grpo::GRPOTrainer> tiny_trainer(const grpo::TrainConfig& c) {
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto model = grpo::make_model(c.model, *tokenizer, c.seed);
  return std::make_unique<grpo::GRPOTrainer>(c, model, tokenizer, a_fraction_reward(), tiny_prompts(),
                                             tiny_prompts(8));
}

inline std::vector<torch::Tensor> weights(grpo::GRPOTrainer& t) {
  std::vector<torch::Tensor> out;
  for (const auto& p : t.policy().model().module().parameters()) out.push_back(p.detach().clone());
  return out;
}

}  // namespace grpo_test
