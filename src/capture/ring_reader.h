// Reads a BPF ring buffer map (BPF_MAP_TYPE_RINGBUF) by mapping it, the way
// libbpf's ring_buffer does, with one difference that matters at a million
// records a second: consumed space is handed back to the kernel once per batch,
// not once per record. The kernel reads the consumer position on every reserve;
// each write of it from the reader's CPU costs the checking CPU a cache miss.
//
// Layout (kernel ABI, include/uapi/linux/bpf.h and kernel/bpf/ringbuf.c): one
// writable page holding the consumer position, then a read-only page holding
// the producer position, then the data area mapped twice in a row so a record
// that wraps is contiguous. Each record starts with an 8-byte header: a 32-bit
// length whose top bits mark it busy (not yet committed) or discarded, and a
// page offset the reader does not need.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace capscope::capture {

class RingReader {
 public:
  using Handler = std::function<void(std::span<const uint8_t>)>;

  // Maps the ring buffer behind map_fd; nullptr and a reason in *error if it cannot.
  static std::unique_ptr<RingReader> open(int map_fd, std::string* error);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Waits up to timeout_ms for the kernel's wakeup, then hands every committed
  // record to `handler`. Returns the number of records, or a negative errno.
  int poll(int timeout_ms, const Handler& handler);
  // poll()'s wait alone: 0 once woken or timed out, or a negative errno.
  int wait(int timeout_ms);
  // Hands over what is committed now, without waiting.
  int consume(const Handler& handler);
  // Ends a poll() that is waiting now (or the next one) early, from any thread: work
  // for the polling thread is waiting.
  void wake();
  // Bytes the kernel has reserved that this reader has not consumed yet (between
  // polls: consume() hands back everything it read before it returns).
  [[nodiscard]] uint64_t lag_bytes() const;

 private:
  RingReader() = default;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd in the epoll set beside the ring buffer
  size_t page_size_ = 0;
  size_t data_size_ = 0;  // a power of two
  void* consumer_map_ = nullptr;
  void* producer_map_ = nullptr;
  size_t producer_map_len_ = 0;
};

}  // namespace capscope::capture
