// The agent's JSON export: the rotated file (size and age, backups, gzip, permissions,
// a full disk and a vanished directory survived and counted) and the Tetragon-style
// allow/deny filters.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "export/export_filter.h"
#include "export/rotating_file.h"

namespace capscope::exporter {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSec = 1'000'000'000;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string gunzip(const fs::path& p) {
  gzFile gz = gzopen(p.c_str(), "rb");
  if (gz == nullptr) return "<cannot open>";
  std::string out;
  char buf[65536];
  for (int n; (n = gzread(gz, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  gzclose(gz);
  return out;
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// A line of exactly `size` bytes with its newline, starting with `tag`.
std::string line_of(size_t size, const std::string& tag) {
  std::string s = tag;
  s.resize(size - 1, '.');
  return s;
}

class ExportFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("capscope-export-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = dir_ / "events.log";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<RotatingFile> make(RotationOptions o, std::shared_ptr<FileOps> ops = nullptr) {
    auto f =
        std::make_unique<RotatingFile>(path_.string(), o, std::move(ops), [this] { return now_; });
    std::string error;
    EXPECT_TRUE(f->open(&error)) << error;
    return f;
  }
  fs::path backup(int i, bool gz = false) const {
    return fs::path(path_.string() + "." + std::to_string(i) + (gz ? ".gz" : ""));
  }

  fs::path dir_;
  fs::path path_;
  int64_t now_ = 1000 * kSec;
};

TEST_F(ExportFileTest, AppendsWholeLinesOwnerOnly) {
  auto f = make({});
  EXPECT_TRUE(f->write_line(R"({"a":1})"));
  EXPECT_TRUE(f->write_line("{\"b\":2}\n"));  // its own newline is not doubled
  ASSERT_TRUE(f->flush());
  EXPECT_EQ(slurp(path_), "{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(mode_of(path_), 0600u);
  auto s = f->stats();
  EXPECT_EQ(s.lines_written, 2u);
  EXPECT_EQ(s.bytes_written, 16u);
  EXPECT_EQ(s.lines_dropped, 0u);
  EXPECT_EQ(s.write_errors, 0u);
  EXPECT_EQ(s.last_error, "");
}

TEST_F(ExportFileTest, AppendsToAnExistingFileAndTightensItsMode) {
  { std::ofstream(path_) << "old\n"; }
  fs::permissions(path_, fs::perms(0644));
  auto f = make({});
  f->write_line("new");
  f->flush();
  EXPECT_EQ(slurp(path_), "old\nnew\n");
  EXPECT_EQ(mode_of(path_), 0600u) << "events carry command lines: not for other users";
}

TEST_F(ExportFileTest, RefusesALineThatWouldBeTwo) {
  auto f = make({});
  EXPECT_FALSE(f->write_line("one\ntwo"));
  f->flush();
  EXPECT_EQ(slurp(path_), "");
  EXPECT_EQ(f->stats().lines_dropped, 1u);
  EXPECT_NE(f->stats().last_error, "");
}

TEST_F(ExportFileTest, RotatesBySizeAtExactLineBoundaries) {
  RotationOptions o;
  o.max_size_bytes = 100;
  auto f = make(o);
  for (int i = 0; i < 3; ++i) f->write_line(line_of(30, "a" + std::to_string(i)));
  f->write_line(line_of(10, "b"));  // 100 bytes: exactly the limit, stays
  EXPECT_EQ(f->stats().rotations, 0u);
  f->write_line(line_of(1, ""));  // 101 would pass it: goes to the next file
  f->flush();
  EXPECT_EQ(f->stats().rotations, 1u);
  std::string first = slurp(backup(1));
  EXPECT_EQ(first.size(), 100u);
  EXPECT_TRUE(first.ends_with(line_of(10, "b") + "\n"));
  EXPECT_EQ(slurp(path_), "\n");
  EXPECT_EQ(mode_of(backup(1)), 0600u);
}

TEST_F(ExportFileTest, ALineLargerThanTheLimitGetsAFileOfItsOwn) {
  RotationOptions o;
  o.max_size_bytes = 50;
  auto f = make(o);
  f->write_line(line_of(20, "small"));
  f->write_line(line_of(80, "big"));
  f->write_line(line_of(20, "after"));
  f->flush();
  EXPECT_EQ(slurp(backup(2)), line_of(20, "small") + "\n");
  EXPECT_EQ(slurp(backup(1)), line_of(80, "big") + "\n");
  EXPECT_EQ(slurp(path_), line_of(20, "after") + "\n");
  EXPECT_EQ(f->stats().lines_written, 3u);
}

TEST_F(ExportFileTest, KeepsMaxBackupsNewestFirst) {
  RotationOptions o;
  o.max_backups = 3;
  auto f = make(o);
  for (int i = 1; i <= 5; ++i) {
    f->write_line("file " + std::to_string(i));
    ASSERT_TRUE(f->rotate());
  }
  f->write_line("file 6");
  f->flush();
  EXPECT_EQ(slurp(path_), "file 6\n");
  EXPECT_EQ(slurp(backup(1)), "file 5\n");
  EXPECT_EQ(slurp(backup(2)), "file 4\n");
  EXPECT_EQ(slurp(backup(3)), "file 3\n");
  EXPECT_FALSE(fs::exists(backup(4))) << "the oldest is removed";
  EXPECT_EQ(f->stats().rotations, 5u);
}

TEST_F(ExportFileTest, RemovesBackupsBeyondALoweredMaximum) {
  { std::ofstream(backup(7)) << "from a run that kept more\n"; }
  { std::ofstream(backup(9, true)) << "x"; }
  { std::ofstream(dir_ / "events.log.notes") << "not ours"; }
  { std::ofstream(dir_ / "events.log.07") << "not ours either"; }
  RotationOptions o;
  o.max_backups = 2;
  auto f = make(o);
  f->write_line("x");
  f->rotate();
  EXPECT_FALSE(fs::exists(backup(7)));
  EXPECT_FALSE(fs::exists(backup(9, true)));
  EXPECT_TRUE(fs::exists(dir_ / "events.log.notes"));
  EXPECT_TRUE(fs::exists(dir_ / "events.log.07"));
  EXPECT_TRUE(fs::exists(backup(1)));
}

TEST_F(ExportFileTest, AHugeBackupCountCostsNothingPerRotation) {
  RotationOptions o;
  o.max_backups = 4'000'000'000U;
  auto f = make(o);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    f->write_line("x" + std::to_string(i));
    ASSERT_TRUE(f->rotate());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(slurp(backup(3)), "x0\n");
  EXPECT_EQ(slurp(backup(1)), "x2\n");
}

TEST_F(ExportFileTest, NoBackupsMeansRotationStartsAfresh) {
  RotationOptions o;
  o.max_backups = 0;
  o.max_size_bytes = 10;
  auto f = make(o);
  f->write_line(line_of(8, "a"));
  f->write_line(line_of(8, "b"));
  f->flush();
  EXPECT_EQ(slurp(path_), line_of(8, "b") + "\n");
  EXPECT_FALSE(fs::exists(backup(1)));
  EXPECT_EQ(f->stats().rotations, 1u);
}

TEST_F(ExportFileTest, RotatesByAgeButNeverAnEmptyFile) {
  RotationOptions o;
  o.rotation_interval_ns = 60 * kSec;
  auto f = make(o);
  f->write_line("minute 0");
  now_ += 59 * kSec;
  f->flush();
  EXPECT_EQ(f->stats().rotations, 0u);
  now_ += 1 * kSec;
  f->flush();  // the agent's one-second flush rotates even without a new event
  EXPECT_EQ(f->stats().rotations, 1u);
  EXPECT_EQ(slurp(backup(1)), "minute 0\n");
  now_ += 60 * kSec;
  f->flush();
  EXPECT_EQ(f->stats().rotations, 1u) << "an empty file is not worth a backup";
  f->write_line("minute 2");
  now_ += 30 * kSec;
  f->write_line("minute 2.5");
  f->flush();
  EXPECT_EQ(f->stats().rotations, 1u) << "the age counts from the last rotation's file";
  now_ += 30 * kSec;
  f->write_line("minute 3");  // a write notices the age as well
  f->flush();
  EXPECT_EQ(f->stats().rotations, 2u);
  EXPECT_EQ(slurp(backup(1)), "minute 2\nminute 2.5\n");
  EXPECT_EQ(slurp(path_), "minute 3\n");
}

TEST_F(ExportFileTest, CompressesRotatedFilesWithGzip) {
  RotationOptions o;
  o.compress = true;
  o.max_backups = 2;
  auto f = make(o);
  std::string first;
  for (int i = 0; i < 5000; ++i) {
    std::string l = R"({"process_kprobe":{"n":)" + std::to_string(i) + "}}";
    f->write_line(l);
    first += l + "\n";
  }
  ASSERT_TRUE(f->rotate());
  f->write_line("second");
  ASSERT_TRUE(f->rotate());
  f->write_line("live");
  f->flush();
  EXPECT_EQ(gunzip(backup(2, true)), first);
  EXPECT_EQ(gunzip(backup(1, true)), "second\n");
  EXPECT_LT(fs::file_size(backup(2, true)), first.size() / 4);
  EXPECT_EQ(mode_of(backup(2, true)), 0600u);
  EXPECT_FALSE(fs::exists(backup(1)));
  EXPECT_FALSE(fs::exists(backup(2)));
  EXPECT_FALSE(fs::exists(fs::path(backup(1, true).string() + ".tmp")));
  EXPECT_EQ(slurp(path_), "live\n");
  EXPECT_EQ(f->stats().write_errors, 0u);
}

TEST_F(ExportFileTest, OldUncompressedBackupsShiftAlongsideCompressedOnes) {
  { std::ofstream(backup(1)) << "from a run without compression\n"; }
  RotationOptions o;
  o.compress = true;
  auto f = make(o);
  f->write_line("now");
  f->rotate();
  EXPECT_EQ(slurp(backup(2)), "from a run without compression\n");
  EXPECT_EQ(gunzip(backup(1, true)), "now\n");
}

// Times the synchronous compression of a full default-size file (10 MiB of JSON lines):
// it runs in the writer's thread, so it must stay short. The lines are the golden events
// with a third of their digits scrambled (pids, times, exec ids vary in real streams), which
// compresses worse than a real stream: a pessimistic time. Printed for docs/EXPORT.md.
TEST_F(ExportFileTest, CompressingTenMiBTakesLittleTime) {
  RotationOptions o;
  o.compress = true;
  o.max_size_bytes = 0;  // rotated below, by hand, to time that call alone
  auto f = make(o);
  std::vector<std::string> events;
  std::istringstream golden(slurp(fs::path(CAPSCOPE_FIXTURES) / "output" / "events.x86_64.json"));
  for (std::string l; std::getline(golden, l);)
    if (!l.empty()) events.push_back(l);
  ASSERT_FALSE(events.empty());
  std::mt19937 rng(5);
  size_t total = 0;
  for (size_t i = 0; total < (10U << 20); ++i) {
    std::string line = events[i % events.size()];
    for (char& c : line)
      if (c >= '0' && c <= '9' && rng() % 3 == 0) c = static_cast<char>('0' + rng() % 10);
    f->write_line(line);
    total += line.size() + 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(f->rotate());
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  auto gz = fs::file_size(backup(1, true));
  std::cout << "[ timing   ] rotating and compressing " << total << " bytes took " << ms << " ms; "
            << gz << " bytes compressed\n";
  RecordProperty("compress_10MiB_ms", static_cast<int>(ms));
  EXPECT_EQ(gunzip(backup(1, true)).size(), total);
  EXPECT_LT(ms, 5000) << "compression stalls the writer";
}

TEST_F(ExportFileTest, WritersFlushersAndReadersShareOneFile) {
  RotationOptions o;
  o.max_size_bytes = 4096;
  o.max_backups = 1000;
  auto f = make(o);
  std::atomic<bool> done{false};
  std::thread flusher([&] {
    while (!done) {
      f->flush();
      (void)f->stats();
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < 2000; ++i)
        f->write_line("w" + std::to_string(w) + " " + std::to_string(i));
    });
  for (auto& t : writers) t.join();
  done = true;
  flusher.join();
  f->flush();
  size_t lines = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::string text = slurp(entry.path());
    EXPECT_LE(text.size(), 4096u) << entry.path();
    lines += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  EXPECT_EQ(lines, 4000u);
  EXPECT_EQ(f->stats().lines_written, 4000u);
  EXPECT_EQ(f->stats().lines_dropped, 0u);
}

// ---- failures ----------------------------------------------------------------------------

// Real system calls, except that writes to the chosen file find only `space` bytes free.
class FullDiskOps : public FileOps {
 public:
  std::string full_path;  // writes to files whose path ends so are limited
  size_t space = 0;
  bool limited = true;
  std::map<int, std::string> names;

  int open(const std::string& path, int flags, mode_t mode) override {
    int fd = FileOps::open(path, flags, mode);
    if (fd >= 0) names[fd] = path;
    return fd;
  }
  int close(int fd) override {
    names.erase(fd);
    return FileOps::close(fd);
  }
  ssize_t write(int fd, const void* buf, size_t n) override {
    if (!limited || !names[fd].ends_with(full_path)) return FileOps::write(fd, buf, n);
    if (space == 0) {
      errno = ENOSPC;
      return -1;
    }
    n = std::min(n, space);
    space -= n;
    return FileOps::write(fd, buf, n);
  }
};

TEST_F(ExportFileTest, DiskFullDropsAndCountsThenResumesByItself) {
  auto ops = std::make_shared<FullDiskOps>();
  ops->full_path = "events.log";
  ops->space = 25;  // two lines and a half
  auto f = make({}, ops);
  for (int i = 0; i < 3; ++i) f->write_line("line " + std::to_string(i) + " ....");  // 12 bytes
  EXPECT_FALSE(f->flush());
  EXPECT_EQ(slurp(path_), "line 0 ....\nline 1 ....\n") << "the cut line is truncated away";
  auto s = f->stats();
  EXPECT_EQ(s.lines_written, 2u);
  EXPECT_EQ(s.lines_dropped, 1u);
  EXPECT_EQ(s.bytes_dropped, 12u);
  EXPECT_GE(s.write_errors, 1u);
  EXPECT_NE(s.last_error.find("No space left"), std::string::npos) << s.last_error;

  // During the backoff, lines are dropped at once, without touching the disk.
  EXPECT_FALSE(f->write_line("while full"));
  EXPECT_EQ(f->stats().lines_dropped, 2u);

  ops->limited = false;  // space comes back
  now_ += 2 * kSec;
  EXPECT_TRUE(f->write_line("after"));
  EXPECT_TRUE(f->flush());
  EXPECT_EQ(slurp(path_), "line 0 ....\nline 1 ....\nafter\n");
  EXPECT_EQ(f->stats().lines_written, 3u);
}

TEST_F(ExportFileTest, BacksOffLongerWhileTheDiskStaysFull) {
  auto ops = std::make_shared<FullDiskOps>();
  ops->full_path = "events.log";
  auto f = make({}, ops);
  f->write_line("a");
  f->flush();  // fails: backoff 1 s
  uint64_t errors = f->stats().write_errors;
  now_ += kSec;
  f->write_line("b");
  f->flush();  // fails again: backoff 2 s
  EXPECT_EQ(f->stats().write_errors, errors + 1);
  now_ += kSec;
  f->write_line("c");  // still backing off: dropped without a system call
  f->flush();
  EXPECT_EQ(f->stats().write_errors, errors + 1);
  EXPECT_EQ(f->stats().lines_dropped, 3u);
}

TEST_F(ExportFileTest, DevFullIsSurvived) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full";
  struct stat before {};
  ::stat("/dev/full", &before);
  RotationOptions o;
  o.max_size_bytes = 0;  // a device is never rotated anyway; be doubly sure
  RotatingFile f("/dev/full", o, nullptr, [this] { return now_; });
  std::string error;
  ASSERT_TRUE(f.open(&error)) << error;
  for (int i = 0; i < 10; ++i) f.write_line("event");
  EXPECT_FALSE(f.flush());
  auto s = f.stats();
  EXPECT_EQ(s.lines_written, 0u);
  EXPECT_EQ(s.lines_dropped, 10u);
  EXPECT_EQ(s.bytes_dropped, 60u);
  EXPECT_NE(s.last_error.find("No space left"), std::string::npos) << s.last_error;
  now_ += 2 * kSec;  // past the backoff: the device opens again
  EXPECT_FALSE(f.rotate()) << "a device is never renamed";
  struct stat after {};
  ::stat("/dev/full", &after);
  EXPECT_EQ(after.st_mode, before.st_mode) << "a device's mode is never changed";
  EXPECT_EQ(after.st_rdev, before.st_rdev);
}

TEST_F(ExportFileTest, AFifoWithoutAReaderNeverHangs) {
  fs::path fifo = dir_ / "events.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  RotationOptions o;
  o.max_size_bytes = 10;  // a FIFO is never rotated, however much goes through it
  RotatingFile f(fifo.string(), o, nullptr, [this] { return now_; });
  std::string error;
  EXPECT_FALSE(f.open(&error)) << "no reader: open must fail, not wait";
  EXPECT_NE(error.find("No such device or address"), std::string::npos) << error;
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  now_ += 2 * kSec;
  EXPECT_TRUE(f.write_line("through the pipe"));
  EXPECT_TRUE(f.write_line("and another"));
  EXPECT_TRUE(f.flush());
  char buf[100] = {};
  ssize_t n = ::read(reader, buf, sizeof buf);
  ::close(reader);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0),
            "through the pipe\nand another\n");
  EXPECT_EQ(f.stats().rotations, 0u);
  EXPECT_TRUE(fs::is_fifo(fifo));
}

TEST_F(ExportFileTest, ASymbolicLinkIsWrittenThroughNeverRotated) {
  fs::path target = dir_ / "real.log";
  { std::ofstream(target) << ""; }
  fs::create_symlink(target, path_);
  RotationOptions o;
  o.max_size_bytes = 10;
  auto f = make(o);
  f->write_line(line_of(8, "a"));
  f->write_line(line_of(8, "b"));  // would rotate a plain file
  EXPECT_FALSE(f->rotate());
  f->flush();
  EXPECT_TRUE(fs::is_symlink(path_)) << "renaming would have moved the link";
  EXPECT_EQ(slurp(target), line_of(8, "a") + "\n" + line_of(8, "b") + "\n");
  EXPECT_EQ(f->stats().rotations, 0u);
  EXPECT_FALSE(fs::exists(backup(1)));
}

TEST_F(ExportFileTest, ARemovedDirectoryIsMadeAgain) {
  auto f = make({});
  f->write_line("before");
  ASSERT_TRUE(f->flush());
  fs::remove_all(dir_);
  f->write_line("after");
  EXPECT_TRUE(f->flush()) << f->stats().last_error;
  EXPECT_EQ(slurp(path_), "after\n");
  EXPECT_EQ(mode_of(path_), 0600u);
  EXPECT_EQ(f->stats().lines_dropped, 0u);
}

TEST_F(ExportFileTest, AnUnusableDirectoryDropsUntilItIsBack) {
  auto f = make({});
  f->write_line("one");
  ASSERT_TRUE(f->flush());
  // The directory replaced by a plain file: neither open nor mkdir can succeed (this
  // holds for root as well, unlike a directory without write permission).
  fs::remove_all(dir_);
  { std::ofstream(dir_) << "in the way"; }
  f->write_line("lost 1");
  EXPECT_FALSE(f->flush());
  f->write_line("lost 2");
  f->flush();
  auto s = f->stats();
  EXPECT_EQ(s.lines_dropped, 2u);
  EXPECT_GE(s.write_errors, 1u);
  EXPECT_NE(s.last_error.find("open " + path_.string()), std::string::npos) << s.last_error;

  fs::remove(dir_);  // the way is clear again
  now_ += 60 * kSec;
  f->write_line("back");
  EXPECT_TRUE(f->flush()) << f->stats().last_error;
  EXPECT_EQ(slurp(path_), "back\n");
}

TEST_F(ExportFileTest, ReopenFollowsAnExternalRotation) {
  auto f = make({});
  f->write_line("before");
  f->flush();
  fs::rename(path_, dir_ / "events.log.logrotate");
  f->write_line("after the rename, before the signal");
  ASSERT_TRUE(f->reopen());
  f->write_line("after the signal");
  f->flush();
  EXPECT_EQ(slurp(dir_ / "events.log.logrotate"), "before\nafter the rename, before the signal\n");
  EXPECT_EQ(slurp(path_), "after the signal\n");
}

TEST_F(ExportFileTest, FailedCompressionKeepsThePlainBackup) {
  auto ops = std::make_shared<FullDiskOps>();
  ops->full_path = ".gz.tmp";
  RotationOptions o;
  o.compress = true;
  auto f = make(o, ops);
  f->write_line("keep me");
  EXPECT_TRUE(f->rotate()) << "the rotation itself worked";
  EXPECT_EQ(slurp(backup(1)), "keep me\n");
  EXPECT_FALSE(fs::exists(backup(1, true)));
  EXPECT_FALSE(fs::exists(fs::path(backup(1, true).string() + ".tmp")));
  EXPECT_EQ(f->stats().write_errors, 1u);
  EXPECT_NE(f->stats().last_error.find("compress"), std::string::npos);
  f->write_line("live");
  EXPECT_TRUE(f->flush());
}

TEST_F(ExportFileTest, OpenFailureIsOneLineAndRetried) {
  fs::path blocker = dir_ / "not-a-dir";
  { std::ofstream(blocker) << "x"; }
  RotatingFile f((blocker / "events.log").string(), {}, nullptr, [this] { return now_; });
  std::string error;
  EXPECT_FALSE(f.open(&error));
  EXPECT_NE(error.find((blocker / "events.log").string()), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_FALSE(f.write_line("dropped"));
  fs::remove(blocker);
  now_ += 2 * kSec;
  EXPECT_TRUE(f.write_line("kept"));
  EXPECT_TRUE(f.flush());
  EXPECT_EQ(slurp(blocker / "events.log"), "kept\n");
  EXPECT_EQ(f.stats().lines_dropped, 1u);
}

// ---- filters -----------------------------------------------------------------------------

struct Ev {
  std::string ns;  // Kubernetes namespace; with pod "" a container outside any pod
  std::string pod;
  std::string container;
  bool in_container = true;
  std::string binary = "/usr/bin/ping";
  std::vector<std::string> args = {"ping", "-c", "1", "example.org"};
  int cap = 13;  // CAP_NET_RAW
  bool granted = true;
  bool audit = true;
  uint32_t pid = 100;
  uint32_t ppid = 50;
};

EnrichedCheck make(const Ev& v) {
  EnrichedCheck e;
  e.check.cap = v.cap;
  e.check.ret = v.granted ? 0 : -1;
  e.check.audit = v.audit;
  e.check.pid = v.pid;
  e.check.ppid = v.ppid;
  auto p = std::make_shared<ProcessInfo>();
  p->pid = v.pid;
  p->ppid = v.ppid;
  p->binary = v.binary;
  p->args = v.args;
  e.process = p;
  if (v.in_container) {
    auto c = std::make_shared<ContainerInfo>();
    c->name = v.container;
    c->pod_name = v.pod;
    c->pod_namespace = v.ns;
    if (!v.pod.empty()) c->pod_id = "sandbox-" + v.pod;
    c->pod_labels = {{"app", v.pod}};
    c->labels = {{"tier", "plain"}};
    e.container = c;
  }
  return e;
}

Ev host() {
  Ev v;
  v.in_container = false;
  return v;
}

Ev pod(const std::string& ns, const std::string& name, const std::string& container = "main") {
  Ev v;
  v.ns = ns;
  v.pod = name;
  v.container = container;
  return v;
}

FilterList list(std::string_view text) {
  std::string error;
  auto l = FilterList::parse(text, "--export-allowlist", &error);
  EXPECT_TRUE(l) << error;
  return l ? std::move(*l) : FilterList{};
}

bool matches(std::string_view text, const Ev& v, std::string_view policy = "capscope") {
  EnrichedCheck e = make(v);
  return list(text).matches(FilterEvent{e, policy});
}

std::string parse_error(std::string_view text) {
  std::string error;
  auto l = FilterList::parse(text, "--export-denylist", &error);
  EXPECT_FALSE(l) << "parsed: " << text;
  return error;
}

std::string fixture(const std::string& name) {
  return slurp(fs::path(CAPSCOPE_FIXTURES) / "export" / name);
}

TEST(ExportFilterParse, ObjectsPerLineAnArrayOrNothing) {
  EXPECT_TRUE(list("").empty());
  EXPECT_TRUE(list("  \n ").empty());
  EXPECT_EQ(list(R"({"namespace":["a"]})").size(), 1u);
  EXPECT_EQ(list("{\"namespace\":[\"a\"]}\n{\"pid\":[1]}\n").size(), 2u);
  EXPECT_EQ(list(R"({"namespace":["a"]} {"pid":[1]})").size(), 2u);
  EXPECT_EQ(list(R"([{"namespace":["a"]},{"pid":[1]}])").size(), 2u);
  EXPECT_EQ(list(fixture("quiet-daemons.jsonl")).size(), 3u) << "an object may span lines";
  EXPECT_EQ(list(fixture("denied-in-prod.json")).size(), 2u);
  EXPECT_EQ(list(R"({"namespace":["a}b{\"]"]} {"pid":[1]})").size(), 2u)
      << "brackets and quotes inside strings";
}

TEST(ExportFilterParse, ErrorsNameTheFilterTheFieldAndTheFix) {
  std::string e = parse_error("{\"namespace\":[\"a\"]}\n\n{\"namespaces\":[\"b\"]}");
  EXPECT_EQ(
      e, R"(--export-denylist: filter 2 (line 3): unknown field "namespaces" (write "namespace"))");
  e = parse_error(R"({"colour":["red"]})");
  EXPECT_NE(e.find(R"(unknown field "colour" (fields are: namespace, pod_regex,)"),
            std::string::npos)
      << e;
  e = parse_error(R"({"binary_regex":["(unclosed"]})");
  EXPECT_NE(
      e.find(R"(filter 1 (line 1): field "binary_regex": bad regular expression "(unclosed")"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("write an ECMAScript regular expression"), std::string::npos) << e;
  e = parse_error(R"({"capability":["CAP_FLY"]})");
  EXPECT_NE(e.find(R"(field "capability": unknown capability "CAP_FLY")"), std::string::npos) << e;
  e = parse_error(R"({"capability":[64]})");
  EXPECT_NE(e.find("unknown capability 64"), std::string::npos) << e;
  e = parse_error(R"({"verdict":["refused"]})");
  EXPECT_NE(e.find(R"(write "granted" or "denied")"), std::string::npos) << e;
  e = parse_error(R"({"audit":"yes"})");
  EXPECT_NE(e.find(R"(field "audit": expected true or false, got "yes")"), std::string::npos) << e;
  e = parse_error(R"({"pid":[-1]})");
  EXPECT_NE(e.find("expected a process id"), std::string::npos) << e;
  e = parse_error(R"({"namespace":[1]})");
  EXPECT_NE(e.find(R"(field "namespace": expected a string, got 1)"), std::string::npos) << e;
  e = parse_error(R"({"event_set":["PROCESS_KPROBES"]})");
  EXPECT_NE(e.find("unknown event type"), std::string::npos) << e;
  e = parse_error(R"({"labels":["app in (a"]})");
  EXPECT_NE(e.find(R"(field "labels": )"), std::string::npos) << e;
  e = parse_error("{\"namespace\":[\"a\"]}\n{\"namespace\": [\"b\"");
  EXPECT_NE(e.find("filter 2 (line 2, column "), std::string::npos) << e;
  EXPECT_NE(e.find("): bad JSON: "), std::string::npos) << e;
  e = parse_error("{\"pid\":[1]}\n{\n  \"namespace\": [\"b\" \"c\"]\n}");
  EXPECT_NE(e.find("filter 2 (line 3, column 23): bad JSON: syntax error"), std::string::npos)
      << "the position is the text's, not the filter's: " << e;
  e = parse_error("namespace=default");
  EXPECT_NE(e.find("filter 1 (line 1, column 2): bad JSON"), std::string::npos) << e;
  e = parse_error(R"([{"pid":[1]}, "x"])");
  EXPECT_NE(e.find("filter 2: expected a JSON object"), std::string::npos) << e;
  e = parse_error(R"([{"pid":[1]})");
  EXPECT_NE(e.find("--export-denylist: bad JSON at line 1, column "), std::string::npos) << e;
  for (const std::string& s :
       {parse_error(R"({"x":1})"), parse_error("{"), parse_error(R"({"pod_regex":["["]})")})
    EXPECT_EQ(s.find('\n'), std::string::npos) << s;
}

TEST(ExportFilterMatch, NamespaceEmptyMeansHostProcesses) {
  EXPECT_TRUE(matches(R"({"namespace":[""]})", host()));
  EXPECT_FALSE(matches(R"({"namespace":[""]})", pod("default", "web")));
  EXPECT_TRUE(matches(R"({"namespace":["kube-system","default"]})", pod("default", "web")));
  EXPECT_FALSE(matches(R"({"namespace":["kube-system"]})", pod("default", "web")));
  EXPECT_TRUE(matches(R"({"namespace":[]})", pod("default", "web"))) << "empty: not set";
}

TEST(ExportFilterMatch, RegexesSearchAndNeedTheirSubject) {
  EXPECT_TRUE(matches(R"({"pod_regex":["^web-"]})", pod("d", "web-7c9f")));
  EXPECT_FALSE(matches(R"({"pod_regex":["^web-"]})", pod("d", "api-web-1")));
  EXPECT_TRUE(matches(R"({"pod_regex":["web"]})", pod("d", "api-web-1"))) << "unanchored";
  EXPECT_FALSE(matches(R"({"pod_regex":[".*"]})", host())) << "no pod, no match";
  EXPECT_TRUE(matches(R"({"container_regex":["^nginx$","^envoy$"]})", pod("d", "w", "envoy")));
  EXPECT_FALSE(matches(R"({"container_regex":["^nginx$"]})", pod("d", "w", "nginx-sidecar")));
  EXPECT_TRUE(matches(R"({"binary_regex":["/ping$"]})", host()));
  EXPECT_FALSE(matches(R"({"binary_regex":["^/bin/"]})", host()));
  EXPECT_TRUE(matches(R"({"arguments_regex":["^-c 1 "]})", host()));
  Ev no_process = host();
  EnrichedCheck e = make(no_process);
  e.process = nullptr;
  EXPECT_FALSE(list(R"({"binary_regex":[""]})").matches(FilterEvent{e, ""}));
}

TEST(ExportFilterMatch, HugeArgumentsNeverCrashTheMatcher) {
  Ev v = host();
  v.args = {"x", std::string(1 << 20, 'a') + "c"};
  // A pattern libstdc++ matches by recursion per character.
  EXPECT_FALSE(matches(R"({"arguments_regex":["^(a|b)*c$"]})", v));
  EXPECT_TRUE(matches(R"({"arguments_regex":["^(a|b)*"]})", v));
}

TEST(ExportFilterMatch, CapabilityByAnySpelling) {
  Ev v = host();  // CAP_NET_RAW, 13
  EXPECT_TRUE(matches(R"({"capability":["CAP_NET_RAW"]})", v));
  EXPECT_TRUE(matches(R"({"capability":["net_raw"]})", v));
  EXPECT_TRUE(matches(R"({"capability":[13]})", v));
  EXPECT_TRUE(matches(R"({"capability":"13"})", v)) << "one value without an array";
  EXPECT_TRUE(matches(R"({"capability":["SYS_ADMIN", 13]})", v));
  EXPECT_FALSE(matches(R"({"capability":["CAP_SYS_ADMIN"]})", v));
}

TEST(ExportFilterMatch, VerdictAndAudit) {
  Ev denied = host();
  denied.granted = false;
  EXPECT_TRUE(matches(R"({"verdict":["denied"]})", denied));
  EXPECT_FALSE(matches(R"({"verdict":["granted"]})", denied));
  EXPECT_TRUE(matches(R"({"verdict":["granted","denied"]})", denied));
  EXPECT_TRUE(matches(R"({"verdict":"Denied"})", denied));
  Ev probe = host();
  probe.audit = false;
  EXPECT_TRUE(matches(R"({"audit":false})", probe));
  EXPECT_FALSE(matches(R"({"audit":true})", probe));
}

TEST(ExportFilterMatch, FieldsAreAndedValuesOred) {
  std::string f = R"({"namespace":["prod","staging"],"verdict":["denied"]})";
  Ev v = pod("prod", "web");
  v.granted = false;
  EXPECT_TRUE(matches(f, v));
  v.granted = true;
  EXPECT_FALSE(matches(f, v)) << "namespace holds, verdict does not";
  v = pod("dev", "web");
  v.granted = false;
  EXPECT_FALSE(matches(f, v)) << "verdict holds, namespace does not";
  EXPECT_TRUE(matches(R"({})", v)) << "no field: every event";
}

TEST(ExportFilterMatch, PoliciesPidsLabels) {
  EXPECT_TRUE(matches(R"({"policy_names":["a","creds"]})", host(), "creds"));
  EXPECT_FALSE(matches(R"({"policy_names":["a"]})", host(), "capscope"));
  EXPECT_TRUE(matches(R"({"pid":[100]})", host()));
  EXPECT_FALSE(matches(R"({"pid":[50]})", host()));
  EXPECT_TRUE(matches(R"({"labels":["app=web"]})", pod("d", "web")));
  EXPECT_FALSE(matches(R"({"labels":["app=web"]})", pod("d", "api")));
  Ev plain = pod("", "", "db");  // a container outside a pod: its own labels
  EXPECT_TRUE(matches(R"({"labels":["tier=plain"]})", plain));
  EXPECT_FALSE(matches(R"({"labels":["tier"]})", host()));
}

TEST(ExportFilterMatch, PidSetTakesInDescendants) {
  Ev grandchild = host();
  grandchild.pid = 300;
  grandchild.ppid = 200;  // whose parent is 100
  std::string f = R"({"pid_set":[100]})";
  EXPECT_FALSE(matches(f, grandchild)) << "without a parent lookup only children are known";
  Ev child = host();
  child.pid = 200;
  child.ppid = 100;
  EXPECT_TRUE(matches(f, child));
  ParentPidLookup parents = [](uint32_t pid) -> uint32_t {
    return pid == 200 ? 100 : pid == 100 ? 1 : 0;
  };
  EnrichedCheck e = make(grandchild);
  EXPECT_TRUE(list(f).matches(FilterEvent{e, "", &parents}));
  ParentPidLookup loop = [](uint32_t pid) { return pid; };  // a broken cache must not hang
  EXPECT_FALSE(list(R"({"pid_set":[7]})").matches(FilterEvent{e, "", &loop}));
}

TEST(ExportFilter, AllowThenDenyAndCounts) {
  std::string error;
  auto f =
      ExportFilter::parse(fixture("denied-in-prod.json"), fixture("quiet-daemons.jsonl"), &error);
  ASSERT_TRUE(f) << error;
  EXPECT_TRUE(f->active());
  Ev refused = pod("prod", "web");
  refused.cap = 21;  // CAP_SYS_ADMIN
  refused.granted = false;
  EXPECT_TRUE(f->exported(make(refused)));
  Ev probe = refused;
  probe.audit = false;  // allowed, then denied by {"audit": false}
  EXPECT_FALSE(f->exported(make(probe)));
  Ev granted_chown = pod("prod", "web");
  granted_chown.cap = 0;  // neither allow filter
  EXPECT_FALSE(f->exported(make(granted_chown)));
  Ev sidecar = pod("prod", "web", "istio-proxy");
  sidecar.granted = false;
  EXPECT_TRUE(f->exported(make(sidecar))) << "the pod_regex AND container_regex filter needs both";
  Ev debug_sidecar = pod("prod", "debug-1", "istio-proxy");
  debug_sidecar.granted = false;
  EXPECT_FALSE(f->exported(make(debug_sidecar)));
  auto s = f->stats();
  EXPECT_EQ(s.checked, 5u);
  EXPECT_EQ(s.matched_allow, 4u);
  EXPECT_EQ(s.matched_deny, 2u);
  EXPECT_EQ(s.dropped, 3u);
}

TEST(ExportFilter, TetragonsDefaultListsMeanTheSameHere) {
  std::string error;
  auto f = ExportFilter::parse(fixture("tetragon-default-allowlist.jsonl"),
                               fixture("tetragon-default-denylist.jsonl"), &error);
  ASSERT_TRUE(f) << error;
  EXPECT_TRUE(f->exported(make(pod("default", "xwing"))));
  EXPECT_FALSE(f->exported(make(pod("kube-system", "coredns"))));
  EXPECT_FALSE(f->exported(make(host())));
  auto exec_only = ExportFilter::parse(R"({"event_set":["PROCESS_EXEC"]})", "", &error);
  ASSERT_TRUE(exec_only) << error;
  EXPECT_FALSE(exec_only->exported(make(host()))) << "capscope's events are PROCESS_KPROBE";
}

TEST(ExportFilter, NoListsExportEverything) {
  std::string error;
  auto f = ExportFilter::parse("", "", &error);
  ASSERT_TRUE(f) << error;
  EXPECT_FALSE(f->active());
  EXPECT_TRUE(f->exported(make(host())));
  EXPECT_EQ(f->stats().dropped, 0u);
  EXPECT_EQ(f->stats().matched_allow, 0u);
}

TEST(ExportFilter, TheFlagInTheErrorIsTheListAtFault) {
  std::string error;
  EXPECT_FALSE(ExportFilter::parse(R"({"pid":[1]})", R"({"pod":["x"]})", &error));
  EXPECT_EQ(error,
            R"(--export-denylist: filter 1 (line 1): unknown field "pod" (write "pod_regex"))");
  EXPECT_FALSE(ExportFilter::parse(R"({"binary":["x"]})", "", &error));
  EXPECT_EQ(
      error,
      R"(--export-allowlist: filter 1 (line 1): unknown field "binary" (write "binary_regex"))");
}

}  // namespace
}  // namespace capscope::exporter
