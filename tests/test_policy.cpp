// Policy, sampling filters, token log-probs, the reference model and the group
// sampler, on a small user-defined CausalLM without a KV cache (generation
// recomputes).
// Shapes: N rows, Lp prompt and T completion positions, V vocabulary.
#include <grpo/error.h>
#include <grpo/models/causal_lm.h>
#include <grpo/rollout/policy.h>
#include <grpo/rollout/reference.h>
#include <grpo/rollout/sampler.h>
#include <grpo/tokenizers/char_tokenizer.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <set>

namespace {

// A user's model: embedding, causal running mean over real tokens, a tanh
// layer, and an output projection. No cache: make_cache() stays null.
struct MeanLM : torch::nn::Module, grpo::CausalLM {
  MeanLM(int64_t V, int64_t H, int64_t max_len) : V_(V), max_len_(max_len) {
    embed = register_module("embed", torch::nn::Embedding(V, H));
    mix = register_module("mix", torch::nn::Linear(2 * H, H));
    out = register_parameter("out", torch::randn({V, H}) * 0.5);
  }
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask, const torch::Tensor&,
                              grpo::KVCache* cache) override {
    EXPECT_EQ(cache, nullptr);
    const torch::Tensor m = attention_mask.to(torch::kFloat).unsqueeze(-1);  // (B, T, 1)
    const torch::Tensor e = embed(ids) * m;
    const torch::Tensor mean = e.cumsum(1) / m.cumsum(1).clamp_min(1);
    return torch::tanh(mix(torch::cat({e, mean}, -1)));
  }
  torch::Tensor output_weight() override { return out; }
  int64_t vocab_size() const override { return V_; }
  int64_t max_positions() const override { return max_len_; }
  std::shared_ptr<grpo::CausalLM> clone() const override {
    auto copy = std::make_shared<MeanLM>(V_, out.size(1), max_len_);
    torch::NoGradGuard no_grad;
    auto dst = copy->named_parameters();
    for (const auto& p : named_parameters()) dst[p.key()].copy_(p.value());
    return copy;
  }
  int64_t V_, max_len_;
  torch::nn::Embedding embed{nullptr};
  torch::nn::Linear mix{nullptr};
  torch::Tensor out;
};

std::shared_ptr<MeanLM> make_model(uint64_t seed = 0, int64_t V = 12) {
  torch::manual_seed(seed);
  return std::make_shared<MeanLM>(V, 16, 64);
}

const std::vector<std::vector<int64_t>> kPrompts = {{3, 4, 5}, {7}, {2, 9, 9, 4, 1}};

grpo::GenerationConfig sampling(uint64_t seed = 7) {
  grpo::GenerationConfig c;
  c.max_new_tokens = 12;
  c.eos_ids = {1, 2};
  c.seed = seed;
  return c;
}

// log_softmax of a full forward (N, Lp + T, V), gathered at the completion tokens, masked.
torch::Tensor reference_logprobs(grpo::CausalLM& model, const grpo::Generation& g, double temperature) {
  const int64_t Lp = g.prompt_ids.size(1), T = g.completion_ids.size(1);
  const torch::Tensor ids = torch::cat({g.prompt_ids, g.completion_ids}, 1);
  const torch::Tensor attention = torch::cat({g.prompt_mask, torch::ones_like(g.completion_ids)}, 1);
  const torch::Tensor logits = model.forward(ids, attention, grpo::positions_from_mask(attention, Lp + T), nullptr);
  const torch::Tensor logp = (logits.narrow(1, Lp - 1, T) / temperature).log_softmax(-1);
  return logp.gather(2, g.completion_ids.unsqueeze(-1)).squeeze(-1) * g.completion_mask;
}

}  // namespace

TEST(Policy, SameSeedSameCompletions) {
  grpo::Policy policy(make_model());
  const auto a = policy.generate(kPrompts, sampling(7), 4);
  const auto b = policy.generate(kPrompts, sampling(7), 4);
  const auto c = policy.generate(kPrompts, sampling(8), 4);
  EXPECT_TRUE(torch::equal(a.completion_ids, b.completion_ids));
  EXPECT_FALSE(torch::equal(a.completion_ids, c.completion_ids));
  EXPECT_EQ(a.completion_ids.sizes(), (torch::IntArrayRef{12, 12}));
  EXPECT_EQ(a.prompt_ids.sizes(), (torch::IntArrayRef{12, 5}));
}

TEST(Policy, GreedyIsDeterministicAndArgmax) {
  auto model = make_model();
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
  grpo::Policy policy(make_model(3));
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
  auto model = make_model(5);
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
  auto model = make_model(6);
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

TEST(Policy, BadInputsRaise) {
  grpo::Policy policy(make_model());
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

TEST(Reference, DoesNotMoveWhenThePolicyTrains) {
  auto model = make_model(9);
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
  grpo::Policy policy(make_model(10));
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

// ---------------------------------------------------------------- GroupSampler

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

TEST(Model, PositionsFromALeftPaddedMask) {
  const torch::Tensor mask = torch::tensor({{0, 0, 1, 1, 1}, {1, 1, 1, 1, 1}}, torch::kLong);
  EXPECT_TRUE(torch::equal(grpo::positions_from_mask(mask, 5), torch::tensor({{0, 0, 0, 1, 2}, {0, 1, 2, 3, 4}})));
  EXPECT_TRUE(torch::equal(grpo::positions_from_mask(mask, 2), torch::tensor({{1, 2}, {3, 4}})));
  EXPECT_THROW(grpo::positions_from_mask(mask, 6), grpo::Error);
  EXPECT_THROW(grpo::positions_from_mask(torch::ones({5}), 1), grpo::Error);
}

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

TEST(Policy, NoEosRunsToTheLengthAndIsTruncated) {
  grpo::Policy policy(make_model(4));
  auto config = sampling(5);
  config.eos_ids.clear();
  const auto g = policy.generate(kPrompts, config, 2);
  EXPECT_EQ(g.completion_mask.sum().item<int64_t>(), g.completion_mask.numel());
  EXPECT_TRUE(g.truncated.all().item<bool>());
}
