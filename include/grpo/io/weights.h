// Weights by name: a module's parameters and buffers to and from LibTorch
// archives, and copying named tensors into a model with one error listing
// every misfit. Used by checkpoints and by Hugging Face folders.
#pragma once

#include <torch/nn/module.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <functional>
#include <map>
#include <string>

namespace grpo {

// Every parameter and buffer of `module` by its dotted name.
std::map<std::string, torch::Tensor> named_state(torch::nn::Module& module);

// Copies every tensor of `source` into the tensor of `target` with the same
// name, converting dtype and device. Names of `source` for which `ignore`
// holds are skipped. Before anything is copied, missing, unexpected and
// mis-shaped tensors are one grpo::Error:
//   "<where>: the weights do not fit <against>:" and a line each, a mis-shaped
//   one as "tensor 'x' has shape [..], <expects> [..]".
void copy_weights(const std::map<std::string, torch::Tensor>& target, const std::map<std::string, torch::Tensor>& source,
                  const std::string& where, const std::string& against, const std::string& expects,
                  const std::function<bool(const std::string&)>& ignore = nullptr);

// `archive` serialized in memory and written to `path` atomically (files.h).
// NB: LibTorch's file writer throws from a destructor when a write fails (a
// full disk would end the process), so archives never go through it.
// `what` names the contents in errors ("the optimizer state").
void write_archive(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what);

// Writes every parameter and buffer of `module` by name to `path` (a LibTorch archive).
void save_weights(torch::nn::Module& module, const std::string& path);
// Loads weights saved by save_weights into `module`, converting dtype and device
// to the module's. Missing, unexpected and mis-shaped tensors are one grpo::Error
// listing them all, raised before any weight is changed.
void load_weights(torch::nn::Module& module, const std::string& path);

}  // namespace grpo
