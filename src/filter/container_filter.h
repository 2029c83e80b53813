// Which containers a trace or a recording is about, by identity: Kubernetes
// namespace, pod, container name or id, and a label selector. Identity comes
// from the runtimes, so a check of a container the resolver has not named yet
// cannot be decided: decide() says Wait, and the pipeline holds the check back
// until the answer arrives (or gives up on it and counts it).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "filter/label_selector.h"
#include "model/container.h"
#include "model/process.h"

namespace capscope::filter {

struct ContainerSelection {
  std::vector<std::string> namespaces;    // --namespace NS
  std::vector<std::string> pods;          // --pod NAME or NS/NAME
  std::vector<std::string> containers;    // --container NAME, or an id or id prefix
  std::optional<LabelSelector> selector;  // pod labels (container labels outside a pod)
  [[nodiscard]] bool any() const {
    return !namespaces.empty() || !pods.empty() || !containers.empty() || selector.has_value();
  }
  // One line, for reports: "namespace default, pod xwing, selector app=x".
  [[nodiscard]] std::string describe() const;
};

enum class Decision { Keep, Drop, Wait };

class ContainerFilter {
 public:
  explicit ContainerFilter(ContainerSelection sel) : sel_(std::move(sel)) {}
  [[nodiscard]] bool active() const { return sel_.any(); }
  // `ref` from the cgroup path; `info` from the runtime, null when not (yet) known.
  [[nodiscard]] Decision decide(const ContainerRef& ref, const ContainerInfo* info) const;
  // The same, for a container the runtime has described (e.g. from a listing).
  [[nodiscard]] bool matches(const ContainerInfo& info) const;

 private:
  ContainerSelection sel_;
};

}  // namespace capscope::filter
