// GGUF files, the single-file format llama.cpp and Ollama run: a TransformerLM
// and its tokenizer written as llama.cpp's own converter (convert_hf_to_gguf.py)
// writes that architecture: GGUF version 3, metadata under llama.cpp's keys,
// tensors under its names (GGML order: dimensions innermost first), data aligned
// to 32 bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "grpo/models/causal_lm.h"
#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

// How the matrices are stored. Norm weights, biases and every 1-D tensor stay
// f32 whatever is chosen, as llama.cpp's converter keeps them.
enum class GgufType {
  F32,   // float32
  F16,   // IEEE half, rounded to nearest even
  BF16,  // bfloat16, rounded to nearest even
  Q8_0,  // blocks of 32 int8 along a row with one f16 scale each (34 bytes per block)
};

// "f32", "f16", "bf16", "q8_0" (also "float32", "float16", "bfloat16") -> the
// type; anything else is a grpo::Error naming `where` and the value.
GgufType gguf_type_from_name(const std::string& name, const std::string& where);
// "f32", "f16", "bf16" or "q8_0".
std::string gguf_type_name(GgufType type);

struct GgufOptions {
  // The matrices' type; none = bf16 for a bfloat16 model and f16 otherwise, as
  // the converter's "auto". q8_0 applies to matrices whose rows are a multiple
  // of 32 long; others fall back to f16, as the converter does (logged).
  std::optional<GgufType> type;
  std::string name;  // general.name; "" = the output file's name without ".gguf"
  // tokenizer.chat_template (Jinja, as llama.cpp and Ollama read it); none = the
  // Hugging Face tokenizer's own chat_template from tokenizer_config.json, if any.
  std::optional<std::string> chat_template;
};

// Writes `model` (a TransformerLM, possibly behind VocabularyLimit) and
// `tokenizer` to the file `path` atomically (a temporary file renamed into
// place, so `path` is the previous file or the complete new one).
//
// Architecture (general.architecture), as the converter maps the Hugging Face
// config hf_config() gives: q/k norms -> "qwen3"; q/k/v biases without an o_proj
// bias -> "qwen2"; otherwise "llama" (Llama, and Mistral without a sliding
// window), whose q/k rows are permuted from the rotate-half layout to the
// interleaved pairs llama.cpp's "llama" rotary embedding expects.
// Tokenizer: a SentencePieceTokenizer as tokenizer.ggml.model "llama" (pieces,
// scores and types from its model file); an HFTokenizer (byte-level BPE) as
// "gpt2" with its merges and tokenizer.ggml.pre naming llama.cpp's
// pre-tokenizer whose regex is the tokenizer.json one ("gpt-2", "llama-bpe",
// "qwen2"). Ids the model has past the tokenizer's are "[PAD<id>]" tokens of
// type unused, as the converter writes them.
//
// Raises grpo::Error, before anything is written, for what a GGUF file cannot
// hold or llama.cpp would compute differently, naming it: a model that is not a
// TransformerLM; a sliding window shorter than the context; RoPE scaling other
// than linear or llama3; Qwen2 with heads × head_dim != hidden size; a
// CharTokenizer, another Tokenizer class, or a tokenizer.json whose
// pre-tokenizer matches none of llama.cpp's; a tokenizer larger than the model's
// vocabulary.
void export_gguf(const CausalLM& model, const Tokenizer& tokenizer, const std::string& path,
                 const GgufOptions& options = {});

}  // namespace grpo
