// The agent's --export-file: JSON lines appended to a file that is rotated by size and
// by age, with numbered backups (name.1 newest ... name.N oldest, ".gz" when compressed).
//
// An exporter must never take the agent down and must not need a person to bring it
// back: a failed write (disk full, I/O error, the directory removed) drops the lines it
// could not write and counts them, logs once per kind of error, closes the file and
// tries again after a backoff, so exporting resumes by itself when space comes back.
// A line is always whole: it never spans two files, and a write cut short by a full
// disk is truncated back to the last complete line.
//
// Thread-safe: the event thread writes, a timer flushes, the metrics thread reads stats.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace capscope::exporter {

struct RotationOptions {
  uint64_t max_size_bytes = 10ULL << 20;  // rotate before a line would pass it; 0: never
  int64_t rotation_interval_ns = 0;       // rotate a non-empty file this old; 0: never
  unsigned max_backups = 5;               // rotated files kept; 0: none, start afresh
  bool compress = false;                  // gzip rotated files (name.1.gz ...)
  mode_t mode = 0600;                     // events carry command lines: owner only
};

struct RotatingFileStats {
  uint64_t lines_written = 0;
  uint64_t bytes_written = 0;
  uint64_t lines_dropped = 0;  // could not be written (errors, backoff, bad lines)
  uint64_t bytes_dropped = 0;
  uint64_t write_errors = 0;  // failed system calls (open, write, rename, compress, ...)
  uint64_t rotations = 0;
  std::string last_error;  // one line, "" when nothing has failed yet
};

// The system calls the writer makes, so tests can make them fail (disk full) without
// root. Each returns what the POSIX call returns and sets errno the same way.
class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual int open(const std::string& path, int flags, mode_t mode);
  virtual ssize_t read(int fd, void* buf, size_t n);
  virtual ssize_t write(int fd, const void* buf, size_t n);
  virtual int fdatasync(int fd);
  virtual int fstat(int fd, struct stat* st);
  virtual int fchmod(int fd, mode_t mode);
  virtual int ftruncate(int fd, off_t size);
  virtual int close(int fd);
  virtual int stat(const std::string& path, struct stat* st);
  virtual int lstat(const std::string& path, struct stat* st);
  virtual int rename(const std::string& from, const std::string& to);
  virtual int unlink(const std::string& path);
  virtual int mkdir(const std::string& path, mode_t mode);
};

class RotatingFile {
 public:
  using Clock = std::function<int64_t()>;  // CLOCK_MONOTONIC ns

  // Does not touch the disk: open() does. `ops` and `clock` are for tests.
  RotatingFile(std::string path, RotationOptions options, std::shared_ptr<FileOps> ops = nullptr,
               Clock clock = nullptr);
  ~RotatingFile();  // flushes and closes
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  // Opens (creating the directory if missing) for appending. False with a one-line
  // reason in *error when it cannot; the writer stays usable and retries on later writes,
  // so the caller decides whether a bad path at start is fatal.
  bool open(std::string* error);

  // Appends one line (the trailing '\n' is added when missing). Never waits out an
  // error: a line that cannot be written now is dropped and counted, and false returned.
  // True means taken: a buffered line that a later write fails on is counted in stats().
  // A line holding a '\n' before its end is refused (it would be two lines).
  bool write_line(std::string_view line);

  // Hands buffered lines to the file and fdatasync()s it; also rotates a file past
  // its age and reopens one that was deleted or renamed away. The agent calls it each
  // second. False when something failed (counted, see stats()).
  bool flush();

  // Closes and opens the path again (SIGHUP, after an external logrotate).
  bool reopen();

  // Rotates now if the file holds anything (tests, an operator's request). False when
  // it failed, or the path is not a regular file named directly (a device, a pipe or a
  // symbolic link is never rotated).
  bool rotate();

  [[nodiscard]] RotatingFileStats stats() const;
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  bool open_locked(std::string* error);
  void close_locked();
  bool ensure_open_locked();
  bool write_buffer_locked();
  bool rotate_locked();
  void shift_backups_locked();
  bool compress_backup_locked(const std::string& from);
  void check_still_linked_locked();
  void maybe_rotate_by_age_locked();
  void drop_locked(uint64_t lines, uint64_t bytes);
  void fail_locked(std::string_view operation, const std::string& target, int err);
  int64_t next_backoff_locked();
  [[nodiscard]] int64_t now() const { return clock_(); }
  [[nodiscard]] std::string backup_name(unsigned index, bool gz) const;

  const std::string path_;
  const RotationOptions options_;
  const std::shared_ptr<FileOps> ops_;
  const Clock clock_;

  mutable std::mutex mu_;
  int fd_ = -1;
  bool regular_ = false;      // a regular file: truncation, fdatasync, mode
  bool rotatable_ = false;    // and named directly, not through a symbolic link
  uint64_t file_size_ = 0;    // bytes in the file
  int64_t opened_at_ns_ = 0;  // age rotation counts from here
  std::string buffer_;        // whole lines not yet handed to the file
  uint64_t buffered_lines_ = 0;
  int64_t retry_at_ns_ = 0;         // no open attempt before this
  int64_t rotate_retry_at_ns_ = 0;  // no rotation attempt before this
  int64_t backoff_ns_ = 0;
  bool dropping_ = false;  // lines dropped since the last good write: log the recovery
  RotatingFileStats stats_;
  // Error kind ("write ENOSPC") -> when it was last logged and how often since.
  std::map<std::string, std::pair<int64_t, uint64_t>> logged_;
};

}  // namespace capscope::exporter
