// distill_loss: the student's and the teacher's logits a chunk of positions at
// a time, the divergence and the cross-entropy of each chunk, and, when a
// gradient is needed, the chunk's gradient folded at once into (M, Hs) and
// (V, Hs) sums, so the backward only scales them. Registered as
// CompositeImplicitAutograd: one implementation serves every backend.
// Shapes: M positions, Hs / Ht hidden sizes, V vocabulary, c rows in a chunk.
#include "grpo/ops/distill_loss.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ops/common.h"

namespace grpo {
namespace ops {

namespace {

constexpr const char* kOp = "distill_loss";

using DistillLossSignature = std::tuple<at::Tensor, at::Tensor>(
    const at::Tensor& student_hidden, const at::Tensor& student_weight, const at::Tensor& teacher_hidden,
    const at::Tensor& teacher_weight, const at::Tensor& targets, double alpha, double temperature,
    c10::string_view divergence, double beta, double normalizer, int64_t chunk_tokens);

void check_inputs(const at::Tensor& hs, const at::Tensor& ws, const at::Tensor& ht, const at::Tensor& wt,
                  const at::Tensor& targets, const DistillLossOptions& o) {
  auto sizes = [](const at::Tensor& t) { return t.defined() ? t.sizes() : at::IntArrayRef{}; };
  TORCH_CHECK(ws.defined() && ws.dim() == 2 && wt.defined() && wt.dim() == 2, kOp,
              ": the output weights must be (V, H), got student ", sizes(ws), " and teacher ", sizes(wt));
  TORCH_CHECK(ws.size(0) == wt.size(0), kOp, ": the teacher's vocabulary has ", wt.size(0),
              " tokens and the student's ", ws.size(0),
              "; distillation compares their distributions token by token, so both models need the same vocabulary");
  TORCH_CHECK(hs.defined() && hs.dim() == 2 && hs.size(1) == ws.size(1), kOp,
              ": student_hidden must be (M, Hs) with Hs = ", ws.size(1), ", got ", sizes(hs));
  TORCH_CHECK(ht.defined() && ht.dim() == 2 && ht.size(0) == hs.size(0) && ht.size(1) == wt.size(1), kOp,
              ": teacher_hidden must be (M, Ht) = (", hs.size(0), ", ", wt.size(1), "), got ", sizes(ht));
  check_floating(hs, kOp, "student_hidden");
  check_floating(ht, kOp, "teacher_hidden");
  TORCH_CHECK(ws.scalar_type() == hs.scalar_type(), kOp, ": student_weight is ", ws.scalar_type(),
              " but student_hidden is ", hs.scalar_type());
  TORCH_CHECK(wt.scalar_type() == ht.scalar_type(), kOp, ": teacher_weight is ", wt.scalar_type(),
              " but teacher_hidden is ", ht.scalar_type());
  TORCH_CHECK(targets.defined() && targets.dim() == 1 && targets.size(0) == hs.size(0), kOp,
              ": targets must be (M) = (", hs.size(0), "), got ", sizes(targets));
  TORCH_CHECK(targets.scalar_type() == at::kLong, kOp, ": targets must be int64, got ", targets.scalar_type());
  check_device(ws, hs, kOp, "student_weight");
  check_device(ht, hs, kOp, "teacher_hidden");
  check_device(wt, hs, kOp, "teacher_weight");
  check_device(targets, hs, kOp, "targets");
  TORCH_CHECK(o.alpha >= 0 && o.alpha <= 1, kOp, ": alpha must be in [0, 1], got ", o.alpha);
  TORCH_CHECK(o.temperature > 0 && std::isfinite(o.temperature), kOp, ": temperature must be > 0, got ",
              o.temperature);
  TORCH_CHECK(o.divergence != Divergence::JSD || (o.beta > 0 && o.beta < 1), kOp,
              ": beta must be in (0, 1) for jsd, got ", o.beta);
  TORCH_CHECK(o.normalizer > 0 && std::isfinite(o.normalizer), kOp, ": normalizer must be > 0, got ", o.normalizer);
  TORCH_CHECK(o.chunk_tokens >= 1, kOp, ": chunk_tokens must be >= 1, got ", o.chunk_tokens);
}

// The divergence of each row (c) and its gradient w.r.t. the student's
// logits at τ, s = z/τ, from ls = log q and lt = log p (c, V). With
// h = ∂D/∂q, the softmax gives ∂D/∂s = q ⊙ (h − ⟨q, h⟩):
//   forward_kl  h = −p/q                    → q − p
//   reverse_kl  h = log q − log p + 1       → q ⊙ (log q − log p − D)
//   jsd         h = (1 − β)(log q − log m)  (the p and m terms cancel)
std::pair<at::Tensor, at::Tensor> divergence_and_grad(const at::Tensor& ls, const at::Tensor& lt,
                                                       const DistillLossOptions& o, bool need_grad) {
  const at::Tensor q = ls.exp(), p = lt.exp();
  switch (o.divergence) {
    case Divergence::ForwardKL: {
      at::Tensor d = (p * (lt - ls)).sum(-1);
      return {d, need_grad ? q - p : at::Tensor()};
    }
    case Divergence::ReverseKL: {
      const at::Tensor log_ratio = ls - lt;
      at::Tensor d = (q * log_ratio).sum(-1);
      return {d, need_grad ? q * (log_ratio - d.unsqueeze(1)) : at::Tensor()};
    }
    case Divergence::JSD: {
      const double beta = o.beta;
      const at::Tensor lm = at::logaddexp(lt + std::log(beta), ls + std::log1p(-beta));
      const at::Tensor student_part = ls - lm;
      at::Tensor d = beta * (p * (lt - lm)).sum(-1) + (1 - beta) * (q * student_part).sum(-1);
      if (!need_grad) return {d, at::Tensor()};
      const at::Tensor h = (1 - beta) * student_part;
      return {d, q * (h - (q * h).sum(-1, /*keepdim=*/true))};
    }
  }
  TORCH_CHECK(false, kOp, ": unknown divergence");
}

struct DistillLossFunction : public torch::autograd::Function<DistillLossFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hs,
                                                const at::Tensor& ws, const at::Tensor& ht, const at::Tensor& wt,
                                                const at::Tensor& targets, const DistillLossOptions& o,
                                                bool need_grad) {
    // NB: float64 inputs are computed in float64, everything else in float32.
    const at::ScalarType F = hs.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const auto opts = hs.options().dtype(F);
    const int64_t M = hs.size(0), V = ws.size(0), H = hs.size(1);
    const double tau = o.temperature;
    const double kd_scale = o.alpha * tau * tau / o.normalizer, ce_scale = (1 - o.alpha) / o.normalizer;
    at::Tensor ws_f, grad_hidden, grad_weight;
    if (need_grad) {
      ws_f = ws.to(F);
      grad_hidden = at::empty({M, H}, opts);
      grad_weight = at::zeros({V, H}, opts);
    }
    at::Tensor divergence_sum = at::zeros({}, opts), nll_sum = at::zeros({}, opts);
    for (int64_t begin = 0; begin < M; begin += o.chunk_tokens) {
      const int64_t c = std::min(o.chunk_tokens, M - begin);
      const at::Tensor hs_c = hs.narrow(0, begin, c), tgt = targets.narrow(0, begin, c).unsqueeze(1);
      const at::Tensor zs = at::matmul(hs_c, ws.t()).to(F);
      const at::Tensor zt = at::matmul(ht.narrow(0, begin, c), wt.t()).to(F);
      const at::Tensor ls = (zs / tau).log_softmax(-1), lt = (zt / tau).log_softmax(-1);
      const auto [d, grad_s] = divergence_and_grad(ls, lt, o, need_grad);
      const at::Tensor l1 = tau == 1.0 ? ls : zs.log_softmax(-1);  // the CE is at temperature 1
      divergence_sum += d.sum();
      nll_sum -= l1.gather(1, tgt).sum();
      if (!need_grad) continue;
      // ∂loss/∂zs = kd_scale/τ · ∂D/∂s + ce_scale · (softmax(zs) − onehot(target)).
      at::Tensor dz = grad_s.mul_(kd_scale / tau).add_(l1.exp(), ce_scale);
      dz.scatter_add_(1, tgt, at::full({c, 1}, -ce_scale, opts));
      grad_hidden.narrow(0, begin, c).copy_(at::matmul(dz, ws_f));
      grad_weight.add_(at::matmul(dz.t(), hs_c.to(F)));
    }
    at::Tensor loss = divergence_sum * kd_scale + nll_sum * ce_scale;
    at::Tensor stats = at::stack({divergence_sum, nll_sum});
    ctx->mark_non_differentiable({stats});
    if (need_grad) ctx->save_for_backward({grad_hidden, grad_weight});
    ctx->saved_data["hidden_dtype"] = static_cast<int64_t>(hs.scalar_type());
    ctx->saved_data["need_grad"] = need_grad;
    return {loss, stats};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(ctx->saved_data["need_grad"].toBool(), kOp,
                ": backward through a loss computed without a gradient (grad mode was off)");
    const auto saved = ctx->get_saved_variables();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["hidden_dtype"].toInt());
    const at::Tensor scale = grads[0].to(saved[0].scalar_type());
    return {(saved[0] * scale).to(dtype), (saved[1] * scale).to(dtype), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> distill_loss_composite(const at::Tensor& student_hidden,
                                                          const at::Tensor& student_weight,
                                                          const at::Tensor& teacher_hidden,
                                                          const at::Tensor& teacher_weight, const at::Tensor& targets,
                                                          double alpha, double temperature,
                                                          c10::string_view divergence, double beta, double normalizer,
                                                          int64_t chunk_tokens) {
  DistillLossOptions o;
  o.alpha = alpha;
  o.temperature = temperature;
  o.divergence = parse_divergence(std::string(divergence));
  o.beta = beta;
  o.normalizer = normalizer;
  o.chunk_tokens = chunk_tokens;
  check_inputs(student_hidden, student_weight, teacher_hidden, teacher_weight, targets, o);
  const bool need_grad =
      at::GradMode::is_enabled() && (student_hidden.requires_grad() || student_weight.requires_grad());
  // NB: the teacher is frozen: its inputs are detached, so no gradient reaches it.
  auto out = DistillLossFunction::apply(student_hidden, student_weight, teacher_hidden.detach(),
                                        teacher_weight.detach(), targets, o, need_grad);
  return {out[0], out[1]};
}

static_assert(std::is_same_v<decltype(distill_loss_composite), DistillLossSignature>);

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) { m.impl("distill_loss", &distill_loss_composite); }

}  // namespace ops

std::tuple<at::Tensor, at::Tensor> distill_loss(const at::Tensor& student_hidden, const at::Tensor& student_weight,
                                                 const at::Tensor& teacher_hidden, const at::Tensor& teacher_weight,
                                                 const at::Tensor& targets, const DistillLossOptions& options) {
  static const auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("grpo::distill_loss", "").typed<ops::DistillLossSignature>();
  return op.call(student_hidden, student_weight, teacher_hidden, teacher_weight, targets, options.alpha,
                 options.temperature, to_string(options.divergence), options.beta, options.normalizer,
                 options.chunk_tokens);
}

}  // namespace grpo
