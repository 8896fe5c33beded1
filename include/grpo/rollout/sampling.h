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
  // One seed per prompt, or empty. Given, each prompt's rows draw from a
  // generator of their own, so a prompt's completions depend on its seed and
  // not on the other prompts of the batch: data-parallel ranks, each sampling
  // its share of a step, draw what one process drawing the whole step would.
  std::vector<uint64_t> prompt_seeds;
  bool use_cache = true;         // use the model's KV cache when it has one
  // Raises grpo::Error naming the bad field.
  void validate() const;
};

// One token per row (B) from the weights probs (B, V) (non-negative, each
// row's sum positive; they need not sum to 1) and one uniform number in
// [0, 1) per row (B): the first token whose running sum of probs exceeds
// uniform · the row's sum (the inverse of its distribution function), summed
// in float64. A token of zero weight is never drawn. This is how
// sample_next_token draws: one random number per row, where
// torch::multinomial draws one per token of the vocabulary.
torch::Tensor draw_from_probs(const torch::Tensor& probs, const torch::Tensor& uniforms);

// The next token for each row (B) from the last logits (B, V) under config's
// temperature / top-k / top-p / min-p, drawn by draw_from_probs with one
// float64 uniform per row from `generator`; temperature 0 takes the argmax. When `sampling_logprobs` is given it receives (B)
// float32: the log-probability of each drawn token under the distribution it
// was drawn from, the tempered softmax renormalized over the tokens the
// filters keep (0 for the argmax).
torch::Tensor sample_next_token(const torch::Tensor& logits, const GenerationConfig& config,
                                at::Generator& generator, torch::Tensor* sampling_logprobs = nullptr);
// The same, rows [i·rows_each, (i+1)·rows_each) drawing from generators[i].
torch::Tensor sample_next_token(const torch::Tensor& logits, const GenerationConfig& config,
                                std::vector<at::Generator>& generators, int64_t rows_each,
                                torch::Tensor* sampling_logprobs = nullptr);

// log softmax(logits / temperature)[tokens] per row (B), float32, computed in
// the same operations as the token_logprobs op (grpo/ops/token_logprobs.h),
// so equal logits give equal bits. Raises c10::Error for temperature <= 0.
torch::Tensor tempered_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature);

}  // namespace grpo
