// group_advantages: group-relative advantages of N = P·G rewards laid out
// group after group, as a LibTorch op with CPU and CUDA implementations
// (torch.ops.grpo.group_advantages from Python). Shapes: P prompts, G
// completions per prompt, N = P·G.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "grpo/ops/enums.h"

namespace grpo {

struct GroupAdvantageOptions {
  double eps = 1e-4;                             // added to the std before dividing
  AdvantageScale scale = AdvantageScale::Group;  // what the centred rewards are divided by
};

struct GroupAdvantages {
  at::Tensor advantages;  // (N) (r - group mean) / (std + eps); exactly 0 in a group of equal rewards
  at::Tensor group_mean;  // (P) each group's mean reward
  at::Tensor group_std;   // (P) each group's std (Bessel-corrected; 0 when G = 1 or all rewards equal)
};

// Float64 rewards give float64 results, any other dtype float32. Raises
// c10::Error when G < 1, G does not divide N, or a reward is NaN/Inf.
GroupAdvantages group_advantages(const at::Tensor& rewards, int64_t group_size,
                                 const GroupAdvantageOptions& options = {});

// "group", "batch", "none"; parsing raises c10::Error listing the valid names.
std::string to_string(AdvantageScale scale);
AdvantageScale parse_advantage_scale(const std::string& name);

}  // namespace grpo
