// ReferenceModel: freezing, no-grad log-probs, and weight mixing from the policy.
#include "grpo/rollout/reference.h"

#include <torch/torch.h>

#include <string>

#include "grpo/error.h"

namespace grpo {

namespace {
void freeze(CausalLM& model) {
  torch::nn::Module& m = model.module();
  m.eval();
  for (auto& p : m.parameters()) p.set_requires_grad(false);
}
}  // namespace

ReferenceModel::ReferenceModel(Policy& policy) : ReferenceModel(policy.model().clone()) {}

ReferenceModel::ReferenceModel(std::shared_ptr<CausalLM> model) : model_(std::move(model)) {
  if (!model_) throw Error("ReferenceModel: the model is null");
  freeze(*model_);
}

torch::Tensor ReferenceModel::token_logprobs(const torch::Tensor& prompt_ids, const torch::Tensor& prompt_mask,
                                             const torch::Tensor& completion_ids,
                                             const torch::Tensor& completion_mask, const LogprobOptions& options) {
  torch::NoGradGuard no_grad;
  return grpo::token_logprobs(*model_, prompt_ids, prompt_mask, completion_ids, completion_mask, options).logprobs;
}

void ReferenceModel::sync_from(Policy& policy, double alpha) {
  if (!(alpha >= 0 && alpha <= 1)) throw Error("ReferenceModel::sync_from: alpha must be in [0, 1], got " + c10::str(alpha));
  torch::NoGradGuard no_grad;
  auto mix = [alpha](const torch::OrderedDict<std::string, torch::Tensor>& from,
                     torch::OrderedDict<std::string, torch::Tensor>& to, const char* what) {
    if (from.size() != to.size()) {
      throw Error(std::string("ReferenceModel::sync_from: the policy has ") + std::to_string(from.size()) + " " + what +
                  ", the reference " + std::to_string(to.size()));
    }
    for (auto& item : to) {
      const torch::Tensor* source = from.find(item.key());
      if (source == nullptr) {
        throw Error(std::string("ReferenceModel::sync_from: the policy has no ") + what + " named " + item.key());
      }
      if (source->sizes() != item.value().sizes()) {
        throw Error("ReferenceModel::sync_from: " + item.key() + " has shape " + c10::str(source->sizes()) +
                    " in the policy and " + c10::str(item.value().sizes()) + " in the reference");
      }
      torch::Tensor& target = item.value();
      if (alpha == 1 || !target.is_floating_point()) {
        target.copy_(*source);
      } else {
        target.mul_(1 - alpha).add_(source->to(target.dtype()), alpha);
      }
    }
  };
  auto from_params = policy.model().module().named_parameters();
  auto to_params = model_->module().named_parameters();
  mix(from_params, to_params, "parameters");
  auto from_buffers = policy.model().module().named_buffers();
  auto to_buffers = model_->module().named_buffers();
  mix(from_buffers, to_buffers, "buffers");
}

}  // namespace grpo
