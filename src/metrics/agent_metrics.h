// The agent's metrics: every family `capscope agent` exposes, named here once
// (docs/METRICS.md lists them), with handles so the hot path increments without
// building label strings or looking names up.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "metrics/registry.h"

namespace capscope::metrics {

class AgentMetrics {
 public:
  // `max_check_series` bounds capscope_checks_total (capability x verdict x namespace x
  // workload); `max_policy_series` bounds capscope_policy_hits_total.
  explicit AgentMetrics(size_t max_check_series = kDefaultMaxSeries,
                        size_t max_policy_series = kDefaultMaxSeries);
  AgentMetrics(const AgentMetrics&) = delete;
  AgentMetrics& operator=(const AgentMetrics&) = delete;

  // What the HTTP server renders; more families may be added to it.
  Registry& registry() { return registry_; }

  // capscope_checks_total: `n` checks of `capability` (a number; named as
  // tables::cap_name does: "CAP_SYS_ADMIN"), by verdict, in a pod's namespace and
  // workload ("" and "" for the host). Repeated keys hit a handle cache: no allocation.
  void count_check(int capability, bool denied, std::string_view k8s_namespace,
                   std::string_view workload, uint64_t n = 1);
  // The handle count_check uses, for callers that keep their own.
  Counter check_counter(int capability, bool denied, std::string_view k8s_namespace,
                        std::string_view workload);

  // capscope_policy_hits_total{policy,action}; action as in the policy: Post, NoPost,
  // Sigkill. The kernel keeps per-slot totals that restart when a slot is reused, so
  // add the difference since the last read (inc) rather than mirroring the total.
  Counter policy_hits(std::string_view policy, std::string_view action);

  // capscope_events_total{kind}
  Counter events_exported;        // kind="exported": written to the export file
  Counter events_to_subscribers;  // kind="subscribers": sent to gRPC subscribers (per send)
  Counter events_dropped_filter;  // kind="dropped_filter": left out by export allow/deny lists
  // capscope_events_lost_total{where}
  Counter lost_ringbuf;     // where="ringbuf": the kernel found the ring buffer full
  Counter lost_export;      // where="export": the export file could not be written
  Counter lost_subscriber;  // where="subscriber": a slow subscriber's queue overflowed
  // capscope_store_flushes_total{result}
  Counter store_flushes_ok;      // result="ok"
  Counter store_flushes_failed;  // result="error"
  // capscope_containers_named_from_events_total: named from a runtime's create event
  Counter containers_named_from_events;
  // capscope_containers_announced_total{named}: announced by the OCI hook, named in time
  // ("true": by the runtime or CRI annotations) or not ("false": no scoped policy could
  // take it in before it started)
  Counter containers_announced_named;
  Counter containers_announced_unnamed;
  // Gauges: set() them, or set_function() to read the source at scrape time (on the
  // HTTP thread, so the source must be safe to read from there).
  Gauge process_cache_size;    // capscope_process_cache_size
  Gauge container_cache_size;  // capscope_container_cache_size
  Gauge profiles;              // capscope_profiles
  Gauge ringbuf_lag_bytes;     // capscope_ringbuf_lag_bytes

 private:
  struct CheckKey {
    int capability;
    bool denied;
    std::string_view k8s_namespace;
    std::string_view workload;
  };
  struct StoredCheckKey {
    int capability;
    bool denied;
    std::string k8s_namespace;
    std::string workload;
  };
  struct CheckKeyHash {
    using is_transparent = void;
    size_t operator()(const CheckKey& k) const;
    size_t operator()(const StoredCheckKey& k) const;
  };
  struct CheckKeyEq {
    using is_transparent = void;
    bool operator()(const CheckKey& a, const StoredCheckKey& b) const;
    bool operator()(const StoredCheckKey& a, const CheckKey& b) const { return (*this)(b, a); }
    bool operator()(const StoredCheckKey& a, const StoredCheckKey& b) const;
  };

  Registry registry_;
  Family& checks_;
  Family& policy_hits_;
  // Every check key seen, up to a bound (folded ones too, so a fold is counted once per
  // label set); past the bound lookups go to the family and each counts as a fold.
  size_t max_cached_checks_;
  std::mutex check_cache_mutex_;
  std::unordered_map<StoredCheckKey, Counter, CheckKeyHash, CheckKeyEq> check_cache_;
};

}  // namespace capscope::metrics
