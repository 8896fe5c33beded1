// Reading a model's files (internal): a JSON file with errors that name it,
// and copying named tensors into a model's tensors with one error listing
// every misfit, shared by our checkpoints and Hugging Face folders.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <functional>
#include <map>
#include <string>

namespace grpo {

// The JSON in `path`; grpo::Error naming the path when it is missing or not JSON.
nlohmann::json read_json_file(const std::string& path);

// Copies every tensor of `source` into the tensor of `target` with the same
// name, converting dtype and device. Names of `source` for which `ignore`
// holds are skipped. Before anything is copied, missing, unexpected and
// mis-shaped tensors are one grpo::Error:
//   "<where>: the weights do not fit <against>:" and a line each, a mis-shaped
//   one as "tensor 'x' has shape [..], <expects> [..]".
void copy_weights(const std::map<std::string, torch::Tensor>& target, const std::map<std::string, torch::Tensor>& source,
                  const std::string& where, const std::string& against, const std::string& expects,
                  const std::function<bool(const std::string&)>& ignore = nullptr);

}  // namespace grpo
