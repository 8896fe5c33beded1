// grpo_loss on the CPU: rows in parallel (at::parallel_for), and within a row a
// branch-free loop over contiguous arrays that the compiler vectorizes, built
// for baseline x86-64, AVX2 and AVX-512 and picked at load time. The per-token
// math is kernels/grpo_loss_math.cuh, the same the CUDA kernel runs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "ops/grpo_loss_impl.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
// NB: one copy per instruction set, chosen once by the dynamic loader (ifunc).
#define GRPO_CPU_VARIANTS __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4"), flatten))
#define GRPO_ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(__x86_64__) && defined(__clang__) && __clang_major__ >= 14
// clang does not combine target_clones with flatten; the helpers inline anyway.
#define GRPO_CPU_VARIANTS __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#define GRPO_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define GRPO_CPU_VARIANTS
#define GRPO_ALWAYS_INLINE inline
#endif

namespace grpo::ops {
namespace {

using kernels::kNumRowSums;

template <typename A>
constexpr kernels::DType dtype_tag = std::is_same_v<A, double> ? kernels::DType::Float64 : kernels::DType::Float32;

// out[t] = convert(row[t · stride]) for t < T: one loop per element type, so
// that the conversion vectorizes.
template <typename A, typename E, typename Convert>
void convert_row(const void* row, int64_t stride, int64_t T, A* out, Convert convert) {
  const E* in = static_cast<const E*>(row);
  for (int64_t t = 0; t < T; ++t) out[t] = static_cast<A>(convert(in[t * stride]));
}

// Row i of a (N, T) view as T contiguous values of type A: the tensor's own
// memory when it already is that, else converted into `buffer`.
template <typename A>
const A* row_of(const kernels::View2D& v, int64_t i, int64_t T, std::vector<A>& buffer) {
  if (v.dtype == dtype_tag<A> && (v.stride1 == 1 || T == 1)) return static_cast<const A*>(v.data) + i * v.stride0;
  buffer.resize(T);
  const void* row = static_cast<const char*>(v.data) + i * v.stride0 * kernels::element_size(v.dtype);
  auto same = [](auto x) { return x; };
  switch (v.dtype) {
    case kernels::DType::Float32: convert_row<A, float>(row, v.stride1, T, buffer.data(), same); break;
    case kernels::DType::Float64: convert_row<A, double>(row, v.stride1, T, buffer.data(), same); break;
    case kernels::DType::BFloat16:
      convert_row<A, uint16_t>(row, v.stride1, T, buffer.data(), kernels::bfloat16_to_float);
      break;
    case kernels::DType::Float16:
      convert_row<A, uint16_t>(row, v.stride1, T, buffer.data(), kernels::half_to_float);
      break;
    case kernels::DType::Bool:
    case kernels::DType::UInt8: convert_row<A, uint8_t>(row, v.stride1, T, buffer.data(), same); break;
    case kernels::DType::Int32: convert_row<A, int32_t>(row, v.stride1, T, buffer.data(), same); break;
    case kernels::DType::Int64: convert_row<A, int64_t>(row, v.stride1, T, buffer.data(), same); break;
  }
  return buffer.data();
}

// One row, already contiguous: writes grad[0, T) and the row's sums to `sums`.
// kSequence (GSPO) is a template argument: a run-time flag in the loop body
// stops GCC from vectorizing it.
template <typename A, bool kSequence>
GRPO_ALWAYS_INLINE void loss_row(const kernels::GrpoLossParams& p, const A* mask, const A* logp, const A* old,
                                 const A* ref, const A* adv, A* grad, A* sums) {
  const kernels::TokenConstants<A> c(p);
  const int64_t T = p.T;
  A tokens = 0, log_ratio_sum = 0;
#pragma omp simd reduction(+ : tokens, log_ratio_sum)
  for (int64_t t = 0; t < T; ++t) {
    tokens += mask[t] == A(1) ? A(1) : A(0);
    log_ratio_sum += mask[t] == A(1) ? logp[t] - old[t] : A(0);
  }
  const A seq_log_ratio = kernels::sequence_log_ratio(log_ratio_sum, tokens);
  const A weight = kernels::row_weight(tokens, p.loss_type);

  // NB: one scalar per sum, as `omp simd` vectorizes scalar reductions reliably.
  A loss = 0, kl = 0, clip_low = 0, clip_high = 0, clip_region = 0, ratio = 0, count = 0, invalid = 0, bad_adv = 0;
#pragma omp simd reduction(+ : loss, kl, clip_low, clip_high, clip_region, ratio, count, invalid, bad_adv)
  for (int64_t t = 0; t < T; ++t) {
    const kernels::TokenInputs<A> in = kernels::token_inputs(mask[t], logp[t], old[t], ref[t]);
    const A log_ratio = kSequence ? seq_log_ratio : in.logp - in.old_logp;
    bad_adv += adv[t] - adv[t] != A(0) ? A(1) : A(0);  // NB: NaN for NaN and ±inf
    const kernels::TokenTerms<A> k = kernels::grpo_token(log_ratio, adv[t], in.logp, in.ref_logp, c);
    const kernels::TokenSums<A> d = kernels::token_sums(in, k, weight);
    loss += d.weighted_loss, kl += d.kl, clip_low += d.clip_low, clip_high += d.clip_high;
    clip_region += d.clip_region, ratio += d.ratio, count += d.tokens, invalid += d.invalid;
    grad[t] = in.on * weight * k.dlogp;
  }
  sums[kernels::kWeightedLoss] = loss;
  sums[kernels::kKlSum] = kl;
  sums[kernels::kClipLow] = clip_low;
  sums[kernels::kClipHigh] = clip_high;
  sums[kernels::kClipRegion] = clip_region;
  sums[kernels::kRatioSum] = ratio;
  sums[kernels::kTokenCount] = count;
  sums[kernels::kInvalid] = invalid + bad_adv;
}

// Rows [begin, end): their sums into row_sums (kNumRowSums per row) and, when
// p.grad is set, their gradient.
template <typename A>
inline void loss_rows(const kernels::GrpoLossParams& p, int64_t begin, int64_t end, A* row_sums) {
  const int64_t T = p.T;
  std::vector<A> mask_buf, logp_buf, old_buf, ref_buf, adv_buf, scratch;
  for (int64_t i = begin; i < end; ++i) {
    const A* mask = row_of<A>(p.mask, i, T, mask_buf);
    const A* logp = row_of<A>(p.logp, i, T, logp_buf);
    // Absent inputs alias logp: a ratio of 1, and a KL term that beta = 0 drops.
    const A* old = p.has_old ? row_of<A>(p.old_logp, i, T, old_buf) : logp;
    const A* ref = p.beta != 0.0 ? row_of<A>(p.ref_logp, i, T, ref_buf) : logp;
    A* grad = static_cast<A*>(p.grad);
    if (grad == nullptr) scratch.resize(T);
    A* grad_row = grad ? grad + i * T : scratch.data();
    const A* adv = row_of<A>(p.advantages, i, T, adv_buf);
    A* sums = row_sums + i * kNumRowSums;
    if (p.sequence_level) {
      loss_row<A, true>(p, mask, logp, old, ref, adv, grad_row, sums);
    } else {
      loss_row<A, false>(p, mask, logp, old, ref, adv, grad_row, sums);
    }
  }
}

GRPO_CPU_VARIANTS void loss_rows_float(const kernels::GrpoLossParams& p, int64_t begin, int64_t end, float* sums) {
  loss_rows<float>(p, begin, end, sums);
}
void loss_rows_double(const kernels::GrpoLossParams& p, int64_t begin, int64_t end, double* sums) {
  loss_rows<double>(p, begin, end, sums);
}

template <typename A>
void forward_rows(PreparedLoss& out, void (*rows_fn)(const kernels::GrpoLossParams&, int64_t, int64_t, A*)) {
  const kernels::GrpoLossParams& p = out.params;
  // Per-row sums first, added in row order after: the result does not depend on the thread count.
  std::vector<A> row_sums(static_cast<size_t>(p.N) * kNumRowSums);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.T, 1));
  at::parallel_for(0, p.N, grain, [&](int64_t begin, int64_t end) { rows_fn(p, begin, end, row_sums.data()); });
  double sums[kNumRowSums] = {};
  for (int64_t i = 0; i < p.N; ++i) {
    for (int k = 0; k < kNumRowSums; ++k) sums[k] += static_cast<double>(row_sums[i * kNumRowSums + k]);
  }
  write_totals(sums, out);
}

ForwardResult grpo_loss_forward_cpu(const LossArgs& a, bool compute_grad) {
  PreparedLoss p = prepare_grpo_loss(a, compute_grad);
  if (!p.empty) {
    if (p.loss.scalar_type() == at::kDouble) {
      forward_rows<double>(p, &loss_rows_double);
    } else {
      forward_rows<float>(p, &loss_rows_float);
    }
  }
  return finish_grpo_loss(a, p);
}

at::Tensor grpo_loss_backward_cpu(const at::Tensor& grad_loss, const at::Tensor& grad_logp,
                                  const at::Tensor& grad_scale, at::ScalarType dtype) {
  return (grad_logp * (grad_loss.to(grad_logp.scalar_type()) * grad_scale)).to(dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CPU, m) {
  m.impl("_grpo_loss_forward", &grpo_loss_forward_kernel<&grpo_loss_forward_cpu>);
  m.impl("_grpo_loss_backward", &grpo_loss_backward_cpu);
}

}  // namespace grpo::ops
