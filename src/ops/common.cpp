// Tensors to kernel views; shared argument checks.
#include "ops/common.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <vector>

namespace grpo::ops {

kernels::DType dtype_of(const at::Tensor& t, const char* what) {
  switch (t.scalar_type()) {
    case at::kFloat: return kernels::DType::Float32;
    case at::kDouble: return kernels::DType::Float64;
    case at::kHalf: return kernels::DType::Float16;
    case at::kBFloat16: return kernels::DType::BFloat16;
    case at::kBool: return kernels::DType::Bool;
    case at::kByte: return kernels::DType::UInt8;
    case at::kInt: return kernels::DType::Int32;
    case at::kLong: return kernels::DType::Int64;
    default: TORCH_CHECK(false, what, ": unsupported dtype ", t.scalar_type());
  }
  return kernels::DType::Float32;  // unreachable
}

kernels::View1D view1d(const at::Tensor& t, const char* what) {
  return {t.data_ptr(), t.stride(0), dtype_of(t, what)};
}

kernels::View2D view2d(const at::Tensor& t, const char* what) {
  return {t.data_ptr(), t.stride(0), t.stride(1), dtype_of(t, what)};
}

void check_floating(const at::Tensor& t, const char* op, const char* what) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op, ": ", what,
              " must be float32, float64, float16 or bfloat16, got ", s);
}

void check_device(const at::Tensor& t, const at::Tensor& first, const char* op, const char* what) {
  TORCH_CHECK(t.device() == first.device(), op, ": ", what, " is on ", t.device(), " but the first argument is on ",
              first.device(), "; all tensors must be on one device");
}

at::Tensor row_invariant_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const int64_t K = x.size(-1);
  const int64_t rows = K > 0 ? x.numel() / K : 0;
  const int64_t small = 8 * static_cast<int64_t>(at::get_num_threads()) + 32;
  if (rows == 0 || rows % 4 == 0 || rows >= small) return at::linear(x, weight, bias);
  const int64_t padded_rows = (rows + 3) / 4 * 4;
  const at::Tensor padded = at::cat({x.reshape({rows, K}), at::zeros({padded_rows - rows, K}, x.options())});
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  return at::linear(padded, weight, bias).narrow(0, 0, rows).reshape(sizes);
}

}  // namespace grpo::ops
