// distill_loss: knowledge distillation from a frozen teacher, fused with the
// output projections: α·τ²·KD(teacher ‖ student at temperature τ) + (1 − α)·CE
// on the data, summed over token positions and divided by a normalizer, a
// chunk of positions at a time, so neither model's (M, V) logits exist at
// once (torch.ops.grpo.distill_loss from Python). Shapes: M positions, Hs and
// Ht the student's and the teacher's hidden sizes, V the shared vocabulary.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <tuple>

#include "grpo/ops/enums.h"

namespace grpo {

// The divergence between the teacher's distribution p and the student's q,
// both softmax(logits / τ), per position (TRL's GKD generalized JSD with
// β = 0 is forward_kl's direction, β = 1 reverse_kl's):
//   forward_kl  KL(p ‖ q) = Σ p (log p − log q)   (Hinton's KD; mass-covering)
//   reverse_kl  KL(q ‖ p) = Σ q (log q − log p)   (mode-seeking)
//   jsd         β·KL(p ‖ m) + (1 − β)·KL(q ‖ m), m = β·p + (1 − β)·q, 0 < β < 1
struct DistillLossOptions {
  double alpha = 0.5;                                   // weight of the KD term; 1 − α weighs the CE
  double temperature = 1.0;                             // τ of the KD distributions (the CE is at 1)
  Divergence divergence = Divergence::ForwardKL;
  double beta = 0.5;                                    // jsd's mixture weight of the teacher
  double normalizer = 1.0;                              // the sums are divided by it: the batch's token count
  int64_t chunk_tokens = 1024;                          // positions whose logits exist at once (both models)
};

// Indices into distill_loss's stats tensor.
enum class DistillStat : int64_t {
  DivergenceSum = 0,  // Σ over the M positions of the divergence at τ (unscaled by τ²)
  NllSum,             // Σ of −log q₁(target), the student's log-prob at temperature 1
  Count
};

// Returns (loss, stats): loss = (α·τ²·Σ divergence + (1 − α)·Σ −log q₁(target)) / normalizer,
// a 0-d tensor, differentiable w.r.t. student_hidden and student_weight (the
// teacher's inputs get no gradient); stats (DistillStat::Count). Both are
// float64 for float64 inputs, else float32, the precision every chunk is
// computed in. When a gradient is needed, the forward computes it chunk by
// chunk and keeps only (M, Hs) and (V, Hs) of it, so the backward recomputes
// neither model's logits.
//   student_hidden (M, Hs), student_weight (V, Hs) same dtype and device
//   teacher_hidden (M, Ht), teacher_weight (V, Ht) same dtype (any floating) and device
//   targets (M) int64 in [0, V): the data's tokens, for the CE term
// Raises c10::Error on shapes, dtypes or devices that disagree (the two
// vocabularies first, naming both sizes), α outside [0, 1], τ <= 0, β outside
// (0, 1) for jsd, normalizer <= 0 or chunk_tokens < 1.
std::tuple<at::Tensor, at::Tensor> distill_loss(const at::Tensor& student_hidden, const at::Tensor& student_weight,
                                                 const at::Tensor& teacher_hidden, const at::Tensor& teacher_weight,
                                                 const at::Tensor& targets, const DistillLossOptions& options = {});

// Names as configs and the Python op spell them ("forward_kl", "reverse_kl",
// "jsd"); parsing raises c10::Error listing the valid names.
std::string to_string(Divergence divergence);
Divergence parse_divergence(const std::string& name);

}  // namespace grpo
