// The loader and ring-buffer reader: opens the skeleton of the chosen
// backend, writes the in-kernel filters and configuration, attaches, and
// hands decoded records to the pipeline. It also closes the learning loop of
// the tracepoint backend: stack samples become call-site map entries.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "capture/callsite.h"
#include "capture/features.h"
#include "filter/check_filter.h"
#include "filter/filter_spec.h"
#include "model/container.h"
#include "model/records.h"
#include "policy/compiled.h"

namespace capscope::capture {

struct CaptureOptions {
  Backend backend = Backend::Auto;
  size_t ringbuf_bytes = 16u << 20;
  bool learn_callsites = true;
  bool try_direct_walk = true;  // false: always walk with bpf_probe_read_kernel (tests)
  bool verbose_libbpf = false;
  filter::FilterSpec filters;  // evaluated in the kernel
  // record: count decided checks in the kernel's aggregation map (drain_aggregates)
  // instead of sending each; learning samples and lifecycle records still stream.
  bool aggregate = false;
  // agent: aggregate, and send the checks the event filters (--unique, ...) keep too,
  // marked CapCheck::aggregated so they are not counted twice.
  bool aggregate_emit = false;
  // record --pid: only these processes and the descendants they fork from now on
  // (give the ones that exist already too: the kernel only sees new forks).
  std::vector<uint32_t> follow_pids;
  // trace --policy: only policies' events; the checks no policy posts are not events.
  bool policy_events_only = false;
  // The host's namespaces, that matchNamespaces' host_ns means (default: /proc/1/ns).
  std::optional<NsInodes> host_ns;
};

// A slot of the loaded policy set: one selector. Slots are numbered in the order of the
// set given to set_policies, each policy's selectors in a row.
struct PolicySlotInfo {
  std::string policy;   // the policy's name
  size_t selector = 0;  // the selector's index in its policy
  bool scoped = false;  // the policy takes in only some containers (set_cgroup_policies)
  policy::Action action = policy::Action::Post;
  uint8_t options = policy::kAllOptions;  // the opts its matchArgs take (compiled.h)
};

// What the kernel counted for one slot since its set was loaded.
struct PolicySlotCounts {
  uint64_t hits = 0;          // checks the selector acted on (its policy's first match)
  uint64_t posted = 0;        // events sent
  uint64_t rate_limited = 0;  // events its rateLimit suppressed
  uint64_t killed = 0;        // SIGKILL sent by the kernel
  uint64_t spared = 0;        // Sigkill not sent: the check was a no-audit probe
  uint64_t pending = 0;       // Sigkill left to user space (the check's audit flag was unknown)
  uint64_t kill_failed = 0;   // the kernel refused the signal (kernel thread, exiting task)
};

// What user space did with the checks whose Sigkill the kernel left to it.
struct LateKillStats {
  uint64_t killed = 0;     // classified as audited: SIGKILL sent
  uint64_t spared = 0;     // classified as a no-audit probe: not killed, not posted
  uint64_t gone = 0;       // the process had exited (or its pid was reused) by then
  uint64_t undecided = 0;  // the sample could not be classified: not killed
};

// One entry of the kernel's aggregation map (record mode).
struct AggregateEntry {
  uint64_t cgroup_id = 0;
  uint32_t pid = 0;
  uint32_t exec_seq = 0;
  int32_t syscall_nr = -1;
  int32_t cap = 0;
  bool granted = true;
  bool audit = true;
  bool insetid = false;
  uint64_t count = 0;
  uint64_t first_ktime_ns = 0, last_ktime_ns = 0;
  // Checked with credentials not the task's own (overlayfs copying up with its
  // mounter's, faccessat's): the task's capabilities did not decide it.
  bool cred_override = false;
};

struct KernelCounters {
  uint64_t checks = 0, filtered = 0, unique_suppressed = 0, rate_suppressed = 0, emitted = 0,
           lost = 0, samples = 0, walk_misses = 0, proc_lost = 0, aggregated = 0, agg_full = 0;
};

using RecordHandler = std::function<void(Record&&)>;

struct PolicyPart;  // capture/decode.h

class BpfCapture {
 public:
  // Loads and attaches; on failure returns nullptr and a one-line reason in *error.
  static std::unique_ptr<BpfCapture> open(const CaptureOptions& opts, const KernelFeatures& f,
                                          std::string* error);
  ~BpfCapture();
  BpfCapture(const BpfCapture&) = delete;
  BpfCapture& operator=(const BpfCapture&) = delete;

  [[nodiscard]] Backend backend() const { return backend_; }
  // Tracepoint backend: whether the call-site walk reads the stack with plain
  // loads (bpf_rdonly_cast) rather than one helper call per word.
  [[nodiscard]] bool walk_direct() const { return walk_direct_; }

  // Waits up to timeout_ms for records and hands each to `handler`.
  // Returns the number consumed, or a negative errno.
  int poll(int timeout_ms, const RecordHandler& handler);
  // Ends the poll that waits now early; the one method safe from any thread. The agent
  // calls it when an API call has work for the polling thread.
  void wake();

  [[nodiscard]] KernelCounters counters() const;
  // Bytes in the ring buffer not read yet: how far the reader is behind.
  [[nodiscard]] uint64_t ring_lag_bytes() const;
  // The agent's event filters, changed while attached (SIGHUP): whether aggregated
  // checks are also sent (emit), --unique, and --rate-limit's window. The kernel
  // reads them at its next check; the user-space half starts afresh. False, and
  // nothing changed, if the kernel's map refuses the update.
  bool set_event_filters(bool emit, bool unique, std::optional<uint64_t> rate_window_ns);
  // record: takes out every check counted so far (the kernel's per-CPU cache
  // and hash map; a check counted meanwhile is left for the next drain, and
  // one key may come in several entries, to be added up). Waits for an RCU
  // grace period (milliseconds). Returns the number of entries, or a negative errno.
  int drain_aggregates(const std::function<void(const AggregateEntry&)>& sink);
  // record --pid: follow one more process (one that existed before the capture).
  bool follow(uint32_t pid);
  // Identity filters: the kernel drops this cgroup's checks from now on (with
  // FilterSpec::exclude_unselected; the set forgets the oldest beyond 16384).
  bool exclude_cgroup(uint64_t cgroup_id);
  [[nodiscard]] uint64_t decode_errors() const { return decode_errors_; }

  // ---- Policies (trace --policy, the agent) ----
  // Loads a whole set, replacing the one loaded: at most CS_POLICY_SLOTS (64) selectors
  // over all policies. The new set is written beside the old one and switched to in one
  // step, so a check meets one whole set or the other, never none. Scoped policies take
  // in no container until set_cgroup_policies or note_container names it; containers
  // named before are carried over (see note_container). False and a one-line *error if
  // the set cannot be taken; the previous set then stays. Waits for an RCU grace period.
  // Like every method here, call it from the thread that polls.
  bool set_policies(const std::vector<policy::CompiledPolicy>& set, std::string* error);
  // Scoped policies: the slots (bit n = slot n of the loaded set) that take in the
  // container of this cgroup. After a set_policies the bits are carried over by policy
  // name until set again.
  bool set_cgroup_policies(uint64_t cgroup_id, uint64_t slot_bits);
  // The same from the container's description: the loaded scoped policies whose
  // namespace, podSelector and containerSelector take it in; remembered, so that a
  // later set_policies recomputes this cgroup's slots before it switches.
  bool note_container(uint64_t cgroup_id, const ContainerInfo& container);
  // A container cgroup that is gone: forgotten here and in the kernel's map.
  void forget_cgroup_policies(uint64_t cgroup_id);
  // A container its runtime has announced (a create event) before making its cgroup:
  // when a cgroup named as container_cgroup_names(id) says is made, the kernel gives it
  // the slots of the loaded scoped policies that take the container in, at once
  // (cs_cgroup_mkdir). Returns those slots; 0 writes nothing. Remembered, so that a
  // later set_policies recomputes them.
  uint64_t expect_container(const ContainerInfo& container);
  // Forgets the announcements older than `age` (containers created, never started).
  size_t expire_expected(std::chrono::seconds age);
  // How long trace and the agent keep an announcement whose cgroup has not come.
  static constexpr std::chrono::seconds kExpectFor{60};
  // Cgroups remembered for scoped policies, the size of the kernel's policy_cgroups map
  // (bpf/capable_common.bpf.h); beyond this, new ones are written but not remembered
  // across a reload (the caller names them again).
  static constexpr size_t kMaxPolicyCgroups = 16384;
  // Per slot of the loaded set: checks its selector acted on.
  [[nodiscard]] std::vector<uint64_t> policy_hits() const;
  [[nodiscard]] std::vector<PolicySlotCounts> policy_counts() const;
  // The loaded set's slots: slot -> (policy name, action), for writers and listings.
  [[nodiscard]] const std::vector<PolicySlotInfo>& policy_slots() const;
  [[nodiscard]] LateKillStats late_kills() const { return late_kills_; }
  // What user space filtered of the checks the kernel could not decide (samples).
  [[nodiscard]] filter::FilterStats user_filter_stats() const { return post_filter_->stats(); }

  struct Impl;  // the skeleton and ring buffer (bpf_capture.cpp)

 private:
  BpfCapture() = default;
  static std::unique_ptr<BpfCapture> open_backend_as(Backend b, const CaptureOptions& opts,
                                                     const KernelFeatures& f, std::string* error);
  void on_record(std::span<const uint8_t> bytes, const RecordHandler& handler);
  bool handle_sample(CapCheck& c);  // true if the stack decided the audit flag
  void deliver_policy_events(CapCheck c, const PolicyPart& part, bool classified, bool sampled,
                             const RecordHandler& handler);
  bool late_kill(const CapCheck& c);
  void store_callsite(const CallSiteEntry& e);
  bool write_config();  // false (errno set) if the kernel refused it

  std::unique_ptr<Impl> impl_;
  Backend backend_ = Backend::Auto;
  std::unique_ptr<CallSiteLearner> learner_;
  uint64_t decode_errors_ = 0;
  std::unique_ptr<filter::SampledCheckFilter> post_filter_;
  filter::FilterSpec filters_;  // what post_filter_ was built from
  bool walk_direct_ = false;
  bool aggregate_ = false;  // record, agent: checks not counted in the kernel reach user space
  LateKillStats late_kills_;
};

}  // namespace capscope::capture
