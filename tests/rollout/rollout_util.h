// What the rollout suites share: prompts, a sampling setup and the log-probs
// of a full forward, on the MeanLM of tiny_models.h.
// Shapes: N rows, Lp prompt and T completion positions, V vocabulary.
#pragma once

#include <grpo/rollout/policy.h>
#include <torch/torch.h>

#include <vector>

#include "tiny_models.h"

namespace grpo_test {

inline const std::vector<std::vector<int64_t>> kPrompts = {{3, 4, 5}, {7}, {2, 9, 9, 4, 1}};

inline grpo::GenerationConfig sampling(uint64_t seed = 7) {
  grpo::GenerationConfig c;
  c.max_new_tokens = 12;
  c.eos_ids = {1, 2};
  c.seed = seed;
  return c;
}

// log_softmax of a full forward (N, Lp + T, V), gathered at the completion tokens, masked.
inline torch::Tensor reference_logprobs(grpo::CausalLM& model, const grpo::Generation& g, double temperature) {
  const int64_t Lp = g.prompt_ids.size(1), T = g.completion_ids.size(1);
  const torch::Tensor ids = torch::cat({g.prompt_ids, g.completion_ids}, 1);
  const torch::Tensor attention = torch::cat({g.prompt_mask, torch::ones_like(g.completion_ids)}, 1);
  const torch::Tensor logits = model.forward(ids, attention, grpo::positions_from_mask(attention, Lp + T), nullptr);
  const torch::Tensor logp = (logits.narrow(1, Lp - 1, T) / temperature).log_softmax(-1);
  return logp.gather(2, g.completion_ids.unsqueeze(-1)).squeeze(-1) * g.completion_mask;
}

}  // namespace grpo_test
