// Text (UTF-8) <-> token ids. Tokenizer is the interface the sampler, rewards and
// trainers use; the implementations beside it are CharTokenizer
// (char_tokenizer.h), SentencePieceTokenizer (sentencepiece.h) and HFTokenizer
// (hf_tokenizer.h); load_tokenizer picks one by a folder's files.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace grpo {

// Every tokenizer guarantees decode(encode(text)) == text for any text it can
// encode, up to the tokenizer's own normalization (a SentencePiece model may
// collapse runs of spaces; a Hugging Face one may apply NFC); the converse need
// not hold (several id sequences may spell one text).
// Bad input (an unknown character, invalid UTF-8, an id outside [0, vocab_size))
// raises grpo::Error naming the offending character, byte offset or id.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  // skip_special = true drops every id for which is_special() holds.
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const = 0;
  // encode() of each text; an error names the index of the text that failed.
  virtual std::vector<std::vector<int64_t>> encode_batch(const std::vector<std::string>& texts) const;
  // How a prompt is fed to a model: bos_id() (when there is one) followed by
  // encode(text). The sampler, SFT and evaluation all encode prompts this way.
  std::vector<int64_t> encode_prompt(const std::string& text) const;

  virtual int64_t vocab_size() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t pad_id() const = 0;
  // None when the tokenizer prepends no beginning-of-sequence token.
  virtual std::optional<int64_t> bos_id() const { return std::nullopt; }

  // The token's spelling; an id outside [0, vocab_size) is an error.
  virtual std::string id_to_token(int64_t id) const = 0;
  // The id whose spelling is exactly `token`, if any.
  virtual std::optional<int64_t> token_to_id(const std::string& token) const = 0;
  // True for control tokens (EOS, PAD, reasoning tags); false for ids out of range.
  virtual bool is_special(int64_t id) const = 0;

  // Writes the files that describe this tokenizer into the existing folder
  // `dir`, in the format it was loaded from (CharTokenizer: tokenizer.json;
  // SentencePiece: tokenizer.model and tokenizer_config.json; Hugging Face:
  // tokenizer.json and tokenizer_config.json), so load_tokenizer(dir) reads it
  // back. Each file is written atomically. False when this tokenizer has no
  // file form (a user's own class that does not override it).
  virtual bool save_to(const std::string& dir) const;
};

// "" when `text` is valid UTF-8 (no stray or truncated sequences, overlong
// forms, surrogates or values past U+10FFFF); otherwise the first problem:
// "invalid UTF-8 at byte offset 12 (byte 0xFF)".
std::string utf8_problem(const std::string& text);

// The tokenizer in `dir`, picked by what the folder holds: tokenizer.model
// (SentencePiece), else tokenizer.json, which is a CharTokenizer when its
// "type" is "char" and a Hugging Face tokenizer otherwise. grpo::Error naming
// the folder when it holds none of these.
std::shared_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace grpo
