// security.capability decoding and the file privilege reader.
#include "enrich/file_privilege.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>

using namespace capscope;

namespace {

// Little-endian words of a vfs_cap_data value.
template <size_t N>
std::array<unsigned char, N * 4> le_words(const std::array<uint32_t, N>& words) {
  std::array<unsigned char, N * 4> out{};
  for (size_t i = 0; i < N; ++i)
    for (size_t b = 0; b < 4; ++b) out[i * 4 + b] = static_cast<unsigned char>(words[i] >> (8 * b));
  return out;
}

TEST(FileCaps, Revision2WithEffective) {
  // cap_net_bind_service (10) and cap_bpf (39) permitted, cap_chown (0) inheritable, +e.
  auto v = le_words<5>({0x02000001, 1u << 10, 1u << 0, 1u << (39 - 32), 0});
  auto c = parse_file_caps(v.data(), v.size());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->permitted, (1ULL << 10) | (1ULL << 39));
  EXPECT_EQ(c->inheritable, 1ULL);
  EXPECT_TRUE(c->effective);
  EXPECT_EQ(c->rootid, 0u);
}

TEST(FileCaps, Revision3CarriesTheRootId) {
  auto v = le_words<6>({0x03000000, 1u << 13, 0, 0, 0, 100000});
  auto c = parse_file_caps(v.data(), v.size());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->permitted, 1ULL << 13);
  EXPECT_FALSE(c->effective);
  EXPECT_EQ(c->rootid, 100000u);
}

TEST(FileCaps, Revision1IsThirtyTwoBits) {
  auto v = le_words<3>({0x01000001, 1u << 7, 0});
  auto c = parse_file_caps(v.data(), v.size());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->permitted, 1ULL << 7);
}

TEST(FileCaps, RejectsWhatIsNotOne) {
  auto bad_revision = le_words<5>({0x07000000, 1, 0, 0, 0});
  EXPECT_FALSE(parse_file_caps(bad_revision.data(), bad_revision.size()));
  auto short_v2 = le_words<3>({0x02000000, 1, 0});
  EXPECT_FALSE(parse_file_caps(short_v2.data(), short_v2.size()));
  EXPECT_FALSE(parse_file_caps(short_v2.data(), 2));
}

TEST(FileCaps, SetcapSpelling) {
  EXPECT_EQ(setcap_text({(1ULL << 0) | (1ULL << 10), 0, true, 0}),
            "cap_chown,cap_net_bind_service+ep");
  EXPECT_EQ(setcap_text({1ULL << 13, 1ULL << 13, false, 0}), "cap_net_raw+ip");
}

TEST(FilePrivilege, ReadsSetIdBitsAndOwner) {
  auto path = std::filesystem::temp_directory_path() / ("capscope-fp-" + std::to_string(getpid()));
  std::ofstream(path) << "#!/bin/sh\n";
  ASSERT_EQ(chmod(path.c_str(), 04755), 0);
  auto f = read_file_privilege(path.string());
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->setuid);
  EXPECT_FALSE(f->setgid);
  EXPECT_EQ(f->owner_uid, geteuid());
  EXPECT_FALSE(f->caps);
  ASSERT_EQ(chmod(path.c_str(), 02744), 0);  // set-group-ID without group execute: locking
  EXPECT_FALSE(read_file_privilege(path.string())->setgid);
  std::filesystem::remove(path);
  EXPECT_FALSE(read_file_privilege(path.string()));
}

}  // namespace
