// Enums spelled by name, as configs and the ops' Python arguments spell them:
// one table of (value, name) pairs per enum, and lookups both ways. Plain C++.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace grpo {

template <class Enum, size_t K>
using EnumNames = std::array<std::pair<Enum, const char*>, K>;

// The name of `value`, or "?" for a value the table does not list.
template <class Enum, size_t K>
const char* enum_name(const EnumNames<Enum, K>& names, Enum value) {
  for (const auto& [v, n] : names) {
    if (v == value) return n;
  }
  return "?";
}

// The value named `name`; nullopt for an unknown name.
template <class Enum, size_t K>
std::optional<Enum> enum_from_name(const EnumNames<Enum, K>& names, const std::string& name) {
  for (const auto& [v, n] : names) {
    if (name == n) return v;
  }
  return std::nullopt;
}

// Every name, comma-separated: "grpo, bnpo, dr_grpo, dapo".
template <class Enum, size_t K>
std::string enum_names(const EnumNames<Enum, K>& names) {
  std::string out;
  for (const auto& entry : names) out += (out.empty() ? "" : ", ") + std::string(entry.second);
  return out;
}

}  // namespace grpo
