#include "advice/advice.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

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

std::string k8s_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += "      - " + n + "\n";
  return out;
}

std::vector<std::string> short_names(const Advice& a) {
  std::vector<std::string> v;
  for (const auto& c : a.add) v.push_back(tables::cap_short_name(c.cap));
  return v;
}

std::string header(const Advice& a, const Profile& p) {
  return fmt::format("capscope advice for \"{}\": {} run{}, {:.1f}s recorded", a.profile, p.runs,
                     p.runs == 1 ? "" : "s", static_cast<double>(p.recorded_ns) / 1e9);
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
  out += "securityContext:\n  capabilities:\n    drop:\n      - ALL\n";
  if (!a.add.empty()) out += "    add:\n" + k8s_list(short_names(a));
  return out;
}

std::string render_docker(const Advice& a) {
  std::string out = "--cap-drop=ALL";
  for (const auto& n : short_names(a)) out += " --cap-add=" + n;
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
  if (a.pss != PssLevel::Restricted)
    a.warnings.push_back(fmt::format(
        "the Pod Security Standards \"restricted\" profile allows adding only NET_BIND_SERVICE; "
        "this set needs \"{}\"",
        pss_name(a.pss)));
  return a;
}

bool parse_format(const std::string& s, Format* out) {
  if (s == "text")
    *out = Format::Text;
  else if (s == "k8s" || s == "kubernetes")
    *out = Format::K8s;
  else if (s == "docker" || s == "podman")
    *out = Format::Docker;
  else if (s == "json")
    *out = Format::Json;
  else
    return false;
  return true;
}

std::string render(const Advice& a, const Profile& p, Format f) {
  switch (f) {
    case Format::K8s:
      return render_k8s(a, p);
    case Format::Docker:
      return render_docker(a);
    case Format::Json:
      return render_json(a, p);
    case Format::Text:
      break;
  }
  return render_text(a, p);
}

}  // namespace capscope::advice
