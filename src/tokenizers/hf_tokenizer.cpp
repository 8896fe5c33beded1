// HFTokenizer: Hugging Face tokenizer.json byte-level BPE. Loading validates the whole
// file up front; encode runs added-token matching, NFC (ICU), PCRE2 pre-tokenization and
// rank-ordered merges, in that order, as `tokenizers` does. Offsets are byte offsets
// into UTF-8 text; ids are int32 inside (every real vocabulary fits) and int64 outside.
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/uchar.h>

#include "grpo/tokenizers/hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <deque>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "grpo/error.h"
#include "grpo/files.h"
#include "text/regex.h"
#include "text/utf8.h"

namespace grpo {

namespace {

using nlohmann::json;
using text::next_code_point;
using text::utf8;
namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& problem) { throw Error(problem); }

// A JSON string literal of `s`; invalid UTF-8 shows as U+FFFD rather than throwing.
std::string show(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

std::string hex2(unsigned value) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02X", value & 0xFFu);
  return buf;
}

// ---------------------------------------------------------------- UTF-8

// Length of the (valid) UTF-8 sequence that starts with byte `b`.
size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

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

// ---------------------------------------------------------------- byte-level alphabet

// GPT-2's bytes_to_unicode: the 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand
// for themselves, the other 68 for U+0100, U+0101, ... in byte order (space = 'Ġ').
struct ByteAlphabet {
  std::array<uint32_t, 256> cp_of_byte{};
  std::array<int16_t, 324> byte_of_cp{};  // -1 = not a byte-level character
  ByteAlphabet() {
    byte_of_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      cp_of_byte[b] = printable ? static_cast<uint32_t>(b) : next++;
      byte_of_cp[cp_of_byte[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

// The bytes a byte-level spelling stands for; false when some character of it is
// not in the alphabet (or it is not valid UTF-8).
bool byte_level_decode(const std::string& spelling, std::string* bytes) {
  const ByteAlphabet& a = byte_alphabet();
  bytes->clear();
  for (size_t pos = 0; pos < spelling.size();) {
    uint32_t cp;
    const size_t len = next_code_point(spelling, pos, &cp);
    if (len == 0) return false;
    if (cp >= a.byte_of_cp.size() || a.byte_of_cp[cp] < 0) return false;
    *bytes += static_cast<char>(a.byte_of_cp[cp]);
    pos += len;
  }
  return true;
}

std::string byte_level_spelling(unsigned char b) { return utf8(byte_alphabet().cp_of_byte[b]); }

// ---------------------------------------------------------------- PCRE2

using text::pcre2_message;
using MatchData = text::Pcre2MatchData;

// `tokenizers` compiles its patterns with Oniguruma. PCRE2 reads them the same way except
// for two classes, which are spelled out here as Oniguruma has them (checked over every
// code point): \s is White_Space (PCRE2 adds U+180E), and \w is Alphabetic, marks,
// decimal digits, connector punctuation and ² ³ ¹ ¼ ½ ¾ (PCRE2: letters and numbers).
// \W inside [...] and \b keep PCRE2's meaning. \Q...\E is copied as it is.
std::string oniguruma_to_pcre2(const std::string& p) {
  static const char* const kWord = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 'Q') {
        const size_t end = p.find("\\E", i + 1);
        const size_t stop = end == std::string::npos ? p.size() : end + 2;
        out.append(p, i - 1, stop - (i - 1));
        i = stop - 1;
      } else if (e == 's') {
        out += "\\p{White_Space}";
      } else if (e == 'S') {
        out += "\\P{White_Space}";
      } else if (e == 'w') {
        out += in_class ? std::string(kWord) : "[" + std::string(kWord) + "]";
      } else if (e == 'W' && !in_class) {
        out += "[^" + std::string(kWord) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
    } else if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t end = p.find(":]", i + 2);  // [:alpha:] inside a class
      if (end != std::string::npos) {
        out.append(p, i + 1, end + 2 - (i + 1));
        i = end + 1;
      }
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

// A compiled pattern (UTF + UCP, JIT when the library has it). Read-only after
// construction, so one object serves every thread; each call brings its match data.
class Regex {
 public:
  // `pattern`: an Oniguruma regex as tokenizer.json has it, or a literal string.
  Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
    int err = 0;
    size_t offset = 0;
    // NB: PCRE2_LITERAL admits PCRE2_UTF but not PCRE2_UCP, which a literal does not need.
    const uint32_t flags = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
    const std::string compiled = literal ? pattern : oniguruma_to_pcre2(pattern);
    code_ = text::pcre2_compile_pattern(compiled, flags, &err, &offset);
    if (!code_) {
      fail("the pattern " + show(pattern) + " does not compile (as PCRE2 " + show(compiled) + ", at offset " +
           std::to_string(offset) + "): " + pcre2_message(err));
    }
    pcre2_jit_compile(code_.get(), PCRE2_JIT_COMPLETE);  // NB: on failure pcre2_match interprets instead
  }

  // Calls f(begin, end) for each match in s[0, n) from left to right, as the Rust
  // bindings `tokenizers` uses iterate: an empty match that ends where the last match
  // ended is skipped by moving on one character. s must be valid UTF-8.
  template <class F>
  void for_each_match(const char* s, size_t n, pcre2_match_data* md, F&& f) const {
    size_t start = 0;
    size_t last_end = SIZE_MAX;
    while (start <= n) {
      const int rc =
          pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s), n, start, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0) fail("the pre-tokenizer pattern " + show(pattern_) + " failed: " + pcre2_message(rc));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t b = ov[0], e = ov[1];
      if (b == e && e == last_end) {
        start += start < n ? utf8_len(static_cast<unsigned char>(s[start])) : 1;
        continue;
      }
      f(b, e);
      last_end = e;
      start = e;
    }
  }

 private:
  std::string pattern_;
  text::Pcre2Code code_;
};

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---------------------------------------------------------------- pieces

struct Span {
  size_t begin, end;
};

// How a Split keeps what its pattern matched, as `tokenizers`' SplitDelimiterBehavior.
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One pre-tokenizer step. Split and Digits cut spans; ByteLevel may put a space
// before each span and cut with the GPT-2 pattern (the byte mapping itself is
// implicit: BPE works on bytes, see Impl::bpe).
struct PreStep {
  enum class Kind { kSplit, kByteLevel } kind = Kind::kSplit;
  std::shared_ptr<const Regex> regex;  // Split: its pattern; ByteLevel: the GPT-2 one, or null (use_regex = false)
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
};

// Everything one encode call writes, so the tables stay read-only.
struct Scratch {
  MatchData md;
  std::string normalized;
  std::string buf, next_buf;
  std::vector<Span> spans, next_spans;
  struct Seg {
    size_t begin, end;
    bool flag;  // find_matches: is a match; after the behavior: to be removed
  };
  std::vector<Seg> segs, kept;
  std::vector<int32_t> symbols;
  Scratch() : md(pcre2_match_data_create(1, nullptr)) {
    if (!md) fail("out of memory");
  }
};

// Cuts s[span) by `step`'s pattern and behavior, appending the kept non-empty spans
// to `out` (NormalizedString::split + Pattern::find_matches of `tokenizers`).
void split_span(const PreStep& step, const char* s, Span span, Scratch& sc, std::vector<Span>& out) {
  auto& segs = sc.segs;
  segs.clear();
  size_t prev = span.begin;
  step.regex->for_each_match(s + span.begin, span.end - span.begin, sc.md.get(), [&](size_t mb, size_t me) {
    mb += span.begin, me += span.begin;
    if (prev != mb) segs.push_back({prev, mb, false});
    segs.push_back({mb, me, true});
    prev = me;
  });
  if (prev != span.end) segs.push_back({prev, span.end, false});
  if (step.invert) {
    for (auto& g : segs) g.flag = !g.flag;
  }

  auto& kept = sc.kept;  // (offsets, remove)
  kept.clear();
  bool previous_match = false;
  switch (step.behavior) {
    case Behavior::kIsolated:
      for (const auto& g : segs) kept.push_back({g.begin, g.end, false});
      break;
    case Behavior::kRemoved:
      kept = segs;
      break;
    case Behavior::kContiguous:
      for (const auto& g : segs) {
        if (g.flag == previous_match && !kept.empty()) {
          kept.back().end = g.end;
        } else {
          kept.push_back({g.begin, g.end, false});
        }
        previous_match = g.flag;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const auto& g : segs) {
        if (g.flag && !previous_match && !kept.empty()) {
          kept.back().end = g.end;
        } else {
          kept.push_back({g.begin, g.end, false});
        }
        previous_match = g.flag;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->flag && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back({it->begin, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (const auto& k : kept) {
    if (!k.flag && k.end > k.begin) out.push_back({k.begin, k.end});
  }
}

// ---------------------------------------------------------------- JSON helpers

bool get_bool(const json& j, const char* key, bool fallback, const std::string& at) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(at + "." + key + " must be true or false, got " + it->dump());
  return it->get<bool>();
}

std::string type_of(const json& j, const std::string& at) {
  if (!j.is_object()) fail(at + " must be a JSON object, got " + j.dump());
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) fail(at + " has no \"type\" string");
  return it->get<std::string>();
}

const char* const kSentencePieceHint =
    "; this is a SentencePiece-style tokenizer (Llama 2, Mistral, TinyLlama): load the folder's "
    "tokenizer.model with grpo::SentencePieceTokenizer instead";

bool sentencepiece_style(const std::string& type) {
  return type == "Metaspace" || type == "Prepend" || type == "Replace" || type == "ByteFallback" || type == "Fuse" ||
         type == "Strip";
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

  // Vocabulary, indexed by id; an id in a gap of the numbering has present = 0.
  std::vector<std::string> spelling;                   // (V) id_to_token
  std::vector<std::string> bytes;                      // (V) what decode writes
  std::vector<uint8_t> present;                        // (V)
  std::vector<uint8_t> special;                        // (V) 1 = is_special
  std::unordered_map<std::string, int32_t> vocab;      // the model's spellings
  std::unordered_map<std::string, int32_t> added_ids;  // added contents
  // ignore_merges: the model tokens by the bytes they spell (byte-level ones only); the
  // keys view into vocab_bytes, whose elements never move.
  std::deque<std::string> vocab_bytes;
  std::unordered_map<std::string_view, int32_t> vocab_by_bytes;
  std::array<int32_t, 256> byte_id{};  // the model token of each byte's symbol; -1 = missing
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  bool ignore_merges = false;

  std::vector<Added> added;
  FirstByteIndex raw_index, normalized_index;  // normalized = false / true tokens

  const icu::Normalizer2* nfc = nullptr;  // null = no normalizer
  std::vector<PreStep> steps;             // the pre-tokenizer, ending with ByteLevel

  int64_t eos = -1, pad = -1;
  std::optional<int64_t> bos;
  std::optional<int64_t> template_bos;  // what the post_processor puts first
  HFSpecialTokens resolved;             // the spellings in use (for save_to)

  std::string json_text;  // tokenizer.json as loaded (save_to)
  json tokenizer_config;  // tokenizer_config.json as loaded, or null

  static std::shared_ptr<Impl> parse(const json& j);
  void parse_model(const json& model);
  void parse_added(const json& list);
  void parse_normalizer(const json& n, const std::string& at);
  void parse_pre_tokenizer(const json& p, const std::string& at);
  void parse_decoder(const json& d, const std::string& at);
  void parse_post_processor(const json& p, const std::string& at);
  void resolve(const HFSpecialTokens& special);

  std::optional<int64_t> lookup(const std::string& token) const {
    if (auto it = added_ids.find(token); it != added_ids.end()) return it->second;
    if (auto it = vocab.find(token); it != vocab.end()) return it->second;
    return std::nullopt;
  }
  bool has(int64_t id) const { return id >= 0 && id < static_cast<int64_t>(present.size()) && present[id]; }

  // The pipeline. Sink: piece(const char*, size_t) for text BPE will see, added(id,
  // const char*, size_t) for an added token with the text it matched.
  template <class Sink>
  void run(const std::string& text, Sink& sink) const;
  template <class OnText, class OnAdded>
  void split_added(const char* s, size_t n, const FirstByteIndex& index, OnText&& on_text, OnAdded&& on_added) const;
  template <class Sink>
  void pre_tokenize_text(const char* s, size_t n, Scratch& sc, Sink& sink) const;
  void bpe(const char* s, size_t n, Scratch& sc, std::vector<int64_t>& out) const;
};

// ---------------------------------------------------------------- parsing

std::shared_ptr<HFTokenizer::Impl> HFTokenizer::Impl::parse(const json& j) {
  auto impl = std::make_shared<Impl>();
  if (!j.is_object()) fail(std::string("expected a JSON object, got ") + j.type_name());
  auto model = j.find("model");
  if (model == j.end()) fail("no \"model\"");
  impl->parse_model(*model);
  if (auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) impl->parse_added(*it);

  // The normalizer first: normalized added tokens are matched in their normalized form.
  if (auto it = j.find("normalizer"); it != j.end()) impl->parse_normalizer(*it, "normalizer");
  for (auto& a : impl->added) {
    a.pattern = a.content;
    if (a.normalized && impl->nfc) {
      UErrorCode status = U_ZERO_ERROR;
      a.pattern.clear();
      icu::StringByteSink<std::string> sink(&a.pattern);
      impl->nfc->normalizeUTF8(0, icu::StringPiece(a.content.data(), static_cast<int32_t>(a.content.size())), sink,
                               nullptr, status);
      if (U_FAILURE(status)) fail("added token " + show(a.content) + ": NFC failed: " + u_errorName(status));
    }
  }
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
  impl->parse_pre_tokenizer(pre == j.end() ? json() : *pre, "pre_tokenizer");
  auto dec = j.find("decoder");
  impl->parse_decoder(dec == j.end() ? json() : *dec, "decoder");
  if (auto it = j.find("post_processor"); it != j.end() && !it->is_null()) {
    impl->parse_post_processor(*it, "post_processor");
  }
  return impl;
}

void HFTokenizer::Impl::parse_model(const json& m) {
  if (!m.is_object()) fail(std::string("\"model\" must be a JSON object, got ") + m.type_name());
  // Files written before `tokenizers` tagged its models have no "type"; merges say BPE.
  std::string type = "BPE";
  if (auto it = m.find("type"); it != m.end()) {
    if (!it->is_string()) fail("model.type must be a string, got " + it->dump());
    type = it->get<std::string>();
  } else if (!m.contains("merges")) {
    fail("model has no \"type\" (and no \"merges\", so it is not BPE)");
  }
  if (type != "BPE") fail("model.type is " + show(type) + "; only byte-level \"BPE\" is supported");
  if (get_bool(m, "byte_fallback", false, "model")) {
    fail(std::string("model.byte_fallback is true, which HFTokenizer does not support") + kSentencePieceHint);
  }
  if (auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) {
      fail("model.dropout is " + it->dump() + "; BPE dropout (random merges) is not supported, expected null");
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = m.find(key);
    if (it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      fail(std::string("model.") + key + " is " + it->dump() + "; only null or \"\" is supported (byte-level BPE)");
    }
  }
  ignore_merges = get_bool(m, "ignore_merges", false, "model");

  auto v = m.find("vocab");
  if (v == m.end() || !v->is_object()) fail("model.vocab must be a JSON object of token -> id");
  int64_t max_id = -1;
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX) {
      fail("model.vocab[" + show(it.key()) + "] must be an id in [0, 2^31), got " + it.value().dump());
    }
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  spelling.assign(static_cast<size_t>(max_id + 1), std::string());
  present.assign(spelling.size(), 0);
  vocab.reserve(v->size());
  for (auto it = v->begin(); it != v->end(); ++it) {
    const auto id = it.value().get<int32_t>();
    if (present[id]) {
      fail("model.vocab: id " + std::to_string(id) + " is given to both " + show(spelling[id]) + " and " +
           show(it.key()));
    }
    present[id] = 1;
    spelling[id] = it.key();
    vocab.emplace(it.key(), id);
  }

  byte_id.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (auto it = vocab.find(byte_level_spelling(static_cast<unsigned char>(b))); it != vocab.end()) {
      byte_id[b] = it->second;
    }
  }
  if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) {
    // With every byte symbol present the unknown token can never be emitted, so it is harmless.
    for (int b = 0; b < 256; ++b) {
      if (byte_id[b] < 0) {
        fail("model.unk_token is " + it->dump() + " and the byte symbol " + show(byte_level_spelling(b)) + " (byte 0x" +
             hex2(b) + ") is missing from model.vocab; unknown-token BPE is not supported");
      }
    }
  }

  auto ms = m.find("merges");
  if (ms != m.end() && !ms->is_null()) {
    if (!ms->is_array()) fail("model.merges must be an array");
    merges.reserve(ms->size());
    std::string left, right;
    for (size_t rank = 0; rank < ms->size(); ++rank) {
      const json& e = (*ms)[rank];
      const std::string at = "model.merges[" + std::to_string(rank) + "]";
      if (e.is_string()) {
        // The older form "a b"; byte-level symbols never contain a space.
        const std::string& s = e.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          fail(at + " is " + show(s) + ", expected two tokens separated by one space");
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        left = e[0].get<std::string>();
        right = e[1].get<std::string>();
      } else {
        fail(at + " is " + e.dump() + ", expected \"a b\" or [\"a\", \"b\"]");
      }
      auto a = vocab.find(left);
      if (a == vocab.end()) fail(at + ": " + show(left) + " is not in model.vocab");
      auto b = vocab.find(right);
      if (b == vocab.end()) fail(at + ": " + show(right) + " is not in model.vocab");
      auto c = vocab.find(left + right);
      if (c == vocab.end()) {
        fail(at + ": the merged token " + show(left + right) + " is not in model.vocab");
      }
      // NB: a repeated pair takes its last rank, as `tokenizers`' map insert does.
      merges[(static_cast<uint64_t>(a->second) << 32) | static_cast<uint32_t>(b->second)] = {static_cast<int32_t>(rank),
                                                                                             c->second};
    }
  }
}

void HFTokenizer::Impl::parse_added(const json& list) {
  if (!list.is_array()) fail("added_tokens must be an array");
  // NB: ids as `tokenizers` gives them, not as the "id" fields say (it only warns when
  // they differ): a content in model.vocab keeps that id, the others take the next ids
  // after the vocabulary's size, in list order. Real files agree with both.
  int64_t next_id = static_cast<int64_t>(vocab.size());
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
    } else if (auto v = vocab.find(a.content); v != vocab.end()) {
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

void HFTokenizer::Impl::parse_normalizer(const json& n, const std::string& at) {
  if (n.is_null()) return;
  const std::string type = type_of(n, at);
  if (type == "NFC") {
    UErrorCode status = U_ZERO_ERROR;
    nfc = icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status)) fail(at + ": ICU has no NFC data: " + u_errorName(status));
  } else if (type == "Sequence") {
    auto list = n.find("normalizers");
    if (list == n.end() || !list->is_array()) fail(at + ".normalizers must be an array");
    for (size_t k = 0; k < list->size(); ++k)
      parse_normalizer((*list)[k], at + ".normalizers[" + std::to_string(k) + "]");
  } else {
    fail(at + " type " + show(type) + " is not supported (supported: null, NFC, a Sequence of NFC)" +
         (sentencepiece_style(type) ? kSentencePieceHint : ""));
  }
}

void HFTokenizer::Impl::parse_pre_tokenizer(const json& p, const std::string& at) {
  if (p.is_null()) {
    fail(at + " is null; HFTokenizer supports byte-level BPE only, whose pre_tokenizer ends with ByteLevel");
  }
  std::vector<std::pair<json, std::string>> list;
  if (type_of(p, at) == "Sequence") {
    auto items = p.find("pretokenizers");
    if (items == p.end() || !items->is_array()) fail(at + ".pretokenizers must be an array");
    for (size_t k = 0; k < items->size(); ++k)
      list.emplace_back((*items)[k], at + ".pretokenizers[" + std::to_string(k) + "]");
  } else {
    list.emplace_back(p, at);
  }
  std::shared_ptr<const Regex> gpt2;
  for (size_t k = 0; k < list.size(); ++k) {
    const json& s = list[k].first;
    const std::string& where_s = list[k].second;
    const std::string type = type_of(s, where_s);
    PreStep step;
    if (type == "ByteLevel") {
      if (k + 1 != list.size()) fail(where_s + ": ByteLevel must be the last pre-tokenizer");
      step.kind = PreStep::Kind::kByteLevel;
      step.add_prefix_space = get_bool(s, "add_prefix_space", true, where_s);
      if (get_bool(s, "use_regex", true, where_s)) {
        if (!gpt2) gpt2 = std::make_shared<Regex>(kGpt2Pattern, false);
        step.regex = gpt2;
      }
    } else if (type == "Split") {
      auto pat = s.find("pattern");
      if (pat == s.end() || !pat->is_object() || pat->size() != 1 ||
          !(pat->contains("Regex") || pat->contains("String")) || !pat->begin().value().is_string()) {
        fail(where_s + ".pattern must be {\"Regex\": \"...\"} or {\"String\": \"...\"}");
      }
      const bool literal = pat->contains("String");
      const std::string text = pat->begin().value().get<std::string>();
      if (literal && text.empty()) continue;  // `tokenizers`: an empty string matches nothing
      try {
        step.regex = std::make_shared<Regex>(text, literal);
      } catch (const Error& e) {
        fail(where_s + ".pattern: " + e.what());
      }
      auto b = s.find("behavior");
      const std::string behavior = b != s.end() && b->is_string() ? b->get<std::string>() : "";
      if (behavior == "Removed") {
        step.behavior = Behavior::kRemoved;
      } else if (behavior == "Isolated") {
        step.behavior = Behavior::kIsolated;
      } else if (behavior == "MergedWithPrevious") {
        step.behavior = Behavior::kMergedWithPrevious;
      } else if (behavior == "MergedWithNext") {
        step.behavior = Behavior::kMergedWithNext;
      } else if (behavior == "Contiguous") {
        step.behavior = Behavior::kContiguous;
      } else {
        fail(where_s + ".behavior is " + (b == s.end() ? std::string("missing") : b->dump()) +
             ", expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
      }
      step.invert = get_bool(s, "invert", false, where_s);
    } else if (type == "Digits") {
      // Rust's char::is_numeric is \p{N}; one piece per digit, or per run of them.
      step.regex = std::make_shared<Regex>("\\p{N}", false);
      step.behavior = get_bool(s, "individual_digits", false, where_s) ? Behavior::kIsolated : Behavior::kContiguous;
    } else {
      fail(where_s + " type " + show(type) +
           " is not supported (supported: ByteLevel, or a Sequence of Split and Digits ending with ByteLevel)" +
           (sentencepiece_style(type) ? kSentencePieceHint : ""));
    }
    steps.push_back(std::move(step));
  }
  if (steps.empty() || steps.back().kind != PreStep::Kind::kByteLevel) {
    fail(at + " does not end with ByteLevel; HFTokenizer supports byte-level BPE only");
  }

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
  if (ignore_merges) {
    vocab_by_bytes.reserve(vocab.size());
    for (const auto& kv : vocab) {
      if (byte_level_decode(kv.first, &decoded) && !decoded.empty()) {
        vocab_bytes.push_back(decoded);
        vocab_by_bytes.emplace(vocab_bytes.back(), kv.second);
      }
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
      const json& ids = (*sts)[name]["ids"];
      if (!ids.is_array() || ids.size() != 1 || !ids[0].is_number_integer()) {
        fail(at + ".special_tokens[" + show(name) + "].ids must be one id");
      }
      template_bos = ids[0].get<int64_t>();
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
  Scratch sc;
  const char* raw = text.data();
  auto added_raw = [&](int64_t id, size_t b, size_t e) { sink.added(id, raw + b, e - b); };
  split_added(
      raw, text.size(), raw_index,
      [&](size_t b, size_t e) {
        const char* piece = raw + b;
        size_t n = e - b;
        if (nfc) {
          UErrorCode status = U_ZERO_ERROR;
          const icu::StringPiece sp(piece, static_cast<int32_t>(n));
          if (!nfc->isNormalizedUTF8(sp, status)) {
            sc.normalized.clear();
            status = U_ZERO_ERROR;
            icu::StringByteSink<std::string> out(&sc.normalized);
            nfc->normalizeUTF8(0, sp, out, nullptr, status);
            if (U_FAILURE(status)) fail(std::string("NFC failed: ") + u_errorName(status));
            piece = sc.normalized.data();
            n = sc.normalized.size();
          }
        }
        // NB: `piece` may point into sc.normalized, which nothing below rewrites.
        split_added(
            piece, n, normalized_index, [&](size_t pb, size_t pe) { pre_tokenize_text(piece + pb, pe - pb, sc, sink); },
            [&](int64_t id, size_t pb, size_t pe) { sink.added(id, piece + pb, pe - pb); });
      },
      added_raw);
}

template <class Sink>
void HFTokenizer::Impl::pre_tokenize_text(const char* s, size_t n, Scratch& sc, Sink& sink) const {
  const char* base = s;
  sc.spans.assign(1, Span{0, n});
  for (const PreStep& step : steps) {
    if (step.kind == PreStep::Kind::kByteLevel && step.add_prefix_space) {
      // A space before every span that does not start with one; the spans move into a new buffer.
      sc.next_buf.clear();
      sc.next_spans.clear();
      for (const Span& sp : sc.spans) {
        const size_t b = sc.next_buf.size();
        if (base[sp.begin] != ' ') sc.next_buf += ' ';
        sc.next_buf.append(base + sp.begin, sp.end - sp.begin);
        sc.next_spans.push_back({b, sc.next_buf.size()});
      }
      std::swap(sc.buf, sc.next_buf);
      std::swap(sc.spans, sc.next_spans);
      base = sc.buf.data();
    }
    if (!step.regex) continue;
    sc.next_spans.clear();
    for (const Span& sp : sc.spans) split_span(step, base, sp, sc, sc.next_spans);
    std::swap(sc.spans, sc.next_spans);
  }
  for (const Span& sp : sc.spans) sink.piece(base + sp.begin, sp.end - sp.begin, sc);
}

void HFTokenizer::Impl::bpe(const char* s, size_t n, Scratch& sc, std::vector<int64_t>& out) const {
  if (ignore_merges) {
    if (auto it = vocab_by_bytes.find(std::string_view(s, n)); it != vocab_by_bytes.end()) {
      out.push_back(it->second);
      return;
    }
  }
  auto& sym = sc.symbols;
  sym.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    sym[i] = byte_id[b];
    if (sym[i] < 0) {
      fail("byte 0x" + hex2(b) + " (byte-level symbol " + show(byte_level_spelling(b)) + ") is not in the vocabulary");
    }
  }
  auto find = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    return it == merges.end() ? nullptr : &it->second;
  };
  // The pair of lowest rank merges first, the leftmost one among equals; the
  // `tokenizers` priority queue does the same. Short words rescan (cheaper in
  // practice); long ones keep a heap so a long run stays O(n log n).
  if (n <= 48) {
    size_t m = n;
    while (m > 1) {
      int32_t best_rank = INT32_MAX, best_id = -1;
      size_t best = 0;
      for (size_t i = 0; i + 1 < m; ++i) {
        if (const auto* r = find(sym[i], sym[i + 1]); r && r->first < best_rank) {
          best_rank = r->first, best_id = r->second, best = i;
        }
      }
      if (best_id < 0) break;
      sym[best] = best_id;
      std::copy(sym.begin() + best + 2, sym.begin() + m, sym.begin() + best + 1);
      --m;
    }
    for (size_t i = 0; i < m; ++i) out.push_back(sym[i]);
    return;
  }
  // Heap path: symbols in a linked list; an entry is stale when its pair has changed.
  std::vector<int32_t> prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Entry {
    int32_t rank, pos, id;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const auto* r = find(sym[i], sym[i + 1])) heap.push({r->first, static_cast<int32_t>(i), r->second});
  }
  while (!heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const int32_t p = top.pos;
    if (!alive[p] || next[p] < 0) continue;
    const int32_t q = next[p];
    const auto* r = find(sym[p], sym[q]);
    if (!r || r->second != top.id) continue;
    sym[p] = top.id;
    alive[q] = 0;
    next[p] = next[q];
    if (next[p] >= 0) prev[next[p]] = p;
    if (prev[p] >= 0) {
      if (const auto* l = find(sym[prev[p]], sym[p])) heap.push({l->first, prev[p], l->second});
    }
    if (next[p] >= 0) {
      if (const auto* rr = find(sym[p], sym[next[p]])) heap.push({rr->first, p, rr->second});
    }
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
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
    void piece(const char* s, size_t n, Scratch& sc) { impl.bpe(s, n, sc, ids); }
    void added(int64_t id, const char*, size_t) { ids.push_back(id); }
  };
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 1);
  Sink sink{*impl_, ids};
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
    void piece(const char* s, size_t n, Scratch&) { pieces.emplace_back(s, n); }
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
