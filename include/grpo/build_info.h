// What this build of grpo was compiled with.
#pragma once

#include <string>

namespace grpo {

// The library's version, "MAJOR.MINOR.PATCH".
std::string version();
// Whether kernels/*.cu were compiled into the library (nvcc was found).
bool has_cuda_kernels();
// Whether the CUDA implementations of the ops are registered (kernels compiled
// and LibTorch built with CUDA). A GPU is still needed to run them.
bool has_cuda_ops();

}  // namespace grpo
