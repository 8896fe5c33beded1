// The GRPO loss per token and per row, with its derivative w.r.t. logp, written
// once for the CPU loop (src/ops/grpo_loss_cpu.cpp) and the CUDA kernel
// (kernels/grpo_loss.cu). Shapes: N sequences, T tokens; T = accumulation type
// is spelled `A` here (float, or double for float64 inputs).
#pragma once

#include "grpo/ops/enums.h"
#include "tensor_view.cuh"

namespace grpo::kernels {

// Sums one row (or one block of rows, or the whole batch) contributes.
enum RowSum : int {
  kWeightedLoss = 0,  // Σ row_weight · ℓ over masked tokens
  kKlSum,             // Σ KL over masked tokens
  kClipLow,           // tokens with ρ < 1 - ε_low and A < 0
  kClipHigh,          // tokens with ρ > 1 + ε_high and A > 0
  kClipRegion,        // either of the two
  kRatioSum,          // Σ ρ over masked tokens
  kTokenCount,        // masked tokens
  kInvalid,           // mask values not 0/1, non-finite advantages or log-probs
  kNumRowSums
};

// Statistics the op returns, in grpo::LossStat's order, as a (kNumStats) tensor.
constexpr int kNumStats = static_cast<int>(LossStat::Count);
constexpr int stat_index(LossStat s) { return static_cast<int>(s); }

struct GrpoLossParams {
  View2D logp;      // (N, T) the policy's log-probs of the sampled tokens
  View2D old_logp;  // (N, T) log-probs at sampling time; unread when !has_old (ratio = 1)
  View2D ref_logp;  // (N, T) reference log-probs; unread when beta == 0
  View2D mask;      // (N, T) 1 = completion token, 0 = padding
  View2D advantages;  // (N, T) per token; an (N) tensor is read with column stride 0
  int64_t N = 0;
  int64_t T = 0;
  // The options, as GrpoLossOptions gives them (src/ops/grpo_loss.cpp fills every field).
  bool has_old;            // false: ratio = 1 (old_logp unread)
  double epsilon_low;      // clip range below 1
  double epsilon_high;     // clip range above 1
  bool has_delta;          // dual-clip cap on ρ in the unclipped term
  double delta;
  double beta;             // KL weight; 0 = reference never read
  double log_ratio_clamp;  // |log ρ| and |ref - logp| are clamped to this
  double kl_clamp;         // |KL| is clamped to this
  bool sequence_level;     // GSPO: one ratio per sequence
  LossType loss_type;      // picks the row weight (GRPO: 1 / the row's tokens)
  // The loss is Σ row_weight·ℓ divided by `denominator`, or by the token count
  // of this call when denominator_is_token_count.
  double denominator;
  bool denominator_is_token_count;
  void* grad = nullptr;  // (N, T) contiguous, type A: written with row_weight·dℓ/dlogp, or null
};

// ---------------------------------------------------------------- per token
// Written with selects on single comparisons and arithmetic on 0/1 values
// (no short-circuit logic, no bool-valued selects), so the CPU loop vectorizes.

// The options a token needs, in the accumulation type.
template <typename A>
struct TokenConstants {
  A clip_low, clip_high;  // 1 - ε_low, 1 + ε_high
  A delta;                // the dual-clip cap on ρ, or a value ρ never exceeds
  A beta;                 // KL weight
  A kl_on;                // 1 when beta != 0, else 0
  A log_ratio_bound, kl_bound;

  GRPO_HD explicit TokenConstants(const GrpoLossParams& p)
      : clip_low(A(1) - A(p.epsilon_low)),
        clip_high(A(1) + A(p.epsilon_high)),
        delta(p.has_delta ? A(p.delta) : A(3.0e38f)),  // NB: ρ ≤ e^log_ratio_bound, far below
        beta(A(p.beta)),
        kl_on(p.beta != 0.0 ? A(1) : A(0)),
        log_ratio_bound(A(p.log_ratio_clamp)),
        kl_bound(A(p.kl_clamp)) {}
};

template <typename A>
GRPO_HD A clamp_abs(A x, A bound) {
  return x < -bound ? -bound : (x > bound ? bound : x);
}
// `value` where the gradient passes through clamp_abs(x, bound) (bounds
// included, as torch.clamp), else 0.
template <typename A>
GRPO_HD A pass_within_abs(A x, A bound, A value) {
  return clamp_abs(x, bound) == x ? value : A(0);  // NB: one comparison, which vectorizes better than two
}

// The two branches of the clipped surrogate at ratio ρ and advantage A.
template <typename A>
struct SurrogateBranches {
  A unclipped, clipped;      // min(ρ, δ)·A and clip(ρ, 1 - ε_low, 1 + ε_high)·A
  A d_unclipped, d_clipped;  // their derivatives w.r.t. ρ
};
template <typename A>
GRPO_HD SurrogateBranches<A> surrogate_branches(A ratio, A adv, const TokenConstants<A>& c) {
  SurrogateBranches<A> b;
  const A capped = ratio > c.delta ? c.delta : ratio;
  const A bounded = ratio < c.clip_low ? c.clip_low : (ratio > c.clip_high ? c.clip_high : ratio);
  b.unclipped = capped * adv;
  b.clipped = bounded * adv;
  b.d_unclipped = capped == ratio ? adv : A(0);
  b.d_clipped = bounded == ratio ? adv : A(0);
  return b;
}

// min(min(ρ, δ)·A, clip(ρ, 1 - ε_low, 1 + ε_high)·A): the clipped surrogate objective.
template <typename A>
GRPO_HD A clipped_surrogate(const SurrogateBranches<A>& b) {
  return b.unclipped < b.clipped ? b.unclipped : b.clipped;
}
// d clipped_surrogate / dρ.
template <typename A>
GRPO_HD A clipped_surrogate_dratio(const SurrogateBranches<A>& b) {
  // NB: at a tie each branch gets half the gradient, as autograd's minimum does.
  return b.unclipped < b.clipped ? b.d_unclipped
                                 : (b.clipped < b.unclipped ? b.d_clipped : (b.d_unclipped + b.d_clipped) / A(2));
}

// k3 estimator of KL(π ‖ π_ref) at one token, x = ref_logp - logp, ex = e^x: e^x - x - 1 ≥ 0.
template <typename A>
GRPO_HD A k3_kl(A x, A ex) {
  return ex - x - A(1);
}
// d k3_kl / dlogp (x depends on logp with slope -1).
template <typename A>
GRPO_HD A k3_kl_dlogp(A ex) {
  return A(1) - ex;
}

template <typename A>
struct TokenTerms {
  A loss;   // ℓ = -surrogate + β·KL
  A dlogp;  // dℓ / dlogp
  A kl;
  A ratio;
  A clipped_low, clipped_high;  // 1 or 0
};

// One token. `log_ratio` is logp - old_logp (token level) or the sequence's
// mean of it (GSPO); for GSPO the per-token gradient below is exact because the
// row's tokens share one row weight: Σ_t w·dρ_seq/dlogp_u = w·ρ_seq. When
// beta = 0, callers pass ref_logp = logp.
template <typename A>
GRPO_HD TokenTerms<A> grpo_token(A log_ratio, A adv, A logp, A ref_logp, const TokenConstants<A>& c) {
  const A ratio = exp_(clamp_abs(log_ratio, c.log_ratio_bound));
  const SurrogateBranches<A> b = surrogate_branches(ratio, adv, c);
  TokenTerms<A> out;
  out.ratio = ratio;
  out.loss = -clipped_surrogate(b);
  // dρ/dlogp = ρ, zero where the safety clamp is active.
  out.dlogp = pass_within_abs(log_ratio, c.log_ratio_bound, -clipped_surrogate_dratio(b) * ratio);
  out.clipped_low = ratio < c.clip_low ? (adv < A(0) ? A(1) : A(0)) : A(0);
  out.clipped_high = ratio > c.clip_high ? (adv > A(0) ? A(1) : A(0)) : A(0);
  const A x_raw = ref_logp - logp;
  const A x = clamp_abs(x_raw, c.log_ratio_bound);
  const A ex = exp_(x);
  const A kl_raw = k3_kl(x, ex);
  out.kl = c.kl_on * clamp_abs(kl_raw, c.kl_bound);
  out.loss += c.beta * out.kl;
  out.dlogp += pass_within_abs(x_raw, c.log_ratio_bound, pass_within_abs(kl_raw, c.kl_bound, c.beta * k3_kl_dlogp(ex)));
  return out;
}

// The values one token contributes, from what was loaded at it: positions off
// the mask read as 0 (whatever they hold, NaN included) and count nothing.
template <typename A>
struct TokenInputs {
  A on;  // 1 at a completion token, else 0
  A logp, old_logp, ref_logp;
  A invalid;  // 1 for a mask value that is not 0/1 or a non-finite log-prob on the mask
};
template <typename A>
GRPO_HD TokenInputs<A> token_inputs(A mask, A logp, A old_logp, A ref_logp) {
  TokenInputs<A> in;
  in.on = mask == A(1) ? A(1) : A(0);
  in.logp = mask == A(1) ? logp : A(0);
  in.old_logp = mask == A(1) ? old_logp : A(0);
  in.ref_logp = mask == A(1) ? ref_logp : A(0);
  // NB: x - x is 0 for finite x and NaN for NaN and ±inf; m·(m - 1) is 0 only for m = 0 or 1.
  const A not_finite = (logp - logp) + (old_logp - old_logp) + (ref_logp - ref_logp) != A(0) ? A(1) : A(0);
  const A bad_mask = mask * (mask - A(1)) != A(0) ? A(1) : A(0);
  in.invalid = bad_mask + in.on * not_finite;
  return in;
}

// What one token adds to its row's sums (see RowSum).
template <typename A>
struct TokenSums {
  A weighted_loss, kl, clip_low, clip_high, clip_region, ratio, tokens, invalid;
};
template <typename A>
GRPO_HD TokenSums<A> token_sums(const TokenInputs<A>& in, const TokenTerms<A>& k, A weight) {
  return {in.on * weight * k.loss,
          in.on * k.kl,
          in.on * k.clipped_low,
          in.on * k.clipped_high,
          in.on * (k.clipped_low + k.clipped_high),  // the two exclude each other
          in.on * k.ratio,
          in.on,
          in.invalid};
}

// Adds a token's sums to an array of kNumRowSums, in RowSum order.
template <typename A>
GRPO_HD void add_token_sums(A* sums, const TokenSums<A>& d) {
  sums[kWeightedLoss] += d.weighted_loss;
  sums[kKlSum] += d.kl;
  sums[kClipLow] += d.clip_low;
  sums[kClipHigh] += d.clip_high;
  sums[kClipRegion] += d.clip_region;
  sums[kRatioSum] += d.ratio;
  sums[kTokenCount] += d.tokens;
  sums[kInvalid] += d.invalid;
}

// ---------------------------------------------------------------- per row

// The weight of each of a row's token losses before the batch denominator:
// 1 / tokens for GRPO (the sequence mean), else 1.
template <typename A>
GRPO_HD A row_weight(A tokens, LossType loss_type) {
  return loss_type == LossType::GRPO ? A(1) / (tokens > A(1) ? tokens : A(1)) : A(1);
}

// The sequence-level log-ratio (GSPO): the mean of logp - old_logp over the row's tokens.
template <typename A>
GRPO_HD A sequence_log_ratio(A sum, A tokens) {
  return tokens > A(0) ? sum / tokens : A(0);
}

// ---------------------------------------------------------------- whole batch

// From the batch's sums (accumulated in double, in a fixed order) to the loss,
// the statistics, and the scale that turns the saved per-token gradient into
// dloss/dlogp.
struct LossTotals {
  double loss;
  double grad_scale;
  double stats[kNumStats];
};

GRPO_HD LossTotals finalize_loss(const double* sums, const GrpoLossParams& p) {
  LossTotals out;
  const double tokens = sums[kTokenCount];
  const double per_token = tokens > 0.0 ? 1.0 / tokens : 0.0;
  const double denominator = p.denominator_is_token_count ? (tokens > 1.0 ? tokens : 1.0) : p.denominator;
  out.grad_scale = 1.0 / denominator;
  out.loss = sums[kWeightedLoss] * out.grad_scale;
  out.stats[stat_index(LossStat::KlMean)] = sums[kKlSum] * per_token;
  out.stats[stat_index(LossStat::ClipLowFrac)] = sums[kClipLow] * per_token;
  out.stats[stat_index(LossStat::ClipHighFrac)] = sums[kClipHigh] * per_token;
  out.stats[stat_index(LossStat::ClipRegionFrac)] = sums[kClipRegion] * per_token;
  out.stats[stat_index(LossStat::RatioMean)] = sums[kRatioSum] * per_token;
  out.stats[stat_index(LossStat::TokenCount)] = tokens;
  out.stats[stat_index(LossStat::InvalidInputs)] = sums[kInvalid];
  return out;
}

}  // namespace grpo::kernels
