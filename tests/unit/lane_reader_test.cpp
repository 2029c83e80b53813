// LaneReader over memory laid out as the kernel's lanes are (two shared
// mappings: the slots, CPU * slots_per_cpu + n, and each CPU's positions), here
// memfds written by the test in the kernel's place.
// ReaderPacing: when the reader polls and when it sleeps for a wakeup.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "capscope.h"
#include "capture/decode.h"
#include "capture/lane_reader.h"
#include "capture/reader_pacing.h"

using capscope::capture::LaneReader;
using capscope::capture::record_ktime;

namespace {

constexpr uint32_t kCpus = 3;
constexpr uint32_t kSlots = 4;

// A memfd of `len` bytes, mapped shared, as the kernel's side of it.
struct SharedFile {
  int fd = -1;
  void* map = nullptr;
  size_t len = 0;
  explicit SharedFile(size_t bytes) : len(bytes) {
    fd = memfd_create("lanes", 0);
    if (fd >= 0 && ftruncate(fd, static_cast<off_t>(len)) == 0)
      map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  ~SharedFile() {
    if (map != nullptr && map != MAP_FAILED) munmap(map, len);
    if (fd >= 0) close(fd);
  }
  SharedFile(const SharedFile&) = delete;
  SharedFile& operator=(const SharedFile&) = delete;
};

class Lanes : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(slots_.map, MAP_FAILED);
    ASSERT_NE(pos_.map, MAP_FAILED);
    std::string error;
    reader_ = LaneReader::open(slots_.fd, pos_.fd, kCpus, kSlots, &error);
    ASSERT_TRUE(reader_) << error;
  }
  cs_lane_pos& pos(uint32_t cpu) { return static_cast<cs_lane_pos*>(pos_.map)[cpu]; }
  // What a CPU's program does: fill the slot at its head, move the head on.
  void publish(uint32_t cpu, uint64_t ktime, int32_t cap) {
    cs_lane_pos& p = pos(cpu);
    auto* slots = static_cast<cs_lane_slot*>(slots_.map);
    cs_cap_check& c = slots[cpu * kSlots + (p.head % kSlots)].check;
    c = {};
    c.hdr.type = CS_REC_CAP_CHECK;
    c.hdr.size = sizeof(c);
    c.ktime_ns = ktime;
    c.cap = cap;
    ++p.head;
  }
  // Each record handed over, as (time, cap).
  LaneReader::Handler collect(std::vector<std::pair<uint64_t, int32_t>>& out) {
    return [&out](std::span<const uint8_t> bytes) {
      cs_cap_check c{};
      ASSERT_EQ(bytes.size(), sizeof(c));
      std::memcpy(&c, bytes.data(), sizeof(c));
      out.emplace_back(record_ktime(bytes), c.cap);
    };
  }

  SharedFile slots_{kCpus * kSlots * sizeof(cs_lane_slot)};
  SharedFile pos_{kCpus * sizeof(cs_lane_pos)};
  std::unique_ptr<LaneReader> reader_;
};

using Seen = std::vector<std::pair<uint64_t, int32_t>>;

TEST_F(Lanes, MergesTheCpusByTimeAndGivesTheSpaceBack) {
  publish(0, 10, 1);
  publish(0, 40, 4);
  publish(1, 20, 2);
  publish(2, 30, 3);
  publish(2, 50, 5);
  reader_->mark();
  Seen seen;
  EXPECT_EQ(reader_->consume(collect(seen)), 5);
  EXPECT_EQ(seen, (Seen{{10, 1}, {20, 2}, {30, 3}, {40, 4}, {50, 5}}));
  EXPECT_EQ(pos(0).tail, 2u);
  EXPECT_EQ(pos(1).tail, 1u);
  EXPECT_EQ(pos(2).tail, 2u);
  EXPECT_EQ(reader_->lag_bytes(), 0u);
}

// What is published after mark() waits for the next mark(), whatever its time.
TEST_F(Lanes, HandsOverOnlyWhatWasMarked) {
  publish(0, 10, 1);
  reader_->mark();
  publish(1, 5, 2);
  Seen seen;
  EXPECT_EQ(reader_->consume(collect(seen)), 1);
  EXPECT_EQ(seen, (Seen{{10, 1}}));
  EXPECT_EQ(reader_->lag_bytes(), sizeof(cs_lane_slot));
  reader_->mark();
  seen.clear();
  EXPECT_EQ(reader_->consume(collect(seen)), 1);
  EXPECT_EQ(seen, (Seen{{5, 2}}));
}

// The ring buffer's records are merged in: before one made at t, the lanes hand
// over exactly their records older than t.
TEST_F(Lanes, ConsumeBeforeStopsAtTheOtherStreamsTime) {
  publish(0, 10, 1);
  publish(1, 20, 2);
  publish(0, 30, 3);
  reader_->mark();
  Seen seen;
  EXPECT_EQ(reader_->consume_before(20, collect(seen)), 1);
  EXPECT_EQ(seen, (Seen{{10, 1}}));
  EXPECT_EQ(reader_->consume_before(15, collect(seen)), 0);  // an older time: nothing more
  EXPECT_EQ(pos(0).tail, 0u);                                // space goes back only at consume()
  EXPECT_EQ(reader_->consume(collect(seen)), 2);
  EXPECT_EQ(seen, (Seen{{10, 1}, {20, 2}, {30, 3}}));
  EXPECT_EQ(pos(0).tail, 2u);
}

// Around the end of a lane, and a head that claims more than a lane holds (not the
// kernel's: it never overwrites unread slots): only the last lane's worth is read.
TEST_F(Lanes, WrapsAndNeverReadsMoreThanALane) {
  for (int i = 0; i < 3; ++i) publish(0, 100 + i, i);
  reader_->mark();
  Seen seen;
  reader_->consume(collect(seen));
  for (int i = 3; i < 7; ++i) publish(0, 100 + i, i);  // slots 3, 0, 1, 2
  reader_->mark();
  seen.clear();
  EXPECT_EQ(reader_->consume(collect(seen)), 4);
  EXPECT_EQ(seen, (Seen{{103, 3}, {104, 4}, {105, 5}, {106, 6}}));
  pos(1).head = 1000;
  reader_->mark();
  EXPECT_EQ(reader_->consume([](std::span<const uint8_t>) {}), static_cast<int>(kSlots));
  EXPECT_EQ(pos(1).tail, 1000u);
}

TEST(LaneReader, RefusesALaneSizeThatIsNotAPowerOfTwo) {
  std::string error;
  EXPECT_FALSE(LaneReader::open(-1, -1, 2, 3, &error));
  EXPECT_NE(error.find("3 slots"), std::string::npos) << error;
}

}  // namespace

TEST_F(Lanes, MaxLaneLagIsTheFullestLanesUnreadBytes) {
  publish(0, 10, 1);
  publish(2, 20, 2);
  publish(2, 30, 3);
  publish(2, 40, 4);
  EXPECT_EQ(reader_->max_lane_lag_bytes(), 3 * sizeof(cs_lane_slot));
  EXPECT_EQ(reader_->lag_bytes(), 4 * sizeof(cs_lane_slot));
  reader_->mark();
  Seen seen;
  reader_->consume(collect(seen));
  EXPECT_EQ(reader_->max_lane_lag_bytes(), 0u);
}

// ReaderPacing over a memfd standing for the reader_state map.
TEST(ReaderPacing, PollsAfterAFloodAndSleepsAgainOnlyAfterQuietPolls) {
  SharedFile state(static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  ASSERT_NE(state.map, MAP_FAILED);
  static_cast<cs_reader_state*>(state.map)->sleeping = 1;  // left up by a reader that died
  std::string error;
  const uint64_t mark = 256 << 10;
  auto pacing = capscope::capture::ReaderPacing::open(state.fd, mark, &error);
  ASSERT_TRUE(pacing) << error;
  EXPECT_FALSE(pacing->sleeping()) << "a new reader starts with the flag down";
  EXPECT_FALSE(pacing->polling());
  pacing->drained(mark / 64 - 1);
  EXPECT_FALSE(pacing->polling()) << "a trickle does not start the poll timer";
  pacing->drained(mark);
  EXPECT_TRUE(pacing->polling());
  for (int i = 1; i < capscope::capture::ReaderPacing::kQuietPolls; ++i) pacing->drained(0);
  EXPECT_TRUE(pacing->polling()) << "one quiet poll short of the limit";
  pacing->drained(mark / 64);  // busy again: the quiet polls start over
  for (int i = 1; i < capscope::capture::ReaderPacing::kQuietPolls; ++i) pacing->drained(0);
  EXPECT_TRUE(pacing->polling());
  pacing->drained(0);
  EXPECT_FALSE(pacing->polling());
  EXPECT_FALSE(pacing->sleeping()) << "only wait() raises the flag";
}
