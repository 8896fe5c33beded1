// Files on disk (grpo/files.h): atomic writes and the failures that must leave
// the old file and no temporary file; whole-file reads and JSON files with one
// error style.
#include <grpo/error.h>
#include <grpo/files.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_raw(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

// ------------------------------------------------------------ write_file_atomic

using WriteFileAtomic = FilesTest;

TEST_F(WriteFileAtomic, WritesAndReplaces) {
  const std::string path = (dir_ / "out.txt").string();
  grpo::write_file_atomic(path, "first\n");
  EXPECT_EQ(read_text(path), "first\n");
  grpo::write_file_atomic(path, "second");
  EXPECT_EQ(read_text(path), "second");
  grpo::write_file_atomic(path, "");
  EXPECT_EQ(read_text(path), "");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.txt"});
}

TEST_F(WriteFileAtomic, MissingDirectoryIsAnErrorNamingIt) {
  const std::string path = (dir_ / "missing" / "out.txt").string();
  const std::string message = error_of([&] { grpo::write_file_atomic(path, "x"); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("directory '" + (dir_ / "missing").string() + "' does not exist"), std::string::npos) << message;
  EXPECT_TRUE(listing().empty());
  EXPECT_NE(error_of([] { grpo::write_file_atomic("", "x"); }).find("path is empty"), std::string::npos);
}

TEST_F(WriteFileAtomic, TargetThatIsADirectoryIsLeftAlone) {
  const fs::path target = dir_ / "target";
  fs::create_directory(target);
  write_raw(target / "inside.txt", "keep me");
  const std::string message = error_of([&] { grpo::write_file_atomic(target.string(), "x"); });
  EXPECT_NE(message.find("cannot write '" + target.string() + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("renaming the finished file into place failed"), std::string::npos) << message;
  EXPECT_EQ(message.find(".tmp"), std::string::npos) << message;  // the temporary file is no business of the reader
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(read_text(target / "inside.txt"), "keep me");
  EXPECT_EQ(listing(), std::vector<std::string>{"target"});  // no temp file left
}

// A write that fails half way (over the file-size limit) keeps the old file.
TEST_F(WriteFileAtomic, FailedWriteKeepsThePreviousFile) {
  const std::string path = (dir_ / "out.txt").string();
  grpo::write_file_atomic(path, "old");
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 4096;
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string message = error_of([&] { grpo::write_file_atomic(path, std::string(1 << 20, 'x')); });
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find("cannot write '" + path + "'"), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_EQ(message.find(".tmp"), std::string::npos) << message;
  EXPECT_EQ(read_text(path), "old");
  EXPECT_EQ(listing(), std::vector<std::string>{"out.txt"});
}

// ------------------------------------------------------------ AtomicFile

using AtomicFileTest = FilesTest;

TEST_F(AtomicFileTest, StreamsPiecesAndCommitsOnce) {
  const std::string path = (dir_ / "data.bin").string();
  {
    grpo::AtomicFile file(path, "saver");
    file.write(std::string("ab"));
    const char bytes[] = {'\0', 'c'};
    file.write(bytes, sizeof bytes);
    EXPECT_FALSE(fs::exists(path));  // nothing at the path before commit()
    file.commit();
    EXPECT_HAS(error_of([&] { file.write(std::string("d")); }), "saver: cannot write '" + path + "'");
  }
  EXPECT_EQ(read_text(path), std::string("ab\0c", 4));
  EXPECT_EQ(listing(), (std::vector<std::string>{"data.bin"}));
}

TEST_F(AtomicFileTest, WithoutCommitNothingIsLeft) {
  const std::string path = (dir_ / "data.bin").string();
  write_raw(path, "old");
  {
    grpo::AtomicFile file(path);
    file.write(std::string("new, never committed"));
  }
  EXPECT_EQ(read_text(path), "old");
  EXPECT_EQ(listing(), (std::vector<std::string>{"data.bin"}));
  EXPECT_HAS(error_of([] { grpo::AtomicFile("", "saver"); }), "saver: the path is empty");
}

// ------------------------------------------------------------ write_folder_atomic

using WriteFolderAtomic = FilesTest;

TEST_F(WriteFolderAtomic, ReplacesTheWholeFolder) {
  const std::string dir = (dir_ / "out").string();
  fs::create_directories(dir);
  write_raw(fs::path(dir) / "stale.txt", "from before");
  grpo::write_folder_atomic(
      dir, [](const fs::path& tmp) { grpo::write_file_atomic((tmp / "new.txt").string(), "fresh"); }, "folder");
  EXPECT_FALSE(fs::exists(fs::path(dir) / "stale.txt"));
  EXPECT_EQ(read_text(fs::path(dir) / "new.txt"), "fresh");
  EXPECT_EQ(listing(), (std::vector<std::string>{"out"}));
}

TEST_F(WriteFolderAtomic, AFailingFillLeavesThePreviousFolder) {
  const std::string dir = (dir_ / "out").string();
  fs::create_directories(dir);
  write_raw(fs::path(dir) / "kept.txt", "previous");
  const std::string message = error_of([&] {
    grpo::write_folder_atomic(
        dir,
        [](const fs::path& tmp) {
          grpo::write_file_atomic((tmp / "half.txt").string(), "half");
          throw grpo::Error("disk full");
        },
        "checkpoint");
  });
  EXPECT_HAS(message, "disk full");
  EXPECT_EQ(read_text(fs::path(dir) / "kept.txt"), "previous");
  // An error from inside names the folder being written, not the temporary one.
  const std::string inner = error_of([&] {
    grpo::write_folder_atomic(
        dir, [](const fs::path& tmp) { throw grpo::Error((tmp / "model.pt").string() + ": no space (" + tmp.string() + ")"); },
        "checkpoint");
  });
  EXPECT_EQ(inner, dir + "/model.pt: no space (" + dir + ")");
  EXPECT_FALSE(fs::exists(fs::path(dir) / "half.txt"));
  EXPECT_EQ(listing(), (std::vector<std::string>{"out"}));  // no temporary folder left
}

// ------------------------------------------------------------ read_file, read_json_file

using ReadFile = FilesTest;

TEST_F(ReadFile, ReturnsTheBytesAsTheyAre) {
  const std::string bytes("a\0b\r\n\xff", 6);
  write_raw(dir_ / "raw.bin", bytes);
  EXPECT_EQ(grpo::read_file((dir_ / "raw.bin").string()), bytes);
  write_raw(dir_ / "empty", "");
  EXPECT_EQ(grpo::read_file((dir_ / "empty").string()), "");
}

TEST_F(ReadFile, ErrorsNameThePathAndWhatWasExpected) {
  const std::string missing = (dir_ / "missing.json").string();
  EXPECT_HAS(error_of([&] { grpo::read_file(missing, "a JSON config file"); }),
             missing + ": no such file (expected a JSON config file)");
  EXPECT_HAS(error_of([&] { grpo::read_file(dir_.string(), "a JSONL file"); }),
             dir_.string() + ": is a directory, expected a JSONL file");
}

TEST_F(ReadFile, JsonSyntaxErrorsNameLineAndColumn) {
  const std::string path = (dir_ / "bad.json").string();
  write_raw(path, "{\n  \"a\": 1,\n  \"b\": ]\n}\n");
  EXPECT_HAS(error_of([&] { grpo::read_json_file(path); }), path + ": line 3, column 8: invalid JSON");
  write_raw(path, "{\"a\": [1, 2]}");
  EXPECT_EQ(grpo::read_json_file(path)["a"][1], 2);
  EXPECT_HAS(error_of([] { grpo::parse_json("", "stdin"); }), "stdin: line 1, column 1: invalid JSON");
}

// A byte-level tokenizer can end a completion inside a multi-byte character:
// such text reaches reports, metrics and stdout, where nlohmann's own dump
// raises type_error.316; json_text writes U+FFFD for each bad byte instead.
TEST(JsonText, InvalidUtf8IsReplacedNotFatal) {
  const std::string cut = "caf\xC3";            // "café" cut after the first byte of "é"
  const std::string stray = "a\xFF" "b\xE2\x82";  // a stray byte, and a 3-byte character missing its last
  const nlohmann::json j = {{"completion", cut}, {"samples", {stray, "ok"}}};
  EXPECT_THROW((void)j.dump(2), nlohmann::json::type_error);
  const std::string text = grpo::json_text(j, 2);
  const nlohmann::json back = nlohmann::json::parse(text);
  EXPECT_EQ(back["completion"].get<std::string>(), "caf\xEF\xBF\xBD");
  EXPECT_EQ(back["samples"][0].get<std::string>(), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  EXPECT_EQ(back["samples"][1].get<std::string>(), "ok");
  // Valid text, non-ASCII included, is written as it is; one line without an indent.
  EXPECT_EQ(grpo::json_text(nlohmann::json{{"k", "é ✓"}}), "{\"k\":\"é ✓\"}");
}

// JSON nested 10^5 deep would overflow the stack in nlohmann's writer: it is
// refused before parsing, with where it goes too deep; brackets inside strings
// do not count, and 512 levels are fine.
TEST(JsonDepth, TooDeepIsRefusedWithItsPlace) {
  const std::string deep = "{\"a\":\n" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(grpo::json_too_deep(deep), 6u + 511u);
  const std::string message = error_of([&] { grpo::parse_json(deep, "config.json"); });
  EXPECT_HAS(message, "config.json: line 2, column 512: JSON nested deeper than 512 levels");
  const std::string ok = std::string(512, '[') + std::string(512, ']');
  EXPECT_EQ(grpo::json_too_deep(ok), std::string::npos);
  EXPECT_NO_THROW(grpo::parse_json(ok, "x"));
  const std::string quoted = "{\"s\": \"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"}";
  EXPECT_EQ(grpo::json_too_deep(quoted), std::string::npos);
  EXPECT_EQ(grpo::parse_json(quoted, "x")["s"].get<std::string>().size(), 2001u);
  // A number past double's range names the file too.
  EXPECT_HAS(error_of([] { grpo::parse_json("{\"lr\": 1e400}", "run.json"); }), "run.json: invalid JSON:");
}
