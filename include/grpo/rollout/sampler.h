// GroupSampler: P prompts in, a RolloutBatch of N = P·G completions out (G per
// prompt, rows prompt-major: row p·G + g), with the masks and texts the
// rewards, advantages and loss need. Shapes: Lp prompt and T completion positions.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "grpo/data/prompt_dataset.h"
#include "grpo/rewards/reward.h"
#include "grpo/rollout/policy.h"
#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

struct GroupSamplerConfig {
  int64_t group_size = 8;               // G completions per prompt
  GenerationConfig generation;          // eos_ids empty = the tokenizer's EOS; pad_id is the tokenizer's
  bool mask_truncated_completions = false;  // zero the loss mask of completions without an EOS (DAPO); texts stay
};

struct RolloutBatch {
  int64_t num_prompts = 0;                    // P
  int64_t group_size = 0;                     // G
  torch::Tensor prompt_ids;                   // (N, Lp) int64, left-padded
  torch::Tensor prompt_mask;                  // (N, Lp) int64, 1 = prompt token
  torch::Tensor completion_ids;               // (N, T) int64
  torch::Tensor completion_mask;              // (N, T) int64, 1 up to and including the first EOS
  torch::Tensor truncated;                    // (N) bool, no EOS within max_new_tokens
  torch::Tensor logprobs;                     // (N, T) float32, the sampler's log-probs of the tempered policy
  torch::Tensor sampling_logprobs;            // (N, T) float32, under the distribution drawn from (Generation's)
  torch::Tensor group_index;                  // (N) int64, the prompt p of each row
  std::vector<PromptRecord> prompts;          // (P)
  std::vector<std::string> completion_texts;  // (N) the kept tokens decoded, the stopping EOS left out
  std::vector<int64_t> completion_lengths;    // (N) kept tokens, EOS included

  int64_t size() const { return num_prompts * group_size; }  // N

  // The N rows as rewards see them: row i's prompt and record are
  // prompts[group_index[i]]; each Sample's fields point into `prompts`, so the
  // batch must outlive them. Raises grpo::Error when the per-row members do not
  // have N entries or a group index is out of range.
  std::vector<Sample> samples() const;
};

class GroupSampler {
 public:
  // Raises grpo::Error when group_size < 1 or the generation config is invalid.
  GroupSampler(Policy& policy, std::shared_ptr<const Tokenizer> tokenizer, GroupSamplerConfig config);

  // Samples G completions for each prompt with seed `seed`.
  RolloutBatch sample(const std::vector<PromptRecord>& prompts, uint64_t seed);
  // Samples G completions for each prompt p from a generator seeded with
  // prompt_seeds[p] (GenerationConfig::prompt_seeds): what one prompt gets
  // does not depend on the others in the batch.
  RolloutBatch sample(const std::vector<PromptRecord>& prompts, const std::vector<uint64_t>& prompt_seeds);
  // The same with the next seed of a sequence starting at config.generation.seed.
  RolloutBatch sample(const std::vector<PromptRecord>& prompts);

  const GroupSamplerConfig& config() const { return config_; }

 private:
  RolloutBatch sample_with(const std::vector<PromptRecord>& prompts, const GenerationConfig& generation);

  Policy& policy_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  GroupSamplerConfig config_;
  uint64_t calls_ = 0;
};

}  // namespace grpo
