// How the reader waits for records (struct cs_reader_state in bpf/capscope.h).
//
// Waking a reader costs the checking CPU an interrupt (a self-IPI from the
// ring buffer's irq_work; a VM exit on a virtual machine), so the kernel side
// wakes it only when it sleeps and a lane holds the wakeup mark's worth. Under
// a flood the reader does not sleep: it polls on a short timer, its flag down,
// and no check pays for a wakeup. It goes back to sleeping after a few polls
// in a row that found little: one quiet millisecond is often only the traced
// task descheduled, and every return to sleep costs a wakeup.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

namespace capscope::capture {

class LaneReader;
class RingReader;

class ReaderPacing {
 public:
  // The timer of a flood's polls: at a million checks a second a CPU's lane
  // takes 128 KiB in that time, half of the smallest lane.
  static constexpr int kPollMs = 1;
  // Polls in a row below the flood's rate before the reader sleeps again.
  static constexpr int kQuietPolls = 8;

  // Maps the flag (the reader_state map); nullptr and a reason in *error if it cannot.
  static std::unique_ptr<ReaderPacing> open(int state_fd, uint64_t wakeup_bytes,
                                            std::string* error);
  ~ReaderPacing();
  ReaderPacing(const ReaderPacing&) = delete;
  ReaderPacing& operator=(const ReaderPacing&) = delete;

  // Waits up to timeout_ms for records: on the poll timer under a flood, else
  // asleep with the flag up unless a lane already holds the mark's worth.
  // 0, or a negative errno from the ring buffer's wait.
  int wait(int timeout_ms, RingReader& ring, const LaneReader& lanes);
  // What the drain after a wait took from the lanes: decides the next wait.
  void drained(uint64_t lane_bytes);
  [[nodiscard]] bool polling() const { return polling_; }
  // Whether the kernel side may wake this reader now (tests).
  [[nodiscard]] bool sleeping() const;

 private:
  ReaderPacing() = default;
  void* map_ = nullptr;
  size_t len_ = 0;
  uint64_t wakeup_bytes_ = 0;
  uint64_t poll_bytes_ = 0;
  bool polling_ = false;
  int quiet_polls_ = 0;
};

}  // namespace capscope::capture
