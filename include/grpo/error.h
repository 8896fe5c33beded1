// grpo::Error: the exception for bad user input outside the tensor ops (configs,
// files, names). The tensor ops raise c10::Error (TORCH_CHECK), as LibTorch does.
#pragma once

#include <stdexcept>
#include <string>

namespace grpo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what);
};

}  // namespace grpo
