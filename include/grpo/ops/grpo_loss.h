// grpo_loss: the GRPO policy loss as one fused autograd op with CPU and CUDA
// implementations (torch.ops.grpo.grpo_loss from Python), and the rule that
// gives each loss type its batch-wide denominator. Shapes: N sequences,
// T completion tokens.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>

#include "grpo/ops/enums.h"

namespace grpo {

// Every default is written here once: the original GRPO's. dapo() is the
// recipe the trainer's config starts from.
struct GrpoLossOptions {
  double epsilon_low = 0.2;           // ρ is clipped below at 1 - epsilon_low
  double epsilon_high = 0.2;          // ρ is clipped above at 1 + epsilon_high (DAPO clip-higher: 0.28)
  std::optional<double> delta;        // dual-clip: caps ρ in the unclipped term (> 1 + epsilon_high)
  double beta = 0.04;                 // KL weight; 0 = ref_logp is never read and may be undefined
  LossType loss_type = LossType::GRPO;
  int64_t max_completion_length = 0;  // Dr. GRPO's constant L; required for DrGRPO
  // The denominator over the whole generation batch, so that micro-batches and
  // processes sum to exactly the full batch's gradient (see loss_normalizer);
  // 0 = this call's own. GRPO and DrGRPO: the number of sequences; DAPO: the
  // number of completion tokens. BNPO normalizes per call and takes none.
  double normalizer = 0.0;
  ImportanceSampling importance_sampling = ImportanceSampling::Token;
  double log_ratio_clamp = 20.0;  // |logp - old_logp| and |ref_logp - logp| are clamped to this
  double kl_clamp = 10.0;         // the per-token KL is clamped to this
  // Check the mask is 0/1 and advantages and masked log-probs are finite, and
  // raise if not. On CUDA this reads one number back (a sync); false skips it.
  bool check_inputs = true;

  // DAPO (Yu et al., 2025): token-level normalization over the whole batch
  // and clip-higher, epsilon_high = 0.28; the rest as above.
  static GrpoLossOptions dapo();
};

struct GrpoLossResult {
  at::Tensor loss;   // () float32 (float64 for float64 logp); differentiable w.r.t. logp only
  at::Tensor stats;  // (LossStat::Count) same dtype and device as loss; not differentiable
};

// Plain numbers read from GrpoLossResult::stats (one device-to-host copy).
struct LossStats {
  double kl_mean = 0, clip_low_frac = 0, clip_high_frac = 0, clip_region_frac = 0;
  double ratio_mean = 0, token_count = 0, invalid_inputs = 0;
};
LossStats read_stats(const at::Tensor& stats);

// The forward pass computes each token's clipped surrogate and k3 KL, the
// aggregate and dloss/dlogp in one pass; backward only scales that saved
// gradient. Gradients flow to logp only; old_logp, ref_logp and advantages
// are constants.
//   logp      (N, T) float32/bfloat16/float16/float64, computed in float32 (float64)
//   old_logp  (N, T) or undefined: then ρ = exp(logp - logp.detach()) = 1 (μ = 1)
//   ref_logp  (N, T) or undefined when beta = 0
//   advantages (N), or (N, T) per token (a token-level advantage, or the
//              row's advantage times an importance weight: w·min(ρA, clip(ρ)A)
//              = min(ρ·wA, clip(ρ)·wA) for w >= 0); (N, T) needs token-level
//              importance sampling
//   mask      (N, T) bool, integer or floating, values 0/1; 1 = completion token
// Non-contiguous inputs are read in place. Raises c10::Error naming the
// argument on shapes that disagree, mixed devices, bad dtypes or values.
GrpoLossResult grpo_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& ref_logp,
                         const at::Tensor& advantages, const at::Tensor& mask,
                         const GrpoLossOptions& options = {});

// GrpoLossOptions::normalizer for one optimizer update made of the rows of
// `mask` (n, T) (all its micro-batches together): the sequences n for GRPO
// and Dr. GRPO, the completion tokens (at least 1) for DAPO, and 0 for BNPO,
// which normalizes each call by its own tokens. With this normalizer the
// micro-batches' gradients add up to exactly the update's.
double loss_normalizer(LossType type, const at::Tensor& mask);

// Names as used in configs and by the Python op ("grpo", "bnpo", "dr_grpo",
// "dapo"; "token", "sequence"). Parsing raises c10::Error listing the valid names.
std::string to_string(LossType type);
std::string to_string(ImportanceSampling level);
LossType parse_loss_type(const std::string& name);
ImportanceSampling parse_importance_sampling(const std::string& name);

}  // namespace grpo
