// The byte-level alphabet and the BPE model: parsing "model" and merging.
#include "tokenizers/hf_bpe.h"

#include <algorithm>
#include <climits>
#include <functional>
#include <queue>

#include "text/utf8.h"

namespace grpo::hf {

using text::next_code_point;
using text::utf8;

namespace {

// GPT-2's bytes_to_unicode: the 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand
// for themselves, the other 68 for U+0100, U+0101, ... in byte order (space = 'Ġ').
struct ByteAlphabet {
  std::array<uint32_t, 256> cp_of_byte{};
  std::array<int16_t, 324> byte_of_cp{};  // -1 = not a byte-level character
  ByteAlphabet() {
    byte_of_cp.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      cp_of_byte[b] = printable ? static_cast<uint32_t>(b) : next++;
      byte_of_cp[cp_of_byte[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

bool byte_level_decode(const std::string& spelling, std::string* bytes) {
  const ByteAlphabet& a = byte_alphabet();
  bytes->clear();
  for (size_t pos = 0; pos < spelling.size();) {
    uint32_t cp;
    const size_t len = next_code_point(spelling, pos, &cp);
    if (len == 0) return false;
    if (cp >= a.byte_of_cp.size() || a.byte_of_cp[cp] < 0) return false;
    *bytes += static_cast<char>(a.byte_of_cp[cp]);
    pos += len;
  }
  return true;
}

std::string byte_level_spelling(unsigned char b) { return utf8(byte_alphabet().cp_of_byte[b]); }

void BpeModel::parse(const json& m) {
  if (!m.is_object()) fail(std::string("\"model\" must be a JSON object, got ") + m.type_name());
  // Files written before `tokenizers` tagged its models have no "type"; merges say BPE.
  std::string type = "BPE";
  if (auto it = m.find("type"); it != m.end()) {
    if (!it->is_string()) fail("model.type must be a string, got " + it->dump());
    type = it->get<std::string>();
  } else if (!m.contains("merges")) {
    fail("model has no \"type\" (and no \"merges\", so it is not BPE)");
  }
  if (type != "BPE") fail("model.type is " + show(type) + "; only byte-level \"BPE\" is supported");
  if (get_bool(m, "byte_fallback", false, "model")) {
    fail(std::string("model.byte_fallback is true, which HFTokenizer does not support") + kSentencePieceHint);
  }
  if (auto it = m.find("dropout"); it != m.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) {
      fail("model.dropout is " + it->dump() + "; BPE dropout (random merges) is not supported, expected null");
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = m.find(key);
    if (it != m.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      fail(std::string("model.") + key + " is " + it->dump() + "; only null or \"\" is supported (byte-level BPE)");
    }
  }
  ignore_merges = get_bool(m, "ignore_merges", false, "model");

  auto v = m.find("vocab");
  if (v == m.end() || !v->is_object()) fail("model.vocab must be a JSON object of token -> id");
  // NB: ids index dense tables (a spelling per id), so a bound on them bounds
  // the memory a file can ask for; the largest vocabularies in use are ~260k.
  constexpr int64_t kMaxId = (int64_t{1} << 22) - 1;
  int64_t max_id = -1;
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > kMaxId) {
      fail("model.vocab[" + show(it.key()) + "] must be an id in [0, " + std::to_string(kMaxId + 1) + "), got " +
           it.value().dump());
    }
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  spelling.assign(static_cast<size_t>(max_id + 1), std::string());
  present.assign(spelling.size(), 0);
  vocab.reserve(v->size());
  for (auto it = v->begin(); it != v->end(); ++it) {
    const auto id = it.value().get<int32_t>();
    if (present[id]) {
      fail("model.vocab: id " + std::to_string(id) + " is given to both " + show(spelling[id]) + " and " +
           show(it.key()));
    }
    present[id] = 1;
    spelling[id] = it.key();
    vocab.emplace(it.key(), id);
  }

  byte_id.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (auto it = vocab.find(byte_level_spelling(static_cast<unsigned char>(b))); it != vocab.end()) {
      byte_id[b] = it->second;
    }
  }
  if (auto it = m.find("unk_token"); it != m.end() && !it->is_null()) {
    // With every byte symbol present the unknown token can never be emitted, so it is harmless.
    for (int b = 0; b < 256; ++b) {
      if (byte_id[b] < 0) {
        fail("model.unk_token is " + it->dump() + " and the byte symbol " + show(byte_level_spelling(b)) + " (byte 0x" +
             text::hex(static_cast<unsigned char>(b), 2) + ") is missing from model.vocab; unknown-token BPE is not supported");
      }
    }
  }

  auto ms = m.find("merges");
  if (ms != m.end() && !ms->is_null()) {
    if (!ms->is_array()) fail("model.merges must be an array");
    merges.reserve(ms->size());
    std::string left, right;
    for (size_t rank = 0; rank < ms->size(); ++rank) {
      const json& e = (*ms)[rank];
      const std::string at = "model.merges[" + std::to_string(rank) + "]";
      if (e.is_string()) {
        // The older form "a b"; byte-level symbols never contain a space.
        const std::string& s = e.get_ref<const std::string&>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
          fail(at + " is " + show(s) + ", expected two tokens separated by one space");
        }
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        left = e[0].get<std::string>();
        right = e[1].get<std::string>();
      } else {
        fail(at + " is " + e.dump() + ", expected \"a b\" or [\"a\", \"b\"]");
      }
      auto a = vocab.find(left);
      if (a == vocab.end()) fail(at + ": " + show(left) + " is not in model.vocab");
      auto b = vocab.find(right);
      if (b == vocab.end()) fail(at + ": " + show(right) + " is not in model.vocab");
      auto c = vocab.find(left + right);
      if (c == vocab.end()) {
        fail(at + ": the merged token " + show(left + right) + " is not in model.vocab");
      }
      // NB: a repeated pair takes its last rank, as `tokenizers`' map insert does.
      merges[(static_cast<uint64_t>(a->second) << 32) | static_cast<uint32_t>(b->second)] = {static_cast<int32_t>(rank),
                                                                                             c->second};
    }
  }
  if (ignore_merges) {
    std::string decoded;
    vocab_by_bytes.reserve(vocab.size());
    for (const auto& kv : vocab) {
      if (byte_level_decode(kv.first, &decoded) && !decoded.empty()) {
        vocab_bytes.push_back(decoded);
        vocab_by_bytes.emplace(vocab_bytes.back(), kv.second);
      }
    }
  }
}

void BpeModel::encode(const char* s, size_t n, std::vector<int32_t>& sym, std::vector<int64_t>& out) const {
  if (ignore_merges) {
    if (auto it = vocab_by_bytes.find(std::string_view(s, n)); it != vocab_by_bytes.end()) {
      out.push_back(it->second);
      return;
    }
  }
  sym.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    sym[i] = byte_id[b];
    if (sym[i] < 0) {
      fail("byte 0x" + text::hex(static_cast<unsigned char>(b), 2) + " (byte-level symbol " + show(byte_level_spelling(b)) + ") is not in the vocabulary");
    }
  }
  auto find = [&](int32_t a, int32_t b) -> const std::pair<int32_t, int32_t>* {
    auto it = merges.find((static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b));
    return it == merges.end() ? nullptr : &it->second;
  };
  // The pair of lowest rank merges first, the leftmost one among equals; the
  // `tokenizers` priority queue does the same. Short words rescan (cheaper in
  // practice); long ones keep a heap so a long run stays O(n log n).
  if (n <= 48) {
    size_t m = n;
    while (m > 1) {
      int32_t best_rank = INT32_MAX, best_id = -1;
      size_t best = 0;
      for (size_t i = 0; i + 1 < m; ++i) {
        if (const auto* r = find(sym[i], sym[i + 1]); r && r->first < best_rank) {
          best_rank = r->first, best_id = r->second, best = i;
        }
      }
      if (best_id < 0) break;
      sym[best] = best_id;
      std::copy(sym.begin() + best + 2, sym.begin() + m, sym.begin() + best + 1);
      --m;
    }
    for (size_t i = 0; i < m; ++i) out.push_back(sym[i]);
    return;
  }
  // Heap path: symbols in a linked list; an entry is stale when its pair has changed.
  std::vector<int32_t> prev(n), next(n);
  std::vector<uint8_t> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Entry {
    int32_t rank, pos, id;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const auto* r = find(sym[i], sym[i + 1])) heap.push({r->first, static_cast<int32_t>(i), r->second});
  }
  while (!heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const int32_t p = top.pos;
    if (!alive[p] || next[p] < 0) continue;
    const int32_t q = next[p];
    const auto* r = find(sym[p], sym[q]);
    if (!r || r->second != top.id) continue;
    sym[p] = top.id;
    alive[q] = 0;
    next[p] = next[q];
    if (next[p] >= 0) prev[next[p]] = p;
    if (prev[p] >= 0) {
      if (const auto* l = find(sym[prev[p]], sym[p])) heap.push({l->first, prev[p], l->second});
    }
    if (next[p] >= 0) {
      if (const auto* rr = find(sym[p], sym[next[p]])) heap.push({rr->first, p, rr->second});
    }
  }
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

}  // namespace grpo::hf
