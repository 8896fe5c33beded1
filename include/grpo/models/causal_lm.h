// The causal language model interface the policy, reference and trainer use,
// and its key/value cache. A user's own torch::nn::Module that also derives
// from CausalLM works everywhere the built-in TransformerLM does.
// Shapes: B batch rows, T new positions, S cached positions, H hidden size,
// V vocabulary.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>

namespace grpo {

// Keys and values of the positions a model has already seen, for
// incremental decoding. A model's own subclass holds the tensors.
class KVCache {
 public:
  virtual ~KVCache() = default;
  // Positions cached so far (S); the next forward appends T more.
  virtual int64_t length() const = 0;
  // Rows of the cache (B).
  virtual int64_t batch_size() const = 0;
  // Keeps rows `index` (B') of the cache, in that order; an index may repeat
  // (one prompt's cache shared by its G completions).
  virtual void select_rows(const torch::Tensor& index) = 0;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;

  // Final hidden states (B, T, H), after the last norm, for new tokens
  //   ids            (B, T) int64
  //   attention_mask (B, S + T) 0/1 over the cached and the new positions; 0 = padding
  //   positions      (B, T) int64 position ids of the new tokens
  //   cache          appended to when not null; null = no cache (the whole sequence is in ids)
  virtual torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                      const torch::Tensor& positions, KVCache* cache) = 0;
  // The output projection (V, H): logits = hidden · output_weight()ᵀ.
  virtual torch::Tensor output_weight() = 0;
  // Logits (B, T, V) = output projection of hidden_states(...).
  virtual torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& positions, KVCache* cache);

  // A cache for `batch` rows and up to `max_length` positions, or null when
  // the model has none (generation then recomputes the whole prefix each step).
  virtual std::unique_ptr<KVCache> make_cache(int64_t batch, int64_t max_length);
  // A cache whose keys and values keep their autograd graph, for a training
  // forward that computes a prompt once and continues several rows from it
  // (select_rows repeats it; the gradients of the rows that read it add up in
  // the prompt's pass). Null (the default) when the model has none; callers
  // then run the prompt with every row.
  virtual std::unique_ptr<KVCache> make_training_cache(int64_t batch, int64_t max_length);

  virtual int64_t vocab_size() const = 0;
  // Longest sequence (prompt + completion) the model accepts.
  virtual int64_t max_positions() const = 0;

  // The module that owns the parameters (by default this object itself, which
  // must then also derive from torch::nn::Module).
  virtual torch::nn::Module& module();
  // A deep copy with its own parameters (used for the frozen reference).
  virtual std::shared_ptr<CausalLM> clone() const = 0;

  // Batch-invariant mode: each position's output is computed in an order that
  // depends on neither the other rows of a call, nor the padding, nor whether
  // it is decoded one token at a time against a cache or scored with the whole
  // sequence, so the log-probabilities the sampler records equal those the
  // trainer recomputes, bit for bit (the built-in TransformerLM: float32 and
  // float64 on the CPU, at some cost in speed). The default raises grpo::Error
  // when asked to turn it on: a model without such a mode.
  virtual void set_batch_invariant(bool on);
  virtual bool batch_invariant() const { return false; }

  // What a checkpoint records to build this model again through the
  // ModelRegistry (grpo/models/registry.h): {"type": <registered name>,
  // "config": <the architecture's JSON config>}. Null (the default) for a
  // model that is not registered: checkpoints then save its weights, but
  // loading them needs the caller to build the model.
  virtual nlohmann::json architecture() const;
};

// A view of `inner` whose vocabulary ends at `vocab` (<= inner's), for a
// checkpoint whose embedding is padded past its tokenizer (Qwen2.5: 151936
// rows, 151665 tokens): output_weight() is the first `vocab` rows, so ids at
// or above it have no logit, and are never sampled, scored or decoded; the
// policy's distribution is over the tokenizer's ids. Parameters, cache,
// architecture and checkpoints are the inner model's, whole.
class VocabularyLimit : public CausalLM {
 public:
  // Raises grpo::Error unless 0 < vocab <= inner->vocab_size().
  VocabularyLimit(std::shared_ptr<CausalLM> inner, int64_t vocab);

  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& positions, KVCache* cache) override;
  torch::Tensor output_weight() override;  // inner's rows [0, vocab)
  std::unique_ptr<KVCache> make_cache(int64_t batch, int64_t max_length) override;
  std::unique_ptr<KVCache> make_training_cache(int64_t batch, int64_t max_length) override {
    return inner_->make_training_cache(batch, max_length);
  }
  int64_t vocab_size() const override { return vocab_; }
  int64_t max_positions() const override;
  void set_batch_invariant(bool on) override { inner_->set_batch_invariant(on); }
  bool batch_invariant() const override { return inner_->batch_invariant(); }
  torch::nn::Module& module() override;
  std::shared_ptr<CausalLM> clone() const override;  // a view of the inner model's clone
  nlohmann::json architecture() const override;

  const std::shared_ptr<CausalLM>& inner() const { return inner_; }

 private:
  std::shared_ptr<CausalLM> inner_;
  int64_t vocab_;
};

// The model under any VocabularyLimit views: what is saved and exported.
const CausalLM& unwrap(const CausalLM& model);

// Position ids (B, T) of the last T positions of a left-padded attention mask
// (B, S + T): each real token's index among its row's real tokens; pads get 0.
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask, int64_t T);

}  // namespace grpo
