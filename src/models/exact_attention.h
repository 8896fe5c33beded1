// Exact attention: attention whose every output is computed in one fixed
// order from its own query and the keys it may see, so that a query gets the
// same bits whether it is decoded alone against a KV cache or scored among a
// whole batch of sequences of any padding. TransformerLM's batch-invariant
// mode uses it. Internal to the library. Shapes: B rows, NH query heads, KV
// key/value heads (NH a multiple of KV), T queries, L keys, D head dim.
#pragma once

#include <ATen/core/Tensor.h>

namespace grpo::detail {

// softmax(q·kᵀ·scale over the allowed keys)·v per query, on the CPU:
//   q (B, NH, T, D); k, v (B, KV, L, D), floating, one dtype;
//   allowed (B, T, L) bool, true = query t may see key l; every query must see
//   at least one key.
// Each output reads its visible keys in increasing l: the scores are dot
// products over D in index order, their maximum, the sum of exp(score - max)
// key by key, and the values weighted in the same order; no sum depends on
// how many rows, queries or masked keys the call has. Half types compute in
// float32. Differentiable w.r.t. q, k and v (the backward is an ordinary
// ATen composite; only the forward's values are fixed-order). Returns
// (B, NH, T, D) in q's dtype.
at::Tensor exact_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                           double scale);

}  // namespace grpo::detail
