// What the library says about its build: the CUDA kernels are there exactly when
// CMake compiled them (GRPO_TEST_EXPECT_CUDA_KERNELS, 0/1, set by tests/CMakeLists.txt).
#include <grpo/build_info.h>

#include <regex>

#include "ops/reference.h"

#ifndef GRPO_TEST_EXPECT_CUDA_KERNELS
#error "tests/CMakeLists.txt defines GRPO_TEST_EXPECT_CUDA_KERNELS"
#endif

namespace {

TEST(BuildInfo, CudaKernelsAsConfigured) {
  EXPECT_EQ(grpo::has_cuda_kernels(), GRPO_TEST_EXPECT_CUDA_KERNELS != 0);
}

TEST(BuildInfo, CudaOpsNeedTheKernels) {
  if (grpo::has_cuda_ops()) {
    EXPECT_TRUE(grpo::has_cuda_kernels());
  }
}

TEST(BuildInfo, VersionIsMajorMinorPatch) {
  const std::string v = grpo::version();
  EXPECT_FALSE(v.empty());
  EXPECT_TRUE(std::regex_match(v, std::regex(R"(\d+\.\d+\.\d+)"))) << v;
}

}  // namespace
