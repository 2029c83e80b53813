#include "policy/from_profile.h"

#include <fmt/format.h>

#include <set>
#include <vector>

#include "filter/label_selector.h"
#include "policy/tracing_policy.h"
#include "tables/capabilities.h"
#include "util/strings.h"

namespace capscope::policy {

namespace {

// The parser's limit on a values list.
constexpr size_t kMaxBinaries = 64;

// A YAML double-quoted scalar: safe for any text (paths may hold quotes,
// backslashes, colons or control characters).
std::string yaml_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A one-line comment: no newline may end the comment early.
std::string comment_safe(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  return out;
}

// A label value a selector can hold (the label selector's own rule).
bool is_label_value(const std::string& v) {
  if (v.empty()) return false;
  try {
    LabelSelector::parse("k=" + v);
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

// The name when the table has one (parses back), else the number.
std::string capability_value(int cap) {
  std::string name = tables::cap_name(cap);
  return tables::cap_from_name(name) ? name : std::to_string(cap);
}

std::set<std::string> binaries_of(const profile::Profile& p) {
  std::set<std::string> out;
  for (const auto& [key, stats] : p.uses)
    for (const auto& [path, use] : stats.binaries)
      if (!path.empty() && path.front() == '/') out.insert(path);
  return out;
}

struct Scope {
  std::string kind = "TracingPolicy";
  std::string k8s_namespace;
  std::vector<std::string> pod_labels;  // "key: value" lines
  std::string container;                // containerSelector name
  std::set<std::string> binaries;       // matchBinaries In
  std::vector<std::string> notes;       // comment lines
};

Scope container_scope(const profile::Profile& p) {
  const auto& c = p.container;
  Scope s;
  if (c.image.empty() && c.workload.empty())
    throw std::invalid_argument(fmt::format(
        "profile \"{}\": its container was never named by its runtime, so no selector can "
        "pick it again (record it while the runtime answers)",
        p.name));
  if (!is_label_value(c.container))
    throw std::invalid_argument(
        fmt::format("profile \"{}\": container name \"{}\" cannot be a containerSelector value",
                    p.name, c.container));
  s.container = c.container;
  if (!c.namespace_name.empty()) {
    s.kind = "TracingPolicyNamespaced";
    s.k8s_namespace = c.namespace_name;
  }
  if (c.workload.empty()) return s;
  if (!is_label_value(c.workload))
    throw std::invalid_argument(fmt::format(
        "profile \"{}\": workload name \"{}\" cannot be a podSelector value (at most 63 "
        "characters)",
        p.name, c.workload));
  s.pod_labels.push_back(fmt::format("{}: {}", kWorkloadNameLabel, yaml_quote(c.workload)));
  // "DaemonSet|Job|ReplicaSet" (a name that could not tell which) is no label value.
  if (is_label_value(c.workload_kind))
    s.pod_labels.push_back(fmt::format("{}: {}", kWorkloadKindLabel, yaml_quote(c.workload_kind)));
  else if (!c.workload_kind.empty())
    s.notes.push_back(
        fmt::format("the workload's kind ({}) is not certain: any kind named {} "
                    "is selected",
                    c.workload_kind, c.workload));
  return s;
}

Scope binary_scope(const profile::Profile& p) {
  Scope s;
  s.binaries = binaries_of(p);
  if (s.binaries.empty())
    throw std::invalid_argument(fmt::format(
        "profile \"{}\" has no container and no binary path: a policy from it would apply to "
        "every process on the node (record the workload with --pod, --selector or -- CMD)",
        p.name));
  if (s.binaries.size() > kMaxBinaries)
    throw std::invalid_argument(fmt::format(
        "profile \"{}\" ran {} binaries; a matchBinaries list holds at most {} (record the "
        "workload in a container, and the policy selects the container instead)",
        p.name, s.binaries.size(), kMaxBinaries));
  s.notes.emplace_back(
      "matchBinaries: any process running one of these binaries, anywhere on the node");
  return s;
}

void append_header(std::string& out, const profile::Profile& p, const FromProfileOptions& o,
                   const std::vector<int>& needed, const Scope& s) {
  out += fmt::format("# From capscope profile \"{}\": {}.\n", comment_safe(p.name),
                     comment_safe(p.subject));
  out += fmt::format(
      "# It needs {}; any other capability check of the workload is {}.\n",
      needed.empty() ? "no capability"
                     : fmt::format("{}", fmt::join(tables::cap_short_names(needed), ", ")),
      o.action == Action::Sigkill ? "killed (Sigkill, audited checks only)" : "reported (Post)");
  for (const auto& note : s.notes) out += fmt::format("# Note: {}.\n", comment_safe(note));
}

void append_metadata(std::string& out, const std::string& name, const Scope& s) {
  out += fmt::format("apiVersion: {}\nkind: {}\nmetadata:\n  name: {}\n", kApiVersion, s.kind,
                     yaml_quote(name));
  if (!s.k8s_namespace.empty())
    out += fmt::format("  namespace: {}\n", yaml_quote(s.k8s_namespace));
}

void append_selectors(std::string& out, const Scope& s) {
  if (!s.pod_labels.empty()) {
    out += "  podSelector:\n    matchLabels:\n";
    for (const auto& l : s.pod_labels) out += fmt::format("      {}\n", l);
  }
  if (!s.container.empty())
    out += fmt::format("  containerSelector:\n    matchLabels:\n      name: {}\n",
                       yaml_quote(s.container));
}

void append_kprobe(std::string& out, const std::vector<int>& needed, const Scope& s,
                   const FromProfileOptions& o) {
  out +=
      "  kprobes:\n"
      "  - call: \"cap_capable\"\n"
      "    syscall: false\n"
      "    return: true\n"
      "    args:\n"
      "    - index: 1\n"
      "      type: \"user_namespace\"\n"
      "    - index: 2\n"
      "      type: \"capability\"\n"
      "    returnArg:\n"
      "      index: 0\n"
      "      type: \"int\"\n"
      "    selectors:\n";
  // The selector's first key carries the list dash.
  std::string dash = "    - ";
  auto key = [&]() {
    std::string k = dash;
    dash = "      ";
    return k;
  };
  if (!needed.empty()) {
    out +=
        key() + "matchArgs:\n      - index: 2\n        operator: \"NotEqual\"\n        values:\n";
    for (int cap : needed) out += fmt::format("        - {}\n", yaml_quote(capability_value(cap)));
  }
  if (!s.binaries.empty()) {
    out += key() + "matchBinaries:\n      - operator: \"In\"\n        values:\n";
    for (const auto& b : s.binaries) out += fmt::format("        - {}\n", yaml_quote(b));
  }
  out += key() + fmt::format("matchActions:\n      - action: {}\n", action_name(o.action));
  if (o.action == Action::Post && !o.rate_limit.empty())
    out += fmt::format("        rateLimit: {}\n", yaml_quote(o.rate_limit));
}

}  // namespace

std::string policy_name_for(const std::string& profile_name) {
  std::string name = "capscope-";
  for (char c : util::ascii_lower(profile_name)) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.';
    char next = keep ? c : '-';
    if ((next == '-' || next == '.') && (name.back() == '-' || name.back() == '.')) continue;
    name += next;
  }
  if (name.size() > 253) name.resize(253);
  while (!name.empty() && (name.back() == '-' || name.back() == '.')) name.pop_back();
  return name;
}

std::string policy_from_profile(const profile::Profile& p, const FromProfileOptions& o) {
  if (o.action == Action::NoPost)
    throw std::invalid_argument("--action: Sigkill or Post (NoPost would only count)");
  if (!o.name.empty() && !is_object_name(o.name))
    throw std::invalid_argument(fmt::format(
        "--name {}: not a Kubernetes object name (lowercase letters, digits, '-' and '.', "
        "beginning and ending with a letter or digit)",
        o.name));
  if (o.action == Action::Post && !o.rate_limit.empty() && !parse_rate_limit(o.rate_limit))
    throw std::invalid_argument(fmt::format(
        "--rate-limit {}: not a duration (seconds, or a number and s, m or h: 30s, 1m, 2h; or "
        "none)",
        o.rate_limit));
  Scope s = p.container.empty() ? binary_scope(p) : container_scope(p);
  std::vector<int> needed = p.needed();
  std::string name = o.name.empty() ? policy_name_for(p.name) : o.name;
  std::string out;
  append_header(out, p, o, needed, s);
  append_metadata(out, name, s);
  out += "spec:\n";
  append_selectors(out, s);
  append_kprobe(out, needed, s, o);
  // What is written must load: a wrong --name or --rate-limit, or a profile
  // value the parser refuses, is reported here rather than by `policy add`.
  try {
    compile(parse_policies(out, "from-profile").at(0));
  } catch (const PolicyError& e) {
    throw std::invalid_argument(e.what());
  }
  return out;
}

}  // namespace capscope::policy
