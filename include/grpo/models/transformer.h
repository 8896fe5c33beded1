// The built-in decoder-only transformer (Llama / Qwen2 family): RMSNorm, rotary
// embeddings, grouped-query attention, SwiGLU MLP, and its own KV cache.
// Shapes: B batch rows, T new positions, S cached positions, L = S + T, H hidden
// size, V vocabulary, KV key/value heads, D head dimension.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "grpo/models/causal_lm.h"

namespace grpo {

// RoPE scaling, as a Hugging Face config's "rope_scaling" (transformers 5's
// "rope_parameters" less rope_theta), computed as transformers'
// modeling_rope_utils does. JSON keys are the field names.
struct RopeScaling {
  std::string rope_type = "linear";  // "linear", "dynamic" (NTK), "yarn" or "llama3"
  // How many times longer than the pre-training context. Required, >= 1, but
  // for yarn, which derives it as max_position_embeddings / original when absent.
  std::optional<double> factor;
  int64_t original_max_position_embeddings = 0;  // the pre-training context (llama3, yarn); 0 = max_position_embeddings
  double low_freq_factor = 1.0;                  // llama3: wavelengths above original / low_freq_factor are scaled
  double high_freq_factor = 4.0;                 // llama3: wavelengths below original / high_freq_factor are kept
  double beta_fast = 32.0;                       // yarn: rotations where interpolation starts to fade (0 = 32)
  double beta_slow = 1.0;                        // yarn: rotations where it is complete (0 = 1)
  std::optional<double> mscale;                  // yarn: with mscale_all_dim, derives attention_factor
  std::optional<double> mscale_all_dim;          // yarn
  std::optional<double> attention_factor;        // yarn: scale of cos and sin; 0.1·ln(factor) + 1 when absent
  bool truncate = true;                          // yarn: round the correction range to whole dimensions
};

// Hyper-parameters, one-to-one with a Hugging Face Llama / Qwen2 / Qwen3 /
// Mistral config.json (the JSON key is named where it differs from the
// field). The defaults are Llama 2 7B's, as in Hugging Face's LlamaConfig
// except rms_norm_eps (1e-6 there).
struct TransformerConfig {
  int64_t vocab_size = 32000;              // V
  int64_t hidden_size = 4096;              // H
  int64_t intermediate_size = 11008;       // width of the SwiGLU MLP
  int64_t num_layers = 32;                 // JSON num_hidden_layers
  int64_t num_heads = 32;                  // query heads; JSON num_attention_heads
  int64_t num_kv_heads = 0;                // key/value heads (KV); 0 = num_heads; JSON num_key_value_heads
  int64_t head_dim = 0;                    // D; 0 = hidden_size / num_heads
  double rope_theta = 10000.0;             // base of the rotary frequencies
  double rms_norm_eps = 1e-5;              // added to the mean square in every RMSNorm
  int64_t max_position_embeddings = 2048;  // longest sequence accepted (cached + new positions)
  bool tie_word_embeddings = false;        // true = the output projection is the token embedding
  bool attention_bias = false;             // bias on the q/k/v projections (Qwen2; Llama's attention_bias)
  bool o_proj_bias = false;                // bias on o_proj (Llama's attention_bias; never in Qwen2)
  bool qk_norm = false;                    // RMSNorm over each head's queries and keys before RoPE (Qwen3)
  int64_t sliding_window = 0;              // a query sees the last sliding_window positions only (Mistral); 0 = all
  std::optional<RopeScaling> rope_scaling;  // null = plain RoPE

  // num_kv_heads and head_dim with 0 resolved.
  int64_t kv_heads() const;
  int64_t dim_per_head() const;
  // Longest sequence accepted: max_position_embeddings, or that × factor
  // with dynamic RoPE scaling, which exists to reach past it.
  int64_t max_positions() const;

  // Raises grpo::Error naming the first bad field (and its JSON key) under
  // `path`, what was expected and the value that came:
  //   TransformerConfig.num_heads (num_attention_heads): must be positive, got 0
  void validate(const std::string& path = "TransformerConfig") const;

  // The Hugging Face keys above with the resolved num_key_value_heads and head_dim.
  nlohmann::json to_json() const;
  // A missing key keeps the field's default (num_key_value_heads and head_dim
  // may also be null). strict = true rejects keys this config does not know;
  // false ignores them, for a full Hugging Face config.json (architectures,
  // torch_dtype, token ids, ...). Either way hidden_act must be "silu",
  // mlp_bias and use_sliding_window false and partial_rotary_factor 1 when
  // present, since this model implements nothing else. Wrong types, unknown keys and
  // bad values (validate()) raise grpo::Error naming the key under `path`:
  //   TransformerConfig.hidden_size: expected an integer, got "32"
  static TransformerConfig from_json(const nlohmann::json& j, bool strict = true,
                                     const std::string& path = "TransformerConfig");
};

// The TransformerConfig a Hugging Face config.json describes (by its
// "architectures", else its "model_type": Llama, Qwen2, Qwen3 or Mistral).
// Keys this model does not need (token ids, torch_dtype, ...) are ignored;
// keys that would change the network (hidden_act, mlp_bias, layer_types,
// use_sliding_window, partial_rotary_factor) must have the values it
// implements. RoPE settings come from "rope_scaling" + "rope_theta" or from
// transformers 5's "rope_parameters". rms_norm_eps defaults to transformers'
// 1e-6; Llama's attention_bias covers q/k/v and o_proj, Qwen2 always has q/k/v
// biases, Qwen3 has q/k norms; Mistral keeps its sliding_window. Raises
// grpo::Error prefixed with `where` for an unknown architecture or a bad key.
TransformerConfig config_from_pretrained(const nlohmann::json& config, const std::string& where = "config.json");

// The inverse: the config.json transformers reads for `config` (Qwen3 with
// q/k norms, Qwen2 with q/k/v biases and none on o_proj, Mistral with a
// sliding window, Llama otherwise), RoPE scaling in the "rope_scaling" +
// "rope_theta" form that every transformers version reads. Raises grpo::Error
// for a combination no Hugging Face architecture has (o_proj bias alone).
nlohmann::json hf_config(const TransformerConfig& config);

// Keys and values of every layer, preallocated to max_length positions so
// decoding appends in place. Meant for inference: what is cached is detached
// (no gradient flows into earlier steps through the cache). With keep_graph
// (a training cache) nothing is preallocated: each layer's keys and values
// are the forward's own tensors, graph included, grown by concatenation.
class TransformerKVCache : public KVCache {
 public:
  // Zero length; tensors (B, KV, max_length, D) of `options` (the model's dtype and device).
  TransformerKVCache(int64_t num_layers, int64_t batch, int64_t num_kv_heads, int64_t max_length, int64_t head_dim,
                     const torch::TensorOptions& options, bool keep_graph = false);

  int64_t length() const override { return length_; }
  int64_t batch_size() const override { return batch_; }
  int64_t max_length() const { return max_length_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }
  // index (B') integer, values in [0, B), on any device; rows may repeat.
  void select_rows(const torch::Tensor& index) override;
  // Forgets every position (length 0); the storage is kept.
  void clear() { length_ = 0; }

  // The whole buffers of `layer`, (B, KV, max_length, D); positions from length() on are garbage
  // (with keep_graph: (B, KV, length(), D)).
  const torch::Tensor& keys(int64_t layer) const { return keys_.at(static_cast<size_t>(layer)); }
  const torch::Tensor& values(int64_t layer) const { return values_.at(static_cast<size_t>(layer)); }

  // The model's side of a forward of T new positions. write() puts k, v
  // (B, KV, T, D) of `layer` at positions [length, length + T) and returns the
  // keys and values of positions [0, length + T), (B, KV, L, D); length()
  // moves on only with advance(T), once every layer has written. Raises
  // grpo::Error when the T positions do not fit in max_length.
  std::pair<torch::Tensor, torch::Tensor> write(int64_t layer, const torch::Tensor& k, const torch::Tensor& v);
  void advance(int64_t T);

 private:
  std::vector<torch::Tensor> keys_;    // per layer (B, KV, max_length, D)
  std::vector<torch::Tensor> values_;  // per layer (B, KV, max_length, D)
  int64_t batch_ = 0;
  int64_t max_length_ = 0;
  int64_t length_ = 0;
  bool keep_graph_ = false;
};

class ModelRegistry;
// Registers TransformerLM as "transformer", reading Hugging Face Llama, Qwen2,
// Qwen3 and Mistral configs (register_builtin_models calls it).
void register_transformer(ModelRegistry& registry);

namespace detail {
struct TransformerBody;
struct Projection;
}  // namespace detail

// named_parameters() are the Hugging Face Llama names, so a Hugging Face
// checkpoint's tensors map one-to-one: model.embed_tokens.weight,
// model.layers.{i}.self_attn.{q,k,v,o}_proj.weight (+ {q,k,v}_proj.bias with
// attention_bias, o_proj.bias with o_proj_bias, {q,k}_norm.weight with
// qk_norm), model.layers.{i}.mlp.{gate,up,down}_proj.weight,
// model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight,
// lm_head.weight (absent with tie_word_embeddings). The model has no buffers.
class TransformerLM : public torch::nn::Module, public CausalLM {
 public:
  // Validates `config`; weights normal(0, 0.02) from LibTorch's global
  // generator (torch::manual_seed makes them reproducible), norms 1, biases 0;
  // float32 on the CPU (move with to()).
  explicit TransformerLM(const TransformerConfig& config);
  // The same network with its matrices left undrawn (their contents are
  // unspecified), for loaders that overwrite every weight: it skips the random
  // initialization, which costs seconds at 100M parameters, and does not draw
  // from the global generator.
  static std::shared_ptr<TransformerLM> uninitialized(const TransformerConfig& config);

  // ids (B, T) int64 in [0, V); attention_mask (B, S + T) any dtype, nonzero =
  // real token; positions (B, T) int64 in [0, max_positions()); cache from
  // make_cache() or null. Returns (B, T, H) in the model's dtype. The values
  // of ids and positions are checked (one device-to-host read). Attention is
  // at::scaled_dot_product_attention (flash or memory-efficient kernels on a
  // GPU), causal (and within sliding_window) over the real keys; a pad query
  // sees only itself, so its row is finite and meaningless. With a cache, the
  // new keys and values are appended in the model's dtype (its length grows
  // by T); an error leaves it unchanged.
  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& positions, KVCache* cache) override;
  // (V, H): lm_head.weight, or model.embed_tokens.weight when tied.
  torch::Tensor output_weight() override;
  // A TransformerKVCache of the model's current dtype and device.
  std::unique_ptr<KVCache> make_cache(int64_t batch, int64_t max_length) override;
  // A TransformerKVCache with keep_graph.
  std::unique_ptr<KVCache> make_training_cache(int64_t batch, int64_t max_length) override;

  int64_t vocab_size() const override { return config_.vocab_size; }
  int64_t max_positions() const override { return config_.max_positions(); }
  // Same config, a copy of every parameter (dtype, device, requires_grad kept)
  // and the training flag; does not draw from the global generator.
  std::shared_ptr<CausalLM> clone() const override;
  // torch::nn::Module's clone: the same deep copy, then moved to `device` when given.
  // NB: no default argument here, so clone() above is never ambiguous.
  std::shared_ptr<torch::nn::Module> clone(const c10::optional<torch::Device>& device) const override;
  void pretty_print(std::ostream& os) const override;
  // {"type": "transformer", "config": config().to_json()}.
  nlohmann::json architecture() const override;

  // Batch-invariant mode (CPU): every position's hidden state is computed in
  // an order that does not depend on the batch, the padding or the cache, so
  // decoding token by token and scoring whole sequences give the same bits
  // (grpo/models/causal_lm.h). Raises grpo::Error for dynamic RoPE scaling,
  // whose frequencies depend on each forward's length.
  void set_batch_invariant(bool on) override;
  bool batch_invariant() const override { return batch_invariant_; }

  const TransformerConfig& config() const { return config_; }

 private:
  struct Uninitialized {};
  TransformerLM(const TransformerConfig& config, Uninitialized);
  // make_cache and make_training_cache: checks, and the cache of this model's shape, dtype and device.
  std::unique_ptr<KVCache> new_cache(int64_t batch, int64_t max_length, bool keep_graph, const char* who) const;

  TransformerConfig config_;
  std::shared_ptr<detail::TransformerBody> model_;  // "model"
  std::shared_ptr<detail::Projection> lm_head_;     // "lm_head"; null when tied
  bool batch_invariant_ = false;
};

}  // namespace grpo
