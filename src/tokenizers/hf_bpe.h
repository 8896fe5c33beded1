// The byte-level BPE model of a tokenizer.json (internal to HFTokenizer): the
// vocabulary, the merges by rank, and the merge loop. Tokens are spelled in
// GPT-2's byte-level alphabet (bytes_to_unicode); encode works on raw bytes.
// Ids are int32 inside (every real vocabulary fits). Read-only once parsed.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizers/hf_internal.h"

namespace grpo::hf {

// The bytes a byte-level spelling stands for; false when some character of it is
// not in the alphabet (or it is not valid UTF-8).
bool byte_level_decode(const std::string& spelling, std::string* bytes);
// The byte-level spelling of one byte (' ' is "Ġ").
std::string byte_level_spelling(unsigned char b);

struct BpeModel {
  BpeModel() = default;
  BpeModel(const BpeModel&) = delete;  // NB: vocab_by_bytes views into vocab_bytes
  BpeModel& operator=(const BpeModel&) = delete;

  // From tokenizer.json's "model" (BPE only); raises grpo::Error naming the key.
  void parse(const json& model);
  // Appends to `out` the ids of the bytes s[0, n) after merging, the pair of
  // lowest rank first. `symbols` is the caller's scratch.
  void encode(const char* s, size_t n, std::vector<int32_t>& symbols, std::vector<int64_t>& out) const;

  std::vector<std::string> spelling;               // (V) by id; "" in a gap of the numbering
  std::vector<uint8_t> present;                    // (V) 1 = the id has a token
  std::unordered_map<std::string, int32_t> vocab;  // spelling -> id
  // ignore_merges: the tokens by the bytes they spell (byte-level ones only);
  // the keys view into vocab_bytes, whose elements never move.
  std::deque<std::string> vocab_bytes;
  std::unordered_map<std::string_view, int32_t> vocab_by_bytes;
  std::array<int32_t, 256> byte_id{};  // the token of each byte's symbol; -1 = missing
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  bool ignore_merges = false;
};

}  // namespace grpo::hf
