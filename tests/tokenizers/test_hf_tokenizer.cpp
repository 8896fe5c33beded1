// HFTokenizer on the tokenizer.json fixtures of tests/fixtures/tokenizers (made by
// make_fixtures.py): ids worked out by hand from the BPE rules on the tiny ones, and
// golden ids from Hugging Face `tokenizers` (make_golden.py) over seeded random texts.
// Byte-level ids in the tiny fixtures follow GPT-2: the 256 byte symbols sorted by code
// point, so a printable ASCII character c has id c - 33 and 'Ġ' (space) has id 220.
#include <grpo/tokenizers/hf_tokenizer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace {

using grpo::HFTokenizer;
using nlohmann::json;
using Ids = std::vector<int64_t>;

const std::string kDir = std::string(GRPO_TEST_DATA_DIR) + "/tokenizers";

HFTokenizer load(const std::string& name) { return HFTokenizer::load_dir(kDir + "/" + name); }

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// from_json on a fixture's tokenizer.json after a JSON merge patch.
HFTokenizer patched(const std::string& name, const json& patch, const std::string& eos = "<|endoftext|>") {
  json j = read_json(kDir + "/" + name + "/tokenizer.json");
  j.merge_patch(patch);
  grpo::HFSpecialTokens special;
  special.eos = eos;
  return HFTokenizer::from_json(j, name + "/tokenizer.json", special);
}

int64_t ascii(char c) { return c - 33; }  // a printable ASCII byte's symbol id

// GPT-2's spelling of bytes (to compare with the pieces `tokenizers` reports).
std::string byte_level(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    int cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174))) {
      int n = 0;
      for (int k = 0; k < b; ++k) n += !((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || (k >= 174));
      cp = 256 + n;
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// ---------------------------------------------------------------- GPT-2 style

TEST(HFTokenizerGpt2, PreTokenizesAsGpt2) {
  const HFTokenizer t = load("gpt2_tiny");
  // GPT-2's own split of this text; "  test" keeps one space apart by \s+(?!\S).
  EXPECT_EQ(t.pre_tokenize("Hello world's  test\n\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " test", "\n\n"}));
  EXPECT_EQ(t.pre_tokenize("a   b"), (std::vector<std::string>{"a", "  ", " b"}));
  EXPECT_EQ(t.pre_tokenize("(hello) 12ab"), (std::vector<std::string>{"(", "hello", ")", " 12", "ab"}));
  EXPECT_EQ(t.pre_tokenize("x<|endoftext|> y"), (std::vector<std::string>{"x", "<|endoftext|>", " y"}));
}

TEST(HFTokenizerGpt2, EncodesByMergeRank) {
  const HFTokenizer t = load("gpt2_tiny");
  // Merge ranks (make_fixtures.py): 0 Ġ t, 1 l l, 2 e ll, 3 h e, 4 h ell, 5 hell o, 6 Ġ hello, ...
  // id = 256 + rank.
  // "Hello": H e l l o -> (l l) r1 -> H e ll o -> (e ll) r2 -> H ell o; no "H ell" merge.
  // " world": (o r) r8 -> (w or) r9 -> (Ġ wor) r10 -> (l d) r11 -> (Ġwor ld) r12 = 268.
  // "'s" r13 = 269; " " = Ġ 220; " test": (Ġ t) r0, (e s) r21, (Ġt es) r22, (Ġtes t) r23 = 279;
  // "\n\n": (Ċ Ċ) r15 = 271.
  EXPECT_EQ(t.encode("Hello world's  test\n\n"), (Ids{ascii('H'), 258, ascii('o'), 268, 269, 220, 279, 271}));
  // "hello": (l l) r1 and (h e) r3 are both possible; r1 goes first, so (e ll) r2
  // can follow and the word reaches one token; left to right it would stop at he|ll|o.
  EXPECT_EQ(t.encode("hello"), (Ids{261}));
  EXPECT_EQ(t.encode(" hello"), (Ids{262}));
  // "abc": (b c) r18 beats (a b) r19 although "ab" comes first.
  EXPECT_EQ(t.encode("abc"), (Ids{ascii('a'), 274}));
  // Equal ranks merge leftmost first: l l l -> ll l, not l ll.
  EXPECT_EQ(t.encode("lll"), (Ids{257, ascii('l')}));
  EXPECT_EQ(t.encode("abab"), (Ids{275, 275}));
  // " ?\p{N}+": 1 2 3 4 5 -> (1 2) r16 -> (12 3) r17 -> 123 4 5.
  EXPECT_EQ(t.encode("12345"), (Ids{273, ascii('4'), ascii('5')}));
  // "a   b" -> "a" "  " " b": (Ġ Ġ) r14 = 270, then Ġ b (no merge).
  EXPECT_EQ(t.encode("a   b"), (Ids{ascii('a'), 270, 220, ascii('b')}));
  // "it's" -> "it" "'s".
  EXPECT_EQ(t.encode("it's"), (Ids{ascii('i'), ascii('t'), 269}));
}

TEST(HFTokenizerGpt2, NonAsciiBecomesBytes) {
  const HFTokenizer t = load("gpt2_tiny");
  // Byte symbols sorted by code point: bytes 0xA1..0xAC -> ids 94..105, 0xAE..0xFF -> 106..,
  // then the 68 remapped bytes (0x00..0x20, 0x7F..0xA0, 0xAD) -> U+0100.. = ids 188..255.
  // "é" = C3 A9 -> merge (Ã ©) r20 = 276.
  EXPECT_EQ(t.encode("é"), (Ids{276}));
  // "中" = E4 B8 AD: 'ä' 106 + (0xE4 - 0xAE) = 160, '¸' 106 + (0xB8 - 0xAE) = 116, 0xAD -> U+0143 = 255.
  EXPECT_EQ(t.encode("中"), (Ids{160, 116, 255}));
  // "😀" = F0 9F 98 80: F0 -> 172; 9F, 98, 80 are remapped: 188 + 33 + (b - 0x7F) = 253, 246, 222.
  EXPECT_EQ(t.encode("😀"), (Ids{172, 253, 246, 222}));
  EXPECT_EQ(t.decode({160, 116, 255}), "中");
  // Part of a character stays the bytes it is (no U+FFFD), so pieces concatenate.
  EXPECT_EQ(t.decode({160, 116}), "\xE4\xB8");
  EXPECT_EQ(t.decode({160, 116}) + t.decode({255}), "中");
}

TEST(HFTokenizerGpt2, AddedTokenSplitsText) {
  const HFTokenizer t = load("gpt2_tiny");
  EXPECT_EQ(t.encode("a<|endoftext|>b"), (Ids{ascii('a'), 280, ascii('b')}));
  // The text on each side is pre-tokenized on its own: " b" keeps its space.
  EXPECT_EQ(t.encode("a <|endoftext|> b"), (Ids{ascii('a'), 220, 280, 220, ascii('b')}));
  // A partial spelling is plain text.
  const Ids partial = t.encode("<|endoftext|");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), 280), 0);
  EXPECT_EQ(t.decode(partial), "<|endoftext|");
  EXPECT_EQ(t.decode({ascii('a'), 280, ascii('b')}), "a<|endoftext|>b");
  EXPECT_EQ(t.decode({ascii('a'), 280, ascii('b')}, /*skip_special=*/true), "ab");
}

TEST(HFTokenizerGpt2, SpecialTokensFromModelConfig) {
  const HFTokenizer t = load("gpt2_tiny");  // config.json names EOS (and BOS) by id 280
  EXPECT_EQ(t.eos_id(), 280);
  EXPECT_EQ(t.pad_id(), 280);  // no PAD anywhere: EOS
  EXPECT_FALSE(t.bos_id());    // GPT-2's post_processor adds nothing
  EXPECT_EQ(t.vocab_size(), 281);
  EXPECT_TRUE(t.is_special(280));
  EXPECT_FALSE(t.is_special(262));
  EXPECT_FALSE(t.is_special(281));
  EXPECT_FALSE(t.is_special(-1));
  EXPECT_EQ(t.id_to_token(262), "Ġhello");
  EXPECT_EQ(t.id_to_token(280), "<|endoftext|>");
  EXPECT_EQ(t.token_to_id("Ġhello"), 262);
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 280);
  EXPECT_FALSE(t.token_to_id("hello world"));
  EXPECT_EQ(t.encode_prompt("hello"), (Ids{261}));
}

// ---------------------------------------------------------------- Llama 3 style

TEST(HFTokenizerLlama3, SplitRegexAndIgnoreMerges) {
  const HFTokenizer t = load("llama3_tiny");
  // \p{N}{1,3}: digits in threes; (12 3) -> 260.
  EXPECT_EQ(t.pre_tokenize("12345"), (std::vector<std::string>{"123", "45"}));
  EXPECT_EQ(t.encode("12345"), (Ids{260, ascii('4'), ascii('5')}));
  // [^\r\n\p{L}\p{N}]?\p{L}+ takes one leading punctuation mark into the word.
  EXPECT_EQ(t.pre_tokenize("(hello"), (std::vector<std::string>{"(hello"}));
  // Case-insensitive contractions; "'S" has no merge (only "' s" = 262).
  EXPECT_EQ(t.pre_tokenize("IT'S it's"), (std::vector<std::string>{"IT", "'S", " it", "'s"}));
  EXPECT_EQ(t.encode("'S'so"), (Ids{ascii('\''), ascii('S'), 262, ascii('o')}));
  // \s*[\r\n]+ keeps spaces before newlines with them.
  EXPECT_EQ(t.pre_tokenize("a  \n\nb"), (std::vector<std::string>{"a", "  \n\n", "b"}));
  EXPECT_EQ(t.encode("a\n\nb"), (Ids{ascii('a'), 261, ascii('b')}));
  // ignore_merges: " xyz" is the vocabulary entry 265 although merges give Ġx (263) yz (264);
  // "    x" -> "   " (\s+(?!\S)) = ĠĠĠ 266, which no merge reaches, then " x" = 263.
  EXPECT_EQ(t.encode(" xyz"), (Ids{265}));
  EXPECT_EQ(t.encode("    x"), (Ids{266, 263}));
  const HFTokenizer merged = patched("llama3_tiny", {{"model", {{"ignore_merges", false}}}}, "<|eot_id|>");
  EXPECT_EQ(merged.encode(" xyz"), (Ids{263, 264}));
  EXPECT_EQ(merged.encode("    x"), (Ids{220, 220, 220, 263}));
}

TEST(HFTokenizerLlama3, SpecialTokensAndBos) {
  const HFTokenizer t = load("llama3_tiny");
  EXPECT_EQ(t.encode("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"),
            (Ids{269, ascii('u'), ascii('s'), ascii('e'), ascii('r'), 270, 261, ascii('h'), ascii('i'), 271}));
  EXPECT_EQ(t.eos_id(), 271);  // tokenizer_config.json's eos_token wins over generation_config.json
  EXPECT_EQ(t.pad_id(), 271);  // no pad_token: EOS
  EXPECT_EQ(t.bos_id(), 267);  // TemplateProcessing puts <|begin_of_text|> first
  EXPECT_EQ(t.encode("hi"), (Ids{ascii('h'), ascii('i')}));  // encode itself adds no BOS
  EXPECT_EQ(t.encode_prompt("hi"), (Ids{267, ascii('h'), ascii('i')}));
  EXPECT_TRUE(t.is_special(267));
  EXPECT_TRUE(t.is_special(271));
  EXPECT_FALSE(t.is_special(266));
  EXPECT_EQ(t.vocab_size(), 272);
  EXPECT_EQ(t.id_to_token(266), "ĠĠĠ");
  EXPECT_EQ(t.token_to_id("<|eot_id|>"), 271);
}

TEST(HFTokenizerLlama3, AddBosTokenInConfigDecides) {
  TempDir dir("hf_add_bos");
  write_text(dir / "tokenizer.json", read_text(kDir + "/llama3_tiny/tokenizer.json"));
  write_text(dir / "tokenizer_config.json",
             R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "add_bos_token": false})");
  EXPECT_FALSE(HFTokenizer::load_dir(dir.path.string()).bos_id());
  write_text(dir / "tokenizer_config.json",
             R"({"bos_token": {"content": "<|end_of_text|>"}, "eos_token": "<|eot_id|>", "add_bos_token": true})");
  EXPECT_EQ(HFTokenizer::load_dir(dir.path.string()).bos_id(), 268);
  // Without tokenizer_config.json, generation_config.json's ids: EOS is the first of the list.
  std::filesystem::remove(dir / "tokenizer_config.json");
  write_text(dir / "generation_config.json", R"({"bos_token_id": 267, "eos_token_id": [268, 271]})");
  const HFTokenizer t = HFTokenizer::load_dir(dir.path.string());
  EXPECT_EQ(t.eos_id(), 268);
  EXPECT_EQ(t.bos_id(), 267);
}

// ---------------------------------------------------------------- Qwen2 style

TEST(HFTokenizerQwen2, NfcBeforeBytes) {
  const HFTokenizer t = load("qwen2_tiny");
  // "café" = c a f C3 A9: (Ã ©) r0, (a f) r1, (c af) r2, (caf é) r4 = 260.
  EXPECT_EQ(t.encode("café"), (Ids{260}));
  // e + U+0301 (combining acute) is é after NFC, so the same single token.
  EXPECT_EQ(t.encode("cafe\u0301"), (Ids{260}));
  EXPECT_EQ(t.decode(t.encode("cafe\u0301")), "café");  // decode gives the NFC text
  // " café": after r0..r2 both (Ġ caf) r3 and (caf é) r4 apply; r3 first, then (Ġcaf é) r5.
  EXPECT_EQ(t.encode(" café"), (Ids{261}));
  // Without the normalizer: "cafe" (caf 258, e) then U+0301 = CC 81 on its own
  // (a mark is not \p{L}): 0xCC -> 106 + 0x1E = 136, 0x81 -> 188 + 33 + 2 = 223.
  const HFTokenizer raw = patched("qwen2_tiny", {{"normalizer", nullptr}}, "<|im_end|>");
  EXPECT_EQ(raw.encode("cafe\u0301"), (Ids{258, ascii('e'), 136, 223}));
  // \p{N}: one digit a piece.
  EXPECT_EQ(t.encode("123"), (Ids{ascii('1'), ascii('2'), ascii('3')}));
  // 中 = E4 B8 AD: (ä ¸) r6, (ä¸ Ń) r7 = 263.
  EXPECT_EQ(t.encode("中"), (Ids{263}));
}

TEST(HFTokenizerQwen2, ChatTokens) {
  const HFTokenizer t = load("qwen2_tiny");
  EXPECT_EQ(t.encode("a<|im_end|>b"), (Ids{ascii('a'), 266, ascii('b')}));
  // '\n' is byte 0x0A -> U+010A 'Ċ' = 188 + 10.
  EXPECT_EQ(t.encode("<|im_start|>user\nhi<|im_end|>\n"),
            (Ids{265, ascii('u'), ascii('s'), ascii('e'), ascii('r'), 198, ascii('h'), ascii('i'), 266, 198}));
  EXPECT_EQ(t.eos_id(), 266);  // eos_token "<|im_end|>"
  EXPECT_EQ(t.pad_id(), 264);  // pad_token given as {"content": "<|endoftext|>", ...}
  EXPECT_FALSE(t.bos_id());    // bos_token null, no template
  EXPECT_EQ(t.decode({ascii('a'), 266, 265, ascii('b')}, /*skip_special=*/true), "ab");
}

// ---------------------------------------------------------------- golden ids from `tokenizers`

TEST(HFTokenizerGolden, MatchesHuggingFaceTokenizers) {
  const json golden = read_json(kDir + "/golden.json");
  ASSERT_GE(golden["variants"].size(), 10u);
  size_t checked = 0, pre_checked = 0;
  for (const json& v : golden["variants"]) {
    const std::string name = v["name"];
    json j = read_json(kDir + "/" + v["base"].get<std::string>() + "/tokenizer.json");
    j.merge_patch(v["patch"]);
    grpo::HFSpecialTokens special;
    special.eos = j["added_tokens"][0]["content"].get<std::string>();
    const HFTokenizer t = HFTokenizer::from_json(j, name, special);
    for (const json& c : v["cases"]) {
      const std::string text = c["text"];
      EXPECT_EQ(t.encode(text), c["ids"].get<Ids>()) << name << ": " << json(text).dump();
      ++checked;
      // `tokenizers` reports its pre-tokenizer alone: no added tokens, no normalizer.
      if (c.contains("pre_tokens") && text.find("<|") == std::string::npos) {
        std::vector<std::string> pieces;
        for (const std::string& p : t.pre_tokenize(text)) pieces.push_back(byte_level(p));
        EXPECT_EQ(pieces, c["pre_tokens"].get<std::vector<std::string>>()) << name << ": " << json(text).dump();
        ++pre_checked;
      }
    }
  }
  EXPECT_GE(checked, 2000u);
  EXPECT_GE(pre_checked, 400u);
}

// ---------------------------------------------------------------- round trip

std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> atoms = {"hello",
                                                 " world",
                                                 "The",
                                                 "'s",
                                                 "'LL",
                                                 " ",
                                                 "  ",
                                                 "\t",
                                                 "\n",
                                                 "\n\n",
                                                 "\r\n",
                                                 "12345",
                                                 "3.14",
                                                 "é",
                                                 "Straße",
                                                 "中文",
                                                 "日本語",
                                                 "한국어",
                                                 "Привет",
                                                 "😀",
                                                 "👍🏽",
                                                 "👨‍👩‍👧",
                                                 "❤️",
                                                 ",",
                                                 "...",
                                                 "—",
                                                 "“",
                                                 "\u00a0",
                                                 "\u3000",
                                                 "\u200b",
                                                 "\x01",
                                                 "\x7f",
                                                 "<|endoftext|>",
                                                 "<|im_start|>",
                                                 "<|im_end|>",
                                                 "<|eot_id|>",
                                                 "<|begin_of_text|>",
                                                 "<|",
                                                 "|>",
                                                 "<|im_",
                                                 "hello" + std::string(60, 'a'),
                                                 std::string(70, ' ')};
  std::uniform_int_distribution<size_t> count(0, 12), pick(0, atoms.size() - 1);
  std::string t;
  for (size_t n = count(rng); n > 0; --n) t += atoms[pick(rng)];
  return t;
}

TEST(HFTokenizerRoundTrip, DecodeEncodeIsIdentity) {
  std::mt19937 rng(1234);
  for (const char* name : {"gpt2_tiny", "llama3_tiny", "qwen2_tiny", "trained"}) {
    const HFTokenizer t = load(name);
    for (int i = 0; i < 300; ++i) {
      const std::string text = random_text(rng);
      const Ids ids = t.encode(text);
      EXPECT_EQ(t.decode(ids), text) << name << ": " << json(text).dump();
      // One id at a time gives the same bytes.
      std::string pieces;
      for (int64_t id : ids) pieces += t.decode({id});
      EXPECT_EQ(pieces, text) << name;
    }
  }
}

TEST(HFTokenizerRoundTrip, LongInputs) {
  const HFTokenizer t = load("trained");
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "The license's terms, version " + std::to_string(i) + ";\n  中文 😀\t";
  EXPECT_EQ(t.decode(t.encode(text)), text);
  // One long pre-token (the heap merge path) and long whitespace runs.
  for (const std::string& s : {std::string(100000, 'a'), std::string(100000, ' '), std::string(50000, '\n') + "x",
                               std::string(30000, ' ') + "x" + std::string(30000, '\t')}) {
    EXPECT_EQ(t.decode(t.encode(s)), s);
  }
}

// ---------------------------------------------------------------- threads

TEST(HFTokenizerThreads, ConcurrentEncodeGivesSameIds) {
  const HFTokenizer t = load("qwen2_tiny");
  std::mt19937 rng(7);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(random_text(rng) + "cafe\u0301");
  std::vector<Ids> expected;
  for (const auto& s : texts) expected.push_back(t.encode(s));
  std::vector<std::vector<Ids>> got(2);
  std::vector<std::thread> threads;
  for (int k = 0; k < 2; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep) {
        got[k].clear();
        for (const auto& s : texts) got[k].push_back(t.encode(s));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(got[0], expected);
  EXPECT_EQ(got[1], expected);
}

// ---------------------------------------------------------------- save_to

TEST(HFTokenizerSave, SaveToLoadsBackTheSame) {
  const HFTokenizer t = load("llama3_tiny");
  TempDir dir("hf_save");
  ASSERT_TRUE(t.save_to(dir.path.string()));
  EXPECT_EQ(read_text(dir / "tokenizer.json"), read_text(kDir + "/llama3_tiny/tokenizer.json"));
  const json config = read_json(dir / "tokenizer_config.json");
  EXPECT_EQ(config["eos_token"], "<|eot_id|>");
  EXPECT_EQ(config["model_max_length"], 131072);  // the rest of the loaded config is kept
  const HFTokenizer back = HFTokenizer::load_dir(dir.path.string());
  EXPECT_EQ(back.eos_id(), t.eos_id());
  EXPECT_EQ(back.pad_id(), t.pad_id());
  EXPECT_EQ(back.bos_id(), t.bos_id());
  EXPECT_EQ(back.encode("Hello <|eot_id|> 12345"), t.encode("Hello <|eot_id|> 12345"));

  const HFTokenizer q = load("qwen2_tiny");
  TempDir dir2("hf_save_qwen");
  ASSERT_TRUE(q.save_to(dir2.path.string()));
  const HFTokenizer qback = HFTokenizer::load_dir(dir2.path.string());
  EXPECT_EQ(qback.pad_id(), 264);
  EXPECT_FALSE(qback.bos_id());
}

// ---------------------------------------------------------------- errors

TEST(HFTokenizerErrors, Files) {
  EXPECT_HAS(error_of([] { HFTokenizer::load_dir("/no/such/folder"); }), "/no/such/folder");
  TempDir dir("hf_errors");
  const std::string d = dir.path.string();
  std::string e = error_of([&] { HFTokenizer::load_dir(d); });
  EXPECT_HAS(e, "no tokenizer.json");
  EXPECT_HAS(e, d);

  write_text(dir / "tokenizer.json", "{\"model\": ");
  e = error_of([&] { HFTokenizer::load_dir(d); });
  EXPECT_HAS(e, dir / "tokenizer.json");
  EXPECT_HAS(e, "invalid JSON");

  // No EOS anywhere: the message names the folder.
  write_text(dir / "tokenizer.json", read_text(kDir + "/trained/tokenizer.json"));
  e = error_of([&] { HFTokenizer::load_dir(d); });
  EXPECT_HAS(e, d);
  EXPECT_HAS(e, "no EOS token");

  write_text(dir / "tokenizer_config.json", R"({"eos_token": "<|nope|>"})");
  e = error_of([&] { HFTokenizer::load_dir(d); });
  EXPECT_HAS(e, "EOS token \"<|nope|>\" is not in the vocabulary");

  write_text(dir / "tokenizer_config.json", R"({"eos_token": 5})");
  e = error_of([&] { HFTokenizer::load_dir(d); });
  EXPECT_HAS(e, dir / "tokenizer_config.json");
  EXPECT_HAS(e, "\"eos_token\" must be a string");

  std::filesystem::remove(dir / "tokenizer_config.json");
  write_text(dir / "config.json", R"({"eos_token_id": 99999})");
  e = error_of([&] { HFTokenizer::load_dir(d); });
  EXPECT_HAS(e, dir / "config.json");
  EXPECT_HAS(e, "99999");
}

// Found by fuzz/fuzz_tokenizer_json: an id of 2^31 - 1 made a table of 2^31
// spellings (tens of GB, minutes) before anything was checked.
TEST(HFTokenizerErrors, AHugeVocabularyIdIsRefusedBeforeAllocating) {
  const std::string e = error_of([] { patched("gpt2_tiny", {{"model", {{"vocab", {{"far", 2147483647}}}}}}); });
  EXPECT_HAS(e, "gpt2_tiny/tokenizer.json");
  EXPECT_HAS(e, "model.vocab[\"far\"] must be an id in [0, 4194304), got 2147483647");
}

// Found by fuzz/fuzz_tokenizer_json: a TemplateProcessing special_tokens entry
// without "ids" (or not an object) was read with nlohmann's const operator[],
// an assertion, or undefined behaviour in a release build, not an error.
TEST(HFTokenizerErrors, ATemplateSpecialTokenWithoutIdsIsAnError) {
  const json single = {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}};
  for (const json& entry : {json{{"id", "<|begin_of_text|>"}, {"id#s", {267}}}, json("<|begin_of_text|>"),
                            json::array({267}), json{{"ids", {267, 268}}}}) {
    const std::string e = error_of([&] {
      patched("llama3_tiny",
              {{"post_processor",
                {{"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", {{"<|begin_of_text|>", entry}}}}}},
              "<|eot_id|>");
    });
    EXPECT_HAS(e, "llama3_tiny/tokenizer.json");
    EXPECT_HAS(e, "post_processor.special_tokens[\"<|begin_of_text|>\"].ids must be one id");
  }
}

TEST(HFTokenizerErrors, UnsupportedParts) {
  auto problem = [](const json& patch) { return error_of([&] { patched("gpt2_tiny", patch); }); };
  std::string e = problem({{"model", {{"type", "WordPiece"}}}});
  EXPECT_HAS(e, "gpt2_tiny/tokenizer.json");
  EXPECT_HAS(e, "model.type is \"WordPiece\"");
  e = problem({{"model", {{"byte_fallback", true}}}});
  EXPECT_HAS(e, "byte_fallback");
  EXPECT_HAS(e, "tokenizer.model");
  EXPECT_HAS(problem({{"model", {{"dropout", 0.1}}}}), "model.dropout");
  EXPECT_HAS(problem({{"model", {{"continuing_subword_prefix", "##"}}}}), "continuing_subword_prefix");
  EXPECT_HAS(problem({{"normalizer", {{"type", "Lowercase"}}}}), "normalizer type \"Lowercase\" is not supported");
  EXPECT_HAS(
      problem({{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "NFKD"}}}}}}}),
      "normalizer.normalizers[1] type \"NFKD\"");
  EXPECT_HAS(problem({{"pre_tokenizer", {{"type", "Whitespace"}}}}), "pre_tokenizer type \"Whitespace\"");
  e = problem({{"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "▁"}}}});
  EXPECT_HAS(e, "\"Metaspace\"");
  EXPECT_HAS(e, "SentencePieceTokenizer");
  EXPECT_HAS(problem({{"pre_tokenizer", nullptr}}), "pre_tokenizer is null");
  EXPECT_HAS(problem({{"pre_tokenizer",
                       {{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}}}}}}}),
             "does not compile");
  EXPECT_HAS(problem({{"decoder", {{"type", "WordPiece"}}}}), "decoder type \"WordPiece\"");
  EXPECT_HAS(problem({{"post_processor", {{"type", "Mystery"}}}}), "post_processor type \"Mystery\"");
}

TEST(HFTokenizerErrors, BadVocabularyOrMerges) {
  json j = read_json(kDir + "/gpt2_tiny/tokenizer.json");
  grpo::HFSpecialTokens special;
  special.eos = "<|endoftext|>";
  auto problem = [&](const json& tokenizer) {
    return error_of([&] { HFTokenizer::from_json(tokenizer, "here.json", special); });
  };
  json bad = j;
  bad["model"]["merges"].push_back("Ġ zz");
  std::string e = problem(bad);
  EXPECT_HAS(e, "here.json");
  EXPECT_HAS(e, "model.merges[24]: \"zz\" is not in model.vocab");
  bad = j;
  bad["model"]["merges"].push_back("x y");  // both known, "xy" is not
  EXPECT_HAS(problem(bad), "the merged token \"xy\" is not in model.vocab");
  bad = j;
  bad["model"]["merges"].push_back("a b c");
  EXPECT_HAS(problem(bad), "model.merges[24] is \"a b c\"");
  bad = j;
  bad["model"]["vocab"]["dup"] = 5;
  EXPECT_HAS(problem(bad), "id 5 is given to both");
  bad = j;
  bad["model"]["unk_token"] = "<unk>";
  bad["model"]["vocab"].erase("Ā");
  EXPECT_HAS(problem(bad), "unk_token");
  special.eos = std::nullopt;
  EXPECT_HAS(problem(j), "no EOS token given");
}

TEST(HFTokenizerErrors, BadInputAndIds) {
  const HFTokenizer t = load("gpt2_tiny");
  std::string e = error_of([&] {
    t.encode(
        "ab\xff"
        "cd");
  });
  EXPECT_HAS(e, "HFTokenizer::encode");
  EXPECT_HAS(e, "byte offset 2");
  EXPECT_HAS(error_of([&] { t.encode("\xe4\xb8"); }), "byte offset 0");
  e = error_of([&] { t.decode({1, 9999}); });
  EXPECT_HAS(e, "id 9999 at position 1");
  EXPECT_HAS(e, "[0, 281)");
  EXPECT_HAS(error_of([&] { t.decode({-1}); }), "id -1");
  EXPECT_HAS(error_of([&] { t.id_to_token(281); }), "id 281");

  // A byte whose symbol the vocabulary lacks cannot be spelled.
  json j = read_json(kDir + "/gpt2_tiny/tokenizer.json");
  j["model"]["vocab"].erase("Ā");  // byte 0x00
  grpo::HFSpecialTokens special;
  special.eos = "<|endoftext|>";
  const HFTokenizer holes = HFTokenizer::from_json(j, "holes.json", special);
  EXPECT_HAS(error_of([&] { holes.encode(std::string("a\0b", 3)); }), "byte 0x00");
  // Its id 188 is now a gap in the numbering: in range, but no token.
  EXPECT_EQ(holes.vocab_size(), 281);
  EXPECT_FALSE(holes.is_special(188));
  EXPECT_HAS(error_of([&] { holes.decode({ascii('a'), 188}); }), "id 188 at position 1 has no token");
  EXPECT_HAS(error_of([&] { holes.id_to_token(188); }), "id 188 has no token");
}

}  // namespace
