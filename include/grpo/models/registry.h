// Model architectures by name. A registered architecture builds a CausalLM
// from its JSON config, which is what a checkpoint's model.json records
// (CausalLM::architecture()), and may read Hugging Face config.json files of
// some model_types. Adding an architecture is one register_architecture call;
// checkpoints, Hugging Face folders and the trainer then load it by name.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "grpo/models/causal_lm.h"

namespace grpo {

struct ModelArchitecture {
  // The network `config` describes, float32 on the CPU. With initialize =
  // false its weights are left undrawn (contents unspecified) for a loader
  // that overwrites every one; true draws them from LibTorch's global
  // generator. Raises grpo::Error naming the bad key under `where`.
  std::function<std::shared_ptr<CausalLM>(const nlohmann::json& config, bool initialize, const std::string& where)>
      create;
  // The Hugging Face names this architecture reads: config.json model_type
  // values ("llama") and architecture class names ("LlamaForCausalLM"); empty = none.
  std::vector<std::string> hf_names;
  // This architecture's config from a Hugging Face config.json (required when
  // hf_names is not empty); errors are prefixed with `where`.
  std::function<nlohmann::json(const nlohmann::json& hf_config, const std::string& where)> config_from_hf;
};

// Names -> architectures. Thread-safe.
class ModelRegistry {
 public:
  ModelRegistry() = default;          // empty
  static ModelRegistry& global();     // the built-ins ("transformer"), plus what users register

  // Raises grpo::Error when the name is empty or taken, create is null, or a
  // Hugging Face name is claimed twice or comes without config_from_hf.
  void register_architecture(const std::string& name, ModelArchitecture architecture);
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted

  // The model of architecture `name` from its config; an unknown name is a
  // grpo::Error listing the known ones, prefixed with `where`.
  std::shared_ptr<CausalLM> create(const std::string& name, const nlohmann::json& config, bool initialize,
                                   const std::string& where) const;
  // The architecture that reads the Hugging Face config.json `hf_config`
  // (by its first "architectures" entry, else its "model_type"), and its
  // name; grpo::Error naming `where` and the known names when none does.
  std::pair<std::string, ModelArchitecture> for_hf_config(const nlohmann::json& hf_config,
                                                          const std::string& where) const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, ModelArchitecture> architectures_;
};

// How a Hugging Face config.json names its architecture: its one
// "architectures" entry ("LlamaForCausalLM"), else its "model_type" ("llama"),
// else "". Raises grpo::Error prefixed with `where` when the config is not an
// object or "architectures" is not a list of one name.
std::string hf_architecture_name(const nlohmann::json& hf_config, const std::string& where);

// Registers the built-in architectures into `registry` (global() already has
// them): "transformer" (TransformerLM: Llama, Qwen2, Mistral).
void register_builtin_models(ModelRegistry& registry);

}  // namespace grpo
