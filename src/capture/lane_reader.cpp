#include "capture/lane_reader.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>

#include "capscope.h"

namespace capscope::capture {

static_assert(sizeof(cs_lane_slot) == 128, "a lane slot is two whole cache lines");
static_assert(sizeof(cs_lane_pos) == 128, "head and tail on cache lines of their own");

namespace {

cs_lane_pos* positions(void* map) { return static_cast<cs_lane_pos*>(map); }

// The positions are the kernel's __u64 (unsigned long long): atomics of that type.
uint64_t load_acquire(const __u64& v) {
  return std::atomic_ref<__u64>(const_cast<__u64&>(v)).load(std::memory_order_acquire);
}

void store_release(__u64& v, uint64_t value) {
  std::atomic_ref<__u64>(v).store(value, std::memory_order_release);
}

void* map_shared(int fd, size_t len) {
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

std::unique_ptr<LaneReader> LaneReader::open(int slots_fd, int pos_fd, uint32_t cpus,
                                             uint32_t slots_per_cpu, std::string* error) {
  if (cpus == 0 || slots_per_cpu == 0 || (slots_per_cpu & (slots_per_cpu - 1)) != 0) {
    *error = fmt::format("bad check lane geometry: {} CPUs of {} slots", cpus, slots_per_cpu);
    return nullptr;
  }
  std::unique_ptr<LaneReader> r(new LaneReader());
  r->cpus_ = cpus;
  r->slots_ = slots_per_cpu;
  r->slots_len_ = static_cast<size_t>(cpus) * slots_per_cpu * sizeof(cs_lane_slot);
  r->pos_len_ = static_cast<size_t>(cpus) * sizeof(cs_lane_pos);
  r->slots_map_ = map_shared(slots_fd, r->slots_len_);
  r->pos_map_ = map_shared(pos_fd, r->pos_len_);
  if (r->slots_map_ == nullptr || r->pos_map_ == nullptr) {
    *error = fmt::format("cannot map the check lanes: {}", std::strerror(errno));
    return nullptr;
  }
  r->marked_.resize(cpus);
  r->at_.resize(cpus);
  for (uint32_t c = 0; c < cpus; ++c) r->marked_[c] = r->at_[c] = positions(r->pos_map_)[c].tail;
  return r;
}

LaneReader::~LaneReader() {
  if (slots_map_ != nullptr) munmap(slots_map_, slots_len_);
  if (pos_map_ != nullptr) munmap(pos_map_, pos_len_);
}

void LaneReader::mark() {
  const cs_lane_pos* pos = positions(pos_map_);
  next_ = {};
  for (uint32_t c = 0; c < cpus_; ++c) {
    marked_[c] = load_acquire(pos[c].head);
    at_[c] = pos[c].tail;
    // A head that ran more than a lane ahead is not the kernel's (it never
    // overwrites unread slots): read the last lane's worth only.
    if (marked_[c] - at_[c] > slots_) at_[c] = marked_[c] - slots_;
    if (at_[c] != marked_[c]) next_.emplace(time_of(c, at_[c]), c);
  }
}

std::span<const uint8_t> LaneReader::record(uint32_t cpu, uint64_t n) const {
  const auto* slots = static_cast<const cs_lane_slot*>(slots_map_);
  const cs_lane_slot& s = slots[static_cast<size_t>(cpu) * slots_ + (n & (slots_ - 1))];
  // The size is the kernel's word: decode_record checks it against the record's type.
  size_t size = std::min<size_t>(s.check.hdr.size, sizeof(s.check));
  return {reinterpret_cast<const uint8_t*>(&s.check), size};
}

uint64_t LaneReader::time_of(uint32_t cpu, uint64_t n) const {
  const auto* slots = static_cast<const cs_lane_slot*>(slots_map_);
  return slots[static_cast<size_t>(cpu) * slots_ + (n & (slots_ - 1))].check.ktime_ns;
}

int LaneReader::consume_before(uint64_t ktime_ns, const Handler& handler) {
  int n = 0;
  while (!next_.empty() && next_.top().first < ktime_ns) {
    uint32_t c = next_.top().second;
    next_.pop();
    handler(record(c, at_[c]));
    ++n;
    if (++at_[c] != marked_[c]) next_.emplace(time_of(c, at_[c]), c);
  }
  return n;
}

int LaneReader::consume(const Handler& handler) {
  int n = consume_before(std::numeric_limits<uint64_t>::max(), handler);
  cs_lane_pos* pos = positions(pos_map_);
  for (uint32_t c = 0; c < cpus_; ++c)
    if (pos[c].tail != at_[c]) store_release(pos[c].tail, at_[c]);
  return n;
}

uint64_t LaneReader::lag_bytes() const {
  const cs_lane_pos* pos = positions(pos_map_);
  uint64_t lag = 0;
  for (uint32_t c = 0; c < cpus_; ++c)
    lag += (load_acquire(pos[c].head) - pos[c].tail) * sizeof(cs_lane_slot);
  return lag;
}

uint64_t LaneReader::max_lane_lag_bytes() const {
  const cs_lane_pos* pos = positions(pos_map_);
  uint64_t most = 0;
  for (uint32_t c = 0; c < cpus_; ++c)
    most = std::max<uint64_t>(most, load_acquire(pos[c].head) - pos[c].tail);
  return most * sizeof(cs_lane_slot);
}

}  // namespace capscope::capture
