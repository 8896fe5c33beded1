// CausalLM's default members and position ids from a padded attention mask.
#include "grpo/models/causal_lm.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "grpo/error.h"

namespace grpo {

torch::Tensor CausalLM::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& positions, KVCache* cache) {
  const torch::Tensor hidden = hidden_states(ids, attention_mask, positions, cache);
  return torch::matmul(hidden, output_weight().t());
}

std::unique_ptr<KVCache> CausalLM::make_cache(int64_t, int64_t) { return nullptr; }

torch::nn::Module& CausalLM::module() {
  auto* m = dynamic_cast<torch::nn::Module*>(this);
  if (m == nullptr) {
    throw Error("CausalLM::module(): this model does not derive from torch::nn::Module; override module()");
  }
  return *m;
}

nlohmann::json CausalLM::architecture() const { return nullptr; }

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask, int64_t T) {
  if (attention_mask.dim() != 2 || attention_mask.size(1) < T) {
    throw Error("positions_from_mask: attention_mask must be (B, S + T) with S + T >= T = " + std::to_string(T) +
                ", got " + c10::str(attention_mask.sizes()));
  }
  const torch::Tensor real = attention_mask.to(torch::kLong);
  const torch::Tensor positions = (real.cumsum(1) - 1).clamp_min(0);
  return positions.slice(1, attention_mask.size(1) - T);
}

}  // namespace grpo
