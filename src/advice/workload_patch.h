// Advice for a whole pod or workload: one securityContext per container, in a
// strategic-merge patch that `kubectl patch --patch-file` and a kustomize
// overlay's `patches:` both accept (it names the object by apiVersion, kind,
// metadata.name and namespace, and merges the containers list by name).
#pragma once

#include <string>
#include <vector>

#include "advice/advice.h"
#include "profile/profile.h"

namespace capscope::advice {

struct ContainerAdvice {
  const profile::Profile* profile = nullptr;  // its container identity names the container
  Advice advice;
};

// Where in the object a pod template's containers are, by workload kind:
// "spec.containers" for a Pod, "spec.template.spec.containers" for a Deployment, ...
std::vector<std::string> containers_path(const std::string& kind);
// "apps/v1" for a Deployment, "batch/v1" for a Job, "v1" for a Pod.
std::string api_version_of(const std::string& kind);

// The patch for the workload the containers share (the first one's identity
// names it), with the evidence as comments.
std::string render_workload_patch(const std::vector<ContainerAdvice>& containers);

}  // namespace capscope::advice
