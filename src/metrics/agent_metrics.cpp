#include "metrics/agent_metrics.h"

#include <functional>

#include "tables/capabilities.h"

#ifndef CAPSCOPE_VERSION
#define CAPSCOPE_VERSION "unknown"
#endif

namespace capscope::metrics {

namespace {

// The handle cache holds up to twice the series bound: every real series plus as many
// folded label sets (each then counted as a fold once); about 650 KB when full.
constexpr size_t kCheckCacheFactor = 2;

size_t combine(size_t seed, size_t h) {
  return seed ^ (h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}

size_t hash_check(int capability, bool denied, std::string_view ns, std::string_view workload) {
  size_t h = std::hash<int>{}(capability * 2 + (denied ? 1 : 0));
  h = combine(h, std::hash<std::string_view>{}(ns));
  return combine(h, std::hash<std::string_view>{}(workload));
}

}  // namespace

size_t AgentMetrics::CheckKeyHash::operator()(const CheckKey& k) const {
  return hash_check(k.capability, k.denied, k.k8s_namespace, k.workload);
}
size_t AgentMetrics::CheckKeyHash::operator()(const StoredCheckKey& k) const {
  return hash_check(k.capability, k.denied, k.k8s_namespace, k.workload);
}
bool AgentMetrics::CheckKeyEq::operator()(const CheckKey& a, const StoredCheckKey& b) const {
  return a.capability == b.capability && a.denied == b.denied &&
         a.k8s_namespace == b.k8s_namespace && a.workload == b.workload;
}
bool AgentMetrics::CheckKeyEq::operator()(const StoredCheckKey& a, const StoredCheckKey& b) const {
  return a.capability == b.capability && a.denied == b.denied &&
         a.k8s_namespace == b.k8s_namespace && a.workload == b.workload;
}

AgentMetrics::AgentMetrics(size_t max_check_series, size_t max_policy_series)
    : checks_(registry_.counter_family(
          "capscope_checks_total",
          "Capability checks seen, by capability, verdict (granted or denied) and the "
          "Kubernetes namespace and workload of the container (empty for the host).",
          {"capability", "verdict", "namespace", "workload"}, max_check_series)),
      policy_hits_(registry_.counter_family(
          "capscope_policy_hits_total",
          "Capability checks matched by a policy selector, by policy name and action.",
          {"policy", "action"}, max_policy_series)),
      max_cached_checks_(checks_.max_series() * kCheckCacheFactor) {
  Family& events = registry_.counter_family(
      "capscope_events_total",
      "Events by what became of them: exported (to the export file), subscribers (sent "
      "to an API subscriber), dropped_filter (left out by the export allow/deny lists).",
      {"kind"});
  events_exported = events.counter({"exported"});
  events_to_subscribers = events.counter({"subscribers"});
  events_dropped_filter = events.counter({"dropped_filter"});

  Family& lost = registry_.counter_family(
      "capscope_events_lost_total",
      "Events lost: ringbuf (the kernel's ring buffer was full), export (the export file "
      "could not be written), subscriber (a slow API subscriber's queue overflowed).",
      {"where"});
  lost_ringbuf = lost.counter({"ringbuf"});
  lost_export = lost.counter({"export"});
  lost_subscriber = lost.counter({"subscriber"});

  containers_named_from_events = registry_.counter(
      "capscope_containers_named_from_events_total",
      "Containers named from their runtime's create event (Docker's, podman's or CRI's event "
      "stream) before any inspect of them answered.");

  Family& announced = registry_.counter_family(
      "capscope_containers_announced_total",
      "Containers announced by capscope oci-hook before their first process: named (true: "
      "their scoped policies held from their first check) or not (false: the runtime did not "
      "name them within the hook's deadline).",
      {"named"});
  containers_announced_named = announced.counter({"true"});
  containers_announced_unnamed = announced.counter({"false"});

  process_cache_size =
      registry_.gauge("capscope_process_cache_size", "Processes in the agent's process cache.");
  container_cache_size = registry_.gauge("capscope_container_cache_size",
                                         "Containers in the agent's container identity cache.");
  profiles = registry_.gauge("capscope_profiles", "Profiles the agent is recording.");
  ringbuf_lag_bytes =
      registry_.gauge("capscope_ringbuf_lag_bytes",
                      "Bytes written to the kernel ring buffer that the agent has not read yet.");

  Family& flushes = registry_.counter_family(
      "capscope_store_flushes_total",
      "Merges of the recorded profiles into the profile store, by result (ok or error).",
      {"result"});
  store_flushes_ok = flushes.counter({"ok"});
  store_flushes_failed = flushes.counter({"error"});

  registry_
      .gauge_family("capscope_build_info", "Always 1; the version of the running agent.",
                    {"version"})
      .gauge({CAPSCOPE_VERSION})
      .set(1);
}

Counter AgentMetrics::check_counter(int capability, bool denied, std::string_view k8s_namespace,
                                    std::string_view workload) {
  std::lock_guard lock(check_cache_mutex_);
  CheckKey key{capability, denied, k8s_namespace, workload};
  if (auto it = check_cache_.find(key); it != check_cache_.end()) return it->second;
  std::string cap = tables::cap_name(capability);
  Counter c = checks_.counter({cap, denied ? "denied" : "granted", k8s_namespace, workload});
  if (check_cache_.size() < max_cached_checks_)
    check_cache_.emplace(
        StoredCheckKey{capability, denied, std::string(k8s_namespace), std::string(workload)}, c);
  return c;
}

void AgentMetrics::count_check(int capability, bool denied, std::string_view k8s_namespace,
                               std::string_view workload, uint64_t n) {
  check_counter(capability, denied, k8s_namespace, workload).inc(n);
}

Counter AgentMetrics::policy_hits(std::string_view policy, std::string_view action) {
  return policy_hits_.counter({policy, action});
}

}  // namespace capscope::metrics
