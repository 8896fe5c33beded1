// grpo::SentencePieceTokenizer on the real stories260K tokenizer.model (llama2.c,
// TinyStories): ids equal those of Python's sentencepiece (Debian
// python3-sentencepiece 0.1.97) on the same file, round trips through the
// model's normalizer and byte fallback, special tokens, saving, picking a
// tokenizer by what a folder holds, and each bad input's error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "grpo/config/config.h"
#include "grpo/io/pretrained.h"
#include "grpo/io/weights.h"
#include "grpo/tokenizers/char_tokenizer.h"
#include "grpo/tokenizers/sentencepiece.h"
#include "grpo/train/checkpoint.h"
#include "grpo/train/factory.h"
#include "grpo/train/grpo_trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using grpo::SentencePieceTokenizer;

namespace {

const std::string kStories = std::string(GRPO_TEST_DATA_DIR) + "/models/stories260K";

const SentencePieceTokenizer& stories() {
  static const SentencePieceTokenizer t = SentencePieceTokenizer::load(kStories + "/tokenizer.model");
  return t;
}

using Ids = std::vector<int64_t>;

}  // namespace

TEST(SentencePieceTokenizer, SpecialIdsOfTheStoriesModel) {
  const auto& t = stories();
  EXPECT_EQ(t.vocab_size(), 512);
  ASSERT_TRUE(t.bos_id().has_value());
  EXPECT_EQ(*t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.pad_id(), 2);  // no PAD piece: EOS pads
  EXPECT_EQ(t.id_to_token(0), "<unk>");
  EXPECT_EQ(t.id_to_token(1), "<s>");
  EXPECT_EQ(t.id_to_token(13), "<0x0A>");
  EXPECT_TRUE(t.is_special(0));
  EXPECT_TRUE(t.is_special(1));
  EXPECT_TRUE(t.is_special(2));
  EXPECT_FALSE(t.is_special(13));   // byte pieces are text
  EXPECT_FALSE(t.is_special(403));
  EXPECT_FALSE(t.is_special(512));
  EXPECT_FALSE(t.is_special(-1));
}

// Expected ids: Python's sentencepiece on the same tokenizer.model.
TEST(SentencePieceTokenizer, EncodesAsPythonSentencePieceDoes) {
  const auto& t = stories();
  EXPECT_EQ(t.encode("Once upon a time"), (Ids{403, 407, 261, 378}));
  EXPECT_EQ(t.encode("Once upon a time, there was a little girl named Lily. She loved to play outside in the sun."),
            (Ids{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 262, 379, 426}));
  EXPECT_EQ(t.encode("Tom said, \"Let's go to the park!\" 123 apples."),
            (Ids{274, 287, 336, 432, 313, 438, 316, 439, 419, 298, 414, 267, 265, 282,
                 295, 433, 443, 436, 410, 475, 479, 472, 261, 339, 305, 419, 426}));
  // The model removes extra whitespace; newlines become byte pieces.
  EXPECT_EQ(t.encode(" hi  there\n\nok"), (Ids{270, 417, 383, 13, 13, 414, 433}));
  // Byte fallback spells what the pieces cannot.
  EXPECT_EQ(t.encode("café 中文 🙂"),
            (Ids{280, 412, 431, 485, 410, 231, 187, 176, 233, 153, 138, 410, 243, 162, 156, 133}));
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(t.encode_prompt("Once"), (Ids{1, 403}));
}

TEST(SentencePieceTokenizer, DecodesThroughTheNormalizer) {
  const auto& t = stories();
  EXPECT_EQ(t.decode({403, 407, 261, 378}), "Once upon a time");
  EXPECT_EQ(t.decode(t.encode(" hi  there\n\nok")), "hi there\n\nok");
  EXPECT_EQ(t.decode(t.encode("café 中文 🙂")), "café 中文 🙂");
  // Control pieces keep their spelling unless skipped.
  EXPECT_EQ(t.decode({1, 403, 407, 2}), "<s>Once upon</s>");
  EXPECT_EQ(t.decode({1, 403, 407, 2}, /*skip_special=*/true), "Once upon");
}

TEST(SentencePieceTokenizer, RoundTripsRandomTextUpToNormalization) {
  const auto& t = stories();
  const std::vector<std::string> pieces = {"a", "b", "Once", " ", "  ", "\n", "\t", "é", "中", "🙂", ".", "7",
                                           "<s>", "Lily", "!", "\"", "'", "x y"};
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    const std::string once = t.decode(t.encode(text));
    EXPECT_EQ(t.decode(t.encode(once)), once) << "seed " << seed << ": " << text;
    // Text without leading, trailing or repeated spaces is kept exactly.
    if (text.find("  ") == std::string::npos && (text.empty() || (text.front() != ' ' && text.back() != ' '))) {
      EXPECT_EQ(once, text) << "seed " << seed;
    }
  }
}

TEST(SentencePieceTokenizer, TokenLookup) {
  const auto& t = stories();
  EXPECT_EQ(t.token_to_id("\xE2\x96\x81Once"), 403);  // "▁Once"
  EXPECT_EQ(t.token_to_id("<unk>"), 0);
  EXPECT_EQ(t.token_to_id("</s>"), 2);
  EXPECT_FALSE(t.token_to_id("no such piece").has_value());
  EXPECT_HAS(error_of([&] { t.id_to_token(512); }), "token id 512 is outside [0, 512)");
}

TEST(SentencePieceTokenizer, BadInputsAreNamed) {
  const auto& t = stories();
  EXPECT_HAS(error_of([&] { t.encode(std::string("ab\xFF", 3)); }), "invalid UTF-8 at byte offset 2");
  EXPECT_HAS(error_of([&] { t.decode({403, -1}); }), "decode: token id -1 is outside [0, 512)");
  EXPECT_HAS(error_of([&] { t.decode({9999}); }), "token id 9999");
  EXPECT_HAS(error_of([&] { SentencePieceTokenizer::load(kStories + "/nothing.model"); }), "no such file");
  EXPECT_HAS(error_of([&] { SentencePieceTokenizer::load(kStories); }), "is a directory");
  TempDir dir("sp_bad");
  const std::string junk = (dir.path / "tokenizer.model").string();
  std::ofstream(junk) << "this is not a protobuf";
  EXPECT_HAS(error_of([&] { SentencePieceTokenizer::load(junk); }), junk + ": not a SentencePiece model");
}

TEST(SentencePieceTokenizer, EncodesFromSeveralThreads) {
  const auto& t = stories();
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  const Ids expected = t.encode(text);
  std::vector<Ids> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 200; ++k) got[i] = t.encode(text);
    });
  }
  for (auto& th : threads) th.join();
  for (const Ids& ids : got) EXPECT_EQ(ids, expected);
}

TEST(SentencePieceTokenizer, SavesWhatTransformersReadsAndLoadsItBack) {
  TempDir dir("sp_save");
  ASSERT_TRUE(stories().save_to(dir.path.string()));
  const auto loaded = grpo::load_tokenizer(dir.path.string());
  ASSERT_NE(dynamic_cast<SentencePieceTokenizer*>(loaded.get()), nullptr);
  EXPECT_EQ(loaded->encode("Once upon a time"), (Ids{403, 407, 261, 378}));
  std::ifstream model(dir.path / "tokenizer.model", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(model)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, stories().serialized());
  std::ifstream config_file(dir.path / "tokenizer_config.json");
  const auto config = nlohmann::json::parse(config_file);
  EXPECT_EQ(config.at("tokenizer_class"), "LlamaTokenizer");
  EXPECT_EQ(config.at("bos_token"), "<s>");
  EXPECT_EQ(config.at("eos_token"), "</s>");
  EXPECT_TRUE(config.at("pad_token").is_null());
  EXPECT_EQ(config.at("add_bos_token"), true);
}

TEST(LoadTokenizer, PicksByWhatTheFolderHolds) {
  auto sp = grpo::load_tokenizer(kStories);
  EXPECT_NE(dynamic_cast<SentencePieceTokenizer*>(sp.get()), nullptr);

  TempDir dir("pick");
  grpo::CharTokenizer::from_texts({"abc"}).save((dir.path / "tokenizer.json").string());
  auto chars = grpo::load_tokenizer(dir.path.string());
  EXPECT_NE(dynamic_cast<grpo::CharTokenizer*>(chars.get()), nullptr);

  fs::create_directories(dir.path / "empty");
  EXPECT_HAS(error_of([&] { grpo::load_tokenizer((dir.path / "empty").string()); }),
             "no tokenizer here (looked for tokenizer.model and tokenizer.json)");
}

TEST(LoadTokenizer, ConfigPathsAndTypes) {
  grpo::TokenizerConfig c;
  c.path = kStories;  // a folder
  EXPECT_EQ(grpo::make_tokenizer(c)->vocab_size(), 512);
  c.path = kStories + "/tokenizer.model";  // the file, by its extension
  EXPECT_EQ(grpo::make_tokenizer(c)->encode("Once"), (Ids{403}));
  c.type = "sentencepiece";
  EXPECT_EQ(grpo::make_tokenizer(c)->vocab_size(), 512);
  c.type = "char";
  c.path = kStories;
  EXPECT_HAS(error_of([&] { grpo::make_tokenizer(c); }), "holds no CharTokenizer");
  c.type = "auto";
  c.path = kStories + "/config.json";
  EXPECT_HAS(error_of([&] { grpo::make_tokenizer(c); }), "name a folder, a tokenizer.model or a tokenizer.json");
  // No path: the model folder's own tokenizer.
  EXPECT_EQ(grpo::make_tokenizer(grpo::TokenizerConfig{}, kStories)->eos_id(), 2);
}
