// Internal: what the CPU (grpo_loss_cpu.cpp) and CUDA (grpo_loss_cuda.cpp)
// paths of the fused GRPO loss share with grpo_loss.cpp: the dispatcher
// signatures, the arguments, their checks, output allocation, and turning the
// kernel's output into the op's results. Shapes: N sequences, T completion tokens.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <c10/util/string_view.h>

#include <tuple>
#include <type_traits>

#include "grpo/ops/grpo_loss.h"
#include "grpo_loss_math.cuh"

namespace grpo::ops {

// The dispatcher signatures (the schemas are in src/ops/registration.cpp):
// grpo_loss's, and its fused forward's, which adds compute_grad and returns
// (loss, stats, grad_logp, grad_scale). Every definition and call below is
// checked against these two.
using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using GrpoLossSignature = std::tuple<at::Tensor, at::Tensor>(
    const at::Tensor& logp, const c10::optional<at::Tensor>& old_logp, const c10::optional<at::Tensor>& ref_logp,
    const at::Tensor& advantages, const at::Tensor& mask, double epsilon_low, double epsilon_high,
    c10::optional<double> delta, double beta, c10::string_view loss_type, int64_t max_completion_length,
    double normalizer, c10::string_view importance_sampling, double log_ratio_clamp, double kl_clamp,
    bool check_inputs);
using ForwardSignature = ForwardResult(
    const at::Tensor& logp, const c10::optional<at::Tensor>& old_logp, const c10::optional<at::Tensor>& ref_logp,
    const at::Tensor& advantages, const at::Tensor& mask, double epsilon_low, double epsilon_high,
    c10::optional<double> delta, double beta, c10::string_view loss_type, int64_t max_completion_length,
    double normalizer, c10::string_view importance_sampling, double log_ratio_clamp, double kl_clamp,
    bool check_inputs, bool compute_grad);

// The op's arguments: the tensors and the options, the names parsed once.
struct LossArgs {
  at::Tensor logp;                      // (N, T)
  c10::optional<at::Tensor> old_logp;   // (N, T)
  c10::optional<at::Tensor> ref_logp;   // (N, T)
  at::Tensor advantages;                // (N)
  at::Tensor mask;                      // (N, T)
  GrpoLossOptions options;
};

// GrpoLossOptions::delta as the dispatcher takes it.
c10::optional<double> c10_delta(const GrpoLossOptions& o);

// LossArgs from the dispatcher's arguments; raises c10::Error on an unknown name.
LossArgs make_loss_args(const at::Tensor& logp, const c10::optional<at::Tensor>& old_logp,
                        const c10::optional<at::Tensor>& ref_logp, const at::Tensor& advantages,
                        const at::Tensor& mask, double epsilon_low, double epsilon_high, c10::optional<double> delta,
                        double beta, c10::string_view loss_type, int64_t max_completion_length, double normalizer,
                        c10::string_view importance_sampling, double log_ratio_clamp, double kl_clamp,
                        bool check_inputs);

struct PreparedLoss {
  kernels::GrpoLossParams params;  // views of the arguments; grad points into `grad`
  at::Tensor loss;                 // () accumulation dtype
  at::Tensor stats;                // (kNumStats) accumulation dtype
  at::Tensor grad_scale;           // () dloss/dlogp = grad_scale · grad
  at::Tensor grad;                 // (N, T) accumulation dtype, or empty when no gradient is wanted
  bool empty = false;              // no rows or no tokens: nothing to launch
};

// Validates (raising c10::Error that names the bad argument) and allocates.
PreparedLoss prepare_grpo_loss(const LossArgs& a, bool compute_grad);

// Fills the loss, its statistics and the gradient scale from the batch's sums
// (kNumRowSums, accumulated in a fixed order), on the host.
void write_totals(const double* sums, PreparedLoss& out);

// After the kernel wrote loss, stats and grad_scale: raises on invalid values
// when asked to, and splits the output into (loss, stats, grad_logp, grad_scale).
ForwardResult finish_grpo_loss(const LossArgs& a, const PreparedLoss& p);

// A dispatcher kernel for _grpo_loss_forward around Impl(args, compute_grad).
template <ForwardResult (*Impl)(const LossArgs&, bool)>
ForwardResult grpo_loss_forward_kernel(const at::Tensor& logp, const c10::optional<at::Tensor>& old_logp,
                                       const c10::optional<at::Tensor>& ref_logp, const at::Tensor& advantages,
                                       const at::Tensor& mask, double epsilon_low, double epsilon_high,
                                       c10::optional<double> delta, double beta, c10::string_view loss_type,
                                       int64_t max_completion_length, double normalizer,
                                       c10::string_view importance_sampling, double log_ratio_clamp,
                                       double kl_clamp, bool check_inputs, bool compute_grad) {
  static_assert(std::is_same_v<decltype(grpo_loss_forward_kernel<Impl>), ForwardSignature>);
  return Impl(make_loss_args(logp, old_logp, ref_logp, advantages, mask, epsilon_low, epsilon_high, delta, beta,
                             loss_type, max_completion_length, normalizer, importance_sampling, log_ratio_clamp,
                             kl_clamp, check_inputs),
              compute_grad);
}

}  // namespace grpo::ops
