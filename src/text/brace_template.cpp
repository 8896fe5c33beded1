// The {name} / {{ }} template scanner.
#include "text/brace_template.h"

#include <utility>

#include "grpo/error.h"

namespace grpo::text {

std::vector<TemplatePiece> parse_brace_template(const std::string& t) {
  std::vector<TemplatePiece> pieces;
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) pieces.push_back({false, std::move(literal)});
    literal.clear();
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c == '{' && i + 1 < t.size() && t[i + 1] == '{') {
      literal += '{';
      ++i;
    } else if (c == '}' && i + 1 < t.size() && t[i + 1] == '}') {
      literal += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = t.find_first_of("{}", i + 1);
      if (close == std::string::npos || t[close] != '}') {
        throw Error("unterminated '{' at position " + std::to_string(i) + " (write {{ for a literal brace)");
      }
      if (close == i + 1) throw Error("empty placeholder {} at position " + std::to_string(i));
      flush();
      pieces.push_back({true, t.substr(i + 1, close - i - 1)});
      i = close;
    } else if (c == '}') {
      throw Error("unmatched '}' at position " + std::to_string(i) + " (write }} for a literal brace)");
    } else {
      literal += c;
    }
  }
  flush();
  return pieces;
}

}  // namespace grpo::text
