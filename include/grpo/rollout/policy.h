// The policy: a trainable CausalLM plus what GRPO needs of it, batched
// sampling of G completions per prompt and exact per-token log-probabilities
// of given completions. Shapes: P prompts, G completions each, N = P·G rows,
// Lp prompt positions (left-padded), T completion positions, V vocabulary.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "grpo/models/causal_lm.h"
#include "grpo/rollout/sampling.h"

namespace grpo {

struct Generation {
  torch::Tensor prompt_ids;       // (N, Lp) int64, left-padded with pad_id
  torch::Tensor prompt_mask;      // (N, Lp) int64, 1 = prompt token
  torch::Tensor completion_ids;   // (N, T) int64, pad_id after the stop
  torch::Tensor completion_mask;  // (N, T) int64, 1 up to and including the first EOS
  torch::Tensor truncated;        // (N) bool, true = reached max_new_tokens without an EOS
  // What the sampler knew of each token it drew, (N, T) float32, 0 off the mask:
  //  logprobs: log softmax(logits / temperature) at the token, the quantity
  //    token_logprobs() recomputes (at temperature 1 for greedy decoding). With
  //    a batch-invariant model (CausalLM::set_batch_invariant) the two are
  //    equal bit for bit; otherwise they differ by rounding.
  //  sampling_logprobs: the log-probability under the distribution the token
  //    was actually drawn from: the tempered softmax renormalized over the
  //    tokens top-k, top-p and min-p keep. Equal to logprobs without those
  //    filters; 0 for greedy decoding. The behavior policy's log-probs, which
  //    importance-sampling corrections divide by.
  torch::Tensor logprobs;
  torch::Tensor sampling_logprobs;
};

struct LogprobOptions {
  // Scores are log softmax(logits / temperature): pass the sampling temperature
  // to score the tempered policy the sampler drew from. Top-k, top-p and min-p
  // are not applied: the trainer's policy is the whole tempered distribution
  // (Generation::sampling_logprobs holds the filtered one).
  double temperature = 1.0;
  int64_t chunk_tokens = 1024;  // completion tokens whose logits exist at once (in float32, chunk × V)
  bool entropy = false;         // also return each token's entropy (no gradient)
  // (N) int64 or undefined: rows with equal values share one prompt (the same
  // prompt_ids and prompt_mask, checked), which then runs once for all of
  // them (completion_states). Same log-probs and gradients as without.
  torch::Tensor prompt_groups;
};

struct TokenLogprobs {
  torch::Tensor logprobs;  // (N, T) float32, 0 where completion_mask is 0; differentiable w.r.t. the model
  torch::Tensor entropy;   // (N, T) float32 when asked for, else undefined
};

// The final hidden states at the positions that predict the kept completion
// tokens (completion_mask 1), from one forward over prompt + completion, and
// those tokens; what the log-prob and distillation ops take. On the model's
// device; M kept tokens.
struct CompletionStates {
  torch::Tensor hidden;   // (M, H) differentiable w.r.t. the model
  torch::Tensor targets;  // (M) int64, the kept completion tokens
  torch::Tensor kept;     // (M) int64, their flat indices into (N, T)
};
// With `prompt_groups` (N) int64, rows with equal values must hold the same
// prompt: each such prompt runs once, through the model's training cache
// (CausalLM::make_training_cache), and its rows' completions continue from
// its keys and values, so the prompt's forward and backward are done once per
// group rather than once per row, with the same states and gradients (in
// batch-invariant mode the same bits). Without a training cache, or with no
// two rows sharing, it is the one forward. Raises grpo::Error on shapes that
// disagree or rows of one group with different prompts.
CompletionStates completion_states(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                   const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                                   const torch::Tensor& prompt_groups = {});

// Log-probabilities of the completion tokens under `model`: one forward over
// prompt + completion, then the token_logprobs op (grpo/ops/token_logprobs.h)
// at the completion positions only, a chunk at a time; its backward
// recomputes each chunk's logits rather than keeping them, so no (N, T, V)
// tensor is ever held, with or without grad.
TokenLogprobs token_logprobs(CausalLM& model, const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                             const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                             const LogprobOptions& options = {});

class Policy {
 public:
  explicit Policy(std::shared_ptr<CausalLM> model);

  CausalLM& model() { return *model_; }
  const std::shared_ptr<CausalLM>& model_ptr() const { return model_; }

  // `num_samples` (G) completions for each of the prompts (token ids, not
  // padded), rows prompt-major: row p·G + g. Each prompt is prefilled once and
  // its KV cache copied to its G rows; rows that stop leave the decode batch
  // (and the cache) once a quarter of it has stopped, while every draw still
  // covers all N rows, so the tokens do not depend on when that happens. One
  // read from the device per token. Runs without grad. Raises grpo::Error
  // on an empty prompt, an unknown token id, G < 1, or a prompt that leaves no
  // room for max_new_tokens in the model's context.
  Generation generate(const std::vector<std::vector<int64_t>>& prompts, const GenerationConfig& config,
                      int64_t num_samples = 1);

  // token_logprobs() above, for this policy's model.
  TokenLogprobs token_logprobs(const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                               const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                               const LogprobOptions& options = {});

 private:
  std::shared_ptr<CausalLM> model_;
};

}  // namespace grpo
