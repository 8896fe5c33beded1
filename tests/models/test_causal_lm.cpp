// The CausalLM interface's own parts: position ids from a left-padded mask,
// and the defaults a user's model gets.
#include <grpo/error.h>
#include <grpo/models/causal_lm.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>

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
