// token_logprobs: chunked output projection + log-softmax at the target
// tokens, as an autograd function whose backward recomputes each chunk's
// logits; token_entropy: the same chunks, no gradient. Registered as
// CompositeImplicitAutograd, so one implementation serves every backend.
// Shapes: M positions, H hidden size, V vocabulary, c rows in a chunk.
#include "grpo/ops/token_logprobs.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ops/common.h"

namespace grpo {
namespace ops {

namespace {

constexpr const char* kOp = "token_logprobs";

using TokenLogprobsSignature = at::Tensor(const at::Tensor& hidden, const at::Tensor& weight,
                                          const at::Tensor& targets, double temperature, int64_t chunk_tokens);
using TokenLogprobsEntropySignature = std::tuple<at::Tensor, at::Tensor>(const at::Tensor& hidden,
                                                                         const at::Tensor& weight,
                                                                         const at::Tensor& targets, double temperature,
                                                                         int64_t chunk_tokens);

// Vocabulary rows converted to float32 at a time in the backward of a
// reduced-precision weight: a (block, H) copy, never the whole (V, H).
constexpr int64_t kVocabBlock = 4096;

// (c, V) float32 logits of hidden rows [begin, begin + c), divided by the temperature.
at::Tensor chunk_logits(const at::Tensor& hidden, const at::Tensor& weight, int64_t begin, int64_t c,
                        double temperature) {
  // NB: row-invariant, so a row's logits are those the sampler computed for it when decoding.
  return row_invariant_linear(hidden.narrow(0, begin, c), weight).to(at::kFloat) / temperature;
}

void check_projection(const at::Tensor& hidden, const at::Tensor& weight, double temperature, int64_t chunk) {
  TORCH_CHECK(hidden.defined() && hidden.dim() == 2, kOp, ": hidden must be (M, H), got ",
              hidden.defined() ? hidden.sizes() : at::IntArrayRef{});
  TORCH_CHECK(weight.defined() && weight.dim() == 2 && weight.size(1) == hidden.size(1), kOp,
              ": weight must be (V, H) with H = ", hidden.size(1), ", got ",
              weight.defined() ? weight.sizes() : at::IntArrayRef{});
  check_floating(hidden, kOp, "hidden");
  TORCH_CHECK(weight.scalar_type() == hidden.scalar_type(), kOp, ": weight is ", weight.scalar_type(),
              " but hidden is ", hidden.scalar_type());
  check_device(weight, hidden, kOp, "weight");
  TORCH_CHECK(temperature > 0, kOp, ": temperature must be > 0, got ", temperature);
  TORCH_CHECK(chunk >= 1, kOp, ": chunk_tokens must be >= 1, got ", chunk);
}

// Each row's entropy -Σ p·log p from its log-probabilities logp (c, V).
at::Tensor row_entropy(const at::Tensor& logp) { return -(logp.exp() * logp).sum(-1); }

// dz (c, V) float32 · weight (V, H): the weight read as it is when float32,
// else converted kVocabBlock rows at a time. Returns (c, H) float32.
at::Tensor times_weight(const at::Tensor& dz, const at::Tensor& weight) {
  if (weight.scalar_type() == at::kFloat) return at::matmul(dz, weight);
  const int64_t V = weight.size(0);
  at::Tensor out = at::zeros({dz.size(0), weight.size(1)}, dz.options());
  for (int64_t v = 0; v < V; v += kVocabBlock) {
    const int64_t b = std::min(kVocabBlock, V - v);
    out.add_(at::matmul(dz.narrow(1, v, b), weight.narrow(0, v, b).to(at::kFloat)));
  }
  return out;
}

// log p(target) at each of M positions, and with `entropy` each position's
// entropy from the same logits: chunked forward, and a backward that
// recomputes each chunk's logits instead of keeping them. The entropy has no
// gradient.
struct ChunkedLogprobs : public torch::autograd::Function<ChunkedLogprobs> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& targets,
                                                double temperature, int64_t chunk, bool entropy) {
    const int64_t M = hidden.size(0);
    at::Tensor logprobs = at::empty({M}, hidden.options().dtype(at::kFloat));
    at::Tensor lse = at::empty({M}, logprobs.options());
    at::Tensor entropies = at::empty({entropy ? M : 0}, logprobs.options());
    for (int64_t begin = 0; begin < M; begin += chunk) {
      const int64_t c = std::min(chunk, M - begin);
      const at::Tensor z = chunk_logits(hidden, weight, begin, c, temperature);
      // NB: logsumexp subtracts the row max.
      const at::Tensor chunk_lse = z.logsumexp(-1);
      lse.narrow(0, begin, c).copy_(chunk_lse);
      logprobs.narrow(0, begin, c).copy_(z.gather(1, targets.narrow(0, begin, c).unsqueeze(1)).squeeze(1) - chunk_lse);
      if (entropy) {
        // NB: -Σ p·log p with log p = z - lse; lse - Σ p·z would cancel when the entropy is small.
        entropies.narrow(0, begin, c).copy_(row_entropy(z - chunk_lse.unsqueeze(1)));
      }
    }
    ctx->save_for_backward({hidden, weight, targets, lse});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["chunk"] = chunk;
    ctx->mark_non_differentiable({entropies});
    return {logprobs, entropies};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2], &lse = saved[3];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor grad_out = grads[0].to(at::kFloat);  // (M)
    const int64_t M = hidden.size(0);
    at::Tensor grad_hidden = at::zeros(hidden.sizes(), hidden.options().dtype(at::kFloat));
    at::Tensor grad_weight = at::zeros(weight.sizes(), weight.options().dtype(at::kFloat));
    for (int64_t begin = 0; begin < M; begin += chunk) {
      const int64_t c = std::min(chunk, M - begin);
      const at::Tensor z = chunk_logits(hidden, weight, begin, c, temperature);
      // d logp(target) / dz = (onehot(target) - softmax(z)) / temperature, times the incoming gradient.
      at::Tensor dz = -(z - lse.narrow(0, begin, c).unsqueeze(1)).exp();
      dz.scatter_add_(1, targets.narrow(0, begin, c).unsqueeze(1), at::ones({c, 1}, dz.options()));
      dz.mul_(grad_out.narrow(0, begin, c).unsqueeze(1) / temperature);
      grad_hidden.narrow(0, begin, c).copy_(times_weight(dz, weight));
      grad_weight.add_(at::matmul(dz.t(), hidden.narrow(0, begin, c).to(at::kFloat)));
    }
    return {grad_hidden.to(hidden.scalar_type()), grad_weight.to(weight.scalar_type()), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

void check_targets(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets, double temperature,
                   int64_t chunk_tokens) {
  check_projection(hidden, weight, temperature, chunk_tokens);
  TORCH_CHECK(targets.defined() && targets.dim() == 1 && targets.size(0) == hidden.size(0), kOp,
              ": targets must be (M) = (", hidden.size(0), "), got ",
              targets.defined() ? targets.sizes() : at::IntArrayRef{});
  TORCH_CHECK(targets.scalar_type() == at::kLong, kOp, ": targets must be int64, got ", targets.scalar_type());
  check_device(targets, hidden, kOp, "targets");
}

at::Tensor token_logprobs_composite(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    double temperature, int64_t chunk_tokens) {
  check_targets(hidden, weight, targets, temperature, chunk_tokens);
  return ChunkedLogprobs::apply(hidden, weight, targets, temperature, chunk_tokens, false)[0];
}

std::tuple<at::Tensor, at::Tensor> token_logprobs_entropy_composite(const at::Tensor& hidden, const at::Tensor& weight,
                                                                    const at::Tensor& targets, double temperature,
                                                                    int64_t chunk_tokens) {
  check_targets(hidden, weight, targets, temperature, chunk_tokens);
  auto out = ChunkedLogprobs::apply(hidden, weight, targets, temperature, chunk_tokens, true);
  return {out[0], out[1]};
}

static_assert(std::is_same_v<decltype(token_logprobs_composite), TokenLogprobsSignature>);
static_assert(std::is_same_v<decltype(token_logprobs_entropy_composite), TokenLogprobsEntropySignature>);

}  // namespace

TORCH_LIBRARY_IMPL(grpo, CompositeImplicitAutograd, m) {
  m.impl("token_logprobs", &token_logprobs_composite);
  m.impl("token_logprobs_and_entropy", &token_logprobs_entropy_composite);
}

}  // namespace ops

at::Tensor token_logprobs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                          double temperature, int64_t chunk_tokens) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("grpo::token_logprobs", "")
                             .typed<ops::TokenLogprobsSignature>();
  return op.call(hidden, weight, targets, temperature, chunk_tokens);
}

std::pair<at::Tensor, at::Tensor> token_logprobs_and_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                                             const at::Tensor& targets, double temperature,
                                                             int64_t chunk_tokens) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("grpo::token_logprobs_and_entropy", "")
                             .typed<ops::TokenLogprobsEntropySignature>();
  auto [logprobs, entropy] = op.call(hidden, weight, targets, temperature, chunk_tokens);
  return {logprobs, entropy};
}

at::Tensor token_entropy(const at::Tensor& hidden, const at::Tensor& weight, double temperature,
                         int64_t chunk_tokens) {
  ops::check_projection(hidden, weight, temperature, chunk_tokens);
  at::NoGradGuard no_grad;
  const int64_t M = hidden.size(0);
  at::Tensor entropy = at::empty({M}, hidden.options().dtype(at::kFloat));
  for (int64_t begin = 0; begin < M; begin += chunk_tokens) {
    const int64_t c = std::min(chunk_tokens, M - begin);
    entropy.narrow(0, begin, c).copy_(ops::row_entropy(ops::chunk_logits(hidden, weight, begin, c, temperature).log_softmax(-1)));
  }
  return entropy;
}

}  // namespace grpo
