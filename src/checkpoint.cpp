// Checkpoint folders: weights by name in LibTorch archives, JSON beside them,
// each folder written under a temporary name and renamed into place.
#include "grpo/checkpoint.h"

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
#include "grpo/hf_tokenizer.h"
#include "grpo/io/pretrained.h"
#include "grpo/metrics.h"
#include "grpo/sp_tokenizer.h"
#include "grpo/models/transformer.h"
#include "atomic_folder.h"
#include "weights.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

// Every parameter and buffer by its dotted name.
std::map<std::string, torch::Tensor> named_state(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

std::string shape_of(const torch::Tensor& t) { return c10::str(t.sizes()); }

// Writes an archive through write_file_atomic. NB: LibTorch's file writer
// throws from a destructor when a write fails (a full disk ends the process),
// so the archive is serialized in memory and written by our own code.
void save_archive(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what) {
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot serialize " + what + ": " + e.what_without_backtrace());
  }
  write_file_atomic(path, bytes.str());
}

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open (missing?)");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
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
  save_archive(archive, path, "the weights");
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

bool is_pretrained_folder(const std::string& dir) {
  const fs::path config = fs::path(dir) / "config.json";
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "model.json", ec) || !fs::exists(config, ec)) return false;
  const nlohmann::json j = read_json_file(config.string());
  return j.is_object() && j.contains("model_type");
}

std::shared_ptr<CausalLM> load_model(const std::string& dir) {
  if (is_pretrained_folder(dir)) return load_pretrained(dir);
  const std::string spec_path = (fs::path(dir) / "model.json").string();
  const nlohmann::json spec = read_json_file(spec_path);
  const std::string type = spec.value("type", std::string());
  if (type != "transformer") {
    throw Error(spec_path + ": \"type\" is \"" + type +
                "\"; only \"transformer\" (grpo::TransformerLM) can be built from a checkpoint");
  }
  if (!spec.contains("config")) throw Error(spec_path + ": no \"config\"");
  TransformerConfig config;
  try {
    config = TransformerConfig::from_json(spec.at("config"));
  } catch (const Error& e) {
    throw Error(spec_path + ": " + e.what());
  }
  auto model = TransformerLM::uninitialized(config);
  const std::string dtype = spec.value("dtype", std::string("float32"));
  load_weights(*model, (fs::path(dir) / "model.pt").string());
  if (dtype == "bfloat16") model->to(torch::kBFloat16);
  if (dtype == "float64") model->to(torch::kFloat64);
  return model;
}

std::shared_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  std::error_code ec;
  const fs::path model = fs::path(dir) / "tokenizer.model";
  const fs::path json = fs::path(dir) / "tokenizer.json";
  if (fs::exists(model, ec)) return std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::load(model.string()));
  if (fs::exists(json, ec)) {
    const nlohmann::json j = read_json_file(json.string());
    if (j.is_object() && j.value("type", nlohmann::json()) == "char") {
      return std::make_shared<CharTokenizer>(CharTokenizer::load(json.string()));
    }
    return std::make_shared<HFTokenizer>(HFTokenizer::load_dir(dir));
  }
  throw Error(dir + ": no tokenizer here (looked for tokenizer.model and tokenizer.json)");
}

void write_checkpoint(const std::string& dir, const CheckpointContents& contents) {
  if (contents.model == nullptr) throw Error("write_checkpoint " + dir + ": no model");
  write_folder_atomic(
      dir,
      [&](const fs::path& tmp) {
        nlohmann::json spec = {{"type", "custom"}};
        if (auto* lm = dynamic_cast<TransformerLM*>(contents.model)) {
          const auto dtype = lm->parameters().front().scalar_type();
          spec = {{"type", "transformer"},
                  {"config", lm->config().to_json()},
                  {"dtype", dtype == torch::kBFloat16 ? "bfloat16" : dtype == torch::kFloat64 ? "float64" : "float32"}};
        }
        write_file_atomic((tmp / "model.json").string(), spec.dump(2) + "\n");
        save_weights(contents.model->module(), (tmp / "model.pt").string());
        if (contents.tokenizer) contents.tokenizer->save_to(tmp.string());
        if (contents.reference) save_weights(contents.reference->module(), (tmp / "reference.pt").string());
        if (contents.optimizer) {
          torch::serialize::OutputArchive archive;
          contents.optimizer->save(archive);
          save_archive(archive, (tmp / "optimizer.pt").string(), "the optimizer state");
        }
        if (!contents.trainer_state.is_null()) {
          write_file_atomic((tmp / "trainer_state.json").string(), contents.trainer_state.dump(2) + "\n");
        }
        if (!contents.config.is_null()) write_file_atomic((tmp / "config.json").string(), contents.config.dump(2) + "\n");
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
