// The GRPO math as LibTorch ops, with CPU and CUDA implementations registered
// with the PyTorch dispatcher under the namespace `grpo` (so torch.ops.grpo.*
// works from Python after torch.ops.load_library). Shapes: P prompts, G
// completions per prompt, N = P·G sequences, T completion tokens.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <string>

namespace grpo {

// ---------------------------------------------------------------- advantages

enum class AdvantageScale {
  Group,  // divide by the group's std (GRPO)
  Batch,  // divide by the std of all N rewards
  None,   // only subtract the group mean (Dr. GRPO)
};

struct GroupAdvantageOptions {
  double eps = 1e-4;                            // added to the std before dividing
  AdvantageScale scale = AdvantageScale::Group;  // what the centred rewards are divided by
};

struct GroupAdvantages {
  at::Tensor advantages;  // (N) (r - group mean) / (std + eps); exactly 0 in a group of equal rewards
  at::Tensor group_mean;  // (P) each group's mean reward
  at::Tensor group_std;   // (P) each group's std (Bessel-corrected; 0 when G = 1 or all rewards equal)
};

// Group-relative advantages of N = P·G rewards laid out group after group.
// Float64 rewards give float64 results, any other dtype float32. Raises
// c10::Error when G < 1, G does not divide N, or a reward is NaN/Inf.
GroupAdvantages group_advantages(const at::Tensor& rewards, int64_t group_size,
                                 const GroupAdvantageOptions& options = {});

// ---------------------------------------------------------------- the loss

enum class LossType {
  GRPO,    // mean over sequences of each sequence's mean token loss
  BNPO,    // sum of token losses / tokens in this call
  DrGRPO,  // sum of token losses / (sequences · max_completion_length)
  DAPO,    // sum of token losses / tokens in the whole generation batch (normalizer)
};

enum class ImportanceSampling {
  Token,     // one ratio per token (GRPO)
  Sequence,  // one ratio per sequence, exp(mean_t log ρ_t) (GSPO)
};

struct GrpoLossOptions {
  double epsilon_low = 0.2;          // ρ is clipped below at 1 - epsilon_low
  double epsilon_high = 0.2;         // ρ is clipped above at 1 + epsilon_high (DAPO clip-higher: 0.28)
  c10::optional<double> delta;       // dual-clip: caps ρ in the unclipped term (> 1 + epsilon_high)
  double beta = 0.04;                // KL weight; 0 = ref_logp is never read and may be undefined
  LossType loss_type = LossType::GRPO;
  int64_t max_completion_length = 0;  // Dr. GRPO's constant L; required for DrGRPO
  // The denominator over the whole generation batch, so that micro-batches and
  // processes sum to exactly the full batch's gradient; 0 = this call's own.
  // GRPO and DrGRPO: the number of sequences; DAPO: the number of completion
  // tokens. BNPO normalizes per call by definition and takes none.
  double normalizer = 0.0;
  ImportanceSampling importance_sampling = ImportanceSampling::Token;
  double log_ratio_clamp = 20.0;  // |logp - old_logp| and |ref_logp - logp| are clamped to this
  double kl_clamp = 10.0;         // the per-token KL is clamped to this
  // Check the mask is 0/1 and advantages and masked log-probs are finite, and
  // raise if not. On CUDA this reads one number back (a sync); false skips it.
  bool check_inputs = true;
};

// Indices into GrpoLossResult::stats.
enum class LossStat : int64_t {
  KlMean = 0,      // mean k3 KL over masked tokens (0 when beta = 0)
  ClipLowFrac,     // fraction of masked tokens with ρ < 1 - epsilon_low and A < 0
  ClipHighFrac,    // fraction of masked tokens with ρ > 1 + epsilon_high and A > 0
  ClipRegionFrac,  // either of the two
  RatioMean,       // mean ρ over masked tokens
  TokenCount,      // masked tokens in this call
  InvalidInputs,   // bad mask values and non-finite inputs seen (0 unless check_inputs is false)
  Count
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

// The GRPO policy loss as one fused autograd op. The forward pass computes each
// token's clipped surrogate and k3 KL, the aggregate and dloss/dlogp in one
// pass; backward only scales that saved gradient. Gradients flow to logp only;
// old_logp, ref_logp and advantages are constants.
//   logp      (N, T) float32/bfloat16/float16/float64, computed in float32 (float64)
//   old_logp  (N, T) or undefined: then ρ = exp(logp - logp.detach()) = 1 (μ = 1)
//   ref_logp  (N, T) or undefined when beta = 0
//   advantages (N)
//   mask      (N, T) bool, integer or floating, values 0/1; 1 = completion token
// Non-contiguous inputs are read in place. Raises c10::Error naming the
// argument on shapes that disagree, mixed devices, bad dtypes or values.
GrpoLossResult grpo_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& ref_logp,
                         const at::Tensor& advantages, const at::Tensor& mask,
                         const GrpoLossOptions& options = {});

// Names as used in configs and by the Python op ("grpo", "bnpo", "dr_grpo",
// "dapo"; "token", "sequence"; "group", "batch", "none"). Parsing raises
// c10::Error listing the valid names.
std::string to_string(LossType type);
std::string to_string(ImportanceSampling level);
std::string to_string(AdvantageScale scale);
LossType parse_loss_type(const std::string& name);
ImportanceSampling parse_importance_sampling(const std::string& name);
AdvantageScale parse_advantage_scale(const std::string& name);

}  // namespace grpo
