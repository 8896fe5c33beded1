// SFTTrainer on prompt -> completion pairs with the tiny run's model.
#include <grpo/error.h>
#include <grpo/train/checkpoint.h>
#include <grpo/train/factory.h>
#include <grpo/train/sft_trainer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

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
