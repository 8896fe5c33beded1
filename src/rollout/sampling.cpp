// The generation settings' checks and the next-token draw with its filters.
// Shapes: B rows, V vocabulary.
#include "grpo/rollout/sampling.h"

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "grpo/error.h"

namespace grpo {

void GenerationConfig::validate() const {
  auto fail = [](const std::string& field, const std::string& rule, double got) {
    throw Error("GenerationConfig." + field + ": " + rule + ", got " + c10::str(got));
  };
  if (max_new_tokens < 1) fail("max_new_tokens", "must be >= 1", static_cast<double>(max_new_tokens));
  if (!(temperature >= 0) || !std::isfinite(temperature)) fail("temperature", "must be finite and >= 0", temperature);
  if (top_k < 0) fail("top_k", "must be >= 0", static_cast<double>(top_k));
  if (!(top_p > 0 && top_p <= 1)) fail("top_p", "must be in (0, 1]", top_p);
  if (!(min_p >= 0 && min_p < 1)) fail("min_p", "must be in [0, 1)", min_p);
  if (pad_id < 0) fail("pad_id", "must be >= 0", static_cast<double>(pad_id));
  for (int64_t id : eos_ids) {
    if (id < 0) fail("eos_ids", "must all be >= 0", static_cast<double>(id));
  }
}

namespace {

// The logits of the distribution the next token is drawn from (B, V),
// float32: the logits over the temperature, with top-k, top-p and min-p
// applied (dropped tokens -inf).
torch::Tensor filtered_logits(const torch::Tensor& logits, const GenerationConfig& config) {
  torch::Tensor z = logits.to(torch::kFloat32) / config.temperature;  // (B, V)
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const int64_t V = z.size(-1);
  if (config.top_k > 0 && config.top_k < V) {
    const torch::Tensor kth = std::get<0>(z.topk(config.top_k, -1)).narrow(-1, config.top_k - 1, 1);
    z = z.masked_fill(z < kth, neg_inf);
  }
  if (config.top_p < 1) {
    auto [sorted, order] = z.sort(-1, /*descending=*/true);
    const torch::Tensor probs = sorted.softmax(-1);
    // NB: a token is dropped when the tokens before it already hold top_p, so the first always stays.
    const torch::Tensor before = probs.cumsum(-1) - probs;
    const torch::Tensor drop_sorted = before >= config.top_p;
    z = z.masked_fill(torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted), neg_inf);
  }
  if (config.min_p > 0) {
    const torch::Tensor probs = z.softmax(-1);
    z = z.masked_fill(probs < config.min_p * std::get<0>(probs.max(-1, /*keepdim=*/true)), neg_inf);
  }
  return z;
}

// log softmax(z)[token] per row, as the token_logprobs op computes it: z[token] - logsumexp(z).
torch::Tensor logprob_of(const torch::Tensor& z, const torch::Tensor& tokens) {
  return z.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - z.logsumexp(-1);
}

torch::Tensor draw(const torch::Tensor& logits, const GenerationConfig& config,
                   const std::function<torch::Tensor(int64_t)>& uniforms, torch::Tensor* sampling_logprobs) {
  if (config.temperature == 0) {
    torch::Tensor tokens = logits.argmax(-1);
    if (sampling_logprobs != nullptr) *sampling_logprobs = torch::zeros(tokens.sizes(), logits.options().dtype(torch::kFloat32));
    return tokens;
  }
  const torch::Tensor z = filtered_logits(logits, config);
  torch::Tensor tokens = draw_from_probs(z.softmax(-1), uniforms(z.size(0)));
  if (sampling_logprobs != nullptr) *sampling_logprobs = logprob_of(z, tokens);
  return tokens;
}

torch::TensorOptions uniform_options(const torch::Tensor& logits) {
  return torch::TensorOptions().dtype(torch::kFloat64).device(logits.device());
}

}  // namespace

torch::Tensor draw_from_probs(const torch::Tensor& probs, const torch::Tensor& uniforms) {
  TORCH_CHECK(probs.dim() == 2 && probs.size(1) > 0, "draw_from_probs: probs must be (B, V), got ", probs.sizes());
  TORCH_CHECK(uniforms.dim() == 1 && uniforms.size(0) == probs.size(0), "draw_from_probs: uniforms must be (B) with B = ",
              probs.size(0), ", got ", uniforms.sizes());
  // NB: a float32 running sum over a large vocabulary drifts by more than
  // the smallest probabilities, and a float64 one over every token is a
  // serial loop; so the blocks' masses are float64 sums (vectorized), and only
  // the chosen block is scanned in float64.
  constexpr int64_t kBlock = 256;
  const int64_t B = probs.size(0), V = probs.size(1), blocks = (V + kBlock - 1) / kBlock;
  const torch::Tensor padded = torch::constant_pad_nd(probs, {0, blocks * kBlock - V}, 0).view({B, blocks, kBlock});
  const torch::Tensor ends = padded.sum(-1, /*keepdim=*/false, torch::kFloat64).cumsum(-1);  // (B, blocks)
  const torch::Tensor x = (uniforms.to(torch::kFloat64) * ends.select(1, blocks - 1)).unsqueeze(1);  // (B, 1)
  // The block where the running mass passes x, and x's place in it.
  const torch::Tensor block = torch::searchsorted(ends, x, /*out_int32=*/false, /*right=*/true).clamp_max_(blocks - 1);
  const torch::Tensor start = torch::where(block > 0, ends.gather(1, (block - 1).clamp_min(0)), torch::zeros_like(x));
  const torch::Tensor in_block =
      padded.gather(1, block.unsqueeze(-1).expand({B, 1, kBlock})).squeeze(1).cumsum(-1, torch::kFloat64);  // (B, K)
  // NB: the block's own scan can end a rounding below its pairwise sum; a
  // target under its last value always lands on a token of positive mass
  // (the first whose running mass exceeds it), so it is held below that.
  const torch::Tensor last = in_block.narrow(1, kBlock - 1, 1);
  const torch::Tensor target = torch::minimum((x - start).clamp_min(0), torch::nextafter(last, torch::zeros_like(last)));
  const torch::Tensor index = torch::searchsorted(in_block, target, /*out_int32=*/false, /*right=*/true);
  return (block * kBlock + index).squeeze(1);
}

torch::Tensor sample_next_token(const torch::Tensor& logits, const GenerationConfig& config, at::Generator& generator,
                                torch::Tensor* sampling_logprobs) {
  return draw(logits, config, [&](int64_t rows) {
    return torch::rand({rows}, generator, uniform_options(logits));
  }, sampling_logprobs);
}

torch::Tensor sample_next_token(const torch::Tensor& logits, const GenerationConfig& config,
                                std::vector<at::Generator>& generators, int64_t rows_each,
                                torch::Tensor* sampling_logprobs) {
  TORCH_CHECK(static_cast<int64_t>(generators.size()) * rows_each == logits.size(0), "sample_next_token: ",
              generators.size(), " generators of ", rows_each, " rows for ", logits.size(0), " rows");
  return draw(logits, config, [&](int64_t) {
    std::vector<torch::Tensor> draws;
    draws.reserve(generators.size());
    for (at::Generator& generator : generators) draws.push_back(torch::rand({rows_each}, generator, uniform_options(logits)));
    return torch::cat(draws);
  }, sampling_logprobs);
}

torch::Tensor tempered_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  TORCH_CHECK(temperature > 0, "tempered_logprobs: temperature must be > 0, got ", temperature);
  return logprob_of(logits.to(torch::kFloat32) / temperature, tokens);
}

}  // namespace grpo
