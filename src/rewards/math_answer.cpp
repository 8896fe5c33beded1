// The answer parser of math_answer.h. The bounded input is cut into tokens
// first; a recursive descent with a depth count then evaluates them. Any
// construct outside the subset throws NotParsed, and the answer is kUnparsed.
#include "rewards/math_answer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <optional>
#include <vector>

namespace grpo::rewards {
namespace {

struct NotParsed {};

// ---------------------------------------------------------------- numbers

using i128 = __int128;
constexpr i128 kInt64Max = std::numeric_limits<int64_t>::max();
constexpr double kAbsoluteFloor = 1e-12;  // approximate values this close are equal whatever the tolerance

// A real value: the exact rational p/q when `exact`, and always as a double.
struct Num {
  bool exact = true;    // p / q is the value (q > 0, in lowest terms)
  bool approx = false;  // a decimal literal or an irrational took part: compare within the tolerance
  int64_t p = 0, q = 1;
  double d = 0.0;
};

Num inexact(double d) {
  if (std::isnan(d)) throw NotParsed{};
  Num n;
  n.exact = false;
  n.approx = true;
  n.d = d;
  return n;
}

i128 gcd128(i128 a, i128 b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    const i128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

// NB: p and q are products of two int64 at most, so i128 holds them; a result
// that no longer fits int64 continues as a double.
Num rational(i128 p, i128 q, bool approx) {
  if (q == 0) throw NotParsed{};
  if (q < 0) p = -p, q = -q;
  const i128 g = gcd128(p, q);
  if (g > 1) p /= g, q /= g;
  if (p > kInt64Max || p < -kInt64Max || q > kInt64Max) return inexact(static_cast<double>(p) / static_cast<double>(q));
  Num n;
  n.p = static_cast<int64_t>(p);
  n.q = static_cast<int64_t>(q);
  n.approx = approx;
  n.d = static_cast<double>(n.p) / static_cast<double>(n.q);
  return n;
}

Num integer(int64_t v) { return rational(v, 1, false); }

Num add(const Num& a, const Num& b) {
  if (a.exact && b.exact) {
    return rational(static_cast<i128>(a.p) * b.q + static_cast<i128>(b.p) * a.q, static_cast<i128>(a.q) * b.q,
                    a.approx || b.approx);
  }
  return inexact(a.d + b.d);
}

Num negate(Num a) {
  a.p = -a.p;
  a.d = -a.d;
  return a;
}

Num mul(const Num& a, const Num& b) {
  if (a.exact && b.exact) {
    return rational(static_cast<i128>(a.p) * b.p, static_cast<i128>(a.q) * b.q, a.approx || b.approx);
  }
  return inexact(a.d * b.d);
}

Num divide(const Num& a, const Num& b) {
  if (b.d == 0.0) throw NotParsed{};
  if (a.exact && b.exact) {
    return rational(static_cast<i128>(a.p) * b.q, static_cast<i128>(a.q) * b.p, a.approx || b.approx);
  }
  return inexact(a.d / b.d);
}

Num power(const Num& base, const Num& e) {
  if (base.exact && e.exact && e.q == 1 && e.p >= -64 && e.p <= 64) {
    if (base.p == 0 && e.p < 0) throw NotParsed{};
    Num r = integer(1);
    for (int64_t k = 0; k < (e.p < 0 ? -e.p : e.p) && r.exact; ++k) r = mul(r, base);
    if (r.exact) return e.p < 0 ? divide(integer(1), r) : r;
  }
  return inexact(std::pow(base.d, e.d));
}

// The integer r with r^n == v, if there is one.
std::optional<int64_t> exact_root(int64_t v, int64_t n) {
  if (v < 0 && n % 2 == 0) return std::nullopt;
  const double guess = std::round(std::copysign(std::pow(std::fabs(static_cast<double>(v)), 1.0 / n), v));
  for (double c : {guess - 1, guess, guess + 1}) {
    i128 acc = 1;
    bool over = false;
    for (int64_t k = 0; k < n && !over; ++k) {
      acc *= static_cast<i128>(c);
      over = acc > kInt64Max || acc < -kInt64Max;
    }
    if (!over && acc == v) return static_cast<int64_t>(c);
  }
  return std::nullopt;
}

Num root(const Num& x, int64_t n) {
  if (n < 2 || n > 64 || (x.d < 0 && n % 2 == 0)) throw NotParsed{};
  if (x.exact) {
    const auto p = exact_root(x.p, n), q = exact_root(x.q, n);
    if (p && q) return rational(*p, *q, x.approx);
  }
  return inexact(std::copysign(std::pow(std::fabs(x.d), 1.0 / static_cast<double>(n)), x.d));
}

// ---------------------------------------------------------------- values

struct Value {
  enum class Kind { kNumber, kTuple, kSet, kUnion, kMatrix, kEquation, kText };
  Kind kind = Kind::kNumber;
  Num num;                   // kNumber
  std::string text;          // kText: lowercased, spaces collapsed
  char open = 0, close = 0;  // kTuple: '(' or '[', ')' or ']' (intervals and ordered pairs alike)
  size_t cols = 0;           // kMatrix: items row by row
  std::vector<Value> items;  // kTuple, kSet and kUnion (both unordered), kMatrix; kEquation: {lhs, rhs}
};

Value number(Num n) {
  Value v;
  v.num = n;
  return v;
}

Value of_kind(Value::Kind kind, std::vector<Value> items) {
  Value v;
  v.kind = kind;
  v.items = std::move(items);
  return v;
}

const Num& scalar(const Value& v) {
  if (v.kind != Value::Kind::kNumber) throw NotParsed{};
  return v.num;
}

// ---------------------------------------------------------------- tokens

enum class T { kEnd, kNumber, kLetter, kWord, kCommand, kText, kSym };

// Symbols beyond their own character: 'L' \{, 'R' \}, 'U' \cup, 'P' \pm,
// 'o' a degree sign, 'n' the row break \\, 'E' \in.
struct Token {
  T kind = T::kEnd;
  std::string text;  // kNumber: the digits as written (grouping removed); kLetter, kWord, kCommand: the name
  Num num;           // kNumber
  char sym = 0;      // kSym
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

bool one_of(std::string_view s, std::initializer_list<std::string_view> list) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

const std::initializer_list<std::string_view> kFunctions = {"sin", "cos", "tan", "cot", "sec", "csc", "ln", "log",
                                                            "exp", "arcsin", "arccos", "arctan"};
const std::initializer_list<std::string_view> kGreek = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma",
    "Delta", "Theta", "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega"};
// Words after a number that name its unit and are dropped, as \text{...} after a number is.
const std::initializer_list<std::string_view> kUnits = {
    "cm", "mm", "km", "m", "meters", "meter", "in", "inch", "inches", "ft", "feet", "foot", "yd", "yards", "mi",
    "miles", "units", "unit", "degrees", "degree", "dollars", "dollar", "cents", "cent", "sq", "square", "hours",
    "hour", "minutes", "minute", "seconds", "second", "days", "day", "kg", "g", "lb", "lbs", "pounds", "mph"};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  std::vector<Token> run() {
    while (i_ < s_.size()) {
      if (single_args_ > 0 && single_char_argument()) continue;
      const char c = s_[i_];
      if (is_blank(c) || c == '$' || c == '~' || c == '%') {
        ++i_;
      } else if (c == '\\') {
        command();
      } else if (is_digit(c) || (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1]))) {
        lex_number();
      } else if (is_alpha(c)) {
        size_t j = i_;
        while (j < s_.size() && is_alpha(s_[j])) ++j;
        const std::string_view word = s_.substr(i_, j - i_);
        i_ = j;
        if (word.size() == 1) push(T::kLetter, std::string(word));
        else if (one_of(word, kFunctions)) push(T::kCommand, std::string(word));
        else push(T::kWord, std::string(word));
      } else if (c == '.') {  // a full stop ends the answer: only blanks may follow
        ++i_;
        while (i_ < s_.size() && (is_blank(s_[i_]) || s_[i_] == '$')) ++i_;
        if (i_ != s_.size()) throw NotParsed{};
      } else if (std::string_view("+-*/^_()[]{},=|!&").find(c) != std::string_view::npos) {
        if (c == '(' || c == '[' || c == '{') ++depth_;
        if ((c == ')' || c == ']' || c == '}') && depth_ > 0) --depth_;
        sym(c);
        ++i_;
      } else {
        unicode();
      }
    }
    out_.push_back(Token{});
    return std::move(out_);
  }

 private:
  void push(T kind, std::string text) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }
  void sym(char c) {
    Token t;
    t.kind = T::kSym;
    t.sym = c;
    out_.push_back(std::move(t));
  }
  bool starts(std::string_view p) const { return s_.substr(i_, p.size()) == p; }

  // \frac12 and \sqrt2: unbraced arguments are one character each.
  bool single_char_argument() {
    while (i_ < s_.size() && is_blank(s_[i_])) ++i_;
    if (i_ >= s_.size()) return true;
    const char c = s_[i_];
    if (is_digit(c)) {
      Token t;
      t.kind = T::kNumber;
      t.text = std::string(1, c);
      t.num = integer(c - '0');
      out_.push_back(std::move(t));
    } else if (is_alpha(c)) {
      push(T::kLetter, std::string(1, c));
    } else {
      single_args_ = 0;
      return false;
    }
    ++i_;
    --single_args_;
    return true;
  }

  void command() {
    if (i_ + 1 >= s_.size()) throw NotParsed{};
    const char d = s_[i_ + 1];
    if (!is_alpha(d)) {
      i_ += 2;
      switch (d) {
        case ',': case ';': case ':': case '!': case ' ': case '%': case '$': case '(': case ')': case '[': case ']':
          return;
        case '{': ++depth_; return sym('L');
        case '}': if (depth_ > 0) --depth_; return sym('R');
        case '\\': return sym('n');
        default: throw NotParsed{};
      }
    }
    size_t j = i_ + 1;
    while (j < s_.size() && is_alpha(s_[j])) ++j;
    const std::string name(s_.substr(i_ + 1, j - i_ - 1));
    i_ = j;
    if (one_of(name, {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr",
                      "displaystyle", "textstyle", "quad", "qquad", "limits", "nolimits"})) {
      return;
    }
    if (one_of(name, {"text", "textbf", "textit", "textrm", "textnormal", "mathrm", "mathbf", "mathit", "mbox",
                      "hbox", "operatorname"})) {
      return text_argument();
    }
    if (one_of(name, {"frac", "dfrac", "tfrac", "cfrac"})) return command_with_args("frac", 2);
    if (one_of(name, {"binom", "dbinom", "tbinom"})) return command_with_args("binom", 2);
    if (name == "sqrt") return command_with_args("sqrt", 1);
    if (name == "fbox" || name == "boxed") return push(T::kCommand, "boxed");
    if (one_of(name, {"cdot", "times", "ast"})) return sym('*');
    if (name == "div") return sym('/');
    if (name == "cup") return sym('U');
    if (name == "pm") return sym('P');
    if (name == "in") return sym('E');
    if (name == "circ" || name == "degree") return sym('o');
    if (name == "pi" || name == "infty" || one_of(name, kFunctions)) return push(T::kCommand, name);
    if (one_of(name, kGreek)) return push(T::kLetter, name);
    if (name == "begin" || name == "end") {
      while (i_ < s_.size() && is_blank(s_[i_])) ++i_;
      if (i_ >= s_.size() || s_[i_] != '{') throw NotParsed{};
      const size_t close = s_.find('}', i_);
      if (close == std::string_view::npos) throw NotParsed{};
      Token t;
      t.kind = T::kCommand;
      t.text = name;
      const std::string env(s_.substr(i_ + 1, close - i_ - 1));
      if (!one_of(env, {"pmatrix", "bmatrix", "matrix"})) throw NotParsed{};
      i_ = close + 1;
      out_.push_back(std::move(t));
      return;
    }
    throw NotParsed{};
  }

  void command_with_args(const char* name, int args) {
    push(T::kCommand, name);
    single_args_ = args;
  }

  // \text{...}: its contents, balanced braces, as one token.
  void text_argument() {
    while (i_ < s_.size() && is_blank(s_[i_])) ++i_;
    if (i_ >= s_.size() || s_[i_] != '{') throw NotParsed{};
    int open = 0;
    const size_t begin = i_ + 1;
    for (; i_ < s_.size(); ++i_) {
      if (s_[i_] == '{') ++open;
      if (s_[i_] == '}' && --open == 0) break;
    }
    if (i_ >= s_.size()) throw NotParsed{};
    push(T::kText, std::string(s_.substr(begin, i_ - begin)));
    ++i_;
  }

  // A thousands separator at i_ followed by exactly three digits: its length, else 0.
  size_t group_separator() const {
    size_t len = 0;
    if (starts("{,}")) len = 3;
    else if (starts(",\\!")) len = 3;
    else if (starts("\\,")) len = 2;
    else if (starts(",") && depth_ == 0) len = 1;
    if (len == 0) return 0;
    size_t j = i_ + len;
    if (len == 3 && s_[i_] == ',') {
      while (j < s_.size() && s_[j] == ' ') ++j;
    }
    for (size_t k = 0; k < 3; ++k) {
      if (j + k >= s_.size() || !is_digit(s_[j + k])) return 0;
    }
    if (j + 3 < s_.size() && is_digit(s_[j + 3])) return 0;
    return j - i_;
  }

  // 1234, 1,234, 10{,}000, 11,\!111, 3.25, .5, 1e3, 2.5E-4.
  void lex_number() {
    std::string digits;
    while (i_ < s_.size() && is_digit(s_[i_])) digits.push_back(s_[i_++]);
    if (!digits.empty() && digits.size() <= 3) {
      while (i_ < s_.size()) {
        const size_t sep = group_separator();
        if (sep == 0) break;
        i_ += sep;
        digits.append(s_.substr(i_, 3));
        i_ += 3;
      }
    }
    std::string frac;
    if (i_ + 1 < s_.size() && s_[i_] == '.' && is_digit(s_[i_ + 1])) {
      ++i_;
      while (i_ < s_.size() && is_digit(s_[i_])) frac.push_back(s_[i_++]);
    }
    int64_t exponent = 0;
    bool has_exponent = false;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      size_t j = i_ + 1;
      const bool minus = j < s_.size() && s_[j] == '-';
      if (j < s_.size() && (s_[j] == '-' || s_[j] == '+')) ++j;
      if (j < s_.size() && is_digit(s_[j])) {
        size_t k = j;
        while (k < s_.size() && is_digit(s_[k]) && k - j < 4) exponent = exponent * 10 + (s_[k++] - '0');
        if (k < s_.size() && is_digit(s_[k])) throw NotParsed{};
        if (minus) exponent = -exponent;
        has_exponent = true;
        i_ = k;
      }
    }
    Token t;
    t.kind = T::kNumber;
    t.text = digits + (frac.empty() ? "" : "." + frac);
    std::string mantissa = digits + frac;
    mantissa.erase(0, std::min(mantissa.find_first_not_of('0'), mantissa.size()));
    if (mantissa.size() > 18 || frac.size() > 18 || std::llabs(exponent) > 18) {
      std::string literal = (digits.empty() ? "0" : digits) + "." + frac + "e" + std::to_string(exponent);
      t.num = inexact(std::strtod(literal.c_str(), nullptr));
    } else {
      const int64_t m = mantissa.empty() ? 0 : std::stoll(mantissa);
      const int64_t scale = static_cast<int64_t>(frac.size()) - exponent;
      i128 p = m, q = 1;
      for (int64_t k = 0; k < std::llabs(scale); ++k) (scale > 0 ? q : p) *= 10;
      t.num = rational(p, q, !frac.empty() || has_exponent);
    }
    out_.push_back(std::move(t));
  }

  // The few non-ASCII characters of answers: ° π − × · ∞ ± √.
  void unicode() {
    static const std::pair<std::string_view, char> kSyms[] = {
        {"\xC2\xB0", 'o'}, {"\xE2\x88\x92", '-'}, {"\xC3\x97", '*'}, {"\xC2\xB7", '*'}, {"\xC2\xB1", 'P'}};
    for (const auto& [utf8, c] : kSyms) {
      if (starts(utf8)) {
        i_ += utf8.size();
        return sym(c);
      }
    }
    if (starts("\xCF\x80")) return i_ += 2, push(T::kCommand, "pi");
    if (starts("\xE2\x88\x9E")) return i_ += 3, push(T::kCommand, "infty");
    if (starts("\xE2\x88\x9A")) return i_ += 3, command_with_args("sqrt", 1);
    throw NotParsed{};
  }

  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;        // open ( [ { \{: a plain comma inside separates, never groups digits
  int single_args_ = 0;  // unbraced one-character arguments still to read
  std::vector<Token> out_;
};

// ---------------------------------------------------------------- parser

// The value of a variable at evaluation point `point`: fixed, distinct per name.
double variable_value(const std::string& name, int point) {
  uint64_t h = 1469598103934665603ull;
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return 0.35 + static_cast<double>(h % 10007) / 10007.0 * 1.7 + 0.731 * point;
}

bool is_text_separator(const Token& t) {
  if (t.kind != T::kText) return false;
  std::string s;
  for (char c : t.text) {
    if (!is_blank(c)) s.push_back(c);
  }
  return s == "and" || s == "or" || s == ",";
}

std::string normalize_text(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (is_blank(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, int point) : t_(tokens), point_(point) {}

  Value answer() {
    Value v = list();
    if (peek().kind != T::kEnd) throw NotParsed{};
    return v;
  }
  bool has_variables() const { return has_variables_; }

 private:
  struct Depth {
    explicit Depth(Parser& p) : p(p) {
      if (++p.depth_ > kMaxMathDepth) throw NotParsed{};
    }
    ~Depth() { --p.depth_; }
    Parser& p;
  };

  const Token& peek(size_t k = 0) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  bool is_sym(char c, size_t k = 0) const { return peek(k).kind == T::kSym && peek(k).sym == c; }
  bool is_command(std::string_view name) const { return peek().kind == T::kCommand && peek().text == name; }
  void expect(char c) {
    if (!is_sym(c)) throw NotParsed{};
    ++pos_;
  }

  // a, b, c (also "a and b"): one value, or an unordered set of several; the
  // two values of a ± join the set.
  std::vector<Value> items() {
    std::vector<Value> out;
    auto add = [&](Value v) {
      if (v.kind == Value::Kind::kSet) {
        for (auto& item : v.items) out.push_back(std::move(item));
      } else {
        out.push_back(std::move(v));
      }
    };
    add(element());
    while (is_sym(',') || is_text_separator(peek())) {
      ++pos_;
      add(element());
    }
    return out;
  }
  Value list() {
    Depth d(*this);
    std::vector<Value> v = items();
    if (v.size() == 1) return std::move(v[0]);
    return of_kind(Value::Kind::kSet, std::move(v));
  }

  // "x = 5" and "x \in [2, 5)" are their right sides; any other equation keeps both.
  Value element() {
    if (peek().kind == T::kLetter && (is_sym('=', 1) || is_sym('E', 1))) pos_ += 2;
    Value v = union_of();
    if (is_sym('=')) {
      ++pos_;
      v = of_kind(Value::Kind::kEquation, {std::move(v), union_of()});
    }
    return v;
  }

  Value union_of() {
    Value v = expr();
    if (!is_sym('U')) return v;
    std::vector<Value> parts = {std::move(v)};
    while (is_sym('U')) {
      ++pos_;
      parts.push_back(expr());
    }
    return of_kind(Value::Kind::kUnion, std::move(parts));
  }

  Value expr() {
    Depth d(*this);
    Value v = term();
    while (is_sym('+') || is_sym('-') || is_sym('P')) {
      const char op = peek().sym;
      ++pos_;
      const Num r = scalar(term());
      const Num l = scalar(v);
      if (op == 'P') {  // a ± b: both values, and nothing more may follow
        v = of_kind(Value::Kind::kSet, {number(add(l, r)), number(add(l, negate(r)))});
        if (is_sym('+') || is_sym('-') || is_sym('P')) throw NotParsed{};
        break;
      }
      v = number(add(l, op == '+' ? r : negate(r)));
    }
    return v;
  }

  bool starts_factor() const {
    const Token& t = peek();
    if (t.kind == T::kNumber || t.kind == T::kLetter) return true;
    if (t.kind == T::kCommand) return t.text != "end";
    return t.kind == T::kSym && (t.sym == '(' || t.sym == '{' || t.sym == 'L');
  }
  bool starts_unit() const {
    const Token& t = peek();
    if (t.kind == T::kText) return !is_text_separator(t);
    if (t.kind == T::kWord) return one_of(t.text, kUnits);
    return t.kind == T::kSym && t.sym == 'o';
  }

  Value term() {
    Depth d(*this);
    Value v = signed_factor();
    for (;;) {
      if (is_sym('*') || is_sym('/')) {
        const char op = peek().sym;
        ++pos_;
        const Num r = scalar(signed_factor());
        v = number(op == '*' ? mul(scalar(v), r) : divide(scalar(v), r));
      } else if (starts_unit()) {  // 5\text{ cm}^2, 18 dollars, 30°: the number alone
        scalar(v);
        ++pos_;
        if (is_sym('^')) {
          ++pos_;
          primary();
        }
      } else if (starts_factor()) {
        const Num r = scalar(power_of());
        v = number(mul(scalar(v), r));
      } else {
        return v;
      }
    }
  }

  Value signed_factor() {
    Depth d(*this);
    if (is_sym('-')) {
      ++pos_;
      return number(negate(scalar(signed_factor())));
    }
    if (is_sym('+')) {
      ++pos_;
      return signed_factor();
    }
    return power_of();
  }

  bool degree_follows() const { return is_sym('o') || (is_sym('{') && is_sym('o', 1) && is_sym('}', 2)); }

  Value power_of() {
    Depth d(*this);
    Value b = primary();
    while (is_sym('!')) {
      ++pos_;
      b = number(factorial(scalar(b)));
    }
    if (!is_sym('^')) return b;
    ++pos_;
    if (degree_follows()) {  // 10^\circ is 10
      pos_ += is_sym('o') ? 1 : 3;
      scalar(b);
      return b;
    }
    Value e = is_sym('-') ? (++pos_, number(negate(scalar(primary())))) : primary();
    return number(power(scalar(b), scalar(e)));
  }

  static Num factorial(const Num& n) {
    if (!n.exact || n.q != 1 || n.p < 0 || n.p > 20) throw NotParsed{};
    Num r = integer(1);
    for (int64_t k = 2; k <= n.p; ++k) r = mul(r, integer(k));
    return r;
  }

  // A braced group or, unbraced, one token: the arguments of \frac, \sqrt, \boxed.
  Value argument() {
    Depth d(*this);
    if (is_sym('{')) {
      ++pos_;
      Value v = list();
      expect('}');
      return v;
    }
    return primary();
  }

  // 2\frac{1}{2} and 137 \frac12 are mixed numbers: an integer and a fraction of integer literals.
  bool fraction_of_literals_follows() const {
    if (!is_command("frac")) return false;
    const bool braced = is_sym('{', 1);
    if (!braced) return peek(1).kind == T::kNumber && peek(2).kind == T::kNumber;
    return peek(2).kind == T::kNumber && is_sym('}', 3) && is_sym('{', 4) && peek(5).kind == T::kNumber &&
           is_sym('}', 6);
  }

  static bool plain_integer(const Token& t) {
    return !t.text.empty() && std::all_of(t.text.begin(), t.text.end(), is_digit);
  }

  Value primary() {
    Depth d(*this);
    const Token& t = peek();
    switch (t.kind) {
      case T::kNumber: {
        ++pos_;
        if (is_sym('_')) return number(in_base(t));
        if (plain_integer(t) && t.num.exact && fraction_of_literals_follows()) {
          ++pos_;
          const Num a = scalar(argument()), b = scalar(argument());
          return number(add(t.num, divide(a, b)));
        }
        return number(t.num);
      }
      case T::kLetter:
        ++pos_;
        has_variables_ = true;
        return number(inexact(variable_value(t.text, point_)));
      case T::kCommand:
        ++pos_;
        return command(t.text);
      case T::kText:
        ++pos_;
        {
          Value v;
          v.kind = Value::Kind::kText;
          v.text = normalize_text(t.text);
          return v;
        }
      case T::kSym:
        if (t.sym == '(' || t.sym == '[') return bracketed();
        if (t.sym == '{') return argument();
        if (t.sym == 'L') {  // \{ a, b \}: a set, even of one
          ++pos_;
          std::vector<Value> v;
          if (!is_sym('R')) v = items();
          expect('R');
          return of_kind(Value::Kind::kSet, std::move(v));
        }
        if (t.sym == '|') {
          ++pos_;
          Num v = scalar(expr());
          expect('|');
          return number(v.d < 0 ? negate(v) : v);
        }
        throw NotParsed{};
      default:
        throw NotParsed{};
    }
  }

  // 204_5, 4210_{5}: digits in a base from 2 to 10.
  Num in_base(const Token& digits) {
    ++pos_;
    const bool braced = is_sym('{');
    if (braced) ++pos_;
    const Token& b = peek();
    if (b.kind != T::kNumber || !plain_integer(b) || !plain_integer(digits) || b.text.size() > 2) throw NotParsed{};
    const int64_t base = std::stoll(b.text);
    ++pos_;
    if (braced) expect('}');
    if (base < 2 || base > 10 || digits.text.size() > 18) throw NotParsed{};
    int64_t v = 0;
    for (char c : digits.text) {
      if (c - '0' >= base) throw NotParsed{};
      v = v * base + (c - '0');
    }
    return integer(v);
  }

  Value bracketed() {
    const char open = peek().sym;
    ++pos_;
    std::vector<Value> v = items();
    if (!is_sym(')') && !is_sym(']')) throw NotParsed{};
    const char close = peek().sym;
    ++pos_;
    if (open == '(' && close == ')' && v.size() == 1) return std::move(v[0]);  // grouping
    Value out = of_kind(Value::Kind::kTuple, std::move(v));
    out.open = open;
    out.close = close;
    return out;
  }

  Value command(const std::string& name) {
    if (name == "pi") return number(inexact(3.14159265358979323846));
    if (name == "infty") return number(inexact(std::numeric_limits<double>::infinity()));
    if (name == "boxed") return argument();
    if (name == "frac") {
      const Num a = scalar(argument());
      return number(divide(a, scalar(argument())));
    }
    if (name == "binom") {
      const Num n = scalar(argument()), k = scalar(argument());
      if (!n.exact || !k.exact || n.q != 1 || k.q != 1 || k.p < 0 || n.p < 0 || k.p > n.p || n.p > 66) {
        throw NotParsed{};
      }
      Num r = integer(1);
      for (int64_t j = 1; j <= k.p; ++j) r = divide(mul(r, integer(n.p - k.p + j)), integer(j));
      return number(r);
    }
    if (name == "sqrt") {
      if (is_sym('[')) {
        ++pos_;
        const Num n = scalar(expr());
        expect(']');
        if (!n.exact || n.q != 1) throw NotParsed{};
        return number(root(scalar(argument()), n.p));
      }
      return number(root(scalar(argument()), 2));
    }
    if (name == "begin") return matrix();
    if (one_of(name, kFunctions)) {
      std::optional<Num> base;
      if (name == "log" && is_sym('_')) {
        ++pos_;
        base = scalar(argument());
      }
      const Num x = scalar(is_sym('{') ? argument() : power_of());
      double y;
      if (name == "sin") y = std::sin(x.d);
      else if (name == "cos") y = std::cos(x.d);
      else if (name == "tan") y = std::tan(x.d);
      else if (name == "cot") y = 1.0 / std::tan(x.d);
      else if (name == "sec") y = 1.0 / std::cos(x.d);
      else if (name == "csc") y = 1.0 / std::sin(x.d);
      else if (name == "exp") y = std::exp(x.d);
      else if (name == "arcsin") y = std::asin(x.d);
      else if (name == "arccos") y = std::acos(x.d);
      else if (name == "arctan") y = std::atan(x.d);
      else y = std::log(x.d) / (base ? std::log(base->d) : 1.0);  // ln, log (natural unless based)
      return number(inexact(y));
    }
    throw NotParsed{};
  }

  // \begin{pmatrix} a & b \\ c & d \end{pmatrix}
  Value matrix() {
    Value m;
    m.kind = Value::Kind::kMatrix;
    size_t in_row = 0;
    for (;;) {
      m.items.push_back(number(scalar(expr())));
      ++in_row;
      if (is_sym('&')) {
        ++pos_;
        continue;
      }
      if (m.cols == 0) m.cols = in_row;
      if (in_row != m.cols) throw NotParsed{};
      in_row = 0;
      if (is_sym('n')) {
        ++pos_;
        if (is_command("end")) break;
        continue;
      }
      if (is_command("end")) break;
      throw NotParsed{};
    }
    ++pos_;
    return m;
  }

  const std::vector<Token>& t_;
  int point_;
  size_t pos_ = 0;
  int depth_ = 0;
  bool has_variables_ = false;
};

// ---------------------------------------------------------------- comparison

bool num_equal(const Num& a, const Num& gold, double tolerance, bool approx) {
  if (a.exact && gold.exact && !a.approx && !gold.approx && !approx) return a.p == gold.p && a.q == gold.q;
  if (std::isinf(a.d) || std::isinf(gold.d)) return a.d == gold.d;
  // NB: relative to the larger magnitude, so that 0.0000673 is not 0.0000672;
  // the absolute floor absorbs rounding in values that should be 0 (\sin\pi).
  const double scale = std::max(std::fabs(a.d), std::fabs(gold.d));
  return std::fabs(a.d - gold.d) <= std::max(tolerance * scale, kAbsoluteFloor);
}

const Value& unwrap(const Value& v) {
  return v.kind == Value::Kind::kSet && v.items.size() == 1 ? unwrap(v.items[0]) : v;
}

bool equal(const Value& a0, const Value& g0, double tolerance, bool approx, int depth = 0) {
  if (depth > kMaxMathDepth) return false;
  const Value& a = unwrap(a0);
  const Value& g = unwrap(g0);
  if (a.kind != g.kind || a.items.size() != g.items.size()) return false;
  switch (a.kind) {
    case Value::Kind::kNumber:
      return num_equal(a.num, g.num, tolerance, approx);
    case Value::Kind::kText:
      return a.text == g.text;
    case Value::Kind::kTuple:
    case Value::Kind::kMatrix:
    case Value::Kind::kEquation:
      if (a.open != g.open || a.close != g.close || a.cols != g.cols) return false;
      for (size_t k = 0; k < a.items.size(); ++k) {
        if (!equal(a.items[k], g.items[k], tolerance, approx, depth + 1)) return false;
      }
      return true;
    case Value::Kind::kSet:
    case Value::Kind::kUnion: {  // unordered: each gold item matched by a distinct answer item
      std::vector<bool> used(a.items.size(), false);
      for (const Value& want : g.items) {
        bool found = false;
        for (size_t k = 0; k < a.items.size() && !found; ++k) {
          if (!used[k] && equal(a.items[k], want, tolerance, approx, depth + 1)) used[k] = found = true;
        }
        if (!found) return false;
      }
      return true;
    }
  }
  return false;
}

struct Parsed {
  Value value;
  bool has_variables = false;
};

std::optional<Parsed> parse(const std::vector<Token>& tokens, int point) {
  try {
    Parser p(tokens, point);
    Parsed out{p.answer(), false};
    out.has_variables = p.has_variables();
    return out;
  } catch (const NotParsed&) {
    return std::nullopt;
  }
}

std::optional<std::vector<Token>> lex(std::string_view s) {
  if (s.size() > kMaxMathAnswerBytes) return std::nullopt;
  try {
    return Lexer(s).run();
  } catch (const NotParsed&) {
    return std::nullopt;
  }
}

}  // namespace

MathVerdict compare_math_answers(std::string_view answer, std::string_view gold, double tolerance) {
  const auto ta = lex(answer), tg = lex(gold);
  if (!ta || !tg || ta->size() <= 1 || tg->size() <= 1) return MathVerdict::kUnparsed;
  auto a = parse(*ta, 0), g = parse(*tg, 0);
  if (!a || !g) return MathVerdict::kUnparsed;
  if (!a->has_variables && !g->has_variables) {
    return equal(a->value, g->value, tolerance, false) ? MathVerdict::kEqual : MathVerdict::kDifferent;
  }
  // NB: with variables, values at three points; a point where either side is
  // undefined (a division by zero) fails the comparison.
  for (int point = 0; point < 3; ++point) {
    if (point > 0) a = parse(*ta, point), g = parse(*tg, point);
    if (!a || !g || !equal(a->value, g->value, tolerance, true)) return MathVerdict::kDifferent;
  }
  return MathVerdict::kEqual;
}

std::string normalize_latex(std::string_view s) {
  static constexpr std::string_view kDropped[] = {"\\left", "\\right", "\\displaystyle", "\\!", "\\,",
                                                  "\\;",    "\\:",     "\\ ",            "\\$"};
  static constexpr std::string_view kWrappers[] = {"\\textbf{", "\\textrm{", "\\text{", "\\mathrm{",
                                                   "\\mathbf{", "\\mbox{"};
  std::string out;
  out.reserve(s.size());
  std::vector<bool> wrapper_brace;  // per open '{': whether it opened a \text-like wrapper (its '}' is dropped too)
  for (size_t i = 0; i < s.size();) {
    auto drop = [&](std::string_view d) {
      if (s.substr(i, d.size()) != d) return false;
      i += d.size();
      return true;
    };
    if (s[i] == '\\') {
      if (std::any_of(std::begin(kDropped), std::end(kDropped), drop)) continue;
      if (std::any_of(std::begin(kWrappers), std::end(kWrappers), drop)) {
        wrapper_brace.push_back(true);
        continue;
      }
      if (drop("\\dfrac") || drop("\\tfrac")) {
        out += "\\frac";
        continue;
      }
    }
    const char c = s[i++];
    if (c == '{') wrapper_brace.push_back(false);
    if (c == '}' && !wrapper_brace.empty()) {
      const bool wrapper = wrapper_brace.back();
      wrapper_brace.pop_back();
      if (wrapper) continue;
    }
    if (is_blank(c) || c == '$' || c == '~') continue;
    out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
  }
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

}  // namespace grpo::rewards
