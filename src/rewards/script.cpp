// The script table of script.h: sorted, disjoint ranges of letters, looked up
// by binary search. Digits, punctuation and combining marks inside a script's
// blocks are left out of its ranges, so they count as no letter at all.
#include "rewards/script.h"

#include <algorithm>
#include <iterator>

#include "text/utf8.h"

namespace grpo::rewards {
namespace {

struct Range {
  uint32_t first, last;
  Script script;
};

using S = Script;
constexpr Range kRanges[] = {
    {0x0041, 0x005A, S::kLatin},      {0x0061, 0x007A, S::kLatin},      {0x00AA, 0x00AA, S::kLatin},
    {0x00BA, 0x00BA, S::kLatin},      {0x00C0, 0x00D6, S::kLatin},      {0x00D8, 0x00F6, S::kLatin},
    {0x00F8, 0x02AF, S::kLatin},      {0x0370, 0x0373, S::kGreek},      {0x0376, 0x0377, S::kGreek},
    {0x037B, 0x037D, S::kGreek},      {0x037F, 0x037F, S::kGreek},      {0x0386, 0x0386, S::kGreek},
    {0x0388, 0x03FF, S::kGreek},      {0x0400, 0x0482, S::kCyrillic},   {0x048A, 0x052F, S::kCyrillic},
    {0x0531, 0x0587, S::kArmenian},   {0x05D0, 0x05EA, S::kHebrew},     {0x05EF, 0x05F2, S::kHebrew},
    {0x0620, 0x064A, S::kArabic},     {0x066E, 0x06D3, S::kArabic},     {0x06D5, 0x06D5, S::kArabic},
    {0x06EE, 0x06EF, S::kArabic},     {0x06FA, 0x06FF, S::kArabic},     {0x0750, 0x077F, S::kArabic},
    {0x08A0, 0x08C9, S::kArabic},     {0x0904, 0x0939, S::kDevanagari}, {0x093D, 0x093D, S::kDevanagari},
    {0x0950, 0x0950, S::kDevanagari}, {0x0958, 0x0961, S::kDevanagari}, {0x0971, 0x097F, S::kDevanagari},
    {0x0985, 0x09B9, S::kBengali},    {0x09BD, 0x09BD, S::kBengali},    {0x09CE, 0x09CE, S::kBengali},
    {0x09DC, 0x09E1, S::kBengali},    {0x09F0, 0x09F1, S::kBengali},    {0x0A05, 0x0A39, S::kGurmukhi},
    {0x0A59, 0x0A5E, S::kGurmukhi},   {0x0A72, 0x0A74, S::kGurmukhi},   {0x0A85, 0x0AB9, S::kGujarati},
    {0x0ABD, 0x0ABD, S::kGujarati},   {0x0AD0, 0x0AE1, S::kGujarati},   {0x0B05, 0x0B39, S::kOriya},
    {0x0B3D, 0x0B3D, S::kOriya},      {0x0B5C, 0x0B61, S::kOriya},      {0x0B71, 0x0B71, S::kOriya},
    {0x0B83, 0x0BB9, S::kTamil},      {0x0BD0, 0x0BD0, S::kTamil},      {0x0C05, 0x0C39, S::kTelugu},
    {0x0C3D, 0x0C3D, S::kTelugu},     {0x0C58, 0x0C61, S::kTelugu},     {0x0C80, 0x0C80, S::kKannada},
    {0x0C85, 0x0CB9, S::kKannada},    {0x0CBD, 0x0CBD, S::kKannada},    {0x0CDD, 0x0CE1, S::kKannada},
    {0x0D04, 0x0D3A, S::kMalayalam},  {0x0D3D, 0x0D3D, S::kMalayalam},  {0x0D4E, 0x0D4E, S::kMalayalam},
    {0x0D54, 0x0D61, S::kMalayalam},  {0x0D7A, 0x0D7F, S::kMalayalam},  {0x0D85, 0x0DC6, S::kSinhala},
    {0x0E01, 0x0E30, S::kThai},       {0x0E32, 0x0E33, S::kThai},       {0x0E40, 0x0E46, S::kThai},
    {0x0E81, 0x0EB0, S::kLao},        {0x0EB2, 0x0EB3, S::kLao},        {0x0EBD, 0x0EC6, S::kLao},
    {0x0EDC, 0x0EDF, S::kLao},        {0x0F00, 0x0F00, S::kTibetan},    {0x0F40, 0x0F6C, S::kTibetan},
    {0x0F88, 0x0F8C, S::kTibetan},    {0x1000, 0x102A, S::kMyanmar},    {0x103F, 0x103F, S::kMyanmar},
    {0x1050, 0x1055, S::kMyanmar},    {0x10A0, 0x10FF, S::kGeorgian},   {0x1100, 0x11FF, S::kHangul},
    {0x1200, 0x135A, S::kEthiopic},   {0x1380, 0x138F, S::kEthiopic},   {0x1780, 0x17B3, S::kKhmer},
    {0x1C80, 0x1C88, S::kCyrillic},   {0x1C90, 0x1CBF, S::kGeorgian},   {0x1D00, 0x1D7F, S::kLatin},
    {0x1E00, 0x1EFF, S::kLatin},      {0x1F00, 0x1FFF, S::kGreek},      {0x2C60, 0x2C7F, S::kLatin},
    {0x2D00, 0x2D2F, S::kGeorgian},   {0x2D80, 0x2DDF, S::kEthiopic},   {0x2E80, 0x2FDF, S::kHan},
    {0x3005, 0x3005, S::kHan},        {0x3007, 0x3007, S::kHan},        {0x3021, 0x3029, S::kHan},
    {0x3038, 0x303B, S::kHan},        {0x3041, 0x3096, S::kHiragana},   {0x309D, 0x309F, S::kHiragana},
    {0x30A1, 0x30FA, S::kKatakana},   {0x30FC, 0x30FF, S::kKatakana},   {0x3131, 0x318E, S::kHangul},
    {0x31F0, 0x31FF, S::kKatakana},   {0x3400, 0x4DBF, S::kHan},        {0x4E00, 0x9FFF, S::kHan},
    {0xA640, 0xA66E, S::kCyrillic},   {0xA67F, 0xA69D, S::kCyrillic},   {0xA720, 0xA7FF, S::kLatin},
    {0xA8F2, 0xA8FE, S::kDevanagari}, {0xA960, 0xA97F, S::kHangul},     {0xAB30, 0xAB6F, S::kLatin},
    {0xAC00, 0xD7A3, S::kHangul},     {0xD7B0, 0xD7FF, S::kHangul},     {0xF900, 0xFAFF, S::kHan},
    {0xFB00, 0xFB06, S::kLatin},      {0xFB1D, 0xFB4F, S::kHebrew},     {0xFB50, 0xFDFF, S::kArabic},
    {0xFE70, 0xFEFF, S::kArabic},     {0xFF21, 0xFF3A, S::kLatin},      {0xFF41, 0xFF5A, S::kLatin},
    {0xFF66, 0xFF9D, S::kKatakana},   {0xFFA0, 0xFFDC, S::kHangul},     {0x20000, 0x323AF, S::kHan},
};

constexpr const char* kNames[] = {"none",     "latin",  "greek",   "cyrillic", "armenian",  "hebrew",  "arabic",
                                  "devanagari", "bengali", "gurmukhi", "gujarati", "oriya",   "tamil",   "telugu",
                                  "kannada",  "malayalam", "sinhala", "thai",     "lao",       "tibetan", "myanmar",
                                  "georgian", "hangul", "ethiopic", "khmer",    "hiragana",  "katakana", "han"};
static_assert(std::size(kNames) == static_cast<size_t>(Script::kCount));

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

Script script_of(uint32_t cp) {
  const auto* it = std::upper_bound(std::begin(kRanges), std::end(kRanges), cp,
                                    [](uint32_t v, const Range& r) { return v < r.first; });
  if (it == std::begin(kRanges)) return Script::kNone;
  --it;
  return cp <= it->last ? it->script : Script::kNone;
}

std::vector<Script> scripts_named(std::string_view name) {
  if (name == "cjk") return {Script::kHan, Script::kHiragana, Script::kKatakana, Script::kHangul};
  if (name == "kana") return {Script::kHiragana, Script::kKatakana};
  for (size_t k = 1; k < std::size(kNames); ++k) {
    if (name == kNames[k]) return {static_cast<Script>(k)};
  }
  return {};
}

std::vector<std::string> script_names() {
  std::vector<std::string> out(std::begin(kNames) + 1, std::end(kNames));
  out.push_back("cjk");
  out.push_back("kana");
  std::sort(out.begin(), out.end());
  return out;
}

LetterCounts count_letters(const std::string& text, size_t begin, size_t end, const std::vector<bool>& target,
                           bool skip_math) {
  LetterCounts c;
  // NB: once a closing delimiter is not found, it is never searched for again,
  // so unclosed openers cost one scan in all, not one each.
  bool no_dollar = false, no_dollars = false, no_paren = false, no_bracket = false;
  auto skip_to = [&](size_t from, std::string_view close, bool& none) -> size_t {
    if (none) return std::string::npos;
    const size_t at = text.find(close.data(), from, close.size());
    if (at == std::string::npos || at + close.size() > end) {
      none = true;
      return std::string::npos;
    }
    return at + close.size();
  };
  size_t i = begin;
  while (i < end) {
    const char ch = text[i];
    if (ch == '\\' && i + 1 < end) {
      const char next = text[i + 1];
      if (skip_math && (next == '(' || next == '[')) {
        const size_t after = skip_to(i + 2, next == '(' ? "\\)" : "\\]", next == '(' ? no_paren : no_bracket);
        if (after != std::string::npos) {
          i = after;
          continue;
        }
      }
      i += 1;
      while (i < end && is_ascii_alpha(text[i])) ++i;  // a command name is no prose
      continue;
    }
    if (ch == '<') {  // markup such as <think> and </answer> is no prose
      size_t j = i + 1 < end && text[i + 1] == '/' ? i + 2 : i + 1;
      const size_t name = j;
      while (j < end && (is_ascii_alpha(text[j]) || text[j] == '_')) ++j;
      if (j > name && j < end && text[j] == '>') {
        i = j + 1;
        continue;
      }
    }
    if (skip_math && ch == '$') {
      const bool display = i + 1 < end && text[i + 1] == '$';
      const size_t after = skip_to(i + (display ? 2 : 1), display ? "$$" : "$", display ? no_dollars : no_dollar);
      i = after != std::string::npos ? after : i + (display ? 2 : 1);
      continue;
    }
    uint32_t cp = 0;
    const size_t len = text::next_code_point(text, i, &cp);
    if (len == 0 || i + len > end) {  // an invalid byte: skipped
      ++i;
      continue;
    }
    i += len;
    const Script s = script_of(cp);
    if (s == Script::kNone) continue;
    ++c.letters;
    if (target[static_cast<size_t>(s)]) ++c.target;
  }
  return c;
}

}  // namespace grpo::rewards
