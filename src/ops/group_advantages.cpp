// group_advantages: argument checks shared with CUDA, the CPU path over Eigen
// maps of the tensor data, and the public C++ entry point (via the dispatcher).
// Shapes: N rewards = P groups of G.
#include "ops/group_advantages.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <Eigen/Core>

#include "grpo/ops.h"
#include "ops/common.h"

namespace grpo {
namespace ops {

namespace {
constexpr const char* kOp = "group_advantages";

// Raises naming the first non-finite reward, if any.
void check_finite_rewards(const at::Tensor& rewards) {
  const at::Tensor bad = at::logical_not(at::isfinite(rewards));
  if (!bad.any().item<bool>()) return;
  const int64_t i = at::nonzero(bad)[0][0].item<int64_t>();
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
  PreparedAdvantages out;
  out.advantages = at::empty({N}, options);
  out.group_mean = at::empty({N / group_size}, options);
  out.group_std = at::empty({N / group_size}, options);
  auto& p = out.params;
  p.rewards = {rewards.data_ptr(), rewards.stride(0), dtype};
  p.N = N;
  p.G = group_size;
  p.eps = eps;
  p.scale = static_cast<kernels::AdvantageScaling>(parse_advantage_scale(std::string(scale)));
  p.advantages = out.advantages.data_ptr();
  p.group_mean = out.group_mean.data_ptr();
  p.group_std = out.group_std.data_ptr();
  return out;
}

namespace {

template <typename A>
void group_advantages_cpu_impl(const at::Tensor& rewards, const kernels::GroupAdvantageParams& p) {
  using Groups = Eigen::Array<A, Eigen::Dynamic, Eigen::Dynamic>;  // (G, P), one group per column
  using Row = Eigen::Array<A, 1, Eigen::Dynamic>;                   // (P)
  const int64_t P = p.N / p.G;
  const at::Tensor r = rewards.to(rewards.options().dtype(c10::CppTypeToScalarType<A>::value)).contiguous();
  const Eigen::Map<const Groups> groups(r.data_ptr<A>(), p.G, P);
  Eigen::Map<Groups> advantages(static_cast<A*>(p.advantages), p.G, P);
  Eigen::Map<Row> mean(static_cast<A*>(p.group_mean), P);
  Eigen::Map<Row> stdev(static_cast<A*>(p.group_std), P);

  mean = groups.colwise().mean();
  const Groups centred = groups.rowwise() - mean;
  const Row sum_sq = centred.square().colwise().sum();
  const Eigen::Array<bool, 1, Eigen::Dynamic> all_equal = groups.colwise().maxCoeff() == groups.colwise().minCoeff();
  for (int64_t g = 0; g < P; ++g) stdev(g) = all_equal(g) ? A(0) : kernels::bessel_std(sum_sq(g), p.G);

  A batch_std = 0;
  if (p.scale == kernels::AdvantageScaling::Batch) {
    const Eigen::Map<const Row> all(r.data_ptr<A>(), p.N);
    batch_std = kernels::bessel_std((all - all.mean()).square().sum(), p.N);
  }
  for (int64_t g = 0; g < P; ++g) {
    const A divisor = p.scale == kernels::AdvantageScaling::Batch ? batch_std : stdev(g);
    for (int64_t k = 0; k < p.G; ++k) {
      advantages(k, g) = kernels::group_advantage(groups(k, g), mean(g), divisor, all_equal(g), A(p.eps), p.scale);
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_advantages_cpu(const at::Tensor& rewards, int64_t group_size,
                                                                    double eps, c10::string_view scale) {
  PreparedAdvantages out = prepare_group_advantages(rewards, group_size, eps, scale);
  if (out.params.N > 0) {
    if (out.advantages.scalar_type() == at::kDouble) {
      group_advantages_cpu_impl<double>(rewards, out.params);
    } else {
      group_advantages_cpu_impl<float>(rewards, out.params);
    }
  }
  return {out.advantages, out.group_mean, out.group_std};
}

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CPU, m) { m.impl("group_advantages", &group_advantages_cpu); }

}  // namespace ops

GroupAdvantages group_advantages(const at::Tensor& rewards, int64_t group_size, const GroupAdvantageOptions& options) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("grpo::group_advantages", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, int64_t, double, c10::string_view)>();
  const std::string scale = to_string(options.scale);
  auto [advantages, mean, stdev] = op.call(rewards, group_size, options.eps, scale);
  return {advantages, mean, stdev};
}

}  // namespace grpo
