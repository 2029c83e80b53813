#include "enrich/cgroup_path.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <optional>
#include <vector>

namespace capscope {

namespace {

using Parts = std::vector<std::string_view>;

Parts split_path(std::string_view path) {
  Parts parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t end = s.find(sep, pos);
    out.push_back(s.substr(pos, end == std::string_view::npos ? s.npos : end - pos));
    if (end == std::string_view::npos) return out;
    pos = end + 1;
  }
}

bool is_systemd_unit(std::string_view c) {
  return c.ends_with(".slice") || c.ends_with(".scope") || c.ends_with(".service");
}

// A pod uid as the kubelet writes it: a UUID, or a hash for static pods;
// systemd slices carry it with '_' for '-'.
bool is_pod_uid(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

struct PodInfo {
  std::string uid;
  std::string qos;
};

bool is_qos(std::string_view s) { return s == "burstable" || s == "besteffort"; }

// cgroupfs driver: /kubepods[/burstable|/besteffort]/pod<uid>; no QoS level
// means guaranteed.
std::optional<PodInfo> cgroupfs_pod(const Parts& parts, size_t i) {
  std::string_view c = parts[i];
  if (!c.starts_with("pod") || !is_pod_uid(c.substr(3)) || i == 0) return std::nullopt;
  std::string_view parent = parts[i - 1];
  if (parent == "kubepods") return PodInfo{std::string(c.substr(3)), "guaranteed"};
  if (is_qos(parent) && i >= 2 && parts[i - 2] == "kubepods")
    return PodInfo{std::string(c.substr(3)), std::string(parent)};
  return std::nullopt;
}

// systemd driver: [kubelet-]kubepods[-burstable|-besteffort]-pod<uid_>.slice.
std::optional<PodInfo> systemd_pod(std::string_view c) {
  if (!c.ends_with(".slice")) return std::nullopt;
  c.remove_suffix(6);
  auto tokens = split(c, '-');
  auto kube = std::find(tokens.begin(), tokens.end(), "kubepods");
  if (kube == tokens.end()) return std::nullopt;
  size_t k = static_cast<size_t>(kube - tokens.begin());
  std::string_view last = tokens.back();
  if (!last.starts_with("pod") || !is_pod_uid(last.substr(3))) return std::nullopt;
  std::string qos;
  if (tokens.size() == k + 2) {
    qos = "guaranteed";
  } else if (tokens.size() == k + 3 && is_qos(tokens[k + 1])) {
    qos = tokens[k + 1];
  } else {
    return std::nullopt;
  }
  std::string uid(last.substr(3));
  std::replace(uid.begin(), uid.end(), '_', '-');
  return PodInfo{std::move(uid), std::move(qos)};
}

std::optional<PodInfo> pod_at(const Parts& parts, size_t i) {
  if (auto p = cgroupfs_pod(parts, i)) return p;
  return systemd_pod(parts[i]);
}

// "<prefix><id>" or "<prefix><id>.scope".
std::optional<std::string_view> prefixed_id(std::string_view c, std::string_view prefix) {
  if (!c.starts_with(prefix)) return std::nullopt;
  c.remove_prefix(prefix.size());
  if (c.ends_with(".scope")) c.remove_suffix(6);
  if (!is_container_id(c)) return std::nullopt;
  return c;
}

struct PrefixRule {
  std::string_view prefix;
  std::string_view runtime;
  CgroupKind kind;
};

constexpr std::array<PrefixRule, 6> kPrefixRules{{
    {"cri-containerd-", "containerd", CgroupKind::Container},
    {"docker-", "docker", CgroupKind::Container},
    {"crio-conmon-", "cri-o", CgroupKind::Monitor},
    {"crio-", "cri-o", CgroupKind::Container},
    {"libpod-conmon-", "podman", CgroupKind::Monitor},
    {"libpod-", "podman", CgroupKind::Container},
}};

CgroupMatch make_match(CgroupKind kind, std::string_view runtime, std::string_view id) {
  CgroupMatch m;
  m.kind = kind;
  m.ref.runtime = runtime;
  m.ref.id = id;
  return m;
}

// A bare <id> names a container only where a runtime puts it that way.
std::optional<CgroupMatch> bare_id(const Parts& parts, size_t i) {
  if (!is_container_id(parts[i]) || i == 0) return std::nullopt;
  std::string_view parent = parts[i - 1];
  if (parent == "docker" || parent == "actions_job")
    return make_match(CgroupKind::Container, "docker", parts[i]);
  if (pod_at(parts, i - 1)) return make_match(CgroupKind::Container, "containerd", parts[i]);
  // /libpod_parent/<id> is a podman pod's cgroup, not a container's.
  if (i == 1 && parent != "libpod_parent" && parent != "kubepods" && !is_systemd_unit(parent))
    return make_match(CgroupKind::Container, "containerd", parts[i]);  // /<namespace>/<id>
  return std::nullopt;
}

std::optional<CgroupMatch> lxc_component(const Parts& parts, size_t i) {
  std::string_view c = parts[i];
  if (c.starts_with("lxc.payload.") && c.size() > 12)
    return make_match(CgroupKind::Container, "lxc", c.substr(12));
  if (c.starts_with("lxc.monitor.") && c.size() > 12)
    return make_match(CgroupKind::Monitor, "lxc", c.substr(12));
  if (i == 1 && parts[0] == "lxc") return make_match(CgroupKind::Container, "lxc", c);
  return std::nullopt;
}

// podman's cgroupfs manager puts every conmon in <parent>/conmon, without an id.
bool is_podman_conmon(const Parts& parts, size_t i) {
  if (parts[i] != "conmon") return false;
  auto end = parts.begin() + static_cast<std::ptrdiff_t>(i);
  return std::find(parts.begin(), end, "libpod_parent") != end;
}

std::optional<CgroupMatch> match_component(const Parts& parts, size_t i) {
  for (const auto& rule : kPrefixRules)
    if (auto id = prefixed_id(parts[i], rule.prefix))
      return make_match(rule.kind, rule.runtime, *id);
  if (auto m = bare_id(parts, i)) return m;
  if (auto m = lxc_component(parts, i)) return m;
  if (is_podman_conmon(parts, i)) return make_match(CgroupKind::Monitor, "podman", "");
  return std::nullopt;
}

void attach_pod(const Parts& parts, size_t container_index, ContainerRef& ref) {
  for (size_t j = container_index; j-- > 0;) {
    if (auto pod = pod_at(parts, j)) {
      ref.pod_uid = std::move(pod->uid);
      ref.qos = std::move(pod->qos);
      return;
    }
  }
}

struct CgroupLine {
  std::string_view controllers;
  std::string_view path;
  bool v2 = false;
};

std::string_view trim_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  // A cgroup removed while the process still sits in it (a zombie, say).
  constexpr std::string_view kDeleted = " (deleted)";
  if (line.ends_with(kDeleted)) line.remove_suffix(kDeleted.size());
  return line;
}

std::vector<CgroupLine> parse_cgroup_file(std::string_view text) {
  std::vector<CgroupLine> lines;
  for (std::string_view line : split(text, '\n')) {
    line = trim_line(line);
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    CgroupLine l;
    l.controllers = line.substr(c1 + 1, c2 - c1 - 1);
    l.path = line.substr(c2 + 1);  // a path may itself contain ':'
    l.v2 = line.substr(0, c1) == "0" && l.controllers.empty();
    if (!l.path.empty()) lines.push_back(l);
  }
  return lines;
}

bool has_controller(const CgroupLine& l, std::string_view name) {
  auto list = split(l.controllers, ',');
  return std::find(list.begin(), list.end(), name) != list.end();
}

const CgroupLine* first_v1_of_kind(const std::vector<CgroupLine>& lines, CgroupKind kind) {
  auto fits = [kind](const CgroupLine& l) { return !l.v2 && classify_cgroup(l.path).kind == kind; };
  for (std::string_view pref : {"name=systemd", "pids", "memory", "cpu"})
    for (const auto& l : lines)
      if (has_controller(l, pref) && fits(l)) return &l;
  for (const auto& l : lines)
    if (fits(l)) return &l;
  return nullptr;
}

}  // namespace

std::vector<std::string> container_cgroup_names(std::string_view id) {
  std::string i(id);
  return {"libpod-" + i,
          "libpod-" + i + ".scope",
          i,
          "docker-" + i + ".scope",
          "cri-containerd-" + i + ".scope",
          "crio-" + i,
          "crio-" + i + ".scope"};
}

bool is_container_id(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

CgroupMatch classify_cgroup(std::string_view cgroup_path) {
  Parts parts = split_path(cgroup_path);
  for (size_t i = parts.size(); i-- > 0;) {
    if (auto m = match_component(parts, i)) {
      attach_pod(parts, i, m->ref);
      return *m;
    }
  }
  return {};
}

ContainerRef parse_container_cgroup(std::string_view cgroup_path) {
  CgroupMatch m = classify_cgroup(cgroup_path);
  if (m.kind != CgroupKind::Container) return {};
  return std::move(m.ref);
}

std::string select_cgroup_path(std::string_view proc_pid_cgroup) {
  auto lines = parse_cgroup_file(proc_pid_cgroup);
  if (lines.empty()) return "";
  auto v2 = std::find_if(lines.begin(), lines.end(), [](const CgroupLine& l) { return l.v2; });
  if (v2 != lines.end() && classify_cgroup(v2->path).kind == CgroupKind::Container)
    return std::string(v2->path);
  if (const auto* l = first_v1_of_kind(lines, CgroupKind::Container)) return std::string(l->path);
  // A monitor's path says what it is even without a container to attribute to.
  if (v2 != lines.end() && classify_cgroup(v2->path).kind == CgroupKind::Monitor)
    return std::string(v2->path);
  if (const auto* l = first_v1_of_kind(lines, CgroupKind::Monitor)) return std::string(l->path);
  if (v2 != lines.end()) return std::string(v2->path);
  return std::string(lines.front().path);
}

}  // namespace capscope
