// Internal: what the CPU (group_advantages_cpu.cpp) and CUDA
// (group_advantages_cuda.cpp) paths of group_advantages share with
// group_advantages.cpp: the dispatcher signature, the checks and the outputs.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <tuple>

#include "group_advantages_math.cuh"

namespace grpo::ops {

// The dispatcher signature (the schema is in src/ops/registration.cpp).
using GroupAdvantagesSignature = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor& rewards, int64_t group_size, double eps, c10::string_view scale);

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
