// Files on disk: every file and folder the library writes whole goes through
// the atomic writers here, so a reader (or a resumed run) sees the old version
// or the complete new one, never a part (metrics.jsonl, a log, is appended a
// line at a time); and every whole file it reads comes through read_file, so
// a missing or unreadable file is one kind of error everywhere (safetensors
// files are mapped, LibTorch archives read by LibTorch). Torch-free. Errors
// are grpo::Error naming the path.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

namespace grpo {

// A file written under a temporary name beside `path` (path.tmp.<pid>) and
// renamed over `path` by commit(), after an fsync; the folder is then synced
// (best effort). Destroyed without a successful commit(), the temporary file
// is removed and `path` is untouched. Errors read
//   "<who>: cannot write '<path>': <what failed>: <reason>"
// and also remove the temporary file. Creates no folders. Two threads of one
// process must not write the same path at once (they share the temporary name).
class AtomicFile {
 public:
  // `who` starts every error message (the caller's name, e.g. "save_safetensors").
  explicit AtomicFile(std::string path, std::string who = "write_file_atomic");
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends `bytes` bytes to the temporary file.
  void write(const void* data, size_t bytes);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Makes the file `path`: fsync, close, rename, sync the folder. Once only.
  void commit();

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what, int err);

  std::string path_, tmp_, who_;
  int fd_ = -1;
  bool committed_ = false;
};

// `content` written to `path` through an AtomicFile. Raises grpo::Error when
// the path is empty, its folder does not exist, or a write fails.
void write_file_atomic(const std::string& path, const std::string& content);

// A whole folder as one transaction: `fill(tmp)` writes everything into a
// fresh sibling folder `dir`.tmp-<pid>, which then replaces `dir`: an existing
// `dir` is moved aside first and removed only once the new one is in place
// (put back if the rename fails). On any error the temporary folder is removed
// and `dir`, if it existed, is untouched. `what` names the folder in errors
// ("checkpoint", "folder").
void write_folder_atomic(const std::string& dir, const std::function<void(const std::filesystem::path& tmp)>& fill,
                         const std::string& what);

// The bytes of the file at `path`. Raises grpo::Error
//   "<path>: no such file (expected <expected>)"
//   "<path>: is a directory, expected <expected>"
//   "<path>: cannot open (<reason>)" / "<path>: read failed (<reason>)"
// `expected` says what the file should be: "a JSON config file".
std::string read_file(const std::string& path, const std::string& expected = "a file");

// The deepest JSON nesting the library reads (objects and arrays inside one
// another). Deeper text is refused before it is parsed: nlohmann's writer
// recurses once per level, so 10^5 levels would overflow the stack.
constexpr size_t kMaxJsonDepth = 512;
// The byte offset in `text` where its JSON nesting first goes deeper than
// kMaxJsonDepth (brackets inside strings do not count), or std::string::npos.
size_t json_too_deep(const std::string& text);

// `text` parsed as JSON; a syntax error is grpo::Error
//   "<where>: line L, column C: invalid JSON: <reason>",
// and nesting deeper than kMaxJsonDepth
//   "<where>: line L, column C: JSON nested deeper than 512 levels".
nlohmann::json parse_json(const std::string& text, const std::string& where);
// `j` as JSON text (indent as nlohmann's dump: -1 one line). A string that is
// not valid UTF-8 (a model's completion cut inside a multi-byte character, a
// prompt file's stray byte) is written with U+FFFD for each bad byte instead
// of raising: text from a model is data, never a reason to lose a run. Every
// file, report and stdout JSON the library writes goes through here.
std::string json_text(const nlohmann::json& j, int indent = -1);

// read_file then parse_json, with `path` as where.
nlohmann::json read_json_file(const std::string& path, const std::string& expected = "a JSON file");

}  // namespace grpo
