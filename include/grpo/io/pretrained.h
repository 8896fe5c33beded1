// Hugging Face model folders <-> models: config.json, read by the registered
// architecture that knows its model type (grpo/models/registry.h; the built-in
// TransformerLM reads LlamaForCausalLM, Qwen2ForCausalLM and
// MistralForCausalLM), and the weights in model.safetensors, or in shards
// listed by model.safetensors.index.json. Tensor names are transformers' own,
// so a saved folder loads there unchanged.
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "grpo/models/causal_lm.h"
#include "grpo/models/transformer.h"
#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

// The model in `dir`, built by the registered architecture that reads its
// config.json, its weights converted to `dtype` (float32 by default, the dtype
// the trainer works in). Missing, unexpected and mis-shaped tensors are one
// grpo::Error listing them all (rotary inv_freq buffers, and lm_head.weight
// when the embeddings are tied, are skipped as transformers does).
std::shared_ptr<CausalLM> load_pretrained_model(const std::string& dir,
                                                c10::ScalarType dtype = c10::ScalarType::Float);
// load_pretrained_model for a folder the built-in TransformerLM reads.
std::shared_ptr<TransformerLM> load_pretrained(const std::string& dir,
                                               c10::ScalarType dtype = c10::ScalarType::Float);

// True when `dir` holds a Hugging Face model (config.json naming a model_type)
// rather than a checkpoint of ours (model.json).
bool is_pretrained_folder(const std::string& dir);

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

// Raises grpo::Error unless an export of the model at `source` may write
// `out` ("hf": a folder, "gguf": a file): `out` is never `source` nor a folder
// holding it, even with `overwrite`; and an `out` that exists must be what
// such an export writes (a folder of plain files with a config.json; a file
// that starts with GGUF's magic) unless `overwrite` is set, so that a run
// folder, a checkpoint or any other file is never replaced by mistake.
void check_export_target(const std::string& out, const std::string& source, const std::string& format,
                         bool overwrite);

}  // namespace grpo
