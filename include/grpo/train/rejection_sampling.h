// Rejection sampling (the third stage of the R1 recipe): K completions of every
// prompt of a dataset from a trained policy, scored by the run's rewards; the
// completions that pass the acceptance rules (rejection.min_rewards per
// reward, a token cap, no truncation) are written as SFT pairs, each prompt's
// best one or all of them, deduplicated. The prompts stream through a batch at
// a time (memory does not grow with the dataset), and an interrupted run
// resumes after the last batch it finished.
//
// The output folder (rejection.output, default output_dir/rejection) holds
//   accepted.jsonl  one SFT pair per line: the prompt's dataset record, its
//                   completion under sft.completion_key, "rewards" {name: score},
//                   "reward" (the weighted total) and "source" {"checkpoint", "step"}
//   prompts.jsonl   per prompt, in dataset order: {"index", "line", "sampled" (K),
//                   "accepted" (completions that pass the rules), "acceptance_rate",
//                   "written" (pairs after best-of-K and dedupe), "correct" (completions
//                   the eval.accuracy_reward scores 1; null without that reward)}
//   progress.json   where a resumed run continues (rewritten after every batch)
//   summary.json    at the end: the counts, "acceptance_rate" (accepted / samples),
//                   "prompt_acceptance_rate" (prompts with an accepted completion),
//                   "pass_at_k" (prompts with a correct one), "mean_accuracy", "complete"
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "grpo/config/config.h"
#include "grpo/models/causal_lm.h"
#include "grpo/rewards/reward.h"
#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

class RejectionSampler {
 public:
  // `source` is what the pairs' "source" records: {"checkpoint": dir, "step": N}.
  // Raises grpo::Error when a rejection.min_rewards name is not one of the
  // rewards (listing them) or there are no prompts (rejection.prompts and data.train empty).
  RejectionSampler(TrainConfig config, std::shared_ptr<CausalLM> model, std::shared_ptr<const Tokenizer> tokenizer,
                   RewardSet rewards, nlohmann::json source = nlohmann::json::object());
  // The policy from `checkpoint` (default model.init_from), its tokenizer, and
  // the config's rewards; the source step from the checkpoint's trainer_state.json.
  static std::unique_ptr<RejectionSampler> from_config(const TrainConfig& config, const std::string& checkpoint = "");

  // Samples the prompts not yet done (all when the folder holds no progress, or
  // checkpoint.resume is false), appending to the files, and returns the
  // summary (also written to summary.json). A finished folder returns its summary.
  nlohmann::json run();

  std::string output_dir() const;
  std::string accepted_path() const;  // output_dir()/accepted.jsonl, the SFT pairs

 private:
  TrainConfig config_;
  std::shared_ptr<CausalLM> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  RewardSet rewards_;
  nlohmann::json source_;
};

}  // namespace grpo
