#include "util/clock.h"

#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

namespace capscope::util {

namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

int64_t read_clock(clockid_t id) {
  timespec ts{};
  if (clock_gettime(id, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

// `other - monotonic`, from the tightest of a few monotonic/other/monotonic
// brackets: a preemption between the reads would otherwise skew the offset.
int64_t offset_from_monotonic(clockid_t other) {
  int64_t best_gap = std::numeric_limits<int64_t>::max();
  int64_t best = 0;
  for (int i = 0; i < 5; ++i) {
    int64_t before = read_clock(CLOCK_MONOTONIC);
    int64_t value = read_clock(other);
    int64_t after = read_clock(CLOCK_MONOTONIC);
    if (after - before < best_gap) {
      best_gap = after - before;
      best = value - (before + (after - before) / 2);
    }
  }
  return best;
}

uint64_t add_clamped(uint64_t base, int64_t delta) {
  if (delta >= 0) return base + static_cast<uint64_t>(delta);
  auto down = static_cast<uint64_t>(-(delta + 1)) + 1;  // -delta without overflow
  return base > down ? base - down : 0;
}

// Splits ns since the epoch into whole seconds and the nanosecond remainder,
// rounding toward minus infinity so dates before 1970 print correctly.
std::pair<std::chrono::sys_seconds, int64_t> split_ns(int64_t wall_ns) {
  int64_t secs = wall_ns / kNsPerSec;
  int64_t nanos = wall_ns % kNsPerSec;
  if (nanos < 0) {
    nanos += kNsPerSec;
    --secs;
  }
  return {std::chrono::sys_seconds{std::chrono::seconds{secs}}, nanos};
}

std::string format_seconds(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  auto day = floor<days>(t);
  year_month_day ymd{day};
  hh_mm_ss hms{t - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

}  // namespace

ClockOffsets ClockOffsets::now() {
  ClockOffsets c;
  c.boot_minus_mono_ns = offset_from_monotonic(CLOCK_BOOTTIME);
  c.wall_minus_mono_ns = offset_from_monotonic(CLOCK_REALTIME);
  c.ticks_per_second = clock_ticks_per_second();
  return c;
}

int64_t ClockOffsets::mono_to_wall_ns(uint64_t mono_ns) const {
  return static_cast<int64_t>(mono_ns) + wall_minus_mono_ns;
}

uint64_t ClockOffsets::wall_to_mono_ns(int64_t wall_ns) const {
  int64_t mono = wall_ns - wall_minus_mono_ns;
  return mono > 0 ? static_cast<uint64_t>(mono) : 0;
}

uint64_t ClockOffsets::mono_to_boot_ns(uint64_t mono_ns) const {
  return add_clamped(mono_ns, boot_minus_mono_ns);
}

uint64_t ClockOffsets::boot_to_mono_ns(uint64_t boot_ns) const {
  return add_clamped(boot_ns, -boot_minus_mono_ns);
}

int64_t ClockOffsets::boot_to_wall_ns(uint64_t boot_ns) const {
  return static_cast<int64_t>(boot_ns) - boot_minus_mono_ns + wall_minus_mono_ns;
}

uint64_t ClockOffsets::ticks_to_boot_ns(uint64_t ticks) const {
  return ticks_to_ns(ticks, ticks_per_second);
}

uint64_t ClockOffsets::ticks_to_mono_ns(uint64_t ticks) const {
  return boot_to_mono_ns(ticks_to_boot_ns(ticks));
}

int64_t ClockOffsets::ticks_to_wall_ns(uint64_t ticks) const {
  return boot_to_wall_ns(ticks_to_boot_ns(ticks));
}

uint64_t clock_ticks_per_second() {
  long hz = sysconf(_SC_CLK_TCK);
  return hz > 0 ? static_cast<uint64_t>(hz) : 100;
}

uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz) {
  if (hz == 0) hz = 100;
  constexpr auto kNs = static_cast<uint64_t>(kNsPerSec);
  return ticks / hz * kNs + ticks % hz * kNs / hz;
}

std::string format_rfc3339_ns(int64_t wall_ns) {
  auto [secs, nanos] = split_ns(wall_ns);
  return fmt::format("{}.{:09}Z", format_seconds(secs), nanos);
}

std::string_view Rfc3339Formatter::format(int64_t wall_ns) {
  auto [secs, nanos] = split_ns(wall_ns);
  int64_t second = secs.time_since_epoch().count();
  if (second != second_ || prefix_len_ == 0) {
    std::string prefix = format_seconds(secs);
    prefix_len_ = std::min(prefix.size(), sizeof(text_) - 11);
    std::memcpy(text_, prefix.data(), prefix_len_);
    text_[prefix_len_++] = '.';
    second_ = second;
  }
  char* p = text_ + prefix_len_ + 9;
  *p = 'Z';
  auto n = static_cast<uint64_t>(nanos);
  for (int i = 0; i < 9; ++i, n /= 10) *--p = static_cast<char>('0' + n % 10);
  return {text_, prefix_len_ + 10};
}

std::string format_rfc3339_s(int64_t wall_ns) {
  return format_seconds(split_ns(wall_ns).first) + "Z";
}

}  // namespace capscope::util
