// SentencePieceTokenizer: a thin, checked layer over the SentencePiece library,
// which lives in the module libgrpo_sentencepiece.so (opened once, on first use).
#include "grpo/tokenizers/sentencepiece.h"

#include <dlfcn.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "grpo/error.h"
#include "grpo/files.h"
#include "tokenizers/sentencepiece_module/spm_module.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

// The module's entry points.
struct SpmModule {
  decltype(&grpo_spm_load) load;
  decltype(&grpo_spm_free) free;
  decltype(&grpo_spm_get_info) get_info;
  decltype(&grpo_spm_encode) encode;
  decltype(&grpo_spm_decode) decode;
  decltype(&grpo_spm_id_to_piece) id_to_piece;
  decltype(&grpo_spm_piece_to_id) piece_to_id;
  decltype(&grpo_spm_kind) kind;
};

constexpr const char* kModuleName = "libgrpo_sentencepiece.so";

// NB: RTLD_DEEPBIND keeps SentencePiece's protobuf apart from LibTorch's
// (spm_module.h). AddressSanitizer cannot run a library opened so (its
// interceptors would be bypassed), and the sanitizer build runs without it.
#ifdef GRPO_SANITIZE
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL;
#else
constexpr int kOpenFlags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#endif

// GRPO_SENTENCEPIECE_MODULE, else the folder libgrpo was loaded from, else the
// loader's search path.
const SpmModule& spm() {
  static std::once_flag once;
  static SpmModule module;
  static std::string problem;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GRPO_SENTENCEPIECE_MODULE"); env != nullptr && *env != '\0') {
      candidates.push_back(env);
    } else {
      Dl_info self{};
      if (dladdr(reinterpret_cast<void*>(&spm), &self) != 0 && self.dli_fname != nullptr) {
        candidates.push_back((fs::path(self.dli_fname).parent_path() / kModuleName).string());
      }
      candidates.push_back(kModuleName);
    }
    void* handle = nullptr;
    std::string tried;
    for (const std::string& path : candidates) {
      handle = dlopen(path.c_str(), kOpenFlags);
      if (handle != nullptr) break;
      const char* why = dlerror();
      tried += (tried.empty() ? "" : "; ") + (why != nullptr ? std::string(why) : path);
    }
    if (handle == nullptr) {
      problem = "cannot open the SentencePiece module " + std::string(kModuleName) + " (" + tried +
                "); it is built and installed beside libgrpo, or set GRPO_SENTENCEPIECE_MODULE to its path";
      return;
    }
    auto get = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(handle, name));
      if (fn == nullptr && problem.empty()) problem = std::string(kModuleName) + " lacks " + name;
    };
    get(module.load, "grpo_spm_load");
    get(module.free, "grpo_spm_free");
    get(module.get_info, "grpo_spm_get_info");
    get(module.encode, "grpo_spm_encode");
    get(module.decode, "grpo_spm_decode");
    get(module.id_to_piece, "grpo_spm_id_to_piece");
    get(module.piece_to_id, "grpo_spm_piece_to_id");
    get(module.kind, "grpo_spm_kind");
  });
  if (!problem.empty()) throw Error(problem);
  return module;
}

void append_bytes(void* ctx, const char* data, size_t size) { static_cast<std::string*>(ctx)->append(data, size); }

struct Encoded {
  std::vector<int64_t> ids;
  std::vector<unsigned> begins;
};

void append_piece(void* ctx, int id, unsigned begin) {
  auto* out = static_cast<Encoded*>(ctx);
  out->ids.push_back(id);
  out->begins.push_back(begin);
}

}  // namespace

SentencePieceTokenizer SentencePieceTokenizer::load(const std::string& path) {
  return from_serialized(read_file(path, "a SentencePiece tokenizer.model file"), path);
}

SentencePieceTokenizer SentencePieceTokenizer::from_serialized(const std::string& bytes, const std::string& where) {
  const SpmModule& m = spm();
  char error[512] = {0};
  grpo_spm* raw = m.load(bytes.data(), bytes.size(), error, sizeof error);
  if (raw == nullptr) throw Error(where + ": not a SentencePiece model (" + error + ")");
  SentencePieceTokenizer t;
  t.sp_ = std::shared_ptr<const grpo_spm>(raw, [free = m.free](const grpo_spm* p) { free(const_cast<grpo_spm*>(p)); });
  grpo_spm_info info{};
  m.get_info(raw, &info);
  if (info.piece_size <= 0) throw Error(where + ": the SentencePiece model has no pieces");
  if (info.eos_id < 0) throw Error(where + ": the SentencePiece model has no EOS piece (eos_id is -1)");
  t.vocab_size_ = info.piece_size;
  t.eos_ = info.eos_id;
  t.pad_ = info.pad_id >= 0 ? info.pad_id : info.eos_id;
  if (info.bos_id >= 0) t.bos_ = info.bos_id;
  t.unk_ = info.unk_id;
  t.special_.resize(static_cast<size_t>(t.vocab_size_));
  for (int id = 0; id < info.piece_size; ++id) {
    t.special_[static_cast<size_t>(id)] = (m.kind(raw, id) & (GRPO_SPM_CONTROL | GRPO_SPM_UNKNOWN)) != 0;
  }
  t.serialized_ = std::make_shared<const std::string>(bytes);
  return t;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  if (const std::string problem = utf8_problem(text); !problem.empty()) throw Error("encode: " + problem);
  Encoded out;
  char error[512] = {0};
  if (spm().encode(sp_.get(), text.data(), text.size(), append_piece, &out, error, sizeof error) != 0) {
    throw Error(std::string("encode: SentencePiece failed: ") + error);
  }
  for (size_t i = 0; i < out.ids.size(); ++i) {
    if (out.ids[i] != unk_) continue;
    // Without byte fallback an unspellable character becomes <unk>; say where.
    const size_t begin = out.begins[i];
    const size_t end = i + 1 < out.begins.size() ? out.begins[i + 1] : text.size();
    throw Error("encode: the SentencePiece model cannot spell \"" + text.substr(begin, end - begin) +
                "\" at byte offset " + std::to_string(begin) + " (it would become " + piece(unk_) + ")");
  }
  return std::move(out.ids);
}

void SentencePieceTokenizer::check_id(int64_t id, const char* what) const {
  if (id < 0 || id >= vocab_size_) {
    throw Error(std::string(what) + ": token id " + std::to_string(id) + " is outside [0, " +
                std::to_string(vocab_size_) + ")");
  }
}

std::string SentencePieceTokenizer::piece(int64_t id) const {
  std::string out;
  spm().id_to_piece(sp_.get(), static_cast<int>(id), append_bytes, &out);
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  // SentencePiece decodes control pieces to nothing; written out, they keep
  // their spelling (as CharTokenizer's do), with the text between them
  // decoded run by run.
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    char error[512] = {0};
    if (spm().decode(sp_.get(), run.data(), run.size(), append_bytes, &out, error, sizeof error) != 0) {
      throw Error(std::string("decode: SentencePiece failed: ") + error);
    }
    run.clear();
  };
  for (const int64_t id : ids) {
    check_id(id, "decode");
    if (special_[static_cast<size_t>(id)]) {
      if (skip_special) continue;
      flush();
      out += piece(id);
    } else {
      run.push_back(static_cast<int>(id));
    }
  }
  flush();
  return out;
}

std::string SentencePieceTokenizer::id_to_token(int64_t id) const {
  check_id(id, "id_to_token");
  return piece(id);
}

std::optional<int64_t> SentencePieceTokenizer::token_to_id(const std::string& token) const {
  const int id = spm().piece_to_id(sp_.get(), token.data(), token.size());
  if (id < 0) return std::nullopt;
  return id;
}

bool SentencePieceTokenizer::is_special(int64_t id) const {
  return id >= 0 && id < vocab_size_ && special_[static_cast<size_t>(id)] != 0;
}

bool SentencePieceTokenizer::save_to(const std::string& dir) const {
  write_file_atomic((fs::path(dir) / "tokenizer.model").string(), *serialized_);
  auto spelling = [&](std::optional<int64_t> id) {
    return id && *id >= 0 ? nlohmann::json(piece(*id)) : nlohmann::json(nullptr);
  };
  nlohmann::ordered_json config = {
      {"tokenizer_class", "LlamaTokenizer"},
      {"bos_token", spelling(bos_)},
      {"eos_token", spelling(eos_)},
      {"unk_token", spelling(unk_ >= 0 ? std::optional<int64_t>(unk_) : std::nullopt)},
      {"pad_token", pad_ != eos_ ? spelling(pad_) : nlohmann::json(nullptr)},  // EOS pads when there is no PAD piece
      {"add_bos_token", bos_.has_value()},
      {"add_eos_token", false},
      {"clean_up_tokenization_spaces", false},
      {"legacy", false},
  };
  write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(), config.dump(2) + "\n");
  return true;
}

}  // namespace grpo
