// Checkpoint folders: weights by name in LibTorch archives, JSON beside them,
// each folder written as one transaction (write_folder_atomic); the model
// rebuilt through the ModelRegistry from model.json, whose dtype and tokenizer
// record a resume checks against the run.
#include "grpo/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/io/pretrained.h"
#include "grpo/io/weights.h"
#include "grpo/log.h"
#include "grpo/models/registry.h"
#include "json_fields.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

// model.json's "dtype": the dtype of the model's parameters (the first one's).
std::string dtype_name(CausalLM& model) {
  const auto params = model.module().parameters();
  const auto dtype = params.empty() ? torch::kFloat32 : params.front().scalar_type();
  if (dtype == torch::kBFloat16) return "bfloat16";
  if (dtype == torch::kFloat16) return "float16";
  if (dtype == torch::kFloat64) return "float64";
  return "float32";
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The first id spelt differently by `there` and `here` (or special in one only), as
// "id 4 is \"c\" there and \"d\" here"; "" when there is none.
std::string first_difference(const Tokenizer& there, const Tokenizer& here) {
  const int64_t n = std::min(there.vocab_size(), here.vocab_size());
  auto spelling = [](const Tokenizer& t, int64_t id) {
    try {
      return json_text(nlohmann::json(t.id_to_token(id))) + (t.is_special(id) ? " (special)" : "");
    } catch (const Error&) {
      return std::string("no token");
    }
  };
  for (int64_t id = 0; id < n; ++id) {
    const std::string a = spelling(there, id), b = spelling(here, id);
    if (a != b) return "id " + std::to_string(id) + " is " + a + " there and " + b + " here";
  }
  return "";
}

// Whether process `pid` exists (another user's included).
bool process_alive(pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

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
  if (dtype == "float16") model->module().to(torch::kFloat16);
  if (dtype == "float64") model->module().to(torch::kFloat64);
  return model;
}

nlohmann::json tokenizer_identity(const Tokenizer& tokenizer) {
  // NB: FNV-1a, spelled out here, so the hash is the same with every standard library and build.
  uint64_t hash = 14695981039346656037ull;
  auto add = [&](const std::string& bytes) {
    for (const char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
  };
  // Each part is preceded by its length, so no two vocabularies spell the same byte stream.
  auto add_part = [&](const std::string& part) {
    add(std::to_string(part.size()) + ":");
    add(part);
  };
  const int64_t V = tokenizer.vocab_size();
  for (int64_t id = 0; id < V; ++id) {
    std::string token;
    try {
      token = tokenizer.id_to_token(id);
    } catch (const Error&) {
      add_part("");  // a gap in the numbering (a Hugging Face vocabulary may have them)
      add("-");
      continue;
    }
    add_part(token);
    add(tokenizer.is_special(id) ? "s" : "n");
  }
  const std::optional<int64_t> bos = tokenizer.bos_id();
  add_part(std::to_string(tokenizer.eos_id()) + " " + std::to_string(tokenizer.pad_id()) + " " +
           (bos ? std::to_string(*bos) : std::string("none")));
  static const char* hex = "0123456789abcdef";
  std::string digits(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4) digits[static_cast<size_t>(i)] = hex[hash & 15];
  return {{"vocab_size", V}, {"vocabulary_hash", digits}};
}

void check_resumable(const std::string& dir, CausalLM& model, const Tokenizer& tokenizer) {
  const std::string spec_path = (fs::path(dir) / "model.json").string();
  nlohmann::json spec;
  try {
    spec = read_json_file(spec_path);
  } catch (const Error&) {
    return;  // damage: the load that follows names it
  }
  if (!spec.is_object()) return;
  const nlohmann::json* saved_dtype = spec.contains("dtype") ? &spec.at("dtype") : nullptr;
  const std::string dtype = dtype_name(model);
  if (saved_dtype && saved_dtype->is_string() && saved_dtype->get<std::string>() != dtype) {
    const std::string saved = saved_dtype->get<std::string>();
    throw CheckpointMismatch(dir + ": the checkpoint holds a " + saved + " model, but this run's model.dtype is \"" +
                             dtype + "\"; resume with model.dtype \"" + saved +
                             "\", or start a new run from its weights with model.init_from " + dir);
  }
  const nlohmann::json here = tokenizer_identity(tokenizer);
  if (!spec.contains("tokenizer")) {
    log::warn(dir + ": the checkpoint records no tokenizer (written by an earlier version); resuming without "
                    "checking that this run's tokenizer (" + std::to_string(tokenizer.vocab_size()) +
              " tokens) is the one it was trained with");
    return;
  }
  const nlohmann::json& there = spec.at("tokenizer");
  if (there == here) return;
  auto describe = [](const nlohmann::json& id) {
    const auto size = id.is_object() ? id.value("vocab_size", nlohmann::json()) : nlohmann::json();
    const auto hash = id.is_object() ? id.value("vocabulary_hash", nlohmann::json()) : nlohmann::json();
    return (size.is_number() ? std::to_string(size.get<int64_t>()) : std::string("?")) + " tokens, vocabulary hash " +
           (hash.is_string() ? hash.get<std::string>() : std::string("?"));
  };
  std::string difference;
  try {
    difference = first_difference(*load_tokenizer(dir), tokenizer);
  } catch (const std::exception&) {
    // NB: the checkpoint's own tokenizer files only add detail; without them the identities say enough.
  }
  throw CheckpointMismatch(dir + ": the checkpoint was trained with another tokenizer than this run's (the checkpoint's: " +
                           describe(there) + "; this run's: " + describe(here) +
                           (difference.empty() ? std::string() : "; " + difference) +
                           "); resume with the tokenizer it was trained with (its files are in " + dir + ")");
}

std::vector<std::string> remove_stale_checkpoint_temporaries(const std::string& dir,
                                                             const std::vector<std::string>& names) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  // What a killed process leaves: "<name>.tmp-<pid>" (a folder being written),
  // "<name>.old-<pid>" (the folder it was replacing), "<name>.pruned-<pid>" (a
  // checkpoint it was deleting), "<file>.tmp.<pid>" (a file being written).
  enum class Kind { kWriting, kReplaced, kPruned, kFile };
  struct Stale {
    fs::path path;
    pid_t pid;
    Kind kind;
    fs::path original;  // kReplaced: where it was
  };
  std::vector<Stale> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool folder = entry.is_directory(ec);
    Kind kind = Kind::kFile;
    size_t mark = std::string::npos, digits = 0;
    for (const auto& [suffix, k] : {std::pair<const char*, Kind>{".tmp-", Kind::kWriting}, {".old-", Kind::kReplaced},
                                    {".pruned-", Kind::kPruned}, {".tmp.", Kind::kFile}}) {
      const size_t at = name.rfind(suffix);
      if (at != std::string::npos && (k == Kind::kFile) != folder) {
        mark = at;
        digits = at + std::strlen(suffix);
        kind = k;
        break;
      }
    }
    if (mark == std::string::npos || mark == 0) continue;
    const std::string stem = name.substr(0, mark), pid = name.substr(digits);
    if (!all_digits(pid) || pid.size() > 9) continue;
    if (folder) {
      const bool checkpoint = stem.rfind("checkpoint-", 0) == 0 && all_digits(stem.substr(11));
      if (!checkpoint && std::find(names.begin(), names.end(), stem) == names.end()) continue;
    }
    const auto id = static_cast<pid_t>(std::stol(pid));
    if (id > 0 && !process_alive(id)) stale.push_back({entry.path(), id, kind, fs::path(dir) / stem});
  }
  std::vector<std::string> removed;
  for (const Stale& s : stale) {
    const std::string who = "process " + std::to_string(s.pid) + ", which is gone";
    if (s.kind == Kind::kReplaced && !fs::exists(s.original, ec)) {
      // NB: killed between its two renames: the folder moved aside is the complete one.
      fs::rename(s.path, s.original, ec);
      if (!ec) {
        log::warn("restored " + s.original.string() + " from " + s.path.string() + ", set aside by " + who);
        continue;
      }
    }
    fs::remove_all(s.path, ec);
    if (ec) {
      log::warn(s.path.string() + ": cannot remove this leftover of " + who + " (" + ec.message() + ")");
      continue;
    }
    log::info("removed " + s.path.string() + ", left unfinished by " + who);
    removed.push_back(s.path.string());
  }
  return removed;
}

void write_checkpoint(const std::string& dir, const CheckpointContents& contents) {
  if (contents.model == nullptr) throw Error("write_checkpoint " + dir + ": no model");
  write_folder_atomic(
      dir,
      [&](const fs::path& tmp) {
        nlohmann::json spec = contents.model->architecture();
        if (spec.is_null()) spec = {{"type", "custom"}};
        spec["dtype"] = dtype_name(*contents.model);
        if (contents.tokenizer) spec["tokenizer"] = tokenizer_identity(*contents.tokenizer);
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
    // NB: renamed first, so a kill halfway through the deletion leaves a
    // ".pruned-<pid>" folder that the next resume removes, never a
    // checkpoint-<step> without its model.
    const fs::path doomed = all[i] + ".pruned-" + std::to_string(::getpid());
    fs::rename(all[i], doomed, ec);
    fs::remove_all(ec ? fs::path(all[i]) : doomed, ec);
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
