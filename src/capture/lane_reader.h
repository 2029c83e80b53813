// Reads the per-CPU check lanes (struct cs_lane_pos in bpf/capscope.h): two
// BPF_F_MMAPABLE arrays, the slots (CPU * slots_per_cpu + n) and each CPU's
// head and tail. A CPU's programs publish records by moving its head; the
// reader consumes up to the heads it marked and then moves the tails.
//
// mark() and consume() are separate so that the caller can drain the ring
// buffer in between: every exec, fork or exit record that came before a
// marked check is then handed over first (see BpfCapture::poll).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace capscope::capture {

class LaneReader {
 public:
  using Handler = std::function<void(std::span<const uint8_t>)>;

  // Maps the lanes; nullptr and a reason in *error if it cannot.
  static std::unique_ptr<LaneReader> open(int slots_fd, int pos_fd, uint32_t cpus,
                                          uint32_t slots_per_cpu, std::string* error);
  ~LaneReader();
  LaneReader(const LaneReader&) = delete;
  LaneReader& operator=(const LaneReader&) = delete;

  // Takes every CPU's head now: what the next consume_before() and consume() hand over.
  void mark();
  // Hands the marked records made before `ktime_ns` to `handler`, oldest first
  // across CPUs (each CPU's lane is in time order already): the caller merges
  // another stream (the ring buffer's) with the lanes this way. Returns the number.
  int consume_before(uint64_t ktime_ns, const Handler& handler);
  // Hands every marked record left over, then gives the space back.
  int consume(const Handler& handler);
  // Bytes published that this reader has not consumed yet.
  [[nodiscard]] uint64_t lag_bytes() const;
  // The unread bytes of the fullest lane: what the kernel compares with its wakeup mark.
  [[nodiscard]] uint64_t max_lane_lag_bytes() const;

 private:
  LaneReader() = default;
  [[nodiscard]] std::span<const uint8_t> record(uint32_t cpu, uint64_t n) const;
  [[nodiscard]] uint64_t time_of(uint32_t cpu, uint64_t n) const;

  uint32_t cpus_ = 0;
  uint32_t slots_ = 0;  // per CPU, a power of two
  void* slots_map_ = nullptr;
  size_t slots_len_ = 0;
  void* pos_map_ = nullptr;
  size_t pos_len_ = 0;
  std::vector<uint64_t> marked_;  // heads taken by mark()
  std::vector<uint64_t> at_;      // the next record of each CPU to hand over
  // The oldest unread marked record of each CPU that has one: (ktime, cpu), a min-heap.
  using Next = std::pair<uint64_t, uint32_t>;
  std::priority_queue<Next, std::vector<Next>, std::greater<>> next_;
};

}  // namespace capscope::capture
