// Hugging Face folders: config.json mapped onto TransformerConfig by
// architecture, weights matched by name through the safetensors reader.
#include "grpo/io/pretrained.h"

#include <torch/torch.h>

#include <filesystem>

#include "grpo/error.h"
#include "grpo/io/safetensors.h"
#include "grpo/metrics.h"
#include "atomic_folder.h"
#include "weights.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::Double: return "float64";
    default: throw Error(std::string("save_pretrained: unsupported dtype ") + c10::toString(t));
  }
}

}  // namespace

TransformerConfig config_from_pretrained(const nlohmann::json& config, const std::string& where) {
  if (!config.is_object()) throw Error(where + ": expected a JSON object");
  std::string arch;
  if (config.contains("architectures")) {
    const auto& a = config["architectures"];
    if (!a.is_array() || a.size() != 1 || !a[0].is_string()) {
      throw Error(where + ": \"architectures\" must be a list of one name, got " + a.dump());
    }
    arch = a[0].get<std::string>();
  } else if (config.contains("model_type") && config["model_type"].is_string()) {
    const std::string type = config["model_type"].get<std::string>();
    arch = type == "llama" ? "LlamaForCausalLM" : type == "qwen2" ? "Qwen2ForCausalLM"
         : type == "mistral" ? "MistralForCausalLM" : type;
  }
  if (arch != "LlamaForCausalLM" && arch != "Qwen2ForCausalLM" && arch != "MistralForCausalLM") {
    throw Error(where + ": architecture \"" + arch +
                "\" is not supported (known: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)");
  }
  nlohmann::json j = config;
  if (!j.contains("rms_norm_eps")) j["rms_norm_eps"] = 1e-6;  // transformers' default for all three
  // NB: Qwen2's sliding-window keys are off unless use_sliding_window is true, which from_json rejects.
  if (arch == "Qwen2ForCausalLM") j.erase("sliding_window");
  TransformerConfig c;
  try {
    if (arch == "Qwen2ForCausalLM") j["attention_bias"] = true;  // Qwen2 has q/k/v biases and no key for them
    c = TransformerConfig::from_json(j, /*strict=*/false);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  if (arch == "MistralForCausalLM" && j.contains("sliding_window") && j["sliding_window"].is_number_integer()) {
    c.max_position_embeddings = std::min<int64_t>(c.max_position_embeddings, j["sliding_window"].get<int64_t>());
  }
  return c;
}

std::shared_ptr<TransformerLM> load_pretrained(const std::string& dir, c10::ScalarType dtype) {
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const TransformerConfig c = config_from_pretrained(read_json_file(config_path), config_path);
  // NB: views into the mapped files, copied once, straight into the parameters.
  const SafetensorsCheckpoint checkpoint(dir);
  const std::map<std::string, torch::Tensor> weights = checkpoint.views();

  auto model = TransformerLM::uninitialized(c);
  model->to(dtype);
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model->named_parameters()) params[p.key()] = p.value();
  copy_weights(params, weights, dir, "config.json", "the config implies", [&](const std::string& name) {
    return ends_with(name, "rotary_emb.inv_freq")                    // recomputed from rope_theta
           || (name == "lm_head.weight" && c.tie_word_embeddings);  // the embedding serves as the head
  });
  return model;
}

void save_pretrained(const TransformerLM& model, const std::string& dir, c10::optional<c10::ScalarType> dtype,
                     int64_t max_shard_bytes) {
  const auto params = model.named_parameters();
  const c10::ScalarType type = dtype ? *dtype : params.begin()->value().scalar_type();
  const TransformerConfig& c = model.config();
  nlohmann::json config = c.to_json();
  const bool qwen2 = c.attention_bias;
  config["architectures"] = {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  config["model_type"] = qwen2 ? "qwen2" : "llama";
  config["hidden_act"] = "silu";
  config["torch_dtype"] = dtype_name(type);
  if (qwen2) config.erase("attention_bias");

  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : params) tensors[p.key()] = p.value().detach().to(torch::kCPU, type);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the folder (" + ec.message() + ")");
  save_safetensors_sharded(dir, tensors, max_shard_bytes);
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
}

c10::ScalarType dtype_from_name(const std::string& name, const std::string& where) {
  if (name == "float32") return c10::ScalarType::Float;
  if (name == "bfloat16") return c10::ScalarType::BFloat16;
  if (name == "float16") return c10::ScalarType::Half;
  if (name == "float64") return c10::ScalarType::Double;
  throw Error(where + ": unknown dtype \"" + name + "\" (known: float32, bfloat16, float16, float64)");
}

void export_pretrained(const CausalLM& model, const Tokenizer* tokenizer, const std::string& dir,
                       c10::optional<c10::ScalarType> dtype) {
  const auto* lm = dynamic_cast<const TransformerLM*>(&model);
  if (lm == nullptr) throw Error("export_pretrained " + dir + ": only a grpo::TransformerLM has a Hugging Face form");
  write_folder_atomic(
      dir,
      [&](const fs::path& tmp) {
        save_pretrained(*lm, tmp.string(), dtype);
        if (tokenizer == nullptr) return;
        tokenizer->save_to(tmp.string());
        nlohmann::ordered_json generation = {{"_from_model_config", true}};
        if (auto bos = tokenizer->bos_id()) generation["bos_token_id"] = *bos;
        generation["eos_token_id"] = tokenizer->eos_id();
        generation["pad_token_id"] = tokenizer->pad_id();
        write_file_atomic((tmp / "generation_config.json").string(), generation.dump(2) + "\n");
      },
      "folder");
}

}  // namespace grpo
