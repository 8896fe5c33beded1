// Exact attention: a fixed-order CPU forward (one query at a time, its
// visible keys in increasing position) and an ATen-composite backward that
// recomputes the probabilities from the saved log-sum-exp.
// Shapes: B rows, NH query heads, KV key/value heads, R = NH / KV, T queries,
// L keys, D head dim.
#include "models/exact_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>
#include <vector>

namespace grpo::detail {

namespace {

// Fills out (B, NH, T, D) and lse (B, NH, T) from contiguous q, k, v, allowed.
template <typename S>
void attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed, double scale,
            at::Tensor& out, at::Tensor& lse) {
  const int64_t NH = q.size(1), T = q.size(2), D = q.size(3), KV = k.size(1), L = k.size(2);
  const int64_t R = NH / KV;
  const S* qp = q.data_ptr<S>();
  const S* kp = k.data_ptr<S>();
  const S* vp = v.data_ptr<S>();
  const bool* ap = allowed.data_ptr<bool>();
  S* op = out.data_ptr<S>();
  S* lp = lse.data_ptr<S>();
  const S sc = static_cast<S>(scale);
  // NB: every query is independent, so the thread count changes nothing.
  at::parallel_for(0, q.size(0) * NH * T, 1, [&](int64_t begin, int64_t end) {
    std::vector<S> score(static_cast<size_t>(L));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i % T, h = (i / T) % NH, b = i / (T * NH);
      const S* qi = qp + i * D;
      const S* kb = kp + (b * KV + h / R) * L * D;
      const S* vb = vp + (b * KV + h / R) * L * D;
      const bool* visible = ap + (b * T + t) * L;
      S max = -std::numeric_limits<S>::infinity();
      for (int64_t l = 0; l < L; ++l) {
        if (!visible[l]) continue;
        S s = 0;
        for (int64_t d = 0; d < D; ++d) s += qi[d] * kb[l * D + d];
        s *= sc;
        score[static_cast<size_t>(l)] = s;
        if (s > max) max = s;
      }
      S* o = op + i * D;
      for (int64_t d = 0; d < D; ++d) o[d] = 0;
      S sum = 0;
      for (int64_t l = 0; l < L; ++l) {
        if (!visible[l]) continue;
        const S e = std::exp(score[static_cast<size_t>(l)] - max);
        sum += e;
        for (int64_t d = 0; d < D; ++d) o[d] += e * vb[l * D + d];
      }
      for (int64_t d = 0; d < D; ++d) o[d] /= sum;
      lp[i] = max + std::log(sum);
    }
  });
}

// q (B, NH, T, D) as (B, KV, R·T, D): the R query heads that read one key/value head, stacked.
at::Tensor grouped(const at::Tensor& x, int64_t KV) {
  return x.reshape({x.size(0), KV, -1, x.size(-1)});
}

struct ExactAttention : public torch::autograd::Function<ExactAttention> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                                                const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                                                double scale) {
    const at::ScalarType compute = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor qc = q.to(compute).contiguous(), kc = k.to(compute).contiguous(), vc = v.to(compute).contiguous();
    const at::Tensor mask = allowed.to(at::kBool).contiguous();
    at::Tensor out = at::empty(q.sizes(), qc.options());
    at::Tensor lse = at::empty({q.size(0), q.size(1), q.size(2)}, qc.options());
    if (compute == at::kDouble) {
      attend<double>(qc, kc, vc, mask, scale, out, lse);
    } else {
      attend<float>(qc, kc, vc, mask, scale, out, lse);
    }
    ctx->save_for_backward({q, k, v, mask, out, lse});
    ctx->saved_data["scale"] = scale;
    return {out.to(q.scalar_type())};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &mask = saved[3], &out = saved[4], &lse = saved[5];
    const double scale = ctx->saved_data["scale"].toDouble();
    const at::ScalarType compute = out.scalar_type();
    const int64_t B = q.size(0), NH = q.size(1), T = q.size(2), KV = k.size(1), L = k.size(2);
    const int64_t R = NH / KV;
    const at::Tensor qg = grouped(q.to(compute), KV);        // (B, KV, R·T, D)
    const at::Tensor kc = k.to(compute), vc = v.to(compute);  // (B, KV, L, D)
    const at::Tensor dout = grouped(grads[0].to(compute), KV);
    const at::Tensor og = grouped(out, KV);
    // (B, KV, R·T, L): the mask of each stacked query row.
    const at::Tensor visible = mask.unsqueeze(1).unsqueeze(1).expand({B, KV, R, T, L}).reshape({B, KV, R * T, L});
    const at::Tensor scores = at::matmul(qg, kc.transpose(-1, -2)) * scale;
    const at::Tensor p = (scores - grouped(lse.unsqueeze(-1), KV)).exp().masked_fill(visible.logical_not(), 0);
    const at::Tensor dv = at::matmul(p.transpose(-1, -2), dout);
    const at::Tensor dp = at::matmul(dout, vc.transpose(-1, -2));
    const at::Tensor ds = p * (dp - (dout * og).sum(-1, /*keepdim=*/true)) * scale;
    const at::Tensor dq = at::matmul(ds, kc).reshape(q.sizes());
    const at::Tensor dk = at::matmul(ds.transpose(-1, -2), qg);
    return {dq.to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor exact_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                           double scale) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes(), "exact_attention: q must be (B, NH, T, D) and k, v (B, KV, L, D), got ",
              q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  TORCH_CHECK(k.size(0) == q.size(0) && k.size(3) == q.size(3) && k.size(1) > 0 && q.size(1) % k.size(1) == 0,
              "exact_attention: q ", q.sizes(), " and k ", k.sizes(), " disagree");
  TORCH_CHECK(allowed.dim() == 3 && allowed.size(0) == q.size(0) && allowed.size(1) == q.size(2) &&
                  allowed.size(2) == k.size(2),
              "exact_attention: allowed must be (B, T, L) = (", q.size(0), ", ", q.size(2), ", ", k.size(2), "), got ",
              allowed.sizes());
  TORCH_CHECK(q.device().is_cpu(), "exact_attention: runs on the CPU only, got ", q.device());
  return ExactAttention::apply(q, k, v, allowed, scale)[0];
}

}  // namespace grpo::detail
