// The small models the test suites share: MeanLM, a user's own CausalLM
// without a cache (generation recomputes), and the tiny Llama/Qwen2-shaped
// TransformerLM every model-level suite builds on.
#pragma once

#include <grpo/models/causal_lm.h>
#include <grpo/models/transformer.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <memory>

namespace grpo_test {

// A user's model: embedding, causal running mean over real tokens, a tanh
// layer, and an output projection. No cache: make_cache() stays null.
struct MeanLM : torch::nn::Module, grpo::CausalLM {
  MeanLM(int64_t V, int64_t H, int64_t max_len) : V_(V), max_len_(max_len) {
    embed = register_module("embed", torch::nn::Embedding(V, H));
    mix = register_module("mix", torch::nn::Linear(2 * H, H));
    out = register_parameter("out", torch::randn({V, H}) * 0.5);
  }
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask, const torch::Tensor&,
                              grpo::KVCache* cache) override {
    EXPECT_EQ(cache, nullptr);
    const torch::Tensor m = attention_mask.to(torch::kFloat).unsqueeze(-1);  // (B, T, 1)
    const torch::Tensor e = embed(ids) * m;
    const torch::Tensor mean = e.cumsum(1) / m.cumsum(1).clamp_min(1);
    return torch::tanh(mix(torch::cat({e, mean}, -1)));
  }
  torch::Tensor output_weight() override { return out; }
  int64_t vocab_size() const override { return V_; }
  int64_t max_positions() const override { return max_len_; }
  std::shared_ptr<grpo::CausalLM> clone() const override {
    auto copy = std::make_shared<MeanLM>(V_, out.size(1), max_len_);
    torch::NoGradGuard no_grad;
    auto dst = copy->named_parameters();
    for (const auto& p : named_parameters()) dst[p.key()].copy_(p.value());
    return copy;
  }
  int64_t V_, max_len_;
  torch::nn::Embedding embed{nullptr};
  torch::nn::Linear mix{nullptr};
  torch::Tensor out;
};

// A MeanLM of V tokens, hidden size 16 and 64 positions, drawn from `seed`.
inline std::shared_ptr<MeanLM> mean_lm(uint64_t seed = 0, int64_t V = 12) {
  torch::manual_seed(seed);
  return std::make_shared<MeanLM>(V, 16, 64);
}

// The tiny transformer: 2 layers, hidden 32, SwiGLU width 64, 4 query heads
// and 2 key/value heads of 8 dims (grouped-query attention), q/k/v biases
// unless bias = false (Llama) and tied embeddings when tied = true.
inline grpo::TransformerConfig tiny_transformer_config(int64_t vocab_size = 50, bool tied = false, bool bias = true,
                                                       int64_t max_positions = 64) {
  grpo::TransformerConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.max_position_embeddings = max_positions;
  c.tie_word_embeddings = tied;
  c.attention_bias = bias;
  return c;
}

}  // namespace grpo_test
