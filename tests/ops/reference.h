// Plain-LibTorch references for the grpo ops, written the obvious way from the
// math in kernels/grpo_loss_math.cuh and kernels/group_advantages_math.cuh (autograd does the gradients), plus the helpers the suites
// share: random loss inputs, option sets, tensor comparison, error checks.
// Shapes: P groups of G completions, N = P·G sequences, T completion tokens.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <grpo/ops/group_advantages.h>
#include <grpo/ops/grpo_loss.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace grpo_test {

// ---------------------------------------------------------------- comparison

inline double max_abs(const torch::Tensor& t) {
  return t.numel() == 0 ? 0.0 : t.detach().abs().max().to(torch::kCPU, torch::kFloat64).item<double>();
}

// Element-wise |actual - expected| <= atol + rtol·|expected| (in float64, on the
// CPU). NaN or Inf anywhere is a mismatch: no test here expects either.
inline ::testing::AssertionResult tensors_close(const torch::Tensor& actual, const torch::Tensor& expected,
                                                double rtol, double atol) {
  if (!actual.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor (actual " << actual.defined() << ", expected "
                                         << expected.defined() << ")";
  if (actual.sizes() != expected.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " != expected " << expected.sizes();
  const torch::Tensor a = actual.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const torch::Tensor e = expected.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const torch::Tensor ok = (a - e).abs() <= atol + rtol * e.abs();  // NaN compares false
  const int64_t bad = a.numel() - ok.sum().item<int64_t>();
  if (bad == 0) return ::testing::AssertionSuccess();
  const int64_t first = (~ok).nonzero()[0][0].item<int64_t>();
  const torch::Tensor diff = (a - e).abs().nan_to_num(INFINITY);
  const int64_t worst = diff.argmax().item<int64_t>();
  std::ostringstream os;
  os.precision(17);
  os << bad << " of " << a.numel() << " elements differ (rtol " << rtol << ", atol " << atol << "); first at flat "
     << first << ": " << a[first].item<double>() << " vs expected " << e[first].item<double>() << "; worst at flat "
     << worst << ": " << a[worst].item<double>() << " vs expected " << e[worst].item<double>();
  return ::testing::AssertionFailure() << os.str();
}

struct Tolerance {
  double rtol;
  double atol;
};

// Loss, statistics and advantages: float64 near-exact, float32 to 1e-5 relative.
inline Tolerance value_tolerance(torch::ScalarType compute) {
  return compute == torch::kFloat64 ? Tolerance{1e-10, 1e-12} : Tolerance{1e-5, 1e-6};
}
// Gradients are small (weights 1/(tokens·N)), so their absolute floor scales
// with the tensor: the same relative accuracy, measured against its largest entry.
inline Tolerance grad_tolerance(torch::ScalarType compute, const torch::Tensor& expected) {
  const double scale = max_abs(expected);
  return compute == torch::kFloat64 ? Tolerance{1e-10, 1e-12 * scale} : Tolerance{1e-5, 1e-5 * scale};
}

inline torch::ScalarType compute_dtype(torch::ScalarType logp_dtype) {
  return logp_dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// Runs `f`, expects a c10::Error whose message contains every one of `needles`.
inline void expect_error_mentions(const std::function<void()>& f, std::initializer_list<std::string> needles,
                                  const std::string& what) {
  try {
    f();
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    for (const std::string& needle : needles)
      EXPECT_NE(message.find(needle), std::string::npos)
          << what << ": the error does not mention \"" << needle << "\": " << message;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": threw a non-c10::Error: " << e.what();
    return;
  }
  ADD_FAILURE() << what << ": no error was raised";
}

// ---------------------------------------------------------------- group advantages

struct RefAdvantages {
  torch::Tensor advantages;  // (N)
  torch::Tensor group_mean;  // (P)
  torch::Tensor group_std;   // (P)
};

// Bessel-corrected std along dim 1 of (rows, n); 0 when n = 1.
inline torch::Tensor bessel_std_rows(const torch::Tensor& x) {
  const int64_t n = x.size(1);
  if (n < 2) return torch::zeros({x.size(0)}, x.options());
  const torch::Tensor centred = x - x.mean(1, /*keepdim=*/true);
  return (centred * centred).sum(1).div(static_cast<double>(n - 1)).sqrt();
}

// Computed in float64 and rounded to the op's output dtype (float64 rewards ->
// float64, anything else -> float32).
inline RefAdvantages ref_group_advantages(const torch::Tensor& rewards, int64_t group_size,
                                          const grpo::GroupAdvantageOptions& options = {}) {
  const torch::ScalarType out = rewards.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  const torch::Tensor r = rewards.detach().to(torch::kCPU, torch::kFloat64);
  const int64_t N = r.size(0), G = group_size, P = N / G;
  const torch::Tensor groups = r.reshape({P, G});
  const torch::Tensor mean = groups.mean(1);
  // A group of equal rewards has std 0 and advantages exactly 0, whatever the
  // rounding of its mean.
  const torch::Tensor equal = groups.amax(1) == groups.amin(1);
  const torch::Tensor std = torch::where(equal, torch::zeros_like(mean), bessel_std_rows(groups));
  const torch::Tensor centred = groups - mean.unsqueeze(1);
  torch::Tensor advantages;
  switch (options.scale) {
    case grpo::AdvantageScale::Group:
      advantages = centred / (std.unsqueeze(1) + options.eps);
      break;
    case grpo::AdvantageScale::Batch: {
      const double batch_std = N > 1 ? bessel_std_rows(r.reshape({1, N})).item<double>() : 0.0;
      advantages = centred / (batch_std + options.eps);
      break;
    }
    case grpo::AdvantageScale::None:
      advantages = centred;
      break;
  }
  advantages = torch::where(equal.unsqueeze(1), torch::zeros_like(advantages), advantages);
  return {advantages.reshape({N}).to(out), mean.to(out), std.to(out)};
}

// ---------------------------------------------------------------- GRPO loss

struct RefLoss {
  torch::Tensor loss;   // () in the compute dtype (float64 for float64 logp, else float32)
  torch::Tensor stats;  // (LossStat::Count), indexed by grpo::LossStat
  torch::Tensor grad;   // (N, T) dloss/dlogp, compute dtype
};

inline int64_t stat_index(grpo::LossStat s) { return static_cast<int64_t>(s); }

// The loss exactly as the papers and TRL write it, on tensors.
// `old_logp` undefined: old = logp.detach() (μ = 1). `ref_logp` is read only
// when beta != 0. Masked positions must hold finite numbers here.
inline RefLoss ref_grpo_loss(const torch::Tensor& logp_in, const torch::Tensor& old_in, const torch::Tensor& ref_in,
                             const torch::Tensor& adv_in, const torch::Tensor& mask_in,
                             const grpo::GrpoLossOptions& o) {
  torch::AutoGradMode enable_grad(true);
  const torch::ScalarType ct = compute_dtype(logp_in.scalar_type());
  const auto cpu = [ct](const torch::Tensor& t) { return t.detach().to(torch::kCPU, ct).contiguous(); };
  const torch::Tensor logp = cpu(logp_in).clone().requires_grad_(true);
  const torch::Tensor old = old_in.defined() ? cpu(old_in) : logp.detach();
  const torch::Tensor m = cpu(mask_in);
  // (N, 1) broadcast over T, or (N, T) per token.
  const torch::Tensor A = adv_in.dim() == 1 ? cpu(adv_in).unsqueeze(1) : cpu(adv_in);
  const int64_t N = logp.size(0);

  torch::Tensor log_ratio = logp - old;
  if (o.importance_sampling == grpo::ImportanceSampling::Sequence)
    log_ratio = ((log_ratio * m).sum(1, /*keepdim=*/true) / m.sum(1, /*keepdim=*/true).clamp_min(1.0))
                    .expand_as(logp);
  log_ratio = torch::clamp(log_ratio, -o.log_ratio_clamp, o.log_ratio_clamp);
  const torch::Tensor ratio = torch::exp(log_ratio);
  const torch::Tensor coef2 = torch::clamp(ratio, 1.0 - o.epsilon_low, 1.0 + o.epsilon_high);
  const torch::Tensor coef1 = o.delta.has_value() ? torch::clamp_max(ratio, *o.delta) : ratio;
  const torch::Tensor objective = torch::minimum(coef1 * A, coef2 * A);

  torch::Tensor per_token = -objective;
  torch::Tensor kl = torch::zeros_like(logp).detach();
  if (o.beta != 0.0) {
    const torch::Tensor x = torch::clamp(cpu(ref_in) - logp, -o.log_ratio_clamp, o.log_ratio_clamp);
    kl = torch::clamp(torch::exp(x) - x - 1.0, -o.kl_clamp, o.kl_clamp);
    per_token = per_token + o.beta * kl;
  }

  const torch::Tensor tokens = m.sum();
  const torch::Tensor masked = per_token * m;
  // An empty batch (N = 0) has loss 0 rather than 0/0.
  const double sequences = o.normalizer > 0 ? o.normalizer : static_cast<double>(std::max<int64_t>(N, 1));
  torch::Tensor loss;
  switch (o.loss_type) {
    case grpo::LossType::GRPO:
      loss = (masked.sum(1) / m.sum(1).clamp_min(1.0)).sum() / sequences;
      break;
    case grpo::LossType::BNPO:
      loss = masked.sum() / tokens.clamp_min(1.0);
      break;
    case grpo::LossType::DAPO:
      loss = o.normalizer > 0 ? masked.sum() / o.normalizer : masked.sum() / tokens.clamp_min(1.0);
      break;
    case grpo::LossType::DrGRPO:
      loss = masked.sum() / (sequences * static_cast<double>(o.max_completion_length));
      break;
  }
  loss.backward();
  const torch::Tensor grad = logp.grad().defined() ? logp.grad() : torch::zeros_like(logp);

  torch::NoGradGuard no_grad;
  const torch::Tensor per = tokens.item<double>() > 0 ? 1.0 / tokens : torch::zeros_like(tokens);
  const torch::Tensor r = ratio.detach();
  const torch::Tensor low = ((r < 1.0 - o.epsilon_low) & (A < 0)).to(ct) * m;
  const torch::Tensor high = ((r > 1.0 + o.epsilon_high) & (A > 0)).to(ct) * m;
  const torch::Tensor stats = torch::stack({
      (kl.detach() * m).sum() * per,  // KlMean
      low.sum() * per,                // ClipLowFrac
      high.sum() * per,               // ClipHighFrac
      (low + high).sum() * per,       // ClipRegionFrac (the two never overlap: A < 0 vs A > 0)
      (r * m).sum() * per,            // RatioMean
      tokens,                         // TokenCount
      torch::zeros_like(tokens),      // InvalidInputs
  });
  return {loss.detach(), stats, grad};
}

// ---------------------------------------------------------------- random inputs

struct LossInputs {
  torch::Tensor logp;        // (N, T) in [-4.05, -0.05]
  torch::Tensor old_logp;    // (N, T) logp - noise·randn
  torch::Tensor ref_logp;    // (N, T) logp + 0.5·randn
  torch::Tensor advantages;  // (N) randn, row 0 exactly 0 (a group of equal rewards)
  torch::Tensor mask;        // (N, T) bool: a prefix of random length with ~10% holes; row N/2 empty when N >= 3
};

// Random inputs drawn in float64 from `seed`, then cast: logp, old_logp and
// ref_logp to `dtype`, advantages to `dtype` (float32 for float16/bfloat16).
// noise ~0.3 puts a good share of ratios outside [0.8, 1.2], so clipping happens.
// Moves values of x within `margin` of any of `points` by 2·margin.
inline torch::Tensor keep_off(torch::Tensor x, const std::vector<double>& points, double margin) {
  for (const double p : points) x = torch::where((x - p).abs() < margin, x + 2.0 * margin, x);
  return x;
}

// Where the loss's branches switch for the options in loss_configs(): the
// log-ratios log(1 ± ε), log(δ), and the x = ref - logp where the k3 KL crosses
// the tight kl_clamp. Random inputs keep 1e-5 away from them, so float32
// rounding (~1e-7) in the op, the reference or another libm cannot put a token
// on different sides of a switch (a whole gradient element, a clip count).
inline std::vector<double> log_ratio_switches() {
  std::vector<double> s;
  for (const double e : {0.1, 0.2, 0.28, 0.35}) {
    s.push_back(std::log(1.0 - e));
    s.push_back(std::log(1.0 + e));
  }
  for (const double delta : {1.3, 1.4, 1.5}) s.push_back(std::log(delta));
  return s;
}
constexpr double kTightKlClamp = 0.02;
inline std::vector<double> kl_switches() {
  std::vector<double> s;
  for (double x : {0.3, -0.3}) {  // Newton on e^x - x - 1 = kTightKlClamp, one root each side of 0
    for (int k = 0; k < 50; ++k) x -= (std::exp(x) - x - 1.0 - kTightKlClamp) / (std::exp(x) - 1.0);
    s.push_back(x);
  }
  return s;
}

inline LossInputs make_loss_inputs(int64_t N, int64_t T, uint64_t seed, torch::ScalarType dtype = torch::kFloat64,
                                   double noise = 0.3) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor logp = -4.0 * at::rand({N, T}, gen, f64) - 0.05;
  const torch::Tensor log_ratio = keep_off(noise * at::randn({N, T}, gen, f64), log_ratio_switches(), 1e-5);
  const torch::Tensor old = logp - log_ratio;
  const torch::Tensor ref = logp + keep_off(0.5 * at::randn({N, T}, gen, f64), kl_switches(), 1e-5);
  torch::Tensor adv = at::randn({N}, gen, f64);
  if (N > 0) adv[0] = 0.0;

  torch::Tensor mask = torch::zeros({N, T}, torch::kBool);
  if (T > 0) {
    const torch::Tensor lengths = at::randint(1, T + 1, {N}, gen, torch::TensorOptions().dtype(torch::kLong));
    const torch::Tensor positions = torch::arange(T, torch::kLong).unsqueeze(0);
    const torch::Tensor holes = at::rand({N, T}, gen, f64) < 0.1;
    mask = (positions < lengths.unsqueeze(1)) & ~holes;
    if (N >= 3) mask[N / 2] = false;
  }
  const torch::ScalarType adv_dtype = (dtype == torch::kFloat64 || dtype == torch::kFloat32) ? dtype : torch::kFloat32;
  return {logp.to(dtype), old.to(dtype), ref.to(dtype), adv.to(adv_dtype), mask};
}

// Puts tokens where the safety clamps are active at token 0 of rows 1..N-1
// (made unmasked, except the empty row N/2), by kind i % 4:
//   0: logp - old = +30 (log-ratio clamp), 1: logp - old = -30,
//   2: ref - logp = +30 (log-ratio clamp on the KL's x, then the KL clamp),
//   3: ref - logp = -15 (KL = e^-15 + 14 > 10: only the KL clamp).
// The changed tensors are cloned first: copies of `in` keep their values.
inline void add_clamped_tokens(LossInputs& in) {
  const int64_t N = in.logp.size(0);
  if (in.logp.size(1) == 0) return;
  in.old_logp = in.old_logp.clone();
  in.ref_logp = in.ref_logp.clone();
  in.mask = in.mask.clone();
  for (int64_t i = 1; i < N; ++i) {
    if (N >= 3 && i == N / 2) continue;
    in.mask[i][0] = true;
    const torch::Tensor lp = in.logp[i][0];
    switch (i % 4) {
      case 0: in.old_logp[i][0] = lp - 30.0; break;
      case 1: in.old_logp[i][0] = lp + 30.0; break;
      case 2: in.ref_logp[i][0] = lp + 30.0; break;
      case 3: in.ref_logp[i][0] = lp - 15.0; break;
    }
  }
}

// ---------------------------------------------------------------- option sets

struct LossConfig {
  std::string name;
  grpo::GrpoLossOptions options;
  bool with_old = true;  // false: old_logp undefined (μ = 1)
};

// How GoogleTest (and so ctest's test names) shows a config: its name.
inline void PrintTo(const LossConfig& c, std::ostream* os) { *os << c.name; }

inline grpo::GrpoLossOptions make_options(grpo::LossType type, double beta = 0.04) {
  grpo::GrpoLossOptions o;
  o.loss_type = type;
  o.beta = beta;
  if (type == grpo::LossType::DrGRPO) o.max_completion_length = 150;  // >= every T used here
  return o;
}

// Every loss type and option, alone and combined.
inline std::vector<LossConfig> loss_configs() {
  using grpo::LossType;
  std::vector<LossConfig> c;
  auto add = [&c](std::string name, grpo::GrpoLossOptions o, bool with_old = true) {
    c.push_back({std::move(name), o, with_old});
  };
  grpo::GrpoLossOptions o;

  add("grpo", make_options(LossType::GRPO));
  add("grpo_beta0", make_options(LossType::GRPO, 0.0));
  o = make_options(LossType::GRPO);
  o.epsilon_high = 0.28;
  add("grpo_clip_higher", o);
  o = make_options(LossType::GRPO, 0.0);
  o.epsilon_low = 0.1;
  o.epsilon_high = 0.35;
  add("grpo_asymmetric_eps_beta0", o);
  o = make_options(LossType::GRPO);
  o.delta = 1.4;
  add("grpo_delta", o);
  o = make_options(LossType::GRPO, 0.1);
  o.delta = 1.5;
  o.epsilon_high = 0.28;
  add("grpo_delta_clip_higher_beta", o);
  add("grpo_mu1", make_options(LossType::GRPO), false);
  add("grpo_mu1_beta0", make_options(LossType::GRPO, 0.0), false);
  o = make_options(LossType::GRPO);
  o.importance_sampling = grpo::ImportanceSampling::Sequence;
  add("grpo_sequence", o);
  add("grpo_sequence_mu1", o, false);
  o = make_options(LossType::GRPO);
  o.normalizer = 17.5;
  add("grpo_normalizer", o);
  o = make_options(LossType::GRPO, 0.5);
  o.log_ratio_clamp = 0.25;      // active at many tokens with noise 0.3
  o.kl_clamp = kTightKlClamp;    // below the KL at |x| = 0.25, so active too
  add("grpo_tight_clamps", o);

  add("bnpo", make_options(LossType::BNPO));
  o = make_options(LossType::BNPO, 0.0);
  o.importance_sampling = grpo::ImportanceSampling::Sequence;
  o.delta = 1.3;
  add("bnpo_sequence_delta_beta0", o);

  o = make_options(LossType::DAPO, 0.0);
  o.epsilon_high = 0.28;
  add("dapo_clip_higher_beta0", o);
  o = make_options(LossType::DAPO);
  o.normalizer = 500.0;
  add("dapo_normalizer", o);
  o = make_options(LossType::DAPO);
  o.importance_sampling = grpo::ImportanceSampling::Sequence;
  add("dapo_sequence", o);

  add("dr_grpo", make_options(LossType::DrGRPO));
  o = make_options(LossType::DrGRPO, 0.0);
  o.normalizer = 9.0;
  add("dr_grpo_normalizer_beta0", o);
  add("dr_grpo_mu1_beta", make_options(LossType::DrGRPO, 0.2), false);
  return c;
}

// The op's inputs for a config: old_logp undefined when !with_old, ref_logp
// undefined when beta = 0 (the op must not need it).
struct OpArgs {
  torch::Tensor old_logp, ref_logp;
};
inline OpArgs op_args(const LossInputs& in, const LossConfig& c) {
  return {c.with_old ? in.old_logp : torch::Tensor(), c.options.beta != 0.0 ? in.ref_logp : torch::Tensor()};
}

// The op's loss, stats and dloss/dlogp (from loss.backward()) on a fresh leaf
// copy of `logp` on `device`.
struct OpResult {
  torch::Tensor loss, stats, grad;
};
inline OpResult run_op(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                       const torch::Tensor& advantages, const torch::Tensor& mask,
                       const grpo::GrpoLossOptions& options, torch::Device device = torch::kCPU) {
  const auto to = [device](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  const torch::Tensor leaf = logp.detach().to(device).clone().requires_grad_(true);
  grpo::GrpoLossResult r = grpo::grpo_loss(leaf, to(old_logp), to(ref_logp), to(advantages), to(mask), options);
  r.loss.backward();
  return {r.loss.detach(), r.stats, leaf.grad()};
}
inline OpResult run_op(const LossInputs& in, const LossConfig& c, torch::Device device = torch::kCPU) {
  const OpArgs a = op_args(in, c);
  return run_op(in.logp, a.old_logp, a.ref_logp, in.advantages, in.mask, c.options, device);
}
inline RefLoss run_ref(const LossInputs& in, const LossConfig& c) {
  const OpArgs a = op_args(in, c);
  return ref_grpo_loss(in.logp, a.old_logp, a.ref_logp, in.advantages, in.mask, c.options);
}

}  // namespace grpo_test
