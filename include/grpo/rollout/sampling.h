// How completions are sampled: the generation settings and the next-token
// draw under temperature, top-k, top-p and min-p. Shapes: B rows, V vocabulary.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace grpo {

struct GenerationConfig {
  int64_t max_new_tokens = 128;  // completion length cap (T)
  double temperature = 1.0;      // divides the logits; 0 = greedy
  int64_t top_k = 0;             // sample among the k most likely tokens; 0 = all
  double top_p = 1.0;            // sample among the most likely tokens holding this mass; 1 = all
  double min_p = 0.0;            // drop tokens less likely than min_p · (most likely); 0 = none
  std::vector<int64_t> eos_ids;  // a completion stops after any of these; empty = runs to max_new_tokens
  int64_t pad_id = 0;            // written after a completion stopped
  uint64_t seed = 0;             // the sampling generator's seed: same seed, same completions
  bool use_cache = true;         // use the model's KV cache when it has one
  // Raises grpo::Error naming the bad field.
  void validate() const;
};

// The next token for each row (B) from the last logits (B, V) under config's
// temperature / top-k / top-p / min-p, drawing from `generator`; temperature
// 0 takes the argmax.
torch::Tensor sample_next_token(const torch::Tensor& logits, const GenerationConfig& config,
                                at::Generator& generator);

}  // namespace grpo
