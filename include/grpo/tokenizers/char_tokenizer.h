// CharTokenizer, the bundled tokenizer: one id per Unicode code point plus
// whole-string special tokens (the R1 tags <think> </think> <answer> </answer>,
// EOS, PAD), saved as a small JSON file.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "grpo/tokenizers/tokenizer.h"

namespace grpo {

// A vocabulary of special tokens and single code points ("é", "π" and "7" are each
// one token). encode matches special tokens as whole strings first, longest first,
// at every position, then falls back to the code point there; it is linear in the
// text's length. "Special" means exactly the special-token list: PAD, EOS, the
// reasoning tags and any others given. A character missing from the vocabulary is
// an error, never a silent <unk>.
class CharTokenizer : public Tokenizer {
 public:
  // "<pad>", "<eos>", "<think>", "</think>", "<answer>", "</answer>": with
  // from_texts, PAD gets id 0 and EOS id 1.
  static std::vector<std::string> default_special_tokens();

  // tokens: the whole vocabulary, in id order. special_tokens: those of `tokens`
  // that are special (their order is kept for to_json). Every other token must be
  // exactly one code point. eos, pad and bos (when given) name special tokens;
  // eos may equal pad. Duplicates, empty or invalid UTF-8 tokens are errors.
  CharTokenizer(std::vector<std::string> tokens, std::vector<std::string> special_tokens,
                const std::string& eos, const std::string& pad,
                const std::optional<std::string>& bos = std::nullopt);

  // The special tokens first, in the given order, then every code point found in
  // the corpus (those inside special-token spellings too) in code-point order, so
  // the ids do not depend on the order or repetition of the texts.
  static CharTokenizer from_texts(const std::vector<std::string>& corpus,
                                  std::vector<std::string> special_tokens = default_special_tokens(),
                                  const std::string& eos = "<eos>", const std::string& pad = "<pad>",
                                  const std::optional<std::string>& bos = std::nullopt);

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;

  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  int64_t eos_id() const override { return eos_; }
  int64_t pad_id() const override { return pad_; }
  std::optional<int64_t> bos_id() const override { return bos_; }
  bool save_to(const std::string& dir) const override;  // dir/tokenizer.json

  std::string id_to_token(int64_t id) const override;
  std::optional<int64_t> token_to_id(const std::string& token) const override;
  bool is_special(int64_t id) const override;

  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<std::string>& special_tokens() const { return special_tokens_; }

  // {"type": "char", "tokens": [...], "special_tokens": [...], "eos": "<eos>",
  //  "pad": "<pad>", "bos": null}. from_json rejects missing, unknown or
  // mistyped keys and names them; "bos" may be left out (= null).
  nlohmann::json to_json() const;
  static CharTokenizer from_json(const nlohmann::json& j);

  // save writes atomically (write_file_atomic), so a failed write never leaves
  // a half-written file. Errors name the path and the problem.
  void save(const std::string& path) const;
  static CharTokenizer load(const std::string& path);

 private:
  CharTokenizer() = default;
  // The constructor's work; throws grpo::Error with the bare problem, which the
  // callers prefix with where it came from (constructor, JSON, file).
  void init(std::vector<std::string> tokens, std::vector<std::string> special_tokens, const std::string& eos,
            const std::string& pad, const std::optional<std::string>& bos);
  // from_json's work, with bare problems (see init).
  static CharTokenizer parse_json(const nlohmann::json& j);
  [[noreturn]] void throw_unknown(uint32_t code_point, size_t offset) const;

  std::vector<std::string> tokens_;          // (V) spelling of each id
  std::vector<std::string> special_tokens_;  // as given
  std::vector<uint8_t> special_;             // (V) 1 = special
  std::unordered_map<std::string, int64_t> token_ids_;
  std::array<int64_t, 128> ascii_ids_{};     // -1 = not in the vocabulary
  std::unordered_map<uint32_t, int64_t> code_point_ids_;  // non-ASCII code points
  // Special-token ids by the first byte of their spelling, longest first.
  std::array<std::vector<int64_t>, 256> specials_by_first_byte_;
  int64_t eos_ = -1;
  int64_t pad_ = -1;
  std::optional<int64_t> bos_;
};

}  // namespace grpo
