// Final answers compared as mathematics (internal, for the accuracy reward): a
// recursive-descent parser over the LaTeX of answers (numbers, \frac, \sqrt,
// \pi, powers, ±, intervals, tuples, sets, matrices, bases, units, text) that
// evaluates as it parses, exactly in rationals where it can, else in doubles.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace grpo::rewards {

// Inputs longer than this, or nested deeper than kMaxMathDepth, do not parse
// (kUnparsed): the parser's work and stack are bounded on any input.
inline constexpr size_t kMaxMathAnswerBytes = 4096;
inline constexpr int kMaxMathDepth = 64;

enum class MathVerdict {
  kEqual,      // both parse and denote the same answer
  kDifferent,  // both parse and differ
  kUnparsed,   // one side is outside the parsed subset: compare them as strings
};

// Whether `answer` denotes `gold`. Integers and fractions of integers compare
// exactly; a decimal literal or an irrational (\sqrt{2}, \pi) on either side
// makes them compare within tolerance · max(|answer|, |gold|) (or 1e-12).
// Expressions with variables compare by their values at three fixed points
// (within the tolerance).
MathVerdict compare_math_answers(std::string_view answer, std::string_view gold, double tolerance);

// LaTeX made comparable as a string when it does not parse: no whitespace, $,
// \left / \right or spacing commands; \text{…}-like wrappers reduced to their
// contents; \dfrac and \tfrac spelled \frac; ASCII lowercased; a final '.' dropped.
std::string normalize_latex(std::string_view s);

}  // namespace grpo::rewards
