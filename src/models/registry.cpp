// The model registry and the list of built-in architectures.
#include "grpo/models/registry.h"

#include <algorithm>

#include "grpo/error.h"
#include "grpo/models/transformer.h"
#include "json_fields.h"

namespace grpo {

ModelRegistry& ModelRegistry::global() {
  static ModelRegistry* registry = [] {
    auto* r = new ModelRegistry();
    register_builtin_models(*r);
    return r;
  }();
  return *registry;
}

void ModelRegistry::register_architecture(const std::string& name, ModelArchitecture architecture) {
  if (name.empty()) throw Error("ModelRegistry: an architecture needs a name");
  if (!architecture.create) throw Error("ModelRegistry: architecture \"" + name + "\" has no create function");
  if (!architecture.hf_names.empty() && !architecture.config_from_hf) {
    throw Error("ModelRegistry: architecture \"" + name + "\" reads Hugging Face configs but has no config_from_hf");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (architectures_.count(name)) throw Error("ModelRegistry: architecture \"" + name + "\" is already registered");
  for (const auto& [other, a] : architectures_) {
    for (const std::string& hf : architecture.hf_names) {
      if (std::find(a.hf_names.begin(), a.hf_names.end(), hf) != a.hf_names.end()) {
        throw Error("ModelRegistry: Hugging Face name \"" + hf + "\" is already read by \"" + other + "\"");
      }
    }
  }
  architectures_.emplace(name, std::move(architecture));
}

bool ModelRegistry::contains(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return architectures_.count(name) > 0;
}

std::vector<std::string> ModelRegistry::names() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, a] : architectures_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<CausalLM> ModelRegistry::create(const std::string& name, const nlohmann::json& config,
                                                bool initialize, const std::string& where) const {
  ModelArchitecture architecture;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = architectures_.find(name);
    if (it != architectures_.end()) architecture = it->second;
  }
  if (!architecture.create) {
    throw Error(where + ": unknown model type \"" + name + "\" (known: " + json_fields::list(names()) + ")");
  }
  return architecture.create(config, initialize, where);
}

std::pair<std::string, ModelArchitecture> ModelRegistry::for_hf_config(const nlohmann::json& hf_config,
                                                                       const std::string& where) const {
  const std::string key = hf_architecture_name(hf_config, where);
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> known;
  for (const auto& [name, a] : architectures_) {
    for (const std::string& hf : a.hf_names) {
      if (hf == key) return {name, a};
      if (hf.find("For") != std::string::npos) known.push_back(hf);
    }
  }
  std::sort(known.begin(), known.end());
  throw Error(where + ": architecture \"" + key + "\" is not supported (known: " + json_fields::list(known) + ")");
}

std::string hf_architecture_name(const nlohmann::json& hf_config, const std::string& where) {
  if (!hf_config.is_object()) throw Error(where + ": expected a JSON object");
  if (hf_config.contains("architectures")) {
    const auto& a = hf_config["architectures"];
    if (!a.is_array() || a.size() != 1 || !a[0].is_string()) {
      throw Error(where + ": \"architectures\" must be a list of one name, got " + a.dump());
    }
    return a[0].get<std::string>();
  }
  if (hf_config.contains("model_type") && hf_config["model_type"].is_string()) {
    return hf_config["model_type"].get<std::string>();
  }
  return "";
}

void register_builtin_models(ModelRegistry& registry) { register_transformer(registry); }

}  // namespace grpo
