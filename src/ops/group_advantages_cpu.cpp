// group_advantages on the CPU: the shared checks, then the formula of
// kernels/group_advantages_math.cuh over Eigen maps of the tensor data.
// Shapes: N rewards = P groups of G.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <Eigen/Core>

#include <type_traits>

#include "ops/group_advantages_impl.h"

namespace grpo::ops {

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
  if (p.scale == AdvantageScale::Batch) {
    const Eigen::Map<const Row> all(r.data_ptr<A>(), p.N);
    batch_std = kernels::bessel_std((all - all.mean()).square().sum(), p.N);
  }
  for (int64_t g = 0; g < P; ++g) {
    const A divisor = p.scale == AdvantageScale::Batch ? batch_std : stdev(g);
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

static_assert(std::is_same_v<decltype(group_advantages_cpu), GroupAdvantagesSignature>);

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CPU, m) { m.impl("group_advantages", &group_advantages_cpu); }

}  // namespace grpo::ops
