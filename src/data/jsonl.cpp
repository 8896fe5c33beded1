// JsonlReader: std::getline over the file, the BOM dropped from the first line
// and a trailing '\r' from each.
#include "grpo/data/jsonl.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "grpo/error.h"
#include "grpo/files.h"

namespace grpo {

namespace {

bool is_blank(const std::string& line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') return false;
  }
  return true;
}

}  // namespace

JsonlReader::JsonlReader(std::string path, std::string what) : path_(std::move(path)), what_(std::move(what)) {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) throw Error(what_ + " " + path_ + ": no such file (expected a JSONL file)");
  if (std::filesystem::is_directory(path_, ec)) throw Error(what_ + " " + path_ + ": is a directory, expected a JSONL file");
  in_.open(path_, std::ios::binary);
  if (!in_) throw Error(what_ + " " + path_ + ": cannot open (" + std::strerror(errno) + ")");
}

std::optional<nlohmann::json> JsonlReader::next() {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (line_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // NB: a UTF-8 BOM, as some editors write
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (is_blank(line)) continue;
    if (json_too_deep(line) != std::string::npos) {
      throw Error(what_ + " " + path_ + ", line " + std::to_string(line_) + ": JSON nested deeper than " +
                  std::to_string(kMaxJsonDepth) + " levels");
    }
    try {
      nlohmann::json record = nlohmann::json::parse(line);
      record_line_ = line_;
      return record;
    } catch (const nlohmann::json::exception& e) {
      // NB: parse errors, and numbers past double's range (1e400, an out_of_range).
      throw Error(what_ + " " + path_ + ", line " + std::to_string(line_) + ": not valid JSON (" + e.what() + ")");
    }
  }
  if (in_.bad()) throw Error(what_ + " " + path_ + ": read failed (" + std::strerror(errno) + ")");
  return std::nullopt;
}

}  // namespace grpo
