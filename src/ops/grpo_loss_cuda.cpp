// grpo_loss on CUDA: the shared checks, then kernels/grpo_loss.cu on the
// current stream. Compiled only where LibTorch has CUDA.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "launch.h"
#include "ops/common.h"
#include "ops/grpo_loss_impl.h"

namespace grpo::ops {
namespace {

template <typename A>
void launch_forward(PreparedLoss& p, cudaStream_t stream) {
  const at::Tensor workspace = at::empty({static_cast<int64_t>(kernels::grpo_loss_workspace_bytes(p.params))},
                                         p.loss.options().dtype(at::kByte));
  C10_CUDA_CHECK(kernels::launch_grpo_loss_forward<A>(p.params, p.loss.data_ptr<A>(), p.grad_scale.data_ptr<A>(),
                                                      p.stats.data_ptr<A>(), workspace.data_ptr(), stream));
}

ForwardResult grpo_loss_forward_cuda(const LossArgs& a, bool compute_grad) {
  const c10::cuda::CUDAGuard guard(a.logp.device());
  PreparedLoss p = prepare_grpo_loss(a, compute_grad);
  if (!p.empty) {
    const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    if (p.loss.scalar_type() == at::kDouble) {
      launch_forward<double>(p, stream);
    } else {
      launch_forward<float>(p, stream);
    }
  }
  return finish_grpo_loss(a, p);
}

template <typename A>
at::Tensor launch_backward(const at::Tensor& grad_loss, const at::Tensor& grad, const at::Tensor& grad_scale,
                           at::ScalarType dtype) {
  at::Tensor out = at::empty(grad.sizes(), grad.options().dtype(dtype));
  const at::Tensor g = grad.contiguous();
  const at::Tensor gl = grad_loss.to(grad.scalar_type());
  C10_CUDA_CHECK(kernels::launch_grpo_loss_backward<A>(g.data_ptr<A>(), gl.data_ptr<A>(), grad_scale.data_ptr<A>(),
                                                       g.numel(), out.data_ptr(), dtype_of(out, "grad_logp"),
                                                       at::cuda::getCurrentCUDAStream()));
  return out;
}

at::Tensor grpo_loss_backward_cuda(const at::Tensor& grad_loss, const at::Tensor& grad_logp,
                                   const at::Tensor& grad_scale, at::ScalarType dtype) {
  const c10::cuda::CUDAGuard guard(grad_logp.device());
  TORCH_CHECK(grad_logp.scalar_type() == grad_scale.scalar_type(), "grpo_loss backward: saved tensors disagree");
  return grad_logp.scalar_type() == at::kDouble ? launch_backward<double>(grad_loss, grad_logp, grad_scale, dtype)
                                                : launch_backward<float>(grad_loss, grad_logp, grad_scale, dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CUDA, m) {
  m.impl("_grpo_loss_forward", &grpo_loss_forward_kernel<&grpo_loss_forward_cuda>);
  m.impl("_grpo_loss_backward", &grpo_loss_backward_cuda);
}

}  // namespace grpo::ops
