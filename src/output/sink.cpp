#include "output/sink.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <ostream>
#include <thread>
#include <vector>

namespace capscope::output {

bool StreamSink::write(std::string_view bytes) {
  out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out_ && error_.empty()) error_ = "the output stream refused the events";
  return static_cast<bool>(out_);
}

bool StreamSink::flush(bool /*complete*/) {
  out_.flush();
  if (!out_ && error_.empty()) error_ = "the output stream refused the events";
  return static_cast<bool>(out_);
}

namespace {

// O_DIRECT pays off only where the data then goes to a device: on tmpfs it is
// the same copy, and it turns the tail of every flush into a second write.
bool direct_io_worthwhile(int fd) {
  struct stat st {};
  struct statfs fs {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (fstatfs(fd, &fs) != 0) return false;
  return fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC;
}

// Bytes handed to the I/O thread at once: one transparent huge page. A direct write
// pins its pages and the device's completion unpins them, on whichever CPU takes the
// disk's interrupt (often the traced workload's); one 2 MiB folio is one pin, one
// unpin and one segment, where 4 KiB pages were 512 of each and, past the device's
// segment limit (254 on a virtio disk), two or three requests a block.
constexpr size_t kBlock = 2 << 20;
constexpr size_t kAlign = 4096;  // O_DIRECT offset, size and address alignment
// At most this many blocks in flight or being filled: 256 MiB ride out a disk that
// stalls for about 400 ms under a flood of `-o json` (650 MB/s here; 64 MiB once lost
// 344,000 events of a benchmark round to one such stall). They are allocated as a flood
// needs them, and written blocks beyond kKeptFree idle ones go back to the system, so a
// quiet trace holds a few.
constexpr size_t kBlocks = 128;
constexpr size_t kKeptFree = 8;

// A block aligned to its size and offered to the kernel as one huge page (where
// transparent huge pages are off, it is ordinary pages: slower, not wrong).
char* allocate_block() {
  void* area =
      ::mmap(nullptr, 2 * kBlock, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return nullptr;
  auto* start = static_cast<char*>(area);
  size_t lead = (kBlock - reinterpret_cast<uintptr_t>(start) % kBlock) % kBlock;
  char* b = start + lead;
  if (lead > 0) ::munmap(start, lead);
  ::munmap(b + kBlock, kBlock - lead);
  (void)::madvise(b, kBlock, MADV_HUGEPAGE);
  return b;
}

void free_block(char* b) { ::munmap(b, kBlock); }

}  // namespace

// With O_DIRECT, full blocks are written by a thread of their own: a direct write
// waits for the device, and the events must not. When every block is in flight the writer waits,
// so the ring buffer fills and the kernel counts what it drops: nothing is lost
// without being counted.
struct FileSink::Io {
  struct Job {
    char* data;
    size_t size;
    off_t offset;
  };

  std::string path;
  int fd = -1;         // buffered (and the only one where O_DIRECT is not used)
  int direct_fd = -1;  // O_DIRECT, or -1
  bool seekable = false;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;
  std::vector<char*> free_blocks;
  std::vector<char*> all_blocks;
  size_t in_flight = 0;
  bool stopping = false;
  std::string error;  // the first failure; guarded by mu
  std::thread thread;

  Io(std::string p, int f, int df, bool s) : path(std::move(p)), fd(f), direct_fd(df), seekable(s) {
    thread = std::thread([this] { run(); });
  }
  ~Io() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    cv.notify_all();
    thread.join();
    for (char* b : all_blocks) free_block(b);
    if (direct_fd >= 0) ::close(direct_fd);
    if (fd >= 0) ::close(fd);
  }
  Io(const Io&) = delete;
  Io& operator=(const Io&) = delete;

  // Writes all of data at offset (or at the end, for pipes and devices); false and
  // errno on failure.
  bool write_all(int to, const char* data, size_t n, off_t offset) const {
    while (n > 0) {
      ssize_t w = seekable ? ::pwrite(to, data, n, offset) : ::write(to, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (w == 0) errno = EIO;
        return false;
      }
      data += w;
      n -= static_cast<size_t>(w);
      offset += w;
    }
    return true;
  }

  void fail(int err) {
    std::lock_guard<std::mutex> lock(mu);
    if (error.empty()) error = fmt::format("writing events to {}: {}", path, std::strerror(err));
  }

  void run() {
    for (;;) {
      Job job{};
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (jobs.empty()) return;
        job = jobs.front();
        jobs.pop_front();
      }
      bool direct = direct_fd >= 0 && job.size % kAlign == 0;
      if (!write_all(direct ? direct_fd : fd, job.data, job.size, job.offset)) fail(errno);
      {
        std::lock_guard<std::mutex> lock(mu);
        if (free_blocks.size() < kKeptFree) {
          free_blocks.push_back(job.data);
        } else {
          std::erase(all_blocks, job.data);
          free_block(job.data);
        }
        --in_flight;
      }
      cv.notify_all();
    }
  }

  void submit(char* data, size_t size, off_t offset) {
    {
      std::lock_guard<std::mutex> lock(mu);
      jobs.push_back({data, size, offset});
      ++in_flight;
    }
    cv.notify_all();
  }

  // A free block, a new one while fewer than kBlocks exist, else waits for one (nullptr
  // only if not even the first can be allocated).
  char* take_block() {
    std::unique_lock<std::mutex> lock(mu);
    if (free_blocks.empty() && all_blocks.size() < kBlocks) {
      if (char* b = allocate_block()) {
        all_blocks.push_back(b);
        return b;
      }
      if (all_blocks.empty()) return nullptr;
    }
    cv.wait(lock, [&] { return !free_blocks.empty(); });
    char* b = free_blocks.back();
    free_blocks.pop_back();
    return b;
  }

  void wait_idle() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }

  bool failed() {
    std::lock_guard<std::mutex> lock(mu);
    return !error.empty();
  }
};

std::unique_ptr<FileSink> FileSink::open(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = fmt::format("--output {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  struct stat st {};
  bool seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  int direct_fd = -1;
  if (direct_io_worthwhile(fd)) direct_fd = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  std::unique_ptr<FileSink> sink(new FileSink(path, fd, direct_fd, seekable));
  if (sink->direct() && sink->block_ == nullptr) {
    *error = fmt::format("--output {}: cannot allocate the write buffers", path);
    return nullptr;
  }
  return sink;
}

FileSink::FileSink(std::string path, int fd, int direct_fd, bool seekable)
    : io_(std::make_unique<Io>(std::move(path), fd, direct_fd, seekable)), direct_(direct_fd >= 0) {
  // Without O_DIRECT, write() hands the caller's bytes on as they are: no block.
  if (direct_) block_ = io_->take_block();
}

FileSink::~FileSink() {
  if (block_ != nullptr) flush(true);
  io_->wait_idle();
  if (block_ != nullptr) {
    std::lock_guard<std::mutex> lock(io_->mu);
    io_->free_blocks.push_back(block_);
  }
}

// The first failure is kept and never changed afterwards, so the reference stays valid.
const std::string& FileSink::error() const {
  std::lock_guard<std::mutex> lock(io_->mu);
  return io_->error;
}

// Hands the block's whole pages to the I/O thread (with O_DIRECT), or all of it
// (without), and carries what is left into a fresh block.
bool FileSink::submit_aligned() {
  if (!direct_) return !io_->failed();  // write() wrote everything already
  size_t n = used_ & ~(kAlign - 1);
  if (n == 0) return !io_->failed();
  char* next = io_->take_block();
  size_t rest = used_ - n;
  if (rest > 0) std::memcpy(next, block_ + n, rest);
  io_->submit(block_, n, base_);
  block_ = next;
  base_ += static_cast<off_t>(n);
  used_ = rest;
  return !io_->failed();
}

// With O_DIRECT the last partial page cannot go out directly: it goes through the
// page cache now, so readers see it, and again, directly, once its block is full.
bool FileSink::write_tail() {
  if (!direct_ || used_ == 0) return true;
  if (!io_->write_all(io_->fd, block_, used_, base_)) {
    io_->fail(errno);
    return false;
  }
  return true;
}

bool FileSink::write(std::string_view bytes) {
  if (io_->failed()) return false;
  if (!direct_) {
    // Through the page cache the copy is CPU work that a thread would only move to
    // the core the traced workload needs, and a staging block would only add a
    // second copy: write the caller's (cache-hot) bytes in place.
    if (!io_->write_all(io_->fd, bytes.data(), bytes.size(), base_)) {
      io_->fail(errno);
      return false;
    }
    base_ += static_cast<off_t>(bytes.size());
    return true;
  }
  while (!bytes.empty()) {
    size_t take = std::min(bytes.size(), kBlock - used_);
    std::memcpy(block_ + used_, bytes.data(), take);
    used_ += take;
    bytes.remove_prefix(take);
    if (used_ == kBlock && !submit_aligned()) return false;
  }
  return true;
}

bool FileSink::flush(bool complete) {
  if (!submit_aligned()) return false;
  if (complete) io_->wait_idle();
  if (!write_tail()) return false;
  return !io_->failed();
}

}  // namespace capscope::output
