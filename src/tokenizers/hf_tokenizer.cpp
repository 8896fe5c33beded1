// HFTokenizer: Hugging Face tokenizer.json byte-level BPE, the facade over its
// parts: added tokens (matched here), the normalizer and pre-tokenizers
// (hf_pretokenizer.h) and the BPE model (hf_bpe.h), run in that order as
// `tokenizers` does. Loading validates the whole file up front. Offsets are
// byte offsets into UTF-8 text; ids are int32 inside and int64 outside.
#include "grpo/tokenizers/hf_tokenizer.h"

#include <unicode/uchar.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "grpo/error.h"
#include "grpo/files.h"
#include "tokenizers/hf_bpe.h"
#include "tokenizers/hf_internal.h"
#include "tokenizers/hf_pretokenizer.h"

namespace grpo {

using namespace hf;  // NB: this file is HFTokenizer's, like the hf:: parts

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- UTF-8 around added tokens

// The code point at s[pos] (valid UTF-8 assumed, pos < n); *len gets its length.
uint32_t code_point_at(const char* s, size_t pos, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s) + pos;
  const size_t l = utf8_len(p[0]);
  uint32_t cp = l == 1 ? p[0] : l == 2 ? (p[0] & 0x1Fu) : l == 3 ? (p[0] & 0x0Fu) : (p[0] & 0x07u);
  for (size_t k = 1; k < l; ++k) cp = (cp << 6) | (p[k] & 0x3Fu);
  *len = l;
  return cp;
}

// The code point that ends right before s[pos] (pos > 0, valid UTF-8 assumed).
uint32_t code_point_before(const char* s, size_t pos, size_t* len) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  return code_point_at(s, start, len);
}

// Rust's char::is_whitespace (White_Space), as `tokenizers` uses for lstrip/rstrip.
bool is_white_space(uint32_t cp) { return u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_WHITE_SPACE); }

// Rust regex's Unicode \w, as `tokenizers` uses for single_word.
bool is_word_char(uint32_t cp) {
  const auto c = static_cast<UChar32>(cp);
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || (U_GET_GC_MASK(c) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) ||
         u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}

}  // namespace

// ---------------------------------------------------------------- Impl

struct HFTokenizer::Impl {
  struct Added {
    int32_t id;
    std::string content;
    std::string pattern;  // what is matched: content, or its NFC form when normalized
    bool single_word, lstrip, rstrip, normalized;
  };
  // Added-token indices by the first byte of their pattern, longest first.
  using FirstByteIndex = std::array<std::vector<int32_t>, 256>;

  hf::BpeModel bpe;         // the model: vocabulary and merges
  hf::PreTokenizer pre;     // the normalizer and the pre-tokenizer, ending with ByteLevel

  // The whole vocabulary (the model's tokens and the added ones), indexed by
  // id; an id in a gap of the numbering has present = 0.
  std::vector<std::string> spelling;                   // (V) id_to_token
  std::vector<std::string> bytes;                      // (V) what decode writes
  std::vector<uint8_t> present;                        // (V)
  std::vector<uint8_t> special;                        // (V) 1 = is_special
  std::unordered_map<std::string, int32_t> added_ids;  // added contents

  std::vector<Added> added;
  FirstByteIndex raw_index, normalized_index;  // normalized = false / true tokens

  int64_t eos = -1, pad = -1;
  std::optional<int64_t> bos;
  std::optional<int64_t> template_bos;  // what the post_processor puts first
  HFSpecialTokens resolved;             // the spellings in use (for save_to)

  std::string json_text;  // tokenizer.json as loaded (save_to)
  json tokenizer_config;  // tokenizer_config.json as loaded, or null

  static std::shared_ptr<Impl> parse(const json& j);
  void parse_added(const json& list);
  void build_decode_table();
  void parse_decoder(const json& d, const std::string& at);
  void parse_post_processor(const json& p, const std::string& at);
  void resolve(const HFSpecialTokens& special);

  std::optional<int64_t> lookup(const std::string& token) const {
    if (auto it = added_ids.find(token); it != added_ids.end()) return it->second;
    if (auto it = bpe.vocab.find(token); it != bpe.vocab.end()) return it->second;
    return std::nullopt;
  }
  bool has(int64_t id) const { return id >= 0 && id < static_cast<int64_t>(present.size()) && present[id]; }

  // The pipeline. Sink: piece(const char*, size_t) for text BPE will see, added(id,
  // const char*, size_t) for an added token with the text it matched.
  template <class Sink>
  void run(const std::string& text, Sink& sink) const;
  template <class OnText, class OnAdded>
  void split_added(const char* s, size_t n, const FirstByteIndex& index, OnText&& on_text, OnAdded&& on_added) const;
};

// ---------------------------------------------------------------- parsing

std::shared_ptr<HFTokenizer::Impl> HFTokenizer::Impl::parse(const json& j) {
  auto impl = std::make_shared<Impl>();
  if (!j.is_object()) fail(std::string("expected a JSON object, got ") + j.type_name());
  auto model = j.find("model");
  if (model == j.end()) fail("no \"model\"");
  impl->bpe.parse(*model);
  impl->spelling = impl->bpe.spelling;
  impl->present = impl->bpe.present;
  if (auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) impl->parse_added(*it);

  // The normalizer first: normalized added tokens are matched in their normalized form.
  if (auto it = j.find("normalizer"); it != j.end()) impl->pre.parse_normalizer(*it, "normalizer");
  for (auto& a : impl->added) a.pattern = a.normalized ? impl->pre.normalize_added(a.content) : a.content;
  for (size_t k = 0; k < impl->added.size(); ++k) {
    const Added& a = impl->added[k];
    auto& index = a.normalized ? impl->normalized_index : impl->raw_index;
    index[static_cast<unsigned char>(a.pattern[0])].push_back(static_cast<int32_t>(k));
  }
  for (auto* index : {&impl->raw_index, &impl->normalized_index}) {
    for (auto& v : *index) {
      std::stable_sort(v.begin(), v.end(), [&](int32_t a, int32_t b) {
        return impl->added[a].pattern.size() > impl->added[b].pattern.size();
      });
    }
  }

  auto pre = j.find("pre_tokenizer");
  impl->pre.parse(pre == j.end() ? json() : *pre, "pre_tokenizer");
  impl->build_decode_table();
  auto dec = j.find("decoder");
  impl->parse_decoder(dec == j.end() ? json() : *dec, "decoder");
  if (auto it = j.find("post_processor"); it != j.end() && !it->is_null()) {
    impl->parse_post_processor(*it, "post_processor");
  }
  return impl;
}

void HFTokenizer::Impl::parse_added(const json& list) {
  if (!list.is_array()) fail("added_tokens must be an array");
  // NB: ids as `tokenizers` gives them, not as the "id" fields say (it only warns when
  // they differ): a content in model.vocab keeps that id, the others take the next ids
  // after the vocabulary's size, in list order. Real files agree with both.
  int64_t next_id = static_cast<int64_t>(bpe.vocab.size());
  for (size_t k = 0; k < list.size(); ++k) {
    const json& t = list[k];
    const std::string at = "added_tokens[" + std::to_string(k) + "]";
    if (!t.is_object()) fail(at + " must be a JSON object");
    auto content = t.find("content");
    if (content == t.end() || !content->is_string()) fail(at + ".content must be a string");
    if (content->get_ref<const std::string&>().empty()) continue;  // `tokenizers` skips it
    Added a;
    a.content = content->get<std::string>();
    a.single_word = get_bool(t, "single_word", false, at);
    a.lstrip = get_bool(t, "lstrip", false, at);
    a.rstrip = get_bool(t, "rstrip", false, at);
    a.normalized = get_bool(t, "normalized", true, at);
    const bool is_special = get_bool(t, "special", false, at);
    if (auto it = added_ids.find(a.content); it != added_ids.end()) {
      a.id = it->second;  // listed again: the later flags win
      auto old = std::find_if(added.begin(), added.end(), [&](const Added& x) { return x.content == a.content; });
      added.erase(old);
    } else if (auto v = bpe.vocab.find(a.content); v != bpe.vocab.end()) {
      a.id = v->second;
    } else {
      if (next_id > INT32_MAX) fail(at + ": too many tokens");
      a.id = static_cast<int32_t>(next_id++);
    }
    if (static_cast<size_t>(a.id) >= spelling.size()) {
      spelling.resize(a.id + 1);
      present.resize(a.id + 1, 0);
    }
    // The added token wins over a vocabulary token with the same id, as in `tokenizers`.
    present[a.id] = 1;
    spelling[a.id] = a.content;
    added_ids[a.content] = a.id;
    if (special.size() < spelling.size()) special.resize(spelling.size(), 0);
    special[a.id] = is_special ? 1 : 0;
    added.push_back(std::move(a));
  }
}

void HFTokenizer::Impl::build_decode_table() {
  // What decode writes for each id now that the byte-level reading is settled.
  bytes.assign(spelling.size(), std::string());
  std::string decoded;
  std::vector<uint8_t> is_added(spelling.size(), 0);
  for (const Added& a : added) is_added[a.id] = 1;
  for (size_t id = 0; id < spelling.size(); ++id) {
    if (!present[id]) continue;
    if (is_added[id]) {
      bytes[id] = spelling[id];
    } else if (byte_level_decode(spelling[id], &decoded)) {
      bytes[id] = decoded;
    } else {
      bytes[id] = spelling[id];  // as `tokenizers`' ByteLevel decoder: a token outside the alphabet stays as it is
    }
  }
  special.resize(spelling.size(), 0);
}

void HFTokenizer::Impl::parse_decoder(const json& d, const std::string& at) {
  if (d.is_null()) fail(at + " is null; byte-level BPE needs the ByteLevel decoder");
  const std::string type = type_of(d, at);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    auto list = d.find("decoders");
    if (list == d.end() || !list->is_array() || list->empty()) fail(at + ".decoders must be a non-empty array");
    for (size_t k = 0; k < list->size(); ++k) {
      const std::string at_k = at + ".decoders[" + std::to_string(k) + "]";
      const std::string t = type_of((*list)[k], at_k);
      if (t != "ByteLevel") {
        fail(at_k + " type " + show(t) + " is not supported (supported: ByteLevel)" +
             (sentencepiece_style(t) ? kSentencePieceHint : ""));
      }
    }
    return;
  }
  fail(at + " type " + show(type) + " is not supported (supported: ByteLevel)" +
       (sentencepiece_style(type) ? kSentencePieceHint : ""));
}

void HFTokenizer::Impl::parse_post_processor(const json& p, const std::string& at) {
  const std::string type = type_of(p, at);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    auto list = p.find("processors");
    if (list == p.end() || !list->is_array()) fail(at + ".processors must be an array");
    for (size_t k = 0; k < list->size(); ++k) {
      parse_post_processor((*list)[k], at + ".processors[" + std::to_string(k) + "]");
    }
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto cls = p.find("cls");
    if (cls == p.end() || !cls->is_array() || cls->size() != 2 || !(*cls)[1].is_number_integer()) {
      fail(at + ".cls must be [\"token\", id]");
    }
    template_bos = (*cls)[1].get<int64_t>();
    if (!has(*template_bos)) fail(at + ".cls has id " + std::to_string(*template_bos) + ", which has no token");
    return;
  }
  if (type == "TemplateProcessing") {
    auto single = p.find("single");
    if (single == p.end() || !single->is_array()) fail(at + ".single must be an array");
    std::vector<std::string> leading;
    for (const json& item : *single) {
      if (item.contains("Sequence")) break;
      auto st = item.find("SpecialToken");
      if (st == item.end() || !st->is_object() || !st->contains("id") || !(*st)["id"].is_string()) {
        fail(at + ".single has an item that is neither {\"Sequence\": ...} nor {\"SpecialToken\": {\"id\": ...}}: " +
             item.dump());
      }
      leading.push_back((*st)["id"].get<std::string>());
    }
    if (leading.empty()) return;
    if (leading.size() > 1) {
      fail(at + ".single puts " + std::to_string(leading.size()) +
           " tokens before the text; only one (a BOS) is supported");
    }
    // The template names the token; its special_tokens entry gives the id.
    const std::string& name = leading[0];
    auto sts = p.find("special_tokens");
    if (sts != p.end() && sts->is_object() && sts->contains(name)) {
      // NB: find, not operator[]: on a const object a missing key is undefined behaviour, not an exception.
      const json& entry = (*sts)[name];
      auto ids = entry.find("ids");
      if (ids == entry.end() || !ids->is_array() || ids->size() != 1 || !(*ids)[0].is_number_integer()) {
        fail(at + ".special_tokens[" + show(name) + "].ids must be one id");
      }
      template_bos = (*ids)[0].get<int64_t>();
    } else if (auto id = lookup(name)) {
      template_bos = *id;
    } else {
      fail(at + ": the template's first token " + show(name) + " is not in the vocabulary");
    }
    if (!has(*template_bos))
      fail(at + ": the template's first token has id " + std::to_string(*template_bos) + ", which has no token");
    return;
  }
  fail(at + " type " + show(type) +
       " is not supported (supported: ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, Sequence)");
}

void HFTokenizer::Impl::resolve(const HFSpecialTokens& s) {
  auto id_of = [&](const std::string& token, const char* role) {
    auto id = lookup(token);
    if (!id) fail(std::string(role) + " token " + show(token) + " is not in the vocabulary");
    return *id;
  };
  if (!s.eos) fail("no EOS token given");
  eos = id_of(*s.eos, "EOS");
  pad = s.pad ? id_of(*s.pad, "PAD") : eos;
  std::optional<int64_t> named_bos;
  if (s.bos) named_bos = id_of(*s.bos, "BOS");
  if (s.add_bos == std::optional<bool>(false)) {
    bos.reset();
  } else if (s.add_bos == std::optional<bool>(true)) {
    if (!named_bos) fail("add_bos_token is true but no BOS token is given");
    bos = named_bos;
  } else {
    bos = template_bos;
  }
  special[eos] = special[pad] = 1;
  if (bos) special[*bos] = 1;
  resolved = s;
  resolved.pad = spelling[pad];
  if (!resolved.bos && bos) resolved.bos = spelling[*bos];
}

// ---------------------------------------------------------------- encoding

template <class OnText, class OnAdded>
void HFTokenizer::Impl::split_added(const char* s, size_t n, const FirstByteIndex& index, OnText&& on_text,
                                    OnAdded&& on_added) const {
  size_t start_offset = 0;  // end of the last accepted match
  size_t pos = 0;
  while (pos < n) {
    const auto& candidates = index[static_cast<unsigned char>(s[pos])];
    const Added* hit = nullptr;
    for (int32_t k : candidates) {
      const std::string& p = added[k].pattern;
      if (p.size() <= n - pos && std::char_traits<char>::compare(s + pos, p.data(), p.size()) == 0) {
        hit = &added[k];
        break;
      }
    }
    if (!hit) {
      ++pos;  // NB: a pattern is valid UTF-8, so it can only match where a character starts
      continue;
    }
    size_t start = pos, stop = pos + hit->pattern.size();
    size_t len;
    if (hit->single_word) {
      const bool word_before = start > 0 && is_word_char(code_point_before(s, start, &len));
      const bool word_after = stop < n && is_word_char(code_point_at(s, stop, &len));
      if (word_before || word_after) {
        pos = stop;  // the Aho-Corasick scan has moved past this match
        continue;
      }
    }
    if (hit->lstrip) {
      while (start > start_offset && is_white_space(code_point_before(s, start, &len))) start -= len;
    }
    if (hit->rstrip) {
      while (stop < n && is_white_space(code_point_at(s, stop, &len))) stop += len;
    }
    if (start_offset < start) on_text(start_offset, start);
    on_added(static_cast<int64_t>(hit->id), start, stop);
    start_offset = stop;
    pos = stop;
  }
  if (start_offset < n) on_text(start_offset, n);
}

template <class Sink>
void HFTokenizer::Impl::run(const std::string& text, Sink& sink) const {
  if (const std::string problem = utf8_problem(text); !problem.empty()) fail(problem);
  if (text.size() > static_cast<size_t>(INT32_MAX)) fail("the text is longer than 2 GiB");  // ICU's lengths are int32
  hf::Scratch sc;
  const char* raw = text.data();
  auto added_raw = [&](int64_t id, size_t b, size_t e) { sink.added(id, raw + b, e - b); };
  split_added(
      raw, text.size(), raw_index,
      [&](size_t b, size_t e) {
        const char* piece = raw + b;
        size_t n = e - b;
        const std::string_view normal = pre.normalize(piece, n, sc);
        piece = normal.data();
        n = normal.size();
        // NB: `piece` may point into sc.normalized, which nothing below rewrites.
        split_added(
            piece, n, normalized_index,
            [&](size_t pb, size_t pe) {
              pre.split(piece + pb, pe - pb, sc, [&](const char* s, size_t m) { sink.piece(s, m); });
            },
            [&](int64_t id, size_t pb, size_t pe) { sink.added(id, piece + pb, pe - pb); });
      },
      added_raw);
}

// ---------------------------------------------------------------- HFTokenizer

namespace {

// A JSON file of the folder, errors prefixed "HFTokenizer: ".
json read_json(const std::string& path) {
  try {
    return read_json_file(path);
  } catch (const Error& e) {
    throw Error(std::string("HFTokenizer: ") + e.what());
  }
}

// A token in tokenizer_config.json: "text", {"content": "text", ...} or null.
std::optional<std::string> config_token(const json& config, const char* key, const std::string& path) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  throw Error("HFTokenizer: " + path + ": \"" + key + "\" must be a string, {\"content\": \"...\"} or null, got " +
              it->dump());
}

// An id in generation_config.json / config.json: 7, [7, 9] (the first) or null.
std::optional<int64_t> config_id(const json& config, const char* key, const std::string& path) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  if (it->is_array() && it->empty()) return std::nullopt;
  throw Error("HFTokenizer: " + path + ": \"" + key + "\" must be an id, a list of ids or null, got " + it->dump());
}

}  // namespace

HFTokenizer HFTokenizer::from_json(const json& tokenizer_json, const std::string& where,
                                   const HFSpecialTokens& special) {
  try {
    auto impl = Impl::parse(tokenizer_json);
    impl->resolve(special);
    impl->json_text = tokenizer_json.dump(-1, ' ', false, json::error_handler_t::replace);
    return HFTokenizer(std::move(impl));
  } catch (const Error& e) {
    throw Error("HFTokenizer: " + where + ": " + e.what());
  }
}

HFTokenizer HFTokenizer::load_dir(const std::string& dir) {
  const std::string call = "HFTokenizer::load_dir(\"" + dir + "\")";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(call + ": no such folder");
  const std::string path = (fs::path(dir) / "tokenizer.json").string();
  if (!fs::exists(path, ec)) throw Error(call + ": no tokenizer.json in the folder (" + path + ")");
  std::string text;
  try {
    text = read_file(path, "a tokenizer.json");
  } catch (const Error& e) {
    throw Error(call + ": " + e.what());
  }
  json j;
  try {
    j = parse_json(text, path);
  } catch (const Error& e) {
    throw Error(std::string("HFTokenizer: ") + e.what());
  }
  std::shared_ptr<Impl> impl;
  try {
    impl = Impl::parse(j);
  } catch (const Error& e) {
    throw Error("HFTokenizer: " + path + ": " + e.what());
  }

  HFSpecialTokens special;
  bool config_says_eos = false, config_says_pad = false, config_says_bos = false;
  json config;  // tokenizer_config.json, or null
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  if (fs::exists(config_path, ec)) {
    config = read_json(config_path);
    if (!config.is_object()) throw Error("HFTokenizer: " + config_path + ": expected a JSON object");
    special.eos = config_token(config, "eos_token", config_path);
    special.pad = config_token(config, "pad_token", config_path);
    special.bos = config_token(config, "bos_token", config_path);
    // A key set to null there means "none": the model's files do not override it.
    config_says_eos = config.contains("eos_token");
    config_says_pad = config.contains("pad_token");
    config_says_bos = config.contains("bos_token");
    if (auto it = config.find("add_bos_token"); it != config.end() && !it->is_null()) {
      if (!it->is_boolean()) throw Error("HFTokenizer: " + config_path + ": \"add_bos_token\" must be true or false");
      special.add_bos = it->get<bool>();
    }
  }
  // The model's own files name tokens by id; they fill what the tokenizer config left out.
  for (const char* name : {"generation_config.json", "config.json"}) {
    const std::string p = (fs::path(dir) / name).string();
    if (!fs::exists(p, ec)) continue;
    const json c = read_json(p);
    if (!c.is_object()) continue;
    struct Slot {
      const char* key;
      std::optional<std::string>* value;
      bool decided;
    };
    for (const Slot& slot :
         {Slot{"eos_token_id", &special.eos, config_says_eos}, Slot{"pad_token_id", &special.pad, config_says_pad},
          Slot{"bos_token_id", &special.bos, config_says_bos}}) {
      const char* key = slot.key;
      if (slot.decided || *slot.value) continue;
      if (auto id = config_id(c, key, p)) {
        if (!impl->has(*id)) {
          throw Error("HFTokenizer: " + p + ": \"" + key + "\" is " + std::to_string(*id) +
                      ", which is not a token of " + path);
        }
        *slot.value = impl->spelling[*id];
      }
    }
  }
  if (!special.eos) {
    throw Error(call +
                ": no EOS token: tokenizer_config.json has no \"eos_token\" and neither "
                "generation_config.json nor config.json has an \"eos_token_id\"");
  }
  try {
    impl->resolve(special);
  } catch (const Error& e) {
    throw Error(call + ": " + e.what());
  }
  impl->json_text = std::move(text);
  impl->tokenizer_config = std::move(config);
  return HFTokenizer(std::move(impl));
}

std::vector<int64_t> HFTokenizer::encode(const std::string& text) const {
  struct Sink {
    const Impl& impl;
    std::vector<int64_t>& ids;
    std::vector<int32_t> symbols;  // BPE's scratch
    void piece(const char* s, size_t n) { impl.bpe.encode(s, n, symbols, ids); }
    void added(int64_t id, const char*, size_t) { ids.push_back(id); }
  };
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 1);
  Sink sink{*impl_, ids, {}};
  try {
    impl_->run(text, sink);
  } catch (const Error& e) {
    throw Error(std::string("HFTokenizer::encode: ") + e.what());
  }
  return ids;
}

std::vector<std::string> HFTokenizer::pre_tokenize(const std::string& text) const {
  struct Sink {
    std::vector<std::string>& pieces;
    void piece(const char* s, size_t n) { pieces.emplace_back(s, n); }
    void added(int64_t, const char* s, size_t n) { pieces.emplace_back(s, n); }
  };
  std::vector<std::string> pieces;
  Sink sink{pieces};
  try {
    impl_->run(text, sink);
  } catch (const Error& e) {
    throw Error(std::string("HFTokenizer::pre_tokenize: ") + e.what());
  }
  return pieces;
}

std::string HFTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  const Impl& t = *impl_;
  std::string out;
  out.reserve(ids.size() * 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (!t.has(id)) {
      throw Error("HFTokenizer::decode: id " + std::to_string(id) + " at position " + std::to_string(i) +
                  (id >= 0 && id < vocab_size()
                       ? " has no token (a gap in the numbering)"
                       : " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")"));
    }
    if (skip_special && t.special[id]) continue;
    out += t.bytes[id];
  }
  return out;
}

int64_t HFTokenizer::vocab_size() const { return static_cast<int64_t>(impl_->spelling.size()); }
int64_t HFTokenizer::eos_id() const { return impl_->eos; }
int64_t HFTokenizer::pad_id() const { return impl_->pad; }
std::optional<int64_t> HFTokenizer::bos_id() const { return impl_->bos; }

std::string HFTokenizer::id_to_token(int64_t id) const {
  if (!impl_->has(id)) {
    throw Error("HFTokenizer::id_to_token: id " + std::to_string(id) +
                (id >= 0 && id < vocab_size()
                     ? " has no token (a gap in the numbering)"
                     : " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")"));
  }
  return impl_->spelling[id];
}

std::optional<int64_t> HFTokenizer::token_to_id(const std::string& token) const { return impl_->lookup(token); }

bool HFTokenizer::is_special(int64_t id) const { return impl_->has(id) && impl_->special[id]; }

const std::string& HFTokenizer::tokenizer_json_text() const { return impl_->json_text; }
const nlohmann::json& HFTokenizer::tokenizer_config() const { return impl_->tokenizer_config; }

bool HFTokenizer::save_to(const std::string& dir) const {
  const Impl& t = *impl_;
  json config = t.tokenizer_config.is_object() ? t.tokenizer_config : json::object();
  config["eos_token"] = *t.resolved.eos;
  config["pad_token"] = *t.resolved.pad;
  config["bos_token"] = t.resolved.bos ? json(*t.resolved.bos) : json(nullptr);
  if (t.resolved.add_bos) {
    config["add_bos_token"] = *t.resolved.add_bos;
  } else {
    config.erase("add_bos_token");
  }
  if (!config.contains("tokenizer_class")) config["tokenizer_class"] = "PreTrainedTokenizerFast";
  write_file_atomic((fs::path(dir) / "tokenizer.json").string(), t.json_text);
  write_file_atomic((fs::path(dir) / "tokenizer_config.json").string(),
                    config.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  return true;
}

}  // namespace grpo
