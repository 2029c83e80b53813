// FileSink: what reaches the file is exactly what was written, whether full blocks go
// out with O_DIRECT (a disk file system) or through the page cache (tmpfs, devices),
// and a complete flush makes everything visible at once.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "output/sink.h"

using namespace capscope::output;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Lines of varied length, so block and page boundaries fall mid-line.
std::string lines(size_t bytes, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out;
  while (out.size() < bytes) {
    out += std::to_string(out.size());
    out.append(rng() % 3000, 'x');
    out += '\n';
  }
  return out;
}

fs::path temp_in(const fs::path& dir, const char* name) {
  return dir / (std::string(name) + "-" + std::to_string(getpid()));
}

void roundtrip(const fs::path& path, bool expect_direct) {
  std::string error;
  auto sink = FileSink::open(path.string(), &error);
  ASSERT_TRUE(sink) << error;
  EXPECT_EQ(sink->direct(), expect_direct) << path;
  std::string data = lines(11 << 20, 7);  // five 2 MiB blocks and a tail
  std::string written;
  size_t pos = 0;
  for (size_t chunk = 1; pos < data.size(); chunk = chunk * 3 % 70001 + 1) {
    std::string_view piece = std::string_view(data).substr(pos, chunk);
    ASSERT_TRUE(sink->write(piece)) << sink->error();
    written += piece;
    pos += piece.size();
    if (pos % 7 == 0) {
      ASSERT_TRUE(sink->flush(true));
      EXPECT_EQ(slurp(path), written) << "a complete flush shows everything so far";
    }
  }
  ASSERT_TRUE(sink->flush(false));
  EXPECT_EQ(slurp(path).substr(0, 4096), written.substr(0, 4096));
  sink.reset();  // the destructor completes the file
  EXPECT_EQ(slurp(path), data);
  fs::remove(path);
}

bool on_tmpfs(const fs::path& dir) {
  struct statfs st {};
  return statfs(dir.c_str(), &st) == 0 && (st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC);
}

TEST(FileSink, DiskFileGetsExactlyTheBytesWithDirectBlocks) {
  fs::path dir = fs::current_path();
  if (on_tmpfs(dir)) GTEST_SKIP() << dir << " is on tmpfs: no disk file system to test O_DIRECT on";
  roundtrip(temp_in(dir, "capscope-sink-test"), true);
}

TEST(FileSink, TmpfsFileGetsExactlyTheBytesThroughThePageCache) {
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm on this machine";
  roundtrip(temp_in("/dev/shm", "capscope-sink-test"), false);
}

TEST(FileSink, DevNullTakesWritesWithoutSeeking) {
  std::string error;
  auto sink = FileSink::open("/dev/null", &error);
  ASSERT_TRUE(sink) << error;
  EXPECT_FALSE(sink->direct());
  EXPECT_TRUE(sink->write(lines(3 << 20, 1)));
  EXPECT_TRUE(sink->flush(true));
}

TEST(FileSink, UnwritablePathIsAOneLineError) {
  std::string error;
  EXPECT_FALSE(FileSink::open("/nonexistent-dir/events.json", &error));
  EXPECT_NE(error.find("/nonexistent-dir/events.json"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(FileSink, FullDiskIsReportedNotHidden) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this machine";
  std::string error;
  auto sink = FileSink::open("/dev/full", &error);
  ASSERT_TRUE(sink) << error;
  sink->write(lines(2 << 20, 3));
  EXPECT_FALSE(sink->flush(true));
  EXPECT_NE(sink->error().find("No space left"), std::string::npos) << sink->error();
}

TEST(StreamSink, PassesBytesThrough) {
  std::ostringstream out;
  StreamSink sink(out);
  EXPECT_TRUE(sink.write("abc"));
  EXPECT_TRUE(sink.flush(true));
  EXPECT_EQ(out.str(), "abc");
}

}  // namespace
