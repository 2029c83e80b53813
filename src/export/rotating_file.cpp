#include "export/rotating_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <vector>

namespace capscope::exporter {

namespace {

constexpr size_t kBufferLimit = 64 << 10;  // bytes of lines held before a write()
constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kFirstBackoffNs = kSecond;
constexpr int64_t kMaxBackoffNs = 30 * kSecond;
constexpr int64_t kLogEveryNs = 60 * kSecond;  // one report per kind of error at most
constexpr size_t kCompressChunk = 256 << 10;
// zlib level 1: rotated JSON shrinks about as much as at level 6 (it is repetitive), and
// compression runs in the writer's thread, so speed wins (docs/EXPORT.md has timings).
constexpr int kCompressLevel = 1;

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kSecond + ts.tv_nsec;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The backup number of `name` if it is "<base>.<N>" or "<base>.<N>.gz", else 0.
unsigned backup_index(std::string_view name, std::string_view base) {
  if (name.size() <= base.size() + 1 || name.substr(0, base.size()) != base ||
      name[base.size()] != '.')
    return 0;
  std::string_view rest = name.substr(base.size() + 1);
  if (rest.ends_with(".gz")) rest.remove_suffix(3);
  unsigned n = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
  // Canonical numbers only ("07" is not backup 7: renaming by number would miss it).
  if (ec != std::errc() || end != rest.data() + rest.size() || rest.starts_with('0')) return 0;
  return n;
}

constexpr int kPipeWaitMs = 1000;

bool wait_writable(int fd) {
  pollfd p{fd, POLLOUT, 0};
  int n = 0;
  do {
    n = ::poll(&p, 1, kPipeWaitMs);
  } while (n < 0 && errno == EINTR);
  if (n > 0 && (p.revents & POLLOUT) != 0) return true;
  errno = EAGAIN;
  return false;
}

}  // namespace

int FileOps::open(const std::string& path, int flags, mode_t mode) {
  return ::open(path.c_str(), flags, mode);
}
ssize_t FileOps::read(int fd, void* buf, size_t n) { return ::read(fd, buf, n); }
ssize_t FileOps::write(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }
int FileOps::fdatasync(int fd) { return ::fdatasync(fd); }
int FileOps::fstat(int fd, struct stat* st) { return ::fstat(fd, st); }
int FileOps::fchmod(int fd, mode_t mode) { return ::fchmod(fd, mode); }
int FileOps::ftruncate(int fd, off_t size) { return ::ftruncate(fd, size); }
int FileOps::close(int fd) { return ::close(fd); }
int FileOps::stat(const std::string& path, struct stat* st) { return ::stat(path.c_str(), st); }
int FileOps::lstat(const std::string& path, struct stat* st) { return ::lstat(path.c_str(), st); }
int FileOps::rename(const std::string& from, const std::string& to) {
  return ::rename(from.c_str(), to.c_str());
}
int FileOps::unlink(const std::string& path) { return ::unlink(path.c_str()); }
int FileOps::mkdir(const std::string& path, mode_t mode) { return ::mkdir(path.c_str(), mode); }

RotatingFile::RotatingFile(std::string path, RotationOptions options, std::shared_ptr<FileOps> ops,
                           Clock clock)
    : path_(std::move(path)),
      options_(options),
      ops_(ops ? std::move(ops) : std::make_shared<FileOps>()),
      clock_(clock ? std::move(clock) : Clock(monotonic_ns)) {}

RotatingFile::~RotatingFile() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!buffer_.empty()) write_buffer_locked();
  close_locked();
}

bool RotatingFile::open(std::string* error) {
  std::lock_guard<std::mutex> lock(mu_);
  close_locked();
  return open_locked(error);
}

bool RotatingFile::write_line(std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (line.ends_with('\n')) line.remove_suffix(1);
  const uint64_t size = line.size() + 1;
  if (line.find('\n') != std::string_view::npos) {
    drop_locked(1, size);
    stats_.last_error = "refused a line holding a newline before its end";
    return false;
  }
  maybe_rotate_by_age_locked();
  if (!ensure_open_locked()) {
    drop_locked(1, size);
    return false;
  }
  const uint64_t held = file_size_ + buffer_.size();
  if (options_.max_size_bytes > 0 && rotatable_ && held > 0 &&
      held + size > options_.max_size_bytes && now() >= rotate_retry_at_ns_) {
    rotate_locked();
    if (!ensure_open_locked()) {
      drop_locked(1, size);
      return false;
    }
  }
  buffer_.append(line);
  buffer_.push_back('\n');
  ++buffered_lines_;
  if (buffer_.size() >= kBufferLimit) return write_buffer_locked();
  return true;
}

bool RotatingFile::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  check_still_linked_locked();
  maybe_rotate_by_age_locked();
  // Also with nothing buffered: once the backoff is over, the file comes back even
  // before the next event.
  bool open = ensure_open_locked();
  if (!write_buffer_locked()) return false;
  if (!open || !regular_) return open;
  if (ops_->fdatasync(fd_) != 0) {
    fail_locked("fdatasync", path_, errno);
    return false;
  }
  return true;
}

bool RotatingFile::reopen() {
  std::lock_guard<std::mutex> lock(mu_);
  write_buffer_locked();
  close_locked();
  return open_locked(nullptr);
}

bool RotatingFile::rotate() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ensure_open_locked() || !rotatable_) return false;
  if (file_size_ + buffer_.size() == 0) return true;
  return rotate_locked();
}

RotatingFileStats RotatingFile::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

// ---- opening and closing -------------------------------------------------------------

bool RotatingFile::open_locked(std::string* error) {
  // O_NONBLOCK: opening a FIFO nobody reads would wait forever (it fails with ENXIO
  // instead, and is retried); a regular file ignores the flag.
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;
  int fd = ops_->open(path_, kFlags, options_.mode);
  if (fd < 0 && errno == ENOENT) {
    // The directory is missing (never made, or removed under us): make it, as a log
    // writer must to resume by itself.
    std::string dir = parent_dir(path_);
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
      if (pos == dir.size() || dir[pos] == '/') ops_->mkdir(dir.substr(0, pos), 0755);
    }
    fd = ops_->open(path_, kFlags, options_.mode);
  }
  struct stat st {};
  if (fd < 0 || ops_->fstat(fd, &st) != 0) {
    int err = errno;
    if (fd >= 0) ops_->close(fd);
    fail_locked("open", path_, err);
    retry_at_ns_ = now() + next_backoff_locked();
    if (error != nullptr) *error = stats_.last_error;
    return false;
  }
  fd_ = fd;
  regular_ = S_ISREG(st.st_mode);
  // Through a symbolic link (/dev/stdout redirected to a file), a rename would move the
  // link, not the file: such a path is written to but never rotated.
  struct stat named {};
  rotatable_ = regular_ && ops_->lstat(path_, &named) == 0 && !S_ISLNK(named.st_mode);
  file_size_ = regular_ ? static_cast<uint64_t>(st.st_size) : 0;
  opened_at_ns_ = now();
  // A file left by an older run may be readable by others; never touch a device's mode.
  if (regular_ && (st.st_mode & 07777) != options_.mode && ops_->fchmod(fd, options_.mode) != 0)
    fail_locked("chmod", path_, errno);
  return true;
}

void RotatingFile::close_locked() {
  if (fd_ >= 0) ops_->close(fd_);
  fd_ = -1;
  regular_ = false;
  rotatable_ = false;
  file_size_ = 0;
}

bool RotatingFile::ensure_open_locked() {
  if (fd_ >= 0) return true;
  if (now() < retry_at_ns_) return false;
  return open_locked(nullptr);
}

// Someone removed the file, renamed it (logrotate without a SIGHUP) or removed its
// directory: what is written to the open descriptor would reach no reader.
void RotatingFile::check_still_linked_locked() {
  if (fd_ < 0 || !regular_) return;
  struct stat mine {};
  struct stat named {};
  bool same = ops_->fstat(fd_, &mine) == 0 && ops_->stat(path_, &named) == 0 &&
              mine.st_ino == named.st_ino && mine.st_dev == named.st_dev;
  if (same) return;
  spdlog::info("export file {} was removed or renamed: creating it again", path_);
  // Renamed: the lines held so far belong to it, as with a reopen. Removed: no one
  // could read them there, so they go to the new file.
  if (mine.st_nlink > 0) write_buffer_locked();
  close_locked();
  retry_at_ns_ = 0;
  ensure_open_locked();
}

// ---- writing ---------------------------------------------------------------------------

bool RotatingFile::write_buffer_locked() {
  if (buffer_.empty()) return true;
  if (!ensure_open_locked()) {
    drop_locked(buffered_lines_, buffer_.size());
    buffer_.clear();
    buffered_lines_ = 0;
    return false;
  }
  size_t done = 0;
  int err = 0;
  while (done < buffer_.size()) {
    ssize_t n = ops_->write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    // A pipe whose reader is slow: wait a little for room, so the line is not cut, but
    // never for long.
    if (n < 0 && errno == EAGAIN && wait_writable(fd_)) continue;
    if (n <= 0) {
      err = n == 0 ? EIO : errno;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0) {
    stats_.lines_written += buffered_lines_;
    stats_.bytes_written += buffer_.size();
    file_size_ += buffer_.size();
    buffer_.clear();
    buffered_lines_ = 0;
    if (dropping_) {
      spdlog::info("export file {}: writing again ({} lines dropped so far)", path_,
                   stats_.lines_dropped);
      dropping_ = false;
    }
    backoff_ns_ = 0;
    return true;
  }
  // Keep the whole lines that made it; cut the one the full disk split.
  std::string_view written(buffer_.data(), done);
  size_t whole = written.rfind('\n') == std::string_view::npos ? 0 : written.rfind('\n') + 1;
  if (whole < done && regular_) ops_->ftruncate(fd_, static_cast<off_t>(file_size_ + whole));
  auto whole_lines = static_cast<uint64_t>(
      std::count(written.begin(), written.begin() + static_cast<ptrdiff_t>(whole), '\n'));
  stats_.lines_written += whole_lines;
  stats_.bytes_written += whole;
  drop_locked(buffered_lines_ - whole_lines, buffer_.size() - whole);
  buffer_.clear();
  buffered_lines_ = 0;
  fail_locked("write", path_, err);
  close_locked();
  retry_at_ns_ = now() + next_backoff_locked();
  return false;
}

void RotatingFile::drop_locked(uint64_t lines, uint64_t bytes) {
  stats_.lines_dropped += lines;
  stats_.bytes_dropped += bytes;
  if (lines > 0) dropping_ = true;
}

// ---- rotation --------------------------------------------------------------------------

void RotatingFile::maybe_rotate_by_age_locked() {
  if (options_.rotation_interval_ns <= 0 || fd_ < 0 || !rotatable_) return;
  int64_t t = now();
  if (t - opened_at_ns_ < options_.rotation_interval_ns || t < rotate_retry_at_ns_) return;
  if (file_size_ + buffer_.size() == 0) {
    opened_at_ns_ = t;  // nothing to keep: an empty backup helps no one
    return;
  }
  rotate_locked();
}

std::string RotatingFile::backup_name(unsigned index, bool gz) const {
  return fmt::format("{}.{}{}", path_, index, gz ? ".gz" : "");
}

bool RotatingFile::rotate_locked() {
  if (fd_ < 0 || !rotatable_) return false;  // never rename a device, a pipe or a link
  if (!write_buffer_locked()) return false;
  std::string first = backup_name(1, false);
  if (options_.max_backups == 0) {
    if (ops_->unlink(path_) != 0 && errno != ENOENT) {
      fail_locked("remove", path_, errno);
      rotate_retry_at_ns_ = now() + next_backoff_locked();
      return false;
    }
  } else {
    shift_backups_locked();
    if (ops_->rename(path_, first) != 0) {
      int err = errno;
      fail_locked("rename", path_, err);
      rotate_retry_at_ns_ = now() + next_backoff_locked();
      // Gone (its directory removed): reopen creates it again; otherwise keep
      // appending to the current file and try again later.
      if (err == ENOENT) close_locked();
      return false;
    }
  }
  close_locked();
  ++stats_.rotations;
  rotate_retry_at_ns_ = 0;
  retry_at_ns_ = 0;
  open_locked(nullptr);
  // After the new file is open, so events flow again before the slow part.
  if (options_.compress && options_.max_backups > 0) compress_backup_locked(first);
  return true;
}

// name.i becomes name.(i+1), compressed or not as each was left; name.N and any
// numbered past it (left by a run that kept more) go. Only the backups that exist are
// touched, found in the directory, so a large --export-file-max-backups costs nothing.
void RotatingFile::shift_backups_locked() {
  std::string dir = parent_dir(path_);
  std::string base = base_name(path_);
  std::vector<std::pair<unsigned, bool>> found;  // (index, gz)
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* ent = ::readdir(d)) {
      std::string_view name = ent->d_name;
      if (unsigned i = backup_index(name, base); i > 0)
        found.emplace_back(i, name.ends_with(".gz"));
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end(), std::greater<>());  // oldest first
  for (const auto& [index, gz] : found) {
    std::string from = backup_name(index, gz);
    if (index >= options_.max_backups) {
      if (ops_->unlink(from) != 0 && errno != ENOENT) fail_locked("remove", from, errno);
    } else if (ops_->rename(from, backup_name(index + 1, gz)) != 0 && errno != ENOENT) {
      fail_locked("rename", from, errno);
    }
  }
}

// from -> from.gz through from.gz.tmp, so a reader never sees half a .gz; on failure the
// uncompressed backup stays, which is still a valid backup.
bool RotatingFile::compress_backup_locked(const std::string& from) {
  std::string to = from + ".gz";
  std::string tmp = to + ".tmp";
  int in = ops_->open(from, O_RDONLY | O_CLOEXEC, 0);
  if (in < 0) {
    fail_locked("compress: open", from, errno);
    return false;
  }
  int out = ops_->open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, options_.mode);
  if (out < 0) {
    fail_locked("compress: open", tmp, errno);
    ops_->close(in);
    return false;
  }
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer, so gzip and zcat read it.
  bool ok = deflateInit2(&z, kCompressLevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  std::vector<unsigned char> src(kCompressChunk);
  std::vector<unsigned char> dst(kCompressChunk);
  std::string failed_op = ok ? "" : "compress: zlib init";
  int err = ok ? 0 : ENOMEM;
  for (int flush = Z_NO_FLUSH; ok && flush != Z_FINISH;) {
    ssize_t n = ops_->read(in, src.data(), src.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      err = errno;
      failed_op = "compress: read";
      break;
    }
    flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
    z.next_in = src.data();
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = dst.data();
      z.avail_out = static_cast<uInt>(dst.size());
      deflate(&z, flush);
      size_t have = dst.size() - z.avail_out;
      for (size_t done = 0; ok && done < have;) {
        ssize_t w = ops_->write(out, dst.data() + done, have - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          ok = false;
          err = w == 0 ? EIO : errno;
          failed_op = "compress: write";
        } else {
          done += static_cast<size_t>(w);
        }
      }
    } while (ok && z.avail_out == 0);
  }
  deflateEnd(&z);
  ops_->close(in);
  if (ops_->close(out) != 0 && ok) {
    ok = false;
    err = errno;
    failed_op = "compress: close";
  }
  if (ok && ops_->rename(tmp, to) != 0) {
    ok = false;
    err = errno;
    failed_op = "compress: rename";
  }
  if (!ok) {
    ops_->unlink(tmp);
    fail_locked(failed_op, tmp, err);
    return false;
  }
  ops_->unlink(from);
  return true;
}

// ---- errors ----------------------------------------------------------------------------

int64_t RotatingFile::next_backoff_locked() {
  backoff_ns_ = backoff_ns_ == 0 ? kFirstBackoffNs : std::min(backoff_ns_ * 2, kMaxBackoffNs);
  return backoff_ns_;
}

void RotatingFile::fail_locked(std::string_view operation, const std::string& target, int err) {
  ++stats_.write_errors;
  stats_.last_error = fmt::format("{} {}: {}", operation, target, std::strerror(err));
  // One report per kind (operation and errno), then at most one a minute with a count:
  // a full disk fails every write, and the log must not fill what is left of it.
  auto& [last_logged, unreported] = logged_[fmt::format("{} {}", operation, err)];
  int64_t t = now();
  if (last_logged != 0 && t - last_logged < kLogEveryNs) {
    ++unreported;
    return;
  }
  if (unreported > 0) {
    spdlog::warn("export file: {} ({} more since the last report; {} lines dropped so far)",
                 stats_.last_error, unreported, stats_.lines_dropped);
  } else {
    spdlog::warn("export file: {} (retrying; lines are dropped and counted meanwhile)",
                 stats_.last_error);
  }
  last_logged = t == 0 ? 1 : t;
  unreported = 0;
}

}  // namespace capscope::exporter
