// Rewards: each built-in on right, wrong, malformed and adversarial inputs (1 MB
// of '<think>', deep braces, invalid UTF-8), the registry, RewardSet weights,
// thread-count independence, and errors (throw, NaN, wrong count) in both modes.
#include <grpo/error.h>
#include <grpo/rewards/reward.h>
#include <grpo/rollout/sampler.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace {

using grpo::RewardRegistry;
using grpo::RewardSet;
using grpo::Sample;
using nlohmann::json;

// Scores completions with one reward built from `spec`, all against one record.
std::vector<float> run(const json& spec, const std::vector<std::string>& completions,
                       const json& record = json{{"answer", "42"}}) {
  auto reward = RewardRegistry::global().create(spec);
  std::vector<Sample> samples;
  for (const auto& c : completions) samples.push_back(Sample{"q", c, static_cast<int64_t>(c.size()), false, &record});
  return reward->score(samples);
}

std::string adversarial_think() {
  std::string s;
  while (s.size() < (1u << 20)) s += "<think>";
  return s;
}

// Stray continuation bytes, a truncated sequence and an encoded surrogate around a valid answer.
std::string invalid_utf8() { return "\xff\xfe\xc3(<answer>42</answer>\xed\xa0\x80 \x80\xbf"; }

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---------------------------------------------------------------- accuracy

TEST(RewardAccuracy, AnswerTagBoxedAndLastNumber) {
  const json acc = {{"name", "accuracy"}};
  EXPECT_EQ(run(acc, {"<think>6*7</think><answer>42</answer>", "<answer> 41 </answer>",
                      "so \\boxed{42} it is", "\\boxed{41}", "first 3, then 42", "first 42, then 3",
                      "<answer>\\boxed{42}</answer>", "<answer>42.0000000001</answer>", "no answer at all", ""}),
            (std::vector<float>{1, 0, 1, 0, 1, 0, 1, 1, 0, 0}));
}

TEST(RewardAccuracy, NumbersWithCommasSignsDecimalsAndFractions) {
  const json acc = {{"name", "accuracy"}};
  EXPECT_EQ(run(acc, {"<answer>1,234</answer>", "<answer>1234</answer>", "total: 1,234", "<answer>$1,234</answer>"},
                json{{"answer", "1234"}}),
            (std::vector<float>{1, 1, 1, 1}));
  EXPECT_EQ(run(acc, {"<answer>-3.5</answer>", "it is -3.5", "it is 3.5", "<answer>-7/2</answer>"},
                json{{"answer", -3.5}}),
            (std::vector<float>{1, 1, 0, 1}));
  EXPECT_EQ(run(acc, {"<answer>0.5</answer>", "<answer>1/2</answer>", "\\boxed{0.50}"}, json{{"answer", "1/2"}}),
            (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(run({{"name", "accuracy"}, {"tolerance", 0.1}}, {"<answer>42.05</answer>", "<answer>47</answer>"}),
            (std::vector<float>{1, 0}));
}

TEST(RewardAccuracy, StringsNormalizedOrExact) {
  const json record = {{"answer", "Paris  France"}};
  EXPECT_EQ(run({{"name", "accuracy"}}, {"<answer>  paris france </answer>", "<answer>Lyon</answer>"}, record),
            (std::vector<float>{1, 0}));
  EXPECT_EQ(run({{"name", "accuracy"}, {"match", "exact"}},
                {"<answer> Paris  France </answer>", "<answer>paris france</answer>"}, record),
            (std::vector<float>{1, 0}));
}

TEST(RewardAccuracy, NestedBracesAndUnbalancedBoxed) {
  const json acc = {{"name", "accuracy"}};
  EXPECT_EQ(run(acc, {"\\boxed{\\frac{1}{2}}"}, json{{"answer", "\\frac{1}{2}"}}), (std::vector<float>{1}));
  EXPECT_EQ(run(acc, {"\\boxed{42} and \\boxed{unclosed"}), (std::vector<float>{1}));
  // Deep nesting: a million braces, no recursion.
  std::string deep = "\\boxed{" + std::string(1 << 20, '{') + "42" + std::string(1 << 20, '}') + "}";
  std::string open_only;
  while (open_only.size() < (1u << 20)) open_only += "\\boxed{";
  EXPECT_EQ(run(acc, {deep, open_only + "41"}), (std::vector<float>{0, 0}));
}

// GSM8K records hold a worked solution; the answer follows "####" (the real first test record).
TEST(RewardAccuracy, AnswerAfterAMarker) {
  const json acc = {{"name", "accuracy"}, {"answer_after", "####"}};
  const json record = {{"answer", "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
                                  "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer\u2019s market.\n#### 18"}};
  EXPECT_EQ(run(acc, {"She makes 9 * 2 = 18 dollars.\n#### 18", "#### 9", "<answer>18</answer>"}, record),
            (std::vector<float>{1, 0, 1}));
  EXPECT_HAS(error_of([&] { run(acc, {"18"}, json{{"answer", "18"}}); }),
             "accuracy: sample 0: \"answer\" has no \"####\" before its answer");
}

TEST(RewardAccuracy, MissingAnswerFieldNamesTheSample) {
  auto reward = RewardRegistry::global().create({{"name", "accuracy"}});
  const json good = {{"answer", "1"}}, bad = {{"question", "?"}};
  std::vector<Sample> samples = {{"q", "1", 1, false, &good}, {"q", "1", 1, false, &bad}};
  EXPECT_NE(error_of([&] { reward->score(samples); }).find("sample 1 has no \"answer\""), std::string::npos);
  samples[1].fields = nullptr;
  EXPECT_NE(error_of([&] { reward->score(samples); }).find("sample 1"), std::string::npos);
}

TEST(RewardAccuracy, AdversarialInputsAreFastAndSafe) {
  std::vector<float> got;
  const double s = seconds_of([&] {
    got = run({{"name", "accuracy"}}, {adversarial_think(), invalid_utf8(), std::string(1 << 20, '9'),
                                       std::string(1 << 20, ',') + "42"});
  });
  EXPECT_EQ(got, (std::vector<float>{0, 1, 0, 1}));
  EXPECT_LT(s, 2.0);
}

// ---------------------------------------------------------------- format

TEST(RewardFormat, StrictAndLenient) {
  const std::vector<std::string> texts = {
      "<think>a</think><answer>b</answer>",
      "  <think>a\n</think>\n\n<answer>b</answer>\n",
      "Sure! <think>a</think><answer>b</answer>",
      "<think>a</think><answer>b</answer> trailing",
      "<answer>b</answer><think>a</think>",
      "<think>a</think>",
      "<think>a<answer>b</answer>",
      ""};
  EXPECT_EQ(run({{"name", "format"}}, texts), (std::vector<float>{1, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(run({{"name", "format"}, {"mode", "lenient"}}, texts), (std::vector<float>{1, 1, 1, 1, 0, 0, 0, 0}));
}

TEST(RewardFormat, AdversarialInputsAreFastAndSafe) {
  const std::string think = adversarial_think();
  std::vector<float> strict, lenient;
  const double s = seconds_of([&] {
    strict = run({{"name", "format"}}, {think, think + "</think><answer>x</answer>", invalid_utf8()});
    lenient = run({{"name", "format"}, {"mode", "lenient"}}, {think, think + "</think><answer>x</answer>"});
  });
  EXPECT_EQ(strict, (std::vector<float>{0, 1, 0}));
  EXPECT_EQ(lenient, (std::vector<float>{0, 1}));
  EXPECT_LT(s, 2.0);
}

// ---------------------------------------------------------------- length, soft_overlong

std::vector<float> by_tokens(const json& spec, const std::vector<int64_t>& tokens) {
  auto reward = RewardRegistry::global().create(spec);
  std::vector<Sample> samples;
  for (int64_t t : tokens) samples.push_back(Sample{"q", "c", t, false, nullptr});
  return reward->score(samples);
}

TEST(RewardLength, LinearInTokens) {
  EXPECT_EQ(by_tokens({{"name", "length"}, {"target", 100}, {"scale", 2.0}}, {0, 50, 100, 200}),
            (std::vector<float>{2, 1, 0, -2}));
  EXPECT_NE(error_of([] { by_tokens({{"name", "length"}}, {1}); }).find("\"target\" is required"), std::string::npos);
  EXPECT_NE(error_of([] { by_tokens({{"name", "length"}, {"target", 0}}, {1}); }).find("target"), std::string::npos);
}

TEST(RewardSoftOverlong, DapoRamp) {
  EXPECT_EQ(by_tokens({{"name", "soft_overlong"}, {"max_length", 100}, {"buffer", 20}}, {0, 80, 90, 95, 100, 101, 1000}),
            (std::vector<float>{0, 0, -0.5f, -0.75f, -1, -1, -1}));
  EXPECT_NE(error_of([] { by_tokens({{"name", "soft_overlong"}, {"max_length", 10}, {"buffer", 20}}, {1}); })
                .find("buffer"),
            std::string::npos);
}

// ---------------------------------------------------------------- regex

TEST(RewardRegex, MatchesAndOptions) {
  EXPECT_EQ(run({{"name", "regex"}, {"pattern", "^<think>.*</think>"}}, {"<think>x</think>", "x<think></think>"}),
            (std::vector<float>{1, 0}));
  EXPECT_EQ(run({{"name", "regex"}, {"pattern", "answer"}, {"case_insensitive", true}}, {"ANSWER", "nope"}),
            (std::vector<float>{1, 0}));
  EXPECT_EQ(run({{"name", "regex"}, {"pattern", "42"}}, {invalid_utf8()}), (std::vector<float>{1}));
  EXPECT_EQ(run({{"name", "regex"}, {"pattern", "42"}, {"utf", true}}, {invalid_utf8(), "4\xff" "2"}),
            (std::vector<float>{1, 0}));
}

TEST(RewardRegex, CompileErrorNamesThePattern) {
  const std::string msg = error_of([] { RewardRegistry::global().create({{"name", "regex"}, {"pattern", "(a"}}); });
  EXPECT_NE(msg.find("\"(a\""), std::string::npos) << msg;
  EXPECT_NE(error_of([] { RewardRegistry::global().create({{"name", "regex"}}); }).find("\"pattern\" is required"),
            std::string::npos);
  EXPECT_HAS(error_of([] { RewardRegistry::global().create({{"name", "regex"}, {"pattern", ""}}); }),
             "regex: option \"pattern\" is empty");
  EXPECT_HAS(error_of([] {
               RewardRegistry::global().create({{"name", "regex"}, {"pattern", "a"}, {"match_limit", 4294967295LL}});
             }),
             "regex: option \"match_limit\" must be in [1, 100000000], got 4294967295");
  EXPECT_HAS(error_of([] {
               RewardRegistry::global().create({{"name", "regex"}, {"pattern", "a"}, {"depth_limit", 0}});
             }),
             "regex: option \"depth_limit\" must be in [1, 1000000], got 0");
  EXPECT_NO_THROW(RewardRegistry::global().create(
      {{"name", "regex"}, {"pattern", "a"}, {"match_limit", 100000000}, {"heap_limit_kib", 4194304}}));
}

TEST(RewardRegex, CatastrophicBacktrackingIsBounded) {
  const std::string evil(1 << 20, 'a');
  std::vector<float> got;
  const double s = seconds_of([&] { got = run({{"name", "regex"}, {"pattern", "(a+)+$b"}}, {evil + "!"}); });
  EXPECT_EQ(got, (std::vector<float>{0}));
  EXPECT_LT(s, 5.0);
  const std::string msg =
      error_of([&] { run({{"name", "regex"}, {"pattern", "^(a|aa)+$"}, {"on_limit", "raise"}}, {evil + "!"}); });
  EXPECT_NE(msg.find("regex"), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- registry

TEST(RewardRegistry, OwnFactoryUnknownNameAndUnknownOption) {
  RewardRegistry::global().register_factory("test_constant", [](const json& options) {
    const float value = options.value("value", 0.0f);
    return std::make_unique<grpo::FunctionReward>("test_constant", [value](const Sample&) { return value; });
  });
  EXPECT_EQ(run({{"name", "test_constant"}, {"value", 0.5}, {"weight", 3}}, {"a", "b"}), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_NE(error_of([] { RewardRegistry::global().register_factory("test_constant", [](const json&) {
              return std::unique_ptr<grpo::Reward>();
            }); }).find("already registered"),
            std::string::npos);

  const std::string unknown = error_of([] { RewardRegistry::global().create({{"name", "acuracy"}}); });
  EXPECT_NE(unknown.find("unknown reward 'acuracy'"), std::string::npos) << unknown;
  for (const char* name : {"accuracy", "format", "length", "soft_overlong", "regex", "language", "test_constant"}) {
    EXPECT_NE(unknown.find(name), std::string::npos) << name;
  }
  const std::string option = error_of([] { RewardRegistry::global().create({{"name", "accuracy"}, {"tolerence", 1}}); });
  EXPECT_NE(option.find("unknown option \"tolerence\""), std::string::npos) << option;
  EXPECT_NE(error_of([] { RewardRegistry::global().create({{"name", "format"}, {"mode", 3}}); }).find("\"mode\""),
            std::string::npos);
  EXPECT_NE(error_of([] { RewardRegistry::global().create(json{{"weight", 1}}); }).find("\"name\""), std::string::npos);
}

// ---------------------------------------------------------------- RewardSet

std::vector<Sample> numbered_samples(int64_t n, const json& record) {
  std::vector<Sample> samples;
  for (int64_t i = 0; i < n; ++i) {
    samples.push_back(Sample{"q", "<think>t</think><answer>" + std::to_string(i % 3) + "</answer>", i, i % 5 == 0,
                             &record});
  }
  return samples;
}

TEST(RewardSet, WeightsTotalsAndStats) {
  const json record = {{"answer", "1"}};
  RewardSet set = RewardSet::from_json({{"rewards",
                                         {{{"name", "accuracy"}, {"weight", 2.0}},
                                          {{"name", "format"}, {"weight", 0.5}},
                                          {{"name", "length"}, {"target", 10}, {"weight", -1.0}}}}});
  const auto samples = numbered_samples(9, record);
  const grpo::RewardScores s = set.score(samples);
  ASSERT_EQ(s.per_function.rows(), 9);
  ASSERT_EQ(s.per_function.cols(), 3);
  EXPECT_EQ(s.names, (std::vector<std::string>{"accuracy", "format", "length"}));
  for (int64_t i = 0; i < 9; ++i) {
    const float acc = i % 3 == 1 ? 1.f : 0.f, len = (10.f - i) / 10.f;
    EXPECT_FLOAT_EQ(s.per_function(i, 0), acc);
    EXPECT_FLOAT_EQ(s.per_function(i, 1), 1.f);
    EXPECT_FLOAT_EQ(s.per_function(i, 2), len);
    EXPECT_FLOAT_EQ(s.total(i), 2.f * acc + 0.5f - len);
  }
  EXPECT_NEAR(s.mean(0), 1.0 / 3.0, 1e-6);
  EXPECT_NEAR(s.std(0), std::sqrt(2.0 / 9.0), 1e-6);
  EXPECT_FLOAT_EQ(s.std(1), 0.f);
  EXPECT_EQ(s.failed_samples, 0);
  EXPECT_NE(error_of([] { RewardSet::from_json({{"threads", 2}}); }).find("\"threads\""), std::string::npos);
  EXPECT_NE(error_of([] { RewardSet::from_json({{"on_error", "ignore"}}); }).find("on_error"), std::string::npos);
}

TEST(RewardSet, ThreadCountDoesNotChangeResults) {
  const json record = {{"answer", "2"}};
  const auto samples = numbered_samples(103, record);
  auto make = [](int64_t threads) {
    grpo::RewardSetConfig c;
    c.num_threads = threads;
    c.chunk_size = 8;
    RewardSet set(c);
    set.add({{"name", "accuracy"}});
    set.add({{"name", "soft_overlong"}, {"max_length", 100}, {"buffer", 30}, {"weight", 0.3}});
    set.add(std::make_unique<grpo::FunctionReward>("sin", [](const Sample& s) {
      return static_cast<float>(std::sin(0.1 * static_cast<double>(s.completion_tokens)));
    }), 0.7f);
    return set;
  };
  const auto one = make(1).score(samples), four = make(4).score(samples);
  EXPECT_TRUE(one.per_function == four.per_function);
  EXPECT_TRUE(one.total == four.total);
  EXPECT_TRUE(one.mean == four.mean);
}

// A reward that fails on completion "bad": throws, NaN, or (batched) the wrong count.
std::unique_ptr<grpo::Reward> failing(const std::string& how) {
  if (how == "count") {
    return std::make_unique<grpo::FunctionReward>(how, [](const std::vector<Sample>& samples) {
      for (const auto& s : samples) {
        if (s.completion == "bad") return std::vector<float>(samples.size() + 1, 1.f);
      }
      return std::vector<float>(samples.size(), 1.f);
    });
  }
  return std::make_unique<grpo::FunctionReward>(how, [how](const Sample& s) {
    if (s.completion != "bad") return 1.f;
    if (how == "throws") throw std::runtime_error("boom");
    return how == "nan" ? NAN : INFINITY;
  });
}

TEST(RewardSet, ErrorsNameTheRewardAndSampleOrAreZeroed) {
  std::vector<Sample> samples;
  for (int i = 0; i < 10; ++i) samples.push_back(Sample{"q", i == 6 ? "bad" : "ok", 1, false, nullptr});
  for (const char* how : {"throws", "nan", "inf", "count"}) {
    for (int64_t threads : {1, 3}) {
      grpo::RewardSetConfig c;
      c.num_threads = threads;
      c.chunk_size = 4;
      RewardSet raise(c);
      raise.add(failing(how));
      const std::string msg = error_of([&] { raise.score(samples); });
      EXPECT_NE(msg.find(std::string("reward '") + how + "' failed on sample 6"), std::string::npos) << msg;

      c.on_error = "zero";
      RewardSet zero(c);
      zero.add(failing(how));
      zero.add(std::make_unique<grpo::FunctionReward>("ok", [](const Sample&) { return 2.f; }));
      ::testing::internal::CaptureStderr();
      const auto s = zero.score(samples);
      const std::string logged = ::testing::internal::GetCapturedStderr();
      EXPECT_NE(logged.find(std::string("reward '") + how + "' failed on sample 6 and scored 0 (on_error \"zero\")"),
                std::string::npos)
          << logged;
      EXPECT_EQ(s.failed_samples, 1) << how;
      for (int64_t i = 0; i < 10; ++i) {
        EXPECT_EQ(s.per_function(i, 0), i == 6 ? 0.f : 1.f) << how << " " << i;
        EXPECT_EQ(s.per_function(i, 1), 2.f);
      }
    }
  }
  {
    // Logged are a set's first 10 failures; the rest are counted only.
    grpo::RewardSetConfig c;
    c.on_error = "zero";
    RewardSet zero(c);
    zero.add(failing("throws"));
    std::vector<Sample> bad(4, Sample{"q", "bad", 1, false, nullptr});
    ::testing::internal::CaptureStderr();
    for (int round = 0; round < 4; ++round) EXPECT_EQ(zero.score(bad).failed_samples, 4);
    const std::string logged = ::testing::internal::GetCapturedStderr();
    size_t lines = 0;
    for (size_t at = logged.find("failed on sample"); at != std::string::npos; at = logged.find("failed on sample", at + 1)) {
      ++lines;
    }
    EXPECT_EQ(lines, 10u) << logged;
    EXPECT_NE(logged.find("further failures are counted, not logged"), std::string::npos) << logged;
  }
  EXPECT_NE(error_of([&] {
              RewardSet set;
              set.add(failing("throws"));
              set.score(samples);
            }).find("boom"),
            std::string::npos);
}

// A reward that hangs on completions "hang" until released (at most a minute),
// reading its sample's record when it wakes; 1 for anything else.
std::unique_ptr<grpo::Reward> hanging(std::atomic<bool>& release) {
  return std::make_unique<grpo::FunctionReward>("hangs", [&release](const Sample& s) {
    if (s.completion != "hang") return 1.f;
    for (int i = 0; i < 6000 && !release; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return s.fields != nullptr ? static_cast<float>(s.fields->dump().size()) : 1.f;
  });
}

TEST(RewardSet, AHangingRewardTimesOutNamingTheSample) {
  std::atomic<bool> release{false};
  auto record = std::make_unique<json>(json{{"answer", "42"}});
  std::vector<Sample> samples;
  for (int i = 0; i < 10; ++i) samples.push_back(Sample{"q", i == 6 ? "hang" : "ok", 1, false, record.get()});
  grpo::RewardSetConfig c;
  c.chunk_size = 4;
  c.timeout_seconds = 0.2;
  for (int64_t threads : {1, 3}) {
    c.num_threads = threads;
    c.on_error = "raise";
    RewardSet raise(c);
    raise.add(hanging(release));
    const std::string msg = error_of([&] { raise.score(samples); });
    EXPECT_HAS(msg, "reward 'hangs' failed on sample 6: did not return within 0.2 s (timeout_seconds)");

    c.on_error = "zero";
    RewardSet zero(c);
    zero.add(hanging(release));
    ::testing::internal::CaptureStderr();
    const auto s = zero.score(samples);
    ::testing::internal::GetCapturedStderr();
    // Sample 6 hung; 7, in its chunk after it, was not tried; the rest scored.
    EXPECT_EQ(s.failed_samples, 2);
    for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(s.per_function(i, 0), (i == 6 || i == 7) ? 0.f : 1.f) << i;
  }
  // The abandoned calls hold their own copies of the samples' records.
  record.reset();
  release = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

TEST(RewardSet, RewardCallsThatNeverReturnStopTheSet) {
  std::atomic<bool> release{false};
  grpo::RewardSetConfig c;
  c.chunk_size = 4;
  c.timeout_seconds = 0.05;
  c.on_error = "zero";
  RewardSet set(c);
  set.add(hanging(release));
  const std::vector<Sample> stuck(4, Sample{"q", "hang", 1, false, nullptr});
  ::testing::internal::CaptureStderr();
  // Each batch abandons two calls (the chunk, then its first sample).
  for (int64_t batch = 1; batch < RewardSet::kMaxHungCalls / 2; ++batch) EXPECT_EQ(set.score(stuck).failed_samples, 4);
  const std::string msg = error_of([&] { set.score(stuck); });
  ::testing::internal::GetCapturedStderr();
  EXPECT_HAS(msg, "8 reward calls did not return within timeout_seconds (0.05 s) and are still running");
  release = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

TEST(RewardSet, TimeoutSecondsIsReadAndChecked) {
  EXPECT_EQ(RewardSet::from_json({{"timeout_seconds", 2.5}}).config().timeout_seconds, 2.5);
  EXPECT_EQ(RewardSet::from_json(json::object()).config().timeout_seconds, 300.0);
  EXPECT_HAS(error_of([] { RewardSet::from_json({{"timeout_seconds", -1}}); }),
             "timeout_seconds must be in [0, 604800] (0 = no limit), got -1");
  EXPECT_HAS(error_of([] { RewardSet::from_json({{"timeout_seconds", 1e9}}); }), "got 1e+09");
  EXPECT_HAS(error_of([] { RewardSet::from_json({{"timeout_seconds", "soon"}}); }), "\"timeout_seconds\" has the wrong type");
}

TEST(RewardSet, SlowRewardsRunInParallel) {
  grpo::RewardSetConfig c;
  c.num_threads = 4;
  c.chunk_size = 1;
  RewardSet set(c);
  std::atomic<int> running{0}, peak{0};
  set.add(std::make_unique<grpo::FunctionReward>("slow", [&](const Sample&) {
    const int now = ++running;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    --running;
    return 1.f;
  }));
  const auto s = set.score(numbered_samples(8, json::object()));
  EXPECT_EQ(s.total.sum(), 8.f);
  EXPECT_GT(peak.load(), 1);
}

}  // namespace
