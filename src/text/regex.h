// PCRE2 (8-bit) as the library uses it (internal): owning handles for
// compiled patterns, match data and match contexts, and error texts. Shared by
// the "regex" reward and the Hugging Face pre-tokenizers.
#pragma once

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <memory>
#include <string>

namespace grpo::text {

struct Pcre2Deleter {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
  void operator()(pcre2_match_data* d) const { pcre2_match_data_free(d); }
  void operator()(pcre2_match_context* c) const { pcre2_match_context_free(c); }
};
using Pcre2Code = std::unique_ptr<pcre2_code, Pcre2Deleter>;
using Pcre2MatchData = std::unique_ptr<pcre2_match_data, Pcre2Deleter>;
using Pcre2MatchContext = std::unique_ptr<pcre2_match_context, Pcre2Deleter>;

// PCRE2's text for an error code (compile or match).
std::string pcre2_message(int code);

// `pattern` compiled with `flags`, or null with *error and *offset set (PCRE2's
// code and the pattern offset where compiling stopped).
Pcre2Code pcre2_compile_pattern(const std::string& pattern, uint32_t flags, int* error, size_t* offset);

}  // namespace grpo::text
