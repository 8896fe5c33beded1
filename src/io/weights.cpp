// Weights by name in LibTorch archives, written atomically, and matched to a
// model's tensors with one error listing every misfit.
#include "grpo/io/weights.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "grpo/error.h"
#include "grpo/files.h"

namespace grpo {

std::map<std::string, torch::Tensor> named_state(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

namespace {
std::string shape_of(const torch::Tensor& t) { return c10::str(t.sizes()); }
}  // namespace

void write_archive(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what) {
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot serialize " + what + ": " + e.what_without_backtrace());
  }
  write_file_atomic(path, bytes.str());
}

void copy_weights(const std::map<std::string, torch::Tensor>& target, const std::map<std::string, torch::Tensor>& source,
                  const std::string& where, const std::string& against, const std::string& expects,
                  const std::function<bool(const std::string&)>& ignore) {
  std::vector<std::string> problems;
  for (const auto& [name, t] : source) {
    if (ignore && ignore(name)) continue;
    auto it = target.find(name);
    if (it == target.end()) {
      problems.push_back("unexpected tensor '" + name + "' " + shape_of(t));
    } else if (!t.sizes().equals(it->second.sizes())) {
      problems.push_back("tensor '" + name + "' has shape " + shape_of(t) + ", " + expects + " " + shape_of(it->second));
    }
  }
  for (const auto& [name, t] : target) {
    if (!source.count(name)) problems.push_back("missing tensor '" + name + "' " + shape_of(t));
  }
  if (!problems.empty()) {
    std::string msg = where + ": the weights do not fit " + against + ":";
    for (const std::string& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : target) t.copy_(source.at(name));
}

void save_weights(torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& [name, tensor] : named_state(module)) archive.write(name, tensor.detach().cpu(), /*is_buffer=*/true);
  write_archive(archive, path, "the weights");
}

void load_weights(torch::nn::Module& module, const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot read weights: " + e.what_without_backtrace());
  }
  std::map<std::string, torch::Tensor> found;
  for (const std::string& key : archive.keys()) {
    torch::Tensor t;
    if (archive.try_read(key, t)) found[key] = t;  // NB: other keys are nested module entries, not tensors
  }
  copy_weights(named_state(module), found, path, "the model", "the model expects");
}

}  // namespace grpo
