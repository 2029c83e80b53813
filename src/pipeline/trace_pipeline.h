// The trace pipeline: records from an event source feed the process cache;
// capability checks are enriched with their process, parent and container
// and handed to an output writer. One thread, no locks: the source is
// polled, and each record flows through to the writer before the next.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "capture/event_source.h"
#include "enrich/process_cache.h"
#include "output/writer.h"

namespace capscope::pipeline {

struct PipelineStats {
  uint64_t reported = 0;  // checks written out
  uint64_t execs = 0, forks = 0, exits = 0;
  uint64_t unattributed = 0;  // checks whose process could not be found
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

 private:
  void on_record(Record&& r);
  void on_check(CapCheck&& c);

  capture::EventSource& source_;
  ProcessCache& cache_;
  output::EventWriter& writer_;
  std::string node_name_;
  NsInodes host_ns_;
  int64_t wall_offset_ns_ = 0;
  PipelineStats stats_;
  uint64_t last_expire_ktime_ = 0;
  struct LastLookup {
    uint32_t pid = 0;
    uint64_t generation = 0;
    ProcessPtr process, parent;
  } last_;
};

}  // namespace capscope::pipeline
