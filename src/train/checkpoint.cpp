// Checkpoint folders: weights by name in LibTorch archives, JSON beside them,
// each folder written as one transaction (write_folder_atomic); the model
// rebuilt through the ModelRegistry from model.json.
#include "grpo/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/io/pretrained.h"
#include "grpo/io/weights.h"
#include "grpo/models/registry.h"
#include "json_fields.h"

namespace grpo {

namespace fs = std::filesystem;

std::shared_ptr<CausalLM> load_model(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error(dir + ": no such folder (expected a checkpoint or a Hugging Face model folder)");
  if (!fs::is_directory(dir, ec)) {
    throw Error(dir + ": is not a folder (expected a checkpoint or a Hugging Face model folder)");
  }
  if (is_pretrained_folder(dir)) return load_pretrained_model(dir);
  const std::string spec_path = (fs::path(dir) / "model.json").string();
  const nlohmann::json spec = read_json_file(spec_path);
  const std::string type = spec.is_object() ? spec.value("type", std::string()) : std::string();
  if (type.empty() || type == "custom") {
    throw Error(spec_path + ": \"type\" is \"" + type + "\"; the model is not a registered architecture (known: " +
                json_fields::list(ModelRegistry::global().names()) +
                "), so build it yourself and load its weights with load_weights");
  }
  if (!spec.contains("config")) throw Error(spec_path + ": no \"config\"");
  auto model = ModelRegistry::global().create(type, spec.at("config"), /*initialize=*/false, spec_path);
  load_weights(model->module(), (fs::path(dir) / "model.pt").string());
  const std::string dtype = spec.value("dtype", std::string("float32"));
  if (dtype == "bfloat16") model->module().to(torch::kBFloat16);
  if (dtype == "float64") model->module().to(torch::kFloat64);
  return model;
}

void write_checkpoint(const std::string& dir, const CheckpointContents& contents) {
  if (contents.model == nullptr) throw Error("write_checkpoint " + dir + ": no model");
  write_folder_atomic(
      dir,
      [&](const fs::path& tmp) {
        nlohmann::json spec = contents.model->architecture();
        if (spec.is_null()) {
          spec = {{"type", "custom"}};
        } else {
          const auto params = contents.model->module().parameters();
          const auto dtype = params.empty() ? torch::kFloat32 : params.front().scalar_type();
          spec["dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat64 ? "float64" : "float32";
        }
        write_file_atomic((tmp / "model.json").string(), spec.dump(2) + "\n");
        CausalLM& weights = contents.weights ? *contents.weights : *contents.model;
        save_weights(weights.module(), (tmp / "model.pt").string());
        if (contents.tokenizer) contents.tokenizer->save_to(tmp.string());
        if (contents.reference) save_weights(contents.reference->module(), (tmp / "reference.pt").string());
        if (contents.optimizer) {
          torch::serialize::OutputArchive archive;
          contents.optimizer->save(archive);
          write_archive(archive, (tmp / "optimizer.pt").string(), "the optimizer state");
        }
        if (!contents.trainer_state.is_null()) {
          write_file_atomic((tmp / "trainer_state.json").string(), json_text(contents.trainer_state, 2) + "\n");
        }
        if (!contents.config.is_null()) write_file_atomic((tmp / "config.json").string(), json_text(contents.config, 2) + "\n");
      },
      "checkpoint");
}

std::string checkpoint_dir(const std::string& output_dir, int64_t step) {
  return (fs::path(output_dir) / ("checkpoint-" + std::to_string(step))).string();
}

std::vector<std::string> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(output_dir, ec)) return {};
  for (const auto& entry : fs::directory_iterator(output_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "checkpoint-";
    if (!entry.is_directory() || name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit) || digits.size() > 15) continue;
    // NB: a folder without model.pt and trainer_state.json is not a complete checkpoint.
    if (!fs::exists(entry.path() / "model.pt") || !fs::exists(entry.path() / "trainer_state.json")) continue;
    found.emplace_back(std::stoll(digits), entry.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& output_dir) {
  auto all = list_checkpoints(output_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

void prune_checkpoints(const std::string& output_dir, int64_t keep_last) {
  auto all = list_checkpoints(output_dir);
  std::error_code ec;
  for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(keep_last, 1)) < all.size(); ++i) {
    fs::remove_all(all[i], ec);
  }
}

std::optional<std::string> set_aside_previous_run(const std::string& dir, const std::vector<std::string>& names,
                                                  bool checkpoints) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  std::vector<fs::path> moving;
  for (const std::string& name : names) {
    if (fs::exists(fs::symlink_status(fs::path(dir) / name, ec))) moving.push_back(fs::path(dir) / name);
  }
  if (checkpoints) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("checkpoint-", 0) == 0 && name.size() > 11 && std::isdigit(static_cast<unsigned char>(name[11])) &&
          entry.is_directory()) {
        moving.push_back(entry.path());
      }
    }
  }
  if (moving.empty()) return std::nullopt;
  fs::path aside;
  for (int n = 1;; ++n) {
    aside = fs::path(dir) / ("previous-" + std::to_string(n));
    if (!fs::exists(fs::symlink_status(aside, ec))) break;
  }
  fs::create_directory(aside, ec);
  if (ec) throw Error("output_dir " + dir + ": cannot create " + aside.string() + " for the earlier run (" + ec.message() + ")");
  for (const fs::path& from : moving) {
    fs::rename(from, aside / from.filename(), ec);
    if (ec) {
      throw Error("output_dir " + dir + ": cannot move the earlier run's " + from.filename().string() + " into " +
                  aside.string() + " (" + ec.message() + ")");
    }
  }
  return aside.string();
}

nlohmann::json read_trainer_state(const std::string& dir) {
  return read_json_file((fs::path(dir) / "trainer_state.json").string());
}

nlohmann::json cpu_rng_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  const torch::Tensor state = generator.get_state();
  const uint8_t* bytes = state.data_ptr<uint8_t>();
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(state.numel()) * 2);
  for (int64_t i = 0; i < state.numel(); ++i) {
    out += hex[bytes[i] >> 4];
    out += hex[bytes[i] & 15];
  }
  return out;
}

void set_cpu_rng_state(const nlohmann::json& state) {
  if (!state.is_string() || state.get<std::string>().size() % 2 != 0) {
    throw Error("trainer_state.json: \"cpu_rng\" must be a hex string");
  }
  const std::string s = state.get<std::string>();
  torch::Tensor bytes = torch::empty({static_cast<int64_t>(s.size() / 2)}, torch::kUInt8);
  uint8_t* out = bytes.data_ptr<uint8_t>();
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw Error("trainer_state.json: \"cpu_rng\" has a non-hex character");
  };
  for (size_t i = 0; i < s.size() / 2; ++i) out[i] = static_cast<uint8_t>(nibble(s[2 * i]) * 16 + nibble(s[2 * i + 1]));
  try {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(bytes);
  } catch (const c10::Error& e) {
    throw Error(std::string("trainer_state.json: bad \"cpu_rng\": ") + e.what_without_backtrace());
  }
}

}  // namespace grpo
