# The library's dependencies (also found again by grpoConfig.cmake for users).
# Sets GRPO_TORCH_HAS_CUDA when LibTorch was built with CUDA.
find_package(Torch REQUIRED)
if(Torch_VERSION AND Torch_VERSION VERSION_LESS 1.13)
  message(FATAL_ERROR "grpo needs LibTorch >= 1.13, found ${Torch_VERSION}")
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
