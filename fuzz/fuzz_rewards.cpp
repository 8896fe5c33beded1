// The rewards' parsers: the input is a completion, then the record's answer,
// cut at a NUL byte. Every built-in reward scores it with a finite number, and
// the 1/0 rewards with 0 or 1; the math comparison gives a verdict both ways.
#include <cmath>

#include "fuzz_util.h"
#include "grpo/rewards/reward.h"
#include "rewards/math_answer.h"

namespace {

struct Spec {
  nlohmann::json json;
  bool zero_or_one;
};

const std::vector<std::pair<std::unique_ptr<grpo::Reward>, bool>>& rewards() {
  static const auto built = [] {
    const std::vector<Spec> specs = {
        {{{"name", "accuracy"}}, true},
        {{{"name", "accuracy"}, {"match", "exact"}}, true},
        {{{"name", "accuracy"}, {"answer_after", "####"}}, true},
        {{{"name", "format"}}, true},
        {{{"name", "format"}, {"mode", "lenient"}}, true},
        {{{"name", "language"}, {"script", "latin"}}, false},
        {{{"name", "language"}, {"script", {"cjk", "cyrillic"}}, {"region", "completion"}, {"min_share", 0.9}}, true},
        {{{"name", "regex"}, {"pattern", "^<think>(.|\\n)*</think>\\s*<answer>\\d+</answer>$"}, {"utf", true}}, true},
        {{{"name", "soft_overlong"}, {"max_length", 64}, {"buffer", 16}}, false},
    };
    std::vector<std::pair<std::unique_ptr<grpo::Reward>, bool>> out;
    for (const Spec& s : specs) out.emplace_back(grpo::RewardRegistry::global().create(s.json), s.zero_or_one);
    return out;
  }();
  return built;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> parts = grpo::fuzz::split_nul(data, size);
  const std::string gold = parts.size() > 1 ? parts[1] : "42";
  const nlohmann::json fields = {{"answer", gold}};
  grpo::Sample sample;
  sample.prompt = "What is 6 times 7?";
  sample.completion = parts[0];
  sample.completion_tokens = static_cast<int64_t>(parts[0].size() / 4);
  sample.fields = &fields;
  for (const auto& [reward, zero_or_one] : rewards()) {
    GRPO_FUZZ_EXPECT_ERRORS({
      const std::vector<float> scores = reward->score({sample});
      if (scores.size() != 1 || !std::isfinite(scores[0]) || (zero_or_one && scores[0] != 0.0f && scores[0] != 1.0f)) {
        grpo::fuzz::finding(reward->name() + ": score " + (scores.empty() ? "missing" : std::to_string(scores[0])));
      }
    })
  }
  (void)grpo::rewards::compare_math_answers(parts[0], gold, 1e-6);
  (void)grpo::rewards::compare_math_answers(gold, parts[0], 1e-6);
  (void)grpo::rewards::normalize_latex(parts[0]);
  return 0;
}
