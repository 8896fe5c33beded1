// AdamW construction and one clipped update, shared by GRPOTrainer and SFTTrainer.
#include "train/optimizer.h"

#include <torch/nn/utils/clip_grad.h>

#include <cmath>
#include <limits>

#include "grpo/error.h"

namespace grpo {

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params, const OptimizerConfig& o) {
  return std::make_unique<torch::optim::AdamW>(
      params,
      torch::optim::AdamWOptions(o.lr).betas(std::make_tuple(o.beta1, o.beta2)).eps(o.eps).weight_decay(o.weight_decay));
}

double optimizer_step(torch::optim::AdamW& optimizer, const OptimizerConfig& o, double lr, const std::string& where) {
  std::vector<torch::Tensor> params;
  for (auto& group : optimizer.param_groups()) {
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    for (const auto& p : group.params()) params.push_back(p);
  }
  const double max_norm = o.max_grad_norm > 0 ? o.max_grad_norm : std::numeric_limits<double>::infinity();
  const double norm = torch::nn::utils::clip_grad_norm_(params, max_norm);
  if (!std::isfinite(norm)) {
    throw Error(where + ": the gradient norm is not finite; the update was skipped and training stopped");
  }
  optimizer.step();
  return norm;
}

}  // namespace grpo
