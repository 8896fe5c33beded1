// token_logprobs: log-probabilities of target tokens from final hidden states
// and the output projection, a chunk of rows at a time, with a backward that
// recomputes each chunk's logits instead of keeping them, so no (M, V) tensor
// is held with or without a gradient (torch.ops.grpo.token_logprobs from
// Python). Shapes: M positions, H hidden size, V vocabulary.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

namespace grpo {

// log softmax(hidden · weightᵀ / temperature)[target] per row, in float32
// (subtracting each row's max). Differentiable w.r.t. hidden and weight.
//   hidden  (M, H) floating
//   weight  (V, H) same dtype and device as hidden
//   targets (M) int64 in [0, V)
// Raises c10::Error on shapes, dtypes or devices that disagree, temperature
// <= 0 or chunk_tokens < 1. Returns (M) float32.
at::Tensor token_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                          double temperature = 1.0, int64_t chunk_tokens = 1024);

// token_logprobs and each row's entropy (M) float32 in one pass: the entropy
// comes from the same chunk logits, with no second projection, and has no
// gradient (torch.ops.grpo.token_logprobs_and_entropy). Same checks.
std::pair<at::Tensor, at::Tensor> token_logprobs_and_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                                             const at::Tensor& targets, double temperature = 1.0,
                                                             int64_t chunk_tokens = 1024);

// The entropy of each row's distribution softmax(hidden · weightᵀ / temperature),
// chunk_tokens rows at a time, without gradient. Returns (M) float32.
at::Tensor token_entropy(const at::Tensor& hidden, const at::Tensor& weight, double temperature = 1.0,
                         int64_t chunk_tokens = 1024);

}  // namespace grpo
