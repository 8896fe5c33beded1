// Templates with {name} placeholders and {{ }} for literal braces (internal),
// as prompt templates and chat message templates write them.
#pragma once

#include <string>
#include <vector>

namespace grpo::text {

struct TemplatePiece {
  bool is_field;     // true: a {name} placeholder; false: literal text
  std::string text;  // the name, or the text with {{ and }} already made single
};

// The pieces of `t`, in order. Raises grpo::Error with the bare problem, which
// the caller prefixes with the template's role:
//   unterminated '{' at position 4 (write {{ for a literal brace)
//   unmatched '}' at position 2 (write }} for a literal brace)
//   empty placeholder {} at position 8
// Positions are 0-based byte offsets into `t`.
std::vector<TemplatePiece> parse_brace_template(const std::string& t);

}  // namespace grpo::text
