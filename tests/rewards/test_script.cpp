// The language-consistency reward (`language`, over src/rewards/script.h): the
// share of letters in the target scripts across scripts, regions, math and
// LaTeX left out, invalid UTF-8, empty regions, min_share, and option errors.
#include <grpo/error.h>
#include <grpo/rewards/reward.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using grpo::RewardRegistry;
using grpo::Sample;
using nlohmann::json;

std::vector<float> language(json options, const std::vector<std::string>& completions) {
  options["name"] = "language";
  auto reward = RewardRegistry::global().create(options);
  std::vector<Sample> samples;
  for (const auto& c : completions) samples.push_back(Sample{"q", c, 1, false, nullptr});
  return reward->score(samples);
}

float share(const json& options, const std::string& completion) { return language(options, {completion})[0]; }

TEST(RewardLanguage, ShareOfLettersInTheTargetScript) {
  const json latin = {{"script", "latin"}, {"region", "completion"}};
  EXPECT_FLOAT_EQ(share(latin, "Hello, world! 123 + 456 = 579."), 1.0f);  // digits, punctuation: no letters
  EXPECT_FLOAT_EQ(share(latin, "abcd\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c"), 0.5f);  // abcd 你好世界
  EXPECT_FLOAT_EQ(share(latin, "caf\xc3\xa9 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m"), 1.0f);       // café naïve Ångström
  EXPECT_FLOAT_EQ(share({{"script", "han"}, {"region", "completion"}}, "ab\xe4\xbd\xa0\xe5\xa5\xbd"), 0.5f);
  EXPECT_FLOAT_EQ(share({{"script", "cyrillic"}, {"region", "completion"}}, "\xd0\xbf\xd1\x80\xd0\xb8 ok"), 0.6f);
  EXPECT_FLOAT_EQ(share({{"script", "arabic"}, {"region", "completion"}}, "\xd9\x85\xd8\xb1 \xd9\xa3"), 1.0f);  // Arabic digit ٣ ignored
  EXPECT_FLOAT_EQ(share({{"script", "devanagari"}, {"region", "completion"}}, "\xe0\xa4\xa8\xe0\xa4\xae xy"), 0.5f);
  EXPECT_FLOAT_EQ(share({{"script", "greek"}, {"region", "completion"}}, "\xce\xb1\xce\xb2 ab"), 0.5f);
  // Japanese: kana alone is half of "kana + han"; "cjk" takes all three and hangul.
  const std::string ja = "\xe3\x81\x82\xe3\x82\xa2\xe6\xbc\xa2\xe5\xad\x97";  // あア漢字
  EXPECT_FLOAT_EQ(share({{"script", "kana"}, {"region", "completion"}}, ja), 0.5f);
  EXPECT_FLOAT_EQ(share({{"script", "cjk"}, {"region", "completion"}}, ja + "\xed\x95\x9c"), 1.0f);  // + 한
  EXPECT_FLOAT_EQ(share({{"script", {"hiragana", "han"}}, {"region", "completion"}}, ja), 0.75f);
}

TEST(RewardLanguage, LatexCommandsAndMathAreNotProse) {
  const json han = {{"script", "han"}, {"region", "completion"}};
  const std::string zh = "\xe6\x89\x80\xe4\xbb\xa5";  // 所以
  EXPECT_FLOAT_EQ(share(han, zh + " $x + y = \\frac{a}{b}$ " + zh), 1.0f);
  EXPECT_FLOAT_EQ(share(han, zh + " $$x^2$$ \\(ab\\) \\[cd\\] " + zh), 1.0f);
  EXPECT_FLOAT_EQ(share(han, zh + " \\frac{1}{2} \\sqrt{3}"), 1.0f);  // command names are skipped
  EXPECT_FLOAT_EQ(share(han, zh + " \\frac{a}{b}"), 0.5f);            // their arguments are not
  EXPECT_FLOAT_EQ(share({{"script", "han"}, {"region", "completion"}, {"skip_math", false}}, zh + " $xy$"), 0.5f);
  EXPECT_FLOAT_EQ(share(han, zh + " $ ab"), 0.5f);  // an unclosed $ is not math
}

TEST(RewardLanguage, RegionIsTheThinking) {
  const json latin = {{"script", "latin"}};
  const std::string zh = "\xe4\xbd\xa0\xe5\xa5\xbd";  // 你好
  EXPECT_FLOAT_EQ(share(latin, "<think>abcd</think><answer>" + zh + "</answer>"), 1.0f);
  EXPECT_FLOAT_EQ(share(latin, "abcd</think>" + zh), 1.0f);      // <think> opened in the prompt
  EXPECT_FLOAT_EQ(share(latin, zh + "<think>ab" + zh), 0.5f);    // no </think>: to the end
  EXPECT_FLOAT_EQ(share(latin, "ab" + zh), 0.5f);                // neither: the whole completion
  EXPECT_FLOAT_EQ(share({{"script", "latin"}, {"region", "completion"}}, "<think>abcd</think>" + zh), 4.0f / 6.0f);
}

TEST(RewardLanguage, EmptyRegionsMinShareAndInvalidUtf8) {
  EXPECT_EQ(language({{"script", "latin"}}, {"<think></think>x", "<think> 1 + 2 = 3 </think>", ""}),
            (std::vector<float>{0, 0, 0}));
  EXPECT_EQ(language({{"script", "latin"}, {"empty", 1.0}}, {"<think>\n</think>", ""}), (std::vector<float>{1, 1}));
  const std::string mixed = "<think>abc\xe4\xbd\xa0</think>";  // 3 of 4
  EXPECT_EQ(language({{"script", "latin"}, {"min_share", 0.75}}, {mixed}), (std::vector<float>{1}));
  EXPECT_EQ(language({{"script", "latin"}, {"min_share", 0.8}}, {mixed}), (std::vector<float>{0}));
  EXPECT_EQ(language({{"script", "latin"}, {"min_share", nullptr}}, {mixed}), (std::vector<float>{0.75f}));
  // Stray continuation bytes, a truncated sequence, an encoded surrogate and an
  // overlong '/' are skipped, never counted.
  const std::string bad = "<think>\xff\xfe" "ab\xc3\xed\xa0\x80\xc0\xaf" "cd\xe4\xbd</think>";
  EXPECT_FLOAT_EQ(share({{"script", "latin"}}, bad), 1.0f);
  EXPECT_FLOAT_EQ(share({{"script", "latin"}}, "<think>\xe4\xbd\xa0\xff</think>"), 0.0f);
}

TEST(RewardLanguage, OptionErrorsNameTheKey) {
  auto create = [](const json& o) {
    json spec = o;
    spec["name"] = "language";
    RewardRegistry::global().create(spec);
  };
  EXPECT_HAS(error_of([&] { create(json::object()); }), "option \"script\" is required");
  const std::string unknown = error_of([&] { create({{"script", "klingon"}}); });
  EXPECT_HAS(unknown, "unknown script \"klingon\"");
  EXPECT_HAS(unknown, "cyrillic");
  EXPECT_HAS(error_of([&] { create({{"script", {"latin", 3}}}); }), "\"script\"");
  EXPECT_HAS(error_of([&] { create({{"script", json::array()}}); }), "\"script\"");
  EXPECT_HAS(error_of([&] { create({{"script", "latin"}, {"region", "answer"}}); }), "\"region\"");
  EXPECT_HAS(error_of([&] { create({{"script", "latin"}, {"min_share", 1.5}}); }), "\"min_share\"");
  EXPECT_HAS(error_of([&] { create({{"script", "latin"}, {"min_share", "half"}}); }), "\"min_share\"");
  EXPECT_HAS(error_of([&] { create({{"script", "latin"}, {"empty", -1}}); }), "\"empty\"");
  EXPECT_HAS(error_of([&] { create({{"script", "latin"}, {"skip_math", "yes"}}); }), "\"skip_math\"");
  EXPECT_HAS(error_of([&] { create({{"script", "latin"}, {"scripts", "latin"}}); }), "unknown option \"scripts\"");
}

TEST(RewardLanguage, AdversarialInputsAreFastAndSafe) {
  std::string think;
  while (think.size() < (1u << 20)) think += "<think>";
  std::string dollars(1 << 20, '$');
  std::string parens;
  while (parens.size() < (1u << 20)) parens += "\\(a";
  std::string noise;
  for (int i = 0; i < (1 << 20); ++i) noise.push_back(static_cast<char>(0x80 + i % 0x80));
  const auto t0 = std::chrono::steady_clock::now();
  const auto got = language({{"script", "latin"}}, {think, dollars, parens, noise});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(got, (std::vector<float>{0, 0, 1, 0}));  // tags only, math only, the a's, no valid letter
  EXPECT_LT(s, 2.0);
}

}  // namespace
