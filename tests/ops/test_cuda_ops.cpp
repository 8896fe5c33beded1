// The CUDA ops against the CPU ops (and the reference) on the same inputs:
// values, gradients and statistics, reduced precision, strided and masked
// inputs, device errors. Every test skips when no GPU is present.
// Shapes: logp/old_logp/ref_logp/mask (N, T), advantages and rewards (N).
#include <grpo/build_info.h>

#include <limits>

#include "ops/reference.h"

namespace {

using grpo::AdvantageScale;
using grpo_test::LossConfig;
using grpo_test::LossInputs;
using grpo_test::OpResult;
using grpo_test::tensors_close;

constexpr const char* kNoCudaOps = "a GPU is present but this build of grpo has no CUDA ops";

const torch::Device kCuda(torch::kCUDA, 0);

struct Shape {
  int64_t N, T;
};
// Besides the CPU suite's shapes: rows longer than a block (T = 3000) and many rows.
const std::vector<Shape> kShapes{{3, 1}, {1, 17}, {6, 37}, {34, 5}, {64, 129}, {5, 3000}, {300, 77}};

// CUDA vs CPU: float32 to 1e-5 relative, float64 to ~1e-12.
grpo_test::Tolerance cuda_tolerance(torch::ScalarType ct, double scale) {
  return ct == torch::kFloat64 ? grpo_test::Tolerance{1e-12, 1e-13 * std::max(scale, 1e-3)}
                               : grpo_test::Tolerance{1e-5, 1e-5 * std::max(scale, 1e-3)};
}

void expect_cuda_matches_cpu(const OpResult& gpu, const OpResult& cpu, torch::ScalarType logp_dtype) {
  const torch::ScalarType ct = grpo_test::compute_dtype(logp_dtype);
  EXPECT_TRUE(gpu.loss.is_cuda());
  EXPECT_TRUE(gpu.stats.is_cuda());
  EXPECT_EQ(gpu.loss.scalar_type(), ct);
  EXPECT_EQ(gpu.stats.scalar_type(), ct);
  const grpo_test::Tolerance v = cuda_tolerance(ct, 1.0);
  EXPECT_TRUE(tensors_close(gpu.loss, cpu.loss, v.rtol, v.atol)) << "loss";
  EXPECT_TRUE(tensors_close(gpu.stats, cpu.stats, v.rtol, v.atol)) << "stats";
  ASSERT_TRUE(gpu.grad.defined()) << "no gradient reached logp";
  EXPECT_TRUE(gpu.grad.is_cuda());
  EXPECT_EQ(gpu.grad.scalar_type(), logp_dtype);
  const grpo_test::Tolerance g = cuda_tolerance(ct, grpo_test::max_abs(cpu.grad));
  EXPECT_TRUE(tensors_close(gpu.grad, cpu.grad, g.rtol, g.atol)) << "grad";
}

LossConfig config_named(const std::string& name) {
  for (const LossConfig& c : grpo_test::loss_configs())
    if (c.name == name) return c;
  ADD_FAILURE() << "no config " << name;
  return {};
}

// ---------------------------------------------------------------- the loss

class GrpoLossCudaVsCpu : public ::testing::TestWithParam<std::tuple<LossConfig, torch::ScalarType>> {};

TEST_P(GrpoLossCudaVsCpu, LossGradientAndStats) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  const auto& [config, dtype] = GetParam();
  for (const Shape& shape : kShapes) {
    for (uint64_t seed = 0; seed < 3; ++seed) {
      SCOPED_TRACE("N=" + std::to_string(shape.N) + " T=" + std::to_string(shape.T) + " seed=" + std::to_string(seed));
      const LossInputs in = grpo_test::make_loss_inputs(shape.N, shape.T, seed, dtype);
      const OpResult gpu = grpo_test::run_op(in, config, kCuda);
      expect_cuda_matches_cpu(gpu, grpo_test::run_op(in, config), dtype);
      // And against the reference directly, with the CPU suite's tolerances.
      const grpo_test::RefLoss want = grpo_test::run_ref(in, config);
      const grpo_test::Tolerance v = grpo_test::value_tolerance(dtype);
      const grpo_test::Tolerance g = grpo_test::grad_tolerance(dtype, want.grad);
      EXPECT_TRUE(tensors_close(gpu.loss, want.loss, v.rtol, v.atol)) << "loss vs reference";
      EXPECT_TRUE(tensors_close(gpu.grad, want.grad, g.rtol, g.atol)) << "grad vs reference";
      if (HasFailure()) return;
    }
  }
}

TEST_P(GrpoLossCudaVsCpu, ClampedTokens) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  const auto& [config, dtype] = GetParam();
  for (uint64_t seed = 0; seed < 3; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    LossInputs in = grpo_test::make_loss_inputs(34, 37, seed, dtype);
    grpo_test::add_clamped_tokens(in);
    expect_cuda_matches_cpu(grpo_test::run_op(in, config, kCuda), grpo_test::run_op(in, config), dtype);
    if (HasFailure()) return;
  }
}

std::string param_name(const ::testing::TestParamInfo<GrpoLossCudaVsCpu::ParamType>& info) {
  return std::get<0>(info.param).name + (std::get<1>(info.param) == torch::kFloat64 ? "_f64" : "_f32");
}

INSTANTIATE_TEST_SUITE_P(AllOptions, GrpoLossCudaVsCpu,
                         ::testing::Combine(::testing::ValuesIn(grpo_test::loss_configs()),
                                            ::testing::Values(torch::kFloat64, torch::kFloat32)),
                         param_name);

// bfloat16 / float16 logp on the GPU: the loss as on the CPU (both compute in
// float32), the gradient within one unit in the last place of its dtype.
TEST(GrpoLossCuda, ReducedPrecisionLogp) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  for (const torch::ScalarType dtype : {torch::kBFloat16, torch::kHalf}) {
    const double ulp = dtype == torch::kBFloat16 ? 1.0 / 128 : 1.0 / 1024;
    for (const char* name : {"grpo", "dapo_sequence", "grpo_delta_clip_higher_beta", "dr_grpo_mu1_beta"}) {
      for (const Shape shape : {Shape{6, 37}, Shape{64, 129}, Shape{5, 3000}}) {
        SCOPED_TRACE(std::string(name) + " " + c10::toString(dtype) + " N=" + std::to_string(shape.N));
        const LossConfig config = config_named(name);
        const LossInputs in = grpo_test::make_loss_inputs(shape.N, shape.T, 1, dtype);
        const OpResult gpu = grpo_test::run_op(in, config, kCuda);
        const OpResult cpu = grpo_test::run_op(in, config);
        EXPECT_EQ(gpu.loss.scalar_type(), torch::kFloat32);
        EXPECT_EQ(gpu.grad.scalar_type(), dtype);
        EXPECT_TRUE(tensors_close(gpu.loss, cpu.loss, 1e-5, 1e-6)) << "loss";
        EXPECT_TRUE(tensors_close(gpu.stats, cpu.stats, 1e-5, 1e-6)) << "stats";
        const double floor = std::max(1e-5 * grpo_test::max_abs(cpu.grad), 6e-8);
        EXPECT_TRUE(tensors_close(gpu.grad, cpu.grad, ulp, floor)) << "grad";
        if (HasFailure()) return;
      }
    }
  }
}

TEST(GrpoLossCuda, NonContiguousInputs) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  for (const char* name : {"grpo", "grpo_sequence", "dapo_normalizer"}) {
    SCOPED_TRACE(name);
    const LossConfig config = config_named(name);
    const LossInputs in = grpo_test::make_loss_inputs(6, 37, 3, torch::kFloat32);
    const OpResult cpu = grpo_test::run_op(in, config);
    const grpo_test::OpArgs a = grpo_test::op_args(in, config);

    const torch::Tensor base_t = in.logp.t().contiguous().to(kCuda).requires_grad_(true);  // (T, N) leaf
    const torch::Tensor wide_old = torch::zeros({6, 74}, in.old_logp.options().device(kCuda));
    wide_old.slice(1, 0, 74, 2).copy_(in.old_logp);
    const torch::Tensor ref_t = in.ref_logp.t().contiguous().to(kCuda).t();
    const torch::Tensor mask_t = in.mask.to(torch::kFloat32).t().contiguous().to(kCuda).t();
    const torch::Tensor wide_adv = torch::zeros({12}, in.advantages.options().device(kCuda));
    wide_adv.slice(0, 0, 12, 2).copy_(in.advantages);

    const grpo::GrpoLossResult r = grpo::grpo_loss(
        base_t.t(), a.old_logp.defined() ? wide_old.slice(1, 0, 74, 2) : torch::Tensor(),
        a.ref_logp.defined() ? ref_t : torch::Tensor(), wide_adv.slice(0, 0, 12, 2), mask_t, config.options);
    r.loss.backward();
    expect_cuda_matches_cpu({r.loss.detach(), r.stats, base_t.grad().t()}, cpu, torch::kFloat32);
  }
}

TEST(GrpoLossCuda, MaskedPositionsAreSkipped) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  for (const char* name : {"grpo", "grpo_sequence", "dr_grpo_mu1_beta"}) {
    SCOPED_TRACE(name);
    const LossConfig config = config_named(name);
    const LossInputs in = grpo_test::make_loss_inputs(34, 37, 1, torch::kFloat32);
    const OpResult clean = grpo_test::run_op(in, config);
    const torch::Tensor pad = ~in.mask;
    LossInputs poisoned = in;
    poisoned.logp = in.logp.masked_fill(pad, std::numeric_limits<double>::quiet_NaN());
    poisoned.old_logp = in.old_logp.masked_fill(pad, -std::numeric_limits<double>::infinity());
    poisoned.ref_logp = in.ref_logp.masked_fill(pad, std::numeric_limits<double>::quiet_NaN());
    const OpResult gpu = grpo_test::run_op(poisoned, config, kCuda);
    expect_cuda_matches_cpu(gpu, clean, torch::kFloat32);
  }
}

TEST(GrpoLossCuda, AllMaskedAndEmpty) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  for (const LossConfig& config : grpo_test::loss_configs()) {
    SCOPED_TRACE(config.name);
    LossInputs in = grpo_test::make_loss_inputs(6, 37, 0, torch::kFloat32);
    in.mask = torch::zeros_like(in.mask);
    const OpResult gpu = grpo_test::run_op(in, config, kCuda);
    EXPECT_EQ(gpu.loss.item<double>(), 0.0);
    EXPECT_EQ(grpo_test::max_abs(gpu.stats), 0.0);
    EXPECT_EQ(grpo_test::max_abs(gpu.grad), 0.0);
    for (const Shape shape : {Shape{0, 7}, Shape{4, 0}}) {
      const LossInputs empty = grpo_test::make_loss_inputs(shape.N, shape.T, 0, torch::kFloat32);
      const OpResult e = grpo_test::run_op(empty, config, kCuda);
      EXPECT_EQ(e.loss.item<double>(), 0.0);
      EXPECT_EQ(e.grad.sizes(), empty.logp.sizes());
    }
  }
}

TEST(GrpoLossCuda, NoGradAndInferenceMode) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  const LossConfig config = config_named("grpo");
  const LossInputs in = grpo_test::make_loss_inputs(6, 37, 0);
  const OpResult cpu = grpo_test::run_op(in, config);
  const torch::Tensor logp = in.logp.to(kCuda).requires_grad_(true);
  const auto call = [&] {
    return grpo::grpo_loss(logp, in.old_logp.to(kCuda), in.ref_logp.to(kCuda), in.advantages.to(kCuda),
                           in.mask.to(kCuda), config.options);
  };
  {
    torch::NoGradGuard no_grad;
    const grpo::GrpoLossResult r = call();
    EXPECT_FALSE(r.loss.requires_grad());
    EXPECT_TRUE(tensors_close(r.loss, cpu.loss, 1e-12, 1e-13));
  }
  {
    c10::InferenceMode inference;
    const grpo::GrpoLossResult r = call();
    EXPECT_FALSE(r.loss.requires_grad());
    EXPECT_TRUE(tensors_close(r.loss, cpu.loss, 1e-12, 1e-13));
  }
}

// ---------------------------------------------------------------- errors on the GPU

struct CudaCall {
  torch::Tensor logp, old_logp, ref_logp, advantages, mask;
  grpo::GrpoLossOptions options;
  grpo::GrpoLossResult operator()() const { return grpo::grpo_loss(logp, old_logp, ref_logp, advantages, mask, options); }
};

CudaCall valid_cuda_call() {
  const LossInputs in = grpo_test::make_loss_inputs(6, 8, 0);
  return {in.logp.to(kCuda), in.old_logp.to(kCuda), in.ref_logp.to(kCuda), in.advantages.to(kCuda),
          in.mask.to(kCuda), grpo::GrpoLossOptions{}};
}

TEST(GrpoLossCuda, MixedDevicesAreErrors) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  EXPECT_NO_THROW(valid_cuda_call()());
  CudaCall c = valid_cuda_call();
  c.mask = c.mask.cpu();
  grpo_test::expect_error_mentions([&] { c(); }, {"mask"}, "mask on the CPU");
  c = valid_cuda_call();
  c.old_logp = c.old_logp.cpu();
  grpo_test::expect_error_mentions([&] { c(); }, {"old_logp"}, "old_logp on the CPU");
  c = valid_cuda_call();
  c.ref_logp = c.ref_logp.cpu();
  grpo_test::expect_error_mentions([&] { c(); }, {"ref_logp"}, "ref_logp on the CPU");
  c = valid_cuda_call();
  c.advantages = c.advantages.cpu();
  grpo_test::expect_error_mentions([&] { c(); }, {"advantages"}, "advantages on the CPU");
}

TEST(GrpoLossCuda, ValueErrorsAndUncheckedCounts) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  std::vector<std::tuple<std::string, std::string, CudaCall>> bad;
  CudaCall c = valid_cuda_call();
  c.mask = c.mask.to(torch::kFloat32);
  c.mask[0][0] = 0.5;
  bad.emplace_back("mask 0.5", "mask", c);
  c = valid_cuda_call();
  c.advantages = c.advantages.clone();
  c.advantages[2] = std::numeric_limits<double>::quiet_NaN();
  bad.emplace_back("NaN advantage", "advantages", c);
  c = valid_cuda_call();
  const torch::Tensor at = c.mask.nonzero()[0].cpu();
  c.logp = c.logp.clone();
  c.logp[at[0].item<int64_t>()][at[1].item<int64_t>()] = std::numeric_limits<double>::quiet_NaN();
  bad.emplace_back("NaN logp at an unmasked position", "logp", c);
  for (auto& [what, needle, case_call] : bad) {
    auto& call = case_call;  // NB: a lambda cannot capture a structured binding before C++20
    SCOPED_TRACE(what);
    grpo_test::expect_error_mentions([&call] { call(); }, {needle}, what);
    call.options.check_inputs = false;
    grpo::GrpoLossResult r;
    ASSERT_NO_THROW(r = call());
    EXPECT_GT(grpo::read_stats(r.stats).invalid_inputs, 0.0);
  }
}

// ---------------------------------------------------------------- group advantages

TEST(GroupAdvantagesCuda, MatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  struct Groups {
    int64_t P, G;
  };
  for (const torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32, torch::kBFloat16, torch::kHalf}) {
    for (const AdvantageScale scale : {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
      for (const Groups g : {Groups{5, 1}, Groups{3, 2}, Groups{11, 3}, Groups{1000, 16}, Groups{2, 1000}}) {
        for (uint64_t seed = 0; seed < 3; ++seed) {
          SCOPED_TRACE(grpo::to_string(scale) + " " + c10::toString(dtype) + " P=" + std::to_string(g.P) +
                       " G=" + std::to_string(g.G) + " seed=" + std::to_string(seed));
          at::Generator gen = at::detail::createCPUGenerator(seed);
          torch::Tensor rewards = at::randn({g.P * g.G}, gen, torch::TensorOptions().dtype(torch::kFloat64));
          if (seed == 1) rewards = (rewards > 0).to(torch::kFloat64);  // 0/1 rewards: equal groups
          rewards = rewards.to(dtype);
          grpo::GroupAdvantageOptions o;
          o.scale = scale;
          const grpo::GroupAdvantages gpu = grpo::group_advantages(rewards.to(kCuda), g.G, o);
          const grpo::GroupAdvantages cpu = grpo::group_advantages(rewards, g.G, o);
          EXPECT_TRUE(gpu.advantages.is_cuda());
          const grpo_test::Tolerance tol = cuda_tolerance(cpu.advantages.scalar_type(), 1.0);
          EXPECT_EQ(gpu.advantages.scalar_type(), cpu.advantages.scalar_type());
          EXPECT_TRUE(tensors_close(gpu.advantages, cpu.advantages, tol.rtol, tol.atol)) << "advantages";
          EXPECT_TRUE(tensors_close(gpu.group_mean, cpu.group_mean, tol.rtol, tol.atol)) << "group_mean";
          EXPECT_TRUE(tensors_close(gpu.group_std, cpu.group_std, tol.rtol, tol.atol)) << "group_std";
          // Equal groups are exactly 0 on the GPU too.
          const torch::Tensor groups = rewards.to(torch::kFloat64).reshape({g.P, g.G});
          const torch::Tensor equal = (groups.amax(1) == groups.amin(1)).unsqueeze(1).expand({g.P, g.G}).reshape({-1});
          EXPECT_EQ(grpo_test::max_abs(gpu.advantages.cpu().masked_select(equal)), 0.0);
          if (HasFailure()) return;
        }
      }
    }
  }
}

TEST(GroupAdvantagesCuda, NonFiniteRewardIsAnError) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(grpo::has_cuda_ops()) << kNoCudaOps;
  torch::Tensor rewards = torch::randn({8}, torch::TensorOptions().dtype(torch::kFloat32).device(kCuda));
  rewards[5] = std::numeric_limits<double>::quiet_NaN();
  grpo_test::expect_error_mentions([&] { grpo::group_advantages(rewards, 4); }, {"rewards", "5"}, "NaN reward");
}

}  // namespace
