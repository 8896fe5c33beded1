// MasterAdamW: AdamW over float32 master weights (or the model's own), shared
// by GRPOTrainer and SFTTrainer.
#include "train/optimizer.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "grpo/error.h"

namespace grpo {

namespace {

bool reduced_precision(const CausalLM& model) {
  const auto params = const_cast<CausalLM&>(model).module().parameters();
  if (params.empty()) return false;
  const auto dtype = params.front().scalar_type();
  return dtype == torch::kBFloat16 || dtype == torch::kHalf;
}

}  // namespace

MasterAdamW::MasterAdamW(CausalLM& model, const OptimizerConfig& o, Distributed* dist)
    : model_(model), config_(o), dist_(dist) {
  model_params_ = model_.module().parameters();
  if (reduced_precision(model_)) {
    master_ = model_.clone();
    master_->module().to(torch::kFloat32);
    master_params_ = master_->module().parameters();
    TORCH_INTERNAL_ASSERT(master_params_.size() == model_params_.size(), "the master copy lost parameters");
  } else {
    master_params_ = model_params_;
  }
  adamw_ = std::make_unique<torch::optim::AdamW>(
      master_params_,
      torch::optim::AdamWOptions(o.lr).betas(std::make_tuple(o.beta1, o.beta2)).eps(o.eps).weight_decay(o.weight_decay));
}

MasterAdamW::~MasterAdamW() = default;

void MasterAdamW::zero_grad() {
  adamw_->zero_grad();
  if (master_) model_.module().zero_grad();
}

void MasterAdamW::add_grads() {
  if (!master_) return;
  for (size_t i = 0; i < model_params_.size(); ++i) {
    torch::Tensor& g = model_params_[i].mutable_grad();
    if (!g.defined()) continue;
    torch::Tensor& master_g = master_params_[i].mutable_grad();
    // NB: the sum over micro-batches is kept in float32; bfloat16 would round each addition.
    if (master_g.defined()) master_g.add_(g);
    else master_g = g.to(torch::kFloat32);
    g.reset();
  }
}

double MasterAdamW::step(double lr, const std::string& where) {
  add_grads();
  if (dist_ && dist_->active()) {
    // NB: every rank holds the gradient of its own rows under the update's
    // global normalizer, so the sum is the whole update's gradient, and the
    // norm clipped below is the global one on every rank.
    std::vector<torch::Tensor> grads;
    for (torch::Tensor& p : master_params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    dist_->all_reduce_gradients(grads);
  }
  for (auto& group : adamw_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
  const double max_norm = config_.max_grad_norm > 0 ? config_.max_grad_norm : std::numeric_limits<double>::infinity();
  const double norm = torch::nn::utils::clip_grad_norm_(master_params_, max_norm);
  if (!std::isfinite(norm)) {
    throw Error(where + ": the gradient norm is not finite; the update was skipped and training stopped");
  }
  adamw_->step();
  refresh_model();
  return norm;
}

void MasterAdamW::broadcast_state() {
  if (!dist_ || !dist_->active()) return;
  std::vector<torch::Tensor> tensors;
  {
    torch::NoGradGuard no_grad;
    for (const torch::Tensor& p : master_params_) tensors.push_back(p.detach());
    for (const torch::Tensor& b : master().module().buffers()) tensors.push_back(b);
  }
  for (const torch::Tensor& p : master_params_) {
    auto it = adamw_->state().find(p.unsafeGetTensorImpl());
    if (it == adamw_->state().end()) continue;
    auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
    tensors.push_back(st.exp_avg());
    tensors.push_back(st.exp_avg_sq());
    if (st.max_exp_avg_sq().defined()) tensors.push_back(st.max_exp_avg_sq());
  }
  dist_->broadcast(tensors, "the weights and optimizer state");
  refresh_model();
}

void MasterAdamW::refresh_model() {
  if (!master_) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model_params_.size(); ++i) model_params_[i].copy_(master_params_[i]);
}

}  // namespace grpo
