// grpo::JsonlReader: records one at a time with their 1-based lines, blank
// lines skipped, a BOM and CRLF accepted; errors name the file and the line.
#include <grpo/data/jsonl.h>
#include <grpo/error.h>
#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

TEST(JsonlReader, GivesEachRecordWithItsLine) {
  TempDir dir("jsonl");
  { std::ofstream(dir / "a.jsonl", std::ios::binary) << "\xEF\xBB\xBF{\"a\": 1}\r\n\n   \r\n{\"a\": 2}\n{\"a\": 3}"; }
  grpo::JsonlReader reader(dir / "a.jsonl", "prompt dataset");
  EXPECT_EQ(reader.line(), 0);
  std::vector<std::pair<int64_t, int64_t>> got;
  while (auto r = reader.next()) got.emplace_back((*r)["a"].get<int64_t>(), reader.line());
  EXPECT_EQ(got, (std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 4}, {3, 5}}));
  EXPECT_FALSE(reader.next().has_value()) << "the end stays the end";
}

TEST(JsonlReader, ErrorsNameTheFileAndLine) {
  TempDir dir("jsonl_errors");
  { std::ofstream(dir / "bad.jsonl") << "{\"a\": 1}\n\n{\"a\": \n"; }
  grpo::JsonlReader reader(dir / "bad.jsonl", "rejection.prompts");
  ASSERT_TRUE(reader.next().has_value());
  EXPECT_HAS(error_of([&] { reader.next(); }), "rejection.prompts " + (dir / "bad.jsonl") + ", line 3: not valid JSON");
  EXPECT_HAS(error_of([&] { grpo::JsonlReader(dir / "missing.jsonl", "data"); }),
             "data " + (dir / "missing.jsonl") + ": no such file");
  EXPECT_HAS(error_of([&] { grpo::JsonlReader(dir.path.string(), "data"); }), ": is a directory");
  // A record nested 10^5 deep is refused, not a stack overflow.
  { std::ofstream(dir / "deep.jsonl") << "{\"a\": 1}\n{\"p\": " << std::string(100000, '[') << std::string(100000, ']') << "}\n"; }
  grpo::JsonlReader deep(dir / "deep.jsonl", "data.train");
  ASSERT_TRUE(deep.next().has_value());
  EXPECT_HAS(error_of([&] { deep.next(); }),
             "data.train " + (dir / "deep.jsonl") + ", line 2: JSON nested deeper than 512 levels");
}
