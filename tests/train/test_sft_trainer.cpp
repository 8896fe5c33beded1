// SFTTrainer on prompt -> completion pairs with the tiny run's model.
#include <grpo/error.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/factory.h>
#include <grpo/train/sft_trainer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

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
