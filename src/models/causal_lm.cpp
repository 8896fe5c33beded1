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
std::unique_ptr<KVCache> CausalLM::make_training_cache(int64_t, int64_t) { return nullptr; }

torch::nn::Module& CausalLM::module() {
  auto* m = dynamic_cast<torch::nn::Module*>(this);
  if (m == nullptr) {
    throw Error("CausalLM::module(): this model does not derive from torch::nn::Module; override module()");
  }
  return *m;
}

nlohmann::json CausalLM::architecture() const { return nullptr; }

void CausalLM::set_batch_invariant(bool on) {
  if (on) throw Error("CausalLM::set_batch_invariant: this model has no batch-invariant mode");
}

VocabularyLimit::VocabularyLimit(std::shared_ptr<CausalLM> inner, int64_t vocab)
    : inner_(std::move(inner)), vocab_(vocab) {
  if (!inner_) throw Error("VocabularyLimit: the model is null");
  if (vocab_ < 1 || vocab_ > inner_->vocab_size())
    throw Error("VocabularyLimit: the vocabulary must be in [1, " + std::to_string(inner_->vocab_size()) +
                "] (the model's), got " + std::to_string(vocab_));
}

torch::Tensor VocabularyLimit::hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                             const torch::Tensor& positions, KVCache* cache) {
  return inner_->hidden_states(ids, attention_mask, positions, cache);
}

torch::Tensor VocabularyLimit::output_weight() { return inner_->output_weight().narrow(0, 0, vocab_); }

std::unique_ptr<KVCache> VocabularyLimit::make_cache(int64_t batch, int64_t max_length) {
  return inner_->make_cache(batch, max_length);
}

int64_t VocabularyLimit::max_positions() const { return inner_->max_positions(); }

torch::nn::Module& VocabularyLimit::module() { return inner_->module(); }

std::shared_ptr<CausalLM> VocabularyLimit::clone() const {
  return std::make_shared<VocabularyLimit>(inner_->clone(), vocab_);
}

nlohmann::json VocabularyLimit::architecture() const { return inner_->architecture(); }

const CausalLM& unwrap(const CausalLM& model) {
  const CausalLM* m = &model;
  while (const auto* view = dynamic_cast<const VocabularyLimit*>(m)) m = view->inner().get();
  return *m;
}

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
