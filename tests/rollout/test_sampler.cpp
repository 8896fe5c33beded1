// GroupSampler: the batch layout (rows prompt-major), masks, decoded texts and
// truncation; RolloutBatch::samples, what the rewards see of a batch.
#include <grpo/error.h>
#include <grpo/rewards/reward.h>
#include <grpo/rollout/policy.h>
#include <grpo/rollout/sampler.h>
#include <grpo/tokenizers/char_tokenizer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "test_util.h"
#include "tiny_models.h"

using namespace grpo_test;
using grpo::RewardSet;
using grpo::Sample;

namespace {
std::shared_ptr<grpo::CharTokenizer> digits_tokenizer() {
  return std::make_shared<grpo::CharTokenizer>(grpo::CharTokenizer::from_texts({"0123456789+="}));
}
}  // namespace

TEST(GroupSampler, BatchLayoutMasksAndTexts) {
  auto tokenizer = digits_tokenizer();
  torch::manual_seed(0);
  grpo::Policy policy(std::make_shared<MeanLM>(tokenizer->vocab_size(), 16, 64));
  grpo::GroupSamplerConfig config;
  config.group_size = 3;
  config.generation.max_new_tokens = 10;
  grpo::GroupSampler sampler(policy, tokenizer, config);
  const std::vector<grpo::PromptRecord> prompts = {{"1+2=", {{"answer", "3"}}}, {"40+2=", {{"answer", "42"}}}};
  const grpo::RolloutBatch batch = sampler.sample(prompts, 5);
  ASSERT_EQ(batch.size(), 6);
  EXPECT_EQ(batch.completion_ids.size(0), 6);
  EXPECT_TRUE(torch::equal(batch.group_index, torch::tensor({0, 0, 0, 1, 1, 1}, torch::kLong)));
  EXPECT_EQ(batch.prompts[1].fields["answer"], "42");
  // Rows of one prompt share its left-padded prompt.
  EXPECT_TRUE(torch::equal(batch.prompt_ids[3], batch.prompt_ids[5]));
  EXPECT_EQ(batch.prompt_mask[0].sum().item<int64_t>(), 4);
  EXPECT_EQ(batch.prompt_mask[3].sum().item<int64_t>(), 5);
  const int64_t eos = tokenizer->eos_id();
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t kept = batch.completion_mask[i].sum().item<int64_t>();
    EXPECT_EQ(kept, batch.completion_lengths[i]);
    std::vector<int64_t> ids;
    for (int64_t t = 0; t < kept; ++t) {
      const int64_t id = batch.completion_ids[i][t].item<int64_t>();
      if (id != eos) ids.push_back(id);
    }
    EXPECT_EQ(batch.completion_texts[i], tokenizer->decode(ids)) << "row " << i;
    EXPECT_EQ(batch.truncated[i].item<bool>(), kept == 10 && batch.completion_ids[i][9].item<int64_t>() != eos);
  }
  // The same seed again gives the same batch; the seed sequence moves on.
  EXPECT_TRUE(torch::equal(sampler.sample(prompts, 5).completion_ids, batch.completion_ids));
  EXPECT_FALSE(torch::equal(sampler.sample(prompts).completion_ids, sampler.sample(prompts).completion_ids));
}

TEST(GroupSampler, PromptSeedsMakeAPromptsCompletionsItsOwn) {
  auto tokenizer = digits_tokenizer();
  torch::manual_seed(2);
  auto model = std::make_shared<MeanLM>(tokenizer->vocab_size(), 16, 64);
  model->module().to(torch::kFloat64);
  grpo::Policy policy(model);
  grpo::GroupSamplerConfig config;
  config.group_size = 4;
  config.generation.max_new_tokens = 10;
  grpo::GroupSampler sampler(policy, tokenizer, config);
  const std::vector<grpo::PromptRecord> prompts = {{"1+2=", {}}, {"40+2=", {}}, {"7=", {}}};
  auto texts = [](const grpo::RolloutBatch& b, int64_t group) {
    return std::vector<std::string>(b.completion_texts.begin() + group * b.group_size,
                                    b.completion_texts.begin() + (group + 1) * b.group_size);
  };
  // "40+2=" drawn with seed 22 alone, among three prompts, and second of two: the same completions.
  const auto alone = texts(sampler.sample({prompts[1]}, std::vector<uint64_t>{22}), 0);
  EXPECT_EQ(texts(sampler.sample(prompts, std::vector<uint64_t>{11, 22, 33}), 1), alone);
  EXPECT_EQ(texts(sampler.sample({prompts[2], prompts[1]}, std::vector<uint64_t>{33, 22}), 1), alone);
  EXPECT_NE(texts(sampler.sample({prompts[1]}, std::vector<uint64_t>{23}), 0), alone);
  EXPECT_HAS(error_of([&] { sampler.sample(prompts, std::vector<uint64_t>{1, 2}); }), "2 prompt seeds for 3 prompts");
}

TEST(GroupSampler, MaskTruncatedCompletions) {
  auto tokenizer = digits_tokenizer();
  torch::manual_seed(1);
  grpo::Policy policy(std::make_shared<MeanLM>(tokenizer->vocab_size(), 16, 64));
  grpo::GroupSamplerConfig config;
  config.group_size = 8;
  config.generation.max_new_tokens = 3;  // short: most completions are truncated
  config.mask_truncated_completions = true;
  grpo::GroupSampler sampler(policy, tokenizer, config);
  const grpo::RolloutBatch batch = sampler.sample({{"12+3=", {}}}, 0);
  int64_t truncated = 0;
  for (int64_t i = 0; i < batch.size(); ++i) {
    if (batch.truncated[i].item<bool>()) {
      ++truncated;
      EXPECT_EQ(batch.completion_mask[i].sum().item<int64_t>(), 0);
      EXPECT_FALSE(batch.completion_texts[i].empty()) << "the text stays for the rewards";
    }
  }
  EXPECT_GT(truncated, 0);
}

TEST(GroupSampler, BadInputsRaise) {
  auto tokenizer = digits_tokenizer();
  grpo::Policy policy(std::make_shared<MeanLM>(tokenizer->vocab_size(), 16, 64));
  grpo::GroupSamplerConfig config;
  config.group_size = 0;
  EXPECT_THROW(grpo::GroupSampler(policy, tokenizer, config), grpo::Error);
  config.group_size = 2;
  grpo::GroupSampler sampler(policy, tokenizer, config);
  EXPECT_THROW(sampler.sample({}), grpo::Error);
  EXPECT_THROW(sampler.sample({{"", {}}}), grpo::Error);
  EXPECT_THROW(sampler.sample({{"1+x=", {}}}), grpo::Error);  // 'x' is not in the vocabulary
}

TEST(RewardSet, ScoresARolloutBatch) {
  grpo::RolloutBatch batch;
  batch.num_prompts = 2;
  batch.group_size = 2;
  batch.prompts = {{"p0", {{"answer", "3"}}}, {"p1", {{"answer", "5"}}}};
  batch.group_index = torch::tensor({0, 0, 1, 1}, torch::kLong);
  batch.truncated = torch::tensor({false, true, false, false}, torch::kBool);
  batch.completion_texts = {"<answer>3</answer>", "<answer>5</answer>", "<answer>3</answer>", "<answer>5</answer>"};
  batch.completion_lengths = {4, 9, 4, 4};
  RewardSet set;
  set.add({{"name", "accuracy"}});
  set.add(std::make_unique<grpo::FunctionReward>("truncated", [](const Sample& s) {
    return s.truncated ? 1.f : 0.f;
  }));
  set.add(std::make_unique<grpo::FunctionReward>("prompt", [](const Sample& s) {
    return s.prompt == "p1" ? 1.f : 0.f;
  }));
  const auto s = set.score(batch.samples());
  EXPECT_EQ(std::vector<float>(s.per_function.col(0).data(), s.per_function.col(0).data() + 4),
            (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(std::vector<float>(s.per_function.col(1).data(), s.per_function.col(1).data() + 4),
            (std::vector<float>{0, 1, 0, 0}));
  EXPECT_EQ(std::vector<float>(s.per_function.col(2).data(), s.per_function.col(2).data() + 4),
            (std::vector<float>{0, 0, 1, 1}));
}

// A batch whose per-row members disagree with N, or name a prompt it does not
// have, is an error naming what is wrong, not a read past the end.
TEST(RolloutBatch, SamplesOfAMalformedBatchAreErrors) {
  grpo::RolloutBatch batch;
  batch.num_prompts = 1;
  batch.group_size = 2;
  batch.prompts = {{"p0", {{"answer", "3"}}}};
  batch.group_index = torch::tensor({0, 0}, torch::kLong);
  batch.completion_texts = {"a", "b"};
  batch.completion_lengths = {1, 1};
  EXPECT_EQ(batch.samples().size(), 2u);
  batch.completion_texts.pop_back();
  EXPECT_HAS(error_of([&] { batch.samples(); }), "the batch has N = 2 rows but completion_texts has 1");
  batch.completion_texts = {"a", "b"};
  batch.group_index = torch::tensor({0, 1}, torch::kLong);
  EXPECT_HAS(error_of([&] { batch.samples(); }), "row 1 has group_index 1 but there are 1 prompts");
}
