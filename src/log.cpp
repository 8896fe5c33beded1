// grpo::log over spdlog's default logger (compiled without LibTorch; see log.h).
#include "grpo/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

#include <cstdio>

#include "grpo/error.h"

namespace grpo::log {

namespace {

// NB: a logger of its own on stderr, so that stdout carries only what a
// command prints (the report JSON); a program that registered a "grpo" logger
// of its own keeps it.
spdlog::logger& logger() {
  static const std::shared_ptr<spdlog::logger> instance = [] {
    std::shared_ptr<spdlog::logger> existing = spdlog::get("grpo");
    return existing ? existing : spdlog::stderr_color_mt("grpo");
  }();
  return *instance;
}

}  // namespace

void set_level(const std::string& name) {
  const spdlog::level::level_enum level = spdlog::level::from_str(name);
  // NB: from_str answers "off" for a name it does not know.
  if (level == spdlog::level::off && name != "off")
    throw Error("log level \"" + name + "\" is unknown (known: trace, debug, info, warn, error, off)");
  logger().set_level(level);
}

void debug(const std::string& message) { logger().debug("{}", message); }
void info(const std::string& message) { logger().info("{}", message); }
void warn(const std::string& message) { logger().warn("{}", message); }
void error(const std::string& message) { logger().error("{}", message); }

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
