// The normalizer and the pre-tokenizers of a tokenizer.json (internal to
// HFTokenizer): NFC through ICU, and Split / Digits / ByteLevel steps that cut
// text into the pieces BPE sees, with PCRE2 where `tokenizers` uses Oniguruma.
// Offsets are byte offsets into UTF-8 text. Read-only once parsed; each call
// brings its own Scratch.
#pragma once

#include <unicode/normalizer2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "text/regex.h"
#include "tokenizers/hf_internal.h"

namespace grpo::hf {

class Regex;  // a compiled pattern (hf_pretokenizer.cpp)

struct Span {
  size_t begin, end;
};

// How a Split keeps what its pattern matched, as `tokenizers`' SplitDelimiterBehavior.
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// One pre-tokenizer step. Split and Digits cut spans; ByteLevel may put a space
// before each span and cut with the GPT-2 pattern (the byte mapping itself is
// implicit: BPE works on bytes, see BpeModel::encode).
struct PreStep {
  enum class Kind { kSplit, kByteLevel } kind = Kind::kSplit;
  std::shared_ptr<const Regex> regex;  // Split: its pattern; ByteLevel: the GPT-2 one, or null (use_regex = false)
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
};

// Everything one encode call writes, so the tables stay read-only.
struct Scratch {
  text::Pcre2MatchData md;
  std::string normalized;
  std::string buf, next_buf;
  std::vector<Span> spans, next_spans;
  struct Seg {
    size_t begin, end;
    bool flag;  // find_matches: is a match; after the behavior: to be removed
  };
  std::vector<Seg> segs, kept;
  Scratch() : md(pcre2_match_data_create(1, nullptr)) {
    if (!md) fail("out of memory");
  }
};

// Cuts s[span) by `step`'s pattern and behavior, appending the kept non-empty spans
// to `out` (NormalizedString::split + Pattern::find_matches of `tokenizers`).
void split_span(const PreStep& step, const char* s, Span span, Scratch& sc, std::vector<Span>& out);

class PreTokenizer {
 public:
  // tokenizer.json's "normalizer": null, NFC, or a Sequence of those.
  void parse_normalizer(const json& n, const std::string& at);
  // tokenizer.json's "pre_tokenizer": ByteLevel, or a Sequence of Split and
  // Digits ending in ByteLevel.
  void parse(const json& p, const std::string& at);

  bool normalizes() const { return nfc_ != nullptr; }
  // An added token's content in normal form (raises naming the token).
  std::string normalize_added(const std::string& content) const;
  // s[0, n) in normal form: itself, or its NFC form written into sc.normalized.
  std::string_view normalize(const char* s, size_t n, Scratch& sc) const;
  // Calls on_piece(const char*, size_t) for each piece of s[0, n), in order.
  // The pieces may point into sc, which stays untouched until the call returns.
  template <class OnPiece>
  void split(const char* s, size_t n, Scratch& sc, OnPiece&& on_piece) const;

 private:
  const icu::Normalizer2* nfc_ = nullptr;  // null = no normalizer
  std::vector<PreStep> steps_;             // ending with ByteLevel
};

template <class OnPiece>
void PreTokenizer::split(const char* s, size_t n, Scratch& sc, OnPiece&& on_piece) const {
  const char* base = s;
  sc.spans.assign(1, Span{0, n});
  for (const PreStep& step : steps_) {
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
  for (const Span& sp : sc.spans) on_piece(base + sp.begin, sp.end - sp.begin);
}

}  // namespace grpo::hf
