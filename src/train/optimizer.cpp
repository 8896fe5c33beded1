// MasterAdamW: AdamW over float32 master weights (or the model's own), shared
// by GRPOTrainer and SFTTrainer.
#include "train/optimizer.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "grpo/error.h"
#include "grpo/io/weights.h"

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
  if (dist_ && dist_->active()) {
    plan_buckets();
    // NB: a tensor hook of a leaf runs once per backward with the parameter's
    // whole gradient of that backward, before it is accumulated into .grad.
    for (size_t i = 0; i < model_params_.size(); ++i) {
      if (!model_params_[i].requires_grad()) continue;
      model_params_[i].register_hook([this, i](const torch::Tensor& g) {
        if (!overlap_) return;
        write_param(i, &g);
        const size_t before = next_start_;
        start_ready_buckets();
        started_in_backward_ += next_start_ - before;
      });
    }
  }
}

void MasterAdamW::plan_buckets() {
  const double cap = dist_->config().bucket_mb * 1024 * 1024;
  double bytes = 0;
  where_.assign(master_params_.size(), {0, 0});
  for (size_t n = master_params_.size(); n-- > 0;) {
    const torch::Tensor& p = master_params_[n];
    const bool fits = !buckets_.empty() && bytes < cap &&
                      master_params_[buckets_.back().params.front()].scalar_type() == p.scalar_type() &&
                      master_params_[buckets_.back().params.front()].device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    where_[n] = {buckets_.size() - 1, b.numel};
    b.params.push_back(n);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
    bytes += static_cast<double>(p.numel()) * static_cast<double>(p.element_size());
  }
}

void MasterAdamW::arm() {
  for (Bucket& b : buckets_) {
    const torch::Tensor& first = master_params_[b.params.front()];
    b.flat = torch::zeros({b.numel}, first.options().requires_grad(false));
    b.ready = 0;
  }
  written_.assign(master_params_.size(), false);
  next_start_ = 0;
  started_in_backward_ = 0;
  armed_ = true;
}

void MasterAdamW::write_param(size_t i, const torch::Tensor* last) {
  torch::NoGradGuard no_grad;
  const auto [k, offset] = where_[i];
  Bucket& b = buckets_[k];
  torch::Tensor slice = b.flat.narrow(0, offset, master_params_[i].numel());
  // What the earlier micro-batches left: the float32 master gradient, or the model's own.
  const torch::Tensor& before = master_ ? master_params_[i].grad() : model_params_[i].grad();
  if (last) {
    slice.copy_(last->reshape({-1}));
    if (before.defined()) slice.add_(before.reshape({-1}));
  } else if (before.defined()) {
    slice.copy_(before.reshape({-1}));
  }
  written_[i] = true;
  ++b.ready;
}

void MasterAdamW::start_ready_buckets() {
  // NB: strictly in bucket order, so every rank starts the same sums in the same order.
  while (next_start_ < buckets_.size() && buckets_[next_start_].ready == buckets_[next_start_].params.size()) {
    Bucket& b = buckets_[next_start_];
    b.sum = dist_->start_all_reduce_sum(b.flat, "the gradients (bucket " + std::to_string(next_start_ + 1) + " of " +
                                                    std::to_string(buckets_.size()) + ")");
    ++next_start_;
  }
}

void MasterAdamW::sum_gradients() {
  if (!armed_) arm();
  overlap_ = false;
  for (size_t i = 0; i < master_params_.size(); ++i) {
    if (!written_[i]) write_param(i, nullptr);  // no gradient in the last backward, or no backward on this rank
  }
  start_ready_buckets();
  for (Bucket& b : buckets_) b.sum.wait();
  for (Bucket& b : buckets_) {
    for (size_t j = 0; j < b.params.size(); ++j) {
      torch::Tensor& p = master_params_[b.params[j]];
      // NB: a copy, not a view of the bucket: LibTorch's zero_grad detaches gradients in place.
      p.mutable_grad() = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes()).clone();
    }
    b.flat = torch::Tensor();
  }
  overlapped_fraction_ = static_cast<double>(started_in_backward_) / static_cast<double>(buckets_.size());
  armed_ = false;
}

void MasterAdamW::overlap_next_backward() {
  if (!dist_ || !dist_->active()) return;
  arm();
  overlap_ = true;
}

MasterAdamW::~MasterAdamW() = default;

void MasterAdamW::zero_grad() {
  adamw_->zero_grad();
  if (master_) model_.module().zero_grad();
}

void MasterAdamW::add_grads() {
  if (!master_) return;
  if (overlap_) {
    // NB: the backward just done wrote its gradients into the buckets (with the earlier micro-batches').
    for (torch::Tensor& p : model_params_) p.mutable_grad().reset();
    overlap_ = false;
    return;
  }
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
  // NB: every rank holds the gradient of its own rows under the update's
  // global normalizer, so the sum is the whole update's gradient, and the
  // norm clipped below is the global one on every rank.
  if (dist_ && dist_->active()) sum_gradients();
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

void MasterAdamW::load_state(const std::string& dir) {
  // NB: model.pt holds the master weights (float32 in mixed precision); the model is rounded from them.
  load_weights(master().module(), (std::filesystem::path(dir) / "model.pt").string());
  refresh_model();
  const std::string path = (std::filesystem::path(dir) / "optimizer.pt").string();
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    adamw_->load(archive);
  } catch (const c10::Error& e) {
    throw Error(path + ": cannot read the optimizer state: " + e.what_without_backtrace());
  }
}

void MasterAdamW::refresh_model() {
  if (!master_) return;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model_params_.size(); ++i) model_params_[i].copy_(master_params_[i]);
}

}  // namespace grpo
