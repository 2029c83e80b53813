#include "filter/label_selector.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <utility>

namespace capscope {

namespace {

using Op = LabelSelector::Op;
using Requirement = LabelSelector::Requirement;

// ---- characters and names (Kubernetes' validation rules) ----

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The characters that end an identifier: every operator is made of these, so
// `a!=b` and `a in(b)` need no spaces (as in Kubernetes' lexer).
bool is_symbol(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

constexpr const char* kNameRule =
    "it must begin and end with a letter or digit and hold only letters, digits, '-', '_' "
    "and '.'";

// A label name, or a non-empty label value.
bool is_qualified_name(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool is_dns_label(std::string_view s) {
  if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool is_dns_subdomain(std::string_view s) {
  while (true) {
    size_t dot = s.find('.');
    if (!is_dns_label(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

std::optional<std::string> key_problem(std::string_view key) {
  std::string_view name = key;
  if (size_t slash = key.find('/'); slash != std::string_view::npos) {
    std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (name.find('/') != std::string_view::npos) return "a key holds at most one '/'";
    if (prefix.empty()) return "the prefix before '/' is empty";
    if (prefix.size() > 253) return "the prefix is longer than 253 characters";
    if (!is_dns_subdomain(prefix))
      return "the prefix must be a lowercase DNS subdomain (a-z, 0-9, '-', '.'; each "
             "dot-separated part begins and ends with a letter or digit)";
  }
  if (name.empty()) return "the name is empty";
  if (name.size() > 63) return "the name is longer than 63 characters";
  if (!is_qualified_name(name)) return std::string("in the name, ") + kNameRule;
  return std::nullopt;
}

std::optional<std::string> value_problem(std::string_view value) {
  if (value.empty()) return std::nullopt;  // `a=` and `a in (x,)` mean the empty value
  if (value.size() > 63) return "longer than 63 characters";
  if (!is_qualified_name(value)) return kNameRule;
  return std::nullopt;
}

// Go's strconv.ParseInt(s, 10, 64), which Kubernetes uses on both sides of
// `>` and `<`: an optional sign, decimal digits, no overflow.
std::optional<int64_t> parse_int64(std::string_view s) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && s.front() == '-') return std::nullopt;
  }
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return v;
}

// ---- tokens ----

enum class Tok {
  Ident,
  Equals,
  DoubleEquals,
  NotEquals,
  Bang,
  Open,
  Close,
  Comma,
  Greater,
  Less,
  End
};

struct Token {
  Tok kind = Tok::End;
  std::string_view text;
  size_t pos = 0;  // offset of the first character
};

Tok symbol_kind(char c) {
  switch (c) {
    case '=':
      return Tok::Equals;
    case '!':
      return Tok::Bang;
    case '(':
      return Tok::Open;
    case ')':
      return Tok::Close;
    case ',':
      return Tok::Comma;
    case '>':
      return Tok::Greater;
    default:
      return Tok::Less;
  }
}

// Identifiers are any run of other characters (validated later, so an error
// can say what is wrong with the whole word). "in" and "notin" stay
// identifiers: they are operators only where an operator is expected, so
// `in=notin` and `a in (in)` work as in Kubernetes.
std::vector<Token> lex(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0, last_end = 0;
  while (true) {
    while (i < s.size() && is_space(s[i])) ++i;
    if (i == s.size()) break;
    size_t start = i;
    Tok kind = Tok::Ident;
    std::string_view two = s.substr(i, 2);
    if (two == "==" || two == "!=") {
      kind = two == "==" ? Tok::DoubleEquals : Tok::NotEquals;
      i += 2;
    } else if (is_symbol(s[i])) {
      kind = symbol_kind(s[i++]);
    } else {
      while (i < s.size() && !is_space(s[i]) && !is_symbol(s[i])) ++i;
    }
    out.push_back({kind, s.substr(start, i - start), start});
    last_end = i;
  }
  // The end sits just after the last token: where a missing ')' belongs.
  out.push_back({Tok::End, {}, last_end});
  return out;
}

// Quoted on one line: a selector may hold newlines, tabs and other controls.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string describe(const Token& t) {
  if (t.kind == Tok::End) return "the end";
  if (t.kind == Tok::Ident) return quoted(t.text);
  return fmt::format("'{}'", t.text);
}

// ---- parser: Kubernetes' grammar, one token of lookahead ----

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), tokens_(lex(text)) {}

  std::vector<Requirement> run() {
    std::vector<Requirement> out;
    if (peek().kind == Tok::End) return out;
    while (true) {
      out.push_back(requirement());
      const Token& t = take();
      if (t.kind == Tok::End) return out;
      if (t.kind != Tok::Comma)
        fail(t, "unexpected " + describe(t) + " after a requirement",
             "requirements separated by ',', e.g. a=b,c in (d,e)");
      if (peek().kind == Tok::End)
        fail(peek(), "nothing after ','", "no trailing ',', or a requirement after it");
    }
  }

 private:
  const Token& peek() const { return tokens_[next_]; }
  const Token& take() {
    const Token& t = tokens_[next_];
    if (t.kind != Tok::End) ++next_;
    return t;
  }

  [[noreturn]] void fail(const Token& at, const std::string& problem,
                         const std::string& fix) const {
    throw std::invalid_argument(fmt::format("selector {}: {} at column {} (write: {})",
                                            quoted(text_), problem, at.pos + 1, fix));
  }

  Requirement requirement() {
    if (peek().kind == Tok::Bang) return does_not_exist();
    std::string key = key_at(take());
    const Token& op = peek();
    switch (op.kind) {
      case Tok::End:
      case Tok::Comma:
        return {key, Op::Exists, {}};
      case Tok::Equals:
      case Tok::DoubleEquals:
        return {key, Op::Equals, {exact_value(take())}};
      case Tok::NotEquals:
        return {key, Op::NotEquals, {exact_value(take())}};
      case Tok::Greater:
        return {key, Op::GreaterThan, {integer_value(take())}};
      case Tok::Less:
        return {key, Op::LessThan, {integer_value(take())}};
      case Tok::Ident:
        if (op.text == "in") return {key, Op::In, value_set(take())};
        if (op.text == "notin") return {key, Op::NotIn, value_set(take())};
        break;
      default:
        break;
    }
    fail(op, fmt::format("expected an operator after key {}, found {}", quoted(key), describe(op)),
         "key=value, key!=value, key in (v1,v2), key notin (v1,v2), key or !key");
  }

  Requirement does_not_exist() {
    take();  // '!'
    if (peek().kind != Tok::Ident)
      fail(peek(), "'!' needs a key, found " + describe(peek()), "!key");
    std::string key = key_at(take());
    if (peek().kind != Tok::End && peek().kind != Tok::Comma)
      fail(peek(), "'!' takes a key alone, found " + describe(peek()) + " after it",
           "!key for an absent key, key!=value for another value");
    return {key, Op::DoesNotExist, {}};
  }

  std::string key_at(const Token& t) const {
    if (t.kind == Tok::Comma) fail(t, "empty requirement", "a requirement between commas");
    if (t.kind != Tok::Ident)
      fail(t, "expected a key, found " + describe(t), "key=value, key in (v1,v2), key or !key");
    if (auto why = key_problem(t.text))
      fail(t, fmt::format("invalid key {}: {}", quoted(t.text), *why),
           "a key like app or app.kubernetes.io/name");
    return std::string(t.text);
  }

  std::string value_at(const Token& t) const {
    if (auto why = value_problem(t.text))
      fail(t, fmt::format("invalid value {}: {}", quoted(t.text), *why),
           "a value of at most 63 letters, digits, '-', '_' and '.', or an empty one");
    return std::string(t.text);
  }

  // After = == !=: one value, or none (the empty value) before ',' or the end.
  std::string exact_value(const Token& op) {
    const Token& t = peek();
    if (t.kind == Tok::End || t.kind == Tok::Comma) return "";
    if (t.kind != Tok::Ident)
      fail(t, fmt::format("expected a value after '{}', found {}", op.text, describe(t)),
           fmt::format("key{}value", op.text));
    return value_at(take());
  }

  // After > <: an integer, kept in canonical form ("007" -> "7").
  std::string integer_value(const Token& op) {
    const Token& t = peek();
    std::optional<int64_t> n;
    if (t.kind == Tok::Ident && !t.text.empty() && is_alnum(t.text.front()))
      n = parse_int64(t.text);
    if (!n)
      fail(t, fmt::format("'{}' needs an integer, found {}", op.text, describe(t)),
           fmt::format("key{}5", op.text));
    take();
    return std::to_string(*n);
  }

  // "(" v1, v2, ... ")"; an empty item is the empty value, so "()" is {""}
  // and "(a,)" is {"a", ""}, as in Kubernetes.
  std::vector<std::string> value_set(const Token& op) {
    std::string fix = fmt::format("key {} (v1,v2)", op.text);
    const Token& open = take();
    if (open.kind != Tok::Open) fail(open, fmt::format("missing '(' after '{}'", op.text), fix);
    std::vector<std::string> values;
    bool pending = true;  // an item has begun and has no value yet
    while (true) {
      const Token& t = take();
      switch (t.kind) {
        case Tok::Ident:
          if (!pending) fail(t, "missing ',' before " + quoted(t.text), fix);
          values.push_back(value_at(t));
          pending = false;
          break;
        case Tok::Comma:
          if (pending) values.emplace_back();
          pending = true;
          break;
        case Tok::Close:
          if (pending) values.emplace_back();
          return values;
        case Tok::End:
          fail(t, "missing ')'", fix);
        default:
          fail(t, "unexpected " + describe(t) + " in the value list", fix);
      }
    }
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
};

// Values may be empty strings, so the separator goes by index, not by `out`.
std::string join(const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += values[i];
  }
  return out;
}

}  // namespace

bool LabelSelector::Requirement::matches(const Labels& labels) const {
  auto it = labels.find(key);
  bool has = it != labels.end();
  auto listed = [&] { return std::binary_search(values.begin(), values.end(), it->second); };
  switch (op) {
    case Op::Exists:
      return has;
    case Op::DoesNotExist:
      return !has;
    case Op::Equals:
    case Op::In:
      return has && listed();
    case Op::NotEquals:
    case Op::NotIn:
      return !has || !listed();
    case Op::GreaterThan:
    case Op::LessThan: {
      // A label that is absent or not an integer matches neither.
      auto have = has ? parse_int64(it->second) : std::nullopt;
      auto want = parse_int64(values.at(0));
      if (!have || !want) return false;
      return op == Op::GreaterThan ? *have > *want : *have < *want;
    }
  }
  return false;
}

std::string LabelSelector::Requirement::str() const {
  switch (op) {
    case Op::Exists:
      return key;
    case Op::DoesNotExist:
      return "!" + key;
    case Op::Equals:
      return key + "=" + values.at(0);
    case Op::NotEquals:
      return key + "!=" + values.at(0);
    case Op::In:
      return key + " in (" + join(values) + ")";
    case Op::NotIn:
      return key + " notin (" + join(values) + ")";
    case Op::GreaterThan:
      return key + ">" + values.at(0);
    case Op::LessThan:
      return key + "<" + values.at(0);
  }
  return key;
}

LabelSelector LabelSelector::parse(std::string_view text) {
  std::vector<std::pair<std::string, Requirement>> keyed;
  for (auto& r : Parser(text).run()) {
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
    keyed.emplace_back(r.str(), std::move(r));
  }
  // Sorted by key, then by text: the order the user wrote does not matter.
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second.key, a.first) < std::tie(b.second.key, b.first);
  });
  LabelSelector sel;
  for (auto& [text_form, r] : keyed) {
    if (sel.requirements_.empty() || sel.requirements_.back() != r)
      sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const Labels& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const Requirement& r) { return r.matches(labels); });
}

std::string LabelSelector::str() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ',';
    out += r.str();
  }
  return out;
}

}  // namespace capscope
