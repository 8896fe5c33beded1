// Writing a whole folder so that readers see either the previous one or the
// complete new one: used by checkpoints and by export_pretrained.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

#include "grpo/error.h"

namespace grpo {

// `fill(tmp)` writes everything into a fresh sibling folder `dir`.tmp-<pid>,
// which then replaces `dir`: an existing `dir` is moved aside first and removed
// only once the new one is in place (put back if the rename fails). On any
// error the temporary folder is removed and `dir`, if it existed, is untouched.
// `what` names the folder in errors ("checkpoint", "folder").
inline void write_folder_atomic(const std::string& dir, const std::function<void(const std::filesystem::path&)>& fill,
                                const std::string& what) {
  namespace fs = std::filesystem;
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
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace grpo
