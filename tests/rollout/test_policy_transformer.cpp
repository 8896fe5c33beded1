// The policy on the built-in TransformerLM: its KV-cache path against
// recomputation, and left padding against running each prompt alone.
// Shapes: N rows, Lp prompt and T completion positions.
#include <grpo/models/transformer.h>
#include <grpo/rollout/policy.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tiny_models.h"

#include <memory>

namespace {

std::shared_ptr<grpo::TransformerLM> small_transformer(uint64_t seed) {
  torch::manual_seed(seed);
  auto model = std::make_shared<grpo::TransformerLM>(grpo_test::tiny_transformer_config(40, false, true, 96));
  // NB: larger weights than the default init, so that the distribution is far from uniform.
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) {
    if (p.dim() == 2) p.mul_(8);
  }
  return model;
}

const std::vector<std::vector<int64_t>> kPrompts = {{5, 6, 7, 8, 9, 10}, {11}, {12, 13, 14}};

grpo::GenerationConfig config(bool use_cache, double temperature) {
  grpo::GenerationConfig c;
  c.max_new_tokens = 16;
  c.eos_ids = {3};
  c.temperature = temperature;
  c.seed = 21;
  c.use_cache = use_cache;
  return c;
}

}  // namespace

TEST(PolicyTransformer, CachedAndRecomputedGenerationAgree) {
  grpo::Policy policy(small_transformer(1));
  for (double temperature : {0.0, 1.0}) {
    const auto cached = policy.generate(kPrompts, config(true, temperature), 4);
    const auto recomputed = policy.generate(kPrompts, config(false, temperature), 4);
    EXPECT_TRUE(torch::equal(cached.completion_ids, recomputed.completion_ids)) << "temperature " << temperature;
    EXPECT_TRUE(torch::equal(cached.completion_mask, recomputed.completion_mask));
  }
}

TEST(PolicyTransformer, SampledTokensLogprobsMatchAFullForward) {
  auto model = small_transformer(2);
  grpo::Policy policy(model);
  const auto g = policy.generate(kPrompts, config(true, 1.0), 3);
  const auto got = policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask);
  torch::NoGradGuard no_grad;
  const int64_t Lp = g.prompt_ids.size(1), T = g.completion_ids.size(1);
  const torch::Tensor ids = torch::cat({g.prompt_ids, g.completion_ids}, 1);
  const torch::Tensor attention = torch::cat({g.prompt_mask, torch::ones_like(g.completion_ids)}, 1);
  const torch::Tensor logp = model->forward(ids, attention, grpo::positions_from_mask(attention, Lp + T), nullptr)
                                 .narrow(1, Lp - 1, T)
                                 .log_softmax(-1);
  const torch::Tensor want = logp.gather(2, g.completion_ids.unsqueeze(-1)).squeeze(-1) * g.completion_mask;
  EXPECT_TRUE(torch::allclose(got.logprobs, want, 1e-5, 1e-5)) << (got.logprobs - want).abs().max();
}

TEST(PolicyTransformer, LeftPaddingChangesNothing) {
  auto model = small_transformer(3);
  grpo::Policy policy(model);
  const auto batch = policy.generate(kPrompts, config(true, 1.0), 1);
  const auto batch_lp = policy.token_logprobs(batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                              batch.completion_mask);
  for (size_t p = 0; p < kPrompts.size(); ++p) {
    const int64_t Lp = static_cast<int64_t>(kPrompts[p].size()), pad = batch.prompt_ids.size(1) - Lp;
    const torch::Tensor prompt = batch.prompt_ids[p].narrow(0, pad, Lp).unsqueeze(0);
    const torch::Tensor mask = torch::ones_like(prompt);
    const torch::Tensor completion = batch.completion_ids[p].unsqueeze(0);
    const torch::Tensor completion_mask = batch.completion_mask[p].unsqueeze(0);
    const auto alone = policy.token_logprobs(prompt, mask, completion, completion_mask);
    EXPECT_TRUE(torch::allclose(alone.logprobs[0], batch_lp.logprobs[p], 1e-5, 1e-5)) << "prompt " << p;
    // Greedy decoding of the prompt alone continues the same way as inside the padded batch.
    const auto greedy_batch = policy.generate(kPrompts, config(true, 0.0), 1);
    const auto greedy_alone = policy.generate({kPrompts[p]}, config(true, 0.0), 1);
    EXPECT_TRUE(torch::equal(greedy_alone.completion_ids[0], greedy_batch.completion_ids[p])) << "prompt " << p;
  }
}
