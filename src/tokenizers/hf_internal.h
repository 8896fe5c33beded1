// What the parts of HFTokenizer share (internal): error raising, how values
// are shown in messages, the JSON shape checks, and UTF-8 sequence lengths.
// hf_bpe.h is the BPE model, hf_pretokenizer.h the normalizer and
// pre-tokenizers, hf_tokenizer.cpp the facade that runs them in order.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "grpo/error.h"

namespace grpo::hf {

using nlohmann::json;

[[noreturn]] inline void fail(const std::string& problem) { throw Error(problem); }

// A JSON string literal of `s`; invalid UTF-8 shows as U+FFFD rather than throwing.
inline std::string show(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }


// Length of the (valid) UTF-8 sequence that starts with byte `b`.
inline size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

inline bool get_bool(const json& j, const char* key, bool fallback, const std::string& at) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail(at + "." + key + " must be true or false, got " + it->dump());
  return it->get<bool>();
}

inline std::string type_of(const json& j, const std::string& at) {
  if (!j.is_object()) fail(at + " must be a JSON object, got " + j.dump());
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) fail(at + " has no \"type\" string");
  return it->get<std::string>();
}

inline constexpr const char* kSentencePieceHint =
    "; this is a SentencePiece-style tokenizer (Llama 2, Mistral, TinyLlama): load the folder's "
    "tokenizer.model with grpo::SentencePieceTokenizer instead";

inline bool sentencepiece_style(const std::string& type) {
  return type == "Metaspace" || type == "Prepend" || type == "Replace" || type == "ByteFallback" || type == "Fuse" ||
         type == "Strip";
}

}  // namespace grpo::hf
