// JsonlReader: a JSONL file read one record at a time, so a dataset of any
// size is never held whole (rejection sampling streams its prompts through
// it). Blank lines are skipped; a UTF-8 BOM and CRLF line ends are accepted.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace grpo {

class JsonlReader {
 public:
  // `what` names the file in errors ("prompt dataset", ...). Raises
  // grpo::Error naming the path when it is missing, a folder or unreadable.
  explicit JsonlReader(std::string path, std::string what = "JSONL file");

  // The next record, or nullopt at the end of the file. Raises grpo::Error
  // naming the path and the 1-based line of a line that is not valid JSON.
  std::optional<nlohmann::json> next();
  // The 1-based line of the record next() returned last (0 before the first).
  int64_t line() const { return record_line_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_, what_;
  std::ifstream in_;
  int64_t line_ = 0;       // lines read so far
  int64_t record_line_ = 0;
};

}  // namespace grpo
