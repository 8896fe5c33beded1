// Options structs <-> JSON (internal). A struct's keys are listed once, in a
// `fields(v, s)` function template that calls v(key, field) for a value,
// v.section(key, sub) for a nested struct (v.optional_section for a
// std::optional one, null when absent), v.int_or_null(key, field) for an
// integer whose 0 is written as null, and v.fixed(key, accepts, rule) for a
// key whose only accepted values are checked and never stored. Reader and
// Writer both walk that list, so the two directions cannot disagree. Errors
// are grpo::Error "<key.path>: <problem>", e.g.
//   loss.beta: expected a number, got "x"
//   model.config.num_layers: unknown key (known: vocab_size, ...)
// fields() overloads live in namespace grpo::json_fields beside the struct's
// code, so the Reader and Writer find them by argument-dependent lookup.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "grpo/enum_names.h"
#include "grpo/error.h"

namespace grpo::json_fields {

using nlohmann::json;

// A value as it appears in a message: JSON text, cut short when long.
inline std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  constexpr size_t kMax = 80;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

inline std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

inline std::string list(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The shortest text that reads back as x: 0.1, -1, 1e-08.
inline std::string number(double x) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

[[noreturn]] inline void type_error(const std::string& path, const std::string& expected, const json& got) {
  throw Error(path + ": expected " + expected + ", got " + show(got));
}

// ---------------------------------------------------------------- one value

inline void read(const json& v, const std::string& path, int64_t& out) {
  if (!v.is_number_integer()) type_error(path, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    type_error(path, "an integer that fits in int64", v);
  out = v.get<int64_t>();
}

inline void read(const json& v, const std::string& path, uint64_t& out) {
  if (!v.is_number_integer()) type_error(path, "a non-negative integer", v);
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) type_error(path, "a non-negative integer", v);
  out = v.get<uint64_t>();
}

inline void read(const json& v, const std::string& path, double& out) {
  if (!v.is_number()) type_error(path, "a number", v);
  out = v.get<double>();
}

inline void read(const json& v, const std::string& path, std::optional<double>& out) {
  if (v.is_null()) {
    out.reset();
    return;
  }
  if (!v.is_number()) type_error(path, "a number or null", v);
  out = v.get<double>();
}

inline void read(const json& v, const std::string& path, bool& out) {
  if (!v.is_boolean()) type_error(path, "true or false", v);
  out = v.get<bool>();
}

inline void read(const json& v, const std::string& path, std::string& out) {
  if (!v.is_string()) type_error(path, "a string", v);
  out = v.get<std::string>();
}

inline void read(const json& v, const std::string& path, std::vector<std::string>& out) {
  if (!v.is_array()) type_error(path, "an array of strings", v);
  std::vector<std::string> items;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) type_error(path + "[" + std::to_string(i) + "]", "a string", v[i]);
    items.push_back(v[i].get<std::string>());
  }
  out = std::move(items);
}

// An object kept as it is (its reader checks what is inside).
inline void read(const json& v, const std::string& path, json& out) {
  if (!v.is_object()) type_error(path, "an object", v);
  out = v;
}

template <class T>
json value(const T& x) {
  return x;
}
inline json value(const std::optional<double>& x) { return x ? json(*x) : json(nullptr); }

// ---------------------------------------------------------------- Reader

// Fills a struct from one JSON object: a missing key keeps the field's value;
// in strict mode an unknown key is an error listing the known ones (checked by
// finish(), once fields() has named them all).
class Reader {
 public:
  Reader(const json& j, std::string path, bool strict = true) : j_(j), path_(std::move(path)), strict_(strict) {
    if (!j.is_object()) {
      if (path_.empty()) throw Error("the config: expected a JSON object, got " + show(j));
      type_error(path_, "an object", j);
    }
  }

  template <class T>
  void operator()(const char* key, T& field) {
    if (const json* v = find(key)) read(*v, join(path_, key), field);
  }

  // An enum read by its name in `names`; an unknown name is an error listing them.
  template <class Enum, size_t K>
  void operator()(const char* key, Enum& field, const EnumNames<Enum, K>& names) {
    const json* v = find(key);
    if (!v) return;
    std::string name;
    read(*v, join(path_, key), name);
    const auto e = enum_from_name(names, name);
    if (!e) throw Error(join(path_, key) + ": must be one of " + enum_names(names) + ", got " + show(*v));
    field = *e;
  }

  // An integer whose "derive it" value 0 may be written as null.
  void int_or_null(const char* key, int64_t& field) {
    const json* v = find(key);
    if (!v) return;
    if (v->is_null()) {
      field = 0;
      return;
    }
    if (!v->is_number_integer()) type_error(join(path_, key), "an integer or null", *v);
    read(*v, join(path_, key), field);
  }

  // A key this struct does not store but whose value must be one it supports.
  void fixed(const char* key, const std::function<bool(const json&)>& accepts, const std::string& rule) {
    const json* v = find(key);
    if (v && !accepts(*v)) throw Error(join(path_, key) + ": must be " + rule + ", got " + show(*v));
  }

  template <class S>
  void section(const char* key, S& sub) {
    const json* v = find(key);
    if (!v) return;
    Reader r(*v, join(path_, key), strict_);
    fields(r, sub);
    r.finish();
  }

  // A nested struct that may be null (std::nullopt); present keys are read
  // over the struct's defaults.
  template <class S>
  void optional_section(const char* key, std::optional<S>& sub) {
    const json* v = find(key);
    if (!v) return;
    if (v->is_null()) {
      sub.reset();
      return;
    }
    S s = sub.value_or(S{});
    Reader r(*v, join(path_, key), strict_);
    fields(r, s);
    r.finish();
    sub = std::move(s);
  }

  void finish() const {
    if (!strict_) return;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (std::find(known_.begin(), known_.end(), it.key()) == known_.end())
        throw Error(join(path_, it.key()) + ": unknown key (known: " + list(known_) + ")");
    }
  }

 private:
  const json* find(const char* key) {
    known_.emplace_back(key);
    const auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  const json& j_;
  std::string path_;
  bool strict_;
  std::vector<std::string> known_;
};

// ---------------------------------------------------------------- Writer

// Writes every stored field; fixed keys are left out.
class Writer {
 public:
  template <class T>
  void operator()(const char* key, T& field) {
    j_[key] = value(field);
  }

  template <class Enum, size_t K>
  void operator()(const char* key, Enum& field, const EnumNames<Enum, K>& names) {
    j_[key] = enum_name(names, field);
  }

  void int_or_null(const char* key, int64_t& field) { j_[key] = field == 0 ? json(nullptr) : json(field); }

  void fixed(const char*, const std::function<bool(const json&)>&, const std::string&) {}

  template <class S>
  void section(const char* key, S& sub) {
    Writer w;
    fields(w, sub);
    j_[key] = std::move(w.j_);
  }

  template <class S>
  void optional_section(const char* key, std::optional<S>& sub) {
    if (!sub) {
      j_[key] = nullptr;
      return;
    }
    section(key, *sub);
  }

  json take() { return std::move(j_); }

 private:
  json j_ = json::object();
};

// S from `j` through fields(); strict rejects unknown keys.
template <class S>
void read_struct(const json& j, const std::string& path, S& out, bool strict = true) {
  Reader r(j, path, strict);
  fields(r, out);
  r.finish();
}

// Every stored field of `s` as a JSON object.
template <class S>
json write_struct(const S& s) {
  S copy = s;  // fields() takes its struct by reference; the Writer only reads it
  Writer w;
  fields(w, copy);
  return w.take();
}

}  // namespace grpo::json_fields
