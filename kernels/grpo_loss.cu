// CUDA kernels of the fused GRPO loss. Forward: one launch; a block per row
// (grid-stride over rows) runs the per-token math of grpo_loss_math.cuh with
// its threads striding over the tokens, blocks leave their sums in a workspace, and the last block to finish
// adds them in block order (deterministic) and writes loss, stats and scale.
// Backward: one elementwise launch scaling the saved gradient.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "launch.h"

namespace grpo::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kMaxBlocks = 2048;

int64_t forward_blocks(const GrpoLossParams& p) { return p.N < kMaxBlocks ? p.N : kMaxBlocks; }

template <typename A, int K>
struct Sums {
  A v[K];
};

// The sum of every thread's `s`, returned to every thread of the block.
template <typename A, int K>
__device__ Sums<A, K> block_sum(const Sums<A, K>& s) {
  __shared__ A warp_sums[K][kWarps];
  __shared__ A total[K];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    A v = s.v[k];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) warp_sums[k][warp] = v;
  }
  __syncthreads();
  if (threadIdx.x < K) {
    A v = 0;
    for (int w = 0; w < kWarps; ++w) v += warp_sums[threadIdx.x][w];
    total[threadIdx.x] = v;
  }
  __syncthreads();
  Sums<A, K> out;
#pragma unroll
  for (int k = 0; k < K; ++k) out.v[k] = total[k];
  // NB: the shared buffers are reused by the next call; nobody may still be reading them.
  __syncthreads();
  return out;
}

// Row i with the block's threads striding over its tokens; returns the row's
// sums to every thread and writes its gradient when p.grad is set.
template <typename A>
__device__ Sums<A, kNumRowSums> loss_row(const GrpoLossParams& p, const TokenConstants<A>& c, int64_t i) {
  Sums<A, 2> pre = {};  // tokens, Σ (logp - old_logp) over them
  for (int64_t t = threadIdx.x; t < p.T; t += blockDim.x) {
    if (load<A>(p.mask, i, t) != A(1)) continue;
    pre.v[0] += A(1);
    if (p.sequence_level && p.has_old) pre.v[1] += load<A>(p.logp, i, t) - load<A>(p.old_logp, i, t);
  }
  pre = block_sum(pre);
  const A seq_log_ratio = sequence_log_ratio(pre.v[1], pre.v[0]);
  const A weight = row_weight(pre.v[0], p.loss_type);
  A* grad = static_cast<A*>(p.grad);

  Sums<A, kNumRowSums> acc = {};
  for (int64_t t = threadIdx.x; t < p.T; t += blockDim.x) {
    const A logp = load<A>(p.logp, i, t);
    // Absent inputs read as logp: a ratio of 1, and a KL term that beta = 0 drops.
    const TokenInputs<A> in = token_inputs(load<A>(p.mask, i, t), logp, p.has_old ? load<A>(p.old_logp, i, t) : logp,
                                           p.beta != 0.0 ? load<A>(p.ref_logp, i, t) : logp);
    const A log_ratio = p.sequence_level ? seq_log_ratio : in.logp - in.old_logp;
    const A adv = load<A>(p.advantages, i, t);
    if (!is_finite(adv)) acc.v[kInvalid] += A(1);
    const TokenTerms<A> k = grpo_token(log_ratio, adv, in.logp, in.ref_logp, c);
    add_token_sums(acc.v, token_sums(in, k, weight));
    if (grad) grad[i * p.T + t] = in.on * weight * k.dlogp;
  }
  return block_sum(acc);
}

template <typename A>
__global__ void __launch_bounds__(kThreads)
    grpo_loss_forward_kernel(GrpoLossParams p, A* loss, A* grad_scale, A* stats, double* partials,
                             unsigned int* blocks_done) {
  const TokenConstants<A> c(p);
  double block_total[kNumRowSums] = {};  // meaningful in thread 0
  for (int64_t i = blockIdx.x; i < p.N; i += gridDim.x) {
    const Sums<A, kNumRowSums> row = loss_row<A>(p, c, i);
    for (int k = 0; k < kNumRowSums; ++k) block_total[k] += static_cast<double>(row.v[k]);
  }

  __shared__ bool is_last;
  if (threadIdx.x == 0) {
    for (int k = 0; k < kNumRowSums; ++k) partials[blockIdx.x * kNumRowSums + k] = block_total[k];
    __threadfence();  // NB: the partials must be visible before the count says they are there
    is_last = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!is_last) return;

  __shared__ double sums[kNumRowSums];
  if (threadIdx.x < kNumRowSums) {
    double s = 0;
    for (unsigned int b = 0; b < gridDim.x; ++b) s += __ldcg(&partials[b * kNumRowSums + threadIdx.x]);
    sums[threadIdx.x] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const LossTotals t = finalize_loss(sums, p);
    *loss = static_cast<A>(t.loss);
    *grad_scale = static_cast<A>(t.grad_scale);
    for (int k = 0; k < kNumStats; ++k) stats[k] = static_cast<A>(t.stats[k]);
  }
}

__device__ __forceinline__ void store(void* out, int64_t k, DType dtype, float v) {
  switch (dtype) {
    case DType::Float16: static_cast<__half*>(out)[k] = __float2half_rn(v); break;
    case DType::BFloat16: static_cast<__nv_bfloat16*>(out)[k] = __float2bfloat16_rn(v); break;
    case DType::Float64: static_cast<double*>(out)[k] = v; break;
    default: static_cast<float*>(out)[k] = v; break;
  }
}
__device__ __forceinline__ void store(void* out, int64_t k, DType, double v) { static_cast<double*>(out)[k] = v; }

template <typename A>
__global__ void grpo_loss_backward_kernel(const A* grad, const A* grad_loss, const A* grad_scale, int64_t n,
                                          void* grad_logp, DType out_dtype) {
  const A scale = *grad_loss * *grad_scale;
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    store(grad_logp, k, out_dtype, grad[k] * scale);
  }
}

}  // namespace

size_t grpo_loss_workspace_bytes(const GrpoLossParams& p) {
  return static_cast<size_t>(forward_blocks(p)) * kNumRowSums * sizeof(double) + sizeof(double);
}

template <typename A>
cudaError_t launch_grpo_loss_forward(const GrpoLossParams& p, A* loss, A* grad_scale, A* stats, void* workspace,
                                     cudaStream_t stream) {
  const int64_t blocks = forward_blocks(p);
  if (blocks == 0) return cudaSuccess;
  double* partials = static_cast<double*>(workspace);
  auto* blocks_done = reinterpret_cast<unsigned int*>(partials + blocks * kNumRowSums);
  cudaError_t err = cudaMemsetAsync(blocks_done, 0, sizeof(unsigned int), stream);
  if (err != cudaSuccess) return err;
  grpo_loss_forward_kernel<A><<<static_cast<unsigned int>(blocks), kThreads, 0, stream>>>(p, loss, grad_scale, stats,
                                                                                        partials, blocks_done);
  return cudaGetLastError();
}

template <typename A>
cudaError_t launch_grpo_loss_backward(const A* grad, const A* grad_loss, const A* grad_scale, int64_t n,
                                      void* grad_logp, DType out_dtype, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int64_t wanted = (n + kThreads - 1) / kThreads;
  const unsigned int blocks = static_cast<unsigned int>(wanted < 65535 * 8 ? wanted : 65535 * 8);
  grpo_loss_backward_kernel<A><<<blocks, kThreads, 0, stream>>>(grad, grad_loss, grad_scale, n, grad_logp, out_dtype);
  return cudaGetLastError();
}

template cudaError_t launch_grpo_loss_forward<float>(const GrpoLossParams&, float*, float*, float*, void*,
                                                     cudaStream_t);
template cudaError_t launch_grpo_loss_forward<double>(const GrpoLossParams&, double*, double*, double*, void*,
                                                      cudaStream_t);
template cudaError_t launch_grpo_loss_backward<float>(const float*, const float*, const float*, int64_t, void*, DType,
                                                      cudaStream_t);
template cudaError_t launch_grpo_loss_backward<double>(const double*, const double*, const double*, int64_t, void*,
                                                       DType, cudaStream_t);

}  // namespace grpo::kernels
