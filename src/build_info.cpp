// What this build was compiled with (values from the generated config_build.h).
#include "grpo/build_info.h"

#include "grpo/config_build.h"

namespace grpo {

std::string version() { return GRPO_VERSION_STRING; }
bool has_cuda_kernels() { return GRPO_CUDA_KERNELS; }
bool has_cuda_ops() { return GRPO_CUDA_OPS; }

}  // namespace grpo
