// Hugging Face `tokenizer.json` byte-level BPE (GPT-2, Llama 3, Qwen2, RoBERTa) as a
// grpo::Tokenizer, giving the ids the `tokenizers` library gives. Only byte-level BPE:
// SentencePiece-style files (Metaspace, byte_fallback: Llama 2, Mistral) are refused
// with a pointer to tokenizer.model (grpo::SentencePieceTokenizer).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

// Which tokens play EOS, PAD and BOS, by spelling (a token's content, as in
// tokenizer_config.json). load_dir fills it from the folder's files.
struct HFSpecialTokens {
  std::optional<std::string> eos;  // required: from_json without it is an error
  std::optional<std::string> pad;  // none = the EOS token
  std::optional<std::string> bos;  // the model's BOS spelling, if it has one
  std::optional<bool> add_bos;     // tokenizer_config.json's add_bos_token; none = unset
};

// What is supported, as `tokenizers` does it:
//   model         {"type": "BPE"}: vocab, merges (["a b", ...] or [["a", "b"], ...]), a
//                 merge's rank is its index; ignore_merges (Llama 3: a pre-token that is
//                 a whole vocabulary entry is that one token). dropout must be null or 0;
//                 continuing_subword_prefix / end_of_word_suffix null or ""; byte_fallback
//                 false; unk_token only when all 256 byte symbols are in the vocabulary
//                 (then it can never be emitted).
//   added_tokens  matched as whole strings before pre-tokenization, leftmost-longest:
//                 first those with normalized = false on the raw text, then those with
//                 normalized = true on the normalized rest; single_word, lstrip and
//                 rstrip as `tokenizers` does (stripped whitespace is consumed by the
//                 token, so decode does not give it back). special = true ones are
//                 is_special(). Ids as `tokenizers` numbers them: a content found in
//                 model.vocab keeps that id, the others follow the vocabulary in list
//                 order (real files say the same in their "id" fields).
//   normalizer    null, NFC (Qwen2; through ICU), or a Sequence of those.
//   pre_tokenizer ByteLevel (add_prefix_space, use_regex: the GPT-2 pattern), or a
//                 Sequence of Split (Regex or String pattern, any behavior, invert) and
//                 Digits, ending in ByteLevel (Llama 3, Qwen2: use_regex = false).
//                 Patterns run under PCRE2 (UTF, UCP) where `tokenizers` uses Oniguruma,
//                 with \s and \w rewritten to Oniguruma's classes, so they match alike
//                 on every character PCRE2's Unicode tables know; characters assigned
//                 after those tables (Unicode 14 for PCRE2 10.42) count as neither \p{L}
//                 nor \p{N} here, though `tokenizers` knows them.
//   decoder       ByteLevel (or a Sequence of just that).
//   post_processor ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing or a
//                 Sequence of them; it only decides bos_id() (encode adds nothing).
//   truncation, padding: ignored (encode never cuts or pads).
//
// encode() never adds BOS or EOS (Tokenizer::encode_prompt adds BOS), so
// decode(encode(t)) == t holds for valid UTF-8 t, except that an NFC normalizer
// returns t in NFC, add_prefix_space adds a space before each text piece, and
// lstrip/rstrip added tokens swallow whitespace.
//
// decode() writes each added token's content and each vocabulary token's bytes. It
// deviates from `tokenizers` on purpose in one way: the bytes are returned as they are,
// so a partial UTF-8 sequence stays partial instead of becoming U+FFFD, and decoding ids
// one at a time and concatenating gives the same bytes as decoding them together.
//
// bos_id(): tokenizer_config.json's add_bos_token = false → none; = true → its
// bos_token; unset → the token the post_processor puts before the text
// (TemplateProcessing's `single` starting with one SpecialToken, as Llama 3;
// RobertaProcessing / BertProcessing's cls), or none (GPT-2, Qwen2).
// is_special(): the added tokens marked special, plus EOS, PAD and BOS.
//
// The object is immutable after loading: encode and decode may be called from
// several threads at once; copies share the loaded tables.
class HFTokenizer : public Tokenizer {
 public:
  // Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json (bos_token,
  // eos_token, pad_token: a string, {"content": ...} or null = none; add_bos_token). A key
  // absent there is taken by id from generation_config.json, then config.json
  // (eos_token_id, bos_token_id, pad_token_id; a list of ids means its first). No EOS
  // anywhere is an error naming the folder. Errors name the file and what is wrong in it.
  static HFTokenizer load_dir(const std::string& dir);

  // From a parsed tokenizer.json; `where` (a path) begins every error message.
  static HFTokenizer from_json(const nlohmann::json& tokenizer_json, const std::string& where,
                               const HFSpecialTokens& special);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;

  // 1 + the largest id of the vocabulary and the added tokens. An id in a gap of the
  // numbering has no token: decode and id_to_token reject it as they do ids past the end.
  int64_t vocab_size() const override;
  int64_t eos_id() const override;
  int64_t pad_id() const override;
  std::optional<int64_t> bos_id() const override;

  // Added tokens: their content; vocabulary tokens: the byte-level spelling ("Ġhello").
  std::string id_to_token(int64_t id) const override;
  // Added tokens' contents first, then the vocabulary's spellings, as `tokenizers` does.
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  bool is_special(int64_t id) const override;

  // dir/tokenizer.json (the file it was loaded from, byte for byte, or the JSON given
  // to from_json) and dir/tokenizer_config.json (the one loaded, if any, with
  // bos_token, eos_token, pad_token and add_bos_token set to what this object uses).
  bool save_to(const std::string& dir) const override;

  // The tokenizer.json text it was loaded from (or the JSON given to from_json) and
  // tokenizer_config.json as loaded (null when there was none): the files save_to
  // writes from, read again by the GGUF export (merges, pre-tokenizer, chat template).
  const std::string& tokenizer_json_text() const;
  const nlohmann::json& tokenizer_config() const;

  // The pieces BPE sees, in order, as UTF-8 text before the byte-level mapping: after
  // added-token matching (an added token is one piece, as matched), normalization and
  // the pre-tokenizer. Mainly for tests and for seeing why a text splits as it does.
  std::vector<std::string> pre_tokenize(const std::string& text) const;

 private:
  struct Impl;  // the tables, read-only once built; src/tokenizers/hf_tokenizer.cpp
  explicit HFTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace grpo
