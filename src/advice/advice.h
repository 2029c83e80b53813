// Least-privilege advice from a profile: which capabilities to add to a
// drop-ALL security context, with the evidence for each, in the forms users
// paste (Kubernetes securityContext, docker/podman flags, JSON, a text report).
#pragma once

#include <string>
#include <vector>

#include "profile/profile.h"

namespace capscope::advice {

struct CapAdvice {
  int cap = 0;
  bool denied = false;   // the workload tried and was refused (at least once)
  std::string evidence;  // one line: counts, syscall, binary
};

// Pod Security Standards levels a set of added capabilities fits.
enum class PssLevel { Restricted, Baseline, Privileged };

// Whether the workload can run with no_new_privs (Kubernetes'
// allowPrivilegeEscalation: false, docker's no-new-privileges), which stops
// set-user-ID, set-group-ID and file capabilities from raising anything at exec.
struct Escalation {
  bool raised_by_exec = false;   // a binary's set-ID bits or file capabilities raised privileges
  bool needs_file_caps = false;  // non-root without ambient capabilities: only file caps work
  std::string evidence;          // one line
  [[nodiscard]] bool can_forbid() const { return !raised_by_exec && !needs_file_caps; }
};

struct Advice {
  std::string profile;
  std::vector<CapAdvice> add;  // needed: audited checks, ascending by number
  std::vector<int> probes;     // no-audit only: listed, never added
  PssLevel pss = PssLevel::Restricted;
  Escalation escalation;
  // It ran as a non-root user and needs capabilities: how they can reach it,
  // one line each (a runtime's add list alone does not do it).
  std::vector<std::string> non_root_plan;
  std::vector<std::string> warnings;
  // Set by record --verify: what confined runs showed, one line (empty: not verified).
  std::string verified;
};

Advice advise(const profile::Profile& p);

// The lowest Pod Security Standards level that allows adding these capabilities.
PssLevel pss_level_for(const std::vector<int>& caps);

enum class Format { Text, K8s, Docker, Compose, Systemd, Setcap, Json };
// "text", "k8s" (also "kubernetes"), "docker" (also "podman"), "compose",
// "systemd", "setcap", "json".
bool parse_format(const std::string& s, Format* out);

std::string render(const Advice& a, const profile::Profile& p, Format f);

// The `securityContext:` block of a container (drop ALL, add what is needed,
// allowPrivilegeEscalation), each line prefixed with `indent`.
std::string security_context_yaml(const Advice& a, const std::string& indent);

}  // namespace capscope::advice
