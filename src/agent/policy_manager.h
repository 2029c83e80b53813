// The agent's policies: those of --policy-dir (read again on SIGHUP) and those added
// through the API (kept until deleted or the agent stops), compiled into the kernel's
// policy maps as one set. Scoped policies (a namespace, podSelector or
// containerSelector) are told to the kernel per cgroup, as the runtime names each
// container. Changes run on the capture thread; listings are safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/backend.h"
#include "capture/bpf_capture.h"
#include "enrich/runtime/runtime_resolver.h"
#include "metrics/agent_metrics.h"
#include "model/container.h"
#include "policy/compiled.h"
#include "policy/tracing_policy.h"

namespace capscope::agent {

// Where compiled policies go: the kernel (through BpfCapture) in the agent, a fake in
// the unit tests. Slots are numbered in the order given: each policy's selectors in a
// row.
class PolicyTarget {
 public:
  virtual ~PolicyTarget() = default;
  // The whole set at once; false and a one-line *error if it cannot be taken (too
  // many selectors), and then the previous set stays.
  virtual bool set_policies(const std::vector<policy::CompiledPolicy>& set, std::string* error) = 0;
  // Which slots of scoped policies take in this container cgroup.
  virtual bool set_cgroup_policies(uint64_t cgroup_id, uint64_t slot_bits) = 0;
  // The cgroup is gone: its entry leaves the kernel's map.
  virtual void forget_cgroup(uint64_t cgroup_id) = 0;
  // A container announced by its runtime before its cgroup exists: the kernel gives its
  // cgroup the slots of the scoped policies that take it in as the cgroup is made.
  // Returns those slots (0: none).
  virtual uint64_t expect_container(const ContainerInfo& container) = 0;
  // Forgets announcements older than `age` (created, never started); how many.
  virtual size_t expire_expected(std::chrono::seconds age) = 0;
  // Checks each slot's selector matched, since the set was written.
  [[nodiscard]] virtual std::vector<uint64_t> policy_hits() const = 0;
  // The slot whose selector emitted this check, or -1.
  [[nodiscard]] virtual int slot_of(const CapCheck& c) const = 0;
};

// The agent's target: its capture's policy maps.
std::unique_ptr<PolicyTarget> kernel_policy_target(capture::BpfCapture& cap);

class PolicyManager {
 public:
  // Reads every *.yaml/*.yml of `dir` (a missing dir: no policies). False and the
  // parser's one-line error (file:line: field: problem) on the first bad file.
  bool load_dir(const std::string& dir, std::string* error);
  // Writes the whole set into the kernel (at start, after a change).
  bool apply(PolicyTarget& cap, std::string* error);
  // SIGHUP: the directory again; API-added policies stay. On any error nothing changes.
  bool reload_dir(const std::string& dir, PolicyTarget& cap, std::string* error);

  // One policy from API text (exactly one document). nullopt and the error otherwise.
  static std::optional<policy::TracingPolicy> parse_api_policy(const std::string& yaml,
                                                               std::string* error);
  // Adds or replaces (by name); on failure the set stays as it was.
  std::optional<api::PolicyInfo> add(policy::TracingPolicy p, const std::string& yaml,
                                     PolicyTarget& cap, std::string* error);
  // False with *error empty when no policy has that name.
  bool remove(const std::string& name, PolicyTarget& cap, std::string* error);

  [[nodiscard]] std::vector<api::PolicyInfo> list() const;
  [[nodiscard]] size_t size() const;

  // The policy whose selector emitted this check ("" for the agent's own events).
  [[nodiscard]] std::string_view policy_of(const CapCheck& c, const PolicyTarget& cap) const;
  // A container cgroup: scoped policies that take it in are told to the kernel once
  // the runtime has named it (refresh()).
  void on_container_cgroup(uint64_t cgroup_id, const ContainerRef& ref);
  // A container its runtime's hook announced: its cgroup exists, its first process has
  // not run. The scoped policies that take `info` in go into the kernel now. `from_runtime`:
  // info is the runtime's answer, kept; otherwise (the CRI annotations' partial identity,
  // or null) it holds until the runtime names the container. The policies' names.
  std::vector<std::string> announce(uint64_t cgroup_id, const ContainerRef& ref,
                                    const ContainerInfoPtr& info, bool from_runtime,
                                    PolicyTarget& cap);
  // Also tells the kernel of the containers the resolver has named from create events
  // since (PolicyTarget::expect_container), while a scoped policy is loaded.
  void refresh(RuntimeResolver& resolver, PolicyTarget& cap);
  // Announced containers whose cgroup never came within this long are forgotten.
  static constexpr std::chrono::seconds kExpectFor = capture::BpfCapture::kExpectFor;
  // Forgets the container cgroups that no longer exist (`alive` says which do), in the
  // kernel too, so that a node running containers for months stays under the bound.
  // Returns how many were forgotten.
  size_t prune(const std::function<bool(uint64_t)>& alive, PolicyTarget& cap);
  [[nodiscard]] size_t cgroups_tracked() const { return cgroups_.size(); }
  // Some loaded policy is scoped (a namespace, podSelector or containerSelector).
  [[nodiscard]] bool any_scoped() const;
  // The kernel's policy_cgroups map holds this many.
  static constexpr size_t kMaxTrackedCgroups = capture::BpfCapture::kMaxPolicyCgroups;
  // Per-slot kernel hit counts into capscope_policy_hits_total.
  void sync_hits(PolicyTarget& cap, metrics::AgentMetrics& m);

 private:
  struct Loaded {
    policy::TracingPolicy source;
    policy::CompiledPolicy compiled;
    std::string yaml;
    bool from_api = false;
  };
  using Set = std::map<std::string, Loaded>;
  static bool read_dir(const std::string& dir, Set* out, std::string* error);
  bool install(Set next, PolicyTarget& cap, std::string* error);
  void expect_announced(RuntimeResolver& resolver, PolicyTarget& cap);
  [[nodiscard]] uint64_t slot_bits_for(const ContainerInfo& info) const;
  void reapply_cgroups(PolicyTarget& cap);
  struct Tracked;
  // Writes the slots that take `info` in for one cgroup, if they changed; logs "policy P
  // <how> container C (cgroup N)". False when the kernel refused.
  bool apply_to(uint64_t id, Tracked& t, const ContainerInfo& info, PolicyTarget& cap,
                std::string_view how);

  bool full_warned_ = false;  // the cgroups tracked reached their bound (said once)
  // The policies of these slots, sorted, once each (mu_ held).
  [[nodiscard]] std::vector<std::string> names_of_slots(uint64_t bits) const;
  mutable std::mutex mu_;  // guards set_ and slots_ against list() from API threads
  Set set_;
  // Slot -> (policy, action), in the order the kernel numbered them.
  std::vector<std::pair<std::string, policy::Action>> slots_;
  std::vector<uint64_t> last_hits_;
  // Container cgroups: the ref until named, then the info (capture thread only).
  struct Tracked {
    ContainerRef ref;
    ContainerInfoPtr info;
    uint64_t bits = 0;
  };
  std::unordered_map<uint64_t, Tracked> cgroups_;
  uint64_t resolver_generation_ = 0;
  // A cgroup was tracked since the last refresh: it may be named by an answer the
  // resolver had already (a container named from its create event before its cgroup).
  bool cgroups_added_ = false;
};

}  // namespace capscope::agent
