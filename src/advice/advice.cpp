#include "advice/advice.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

#include "enrich/file_privilege.h"
#include "tables/capabilities.h"

namespace capscope::advice {

namespace {

using profile::Profile;
using profile::UseKey;
using profile::UseStats;

// Capabilities the Pod Security Standards "baseline" profile lets a pod add
// (the container runtimes' historical defaults); "restricted" allows only
// NET_BIND_SERVICE.
constexpr int kNetBindService = 10;
constexpr int kSysAdmin = 21;
constexpr int kBaselineCaps[] = {29 /*AUDIT_WRITE*/,
                                 0 /*CHOWN*/,
                                 1 /*DAC_OVERRIDE*/,
                                 3 /*FOWNER*/,
                                 4 /*FSETID*/,
                                 5 /*KILL*/,
                                 27 /*MKNOD*/,
                                 10,
                                 31 /*SETFCAP*/,
                                 6 /*SETGID*/,
                                 8 /*SETPCAP*/,
                                 7 /*SETUID*/,
                                 18 /*SYS_CHROOT*/};

uint64_t count_of(uint64_t n) { return n; }
uint64_t count_of(const profile::BinaryUse& b) { return b.count; }

// The syscall and binary that made the most checks of a row.
template <typename M>
std::string top_of(const M& m) {
  auto it = std::max_element(m.begin(), m.end(), [](const auto& a, const auto& b) {
    return count_of(a.second) < count_of(b.second);
  });
  return it == m.end() ? std::string() : it->first;
}

std::string times(uint64_t n) { return n == 1 ? "once" : fmt::format("{} times", n); }

// "granted 3 times in fchownat by /usr/bin/chown (1:1 /tmp/f)"
std::string describe_row(const UseKey& key, const UseStats& s) {
  std::string line = fmt::format("{} {}", key.granted ? "granted" : "denied", times(s.count));
  if (std::string sc = top_of(s.syscalls); !sc.empty()) line += " in " + sc;
  if (std::string bin = top_of(s.binaries); !bin.empty()) {
    line += " by " + bin;
    if (const auto& args = s.binaries.at(bin).sample_args; !args.empty()) line += " (" + args + ")";
  }
  return line;
}

CapAdvice advise_cap(const Profile& p, int cap) {
  CapAdvice c{cap, false, {}};
  std::string granted, denied;
  for (const auto& [key, stats] : p.rows_of(cap)) {
    if (!key.audit) continue;
    (key.granted ? granted : denied) = describe_row(key, *stats);
    if (!key.granted) c.denied = true;
  }
  c.evidence = granted;
  if (!denied.empty())
    c.evidence += (granted.empty() ? "" : "; ") + denied + " (the workload tried and failed)";
  return c;
}

// A workload whose processes all ran as a non-root user.
bool ran_as_user_only(const Profile& p) { return p.held.ran_as_user && !p.held.ran_as_root; }

std::string privilege_of(const FilePrivilege& f) {
  std::vector<std::string> v;
  if (f.setuid) v.push_back(fmt::format("set-user-ID uid {}", f.owner_uid));
  if (f.setgid) v.push_back(fmt::format("set-group-ID gid {}", f.owner_gid));
  if (f.caps) v.push_back("file capabilities " + setcap_text(*f.caps));
  return fmt::format("{}", fmt::join(v, ", "));
}

Escalation escalation_of(const Profile& p, const std::vector<CapAdvice>& add) {
  Escalation e;
  for (const auto& [path, b] : p.privileged_binaries)
    if (b.raised > 0) {
      e.raised_by_exec = true;
      e.evidence = fmt::format("keep it allowed: {} raised its privileges through exec {} ({})",
                               path, times(b.raised), privilege_of(b.file));
      return e;
    }
  if (ran_as_user_only(p) && !add.empty()) {
    e.needs_file_caps = true;
    e.evidence =
        "keep it allowed where the capabilities come from file capabilities (non-root, no "
        "ambient set): no_new_privs turns them off";
    return e;
  }
  e.evidence = "safe to forbid: no process gained privileges through exec";
  for (const auto& [path, b] : p.privileged_binaries)
    if (b.held_back > 0)
      e.evidence += fmt::format("; {} ({}) already ran without them under no_new_privs", path,
                                privilege_of(b.file));
  if (std::any_of(add.begin(), add.end(), [](const CapAdvice& c) { return c.cap == kSysAdmin; }))
    e.evidence +=
        " (with SYS_ADMIN, no_new_privs is no real boundary; Kubernetes rejects "
        "allowPrivilegeEscalation: false only with add: CAP_SYS_ADMIN spelled so)";
  return e;
}

// Each binary that made a needed check, and the needed capabilities it checked.
std::map<std::string, std::vector<int>> needs_by_binary(const std::vector<CapAdvice>& add,
                                                        const Profile& p) {
  std::map<std::string, std::vector<int>> out;
  for (const auto& c : add)
    for (const auto& [key, stats] : p.rows_of(c.cap)) {
      if (!key.audit) continue;
      for (const auto& [bin, use] : stats->binaries) {
        auto& v = out[bin];
        if (std::find(v.begin(), v.end(), c.cap) == v.end()) v.push_back(c.cap);
      }
    }
  return out;
}

std::string setcap_list(const std::vector<int>& caps) {
  std::vector<std::string> names;
  names.reserve(caps.size());
  for (int cap : caps) names.push_back(tables::cap_lower_name(cap));
  return fmt::format("{}", fmt::join(names, ","));
}

// Kubernetes' runtimes and Docker give a non-root container its added
// capabilities in the bounding set only (and, before the fixes for
// CVE-2022-24769, the inheritable set); without an ambient
// set, exec as non-root clears the rest. What does work, one line each.
std::vector<std::string> non_root_plan(const std::vector<CapAdvice>& add, const Profile& p) {
  if (!ran_as_user_only(p) || add.empty()) return {};
  std::vector<std::string> plan = {
      "it ran as a non-root user: Kubernetes and Docker leave added capabilities in the "
      "bounding set only (they set no ambient capabilities), so the process gets them only "
      "from file capabilities on its binary, set in the image, with allowPrivilegeEscalation "
      "left true:"};
  for (const auto& [bin, caps] : needs_by_binary(add, p)) {
    auto known = p.privileged_binaries.find(bin);
    if (known != p.privileged_binaries.end() && known->second.file.caps &&
        (tables::mask_of(caps) & ~known->second.file.caps->permitted) == 0)
      plan.push_back(
          fmt::format("  {} already carries {}", bin, setcap_text(*known->second.file.caps)));
    else
      plan.push_back(fmt::format("  setcap {}+ep {}", setcap_list(caps), bin));
  }
  if (add.size() == 1 && add[0].cap == kNetBindService)
    plan.emplace_back(
        "or, with no capability at all: the pod sysctl net.ipv4.ip_unprivileged_port_start set "
        "to the lowest port it binds");
  plan.emplace_back(
      "Podman makes added capabilities ambient for a non-root user, and systemd does with "
      "AmbientCapabilities=: there no file capabilities are needed");
  return plan;
}

std::vector<std::string> short_names(const Advice& a) {
  std::vector<int> caps;
  caps.reserve(a.add.size());
  for (const auto& c : a.add) caps.push_back(c.cap);
  return tables::cap_short_names(caps);
}

std::string header(const Advice& a, const Profile& p) {
  std::string h =
      fmt::format("capscope advice for \"{}\": {} run{}, {:.1f}s recorded", a.profile, p.runs,
                  p.runs == 1 ? "" : "s", static_cast<double>(p.recorded_ns) / 1e9);
  return a.verified.empty() ? h : h + "; " + a.verified;
}

std::string render_k8s(const Advice& a, const Profile& p) {
  std::string out = "# " + header(a, p) + "\n";
  for (const auto& c : a.add)
    out += fmt::format("# {}: {}\n", tables::cap_short_name(c.cap), c.evidence);
  if (!a.probes.empty()) {
    std::vector<std::string> names;
    for (int cap : a.probes) names.push_back(tables::cap_short_name(cap));
    out += fmt::format("# probed only (no-audit checks, not needed): {}\n", fmt::join(names, ", "));
  }
  for (const auto& w : a.warnings) out += "# warning: " + w + "\n";
  out += "# allowPrivilegeEscalation: " + a.escalation.evidence + "\n";
  for (const auto& line : a.non_root_plan) out += "# " + line + "\n";
  return out + security_context_yaml(a, "");
}

std::string render_compose(const Advice& a, const Profile& p) {
  std::string out = "# " + header(a, p) + "\n";
  for (const auto& c : a.add)
    out += fmt::format("# {}: {}\n", tables::cap_short_name(c.cap), c.evidence);
  out += fmt::format("services:\n  {}:\n    cap_drop:\n      - ALL\n", a.profile);
  if (!a.add.empty()) {
    out += "    cap_add:\n";
    for (const auto& n : short_names(a)) out += "      - " + n + "\n";
  }
  if (a.escalation.can_forbid()) out += "    security_opt:\n      - no-new-privileges:true\n";
  return out;
}

// systemd keeps a capability for a root service through the bounding set; a
// service that runs as another user also needs it ambient to have it at all.
std::string render_systemd(const Advice& a, const Profile& p) {
  std::vector<std::string> names;
  names.reserve(a.add.size());
  for (const auto& c : a.add) names.push_back(tables::cap_name(c.cap));
  std::string caps = fmt::format("{}", fmt::join(names, " "));
  std::string out = "# " + header(a, p) + "\n[Service]\n";
  out += "CapabilityBoundingSet=" + caps + "\n";
  if (!names.empty() && p.held.ran_as_user)
    out += "AmbientCapabilities=" + caps + "\n";
  else if (!names.empty())
    out += "# it ran as root; with User= set, add AmbientCapabilities=" + caps + "\n";
  // Ambient capabilities survive no_new_privs: only a raising exec needs it off.
  if (!a.escalation.raised_by_exec) out += "NoNewPrivileges=yes\n";
  return out;
}

// setcap lines for each binary that made a needed check: the capabilities it
// needed, permitted and effective, for running it as a non-root user.
std::string render_setcap(const Advice& a, const Profile& p) {
  auto per_binary = needs_by_binary(a.add, p);
  std::string out = "# " + header(a, p) + "\n";
  if (per_binary.empty()) out += "# no binary needs a capability\n";
  for (const auto& [bin, caps] : per_binary)
    out += fmt::format("setcap {}+ep {}\n", setcap_list(caps), bin);
  return out;
}

std::string render_docker(const Advice& a) {
  std::string out = "--cap-drop=ALL";
  for (const auto& n : short_names(a)) out += " --cap-add=" + n;
  if (a.escalation.can_forbid()) out += " --security-opt=no-new-privileges";
  return out + "\n";
}

const char* pss_name(PssLevel l) {
  switch (l) {
    case PssLevel::Restricted:
      return "restricted";
    case PssLevel::Baseline:
      return "baseline";
    case PssLevel::Privileged:
      break;
  }
  return "privileged";
}

std::string render_json(const Advice& a, const Profile& p) {
  nlohmann::ordered_json j;
  j["profile"] = a.profile;
  j["runs"] = p.runs;
  j["drop"] = {"ALL"};
  j["add"] = short_names(a);
  nlohmann::ordered_json evidence = nlohmann::ordered_json::object();
  for (const auto& c : a.add)
    evidence[tables::cap_short_name(c.cap)] = {{"denied", c.denied}, {"evidence", c.evidence}};
  j["evidence"] = evidence;
  std::vector<std::string> probes;
  for (int cap : a.probes) probes.push_back(tables::cap_short_name(cap));
  j["probes"] = probes;
  j["pod_security_standard"] = pss_name(a.pss);
  j["allow_privilege_escalation"] = !a.escalation.can_forbid();
  j["privilege_escalation"] = a.escalation.evidence;
  j["non_root_plan"] = a.non_root_plan;
  if (!a.verified.empty()) j["verified"] = a.verified;
  j["warnings"] = a.warnings;
  return j.dump(2) + "\n";
}

std::string render_text(const Advice& a, const Profile& p) {
  std::string out = header(a, p) + "\n";
  if (a.add.empty()) out += "  needs no capabilities: drop them all\n";
  for (const auto& c : a.add)
    out += fmt::format("  {:<20} {}\n", tables::cap_name(c.cap), c.evidence);
  for (int cap : a.probes)
    out += fmt::format("  {:<20} probed only (no-audit): not needed\n", tables::cap_name(cap));
  for (const auto& w : a.warnings) out += "  warning: " + w + "\n";
  out += "  privilege escalation: " + a.escalation.evidence + "\n";
  for (const auto& line : a.non_root_plan) out += "  " + line + "\n";
  out += "  docker/podman: " + render_docker(a);
  return out;
}

}  // namespace

PssLevel pss_level_for(const std::vector<int>& caps) {
  PssLevel level = PssLevel::Restricted;
  for (int cap : caps) {
    if (cap == kNetBindService) continue;
    bool baseline = std::find(std::begin(kBaselineCaps), std::end(kBaselineCaps), cap) !=
                    std::end(kBaselineCaps);
    level = std::max(level, baseline ? PssLevel::Baseline : PssLevel::Privileged);
  }
  return level;
}

Advice advise(const Profile& p) {
  Advice a;
  a.profile = p.name;
  for (int cap : p.needed()) a.add.push_back(advise_cap(p, cap));
  a.probes = p.probes_only();
  a.pss = pss_level_for(p.needed());
  a.escalation = escalation_of(p, a.add);
  a.non_root_plan = non_root_plan(a.add, p);
  if (!a.escalation.can_forbid()) {
    // "restricted" also requires allowPrivilegeEscalation: false.
    if (a.pss == PssLevel::Restricted)
      a.warnings.emplace_back(
          "the Pod Security Standards \"restricted\" profile requires allowPrivilegeEscalation: "
          "false, which this workload cannot have: it needs \"baseline\"");
    a.pss = std::max(a.pss, PssLevel::Baseline);
  }
  if (a.pss != PssLevel::Restricted)
    a.warnings.push_back(fmt::format(
        "the Pod Security Standards \"restricted\" profile allows adding only NET_BIND_SERVICE; "
        "this set needs \"{}\"",
        pss_name(a.pss)));
  return a;
}

bool parse_format(const std::string& s, Format* out) {
  static const std::map<std::string, Format, std::less<>> kNames = {
      {"text", Format::Text},       {"k8s", Format::K8s},       {"kubernetes", Format::K8s},
      {"docker", Format::Docker},   {"podman", Format::Docker}, {"compose", Format::Compose},
      {"systemd", Format::Systemd}, {"setcap", Format::Setcap}, {"json", Format::Json}};
  auto it = kNames.find(s);
  if (it == kNames.end()) return false;
  *out = it->second;
  return true;
}

std::string render(const Advice& a, const Profile& p, Format f) {
  switch (f) {
    case Format::K8s:
      return render_k8s(a, p);
    case Format::Docker:
      return render_docker(a);
    case Format::Compose:
      return render_compose(a, p);
    case Format::Systemd:
      return render_systemd(a, p);
    case Format::Setcap:
      return render_setcap(a, p);
    case Format::Json:
      return render_json(a, p);
    case Format::Text:
      break;
  }
  return render_text(a, p);
}

std::string security_context_yaml(const Advice& a, const std::string& indent) {
  std::string out = fmt::format("{0}securityContext:\n{0}  allowPrivilegeEscalation: {1}\n", indent,
                                a.escalation.can_forbid() ? "false" : "true");
  out += fmt::format("{0}  capabilities:\n{0}    drop:\n{0}      - ALL\n", indent);
  if (a.add.empty()) return out;
  out += indent + "    add:\n";
  for (const auto& name : short_names(a)) out += fmt::format("{}      - {}\n", indent, name);
  return out;
}

}  // namespace capscope::advice
