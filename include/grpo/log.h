// The library's log: one line per event, to stderr, through spdlog.
// NB: a front of its own because LibTorch 2.x ships fmt 12 in its include
// folder, which Debian's spdlog (built on fmt 9) cannot compile against; the
// translation unit that includes spdlog is built without LibTorch.
#pragma once

#include <string>

namespace grpo::log {

// The least severe level written: "trace", "debug", "info" (the default),
// "warn", "error" or "off". Raises grpo::Error for another name.
void set_level(const std::string& name);

void debug(const std::string& message);
void info(const std::string& message);
void warn(const std::string& message);
void error(const std::string& message);

// Numbers for messages: x with `digits` digits after the point ("0.125"), and
// in scientific form ("1.25e-03").
std::string fixed(double x, int digits);
std::string scientific(double x, int digits);

}  // namespace grpo::log
