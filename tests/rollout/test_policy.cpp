// Policy and the sampling filters: seeded generation, greedy decoding, masks,
// and token log-probs against a full forward, on the MeanLM of tiny_models.h
// (a user-defined CausalLM without a KV cache: generation recomputes).
// Shapes: N rows, Lp prompt and T completion positions, V vocabulary.
#include <grpo/error.h>
#include <grpo/models/causal_lm.h>
#include <grpo/rollout/policy.h>
#include <grpo/rollout/sampling.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <set>
#include <vector>

#include "rollout/rollout_util.h"

using namespace grpo_test;

TEST(Policy, SameSeedSameCompletions) {
  grpo::Policy policy(mean_lm());
  const auto a = policy.generate(kPrompts, sampling(7), 4);
  const auto b = policy.generate(kPrompts, sampling(7), 4);
  const auto c = policy.generate(kPrompts, sampling(8), 4);
  EXPECT_TRUE(torch::equal(a.completion_ids, b.completion_ids));
  EXPECT_FALSE(torch::equal(a.completion_ids, c.completion_ids));
  EXPECT_EQ(a.completion_ids.sizes(), (torch::IntArrayRef{12, 12}));
  EXPECT_EQ(a.prompt_ids.sizes(), (torch::IntArrayRef{12, 5}));
}

TEST(Policy, GreedyIsDeterministicAndArgmax) {
  auto model = mean_lm();
  grpo::Policy policy(model);
  auto config = sampling(1);
  config.temperature = 0;
  const auto a = policy.generate(kPrompts, config, 2);
  config.seed = 99;
  const auto b = policy.generate(kPrompts, config, 2);
  EXPECT_TRUE(torch::equal(a.completion_ids, b.completion_ids));
  // Each kept token is the argmax of the model's logits at its position.
  torch::NoGradGuard no_grad;
  const int64_t Lp = a.prompt_ids.size(1), T = a.completion_ids.size(1);
  const torch::Tensor ids = torch::cat({a.prompt_ids, a.completion_ids}, 1);
  const torch::Tensor attention = torch::cat({a.prompt_mask, torch::ones_like(a.completion_ids)}, 1);
  const torch::Tensor argmax =
      model->forward(ids, attention, grpo::positions_from_mask(attention, Lp + T), nullptr).narrow(1, Lp - 1, T).argmax(-1);
  EXPECT_TRUE(torch::equal(argmax * a.completion_mask, a.completion_ids * a.completion_mask));
}

TEST(Policy, CompletionMaskKeepsTheFirstEosAndTruncatedFlags) {
  grpo::Policy policy(mean_lm(3));
  const auto g = policy.generate(kPrompts, sampling(11), 8);
  const auto ids = g.completion_ids.accessor<int64_t, 2>();
  const auto mask = g.completion_mask.accessor<int64_t, 2>();
  const auto truncated = g.truncated.accessor<bool, 1>();
  int stopped = 0;
  for (int64_t i = 0; i < g.completion_ids.size(0); ++i) {
    bool seen_eos = false;
    for (int64_t t = 0; t < g.completion_ids.size(1); ++t) {
      EXPECT_EQ(mask[i][t], seen_eos ? 0 : 1) << "row " << i << " t " << t;
      if (seen_eos) EXPECT_EQ(ids[i][t], 0) << "pad after the stop";
      if (!seen_eos && (ids[i][t] == 1 || ids[i][t] == 2)) seen_eos = true;
    }
    EXPECT_EQ(truncated[i], !seen_eos);
    stopped += seen_eos;
  }
  EXPECT_GT(stopped, 0) << "no row stopped: the EOS path is not exercised";
}

TEST(Policy, TokenLogprobsMatchAFullForward) {
  auto model = mean_lm(5);
  grpo::Policy policy(model);
  for (double temperature : {1.0, 0.7}) {
    auto config = sampling(3);
    config.temperature = temperature;
    const auto g = policy.generate(kPrompts, config, 3);
    grpo::LogprobOptions o;
    o.temperature = temperature;
    o.entropy = true;
    const auto got = policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask, o);
    torch::NoGradGuard no_grad;
    const torch::Tensor want = reference_logprobs(*model, g, temperature);
    EXPECT_TRUE(torch::allclose(got.logprobs, want, 1e-5, 1e-6)) << (got.logprobs - want).abs().max();
    // Entropy: -Σ p log p of the tempered distribution.
    const int64_t Lp = g.prompt_ids.size(1), T = g.completion_ids.size(1);
    const torch::Tensor ids = torch::cat({g.prompt_ids, g.completion_ids}, 1);
    const torch::Tensor attention = torch::cat({g.prompt_mask, torch::ones_like(g.completion_ids)}, 1);
    const torch::Tensor logp = (model->forward(ids, attention, grpo::positions_from_mask(attention, Lp + T), nullptr)
                                    .narrow(1, Lp - 1, T) / temperature).log_softmax(-1);
    const torch::Tensor entropy = -(logp.exp() * logp).sum(-1) * g.completion_mask;
    EXPECT_TRUE(torch::allclose(got.entropy, entropy, 1e-5, 1e-6));
  }
}

TEST(Policy, ChunkedEqualsUnchunkedWithGradients) {
  auto model = mean_lm(6);
  grpo::Policy policy(model);
  const auto g = policy.generate(kPrompts, sampling(4), 3);
  const torch::Tensor weights = torch::randn(g.completion_ids.sizes());
  auto grads_of = [&](int64_t chunk) {
    model->zero_grad();
    grpo::LogprobOptions o;
    o.chunk_tokens = chunk;
    o.temperature = 0.8;
    const auto lp = policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask, o);
    (lp.logprobs * weights).sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(lp.logprobs.detach(), grads);
  };
  const auto [one, one_grads] = grads_of(1);
  const auto [all, all_grads] = grads_of(100000);
  EXPECT_TRUE(torch::allclose(one, all, 1e-6, 1e-6));
  // The recomputing backward against plain autograd through log_softmax.
  model->zero_grad();
  (reference_logprobs(*model, g, 0.8) * weights).sum().backward();
  for (size_t k = 0; k < all_grads.size(); ++k) {
    EXPECT_TRUE(torch::allclose(one_grads[k], all_grads[k], 1e-5, 1e-6)) << "parameter " << k;
    EXPECT_TRUE(torch::allclose(all_grads[k], model->parameters()[k].grad(), 1e-4, 1e-6)) << "parameter " << k;
  }
}

TEST(Sampling, TopKNeverLeavesTheTopK) {
  torch::manual_seed(0);
  const torch::Tensor logits = torch::randn({4, 50});
  grpo::GenerationConfig c;
  c.top_k = 5;
  at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU).clone();
  gen.set_current_seed(1);
  const torch::Tensor top = std::get<1>(logits.topk(5, -1));
  for (int draw = 0; draw < 200; ++draw) {
    const torch::Tensor tok = grpo::sample_next_token(logits, c, gen);
    EXPECT_TRUE((top == tok.unsqueeze(1)).any(1).all().item<bool>());
  }
}

TEST(Sampling, TopPRespectsItsMass) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps the first two (0.5 < 0.7 ≤ 0.8).
  const torch::Tensor logits = torch::tensor({0.5, 0.3, 0.15, 0.05}).log().unsqueeze(0).repeat({1000, 1});
  grpo::GenerationConfig c;
  c.top_p = 0.7;
  at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU).clone();
  gen.set_current_seed(3);
  const torch::Tensor tok = grpo::sample_next_token(logits, c, gen);
  EXPECT_TRUE((tok < 2).all().item<bool>());
  // Renormalized: 0.5 / 0.8 = 0.625 for token 0; 1000 draws put it within ±0.05 (over 3 sigma).
  const double share = (tok == 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(share, 0.625, 0.05);
  // min_p 0.4 keeps tokens with p ≥ 0.4 · 0.5 = 0.2: the first two again.
  c.top_p = 1;
  c.min_p = 0.4;
  EXPECT_TRUE((grpo::sample_next_token(logits, c, gen) < 2).all().item<bool>());
}

TEST(Sampling, DrawFromProbsFollowsTheWeightsAcrossBlocks) {
  // V 600 spans three blocks of 256; weight on tokens at both ends of a block,
  // in the last, partial block, and nowhere else (unnormalized: sum 2).
  const int64_t V = 600, B = 200000;
  const std::vector<int64_t> tokens = {0, 255, 256, 511, 599};
  const std::vector<double> weights = {0.2, 0.4, 0.6, 0.3, 0.5};
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kFloat64}) {
    torch::Tensor row = torch::zeros({V}, dtype);
    for (size_t i = 0; i < tokens.size(); ++i) row[tokens[i]] = weights[i];
    at::Generator gen = at::globalContext().defaultGenerator(torch::kCPU).clone();
    gen.set_current_seed(7);
    const torch::Tensor u = torch::rand({B}, gen, torch::kFloat64);
    const torch::Tensor drawn = grpo::draw_from_probs(row.unsqueeze(0).expand({B, V}), u);
    ASSERT_EQ(drawn.sizes(), torch::IntArrayRef({B}));
    const torch::Tensor counts = torch::bincount(drawn, {}, V);
    EXPECT_EQ(counts.sum().item<int64_t>(), B);
    for (size_t i = 0; i < tokens.size(); ++i) {
      // Binomial standard deviation at most sqrt(0.25 / B) = 0.0011; 0.006 is over 5 of them.
      EXPECT_NEAR(counts[tokens[i]].item<double>() / B, weights[i] / 2.0, 0.006) << "token " << tokens[i];
    }
    EXPECT_EQ(counts.index_select(0, torch::tensor(tokens)).sum().item<int64_t>(), B) << "a token of zero weight was drawn";
  }
}

TEST(Sampling, DrawFromProbsEdgesAndErrors) {
  // The inverse distribution function at its ends: u 0 takes the first token
  // of positive weight, u just below 1 the last, never the zero-weight tokens after it.
  torch::Tensor probs = torch::zeros({3, 300});
  probs[0][4] = 1.0;
  probs[1][4] = 0.5;
  probs[1][260] = 0.5;
  probs[2][0] = 1e-30;  // tiny weights are still weights
  probs[2][299] = 1e-30;
  const torch::Tensor u = torch::tensor({0.0, std::nextafter(1.0, 0.0), 0.75}, torch::kFloat64);
  const torch::Tensor drawn = grpo::draw_from_probs(probs, u);
  EXPECT_EQ(drawn[0].item<int64_t>(), 4);
  EXPECT_EQ(drawn[1].item<int64_t>(), 260);
  EXPECT_EQ(drawn[2].item<int64_t>(), 299);
  EXPECT_EQ(grpo::draw_from_probs(probs, torch::zeros({3}, torch::kFloat64))[1].item<int64_t>(), 4);
  // A vocabulary smaller than a block.
  EXPECT_EQ(grpo::draw_from_probs(torch::tensor({{0.0, 0.0, 2.0}}), torch::tensor({0.9}))[0].item<int64_t>(), 2);
  EXPECT_THROW(grpo::draw_from_probs(torch::ones({4}), torch::zeros({4})), c10::Error);
  EXPECT_THROW(grpo::draw_from_probs(torch::ones({2, 4}), torch::zeros({3})), c10::Error);
  EXPECT_THROW(grpo::tempered_logprobs(torch::zeros({2, 4}), torch::zeros({2}, torch::kLong), 0.0), c10::Error);
  EXPECT_THROW(grpo::tempered_logprobs(torch::zeros({2, 4}), torch::zeros({2}, torch::kLong), -1.0), c10::Error);
}

TEST(Policy, BadInputsRaise) {
  grpo::Policy policy(mean_lm());
  auto expect_error = [](auto fn, const std::string& needle) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const grpo::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([&] { policy.generate({{1, 2}, {}}, sampling()); }, "prompt 1 is empty");
  expect_error([&] { policy.generate({{1, 40}}, sampling()); }, "token id 40");
  expect_error([&] { policy.generate({{1, 2}}, sampling(), 0); }, "num_samples");
  expect_error([&] { policy.generate({std::vector<int64_t>(60, 3)}, sampling()); }, "exceeds the model's 64 positions");
  auto bad = sampling();
  bad.top_p = 0;
  expect_error([&] { policy.generate({{1, 2}}, bad); }, "top_p");
  expect_error([] { grpo::Policy(nullptr); }, "null");
}

TEST(Policy, NoEosRunsToTheLengthAndIsTruncated) {
  grpo::Policy policy(mean_lm(4));
  auto config = sampling(5);
  config.eos_ids.clear();
  const auto g = policy.generate(kPrompts, config, 2);
  EXPECT_EQ(g.completion_mask.sum().item<int64_t>(), g.completion_mask.numel());
  EXPECT_TRUE(g.truncated.all().item<bool>());
}
