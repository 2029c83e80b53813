// The clocks capscope meets and how to convert between them.
//
//  - CLOCK_MONOTONIC ns: bpf_ktime_get_ns(), task->start_time; what records carry.
//  - CLOCK_BOOTTIME ns: monotonic plus the time spent suspended; /proc/PID/stat
//    starttime counts from boot on this clock, in clock ticks (USER_HZ).
//  - Wall clock (CLOCK_REALTIME) ns since the epoch: what events print.
//
// The offsets between them are sampled once at start and then held constant,
// so a timestamp converts the same way all run long (Tetragon does the same).
// A suspend or a clock step after the sample is not followed.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace capscope::util {

struct ClockOffsets {
  int64_t boot_minus_mono_ns = 0;   // CLOCK_BOOTTIME - CLOCK_MONOTONIC (time suspended)
  int64_t wall_minus_mono_ns = 0;   // CLOCK_REALTIME - CLOCK_MONOTONIC
  uint64_t ticks_per_second = 100;  // unit of /proc/PID/stat starttime (USER_HZ)

  // Samples the running system. Tests build the struct by hand instead.
  static ClockOffsets now();

  [[nodiscard]] int64_t monotonic_to_wall_offset_ns() const { return wall_minus_mono_ns; }

  [[nodiscard]] int64_t mono_to_wall_ns(uint64_t mono_ns) const;
  [[nodiscard]] uint64_t wall_to_mono_ns(int64_t wall_ns) const;  // 0 when before boot
  [[nodiscard]] uint64_t mono_to_boot_ns(uint64_t mono_ns) const;
  [[nodiscard]] uint64_t boot_to_mono_ns(uint64_t boot_ns) const;  // 0 when before boot
  [[nodiscard]] int64_t boot_to_wall_ns(uint64_t boot_ns) const;
  [[nodiscard]] uint64_t ticks_to_boot_ns(uint64_t ticks) const;
  [[nodiscard]] uint64_t ticks_to_mono_ns(uint64_t ticks) const;
  [[nodiscard]] int64_t ticks_to_wall_ns(uint64_t ticks) const;
};

// sysconf(_SC_CLK_TCK), 100 if it fails.
uint64_t clock_ticks_per_second();

// ticks * 1e9 / hz without overflowing for any uptime (hz 0 is taken as 100).
uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz);

// UTC, nanoseconds always printed: "2023-07-06T10:13:33.834390020Z" (Tetragon's
// process start_time and event time).
std::string format_rfc3339_ns(int64_t wall_ns);

// format_rfc3339_ns() for a stream of nearby times: the date and time of day are
// formatted once per second, only the nanoseconds per call. Not thread-safe.
class Rfc3339Formatter {
 public:
  // A view of the text, valid until the next call.
  std::string_view format(int64_t wall_ns);

 private:
  int64_t second_ = std::numeric_limits<int64_t>::min();
  char text_[40] = {};
  size_t prefix_len_ = 0;  // "2023-07-06T10:13:33." without the nanoseconds
};

// UTC, whole seconds: "2023-07-06T08:07:30Z" (Tetragon's container start_time).
std::string format_rfc3339_s(int64_t wall_ns);

}  // namespace capscope::util
