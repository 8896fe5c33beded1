// RejectionSampler over a JSONL of prompts with the tiny run's model: what is
// written passes the rules and carries its record, rewards and source; the
// counts agree with the per-prompt file; batching and resuming after a failure
// (with a torn write) change nothing; dedupe and best-of-K; bad names.
#include <grpo/error.h>
#include <grpo/train/factory.h>
#include <grpo/train/rejection_sampling.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.h"
#include "train/tiny_run.h"

namespace fs = std::filesystem;
using namespace grpo_test;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> read_lines(const fs::path& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

grpo::TrainConfig rejection_config(const TempDir& dir, const std::string& out) {
  grpo::TrainConfig c = tiny_config((dir.path / out).string());
  {
    std::ofstream f(dir.path / "prompts.jsonl");
    for (int64_t i = 0; i < 11; ++i) {
      std::string p;
      for (int64_t k = 0; k <= i % 4; ++k) p += (i + k) % 2 ? "a" : "b";
      f << json{{"prompt", p}, {"id", i}}.dump() << "\n";
    }
  }
  c.data.train = (dir.path / "prompts.jsonl").string();
  c.rejection.samples_per_prompt = 6;
  c.rejection.prompts_per_batch = 4;
  c.rejection.min_rewards = {{"a_fraction", 0.5}};
  c.eval.accuracy_reward = "a_fraction";
  c.checkpoint.resume = true;
  return c;
}

grpo::RejectionSampler make(const grpo::TrainConfig& c, grpo::RewardSet rewards = a_fraction_reward()) {
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  return grpo::RejectionSampler(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer, std::move(rewards),
                                {{"checkpoint", "test"}, {"step", 7}});
}

}  // namespace

TEST(RejectionSampling, WritesThePairsThatPassAndCountsThem) {
  TempDir dir("rejection_basic");
  grpo::TrainConfig c = rejection_config(dir, "run");
  c.rejection.keep = "all";
  grpo::RejectionSampler sampler = make(c);
  const json summary = sampler.run();
  const std::vector<json> pairs = read_lines(sampler.accepted_path());
  const std::vector<json> prompts = read_lines(fs::path(sampler.output_dir()) / "prompts.jsonl");
  ASSERT_EQ(prompts.size(), 11u);
  EXPECT_EQ(summary["prompts"], 11);
  EXPECT_EQ(summary["samples"], 66);
  int64_t accepted = 0, written = 0, with_accepted = 0, correct = 0, prompts_correct = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(prompts[i]["index"], static_cast<int64_t>(i));
    EXPECT_EQ(prompts[i]["line"], static_cast<int64_t>(i + 1));
    accepted += prompts[i]["accepted"].get<int64_t>();
    written += prompts[i]["written"].get<int64_t>();
    with_accepted += prompts[i]["accepted"].get<int64_t>() > 0;
    correct += prompts[i]["correct"].get<int64_t>();
    prompts_correct += prompts[i]["correct"].get<int64_t>() > 0;
    EXPECT_LE(prompts[i]["written"].get<int64_t>(), prompts[i]["accepted"].get<int64_t>());
  }
  EXPECT_GT(written, 0) << "the rule accepts nothing: the test checks nothing";
  EXPECT_LT(accepted, 66) << "the rule rejects nothing: the test checks nothing";
  EXPECT_EQ(summary["accepted"], accepted);
  EXPECT_EQ(summary["written"], written);
  EXPECT_EQ(static_cast<int64_t>(pairs.size()), written);
  EXPECT_DOUBLE_EQ(summary["acceptance_rate"].get<double>(), accepted / 66.0);
  EXPECT_DOUBLE_EQ(summary["prompt_acceptance_rate"].get<double>(), with_accepted / 11.0);
  EXPECT_DOUBLE_EQ(summary["pass_at_k"].get<double>(), prompts_correct / 11.0);
  EXPECT_DOUBLE_EQ(summary["mean_accuracy"].get<double>(), correct / 66.0);
  EXPECT_TRUE(summary["complete"].get<bool>());
  for (const json& p : pairs) {
    const std::string completion = p["completion"].get<std::string>();
    const double share = completion.empty() ? 0.0
                                            : static_cast<double>(std::count(completion.begin(), completion.end(), 'a')) /
                                                  static_cast<double>(completion.size());
    EXPECT_GE(share, 0.5 - 1e-6) << p.dump();
    EXPECT_NEAR(p["rewards"]["a_fraction"].get<double>(), share, 1e-6);
    EXPECT_TRUE(p.contains("id") && p.contains("prompt")) << "the prompt's record is kept";
    EXPECT_EQ(p["source"], (json{{"checkpoint", "test"}, {"step", 7}}));
  }
  // A finished folder is returned as it is.
  EXPECT_EQ(make(c).run(), summary);
}

// Each prompt samples from a seed of its index: batches of 1, 4 or 16 write
// the same pairs; best-of-K keeps one per prompt, the highest reward.
TEST(RejectionSampling, BatchingChangesNothingAndBestKeepsOne) {
  TempDir dir("rejection_batching");
  std::string first;
  for (int64_t batch : {1, 4, 16}) {
    grpo::TrainConfig c = rejection_config(dir, "b" + std::to_string(batch));
    c.rejection.prompts_per_batch = batch;
    grpo::RejectionSampler sampler = make(c);
    sampler.run();
    const std::string text = read_text(sampler.accepted_path());
    if (first.empty()) first = text;
    EXPECT_EQ(text, first) << "batch " << batch;
  }
  grpo::TrainConfig all = rejection_config(dir, "all");
  all.rejection.keep = "all";
  grpo::RejectionSampler all_sampler = make(all);
  all_sampler.run();
  std::map<int64_t, double> best;
  for (const json& p : read_lines(all_sampler.accepted_path())) {
    const int64_t id = p["id"].get<int64_t>();
    best[id] = std::max(best.count(id) ? best[id] : -1.0, p["reward"].get<double>());
  }
  const std::vector<json> kept = read_lines(fs::path(dir.path / "b1" / "rejection" / "accepted.jsonl"));
  EXPECT_EQ(kept.size(), best.size());
  for (const json& p : kept) EXPECT_EQ(p["reward"].get<double>(), best[p["id"].get<int64_t>()]) << p.dump();
}

// A run that fails in its third batch, with a torn line after its last
// progress, resumes and ends with exactly a straight run's files.
TEST(RejectionSampling, ResumesAfterAFailureAsAStraightRunEnds) {
  TempDir dir("rejection_resume");
  grpo::TrainConfig straight = rejection_config(dir, "straight");
  grpo::RejectionSampler s = make(straight);
  s.run();

  grpo::TrainConfig c = rejection_config(dir, "resumed");
  grpo::RewardSet failing;
  failing.add(std::make_unique<grpo::FunctionReward>("a_fraction", [](const grpo::Sample& x) -> float {
    if ((*x.fields)["id"].get<int64_t>() == 9) throw std::runtime_error("boom");
    return static_cast<float>(std::count(x.completion.begin(), x.completion.end(), 'a')) /
           static_cast<float>(std::max<size_t>(1, x.completion.size()));
  }));
  grpo::RejectionSampler broken = make(c, failing);
  EXPECT_HAS(error_of([&] { broken.run(); }), "boom");
  const fs::path out = dir.path / "resumed" / "rejection";
  ASSERT_TRUE(fs::exists(out / "progress.json"));
  EXPECT_FALSE(fs::exists(out / "summary.json"));
  { std::ofstream(out / "accepted.jsonl", std::ios::app) << "{\"torn\": "; }
  grpo::RejectionSampler resumed = make(c);
  const json summary = resumed.run();
  EXPECT_EQ(summary["prompts"], 11);
  EXPECT_EQ(read_text(out / "accepted.jsonl"), read_text(s.accepted_path()));
  EXPECT_EQ(read_text(out / "prompts.jsonl"), read_text(fs::path(s.output_dir()) / "prompts.jsonl"));
}

// top_k 1 samples the most likely completion K times: dedupe writes it once.
TEST(RejectionSampling, DedupeWritesIdenticalCompletionsOnce) {
  TempDir dir("rejection_dedupe");
  for (bool dedupe : {true, false}) {
    grpo::TrainConfig c = rejection_config(dir, dedupe ? "dedupe" : "keep");
    c.sampling.top_k = 1;
    c.rejection.keep = "all";
    c.rejection.min_rewards = json::object();
    c.rejection.accept_truncated = true;
    c.rejection.dedupe = dedupe;
    grpo::RejectionSampler sampler = make(c);
    const json summary = sampler.run();
    EXPECT_EQ(summary["accepted"], 66);
    EXPECT_EQ(summary["written"], dedupe ? 11 : 66);
  }
}

// max_tokens rejects longer completions: every written pair fits, and fewer pass than without it.
TEST(RejectionSampling, MaxTokensRejectsLongerCompletions) {
  TempDir dir("rejection_max_tokens");
  grpo::TrainConfig c = rejection_config(dir, "any");
  c.rejection.keep = "all";
  c.rejection.min_rewards = json::object();
  c.rejection.accept_truncated = true;
  const json any = make(c).run();
  c = rejection_config(dir, "short");
  c.rejection.keep = "all";
  c.rejection.min_rewards = json::object();
  c.rejection.accept_truncated = true;
  c.rejection.max_tokens = 3;
  grpo::RejectionSampler sampler = make(c);
  const json shorter = sampler.run();
  EXPECT_LT(shorter["accepted"].get<int64_t>(), any["accepted"].get<int64_t>());
  EXPECT_GT(shorter["accepted"].get<int64_t>(), 0);
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  for (const json& p : read_lines(sampler.accepted_path())) {
    // EOS counts: a completion of n characters that stopped holds n + 1 tokens.
    EXPECT_LE(tokenizer->encode(p["completion"].get<std::string>()).size(), 3u) << p.dump();
  }
}

TEST(RejectionSampling, RulesNameWhatIsWrong) {
  TempDir dir("rejection_errors");
  grpo::TrainConfig c = rejection_config(dir, "run");
  c.rejection.min_rewards = {{"accuracy", 1}};
  EXPECT_HAS(error_of([&] { make(c); }), "rejection.min_rewards.accuracy: no reward of that name (the run's rewards: a_fraction)");
  c.rejection.min_rewards = {{"a_fraction", "high"}};
  EXPECT_HAS(error_of([&] { c.validate(); }), "rejection.min_rewards.a_fraction");
  c = rejection_config(dir, "run");
  c.rejection.keep = "first";
  EXPECT_HAS(error_of([&] { c.validate(); }), "rejection.keep");
  c = rejection_config(dir, "run");
  c.rejection.prompts = (dir.path / "missing.jsonl").string();
  EXPECT_HAS(error_of([&] { make(c).run(); }), "rejection.prompts " + c.rejection.prompts + ": no such file");
}
