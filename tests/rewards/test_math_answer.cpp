// The accuracy reward's answer parser (src/rewards/math_answer.h) through the
// reward: every parse rule on equal and unequal pairs, where the completion's
// answer comes from, the cases where math-verify judges otherwise (who is right
// is said at each), and adversarial input that must stay safe and fast.
#include <grpo/error.h>
#include <grpo/rewards/reward.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace {

using grpo::RewardRegistry;
using grpo::Sample;
using nlohmann::json;

// The accuracy reward's score for one completion against one gold answer.
float accuracy(const std::string& completion, const json& gold, json options = json::object()) {
  options["name"] = "accuracy";
  auto reward = RewardRegistry::global().create(options);
  const json record = {{"answer", gold}};
  return reward->score({Sample{"q", completion, 1, false, &record}})[0];
}

// The score of \boxed{answer} against gold.
float boxed(const std::string& answer, const std::string& gold) { return accuracy("\\boxed{" + answer + "}", gold); }

// Each pair: the boxed answer, the gold, and whether they are the same answer.
struct Case {
  std::string answer, gold;
  bool same;
};

void expect_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(boxed(c.answer, c.gold), c.same ? 1.0f : 0.0f) << "\\boxed{" << c.answer << "} against " << c.gold;
  }
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------- numbers

TEST(MathAnswer, IntegersCompareExactlyDecimalsWithinTolerance) {
  expect_cases({{"1000001", "1000000", false},
                {"1000000", "1000000", true},
                {"-7", "-7", true},
                {"-7", "7", false},
                {"1e3", "1000", true},
                {"2.5E-4", "0.00025", true},
                {"42.0000001", "42", true},
                {"42.001", "42", false},
                {".0000672", "0.0000672", true},
                {".0000673", "0.0000672", false},  // relative: a small value is not within 1e-6 of another
                {"\\sin\\pi", "0", true},
                {"0.1+0.2", "0.3", true},
                {"\\frac{1}{3}", "0.333333", true},
                {"\\frac{1}{3}", "0.33", false},
                {"42.", "42", true}});
}

TEST(MathAnswer, ThousandsGroupingAndListsOfNumbers) {
  expect_cases({{"1,234", "1234", true},
                {"1{,}234", "1234", true},
                {"10,\\!080", "10080", true},
                {"11,\\! 111,\\! 111,\\! 100", "11111111100", true},
                {"\\$32,\\!348", "32348", true},
                {"3,4", "34", false},
                {"3,4", "3, 4", true},
                {"12,34", "1234", false},
                {"1234,567", "1234567", false},
                {"(1,234)", "(1, 234)", true}});  // inside brackets a comma separates
}

TEST(MathAnswer, RangesAndListsInRunningText) {
  const json acc = {{"name", "accuracy"}};
  EXPECT_EQ(accuracy("between 5-10 apples", "-10"), 0.0f);  // a range, not minus ten
  EXPECT_EQ(accuracy("between 5-10 apples", "10"), 0.0f);
  EXPECT_EQ(accuracy("between 5-10 apples", "5-10"), 1.0f);
  EXPECT_EQ(accuracy("the temperature fell to -10", "-10"), 1.0f);
  EXPECT_EQ(accuracy("x-10 leaves 10", "10"), 1.0f);
  EXPECT_EQ(accuracy("so the roots are 3,4", "34"), 0.0f);
  EXPECT_EQ(accuracy("so the roots are 3,4", "3, 4"), 1.0f);
  EXPECT_EQ(accuracy("she paid 1,234 dollars", "1234"), 1.0f);
}

// ---------------------------------------------------------------- LaTeX values

TEST(MathAnswer, FractionsRootsAndPi) {
  expect_cases({{"\\frac{1}{2}", "0.5", true},
                {"\\dfrac{1}{2}", "\\tfrac12", true},
                {"\\frac 34", "0.75", true},
                {"\\frac9{19}", "\\frac{9}{19}", true},
                {"\\frac{2}{4}", "\\frac{1}{2}", true},
                {"\\frac{1}{2}", "\\frac{2}{1}", false},
                {"\\sqrt{12}", "2\\sqrt{3}", true},
                {"\\sqrt{3}", "3", false},
                {"\\sqrt[3]{8}", "2", true},
                {"\\sqrt2", "\\sqrt{2}", true},
                {"\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt3", true},
                {"3\\pi", "\\pi \\cdot 3", true},
                {"3\\pi", "4\\pi", false},
                {"-\\frac{1}{2}", "-0.5", true},
                {"-\\frac{1}{2}", "\\frac{1}{2}", false},
                {"2^{10}", "1024", true},
                {"2^{-1}", "\\frac12", true},
                {"5!", "120", true},
                {"\\binom{5}{2}", "10", true},
                {"\\frac{1}{0}", "1", false}});  // no value: compared as strings
}

TEST(MathAnswer, MixedNumbersAndBases) {
  expect_cases({{"2\\frac{1}{2}", "\\frac{5}{2}", true},
                {"137 \\frac{1}{2}", "137.5", true},
                {"204_5", "54", true},
                {"4210_{5}", "555", true},
                {"205_5", "55", false}});  // 5 is no digit in base 5: compared as strings
}

TEST(MathAnswer, WrappersUnitsDegreesPercentDollars) {
  expect_cases({{"\\boxed{5}", "5", true},
                {"5\\text{ cm}", "5", true},
                {"15\\mbox{ cm}^2", "15", true},
                {"18 dollars", "18", true},
                {"10^\\circ", "10", true},
                {"10^{\\circ}", "10", true},
                {"50\\%", "50", true},
                {"\\$18.90", "18.9", true},
                {"\\left( 1, 2 \\right)", "(1,2)", true},
                {"\\text{Evelyn}", "\\text{evelyn}", true},
                {"\\text{(B)}", "\\text{(C)}", false}});
}

TEST(MathAnswer, IntervalsTuplesSetsAndMatrices) {
  expect_cases({{"(1, 3]", "(1,3]", true},
                {"(1, 3]", "(1,3)", false},
                {"[2,\\infty)", "[2, \\infty)", true},
                {"[2,\\infty)", "(2, \\infty)", false},
                {"(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)", true},
                {"(1,2)", "(2,1)", false},
                {"(1,2)", "(1,2,3)", false},
                {"3, 1, 2", "1,2,3", true},
                {"1 \\text{ and } 2", "2, 1", true},
                {"\\{1, 2\\}", "2,1", true},
                {"1, 2", "1, 3", false},
                {"1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", true},
                {"\\{1\\pm\\sqrt{5},-2\\}", "-2, 1-\\sqrt5, 1+\\sqrt5", true},
                {"\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}", true},
                {"\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", false}});
}

TEST(MathAnswer, EquationsAndExpressionsWithVariables) {
  expect_cases({{"x = 5", "5", true},
                {"x \\in [-2,7]", "[-2,7]", true},
                {"y = 2x + 3", "3 + 2x", true},
                {"2x+3", "2x+4", false},
                {"(a+5)(b+2)", "(b+2)(a+5)", true},
                {"(a+5)(b+2)", "(a+5)(b+3)", false},
                {"x^2", "x^3", false},
                {"-2 + 7i", "7i - 2", true},
                {"5x - 7y + 11z + 4 = 0", "5x-7y+11z+4=0", true},
                {"5x - 7y + 11z + 5 = 0", "5x-7y+11z+4=0", false},
                {"\\cot x", "\\frac{\\cos x}{\\sin x}", true}});
}

// ---------------------------------------------------------------- where the answer comes from

TEST(MathAnswer, AnswerAfterAMarkerTakesTheMarkersLine) {
  const json after = {{"answer_after", "####"}};
  const std::string gold = "16 - 3 - 4 = 9 eggs; 9 * 2 = 18.\n#### 18";
  EXPECT_EQ(accuracy("The answer is \\boxed{17}.\n#### 18", gold, after), 1.0f);  // the marker before the box
  EXPECT_EQ(accuracy("#### 18 dollars", gold, after), 1.0f);
  EXPECT_EQ(accuracy("#### $18.", gold, after), 1.0f);
  EXPECT_EQ(accuracy("#### 18 (that is 9 * 2)\nthanks", gold, after), 1.0f);  // the first number of the line
  EXPECT_EQ(accuracy("#### 1,018", "#### 1018", after), 1.0f);
  EXPECT_EQ(accuracy("#### 17\nso 18", gold, after), 0.0f);
  EXPECT_EQ(accuracy("no marker: \\boxed{18}", gold, after), 1.0f);  // falls back to the other rules
  EXPECT_EQ(accuracy("no marker, last number 18", gold, after), 1.0f);
  EXPECT_EQ(accuracy("#### ", gold, after), 0.0f);
}

TEST(MathAnswer, StringsWhenEitherSideDoesNotParse) {
  EXPECT_EQ(boxed("\\text{ellipse} ", "\\text{Ellipse}"), 1.0f);
  EXPECT_EQ(accuracy("<answer>Paris France</answer>", "paris  france"), 1.0f);
  EXPECT_EQ(accuracy("<answer>Paris France</answer>", "Paris France", {{"match", "exact"}}), 1.0f);
  EXPECT_EQ(accuracy("<answer>paris france</answer>", "Paris France", {{"match", "exact"}}), 0.0f);
  EXPECT_EQ(boxed("x < 3", "x<3"), 1.0f);  // inequalities are outside the parsed subset
  EXPECT_EQ(boxed("x < 3", "x \\le 3"), 0.0f);
}

TEST(MathAnswer, ToleranceOptionIsChecked) {
  EXPECT_EQ(accuracy("\\boxed{3.14}", "\\pi", {{"tolerance", 0.01}}), 1.0f);
  EXPECT_EQ(accuracy("\\boxed{3.14}", "\\pi"), 0.0f);
  EXPECT_HAS(error_of([] { accuracy("1", "1", {{"tolerance", -1}}); }), "\"tolerance\"");
}

// ---------------------------------------------------------------- math-verify disagreements

// Every case where Hugging Face math-verify 0.9.0 judges otherwise than this
// reward in tests/rewards/math_verify_agreement.py (docs/REWARDS.md), with the
// verdict that is right.

// MATH-500 test/precalculus/695: math-verify reads [-\infty, 0] as the gold
// (-\infty, 0], dropping the bracket at infinity. An interval cannot be closed
// at -\infty, so the answer as written is wrong: brackets count as written.
TEST(MathVerifyDisagreements, ClosedBracketAtInfinityIsWrong) {
  EXPECT_EQ(boxed("[-\\infty, 0]", "(-\\infty, 0]"), 0.0f);
  EXPECT_EQ(boxed("(-\\infty, 0]", "(-\\infty, 0]"), 1.0f);
}

// GSM8K test records whose worked solution says "the answer" before its end
// ("…express the answer as a percentage: … = 20%", "add … to the answer from the
// previous step: $4.00 + …"). math-verify takes the number after that phrase, so
// it judges the solution's own "#### N" wrong (226, 258, 876, 1303) and a changed
// "#### N" right (393, 473, 728: N+1, N-1, 10N, -N). The final answer is the one
// after the marker: the reward is right in all of them.
TEST(MathVerifyDisagreements, Gsm8kAnswerIsAfterTheMarker) {
  const std::string path = std::string(GRPO_TEST_EXAMPLES_DIR) + "/gsm8k/test.jsonl";
  std::ifstream in(path);
  if (!in) GTEST_SKIP() << "no " << path;
  std::vector<std::string> records;
  for (std::string line; std::getline(in, line);) records.push_back(json::parse(line)["answer"].get<std::string>());
  ASSERT_EQ(records.size(), 1319u);
  const json after = {{"answer_after", "####"}};
  for (size_t n : {226, 258, 876, 1303}) EXPECT_EQ(accuracy(records[n], records[n], after), 1.0f) << "test/" << n;
  for (size_t n : {393, 473, 728}) {
    const std::string& solution = records[n];
    const size_t at = solution.rfind("####");
    const long gold = std::stol(solution.substr(at + 4));
    for (long wrong : {gold + 1, gold - 1, gold * 10, -gold}) {
      EXPECT_EQ(accuracy(solution.substr(0, at) + "#### " + std::to_string(wrong), solution, after), 0.0f)
          << "test/" << n << ": " << wrong;
    }
  }
}

// ---------------------------------------------------------------- adversarial

TEST(MathAnswer, AdversarialAnswersAreSafeAndFast) {
  std::string huge(1 << 20, '1');
  std::string braces = std::string(100000, '{') + "1" + std::string(100000, '}');
  std::string fracs;
  for (int i = 0; i < 20000; ++i) fracs += "\\frac{1}{";
  fracs += "2" + std::string(20000, '}');
  std::string deep_short;  // within the length limit, past the depth limit
  for (int i = 0; i < 300; ++i) deep_short += "\\frac{1}{";
  deep_short += "2" + std::string(300, '}');
  std::string parens = std::string(2000, '(') + "1" + std::string(2000, ')');
  std::string signs = std::string(4000, '-') + "1";
  std::string powers;
  for (int i = 0; i < 1000; ++i) powers += "9^";
  powers += "9";
  std::vector<float> got;
  const double s = seconds_of([&] {
    for (const std::string* a : {&huge, &braces, &fracs, &deep_short, &parens, &signs, &powers}) {
      got.push_back(boxed(*a, "1"));
      got.push_back(accuracy("<answer>" + *a + "</answer>", *a));
    }
    got.push_back(boxed("10^{999999999}", "1"));
    got.push_back(boxed("99999999999999999999999999^{64}", "1"));
    got.push_back(boxed("1e999999", "1"));
    got.push_back(boxed("\\sqrt[64]{-1}", "1"));
    got.push_back(boxed("\\binom{1000000}{500000}", "1"));
    got.push_back(boxed("\\\\\\\\\\", "1"));
    got.push_back(boxed("\\text{unclosed", "1"));
    got.push_back(boxed("\\begin{pmatrix} 1 & 2 \\\\ 3 \\end{pmatrix}", "1"));
  });
  // Each is itself as a string (never a crash), and none equals 1.
  const std::vector<float> want = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(got, want);
  EXPECT_LT(s, 3.0);
}

}  // namespace
