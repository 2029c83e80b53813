#include "policy/tracing_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <utility>

#include "tables/capabilities.h"
#include "util/yaml_tree.h"

namespace capscope::policy {

using util::load_yaml_documents;
using util::YamlError;
using util::YamlNode;
using util::YamlNodePtr;

namespace {

// Errors are one line whatever a file (or its name) holds.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

PolicyError::PolicyError(std::string file, int line, std::string field, const std::string& message)
    : std::runtime_error(
          one_line(fmt::format("{}{}{}: {}", file, line > 0 ? fmt::format(":{}", line) : "",
                               field.empty() ? "" : ": " + field, message))),
      file_(std::move(file)),
      line_(line),
      field_(std::move(field)) {}

const char* kind_name(PolicyKind k) {
  return k == PolicyKind::TracingPolicy ? "TracingPolicy" : "TracingPolicyNamespaced";
}

namespace {

// ---- where things are ----

int line_of(const YamlNode& n) { return n.line; }

struct Path {
  std::string text;
  [[nodiscard]] Path key(std::string_view k) const {
    return {text.empty() ? std::string(k) : fmt::format("{}.{}", text, k)};
  }
  [[nodiscard]] Path at(size_t i) const { return {fmt::format("{}[{}]", text, i)}; }
};

// A value as an error shows it: in quotes, control characters escaped.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      out += fmt::format("\\x{:02x}", u);
    else
      out += c;
  }
  return out + "\"";
}

// ---- the keys each mapping may hold ----

// A key Tetragon knows that capscope cannot honour, and why.
struct Unsupported {
  std::string_view key;
  std::string_view why;
};

struct Keys {
  std::vector<std::string_view> allowed;
  std::vector<Unsupported> unsupported;
};

// A mapping's entries after its keys were checked: unique, all known.
class Fields {
 public:
  explicit Fields(const YamlNode& node) : node_(&node) {}
  void add(std::string key, const YamlNode& value) {
    entries_.emplace_back(std::move(key), &value);
  }
  // The value of key; null when absent or written empty (`key:`).
  [[nodiscard]] const YamlNode* get(std::string_view key) const {
    for (const auto& [k, v] : entries_)
      if (k == key) return v->is_null() ? nullptr : v;
    return nullptr;
  }
  [[nodiscard]] const YamlNode& node() const { return *node_; }

 private:
  // Nodes of the document's tree, which outlives every Fields.
  const YamlNode* node_;
  std::vector<std::pair<std::string, const YamlNode*>> entries_;
};

const std::vector<std::string_view> kMatchArgOps = {"Equal", "NotEqual"};
const std::vector<std::string_view> kOptionsOps = {"Equal", "NotEqual", "Mask"};

// The `index` a matchArgs entry names, as written ("" when it has none).
std::string index_of(const YamlNode& entry) {
  if (!entry.is_map()) return "";
  for (const auto& [k, v] : entry.entries)
    if (k && k->is_scalar() && k->value == "index" && v && v->is_scalar()) return v->value;
  return "";
}

// A value of cap_capable's opts: a number (decimal or 0x) or a CAP_OPT_ name; only
// the bits capscope knows (CAP_OPT_NOAUDIT 2, CAP_OPT_INSETID 4).
std::optional<uint32_t> options_value_of(std::string_view text) {
  if (text == "CAP_OPT_NONE") return 0;
  if (text == "CAP_OPT_NOAUDIT") return 2;
  if (text == "CAP_OPT_INSETID") return 4;
  int base = text.starts_with("0x") || text.starts_with("0X") ? 16 : 10;
  if (base == 16) text.remove_prefix(2);
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || (v & ~6U) != 0)
    return std::nullopt;
  return v;
}
const std::vector<std::string_view> kReturnOps = {"Equal", "NotEqual", "GT", "LT"};
const std::vector<std::string_view> kSetOps = {"In", "NotIn"};
const std::vector<std::string_view> kExpressionOps = {"In", "NotIn", "Exists", "DoesNotExist"};
const std::vector<std::string_view> kKinds = {"TracingPolicy", "TracingPolicyNamespaced"};

// Tetragon operators capscope has no use for on a capability or a verdict.
const std::vector<std::string_view> kTetragonArgOps = {
    "Prefix",     "NotPrefix",   "Postfix",  "NotPostfix", "Mask",     "GT",
    "LT",         "GreaterThan", "LessThan", "InMap",      "NotInMap", "InRange",
    "NotInRange", "SPort",       "DPort",    "Protocol"};
const std::vector<std::string_view> kTetragonBinaryOps = {"Prefix", "NotPrefix", "Postfix",
                                                          "NotPostfix"};
const std::vector<std::string_view> kTetragonActions = {
    "Signal",    "Override",    "FollowFD",     "UnfollowFD",     "CopyFD", "GetUrl", "DnsLookup",
    "TrackSock", "UntrackSock", "NotifyKiller", "NotifyEnforcer", "NoOp",   "Set",    "Cleanup"};

struct NsKindName {
  std::string_view name;
  NsKind kind;
};
constexpr NsKindName kNsKinds[] = {
    {"Uts", NsKind::Uts},
    {"Ipc", NsKind::Ipc},
    {"Mnt", NsKind::Mnt},
    {"Pid", NsKind::Pid},
    {"PidForChildren", NsKind::PidForChildren},
    {"Net", NsKind::Net},
    {"Time", NsKind::Time},
    {"TimeForChildren", NsKind::TimeForChildren},
    {"Cgroup", NsKind::Cgroup},
    {"User", NsKind::User},
};

bool contains(const std::vector<std::string_view>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string joined(const std::vector<std::string_view>& list) {
  return fmt::format("{}", fmt::join(list, ", "));
}

bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The digits are bounded so the product cannot overflow.
std::optional<uint64_t> rate_limit_ns(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0 || digits > 6) return std::nullopt;
  uint64_t n = 0;
  std::from_chars(s.data(), s.data() + digits, n);
  std::string_view unit = s.substr(digits);
  uint64_t unit_ns = 0;
  if (unit.empty() || unit == "s") unit_ns = 1'000'000'000ULL;
  if (unit == "m") unit_ns = 60'000'000'000ULL;
  if (unit == "h") unit_ns = 3'600'000'000'000ULL;
  if (unit_ns == 0 || n == 0) return std::nullopt;
  return n * unit_ns;
}

// ---- the reader ----

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  TracingPolicy document(const YamlNode& root);

 private:
  [[noreturn]] void fail(const YamlNode& at, const Path& field, const std::string& message) const {
    throw PolicyError(file_, line_of(at), field.text, message);
  }

  Fields mapping(const YamlNode& n, const Path& path, const Keys& keys) const;
  const YamlNode& required(const Fields& f, std::string_view key, const Path& path) const;
  std::string scalar(const YamlNode& n, const Path& path) const;
  std::string one_of(const YamlNode& n, const Path& path,
                     const std::vector<std::string_view>& allowed) const;
  int64_t integer(const YamlNode& n, const Path& path, int64_t lo, int64_t hi) const;
  bool boolean(const YamlNode& n, const Path& path) const;
  // A non-empty list; each item goes to `each` with its path.
  template <typename F>
  void sequence(const YamlNode& n, const Path& path, size_t max, F each) const;
  std::vector<std::string> values(const Fields& f, const Path& path) const;

  void metadata(const YamlNode& n, const Path& path, TracingPolicy& p) const;
  void spec(const YamlNode& n, const Path& path, TracingPolicy& p) const;
  LabelSelector label_selector(const YamlNode& n, const Path& path, bool containers) const;
  std::string label_requirement(const YamlNode& n, const Path& path, bool containers) const;
  Hook kprobe(const YamlNode& n, const Path& path) const;
  Hook tracepoint(const YamlNode& n, const Path& path) const;
  // The capability argument's index, if one is declared.
  // Sets *options when the kprobe declares opts (index 3) as int.
  std::optional<int> args(const YamlNode& n, const Path& path, bool tracepoint,
                          bool* options) const;
  void return_arg(const YamlNode& n, const Path& path) const;
  void selectors(const YamlNode& n, const Path& path, std::optional<int> cap_index,
                 Hook& hook) const;
  Selector selector(const YamlNode& n, const Path& path, std::optional<int> cap_index,
                    const Hook& hook) const;
  CapabilityFilter match_arg(const YamlNode& n, const Path& path,
                             std::optional<int> cap_index) const;
  OptionsFilter match_options(const YamlNode& n, const Path& path) const;
  ReturnFilter match_return_arg(const YamlNode& n, const Path& path) const;
  BinaryFilter match_binaries(const YamlNode& n, const Path& path) const;
  NamespaceFilter match_namespace(const YamlNode& n, const Path& path) const;
  ActionSpec match_action(const YamlNode& n, const Path& path) const;

  std::string file_;
};

Fields Reader::mapping(const YamlNode& n, const Path& path, const Keys& keys) const {
  if (!n.is_map()) fail(n, path, "must be a mapping (key: value lines)");
  Fields fields(n);
  std::set<std::string> seen;
  for (const auto& [key_node, value] : n.entries) {
    if (!key_node->is_scalar()) fail(*key_node, path, "a key must be a plain word");
    const std::string& key = key_node->value;
    Path at = path.key(key);
    if (!seen.insert(key).second) fail(*key_node, at, "appears twice");
    if (contains(keys.allowed, key)) {
      fields.add(key, *value);
      continue;
    }
    for (const auto& u : keys.unsupported)
      if (u.key == key) fail(*key_node, at, fmt::format("not supported by capscope: {}", u.why));
    fail(*key_node, at, fmt::format("unknown key (allowed: {})", joined(keys.allowed)));
  }
  return fields;
}

const YamlNode& Reader::required(const Fields& f, std::string_view key, const Path& path) const {
  const YamlNode* n = f.get(key);
  if (n == nullptr) fail(f.node(), path.key(key), "is required");
  return *n;
}

std::string Reader::scalar(const YamlNode& n, const Path& path) const {
  if (!n.is_scalar()) fail(n, path, "must be a single value, not a list or mapping");
  return n.value;
}

std::string Reader::one_of(const YamlNode& n, const Path& path,
                           const std::vector<std::string_view>& allowed) const {
  std::string s = scalar(n, path);
  if (!contains(allowed, s))
    fail(n, path, fmt::format("{} is not one of {}", quoted(s), joined(allowed)));
  return s;
}

int64_t Reader::integer(const YamlNode& n, const Path& path, int64_t lo, int64_t hi) const {
  std::string s = scalar(n, path);
  auto v = parse_int(s);
  if (!v) fail(n, path, fmt::format("{} is not a number", quoted(s)));
  if (*v < lo || *v > hi)
    fail(n, path, fmt::format("{} is out of range (allowed: {}..{})", *v, lo, hi));
  return *v;
}

bool Reader::boolean(const YamlNode& n, const Path& path) const {
  std::string s = scalar(n, path);
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  fail(n, path, fmt::format("{} is not true or false", quoted(s)));
}

template <typename F>
void Reader::sequence(const YamlNode& n, const Path& path, size_t max, F each) const {
  if (!n.is_sequence()) fail(n, path, "must be a list (lines starting with -)");
  if (n.items.empty()) fail(n, path, "is an empty list");
  if (n.items.size() > max)
    fail(n, path, fmt::format("has {} entries; at most {} are allowed", n.items.size(), max));
  for (size_t i = 0; i < n.items.size(); ++i) each(*n.items[i], path.at(i));
}

std::vector<std::string> Reader::values(const Fields& f, const Path& path) const {
  std::vector<std::string> out;
  sequence(required(f, "values", path), path.key("values"), 128,
           [&](const YamlNode& v, const Path& at) { out.push_back(scalar(v, at)); });
  return out;
}

TracingPolicy Reader::document(const YamlNode& root) {
  Path top;
  Fields f = mapping(root, top,
                     {{"apiVersion", "kind", "metadata", "spec"},
                      {{"status", "it is written by the API server, not by the policy's author"}}});
  TracingPolicy p;
  p.file = file_;
  p.line = line_of(root);
  const YamlNode& api = required(f, "apiVersion", top);
  if (scalar(api, top.key("apiVersion")) != kApiVersion)
    fail(api, top.key("apiVersion"), fmt::format("{} is not {}", quoted(api.value), kApiVersion));
  const YamlNode& kind = required(f, "kind", top);
  p.kind = one_of(kind, top.key("kind"), kKinds) == "TracingPolicy"
               ? PolicyKind::TracingPolicy
               : PolicyKind::TracingPolicyNamespaced;
  metadata(required(f, "metadata", top), top.key("metadata"), p);
  spec(required(f, "spec", top), top.key("spec"), p);
  return p;
}

void Reader::metadata(const YamlNode& n, const Path& path, TracingPolicy& p) const {
  // labels and annotations are read for their shape and otherwise ignored:
  // they never change what a policy matches.
  Fields f = mapping(n, path, {{"name", "namespace", "labels", "annotations"}, {}});
  const YamlNode& name = required(f, "name", path);
  p.name = scalar(name, path.key("name"));
  if (!is_dns_subdomain(p.name))
    fail(name, path.key("name"),
         fmt::format("{} is not a Kubernetes object name (lowercase letters, digits, '-' and "
                     "'.', beginning and ending with a letter or digit, at most 253)",
                     quoted(p.name)));
  for (std::string_view key : {"labels", "annotations"})
    if (const YamlNode* m = f.get(key)) {
      if (!m->is_map()) fail(*m, path.key(key), "must be a mapping (key: value lines)");
      for (const auto& [k, v] : m->entries) {
        scalar(*k, path.key(key));
        scalar(*v, path.key(key).key(k->value));
      }
    }
  const YamlNode* ns = f.get("namespace");
  if (p.kind == PolicyKind::TracingPolicy) {
    if (ns != nullptr)
      fail(*ns, path.key("namespace"),
           "a TracingPolicy applies to the whole node; for the pods of one namespace write kind: "
           "TracingPolicyNamespaced");
    return;
  }
  if (ns == nullptr)
    fail(n, path.key("namespace"),
         "is required for a TracingPolicyNamespaced: the Kubernetes namespace whose pods it "
         "applies to");
  p.k8s_namespace = scalar(*ns, path.key("namespace"));
  if (!is_dns_subdomain(p.k8s_namespace) || p.k8s_namespace.find('.') != std::string::npos ||
      p.k8s_namespace.size() > 63)
    fail(*ns, path.key("namespace"),
         fmt::format("{} is not a Kubernetes namespace name", quoted(p.k8s_namespace)));
}

void Reader::spec(const YamlNode& n, const Path& path, TracingPolicy& p) const {
  constexpr std::string_view kOnlyCapable =
      "capscope hooks only cap_capable (spec.kprobes with call: cap_capable)";
  Fields f = mapping(n, path,
                     {{"kprobes", "tracepoints", "podSelector", "containerSelector"},
                      {{"uprobes", kOnlyCapable},
                       {"lsmhooks", kOnlyCapable},
                       {"usdts", kOnlyCapable},
                       {"lists", kOnlyCapable},
                       {"killers", kOnlyCapable},
                       {"enforcers", kOnlyCapable},
                       {"options", "hook options (capscope attaches cap_capable its own way)"},
                       {"loader", "loader events"}}});
  if (const YamlNode* sel = f.get("podSelector"))
    p.pod_selector = label_selector(*sel, path.key("podSelector"), false);
  if (const YamlNode* sel = f.get("containerSelector"))
    p.container_selector = label_selector(*sel, path.key("containerSelector"), true);
  if (const YamlNode* k = f.get("kprobes"))
    sequence(*k, path.key("kprobes"), 16,
             [&](const YamlNode& item, const Path& at) { p.hooks.push_back(kprobe(item, at)); });
  if (const YamlNode* t = f.get("tracepoints"))
    sequence(*t, path.key("tracepoints"), 16, [&](const YamlNode& item, const Path& at) {
      p.hooks.push_back(tracepoint(item, at));
    });
  if (p.hooks.empty())
    fail(n, path.key("kprobes"),
         "is required: a kprobe on cap_capable (or the capability/cap_capable tracepoint)");
}

// podSelector / containerSelector: Kubernetes' LabelSelector (matchLabels and
// matchExpressions), compiled into capscope's own label selector. Each entry
// is checked on its own so that an error points at its line.
LabelSelector Reader::label_selector(const YamlNode& n, const Path& path, bool containers) const {
  Fields f = mapping(n, path, {{"matchLabels", "matchExpressions"}, {}});
  std::vector<std::string> requirements;
  if (const YamlNode* labels = f.get("matchLabels")) {
    Path at = path.key("matchLabels");
    if (!labels->is_map()) fail(*labels, at, "must be a mapping (label: value lines)");
    for (const auto& [key_node, value] : labels->entries) {
      std::string key = scalar(*key_node, at);
      Path entry = at.key(key);
      if (containers && key != "name")
        fail(*key_node, entry,
             "a containerSelector selects by the container's name only (key: name)");
      std::string text = fmt::format("{}={}", key, scalar(*value, entry));
      try {
        LabelSelector::parse(text);
      } catch (const std::invalid_argument& e) {
        fail(*value, entry, e.what());
      }
      requirements.push_back(std::move(text));
    }
  }
  if (const YamlNode* exprs = f.get("matchExpressions"))
    sequence(*exprs, path.key("matchExpressions"), 64, [&](const YamlNode& e, const Path& at) {
      requirements.push_back(label_requirement(e, at, containers));
    });
  try {
    return LabelSelector::parse(fmt::format("{}", fmt::join(requirements, ",")));
  } catch (const std::invalid_argument& e) {
    fail(n, path, e.what());  // each part parsed on its own: not reached
  }
}

std::string Reader::label_requirement(const YamlNode& n, const Path& path, bool containers) const {
  Fields f = mapping(n, path, {{"key", "operator", "values"}, {}});
  std::string key = scalar(required(f, "key", path), path.key("key"));
  if (containers && key != "name")
    fail(required(f, "key", path), path.key("key"),
         "a containerSelector selects by the container's name only (key: name)");
  std::string op = one_of(required(f, "operator", path), path.key("operator"), kExpressionOps);
  std::string text;
  if (op == "Exists" || op == "DoesNotExist") {
    if (const YamlNode* v = f.get("values"))
      fail(*v, path.key("values"), fmt::format("must be left out with operator {}", op));
    text = op == "Exists" ? key : "!" + key;
  } else {
    text = fmt::format("{} {} ({})", key, op == "In" ? "in" : "notin",
                       fmt::join(values(f, path), ","));
  }
  try {
    LabelSelector::parse(text);
  } catch (const std::invalid_argument& e) {
    fail(n, path, e.what());
  }
  return text;
}

Hook Reader::kprobe(const YamlNode& n, const Path& path) const {
  Fields f =
      mapping(n, path,
              {{"call", "syscall", "return", "args", "returnArg", "selectors", "message", "tags"},
               {{"returnArgAction", "socket tracking"},
                {"ignore", "ignoring missing hooks (cap_capable always exists)"},
                {"data", "extra data arguments"}}});
  Hook hook;
  hook.where = {line_of(n), path.text};
  const YamlNode& call = required(f, "call", path);
  std::string name = scalar(call, path.key("call"));
  if (name != "cap_capable")
    fail(call, path.key("call"),
         fmt::format("{} is not supported by capscope: it hooks only cap_capable", quoted(name)));
  if (const YamlNode* sc = f.get("syscall"); sc && boolean(*sc, path.key("syscall")))
    fail(*sc, path.key("syscall"),
         "must be false: cap_capable is a kernel function, not a syscall");
  if (const YamlNode* r = f.get("return")) hook.return_value = boolean(*r, path.key("return"));
  if (const YamlNode* ra = f.get("returnArg")) {
    if (!hook.return_value)
      fail(*ra, path.key("returnArg"), "needs return: true (the verdict is the return value)");
    return_arg(*ra, path.key("returnArg"));
  }
  if (const YamlNode* m = f.get("message")) scalar(*m, path.key("message"));
  if (const YamlNode* t = f.get("tags"))
    sequence(*t, path.key("tags"), 16, [&](const YamlNode& v, const Path& at) { scalar(v, at); });
  std::optional<int> cap_index;
  if (const YamlNode* a = f.get("args"))
    cap_index = args(*a, path.key("args"), false, &hook.options_declared);
  if (const YamlNode* s = f.get("selectors")) selectors(*s, path.key("selectors"), cap_index, hook);
  return hook;
}

Hook Reader::tracepoint(const YamlNode& n, const Path& path) const {
  Fields f = mapping(n, path, {{"subsystem", "event", "args", "selectors", "message", "tags"}, {}});
  Hook hook;
  hook.where = {line_of(n), path.text};
  hook.tracepoint = true;
  const YamlNode& subsystem = required(f, "subsystem", path);
  const YamlNode& event = required(f, "event", path);
  std::string where =
      scalar(subsystem, path.key("subsystem")) + "/" + scalar(event, path.key("event"));
  if (where != "capability/cap_capable")
    fail(subsystem, path.key("subsystem"),
         fmt::format("tracepoint {} is not supported by capscope: it hooks only "
                     "capability/cap_capable",
                     where));
  if (const YamlNode* m = f.get("message")) scalar(*m, path.key("message"));
  if (const YamlNode* t = f.get("tags"))
    sequence(*t, path.key("tags"), 16, [&](const YamlNode& v, const Path& at) { scalar(v, at); });
  std::optional<int> cap_index;
  if (const YamlNode* a = f.get("args")) cap_index = args(*a, path.key("args"), true, nullptr);
  if (const YamlNode* s = f.get("selectors")) selectors(*s, path.key("selectors"), cap_index, hook);
  return hook;
}

// cap_capable(cred, user namespace, capability, opts): the user namespace and
// the capability are read (the namespace is reported, not filtered on), and opts
// declared "int" may be filtered on; other arguments may be declared "nop" or "int"
// and are ignored. On the tracepoint
// the fields are not numbered by the function's arguments, so only the types
// are checked there.
std::optional<int> Reader::args(const YamlNode& n, const Path& path, bool tracepoint,
                                bool* options) const {
  std::optional<int> cap_index;
  std::set<int64_t> seen;
  sequence(n, path, 8, [&](const YamlNode& a, const Path& at) {
    Fields f = mapping(a, at,
                       {{"index", "type", "label"},
                        {{"returnCopy", "buffer arguments"},
                         {"sizeArgIndex", "buffer arguments"},
                         {"maxData", "buffer arguments"},
                         {"resolve", "resolving struct fields"}}});
    const YamlNode& idx = required(f, "index", at);
    int64_t index = integer(idx, at.key("index"), 0, tracepoint ? 7 : 3);
    if (!seen.insert(index).second) fail(idx, at.key("index"), "declared twice");
    const YamlNode& type_node = required(f, "type", at);
    std::string type = scalar(type_node, at.key("type"));
    if (const YamlNode* l = f.get("label")) scalar(*l, at.key("label"));
    if (type == "nop" || type == "int") {
      if (!tracepoint && index == 2 && type == "int") cap_index = 2;  // read as a number
      if (!tracepoint && index == 3 && type == "int" && options != nullptr) *options = true;
      return;
    }
    bool fits = tracepoint ? (type == "user_namespace" || type == "capability")
                           : (index == 1 && type == "user_namespace") ||
                                 (index == 2 && type == "capability");
    if (!fits)
      fail(type_node, at.key("type"),
           tracepoint
               ? fmt::format("{} is not one of user_namespace, capability, int, nop", quoted(type))
               : fmt::format("{} does not fit argument {} of cap_capable (index 1: "
                             "user_namespace, index 2: capability; others: int or nop)",
                             quoted(type), index));
    if (type == "capability") {
      if (cap_index && tracepoint)
        fail(type_node, at.key("type"), "only one argument can be the capability");
      cap_index = static_cast<int>(index);
    }
  });
  return cap_index;
}

void Reader::return_arg(const YamlNode& n, const Path& path) const {
  Fields f = mapping(n, path, {{"index", "type", "label"}, {}});
  if (const YamlNode* i = f.get("index")) integer(*i, path.key("index"), 0, 0);
  const YamlNode& type = required(f, "type", path);
  if (scalar(type, path.key("type")) != "int")
    fail(type, path.key("type"),
         fmt::format("{} is not int (cap_capable returns 0 or -EPERM)", quoted(type.value)));
  if (const YamlNode* l = f.get("label")) scalar(*l, path.key("label"));
}

void Reader::selectors(const YamlNode& n, const Path& path, std::optional<int> cap_index,
                       Hook& hook) const {
  sequence(n, path, kMaxSelectorsPerHook, [&](const YamlNode& s, const Path& at) {
    hook.selectors.push_back(selector(s, at, cap_index, hook));
  });
}

Selector Reader::selector(const YamlNode& n, const Path& path, std::optional<int> cap_index,
                          const Hook& hook) const {
  constexpr std::string_view kWhat =
      "capscope selects by capability (matchArgs), verdict (matchReturnArgs), binary, "
      "namespace and pod";
  Fields f =
      mapping(n, path,
              {{"matchArgs", "matchReturnArgs", "matchBinaries", "matchNamespaces", "matchActions"},
               {{"matchPIDs", kWhat},
                {"matchCapabilities", kWhat},
                {"matchNamespaceChanges", kWhat},
                {"matchCapabilityChanges", kWhat},
                {"matchReturnActions", "actions on the return value"},
                {"matchData", kWhat}}});
  Selector s;
  s.where = {line_of(n), path.text};
  if (const YamlNode* a = f.get("matchArgs"))
    sequence(*a, path.key("matchArgs"), 8, [&](const YamlNode& e, const Path& at) {
      bool options = index_of(e) == "3" && !hook.tracepoint;
      if (options && !hook.options_declared)
        fail(e, at.key("index"),
             "3 is cap_capable's opts: declare it in args (`- index: 3, type: int`) to "
             "filter on it");
      if (options)
        s.options.push_back(match_options(e, at));
      else
        s.capabilities.push_back(match_arg(e, at, cap_index));
    });
  if (const YamlNode* r = f.get("matchReturnArgs")) {
    if (hook.tracepoint)
      fail(*r, path.key("matchReturnArgs"),
           "the tracepoint has no return value: use a kprobe on cap_capable with return: true");
    if (!hook.return_value)
      fail(*r, path.key("matchReturnArgs"),
           fmt::format("needs return: true in {} (the verdict is cap_capable's return value)",
                       hook.where.field));
    sequence(*r, path.key("matchReturnArgs"), 8, [&](const YamlNode& e, const Path& at) {
      s.returns.push_back(match_return_arg(e, at));
    });
  }
  if (const YamlNode* b = f.get("matchBinaries"))
    sequence(*b, path.key("matchBinaries"), 1,
             [&](const YamlNode& e, const Path& at) { s.binaries = match_binaries(e, at); });
  if (const YamlNode* ns = f.get("matchNamespaces"))
    sequence(*ns, path.key("matchNamespaces"), 10, [&](const YamlNode& e, const Path& at) {
      s.namespaces.push_back(match_namespace(e, at));
    });
  if (const YamlNode* a = f.get("matchActions"))
    sequence(*a, path.key("matchActions"), 1,
             [&](const YamlNode& e, const Path& at) { s.action = match_action(e, at); });
  return s;
}

CapabilityFilter Reader::match_arg(const YamlNode& n, const Path& path,
                                   std::optional<int> cap_index) const {
  Fields f = mapping(n, path, {{"index", "operator", "values"}, {}});
  CapabilityFilter out;
  out.where = {line_of(n), path.text};
  const YamlNode& idx = required(f, "index", path);
  int64_t index = integer(idx, path.key("index"), 0, 7);
  if (!cap_index || index != *cap_index)
    fail(idx, path.key("index"),
         cap_index ? fmt::format("{} is not the capability argument (declared at index {}): "
                                 "capscope filters only on the capability",
                                 index, *cap_index)
                   : fmt::format("{} is not a declared capability argument (add `- index: 2, "
                                 "type: capability` to args)",
                                 index));
  const YamlNode& op_node = required(f, "operator", path);
  std::string op = scalar(op_node, path.key("operator"));
  if (contains(kTetragonArgOps, op))
    fail(op_node, path.key("operator"),
         fmt::format("{} is not supported by capscope on the capability: use Equal or NotEqual",
                     quoted(op)));
  one_of(op_node, path.key("operator"), kMatchArgOps);
  out.equal = op == "Equal";
  const YamlNode& vals = required(f, "values", path);
  sequence(vals, path.key("values"), 64, [&](const YamlNode& v, const Path& at) {
    std::string text = scalar(v, at);
    auto cap = tables::cap_from_name(text);
    if (!cap)
      fail(v, at,
           fmt::format("{} is not a capability (write CAP_SYS_ADMIN, SYS_ADMIN or a number "
                       "0..63)",
                       quoted(text)));
    out.caps.push_back(*cap);
  });
  return out;
}

// cap_capable's opts: CAP_OPT_NOAUDIT and CAP_OPT_INSETID, by number or name.
OptionsFilter Reader::match_options(const YamlNode& n, const Path& path) const {
  Fields f = mapping(n, path, {{"index", "operator", "values"}, {}});
  OptionsFilter out;
  out.where = {line_of(n), path.text};
  const YamlNode& op_node = required(f, "operator", path);
  std::string op = scalar(op_node, path.key("operator"));
  one_of(op_node, path.key("operator"), kOptionsOps);
  out.op = op == "Equal"      ? OptionsFilter::Op::Equal
           : op == "NotEqual" ? OptionsFilter::Op::NotEqual
                              : OptionsFilter::Op::Mask;
  const YamlNode& vals = required(f, "values", path);
  sequence(vals, path.key("values"), 8, [&](const YamlNode& v, const Path& at) {
    std::string text = scalar(v, at);
    std::optional<uint32_t> value = options_value_of(text);
    if (!value)
      fail(v, at,
           fmt::format("{} is not a value of cap_capable's opts (CAP_OPT_NONE 0, "
                       "CAP_OPT_NOAUDIT 2, CAP_OPT_INSETID 4, or a sum of the last two)",
                       quoted(text)));
    out.values.push_back(*value);
  });
  return out;
}

ReturnFilter Reader::match_return_arg(const YamlNode& n, const Path& path) const {
  Fields f = mapping(n, path, {{"index", "operator", "values"}, {}});
  ReturnFilter out;
  out.where = {line_of(n), path.text};
  if (const YamlNode* i = f.get("index")) integer(*i, path.key("index"), 0, 0);
  const YamlNode& op_node = required(f, "operator", path);
  std::string op = scalar(op_node, path.key("operator"));
  // Tetragon spells the comparisons both ways.
  if (op == "GreaterThan") op = "GT";
  if (op == "LessThan") op = "LT";
  if (!contains(kReturnOps, op)) one_of(op_node, path.key("operator"), kReturnOps);
  out.op = op == "Equal"      ? ReturnFilter::Op::Equal
           : op == "NotEqual" ? ReturnFilter::Op::NotEqual
           : op == "GT"       ? ReturnFilter::Op::GreaterThan
                              : ReturnFilter::Op::LessThan;
  const YamlNode& vals = required(f, "values", path);
  bool comparison = out.op == ReturnFilter::Op::GreaterThan || out.op == ReturnFilter::Op::LessThan;
  sequence(vals, path.key("values"), comparison ? 1 : 16, [&](const YamlNode& v, const Path& at) {
    std::string text = scalar(v, at);
    if (text == "-EPERM") {
      out.values.push_back(-EPERM);
      return;
    }
    auto value = parse_int(text);
    if (!value)
      fail(v, at,
           fmt::format("{} is not a return value (0 granted, -1 or -EPERM denied)", quoted(text)));
    out.values.push_back(*value);
  });
  return out;
}

BinaryFilter Reader::match_binaries(const YamlNode& n, const Path& path) const {
  Fields f = mapping(n, path,
                     {{"operator", "values"},
                      {{"followChildren",
                        "following children (capscope matches the exec'd "
                        "binary of the process that makes the check)"}}});
  BinaryFilter out;
  out.where = {line_of(n), path.text};
  const YamlNode& op_node = required(f, "operator", path);
  std::string op = scalar(op_node, path.key("operator"));
  if (contains(kTetragonBinaryOps, op))
    fail(op_node, path.key("operator"),
         fmt::format("{} is not supported by capscope: matchBinaries takes exact paths with In "
                     "or NotIn",
                     quoted(op)));
  out.op = one_of(op_node, path.key("operator"), kSetOps) == "In" ? BinaryOp::In : BinaryOp::NotIn;
  const YamlNode& vals = required(f, "values", path);
  sequence(vals, path.key("values"), 64, [&](const YamlNode& v, const Path& at) {
    std::string text = scalar(v, at);
    if (text.empty() || text.front() != '/' || text.size() > 4095 ||
        text.find('\0') != std::string::npos)
      fail(v, at, fmt::format("{} is not an absolute path", quoted(text)));
    if (std::find(out.paths.begin(), out.paths.end(), text) == out.paths.end())
      out.paths.push_back(std::move(text));
  });
  return out;
}

NamespaceFilter Reader::match_namespace(const YamlNode& n, const Path& path) const {
  Fields f = mapping(n, path, {{"namespace", "operator", "values"}, {}});
  NamespaceFilter out;
  out.where = {line_of(n), path.text};
  const YamlNode& kind_node = required(f, "namespace", path);
  std::string kind = scalar(kind_node, path.key("namespace"));
  auto it = std::find_if(std::begin(kNsKinds), std::end(kNsKinds),
                         [&](const NsKindName& k) { return k.name == kind; });
  if (it == std::end(kNsKinds)) {
    std::vector<std::string_view> names;
    for (const auto& k : kNsKinds) names.push_back(k.name);
    fail(kind_node, path.key("namespace"),
         fmt::format("{} is not one of {}", quoted(kind), joined(names)));
  }
  out.match.kind = it->kind;
  bool in = one_of(required(f, "operator", path), path.key("operator"), kSetOps) == "In";
  const YamlNode& vals = required(f, "values", path);
  sequence(vals, path.key("values"), 16, [&](const YamlNode& v, const Path& at) {
    std::string text = scalar(v, at);
    if (text != "host_ns")
      fail(v, at,
           parse_int(text)
               ? std::string("namespace numbers are not supported by capscope: use host_ns")
               : fmt::format("{} is not host_ns", quoted(text)));
  });
  out.match.host = in;
  return out;
}

ActionSpec Reader::match_action(const YamlNode& n, const Path& path) const {
  constexpr std::string_view kArgs = "action arguments of actions capscope does not take";
  Fields f = mapping(n, path,
                     {{"action", "rateLimit", "rateLimitScope"},
                      {{"argSig", kArgs},
                       {"argError", kArgs},
                       {"argFd", kArgs},
                       {"argName", kArgs},
                       {"argUrl", kArgs},
                       {"argFqdn", kArgs},
                       {"argSock", kArgs},
                       {"stackTrace", "stack traces"},
                       {"kernelStackTrace", "stack traces"},
                       {"userStackTrace", "stack traces"},
                       {"imaHash", "IMA hashes"}}});
  ActionSpec out;
  out.where = {line_of(n), path.text};
  const YamlNode& action_node = required(f, "action", path);
  std::string action = scalar(action_node, path.key("action"));
  // Tetragon reads action names in any letter case ("post" works there too).
  auto same = [&](std::string_view name) {
    return action.size() == name.size() &&
           std::equal(action.begin(), action.end(), name.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) ==
                    std::tolower(static_cast<unsigned char>(b));
           });
  };
  if (same("Post")) {
    out.action = Action::Post;
  } else if (same("NoPost")) {
    out.action = Action::NoPost;
  } else if (same("Sigkill")) {
    out.action = Action::Sigkill;
  } else {
    bool tetragon = std::any_of(kTetragonActions.begin(), kTetragonActions.end(), same);
    fail(action_node, path.key("action"),
         tetragon ? fmt::format("{} is not supported by capscope (Post, NoPost or Sigkill)",
                                quoted(action))
                  : fmt::format("{} is not one of Post, NoPost, Sigkill", quoted(action)));
  }
  if (const YamlNode* r = f.get("rateLimit")) {
    if (out.action != Action::Post) fail(*r, path.key("rateLimit"), "applies to action Post only");
    out.rate_limit = scalar(*r, path.key("rateLimit"));
    auto ns = rate_limit_ns(out.rate_limit);
    if (!ns)
      fail(*r, path.key("rateLimit"),
           fmt::format("{} is not a duration (seconds, or a number and s, m or h: \"1m\"; at most "
                       "6 digits)",
                       quoted(out.rate_limit)));
    out.rate_limit_ns = *ns;
  }
  if (const YamlNode* s = f.get("rateLimitScope")) {
    if (out.rate_limit_ns == 0)
      fail(*s, path.key("rateLimitScope"), "needs rateLimit (the window it scopes)");
    std::string scope = one_of(*s, path.key("rateLimitScope"), {"thread", "process", "global"});
    out.rate_scope = *filter::parse_rate_scope(scope);
  }
  return out;
}

// ---- compiling ----

[[noreturn]] void compile_error(const TracingPolicy& p, const Where& w, const std::string& msg) {
  throw PolicyError(p.file, w.line, w.field, msg);
}

// Whether cap_capable's return value r passes a filter.
bool passes(const ReturnFilter& f, int64_t r) {
  switch (f.op) {
    case ReturnFilter::Op::Equal:
      return std::find(f.values.begin(), f.values.end(), r) != f.values.end();
    case ReturnFilter::Op::NotEqual:
      return std::find(f.values.begin(), f.values.end(), r) == f.values.end();
    case ReturnFilter::Op::GreaterThan:
      return r > f.values.front();
    case ReturnFilter::Op::LessThan:
      return r < f.values.front();
  }
  return false;
}

// Whether a check with cap_capable's opts `v` passes a filter.
bool passes(const OptionsFilter& f, uint32_t v) {
  bool listed = std::find(f.values.begin(), f.values.end(), v) != f.values.end();
  switch (f.op) {
    case OptionsFilter::Op::Equal:
      return listed;
    case OptionsFilter::Op::NotEqual:
      return !listed;
    case OptionsFilter::Op::Mask:
      return std::any_of(f.values.begin(), f.values.end(),
                         [v](uint32_t m) { return (v & m) != 0; });
  }
  return false;
}

CompiledSelector compile_selector(const TracingPolicy& p, const Selector& s) {
  CompiledSelector out;
  for (const auto& c : s.capabilities) {
    uint64_t mask = tables::mask_of(c.caps);
    out.cap_mask &= c.equal ? mask : ~mask;
  }
  if (out.cap_mask == 0)
    compile_error(p, s.where, "matchArgs: no capability can pass these filters together");
  for (const auto& o : s.options) {
    uint8_t bits = 0;
    for (unsigned i = 0; i < 4; ++i)
      if (passes(o, options_value(i))) bits |= static_cast<uint8_t>(1U << i);
    out.options &= bits;
  }
  if (out.options == 0)
    compile_error(p, s.where, "matchArgs: no value of opts can pass these filters together");
  // cap_capable returns exactly 0 (granted) or -EPERM (denied): each filter
  // is decided on those two values, so any Tetragon comparison maps to bits.
  for (const auto& r : s.returns) {
    uint8_t bits = (passes(r, 0) ? kVerdictGranted : 0) | (passes(r, -EPERM) ? kVerdictDenied : 0);
    if (bits == 0)
      compile_error(p, r.where,
                    "matches no check: cap_capable returns 0 (granted) or -1 (-EPERM, denied)");
    out.verdicts &= bits;
  }
  if (out.verdicts == 0)
    compile_error(p, s.where, "matchReturnArgs: no verdict can pass these filters together");
  for (const auto& ns : s.namespaces) {
    for (const auto& have : out.namespaces)
      if (have.kind == ns.match.kind && have.host != ns.match.host)
        compile_error(
            p, ns.where,
            fmt::format("{} cannot be both In and NotIn host_ns", ns_kind_name(have.kind)));
    if (std::find(out.namespaces.begin(), out.namespaces.end(), ns.match) == out.namespaces.end())
      out.namespaces.push_back(ns.match);
  }
  if (s.binaries) {
    out.binary_op = s.binaries->op;
    out.binaries = s.binaries->paths;
  }
  if (s.action) {
    out.action = s.action->action;
    out.rate_limit_ns = s.action->rate_limit_ns;
    out.rate_scope = s.action->rate_scope;
  }
  return out;
}

// "audited only", "probes only" (CAP_OPT_NOAUDIT), or the opts values that pass.
std::string options_names(uint8_t options) {
  constexpr uint8_t kAudited = 0b0101, kProbes = 0b1010;  // NOAUDIT clear / set
  if (options == kAudited) return "audited only";
  if (options == kProbes) return "no-audit probes only";
  std::vector<uint32_t> values;
  for (unsigned i = 0; i < 4; ++i)
    if (options >> i & 1) values.push_back(options_value(i));
  return fmt::format("opts in {{{}}}", fmt::join(values, ","));
}

std::string verdict_names(uint8_t verdicts) {
  if (verdicts == (kVerdictGranted | kVerdictDenied)) return "granted+denied";
  return verdicts == kVerdictGranted ? "granted" : "denied";
}

// "all capabilities", "all but CHOWN,SYS_ADMIN" (when the mask keeps every
// number the table has no name for and most of the others), or the names.
std::string cap_list(uint64_t mask) {
  if (mask == ~0ULL) return "all capabilities";
  uint64_t known = 0;
  for (const auto& info : tables::all_capabilities()) known |= 1ULL << info.number;
  bool all_unknown = (mask & ~known) == ~known;
  if (all_unknown && std::popcount(mask & known) * 2 > std::popcount(known)) {
    auto names = tables::cap_short_names(tables::caps_in_mask(known & ~mask));
    return fmt::format("all but {}", fmt::join(names, ","));
  }
  return fmt::format("{}", fmt::join(tables::cap_short_names(tables::caps_in_mask(mask)), ","));
}

std::string duration(uint64_t ns) {
  if (ns % 3'600'000'000'000ULL == 0) return fmt::format("{}h", ns / 3'600'000'000'000ULL);
  if (ns % 60'000'000'000ULL == 0) return fmt::format("{}m", ns / 60'000'000'000ULL);
  return fmt::format("{}s", ns / 1'000'000'000ULL);
}

const char* scope_name(filter::RateScope s) {
  switch (s) {
    case filter::RateScope::Thread:
      return "thread";
    case filter::RateScope::Process:
      return "process";
    case filter::RateScope::Global:
      return "global";
  }
  return "?";
}

}  // namespace

std::optional<uint64_t> parse_rate_limit(std::string_view s) { return rate_limit_ns(s); }

bool is_object_name(std::string_view s) { return is_dns_subdomain(s); }

std::vector<TracingPolicy> parse_policies(std::string_view text, const std::string& file) {
  if (text.size() > kMaxPolicyBytes)
    throw PolicyError(
        file, 0, "",
        fmt::format("{} bytes: a policy file holds at most {}", text.size(), kMaxPolicyBytes));
  std::vector<YamlNodePtr> docs;
  try {
    docs = load_yaml_documents(text, kMaxDocuments);
  } catch (const YamlError& e) {
    throw PolicyError(file, e.line(), "", e.what());
  }
  Reader reader(file);
  std::vector<TracingPolicy> out;
  for (const auto& doc : docs) {
    if (doc->is_null()) continue;  // an empty document, e.g. after a trailing ---
    TracingPolicy p = reader.document(*doc);
    for (const auto& other : out)
      if (other.name == p.name)
        throw PolicyError(file, p.line, "metadata.name",
                          fmt::format("{} is also the name of the policy on line {}",
                                      quoted(p.name), other.line));
    out.push_back(std::move(p));
  }
  if (out.empty())
    throw PolicyError(file, 0, "", "holds no policy (expected a TracingPolicy document)");
  return out;
}

std::vector<TracingPolicy> load_policy_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PolicyError(path, 0, "", std::strerror(errno));
  std::string text;
  // One byte more than allowed is enough to refuse a file that is too large.
  text.resize(kMaxPolicyBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw PolicyError(path, 0, "", std::strerror(errno));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_policies(text, path);
}

CompiledPolicy compile(const TracingPolicy& p) {
  CompiledPolicy out;
  out.name = p.name;
  out.source = p.file;
  out.k8s_namespace = p.k8s_namespace;
  out.pod_selector = p.pod_selector;
  out.container_selector = p.container_selector;
  for (const auto& hook : p.hooks) {
    if (hook.selectors.empty()) out.selectors.emplace_back();  // every check, Post
    for (const auto& s : hook.selectors) out.selectors.push_back(compile_selector(p, s));
  }
  if (out.selectors.size() > kMaxCompiledSelectors)
    throw PolicyError(p.file, p.line, "spec",
                      fmt::format("{} selectors: the kernel holds at most {} (for all policies "
                                  "together)",
                                  out.selectors.size(), kMaxCompiledSelectors));
  return out;
}

std::string describe(const CompiledSelector& s) {
  std::vector<std::string> parts{cap_list(s.cap_mask), verdict_names(s.verdicts)};
  if (s.options != kAllOptions) parts.push_back(options_names(s.options));
  for (const auto& ns : s.namespaces)
    parts.push_back(fmt::format("{} {} host_ns", ns_kind_name(ns.kind), ns.host ? "In" : "NotIn"));
  if (s.binary_op != BinaryOp::Any)
    parts.push_back(fmt::format("binary {} {}", s.binary_op == BinaryOp::In ? "In" : "NotIn",
                                fmt::join(s.binaries, ",")));
  std::string action = action_name(s.action);
  if (s.rate_limit_ns != 0)
    action += fmt::format(" rateLimit {}/{}", duration(s.rate_limit_ns), scope_name(s.rate_scope));
  return fmt::format("{} -> {}", fmt::join(parts, "; "), action);
}

std::string describe_scope(const CompiledPolicy& p) {
  std::vector<std::string> parts;
  if (!p.k8s_namespace.empty()) parts.push_back("namespace " + p.k8s_namespace);
  if (p.pod_selector)
    parts.push_back(p.pod_selector->empty() ? "all pods" : "pods " + p.pod_selector->str());
  if (p.container_selector)
    parts.push_back(p.container_selector->empty() ? "all containers"
                                                  : "containers " + p.container_selector->str());
  if (parts.empty()) return "all processes";
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace capscope::policy
