// The built-in rewards: accuracy, format, length, soft_overlong, regex,
// language. Every scan is a single pass or a bounded find over the bytes, and
// the answer parser (math_answer.h) bounds its input and depth, so 1 MB
// completions, deep nesting and invalid UTF-8 are safe.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <string_view>
#include <vector>

#include "grpo/error.h"
#include "grpo/rewards/reward.h"
#include "rewards/math_answer.h"
#include "rewards/script.h"
#include "text/regex.h"

namespace grpo {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------- options

// Raises grpo::Error naming the first key of `options` not in `known`.
void check_keys(const std::string& reward, const json& options, const std::vector<std::string>& known) {
  if (!options.is_object()) throw Error(reward + ": the options must be a JSON object, got " + options.dump());
  for (const auto& kv : options.items()) {
    if (std::find(known.begin(), known.end(), kv.key()) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error(reward + ": unknown option \"" + kv.key() + "\" (known: " + (list.empty() ? "none" : list) + ")");
    }
  }
}

template <class T>
T option(const std::string& reward, const json& options, const std::string& key, T fallback) {
  auto it = options.find(key);
  if (it == options.end()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw Error(reward + ": option \"" + key + "\" has the wrong type: " + it->dump());
  }
}

template <class T>
T required(const std::string& reward, const json& options, const std::string& key) {
  if (!options.contains(key)) throw Error(reward + ": option \"" + key + "\" is required");
  return option<T>(reward, options, key, T{});
}

// ---------------------------------------------------------------- text helpers

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The inside of the \boxed{...} that opens last among those whose braces close.
// One pass with an explicit stack of open braces.
std::optional<std::string_view> last_boxed(std::string_view s) {
  static constexpr std::string_view kBoxed = "\\boxed{";
  std::vector<std::pair<size_t, bool>> open;  // position of '{', opened by \boxed
  std::optional<std::pair<size_t, size_t>> best;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '{') {
      const bool boxed = i + 1 >= kBoxed.size() && s.substr(i + 1 - kBoxed.size(), kBoxed.size()) == kBoxed;
      open.emplace_back(i, boxed);
    } else if (s[i] == '}' && !open.empty()) {
      const auto [start, boxed] = open.back();
      open.pop_back();
      if (boxed && (!best || start > best->first)) best = std::make_pair(start, i);
    }
  }
  if (!best) return std::nullopt;
  return s.substr(best->first + 1, best->second - best->first - 1);
}

// A number in running text: digits with ',' between digit groups, then
// optionally .digits, /digits or an exponent. A '-' right before it is its sign
// unless a letter, digit or ')' precedes the '-'; after a digit it makes a
// range ("5-10"), returned whole with `range` set.
struct NumberToken {
  std::string_view text;
  bool range = false;
};

bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The first number token starting at or after byte `from`; its end is text.data() + size.
std::optional<NumberToken> next_number(std::string_view s, size_t from) {
  size_t i = from;
  while (i < s.size() && !(is_digit(s[i]) && (i == 0 || !(is_digit(s[i - 1]) || s[i - 1] == '.')))) ++i;
  if (i >= s.size()) return std::nullopt;
  size_t begin = i;
  while (i < s.size() && (is_digit(s[i]) || (s[i] == ',' && i + 1 < s.size() && is_digit(s[i + 1])))) ++i;
  if (i + 1 < s.size() && (s[i] == '.' || s[i] == '/') && is_digit(s[i + 1])) {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i + 1 < s.size() && (s[i] == 'e' || s[i] == 'E') && is_digit(s[i + 1])) {
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  NumberToken t;
  if (begin > 0 && s[begin - 1] == '-') {
    const char before = begin > 1 ? s[begin - 2] : ' ';
    if (is_digit(before)) {  // 5-10: back over the first number
      t.range = true;
      begin -= 2;
      while (begin > 0 && (is_digit(s[begin - 1]) || s[begin - 1] == ',' || s[begin - 1] == '.')) --begin;
    } else if (!is_alnum(before) && before != ')') {
      --begin;
    }
  }
  t.text = s.substr(begin, i - begin);
  return t;
}

std::optional<NumberToken> last_number(std::string_view s) {
  std::optional<NumberToken> last;
  size_t from = 0;
  while (auto t = next_number(s, from)) {
    from = static_cast<size_t>(t->text.data() + t->text.size() - s.data());
    last = t;
  }
  return last;
}

// The inside of the last <answer>...</answer>.
std::optional<std::string_view> answer_block(std::string_view s) {
  const size_t close = s.rfind("</answer>");
  if (close == std::string_view::npos) return std::nullopt;
  const size_t open = s.rfind("<answer>", close);
  if (open == std::string_view::npos) return std::nullopt;
  return s.substr(open + 8, close - open - 8);
}

// ---------------------------------------------------------------- accuracy

// 1 when the completion's answer denotes the record's (math_answer.h compares
// them as values; what does not parse compares as strings). The answer: with
// answer_after, the line after the completion's last marker; else (or with no
// marker) <answer>…</answer> (its \boxed{} if any), the last \boxed{…}, or the
// last number.
class AccuracyReward : public Reward {
 public:
  explicit AccuracyReward(const json& o) {
    check_keys("accuracy", o, {"tolerance", "match", "answer_field", "answer_after"});
    tolerance_ = option<double>("accuracy", o, "tolerance", 1e-6);
    after_ = option<std::string>("accuracy", o, "answer_after", "");
    match_ = option<std::string>("accuracy", o, "match", "normalized");
    field_ = option<std::string>("accuracy", o, "answer_field", "answer");
    if (!(tolerance_ >= 0.0) || !std::isfinite(tolerance_)) {
      throw Error("accuracy: option \"tolerance\" must be finite and >= 0, got " + std::to_string(tolerance_));
    }
    if (match_ != "normalized" && match_ != "exact") {
      throw Error("accuracy: option \"match\" must be \"normalized\" or \"exact\", got \"" + match_ + "\"");
    }
  }
  std::string name() const override { return "accuracy"; }

  std::vector<float> score(const std::vector<Sample>& samples) override {
    std::vector<float> out(samples.size(), 0.0f);
    for (size_t i = 0; i < samples.size(); ++i) out[i] = correct(gold(samples[i], i), samples[i].completion) ? 1.f : 0.f;
    return out;
  }

 private:
  std::string gold(const Sample& s, size_t i) const {
    const json* f = s.fields;
    if (!f || !f->is_object() || !f->contains(field_)) {
      throw Error("accuracy: sample " + std::to_string(i) + " has no \"" + field_ + "\" field in its record");
    }
    const json& a = (*f)[field_];
    if (a.is_string() && !after_.empty()) {
      // GSM8K: a worked solution ending "#### 18"; the answer is what follows the last marker.
      const std::string& text = a.get_ref<const std::string&>();
      const size_t at = text.rfind(after_);
      if (at == std::string::npos) {
        throw Error("accuracy: sample " + std::to_string(i) + ": \"" + field_ + "\" has no \"" + after_ +
                    "\" before its answer");
      }
      return std::string(trim(std::string_view(text).substr(at + after_.size())));
    }
    if (a.is_string()) return a.get<std::string>();
    if (a.is_number()) return a.dump();
    throw Error("accuracy: sample " + std::to_string(i) + ": \"" + field_ + "\" must be a string or a number, got " +
                a.dump());
  }

  bool correct(const std::string& gold, std::string_view completion) const {
    if (!after_.empty()) {
      const size_t at = completion.rfind(after_);
      if (at != std::string_view::npos) {
        // The marker's line, as the gold's; when that is not an answer, its first number.
        std::string_view line = completion.substr(at + after_.size());
        line = trim(line.substr(0, line.find('\n')));
        if (matches(line, gold)) return true;
        const auto first = next_number(line, 0);
        return first && first->text != line && matches(first->text, gold, first->range);
      }
    }
    if (auto block = answer_block(completion)) {
      const auto boxed = last_boxed(*block);
      return matches(boxed ? *boxed : *block, gold);
    }
    if (auto boxed = last_boxed(completion)) return matches(*boxed, gold);
    const auto number = last_number(completion);
    return number && matches(number->text, gold, number->range);
  }

  // A range ("5-10") is compared as a string only: it is not the number its
  // arithmetic would give.
  bool matches(std::string_view got, const std::string& gold, bool range = false) const {
    if (!range) {
      switch (rewards::compare_math_answers(got, gold, tolerance_)) {
        case rewards::MathVerdict::kEqual: return true;
        case rewards::MathVerdict::kDifferent: return false;
        case rewards::MathVerdict::kUnparsed: break;
      }
    }
    if (match_ == "exact") return trim(got) == trim(gold);
    return rewards::normalize_latex(got) == rewards::normalize_latex(gold);
  }

  double tolerance_;   // approximate values match when |a - b| <= tolerance · max(|a|, |b|) (or 1e-12)
  std::string match_;  // unparsed answers: "normalized" (normalize_latex) or "exact" (trim only)
  std::string field_;  // the record's field holding the reference answer
  std::string after_;  // "" = the whole field; else the text after its last occurrence ("####")
};

// ---------------------------------------------------------------- format

// 1 for the R1 template <think>…</think><answer>…</answer>. strict: the whole
// completion is that (whitespace around and between allowed); lenient: both
// blocks appear in that order somewhere.
class FormatReward : public Reward {
 public:
  explicit FormatReward(const json& o) {
    check_keys("format", o, {"mode"});
    mode_ = option<std::string>("format", o, "mode", "strict");
    if (mode_ != "strict" && mode_ != "lenient") {
      throw Error("format: option \"mode\" must be \"strict\" or \"lenient\", got \"" + mode_ + "\"");
    }
  }
  std::string name() const override { return "format"; }

  std::vector<float> score(const std::vector<Sample>& samples) override {
    std::vector<float> out(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      out[i] = (mode_ == "strict" ? strict(samples[i].completion) : lenient(samples[i].completion)) ? 1.f : 0.f;
    }
    return out;
  }

 private:
  static bool strict(std::string_view s) {
    s = trim(s);
    if (s.substr(0, 7) != "<think>") return false;
    const size_t think_end = s.find("</think>", 7);
    if (think_end == std::string_view::npos) return false;
    std::string_view rest = trim(s.substr(think_end + 8));
    if (rest.substr(0, 8) != "<answer>") return false;
    const size_t answer_end = rest.find("</answer>", 8);
    return answer_end != std::string_view::npos && answer_end + 9 == rest.size();
  }
  static bool lenient(std::string_view s) {
    size_t p = s.find("<think>");
    if (p == std::string_view::npos) return false;
    p = s.find("</think>", p + 7);
    if (p == std::string_view::npos) return false;
    p = s.find("<answer>", p + 8);
    if (p == std::string_view::npos) return false;
    return s.find("</answer>", p + 8) != std::string_view::npos;
  }

  std::string mode_;  // "strict" or "lenient"
};

// ---------------------------------------------------------------- length

// scale · (target − tokens) / target: 0 at the target, +scale for an empty
// completion, negative past the target (a negative scale rewards length).
class LengthReward : public Reward {
 public:
  explicit LengthReward(const json& o) {
    check_keys("length", o, {"target", "scale"});
    target_ = required<double>("length", o, "target");
    scale_ = option<double>("length", o, "scale", 1.0);
    if (!(target_ > 0.0) || !std::isfinite(target_)) throw Error("length: option \"target\" must be > 0");
    if (!std::isfinite(scale_)) throw Error("length: option \"scale\" must be finite");
  }
  std::string name() const override { return "length"; }
  std::vector<float> score(const std::vector<Sample>& samples) override {
    std::vector<float> out(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      out[i] = static_cast<float>(scale_ * (target_ - static_cast<double>(samples[i].completion_tokens)) / target_);
    }
    return out;
  }

 private:
  double target_;  // tokens where the reward is 0
  double scale_;   // reward at 0 tokens
};

// DAPO's soft overlong punishment: 0 up to max_length − buffer tokens, then
// linear down to −1 at max_length, and −1 past it.
class SoftOverlongReward : public Reward {
 public:
  explicit SoftOverlongReward(const json& o) {
    check_keys("soft_overlong", o, {"max_length", "buffer"});
    max_length_ = required<int64_t>("soft_overlong", o, "max_length");
    buffer_ = required<int64_t>("soft_overlong", o, "buffer");
    if (max_length_ < 1) throw Error("soft_overlong: option \"max_length\" must be >= 1");
    if (buffer_ < 1 || buffer_ > max_length_) {
      throw Error("soft_overlong: option \"buffer\" must be in [1, max_length = " + std::to_string(max_length_) +
                  "], got " + std::to_string(buffer_));
    }
  }
  std::string name() const override { return "soft_overlong"; }
  std::vector<float> score(const std::vector<Sample>& samples) override {
    std::vector<float> out(samples.size());
    const int64_t free = max_length_ - buffer_;
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t t = samples[i].completion_tokens;
      if (t <= free) out[i] = 0.0f;
      else if (t <= max_length_) out[i] = static_cast<float>(static_cast<double>(free - t) / static_cast<double>(buffer_));
      else out[i] = -1.0f;
    }
    return out;
  }

 private:
  int64_t max_length_;  // L_max: −1 from here on
  int64_t buffer_;      // L_cache: the linear ramp's width in tokens
};

// ---------------------------------------------------------------- regex

using text::pcre2_message;

// 1 when the PCRE2 pattern matches somewhere in the completion, else 0. The match,
// depth and heap limits bound the work on any input; hitting one is no match
// (on_limit = "no_match") or an error naming the reward (on_limit = "raise").
class RegexReward : public Reward {
 public:
  explicit RegexReward(const json& o) {
    check_keys("regex", o, {"pattern", "case_insensitive", "utf", "match_limit", "depth_limit", "heap_limit_kib",
                            "on_limit"});
    pattern_ = required<std::string>("regex", o, "pattern");
    const bool icase = option<bool>("regex", o, "case_insensitive", false);
    const bool utf = option<bool>("regex", o, "utf", false);
    const int64_t match_limit = option<int64_t>("regex", o, "match_limit", 1000000);
    const int64_t depth_limit = option<int64_t>("regex", o, "depth_limit", 10000);
    const int64_t heap_limit = option<int64_t>("regex", o, "heap_limit_kib", 20000);
    on_limit_ = option<std::string>("regex", o, "on_limit", "no_match");
    if (on_limit_ != "no_match" && on_limit_ != "raise") {
      throw Error("regex: option \"on_limit\" must be \"no_match\" or \"raise\", got \"" + on_limit_ + "\"");
    }
    if (pattern_.empty()) throw Error("regex: option \"pattern\" is empty (it would match every completion)");
    // NB: limits that bound the time and memory of one match: past these a reward can stall a step for minutes.
    for (auto [key, v, most] : {std::tuple<const char*, int64_t, int64_t>{"match_limit", match_limit, 100000000},
                                {"depth_limit", depth_limit, 1000000},
                                {"heap_limit_kib", heap_limit, 4194304}}) {
      if (v < 1 || v > most) {
        throw Error(std::string("regex: option \"") + key + "\" must be in [1, " + std::to_string(most) + "], got " +
                    std::to_string(v));
      }
    }

    // NB: byte mode by default, so invalid UTF-8 is just bytes; with utf, invalid
    // sequences never match instead of failing the call.
    uint32_t flags = (icase ? PCRE2_CASELESS : 0u) | (utf ? (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF) : 0u);
    int err = 0;
    size_t offset = 0;
    code_ = text::pcre2_compile_pattern(pattern_, flags, &err, &offset);
    if (!code_) {
      throw Error("regex: pattern \"" + pattern_ + "\" does not compile at offset " + std::to_string(offset) + ": " +
                  pcre2_message(err));
    }
    context_.reset(pcre2_match_context_create(nullptr));
    if (!context_) throw Error("regex: out of memory");
    pcre2_set_match_limit(context_.get(), static_cast<uint32_t>(match_limit));
    pcre2_set_depth_limit(context_.get(), static_cast<uint32_t>(depth_limit));
    pcre2_set_heap_limit(context_.get(), static_cast<uint32_t>(heap_limit));
  }
  std::string name() const override { return "regex"; }

  std::vector<float> score(const std::vector<Sample>& samples) override {
    // One match data per call: the compiled code and context are shared read-only across threads.
    text::Pcre2MatchData data(pcre2_match_data_create_from_pattern(code_.get(), nullptr));
    if (!data) throw Error("regex: out of memory");
    std::vector<float> out(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      const std::string& s = samples[i].completion;
      const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, data.get(),
                                 context_.get());
      if (rc >= 0) {
        out[i] = 1.0f;
      } else if (rc == PCRE2_ERROR_NOMATCH) {
        out[i] = 0.0f;
      } else if ((rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT) &&
                 on_limit_ == "no_match") {
        out[i] = 0.0f;
      } else {
        throw Error("regex: pattern \"" + pattern_ + "\" on sample " + std::to_string(i) + ": " + pcre2_message(rc));
      }
    }
    return out;
  }

 private:
  std::string pattern_;
  std::string on_limit_;  // "no_match" or "raise"
  text::Pcre2Code code_;
  text::Pcre2MatchContext context_;
};

// ---------------------------------------------------------------- language

// DeepSeek-R1's language consistency: the share of the letters of the chain of
// thought that are in the target script(s), or 1/0 against min_share.
class LanguageReward : public Reward {
 public:
  explicit LanguageReward(const json& o) : target_(static_cast<size_t>(rewards::Script::kCount), false) {
    check_keys("language", o, {"script", "region", "min_share", "empty", "skip_math"});
    if (!o.contains("script")) throw Error("language: option \"script\" is required");
    const json& script = o["script"];
    std::vector<std::string> names;
    if (script.is_string()) {
      names.push_back(script.get<std::string>());
    } else if (script.is_array() && !script.empty()) {
      for (const json& n : script) {
        if (!n.is_string()) throw Error("language: option \"script\" must hold script names, got " + n.dump());
        names.push_back(n.get<std::string>());
      }
    } else {
      throw Error("language: option \"script\" must be a script name or a non-empty list of them, got " +
                  script.dump());
    }
    for (const std::string& n : names) {
      const auto scripts = rewards::scripts_named(n);
      if (scripts.empty()) {
        std::string known;
        for (const auto& k : rewards::script_names()) known += (known.empty() ? "" : ", ") + k;
        throw Error("language: option \"script\": unknown script \"" + n + "\" (known: " + known + ")");
      }
      for (rewards::Script s : scripts) target_[static_cast<size_t>(s)] = true;
    }
    region_ = option<std::string>("language", o, "region", "think");
    if (region_ != "think" && region_ != "completion") {
      throw Error("language: option \"region\" must be \"think\" or \"completion\", got \"" + region_ + "\"");
    }
    if (o.contains("min_share") && !o["min_share"].is_null()) {
      min_share_ = option<double>("language", o, "min_share", 0.0);
      if (!(*min_share_ >= 0.0 && *min_share_ <= 1.0)) {
        throw Error("language: option \"min_share\" must be in [0, 1], got " + o["min_share"].dump());
      }
    }
    empty_ = option<double>("language", o, "empty", 0.0);
    if (!(empty_ >= 0.0 && empty_ <= 1.0)) {
      throw Error("language: option \"empty\" must be in [0, 1], got " + o["empty"].dump());
    }
    skip_math_ = option<bool>("language", o, "skip_math", true);
  }
  std::string name() const override { return "language"; }

  std::vector<float> score(const std::vector<Sample>& samples) override {
    std::vector<float> out(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      const std::string& c = samples[i].completion;
      const auto [begin, end] = region_ == "think" ? think_region(c) : std::pair<size_t, size_t>{0, c.size()};
      const auto n = rewards::count_letters(c, begin, end, target_, skip_math_);
      if (n.letters == 0) {
        out[i] = static_cast<float>(empty_);
        continue;
      }
      const double share = static_cast<double>(n.target) / static_cast<double>(n.letters);
      out[i] = static_cast<float>(min_share_ ? (share >= *min_share_ ? 1.0 : 0.0) : share);
    }
    return out;
  }

 private:
  // [begin, end) of the thinking: up to the first </think>, from the last <think>
  // before it (else the start: templates often open <think> in the prompt); with
  // no </think>, after the first <think> to the end; with neither, everything.
  static std::pair<size_t, size_t> think_region(std::string_view s) {
    const size_t close = s.find("</think>");
    if (close != std::string_view::npos) {
      const size_t open = s.rfind("<think>", close);
      return {open == std::string_view::npos ? 0 : open + 7, close};
    }
    const size_t open = s.find("<think>");
    return {open == std::string_view::npos ? 0 : open + 7, s.size()};
  }

  std::vector<bool> target_;          // indexed by rewards::Script
  std::string region_;                // "think" or "completion"
  std::optional<double> min_share_;   // unset: the share itself; else 1 when share >= min_share, 0 below
  double empty_;                      // the score of a region without letters
  bool skip_math_;                    // leave $…$, $$…$$, \(…\), \[…\] out
};

template <class R>
RewardFactory factory() {
  return [](const json& options) -> std::unique_ptr<Reward> { return std::make_unique<R>(options); };
}

}  // namespace

void register_builtin_rewards(RewardRegistry& registry) {
  registry.register_factory("accuracy", factory<AccuracyReward>());
  registry.register_factory("format", factory<FormatReward>());
  registry.register_factory("length", factory<LengthReward>());
  registry.register_factory("soft_overlong", factory<SoftOverlongReward>());
  registry.register_factory("regex", factory<RegexReward>());
  registry.register_factory("language", factory<LanguageReward>());
}

}  // namespace grpo
