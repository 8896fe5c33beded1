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

// x (..., K) · weightᵀ + bias (bias may be undefined) such that each output
// row is what any call holding that row computes, whatever the number of rows:
// MKL's CPU sgemm takes other paths (matrix-vector kernels, work split over
// threads) for a few rows whose count is not a multiple of 4, and those sum in
// another order; so a call of few rows is first padded with zero rows to a
// multiple of 4 (measured for 1 to 16 threads: 4·k rows always agree, and any
// count from 8·threads + 32 on). Decoding multiplies a few rows at a time,
// scoring thousands; tests/rollout/test_policy_transformer.cpp checks the
// whole model end to end.
at::Tensor row_invariant_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = at::Tensor());

}  // namespace grpo::ops
