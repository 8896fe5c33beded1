// grpo::token_logprobs, grpo::token_entropy and grpo::token_logprobs_and_entropy against the plain LibTorch
// composite (full logits, log_softmax, gather; autograd does the gradient),
// over seeds, shapes, dtypes, temperatures and chunk sizes, and their errors.
// Shapes: M positions, H hidden size, V vocabulary.
#include <grpo/ops/token_logprobs.h>

#include <tuple>

#include "ops/reference.h"

namespace {

using grpo_test::tensors_close;

struct Inputs {
  torch::Tensor hidden, weight, targets;  // (M, H), (V, H), (M)
};

Inputs make_inputs(int64_t M, int64_t H, int64_t V, uint64_t seed, torch::ScalarType dtype) {
  torch::manual_seed(seed);
  Inputs in;
  in.hidden = torch::randn({M, H}, torch::kFloat64).mul(2).to(dtype);
  in.weight = torch::randn({V, H}, torch::kFloat64).to(dtype);
  in.targets = torch::randint(V, {M}, torch::kLong);
  return in;
}

// log softmax(hidden · weightᵀ / temperature)[target], all rows at once.
torch::Tensor ref_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                           double temperature) {
  const torch::Tensor logits = torch::matmul(hidden, weight.t()).to(torch::kFloat64) / temperature;
  return logits.log_softmax(-1).gather(1, targets.unsqueeze(1)).squeeze(1);
}

torch::Tensor ref_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, double temperature) {
  const torch::Tensor logp = (torch::matmul(hidden, weight.t()).to(torch::kFloat64) / temperature).log_softmax(-1);
  return -(logp.exp() * logp).sum(-1);
}

// Parameters: (M, H, V), dtype, temperature, chunk.
using Case = std::tuple<std::tuple<int64_t, int64_t, int64_t>, torch::ScalarType, double, int64_t>;
class TokenLogprobsVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(TokenLogprobsVsReference, ValuesGradientsAndEntropy) {
  const auto& [shape, dtype, temperature, chunk] = GetParam();
  const auto& [M, H, V] = shape;
  for (uint64_t seed : {0, 1, 2}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Inputs in = make_inputs(M, H, V, seed, dtype);
    // NB: bf16 products round differently in any two matmul orders, so bf16 is
    // held to the same-dtype composite with a bf16 tolerance; the others to float64.
    const bool half = dtype == torch::kBFloat16;
    const double rtol = half ? 2e-2 : 1e-5, atol = half ? 5e-2 : 1e-5;
    const torch::Tensor ref_h = half ? in.hidden : in.hidden.to(torch::kFloat64);
    const torch::Tensor ref_w = half ? in.weight : in.weight.to(torch::kFloat64);

    torch::Tensor h = in.hidden.clone().requires_grad_(true), w = in.weight.clone().requires_grad_(true);
    const torch::Tensor got = grpo::token_logprobs(h, w, in.targets, temperature, chunk);
    EXPECT_EQ(got.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(tensors_close(got, ref_logprobs(ref_h, ref_w, in.targets, temperature), rtol, atol));

    const torch::Tensor upstream = torch::randn({M}, torch::kFloat64);
    got.backward(upstream.to(torch::kFloat32));
    torch::Tensor rh = ref_h.detach().clone().requires_grad_(true), rw = ref_w.detach().clone().requires_grad_(true);
    (ref_logprobs(rh, rw, in.targets, temperature) * upstream.to(rh.scalar_type())).sum().backward();
    EXPECT_EQ(h.grad().scalar_type(), dtype);
    EXPECT_EQ(w.grad().scalar_type(), dtype);
    const double gscale_h = grpo_test::max_abs(rh.grad()), gscale_w = grpo_test::max_abs(rw.grad());
    EXPECT_TRUE(tensors_close(h.grad(), rh.grad(), rtol, atol * gscale_h)) << "grad hidden";
    EXPECT_TRUE(tensors_close(w.grad(), rw.grad(), rtol, atol * gscale_w)) << "grad weight";

    const torch::Tensor entropy = grpo::token_entropy(in.hidden, in.weight, temperature, chunk);
    EXPECT_FALSE(entropy.requires_grad());
    EXPECT_TRUE(tensors_close(entropy, ref_entropy(ref_h, ref_w, temperature), rtol, atol));

    // Both in one pass: the same log-probs and gradients, bit for bit, and the entropy.
    torch::Tensor h2 = in.hidden.clone().requires_grad_(true), w2 = in.weight.clone().requires_grad_(true);
    const auto [fused, fused_entropy] = grpo::token_logprobs_and_entropy(h2, w2, in.targets, temperature, chunk);
    EXPECT_TRUE(torch::equal(fused.detach(), got.detach()));
    EXPECT_FALSE(fused_entropy.requires_grad());
    EXPECT_EQ(fused_entropy.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(tensors_close(fused_entropy, ref_entropy(ref_h, ref_w, temperature), rtol, atol));
    fused.backward(upstream.to(torch::kFloat32));
    EXPECT_TRUE(torch::equal(h2.grad(), h.grad()));
    EXPECT_TRUE(torch::equal(w2.grad(), w.grad()));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, TokenLogprobsVsReference,
    ::testing::Combine(::testing::Values(std::make_tuple(int64_t{1}, int64_t{4}, int64_t{3}),
                                         std::make_tuple(int64_t{17}, int64_t{8}, int64_t{29}),
                                         std::make_tuple(int64_t{64}, int64_t{16}, int64_t{101})),
                       ::testing::Values(torch::kFloat32, torch::kFloat64, torch::kBFloat16),
                       ::testing::Values(1.0, 0.7), ::testing::Values(int64_t{1}, int64_t{5}, int64_t{1024})));

TEST(TokenLogprobs, ChunkingChangesNothingInFloat64) {
  Inputs in = make_inputs(33, 8, 50, 7, torch::kFloat64);
  const torch::Tensor whole = grpo::token_logprobs(in.hidden, in.weight, in.targets, 0.9, 1024);
  for (int64_t chunk : {1, 2, 7, 32, 33}) {
    EXPECT_TRUE(torch::equal(grpo::token_logprobs(in.hidden, in.weight, in.targets, 0.9, chunk), whole)) << chunk;
  }
}

TEST(TokenLogprobs, NoPositionsGiveEmptyResults) {
  Inputs in = make_inputs(0, 4, 5, 0, torch::kFloat32);
  EXPECT_EQ(grpo::token_logprobs(in.hidden, in.weight, in.targets).numel(), 0);
  EXPECT_EQ(grpo::token_entropy(in.hidden, in.weight).numel(), 0);
}

TEST(TokenLogprobs, BadInputsNameTheArgument) {
  const Inputs in = make_inputs(6, 4, 5, 0, torch::kFloat32);
  using grpo_test::expect_error_mentions;
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden.view({-1}), in.weight, in.targets); },
                        {"token_logprobs", "hidden must be (M, H)"}, "1-D hidden");
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden, in.weight.narrow(1, 0, 3), in.targets); },
                        {"weight must be (V, H) with H = 4"}, "weight width");
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden, in.weight.to(torch::kFloat64), in.targets); },
                        {"weight is Double but hidden is Float"}, "dtypes");
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden, in.weight, in.targets.narrow(0, 0, 5)); },
                        {"targets must be (M) = (6)"}, "targets length");
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden, in.weight, in.targets.to(torch::kInt)); },
                        {"targets must be int64"}, "targets dtype");
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden, in.weight, in.targets, 0.0); },
                        {"temperature must be > 0, got 0"}, "temperature");
  expect_error_mentions([&] { grpo::token_logprobs(in.hidden, in.weight, in.targets, 1.0, 0); },
                        {"chunk_tokens must be >= 1, got 0"}, "chunk");
  expect_error_mentions([&] { grpo::token_entropy(in.hidden.to(torch::kLong), in.weight.to(torch::kLong)); },
                        {"hidden must be float32, float64, float16 or bfloat16"}, "integer hidden");
}

}  // namespace
