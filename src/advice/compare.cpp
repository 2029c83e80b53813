#include "advice/compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <nlohmann/json.hpp>

#include "tables/capabilities.h"

namespace capscope::advice {

namespace {

using profile::Profile;
using profile::UseKey;
using profile::UseStats;

bool contains(const std::vector<int>& sorted, int cap) {
  return std::binary_search(sorted.begin(), sorted.end(), cap);
}

std::string times(uint64_t n) { return n == 1 ? "once" : fmt::format("{} times", n); }

template <typename M, typename Count>
std::string top_of(const M& m, Count count) {
  auto it = std::max_element(m.begin(), m.end(), [&](const auto& a, const auto& b) {
    return count(a.second) < count(b.second);
  });
  return it == m.end() ? std::string() : it->first;
}

// "denied 2 times: setpriority by /usr/bin/nice"
std::string row_evidence(const UseKey& key, const UseStats& s) {
  std::string line = fmt::format("{} {}", key.granted ? "used" : "denied", times(s.count));
  std::string syscall = top_of(s.syscalls, [](uint64_t n) { return n; });
  std::string binary = top_of(s.binaries, [](const profile::BinaryUse& b) { return b.count; });
  if (!syscall.empty() || !binary.empty()) line += ":";
  if (!syscall.empty()) line += " " + syscall;
  if (!binary.empty()) line += " by " + binary;
  return line;
}

// The audited rows of a needed capability, denials first: they are why it is missing.
std::string need_evidence(const Profile& p, int cap) {
  std::vector<std::string> parts;
  for (bool granted : {false, true})
    for (const auto& [key, stats] : p.rows_of(cap))
      if (key.audit && key.granted == granted) parts.push_back(row_evidence(key, *stats));
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::string grant_source(const CurrentContainer& c, int cap) {
  if (c.kind == SpecKind::Process)
    return (c.live.effective >> cap) & 1U ? fmt::format("effective in pid {}", c.pid)
                                          : fmt::format("in the bounding set of pid {}", c.pid);
  if (c.privileged) return "granted by privileged: true";
  if (contains(c.add, cap)) return "added in the spec";
  if (c.add_all) return "granted by add: [ALL]";
  return fmt::format("granted by the {} default", runtime_name(*c.runtime));
}

std::vector<int> needs_of(const Advice& a) {
  std::vector<int> v;
  for (const auto& c : a.add) v.push_back(c.cap);
  return v;
}

void add_drops(Comparison& out, const Advice& a, const std::vector<int>& needs) {
  for (int cap : out.held) {
    if (contains(needs, cap)) continue;
    bool probed = std::find(a.probes.begin(), a.probes.end(), cap) != a.probes.end();
    out.lines.push_back({Action::Drop, cap,
                         grant_source(out.container, cap) +
                             (probed ? ", probed only, never needed" : ", never used")});
  }
}

void add_needs(Comparison& out, const Profile& p, const std::vector<int>& needs) {
  std::vector<CompareLine> keeps;
  for (int cap : needs) {
    std::string why = need_evidence(p, cap);
    if (!contains(out.held, cap)) {
      out.lines.push_back({Action::Add, cap, why});
      continue;
    }
    const CurrentContainer& c = out.container;
    if (c.kind == SpecKind::Process && !((c.live.effective >> cap) & 1U))
      why += "; in the bounding set, not effective";
    keeps.push_back({Action::Keep, cap, why});
  }
  out.lines.insert(out.lines.end(), keeps.begin(), keeps.end());
}

bool runs_as_non_root(const CurrentContainer& c) {
  if (c.run_as_user) return *c.run_as_user != 0;
  if (c.run_as_non_root.value_or(false)) return true;
  return !c.user.empty() && c.user != "0" && c.user != "root" && !c.user.starts_with("0:") &&
         !c.user.starts_with("root:");
}

void add_warnings(Comparison& out, const Advice& a) {
  const CurrentContainer& c = out.container;
  if (c.privileged)
    out.warnings.emplace_back(
        "privileged: every capability (and every device, no seccomp or AppArmor confinement); "
        "it defeats this advice: remove it and use the capabilities below");
  if (c.add_all)
    out.warnings.emplace_back("add: [ALL] grants every capability; replace it with the list below");
  if (c.kind == SpecKind::Kubernetes && c.runtime == Runtime::Containerd &&
      !(c.add_prefixed.empty() && c.drop_prefixed.empty()))
    out.warnings.emplace_back(
        "containerd puts CAP_ before every name itself, so names written with CAP_ (CAP_X becomes "
        "CAP_CAP_X) are ignored there: write them without it, as below");
  if (c.kind != SpecKind::Process && runs_as_non_root(c) && !out.recommended.empty() &&
      c.runtime != Runtime::Podman)
    out.warnings.emplace_back(
        "it runs as a non-root user: added capabilities reach only its bounding set (the runtime "
        "sets no ambient capabilities), so its program gets them only from file capabilities "
        "(capscope advise NAME -f setcap)");
  if (c.kind == SpecKind::Process)
    out.warnings.emplace_back(
        "a running process's bounding set cannot be changed from outside: restart it under the "
        "setpriv line below");
  if (c.kind == SpecKind::Kubernetes)
    out.warnings.insert(out.warnings.end(), a.warnings.begin(), a.warnings.end());
}

std::string yaml_list(const std::vector<std::string>& items, const std::string& indent) {
  std::string out;
  for (const auto& item : items) out.append(indent).append("- ").append(item).append("\n");
  return out;
}

std::string k8s_form(const Comparison& c) {
  std::string out = "securityContext:\n";
  if (c.container.privileged) out += "  privileged: false\n";
  out +=
      fmt::format("  allowPrivilegeEscalation: {}\n", c.escalation.can_forbid() ? "false" : "true");
  out += "  capabilities:\n    drop:\n      - ALL\n";
  if (!c.recommended.empty())
    out += "    add:\n" + yaml_list(tables::cap_short_names(c.recommended), "      ");
  return out;
}

std::string compose_form(const Comparison& c) {
  std::string out = fmt::format("services:\n  {}:\n", c.container.name);
  if (c.container.privileged) out += "    privileged: false\n";
  out += "    cap_drop:\n      - ALL\n";
  if (!c.recommended.empty())
    out += "    cap_add:\n" + yaml_list(tables::cap_short_names(c.recommended), "      ");
  if (c.escalation.can_forbid()) out += "    security_opt:\n      - no-new-privileges:true\n";
  return out;
}

std::string docker_form(const Comparison& c) {
  std::string out = "--cap-drop=ALL";
  for (const auto& n : tables::cap_short_names(c.recommended)) out += " --cap-add=" + n;
  if (c.escalation.can_forbid()) out += " --security-opt=no-new-privileges";
  if (c.container.privileged) out += "  (and without --privileged)";
  return out + "\n";
}

// setpriv(1) names capabilities without cap_, in lower case.
std::string setpriv_form(const Comparison& c) {
  std::string set = "-all";
  for (int cap : c.recommended) set += ",+" + tables::cap_lower_name(cap).substr(4);
  return fmt::format("setpriv --bounding-set {} -- COMMAND...\n", set);
}

const char* action_name(Action a) {
  switch (a) {
    case Action::Add:
      return "add";
    case Action::Keep:
      return "keep";
    case Action::Drop:
      break;
  }
  return "drop";
}

const char* kind_name(SpecKind k) {
  switch (k) {
    case SpecKind::Kubernetes:
      return "kubernetes";
    case SpecKind::Compose:
      return "compose";
    case SpecKind::DockerInspect:
      return "docker-inspect";
    case SpecKind::Process:
      break;
  }
  return "process";
}

std::string runtime_text(const CurrentContainer& c) {
  if (!c.runtime) return "";
  return fmt::format("; runtime {}{}", runtime_name(*c.runtime),
                     c.runtime_assumed ? ", assumed: --runtime to change" : "");
}

std::string location(const CurrentContainer& c, const CurrentSpec& spec) {
  return c.line > 0 ? fmt::format("{}:{}", spec.file, c.line) : spec.file;
}

std::string today_text(const Comparison& c) {
  if (c.container.privileged) return "every capability (privileged)";
  if (c.held.empty()) return "no capabilities";
  return fmt::format("{}", fmt::join(tables::cap_short_names(c.held), ", "));
}

std::string default_text(const Comparison& c) {
  const CurrentContainer& ct = c.container;
  if (!ct.runtime) return "";
  const RuntimeDefault& d = runtime_default(*ct.runtime);
  std::vector<int> caps(d.caps.begin(), d.caps.end());
  std::string out =
      fmt::format("  the {} default made explicit: {} ({} capabilities, {})\n", d.name,
                  fmt::join(tables::cap_short_names(caps), ", "), caps.size(), d.source);
  if (!c.default_removed.empty())
    out += fmt::format("  drop ALL removes from it: {}\n",
                       fmt::join(tables::cap_short_names(c.default_removed), ", "));
  return out;
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out += prefix + text.substr(pos, end - pos) + "\n";
    pos = end + 1;
  }
  return out;
}

// "allowPrivilegeEscalation: today true (unset); set it false (safe to forbid: ...)", or
// docker's and compose's no-new-privileges.
std::string escalation_text(const Comparison& c) {
  if (c.container.kind != SpecKind::Kubernetes)
    return fmt::format("no-new-privileges: {} ({})",
                       c.escalation.can_forbid() ? "turn it on" : "leave it off",
                       c.escalation.evidence);
  const auto& today = c.container.allow_privilege_escalation;
  std::string now = today ? (*today ? "true" : "false") : "true (unset)";
  bool forbid = c.escalation.can_forbid();
  std::string verb = (today && *today == !forbid) ? "keep it" : "set it";
  return fmt::format("allowPrivilegeEscalation: today {}; {} {} ({})", now, verb,
                     forbid ? "false" : "true", c.escalation.evidence);
}

std::string render_one_text(const Comparison& c, const CurrentSpec& spec) {
  // A process is named by its pid already; a container also by where it is declared.
  std::string out = c.container.kind == SpecKind::Process
                        ? describe(c.container) + "\n"
                        : fmt::format("{} ({}{})\n", describe(c.container),
                                      location(c.container, spec), runtime_text(c.container));
  out += "  today: " + today_text(c) + "\n";
  for (const auto& l : c.lines) out += "  " + line_text(l) + "\n";
  if (c.lines.empty()) out += "  needs no capability and holds none: nothing to change\n";
  if (c.container.kind != SpecKind::Process) out += "  " + escalation_text(c) + "\n";
  for (const auto& w : c.warnings) out += "  warning: " + w + "\n";
  out += default_text(c);
  out += "  recommended:\n" + indent(recommended_form(c), "    ");
  return out;
}

std::string header(const CurrentSpec& spec, const Advice& a, const Profile& p) {
  std::string out = fmt::format(
      "capscope advice for \"{}\" against {}: {} run{}, {:.1f}s recorded\n", a.profile, spec.file,
      p.runs, p.runs == 1 ? "" : "s", static_cast<double>(p.recorded_ns) / 1e9);
  return out;
}

nlohmann::ordered_json lines_json(const Comparison& c, Action which) {
  nlohmann::ordered_json v = nlohmann::ordered_json::array();
  for (const auto& l : c.lines)
    if (l.action == which)
      v.push_back({{"capability", tables::cap_short_name(l.cap)}, {"why", l.why}});
  return v;
}

nlohmann::ordered_json one_json(const Comparison& c) {
  const CurrentContainer& ct = c.container;
  nlohmann::ordered_json j;
  j["container"] = describe(ct);
  j["name"] = ct.name;
  j["kind"] = kind_name(ct.kind);
  if (!ct.workload.empty()) j["workload"] = ct.workload;
  j["runtime"] = ct.runtime ? nlohmann::ordered_json(runtime_name(*ct.runtime))
                            : nlohmann::ordered_json(nullptr);
  j["runtime_assumed"] = ct.runtime_assumed;
  j["privileged"] = ct.privileged;
  j["held"] = tables::cap_short_names(c.held);
  j["drop"] = lines_json(c, Action::Drop);
  j["add"] = lines_json(c, Action::Add);
  j["keep"] = lines_json(c, Action::Keep);
  j["recommended"] = {{"drop", {"ALL"}}, {"add", tables::cap_short_names(c.recommended)}};
  j["default_removed"] = tables::cap_short_names(c.default_removed);
  j["allow_privilege_escalation"] = {
      {"today", ct.allow_privilege_escalation
                    ? nlohmann::ordered_json(*ct.allow_privilege_escalation)
                    : nlohmann::ordered_json(nullptr)},
      {"advised", !c.escalation.can_forbid()},
      {"why", c.escalation.evidence}};
  j["warnings"] = c.warnings;
  return j;
}

}  // namespace

Comparison compare(const Advice& a, const Profile& p, const CurrentContainer& c) {
  Comparison out;
  out.container = c;
  out.held = held_caps(c);
  std::vector<int> needs = needs_of(a);
  out.recommended = needs;
  out.escalation = a.escalation;
  // The spec's user decides, not the recording's: non-root here means file capabilities.
  // Recorded as a user, but this spec runs it as root: its added capabilities work as they are.
  if (c.run_as_user == 0 && out.escalation.needs_file_caps && !out.escalation.raised_by_exec) {
    out.escalation.needs_file_caps = false;
    out.escalation.evidence =
        "safe to forbid: this container runs as root, so no file capabilities are needed, and no "
        "process gained privileges through exec";
  }
  // Podman makes added capabilities ambient for a non-root user: no file capabilities there.
  if (c.kind != SpecKind::Process && runs_as_non_root(c) && !needs.empty() &&
      c.runtime != Runtime::Podman && out.escalation.can_forbid()) {
    out.escalation.needs_file_caps = true;
    out.escalation.evidence =
        "keep it allowed: this container runs as a non-root user, so its capabilities can come "
        "only from file capabilities, which no_new_privs turns off";
  }
  add_drops(out, a, needs);
  add_needs(out, p, needs);
  if (c.runtime) {
    auto d = runtime_default(*c.runtime).caps;
    std::set_difference(d.begin(), d.end(), needs.begin(), needs.end(),
                        std::back_inserter(out.default_removed));
  }
  add_warnings(out, a);
  return out;
}

std::string line_text(const CompareLine& l) {
  return fmt::format("{} {} ({})", action_name(l.action), tables::cap_name(l.cap), l.why);
}

std::string recommended_form(const Comparison& c) {
  switch (c.container.kind) {
    case SpecKind::Kubernetes:
      return k8s_form(c);
    case SpecKind::Compose:
      return compose_form(c);
    case SpecKind::DockerInspect:
      return docker_form(c);
    case SpecKind::Process:
      break;
  }
  return setpriv_form(c);
}

std::string render_comparisons(const std::vector<Comparison>& all, const CurrentSpec& spec,
                               const Advice& a, const Profile& p, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["profile"] = a.profile;
    j["current"] = spec.file;
    j["containers"] = nlohmann::ordered_json::array();
    for (const auto& c : all) j["containers"].push_back(one_json(c));
    return j.dump(2) + "\n";
  }
  std::string out = header(spec, a, p);
  if (all.size() > 1)
    out += fmt::format(
        "note: {} containers; a profile records one subject, so only the container it was "
        "recorded from compares fairly: pick it with --container NAME\n",
        all.size());
  for (const auto& c : all) out += "\n" + render_one_text(c, spec);
  return out;
}

}  // namespace capscope::advice
