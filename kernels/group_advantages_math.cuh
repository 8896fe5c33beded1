// Group-relative advantages, written once for the CPU path
// (src/ops/group_advantages_cpu.cpp) and the CUDA kernel (kernels/group_advantages.cu).
// N rewards in P groups of G consecutive ones; A is the accumulation type.
#pragma once

#include "grpo/ops/enums.h"
#include "tensor_view.cuh"

namespace grpo::kernels {

struct GroupAdvantageParams {
  View1D rewards;  // (N)
  int64_t N = 0;
  int64_t G = 0;
  double eps;            // added to the std before dividing
  AdvantageScale scale;  // what the centred rewards are divided by
  void* advantages = nullptr;  // (N) contiguous, type A; written
  void* group_mean = nullptr;  // (P) contiguous, type A; written
  void* group_std = nullptr;   // (P) contiguous, type A; written
};

// Bessel-corrected standard deviation from the sum of squared deviations of n
// values; a single value has no spread (0, not NaN).
template <typename A>
GRPO_HD A bessel_std(A sum_sq_dev, int64_t n) {
  return n > 1 ? sqrt(sum_sq_dev / A(n - 1)) : A(0);
}

// One advantage. `divisor_std` is the group's or the batch's std.
template <typename A>
GRPO_HD A group_advantage(A reward, A group_mean, A divisor_std, bool group_all_equal, A eps,
                          AdvantageScale scale) {
  // NB: a group of equal rewards carries no signal; its mean may differ from the
  // rewards by rounding, so it is zeroed explicitly rather than computed.
  if (group_all_equal) return A(0);
  const A centred = reward - group_mean;
  return scale == AdvantageScale::None ? centred : centred / (divisor_std + eps);
}

}  // namespace grpo::kernels
