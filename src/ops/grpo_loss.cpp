// grpo_loss: argument checks and output handling shared by the CPU
// (grpo_loss_cpu.cpp) and CUDA (grpo_loss_cuda.cpp) paths, the autograd
// function, the public C++ entry point (via the dispatcher) and the
// normalizer rule of each loss type. Shapes: N sequences, T completion tokens.
#include "ops/grpo_loss_impl.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/common.h"

namespace grpo {
namespace ops {

namespace {
constexpr const char* kOp = "grpo_loss";

// A (N, T) log-prob argument: defined, shape, dtype and device.
void check_logp_like(const at::Tensor& t, const at::Tensor& logp, const char* what) {
  TORCH_CHECK(t.defined(), kOp, ": ", what, " is undefined");
  TORCH_CHECK(t.sizes() == logp.sizes(), kOp, ": ", what, " must have the shape of logp ", logp.sizes(), ", got ",
              t.sizes());
  check_floating(t, kOp, what);
  check_device(t, logp, kOp, what);
}

}  // namespace

c10::optional<double> c10_delta(const GrpoLossOptions& o) {
  return o.delta ? c10::optional<double>(*o.delta) : c10::nullopt;
}

LossArgs make_loss_args(const at::Tensor& logp, const c10::optional<at::Tensor>& old_logp,
                        const c10::optional<at::Tensor>& ref_logp, const at::Tensor& advantages,
                        const at::Tensor& mask, double epsilon_low, double epsilon_high, c10::optional<double> delta,
                        double beta, c10::string_view loss_type, int64_t max_completion_length, double normalizer,
                        c10::string_view importance_sampling, double log_ratio_clamp, double kl_clamp,
                        bool check_inputs) {
  LossArgs a{logp, old_logp, ref_logp, advantages, mask, {}};
  GrpoLossOptions& o = a.options;
  o.epsilon_low = epsilon_low;
  o.epsilon_high = epsilon_high;
  if (delta) o.delta = *delta;
  o.beta = beta;
  o.loss_type = parse_loss_type(std::string(loss_type));
  o.max_completion_length = max_completion_length;
  o.normalizer = normalizer;
  o.importance_sampling = parse_importance_sampling(std::string(importance_sampling));
  o.log_ratio_clamp = log_ratio_clamp;
  o.kl_clamp = kl_clamp;
  o.check_inputs = check_inputs;
  return a;
}

void write_totals(const double* sums, PreparedLoss& out) {
  const kernels::LossTotals t = kernels::finalize_loss(sums, out.params);
  out.loss.fill_(t.loss);
  out.grad_scale.fill_(t.grad_scale);
  out.stats.copy_(at::tensor(std::vector<double>(t.stats, t.stats + kernels::kNumStats), at::kDouble));
}

PreparedLoss prepare_grpo_loss(const LossArgs& a, bool compute_grad) {
  const GrpoLossOptions& o = a.options;
  const at::Tensor& logp = a.logp;
  TORCH_CHECK(logp.defined(), kOp, ": logp is undefined");
  TORCH_CHECK(logp.dim() == 2, kOp, ": logp must be 2-D (N, T), got shape ", logp.sizes());
  check_floating(logp, kOp, "logp");
  const int64_t N = logp.size(0), T = logp.size(1);
  const bool has_old = a.old_logp.has_value() && a.old_logp->defined();
  if (has_old) check_logp_like(*a.old_logp, logp, "old_logp");
  TORCH_CHECK(std::isfinite(o.beta) && o.beta >= 0, kOp, ": beta must be finite and >= 0, got ", o.beta);
  if (o.beta != 0) {
    TORCH_CHECK(a.ref_logp.has_value() && a.ref_logp->defined(), kOp,
                ": ref_logp is required when beta > 0 (beta = ", o.beta, ")");
    check_logp_like(*a.ref_logp, logp, "ref_logp");
  }
  TORCH_CHECK(a.advantages.defined(), kOp, ": advantages is undefined");
  TORCH_CHECK((a.advantages.dim() == 1 && a.advantages.size(0) == N) ||
                  (a.advantages.dim() == 2 && a.advantages.sizes() == logp.sizes()),
              kOp, ": advantages must have shape (N) = (", N, ") or that of logp ", logp.sizes(), ", got ",
              a.advantages.sizes());
  check_floating(a.advantages, kOp, "advantages");
  check_device(a.advantages, logp, kOp, "advantages");
  // NB: the sequence-level gradient is exact because a row's tokens share one advantage (grpo_loss_math.cuh).
  TORCH_CHECK(a.advantages.dim() == 1 || o.importance_sampling != ImportanceSampling::Sequence, kOp,
              ": per-token advantages (N, T) need importance_sampling \"token\"; the sequence level weighs one "
              "ratio per row by one advantage per row");
  TORCH_CHECK(a.mask.defined(), kOp, ": mask is undefined");
  TORCH_CHECK(a.mask.sizes() == logp.sizes(), kOp, ": mask must have the shape of logp ", logp.sizes(), ", got ",
              a.mask.sizes());
  check_device(a.mask, logp, kOp, "mask");

  TORCH_CHECK(o.epsilon_low >= 0 && o.epsilon_low <= 1, kOp, ": epsilon_low must be in [0, 1], got ", o.epsilon_low);
  TORCH_CHECK(o.epsilon_high >= 0 && std::isfinite(o.epsilon_high), kOp, ": epsilon_high must be finite and >= 0, got ",
              o.epsilon_high);
  if (o.delta) {
    TORCH_CHECK(std::isfinite(*o.delta) && *o.delta > 1 + o.epsilon_high, kOp,
                ": delta must be finite and > 1 + epsilon_high = ", 1 + o.epsilon_high, ", got ", *o.delta);
  }
  TORCH_CHECK(o.log_ratio_clamp > 0, kOp, ": log_ratio_clamp must be > 0, got ", o.log_ratio_clamp);
  TORCH_CHECK(o.kl_clamp > 0, kOp, ": kl_clamp must be > 0, got ", o.kl_clamp);
  const LossType type = o.loss_type;
  const ImportanceSampling level = o.importance_sampling;
  TORCH_CHECK(std::isfinite(o.normalizer) && o.normalizer >= 0, kOp, ": normalizer must be finite and >= 0, got ",
              o.normalizer);
  TORCH_CHECK(type != LossType::BNPO || o.normalizer == 0, kOp,
              ": loss_type bnpo normalizes by this call's own token count and takes no normalizer (got ",
              o.normalizer, "); use dapo for a batch-wide token count");
  TORCH_CHECK(type != LossType::DrGRPO || o.max_completion_length > 0, kOp,
              ": loss_type dr_grpo needs max_completion_length > 0, got ", o.max_completion_length);

  PreparedLoss out{};  // NB: value-initialized: every params field starts at 0 or null
  kernels::GrpoLossParams& p = out.params;
  p.logp = view2d(logp, "logp");
  p.has_old = has_old;
  if (has_old) p.old_logp = view2d(*a.old_logp, "old_logp");
  if (o.beta != 0) p.ref_logp = view2d(*a.ref_logp, "ref_logp");
  p.mask = view2d(a.mask, "mask");
  if (a.advantages.dim() == 1) {
    const kernels::View1D row = view1d(a.advantages, "advantages");
    p.advantages = {row.data, row.stride, 0, row.dtype};  // NB: one value per row, read at every token
  } else {
    p.advantages = view2d(a.advantages, "advantages");
  }
  p.N = N;
  p.T = T;
  p.epsilon_low = o.epsilon_low;
  p.epsilon_high = o.epsilon_high;
  p.has_delta = o.delta.has_value();
  p.delta = o.delta.value_or(0.0);
  p.beta = o.beta;
  p.log_ratio_clamp = o.log_ratio_clamp;
  p.kl_clamp = o.kl_clamp;
  p.sequence_level = level == ImportanceSampling::Sequence;
  p.loss_type = type;
  const double sequences = o.normalizer > 0 ? o.normalizer : static_cast<double>(N > 0 ? N : 1);
  switch (type) {
    case LossType::GRPO: p.denominator = sequences; break;
    case LossType::DrGRPO: p.denominator = sequences * static_cast<double>(o.max_completion_length); break;
    case LossType::BNPO: p.denominator_is_token_count = true; break;
    case LossType::DAPO:
      p.denominator_is_token_count = o.normalizer == 0;
      p.denominator = o.normalizer;
      break;
  }

  const at::ScalarType acc = logp.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto options = logp.options().dtype(acc);
  out.loss = at::empty({}, options);
  out.stats = at::empty({kernels::kNumStats}, options);
  out.grad_scale = at::empty({}, options);
  out.grad = compute_grad ? at::empty({N, T}, options) : at::empty({0}, options);
  p.grad = compute_grad ? out.grad.data_ptr() : nullptr;
  out.empty = N == 0 || T == 0;
  if (out.empty) {
    const double zeros[kernels::kNumRowSums] = {};
    write_totals(zeros, out);
    out.grad.zero_();
  }
  return out;
}

namespace {

// Finds the first value that made the kernel count an invalid input and
// raises an error naming it. Runs only when something is wrong.
void raise_invalid_inputs(const LossArgs& a) {
  auto first_index = [](const at::Tensor& bad) -> std::string {
    const at::Tensor idx = at::nonzero(bad)[0].cpu();
    std::string s;
    for (int64_t k = 0; k < idx.size(0); ++k) s += (k ? ", " : "") + std::to_string(idx[k].item<int64_t>());
    return s;
  };
  const at::Tensor mask = a.mask.to(at::kDouble);
  const at::Tensor bad_mask = at::logical_and(mask != 0, mask != 1);
  if (bad_mask.any().item<bool>()) {
    TORCH_CHECK(false, kOp, ": mask[", first_index(bad_mask), "] = ", mask.masked_select(bad_mask)[0].item<double>(),
                "; mask values must be 0 or 1");
  }
  const at::Tensor bad_adv = at::logical_not(at::isfinite(a.advantages));
  if (bad_adv.any().item<bool>()) {
    TORCH_CHECK(false, kOp, ": advantages[", first_index(bad_adv),
                "] = ", a.advantages.masked_select(bad_adv)[0].item<double>(), "; advantages must be finite");
  }
  const std::pair<const char*, c10::optional<at::Tensor>> inputs[] = {
      {"logp", a.logp}, {"old_logp", a.old_logp}, {"ref_logp", a.options.beta != 0 ? a.ref_logp : c10::nullopt}};
  for (const auto& [name, t] : inputs) {
    if (!t || !t->defined()) continue;
    const at::Tensor bad = at::logical_and(at::logical_not(at::isfinite(t->detach())), mask == 1);
    if (bad.any().item<bool>()) {
      TORCH_CHECK(false, kOp, ": ", name, "[", first_index(bad), "] = ", t->detach().masked_select(bad)[0].item<double>(),
                  " at a completion token (mask = 1); log-probs must be finite there");
    }
  }
  TORCH_CHECK(false, kOp, ": invalid inputs (mask not 0/1, or non-finite advantages or log-probs)");
}

}  // namespace

ForwardResult finish_grpo_loss(const LossArgs& a, const PreparedLoss& p) {
  if (a.options.check_inputs && p.stats[kernels::stat_index(LossStat::InvalidInputs)].item<double>() != 0) {
    raise_invalid_inputs(a);
  }
  return {p.loss, p.stats, p.grad, p.grad_scale};
}

namespace {

// ---------------------------------------------------------------- autograd

ForwardResult call_forward(const LossArgs& a, bool compute_grad) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("grpo::_grpo_loss_forward", "").typed<ForwardSignature>();
  // NB: the forward has no autograd of its own; the function below supplies it.
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  auto detach = [](const c10::optional<at::Tensor>& t) -> c10::optional<at::Tensor> {
    return t && t->defined() ? c10::optional<at::Tensor>(t->detach()) : c10::nullopt;
  };
  const GrpoLossOptions& o = a.options;
  return op.call(a.logp.detach(), detach(a.old_logp), detach(a.ref_logp), a.advantages.detach(), a.mask,
                 o.epsilon_low, o.epsilon_high, c10_delta(o), o.beta, to_string(o.loss_type), o.max_completion_length,
                 o.normalizer, to_string(o.importance_sampling), o.log_ratio_clamp, o.kl_clamp, o.check_inputs,
                 compute_grad);
}

struct GrpoLossFunction : public torch::autograd::Function<GrpoLossFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logp,
                                                const LossArgs& args) {
    auto [loss, stats, grad_logp, grad_scale] = call_forward(args, /*compute_grad=*/true);
    ctx->save_for_backward({grad_logp, grad_scale});
    ctx->saved_data["dtype"] = static_cast<int64_t>(logp.scalar_type());
    ctx->mark_non_differentiable({stats});
    return {loss, stats};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    static const auto op = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("grpo::_grpo_loss_backward", "")
                               .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                 at::ScalarType)>();
    const auto saved = ctx->get_saved_variables();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {op.call(grads[0], saved[0], saved[1], dtype), at::Tensor()};
  }
};

// grpo_loss for every backend: the autograd function when a gradient is
// wanted, else the forward alone (which then skips writing the gradient).
std::tuple<at::Tensor, at::Tensor> grpo_loss_composite(
    const at::Tensor& logp, const c10::optional<at::Tensor>& old_logp, const c10::optional<at::Tensor>& ref_logp,
    const at::Tensor& advantages, const at::Tensor& mask, double epsilon_low, double epsilon_high,
    c10::optional<double> delta, double beta, c10::string_view loss_type, int64_t max_completion_length,
    double normalizer, c10::string_view importance_sampling, double log_ratio_clamp, double kl_clamp,
    bool check_inputs) {
  const LossArgs args = make_loss_args(logp, old_logp, ref_logp, advantages, mask, epsilon_low, epsilon_high, delta,
                                       beta, loss_type, max_completion_length, normalizer, importance_sampling,
                                       log_ratio_clamp, kl_clamp, check_inputs);
  if (logp.defined() && logp.requires_grad() && at::GradMode::is_enabled()) {
    auto out = GrpoLossFunction::apply(logp, args);
    return {out[0], out[1]};
  }
  auto [loss, stats, grad_logp, grad_scale] = call_forward(args, /*compute_grad=*/false);
  return {loss, stats};
}

}  // namespace

static_assert(std::is_same_v<decltype(grpo_loss_composite), GrpoLossSignature>);

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) { m.impl("grpo_loss", &grpo_loss_composite); }

}  // namespace ops

// ---------------------------------------------------------------- public API

GrpoLossResult grpo_loss(const at::Tensor& logp, const at::Tensor& old_logp, const at::Tensor& ref_logp,
                         const at::Tensor& advantages, const at::Tensor& mask, const GrpoLossOptions& o) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("grpo::grpo_loss", "").typed<ops::GrpoLossSignature>();
  auto optional = [](const at::Tensor& t) { return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt; };
  const std::string loss_type = to_string(o.loss_type);
  const std::string level = to_string(o.importance_sampling);
  auto [loss, stats] = op.call(logp, optional(old_logp), optional(ref_logp), advantages, mask, o.epsilon_low,
                               o.epsilon_high, ops::c10_delta(o), o.beta, loss_type, o.max_completion_length, o.normalizer,
                               level, o.log_ratio_clamp, o.kl_clamp, o.check_inputs);
  return {loss, stats};
}

LossStats read_stats(const at::Tensor& stats) {
  TORCH_CHECK(stats.dim() == 1 && stats.size(0) == static_cast<int64_t>(LossStat::Count),
              "read_stats: expected the (", static_cast<int64_t>(LossStat::Count), ") stats of grpo_loss, got shape ",
              stats.sizes());
  const at::Tensor s = stats.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* v = s.data_ptr<double>();
  auto get = [v](LossStat k) { return v[static_cast<int64_t>(k)]; };
  return {get(LossStat::KlMean),         get(LossStat::ClipLowFrac), get(LossStat::ClipHighFrac),
          get(LossStat::ClipRegionFrac), get(LossStat::RatioMean),   get(LossStat::TokenCount),
          get(LossStat::InvalidInputs)};
}

GrpoLossOptions GrpoLossOptions::dapo() {
  GrpoLossOptions o;
  o.loss_type = LossType::DAPO;
  o.epsilon_high = 0.28;
  return o;
}

double loss_normalizer(LossType type, const at::Tensor& mask) {
  TORCH_CHECK(mask.defined() && mask.dim() == 2, "loss_normalizer: mask must be (n, T), got ",
              mask.defined() ? mask.sizes() : at::IntArrayRef{});
  switch (type) {
    case LossType::GRPO:
    case LossType::DrGRPO: return static_cast<double>(mask.size(0));
    case LossType::DAPO: return std::max(1.0, mask.sum().item<double>());
    case LossType::BNPO: return 0.0;
  }
  TORCH_CHECK(false, "loss_normalizer: unknown loss type ", static_cast<int>(type));
}

}  // namespace grpo
