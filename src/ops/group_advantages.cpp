// group_advantages: argument checks shared by the CPU and CUDA paths, and the
// public C++ entry point (via the dispatcher). Shapes: N rewards = P groups of G.
#include "ops/group_advantages_impl.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "grpo/ops/group_advantages.h"
#include "ops/common.h"

namespace grpo {
namespace ops {

namespace {
constexpr const char* kOp = "group_advantages";

// Raises naming the first non-finite reward, if any. NB: two ops and one read
// on the good path; on a GPU each op is a launch and the read a sync, which
// cost more than the advantages themselves (docs/BENCHMARKS.md, GPU).
void check_finite_rewards(const at::Tensor& rewards) {
  if (at::isfinite(rewards).all().item<bool>()) return;
  const int64_t i = at::nonzero(at::logical_not(at::isfinite(rewards)))[0][0].item<int64_t>();
  TORCH_CHECK(false, kOp, ": rewards[", i, "] = ", rewards[i].item<double>(),
              "; every reward must be finite (a reward function returned NaN or Inf)");
}
}  // namespace

PreparedAdvantages prepare_group_advantages(const at::Tensor& rewards, int64_t group_size, double eps,
                                            c10::string_view scale) {
  TORCH_CHECK(rewards.defined(), kOp, ": rewards is undefined");
  TORCH_CHECK(rewards.dim() == 1, kOp, ": rewards must be 1-D (N), got shape ", rewards.sizes());
  const int64_t N = rewards.size(0);
  TORCH_CHECK(group_size >= 1, kOp, ": group_size must be >= 1, got ", group_size);
  TORCH_CHECK(N % group_size == 0, kOp, ": group_size ", group_size, " does not divide the number of rewards ", N,
              "; rewards must come in whole groups");
  TORCH_CHECK(std::isfinite(eps) && eps >= 0, kOp, ": eps must be finite and >= 0, got ", eps);
  TORCH_CHECK(rewards.scalar_type() != at::kBool, kOp, ": rewards must be numeric, got bool");
  const kernels::DType dtype = dtype_of(rewards, "rewards");
  check_finite_rewards(rewards);

  const at::ScalarType acc = rewards.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto options = rewards.options().dtype(acc);
  PreparedAdvantages out{};
  out.advantages = at::empty({N}, options);
  out.group_mean = at::empty({N / group_size}, options);
  out.group_std = at::empty({N / group_size}, options);
  auto& p = out.params;
  p.rewards = {rewards.data_ptr(), rewards.stride(0), dtype};
  p.N = N;
  p.G = group_size;
  p.eps = eps;
  p.scale = parse_advantage_scale(std::string(scale));
  p.advantages = out.advantages.data_ptr();
  p.group_mean = out.group_mean.data_ptr();
  p.group_std = out.group_std.data_ptr();
  return out;
}

}  // namespace ops

GroupAdvantages group_advantages(const at::Tensor& rewards, int64_t group_size, const GroupAdvantageOptions& options) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("grpo::group_advantages", "")
                             .typed<ops::GroupAdvantagesSignature>();
  const std::string scale = to_string(options.scale);
  auto [advantages, mean, stdev] = op.call(rewards, group_size, options.eps, scale);
  return {advantages, mean, stdev};
}

}  // namespace grpo
