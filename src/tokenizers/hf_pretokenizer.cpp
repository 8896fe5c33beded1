// The normalizer and pre-tokenizers: parsing them, PCRE2 patterns read as
// Oniguruma reads them, NFC, and the Split behaviors.
#include "tokenizers/hf_pretokenizer.h"

#include <unicode/bytestream.h>
#include <unicode/stringpiece.h>

#include <algorithm>
#include <cstdint>

namespace grpo::hf {

using text::pcre2_message;

namespace {

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

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

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

void PreTokenizer::parse_normalizer(const json& n, const std::string& at) {
  if (n.is_null()) return;
  const std::string type = type_of(n, at);
  if (type == "NFC") {
    UErrorCode status = U_ZERO_ERROR;
    nfc_ = icu::Normalizer2::getNFCInstance(status);
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

void PreTokenizer::parse(const json& p, const std::string& at) {
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
    steps_.push_back(std::move(step));
  }
  if (steps_.empty() || steps_.back().kind != PreStep::Kind::kByteLevel) {
    fail(at + " does not end with ByteLevel; HFTokenizer supports byte-level BPE only");
  }
}

std::string PreTokenizer::normalize_added(const std::string& content) const {
  if (!nfc_) return content;
  std::string out;
  UErrorCode status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  nfc_->normalizeUTF8(0, icu::StringPiece(content.data(), static_cast<int32_t>(content.size())), sink, nullptr,
                      status);
  if (U_FAILURE(status)) fail("added token " + show(content) + ": NFC failed: " + u_errorName(status));
  return out;
}

std::string_view PreTokenizer::normalize(const char* s, size_t n, Scratch& sc) const {
  if (!nfc_) return {s, n};
  UErrorCode status = U_ZERO_ERROR;
  const icu::StringPiece sp(s, static_cast<int32_t>(n));
  if (nfc_->isNormalizedUTF8(sp, status)) return {s, n};
  sc.normalized.clear();
  status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> out(&sc.normalized);
  nfc_->normalizeUTF8(0, sp, out, nullptr, status);
  if (U_FAILURE(status)) fail(std::string("NFC failed: ") + u_errorName(status));
  return sc.normalized;
}

}  // namespace grpo::hf
