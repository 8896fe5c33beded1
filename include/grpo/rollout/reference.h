// The frozen reference model: a deep copy of the policy's model with no
// gradients, in eval mode, giving reference log-probs for the KL term, and an
// optional periodic refresh from the policy.
#pragma once

#include <memory>

#include "grpo/models/causal_lm.h"
#include "grpo/rollout/policy.h"

namespace grpo {

class ReferenceModel {
 public:
  // A deep copy of `policy`'s model, frozen (requires_grad off, eval mode).
  explicit ReferenceModel(Policy& policy);
  // Takes `model` as the reference (e.g. loaded separately) and freezes it.
  explicit ReferenceModel(std::shared_ptr<CausalLM> model);

  CausalLM& model() { return *model_; }

  // Log-probs of the completion tokens (N, T), computed without grad.
  torch::Tensor token_logprobs(const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                               const torch::Tensor& completion_ids, const torch::Tensor& completion_mask,
                               const LogprobOptions& options = {});

  // ref ← alpha · policy + (1 - alpha) · ref for every parameter and floating
  // buffer, matched by name (alpha = 1 copies the policy; TR-DPO-style
  // refresh uses e.g. 0.6). Raises grpo::Error when alpha is outside [0, 1] or
  // the two models' parameter names or shapes differ.
  void sync_from(Policy& policy, double alpha = 1.0);

 private:
  std::shared_ptr<CausalLM> model_;
};

}  // namespace grpo
