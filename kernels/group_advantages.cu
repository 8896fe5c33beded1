// CUDA kernel of group_advantages: a thread per group (groups are small, G
// rewards each). With batch scaling, one block first reduces all N rewards to
// the batch std in a fixed order, then its threads take the groups.
#include "launch.h"

namespace grpo::kernels {
namespace {

constexpr int kThreads = 256;

// The sum of every thread's v over the block, returned to every thread.
template <typename A>
__device__ A block_sum(A v) {
  __shared__ A partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  const A total = partial[0];
  __syncthreads();
  return total;
}

template <typename A>
__device__ A batch_std(const GroupAdvantageParams& p) {
  A s = 0;
  for (int64_t k = threadIdx.x; k < p.N; k += kThreads) s += load<A>(p.rewards, k);
  const A mean = block_sum(s) / A(p.N);
  A sq = 0;
  for (int64_t k = threadIdx.x; k < p.N; k += kThreads) {
    const A d = load<A>(p.rewards, k) - mean;
    sq += d * d;
  }
  return bessel_std(block_sum(sq), p.N);
}

template <typename A>
__global__ void __launch_bounds__(kThreads) group_advantages_kernel(GroupAdvantageParams p) {
  const bool batch = p.scale == AdvantageScale::Batch;
  const A batch_divisor = batch ? batch_std<A>(p) : A(0);
  const int64_t P = p.N / p.G;
  const int64_t first = batch ? threadIdx.x : blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  const int64_t step = batch ? kThreads : static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t g = first; g < P; g += step) {
    const int64_t begin = g * p.G;
    const A r0 = load<A>(p.rewards, begin);
    A sum = 0;
    bool all_equal = true;
    for (int64_t k = begin; k < begin + p.G; ++k) {
      const A r = load<A>(p.rewards, k);
      sum += r;
      all_equal = all_equal && r == r0;
    }
    const A mean = sum / A(p.G);
    A sq = 0;
    for (int64_t k = begin; k < begin + p.G; ++k) {
      const A d = load<A>(p.rewards, k) - mean;
      sq += d * d;
    }
    const A stdev = all_equal ? A(0) : bessel_std(sq, p.G);
    static_cast<A*>(p.group_mean)[g] = mean;
    static_cast<A*>(p.group_std)[g] = stdev;
    const A divisor = batch ? batch_divisor : stdev;
    for (int64_t k = begin; k < begin + p.G; ++k) {
      static_cast<A*>(p.advantages)[k] =
          group_advantage(load<A>(p.rewards, k), mean, divisor, all_equal, A(p.eps), p.scale);
    }
  }
}

}  // namespace

template <typename A>
cudaError_t launch_group_advantages(const GroupAdvantageParams& p, cudaStream_t stream) {
  if (p.N == 0) return cudaSuccess;
  const int64_t P = p.N / p.G;
  const int64_t wanted = (P + kThreads - 1) / kThreads;
  const unsigned int blocks =
      p.scale == AdvantageScale::Batch ? 1u : static_cast<unsigned int>(wanted < 65535 ? wanted : 65535);
  group_advantages_kernel<A><<<blocks, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

template cudaError_t launch_group_advantages<float>(const GroupAdvantageParams&, cudaStream_t);
template cudaError_t launch_group_advantages<double>(const GroupAdvantageParams&, cudaStream_t);

}  // namespace grpo::kernels
