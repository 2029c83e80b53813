// Where records come from. The pipeline only sees this interface: the live
// BPF source in production, the replay source (recorded JSON lines) in tests
// and for offline analysis.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "capture/bpf_capture.h"
#include "filter/check_filter.h"

namespace capscope::capture {

struct SourceStats {
  uint64_t checks_seen = 0;  // checks the kernel (or the file) had
  uint64_t filtered = 0;     // dropped by filters
  uint64_t unique_suppressed = 0;
  uint64_t rate_suppressed = 0;
  uint64_t lost = 0;           // check records lost (ring buffer full)
  uint64_t proc_lost = 0;      // exec/fork/exit records lost
  uint64_t decode_errors = 0;  // malformed records or lines
  uint64_t callsite_samples = 0;
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Waits up to timeout_ms; hands records to handler. Negative errno on error.
  virtual int poll(int timeout_ms, const RecordHandler& handler) = 0;
  // True when no record will ever come again (end of a replay file).
  [[nodiscard]] virtual bool finished() const = 0;
  [[nodiscard]] virtual SourceStats stats() const = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
  // The checks of this cgroup are not wanted (its container is not selected): a live
  // source stops them in the kernel; others let them come, for user space to drop.
  virtual void exclude_cgroup(uint64_t /*cgroup_id*/) {}
};

class LiveSource final : public EventSource {
 public:
  explicit LiveSource(std::unique_ptr<BpfCapture> cap) : cap_(std::move(cap)) {}
  int poll(int timeout_ms, const RecordHandler& handler) override {
    return cap_->poll(timeout_ms, handler);
  }
  [[nodiscard]] bool finished() const override { return false; }
  void exclude_cgroup(uint64_t cgroup_id) override { cap_->exclude_cgroup(cgroup_id); }
  [[nodiscard]] SourceStats stats() const override;
  [[nodiscard]] std::string describe() const override;

 private:
  std::unique_ptr<BpfCapture> cap_;
};

class ReplaySource final : public EventSource {
 public:
  // Opens a file of JSON-line records; nullptr and *error if it cannot.
  static std::unique_ptr<ReplaySource> open(const std::string& path, filter::FilterSpec spec,
                                            std::string* error);
  int poll(int timeout_ms, const RecordHandler& handler) override;
  [[nodiscard]] bool finished() const override { return done_; }
  [[nodiscard]] SourceStats stats() const override;
  [[nodiscard]] std::string describe() const override { return "replay of " + path_; }

 private:
  ReplaySource(std::string path, filter::FilterSpec spec)
      : path_(std::move(path)), filter_(std::move(spec)) {}
  std::string path_;
  std::ifstream in_;
  filter::CheckFilter filter_;
  bool done_ = false;
  uint64_t checks_ = 0;
  uint64_t bad_lines_ = 0;
  uint64_t line_no_ = 0;
};

}  // namespace capscope::capture
