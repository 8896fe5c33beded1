// Glue shared by the ops' CPU and CUDA paths: tensors to kernel views, and the
// checks every op makes on its arguments. Internal to the library.
#pragma once

#include <ATen/core/Tensor.h>

#include "tensor_view.cuh"

namespace grpo::ops {

// The kernel dtype tag of a tensor; raises naming `what` for unsupported types.
kernels::DType dtype_of(const at::Tensor& t, const char* what);
kernels::View1D view1d(const at::Tensor& t, const char* what);
kernels::View2D view2d(const at::Tensor& t, const char* what);

// `t` is floating point (float32/float64/float16/bfloat16); `what` names it.
void check_floating(const at::Tensor& t, const char* op, const char* what);
// `t` is on the device of `first`, the op's first tensor argument; `what` names t.
void check_device(const at::Tensor& t, const at::Tensor& first, const char* op, const char* what);

}  // namespace grpo::ops
