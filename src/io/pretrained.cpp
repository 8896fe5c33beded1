// Hugging Face folders: config.json read by the registered architecture,
// weights matched by name through the safetensors reader.
#include "grpo/io/pretrained.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/io/safetensors.h"
#include "grpo/io/weights.h"
#include "grpo/models/registry.h"

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

bool is_pretrained_folder(const std::string& dir) {
  const fs::path config = fs::path(dir) / "config.json";
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "model.json", ec) || !fs::exists(config, ec)) return false;
  const nlohmann::json j = read_json_file(config.string());
  return j.is_object() && j.contains("model_type");
}

std::shared_ptr<CausalLM> load_pretrained_model(const std::string& dir, c10::ScalarType dtype) {
  const std::string config_path = (fs::path(dir) / "config.json").string();
  const nlohmann::json hf = read_json_file(config_path);
  const auto [type, architecture] = ModelRegistry::global().for_hf_config(hf, config_path);
  const nlohmann::json config = architecture.config_from_hf(hf, config_path);
  // NB: views into the mapped files, copied once, straight into the parameters.
  const SafetensorsCheckpoint checkpoint(dir);
  const std::map<std::string, torch::Tensor> weights = checkpoint.views();

  auto model = architecture.create(config, /*initialize=*/false, config_path);
  model->module().to(dtype);
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model->module().named_parameters()) params[p.key()] = p.value();
  const bool tied = hf.is_object() && hf.value("tie_word_embeddings", false);
  copy_weights(params, weights, dir, "config.json", "the config implies", [&](const std::string& name) {
    return ends_with(name, "rotary_emb.inv_freq")                                  // recomputed from rope_theta
           || (name == "lm_head.weight" && tied && params.count(name) == 0);  // the embedding serves as the head
  });
  return model;
}

std::shared_ptr<TransformerLM> load_pretrained(const std::string& dir, c10::ScalarType dtype) {
  auto model = std::dynamic_pointer_cast<TransformerLM>(load_pretrained_model(dir, dtype));
  if (!model) throw Error(dir + ": the model is not a grpo::TransformerLM; use load_pretrained_model");
  return model;
}

void save_pretrained(const TransformerLM& model, const std::string& dir, c10::optional<c10::ScalarType> dtype,
                     int64_t max_shard_bytes) {
  const auto params = model.named_parameters();
  const c10::ScalarType type = dtype ? *dtype : params.begin()->value().scalar_type();
  nlohmann::json config = hf_config(model.config());
  config["torch_dtype"] = dtype_name(type);

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
  const auto* lm = dynamic_cast<const TransformerLM*>(&unwrap(model));
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

void check_export_target(const std::string& out, const std::string& source, const std::string& format,
                         bool overwrite) {
  if (format != "hf" && format != "gguf") throw Error("export: format must be \"hf\" or \"gguf\", got \"" + format + "\"");
  if (out.empty()) throw Error("export: --out is empty");
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(out), ec);
  const fs::path from = fs::weakly_canonical(fs::absolute(source), ec);
  // NB: lexically, component by component: "runs/a" holds "runs/a/checkpoint-3", not "runs/ab".
  const auto holds = [](const fs::path& outer, const fs::path& inner) {
    auto o = outer.begin(), i = inner.begin();
    for (; o != outer.end() && !o->empty(); ++o, ++i) {
      if (i == inner.end() || *o != *i) return false;
    }
    return true;
  };
  if (holds(target, from)) {
    throw Error("export: --out " + out + (target == from ? " is the model being exported" : " holds the model being exported (" + source + ")") +
                "; write the export somewhere else");
  }
  const fs::file_status status = fs::symlink_status(target, ec);
  if (ec || !fs::exists(status) || overwrite) return;
  const std::string refuse = "export: --out " + out + " exists and ";
  const std::string advice = "; give --overwrite to replace it, or another --out";
  if (format == "gguf") {
    if (!fs::is_regular_file(status)) throw Error(refuse + "is not a file" + advice);
    std::string magic(4, '\0');
    std::ifstream in(target, std::ios::binary);
    if (!in.read(magic.data(), 4) || magic != "GGUF") throw Error(refuse + "is not a GGUF file" + advice);
    return;
  }
  if (!fs::is_directory(status)) throw Error(refuse + "is not a folder" + advice);
  for (const auto& entry : fs::directory_iterator(target, ec)) {
    if (!entry.is_regular_file()) {
      throw Error(refuse + "is not a Hugging Face model folder (it holds " + entry.path().filename().string() + "/)" +
                  advice);
    }
  }
  if (!fs::exists(target / "config.json")) {
    throw Error(refuse + "is not a Hugging Face model folder (no config.json)" + advice);
  }
}

}  // namespace grpo
