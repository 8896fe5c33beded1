// grpo::distill_loss against the plain LibTorch composite (both models' full
// logits, log_softmax, the divergence written out with torch ops and the
// cross-entropy by gather; autograd does the gradient), over seeds, shapes,
// dtypes, divergences, temperatures, α, β and chunk sizes; micro-batch
// equivalence; no gradient to the teacher; and the errors.
// Shapes: M positions, Hs / Ht hidden sizes, V vocabulary.
#include <grpo/ops/distill_loss.h>

#include <cmath>
#include <tuple>

#include "ops/reference.h"

namespace {

using grpo::Divergence;
using grpo::DistillLossOptions;
using grpo_test::tensors_close;

struct Inputs {
  torch::Tensor hs, ws, ht, wt, targets;  // (M, Hs), (V, Hs), (M, Ht), (V, Ht), (M)
};

Inputs make_inputs(int64_t M, int64_t Hs, int64_t Ht, int64_t V, uint64_t seed, torch::ScalarType dtype,
                   torch::ScalarType teacher_dtype) {
  torch::manual_seed(seed);
  Inputs in;
  in.hs = torch::randn({M, Hs}, torch::kFloat64).to(dtype);
  in.ws = torch::randn({V, Hs}, torch::kFloat64).mul(0.7).to(dtype);
  in.ht = torch::randn({M, Ht}, torch::kFloat64).to(teacher_dtype);
  in.wt = torch::randn({V, Ht}, torch::kFloat64).mul(0.7).to(teacher_dtype);
  in.targets = torch::randint(V, {M}, torch::kLong);
  return in;
}

// The loss written as a user would in plain LibTorch, every row at once.
torch::Tensor ref_loss(const torch::Tensor& hs, const torch::Tensor& ws, const torch::Tensor& ht,
                       const torch::Tensor& wt, const torch::Tensor& targets, const DistillLossOptions& o,
                       torch::Tensor* divergence_sum = nullptr, torch::Tensor* nll_sum = nullptr) {
  const torch::Tensor zs = torch::matmul(hs, ws.t()).to(torch::kFloat64);
  const torch::Tensor zt = torch::matmul(ht, wt.t()).to(torch::kFloat64);
  const double tau = o.temperature;
  const torch::Tensor ls = torch::log_softmax(zs / tau, -1), lt = torch::log_softmax(zt / tau, -1);
  torch::Tensor d;
  if (o.divergence == Divergence::ForwardKL) {
    d = torch::kl_div(ls, lt, at::Reduction::None, /*log_target=*/true).sum(-1);  // KL(p ‖ q)
  } else if (o.divergence == Divergence::ReverseKL) {
    d = torch::kl_div(lt, ls, at::Reduction::None, /*log_target=*/true).sum(-1);  // KL(q ‖ p)
  } else {
    const torch::Tensor m = o.beta * lt.exp() + (1 - o.beta) * ls.exp();
    const torch::Tensor lm = m.log();
    d = o.beta * torch::kl_div(lm, lt, at::Reduction::None, true).sum(-1) +
        (1 - o.beta) * torch::kl_div(lm, ls, at::Reduction::None, true).sum(-1);
  }
  const torch::Tensor nll = -torch::log_softmax(zs, -1).gather(1, targets.unsqueeze(1)).squeeze(1);
  if (divergence_sum) *divergence_sum = d.sum();
  if (nll_sum) *nll_sum = nll.sum();
  return (o.alpha * tau * tau * d.sum() + (1 - o.alpha) * nll.sum()) / o.normalizer;
}

// Parameters: (M, Hs, Ht, V), student dtype, divergence, temperature, chunk.
using Case = std::tuple<std::tuple<int64_t, int64_t, int64_t, int64_t>, torch::ScalarType, Divergence, double,
                        int64_t>;
class DistillLossVsReference : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  const auto& shape = std::get<0>(info.param);
  return "M" + std::to_string(std::get<0>(shape)) + "_" + std::string(c10::toString(std::get<1>(info.param))) + "_" +
         grpo::to_string(std::get<2>(info.param)) + "_t" + std::to_string(static_cast<int>(std::get<3>(info.param))) +
         "_c" + std::to_string(std::get<4>(info.param));
}

TEST_P(DistillLossVsReference, LossStatsAndStudentGradients) {
  const auto& [shape, dtype, divergence, temperature, chunk] = GetParam();
  const auto& [M, Hs, Ht, V] = shape;
  for (uint64_t seed : {0, 1, 2}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    DistillLossOptions o;
    o.divergence = divergence;
    o.temperature = temperature;
    o.chunk_tokens = chunk;
    o.alpha = seed == 0 ? 0.5 : (seed == 1 ? 1.0 : 0.2);
    o.beta = seed == 2 ? 0.1 : 0.5;
    o.normalizer = 3.0 + static_cast<double>(M);
    // NB: the teacher computes in float32 whatever the student does (a bfloat16 student, a float32 teacher).
    const torch::ScalarType teacher_dtype = dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    Inputs in = make_inputs(M, Hs, Ht, V, seed, dtype, teacher_dtype);
    const bool half = dtype == torch::kBFloat16;
    const double rtol = half ? 2e-2 : (dtype == torch::kFloat64 ? 1e-10 : 1e-5), atol = rtol;
    // bf16: the composite rounds its matmul in bf16 too, then works in float64.
    torch::Tensor h = in.hs.clone().requires_grad_(true), w = in.ws.clone().requires_grad_(true);
    const auto [loss, stats] = grpo::distill_loss(h, w, in.ht, in.wt, in.targets, o);
    EXPECT_EQ(loss.dim(), 0);
    EXPECT_EQ(loss.scalar_type(), dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
    EXPECT_FALSE(stats.requires_grad());

    torch::Tensor rh = in.hs.clone().requires_grad_(true), rw = in.ws.clone().requires_grad_(true);
    torch::Tensor d_sum, nll_sum;
    const torch::Tensor expected = ref_loss(rh, rw, in.ht, in.wt, in.targets, o, &d_sum, &nll_sum);
    EXPECT_TRUE(tensors_close(loss, expected, rtol, atol)) << "loss";
    EXPECT_TRUE(tensors_close(stats[0], d_sum, rtol, atol * M)) << "divergence sum";
    EXPECT_TRUE(tensors_close(stats[1], nll_sum, rtol, atol * M)) << "nll sum";

    (loss * 1.7).backward();
    (expected * 1.7).backward();
    ASSERT_TRUE(h.grad().defined() && w.grad().defined());
    EXPECT_EQ(h.grad().scalar_type(), dtype);
    EXPECT_EQ(w.grad().scalar_type(), dtype);
    const double gh = grpo_test::max_abs(rh.grad()), gw = grpo_test::max_abs(rw.grad());
    EXPECT_TRUE(tensors_close(h.grad(), rh.grad(), half ? 5e-2 : rtol, (half ? 5e-2 : atol) * gh)) << "grad hidden";
    EXPECT_TRUE(tensors_close(w.grad(), rw.grad(), half ? 5e-2 : rtol, (half ? 5e-2 : atol) * gw)) << "grad weight";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DistillLossVsReference,
    ::testing::Combine(::testing::Values(std::make_tuple(int64_t{1}, int64_t{4}, int64_t{6}, int64_t{3}),
                                         std::make_tuple(int64_t{23}, int64_t{8}, int64_t{12}, int64_t{37})),
                       ::testing::Values(torch::kFloat32, torch::kFloat64, torch::kBFloat16),
                       ::testing::Values(Divergence::ForwardKL, Divergence::ReverseKL, Divergence::JSD),
                       ::testing::Values(1.0, 2.0), ::testing::Values(int64_t{1}, int64_t{5}, int64_t{1024})),
    case_name);

// A batch cut into micro-batches, each normalized by the whole batch's token
// count, gives the whole batch's loss and gradient: how the trainer accumulates.
TEST(DistillLoss, MicroBatchesAddUpToTheBatch) {
  for (Divergence divergence : {Divergence::ForwardKL, Divergence::ReverseKL, Divergence::JSD}) {
    SCOPED_TRACE(grpo::to_string(divergence));
    Inputs in = make_inputs(40, 8, 10, 29, 5, torch::kFloat64, torch::kFloat64);
    DistillLossOptions o;
    o.divergence = divergence;
    o.temperature = 1.5;
    o.alpha = 0.7;
    o.normalizer = 40;
    o.chunk_tokens = 7;
    torch::Tensor w_whole = in.ws.clone().requires_grad_(true);
    const torch::Tensor whole = std::get<0>(grpo::distill_loss(in.hs, w_whole, in.ht, in.wt, in.targets, o));
    whole.backward();
    torch::Tensor w_micro = in.ws.clone().requires_grad_(true);
    double sum = 0;
    for (int64_t begin : {0, 9, 25}) {
      const int64_t n = (begin == 25 ? 40 : (begin == 0 ? 9 : 25)) - begin;
      const torch::Tensor part = std::get<0>(grpo::distill_loss(in.hs.narrow(0, begin, n), w_micro,
                                                                in.ht.narrow(0, begin, n), in.wt,
                                                                in.targets.narrow(0, begin, n), o));
      part.backward();
      sum += part.item<double>();
    }
    EXPECT_NEAR(sum, whole.item<double>(), 1e-12);
    EXPECT_TRUE(tensors_close(w_micro.grad(), w_whole.grad(), 1e-10, 1e-12));
  }
}

TEST(DistillLoss, ChunkingChangesNothingInFloat64) {
  Inputs in = make_inputs(33, 8, 8, 50, 7, torch::kFloat64, torch::kFloat64);
  DistillLossOptions o;
  o.divergence = Divergence::JSD;
  const torch::Tensor whole = std::get<0>(grpo::distill_loss(in.hs, in.ws, in.ht, in.wt, in.targets, o));
  for (int64_t chunk : {1, 2, 7, 32, 33}) {
    o.chunk_tokens = chunk;
    EXPECT_NEAR(std::get<0>(grpo::distill_loss(in.hs, in.ws, in.ht, in.wt, in.targets, o)).item<double>(),
                whole.item<double>(), 1e-12)
        << chunk;
  }
}

// The divergences' defining properties, independent of the composite: zero
// when the student is the teacher, and at α = 0 the loss is the plain
// cross-entropy whatever the teacher says.
TEST(DistillLoss, IdenticalModelsHaveNoDivergenceAndAlphaZeroIsCrossEntropy) {
  Inputs in = make_inputs(12, 6, 6, 17, 3, torch::kFloat64, torch::kFloat64);
  for (Divergence divergence : {Divergence::ForwardKL, Divergence::ReverseKL, Divergence::JSD}) {
    DistillLossOptions o;
    o.divergence = divergence;
    o.temperature = 0.8;
    const auto [loss, stats] = grpo::distill_loss(in.hs, in.ws, in.hs, in.ws, in.targets, o);
    EXPECT_NEAR(stats[0].item<double>(), 0.0, 1e-12) << grpo::to_string(divergence);
    EXPECT_GT(std::get<1>(grpo::distill_loss(in.hs, in.ws, in.ht, in.wt, in.targets, o))[0].item<double>(), 0.1);
    o.alpha = 0;
    const double nll = -torch::log_softmax(torch::matmul(in.hs, in.ws.t()), -1)
                            .gather(1, in.targets.unsqueeze(1))
                            .sum()
                            .item<double>();
    EXPECT_NEAR(std::get<0>(grpo::distill_loss(in.hs, in.ws, in.ht, in.wt, in.targets, o)).item<double>(), nll,
                1e-10);
  }
}

TEST(DistillLoss, TheTeacherGetsNoGradient) {
  Inputs in = make_inputs(5, 4, 4, 9, 0, torch::kFloat32, torch::kFloat32);
  torch::Tensor h = in.hs.clone().requires_grad_(true);
  torch::Tensor ht = in.ht.clone().requires_grad_(true), wt = in.wt.clone().requires_grad_(true);
  std::get<0>(grpo::distill_loss(h, in.ws, ht, wt, in.targets)).backward();
  EXPECT_TRUE(h.grad().defined());
  EXPECT_FALSE(ht.grad().defined());
  EXPECT_FALSE(wt.grad().defined());
}

TEST(DistillLoss, NoPositionsGiveAZeroLoss) {
  Inputs in = make_inputs(0, 4, 4, 5, 0, torch::kFloat32, torch::kFloat32);
  torch::Tensor w = in.ws.clone().requires_grad_(true);
  const torch::Tensor loss = std::get<0>(grpo::distill_loss(in.hs, w, in.ht, in.wt, in.targets));
  EXPECT_EQ(loss.item<float>(), 0.0f);
  loss.backward();
  EXPECT_EQ(w.grad().abs().sum().item<float>(), 0.0f);
}

TEST(DistillLoss, ThePythonOpHasTheOptionsDefaults) {
  Inputs in = make_inputs(6, 4, 4, 7, 1, torch::kFloat64, torch::kFloat64);
  const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("grpo::distill_loss", "");
  const std::string schema = c10::toString(op.schema());
  EXPECT_NE(schema.find("str divergence=\"forward_kl\""), std::string::npos) << schema;
  EXPECT_NE(schema.find("float alpha=0.5"), std::string::npos) << schema;
}

TEST(DistillLoss, BadInputsNameTheArgument) {
  const Inputs in = make_inputs(6, 4, 5, 7, 0, torch::kFloat32, torch::kFloat32);
  using grpo_test::expect_error_mentions;
  DistillLossOptions o;
  auto call = [&](const Inputs& x, const DistillLossOptions& opts) {
    grpo::distill_loss(x.hs, x.ws, x.ht, x.wt, x.targets, opts);
  };
  Inputs bad = in;
  bad.wt = in.wt.narrow(0, 0, 6);
  expect_error_mentions([&] { call(bad, o); }, {"distill_loss", "teacher's vocabulary has 6 tokens and the student's 7"},
                        "vocabularies");
  bad = in;
  bad.ht = in.ht.narrow(0, 0, 5);
  expect_error_mentions([&] { call(bad, o); }, {"teacher_hidden must be (M, Ht) = (6, 5)"}, "teacher rows");
  bad = in;
  bad.hs = in.hs.narrow(1, 0, 3);
  expect_error_mentions([&] { call(bad, o); }, {"student_hidden must be (M, Hs) with Hs = 4"}, "student width");
  bad = in;
  bad.ws = in.ws.to(torch::kFloat64);
  expect_error_mentions([&] { call(bad, o); }, {"student_weight is Double but student_hidden is Float"}, "dtypes");
  bad = in;
  bad.targets = in.targets.to(torch::kInt);
  expect_error_mentions([&] { call(bad, o); }, {"targets must be int64"}, "targets dtype");
  DistillLossOptions b = o;
  b.alpha = 1.5;
  expect_error_mentions([&] { call(in, b); }, {"alpha must be in [0, 1], got 1.5"}, "alpha");
  b = o;
  b.temperature = 0;
  expect_error_mentions([&] { call(in, b); }, {"temperature must be > 0, got 0"}, "temperature");
  b = o;
  b.divergence = Divergence::JSD;
  b.beta = 1.0;
  expect_error_mentions([&] { call(in, b); }, {"beta must be in (0, 1) for jsd, got 1"}, "beta");
  b = o;
  b.normalizer = 0;
  expect_error_mentions([&] { call(in, b); }, {"normalizer must be > 0, got 0"}, "normalizer");
  b = o;
  b.chunk_tokens = 0;
  expect_error_mentions([&] { call(in, b); }, {"chunk_tokens must be >= 1, got 0"}, "chunk");
  expect_error_mentions([&] { grpo::parse_divergence("kl"); }, {"divergence must be one of", "forward_kl"}, "name");
}

}  // namespace
