// grpo::CharTokenizer: round trips of R1-tagged and multi-byte UTF-8 text,
// special-token matching (whole strings, longest first), errors that name the
// character / byte offset / id / file, JSON save and load, from_texts determinism.
#include <grpo/error.h>
#include <grpo/tokenizers/char_tokenizer.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using grpo::CharTokenizer;
using Ids = std::vector<int64_t>;

const std::string kR1Text = "<think>12+7=19</think><answer>19</answer>";

CharTokenizer arithmetic_tokenizer() {
  return CharTokenizer::from_texts({"0123456789+-*/=() <>", "What is 12+7? Answer:\n"});
}

// A fresh directory under the system temp dir, removed after each test.
class CharTokenizerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("grpo_tokenizer_" + std::string(info->name()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  fs::path dir_;
};

TEST(CharTokenizer, RoundTripsArithmeticWithR1Tags) {
  const CharTokenizer tok = arithmetic_tokenizer();
  const Ids ids = tok.encode(kR1Text);
  // 4 tags + "12+7=19" (7) + "19" (2).
  EXPECT_EQ(ids.size(), 13u);
  EXPECT_EQ(tok.decode(ids), kR1Text);
  const std::string prompt = "What is 12+7? Answer:\n";
  EXPECT_EQ(tok.decode(tok.encode(prompt)), prompt);
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_EQ(tok.decode({}), "");
}

TEST(CharTokenizer, RoundTripsMultiByteUtf8) {
  // 2-, 3- and 4-byte code points: é, π, ∑, 中, 😀.
  const std::string text = "café π≈3.14 ∑ 中文 😀!";
  const CharTokenizer tok = CharTokenizer::from_texts({text});
  const Ids ids = tok.encode(text);
  EXPECT_EQ(ids.size(), 19u);  // one id per code point
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode("π").size(), 1u);
  EXPECT_EQ(tok.encode("😀").size(), 1u);
  EXPECT_EQ(tok.id_to_token(tok.encode("é")[0]), "é");
}

TEST(CharTokenizer, SpecialTokenWinsOverItsCharacters) {
  const CharTokenizer tok = arithmetic_tokenizer();
  ASSERT_TRUE(tok.token_to_id("<").has_value());
  ASSERT_TRUE(tok.token_to_id(">").has_value());
  const int64_t think = *tok.token_to_id("<think>");
  EXPECT_EQ(tok.encode("<think>"), Ids{think});
  // A near miss of a special is its characters, one by one.
  const Ids near_miss = tok.encode("<thin>");
  EXPECT_EQ(near_miss.size(), 6u);
  EXPECT_EQ(tok.decode(near_miss), "<thin>");
  EXPECT_EQ(tok.encode("1<2"), (Ids{*tok.token_to_id("1"), *tok.token_to_id("<"), *tok.token_to_id("2")}));
}

TEST(CharTokenizer, LongestSpecialFirst) {
  const CharTokenizer tok = arithmetic_tokenizer();
  EXPECT_EQ(tok.encode("</think>"), Ids{*tok.token_to_id("</think>")});
  EXPECT_EQ(tok.encode("<</think>"), (Ids{*tok.token_to_id("<"), *tok.token_to_id("</think>")}));

  // Specials that are prefixes of each other: the longest that matches wins.
  const CharTokenizer nested =
      CharTokenizer::from_texts({"abc"}, {"<pad>", "<eos>", "<", "<<", "<<<"}, "<eos>", "<pad>");
  const int64_t one = *nested.token_to_id("<"), two = *nested.token_to_id("<<"), three = *nested.token_to_id("<<<");
  EXPECT_EQ(nested.encode("<<<<<"), (Ids{three, two}));
  EXPECT_EQ(nested.encode("<a<<"), (Ids{one, *nested.token_to_id("a"), two}));
  EXPECT_TRUE(nested.is_special(one));
}

TEST(CharTokenizer, UnknownCharacterErrorNamesItAndOffset) {
  const CharTokenizer tok = arithmetic_tokenizer();
  const std::string msg = error_of([&] { tok.encode("12+π=3"); });
  EXPECT_HAS(msg, "unknown character");
  EXPECT_HAS(msg, "'π'");
  EXPECT_HAS(msg, "U+03C0");
  EXPECT_HAS(msg, "byte offset 3");

  const std::string ascii = error_of([&] { tok.encode("<think>x"); });
  EXPECT_HAS(ascii, "'x' (U+0078)");
  EXPECT_HAS(ascii, "byte offset 7");

  // A control character is shown escaped, so the message stays on one line.
  const std::string control = error_of([&] { tok.encode(std::string("1\x01", 2)); });
  EXPECT_HAS(control, "U+0001");
  EXPECT_HAS(control, "byte offset 1");
  EXPECT_EQ(control.find('\x01'), std::string::npos) << control;
}

TEST(CharTokenizer, InvalidUtf8ErrorNamesOffset) {
  const CharTokenizer tok = CharTokenizer::from_texts({"aé"});
  const struct {
    std::string text;
    size_t offset;
  } cases[] = {
      {"a\xFF", 1},             // never valid in UTF-8
      {"aa\x80", 2},            // stray continuation byte
      {"a\xC3", 1},             // truncated 2-byte sequence
      {"\xC3" "a", 0},          // lead byte followed by a non-continuation
      {"a\xC0\xA0", 1},         // overlong encoding of ' '
      {"a\xED\xA0\x80", 1},     // UTF-16 surrogate U+D800
      {"\xF4\x90\x80\x80", 0},  // above U+10FFFF
  };
  for (const auto& c : cases) {
    const std::string msg = error_of([&] { tok.encode(c.text); });
    EXPECT_HAS(msg, "invalid UTF-8");
    EXPECT_HAS(msg, "byte offset " + std::to_string(c.offset));
  }
  const std::string corpus = error_of([&] { CharTokenizer::from_texts({"ok", "bad\xFF"}); });
  EXPECT_HAS(corpus, "text 1");
  EXPECT_HAS(corpus, "byte offset 3");
}

TEST(CharTokenizer, DecodeSkipSpecial) {
  const CharTokenizer tok = arithmetic_tokenizer();
  Ids ids = tok.encode(kR1Text);
  ids.push_back(tok.eos_id());
  ids.push_back(tok.pad_id());
  ids.push_back(tok.pad_id());
  EXPECT_EQ(tok.decode(ids), kR1Text + "<eos><pad><pad>");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "12+7=1919");
  for (const std::string& s : CharTokenizer::default_special_tokens()) {
    EXPECT_TRUE(tok.is_special(*tok.token_to_id(s))) << s;
  }
  EXPECT_FALSE(tok.is_special(*tok.token_to_id("<")));
  EXPECT_FALSE(tok.is_special(-1));
  EXPECT_FALSE(tok.is_special(tok.vocab_size()));
}

TEST(CharTokenizer, OutOfRangeIdError) {
  const CharTokenizer tok = arithmetic_tokenizer();
  const int64_t V = tok.vocab_size();
  const std::string high = error_of([&] { tok.decode({0, 1, V}); });
  EXPECT_HAS(high, "id " + std::to_string(V));
  EXPECT_HAS(high, "position 2");
  EXPECT_HAS(high, "[0, " + std::to_string(V) + ")");
  EXPECT_HAS(error_of([&] { tok.decode({-3}, true); }), "id -3");
  EXPECT_HAS(error_of([&] { tok.id_to_token(V + 5); }), "id " + std::to_string(V + 5));
}

TEST(CharTokenizer, LookupsAndIds) {
  const CharTokenizer tok = arithmetic_tokenizer();
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_FALSE(tok.bos_id().has_value());
  EXPECT_EQ(tok.id_to_token(0), "<pad>");
  EXPECT_EQ(tok.token_to_id("<answer>"), std::optional<int64_t>(4));
  EXPECT_FALSE(tok.token_to_id("<unk>").has_value());
  EXPECT_FALSE(tok.token_to_id("12").has_value());
  for (int64_t id = 0; id < tok.vocab_size(); ++id) EXPECT_EQ(tok.token_to_id(tok.id_to_token(id)), id);

  // An explicit vocabulary with a BOS, and EOS doubling as PAD (as many HF models do).
  const CharTokenizer explicit_vocab({"<s>", "</s>", "a", "b", "<think>"}, {"<s>", "</s>", "<think>"}, "</s>",
                                     "</s>", std::string("<s>"));
  EXPECT_EQ(explicit_vocab.vocab_size(), 5);
  EXPECT_EQ(explicit_vocab.eos_id(), 1);
  EXPECT_EQ(explicit_vocab.pad_id(), 1);
  EXPECT_EQ(explicit_vocab.bos_id(), std::optional<int64_t>(0));
  EXPECT_EQ(explicit_vocab.encode("a<think>b"), (Ids{2, 4, 3}));

  // Usable through the interface.
  const grpo::Tokenizer& base = tok;
  EXPECT_EQ(base.decode(base.encode(kR1Text)), kR1Text);
}

TEST(CharTokenizer, ConstructorRejectsBadVocabulary) {
  const std::vector<std::string> specials = {"<pad>", "<eos>"};
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "a", "b", "a"}, specials, "<eos>", "<pad>"); }),
             "duplicate token \"a\" at ids 2 and 4");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "ab"}, specials, "<eos>", "<pad>"); }),
             "\"ab\" is 2 code points but not a special token");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", ""}, specials, "<eos>", "<pad>"); }),
             "empty string");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "\xFF"}, specials, "<eos>", "<pad>"); }),
             "invalid UTF-8");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "a"}, specials, "<eos>", "<pad>"); }),
             "special token \"<eos>\" is not in the vocabulary");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "a"}, specials, "<end>", "<pad>"); }),
             "EOS token \"<end>\" is not in the vocabulary");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "a"}, specials, "a", "<pad>"); }),
             "EOS token \"a\" must be one of the special tokens");
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "a"}, {"<pad>", "<eos>", "<pad>"}, "<eos>", "<pad>"); }),
             "listed twice");
  EXPECT_HAS(error_of([&] { CharTokenizer({}, {}, "<eos>", "<pad>"); }), "empty");
  // Every message says where it came from.
  EXPECT_HAS(error_of([&] { CharTokenizer({"<pad>", "<eos>", "ab"}, specials, "<eos>", "<pad>"); }), "CharTokenizer:");
  EXPECT_HAS(error_of([&] { CharTokenizer::from_texts({"a"}, {"<pad>"}); }), "\"<eos>\"");
}

TEST(CharTokenizer, FromTextsIsDeterministic) {
  const std::vector<std::string> corpus = {"b=2", "a+1", "é<π", "a+1", "<think>"};
  const CharTokenizer first = CharTokenizer::from_texts(corpus);
  std::vector<std::string> shuffled = corpus;
  std::reverse(shuffled.begin(), shuffled.end());
  shuffled.push_back("ba");  // repeated characters add nothing
  const CharTokenizer second = CharTokenizer::from_texts(shuffled);
  EXPECT_EQ(first.tokens(), second.tokens());
  // Specials first in the given order, then characters by code point.
  std::vector<std::string> want = CharTokenizer::default_special_tokens();
  for (const char* c : {"+", "1", "2", "<", "=", ">", "a", "b", "h", "i", "k", "n", "t", "é", "π"}) {
    want.push_back(c);
  }
  EXPECT_EQ(first.tokens(), want);
  EXPECT_EQ(first.special_tokens(), CharTokenizer::default_special_tokens());
  // A special that is a single code point is not added again as a character.
  const CharTokenizer single = CharTokenizer::from_texts({"a\nb"}, {"<pad>", "<eos>", "\n"}, "<eos>", "<pad>");
  EXPECT_EQ(single.tokens(), (std::vector<std::string>{"<pad>", "<eos>", "\n", "a", "b"}));
  EXPECT_TRUE(single.is_special(2));
}

TEST(CharTokenizer, EncodeBatch) {
  const CharTokenizer tok = arithmetic_tokenizer();
  const auto batch = tok.encode_batch({"1+1", kR1Text, ""});
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0], tok.encode("1+1"));
  EXPECT_EQ(batch[1], tok.encode(kR1Text));
  EXPECT_TRUE(batch[2].empty());
  const std::string msg = error_of([&] { tok.encode_batch({"1", "2", "3x"}); });
  EXPECT_HAS(msg, "text 2 of 3");
  EXPECT_HAS(msg, "'x'");
  EXPECT_HAS(msg, "byte offset 1");
}

TEST(CharTokenizer, JsonRoundTrip) {
  const CharTokenizer tok({"<s>", "<pad>", "</s>", "x", "é"}, {"</s>", "<pad>", "<s>"}, "</s>", "<pad>",
                          std::string("<s>"));
  const nlohmann::json j = tok.to_json();
  EXPECT_EQ(j.at("type"), "char");
  EXPECT_EQ(j.at("eos"), "</s>");
  EXPECT_EQ(j.at("bos"), "<s>");
  const CharTokenizer back = CharTokenizer::from_json(j);
  EXPECT_EQ(back.tokens(), tok.tokens());
  EXPECT_EQ(back.special_tokens(), tok.special_tokens());
  EXPECT_EQ(back.eos_id(), 2);
  EXPECT_EQ(back.pad_id(), 1);
  EXPECT_EQ(back.bos_id(), std::optional<int64_t>(0));
  EXPECT_TRUE(arithmetic_tokenizer().to_json().at("bos").is_null());

  nlohmann::json bad = j;
  bad["type"] = "bpe";
  EXPECT_HAS(error_of([&] { CharTokenizer::from_json(bad); }), "\"type\" is \"bpe\", expected \"char\"");
  bad = j;
  bad["specials"] = nlohmann::json::array();
  EXPECT_HAS(error_of([&] { CharTokenizer::from_json(bad); }), "unknown key \"specials\"");
  bad = j;
  bad["tokens"][3] = 7;
  EXPECT_HAS(error_of([&] { CharTokenizer::from_json(bad); }), "\"tokens\"[3] must be a string, got number");
  bad = j;
  bad["bos"] = 0;
  EXPECT_HAS(error_of([&] { CharTokenizer::from_json(bad); }), "\"bos\" must be a string or null");
  bad = j;
  bad.erase("bos");
  EXPECT_FALSE(CharTokenizer::from_json(bad).bos_id().has_value());
  EXPECT_HAS(error_of([&] { CharTokenizer::from_json(nlohmann::json::array()); }), "expected a JSON object");
}

TEST_F(CharTokenizerFiles, SaveLoadRoundTrip) {
  const CharTokenizer tok = CharTokenizer::from_texts({"12+7=19", "π≈3.14 café"});
  const std::string file = path("tokenizer.json");
  tok.save(file);
  EXPECT_FALSE(fs::exists(file + ".tmp"));
  const CharTokenizer back = CharTokenizer::load(file);
  EXPECT_EQ(back.tokens(), tok.tokens());
  EXPECT_EQ(back.special_tokens(), tok.special_tokens());
  EXPECT_EQ(back.eos_id(), tok.eos_id());
  EXPECT_EQ(back.pad_id(), tok.pad_id());
  EXPECT_EQ(back.bos_id(), tok.bos_id());
  const std::string text = "<think>π≈3.14</think><answer>3.14</answer>";
  EXPECT_EQ(back.encode(text), tok.encode(text));

  // The file is plain JSON with "type" first; saving again replaces it.
  std::ifstream in(file);
  const std::string head((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(head.find("\"type\""), head.find('"')) << head;
  CharTokenizer::from_texts({"xyz"}).save(file);
  EXPECT_EQ(CharTokenizer::load(file).tokens().back(), "z");
}

TEST_F(CharTokenizerFiles, SaveErrorNamesPathAndLeavesNothing) {
  const std::string file = path("no_such_dir/tokenizer.json");
  const std::string msg = error_of([&] { arithmetic_tokenizer().save(file); });
  EXPECT_HAS(msg, file);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file + ".tmp"));
}

TEST_F(CharTokenizerFiles, LoadErrorsNameFileAndProblem) {
  const std::string missing = path("missing.json");
  std::string msg = error_of([&] { CharTokenizer::load(missing); });
  EXPECT_HAS(msg, missing);
  EXPECT_HAS(msg, "no such file");

  EXPECT_HAS(error_of([&] { CharTokenizer::load(dir_.string()); }), "is a directory");

  const std::string malformed = write("malformed.json", "{\"type\": \"char\", \"tokens\": [\"a\",\n");
  msg = error_of([&] { CharTokenizer::load(malformed); });
  EXPECT_HAS(msg, malformed);
  EXPECT_HAS(msg, "invalid JSON");
  EXPECT_HAS(msg, "line 2");

  const std::string no_eos = write(
      "no_eos.json", R"({"type": "char", "tokens": ["<pad>", "<eos>", "a"], "special_tokens": ["<pad>", "<eos>"],
                         "pad": "<pad>", "bos": null})");
  msg = error_of([&] { CharTokenizer::load(no_eos); });
  EXPECT_HAS(msg, no_eos);
  EXPECT_HAS(msg, "missing key \"eos\"");

  const std::string duplicate = write(
      "duplicate.json", R"({"type": "char", "tokens": ["<pad>", "<eos>", "a", "a"], "special_tokens": ["<pad>", "<eos>"],
                            "eos": "<eos>", "pad": "<pad>", "bos": null})");
  msg = error_of([&] { CharTokenizer::load(duplicate); });
  EXPECT_HAS(msg, duplicate);
  EXPECT_HAS(msg, "duplicate token \"a\" at ids 2 and 3");

  const std::string wrong_type = write(
      "wrong_type.json", R"({"type": "char", "tokens": "abc", "special_tokens": [], "eos": "a", "pad": "a"})");
  msg = error_of([&] { CharTokenizer::load(wrong_type); });
  EXPECT_HAS(msg, wrong_type);
  EXPECT_HAS(msg, "\"tokens\" must be an array of strings, got string");
}

TEST(CharTokenizer, EncodesOneMegabyte) {
  const CharTokenizer tok = arithmetic_tokenizer();
  std::string text;
  text.reserve(1 << 20);
  std::mt19937 rng(0);
  while (text.size() < (1u << 20)) {
    const int a = static_cast<int>(rng() % 100), b = static_cast<int>(rng() % 100);
    text += "What is " + std::to_string(a) + "+" + std::to_string(b) + "? <think>" + std::to_string(a) + "+" +
            std::to_string(b) + "=" + std::to_string(a + b) + "</think><answer>" + std::to_string(a + b) +
            "</answer>\n";
  }
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tok.encode(text);
  const auto encoded = std::chrono::steady_clock::now();
  const std::string back = tok.decode(ids);
  const auto decoded = std::chrono::steady_clock::now();
  EXPECT_EQ(back, text);
  using ms = std::chrono::duration<double, std::milli>;
  std::printf("[ info     ] %zu bytes -> %zu ids: encode %.1f ms, decode %.1f ms\n", text.size(), ids.size(),
              ms(encoded - start).count(), ms(decoded - encoded).count());
}

}  // namespace
