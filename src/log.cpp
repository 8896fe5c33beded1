// grpo::log over spdlog's default logger (compiled without LibTorch; see log.h).
#include "grpo/log.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "grpo/error.h"

namespace grpo::log {

void set_level(const std::string& name) {
  const spdlog::level::level_enum level = spdlog::level::from_str(name);
  // NB: from_str answers "off" for a name it does not know.
  if (level == spdlog::level::off && name != "off")
    throw Error("log level \"" + name + "\" is unknown (known: trace, debug, info, warn, error, off)");
  spdlog::set_level(level);
}

void debug(const std::string& message) { spdlog::debug("{}", message); }
void info(const std::string& message) { spdlog::info("{}", message); }
void warn(const std::string& message) { spdlog::warn("{}", message); }
void error(const std::string& message) { spdlog::error("{}", message); }

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

std::string scientific(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*e", digits, x);
  return buf;
}

}  // namespace grpo::log
