// grpo::PromptDataset: JSONL loading with extra fields, a BOM and CRLF, errors
// that name the file and line, the {field} template with escaped braces, the
// seeded per-epoch order, batches across epochs, resuming, and the GSM8K file.
#include <grpo/data/prompt_dataset.h>
#include <grpo/error.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using grpo::PromptDataset;
using grpo::PromptDatasetOptions;
using nlohmann::json;

// n records {"prompt": "q<i>", "id": i}.
std::vector<json> numbered(int n) {
  std::vector<json> records;
  for (int i = 0; i < n; ++i) {
    records.push_back({{"prompt", "q" + std::to_string(i)}, {"id", i}});
  }
  return records;
}

std::vector<int64_t> ids_of(const std::vector<grpo::PromptRecord>& batch) {
  std::vector<int64_t> ids;
  for (const auto& r : batch) {
    ids.push_back(r.fields.at("id").get<int64_t>());
  }
  return ids;
}

PromptDatasetOptions shuffled(uint64_t seed) {
  PromptDatasetOptions opt;
  opt.seed = seed;
  return opt;
}

// A fresh directory under the system temp dir, removed after each test.
class PromptDatasetFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("grpo_data_" + std::string(info->name()) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = (dir_ / name).string();
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }
  fs::path dir_;
};

TEST_F(PromptDatasetFiles, LoadsJsonlWithExtraFields) {
  const std::string file = write("data.jsonl",
                                 "{\"prompt\": \"What is 2+2?\", \"answer\": \"4\", \"level\": 1}\n"
                                 "\n"
                                 "   \n"
                                 "{\"prompt\": \"Spell cat\", \"answer\": \"c-a-t\", \"tags\": [\"x\"]}\n");
  PromptDatasetOptions opt;
  opt.shuffle = false;
  const PromptDataset ds = PromptDataset::from_jsonl(file, opt);
  ASSERT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.record(0).at("level"), 1);
  EXPECT_EQ(ds.record(1).at("tags"), json::array({"x"}));
  const grpo::PromptRecord r = ds.get(1);
  EXPECT_EQ(r.prompt, "Spell cat");
  EXPECT_EQ(r.fields, ds.record(1));
  EXPECT_EQ(r.fields.at("answer"), "c-a-t");
  EXPECT_HAS(error_of([&] { ds.record(2); }), "out of range");
  EXPECT_HAS(error_of([&] { ds.get(-1); }), "out of range");
}

TEST_F(PromptDatasetFiles, AcceptsBomCrlfAndNoFinalNewline) {
  const std::string file =
      write("crlf.jsonl", "\xEF\xBB\xBF{\"prompt\": \"a\"}\r\n\r\n{\"prompt\": \"b\\r\"}\r\n{\"prompt\": \"c\"}");
  PromptDatasetOptions opt;
  opt.shuffle = false;
  const PromptDataset ds = PromptDataset::from_jsonl(file, opt);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.get(0).prompt, "a");
  EXPECT_EQ(ds.get(1).prompt, "b\r");
  EXPECT_EQ(ds.get(2).prompt, "c");
}

TEST_F(PromptDatasetFiles, ErrorsNameFileAndLine) {
  const std::string missing = (dir_ / "missing.jsonl").string();
  std::string msg = error_of([&] { PromptDataset::from_jsonl(missing); });
  EXPECT_HAS(msg, missing);
  EXPECT_HAS(msg, "no such file");
  msg = error_of([&] { PromptDataset::from_jsonl(dir_.string()); });
  EXPECT_HAS(msg, dir_.string());
  EXPECT_HAS(msg, "directory");

  struct Case {
    std::string text, line, problem;
  };
  const std::string ok = "{\"prompt\": \"fine\", \"answer\": 1}\n";
  const std::vector<Case> cases{
      {ok + "\n{\"prompt\": \"x\",\n", "line 3", "not valid JSON"},
      {ok + ok + "[1, 2]\n", "line 3", "expected a JSON object"},
      {ok + "{\"question\": \"x\"}\n", "line 2", "missing the prompt key \"prompt\""},
      {ok + "\n\n{\"prompt\": 7}\n", "line 4", "must be a string"},
      {ok + "{\"prompt\": \"\"}\r\n", "line 2", "is empty"},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    const std::string file = write("bad" + std::to_string(c) + ".jsonl", cases[c].text);
    msg = error_of([&] { PromptDataset::from_jsonl(file); });
    EXPECT_HAS(msg, file);
    EXPECT_HAS(msg, cases[c].line);
    EXPECT_HAS(msg, cases[c].problem);
  }

  for (const std::string empty : {"", "\n \n\r\n", "\xEF\xBB\xBF"}) {
    const std::string file = write("empty.jsonl", empty);
    msg = error_of([&] { PromptDataset::from_jsonl(file); });
    EXPECT_HAS(msg, file);
    EXPECT_HAS(msg, "no records");
  }

  // A template field missing from one record: the field, the record and its line.
  PromptDatasetOptions opt;
  opt.template_text = "{prompt} ({answer})";
  const std::string file = write("no_answer.jsonl", ok + "\n" + ok + "{\"prompt\": \"y\"}\n");
  msg = error_of([&] { PromptDataset::from_jsonl(file, opt); });
  EXPECT_HAS(msg, file);
  EXPECT_HAS(msg, "line 4");
  EXPECT_HAS(msg, "record 2");
  EXPECT_HAS(msg, "\"answer\"");
}

TEST(PromptDataset, RecordErrorsNameTheIndex) {
  std::vector<json> records = numbered(3);
  records[1] = json::array();
  EXPECT_HAS(error_of([&] { PromptDataset::from_records(records); }), "record 1: expected a JSON object");
  records = numbered(3);
  records[2].erase("prompt");
  EXPECT_HAS(error_of([&] { PromptDataset::from_records(records); }), "record 2: missing the prompt key");
  PromptDatasetOptions opt;
  opt.prompt_key = "question";
  EXPECT_HAS(error_of([&] { PromptDataset::from_records(numbered(2), opt); }), "\"question\"");
  EXPECT_HAS(error_of([&] { PromptDataset::from_records({}); }), "no records");
  opt = {};
  opt.template_text = "{prompt} {level}";
  const std::string msg = error_of([&] { PromptDataset::from_records(numbered(2), opt); });
  EXPECT_HAS(msg, "record 0");
  EXPECT_HAS(msg, "\"level\"");
}

TEST(PromptDataset, TemplateFillsFieldsAndEscapedBraces) {
  PromptDatasetOptions opt;
  opt.shuffle = false;
  opt.template_text = "{{system}} Q{id}: {prompt}\nscore={score} ok={ok} n={none} tags={tags} {{{prompt}}}}}";
  const PromptDataset ds = PromptDataset::from_records(
      {{{"prompt", "2+2?"}, {"id", 7}, {"score", 0.5}, {"ok", true}, {"none", nullptr}, {"tags", {"a", 1}}}},
      opt);
  EXPECT_EQ(ds.get(0).prompt, "{system} Q7: 2+2?\nscore=0.5 ok=true n=null tags=[\"a\",1] {2+2?}}");

  // Strings go in raw: no quotes, no escapes, braces in values left alone.
  opt.template_text = "<{prompt}>";
  EXPECT_EQ(PromptDataset::from_records({{{"prompt", "say \"hi\" {x}\n"}}}, opt).get(0).prompt,
            "<say \"hi\" {x}\n>");
  opt.template_text = "no fields";
  EXPECT_EQ(PromptDataset::from_records(numbered(1), opt).get(0).prompt, "no fields");
  // The default template is the prompt itself.
  EXPECT_EQ(PromptDataset::from_records(numbered(1)).get(0).prompt, "q0");
}

TEST(PromptDataset, TemplateErrorsNamePosition) {
  PromptDatasetOptions opt;
  opt.template_text = "Q: {prompt} A: {answer";
  std::string msg = error_of([&] { PromptDataset::from_records(numbered(1), opt); });
  EXPECT_HAS(msg, "unterminated '{'");
  EXPECT_HAS(msg, "position 15");
  opt.template_text = "{pro{mpt}";
  EXPECT_HAS(error_of([&] { PromptDataset::from_records(numbered(1), opt); }), "position 0");
  opt.template_text = "x } {prompt}";
  msg = error_of([&] { PromptDataset::from_records(numbered(1), opt); });
  EXPECT_HAS(msg, "unmatched '}'");
  EXPECT_HAS(msg, "position 2");
  opt.template_text = "{prompt}{}";
  EXPECT_HAS(error_of([&] { PromptDataset::from_records(numbered(1), opt); }), "empty placeholder {} at position 8");
}

TEST(PromptDataset, ShuffleIsSeededAndCoversEveryRecordEachEpoch) {
  const int n = 50;
  const PromptDataset a = PromptDataset::from_records(numbered(n), shuffled(1));
  const PromptDataset b = PromptDataset::from_records(numbered(n), shuffled(1));
  const PromptDataset c = PromptDataset::from_records(numbered(n), shuffled(2));
  std::vector<int64_t> identity(n);
  for (int i = 0; i < n; ++i) identity[i] = i;
  std::set<std::vector<int64_t>> orders;
  for (int64_t e = 0; e < 4; ++e) {
    const std::vector<int64_t> order = a.epoch_order(e);
    EXPECT_EQ(order, b.epoch_order(e)) << "epoch " << e;
    EXPECT_NE(order, c.epoch_order(e)) << "epoch " << e;
    EXPECT_NE(order, identity) << "epoch " << e;
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, identity) << "epoch " << e;
    orders.insert(order);
  }
  EXPECT_EQ(orders.size(), 4u) << "each epoch has its own order";

  // next_batch follows the same orders: each epoch gives every record exactly once.
  PromptDataset d = PromptDataset::from_records(numbered(n), shuffled(1));
  for (int64_t e = 0; e < 3; ++e) {
    EXPECT_EQ(d.epoch(), e);
    EXPECT_EQ(ids_of(d.next_batch(n)), a.epoch_order(e));
  }
}

TEST(PromptDataset, NoShuffleKeepsFileOrder) {
  PromptDatasetOptions opt;
  opt.shuffle = false;
  opt.seed = 99;
  PromptDataset ds = PromptDataset::from_records(numbered(5), opt);
  EXPECT_EQ(ids_of(ds.next_batch(3)), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(ids_of(ds.next_batch(4)), (std::vector<int64_t>{3, 4, 0, 1}));
  EXPECT_EQ(ds.epoch(), 1);
  EXPECT_EQ(ds.position(), 2);
  EXPECT_EQ(ds.next_batch(1)[0].prompt, "q2");
}

TEST(PromptDataset, BatchCrossesEpochBoundary) {
  const int n = 7;
  PromptDataset ds = PromptDataset::from_records(numbered(n), shuffled(5));
  const std::vector<int64_t> e0 = ds.epoch_order(0), e1 = ds.epoch_order(1), e2 = ds.epoch_order(2);
  EXPECT_EQ(ids_of(ds.next_batch(5)), std::vector<int64_t>(e0.begin(), e0.begin() + 5));
  EXPECT_EQ(ds.position(), 5);
  std::vector<int64_t> expected(e0.begin() + 5, e0.end());
  expected.insert(expected.end(), e1.begin(), e1.begin() + 3);
  EXPECT_EQ(ids_of(ds.next_batch(5)), expected);
  EXPECT_EQ(ds.epoch(), 1);
  EXPECT_EQ(ds.position(), 3);
  // A batch larger than the dataset spans several epochs.
  expected.assign(e1.begin() + 3, e1.end());
  expected.insert(expected.end(), e2.begin(), e2.end());
  expected.push_back(ds.epoch_order(3)[0]);
  EXPECT_EQ(ids_of(ds.next_batch(4 + n + 1)), expected);
  EXPECT_EQ(ds.epoch(), 3);
  EXPECT_EQ(ds.position(), 1);
  // Ending exactly at an epoch's end moves to the next epoch.
  ds.next_batch(n - 1);
  EXPECT_EQ(ds.epoch(), 4);
  EXPECT_EQ(ds.position(), 0);
  EXPECT_HAS(error_of([&] { ds.next_batch(0); }), "P >= 1");
}

TEST(PromptDataset, SetStateResumesExactly) {
  PromptDataset run = PromptDataset::from_records(numbered(11), shuffled(3));
  run.next_batch(4);
  run.next_batch(4);
  run.next_batch(4);  // into epoch 1
  const grpo::PromptDatasetState saved = run.state();
  EXPECT_EQ(saved.epoch, 1);
  EXPECT_EQ(saved.position, 1);
  std::vector<std::vector<int64_t>> rest;
  for (int i = 0; i < 6; ++i) rest.push_back(ids_of(run.next_batch(4)));

  PromptDataset resumed = PromptDataset::from_records(numbered(11), shuffled(3));
  resumed.set_state(saved.epoch, saved.position);
  EXPECT_EQ(resumed.epoch(), 1);
  EXPECT_EQ(resumed.position(), 1);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ids_of(resumed.next_batch(4)), rest[i]) << "batch " << i;
  EXPECT_EQ(resumed.state().epoch, run.state().epoch);
  EXPECT_EQ(resumed.state().position, run.state().position);

  // Going back to an earlier state replays it.
  resumed.set_state(saved);
  EXPECT_EQ(ids_of(resumed.next_batch(4)), rest[0]);

  EXPECT_HAS(error_of([&] { resumed.set_state(-1, 0); }), "epoch -1");
  EXPECT_HAS(error_of([&] { resumed.set_state(0, 11); }), "position 11");
  EXPECT_HAS(error_of([&] { resumed.set_state(0, -1); }), "position -1");
}

// The GSM8K test split bundled with the gsm8k example.
TEST(PromptDataset, LoadsGsm8k) {
  const fs::path repo = fs::path(__FILE__).parent_path().parent_path().parent_path();  // tests/data/ -> the checkout
  const fs::path file = repo / "examples" / "gsm8k" / "test.jsonl";
  ASSERT_TRUE(fs::exists(file)) << file;
  std::ifstream in(file);
  int64_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) ++lines;
  }
  PromptDatasetOptions opt;
  opt.prompt_key = "question";
  opt.template_text = "Question: {question}\nAnswer:";
  PromptDataset ds = PromptDataset::from_jsonl(file.string(), opt);
  EXPECT_EQ(ds.size(), lines);
  EXPECT_GT(ds.size(), 1000);
  const auto batch = ds.next_batch(8);
  ASSERT_EQ(batch.size(), 8u);
  for (const auto& r : batch) {
    EXPECT_EQ(r.prompt.rfind("Question: ", 0), 0u) << r.prompt;
    EXPECT_EQ(r.prompt.substr(r.prompt.size() - 8), "\nAnswer:");
    ASSERT_TRUE(r.fields.at("answer").is_string());
    EXPECT_NE(r.fields.at("answer").get<std::string>().find("####"), std::string::npos);
  }
  // The first question's curly apostrophe comes through as UTF-8.
  EXPECT_NE(ds.record(0).at("question").get<std::string>().find("Janet\xE2\x80\x99s"), std::string::npos);
}

}  // namespace
