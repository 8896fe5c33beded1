// The policy on the built-in TransformerLM: its KV-cache path against
// recomputation, and left padding against running each prompt alone.
// Shapes: N rows, Lp prompt and T completion positions.
#include <grpo/error.h>
#include <grpo/models/transformer.h>
#include <grpo/rollout/policy.h>
#include <grpo/train/checkpoint.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tiny_models.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

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

// ---------------------------------------------------------------- batch-invariant mode

namespace {

struct ExactCase {
  uint64_t seed;
  int64_t prompts, group, new_tokens, kv_heads, threads;
  bool tied, bias;
  torch::ScalarType dtype;
};

// Prompts of lengths 1 to 9 drawn from `seed`, so that rows are padded differently.
std::vector<std::vector<int64_t>> random_prompts(uint64_t seed, int64_t P, int64_t vocab) {
  std::vector<std::vector<int64_t>> prompts;
  torch::manual_seed(seed + 1000);
  for (int64_t p = 0; p < P; ++p) {
    const int64_t length = 1 + torch::randint(9, {1}).item<int64_t>();
    const torch::Tensor ids = torch::randint(4, vocab, {length});
    prompts.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
  }
  return prompts;
}

// The rows `rows` of a generation, their prompts re-padded to the longest among them
// and their completions cut to the longest kept one: a trainer's micro-batch.
struct RowsOf {
  torch::Tensor prompt_ids, prompt_mask, completion_ids, completion_mask;
};
RowsOf rows_of(const grpo::Generation& g, const torch::Tensor& rows) {
  RowsOf r;
  const torch::Tensor pm = g.prompt_mask.index_select(0, rows);
  const int64_t Lp = pm.sum(1).max().item<int64_t>();
  const int64_t Lfull = pm.size(1);
  r.prompt_ids = g.prompt_ids.index_select(0, rows).narrow(1, Lfull - Lp, Lp);
  r.prompt_mask = pm.narrow(1, Lfull - Lp, Lp);
  const torch::Tensor cm = g.completion_mask.index_select(0, rows);
  const int64_t T = std::max<int64_t>(1, cm.sum(1).max().item<int64_t>());
  r.completion_ids = g.completion_ids.index_select(0, rows).narrow(1, 0, T);
  r.completion_mask = cm.narrow(1, 0, T);
  return r;
}

std::string max_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return std::to_string((a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>());
}

}  // namespace

// With set_batch_invariant(true), the log-prob the sampler records for each
// token while decoding against its KV cache is the log-prob the trainer
// computes by scoring whole sequences, bit for bit: for the whole batch, for
// micro-batches of other sizes and paddings, for one row alone, with and
// without gradients, over model shapes, batch shapes, dtypes and threads.
TEST(PolicyTransformer, BatchInvariantDecodeAndScoringAgreeBitForBit) {
  const std::vector<ExactCase> cases = {
      {1, 3, 4, 12, 2, 1, false, true, torch::kFloat32}, {2, 5, 2, 20, 4, 2, true, false, torch::kFloat32},
      {3, 1, 8, 9, 1, 2, false, false, torch::kFloat32}, {4, 6, 3, 15, 2, 1, true, true, torch::kFloat64},
      {5, 2, 1, 30, 4, 2, false, true, torch::kFloat32}, {6, 4, 5, 7, 2, 2, false, true, torch::kFloat32},
      {7, 3, 3, 11, 1, 3, false, true, torch::kFloat32},  {8, 2, 6, 13, 4, 4, true, true, torch::kFloat32},
  };
  const int threads_before = at::get_num_threads();
  for (const ExactCase& c : cases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed) + " P " + std::to_string(c.prompts) + " G " +
                 std::to_string(c.group) + " T " + std::to_string(c.new_tokens) + " threads " +
                 std::to_string(c.threads));
    at::set_num_threads(static_cast<int>(c.threads));
    torch::manual_seed(c.seed);
    grpo::TransformerConfig tc = grpo_test::tiny_transformer_config(40, c.tied, c.bias, 96);
    tc.num_kv_heads = c.kv_heads;
    auto model = std::make_shared<grpo::TransformerLM>(tc);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) {
        if (p.dim() == 2) p.mul_(8);
      }
    }
    model->to(c.dtype);
    model->set_batch_invariant(true);
    grpo::Policy policy(model);
    grpo::GenerationConfig gc = config(true, 0.8);
    gc.max_new_tokens = c.new_tokens;
    gc.seed = c.seed;
    const grpo::Generation g = policy.generate(random_prompts(c.seed, c.prompts, 40), gc, c.group);
    ASSERT_GT(g.completion_mask.sum().item<int64_t>(), 0);

    grpo::LogprobOptions lo;
    lo.temperature = 0.8;
    lo.chunk_tokens = 5;  // chunks of 5 rows and a remainder: other matrix shapes than decoding's
    const torch::Tensor whole =
        policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask, lo).logprobs;
    EXPECT_TRUE(torch::equal(whole, g.logprobs)) << "whole batch: max |diff| " << max_difference(whole, g.logprobs);

    const int64_t N = g.completion_ids.size(0);
    // Micro-batches of 3 rows in reverse order, and each row alone, re-padded.
    std::vector<torch::Tensor> subsets;
    for (int64_t begin = N - 1; begin >= 0; begin -= 3) {
      subsets.push_back(torch::arange(std::max<int64_t>(0, begin - 2), begin + 1, torch::kLong).flip(0));
    }
    for (int64_t i = 0; i < N; ++i) subsets.push_back(torch::tensor({i}, torch::kLong));
    for (const torch::Tensor& rows : subsets) {
      const RowsOf r = rows_of(g, rows);
      lo.chunk_tokens = 1024;
      const torch::Tensor part =
          policy.token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, lo).logprobs;
      const torch::Tensor expected = g.logprobs.index_select(0, rows).narrow(1, 0, part.size(1));
      EXPECT_TRUE(torch::equal(part, expected))
          << "rows " << rows << ": max |diff| " << max_difference(part, expected);
    }
    // The training forward (with autograd) computes the same values.
    const torch::Tensor with_grad =
        policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask, lo).logprobs;
    ASSERT_TRUE(with_grad.requires_grad());
    EXPECT_TRUE(torch::equal(with_grad.detach(), g.logprobs));
    // Without top-k/top-p/min-p, the sampling distribution is the tempered policy.
    EXPECT_TRUE(torch::equal(g.sampling_logprobs, g.logprobs));
  }
  at::set_num_threads(threads_before);
}

// The batch-invariant mode changes the order of sums, not what is computed:
// its log-probs and gradients agree with the default mode's to rounding.
TEST(PolicyTransformer, BatchInvariantModeMatchesTheDefaultToRounding) {
  auto model = small_transformer(31);
  model->to(torch::kFloat64);
  grpo::Policy policy(model);
  const grpo::Generation g = policy.generate(kPrompts, config(true, 1.0), 3);
  auto score = [&](bool exact) {
    model->set_batch_invariant(exact);
    model->zero_grad();
    const torch::Tensor lp =
        policy.token_logprobs(g.prompt_ids, g.prompt_mask, g.completion_ids, g.completion_mask).logprobs;
    (lp * torch::linspace(-1, 1, lp.numel(), lp.options()).view(lp.sizes())).sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(lp.detach(), grads);
  };
  const auto [fast, fast_grads] = score(false);
  const auto [exact, exact_grads] = score(true);
  EXPECT_TRUE(torch::allclose(fast, exact, 1e-10, 1e-12)) << max_difference(fast, exact);
  ASSERT_EQ(fast_grads.size(), exact_grads.size());
  for (size_t i = 0; i < fast_grads.size(); ++i) {
    EXPECT_TRUE(torch::allclose(fast_grads[i], exact_grads[i], 1e-9, 1e-11))
        << "parameter " << i << ": " << max_difference(fast_grads[i], exact_grads[i]);
  }
  // A clone keeps the mode; the mode refuses a GPU and dynamic RoPE scaling.
  EXPECT_TRUE(std::dynamic_pointer_cast<grpo::TransformerLM>(model->clone())->batch_invariant());
  grpo::TransformerConfig dynamic = grpo_test::tiny_transformer_config();
  dynamic.rope_scaling = grpo::RopeScaling{};
  dynamic.rope_scaling->rope_type = "dynamic";
  dynamic.rope_scaling->factor = 2.0;
  EXPECT_THROW(grpo::TransformerLM(dynamic).set_batch_invariant(true), grpo::Error);
  // A model without the mode refuses to turn it on, and may be told to keep it off.
  auto user_model = grpo_test::mean_lm();
  EXPECT_THROW(user_model->set_batch_invariant(true), grpo::Error);
  EXPECT_NO_THROW(user_model->set_batch_invariant(false));
}

// The filtered distribution's log-prob: top-k renormalizes over the k kept
// tokens, so each drawn token is at least as likely under it as under the
// whole tempered softmax, and exactly log softmax of the kept logits.
TEST(PolicyTransformer, SamplingLogprobsAreTheFilteredDistributions) {
  auto model = small_transformer(32);
  model->set_batch_invariant(true);
  grpo::Policy policy(model);
  grpo::GenerationConfig gc = config(true, 1.3);
  gc.top_k = 3;
  const grpo::Generation g = policy.generate(kPrompts, gc, 4);
  const torch::Tensor mask = g.completion_mask.to(torch::kBool);
  EXPECT_TRUE((g.sampling_logprobs.masked_select(mask) >= g.logprobs.masked_select(mask)).all().item<bool>());
  EXPECT_TRUE((g.sampling_logprobs.masked_select(mask.logical_not()) == 0).all().item<bool>());
  // Recompute the filtered log-probs from a full forward's logits.
  torch::NoGradGuard no_grad;
  const int64_t Lp = g.prompt_ids.size(1), T = g.completion_ids.size(1);
  const torch::Tensor ids = torch::cat({g.prompt_ids, g.completion_ids}, 1);
  const torch::Tensor attention = torch::cat({g.prompt_mask, torch::ones_like(g.completion_ids)}, 1);
  const torch::Tensor z =
      model->forward(ids, attention, grpo::positions_from_mask(attention, Lp + T), nullptr).narrow(1, Lp - 1, T) / 1.3;
  const torch::Tensor kth = std::get<0>(z.topk(3, -1)).narrow(-1, 2, 1);
  const torch::Tensor filtered = z.masked_fill(z < kth, -std::numeric_limits<float>::infinity()).log_softmax(-1);
  // NB: after a completion's EOS the pad token may lie outside the top k (-inf), so masked, not multiplied.
  const torch::Tensor expected =
      filtered.gather(2, g.completion_ids.unsqueeze(-1)).squeeze(-1).masked_fill(mask.logical_not(), 0);
  EXPECT_TRUE(torch::allclose(g.sampling_logprobs, expected, 1e-5, 1e-5)) << max_difference(g.sampling_logprobs, expected);
}

// The real pretrained stories260K (Llama: 8 heads over 4 key/value heads of 8
// dims, SwiGLU width 172, tied embeddings), 16 rows of up to 64 new tokens as a
// GRPO step samples them, scored in micro-batches of 8, on 2 threads.
TEST(PolicyTransformer, BatchInvariantOnThePretrainedStories260K) {
  auto model = grpo::load_model(std::string(GRPO_TEST_DATA_DIR) + "/models/stories260K");
  model->set_batch_invariant(true);
  grpo::Policy policy(model);
  grpo::GenerationConfig gc;
  gc.max_new_tokens = 64;
  gc.eos_ids = {2};
  gc.seed = 5;
  // Prompts of 30 to 70 tokens, as GSM8K questions are: activations of more
  // elements than one thread takes, so each thread's share has its own end.
  std::vector<std::vector<int64_t>> prompts;
  torch::manual_seed(77);
  for (int64_t length : {70, 31, 52, 44}) {
    const torch::Tensor ids = torch::randint(3, 512, {length});
    prompts.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
  }
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  const grpo::Generation g = policy.generate(prompts, gc, 4);
  for (int64_t begin = 0; begin < 16; begin += 8) {
    const RowsOf r = rows_of(g, torch::arange(begin, begin + 8, torch::kLong));
    const torch::Tensor part = policy.token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask).logprobs;
    const torch::Tensor expected = g.logprobs.narrow(0, begin, 8).narrow(1, 0, part.size(1));
    EXPECT_TRUE(torch::equal(part, expected)) << "rows from " << begin << ": max |diff| " << max_difference(part, expected);
  }
  at::set_num_threads(threads_before);
}

namespace {

// A TransformerLM that records the rows of every forward it runs.
struct CountingLM : grpo::CausalLM {
  explicit CountingLM(std::shared_ptr<grpo::TransformerLM> inner) : inner(std::move(inner)) {}
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& positions, grpo::KVCache* cache) override {
    rows.push_back(ids.size(0));
    return inner->hidden_states(ids, attention_mask, positions, cache);
  }
  torch::Tensor output_weight() override { return inner->output_weight(); }
  std::unique_ptr<grpo::KVCache> make_cache(int64_t batch, int64_t max_length) override {
    return inner->make_cache(batch, max_length);
  }
  int64_t vocab_size() const override { return inner->vocab_size(); }
  int64_t max_positions() const override { return inner->max_positions(); }
  torch::nn::Module& module() override { return *inner; }
  std::shared_ptr<grpo::CausalLM> clone() const override {
    return std::make_shared<CountingLM>(std::dynamic_pointer_cast<grpo::TransformerLM>(inner->clone()));
  }
  std::shared_ptr<grpo::TransformerLM> inner;
  std::vector<int64_t> rows;
};

}  // namespace

// Rows that stop leave the decode batch once a quarter of it has stopped, and
// that changes no token and no log-prob: in batch-invariant mode the cached,
// compacting decode and the recomputing one (every row, every step) agree bit
// for bit.
TEST(PolicyTransformer, FinishedRowsLeaveTheDecodeBatch) {
  auto model = small_transformer(41);
  model->set_batch_invariant(true);
  auto counting = std::make_shared<CountingLM>(model);
  grpo::Policy policy(counting);
  grpo::GenerationConfig gc = config(true, 1.0);
  gc.max_new_tokens = 24;
  gc.eos_ids = {3, 4, 5, 6};  // NB: likely enough that most rows stop early
  const std::vector<std::vector<int64_t>> prompts = random_prompts(41, 4, 40);
  const grpo::Generation cached = policy.generate(prompts, gc, 4);
  const std::vector<int64_t> seen = counting->rows;
  ASSERT_GT(seen.size(), 2u);
  EXPECT_EQ(seen[0], 4) << "the prefill runs each prompt once";
  EXPECT_EQ(seen[1], 16);
  EXPECT_LT(seen.back(), 16) << "finished rows left the batch";
  EXPECT_TRUE(std::is_sorted(seen.begin() + 1, seen.end(), std::greater<int64_t>()));
  const int64_t stopped = (cached.truncated.logical_not()).sum().item<int64_t>();
  EXPECT_GE(stopped, 8);

  gc.use_cache = false;
  const grpo::Generation recomputed = policy.generate(prompts, gc, 4);
  EXPECT_TRUE(torch::equal(cached.completion_ids, recomputed.completion_ids));
  EXPECT_TRUE(torch::equal(cached.completion_mask, recomputed.completion_mask));
  EXPECT_TRUE(torch::equal(cached.logprobs, recomputed.logprobs))
      << "max |diff| " << max_difference(cached.logprobs, recomputed.logprobs);
  // And per-prompt generators draw the same with and without the compaction.
  gc.prompt_seeds = {11, 12, 13, 14};
  gc.use_cache = true;
  const grpo::Generation seeded_cached = policy.generate(prompts, gc, 4);
  gc.use_cache = false;
  const grpo::Generation seeded_recomputed = policy.generate(prompts, gc, 4);
  EXPECT_TRUE(torch::equal(seeded_cached.completion_ids, seeded_recomputed.completion_ids));
}

// Each group's prompt computed once (prompt_groups): the same log-probs and the
// same gradients as running the prompt with every row, for the whole batch and
// for a shuffled micro-batch of rows from several groups; bit for bit in
// batch-invariant mode. Rows of one group with different prompts are refused.
TEST(PolicyTransformer, SharedPromptsGiveTheSameLogprobsAndGradients) {
  auto model = small_transformer(51);
  model->to(torch::kFloat64);
  grpo::Policy policy(model);
  const grpo::Generation g = policy.generate(random_prompts(51, 3, 40), config(true, 1.0), 4);
  const torch::Tensor groups = torch::arange(3, torch::kLong).repeat_interleave(4);
  auto run = [&](const RowsOf& r, const torch::Tensor& row_groups) {
    model->zero_grad();
    grpo::LogprobOptions lo;
    lo.prompt_groups = row_groups;
    lo.entropy = true;
    const grpo::TokenLogprobs lp =
        policy.token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, lo);
    (lp.logprobs * torch::linspace(-1, 2, lp.logprobs.numel(), lp.logprobs.options()).view(lp.logprobs.sizes()))
        .sum()
        .backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    return std::make_tuple(lp.logprobs.detach(), lp.entropy, grads);
  };
  const torch::Tensor all = torch::arange(12, torch::kLong), some = torch::tensor({5, 0, 6, 11, 4}, torch::kLong);
  for (const torch::Tensor& rows : {all, some}) {
    SCOPED_TRACE("rows " + std::to_string(rows.numel()));
    const RowsOf r = rows_of(g, rows);
    const auto [lp, entropy, grads] = run(r, torch::Tensor());
    const auto [shared_lp, shared_entropy, shared_grads] = run(r, groups.index_select(0, rows));
    EXPECT_TRUE(torch::allclose(lp, shared_lp, 1e-12, 1e-13)) << max_difference(lp, shared_lp);
    EXPECT_TRUE(torch::allclose(entropy, shared_entropy, 1e-10, 1e-12));
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(grads[i], shared_grads[i], 1e-10, 1e-12))
          << "parameter " << i << ": " << max_difference(grads[i], shared_grads[i]);
    }
  }
  // Batch-invariant: the same bits.
  model->to(torch::kFloat32);
  model->set_batch_invariant(true);
  const grpo::Generation e = policy.generate(random_prompts(52, 3, 40), config(true, 1.0), 4);
  grpo::LogprobOptions lo;
  lo.prompt_groups = groups;
  const torch::Tensor shared =
      policy.token_logprobs(e.prompt_ids, e.prompt_mask, e.completion_ids, e.completion_mask, lo).logprobs;
  EXPECT_TRUE(torch::equal(shared.detach(), e.logprobs)) << max_difference(shared.detach(), e.logprobs);

  lo.prompt_groups = torch::zeros({12}, torch::kLong);  // one group, three different prompts
  EXPECT_THROW(policy.token_logprobs(e.prompt_ids, e.prompt_mask, e.completion_ids, e.completion_mask, lo), grpo::Error);
  lo.prompt_groups = torch::zeros({11}, torch::kLong);  // not one per row
  EXPECT_THROW(policy.token_logprobs(e.prompt_ids, e.prompt_mask, e.completion_ids, e.completion_mask, lo), grpo::Error);
  EXPECT_THROW(model->make_training_cache(-1, 4), grpo::Error);
}
