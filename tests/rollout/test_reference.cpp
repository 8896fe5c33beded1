// ReferenceModel: frozen while the policy trains, and weight mixing on sync,
// on the MeanLM of tiny_models.h.
#include <grpo/error.h>
#include <grpo/rollout/policy.h>
#include <grpo/rollout/reference.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

#include "rollout/rollout_util.h"

using namespace grpo_test;

TEST(Reference, DoesNotMoveWhenThePolicyTrains) {
  auto model = mean_lm(9);
  grpo::Policy policy(model);
  grpo::ReferenceModel ref(policy);
  const auto g = policy.generate(kPrompts, sampling(2), 2);
  const torch::Tensor before = ref.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask);
  EXPECT_FALSE(before.requires_grad());
  for (const auto& p : ref.model().module().parameters()) EXPECT_FALSE(p.requires_grad());
  EXPECT_FALSE(ref.model().module().is_training());

  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.5));
  for (int step = 0; step < 3; ++step) {
    optimizer.zero_grad();
    policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask).logprobs.sum().backward();
    optimizer.step();
  }
  const torch::Tensor after = ref.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask);
  EXPECT_TRUE(torch::equal(before, after));
  torch::NoGradGuard no_grad;
  const torch::Tensor policy_now = policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask).logprobs;
  EXPECT_FALSE(torch::allclose(before, policy_now));
}

TEST(Reference, SyncMixesWeightsExactly) {
  grpo::Policy policy(mean_lm(10));
  grpo::ReferenceModel ref(std::make_shared<MeanLM>(12, 16, 64));
  const auto ref_before = ref.model().module().named_parameters();
  std::map<std::string, torch::Tensor> old;
  for (const auto& p : ref_before) old[p.key()] = p.value().clone();
  ref.sync_from(policy, 0.25);
  const auto policy_params = policy.model().module().named_parameters();
  for (const auto& p : ref.model().module().named_parameters()) {
    const torch::Tensor want = old[p.key()] * 0.75 + policy_params[p.key()] * 0.25;
    EXPECT_TRUE(torch::allclose(p.value(), want, 1e-6, 1e-7)) << p.key();
    EXPECT_FALSE(p.value().requires_grad());
  }
  ref.sync_from(policy, 1.0);
  for (const auto& p : ref.model().module().named_parameters()) EXPECT_TRUE(torch::equal(p.value(), policy_params[p.key()]));
  EXPECT_THROW(ref.sync_from(policy, 1.5), grpo::Error);
  grpo::ReferenceModel other(std::make_shared<MeanLM>(12, 8, 64));
  EXPECT_THROW(other.sync_from(policy, 0.5), grpo::Error);
}
