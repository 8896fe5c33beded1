// group_advantages on CUDA: the shared checks, then kernels/group_advantages.cu
// on the current stream. Compiled only where LibTorch has CUDA.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <type_traits>

#include "launch.h"
#include "ops/group_advantages_impl.h"

namespace grpo::ops {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_advantages_cuda(const at::Tensor& rewards, int64_t group_size,
                                                                     double eps, c10::string_view scale) {
  const c10::cuda::CUDAGuard guard(rewards.device());
  PreparedAdvantages out = prepare_group_advantages(rewards, group_size, eps, scale);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  if (out.advantages.scalar_type() == at::kDouble) {
    C10_CUDA_CHECK(kernels::launch_group_advantages<double>(out.params, stream));
  } else {
    C10_CUDA_CHECK(kernels::launch_group_advantages<float>(out.params, stream));
  }
  return {out.advantages, out.group_mean, out.group_std};
}

static_assert(std::is_same_v<decltype(group_advantages_cuda), GroupAdvantagesSignature>);

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CUDA, m) { m.impl("group_advantages", &group_advantages_cuda); }

}  // namespace grpo::ops
