#include "export/export_filter.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "filter/label_selector.h"
#include "output/writer.h"
#include "tables/capabilities.h"
#include "util/strings.h"

namespace capscope::exporter {

using nlohmann::json;

struct Filter {
  std::vector<std::string> namespaces;
  std::vector<std::regex> pod_regex;
  std::vector<std::regex> container_regex;
  std::vector<std::regex> binary_regex;
  std::vector<std::regex> arguments_regex;
  std::vector<LabelSelector> labels;
  std::optional<uint64_t> cap_mask;
  uint8_t verdicts = 0;  // bit 0 granted, bit 1 denied; 0: any
  std::optional<bool> audit;
  std::vector<std::string> policy_names;
  std::vector<uint32_t> pids;
  std::vector<uint32_t> pid_set;
  std::optional<bool> event_set_has_kprobe;  // capscope's events are all PROCESS_KPROBE
  std::optional<bool> health_check;          // capscope exports no health checks

  [[nodiscard]] bool matches(const FilterEvent& e) const;
};

namespace {

constexpr std::array<std::string_view, 14> kFields = {
    "namespace", "pod_regex",  "container_regex", "binary_regex", "arguments_regex",
    "labels",    "capability", "verdict",         "audit",        "policy_names",
    "pid",       "pid_set",    "event_set",       "health_check"};

// Tetragon's event types: a filter copied from Tetragon's configuration names them.
constexpr std::array<std::string_view, 11> kEventTypes = {
    "PROCESS_EXEC",     "PROCESS_EXIT",    "PROCESS_KPROBE", "PROCESS_TRACEPOINT",
    "PROCESS_UPROBE",   "PROCESS_LSM",     "PROCESS_USDT",   "PROCESS_LOADER",
    "PROCESS_THROTTLE", "RATE_LIMIT_INFO", "UNDEF"};

constexpr size_t kMaxAncestors = 64;  // pid_set walks at most this far up

// A bad value: thrown while one filter is parsed, caught and worded with the filter.
struct FieldError : std::runtime_error {
  FieldError(std::string_view field, const std::string& what)
      : std::runtime_error(fmt::format("field \"{}\": {}", field, what)) {}
};

std::string known_fields() {
  std::string out;
  for (std::string_view f : kFields) out += fmt::format("{}{}", out.empty() ? "" : ", ", f);
  return out;
}

// A field's values: an array, or (a convenience Tetragon's protojson lacks) one value.
std::vector<json> values_of(const json& v) {
  if (v.is_array()) return {v.begin(), v.end()};
  return {v};
}

std::string string_value(std::string_view field, const json& v, std::string_view example) {
  if (!v.is_string())
    throw FieldError(field,
                     fmt::format("expected a string, got {} (write e.g. {})", v.dump(), example));
  return v.get<std::string>();
}

std::vector<std::string> strings_of(std::string_view field, const json& v,
                                    std::string_view example) {
  std::vector<std::string> out;
  for (const json& item : values_of(v)) out.push_back(string_value(field, item, example));
  return out;
}

std::vector<std::regex> regexes_of(std::string_view field, const json& v) {
  std::vector<std::regex> out;
  for (const std::string& text : strings_of(field, v, R"(["^web-"])")) {
    try {
      out.emplace_back(text, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& err) {
      throw FieldError(field, fmt::format("bad regular expression \"{}\": {} (write an ECMAScript "
                                          "regular expression, e.g. \"^web-\")",
                                          text, err.what()));
    }
  }
  return out;
}

bool bool_value(std::string_view field, const json& v) {
  if (!v.is_boolean())
    throw FieldError(field, fmt::format("expected true or false, got {}", v.dump()));
  return v.get<bool>();
}

std::vector<uint32_t> pids_of(std::string_view field, const json& v) {
  std::vector<uint32_t> out;
  for (const json& item : values_of(v)) {
    if (!item.is_number_unsigned() || item.get<uint64_t>() > UINT32_MAX)
      throw FieldError(
          field, fmt::format("expected a process id, got {} (write e.g. [1234])", item.dump()));
    out.push_back(item.get<uint32_t>());
  }
  return out;
}

uint64_t cap_mask_of(std::string_view field, const json& v) {
  uint64_t mask = 0;
  for (const json& item : values_of(v)) {
    std::optional<int> cap;
    if (item.is_number_unsigned() && item.get<uint64_t>() <= 63)
      cap = static_cast<int>(item.get<uint64_t>());
    else if (item.is_string())
      cap = tables::cap_from_name(item.get<std::string>());
    if (!cap)
      throw FieldError(field, fmt::format("unknown capability {} (write a name such as "
                                          "\"CAP_SYS_ADMIN\" or \"SYS_ADMIN\", or a number 0..63)",
                                          item.dump()));
    mask |= 1ULL << *cap;
  }
  return mask;
}

uint8_t verdicts_of(std::string_view field, const json& v) {
  uint8_t bits = 0;
  for (const std::string& s : strings_of(field, v, R"(["denied"])")) {
    std::string word = util::ascii_lower(s);
    if (word == "granted")
      bits |= 1;
    else if (word == "denied")
      bits |= 2;
    else
      throw FieldError(field,
                       fmt::format("unknown verdict \"{}\" (write \"granted\" or \"denied\")", s));
  }
  return bits;
}

bool event_set_has_kprobe(std::string_view field, const json& v) {
  bool kprobe = false;
  for (const std::string& s : strings_of(field, v, R"(["PROCESS_KPROBE"])")) {
    if (std::find(kEventTypes.begin(), kEventTypes.end(), s) == kEventTypes.end())
      throw FieldError(field, fmt::format("unknown event type \"{}\" (capscope's events are "
                                          "\"PROCESS_KPROBE\")",
                                          s));
    kprobe = kprobe || s == "PROCESS_KPROBE";
  }
  return kprobe;
}

std::vector<LabelSelector> selectors_of(std::string_view field, const json& v) {
  std::vector<LabelSelector> out;
  for (const std::string& text : strings_of(field, v, R"(["app=web"])")) {
    try {
      out.push_back(LabelSelector::parse(text));
    } catch (const std::invalid_argument& err) {
      throw FieldError(field, err.what());
    }
  }
  return out;
}

// One field into the filter; false when the name is not a field.
bool set_field(Filter& f, const std::string& name, const json& v) {
  if (name == "namespace")
    f.namespaces = strings_of(name, v, R"(["default"] or [""] for host processes)");
  else if (name == "pod_regex")
    f.pod_regex = regexes_of(name, v);
  else if (name == "container_regex")
    f.container_regex = regexes_of(name, v);
  else if (name == "binary_regex")
    f.binary_regex = regexes_of(name, v);
  else if (name == "arguments_regex")
    f.arguments_regex = regexes_of(name, v);
  else if (name == "labels")
    f.labels = selectors_of(name, v);
  else if (name == "capability")
    f.cap_mask = cap_mask_of(name, v);
  else if (name == "verdict")
    f.verdicts = verdicts_of(name, v);
  else if (name == "audit")
    f.audit = bool_value(name, v);
  else if (name == "policy_names")
    f.policy_names = strings_of(name, v, R"(["creds-capability-usage"])");
  else if (name == "pid")
    f.pids = pids_of(name, v);
  else if (name == "pid_set")
    f.pid_set = pids_of(name, v);
  else if (name == "event_set")
    f.event_set_has_kprobe = event_set_has_kprobe(name, v);
  else if (name == "health_check")
    f.health_check = bool_value(name, v);
  else
    return false;
  return true;
}

// An empty array is "not set", as in Tetragon's protobuf filters.
bool unset(const json& v) { return v.is_null() || (v.is_array() && v.empty()); }

std::string unknown_field(const std::string& name) {
  std::string hint;
  if (name == "namespaces" || name == "pod_namespace") hint = "namespace";
  if (name == "container_name_regex" || name == "container") hint = "container_regex";
  if (name == "binary" || name == "pod" || name == "arguments") hint = name + "_regex";
  if (name == "capabilities" || name == "cap") hint = "capability";
  if (name == "policy_name") hint = "policy_names";
  if (hint.empty())
    return fmt::format("unknown field \"{}\" (fields are: {})", name, known_fields());
  return fmt::format("unknown field \"{}\" (write \"{}\")", name, hint);
}

Filter parse_filter(const json& object) {
  if (!object.is_object())
    throw std::runtime_error(
        fmt::format("expected a JSON object, got {} (write e.g. {{\"namespace\":[\"default\"]}})",
                    object.dump()));
  Filter f;
  for (const auto& [name, value] : object.items()) {
    if (unset(value)) continue;
    if (!set_field(f, name, value)) throw std::runtime_error(unknown_field(name));
  }
  return f;
}

// The next top-level JSON value of `text` from `pos` (after white space): brackets and
// strings are followed only so the value's end is found; parsing is nlohmann's.
struct Piece {
  std::string_view text;
  size_t line;  // 1-based, where it starts
};

std::optional<Piece> next_piece(std::string_view text, size_t& pos, size_t& line) {
  for (; pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos])) != 0; ++pos)
    if (text[pos] == '\n') ++line;
  if (pos >= text.size()) return std::nullopt;
  const size_t start = pos;
  const size_t start_line = line;
  if (text[pos] != '{' && text[pos] != '[') {
    // Not an object: up to the next white space, for the error message.
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos])) == 0) ++pos;
    return Piece{text.substr(start, pos - start), start_line};
  }
  int depth = 0;
  bool in_string = false;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '\n') ++line;
    if (in_string) {
      if (c == '\\')
        ++pos;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      ++pos;
      break;
    }
  }
  // Unterminated: the rest of the text, which nlohmann then reports.
  return Piece{text.substr(start, pos - start), start_line};
}

// A filter's text on one line and short, for an error message.
std::string excerpt(std::string_view text) {
  std::string out;
  for (char c : text) {
    bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  constexpr size_t kMax = 80;
  if (out.size() > kMax) out = out.substr(0, kMax) + "...";
  return out;
}

// nlohmann's reason alone: "[json.exception.parse_error.101] parse error at line 1,
// column 5: syntax error ..." -> "syntax error ..." (the position is given separately).
std::string json_reason(const json::parse_error& err) {
  std::string_view what = err.what();
  size_t column = what.find("column ");
  size_t colon = what.find(": ", column == std::string_view::npos ? 0 : column);
  if (colon != std::string_view::npos) what.remove_prefix(colon + 2);
  return std::string(what);
}

// "line L, column C" (1-based) of where nlohmann stopped in `piece`, which starts at
// byte `offset` of `text`.
std::string json_position(std::string_view text, size_t offset, const json::parse_error& err) {
  size_t at = std::min(text.size(), offset + (err.byte > 0 ? err.byte - 1 : 0));
  size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + at, '\n'));
  size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
  size_t column = line_start == std::string_view::npos || at == 0 ? at + 1 : at - line_start;
  return fmt::format("line {}, column {}", line, column);
}

}  // namespace

// ---- matching --------------------------------------------------------------------------

namespace {

// libstdc++'s matcher recurses per character for some patterns: a very long argument
// list must not overflow the stack, so only its first kMaxSubject bytes are searched.
constexpr size_t kMaxSubject = 4096;

bool any_search(const std::vector<std::regex>& res, std::string_view s) {
  s = s.substr(0, kMaxSubject);
  for (const std::regex& re : res) {
    try {
      if (std::regex_search(s.begin(), s.end(), re)) return true;
    } catch (const std::regex_error&) {
      // Too complex for this subject: not a match, never a crash.
    }
  }
  return false;
}

template <class T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool in_pid_set(const std::vector<uint32_t>& set, const FilterEvent& e) {
  uint32_t pid = e.check.check.pid;
  if (contains(set, pid)) return true;
  uint32_t parent = e.check.process ? e.check.process->ppid : e.check.check.ppid;
  for (size_t depth = 0; parent != 0 && depth < kMaxAncestors; ++depth) {
    if (contains(set, parent)) return true;
    if (e.parents == nullptr || !*e.parents) return false;
    parent = (*e.parents)(parent);
  }
  return false;
}

bool in_pod(const ContainerInfo& c) { return !c.pod_name.empty() || !c.pod_id.empty(); }

bool labels_match(const std::vector<LabelSelector>& selectors, const ContainerInfo* c) {
  if (c == nullptr) return false;
  const Labels& labels = in_pod(*c) ? c->pod_labels : c->labels;
  for (const LabelSelector& s : selectors)
    if (s.matches(labels)) return true;
  return false;
}

}  // namespace

bool Filter::matches(const FilterEvent& e) const {
  const EnrichedCheck& ev = e.check;
  const CapCheck& c = ev.check;
  const ContainerInfo* ctr = ev.container.get();
  const ProcessInfo* proc = ev.process.get();
  if (!namespaces.empty() && !contains(namespaces, ctr != nullptr ? ctr->pod_namespace : ""))
    return false;
  if (!pod_regex.empty() &&
      (ctr == nullptr || ctr->pod_name.empty() || !any_search(pod_regex, ctr->pod_name)))
    return false;
  if (!container_regex.empty() &&
      (ctr == nullptr || ctr->name.empty() || !any_search(container_regex, ctr->name)))
    return false;
  if (!binary_regex.empty() && (proc == nullptr || !any_search(binary_regex, proc->binary)))
    return false;
  if (!arguments_regex.empty() &&
      (proc == nullptr || !any_search(arguments_regex, output::tetragon_arguments(proc->args))))
    return false;
  if (!labels.empty() && !labels_match(labels, ctr)) return false;
  if (cap_mask && (c.cap < 0 || c.cap > 63 || (*cap_mask & (1ULL << c.cap)) == 0)) return false;
  if (verdicts != 0 && (verdicts & (c.granted() ? 1 : 2)) == 0) return false;
  if (audit && c.audit != *audit) return false;
  if (!policy_names.empty() && !contains(policy_names, std::string(e.policy_name))) return false;
  if (!pids.empty() && !contains(pids, c.pid)) return false;
  if (!pid_set.empty() && !in_pid_set(pid_set, e)) return false;
  if (event_set_has_kprobe && !*event_set_has_kprobe) return false;
  if (health_check && *health_check) return false;
  return true;
}

// ---- lists -----------------------------------------------------------------------------

FilterList::FilterList() = default;
FilterList::~FilterList() = default;
FilterList::FilterList(FilterList&&) noexcept = default;
FilterList& FilterList::operator=(FilterList&&) noexcept = default;

bool FilterList::empty() const { return filters_.empty(); }
size_t FilterList::size() const { return filters_.size(); }

bool FilterList::matches(const FilterEvent& e) const {
  for (const Filter& f : filters_)
    if (f.matches(e)) return true;
  return false;
}

std::optional<FilterList> FilterList::parse(std::string_view text, std::string_view flag,
                                            std::string* error) {
  FilterList list;
  std::string_view trimmed = util::trim_space(text);
  size_t index = 0;
  auto fail = [&](size_t line, const std::string& what) {
    *error = fmt::format("{}: filter {} (line {}): {}", flag, index, line, what);
    return std::nullopt;
  };
  if (trimmed.starts_with('[')) {
    // One array of filters: lines are those of the whole text.
    json all;
    try {
      all = json::parse(trimmed);
    } catch (const json::parse_error& err) {
      *error = fmt::format(
          "{}: bad JSON at {}: {} (write one JSON object per filter, or an "
          "array of them)",
          flag, json_position(text, trimmed.data() - text.data(), err), json_reason(err));
      return std::nullopt;
    }
    for (const json& item : all) {
      ++index;
      try {
        list.filters_.push_back(parse_filter(item));
      } catch (const std::runtime_error& err) {
        *error = fmt::format("{}: filter {}: {}", flag, index, err.what());
        return std::nullopt;
      }
    }
    return list;
  }
  size_t pos = 0;
  size_t line = 1;
  while (auto piece = next_piece(text, pos, line)) {
    ++index;
    json object;
    try {
      object = json::parse(piece->text);
    } catch (const json::parse_error& err) {
      *error = fmt::format(
          "{}: filter {} ({}): bad JSON: {} in {} (write one JSON object per filter, e.g. "
          "{{\"namespace\":[\"default\"]}})",
          flag, index, json_position(text, piece->text.data() - text.data(), err), json_reason(err),
          excerpt(piece->text));
      return std::nullopt;
    }
    try {
      list.filters_.push_back(parse_filter(object));
    } catch (const std::runtime_error& err) {
      return fail(piece->line, err.what());
    }
  }
  return list;
}

// ---- the pair --------------------------------------------------------------------------

std::unique_ptr<ExportFilter> ExportFilter::parse(std::string_view allowlist,
                                                  std::string_view denylist, std::string* error) {
  auto allow = FilterList::parse(allowlist, "--export-allowlist", error);
  if (!allow) return nullptr;
  auto deny = FilterList::parse(denylist, "--export-denylist", error);
  if (!deny) return nullptr;
  return std::make_unique<ExportFilter>(std::move(*allow), std::move(*deny));
}

bool ExportFilter::exported(const EnrichedCheck& e, std::string_view policy_name) const {
  checked_.fetch_add(1, std::memory_order_relaxed);
  FilterEvent event{e, policy_name, parents_ ? &parents_ : nullptr};
  bool allowed = allow_.empty() || allow_.matches(event);
  if (!allow_.empty() && allowed) matched_allow_.fetch_add(1, std::memory_order_relaxed);
  bool denied = allowed && !deny_.empty() && deny_.matches(event);
  if (denied) matched_deny_.fetch_add(1, std::memory_order_relaxed);
  if (allowed && !denied) return true;
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

ExportFilterStats ExportFilter::stats() const {
  return {checked_.load(std::memory_order_relaxed), matched_allow_.load(std::memory_order_relaxed),
          matched_deny_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed)};
}

}  // namespace capscope::exporter
