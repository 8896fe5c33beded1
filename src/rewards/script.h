// Writing systems of code points (internal), for the language-consistency
// reward: which script a letter belongs to, and the letters of a text counted
// by script, with LaTeX command names and, optionally, math spans left out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpo::rewards {

enum class Script : uint8_t {
  kNone,  // not a letter: digits, punctuation, symbols, spaces, combining marks, emoji
  kLatin, kGreek, kCyrillic, kArmenian, kHebrew, kArabic, kDevanagari, kBengali, kGurmukhi, kGujarati, kOriya,
  kTamil, kTelugu, kKannada, kMalayalam, kSinhala, kThai, kLao, kTibetan, kMyanmar, kGeorgian, kHangul, kEthiopic,
  kKhmer, kHiragana, kKatakana, kHan,
  kCount
};

// The script of a letter, kNone for anything else (and for letters of scripts not listed).
Script script_of(uint32_t cp);

// Scripts by name: each Script's lowercase name ("latin", "han", "hiragana", …)
// and the groups "cjk" (han, hiragana, katakana, hangul) and "kana" (hiragana,
// katakana). Empty for an unknown name.
std::vector<Script> scripts_named(std::string_view name);
std::vector<std::string> script_names();  // every accepted name, sorted

struct LetterCounts {
  int64_t target = 0;   // letters in one of the target scripts
  int64_t letters = 0;  // letters in any script
};

// Counts the letters of `text` (UTF-8; invalid bytes are skipped, never
// counted). Tags (<think>, </answer>) and LaTeX command names (\frac, \text)
// are skipped; with `skip_math`, so is everything inside $…$, $$…$$, \(…\)
// and \[…\]. Counts bytes [begin, end) of `text`; `target` is indexed by Script.
LetterCounts count_letters(const std::string& text, size_t begin, size_t end,
                           const std::vector<bool>& target, bool skip_math);

}  // namespace grpo::rewards
