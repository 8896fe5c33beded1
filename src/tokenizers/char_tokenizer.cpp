// CharTokenizer: UTF-8 decoding with byte-offset errors, special tokens matched
// through a first-byte index (longest first), the JSON form and its file.
#include "grpo/tokenizers/char_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include "grpo/error.h"
#include "grpo/files.h"
#include "text/utf8.h"

namespace grpo {

namespace {

using text::describe_invalid_utf8;
using text::hex;
using text::next_code_point;
using text::utf8;

[[noreturn]] void fail(const std::string& problem) { throw Error(problem); }

// 'π' (U+03C0); control characters are escaped so the message stays on one line.
std::string describe_code_point(uint32_t cp, const std::string& spelling) {
  std::string shown;
  if (cp == '\n') {
    shown = "\\n";
  } else if (cp == '\t') {
    shown = "\\t";
  } else if (cp == '\r') {
    shown = "\\r";
  } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
    shown = "\\u" + hex(cp, 4);
  } else {
    shown = spelling;
  }
  return "'" + shown + "' (U+" + hex(cp, 4) + ")";
}

// Number of code points in a token, or an error naming the token's index.
size_t count_code_points(const std::string& token, size_t index) {
  size_t n = 0;
  uint32_t cp;
  for (size_t pos = 0; pos < token.size(); ++n) {
    const size_t len = next_code_point(token, pos, &cp);
    if (len == 0) fail("token " + std::to_string(index) + ": " + describe_invalid_utf8(token, pos));
    pos += len;
  }
  return n;
}

std::string require_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) fail(std::string("missing key \"") + key + "\"");
  if (!it->is_string()) {
    fail(std::string("key \"") + key + "\" must be a string, got " + it->type_name());
  }
  return it->get<std::string>();
}

std::vector<std::string> require_string_array(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) fail(std::string("missing key \"") + key + "\"");
  if (!it->is_array()) {
    fail(std::string("key \"") + key + "\" must be an array of strings, got " + it->type_name());
  }
  std::vector<std::string> out;
  out.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& e = (*it)[i];
    if (!e.is_string()) {
      fail(std::string("\"") + key + "\"[" + std::to_string(i) + "] must be a string, got " + e.type_name());
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string quoted(const std::string& token) { return nlohmann::json(token).dump(); }

// The JSON form through the public accessors; save uses an ordered_json so the
// file reads "type" first, to_json the plain json of the signature.
template <class Json>
Json json_of(const CharTokenizer& t) {
  Json j;
  j["type"] = "char";
  j["tokens"] = t.tokens();
  j["special_tokens"] = t.special_tokens();
  j["eos"] = t.id_to_token(t.eos_id());
  j["pad"] = t.id_to_token(t.pad_id());
  j["bos"] = t.bos_id() ? Json(t.id_to_token(*t.bos_id())) : Json(nullptr);
  return j;
}

}  // namespace

// ---------------------------------------------------------------- CharTokenizer

std::vector<std::string> CharTokenizer::default_special_tokens() {
  return {"<pad>", "<eos>", "<think>", "</think>", "<answer>", "</answer>"};
}

CharTokenizer::CharTokenizer(std::vector<std::string> tokens, std::vector<std::string> special_tokens,
                             const std::string& eos, const std::string& pad,
                             const std::optional<std::string>& bos) {
  try {
    init(std::move(tokens), std::move(special_tokens), eos, pad, bos);
  } catch (const Error& e) {
    throw Error(std::string("CharTokenizer: ") + e.what());
  }
}

void CharTokenizer::init(std::vector<std::string> tokens, std::vector<std::string> special_tokens,
                         const std::string& eos, const std::string& pad, const std::optional<std::string>& bos) {
  if (tokens.empty()) fail("the vocabulary is empty");
  tokens_ = std::move(tokens);
  special_tokens_ = std::move(special_tokens);
  const int64_t V = static_cast<int64_t>(tokens_.size());

  token_ids_.clear();
  token_ids_.reserve(tokens_.size());
  for (int64_t id = 0; id < V; ++id) {
    const std::string& t = tokens_[id];
    if (t.empty()) fail("token " + std::to_string(id) + " is the empty string");
    auto [it, inserted] = token_ids_.emplace(t, id);
    if (!inserted) {
      fail("duplicate token " + quoted(t) + " at ids " + std::to_string(it->second) + " and " + std::to_string(id));
    }
  }

  special_.assign(tokens_.size(), 0);
  for (size_t k = 0; k < special_tokens_.size(); ++k) {
    const std::string& s = special_tokens_[k];
    auto it = token_ids_.find(s);
    if (it == token_ids_.end()) fail("special token " + quoted(s) + " is not in the vocabulary");
    if (special_[it->second]) fail("special token " + quoted(s) + " is listed twice");
    special_[it->second] = 1;
  }

  ascii_ids_.fill(-1);
  code_point_ids_.clear();
  for (auto& v : specials_by_first_byte_) v.clear();
  for (int64_t id = 0; id < V; ++id) {
    const std::string& t = tokens_[id];
    const size_t n = count_code_points(t, static_cast<size_t>(id));
    if (special_[id]) {
      specials_by_first_byte_[static_cast<unsigned char>(t[0])].push_back(id);
      continue;
    }
    if (n != 1) {
      fail("token " + std::to_string(id) + " " + quoted(t) + " is " + std::to_string(n) +
           " code points but not a special token; only special tokens may be longer than one character");
    }
    uint32_t cp = 0;  // NB: count_code_points above has validated t
    next_code_point(t, 0, &cp);
    if (cp < 128) {
      ascii_ids_[cp] = id;
    } else {
      code_point_ids_.emplace(cp, id);
    }
  }
  // Longest first, so "</think>" wins over a special "</"; ties keep id order.
  for (auto& v : specials_by_first_byte_) {
    std::stable_sort(v.begin(), v.end(),
                     [this](int64_t a, int64_t b) { return tokens_[a].size() > tokens_[b].size(); });
  }

  auto special_id = [this](const std::string& name, const char* role) {
    auto it = token_ids_.find(name);
    if (it == token_ids_.end()) fail(std::string(role) + " token " + quoted(name) + " is not in the vocabulary");
    if (!special_[it->second]) {
      fail(std::string(role) + " token " + quoted(name) + " must be one of the special tokens");
    }
    return it->second;
  };
  eos_ = special_id(eos, "EOS");
  pad_ = special_id(pad, "PAD");
  bos_ = bos ? std::optional<int64_t>(special_id(*bos, "BOS")) : std::nullopt;
}

CharTokenizer CharTokenizer::from_texts(const std::vector<std::string>& corpus,
                                        std::vector<std::string> special_tokens, const std::string& eos,
                                        const std::string& pad, const std::optional<std::string>& bos) {
  std::set<uint32_t> code_points;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string& text = corpus[i];
    uint32_t cp;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = next_code_point(text, pos, &cp);
      if (len == 0) {
        throw Error("CharTokenizer::from_texts: text " + std::to_string(i) + ": " + describe_invalid_utf8(text, pos));
      }
      code_points.insert(cp);
      pos += len;
    }
  }
  // A code point that is itself a special token's spelling is already in the vocabulary.
  std::vector<std::string> tokens = special_tokens;
  const std::set<std::string> specials(special_tokens.begin(), special_tokens.end());
  for (uint32_t cp : code_points) {
    std::string s = utf8(cp);
    if (specials.count(s) == 0) tokens.push_back(std::move(s));
  }
  return CharTokenizer(std::move(tokens), std::move(special_tokens), eos, pad, bos);
}

std::vector<int64_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    const unsigned char b = p[pos];
    bool matched = false;
    for (int64_t id : specials_by_first_byte_[b]) {
      const std::string& s = tokens_[id];
      if (s.size() <= n - pos && text.compare(pos, s.size(), s) == 0) {
        ids.push_back(id);
        pos += s.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (b < 0x80) {
      const int64_t id = ascii_ids_[b];
      if (id < 0) throw_unknown(b, pos);
      ids.push_back(id);
      ++pos;
      continue;
    }
    uint32_t cp;
    const size_t len = next_code_point(text, pos, &cp);
    if (len == 0) throw Error("CharTokenizer::encode: " + describe_invalid_utf8(text, pos));
    auto it = code_point_ids_.find(cp);
    if (it == code_point_ids_.end()) throw_unknown(cp, pos);
    ids.push_back(it->second);
    pos += len;
  }
  return ids;
}

void CharTokenizer::throw_unknown(uint32_t code_point, size_t offset) const {
  throw Error("CharTokenizer::encode: unknown character " + describe_code_point(code_point, utf8(code_point)) +
              " at byte offset " + std::to_string(offset) + "; it is not in the vocabulary of " +
              std::to_string(vocab_size()) + " tokens");
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  const int64_t V = vocab_size();
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= V) {
      throw Error("CharTokenizer::decode: id " + std::to_string(id) + " at position " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
    }
    if (skip_special && special_[id]) continue;
    out += tokens_[id];
  }
  return out;
}

std::string CharTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw Error("CharTokenizer::id_to_token: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                std::to_string(vocab_size()) + ")");
  }
  return tokens_[id];
}

std::optional<int64_t> CharTokenizer::token_to_id(const std::string& token) const {
  auto it = token_ids_.find(token);
  if (it == token_ids_.end()) return std::nullopt;
  return it->second;
}

bool CharTokenizer::is_special(int64_t id) const { return id >= 0 && id < vocab_size() && special_[id]; }

nlohmann::json CharTokenizer::to_json() const { return json_of<nlohmann::json>(*this); }

CharTokenizer CharTokenizer::from_json(const nlohmann::json& j) {
  try {
    return parse_json(j);
  } catch (const Error& e) {
    throw Error(std::string("CharTokenizer::from_json: ") + e.what());
  }
}

CharTokenizer CharTokenizer::parse_json(const nlohmann::json& j) {
  if (!j.is_object()) fail(std::string("expected a JSON object, got ") + j.type_name());
  static const char* const known[] = {"type", "tokens", "special_tokens", "eos", "pad", "bos"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return it.key() == k; }) ==
        std::end(known)) {
      fail("unknown key " + quoted(it.key()) +
           " (expected \"type\", \"tokens\", \"special_tokens\", \"eos\", \"pad\", \"bos\")");
    }
  }
  const std::string type = require_string(j, "type");
  if (type != "char") fail("\"type\" is " + quoted(type) + ", expected \"char\"");
  std::vector<std::string> tokens = require_string_array(j, "tokens");
  std::vector<std::string> special_tokens = require_string_array(j, "special_tokens");
  const std::string eos = require_string(j, "eos");
  const std::string pad = require_string(j, "pad");
  std::optional<std::string> bos;
  if (auto it = j.find("bos"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) fail(std::string("key \"bos\" must be a string or null, got ") + it->type_name());
    bos = it->get<std::string>();
  }
  CharTokenizer t;
  t.init(std::move(tokens), std::move(special_tokens), eos, pad, bos);
  return t;
}

void CharTokenizer::save(const std::string& path) const {
  try {
    write_file_atomic(path, json_of<nlohmann::ordered_json>(*this).dump(2) + "\n");
  } catch (const Error& e) {
    throw Error("CharTokenizer::save(\"" + path + "\"): " + e.what());
  }
}

bool CharTokenizer::save_to(const std::string& dir) const {
  save((std::filesystem::path(dir) / "tokenizer.json").string());
  return true;
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  const std::string where = "CharTokenizer::load(\"" + path + "\"): ";
  try {
    return parse_json(read_json_file(path, "a CharTokenizer JSON file"));
  } catch (const Error& e) {
    throw Error(where + e.what());
  }
}

}  // namespace grpo
