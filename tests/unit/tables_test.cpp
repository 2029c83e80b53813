#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "tables/capabilities.h"
#include "tables/syscalls.h"

using namespace capscope::tables;

namespace {

constexpr int kIntMax = std::numeric_limits<int>::max();
constexpr int kIntMin = std::numeric_limits<int>::min();

// A file under the test temp dir holding `content`; removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    static int counter = 0;
    path_ = testing::TempDir() + "capscope_tables_" + std::to_string(getpid()) + "_" +
            std::to_string(counter++);
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Capabilities, KnownNumbers) {
  EXPECT_EQ(cap_from_name("CAP_CHOWN"), 0);
  EXPECT_EQ(cap_from_name("CAP_NET_ADMIN"), 12);
  EXPECT_EQ(cap_from_name("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(cap_from_name("CAP_SYSLOG"), 34);
  EXPECT_EQ(cap_from_name("CAP_BPF"), 39);
  EXPECT_EQ(cap_from_name("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(cap_name(21), "CAP_SYS_ADMIN");
  EXPECT_EQ(cap_name(34), "CAP_SYSLOG");
  EXPECT_EQ(cap_name(40), "CAP_CHECKPOINT_RESTORE");
}

// Cross-checks every entry against the kernel's own header on the build machine.
TEST(Capabilities, MatchLinuxHeader) {
#define CAPSCOPE_EXPECT_CAP(cap) EXPECT_EQ(cap_from_name(#cap), cap) << #cap
  CAPSCOPE_EXPECT_CAP(CAP_CHOWN);
  CAPSCOPE_EXPECT_CAP(CAP_DAC_OVERRIDE);
  CAPSCOPE_EXPECT_CAP(CAP_DAC_READ_SEARCH);
  CAPSCOPE_EXPECT_CAP(CAP_FOWNER);
  CAPSCOPE_EXPECT_CAP(CAP_FSETID);
  CAPSCOPE_EXPECT_CAP(CAP_KILL);
  CAPSCOPE_EXPECT_CAP(CAP_SETGID);
  CAPSCOPE_EXPECT_CAP(CAP_SETUID);
  CAPSCOPE_EXPECT_CAP(CAP_SETPCAP);
  CAPSCOPE_EXPECT_CAP(CAP_LINUX_IMMUTABLE);
  CAPSCOPE_EXPECT_CAP(CAP_NET_BIND_SERVICE);
  CAPSCOPE_EXPECT_CAP(CAP_NET_BROADCAST);
  CAPSCOPE_EXPECT_CAP(CAP_NET_ADMIN);
  CAPSCOPE_EXPECT_CAP(CAP_NET_RAW);
  CAPSCOPE_EXPECT_CAP(CAP_IPC_LOCK);
  CAPSCOPE_EXPECT_CAP(CAP_IPC_OWNER);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_MODULE);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_RAWIO);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_CHROOT);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_PTRACE);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_PACCT);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_ADMIN);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_BOOT);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_NICE);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_RESOURCE);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_TIME);
  CAPSCOPE_EXPECT_CAP(CAP_SYS_TTY_CONFIG);
  CAPSCOPE_EXPECT_CAP(CAP_MKNOD);
  CAPSCOPE_EXPECT_CAP(CAP_LEASE);
  CAPSCOPE_EXPECT_CAP(CAP_AUDIT_WRITE);
  CAPSCOPE_EXPECT_CAP(CAP_AUDIT_CONTROL);
  CAPSCOPE_EXPECT_CAP(CAP_SETFCAP);
  CAPSCOPE_EXPECT_CAP(CAP_MAC_OVERRIDE);
  CAPSCOPE_EXPECT_CAP(CAP_MAC_ADMIN);
  CAPSCOPE_EXPECT_CAP(CAP_SYSLOG);
  CAPSCOPE_EXPECT_CAP(CAP_WAKE_ALARM);
  CAPSCOPE_EXPECT_CAP(CAP_BLOCK_SUSPEND);
  CAPSCOPE_EXPECT_CAP(CAP_AUDIT_READ);
  CAPSCOPE_EXPECT_CAP(CAP_PERFMON);
  CAPSCOPE_EXPECT_CAP(CAP_BPF);
  CAPSCOPE_EXPECT_CAP(CAP_CHECKPOINT_RESTORE);
#undef CAPSCOPE_EXPECT_CAP
  EXPECT_EQ(static_cast<int>(all_capabilities().size()) - 1, CAP_LAST_CAP);
}

TEST(Capabilities, TableIsDenseAndDescribed) {
  auto caps = all_capabilities();
  ASSERT_EQ(caps.size(), 41u);
  for (size_t i = 0; i < caps.size(); ++i) {
    EXPECT_EQ(caps[i].number, static_cast<int>(i));
    EXPECT_TRUE(caps[i].name.starts_with("CAP_")) << caps[i].name;
    EXPECT_FALSE(caps[i].guards.empty()) << caps[i].name;
    EXPECT_EQ(caps[i].guards.find('\n'), std::string_view::npos) << caps[i].name;
  }
}

TEST(Capabilities, UnknownNumbers) {
  EXPECT_EQ(cap_name(41), "CAP_UNKNOWN_41");
  EXPECT_EQ(cap_name(63), "CAP_UNKNOWN_63");
  EXPECT_EQ(cap_name(-1), "CAP_UNKNOWN_-1");
  EXPECT_EQ(cap_name(kIntMax), "CAP_UNKNOWN_" + std::to_string(kIntMax));
  EXPECT_EQ(cap_name(kIntMin), "CAP_UNKNOWN_" + std::to_string(kIntMin));
  EXPECT_EQ(cap_short_name(41), "UNKNOWN_41");
  EXPECT_EQ(cap_short_name(-7), "UNKNOWN_-7");
}

TEST(Capabilities, ShortNames) {
  EXPECT_EQ(cap_short_name(21), "SYS_ADMIN");
  EXPECT_EQ(cap_short_name(0), "CHOWN");
  EXPECT_EQ(cap_short_name(13), "NET_RAW");
}

TEST(Capabilities, EveryNameRoundTrips) {
  for (const CapabilityInfo& cap : all_capabilities()) {
    std::string name(cap.name);
    EXPECT_EQ(cap_name(cap.number), name);
    EXPECT_EQ(cap_from_name(name), cap.number) << name;
    EXPECT_EQ(cap_from_name(cap_short_name(cap.number)), cap.number) << name;
  }
}

TEST(Capabilities, ParseVariants) {
  EXPECT_EQ(cap_from_name("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(cap_from_name("cap_sys_admin"), 21);
  EXPECT_EQ(cap_from_name("SYS_ADMIN"), 21);
  EXPECT_EQ(cap_from_name("sys_admin"), 21);
  EXPECT_EQ(cap_from_name("Cap_Sys_Admin"), 21);
  EXPECT_EQ(cap_from_name("  \tCAP_NET_RAW\n"), 13);
  EXPECT_EQ(cap_from_name("21"), 21);
  EXPECT_EQ(cap_from_name(" 0 "), 0);
  EXPECT_EQ(cap_from_name("63"), 63);
}

TEST(Capabilities, ParseRejects) {
  EXPECT_EQ(cap_from_name(""), std::nullopt);
  EXPECT_EQ(cap_from_name("   "), std::nullopt);
  EXPECT_EQ(cap_from_name("CAP_"), std::nullopt);
  EXPECT_EQ(cap_from_name("CAP_SYS_ADMINX"), std::nullopt);
  EXPECT_EQ(cap_from_name("SYS ADMIN"), std::nullopt);
  EXPECT_EQ(cap_from_name("CAP_CAP_CHOWN"), std::nullopt);
  EXPECT_EQ(cap_from_name("CAP_UNKNOWN_41"), std::nullopt);
  EXPECT_EQ(cap_from_name("64"), std::nullopt);
  EXPECT_EQ(cap_from_name("-1"), std::nullopt);
  EXPECT_EQ(cap_from_name("+1"), std::nullopt);
  EXPECT_EQ(cap_from_name("21x"), std::nullopt);
  EXPECT_EQ(cap_from_name("99999999999999999999"), std::nullopt);
  std::string with_nul("CAP_CHOWN\0", 10);
  EXPECT_EQ(cap_from_name(with_nul), std::nullopt);
}

TEST(Capabilities, Masks) {
  EXPECT_TRUE(caps_in_mask(0).empty());
  EXPECT_EQ(caps_in_mask(1), std::vector<int>{0});
  EXPECT_EQ(caps_in_mask((uint64_t{1} << 21) | (uint64_t{1} << 7) | 1),
            (std::vector<int>{0, 7, 21}));
  EXPECT_EQ(caps_in_mask(uint64_t{1} << 63), std::vector<int>{63});
  EXPECT_EQ(caps_in_mask(~uint64_t{0}).size(), 64u);

  std::array<int, 3> caps = {21, 7, 21};
  EXPECT_EQ(mask_of(caps), (uint64_t{1} << 21) | (uint64_t{1} << 7));
  std::array<int, 4> out_of_range = {-1, 64, 1000, 63};
  EXPECT_EQ(mask_of(out_of_range), uint64_t{1} << 63);
  EXPECT_EQ(mask_of({}), 0u);

  // Docker's default capability set is 0xa80425fb.
  std::vector<int> docker = caps_in_mask(0xa80425fbULL);
  EXPECT_EQ(mask_of(docker), 0xa80425fbULL);
  EXPECT_EQ(docker, (std::vector<int>{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}));

  EXPECT_EQ(cap_names_in_mask((uint64_t{1} << 21) | (uint64_t{1} << 41)),
            (std::vector<std::string>{"CAP_SYS_ADMIN", "CAP_UNKNOWN_41"}));
}

TEST(KernelLastCap, ReadsFile) {
  EXPECT_EQ(kernel_last_cap(TempFile("40\n").path()), 40);
  EXPECT_EQ(kernel_last_cap(TempFile("40").path()), 40);
  EXPECT_EQ(kernel_last_cap(TempFile(" 63 \n").path()), 63);
}

TEST(KernelLastCap, GarbageIsMinusOne) {
  EXPECT_EQ(kernel_last_cap(TempFile("garbage\n").path()), -1);
  EXPECT_EQ(kernel_last_cap(TempFile("").path()), -1);
  EXPECT_EQ(kernel_last_cap(TempFile("40abc").path()), -1);
  EXPECT_EQ(kernel_last_cap(TempFile("-5").path()), -1);
  EXPECT_EQ(kernel_last_cap(TempFile("64").path()), -1);
  EXPECT_EQ(kernel_last_cap(TempFile("40 41").path()), -1);
  EXPECT_EQ(kernel_last_cap(TempFile(std::string(100, '4')).path()), -1);
}

TEST(KernelLastCap, MissingIsMinusOne) {
  EXPECT_EQ(kernel_last_cap(testing::TempDir() + "capscope_no_such_file"), -1);
  EXPECT_EQ(kernel_last_cap(testing::TempDir()), -1);  // A directory.
}

TEST(KernelLastCap, ThisMachine) {
  int last = kernel_last_cap();
  ASSERT_GE(last, 40) << "capscope targets kernels >= 5.9";
  for (int cap = 0; cap <= last && cap <= 40; ++cap) {
    EXPECT_FALSE(cap_name(cap).empty());
    EXPECT_FALSE(cap_name(cap).starts_with("CAP_UNKNOWN_")) << cap;
  }
}

TEST(Syscalls, X86_64Numbers) {
  constexpr Arch kX86 = Arch::X86_64;
  EXPECT_EQ(syscall_number("setuid", kX86), 105);
  EXPECT_EQ(syscall_number("setpriority", kX86), 141);
  EXPECT_EQ(syscall_number("mount", kX86), 165);
  EXPECT_EQ(syscall_number("chroot", kX86), 161);
  EXPECT_EQ(syscall_number("unshare", kX86), 272);
  EXPECT_EQ(syscall_number("setns", kX86), 308);
  EXPECT_EQ(syscall_number("chown", kX86), 92);
  EXPECT_EQ(syscall_number("fchownat", kX86), 260);
  EXPECT_EQ(syscall_number("openat", kX86), 257);
  EXPECT_EQ(syscall_number("mmap", kX86), 9);
  EXPECT_EQ(syscall_number("execve", kX86), 59);
  EXPECT_EQ(syscall_number("clone3", kX86), 435);
  EXPECT_EQ(syscall_number("brk", kX86), 12);
  EXPECT_EQ(syscall_number("read", kX86), 0);

  EXPECT_EQ(syscall_name(105, kX86), "setuid");
  EXPECT_EQ(syscall_name(0, kX86), "read");
  EXPECT_EQ(syscall_name(165, kX86), "mount");
  EXPECT_EQ(syscall_name(272, kX86), "unshare");
  EXPECT_EQ(syscall_name(435, kX86), "clone3");
}

TEST(Syscalls, Arm64Numbers) {
  constexpr Arch kArm = Arch::Arm64;
  EXPECT_EQ(syscall_number("setuid", kArm), 146);
  EXPECT_EQ(syscall_number("setpriority", kArm), 140);
  EXPECT_EQ(syscall_number("mount", kArm), 40);
  EXPECT_EQ(syscall_number("chroot", kArm), 51);
  EXPECT_EQ(syscall_number("unshare", kArm), 97);
  EXPECT_EQ(syscall_number("setns", kArm), 268);
  EXPECT_EQ(syscall_number("openat", kArm), 56);
  EXPECT_EQ(syscall_number("mmap", kArm), 222);
  EXPECT_EQ(syscall_number("execve", kArm), 221);
  EXPECT_EQ(syscall_number("clone3", kArm), 435);
  EXPECT_EQ(syscall_number("fchownat", kArm), 54);
  EXPECT_EQ(syscall_number("io_setup", kArm), 0);
  // Choices the generator makes for arm64 (see scripts/gen_syscall_tables.py).
  EXPECT_EQ(syscall_number("newfstatat", kArm), 79);
  EXPECT_EQ(syscall_number("fstat", kArm), 80);
  EXPECT_EQ(syscall_number("renameat", kArm), 38);
  EXPECT_EQ(syscall_number("getrlimit", kArm), 163);
  EXPECT_EQ(syscall_number("lseek", kArm), 62);
  EXPECT_EQ(syscall_number("fadvise64", kArm), 223);
  EXPECT_EQ(syscall_number("memfd_secret", kArm), 447);

  EXPECT_EQ(syscall_name(146, kArm), "setuid");
  EXPECT_EQ(syscall_name(222, kArm), "mmap");
  EXPECT_EQ(syscall_name(40, kArm), "mount");
}

TEST(Syscalls, Arm64LacksLegacyAndCompatCalls) {
  constexpr Arch kArm = Arch::Arm64;
  for (const char* name : {"open", "chown", "fork", "stat", "mmap2", "fcntl64", "llseek",
                           "clock_gettime64", "arch_specific_syscall", "syscalls"}) {
    EXPECT_EQ(syscall_number(name, kArm), std::nullopt) << name;
  }
  EXPECT_EQ(syscall_name(244, kArm), "syscall_244");  // Reserved arch-specific range.
  EXPECT_EQ(syscall_name(403, kArm), "syscall_403");  // 32-bit only clock_gettime64.
}

TEST(Syscalls, UnknownNumbers) {
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    EXPECT_EQ(syscall_name(-1, arch), "");
    EXPECT_EQ(syscall_name(kIntMin, arch), "");
    EXPECT_EQ(syscall_name(100000, arch), "syscall_100000");
    EXPECT_EQ(syscall_name(kIntMax, arch), "syscall_" + std::to_string(kIntMax));
    EXPECT_EQ(syscall_display_name(-1, arch), "-");
    EXPECT_EQ(syscall_display_name(100000, arch), "SYS_SYSCALL_100000");
  }
  EXPECT_EQ(syscall_name(335, Arch::X86_64), "syscall_335");  // Gap before 424.
}

TEST(Syscalls, NameVariants) {
  EXPECT_EQ(syscall_number("SYS_SETUID", Arch::X86_64), 105);
  EXPECT_EQ(syscall_number("sys_setuid", Arch::X86_64), 105);
  EXPECT_EQ(syscall_number(" setuid\n", Arch::X86_64), 105);
  EXPECT_EQ(syscall_number("SYS_SETUID", Arch::Arm64), 146);
  EXPECT_EQ(syscall_number("SYS_SYSLOG", Arch::X86_64), 103);
  EXPECT_EQ(syscall_number("sysinfo", Arch::X86_64), 99);
  EXPECT_EQ(syscall_number("", Arch::X86_64), std::nullopt);
  EXPECT_EQ(syscall_number("sys_", Arch::X86_64), std::nullopt);
  EXPECT_EQ(syscall_number("setuidx", Arch::X86_64), std::nullopt);
  EXPECT_EQ(syscall_number("aaa", Arch::X86_64), std::nullopt);
  EXPECT_EQ(syscall_number("zzz", Arch::X86_64), std::nullopt);
  EXPECT_EQ(syscall_number("105", Arch::X86_64), std::nullopt);
}

TEST(Syscalls, DisplayNames) {
  EXPECT_EQ(syscall_display_name(105, Arch::X86_64), "SYS_SETUID");
  EXPECT_EQ(syscall_display_name(146, Arch::Arm64), "SYS_SETUID");
  EXPECT_EQ(syscall_display_name(435, Arch::X86_64), "SYS_CLONE3");
}

TEST(Syscalls, NamesRoundTripBothArches) {
  for (Arch arch : {Arch::X86_64, Arch::Arm64}) {
    int known = 0;
    for (int nr = 0; nr < 1024; ++nr) {
      std::string name = syscall_name(nr, arch);
      if (name.starts_with("syscall_")) continue;
      ++known;
      EXPECT_EQ(syscall_number(name, arch), nr) << name;
      EXPECT_EQ(syscall_number(syscall_display_name(nr, arch), arch), nr) << name;
    }
    EXPECT_GT(known, 300);
  }
}

TEST(Syscalls, HostArchMatchesLibc) {
  EXPECT_EQ(syscall_number("setuid"), SYS_setuid);
  EXPECT_EQ(syscall_number("mount"), SYS_mount);
  EXPECT_EQ(syscall_number("openat"), SYS_openat);
  EXPECT_EQ(syscall_name(SYS_unshare), "unshare");
#if defined(__x86_64__)
  EXPECT_EQ(host_arch(), Arch::X86_64);
#elif defined(__aarch64__)
  EXPECT_EQ(host_arch(), Arch::Arm64);
#endif
}

}  // namespace
