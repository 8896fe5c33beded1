// SFTTrainer on prompt -> completion pairs with the tiny run's model.
#include <grpo/error.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/factory.h>
#include <grpo/train/sft_trainer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "train/tiny_run.h"

namespace fs = std::filesystem;
using namespace grpo_test;

// SFT on prompt → completion pairs: the loss falls and the model reproduces
// the completions greedily; the checkpoint it writes loads as a model.
TEST(Sft, LearnsItsPairsAndWritesALoadableCheckpoint) {
  TempDir dir("sft");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.sft.steps = 200;
  c.model.config.num_layers = 2;
  c.sft.batch_size = 4;
  c.sft.optimizer.lr = 1e-2;
  // NB: prompts end in "=", so where a prompt stops is never ambiguous.
  c.tokenizer.characters = "ab=";
  std::vector<json> records = {{{"prompt", "a="}, {"completion", "bb"}},
                               {{"prompt", "b="}, {"completion", "aaa"}},
                               {{"prompt", "ab="}, {"completion", "ba"}},
                               {{"prompt", "ba="}, {"completion", "abab"}}};
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  grpo::SFTTrainer sft(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                       grpo::PromptDataset::from_records(records));
  const double first = sft.step()["loss"].get<double>();
  const json result = sft.train();
  EXPECT_LT(result["final_loss"].get<double>(), 0.1 * first);

  auto model = grpo::load_model(result["checkpoint"].get<std::string>());
  grpo::Policy policy(model);
  grpo::GenerationConfig g;
  g.temperature = 0;
  g.max_new_tokens = 6;
  g.eos_ids = {tokenizer->eos_id()};
  g.pad_id = tokenizer->pad_id();
  for (const json& r : records) {
    const grpo::Generation out = policy.generate({tokenizer->encode(r["prompt"].get<std::string>())}, g);
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < out.completion_ids.size(1) && out.completion_mask[0][t].item<int64_t>(); ++t) {
      if (out.completion_ids[0][t].item<int64_t>() != tokenizer->eos_id()) ids.push_back(out.completion_ids[0][t].item<int64_t>());
    }
    EXPECT_EQ(tokenizer->decode(ids), r["completion"].get<std::string>()) << r.dump();
  }

  records.push_back({{"prompt", "a="}});
  EXPECT_NE(error_of([&] {
              grpo::SFTTrainer(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                               grpo::PromptDataset::from_records(records));
            }).find("record 4 has no string field \"completion\""),
            std::string::npos);
}

namespace {

// The pairs of the mixed-precision test: every step trains on all four.
std::vector<json> sft_pairs() {
  return {{{"prompt", "a="}, {"completion", "bb"}},
          {{"prompt", "b="}, {"completion", "aaa"}},
          {{"prompt", "ab="}, {"completion", "ba"}},
          {{"prompt", "ba="}, {"completion", "abab"}}};
}

// Every master weight as one float64 vector.
torch::Tensor flat_masters(grpo::SFTTrainer& t) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : t.master_model().module().parameters()) parts.push_back(p.detach().flatten().to(torch::kFloat64));
  return torch::cat(parts);
}

}  // namespace

// bfloat16 compute with float32 masters moves the weights as float32 does,
// even at lr 1e-6, where stepping the bfloat16 weights themselves rounds
// nearly every update away. Δ = w50 − w0 of the masters, 50 SFT updates on the
// same four pairs. Measured on the CPU: ‖Δbf16 − Δfp32‖ / ‖Δfp32‖ = 0.070
// (bfloat16's forward and backward noise); stepping the bfloat16 weights
// instead gives 0.993 (only the 2% of weights near 0 move at all). The bound,
// 0.2, is about 3x the measured error and far below the old behaviour's.
TEST(Sft, MixedPrecisionMovesTheWeightsAsFloat32Does) {
  TempDir dir("sft_mixed");
  grpo::TrainConfig c = tiny_config(dir.path.string());
  c.tokenizer.characters = "ab=";
  c.sft.steps = 50;
  c.sft.batch_size = 4;
  c.sft.optimizer.lr = 1e-6;
  c.sft.optimizer.warmup_steps = 0;
  c.sft.optimizer.schedule = "constant";
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  auto run = [&](const std::string& dtype) {
    c.model.dtype = dtype;
    grpo::SFTTrainer sft(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                         grpo::PromptDataset::from_records(sft_pairs()));
    const torch::Tensor w0 = flat_masters(sft);
    for (int64_t i = 0; i < c.sft.steps; ++i) sft.step();
    const torch::Tensor w50 = flat_masters(sft);
    if (dtype == "bfloat16") {
      // The policy computes in bfloat16, rounded from the float32 masters.
      const auto masters = sft.master_model().module().parameters();
      const auto working = sft.policy().model().module().parameters();
      EXPECT_EQ(masters.size(), working.size());
      for (size_t i = 0; i < std::min(masters.size(), working.size()); ++i) {
        EXPECT_EQ(masters[i].scalar_type(), torch::kFloat32);
        EXPECT_EQ(working[i].scalar_type(), torch::kBFloat16);
        EXPECT_TRUE(torch::equal(working[i], masters[i].to(torch::kBFloat16))) << "parameter " << i;
      }
      // Why the masters: one lr-sized step on the bfloat16 weights rounds away almost everywhere.
      const torch::Tensor w = w0.to(torch::kBFloat16);
      const double moved = (w + c.sft.optimizer.lr).ne(w).to(torch::kFloat64).mean().item<double>();
      EXPECT_LT(moved, 0.05) << "fraction of bfloat16 weights a step of lr moves";
    }
    return w50 - w0;
  };
  const torch::Tensor d32 = run("float32");
  const torch::Tensor d16 = run("bfloat16");
  const double rel = (d16 - d32).norm().item<double>() / d32.norm().item<double>();
  EXPECT_GT(d32.norm().item<double>(), 0.0);
  EXPECT_LT(rel, 0.2) << "||Δbf16|| = " << d16.norm().item<double>() << ", ||Δfp32|| = " << d32.norm().item<double>();
}

namespace {

std::vector<json> more_pairs() { return ab_pairs(); }

std::string write_jsonl(const fs::path& path, const std::vector<json>& records) {
  std::ofstream out(path);
  for (const json& r : records) out << r.dump() << "\n";
  return path.string();
}

}  // namespace

// Micro-batches of 1, 4 (uneven: 4 + 2) and 6 pairs give the same updates:
// each micro-batch's loss is divided by the whole batch's token count. The
// log-probs are float32 (grpo::token_logprobs), so the losses agree to float32
// rounding, and AdamW, which divides each gradient by its own size, turns that
// rounding into weight differences of about 1e-5 after three updates at lr
// 1e-2; a micro-batch normalized by its own tokens changes the gradient's
// direction, and the loss values too.
TEST(Sft, MicroBatchesGiveTheBatchUpdateExactly) {
  TempDir dir("sft_micro");
  auto run = [&](int64_t micro) {
    grpo::TrainConfig c = pairs_config(dir.path.string());
    c.sft.micro_batch_size = micro;
    auto tokenizer = grpo::make_tokenizer(c.tokenizer);
    grpo::SFTTrainer sft(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                         grpo::PromptDataset::from_records(more_pairs()));
    std::vector<double> losses;
    for (int i = 0; i < 3; ++i) losses.push_back(sft.step()["loss"].get<double>());
    return std::make_pair(losses, flat_masters(sft));
  };
  const auto [l6, w6] = run(0);
  for (int64_t micro : {1, 4}) {
    const auto [l, w] = run(micro);
    for (size_t i = 0; i < l.size(); ++i) EXPECT_NEAR(l[i], l6[i], 1e-6) << "micro " << micro << " step " << i;
    EXPECT_LT((w - w6).abs().max().item<double>(), 2e-4) << "micro " << micro;
  }
}

// The held-out loss is reported before, during and after training, falls as
// the model learns, and is the mean negative log-likelihood per token.
TEST(Sft, EvaluatesTheHeldOutPairs) {
  TempDir dir("sft_eval");
  grpo::TrainConfig c = pairs_config(dir.path.string());
  c.sft.steps = 40;
  c.sft.eval_every = 20;
  c.sft.eval = write_jsonl(dir.path / "eval.jsonl", more_pairs());
  c.sft.eval_limit = 5;
  auto tokenizer = grpo::make_tokenizer(c.tokenizer);
  grpo::SFTTrainer sft(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                       grpo::PromptDataset::from_records(more_pairs()));
  const json report = sft.train();
  ASSERT_EQ(report["evaluations"].size(), 3u) << report.dump();
  EXPECT_EQ(report["evaluations"][1]["step"], 20);
  EXPECT_LT(report["eval_loss_after"].get<double>(), 0.5 * report["eval_loss_before"].get<double>());
  // 5 pairs: their completion characters plus one EOS each.
  double tokens = 0;
  for (int i = 0; i < 5; ++i) tokens += static_cast<double>(more_pairs()[i]["completion"].get<std::string>().size() + 1);
  EXPECT_EQ(report["evaluations"][0]["tokens"].get<double>(), tokens);
  const json e = report["evaluations"][2];
  EXPECT_NEAR(e["perplexity"].get<double>(), std::exp(e["loss"].get<double>()), 1e-9);

  c.sft.eval = "";
  grpo::SFTTrainer no_eval(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                           grpo::PromptDataset::from_records(more_pairs()));
  EXPECT_NE(error_of([&] { no_eval.evaluate(); }).find("sft.eval: the config names no held-out pairs"),
            std::string::npos);
}

// A run stopped after a checkpoint and resumed ends with the weights, the
// optimizer state's effect and the metrics of a straight run; a finished
// stage is not trained again.
TEST(Sft, ResumesFromItsCheckpointAsAStraightRunGoes) {
  TempDir straight_dir("sft_straight"), resumed_dir("sft_resumed");
  auto make = [&](const std::string& dir, int64_t steps) {
    grpo::TrainConfig c = pairs_config(dir);
    c.sft.steps = steps;
    c.sft.save_every = 3;
    c.checkpoint.resume = true;
    auto tokenizer = grpo::make_tokenizer(c.tokenizer);
    return std::make_unique<grpo::SFTTrainer>(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                                              grpo::PromptDataset::from_records(more_pairs()));
  };
  auto straight_run = make(straight_dir.path.string(), 7);
  const json straight = straight_run->train();
  const torch::Tensor w_straight = flat_masters(*straight_run);

  // Stands in for a kill after step 4: train() with steps 4 and save_every 3
  // leaves checkpoint-3 and the final folder, which is then removed.
  {
    grpo::TrainConfig c = pairs_config(resumed_dir.path.string());
    c.sft.steps = 4;
    c.sft.save_every = 3;
    c.checkpoint.resume = true;
    auto tokenizer = grpo::make_tokenizer(c.tokenizer);
    grpo::SFTTrainer(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                     grpo::PromptDataset::from_records(more_pairs()))
        .train();
  }
  fs::remove_all(resumed_dir.path / "sft");  // lose the final folder: resume from checkpoint-3
  ASSERT_TRUE(fs::exists(resumed_dir.path / "sft_checkpoints" / "checkpoint-3"));
  auto resumed = make(resumed_dir.path.string(), 7);
  const json report = resumed->train();
  EXPECT_EQ(report["steps"], 7);
  EXPECT_NEAR(report["final_loss"].get<double>(), straight["final_loss"].get<double>(), 1e-9);
  EXPECT_LT((flat_masters(*resumed) - w_straight).abs().max().item<double>(), 1e-9);
  // A finished stage: resuming it trains nothing, loads the final weights and reports the same.
  auto again = make(resumed_dir.path.string(), 7);
  const json same = again->train();
  EXPECT_EQ(same["steps"], 7);
  EXPECT_EQ(same["final_loss"], report["final_loss"]);
  EXPECT_TRUE(torch::equal(flat_masters(*again), flat_masters(*resumed)));
  // metrics.jsonl holds each step once, the lost step 4 replaced.
  std::ifstream in(resumed_dir.path / "sft_metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string line; std::getline(in, line);) steps.push_back(json::parse(line)["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
}

// Resuming an SFT stage checks the checkpoint's dtype and tokenizer as GRPO
// does, and first removes the temporary folders of killed writes.
TEST(Sft, ResumeRefusesAnotherDtypeAndRemovesKilledWrites) {
  TempDir dir("sft_mismatch");
  auto make = [&](const grpo::TrainConfig& c) {
    auto tokenizer = grpo::make_tokenizer(c.tokenizer);
    return std::make_unique<grpo::SFTTrainer>(c, grpo::make_model(c.model, *tokenizer, c.seed), tokenizer,
                                              grpo::PromptDataset::from_records(ab_pairs()));
  };
  grpo::TrainConfig c = pairs_config(dir.path.string());
  c.tokenizer.characters = "ab=c";
  c.sft.steps = 3;
  c.sft.save_every = 1;
  c.checkpoint.resume = true;
  make(c)->train();
  fs::remove_all(dir.path / "sft");  // as if killed before the final folder was written
  const std::string newest = grpo::checkpoint_dir((dir.path / "sft_checkpoints").string(), 2);
  ASSERT_EQ(grpo::latest_checkpoint((dir.path / "sft_checkpoints").string()), newest);
  grpo::TrainConfig other = c;
  other.model.dtype = "float32";
  EXPECT_HAS(error_of([&] { make(other)->train(); }),
             newest + ": the checkpoint holds a float64 model, but this run's model.dtype is \"float32\"");
  other = c;
  other.tokenizer.characters = "ab=d";
  EXPECT_HAS(error_of([&] { make(other)->train(); }),
             newest + ": the checkpoint was trained with another tokenizer than this run's");

  const pid_t gone = 999999999;  // past any pid_max (2^22 at most)
  const fs::path killed_step = dir.path / "sft_checkpoints" / ("checkpoint-4.tmp-" + std::to_string(gone));
  const fs::path killed_final = dir.path / ("sft.tmp-" + std::to_string(gone));
  fs::create_directories(killed_step);
  fs::create_directories(killed_final);
  EXPECT_EQ(make(c)->train()["steps"], 3);  // resumed from checkpoint-2
  EXPECT_FALSE(fs::exists(killed_step));
  EXPECT_FALSE(fs::exists(killed_final));
}

TEST(Sft, RangesAreChecked) {
  grpo::TrainConfig c;
  c.sft.micro_batch_size = c.sft.batch_size + 1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("sft.micro_batch_size"), std::string::npos);
  c = grpo::TrainConfig();
  c.sft.eval_every = -1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("sft.eval_every"), std::string::npos);
  c = grpo::TrainConfig();
  c.distill.alpha = 1.5;
  EXPECT_NE(error_of([&] { c.validate(); }).find("distill.alpha: must be in [0, 1], got 1.5"), std::string::npos);
  c = grpo::TrainConfig();
  c.distill.divergence = "kl";
  EXPECT_NE(error_of([&] { c.validate(); }).find("distill.divergence"), std::string::npos);
  c = grpo::TrainConfig();
  c.distill.on_policy = -0.1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("distill.on_policy"), std::string::npos);
}
