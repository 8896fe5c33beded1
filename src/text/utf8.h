// UTF-8 decoding with validation and encoding (internal), shared by the
// tokenizers and by the text that leaves the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace grpo::text {

// Reads the code point starting at byte `pos` (pos < s.size()). Returns its
// length in bytes, or 0 when the bytes there are not valid UTF-8: a stray
// continuation byte, a truncated sequence, an overlong form, a surrogate, or a
// value above U+10FFFF. Rejecting overlong forms keeps one spelling per code point.
inline size_t next_code_point(const std::string& s, size_t pos, uint32_t* cp) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const size_t left = s.size() - pos;
  const unsigned char b0 = p[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t len;
  uint32_t value, min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, value = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, value = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, value = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (left < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
    value = (value << 6) | (p[k] & 0x3F);
  }
  if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *cp = value;
  return len;
}

// "0A", "00E9": `value` in upper-case hex, at least `digits` digits.
inline std::string hex(uint32_t value, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*X", digits, value);
  return buf;
}

// "invalid UTF-8 at byte offset 12 (byte 0xFF)" for the bad byte at `pos`.
inline std::string describe_invalid_utf8(const std::string& s, size_t pos) {
  return "invalid UTF-8 at byte offset " + std::to_string(pos) + " (byte 0x" +
         hex(static_cast<unsigned char>(s[pos]), 2) + ")";
}

// The UTF-8 spelling of a valid code point.
inline std::string utf8(uint32_t cp) {
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  if (cp < 0x800) return {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
  if (cp < 0x10000) {
    return {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
            static_cast<char>(0x80 | (cp & 0x3F))};
  }
  return {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
          static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
}

}  // namespace grpo::text
