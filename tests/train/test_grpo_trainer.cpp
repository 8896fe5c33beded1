// GRPOTrainer on the tiny run of tiny_run.h: the reward rises on a trivial
// task, a resumed run repeats a straight one exactly, micro-batches give the
// full batch's update, mixed precision keeps float32 masters, dynamic
// sampling refills, and bad input is named.
#include <grpo/config/config.h>
#include <grpo/error.h>
#include <grpo/files.h>
#include <grpo/io/pretrained.h>
#include <grpo/io/weights.h>
#include <grpo/models/transformer.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/factory.h>
#include <grpo/train/grpo_trainer.h>
#include <grpo/train/metrics.h>
#include <grpo/train/sft_trainer.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sys/resource.h>

#include "test_util.h"
#include "train/tiny_run.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace grpo_test;

TEST(Trainer, RewardRisesOnATrivialTask) {
  TempDir dir("rises");
  auto trainer = tiny_trainer(tiny_config(dir.path.string()));
  std::vector<double> rewards;
  trainer->on_step_end([&](const json& m) { rewards.push_back(m["reward"].get<double>()); });
  for (int i = 0; i < 20; ++i) trainer->step();
  ASSERT_EQ(rewards.size(), 20u);
  const double first = (rewards[0] + rewards[1] + rewards[2]) / 3, last = (rewards[17] + rewards[18] + rewards[19]) / 3;
  EXPECT_GT(last, first + 0.2) << "first steps " << first << ", last steps " << last;
}

TEST(Trainer, TrainWritesMetricsReportPlotAndCheckpoint) {
  TempDir dir("outputs");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.grpo.steps = 3;
  c.eval.every = 2;
  auto trainer = tiny_trainer(c);
  int evals = 0;
  trainer->on_evaluate([&](const grpo::EvalResult& r) {
    ++evals;
    EXPECT_EQ(r.problems, 8);
    EXPECT_EQ(r.reward_names, std::vector<std::string>{"a_fraction"});
  });
  const json report = trainer->train();
  EXPECT_EQ(evals, 3);  // before, at step 2, at the end
  EXPECT_EQ(report["steps"], 3);
  EXPECT_EQ(report["eval_problems"], 8);
  EXPECT_EQ(report["evaluations"].size(), 3u);

  std::ifstream metrics(dir / "metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    const json m = json::parse(line);
    EXPECT_EQ(m["step"], ++lines);
    for (const char* key : {"reward", "reward_std", "rewards/a_fraction/mean", "frac_reward_zero_std", "kl",
                            "clip_ratio/low_mean", "clip_ratio/high_mean", "completion_length", "entropy",
                            "learning_rate", "grad_norm", "seconds/generate", "seconds/reward", "seconds/train",
                            "tokens_per_second"}) {
      EXPECT_TRUE(m.contains(key)) << key;
    }
  }
  EXPECT_EQ(lines, 3);
  EXPECT_TRUE(fs::exists(dir / "report.json"));
  std::ifstream plot(dir / "plot.svg");
  const std::string svg((std::istreambuf_iterator<char>(plot)), std::istreambuf_iterator<char>());
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("polyline"), std::string::npos);
  ASSERT_TRUE(grpo::latest_checkpoint(dir.path.string()).has_value());
  EXPECT_EQ(*grpo::latest_checkpoint(dir.path.string()), grpo::checkpoint_dir(dir.path.string(), 3));
}

// N steps straight give the same losses and weights as K steps, a checkpoint,
// a new trainer that resumes, and N − K more steps; in mixed precision too,
// where the checkpoint holds the float32 masters and AdamW's float32 state.
TEST(Trainer, ResumeIsExact) {
  for (const std::string dtype : {"float32", "bfloat16"}) {
    SCOPED_TRACE(dtype);
    TempDir a("straight_" + dtype), b("resumed_" + dtype);
    grpo::TrainConfig c = tiny_config(a.path.string());
    c.model.dtype = dtype;
    c.grpo.steps = 5;
    c.grpo.num_iterations = 2;   // old log-probs and several updates per step
    c.grpo.mini_batches = 2;
    c.grpo.ref_sync_steps = 2;   // the reference moves too
    c.optimizer.schedule = "cosine";
    c.optimizer.warmup_steps = 2;
    std::vector<double> straight;
    auto t1 = tiny_trainer(c);
    t1->on_step_end([&](const json& m) { straight.push_back(m["loss"].get<double>()); });
    t1->train();

    c.output_dir = b.path.string();
    c.checkpoint.resume = true;
    c.checkpoint.save_every = 3;
    std::vector<double> resumed;
    {
      // The run "crashes" during step 5, after step 4 was logged but not checkpointed.
      auto t2 = tiny_trainer(c);
      t2->on_step_end([&](const json& m) {
        if (m["step"] == 5) throw std::runtime_error("crash");
        resumed.push_back(m["loss"].get<double>());
      });
      EXPECT_THROW(t2->train(), std::runtime_error);
    }
    resumed.pop_back();  // step 4 is done again after the resume
    auto t3 = tiny_trainer(c);  // fresh weights: everything must come from the checkpoint
    t3->on_step_end([&](const json& m) { resumed.push_back(m["loss"].get<double>()); });
    t3->train();
    EXPECT_EQ(t3->global_step(), 5);
    ASSERT_EQ(resumed.size(), straight.size());
    for (size_t i = 0; i < straight.size(); ++i) EXPECT_EQ(resumed[i], straight[i]) << "step " << i + 1;
    const auto w1 = weights(*t1), w3 = weights(*t3);
    for (size_t i = 0; i < w1.size(); ++i) EXPECT_TRUE(torch::equal(w1[i], w3[i])) << "parameter " << i;
    const auto m1 = t1->master_model().module().parameters(), m3 = t3->master_model().module().parameters();
    for (size_t i = 0; i < m1.size(); ++i) EXPECT_TRUE(torch::equal(m1[i], m3[i])) << "master " << i;

    // metrics.jsonl of the resumed run has each step once.
    std::ifstream metrics(b / "metrics.jsonl");
    std::string line;
    std::vector<int64_t> steps;
    while (std::getline(metrics, line)) steps.push_back(json::parse(line)["step"].get<int64_t>());
    EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5}));
  }
}

// Mixed precision (model.dtype "bfloat16"): the policy and the reference
// compute in bfloat16, rounded from float32 masters; a checkpoint holds the
// masters and AdamW's state in float32 and loads as the bfloat16 model; the
// exported folder is the masters in checkpoint.save_pretrained's dtype.
TEST(Trainer, MixedPrecisionKeepsFloat32Masters) {
  TempDir dir("mixed");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.model.dtype = "bfloat16";
  c.grpo.steps = 2;
  c.checkpoint.save_pretrained = "float32";
  auto trainer = tiny_trainer(c);
  trainer->train();

  auto& masters = trainer->master_model();
  const auto named_masters = grpo::named_state(masters.module());
  const auto named_policy = grpo::named_state(trainer->policy().model().module());
  ASSERT_EQ(named_masters.size(), named_policy.size());
  for (const auto& [name, w] : named_masters) {
    EXPECT_EQ(w.scalar_type(), torch::kFloat32) << name;
    EXPECT_EQ(named_policy.at(name).scalar_type(), torch::kBFloat16) << name;
    EXPECT_TRUE(torch::equal(named_policy.at(name), w.to(torch::kBFloat16))) << name;
  }

  const std::string ckpt = grpo::checkpoint_dir(dir.path.string(), 2);
  EXPECT_EQ(grpo::read_json_file(ckpt + "/model.json").at("dtype"), "bfloat16");
  torch::serialize::InputArchive archive;
  archive.load_from(ckpt + "/model.pt");
  for (const auto& [name, w] : named_masters) {
    torch::Tensor saved;
    ASSERT_TRUE(archive.try_read(name, saved)) << name;
    EXPECT_TRUE(torch::equal(saved, w)) << name;  // float32, equal to the masters
  }
  torch::serialize::InputArchive optimizer_archive;
  optimizer_archive.load_from(ckpt + "/optimizer.pt");
  torch::optim::AdamW adamw(masters.module().parameters());
  adamw.load(optimizer_archive);
  ASSERT_FALSE(adamw.state().empty());
  for (const auto& [key, state] : adamw.state()) {
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*state);
    EXPECT_EQ(s.exp_avg().scalar_type(), torch::kFloat32);
    EXPECT_EQ(s.exp_avg_sq().scalar_type(), torch::kFloat32);
  }
  const auto loaded = grpo::named_state(grpo::load_model(ckpt)->module());
  for (const auto& [name, w] : named_policy) EXPECT_TRUE(torch::equal(loaded.at(name), w)) << name;

  const auto exported = grpo::named_state(grpo::load_model(dir / "final")->module());
  for (const auto& [name, w] : named_masters) EXPECT_TRUE(torch::equal(exported.at(name), w)) << name;
}

// Gradient accumulation over micro-batches gives the same gradient and update
// as the whole mini-batch at once, for every loss type: the normalizer spans
// the update (BNPO's too: the update's token mean, not a sum of micro-batch
// means). NB: grad_norm is compared, since Adam's first step barely depends on
// the gradient's scale.
TEST(Trainer, MicroBatchesGiveTheFullBatchUpdate) {
  for (const std::string loss_type : {"dapo", "grpo", "dr_grpo", "bnpo"}) {
    SCOPED_TRACE(loss_type);
    TempDir dir("accum_" + loss_type);
    grpo::TrainConfig c = tiny_config(dir.path.string());
    c.loss.policy.loss_type = grpo::parse_loss_type(loss_type);
    c.grpo.mini_batches = 2;  // 16 rows an update
    c.optimizer.max_grad_norm = 0;
    c.optimizer.eps = 1.0;  // NB: makes Adam's first update ~ lr·g, so it shows gradient differences in proportion
    auto whole = tiny_trainer(c);
    const json m_whole = whole->step();
    c.grpo.micro_batch_size = 4;
    auto parts = tiny_trainer(c);
    const json m_parts = parts->step();
    EXPECT_NEAR(m_parts["grad_norm"].get<double>(), m_whole["grad_norm"].get<double>(),
                1e-5 * m_whole["grad_norm"].get<double>());
    EXPECT_NEAR(m_parts["loss"].get<double>(), m_whole["loss"].get<double>(), 1e-6);
    const auto w1 = weights(*whole), w2 = weights(*parts);
    for (size_t i = 0; i < w1.size(); ++i) EXPECT_TRUE(torch::allclose(w1[i], w2[i], 1e-5, 1e-6)) << "parameter " << i;
  }
}

// Dynamic sampling drops groups whose rewards are all equal and refills the batch.
TEST(Trainer, DynamicSamplingRefillsTheBatch) {
  TempDir dir("dynamic");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.grpo.dynamic_sampling = true;
  c.grpo.max_sampling_rounds = 3;
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto model = grpo::make_model(c.model, *tokenizer, c.seed);
  // Only prompts starting with "a" get varied rewards; "b" prompts always score 0.
  grpo::RewardSet set;
  set.add(std::make_unique<grpo::FunctionReward>("a_prompt_only", [](const grpo::Sample& s) {
    return s.prompt[0] == 'a' ? static_cast<float>(s.completion.size() % 2) : 0.0f;
  }));
  grpo::GRPOTrainer trainer(c, model, tokenizer, std::move(set), tiny_prompts());
  const json m = trainer.step();
  EXPECT_GT(m["sampling_rounds"].get<int64_t>(), 1);
  EXPECT_GT(m["frac_reward_zero_std"].get<double>(), 0.0);
}

TEST(Trainer, BadSetupsAreNamed) {
  TempDir dir("bad");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto model = grpo::make_model(c.model, *tokenizer, c.seed);
  EXPECT_NE(error_of([&] { grpo::GRPOTrainer(c, model, tokenizer, grpo::RewardSet(), tiny_prompts()); })
                .find("no reward functions"),
            std::string::npos);
  c.grpo.prompts_per_step = 40;
  EXPECT_NE(error_of([&] { grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), tiny_prompts()); })
                .find("grpo.prompts_per_step: must be <= the 16 training prompts, got 40"),
            std::string::npos);
  c = tiny_config(dir.path.string());
  c.grpo.group_size = 1;
  EXPECT_NE(error_of([&] { grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), tiny_prompts()); })
                .find("grpo.group_size"),
            std::string::npos);
  c = tiny_config(dir.path.string());
  EXPECT_NE(error_of([&] { grpo::GRPOTrainer::from_config(c); }).find("data.train"), std::string::npos);
  c.tokenizer.characters = "";
  EXPECT_HAS(error_of([&] { grpo::make_tokenizer(c.tokenizer); }), "tokenizer: give \"path\" (a tokenizer file or folder) or \"characters\"");
  EXPECT_HAS(error_of([&] { grpo::make_tokenizer(c.tokenizer, dir / "no_checkpoint"); }), "tokenizer.json");
  auto trainer = tiny_trainer(tiny_config(dir.path.string()));
  grpo::TrainConfig no_eval = tiny_config(dir.path.string());
  grpo::GRPOTrainer without_eval(no_eval, model, tokenizer, a_fraction_reward(), tiny_prompts());
  EXPECT_NE(error_of([&] { without_eval.evaluate(); }).find("no eval set"), std::string::npos);
}


// ---------------------------------------------------------------- on-policy exactness

namespace {

// Runs `steps` steps of config `c`; returns each step's metrics and the final weights.
std::pair<std::vector<json>, std::vector<torch::Tensor>> run_steps(const grpo::TrainConfig& c, int steps) {
  auto trainer = tiny_trainer(c);
  std::vector<json> metrics;
  for (int i = 0; i < steps; ++i) metrics.push_back(trainer->step());
  return {metrics, weights(*trainer)};
}

bool same_weights(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

// In batch-invariant mode the sampler's log-probs are the recomputed old
// log-probs bit for bit: the logged difference is exactly 0, and taking them
// as the old log-probs (no forward pass) trains to the same weights, for μ = 2
// and two mini-batches with micro-batches.
TEST(Trainer, SamplerLogprobsAreTheOldLogprobsExactlyInBatchInvariantMode) {
  TempDir dir("exact_old");
  grpo::TrainConfig c = tiny_config((dir / "recompute"));
  c.model.batch_invariant = true;
  c.grpo.num_iterations = 2;
  c.grpo.mini_batches = 2;
  c.grpo.micro_batch_size = 4;
  const auto [recomputed, w_recomputed] = run_steps(c, 3);
  for (const json& m : recomputed) {
    ASSERT_TRUE(m.contains("sampling/sampling_logp_difference/max")) << m.dump();
    EXPECT_EQ(m["sampling/sampling_logp_difference/max"].get<double>(), 0.0);
    EXPECT_EQ(m["sampling/sampling_logp_difference/mean"].get<double>(), 0.0);
  }
  c.output_dir = (dir / "sampler");
  c.grpo.old_logprobs = "sampler";
  const auto [from_sampler, w_sampler] = run_steps(c, 3);
  EXPECT_TRUE(same_weights(w_recomputed, w_sampler));
  for (size_t i = 0; i < from_sampler.size(); ++i) {
    EXPECT_EQ(from_sampler[i]["loss"], recomputed[i]["loss"]) << "step " << i + 1;
    EXPECT_EQ(from_sampler[i]["sampling/sampling_logp_difference/max"].get<double>(), 0.0);
  }
}

// An importance correction whose weights are all exactly 1 (a batch-invariant
// model, no sampling filters) changes nothing; μ = 1 measures the difference
// on the update's own forward.
TEST(Trainer, ImportanceCorrectionIsTheIdentityWhenExact) {
  TempDir dir("exact_is");
  grpo::TrainConfig c = tiny_config((dir / "none"));
  c.model.batch_invariant = true;
  const auto [plain, w_plain] = run_steps(c, 3);
  for (const char* mode : {"token_truncate", "token_mask", "sequence_truncate", "sequence_mask"}) {
    SCOPED_TRACE(mode);
    c.output_dir = (dir / mode);
    c.grpo.importance_correction = mode;
    const auto [corrected, w_corrected] = run_steps(c, 3);
    EXPECT_TRUE(same_weights(w_plain, w_corrected));
    for (const json& m : corrected) {
      EXPECT_EQ(m["sampling/importance_sampling_ratio/min"].get<double>(), 1.0);
      EXPECT_EQ(m["sampling/importance_sampling_ratio/max"].get<double>(), 1.0);
      EXPECT_EQ(m["sampling/sampling_logp_difference/max"].get<double>(), 0.0);
    }
  }
}

// Sampling with top-k draws from another distribution than the policy's:
// the weights differ from 1, truncation keeps them in [min, max], masking
// zeroes those outside, and the two runs differ from the uncorrected one.
// Without the batch-invariant mode the logged difference is rounding-sized.
TEST(Trainer, ImportanceCorrectionWeighsTheSamplersDistribution) {
  TempDir dir("topk_is");
  grpo::TrainConfig c = tiny_config((dir / "none"));
  c.sampling.top_k = 2;
  c.grpo.importance_max = 1.5;
  const auto [plain, w_plain] = run_steps(c, 2);
  for (const json& m : plain) {
    EXPECT_LT(m["sampling/sampling_logp_difference/max"].get<double>(), 1e-4) << m.dump();
    EXPECT_FALSE(m.contains("sampling/importance_sampling_ratio/mean"));
  }
  c.output_dir = (dir / "truncate");
  c.grpo.importance_correction = "token_truncate";
  const auto [truncated, w_truncated] = run_steps(c, 2);
  EXPECT_FALSE(same_weights(w_plain, w_truncated));
  for (const json& m : truncated) {
    // NB: renormalizing over the top 2 makes every kept token likelier under the sampler: π_old / π_sampler <= 1.
    EXPECT_LT(m["sampling/importance_sampling_ratio/mean"].get<double>(), 1.0);
    EXPECT_GE(m["sampling/importance_sampling_ratio/min"].get<double>(), 0.0);
    EXPECT_LE(m["sampling/importance_sampling_ratio/max"].get<double>(), 1.0 + 1e-6);
  }
  c.output_dir = (dir / "mask");
  c.grpo.importance_correction = "sequence_mask";
  c.grpo.importance_min = 0.5;
  const auto [masked, w_masked] = run_steps(c, 2);
  EXPECT_FALSE(same_weights(w_truncated, w_masked));
  for (const json& m : masked) {
    EXPECT_EQ(m["sampling/importance_sampling_ratio/min"].get<double>(), 0.0) << "some sequences are masked";
  }
}

TEST(Trainer, OnPolicyOptionsAreChecked) {
  TempDir dir("onpolicy_errors");
  const grpo::TrainConfig base = tiny_config(dir.path.string());
  auto expect_error = [](grpo::TrainConfig c, const std::string& needle) {
    try {
      c.validate();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const grpo::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  grpo::TrainConfig c = base;
  c.grpo.old_logprobs = "vllm";
  expect_error(c, "grpo.old_logprobs");
  c = base;
  c.grpo.importance_correction = "token";
  expect_error(c, "grpo.importance_correction");
  c = base;
  c.grpo.importance_correction = "token_mask";
  c.grpo.old_logprobs = "sampler";
  expect_error(c, "same numbers");
  c = base;
  c.grpo.importance_correction = "token_mask";
  c.loss.policy.importance_sampling = grpo::ImportanceSampling::Sequence;
  expect_error(c, "sequence-level");
  c = base;
  c.grpo.importance_max = 0.0;
  expect_error(c, "grpo.importance_max");
  c = base;
  c.model.batch_invariant = true;
  c.model.dtype = "bfloat16";
  expect_error(c, "model.batch_invariant");
}

// Every prompt is measured when the trainer is made: one too long for the
// model's positions with max_new_tokens is an error naming where it is, not a
// failure at the step that draws it (and at every resume after).
TEST(Trainer, PromptsTooLongForTheModelAreFoundAtLoad) {
  grpo::TrainConfig c = tiny_config(::testing::TempDir());
  // 32 positions and 6 new tokens leave 26 for a prompt.
  std::vector<json> records;
  for (int i = 0; i < 10; ++i) records.push_back({{"prompt", std::string(i == 7 || i == 9 ? 30 : 20, 'a')}});
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto model = grpo::make_model(c.model, *tokenizer, c.seed);
  const std::string message = error_of([&] {
    grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), grpo::PromptDataset::from_records(records),
                      tiny_prompts(8));
  });
  EXPECT_HAS(message, "2 of 10 prompts are too long for the model's 32 positions with sampling.max_new_tokens 6");
  EXPECT_HAS(message, "the first: record 7 has");
  // The eval set is measured against its own length.
  c.eval.max_new_tokens = 13;
  records.resize(7);
  const std::string eval_message = error_of([&] {
    grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), tiny_prompts(),
                      grpo::PromptDataset::from_records(records));
  });
  EXPECT_HAS(eval_message, "7 of 7 prompts are too long for the model's 32 positions with eval.max_new_tokens 13");
  // Prompts that fit make a trainer.
  c.eval.max_new_tokens = 0;
  EXPECT_NO_THROW(grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), grpo::PromptDataset::from_records(records),
                                    tiny_prompts(8)));
}

// An accuracy reward the run does not have is a typo: named at once, with the rewards there are.
TEST(Trainer, AnUnknownAccuracyRewardIsNamed) {
  grpo::TrainConfig c = tiny_config(::testing::TempDir());
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto model = grpo::make_model(c.model, *tokenizer, c.seed);
  c.eval.accuracy_reward = "a_fractoin";
  EXPECT_HAS(error_of([&] { grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), tiny_prompts()); }),
             "eval.accuracy_reward: \"a_fractoin\" is not one of the run's rewards (a_fraction)");
  for (const char* fine : {"a_fraction", "", "accuracy"}) {
    c.eval.accuracy_reward = fine;
    EXPECT_NO_THROW(grpo::GRPOTrainer(c, model, tokenizer, a_fraction_reward(), tiny_prompts())) << fine;
  }
}
