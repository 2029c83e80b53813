#include "capture/reader_pacing.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "capscope.h"
#include "capture/lane_reader.h"
#include "capture/ring_reader.h"

namespace capscope::capture {

namespace {

std::atomic_ref<__u64> flag_of(void* map) {
  return std::atomic_ref<__u64>(static_cast<cs_reader_state*>(map)->sleeping);
}

}  // namespace

std::unique_ptr<ReaderPacing> ReaderPacing::open(int state_fd, uint64_t wakeup_bytes,
                                                 std::string* error) {
  std::unique_ptr<ReaderPacing> p(new ReaderPacing());
  p->len_ = static_cast<size_t>(std::max(sysconf(_SC_PAGESIZE), 4096L));
  void* m = mmap(nullptr, p->len_, PROT_READ | PROT_WRITE, MAP_SHARED, state_fd, 0);
  if (m == MAP_FAILED) {
    *error = fmt::format("cannot map the reader's wakeup flag: {}", std::strerror(errno));
    return nullptr;
  }
  p->map_ = m;
  p->wakeup_bytes_ = wakeup_bytes;
  p->poll_bytes_ = std::max<uint64_t>(wakeup_bytes / 64, sizeof(cs_lane_slot));
  flag_of(m).store(0, std::memory_order_relaxed);
  return p;
}

ReaderPacing::~ReaderPacing() {
  if (map_ != nullptr) munmap(map_, len_);
}

bool ReaderPacing::sleeping() const { return flag_of(map_).load(std::memory_order_relaxed) != 0; }

void ReaderPacing::drained(uint64_t lane_bytes) {
  if (lane_bytes >= poll_bytes_) {
    polling_ = true;
    quiet_polls_ = 0;
  } else if (polling_ && ++quiet_polls_ >= kQuietPolls) {
    polling_ = false;
  }
}

int ReaderPacing::wait(int timeout_ms, RingReader& ring, const LaneReader& lanes) {
  if (timeout_ms == 0) return ring.wait(0);
  if (polling_) return ring.wait(std::min(timeout_ms, kPollMs));
  // The flag goes up before the last look at the lanes (a full fence: the
  // look cannot pass the store), so a record published after that look sees it.
  flag_of(map_).store(1, std::memory_order_seq_cst);
  int err = 0;
  if (lanes.max_lane_lag_bytes() < std::max<uint64_t>(wakeup_bytes_, 1))
    err = ring.wait(timeout_ms);
  flag_of(map_).store(0, std::memory_order_relaxed);
  return err;
}

}  // namespace capscope::capture
