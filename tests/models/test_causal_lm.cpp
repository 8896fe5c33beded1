// The CausalLM interface's own parts: position ids from a left-padded mask,
// and the defaults a user's model gets.
#include <grpo/error.h>
#include <grpo/models/causal_lm.h>
#include <grpo/models/transformer.h>
#include <grpo/rollout/policy.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>

#include "tiny_models.h"

namespace {
// A CausalLM that is not a torch::nn::Module and does not say which module owns its parameters.
struct NotAModule : grpo::CausalLM {
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor&, const torch::Tensor&,
                              grpo::KVCache*) override {
    return torch::zeros({ids.size(0), ids.size(1), 2});
  }
  torch::Tensor output_weight() override { return torch::zeros({3, 2}); }
  int64_t vocab_size() const override { return 3; }
  int64_t max_positions() const override { return 8; }
  std::shared_ptr<grpo::CausalLM> clone() const override { return std::make_shared<NotAModule>(); }
};
}  // namespace

TEST(Model, PositionsFromALeftPaddedMask) {
  const torch::Tensor mask = torch::tensor({{0, 0, 1, 1, 1}, {1, 1, 1, 1, 1}}, torch::kLong);
  EXPECT_TRUE(torch::equal(grpo::positions_from_mask(mask, 5), torch::tensor({{0, 0, 0, 1, 2}, {0, 1, 2, 3, 4}})));
  EXPECT_TRUE(torch::equal(grpo::positions_from_mask(mask, 2), torch::tensor({{1, 2}, {3, 4}})));
  EXPECT_THROW(grpo::positions_from_mask(mask, 6), grpo::Error);
  EXPECT_THROW(grpo::positions_from_mask(torch::ones({5}), 1), grpo::Error);
}

TEST(Model, ModuleOfANonModuleModelIsAClearError) {
  NotAModule model;
  try {
    model.module();
    ADD_FAILURE() << "no error";
  } catch (const grpo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("override module()"), std::string::npos) << e.what();
  }
  EXPECT_EQ(model.make_cache(1, 4), nullptr);
}

TEST(Model, VocabularyLimitEndsThePaddedVocabulary) {
  // A 50-row embedding whose tokenizer has 40 ids, as Qwen2.5's 151936 rows for 151665 tokens.
  torch::manual_seed(0);
  auto inner = std::make_shared<grpo::TransformerLM>(grpo_test::tiny_transformer_config(50, /*tied=*/true));
  auto view = std::make_shared<grpo::VocabularyLimit>(inner, 40);
  EXPECT_EQ(view->vocab_size(), 40);
  EXPECT_EQ(view->output_weight().size(0), 40);
  EXPECT_EQ(view->max_positions(), inner->max_positions());
  EXPECT_EQ(&view->module(), static_cast<torch::nn::Module*>(inner.get()));  // parameters and checkpoints: the whole model
  EXPECT_EQ(view->architecture(), inner->architecture());
  EXPECT_EQ(&grpo::unwrap(*view), inner.get());

  const torch::Tensor ids = torch::tensor({{1, 5, 39}}, torch::kLong), mask = torch::ones({1, 3}, torch::kLong);
  const torch::Tensor positions = grpo::positions_from_mask(mask, 3);
  const torch::Tensor logits = view->forward(ids, mask, positions, nullptr);
  EXPECT_EQ(logits.size(-1), 40);
  EXPECT_TRUE(torch::allclose(logits, inner->forward(ids, mask, positions, nullptr).narrow(-1, 0, 40)));
  // Greedy and sampled tokens stay below the limit even when a padded row would win.
  {
    torch::NoGradGuard no_grad;
    inner->output_weight().narrow(0, 40, 10).mul_(50.0);
  }
  grpo::Policy policy(view);
  grpo::GenerationConfig config;
  config.max_new_tokens = 6;
  config.temperature = 1.0;
  const grpo::Generation g = policy.generate({{1, 2, 3}}, config, 8);
  EXPECT_LT(g.completion_ids.max().item<int64_t>(), 40);
  // The gradient reaches only the rows the view exposes.
  const torch::Tensor lp = view->forward(ids, mask, positions, nullptr).log_softmax(-1).sum();
  lp.backward();
  const torch::Tensor grad = inner->output_weight().grad();
  EXPECT_GT(grad.narrow(0, 0, 40).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(grad.narrow(0, 40, 10).abs().sum().item<double>(), 0.0);
  // The clone is a view of a deep copy.
  auto copy = std::dynamic_pointer_cast<grpo::VocabularyLimit>(view->clone());
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->vocab_size(), 40);
  EXPECT_NE(copy->inner().get(), static_cast<grpo::CausalLM*>(inner.get()));

  EXPECT_THROW(grpo::VocabularyLimit(inner, 51), grpo::Error);
  EXPECT_THROW(grpo::VocabularyLimit(inner, 0), grpo::Error);
  EXPECT_THROW(grpo::VocabularyLimit(nullptr, 3), grpo::Error);
}
