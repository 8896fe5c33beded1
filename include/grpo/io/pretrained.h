// Hugging Face model folders <-> TransformerLM: config.json
// (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM) and the weights in
// model.safetensors, or in shards listed by model.safetensors.index.json.
// Tensor names are transformers' own, so a saved folder loads there unchanged.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "grpo/models/transformer.h"
#include "grpo/tokenizer.h"

namespace grpo {

// The TransformerConfig a Hugging Face config.json describes. Keys this model
// does not need (token ids, torch_dtype, ...) are ignored; keys that would
// change the network (hidden_act, rope_scaling, mlp_bias) must have the values
// it implements. rms_norm_eps defaults to transformers' 1e-6; Qwen2 gets q/k/v
// biases; Mistral's sliding_window caps max_position_embeddings, since within
// the window sliding and full attention are the same. Raises grpo::Error
// prefixed with `where` for an unknown architecture or a bad key.
TransformerConfig config_from_pretrained(const nlohmann::json& config, const std::string& where = "config.json");

// The model in `dir`, its weights converted to `dtype` (float32 by default, the
// dtype the trainer works in). Missing, unexpected and mis-shaped tensors are
// one grpo::Error listing them all (rotary inv_freq buffers, and lm_head.weight
// when the embeddings are tied, are skipped as transformers does).
std::shared_ptr<TransformerLM> load_pretrained(const std::string& dir,
                                               c10::ScalarType dtype = c10::ScalarType::Float);

// Writes config.json (architectures, model_type, torch_dtype and the keys of
// TransformerConfig::to_json) and the weights as model.safetensors, or in
// shards of at most max_shard_bytes with model.safetensors.index.json, in
// `dtype` (default: the model's). Creates `dir`; each file is written atomically.
void save_pretrained(const TransformerLM& model, const std::string& dir,
                     c10::optional<c10::ScalarType> dtype = c10::nullopt,
                     int64_t max_shard_bytes = int64_t{5} * 1000 * 1000 * 1000);

// "float32", "bfloat16", "float16" or "float64" -> the dtype; anything else is
// a grpo::Error naming `where` and the value.
c10::ScalarType dtype_from_name(const std::string& name, const std::string& where);

// A whole folder a Hugging Face user can load (AutoModelForCausalLM and
// AutoTokenizer): save_pretrained's files, the tokenizer's (when given and it
// can be saved; see Tokenizer::save_to) and generation_config.json with its
// BOS, EOS and PAD ids. `model` must be a TransformerLM. Written under a
// temporary name and renamed into place, so `dir` is either the previous
// folder or the complete new one.
void export_pretrained(const CausalLM& model, const Tokenizer* tokenizer, const std::string& dir,
                       c10::optional<c10::ScalarType> dtype = c10::nullopt);

}  // namespace grpo
