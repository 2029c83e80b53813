#include "util/json_yaml.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <type_traits>

#include "util/strings.h"
#include "util/yaml_tree.h"

namespace capscope::util {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// ---- writing ----

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Plain words some YAML reader takes for a null or a boolean: YAML 1.2's, and
// YAML 1.1's yes/no/on/off/y/n, which PyYAML and Go's yaml.v2 still read.
bool is_null_or_bool_word(std::string_view s) {
  static constexpr std::array<std::string_view, 11> kWords = {
      "", "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n"};
  return std::ranges::find(kWords, ascii_lower(s)) != kWords.end();
}

// Could be read as a number by some reader: a sign, then a digit or a dot
// (decimal, octal, hex, 1.1's 1_000 and 1:30, 1e3, .5, .inf, .nan). A few
// strings are quoted that need not be (".hidden"); none is left plain that
// must not be.
bool may_read_as_number(std::string_view s) {
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
  return !s.empty() && (is_digit(s[0]) || s[0] == '.');
}

// yaml-cpp 0.7 quotes what YAML's syntax needs (": ", " #", leading "- ",
// "[", leading or trailing spaces, control characters), but writes "yes",
// "123" and "true" plain, so those are quoted here.
void emit_string(YAML::Emitter& out, const std::string& s) {
  if (is_null_or_bool_word(s) || may_read_as_number(s)) out << YAML::DoubleQuoted;
  out << s;
}

// Shortest text that reads back as the same double, and as a float, not an
// integer ("1.0", not "1").
std::string float_text(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

void emit(YAML::Emitter& out, const ordered_json& j);

// Empty containers in flow style ("[]"): yaml-cpp's block style puts them
// alone on the next line.
void emit_object(YAML::Emitter& out, const ordered_json& j) {
  if (j.empty()) out << YAML::Flow;
  out << YAML::BeginMap;
  for (const auto& [key, value] : j.items()) {
    out << YAML::Key;
    emit_string(out, key);
    out << YAML::Value;
    emit(out, value);
  }
  out << YAML::EndMap;
}

void emit_array(YAML::Emitter& out, const ordered_json& j) {
  if (j.empty()) out << YAML::Flow;
  out << YAML::BeginSeq;
  for (const auto& item : j) emit(out, item);
  out << YAML::EndSeq;
}

void emit(YAML::Emitter& out, const ordered_json& j) {
  switch (j.type()) {
    case json::value_t::object:
      return emit_object(out, j);
    case json::value_t::array:
      return emit_array(out, j);
    case json::value_t::string:
      return emit_string(out, j.get_ref<const std::string&>());
    case json::value_t::boolean:
      out << j.get<bool>();
      return;
    case json::value_t::number_integer:
      out << j.get<int64_t>();
      return;
    case json::value_t::number_unsigned:
      out << j.get<uint64_t>();
      return;
    case json::value_t::number_float:
      out << float_text(j.get<double>());
      return;
    case json::value_t::null:
    case json::value_t::binary:     // not in a document read from JSON text
    case json::value_t::discarded:  // likewise
      break;
  }
  out << YAML::Null;
}

// ---- reading: the YAML 1.2 core schema for plain scalars ----

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";
constexpr std::string_view kIntTag = "tag:yaml.org,2002:int";
constexpr std::string_view kFloatTag = "tag:yaml.org,2002:float";
constexpr std::string_view kBoolTag = "tag:yaml.org,2002:bool";
constexpr std::string_view kNullTag = "tag:yaml.org,2002:null";

std::optional<bool> core_bool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool is_null_word(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// The whole of s as a T (an integer in base, or a double when base is 0).
template <typename T>
std::optional<T> parse_whole(std::string_view s, int base) {
  T v{};
  std::from_chars_result r{};
  if constexpr (std::is_floating_point_v<T>)
    r = std::from_chars(s.data(), s.data() + s.size(), v);
  else
    r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

size_t count_digits(std::string_view s, size_t from) {
  size_t n = 0;
  while (from + n < s.size() && is_digit(s[from + n])) ++n;
  return n;
}

// [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool is_core_decimal_float(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  size_t whole = count_digits(s, i);
  i += whole;
  size_t fraction = 0;
  if (i < s.size() && s[i] == '.') {
    fraction = count_digits(s, ++i);
    i += fraction;
  }
  if (whole + fraction == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exponent = count_digits(s, i);
    if (exponent == 0) return false;
    i += exponent;
  }
  return i == s.size();
}

std::optional<double> core_float(std::string_view s) {
  bool negative = !s.empty() && s[0] == '-';
  std::string_view unsigned_part = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? s.substr(1) : s;
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF")
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  if (!is_core_decimal_float(s)) return std::nullopt;
  auto magnitude = parse_whole<double>(unsigned_part, 0);
  if (!magnitude) return std::nullopt;
  return negative ? -*magnitude : *magnitude;
}

// Decimal (unsigned when not negative, as nlohmann reads JSON), 0o octal, 0x hex.
// An integer beyond 64 bits becomes a double, as in JSON.
std::optional<json> core_int(std::string_view s) {
  if (s.starts_with("0o") && s.size() > 2) return parse_whole<uint64_t>(s.substr(2), 8);
  if (s.starts_with("0x") && s.size() > 2) return parse_whole<uint64_t>(s.substr(2), 16);
  bool negative = !s.empty() && s[0] == '-';
  std::string_view digits = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? s.substr(1) : s;
  if (digits.empty() || count_digits(digits, 0) != digits.size()) return std::nullopt;
  if (negative) {
    if (auto v = parse_whole<int64_t>(s, 10)) return *v;
  } else if (auto v = parse_whole<uint64_t>(digits, 10)) {
    return *v;
  }
  return core_float(s);
}

json resolve_plain(std::string_view s) {
  if (is_null_word(s)) return nullptr;
  if (auto b = core_bool(s)) return *b;
  if (auto i = core_int(s)) return *i;
  if (auto f = core_float(s)) return *f;
  return std::string(s);
}

// ---- reading: nodes ----

// Deeper than any capscope document; stops an alias loop from recursing forever.
constexpr int kMaxDepth = 256;
// More nodes than any capscope document holds: aliases of aliases could
// otherwise expand a small file into billions of nodes.
constexpr size_t kMaxNodes = 1'000'000;

class Converter {
 public:
  Converter(YamlLines* lines, YamlProblem* problem) : lines_(lines), problem_(problem) {}

  std::optional<json> value(const YAML::Node& n, const json::json_pointer& at, int depth) {
    if (depth > kMaxDepth) return fail(n, "nested too deeply");
    if (++nodes_ > kMaxNodes) return fail(n, "too many values (aliases expanding without end?)");
    note_line(at, n.Mark());
    switch (n.Type()) {
      case YAML::NodeType::Map:
        return mapping(n, at, depth);
      case YAML::NodeType::Sequence:
        return sequence(n, at, depth);
      case YAML::NodeType::Scalar:
        return scalar(n);
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        break;
    }
    return nullptr;
  }

 private:
  std::optional<json> mapping(const YAML::Node& n, const json::json_pointer& at, int depth) {
    json out = json::object();
    for (const auto& entry : n) {
      if (!entry.first.IsScalar()) return fail(entry.first, "a key that is not a plain string");
      const std::string& key = entry.first.Scalar();
      if (out.contains(key)) return fail(entry.first, fmt::format("duplicate key \"{}\"", key));
      note_line(at / key, entry.first.Mark());
      auto v = value(entry.second, at / key, depth + 1);
      if (!v) return std::nullopt;
      out[key] = std::move(*v);
    }
    return out;
  }

  std::optional<json> sequence(const YAML::Node& n, const json::json_pointer& at, int depth) {
    json out = json::array();
    for (const auto& item : n) {
      auto v = value(item, at / out.size(), depth + 1);
      if (!v) return std::nullopt;
      out.push_back(std::move(*v));
    }
    return out;
  }

  // A quoted scalar (tag "!") or one tagged !!str is a string whatever it
  // says; a plain one (tag "?") is resolved; !!int and friends must resolve
  // to their type.
  std::optional<json> scalar(const YAML::Node& n) {
    const std::string& tag = n.Tag();
    const std::string& text = n.Scalar();
    if (tag == "!" || tag == kStrTag) return json(text);
    json v = resolve_plain(text);
    if (tag == "?") return v;
    bool fits = (tag == kIntTag && v.is_number_integer()) || (tag == kFloatTag && v.is_number()) ||
                (tag == kBoolTag && v.is_boolean()) || (tag == kNullTag && v.is_null());
    if (tag == kFloatTag && fits) return json(v.get<double>());
    if (fits) return v;
    if (tag == kIntTag || tag == kFloatTag || tag == kBoolTag || tag == kNullTag)
      return fail(n, fmt::format("\"{}\" is not a {}", text, tag.substr(tag.rfind(':') + 1)));
    return fail(n, fmt::format("unsupported tag {}", tag));
  }

  void note_line(const json::json_pointer& at, const YAML::Mark& mark) {
    if (lines_ != nullptr && !mark.is_null()) lines_->emplace(at.to_string(), mark.line + 1);
  }

  std::nullopt_t fail(const YAML::Node& n, std::string message) {
    problem_->line = n.Mark().is_null() ? 0 : n.Mark().line + 1;
    problem_->message = std::move(message);
    return std::nullopt;
  }

  YamlLines* lines_;
  YamlProblem* problem_;
  size_t nodes_ = 0;
};

}  // namespace

std::string json_to_yaml(const ordered_json& j) {
  YAML::Emitter out;
  emit(out, j);
  return std::string(out.c_str()) + "\n";
}

std::optional<json> yaml_to_json(std::string_view text, YamlLines* lines, YamlProblem* problem) {
  YAML::Node root;
  if (std::string hang = yaml_cpp_would_hang(text); !hang.empty()) {
    problem->line = 0;
    problem->message = hang;
    return std::nullopt;
  }
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    problem->line = e.mark.is_null() ? 0 : e.mark.line + 1;
    problem->message = e.msg;
    return std::nullopt;
  }
  return Converter(lines, problem).value(root, json::json_pointer(), 0);
}

int line_of(const YamlLines& lines, std::string_view pointer) {
  for (;;) {
    if (auto it = lines.find(pointer); it != lines.end()) return it->second;
    size_t parent = pointer.rfind('/');
    if (parent == std::string_view::npos) return 0;
    pointer = pointer.substr(0, parent);
  }
}

}  // namespace capscope::util
