// Held-out evaluation: greedy completions of a prompt set, scored by the
// run's rewards. Shapes: n prompts.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "grpo/config/config.h"
#include "grpo/data/prompt_dataset.h"
#include "grpo/rewards/reward.h"
#include "grpo/rollout/policy.h"
#include "grpo/tokenizers/tokenizer.h"
#include "grpo/train/distributed.h"

namespace grpo {

// Held-out results with greedy decoding.
struct EvalResult {
  int64_t step = 0;                       // the training step the policy had reached
  int64_t problems = 0;                   // prompts evaluated
  std::optional<double> accuracy;         // mean of the accuracy reward (EvalConfig::accuracy_reward), if the run has it
  double mean_reward = 0;                 // mean weighted reward
  std::vector<std::string> reward_names;  // (R)
  std::vector<double> reward_means;       // (R)
  double mean_completion_length = 0;      // tokens
  std::vector<nlohmann::json> samples;    // the first few: {"prompt", "completion", "reward"}

  nlohmann::json to_json() const;
  // The inverse of to_json (a checkpoint's trainer_state.json); nlohmann's
  // exceptions on a malformed record.
  static EvalResult from_json(const nlohmann::json& j);
};

// Raises grpo::Error when `name` (eval.accuracy_reward) is not one of
// `rewards`' names, listing them; "" and the default "accuracy" may name no
// reward (no accuracy is reported). evaluate and GRPOTrainer call it.
void check_accuracy_reward(const std::string& name, const RewardSet& rewards);

// Greedy completions of every prompt of `data` (in file order, up to `limit`
// prompts; 0 = all), scored with `rewards`, each stopping at any of `eos_ids`
// (empty = the tokenizer's EOS). Runs without grad. With `dist` active each
// rank decodes its share of the prompts and every rank gets the whole result
// (the samples are rank 0's).
EvalResult evaluate(Policy& policy, const Tokenizer& tokenizer, const PromptDataset& data,
                    const RewardSet& rewards, const EvalConfig& eval, int64_t max_new_tokens, int64_t limit = 0,
                    const std::string& accuracy_reward = "accuracy", const std::vector<int64_t>& eos_ids = {},
                    Distributed* dist = nullptr);

}  // namespace grpo
