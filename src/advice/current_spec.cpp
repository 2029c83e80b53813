#include "advice/current_spec.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>

#include "enrich/proc_reader.h"
#include "tables/capabilities.h"
#include "util/strings.h"
#include "util/yaml_tree.h"

namespace capscope::advice {

namespace {

// A problem at one field; turned into the one-line error at the top.
struct SpecError : std::runtime_error {
  SpecError(int line_, std::string field_, const std::string& msg)
      : std::runtime_error(msg), line(line_), field(std::move(field_)) {}
  int line;  // 1-based; 0 when unknown (JSON)
  std::string field;
};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The capability a misspelt name most likely meant: the name it begins, else
// the nearest by edit distance if that is close.
std::string closest_capability(std::string_view given) {
  std::string g = util::ascii_upper(given);
  if (g.starts_with("CAP_")) g.erase(0, 4);
  std::string best;
  size_t best_distance = 4;  // farther than this is no suggestion
  for (const auto& info : tables::all_capabilities()) {
    std::string name(info.name.substr(4));
    if (!g.empty() && name.starts_with(g)) return name;
    if (size_t d = edit_distance(g, name); d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  return best;
}

// A capability as a spec spells it. Kubernetes documents names without CAP_;
// Docker (moby NormalizeLegacyCapabilities) and containers/common (Podman,
// CRI-O) upper-case a name and add CAP_ when it is missing, so users write
// both; we accept both, in any letter case. Numbers, which
// tables::cap_from_name would take, are not valid in a spec.
std::optional<int> spec_capability(std::string_view s) {
  if (s.empty() || std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  return tables::cap_from_name(s);
}

std::string unknown_capability(std::string_view s) {
  std::string hint = closest_capability(s);
  return fmt::format(
      "unknown capability \"{}\" ({}names as in capabilities(7), with or without CAP_, or ALL)", s,
      hint.empty() ? "" : "did you mean " + hint + "? ");
}

// One capability list: ALL sets *all; every other entry must name a capability.
struct CapList {
  bool all = false;
  std::vector<int> caps;
  std::vector<int> prefixed;  // of caps, those written with CAP_
};

void insert_sorted(std::vector<int>& v, int cap) {
  auto it = std::lower_bound(v.begin(), v.end(), cap);
  if (it == v.end() || *it != cap) v.insert(it, cap);
}

void add_entry(CapList& list, std::string_view entry, int line, const std::string& field) {
  if (util::ascii_upper(entry) == "ALL" || util::ascii_upper(entry) == "CAP_ALL") {
    list.all = true;
    return;
  }
  auto cap = spec_capability(entry);
  if (!cap) throw SpecError(line, field, unknown_capability(entry));
  insert_sorted(list.caps, *cap);
  if (util::ascii_upper(entry).starts_with("CAP_")) insert_sorted(list.prefixed, *cap);
}

// ---- YAML ----

int line_of(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  return m.is_null() ? 0 : m.line + 1;
}

const char* yaml_type(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "null";
  }
}

void expect_type(const YAML::Node& n, YAML::NodeType::value type, const std::string& field) {
  if (n.Type() == type) return;
  const char* want = type == YAML::NodeType::Sequence ? "a list" : "a mapping";
  throw SpecError(line_of(n), field, fmt::format("expected {}, found {}", want, yaml_type(n)));
}

// The child under `key`, or an invalid node when absent or null.
YAML::Node child(const YAML::Node& parent, const char* key) {
  if (!parent.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  YAML::Node n = parent[key];
  return n && !n.IsNull() ? n : YAML::Node(YAML::NodeType::Undefined);
}

template <typename T>
std::optional<T> scalar_of(const YAML::Node& parent, const char* key, const std::string& field,
                           const char* expected) {
  YAML::Node n = child(parent, key);
  if (!n) return std::nullopt;
  try {
    if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
    return n.as<T>();
  } catch (const YAML::BadConversion&) {
    throw SpecError(line_of(n), field + key, fmt::format("expected {}", expected));
  }
}

std::optional<bool> bool_of(const YAML::Node& parent, const char* key, const std::string& field) {
  return scalar_of<bool>(parent, key, field, "true or false");
}

CapList yaml_cap_list(const YAML::Node& parent, const char* key, const std::string& field) {
  CapList list;
  const YAML::Node seq = child(parent, key);
  if (!seq) return list;
  std::string path = field + key;
  expect_type(seq, YAML::NodeType::Sequence, path);
  for (size_t i = 0; i < seq.size(); ++i) {
    std::string at = fmt::format("{}[{}]", path, i);
    if (!seq[i].IsScalar()) throw SpecError(line_of(seq[i]), at, "expected a capability name");
    add_entry(list, seq[i].Scalar(), line_of(seq[i]), at);
  }
  return list;
}

void apply_lists(CurrentContainer& c, const CapList& add, const CapList& drop) {
  c.add_all = add.all;
  c.add = add.caps;
  c.drop_all = drop.all;
  c.drop = drop.caps;
  c.add_prefixed = add.prefixed;
  c.drop_prefixed = drop.prefixed;
}

// ---- Kubernetes ----

struct PodLevel {
  std::optional<int64_t> run_as_user;
  std::optional<bool> run_as_non_root;
};

CurrentContainer k8s_container(const YAML::Node& node, const std::string& field,
                               const PodLevel& pod) {
  CurrentContainer c;
  c.kind = SpecKind::Kubernetes;
  c.line = line_of(node);
  expect_type(node, YAML::NodeType::Map, field);
  c.name = scalar_of<std::string>(node, "name", field + ".", "a name").value_or("");
  YAML::Node sc = child(node, "securityContext");
  std::string sc_field = field + ".securityContext.";
  if (sc) expect_type(sc, YAML::NodeType::Map, field + ".securityContext");
  YAML::Node caps = child(sc, "capabilities");
  if (caps) expect_type(caps, YAML::NodeType::Map, sc_field + "capabilities");
  std::string caps_field = sc_field + "capabilities.";
  apply_lists(c, yaml_cap_list(caps, "add", caps_field), yaml_cap_list(caps, "drop", caps_field));
  c.privileged = bool_of(sc, "privileged", sc_field).value_or(false);
  c.allow_privilege_escalation = bool_of(sc, "allowPrivilegeEscalation", sc_field);
  c.run_as_user = scalar_of<int64_t>(sc, "runAsUser", sc_field, "a user id");
  if (!c.run_as_user) c.run_as_user = pod.run_as_user;
  c.run_as_non_root = bool_of(sc, "runAsNonRoot", sc_field);
  if (!c.run_as_non_root) c.run_as_non_root = pod.run_as_non_root;
  return c;
}

// Where each workload kind keeps its pod spec.
std::optional<std::vector<const char*>> pod_spec_path(const std::string& kind) {
  static const std::set<std::string, std::less<>> kTemplated = {
      "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job"};
  if (kind == "Pod") return std::vector<const char*>{"spec"};
  if (kTemplated.contains(kind)) return std::vector<const char*>{"spec", "template", "spec"};
  if (kind == "CronJob")
    return std::vector<const char*>{"spec", "jobTemplate", "spec", "template", "spec"};
  return std::nullopt;
}

struct Collector {
  SpecOptions opts;
  std::vector<CurrentContainer> containers;
  std::vector<std::string> skipped_kinds;  // documents that hold no workload

  void k8s_document(const YAML::Node& doc, const std::string& prefix);
  void compose_document(const YAML::Node& doc);
};

void Collector::k8s_document(const YAML::Node& doc, const std::string& prefix) {
  auto kind = scalar_of<std::string>(doc, "kind", prefix, "a kind").value_or("");
  if (kind == "List") {
    YAML::Node items = child(doc, "items");
    if (!items) return;
    expect_type(items, YAML::NodeType::Sequence, prefix + "items");
    for (size_t i = 0; i < items.size(); ++i)
      k8s_document(items[i], fmt::format("{}items[{}].", prefix, i));
    return;
  }
  auto path = pod_spec_path(kind);
  if (!path) {
    skipped_kinds.push_back(kind);
    return;
  }
  YAML::Node meta = child(doc, "metadata");
  std::string workload =
      kind + "/" +
      scalar_of<std::string>(meta, "name", prefix + "metadata.", "a name").value_or("(unnamed)");
  YAML::Node spec = doc;
  std::string field = prefix;
  for (const char* key : *path) {
    YAML::Node next = child(spec, key);
    field += key;
    if (!next)
      throw SpecError(
          line_of(spec), field,
          fmt::format("missing: a {} keeps its pod spec under {}", kind, fmt::join(*path, ".")));
    expect_type(next, YAML::NodeType::Map, field);
    spec = next;
    field += ".";
  }
  YAML::Node pod_sc = child(spec, "securityContext");
  PodLevel pod{scalar_of<int64_t>(pod_sc, "runAsUser", field + "securityContext.", "a user id"),
               bool_of(pod_sc, "runAsNonRoot", field + "securityContext.")};
  for (const char* list : {"initContainers", "containers"}) {
    YAML::Node seq = child(spec, list);
    if (!seq) continue;
    expect_type(seq, YAML::NodeType::Sequence, field + list);
    for (size_t i = 0; i < seq.size(); ++i) {
      CurrentContainer c = k8s_container(seq[i], fmt::format("{}{}[{}]", field, list, i), pod);
      c.workload = workload;
      c.init = std::string_view(list) == "initContainers";
      c.runtime = opts.runtime.value_or(Runtime::Containerd);
      c.runtime_assumed = !opts.runtime;
      containers.push_back(std::move(c));
    }
  }
}

// ---- compose ----

std::string scalar_text(const YAML::Node& parent, const char* key, const std::string& field) {
  // `user` may be a number ("1000") or "1000:1000" or a name.
  return scalar_of<std::string>(parent, key, field, "a user").value_or("");
}

void Collector::compose_document(const YAML::Node& doc) {
  YAML::Node services = child(doc, "services");
  expect_type(services, YAML::NodeType::Map, "services");
  for (const auto& entry : services) {
    std::string service = entry.first.as<std::string>();
    std::string field = "services." + service;
    const YAML::Node& s = entry.second;
    expect_type(s, YAML::NodeType::Map, field);
    field += ".";
    CurrentContainer c;
    c.kind = SpecKind::Compose;
    c.name = service;
    c.line = line_of(entry.first);
    apply_lists(c, yaml_cap_list(s, "cap_add", field), yaml_cap_list(s, "cap_drop", field));
    c.privileged = bool_of(s, "privileged", field).value_or(false);
    c.user = scalar_text(s, "user", field);
    c.runtime = opts.runtime.value_or(Runtime::Docker);
    c.runtime_assumed = !opts.runtime;
    containers.push_back(std::move(c));
  }
}

void collect_yaml(std::string_view text, Collector& out) {
  std::vector<YAML::Node> docs;
  if (std::string hang = util::yaml_cpp_would_hang(text); !hang.empty())
    throw SpecError(0, "", "not valid YAML: " + hang);
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::ParserException& e) {
    throw SpecError(e.mark.is_null() ? 0 : e.mark.line + 1, "",
                    fmt::format("not valid YAML: {}", e.msg));
  }
  for (size_t i = 0; i < docs.size(); ++i) {
    const YAML::Node& doc = docs[i];
    if (!doc.IsMap()) continue;  // empty documents, stray scalars
    if (child(doc, "kind"))
      out.k8s_document(doc, "");
    else if (child(doc, "services"))
      out.compose_document(doc);
  }
}

// ---- docker inspect ----

std::string json_field(size_t i, std::string_view rest) { return fmt::format("[{}].{}", i, rest); }

CapList json_cap_list(const nlohmann::json& host, const char* key, size_t i) {
  CapList list;
  auto it = host.find(key);
  if (it == host.end() || it->is_null()) return list;
  std::string field = json_field(i, std::string("HostConfig.") + key);
  if (!it->is_array()) throw SpecError(0, field, "expected a list of capability names");
  for (size_t k = 0; k < it->size(); ++k) {
    std::string at = fmt::format("{}[{}]", field, k);
    const auto& entry = (*it)[k];
    if (!entry.is_string()) throw SpecError(0, at, "expected a capability name");
    add_entry(list, entry.get<std::string>(), 0, at);
  }
  return list;
}

bool is_inspect_entry(const nlohmann::json& j) { return j.is_object() && j.contains("HostConfig"); }

bool is_docker_inspect(const nlohmann::json& j) {
  if (is_inspect_entry(j)) return true;
  return j.is_array() && !j.empty() &&
         std::all_of(j.begin(), j.end(), [](const auto& e) { return is_inspect_entry(e); });
}

CurrentContainer inspect_container(const nlohmann::json& e, size_t i, const SpecOptions& opts) {
  const auto& host = e.at("HostConfig");
  if (!host.is_object()) throw SpecError(0, json_field(i, "HostConfig"), "expected an object");
  CurrentContainer c;
  c.kind = SpecKind::DockerInspect;
  c.name = e.value("Name", std::string());
  if (c.name.starts_with("/")) c.name.erase(0, 1);
  apply_lists(c, json_cap_list(host, "CapAdd", i), json_cap_list(host, "CapDrop", i));
  if (auto p = host.find("Privileged"); p != host.end() && !p->is_null()) {
    if (!p->is_boolean())
      throw SpecError(0, json_field(i, "HostConfig.Privileged"), "expected true or false");
    c.privileged = p->get<bool>();
  }
  if (auto cfg = e.find("Config"); cfg != e.end() && cfg->is_object())
    c.user = cfg->value("User", std::string());
  // `podman inspect` has the same shape plus EffectiveCaps; Docker's has not.
  bool podman = e.contains("EffectiveCaps");
  c.runtime = opts.runtime.value_or(podman ? Runtime::Podman : Runtime::Docker);
  c.runtime_assumed = !opts.runtime && !podman;
  return c;
}

void collect_inspect(const nlohmann::json& j, Collector& out) {
  if (j.is_object()) {
    out.containers.push_back(inspect_container(j, 0, out.opts));
    return;
  }
  for (size_t i = 0; i < j.size(); ++i)
    out.containers.push_back(inspect_container(j[i], i, out.opts));
}

std::string format_error(const std::string& file, const SpecError& e) {
  std::string out = file;
  if (e.line > 0) out += fmt::format(":{}", e.line);
  out += ": ";
  if (!e.field.empty()) out += e.field + ": ";
  return out + e.what();
}

std::string no_container_error(const std::string& file, const Collector& c) {
  std::string found;
  if (!c.skipped_kinds.empty())
    found = fmt::format(" (it holds {}, which run no container)", fmt::join(c.skipped_kinds, ", "));
  return fmt::format(
      "{}: no container found{}: --current takes a Pod, Deployment, DaemonSet, StatefulSet, "
      "ReplicaSet, Job or CronJob, a compose file (services:), or docker inspect JSON",
      file, found);
}

}  // namespace

std::optional<CurrentSpec> parse_current_spec(std::string_view text, const std::string& file,
                                              const SpecOptions& opts, std::string* error) {
  Collector collector{opts, {}, {}};
  try {
    // JSON first: docker inspect is JSON, and YAML would read it as well but
    // could not tell it from a Kubernetes object written as JSON.
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && is_docker_inspect(j))
      collect_inspect(j, collector);
    else
      collect_yaml(text, collector);
  } catch (const SpecError& e) {
    *error = format_error(file, e);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    *error = fmt::format("{}:{}: {}", file, e.mark.line + 1, e.msg);
    return std::nullopt;
  } catch (const nlohmann::json::exception& e) {
    // A docker inspect field of an unexpected type (a null Name, a numeric User).
    *error = fmt::format("{}: not docker inspect output as expected: {}", file, e.what());
    return std::nullopt;
  }
  if (collector.containers.empty()) {
    *error = no_container_error(file, collector);
    return std::nullopt;
  }
  return CurrentSpec{file, std::move(collector.containers)};
}

std::optional<CurrentSpec> load_current_spec(const std::string& path, const SpecOptions& opts,
                                             std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = fmt::format("--current {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_current_spec(ss.str(), path, opts, error);
}

std::optional<CurrentSpec> current_of_process(const ProcReader& reader, uint32_t pid,
                                              std::string* error) {
  auto p = reader.read(pid);
  if (!p) {
    *error = fmt::format("--current-pid {}: no such process (or {} is unreadable)", pid,
                         (reader.root() / std::to_string(pid) / "status").string());
    return std::nullopt;
  }
  CurrentContainer c;
  c.kind = SpecKind::Process;
  c.pid = pid;
  c.name = fmt::format("pid {} ({})", pid, p->comm);
  c.live = p->caps;
  c.run_as_user = p->euid;
  return CurrentSpec{fmt::format("pid {}", pid), {std::move(c)}};
}

// containerd's CRI plugin: ALL added, then ALL dropped, then each added name
// and last each dropped one, every name prefixed with CAP_ whatever it says
// (so CAP_X becomes CAP_CAP_X, which the OCI runtime ignores).
std::vector<int> containerd_held(const CurrentContainer& c, const std::vector<int>& all) {
  std::vector<int> held;
  if (!c.drop_all) {
    if (c.add_all)
      held = all;
    else
      held.assign(runtime_default(Runtime::Containerd).caps.begin(),
                  runtime_default(Runtime::Containerd).caps.end());
  }
  auto bare = [](const std::vector<int>& named, const std::vector<int>& prefixed) {
    std::vector<int> v;
    std::set_difference(named.begin(), named.end(), prefixed.begin(), prefixed.end(),
                        std::back_inserter(v));
    return v;
  };
  for (int cap : bare(c.add, c.add_prefixed)) insert_sorted(held, cap);
  for (int cap : bare(c.drop, c.drop_prefixed)) std::erase(held, cap);
  return held;
}

std::vector<int> held_caps(const CurrentContainer& c) {
  if (c.kind == SpecKind::Process)
    return tables::caps_in_mask(c.live.bounding | c.live.effective | c.live.permitted |
                                c.live.ambient);
  std::vector<int> all;
  for (const auto& info : tables::all_capabilities()) all.push_back(info.number);
  if (c.privileged) return all;
  if (c.kind == SpecKind::Kubernetes && c.runtime == Runtime::Containerd)
    return containerd_held(c, all);
  // The runtimes apply add ALL before drops, and drop ALL before adds.
  std::vector<int> base;
  if (c.add_all) {
    base = all;
  } else if (!c.drop_all && c.runtime) {
    auto d = runtime_default(*c.runtime).caps;
    base.assign(d.begin(), d.end());
  }
  std::vector<int> held;
  std::set_difference(base.begin(), base.end(), c.drop.begin(), c.drop.end(),
                      std::back_inserter(held));
  for (int cap : c.add) insert_sorted(held, cap);
  return held;
}

std::string describe(const CurrentContainer& c) {
  switch (c.kind) {
    case SpecKind::Kubernetes:
      return fmt::format("{}, {}container {}", c.workload, c.init ? "init " : "", c.name);
    case SpecKind::Compose:
      return "service " + c.name;
    case SpecKind::DockerInspect:
      return "container " + c.name;
    case SpecKind::Process:
      break;
  }
  return c.name;
}

bool matches(const CurrentContainer& c, std::string_view selector) {
  return c.name == selector || (!c.workload.empty() && c.workload + "/" + c.name == selector);
}

}  // namespace capscope::advice
