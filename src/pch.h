// Precompiled header for the library's translation units: the LibTorch parts they share.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/csrc/autograd/custom_function.h>
