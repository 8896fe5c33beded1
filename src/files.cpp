// Atomic file and folder writes (temporary name, fsync, rename) and whole-file
// reads with one error style.
#include "grpo/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>
#include <typeinfo>
#include <utility>

#include "grpo/error.h"

namespace grpo {

namespace fs = std::filesystem;

namespace {

std::string directory_of(const std::string& path) {
  const std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// "line L, column C" of the 1-based byte offset a parse_error reports.
std::string position(const std::string& text, size_t byte) {
  const size_t at = std::min(byte == 0 ? 0 : byte - 1, text.size());  // 0-based offset of the bad byte
  const auto before = text.begin() + static_cast<std::ptrdiff_t>(at);
  const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), before, '\n'));
  const size_t newline = at == 0 ? std::string::npos : text.rfind('\n', at - 1);  // ends the previous line
  const size_t column = newline == std::string::npos ? at + 1 : at - newline;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// nlohmann's message without its "[json.exception...] parse error at ...: " lead.
std::string parse_reason(const std::string& what) {
  const size_t lead = what.find("parse error");
  if (lead == std::string::npos) return what;
  const size_t colon = what.find(": ", lead);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

}  // namespace

// ---------------------------------------------------------------- writing

AtomicFile::AtomicFile(std::string path, std::string who)
    : path_(std::move(path)), tmp_(path_ + ".tmp." + std::to_string(::getpid())), who_(std::move(who)) {
  if (path_.empty()) throw Error(who_ + ": the path is empty");
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) {
    const int err = errno;
    const std::string dir = directory_of(path_);
    struct stat st;
    if (err == ENOENT && ::stat(dir.c_str(), &st) != 0) {
      throw Error(who_ + ": cannot write '" + path_ + "': the directory '" + dir + "' does not exist");
    }
    throw Error(who_ + ": cannot write '" + path_ + "': cannot create a file in '" + dir + "': " + std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const std::string& what, int err) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
  throw Error(who_ + ": cannot write '" + path_ + "': " + what + ": " + std::strerror(err));
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (fd_ < 0) throw Error(who_ + ": cannot write '" + path_ + "': the file is already committed or failed");
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("the write failed", errno);
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error(who_ + ": cannot write '" + path_ + "': the file is already committed or failed");
  if (::fsync(fd_) != 0) fail("flushing it to disk failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("closing it failed", errno);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("renaming the finished file into place failed", errno);
  committed_ = true;
  // The rename is durable once the folder is synced; where that is not
  // possible the new file is still complete, so failures here are ignored.
  const int dir_fd = ::open(directory_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  AtomicFile file(path);
  file.write(content);
  file.commit();
}

void write_folder_atomic(const std::string& dir, const std::function<void(const fs::path&)>& fill,
                         const std::string& what) {
  const fs::path final_dir(dir);
  const fs::path tmp = final_dir.string() + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    if (!fs::create_directories(tmp, ec) || ec) {
      throw Error(tmp.string() + ": cannot create the folder (" + ec.message() + ")");
    }
    fill(tmp);
    const fs::path old = final_dir.string() + ".old-" + std::to_string(::getpid());
    const bool had_old = fs::exists(final_dir);
    if (had_old) {
      fs::rename(final_dir, old, ec);
      if (ec) throw Error(dir + ": cannot move the previous " + what + " aside (" + ec.message() + ")");
    }
    fs::rename(tmp, final_dir, ec);
    if (ec) {
      if (had_old) fs::rename(old, final_dir, ec);
      throw Error(dir + ": cannot move the new " + what + " into place (" + ec.message() + ")");
    }
    if (had_old) fs::remove_all(old, ec);
  } catch (const Error& e) {
    fs::remove_all(tmp, ec);
    // NB: the reader wants the folder being written, not the temporary one it is filled in.
    if (typeid(e) == typeid(Error)) throw Error(replace_all(e.what(), tmp.string(), dir));
    throw;
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

// ---------------------------------------------------------------- reading

std::string read_file(const std::string& path, const std::string& expected) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file (expected " + expected + ")");
  if (fs::is_directory(path, ec)) throw Error(path + ": is a directory, expected " + expected);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(path + ": read failed (" + std::strerror(errno) + ")");
  return text;
}

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

size_t json_too_deep(const std::string& text) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;  // the escaped character, a quote included
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string::npos;
}

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  const size_t deep = json_too_deep(text);
  if (deep != std::string::npos) {
    throw Error(where + ": " + position(text, deep + 1) + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                " levels");
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(where + ": " + position(text, e.byte) + ": invalid JSON: " + parse_reason(e.what()));
  } catch (const nlohmann::json::out_of_range& e) {
    // NB: a number past double's range (1e400) is this, not a parse error, and has no position.
    throw Error(where + ": invalid JSON: " + parse_reason(e.what()));
  }
}

nlohmann::json read_json_file(const std::string& path, const std::string& expected) {
  return parse_json(read_file(path, expected), path);
}

}  // namespace grpo
