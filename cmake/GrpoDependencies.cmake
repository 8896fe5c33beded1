# The library's dependencies (also found again by grpoConfig.cmake for users).
# Sets GRPO_TORCH_HAS_CUDA when LibTorch was built with CUDA.
#
# LibTorch is the one inside the Python environment's torch wheel
# (scripts/bootstrap.sh makes it: .venv at the source root) unless Torch_DIR
# or CMAKE_PREFIX_PATH already leads to one. GRPO_PYTHON is that environment's
# interpreter; the tests also run their Python references with it.
if(EXISTS ${PROJECT_SOURCE_DIR}/.venv/bin/python)
  set(_grpo_default_python ${PROJECT_SOURCE_DIR}/.venv/bin/python)
else()
  find_program(_grpo_default_python NAMES python3)
endif()
set(GRPO_PYTHON "${_grpo_default_python}" CACHE FILEPATH "Python with torch (and the tests' references)")
# NB: a Torch_DIR that came from this environment on an earlier configure does
# not stop the lookup, so the prefix path (handed to the consumer tests) keeps it.
if(GRPO_PYTHON AND (NOT Torch_DIR OR Torch_DIR STREQUAL "${GRPO_TORCH_DIR_FROM_PYTHON}"))
  execute_process(COMMAND ${GRPO_PYTHON} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                  OUTPUT_VARIABLE _grpo_torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _grpo_torch_found ERROR_QUIET)
  if(_grpo_torch_found EQUAL 0 AND IS_DIRECTORY "${_grpo_torch_prefix}")
    list(APPEND CMAKE_PREFIX_PATH "${_grpo_torch_prefix}")
    set(GRPO_TORCH_DIR_FROM_PYTHON "${_grpo_torch_prefix}/Torch" CACHE INTERNAL "")
    # NB: TorchConfig looks for its libraries on the system paths first; this
    # keeps another LibTorch there (Debian's libtorch-dev) from being mixed in.
    get_filename_component(_grpo_torch_lib "${_grpo_torch_prefix}/../../lib" ABSOLUTE)
    foreach(_lib torch torch_cpu torch_cuda c10 c10_cuda)
      find_library(${_lib}_LIBRARY ${_lib} PATHS ${_grpo_torch_lib} NO_DEFAULT_PATH)
    endforeach()
    set(TORCH_LIBRARY ${torch_LIBRARY} CACHE FILEPATH "")
    set(C10_CUDA_LIBRARY ${c10_cuda_LIBRARY} CACHE FILEPATH "")
  endif()
endif()
# NB: Torch's CUDA set-up turns CMAKE_CUDA_ARCHITECTURES off (it warns that it
# ignores it); the kernels are built for the architectures chosen before it.
set(_grpo_cuda_architectures "${CMAKE_CUDA_ARCHITECTURES}")
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0+PTX")   # only Torch's own nvcc flags, unused here
endif()
find_package(Torch REQUIRED)
get_filename_component(GRPO_TORCH_LIBRARY_DIR "${TORCH_LIBRARY}" DIRECTORY)
if(GRPO_CUDA_KERNELS)
  set(CMAKE_CUDA_ARCHITECTURES "${_grpo_cuda_architectures}")
endif()
if(Torch_VERSION AND Torch_VERSION VERSION_LESS 2.1)
  message(FATAL_ERROR "grpo needs LibTorch >= 2.1, found ${Torch_VERSION} (scripts/bootstrap.sh installs 2.11)")
endif()
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(spdlog REQUIRED)
# PCRE2 (linked privately) runs the "regex" reward with match and depth limits.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
# SentencePiece (linked privately) reads tokenizer.model files; ICU's NFC
# normalizer serves Hugging Face tokenizers that ask for it (Qwen2).
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(ICU_UC REQUIRED IMPORTED_TARGET icu-uc)
# OpenMP makes at::parallel_for in the library's CPU loops use threads (its
# OpenMP backend is inline in the ATen headers) and enables `omp simd`.
find_package(OpenMP COMPONENTS CXX)
if(NOT OpenMP_CXX_FOUND)
  message(WARNING "OpenMP not found: the CPU ops of grpo will run on one thread")
endif()

set(GRPO_TORCH_HAS_CUDA OFF)
if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
  set(GRPO_TORCH_HAS_CUDA ON)
endif()

# Data parallel (src/train/distributed.cpp) uses LibTorch's c10d Gloo backend,
# whose header includes Gloo's headers; the torch wheel does not ship them,
# Debian's libgloo-dev does (headers only are used: Gloo's code is LibTorch's).
find_path(GRPO_GLOO_INCLUDE_DIR gloo/context.h)
if(NOT GRPO_GLOO_INCLUDE_DIR)
  message(FATAL_ERROR "Gloo's headers (gloo/context.h) not found: install libgloo-dev (scripts/bootstrap.sh does)")
endif()
# NCCL's header, for the NCCL backend of CUDA jobs.
if(GRPO_TORCH_HAS_CUDA)
  find_package(CUDAToolkit QUIET)
  find_path(GRPO_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
endif()

# NB: find_package's imported targets (torch, torch_cpu, Eigen3::Eigen, ...) are
# visible only in this directory; a project that adds grpo with add_subdirectory
# links grpo::grpo from its own directory, so they are made global there.
if(NOT CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR)
  if(CMAKE_VERSION VERSION_LESS 3.21)
    message(FATAL_ERROR "adding grpo with add_subdirectory needs CMake >= 3.21, found ${CMAKE_VERSION}")
  endif()
  get_property(_grpo_imported DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR} PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _grpo_imported)
    get_target_property(_global ${_target} IMPORTED_GLOBAL)
    if(NOT _global)
      set_target_properties(${_target} PROPERTIES IMPORTED_GLOBAL TRUE)
    endif()
  endforeach()
endif()
