#include "policy/compiled.h"

namespace capscope::policy {

bool CompiledPolicy::scoped() const {
  return !k8s_namespace.empty() || pod_selector.has_value() || container_selector.has_value();
}

namespace {

Labels pod_labels_of(const ContainerInfo& c) {
  Labels labels = c.pod_labels;
  if (!c.workload.empty()) labels.emplace(kWorkloadNameLabel, c.workload);
  if (!c.workload_kind.empty()) labels.emplace(kWorkloadKindLabel, c.workload_kind);
  return labels;
}

}  // namespace

bool pod_matches(const CompiledPolicy& p, const ContainerInfo& c) {
  if (!p.k8s_namespace.empty() && c.pod_namespace != p.k8s_namespace) return false;
  if (p.pod_selector) {
    // Only pods: a container outside any pod has no pod name, id or labels.
    bool in_pod = !c.pod_name.empty() || !c.pod_id.empty() || !c.pod_labels.empty();
    if (!in_pod) return false;
    if (!p.pod_selector->matches(pod_labels_of(c))) return false;
  }
  if (p.container_selector && !p.container_selector->matches(Labels{{"name", c.name}}))
    return false;
  return true;
}

const char* action_name(Action a) {
  switch (a) {
    case Action::Post:
      return "Post";
    case Action::NoPost:
      return "NoPost";
    case Action::Sigkill:
      return "Sigkill";
  }
  return "?";
}

const char* ns_kind_name(NsKind k) {
  switch (k) {
    case NsKind::Uts:
      return "Uts";
    case NsKind::Ipc:
      return "Ipc";
    case NsKind::Mnt:
      return "Mnt";
    case NsKind::Pid:
      return "Pid";
    case NsKind::PidForChildren:
      return "PidForChildren";
    case NsKind::Net:
      return "Net";
    case NsKind::Time:
      return "Time";
    case NsKind::TimeForChildren:
      return "TimeForChildren";
    case NsKind::Cgroup:
      return "Cgroup";
    case NsKind::User:
      return "User";
  }
  return "?";
}

}  // namespace capscope::policy
