// A policy as the kernel side loads it: the contract between the policy model
// (tracing_policy.h parses the YAML, compile() below turns it into this) and
// the loader that writes it into BPF maps (src/capture) and the agent.
// Everything here is plain data: no YAML, no error positions, nothing the
// kernel side cannot act on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "filter/filter_spec.h"     // filter::RateScope
#include "filter/label_selector.h"  // LabelSelector
#include "model/container.h"        // ContainerInfo

namespace capscope::policy {

enum class Action : uint8_t { Post, NoPost, Sigkill };

// Tetragon's matchNamespaces kinds. capscope compares each to the host's
// (the agent's pid 1) namespace of that kind: "host_ns" is the only value
// understood (In host_ns / NotIn host_ns).
enum class NsKind : uint8_t {
  Uts,
  Ipc,
  Mnt,
  Pid,
  PidForChildren,
  Net,
  Time,
  TimeForChildren,
  Cgroup,
  User
};

struct NamespaceMatch {
  NsKind kind;
  bool host;  // true: In host_ns; false: NotIn host_ns
  bool operator==(const NamespaceMatch&) const = default;
};

enum class BinaryOp : uint8_t { Any, In, NotIn };

// The verdict bits of CompiledSelector::verdicts.
inline constexpr uint8_t kVerdictGranted = 1;  // cap_capable returned 0
inline constexpr uint8_t kVerdictDenied = 2;   // cap_capable returned an error (-EPERM)

// CompiledSelector::options: bit i passes checks whose opts are options_value(i), i.e.
// bit 0 of i is CAP_OPT_NOAUDIT (2) and bit 1 is CAP_OPT_INSETID (4).
inline constexpr uint8_t kAllOptions = 0xF;
constexpr uint32_t options_value(unsigned i) { return ((i & 1U) << 1) | ((i & 2U) << 1); }
// The bit of CompiledSelector::options a check takes (cs_policy_act computes the same).
constexpr unsigned options_index(bool audit, bool insetid) {
  return (audit ? 0U : 1U) | (insetid ? 2U : 0U);
}

struct CompiledSelector {
  uint64_t cap_mask = ~0ULL;  // matchArgs on the capability arg (Equal/NotEqual, names or numbers)
  uint8_t options = kAllOptions;  // matchArgs on opts, as above
  uint8_t verdicts = 3;           // bit 0 granted (return 0), bit 1 denied; from matchReturnArgs
  std::vector<NamespaceMatch> namespaces;  // all must hold
  BinaryOp binary_op = BinaryOp::Any;
  std::vector<std::string> binaries;  // exact executable paths (matchBinaries In/NotIn)
  Action action = Action::Post;       // first matchActions entry; Post when none
  uint64_t rate_limit_ns = 0;         // Post's rateLimit ("1m"), 0 none
  filter::RateScope rate_scope = filter::RateScope::Thread;  // rateLimitScope
};

struct CompiledPolicy {
  std::string name;           // metadata.name
  std::string source;         // file path or "api"
  std::string k8s_namespace;  // TracingPolicyNamespaced: only pods of this namespace
  std::optional<LabelSelector> pod_selector;        // spec.podSelector
  std::optional<LabelSelector> container_selector;  // spec.containerSelector (container name etc.)
  std::vector<CompiledSelector> selectors;          // ORed; the first that matches acts
  // True when the policy applies only to some containers (namespace or pod/container
  // selector, even an empty one): user space must tell the kernel which cgroups
  // (pod_matches below). Host processes are never in a scoped policy.
  [[nodiscard]] bool scoped() const;
};

// Whether a policy's namespace/podSelector/containerSelector take in this container.
// A podSelector (even an empty one) takes in only containers of a pod (a pod name, id
// or labels); it sees the pod's labels plus the two below, unless the pod has labels of
// those keys itself.
// A containerSelector sees one label, "name": the container's name (as Tetragon).
bool pod_matches(const CompiledPolicy& p, const ContainerInfo& c);

// The workload that owns the pod, as capscope derives it (ContainerInfo::workload,
// workload_kind): Kubernetes puts no such label on pods, and `policy from-profile`
// needs to select one workload's pods.
inline constexpr const char* kWorkloadNameLabel = "workload.capscope.io/name";
inline constexpr const char* kWorkloadKindLabel = "workload.capscope.io/kind";

// Names for messages and listings: "Post", "Sigkill", "Pid", ...
const char* action_name(Action a);
const char* ns_kind_name(NsKind k);

}  // namespace capscope::policy
