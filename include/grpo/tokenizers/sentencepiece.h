// SentencePiece models (tokenizer.model, as shipped with Llama 1/2, Mistral,
// TinyLlama and llama2.c checkpoints) as a grpo::Tokenizer, through the
// SentencePiece library itself, so ids match Python's sentencepiece and
// transformers' LlamaTokenizer exactly. The library is reached through the
// module libgrpo_sentencepiece.so, installed beside libgrpo (see
// src/tokenizers/sentencepiece_module/spm_module.h for why); GRPO_SENTENCEPIECE_MODULE
// may name it elsewhere.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpo/tokenizers/tokenizer.h"

struct grpo_spm;  // the loaded model, inside libgrpo_sentencepiece.so

namespace grpo {

// encode() applies the model's own normalizer (which may, for instance, collapse
// runs of spaces) and its dummy-prefix rule, and never prepends BOS (see
// Tokenizer::encode_prompt). A character the model cannot spell, which without
// byte fallback would become <unk>, is an error naming its byte offset; invalid
// UTF-8 is an error too. Special tokens are the model's control and unknown
// pieces (<s>, </s>, <unk>, <pad>); byte pieces (<0x0A>) are ordinary tokens.
// The object is immutable after loading, so encode and decode may be called
// from several threads at once; copies share the loaded model.
class SentencePieceTokenizer : public Tokenizer {
 public:
  // `path`: a tokenizer.model file. Errors name the path: missing, unreadable,
  // not a SentencePiece model, or no EOS piece.
  static SentencePieceTokenizer load(const std::string& path);
  // From the model file's bytes; `where` names them in errors.
  static SentencePieceTokenizer from_serialized(const std::string& bytes, const std::string& where);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;

  int64_t vocab_size() const override { return vocab_size_; }
  int64_t eos_id() const override { return eos_; }
  // The model's PAD piece, or EOS when it has none (llama2.c and Llama models).
  int64_t pad_id() const override { return pad_; }
  std::optional<int64_t> bos_id() const override { return bos_; }

  std::string id_to_token(int64_t id) const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  bool is_special(int64_t id) const override;

  // dir/tokenizer.model (the bytes it was loaded from) and dir/tokenizer_config.json
  // (LlamaTokenizer with the BOS/EOS/PAD spellings), as transformers expects.
  bool save_to(const std::string& dir) const override;

  // The model file's bytes.
  const std::string& serialized() const { return *serialized_; }

 private:
  SentencePieceTokenizer() = default;
  void check_id(int64_t id, const char* what) const;
  std::string piece(int64_t id) const;

  std::shared_ptr<const grpo_spm> sp_;
  std::shared_ptr<const std::string> serialized_;
  int64_t vocab_size_ = 0;
  int64_t eos_ = -1;
  int64_t pad_ = -1;
  std::optional<int64_t> bos_;
  int64_t unk_ = -1;
  std::vector<uint8_t> special_;  // (V) 1 = control or unknown piece
};

}  // namespace grpo
