// The GRPO loss per token and per row, with its derivative w.r.t. logp, written
// once for the CPU loop (src/ops/grpo_loss.cpp) and the CUDA kernel
// (kernels/grpo_loss.cu). Shapes: N sequences, T tokens; T = accumulation type
// is spelled `A` here (float, or double for float64 inputs).
#pragma once

#include "tensor_view.cuh"

namespace grpo::kernels {

// How the per-token losses are summed into one number (DESIGN.md, "aggregation").
enum class LossAggregation : int32_t { GRPO = 0, BNPO = 1, DrGRPO = 2, DAPO = 3 };

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

// Statistics the op returns, in this order, as a (kNumStats) tensor.
enum LossStat : int {
  kStatKlMean = 0,
  kStatClipLow,
  kStatClipHigh,
  kStatClipRegion,
  kStatRatioMean,
  kStatTokenCount,
  kStatInvalid,
  kNumStats
};

struct GrpoLossParams {
  View2D logp;      // (N, T) the policy's log-probs of the sampled tokens
  View2D old_logp;  // (N, T) log-probs at sampling time; unread when !has_old (ratio = 1)
  View2D ref_logp;  // (N, T) reference log-probs; unread when beta == 0
  View2D mask;      // (N, T) 1 = completion token, 0 = padding
  View1D advantages;  // (N)
  int64_t N = 0;
  int64_t T = 0;
  bool has_old = false;
  double epsilon_low = 0.2;   // clip range below 1
  double epsilon_high = 0.2;  // clip range above 1
  bool has_delta = false;     // dual-clip cap on ρ in the unclipped term
  double delta = 0.0;
  double beta = 0.0;          // KL weight; 0 = reference never read
  double log_ratio_clamp = 20.0;  // |log ρ| and |ref - logp| are clamped to this
  double kl_clamp = 10.0;         // |KL| is clamped to this
  bool sequence_level = false;    // GSPO: one ratio per sequence
  LossAggregation aggregation = LossAggregation::GRPO;
  // The loss is Σ row_weight·ℓ divided by `denominator`, or by the token count
  // of this call when denominator_is_token_count.
  double denominator = 1.0;
  bool denominator_is_token_count = false;
  void* grad = nullptr;  // (N, T) contiguous, type A: written with row_weight·dℓ/dlogp, or null
};

// ---------------------------------------------------------------- per token

template <typename A>
GRPO_HD A clamp_abs(A x, A bound) {
  return x < -bound ? -bound : (x > bound ? bound : x);
}
// Whether the gradient passes through clamp_abs (bounds included, as torch.clamp).
template <typename A>
GRPO_HD bool within_abs(A x, A bound) {
  return x >= -bound && x <= bound;
}

struct ClipRange {
  double epsilon_low, epsilon_high;
  bool has_delta;
  double delta;
};

// The two branches of the clipped surrogate at ratio ρ and advantage A.
template <typename A>
struct SurrogateBranches {
  A unclipped, clipped;        // min(ρ, δ)·A and clip(ρ, 1 - ε_low, 1 + ε_high)·A
  A d_unclipped, d_clipped;    // their derivatives w.r.t. ρ
};
template <typename A>
GRPO_HD SurrogateBranches<A> surrogate_branches(A ratio, A adv, const ClipRange& c) {
  const A lo = A(1) - A(c.epsilon_low), hi = A(1) + A(c.epsilon_high);
  const bool capped = c.has_delta && ratio > A(c.delta);
  const bool clipped = ratio < lo || ratio > hi;
  SurrogateBranches<A> b;
  b.unclipped = (capped ? A(c.delta) : ratio) * adv;
  b.clipped = (ratio < lo ? lo : (ratio > hi ? hi : ratio)) * adv;
  b.d_unclipped = capped ? A(0) : adv;
  b.d_clipped = clipped ? A(0) : adv;
  return b;
}

// min(min(ρ, δ)·A, clip(ρ, 1 - ε_low, 1 + ε_high)·A): the clipped surrogate objective.
template <typename A>
GRPO_HD A clipped_surrogate(A ratio, A adv, const ClipRange& c) {
  const SurrogateBranches<A> b = surrogate_branches(ratio, adv, c);
  return b.unclipped < b.clipped ? b.unclipped : b.clipped;
}
// d clipped_surrogate / dρ.
template <typename A>
GRPO_HD A clipped_surrogate_dratio(A ratio, A adv, const ClipRange& c) {
  const SurrogateBranches<A> b = surrogate_branches(ratio, adv, c);
  if (b.unclipped < b.clipped) return b.d_unclipped;
  if (b.clipped < b.unclipped) return b.d_clipped;
  // NB: at a tie each branch gets half the gradient, as autograd's minimum does.
  return (b.d_unclipped + b.d_clipped) / A(2);
}

// k3 estimator of KL(π || π_ref) at one token, x = ref_logp - logp: e^x - x - 1 ≥ 0.
template <typename A>
GRPO_HD A k3_kl(A x) {
  return exp_(x) - x - A(1);
}
// d k3_kl / dlogp (x depends on logp with slope -1).
template <typename A>
GRPO_HD A k3_kl_dlogp(A x) {
  return A(1) - exp_(x);
}

template <typename A>
struct TokenTerms {
  A loss;   // ℓ = -surrogate + β·KL
  A dlogp;  // dℓ / dlogp
  A kl;
  A ratio;
  bool clipped_low, clipped_high;
};

// One token. `log_ratio` is logp - old_logp (token level) or the sequence's
// mean of it (GSPO); for GSPO the per-token gradient below is exact because the
// row's tokens share one row weight: Σ_t w·dρ_seq/dlogp_u = w·ρ_seq.
template <typename A>
GRPO_HD TokenTerms<A> grpo_token(A log_ratio, A adv, A logp, A ref_logp, const GrpoLossParams& p) {
  const ClipRange c{p.epsilon_low, p.epsilon_high, p.has_delta, p.delta};
  const A bound = A(p.log_ratio_clamp);
  const A ratio = exp_(clamp_abs(log_ratio, bound));
  TokenTerms<A> out;
  out.ratio = ratio;
  out.loss = -clipped_surrogate(ratio, adv, c);
  // dρ/dlogp = ρ, zero where the safety clamp is active.
  out.dlogp = within_abs(log_ratio, bound) ? -clipped_surrogate_dratio(ratio, adv, c) * ratio : A(0);
  out.clipped_low = ratio < A(1) - A(p.epsilon_low) && adv < A(0);
  out.clipped_high = ratio > A(1) + A(p.epsilon_high) && adv > A(0);
  out.kl = A(0);
  if (p.beta != 0.0) {
    const A x_raw = ref_logp - logp;
    const A x = clamp_abs(x_raw, bound);
    const A kl_raw = k3_kl(x);
    const A kl_bound = A(p.kl_clamp);
    out.kl = clamp_abs(kl_raw, kl_bound);
    out.loss += A(p.beta) * out.kl;
    const bool passes = within_abs(x_raw, bound) && within_abs(kl_raw, kl_bound);
    out.dlogp += passes ? A(p.beta) * k3_kl_dlogp(x) : A(0);
  }
  return out;
}

// ---------------------------------------------------------------- per row

template <typename A>
struct RowSums {
  A v[kNumRowSums];
  GRPO_HD RowSums() {
    for (int k = 0; k < kNumRowSums; ++k) v[k] = A(0);
  }
  GRPO_HD RowSums& operator+=(const RowSums& o) {
    for (int k = 0; k < kNumRowSums; ++k) v[k] += o.v[k];
    return *this;
  }
};

// Row i, shared by the CPU loop (lane 0 of 1) and the CUDA kernel (a block's
// threads as lanes). `reduce(RowSums)` returns the sum over all lanes to every
// lane. Writes the row's gradient when p.grad is set; returns the row's sums.
template <typename A, typename Reduce>
GRPO_HD RowSums<A> grpo_row(const GrpoLossParams& p, int64_t i, int64_t lane, int64_t lanes, Reduce&& reduce) {
  // Pass 1: the row's token count, and the sequence log-ratio for GSPO.
  RowSums<A> pre;
  for (int64_t t = lane; t < p.T; t += lanes) {
    const A m = load<A>(p.mask, i, t);
    if (m == A(0)) continue;
    pre.v[kTokenCount] += A(1);
    if (p.sequence_level && p.has_old) pre.v[kRatioSum] += load<A>(p.logp, i, t) - load<A>(p.old_logp, i, t);
  }
  pre = reduce(pre);
  const A count = pre.v[kTokenCount];
  const A seq_log_ratio = count > A(0) ? pre.v[kRatioSum] / count : A(0);
  const A row_weight = p.aggregation == LossAggregation::GRPO ? A(1) / (count > A(1) ? count : A(1)) : A(1);

  const A adv = load<A>(p.advantages, i);
  A* grad = static_cast<A*>(p.grad);
  RowSums<A> sums;
  if (lane == 0 && !is_finite(adv)) sums.v[kInvalid] += A(1);
  // Pass 2: every token's loss and gradient.
  for (int64_t t = lane; t < p.T; t += lanes) {
    const A m = load<A>(p.mask, i, t);
    if (m != A(0) && m != A(1)) sums.v[kInvalid] += A(1);
    if (m != A(1)) {
      if (grad) grad[i * p.T + t] = A(0);
      continue;
    }
    const A logp = load<A>(p.logp, i, t);
    const A old = p.has_old ? load<A>(p.old_logp, i, t) : logp;
    const A ref = p.beta != 0.0 ? load<A>(p.ref_logp, i, t) : A(0);
    if (!is_finite(logp) || !is_finite(old) || !is_finite(ref)) sums.v[kInvalid] += A(1);
    const A log_ratio = p.sequence_level ? seq_log_ratio : logp - old;
    const TokenTerms<A> k = grpo_token(log_ratio, adv, logp, ref, p);
    sums.v[kWeightedLoss] += row_weight * k.loss;
    sums.v[kKlSum] += k.kl;
    sums.v[kClipLow] += k.clipped_low ? A(1) : A(0);
    sums.v[kClipHigh] += k.clipped_high ? A(1) : A(0);
    sums.v[kClipRegion] += (k.clipped_low || k.clipped_high) ? A(1) : A(0);
    sums.v[kRatioSum] += k.ratio;
    sums.v[kTokenCount] += A(1);
    if (grad) grad[i * p.T + t] = row_weight * k.dlogp;
  }
  return sums;
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
  out.stats[kStatKlMean] = sums[kKlSum] * per_token;
  out.stats[kStatClipLow] = sums[kClipLow] * per_token;
  out.stats[kStatClipHigh] = sums[kClipHigh] * per_token;
  out.stats[kStatClipRegion] = sums[kClipRegion] * per_token;
  out.stats[kStatRatioMean] = sums[kRatioSum] * per_token;
  out.stats[kStatTokenCount] = tokens;
  out.stats[kStatInvalid] = sums[kInvalid];
  return out;
}

}  // namespace grpo::kernels
