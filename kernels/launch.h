// Host-side entry points of the CUDA kernels (kernels/*.cu). Each launches on
// the given stream and returns the launch status; the caller checks it.
// Included by the CUDA glue (src/ops/*_cuda.cpp) and the kernels that define them.
#pragma once

#include <cuda_runtime_api.h>

#include "group_advantages_math.cuh"
#include "grpo_loss_math.cuh"

namespace grpo::kernels {

// Writes p.advantages, p.group_mean and p.group_std (type A).
template <typename A>
cudaError_t launch_group_advantages(const GroupAdvantageParams& p, cudaStream_t stream);

// Bytes of device workspace launch_grpo_loss_forward needs for p.
size_t grpo_loss_workspace_bytes(const GrpoLossParams& p);

// Writes *loss, *grad_scale, stats[0 .. kNumStats) and p.grad (when set).
// `workspace` holds grpo_loss_workspace_bytes(p) bytes of device memory,
// 8-byte aligned. N = 0 launches nothing.
template <typename A>
cudaError_t launch_grpo_loss_forward(const GrpoLossParams& p, A* loss, A* grad_scale, A* stats, void* workspace,
                                     cudaStream_t stream);

// grad_logp[k] = grad[k] · grad_loss[0] · grad_scale[0] for k < n, converted to
// `out_dtype` (Float32, Float64, Float16 or BFloat16).
template <typename A>
cudaError_t launch_grpo_loss_backward(const A* grad, const A* grad_loss, const A* grad_scale, int64_t n,
                                      void* grad_logp, DType out_dtype, cudaStream_t stream);

}  // namespace grpo::kernels
