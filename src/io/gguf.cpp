// GGUF export: the metadata and tensor names llama.cpp's convert_hf_to_gguf.py
// writes for Llama / Qwen2 / Qwen3, and the tensor encodings of gguf-py's quants
// (f16 and bf16 rounded to nearest even, q8_0 as ggml's reference quantizer).
// Layout of a file: header, key/value pairs, tensor infos, padding to 32, then
// each tensor's data padded to 32. Every number is little-endian.
#include "grpo/io/gguf.h"

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/log.h"
#include "grpo/models/transformer.h"
#include "grpo/tokenizers/char_tokenizer.h"
#include "grpo/tokenizers/hf_tokenizer.h"
#include "grpo/tokenizers/sentencepiece.h"

namespace grpo {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint32_t kVersion = 3;
constexpr uint64_t kAlignment = 32;  // general.alignment's default: not written
constexpr uint32_t kQuantizationVersion = 2;
constexpr int64_t kQ8Block = 32;     // values per q8_0 block
constexpr int64_t kQ8BlockBytes = 34;  // f16 scale + 32 int8

// GGUF value types.
enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9 };
// GGML tensor types.
enum : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30 };
// llama.cpp's token types (the same numbers as SentencePiece's piece types).
enum : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5 };

std::string where_of(const std::string& path) { return "export_gguf " + path; }

// ------------------------------------------------------------------ the key/value section

class Metadata {
 public:
  void u32(const std::string& key, uint64_t v, const std::string& what) {
    if (v > UINT32_MAX) throw Error(what + ": " + key + " = " + std::to_string(v) + " does not fit GGUF's uint32");
    head(key, kU32);
    put<uint32_t>(static_cast<uint32_t>(v));
  }
  void f32(const std::string& key, double v) {
    head(key, kF32);
    put<float>(static_cast<float>(v));
  }
  void boolean(const std::string& key, bool v) {
    head(key, kBool);
    put<uint8_t>(v ? 1 : 0);
  }
  void str(const std::string& key, const std::string& v) {
    head(key, kString);
    text(v);
  }
  void strings(const std::string& key, const std::vector<std::string>& v) {
    array_head(key, kString, v.size());
    for (const auto& s : v) text(s);
  }
  void i32s(const std::string& key, const std::vector<int32_t>& v) {
    array_head(key, kI32, v.size());
    for (int32_t x : v) put<int32_t>(x);
  }
  void f32s(const std::string& key, const std::vector<float>& v) {
    array_head(key, kF32, v.size());
    for (float x : v) put<float>(x);
  }

  uint64_t count() const { return count_; }
  const std::string& bytes() const { return buf_; }

 private:
  template <class T>
  void put(T v) {
    buf_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void text(const std::string& s) {
    put<uint64_t>(s.size());
    buf_ += s;
  }
  void head(const std::string& key, uint32_t type) {
    text(key);
    put<uint32_t>(type);
    ++count_;
  }
  void array_head(const std::string& key, uint32_t type, size_t n) {
    head(key, kArray);
    put<uint32_t>(type);
    put<uint64_t>(n);
  }

  std::string buf_;
  uint64_t count_ = 0;
};

// ------------------------------------------------------------------ the model

enum class Arch { Llama, Qwen2, Qwen3 };

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
  }
  return "";
}

// The architecture the converter would pick for hf_config(c), refusing what
// llama.cpp's implementation of it would compute differently.
Arch architecture_of(const TransformerConfig& c, const std::string& where) {
  try {
    hf_config(c);  // NB: the combinations with no Hugging Face architecture are refused there, with the reason
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  if (c.sliding_window > 0 && c.sliding_window < c.max_positions()) {
    throw Error(where + ": sliding_window " + std::to_string(c.sliding_window) +
                " is shorter than the context (" + std::to_string(c.max_positions()) +
                "); llama.cpp's llama architecture attends to every position, so the GGUF file would compute "
                "another model");
  }
  if (c.rope_scaling && c.rope_scaling->rope_type != "linear" && c.rope_scaling->rope_type != "llama3") {
    throw Error(where + ": rope_scaling type \"" + c.rope_scaling->rope_type +
                "\" is not exported to GGUF (linear and llama3 are)");
  }
  if (c.qk_norm) return Arch::Qwen3;
  if (c.attention_bias && !c.o_proj_bias) {
    if (c.num_heads * c.dim_per_head() != c.hidden_size) {
      throw Error(where + ": Qwen2 with num_attention_heads × head_dim = " +
                  std::to_string(c.num_heads * c.dim_per_head()) + " != hidden_size " +
                  std::to_string(c.hidden_size) + ": llama.cpp's qwen2 needs them equal");
    }
    return Arch::Qwen2;
  }
  return Arch::Llama;
}

// One tensor of the file: the model's parameter, how it is laid out and stored.
struct Planned {
  std::string name;     // llama.cpp's
  torch::Tensor value;  // the parameter (any dtype, CPU or not), or a computed float32 tensor
  int64_t permute_heads = 0;  // > 0: rotate-half -> interleaved rows over this many heads
  uint32_t ggml_type = kGgmlF32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;
};

// llama.cpp's name for a TransformerLM parameter; "" for none.
std::string gguf_name(const std::string& hf) {
  static const std::map<std::string, std::string> top = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  static const std::map<std::string, std::string> layer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.o_proj.bias", "attn_output.bias"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  if (auto it = top.find(hf); it != top.end()) return it->second;
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  auto it = layer.find(hf.substr(dot + 1));
  if (it == layer.end()) return "";
  return "blk." + hf.substr(prefix.size(), dot - prefix.size()) + "." + it->second;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The stored type of one tensor, as the converter chooses it: 1-D tensors and
// norm weights f32; q8_0 needs rows that are whole blocks, else f16.
uint32_t stored_type(const Planned& t, GgufType type) {
  if (t.value.dim() <= 1 || ends_with(t.name, "_norm.weight") || !ends_with(t.name, ".weight")) return kGgmlF32;
  switch (type) {
    case GgufType::F32: return kGgmlF32;
    case GgufType::F16: return kGgmlF16;
    case GgufType::BF16: return kGgmlBF16;
    case GgufType::Q8_0:
      if (t.value.size(-1) % kQ8Block == 0) return kGgmlQ8_0;
      log::warn("export_gguf: " + t.name + " has rows of " + std::to_string(t.value.size(-1)) +
                " values, not a multiple of 32: stored as f16 instead of q8_0");
      return kGgmlF16;
  }
  return kGgmlF32;
}

uint64_t data_bytes(const Planned& t) {
  const uint64_t n = static_cast<uint64_t>(t.value.numel());
  switch (t.ggml_type) {
    case kGgmlF32: return 4 * n;
    case kGgmlF16:
    case kGgmlBF16: return 2 * n;
    case kGgmlQ8_0: return n / kQ8Block * kQ8BlockBytes;
  }
  return 0;
}

uint64_t padded(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

// rotate-half -> interleaved pairs, per head: rows [h, 0:D/2] and [h, D/2:D] become
// rows 2i and 2i + 1 of head h (the inverse of what transformers' conversion of
// Meta's checkpoints does); works on weights (rows, cols) and biases (rows).
torch::Tensor interleave_heads(const torch::Tensor& t, int64_t heads) {
  const auto shape = t.sizes().vec();
  return t.reshape({heads, 2, t.size(0) / heads / 2, -1}).transpose(1, 2).reshape(shape);
}

// Half away from zero, as gguf-py's np_roundf and C's roundf.
torch::Tensor round_away(const torch::Tensor& x) {
  const torch::Tensor a = x.abs();
  const torch::Tensor floored = a.floor();
  return x.sign() * (floored + (2 * (a - floored)).floor());
}

// The stored bytes of one tensor (row-major, as GGML's order reversed).
std::string encode(const Planned& t) {
  torch::Tensor v = t.value.detach().to(torch::kCPU, torch::kFloat32);
  if (t.permute_heads > 0) v = interleave_heads(v, t.permute_heads);
  v = v.contiguous();
  auto bytes_of = [](const torch::Tensor& x) {
    return std::string(static_cast<const char*>(x.data_ptr()), x.numel() * x.element_size());
  };
  switch (t.ggml_type) {
    case kGgmlF32: return bytes_of(v);
    case kGgmlF16: return bytes_of(v.to(torch::kHalf).contiguous());
    case kGgmlBF16: return bytes_of(v.to(torch::kBFloat16).contiguous());
    case kGgmlQ8_0: {
      const torch::Tensor blocks = v.reshape({-1, kQ8Block});                 // (nb, 32)
      const torch::Tensor d = blocks.abs().amax(1, /*keepdim=*/true) / 127;   // (nb, 1) float32
      const torch::Tensor inv = torch::where(d == 0, torch::zeros_like(d), 1 / d);
      const torch::Tensor q = round_away(blocks * inv).to(torch::kInt8).contiguous();  // (nb, 32)
      const torch::Tensor scale = d.to(torch::kHalf).contiguous();                       // (nb, 1)
      const int64_t nb = blocks.size(0);
      std::string out(static_cast<size_t>(nb * kQ8BlockBytes), '\0');
      const char* qp = static_cast<const char*>(q.data_ptr());
      const char* sp = static_cast<const char*>(scale.data_ptr());
      for (int64_t b = 0; b < nb; ++b) {
        std::memcpy(&out[b * kQ8BlockBytes], sp + 2 * b, 2);
        std::memcpy(&out[b * kQ8BlockBytes + 2], qp + kQ8Block * b, kQ8Block);
      }
      return out;
    }
  }
  return {};
}

// llama.cpp's rope_freqs for llama3 scaling: the factor dividing each frequency,
// computed in float32 as the converter computes it.
torch::Tensor llama3_rope_factors(const TransformerConfig& c) {
  const RopeScaling& r = *c.rope_scaling;
  const int64_t D = c.dim_per_head();
  const torch::Tensor freqs =
      1.0 / torch::pow(torch::tensor(c.rope_theta, torch::kFloat32),
                       torch::arange(0, D, 2, torch::kFloat32) / static_cast<float>(D));
  const double factor = r.factor.value_or(8.0);
  const double old_ctx = r.original_max_position_embeddings > 0 ? r.original_max_position_embeddings
                                                                 : c.max_position_embeddings;
  const double low_wavelen = old_ctx / r.low_freq_factor, high_wavelen = old_ctx / r.high_freq_factor;
  const torch::Tensor wavelen = 2 * M_PI / freqs;
  const torch::Tensor smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
  torch::Tensor out = 1 / ((1 - smooth) / factor + smooth);
  out = torch::where(wavelen > low_wavelen, torch::full_like(out, factor), out);
  out = torch::where(wavelen < high_wavelen, torch::ones_like(out), out);
  return out.to(torch::kFloat32);
}

// ------------------------------------------------------------------ SentencePiece model files

struct Piece {
  std::string text;
  float score = 0;
  int32_t type = kNormal;
};

// The pieces of a serialized sentencepiece ModelProto (field 1: pieces {1: piece,
// 2: score, 3: type}) and normalizer_spec.add_dummy_prefix (field 3, its field 3).
struct SpModel {
  std::vector<Piece> pieces;
  bool add_dummy_prefix = true;
};

class ProtoReader {
 public:
  ProtoReader(const char* p, size_t n, std::string where) : p_(p), end_(p + n), where_(std::move(where)) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("a varint longer than 10 bytes");
  }
  // The next field's number and wire type.
  std::pair<uint64_t, int> key() {
    const uint64_t k = varint();
    return {k >> 3, static_cast<int>(k & 7)};
  }
  ProtoReader sub() {
    const uint64_t n = varint();
    need(n);
    ProtoReader r(p_, n, where_);
    p_ += n;
    return r;
  }
  std::string bytes() {
    const uint64_t n = varint();
    need(n);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  float fixed32() {
    need(4);
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(int wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: need(8); p_ += 8; return;
      case 2: bytes(); return;
      case 5: need(4); p_ += 4; return;
      default: fail("wire type " + std::to_string(wire));
    }
  }

 private:
  void need(uint64_t n) const {
    if (static_cast<uint64_t>(end_ - p_) < n) fail("a field running past the end");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_ + ": not a SentencePiece model (" + what + ")");
  }
  const char* p_;
  const char* end_;
  std::string where_;
};

SpModel parse_sentencepiece(const std::string& bytes, const std::string& where) {
  SpModel m;
  ProtoReader top(bytes.data(), bytes.size(), where);
  while (!top.done()) {
    const auto [field, wire] = top.key();
    if (field == 1 && wire == 2) {
      ProtoReader r = top.sub();
      Piece piece;
      while (!r.done()) {
        const auto [f, w] = r.key();
        if (f == 1 && w == 2) piece.text = r.bytes();
        else if (f == 2 && w == 5) piece.score = r.fixed32();
        else if (f == 3 && w == 0) piece.type = static_cast<int32_t>(r.varint());
        else r.skip(w);
      }
      m.pieces.push_back(std::move(piece));
    } else if (field == 3 && wire == 2) {
      ProtoReader r = top.sub();
      while (!r.done()) {
        const auto [f, w] = r.key();
        if (f == 3 && w == 0) m.add_dummy_prefix = r.varint() != 0;
        else r.skip(w);
      }
    } else {
      top.skip(wire);
    }
  }
  return m;
}

// ------------------------------------------------------------------ tokenizers

void write_sentencepiece(Metadata& kv, const SentencePieceTokenizer& tok, int64_t V, const std::string& where) {
  const SpModel sp = parse_sentencepiece(tok.serialized(), where + ": the tokenizer's model file");
  if (static_cast<int64_t>(sp.pieces.size()) != tok.vocab_size()) {
    throw Error(where + ": the SentencePiece model file has " + std::to_string(sp.pieces.size()) +
                " pieces, the tokenizer " + std::to_string(tok.vocab_size()));
  }
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::optional<int64_t> unk;
  for (int64_t i = 0; i < V; ++i) {
    if (i < static_cast<int64_t>(sp.pieces.size())) {
      const Piece& p = sp.pieces[i];
      tokens.push_back(p.text);
      scores.push_back(p.score);
      types.push_back(p.type);
      if (p.type == kUnknown && !unk) unk = i;
    } else {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      scores.push_back(-10000.0f);
      types.push_back(kUnused);
    }
  }
  kv.str("tokenizer.ggml.model", "llama");
  kv.str("tokenizer.ggml.pre", "default");
  kv.strings("tokenizer.ggml.tokens", tokens);
  kv.f32s("tokenizer.ggml.scores", scores);
  kv.i32s("tokenizer.ggml.token_type", types);
  if (auto bos = tok.bos_id()) kv.u32("tokenizer.ggml.bos_token_id", *bos, where);
  kv.u32("tokenizer.ggml.eos_token_id", tok.eos_id(), where);
  if (unk) kv.u32("tokenizer.ggml.unknown_token_id", *unk, where);
  kv.u32("tokenizer.ggml.padding_token_id", tok.pad_id(), where);
  kv.boolean("tokenizer.ggml.add_bos_token", tok.bos_id().has_value());
  kv.boolean("tokenizer.ggml.add_eos_token", false);
  // NB: llama.cpp adds the dummy prefix unless told otherwise.
  if (!sp.add_dummy_prefix) kv.boolean("tokenizer.ggml.add_space_prefix", false);
}

// The regexes of the tokenizer.json Split pre-tokenizers llama.cpp implements,
// by its pre-tokenizer name.
const std::vector<std::pair<std::string, std::string>>& known_split_patterns() {
  static const std::vector<std::pair<std::string, std::string>> patterns = {
      {"llama-bpe",
       "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
      {"qwen2",
       "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
       "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
  };
  return patterns;
}

[[noreturn]] void refuse_pre(const json& pre, const std::string& where) {
  throw Error(where + ": tokenizer.json's pre_tokenizer " + pre.dump().substr(0, 300) +
              " matches none of llama.cpp's (exported: GPT-2's ByteLevel with its regex, Llama 3's and "
              "Qwen2's Split + ByteLevel)");
}

// tokenizer.ggml.pre for a tokenizer.json pre_tokenizer: the llama.cpp
// pre-tokenizer that splits text the same way.
std::string bpe_pre(const json& pre, const std::string& where) {
  if (!pre.is_object()) refuse_pre(pre, where);
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") {
    if (pre.value("use_regex", true) && !pre.value("add_prefix_space", false)) return "gpt-2";
    refuse_pre(pre, where);
  }
  if (type != "Sequence" || !pre.contains("pretokenizers") || pre["pretokenizers"].size() != 2) refuse_pre(pre, where);
  const json& split = pre["pretokenizers"][0];
  const json& byte_level = pre["pretokenizers"][1];
  if (split.value("type", "") != "Split" || split.value("behavior", "") != "Isolated" ||
      split.value("invert", false) || !split.contains("pattern") || !split["pattern"].contains("Regex") ||
      byte_level.value("type", "") != "ByteLevel" || byte_level.value("use_regex", true) ||
      byte_level.value("add_prefix_space", false)) {
    refuse_pre(pre, where);
  }
  const std::string regex = split["pattern"]["Regex"].get<std::string>();
  for (const auto& [name, pattern] : known_split_patterns())
    if (regex == pattern) return name;
  refuse_pre(pre, where);
}

// Added tokens the converter marks CONTROL although tokenizer.json does not say special.
bool looks_special(const std::string& t) {
  auto wrapped = [&](const std::string& open, const std::string& close) {
    return t.size() >= open.size() + close.size() && t.compare(0, open.size(), open) == 0 && ends_with(t, close);
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xef\xbd\x9c", "\xef\xbd\x9c>") || wrapped("<unused", ">");
}

void write_bpe(Metadata& kv, const HFTokenizer& tok, int64_t V, Arch arch, const std::string& where) {
  const json j = parse_json(tok.tokenizer_json_text(), where + ": tokenizer.json");
  const json& model = j.at("model");
  std::map<int64_t, std::string> vocab;
  for (const auto& [text, id] : model.at("vocab").items()) vocab[id.get<int64_t>()] = text;
  struct Added {
    std::string content;
    bool special;
  };
  std::map<int64_t, Added> added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& a : j["added_tokens"]) {
      added[a.at("id").get<int64_t>()] = {a.at("content"), a.value("special", false)};
    }
  }
  const std::string pre = bpe_pre(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json(), where);

  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int64_t i = 0; i < V; ++i) {
    if (auto a = added.find(i); a != added.end()) {
      std::string content = a->second.content;
      if (a->second.special || looks_special(content)) {
        types.push_back(kControl);
      } else {
        // NB: as the converter does, "▁" in a user-defined token is a space.
        for (size_t p; (p = content.find("\xe2\x96\x81")) != std::string::npos;) content.replace(p, 3, " ");
        types.push_back(kUserDefined);
      }
      tokens.push_back(content);
    } else if (auto v = vocab.find(i); v != vocab.end()) {
      tokens.push_back(v->second);
      types.push_back(kNormal);
    } else {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(kUnused);
    }
  }
  std::vector<std::string> merges;
  for (const json& m : model.value("merges", json::array())) {
    if (m.is_string()) {
      merges.push_back(m.get<std::string>());
      continue;
    }
    // ["a", "b"]: a space inside a part is spelled U+0120, as in the "a b" form.
    std::string line;
    for (size_t k = 0; k < m.size(); ++k) {
      if (k) line += ' ';
      for (char ch : m[k].get<std::string>()) line += ch == ' ' ? std::string("\xc4\xa0") : std::string(1, ch);
    }
    merges.push_back(line);
  }
  kv.str("tokenizer.ggml.model", "gpt2");
  kv.str("tokenizer.ggml.pre", pre);
  kv.strings("tokenizer.ggml.tokens", tokens);
  kv.i32s("tokenizer.ggml.token_type", types);
  kv.strings("tokenizer.ggml.merges", merges);
  if (auto bos = tok.bos_id()) kv.u32("tokenizer.ggml.bos_token_id", *bos, where);
  kv.u32("tokenizer.ggml.eos_token_id", tok.eos_id(), where);
  const json& config = tok.tokenizer_config();
  // The converter's other special tokens: tokenizer_config.json spellings of added tokens.
  for (const char* typ : {"unk", "sep", "cls", "mask"}) {
    if (!config.is_object() || !config.contains(std::string(typ) + "_token")) continue;
    const json& e = config[std::string(typ) + "_token"];
    const std::string content = e.is_string() ? e.get<std::string>()
                                : e.is_object() && e.contains("content") && e["content"].is_string()
                                    ? e["content"].get<std::string>()
                                    : std::string();
    if (content.empty()) continue;
    const char* key = std::string(typ) == "unk" ? "tokenizer.ggml.unknown_token_id"
                      : std::string(typ) == "sep" ? "tokenizer.ggml.seperator_token_id"
                      : std::string(typ) == "cls" ? "tokenizer.ggml.cls_token_id"
                                                  : "tokenizer.ggml.mask_token_id";
    for (const auto& [id, a] : added) {
      if (a.content == content) {
        kv.u32(key, id, where);
        break;
      }
    }
  }
  kv.u32("tokenizer.ggml.padding_token_id", tok.pad_id(), where);
  kv.boolean("tokenizer.ggml.add_bos_token", tok.bos_id().has_value());
  kv.boolean("tokenizer.ggml.add_eos_token", false);
  if (arch == Arch::Llama && config.is_object() && config.contains("add_prefix_space") &&
      config["add_prefix_space"].is_boolean()) {
    kv.boolean("tokenizer.ggml.add_space_prefix", config["add_prefix_space"].get<bool>());
  }
}

// The converter's general.size_label: the parameter count, 2+ significant digits.
std::string size_label(int64_t params) {
  double scaled;
  const char* suffix;
  if (params > 1e12) scaled = params * 1e-12, suffix = "T";
  else if (params > 1e9) scaled = params * 1e-9, suffix = "B";
  else if (params > 1e6) scaled = params * 1e-6, suffix = "M";
  else scaled = params * 1e-3, suffix = "K";
  const int64_t rounded = static_cast<int64_t>(std::nearbyint(scaled));
  const int digits = rounded == 0 ? 0 : static_cast<int>(std::to_string(rounded).size());
  const int fix = std::max(2 - digits, 0);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
  return buf;
}

}  // namespace

GgufType gguf_type_from_name(const std::string& name, const std::string& where) {
  if (name == "f32" || name == "float32") return GgufType::F32;
  if (name == "f16" || name == "float16") return GgufType::F16;
  if (name == "bf16" || name == "bfloat16") return GgufType::BF16;
  if (name == "q8_0") return GgufType::Q8_0;
  throw Error(where + ": unknown GGUF tensor type \"" + name + "\" (known: f32, f16, bf16, q8_0)");
}

std::string gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::F32: return "f32";
    case GgufType::F16: return "f16";
    case GgufType::BF16: return "bf16";
    case GgufType::Q8_0: return "q8_0";
  }
  return "";
}

void export_gguf(const CausalLM& model, const Tokenizer& tokenizer, const std::string& path,
                 const GgufOptions& options) {
  const std::string where = where_of(path);
  const auto* lm = dynamic_cast<const TransformerLM*>(&unwrap(model));
  if (lm == nullptr) throw Error(where + ": only a grpo::TransformerLM has a GGUF form");
  const TransformerConfig& c = lm->config();
  const Arch arch = architecture_of(c, where);
  const std::string a = arch_name(arch);
  const int64_t V = c.vocab_size;
  if (dynamic_cast<const CharTokenizer*>(&tokenizer) != nullptr) {
    throw Error(where + ": a CharTokenizer has no GGUF form (llama.cpp reads SentencePiece and byte-level BPE "
                        "vocabularies); train with a tokenizer.model or tokenizer.json tokenizer");
  }
  const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(&tokenizer);
  const auto* bpe = dynamic_cast<const HFTokenizer*>(&tokenizer);
  if (sp == nullptr && bpe == nullptr) {
    throw Error(where + ": the tokenizer is neither a SentencePieceTokenizer nor an HFTokenizer, which are the "
                        "two with a GGUF form");
  }
  if (tokenizer.vocab_size() > V) {
    throw Error(where + ": the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                " tokens, more than the model's vocab_size " + std::to_string(V));
  }

  // The tensors, in the model's order, then rope_freqs.
  const auto params = lm->named_parameters();
  const c10::ScalarType model_dtype = params.begin()->value().scalar_type();
  const GgufType type = options.type ? *options.type
                                     : model_dtype == c10::ScalarType::BFloat16 ? GgufType::BF16 : GgufType::F16;
  std::vector<Planned> tensors;
  for (const auto& p : params) {
    Planned t;
    t.name = gguf_name(p.key());
    if (t.name.empty()) throw Error(where + ": parameter " + p.key() + " has no llama.cpp tensor name");
    t.value = p.value();
    if (arch == Arch::Llama && (p.key().find("self_attn.q_proj.") != std::string::npos))
      t.permute_heads = c.num_heads;
    if (arch == Arch::Llama && (p.key().find("self_attn.k_proj.") != std::string::npos))
      t.permute_heads = c.kv_heads();
    tensors.push_back(std::move(t));
  }
  if (c.rope_scaling && c.rope_scaling->rope_type == "llama3") {
    Planned t;
    t.name = "rope_freqs.weight";
    t.value = llama3_rope_factors(c);
    tensors.push_back(std::move(t));
  }
  uint64_t offset = 0;
  int64_t total_params = 0;
  for (Planned& t : tensors) {
    t.ggml_type = stored_type(t, type);
    t.bytes = data_bytes(t);
    t.offset = offset;
    offset = padded(offset + t.bytes);
    total_params += t.value.numel();
  }

  Metadata kv;
  kv.str("general.architecture", a);
  kv.str("general.type", "model");
  kv.str("general.name", options.name.empty() ? fs::path(path).stem().string() : options.name);
  kv.str("general.size_label", size_label(total_params));
  kv.u32(a + ".block_count", c.num_layers, where);
  kv.u32(a + ".context_length", c.max_position_embeddings, where);
  kv.u32(a + ".embedding_length", c.hidden_size, where);
  kv.u32(a + ".feed_forward_length", c.intermediate_size, where);
  kv.u32(a + ".attention.head_count", c.num_heads, where);
  kv.u32(a + ".attention.head_count_kv", c.kv_heads(), where);
  if (c.rope_scaling && c.rope_scaling->rope_type == "linear") {
    kv.str(a + ".rope.scaling.type", "linear");
    kv.f32(a + ".rope.scaling.factor", c.rope_scaling->factor.value_or(1.0));
  }
  kv.f32(a + ".rope.freq_base", c.rope_theta);
  kv.f32(a + ".attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  kv.u32(a + ".attention.key_length", c.dim_per_head(), where);
  kv.u32(a + ".attention.value_length", c.dim_per_head(), where);
  const uint32_t file_type = type == GgufType::F32 ? 0 : type == GgufType::F16 ? 1 : type == GgufType::Q8_0 ? 7 : 32;
  kv.u32("general.file_type", file_type, where);
  kv.u32(a + ".vocab_size", V, where);
  if (arch == Arch::Llama) kv.u32(a + ".rope.dimension_count", c.dim_per_head(), where);
  kv.u32("general.quantization_version", kQuantizationVersion, where);
  if (sp) write_sentencepiece(kv, *sp, V, where);
  if (bpe) write_bpe(kv, *bpe, V, arch, where);
  std::optional<std::string> chat = options.chat_template;
  if (!chat && bpe && bpe->tokenizer_config().is_object() && bpe->tokenizer_config().contains("chat_template") &&
      bpe->tokenizer_config()["chat_template"].is_string()) {
    chat = bpe->tokenizer_config()["chat_template"].get<std::string>();
  }
  if (chat) kv.str("tokenizer.chat_template", *chat);

  // Header, metadata and tensor infos, then the data.
  std::string head = "GGUF";
  auto put64 = [&](uint64_t v) { head.append(reinterpret_cast<const char*>(&v), 8); };
  auto put32 = [&](uint32_t v) { head.append(reinterpret_cast<const char*>(&v), 4); };
  put32(kVersion);
  put64(tensors.size());
  put64(kv.count());
  head += kv.bytes();
  for (const Planned& t : tensors) {
    put64(t.name.size());
    head += t.name;
    put32(static_cast<uint32_t>(t.value.dim()));
    for (int64_t d = t.value.dim() - 1; d >= 0; --d) put64(static_cast<uint64_t>(t.value.size(d)));
    put32(t.ggml_type);
    put64(t.offset);
  }
  head.resize(padded(head.size()), '\0');

  AtomicFile file(path, "export_gguf");
  file.write(head);
  const std::string zeros(kAlignment, '\0');
  torch::NoGradGuard no_grad;
  for (const Planned& t : tensors) {
    const std::string data = encode(t);
    if (data.size() != t.bytes) throw Error(where + ": internal error: " + t.name + " encoded to the wrong size");
    file.write(data);
    file.write(zeros.data(), padded(t.bytes) - t.bytes);
  }
  file.commit();
}

}  // namespace grpo
