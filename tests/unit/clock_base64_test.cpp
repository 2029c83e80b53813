#include <gtest/gtest.h>
#include <time.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "util/base64.h"
#include "util/clock.h"

using namespace capscope::util;

namespace {

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64, TetragonExecId) {
  // The exec_id of Tetragon's documented dmesg event.
  EXPECT_EQ(base64_encode("kind-control-plane:12842783350684:73860"),
            "a2luZC1jb250cm9sLXBsYW5lOjEyODQyNzgzMzUwNjg0OjczODYw");
}

TEST(Base64, DecodeRoundTripsAndRejectsGarbage) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "node:1:2", std::string("\0\x80\xff", 3)})
    EXPECT_EQ(base64_decode(base64_encode(s)).value(), s);
  EXPECT_FALSE(base64_decode("abc"));
  EXPECT_FALSE(base64_decode("ab=c"));
  EXPECT_FALSE(base64_decode("a==="));
  EXPECT_FALSE(base64_decode("===="));
  EXPECT_FALSE(base64_decode("Zm9v!A=="));
  EXPECT_FALSE(base64_decode("Zg==Zg=="));
}

TEST(Clock, FormatsRfc3339WithNanoseconds) {
  // 2023-07-06T10:13:33.834390020Z, Tetragon's start_time in its docs.
  int64_t t = 1688638413LL * 1'000'000'000 + 834390020;
  EXPECT_EQ(format_rfc3339_ns(t), "2023-07-06T10:13:33.834390020Z");
  EXPECT_EQ(format_rfc3339_s(t), "2023-07-06T10:13:33Z");
  EXPECT_EQ(format_rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(format_rfc3339_ns(1), "1970-01-01T00:00:00.000000001Z");
  EXPECT_EQ(format_rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format_rfc3339_ns(951782400LL * 1'000'000'000), "2000-02-29T00:00:00.000000000Z");
}

TEST(Clock, ConvertsWithInjectedOffsets) {
  ClockOffsets c;
  c.boot_minus_mono_ns = 5'000'000'000;  // 5 s suspended
  c.wall_minus_mono_ns = 1688638413LL * 1'000'000'000 - 12842'000'000'000LL;
  c.ticks_per_second = 100;
  EXPECT_EQ(c.mono_to_boot_ns(1'000), 5'000'001'000u);
  EXPECT_EQ(c.boot_to_mono_ns(5'000'001'000), 1'000u);
  EXPECT_EQ(c.boot_to_mono_ns(1'000), 0u);  // before the monotonic epoch: clamped
  EXPECT_EQ(c.mono_to_wall_ns(12842'000'000'000ULL), 1688638413LL * 1'000'000'000);
  EXPECT_EQ(c.wall_to_mono_ns(1688638413LL * 1'000'000'000), 12842'000'000'000ULL);
  EXPECT_EQ(c.ticks_to_boot_ns(685871), 6858'710'000'000ULL);
  EXPECT_EQ(c.ticks_to_mono_ns(685871), 6853'710'000'000ULL);
  EXPECT_EQ(c.ticks_to_wall_ns(685871), c.mono_to_wall_ns(6853'710'000'000ULL));
  EXPECT_EQ(c.boot_to_wall_ns(c.mono_to_boot_ns(42)), c.mono_to_wall_ns(42));
  EXPECT_EQ(c.monotonic_to_wall_offset_ns(), c.wall_minus_mono_ns);
}

TEST(Clock, TicksToNsHandlesOddRatesAndHugeValues) {
  EXPECT_EQ(ticks_to_ns(3, 300), 10'000'000u);
  EXPECT_EQ(ticks_to_ns(1, 3), 333'333'333u);
  EXPECT_EQ(ticks_to_ns(7, 0), 70'000'000u);  // 0 Hz taken as 100
  // 500 years of uptime at 100 Hz does not overflow.
  uint64_t ticks = 500ULL * 365 * 86400 * 100;
  EXPECT_EQ(ticks_to_ns(ticks, 100), ticks * 10'000'000ULL);
}

TEST(Clock, SampledOffsetsMatchTheSystem) {
  ClockOffsets c = ClockOffsets::now();
  timespec mono{}, real{}, boot{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_BOOTTIME, &boot);
  uint64_t mono_ns = static_cast<uint64_t>(mono.tv_sec) * 1'000'000'000 + mono.tv_nsec;
  int64_t real_ns = static_cast<int64_t>(real.tv_sec) * 1'000'000'000 + real.tv_nsec;
  uint64_t boot_ns = static_cast<uint64_t>(boot.tv_sec) * 1'000'000'000 + boot.tv_nsec;
  EXPECT_LT(std::llabs(c.mono_to_wall_ns(mono_ns) - real_ns), 50'000'000);
  EXPECT_LT(std::llabs(static_cast<int64_t>(c.mono_to_boot_ns(mono_ns) - boot_ns)), 50'000'000);
  EXPECT_GE(c.boot_minus_mono_ns, -1'000'000);
  EXPECT_GT(c.ticks_per_second, 0u);
}

}  // namespace
