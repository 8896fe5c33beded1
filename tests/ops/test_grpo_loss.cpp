// grpo::grpo_loss on the CPU against the autograd reference in reference.h:
// loss, dloss/dlogp and statistics for every loss type and option, reduced
// precision, strided inputs, masking, micro-batching, autograd modes, errors.
// Shapes: logp/old_logp/ref_logp/mask (N, T), advantages (N).
#include <ATen/core/dispatch/Dispatcher.h>

#include <limits>

#include "ops/reference.h"

namespace {

using grpo::LossStat;
using grpo::LossType;
using grpo_test::LossConfig;
using grpo_test::LossInputs;
using grpo_test::OpResult;
using grpo_test::RefLoss;
using grpo_test::stat_index;
using grpo_test::tensors_close;

struct Shape {
  int64_t N, T;
};
// T = 1, a single row, N not a multiple of 32, and a bigger batch; every batch
// of N >= 3 has one entirely masked row.
const std::vector<Shape> kShapes{{3, 1}, {1, 17}, {2, 9}, {6, 37}, {34, 5}, {64, 129}};
constexpr uint64_t kSeeds = 5;

std::string describe(const Shape& s, uint64_t seed) {
  return "N=" + std::to_string(s.N) + " T=" + std::to_string(s.T) + " seed=" + std::to_string(seed);
}

// The op's loss, gradient and stats against the reference's, in the compute dtype.
void expect_matches_reference(const OpResult& got, const RefLoss& want, torch::ScalarType logp_dtype) {
  const torch::ScalarType ct = grpo_test::compute_dtype(logp_dtype);
  const grpo_test::Tolerance v = grpo_test::value_tolerance(ct);
  const grpo_test::Tolerance g = grpo_test::grad_tolerance(ct, want.grad);
  EXPECT_EQ(got.loss.dim(), 0);
  EXPECT_EQ(got.loss.scalar_type(), ct);
  EXPECT_EQ(got.stats.scalar_type(), ct);
  EXPECT_EQ(got.stats.sizes(), torch::IntArrayRef({static_cast<int64_t>(LossStat::Count)}));
  EXPECT_TRUE(tensors_close(got.loss, want.loss, v.rtol, v.atol)) << "loss";
  EXPECT_TRUE(tensors_close(got.stats, want.stats, v.rtol, v.atol)) << "stats";
  ASSERT_TRUE(got.grad.defined()) << "no gradient reached logp";
  EXPECT_EQ(got.grad.scalar_type(), logp_dtype);
  EXPECT_TRUE(tensors_close(got.grad, want.grad, g.rtol, g.atol)) << "grad";
}

// ---------------------------------------------------------------- vs reference

class GrpoLossVsReference : public ::testing::TestWithParam<std::tuple<LossConfig, torch::ScalarType>> {};

TEST_P(GrpoLossVsReference, LossGradientAndStats) {
  const auto& [config, dtype] = GetParam();
  for (const Shape& shape : kShapes) {
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
      SCOPED_TRACE(describe(shape, seed));
      const LossInputs in = grpo_test::make_loss_inputs(shape.N, shape.T, seed, dtype);
      expect_matches_reference(grpo_test::run_op(in, config), grpo_test::run_ref(in, config), dtype);
      if (HasFailure()) return;  // one case's details are enough
    }
  }
}

// The safety clamps: log-ratios of ±30, ref - logp of +30 and -15.
TEST_P(GrpoLossVsReference, ClampedTokens) {
  const auto& [config, dtype] = GetParam();
  for (const Shape& shape : {Shape{6, 37}, Shape{34, 5}}) {
    for (uint64_t seed = 0; seed < 3; ++seed) {
      SCOPED_TRACE(describe(shape, seed));
      LossInputs in = grpo_test::make_loss_inputs(shape.N, shape.T, seed, dtype);
      grpo_test::add_clamped_tokens(in);
      const OpResult got = grpo_test::run_op(in, config);
      const RefLoss want = grpo_test::run_ref(in, config);
      expect_matches_reference(got, want, dtype);
      // Token 0 of rows with i % 4 == 0 or 1 has its log-ratio clamped: no
      // surrogate gradient there (token-level ratios only), and with beta = 0 none at all.
      if (config.with_old && config.options.beta == 0.0 &&
          config.options.importance_sampling == grpo::ImportanceSampling::Token) {
        EXPECT_EQ(got.grad[4][0].item<double>(), 0.0);
        EXPECT_EQ(got.grad[5][0].item<double>(), 0.0);
      }
      if (HasFailure()) return;
    }
  }
}

std::string param_name(const ::testing::TestParamInfo<GrpoLossVsReference::ParamType>& info) {
  return std::get<0>(info.param).name + (std::get<1>(info.param) == torch::kFloat64 ? "_f64" : "_f32");
}

INSTANTIATE_TEST_SUITE_P(AllOptions, GrpoLossVsReference,
                         ::testing::Combine(::testing::ValuesIn(grpo_test::loss_configs()),
                                            ::testing::Values(torch::kFloat64, torch::kFloat32)),
                         param_name);

// ---------------------------------------------------------------- the options matter

LossConfig config_named(const std::string& name) {
  for (const LossConfig& c : grpo_test::loss_configs())
    if (c.name == name) return c;
  ADD_FAILURE() << "no config " << name;
  return {};
}

// The random inputs really reach the clipped branches, so the reference
// comparisons above test them.
TEST(GrpoLoss, ClipPathsAreExercised) {
  const LossInputs in = grpo_test::make_loss_inputs(64, 129, 0);
  const LossConfig config = config_named("grpo");
  const OpResult got = grpo_test::run_op(in, config);
  const grpo::LossStats s = grpo::read_stats(got.stats);
  EXPECT_GT(s.clip_low_frac, 0.02);
  EXPECT_GT(s.clip_high_frac, 0.02);
  EXPECT_NEAR(s.clip_region_frac, s.clip_low_frac + s.clip_high_frac, 1e-12);
  EXPECT_GT(s.kl_mean, 0.0);
  EXPECT_NE(s.ratio_mean, 1.0);
  EXPECT_EQ(s.token_count, in.mask.sum().item<double>());
  EXPECT_EQ(s.invalid_inputs, 0.0);
  // The tight clamps: the KL is capped at kl_clamp at most tokens (without
  // the cap the mean would be ~0.023 > kl_clamp).
  const grpo::LossStats tight = grpo::read_stats(grpo_test::run_op(in, config_named("grpo_tight_clamps")).stats);
  EXPECT_LE(tight.kl_mean, grpo_test::kTightKlClamp);
  EXPECT_GT(tight.kl_mean, 0.5 * grpo_test::kTightKlClamp);
  // Clipped tokens have no surrogate gradient: with beta = 0 their gradient is exactly 0.
  const OpResult beta0 = grpo_test::run_op(in, config_named("grpo_beta0"));
  const int64_t zero_unmasked = ((beta0.grad == 0) & in.mask & (in.advantages.unsqueeze(1) != 0)).sum().item<int64_t>();
  EXPECT_GT(zero_unmasked, 0);
}

double op_loss(const LossInputs& in, const LossConfig& c) { return grpo_test::run_op(in, c).loss.item<double>(); }

// Each option changes the loss on the test inputs: the reference comparisons
// would catch an implementation that ignored it.
TEST(GrpoLoss, OptionsChangeTheResult) {
  const LossInputs in = grpo_test::make_loss_inputs(34, 5, 1);
  const double base = op_loss(in, config_named("grpo"));
  for (const char* name : {"grpo_beta0", "grpo_clip_higher", "grpo_delta", "grpo_mu1", "grpo_sequence",
                           "grpo_normalizer", "grpo_tight_clamps", "bnpo", "dapo_normalizer", "dr_grpo"}) {
    EXPECT_GT(std::abs(op_loss(in, config_named(name)) - base), 1e-6) << name;
  }
  LossConfig c = config_named("grpo");
  c.options.epsilon_low = 0.1;
  EXPECT_GT(std::abs(op_loss(in, c) - base), 1e-6) << "epsilon_low";
  c = config_named("grpo");
  c.options.kl_clamp = 0.05;
  EXPECT_GT(std::abs(op_loss(in, c) - base), 1e-6) << "kl_clamp";

  LossInputs clamped = in;
  grpo_test::add_clamped_tokens(clamped);
  c = config_named("grpo");
  const double default_clamp = op_loss(clamped, c);
  c.options.log_ratio_clamp = 25.0;
  EXPECT_GT(std::abs(op_loss(clamped, c) - default_clamp), 1e-6) << "log_ratio_clamp";
}

// ---------------------------------------------------------------- dtypes and layouts

// bfloat16 / float16 log-probs are computed in float32: the loss and stats match
// the float32 reference on the same (upcast) values, the gradient comes back in
// logp's dtype, equal to the reference's up to one rounding to that dtype.
TEST(GrpoLoss, ReducedPrecisionLogp) {
  for (const torch::ScalarType dtype : {torch::kBFloat16, torch::kHalf}) {
    // One rounding to the dtype: the float32 gradients of op and reference may
    // differ by ~1e-7 and round to neighbours, so allow one unit in the last
    // place (bfloat16: 8 significant bits, 2^-7; float16: 11 bits, 2^-10).
    const double grad_rtol = dtype == torch::kBFloat16 ? 1.0 / 128 : 1.0 / 1024;
    for (const char* name : {"grpo", "dapo_sequence", "grpo_delta_clip_higher_beta", "dr_grpo_mu1_beta"}) {
      for (uint64_t seed = 0; seed < 3; ++seed) {
        SCOPED_TRACE(std::string(name) + (dtype == torch::kBFloat16 ? " bf16" : " f16") + " seed " +
                     std::to_string(seed));
        const LossConfig config = config_named(name);
        const LossInputs in = grpo_test::make_loss_inputs(6, 37, seed, dtype);
        const OpResult got = grpo_test::run_op(in, config);
        LossInputs up = in;
        up.logp = in.logp.to(torch::kFloat32);
        up.old_logp = in.old_logp.to(torch::kFloat32);
        up.ref_logp = in.ref_logp.to(torch::kFloat32);
        const RefLoss want = grpo_test::run_ref(up, config);
        EXPECT_EQ(got.loss.scalar_type(), torch::kFloat32);
        EXPECT_EQ(got.stats.scalar_type(), torch::kFloat32);
        EXPECT_TRUE(tensors_close(got.loss, want.loss, 1e-5, 1e-6)) << "loss";
        EXPECT_TRUE(tensors_close(got.stats, want.stats, 1e-5, 1e-6)) << "stats";
        ASSERT_TRUE(got.grad.defined());
        EXPECT_EQ(got.grad.scalar_type(), dtype);
        const double floor = std::max(1e-5 * grpo_test::max_abs(want.grad), 6e-8);  // 6e-8: float16's subnormal step
        EXPECT_TRUE(tensors_close(got.grad, want.grad, grad_rtol, floor)) << "grad";
        if (HasFailure()) return;
      }
    }
    // Mixed dtypes: old_logp and ref_logp in float32, advantages in float64.
    SCOPED_TRACE(std::string("mixed dtypes, logp ") + c10::toString(dtype));
    const LossConfig config = config_named("grpo_delta_clip_higher_beta");
    LossInputs in = grpo_test::make_loss_inputs(6, 37, 7, dtype);
    in.old_logp = in.old_logp.to(torch::kFloat32);
    in.ref_logp = in.ref_logp.to(torch::kFloat32);
    in.advantages = in.advantages.to(torch::kFloat64);
    const OpResult got = grpo_test::run_op(in, config);
    LossInputs up = in;
    up.logp = in.logp.to(torch::kFloat32);
    const RefLoss want = grpo_test::run_ref(up, config);
    EXPECT_TRUE(tensors_close(got.loss, want.loss, 1e-5, 1e-6)) << "loss";
    EXPECT_TRUE(tensors_close(got.stats, want.stats, 1e-5, 1e-6)) << "stats";
    EXPECT_TRUE(tensors_close(got.grad, want.grad, grad_rtol, std::max(1e-5 * grpo_test::max_abs(want.grad), 6e-8)))
        << "grad";
  }
}

// Transposed and step-2 views are read in place; stride-0 advantages and mask too.
TEST(GrpoLoss, NonContiguousInputs) {
  for (const torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32}) {
    for (const char* name : {"grpo", "grpo_sequence", "dapo_normalizer", "dr_grpo_mu1_beta"}) {
      SCOPED_TRACE(std::string(name) + (dtype == torch::kFloat64 ? " f64" : " f32"));
      const LossConfig config = config_named(name);
      const LossInputs in = grpo_test::make_loss_inputs(6, 37, 3, dtype);
      const int64_t N = 6, T = 37;
      const RefLoss want = grpo_test::run_ref(in, config);
      const grpo_test::Tolerance v = grpo_test::value_tolerance(dtype);
      const grpo_test::Tolerance g = grpo_test::grad_tolerance(dtype, want.grad);

      // logp: the transpose of a (T, N) leaf.
      const torch::Tensor base_t = in.logp.t().contiguous().requires_grad_(true);
      const torch::Tensor logp_t = base_t.t();
      // old_logp: every other column of (N, 2T); ref_logp: a transpose;
      // advantages: every other element of (2N); mask: a transposed float tensor.
      const torch::Tensor wide_old = torch::zeros({N, 2 * T}, in.old_logp.options());
      wide_old.slice(1, 0, 2 * T, 2).copy_(in.old_logp);
      const torch::Tensor old_strided = wide_old.slice(1, 0, 2 * T, 2);
      const torch::Tensor ref_t = in.ref_logp.t().contiguous().t();
      const torch::Tensor wide_adv = torch::zeros({2 * N}, in.advantages.options());
      wide_adv.slice(0, 0, 2 * N, 2).copy_(in.advantages);
      const torch::Tensor adv_strided = wide_adv.slice(0, 0, 2 * N, 2);
      const torch::Tensor mask_t = in.mask.to(torch::kFloat32).t().contiguous().t();
      ASSERT_FALSE(logp_t.is_contiguous());
      ASSERT_FALSE(old_strided.is_contiguous());
      ASSERT_FALSE(adv_strided.is_contiguous());

      const grpo_test::OpArgs a = grpo_test::op_args(in, config);
      grpo::GrpoLossResult r = grpo::grpo_loss(logp_t, a.old_logp.defined() ? old_strided : torch::Tensor(),
                                               a.ref_logp.defined() ? ref_t : torch::Tensor(), adv_strided, mask_t,
                                               config.options);
      r.loss.backward();
      EXPECT_TRUE(tensors_close(r.loss, want.loss, v.rtol, v.atol)) << "loss, transposed logp";
      EXPECT_TRUE(tensors_close(r.stats, want.stats, v.rtol, v.atol)) << "stats, transposed logp";
      EXPECT_TRUE(tensors_close(base_t.grad().t(), want.grad, g.rtol, g.atol)) << "grad, transposed logp";

      // logp: every other column of a (N, 2T) leaf; its other columns get no gradient.
      const torch::Tensor wide = torch::zeros({N, 2 * T}, in.logp.options());
      wide.slice(1, 0, 2 * T, 2).copy_(in.logp);
      wide.requires_grad_(true);
      r = grpo::grpo_loss(wide.slice(1, 0, 2 * T, 2), a.old_logp, a.ref_logp, in.advantages, in.mask,
                          config.options);
      r.loss.backward();
      EXPECT_TRUE(tensors_close(r.loss, want.loss, v.rtol, v.atol)) << "loss, step-2 logp";
      EXPECT_TRUE(tensors_close(wide.grad().slice(1, 0, 2 * T, 2), want.grad, g.rtol, g.atol)) << "grad, step-2";
      EXPECT_EQ(grpo_test::max_abs(wide.grad().slice(1, 1, 2 * T, 2)), 0.0) << "gradient leaked into skipped columns";
    }
  }
}

TEST(GrpoLoss, BroadcastAdvantagesAndMask) {
  const LossConfig config = config_named("grpo");
  const LossInputs in = grpo_test::make_loss_inputs(6, 37, 4);
  LossInputs b = in;
  b.advantages = torch::full({1}, 0.7, torch::kFloat64).expand({6});  // stride 0
  b.mask = (torch::arange(37) < 20).unsqueeze(0).expand({6, 37});     // row stride 0
  const OpResult got = grpo_test::run_op(b, config);
  LossInputs dense = b;
  dense.advantages = b.advantages.contiguous();
  dense.mask = b.mask.contiguous();
  const RefLoss want = grpo_test::run_ref(dense, config);
  expect_matches_reference(got, want, torch::kFloat64);
}

// Per-token advantages (N, T): against the reference for every loss type and
// token-level option, float32 and float64, with some advantages 0 (masked-out importance
// weights); an (N, T) tensor whose columns repeat the row's advantage gives
// the (N) result bit for bit.
TEST(GrpoLoss, PerTokenAdvantages) {
  for (const LossConfig& config : grpo_test::loss_configs()) {
    if (config.options.importance_sampling == grpo::ImportanceSampling::Sequence) continue;  // refused: OptionErrors
    for (const torch::ScalarType dtype : {torch::kFloat32, torch::kFloat64}) {
      SCOPED_TRACE(config.name + (dtype == torch::kFloat32 ? " float32" : " float64"));
      const LossInputs in = grpo_test::make_loss_inputs(6, 37, 11, dtype);
      LossInputs weighted = in;
      torch::Tensor w = torch::rand({6, 37}, torch::kFloat64) * 3;
      w.masked_fill_(torch::rand({6, 37}, torch::kFloat64) < 0.2, 0.0);
      weighted.advantages = (in.advantages.to(torch::kFloat64).unsqueeze(1) * w).to(in.advantages.scalar_type());
      expect_matches_reference(grpo_test::run_op(weighted, config), grpo_test::run_ref(weighted, config), dtype);

      LossInputs repeated = in;
      repeated.advantages = in.advantages.unsqueeze(1).expand({6, 37}).contiguous();
      const OpResult rows = grpo_test::run_op(in, config), tokens = grpo_test::run_op(repeated, config);
      EXPECT_TRUE(torch::equal(rows.loss, tokens.loss));
      EXPECT_TRUE(torch::equal(rows.grad, tokens.grad));
      EXPECT_TRUE(torch::equal(rows.stats, tokens.stats));
    }
  }
}

// bool, integer and floating masks mean the same.
TEST(GrpoLoss, MaskDtypes) {
  const LossConfig config = config_named("grpo_sequence");
  const LossInputs in = grpo_test::make_loss_inputs(6, 37, 2);
  const RefLoss want = grpo_test::run_ref(in, config);
  for (const torch::ScalarType mdt :
       {torch::kBool, torch::kByte, torch::kInt, torch::kLong, torch::kFloat, torch::kDouble}) {
    SCOPED_TRACE(c10::toString(mdt));
    LossInputs m = in;
    m.mask = in.mask.to(mdt);
    expect_matches_reference(grpo_test::run_op(m, config), want, torch::kFloat64);
  }
}

// ---------------------------------------------------------------- masking

// Padding positions may hold -inf/NaN (log-probs of pad tokens): they are
// skipped, not multiplied by 0, and get gradient 0.
TEST(GrpoLoss, MaskedPositionsAreSkipped) {
  for (const torch::ScalarType dtype : {torch::kFloat64, torch::kFloat32}) {
    for (const char* name : {"grpo", "grpo_sequence", "bnpo", "dapo_sequence", "dr_grpo_mu1_beta"}) {
      SCOPED_TRACE(name);
      const LossConfig config = config_named(name);
      const LossInputs in = grpo_test::make_loss_inputs(6, 37, 1, dtype);
      const RefLoss want = grpo_test::run_ref(in, config);  // masked positions hold finite values
      const torch::Tensor pad = ~in.mask;
      const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
      LossInputs poisoned = in;
      const torch::Tensor checker = (torch::arange(37).unsqueeze(0) + torch::arange(6).unsqueeze(1)).remainder(2) == 0;
      poisoned.logp = torch::where(pad, torch::where(checker, torch::full_like(in.logp, -inf),
                                                     torch::full_like(in.logp, nan)),
                                   in.logp);
      poisoned.old_logp = torch::where(pad, torch::full_like(in.old_logp, -inf), in.old_logp);
      poisoned.ref_logp = torch::where(pad, torch::full_like(in.ref_logp, nan), in.ref_logp);
      const OpResult got = grpo_test::run_op(poisoned, config);  // check_inputs is on: must not throw
      expect_matches_reference(got, want, dtype);
      EXPECT_EQ(grpo_test::max_abs(got.grad.masked_select(pad)), 0.0);
    }
  }
}

// No tokens at all: loss 0, gradient 0, every statistic 0, nothing NaN.
TEST(GrpoLoss, AllMaskedBatch) {
  for (const LossConfig& config : grpo_test::loss_configs()) {
    SCOPED_TRACE(config.name);
    LossInputs in = grpo_test::make_loss_inputs(6, 37, 0);
    in.mask = torch::zeros_like(in.mask);
    const OpResult got = grpo_test::run_op(in, config);
    EXPECT_EQ(got.loss.item<double>(), 0.0);
    EXPECT_EQ(grpo_test::max_abs(got.stats), 0.0);
    ASSERT_TRUE(got.grad.defined());
    EXPECT_EQ(grpo_test::max_abs(got.grad), 0.0);
    EXPECT_FALSE(got.grad.isnan().any().item<bool>());
  }
}

// N = 0 and T = 0: loss 0 and an empty (or zero) gradient of logp's shape.
TEST(GrpoLoss, EmptyInputs) {
  for (const Shape shape : {Shape{0, 7}, Shape{4, 0}}) {
    for (const char* name : {"grpo", "bnpo", "dapo_sequence", "dr_grpo"}) {
      SCOPED_TRACE(std::string(name) + " N=" + std::to_string(shape.N) + " T=" + std::to_string(shape.T));
      const LossConfig config = config_named(name);
      const LossInputs in = grpo_test::make_loss_inputs(shape.N, shape.T, 0);
      const OpResult got = grpo_test::run_op(in, config);
      expect_matches_reference(got, grpo_test::run_ref(in, config), torch::kFloat64);
      EXPECT_EQ(got.loss.item<double>(), 0.0);
      EXPECT_EQ(got.grad.sizes(), in.logp.sizes());
    }
  }
}

// ---------------------------------------------------------------- micro-batches

// Rows [0, 5), [5, 8), [8, 12) of a batch of 12.
const std::vector<std::pair<int64_t, int64_t>> kMicroBatches{{0, 5}, {5, 8}, {8, 12}};

LossInputs rows(const LossInputs& in, int64_t begin, int64_t end) {
  return {in.logp.slice(0, begin, end), in.old_logp.slice(0, begin, end), in.ref_logp.slice(0, begin, end),
          in.advantages.slice(0, begin, end), in.mask.slice(0, begin, end)};
}

// The sum of the micro-batches' losses and their concatenated gradients.
OpResult accumulate(const LossInputs& in, const LossConfig& config) {
  torch::Tensor loss = torch::zeros({}, torch::kFloat64);
  std::vector<torch::Tensor> grads;
  for (const auto& [begin, end] : kMicroBatches) {
    const OpResult part = grpo_test::run_op(rows(in, begin, end), config);
    loss = loss + part.loss;
    grads.push_back(part.grad);
  }
  return {loss, torch::Tensor(), torch::cat(grads)};
}

// With the whole batch's normalizer (DAPO: its token count; GRPO and Dr. GRPO:
// its number of sequences) gradient accumulation gives the full batch's loss
// and gradient exactly.
TEST(GrpoLoss, MicroBatchesSumToFullBatch) {
  const LossInputs in = grpo_test::make_loss_inputs(12, 23, 5);
  const double total_tokens = in.mask.sum().item<double>();
  for (const char* name : {"dapo_clip_higher_beta0", "dapo_sequence", "grpo", "grpo_sequence_mu1", "dr_grpo",
                           "dr_grpo_mu1_beta"}) {
    SCOPED_TRACE(name);
    const LossConfig plain = config_named(name);
    LossConfig normalized = plain;
    normalized.options.normalizer = plain.options.loss_type == LossType::DAPO ? total_tokens : 12.0;
    const OpResult full = grpo_test::run_op(in, plain);
    const OpResult full_normalized = grpo_test::run_op(in, normalized);
    EXPECT_TRUE(tensors_close(full_normalized.loss, full.loss, 1e-12, 1e-14)) << "the batch's own normalizer";
    const OpResult micro = accumulate(in, normalized);
    EXPECT_TRUE(tensors_close(micro.loss, full.loss, 1e-12, 1e-14)) << "loss";
    EXPECT_TRUE(tensors_close(micro.grad, full.grad, 1e-12, 1e-14 * grpo_test::max_abs(full.grad))) << "grad";
  }
}

// Without the normalizer each micro-batch divides by its own count, and the
// sum is not the full batch's loss (BNPO by definition): the test above would
// fail for an op that ignored the normalizer.
TEST(GrpoLoss, MicroBatchesWithoutNormalizerDoNotSum) {
  const LossInputs in = grpo_test::make_loss_inputs(12, 23, 5);
  for (const char* name : {"bnpo", "dapo_clip_higher_beta0", "grpo", "dr_grpo"}) {
    SCOPED_TRACE(name);
    const LossConfig config = config_named(name);
    const double full = grpo_test::run_op(in, config).loss.item<double>();
    const double summed = accumulate(in, config).loss.item<double>();
    EXPECT_GT(std::abs(summed - full), 1e-3 * std::abs(full)) << "full " << full << ", summed " << summed;
  }
}

// loss(normalizer = D) · D is the un-normalized sum, whatever D is.
TEST(GrpoLoss, NormalizerScalesTheLoss) {
  const LossInputs in = grpo_test::make_loss_inputs(6, 37, 2);
  const double tokens = in.mask.sum().item<double>();
  struct Case {
    const char* name;
    double own_denominator;  // what the loss divides by without a normalizer
  };
  for (const Case& c : {Case{"grpo", 6.0}, Case{"dapo_sequence", tokens}, Case{"dr_grpo", 6.0}}) {
    SCOPED_TRACE(c.name);
    LossConfig config = config_named(c.name);
    const OpResult own = grpo_test::run_op(in, config);
    config.options.normalizer = 123.0;
    const OpResult scaled = grpo_test::run_op(in, config);
    EXPECT_NEAR(scaled.loss.item<double>() * 123.0, own.loss.item<double>() * c.own_denominator, 1e-12);
    EXPECT_TRUE(tensors_close(scaled.grad * 123.0, own.grad * c.own_denominator, 1e-12, 1e-15));
  }
}

// ---------------------------------------------------------------- autograd

// backward multiplies the saved gradient by the incoming one, and the chain
// rule continues into whatever produced logp.
TEST(GrpoLoss, BackwardUsesTheIncomingGradient) {
  const LossConfig config = config_named("grpo_delta_clip_higher_beta");
  const LossInputs in = grpo_test::make_loss_inputs(6, 37, 0);
  const RefLoss want = grpo_test::run_ref(in, config);
  const grpo_test::OpArgs a = grpo_test::op_args(in, config);

  const torch::Tensor x = (in.logp / 3.0).detach().requires_grad_(true);
  const torch::Tensor logp = x * 3.0;  // not a leaf
  const grpo::GrpoLossResult r = grpo::grpo_loss(logp, a.old_logp, a.ref_logp, in.advantages, in.mask, config.options);
  (r.loss * 2.5).backward();
  EXPECT_TRUE(tensors_close(x.grad(), want.grad * 7.5, 1e-10, 1e-12 * grpo_test::max_abs(want.grad)));
  EXPECT_FALSE(r.stats.requires_grad());
}

TEST(GrpoLoss, NoGradGuardAndInferenceMode) {
  const LossConfig config = config_named("dapo_sequence");
  const LossInputs in = grpo_test::make_loss_inputs(6, 37, 0);
  const RefLoss want = grpo_test::run_ref(in, config);
  const grpo_test::OpArgs a = grpo_test::op_args(in, config);
  const torch::Tensor logp = in.logp.clone().requires_grad_(true);
  {
    torch::NoGradGuard no_grad;
    const grpo::GrpoLossResult r = grpo::grpo_loss(logp, a.old_logp, a.ref_logp, in.advantages, in.mask, config.options);
    EXPECT_FALSE(r.loss.requires_grad());
    EXPECT_TRUE(tensors_close(r.loss, want.loss, 1e-10, 1e-12));
    EXPECT_TRUE(tensors_close(r.stats, want.stats, 1e-10, 1e-12));
  }
  {
    c10::InferenceMode inference;
    const grpo::GrpoLossResult r = grpo::grpo_loss(logp, a.old_logp, a.ref_logp, in.advantages, in.mask, config.options);
    EXPECT_FALSE(r.loss.requires_grad());
    EXPECT_TRUE(tensors_close(r.loss, want.loss, 1e-10, 1e-12));
    // Inputs made inside inference mode work too.
    const torch::Tensor inner = in.logp.clone();
    const grpo::GrpoLossResult r2 = grpo::grpo_loss(inner, a.old_logp, a.ref_logp, in.advantages, in.mask, config.options);
    EXPECT_TRUE(tensors_close(r2.loss, want.loss, 1e-10, 1e-12));
  }
  // logp that does not require grad: a plain forward.
  const grpo::GrpoLossResult r = grpo::grpo_loss(in.logp, a.old_logp, a.ref_logp, in.advantages, in.mask, config.options);
  EXPECT_FALSE(r.loss.requires_grad());
  EXPECT_TRUE(tensors_close(r.loss, want.loss, 1e-10, 1e-12));
}

// Same inputs, same numbers, bit for bit (CPU).
TEST(GrpoLoss, Deterministic) {
  const LossConfig config = config_named("grpo");
  const LossInputs in = grpo_test::make_loss_inputs(64, 129, 3, torch::kFloat32);
  const OpResult a = grpo_test::run_op(in, config), b = grpo_test::run_op(in, config);
  EXPECT_TRUE(torch::equal(a.loss, b.loss));
  EXPECT_TRUE(torch::equal(a.stats, b.stats));
  EXPECT_TRUE(torch::equal(a.grad, b.grad));
}

TEST(GrpoLoss, RegisteredWithDispatcher) {
  EXPECT_NO_THROW(c10::Dispatcher::singleton().findSchemaOrThrow("grpo::grpo_loss", ""));
  EXPECT_NO_THROW(c10::Dispatcher::singleton().findSchemaOrThrow("grpo::group_advantages", ""));
}

TEST(GrpoLoss, NamesRoundTrip) {
  for (const LossType t : {LossType::GRPO, LossType::BNPO, LossType::DrGRPO, LossType::DAPO})
    EXPECT_EQ(grpo::parse_loss_type(grpo::to_string(t)), t);
  EXPECT_EQ(grpo::to_string(LossType::DrGRPO), "dr_grpo");
  EXPECT_EQ(grpo::parse_loss_type("dapo"), LossType::DAPO);
  for (const auto l : {grpo::ImportanceSampling::Token, grpo::ImportanceSampling::Sequence})
    EXPECT_EQ(grpo::parse_importance_sampling(grpo::to_string(l)), l);
  EXPECT_EQ(grpo::to_string(grpo::ImportanceSampling::Sequence), "sequence");
  grpo_test::expect_error_mentions([] { grpo::parse_loss_type("ppo"); }, {"ppo", "grpo", "bnpo", "dr_grpo", "dapo"},
                                   "unknown loss type");
  grpo_test::expect_error_mentions([] { grpo::parse_importance_sampling("tok"); }, {"tok", "token", "sequence"},
                                   "unknown importance sampling level");
}

// ---------------------------------------------------------------- bad input

struct Call {
  torch::Tensor logp, old_logp, ref_logp, advantages, mask;
  grpo::GrpoLossOptions options;
  grpo::GrpoLossResult operator()() const { return grpo::grpo_loss(logp, old_logp, ref_logp, advantages, mask, options); }
};

Call valid_call() {
  const LossInputs in = grpo_test::make_loss_inputs(6, 8, 0);
  return {in.logp, in.old_logp, in.ref_logp, in.advantages, in.mask, grpo::GrpoLossOptions{}};
}

// (i, t) of the first completion token.
std::pair<int64_t, int64_t> first_unmasked(const Call& c) {
  const torch::Tensor at = c.mask.nonzero()[0];
  return {at[0].item<int64_t>(), at[1].item<int64_t>()};
}

void expect_throws(const Call& call, std::initializer_list<std::string> needles, const std::string& what) {
  grpo_test::expect_error_mentions([&call] { call(); }, needles, what);
}

TEST(GrpoLoss, ValidCallDoesNotThrow) { EXPECT_NO_THROW(valid_call()()); }

TEST(GrpoLoss, ShapeErrors) {
  Call c = valid_call();
  c.logp = c.logp.reshape({-1});
  expect_throws(c, {"logp"}, "1-D logp");
  c = valid_call();
  c.logp = c.logp.unsqueeze(0);
  expect_throws(c, {"logp"}, "3-D logp");
  c = valid_call();
  c.old_logp = c.old_logp.slice(1, 0, 7);
  expect_throws(c, {"old_logp"}, "old_logp (6, 7)");
  c = valid_call();
  c.ref_logp = c.ref_logp.slice(0, 0, 5);
  expect_throws(c, {"ref_logp"}, "ref_logp (5, 8)");
  c = valid_call();
  c.mask = c.mask.slice(1, 0, 7);
  expect_throws(c, {"mask"}, "mask (6, 7)");
  c = valid_call();
  c.advantages = c.advantages.unsqueeze(1);
  expect_throws(c, {"advantages"}, "advantages (6, 1)");
  c = valid_call();
  c.advantages = c.advantages.slice(0, 0, 5);
  expect_throws(c, {"advantages"}, "advantages (5)");
  c = valid_call();
  c.advantages = c.advantages.unsqueeze(1).expand({6, 7}).contiguous();
  expect_throws(c, {"advantages"}, "advantages (6, 7)");
}

TEST(GrpoLoss, OptionErrors) {
  Call c = valid_call();
  c.ref_logp = torch::Tensor();
  expect_throws(c, {"ref_logp"}, "beta > 0 without ref_logp");
  c.options.beta = 0.0;
  EXPECT_NO_THROW(c()) << "beta = 0 needs no ref_logp";

  c = valid_call();
  c.options.loss_type = LossType::DrGRPO;
  c.options.max_completion_length = 0;
  expect_throws(c, {"max_completion_length"}, "dr_grpo without max_completion_length");
  c.options.max_completion_length = -5;
  expect_throws(c, {"max_completion_length"}, "dr_grpo with max_completion_length < 0");

  c = valid_call();
  c.options.loss_type = LossType::BNPO;
  c.options.normalizer = 10.0;
  expect_throws(c, {"normalizer"}, "bnpo with a normalizer");

  c = valid_call();
  c.advantages = c.advantages.unsqueeze(1).expand({6, 8}).contiguous();
  c.options.importance_sampling = grpo::ImportanceSampling::Sequence;
  expect_throws(c, {"per-token advantages", "token"}, "per-token advantages at the sequence level");

  c = valid_call();
  c.options.normalizer = -1.0;
  expect_throws(c, {"normalizer"}, "negative normalizer");

  c = valid_call();
  c.options.beta = -0.04;
  expect_throws(c, {"beta"}, "negative beta");

  c = valid_call();
  c.options.delta = 1.1;  // not above 1 + epsilon_high
  expect_throws(c, {"delta"}, "delta inside the clip range");

  c = valid_call();
  c.options.epsilon_low = -0.1;
  expect_throws(c, {"epsilon_low"}, "negative epsilon_low");
  c = valid_call();
  c.options.epsilon_high = -0.1;
  expect_throws(c, {"epsilon_high"}, "negative epsilon_high");
}

TEST(GrpoLoss, DtypeErrors) {
  Call c = valid_call();
  c.logp = torch::zeros({6, 8}, torch::kLong);
  expect_throws(c, {"logp"}, "int64 logp");
  c.logp = torch::zeros({6, 8}, torch::kInt);
  expect_throws(c, {"logp"}, "int32 logp");
}

TEST(GrpoLoss, ValueErrors) {
  Call c = valid_call();
  c.mask = c.mask.to(torch::kFloat64);
  c.mask[0][0] = 0.5;
  expect_throws(c, {"mask"}, "mask value 0.5");
  c.mask[0][0] = 2.0;
  expect_throws(c, {"mask"}, "mask value 2");

  c = valid_call();
  c.advantages = c.advantages.clone();
  c.advantages[2] = std::numeric_limits<double>::quiet_NaN();
  expect_throws(c, {"advantages"}, "NaN advantage");
  c.advantages[2] = std::numeric_limits<double>::infinity();
  expect_throws(c, {"advantages"}, "Inf advantage");

  c = valid_call();
  c.logp = c.logp.clone();
  const auto [i, t] = first_unmasked(c);
  c.logp[i][t] = std::numeric_limits<double>::quiet_NaN();
  expect_throws(c, {"logp"}, "NaN logp at an unmasked position");
}

// check_inputs = false: no error, but the bad values are counted.
TEST(GrpoLoss, UncheckedValuesAreCounted) {
  std::vector<std::pair<std::string, Call>> bad;
  Call c = valid_call();
  c.mask = c.mask.to(torch::kFloat64);
  c.mask[0][0] = 0.5;
  bad.emplace_back("mask 0.5", c);
  c = valid_call();
  c.advantages = c.advantages.clone();
  c.advantages[2] = std::numeric_limits<double>::quiet_NaN();
  bad.emplace_back("NaN advantage", c);
  c = valid_call();
  c.logp = c.logp.clone();
  const auto [i, t] = first_unmasked(c);
  c.logp[i][t] = -std::numeric_limits<double>::infinity();
  bad.emplace_back("-inf logp at an unmasked position", c);
  for (auto& [what, call] : bad) {
    SCOPED_TRACE(what);
    call.options.check_inputs = false;
    grpo::GrpoLossResult r;
    ASSERT_NO_THROW(r = call());
    EXPECT_GT(grpo::read_stats(r.stats).invalid_inputs, 0.0);
  }
  Call good = valid_call();
  good.options.check_inputs = false;
  EXPECT_EQ(grpo::read_stats(good().stats).invalid_inputs, 0.0);
}

}  // namespace

// ---------------------------------------------------------------- normalizer and defaults

TEST(LossNormalizer, EachLossTypesDenominator) {
  const torch::Tensor mask = torch::tensor({{1, 1, 0}, {1, 0, 0}, {0, 0, 0}, {1, 1, 1}}, torch::kLong);
  EXPECT_EQ(grpo::loss_normalizer(grpo::LossType::GRPO, mask), 4.0);    // sequences
  EXPECT_EQ(grpo::loss_normalizer(grpo::LossType::DrGRPO, mask), 4.0);  // sequences (× L inside the op)
  EXPECT_EQ(grpo::loss_normalizer(grpo::LossType::DAPO, mask), 6.0);    // tokens
  EXPECT_EQ(grpo::loss_normalizer(grpo::LossType::BNPO, mask), 0.0);    // each call its own
  EXPECT_EQ(grpo::loss_normalizer(grpo::LossType::DAPO, torch::zeros({2, 3})), 1.0);  // never 0 tokens
  grpo_test::expect_error_mentions([] { grpo::loss_normalizer(grpo::LossType::DAPO, torch::ones({3})); },
                                   {"loss_normalizer: mask must be (n, T)"}, "1-D mask");
}

// With loss_normalizer over the whole update, micro-batches add up to the
// update's loss and gradient, for every type that takes a normalizer.
TEST(LossNormalizer, MicroBatchesAddUpToTheUpdate) {
  for (grpo::LossType type : {grpo::LossType::GRPO, grpo::LossType::DrGRPO, grpo::LossType::DAPO}) {
    SCOPED_TRACE(grpo::to_string(type));
    const LossInputs in = grpo_test::make_loss_inputs(8, 12, 5);
    grpo::GrpoLossOptions o = grpo_test::make_options(type);
    o.normalizer = grpo::loss_normalizer(type, in.mask);
    torch::Tensor whole = in.logp.clone().requires_grad_(true);
    const torch::Tensor loss = grpo::grpo_loss(whole, in.old_logp, in.ref_logp, in.advantages, in.mask, o).loss;
    loss.backward();
    torch::Tensor parts = in.logp.clone().requires_grad_(true);
    double sum = 0;
    for (int64_t begin : {0, 3}) {
      const int64_t n = begin == 0 ? 3 : 5;
      auto rows = [&](const torch::Tensor& t) { return t.narrow(0, begin, n); };
      const torch::Tensor l =
          grpo::grpo_loss(rows(parts), rows(in.old_logp), rows(in.ref_logp), rows(in.advantages), rows(in.mask), o).loss;
      l.backward();
      sum += l.item<double>();
    }
    EXPECT_NEAR(sum, loss.item<double>(), 1e-12);
    EXPECT_TRUE(grpo_test::tensors_close(parts.grad(), whole.grad(), 1e-10, 1e-14));
  }
}

// The Python op's defaults are the C++ option structs' (one place for each).
TEST(OpSchemas, DefaultsAreTheOptionStructs) {
  auto defaults = [](const char* op) {
    std::map<std::string, c10::IValue> out;
    for (const auto& a : c10::Dispatcher::singleton().findSchemaOrThrow(op, "").schema().arguments()) {
      if (a.default_value()) out[a.name()] = *a.default_value();
    }
    return out;
  };
  const grpo::GrpoLossOptions d;
  auto loss = defaults("grpo::grpo_loss");
  EXPECT_EQ(loss.at("epsilon_low").toDouble(), d.epsilon_low);
  EXPECT_EQ(loss.at("epsilon_high").toDouble(), d.epsilon_high);
  EXPECT_TRUE(loss.at("delta").isNone());
  EXPECT_EQ(loss.at("beta").toDouble(), d.beta);
  EXPECT_EQ(loss.at("loss_type").toStringRef(), grpo::to_string(d.loss_type));
  EXPECT_EQ(loss.at("max_completion_length").toInt(), d.max_completion_length);
  EXPECT_EQ(loss.at("normalizer").toDouble(), d.normalizer);
  EXPECT_EQ(loss.at("importance_sampling").toStringRef(), grpo::to_string(d.importance_sampling));
  EXPECT_EQ(loss.at("log_ratio_clamp").toDouble(), d.log_ratio_clamp);
  EXPECT_EQ(loss.at("kl_clamp").toDouble(), d.kl_clamp);
  EXPECT_EQ(loss.at("check_inputs").toBool(), d.check_inputs);
  const grpo::GroupAdvantageOptions a;
  auto adv = defaults("grpo::group_advantages");
  EXPECT_EQ(adv.at("eps").toDouble(), a.eps);
  EXPECT_EQ(adv.at("scale").toStringRef(), grpo::to_string(a.scale));
}
