#include "capture/ring_reader.h"

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace capscope::capture {

namespace {

constexpr uint32_t kHeaderBytes = 8;  // BPF_RINGBUF_HDR_SZ
// What epoll_wait reports: the ring buffer's wakeup, or wake()'s.
constexpr uint32_t kRingEvent = 0;
constexpr uint32_t kWakeEvent = 1;

std::atomic_ref<uint64_t> position(void* page) {
  return std::atomic_ref<uint64_t>(*static_cast<uint64_t*>(page));
}

}  // namespace

uint64_t RingReader::lag_bytes() const {
  uint64_t producer = position(producer_map_).load(std::memory_order_acquire);
  uint64_t consumer = position(consumer_map_).load(std::memory_order_relaxed);
  return producer > consumer ? producer - consumer : 0;
}

std::unique_ptr<RingReader> RingReader::open(int map_fd, std::string* error) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0 || info.type != BPF_MAP_TYPE_RINGBUF) {
    *error = "the events map is not a ring buffer";
    return nullptr;
  }
  std::unique_ptr<RingReader> r(new RingReader());
  r->page_size_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  r->data_size_ = info.max_entries;
  r->consumer_map_ = mmap(nullptr, r->page_size_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (r->consumer_map_ == MAP_FAILED) {
    r->consumer_map_ = nullptr;
    *error = fmt::format("cannot map the ring buffer's consumer page: {}", std::strerror(errno));
    return nullptr;
  }
  r->producer_map_len_ = r->page_size_ + 2 * r->data_size_;
  r->producer_map_ = mmap(nullptr, r->producer_map_len_, PROT_READ, MAP_SHARED, map_fd,
                          static_cast<off_t>(r->page_size_));
  if (r->producer_map_ == MAP_FAILED) {
    r->producer_map_ = nullptr;
    *error = fmt::format("cannot map the ring buffer's data: {}", std::strerror(errno));
    return nullptr;
  }
  r->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kRingEvent;
  if (r->epoll_fd_ < 0 || epoll_ctl(r->epoll_fd_, EPOLL_CTL_ADD, map_fd, &ev) != 0) {
    *error = fmt::format("cannot wait on the ring buffer: {}", std::strerror(errno));
    return nullptr;
  }
  r->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ev.data.u32 = kWakeEvent;
  if (r->wake_fd_ < 0 || epoll_ctl(r->epoll_fd_, EPOLL_CTL_ADD, r->wake_fd_, &ev) != 0) {
    *error = fmt::format("cannot make the ring buffer reader's wake-up eventfd: {}",
                         std::strerror(errno));
    return nullptr;
  }
  return r;
}

RingReader::~RingReader() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (producer_map_ != nullptr) munmap(producer_map_, producer_map_len_);
  if (consumer_map_ != nullptr) munmap(consumer_map_, page_size_);
}

// Space is handed back every kReleaseBytes and at the end: rarely enough that the
// checking CPUs seldom miss on the consumer position, often enough that a long
// batch never keeps a big share of the buffer from them.
constexpr uint64_t kReleaseBytes = 256 * 1024;

int RingReader::consume(const Handler& handler) {
  auto consumer = position(consumer_map_);
  auto producer = position(producer_map_);
  const auto* data = static_cast<const uint8_t*>(producer_map_) + page_size_;
  const uint64_t mask = data_size_ - 1;
  uint64_t cons = consumer.load(std::memory_order_relaxed);
  uint64_t released = cons;
  uint64_t prod = producer.load(std::memory_order_acquire);
  int n = 0;
  while (cons < prod) {
    auto* rec = const_cast<uint8_t*>(data + (cons & mask));
    uint32_t len = std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(rec))
                       .load(std::memory_order_acquire);
    if (len & BPF_RINGBUF_BUSY_BIT) break;  // reserved, not committed yet
    uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
      handler(std::span<const uint8_t>(rec + kHeaderBytes, size));
      ++n;
    }
    cons += (static_cast<uint64_t>(size) + kHeaderBytes + 7) & ~7ULL;
    if (cons - released >= kReleaseBytes) {
      consumer.store(cons, std::memory_order_release);
      released = cons;
    }
    if (cons >= prod) prod = producer.load(std::memory_order_acquire);
  }
  if (cons != released) consumer.store(cons, std::memory_order_release);
  return n;
}

void RingReader::wake() {
  uint64_t one = 1;
  // Only EAGAIN can fail here (the counter is full): a wake-up is pending anyway.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

int RingReader::wait(int timeout_ms) {
  std::array<epoll_event, 2> events{};
  int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
  if (ready < 0 && errno != EINTR) return -errno;
  for (int i = 0; i < ready; ++i) {
    uint64_t count = 0;  // wake()'s writes since: read to re-arm
    if (events[static_cast<size_t>(i)].data.u32 == kWakeEvent &&
        read(wake_fd_, &count, sizeof count) < 0 && errno != EAGAIN)
      return -errno;
  }
  return 0;
}

int RingReader::poll(int timeout_ms, const Handler& handler) {
  if (int err = wait(timeout_ms); err < 0) return err;
  // Without a wakeup, what trickled in below the wakeup mark is read now.
  return consume(handler);
}

}  // namespace capscope::capture
