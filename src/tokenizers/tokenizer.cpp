// The Tokenizer interface's shared methods, the UTF-8 check, and picking a
// tokenizer by a folder's files.
#include "grpo/tokenizers/tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "grpo/error.h"
#include "grpo/files.h"
#include "grpo/tokenizers/char_tokenizer.h"
#include "grpo/tokenizers/hf_tokenizer.h"
#include "grpo/tokenizers/sentencepiece.h"
#include "text/utf8.h"

namespace grpo {

// ---------------------------------------------------------------- Tokenizer

std::vector<std::vector<int64_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int64_t>> out;
  out.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      out.push_back(encode(texts[i]));
    } catch (const Error& e) {
      throw Error("encode_batch: text " + std::to_string(i) + " of " + std::to_string(texts.size()) + ": " +
                  e.what());
    }
  }
  return out;
}

std::vector<int64_t> Tokenizer::encode_prompt(const std::string& text) const {
  std::vector<int64_t> ids;
  if (const auto bos = bos_id()) ids.push_back(*bos);
  std::vector<int64_t> body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

bool Tokenizer::save_to(const std::string& /*dir*/) const { return false; }

std::string utf8_problem(const std::string& text) {
  uint32_t cp;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = text::next_code_point(text, pos, &cp);
    if (len == 0) return text::describe_invalid_utf8(text, pos);
    pos += len;
  }
  return "";
}

std::shared_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path model = fs::path(dir) / "tokenizer.model";
  const fs::path json = fs::path(dir) / "tokenizer.json";
  if (fs::exists(model, ec)) return std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::load(model.string()));
  if (fs::exists(json, ec)) {
    const nlohmann::json j = read_json_file(json.string());
    if (j.is_object() && j.value("type", nlohmann::json()) == "char") {
      return std::make_shared<CharTokenizer>(CharTokenizer::load(json.string()));
    }
    return std::make_shared<HFTokenizer>(HFTokenizer::load_dir(dir));
  }
  throw Error(dir + ": no tokenizer here (looked for tokenizer.model and tokenizer.json)");
}

}  // namespace grpo
