// The trace pipeline: records from an event source feed the process cache;
// capability checks are enriched with their process, parent and container
// (named by the runtime resolver when there is one) and handed to an output
// writer. One thread: the source is polled, and each record flows through to
// the writer before the next, except checks an identity filter (--pod, ...)
// cannot decide before the runtime has named their container: those wait in
// a bounded queue, and are written or dropped when the answer comes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <chrono>
#include <deque>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "capture/event_source.h"
#include "enrich/process_cache.h"
#include "enrich/runtime/runtime_resolver.h"
#include "filter/container_filter.h"
#include "output/writer.h"

namespace capscope::pipeline {

struct PipelineStats {
  uint64_t reported = 0;  // checks written out
  uint64_t execs = 0, forks = 0, exits = 0;
  uint64_t unattributed = 0;      // checks whose process could not be found
  uint64_t not_selected = 0;      // dropped by the identity filter (--pod, --namespace, ...)
  uint64_t unresolved = 0;        // dropped: the runtime never named their container in time
  uint64_t runtime_checks = 0;    // made by the runtime's own processes (marked)
  uint64_t excluded_cgroups = 0;  // containers' cgroups handed to the kernel to drop
};

struct HoldLimits {
  std::chrono::milliseconds max_wait{5000};  // then the check is dropped and counted
  size_t max_held = 65536;                   // beyond this the oldest is dropped and counted
};

class TracePipeline {
 public:
  TracePipeline(capture::EventSource& source, ProcessCache& cache, output::EventWriter& writer,
                std::string node_name, NsInodes host_ns);

  // Runs until `stop` is set, the source is finished, or max_events reports
  // (0 = no limit). Returns 0, or a negative errno from the source.
  int run(const std::atomic<bool>& stop, uint64_t max_events = 0);

  [[nodiscard]] const PipelineStats& stats() const { return stats_; }

  // Converts kernel monotonic time to wall clock (set from util clocks).
  void set_wall_offset_ns(int64_t off) { wall_offset_ns_ = off; }
  // Names containers through `resolver` (which must outlive the pipeline).
  void set_resolver(RuntimeResolver* resolver) { resolver_ = resolver; }
  void set_container_filter(filter::ContainerFilter f, HoldLimits limits = {}) {
    identity_ = std::move(f);
    hold_ = limits;
  }
  // Scoped policies: `hook` is called once per container cgroup, when the resolver has
  // named the container of a process in it (seen exec'ing, making a check, or given to
  // watch_process), so the kernel learns which cgroups the policies take in.
  using ContainerHook = std::function<void(uint64_t cgroup_id, const ContainerInfo& info)>;
  void set_container_hook(ContainerHook hook) { container_hook_ = std::move(hook); }
  // Scoped policies too: `hook` is called, between polls, with each container the resolver
  // named from its runtime's create event (before its cgroup exists), so the kernel can
  // give the cgroup its policies as it is made (BpfCapture::expect_container).
  using AnnouncedHook = std::function<void(const ContainerInfo& info)>;
  void set_announced_hook(AnnouncedHook hook) { announced_hook_ = std::move(hook); }
  // A container cgroup that existed before the capture: named as for an exec.
  void watch_container(uint64_t cgroup_id, const ContainerRef& ref);

 private:
  void on_record(Record&& r);
  void on_check(CapCheck&& c);
  void name_containers(EnrichedCheck& e);
  void deliver(EnrichedCheck&& e);
  void release_held(bool final);
  void exclude(const ContainerRef& ref, uint64_t cgroup_id);
  void announce_containers();
  void watch_process(const ProcessPtr& p);

  capture::EventSource& source_;
  ProcessCache& cache_;
  output::EventWriter& writer_;
  std::string node_name_;
  NsInodes host_ns_;
  int64_t wall_offset_ns_ = 0;
  PipelineStats stats_;
  RuntimeResolver* resolver_ = nullptr;
  filter::ContainerFilter identity_{filter::ContainerSelection{}};
  HoldLimits hold_;
  struct Held {
    EnrichedCheck check;
    std::chrono::steady_clock::time_point give_up;
  };
  std::deque<Held> held_;
  uint64_t held_generation_ = 0;
  static constexpr size_t kMaxExcluded = 16384;
  std::unordered_set<uint64_t> excluded_;  // cgroups the source was asked to drop
  uint64_t last_expire_ktime_ = 0;
  ContainerHook container_hook_;
  AnnouncedHook announced_hook_;
  static constexpr size_t kMaxWatched = 16384;
  std::unordered_map<uint64_t, ContainerRef> unnamed_;  // cgroups awaiting their name
  std::unordered_set<uint64_t> named_;                  // cgroups the hook was called for
  uint64_t announced_generation_ = ~0ULL;
  struct LastLookup {
    uint32_t pid = 0;
    uint64_t generation = 0;
    ProcessPtr process, parent;
    bool current = false;  // process is its pid's current image
  } last_;
  // The names given to the last process and parent, while the resolver has published
  // nothing new: a burst of checks costs one resolver lookup (a lock), not one each.
  struct LastNames {
    ProcessPtr process, parent;  // held, so their addresses cannot be reused meanwhile
    uint64_t resolver_generation = 0;
    bool runtime_process = false;
    ContainerInfoPtr container, parent_container;
  } names_;
};

}  // namespace capscope::pipeline
