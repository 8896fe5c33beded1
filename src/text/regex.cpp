// PCRE2 handles and error texts.
#include "text/regex.h"

namespace grpo::text {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

Pcre2Code pcre2_compile_pattern(const std::string& pattern, uint32_t flags, int* error, size_t* offset) {
  PCRE2_SIZE at = 0;
  Pcre2Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), flags, error, &at,
                               nullptr));
  *offset = at;
  return code;
}

}  // namespace grpo::text
