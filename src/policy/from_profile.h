// A recorded profile turned into a TracingPolicy: the checks of that workload
// whose capability is not among the profile's needs (audited checks, granted
// or denied: the advice's notion) are killed (Sigkill) or reported (Post).
//
// The policy is scoped to the workload the profile was recorded from:
//  - a container profile under Kubernetes: a TracingPolicyNamespaced in its
//    namespace, podSelector on the workload (the workload.capscope.io/name
//    and /kind labels capscope gives every pod, compiled.h) and
//    containerSelector on the container's name;
//  - a container in a pod without a namespace (podman): the same, as a
//    TracingPolicy;
//  - any other container: containerSelector on its name;
//  - a profile without a container (record -- CMD): matchBinaries In the
//    binaries that made its checks.
#pragma once

#include <stdexcept>
#include <string>

#include "policy/compiled.h"
#include "profile/profile.h"

namespace capscope::policy {

struct FromProfileOptions {
  Action action = Action::Sigkill;  // Sigkill or Post
  std::string name;                 // metadata.name; empty: derived from the profile's name
  std::string rate_limit = "1m";    // Post's rateLimit; empty: none
};

// The policy's YAML text (it parses back with parse_policies). Throws
// std::invalid_argument, one line, when the profile cannot scope a policy
// (no container identity and no binary: it would apply to every process) or
// an option is wrong.
std::string policy_from_profile(const profile::Profile& p, const FromProfileOptions& o);

// A Kubernetes object name for a profile: "capscope-" and the profile's name
// in lowercase, with every other character than a-z, 0-9, '-' and '.' turned
// into '-' ("shop/web/nginx" -> "capscope-shop-web-nginx").
std::string policy_name_for(const std::string& profile_name);

}  // namespace capscope::policy
