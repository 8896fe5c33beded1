// Internal: what the CPU and CUDA paths of group_advantages share.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include "group_advantages_math.cuh"

namespace grpo::ops {

struct PreparedAdvantages {
  kernels::GroupAdvantageParams params;  // pointers into the outputs below
  at::Tensor advantages;                 // (N) accumulation dtype
  at::Tensor group_mean;                 // (P)
  at::Tensor group_std;                  // (P)
};

// Validates the arguments (raising c10::Error that names the bad one) and
// allocates the outputs on the rewards' device.
PreparedAdvantages prepare_group_advantages(const at::Tensor& rewards, int64_t group_size, double eps,
                                            c10::string_view scale);

}  // namespace grpo::ops
