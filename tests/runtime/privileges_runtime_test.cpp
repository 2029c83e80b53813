// The agent's capability drop on the live kernel, as root. Each test forks a child
// (single-threaded, whatever this process runs) that configures and drops, then
// reports what /proc/self/status and the kernel say; the parent asserts. Processes
// of another user (nobody) and of root show what the base set is for.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/privileges.h"
#include "enrich/file_privilege.h"
#include "enrich/proc_reader.h"
#include "helpers.h"

using capscope::CapSets;
using capscope::agent::CapabilityOptions;
using capscope::agent::Privileges;
namespace agent = capscope::agent;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

// Base and rings as docs/PRIVILEGES.md writes them: CAP_SYS_PTRACE effective;
// CAP_DAC_OVERRIDE, CAP_KILL, CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_SYSLOG,
// CAP_PERFMON and CAP_BPF permitted besides.
constexpr uint64_t kDocBase = 0x0000000000080000;
constexpr uint64_t kDocPermitted = 0x000000c401280022;
constexpr uint32_t kNobody = 65534;

using Report = std::map<std::string, std::string>;

std::string sets_text(const CapSets& s) {
  return fmt::format("inh={:016x} prm={:016x} eff={:016x} bnd={:016x} amb={:016x}", s.inheritable,
                     s.permitted, s.effective, s.bounding, s.ambient);
}

std::string status_sets(const std::string& path) {
  auto s = agent::parse_status_caps(capscope::runtime_test::read_file(path));
  return s ? sets_text(*s) : "unreadable " + path;
}

uint64_t status_effective(const std::string& path) {
  auto s = agent::parse_status_caps(capscope::runtime_test::read_file(path));
  return s ? s->effective : ~uint64_t{0};
}

// Runs `body` in a forked child and returns what it reported, plus "exit".
// The child only reports (no gtest assertions there); alarm() bounds it.
Report run_in_child(const std::function<void(Report&)>& body) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {{"exit", "pipe failed"}};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    alarm(30);
    Report r;
    body(r);
    std::string text;
    for (const auto& [k, v] : r) text += k + "=" + v + "\n";
    for (size_t off = 0; off < text.size();) {
      ssize_t n = write(fds[1], text.data() + off, text.size() - off);
      if (n <= 0) _exit(3);
      off += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Report r;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) r[line.substr(0, eq)] = line.substr(eq + 1);
  }
  r["exit"] = WIFEXITED(status) ? std::to_string(WEXITSTATUS(status))
                                : "signal " + std::to_string(WTERMSIG(status));
  return r;
}

// configure + drop_to_base in the child; "drop" is "ok" or the error.
bool drop(Report& r, const CapabilityOptions& options, Privileges* p) {
  std::string error;
  bool ok = p->configure(options, &error) && p->drop_to_base(&error);
  r["drop"] = ok ? "ok" : error;
  return ok;
}

CapabilityOptions parsed(const std::string& value) {
  CapabilityOptions o;
  std::string error;
  if (!agent::parse_capabilities_value(value, &o, &error)) ADD_FAILURE() << error;
  return o;
}

// Removes `caps` from the calling thread's permitted and effective sets.
bool lose(uint64_t caps) {
  auto now = agent::this_thread_caps();
  if (!now) return false;
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    auto word = [i](uint64_t m) { return static_cast<uint32_t>(m >> (32 * i)); };
    data[i] = {word(now->effective & ~caps), word(now->permitted & ~caps),
               word(now->inheritable & ~caps)};
  }
  return syscall(SYS_capset, &head, data) == 0;
}

int read_sysctl(const char* path) {
  std::ifstream in(path);
  int v = -1;
  in >> v;
  return v;
}

// The address of /proc/kallsyms' first line, as this thread may read it.
std::string first_kallsyms_address() {
  std::ifstream in("/proc/kallsyms");
  std::string addr;
  in >> addr;
  return addr;
}

bool all_zero(const std::string& s) { return !s.empty() && s.find_first_not_of('0') == s.npos; }

pid_t start_sleep(uint32_t uid) {
  pid_t pid = fork();
  if (pid == 0) {
    if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
                     setresuid(uid, uid, uid) != 0))
      _exit(126);
    execl("/bin/sleep", "sleep", "120", nullptr);
    _exit(127);
  }
  return pid;
}

class PrivilegesRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    auto mine = agent::this_thread_caps();
    ASSERT_TRUE(mine.has_value());
    for (int cap : {CAP_SETPCAP, CAP_SYS_PTRACE, CAP_SETUID, CAP_SYSLOG, CAP_KILL})
      if ((mine->effective & bit(cap)) == 0)
        GTEST_SKIP() << "the test process lacks capability " << cap;
    held_ = mine->permitted;
    base_ = kDocBase & held_;
    permitted_ = kDocPermitted & held_ & agent::kernel_valid_caps();
    nobody_sleep_ = start_sleep(kNobody);
    root_sleep_ = start_sleep(0);
    // Both must have exec'd sleep before the child looks at them.
    for (int i = 0; i < 200 && !(execd(nobody_sleep_) && execd(root_sleep_)); ++i) usleep(10'000);
    ASSERT_TRUE(execd(nobody_sleep_) && execd(root_sleep_));
  }
  void TearDown() override {
    for (pid_t p : {nobody_sleep_, root_sleep_}) {
      if (p <= 0) continue;
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  }
  static bool execd(pid_t pid) {
    return capscope::runtime_test::read_file(fmt::format("/proc/{}/comm", pid)) == "sleep\n";
  }
  [[nodiscard]] std::string expected_dropped() const {
    CapSets want{.effective = base_, .permitted = permitted_, .bounding = permitted_};
    return sets_text(want);
  }

  uint64_t held_ = 0;       // the test process's permitted set
  uint64_t base_ = 0;       // the base set, as far as held
  uint64_t permitted_ = 0;  // base + rings, as far as held
  pid_t nobody_sleep_ = -1;
  pid_t root_sleep_ = -1;
};

TEST_F(PrivilegesRuntime, DropLeavesExactSetsInStatus) {
  Report r = run_in_child([](Report& out) {
    Privileges p;
    if (!drop(out, {}, &p)) return;
    out["status"] = status_sets("/proc/self/status");
    out["uid"] = std::to_string(getuid()) + "," + std::to_string(geteuid());
    out["this"] = p.describe_this_thread();
    out["process"] = p.describe_process();
    out["warning"] = p.warning();
  });
  EXPECT_EQ(r["exit"], "0");
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["status"], expected_dropped());
  EXPECT_EQ(r["uid"], "0,0") << "the agent keeps uid 0";
  EXPECT_EQ(r["this"], "base");
  EXPECT_EQ(r["process"], "1 thread: 1 base");
  uint64_t valid = agent::kernel_valid_caps();
  uint64_t lacking = (kDocPermitted & ~held_) & valid & ~agent::unneeded_on_this_kernel(valid);
  if (lacking == 0)
    EXPECT_EQ(r["warning"], "");
  else
    EXPECT_NE(r["warning"].find(agent::mask_names(lacking).substr(0, 8)), std::string::npos)
        << r["warning"];
}

TEST_F(PrivilegesRuntime, EveryThreadDropsIncludingBusyOnes) {
  Report r = run_in_child([](Report& out) {
    int wake[2];
    if (pipe(wake) != 0) return;
    int ep = epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, wake[0], &ev);
    std::atomic<bool> stop{false};
    std::atomic<int> read_result{-2};
    std::vector<std::thread> threads;
    threads.emplace_back([&] {  // blocked in read(2): SA_RESTART resumes it
      char c = 0;
      read_result = static_cast<int>(read(wake[0], &c, 1));
    });
    threads.emplace_back([&] {  // in epoll_wait(2): EINTR, retried
      epoll_event got{};
      while (!stop && epoll_wait(ep, &got, 1, 100) <= 0) {
      }
    });
    threads.emplace_back([&] {  // busy
      while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Privileges p;
    drop(out, {}, &p);
    int threads_seen = 0;
    std::string odd;
    std::string main_sets = status_sets("/proc/self/status");
    for (const auto& t : agent::process_thread_caps()) {
      ++threads_seen;
      if (sets_text(t.sets) != main_sets) odd += std::to_string(t.tid) + " ";
    }
    out["threads"] = std::to_string(threads_seen);
    out["odd"] = odd.empty() ? "none" : odd;
    out["main"] = main_sets;
    std::string later;
    std::thread([&] { later = status_sets("/proc/thread-self/status"); }).join();
    out["later"] = later;
    out["process"] = p.describe_process();
    stop = true;
    if (write(wake[1], "x", 1) != 1) out["write"] = "failed";
    for (auto& t : threads) t.join();
    out["read_result"] = std::to_string(read_result.load());
  });
  EXPECT_EQ(r["exit"], "0");
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["threads"], "4");
  EXPECT_EQ(r["odd"], "none");
  EXPECT_EQ(r["main"], expected_dropped());
  EXPECT_EQ(r["later"], expected_dropped()) << "a thread started after the drop inherits it";
  EXPECT_EQ(r["process"], "4 threads: 4 base");
  EXPECT_EQ(r["read_result"], "1") << "the blocked read resumed instead of failing with EINTR";
}

TEST_F(PrivilegesRuntime, AThreadThatBlocksTheSignalIsNamed) {
  Report r = run_in_child([](Report& out) {
    std::atomic<bool> stop{false};
    std::atomic<bool> blocked{false};
    std::thread blocker([&] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      pthread_setname_np(pthread_self(), "cs-blocker");
      blocked = true;
      while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    while (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Privileges p;
    drop(out, {}, &p);
    out["dropped"] = p.dropped() ? "yes" : "no";
    stop = true;
    blocker.join();
  });
  EXPECT_EQ(r["exit"], "0");
  EXPECT_NE(r["drop"].find("(cs-blocker): it blocks signal"), std::string::npos) << r["drop"];
  EXPECT_NE(r["drop"].find("--capabilities bypass=true skips the drop"), std::string::npos);
  EXPECT_EQ(r["dropped"], "no");
}

TEST_F(PrivilegesRuntime, RaisedRaisesInScopeAndLowersAfter) {
  Report r = run_in_child([](Report& out) {
    Privileges p;
    if (!drop(out, {}, &p)) return;
    {
      Privileges::Raised ring("kallsyms");
      out["ok"] = ring.ok() ? "yes" : ring.error();
      out["raised"] = agent::mask_names(ring.raised());
      out["inside_eff"] = fmt::format("{:016x}", status_effective("/proc/thread-self/status"));
      out["inside_describe"] = p.describe_this_thread();
      out["inside_kallsyms"] = first_kallsyms_address();
      {
        Privileges::Raised again("kallsyms");
        out["nested_raised"] = agent::mask_names(again.raised());
      }
      out["after_nested_eff"] =
          fmt::format("{:016x}", status_effective("/proc/thread-self/status"));
    }
    out["after_eff"] = fmt::format("{:016x}", status_effective("/proc/thread-self/status"));
    out["after_describe"] = p.describe_this_thread();
    out["after_kallsyms"] = first_kallsyms_address();
  });
  EXPECT_EQ(r["exit"], "0");
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["ok"], "yes");
  EXPECT_EQ(r["raised"], "CAP_SYSLOG");
  EXPECT_EQ(r["inside_eff"], fmt::format("{:016x}", base_ | bit(CAP_SYSLOG)));
  EXPECT_EQ(r["inside_describe"], "base+kallsyms");
  EXPECT_EQ(r["nested_raised"], "none") << "already effective: the inner scope owns nothing";
  EXPECT_EQ(r["after_nested_eff"], r["inside_eff"]);
  EXPECT_EQ(r["after_eff"], fmt::format("{:016x}", base_));
  EXPECT_EQ(r["after_describe"], "base");
  // What the ring is for: real addresses with CAP_SYSLOG, zeros without, where the
  // kernel's settings make the difference (kptr_restrict 1, or 0 with perf_event_paranoid > 1).
  int kptr = read_sysctl("/proc/sys/kernel/kptr_restrict");
  int paranoid = read_sysctl("/proc/sys/kernel/perf_event_paranoid");
  if (kptr == 1 || (kptr == 0 && paranoid > 1)) {
    EXPECT_FALSE(all_zero(r["inside_kallsyms"])) << r["inside_kallsyms"];
    EXPECT_TRUE(all_zero(r["after_kallsyms"])) << r["after_kallsyms"];
  }
}

TEST_F(PrivilegesRuntime, MapsAndRingBufferNeedNoCapabilityButNewMapsNeedEbpf) {
  Report r = run_in_child([](Report& out) {
    int hash = bpf_map_create(BPF_MAP_TYPE_HASH, "cs_priv_hash", 4, 8, 16, nullptr);
    int ring = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "cs_priv_ring", 0, 0, 4096, nullptr);
    out["created_before"] = hash >= 0 && ring >= 0 ? "yes" : "no";
    Privileges p;
    if (!drop(out, {}, &p)) return;
    uint32_t key = 7;
    uint64_t value = 42;
    uint64_t back = 0;
    uint32_t next = 0;
    bool ops = bpf_map_update_elem(hash, &key, &value, BPF_ANY) == 0 &&
               bpf_map_lookup_elem(hash, &key, &back) == 0 && back == 42 &&
               bpf_map_get_next_key(hash, nullptr, &next) == 0 && next == 7 &&
               bpf_map_delete_elem(hash, &key) == 0;
    out["map_ops_after_drop"] = ops ? "ok" : std::strerror(errno);
    long page = sysconf(_SC_PAGESIZE);
    void* consumer = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0);
    void* producer = mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, ring, page);
    out["ringbuf_mmap_after_drop"] =
        consumer != MAP_FAILED && producer != MAP_FAILED ? "ok" : std::strerror(errno);
    int outside = bpf_map_create(BPF_MAP_TYPE_HASH, "cs_priv_new", 4, 8, 16, nullptr);
    out["create_outside"] = outside >= 0 ? "ok" : std::strerror(errno);
    {
      Privileges::Raised ebpf("ebpf");
      out["ebpf_raised"] = agent::mask_names(ebpf.raised());
      int inside = bpf_map_create(BPF_MAP_TYPE_HASH, "cs_priv_new", 4, 8, 16, nullptr);
      out["create_inside"] = inside >= 0 ? "ok" : std::strerror(errno);
    }
    int again = bpf_map_create(BPF_MAP_TYPE_HASH, "cs_priv_new", 4, 8, 16, nullptr);
    out["create_after"] = again >= 0 ? "ok" : std::strerror(errno);
  });
  EXPECT_EQ(r["exit"], "0");
  ASSERT_EQ(r["created_before"], "yes");
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["map_ops_after_drop"], "ok");
  EXPECT_EQ(r["ringbuf_mmap_after_drop"], "ok");
  EXPECT_EQ(r["create_inside"], "ok");
  EXPECT_NE(r["ebpf_raised"].find("CAP_BPF"), std::string::npos) << r["ebpf_raised"];
  // With unprivileged BPF allowed (sysctl 0) anyone may create a hash map.
  if (read_sysctl("/proc/sys/kernel/unprivileged_bpf_disabled") != 0) {
    EXPECT_EQ(r["create_outside"], std::strerror(EPERM));
    EXPECT_EQ(r["create_after"], std::strerror(EPERM));
  }
}

TEST_F(PrivilegesRuntime, SignalRingReachesAnotherUsersProcess) {
  pid_t target = nobody_sleep_;
  Report r = run_in_child([target](Report& out) {
    Privileges p;
    if (!drop(out, {}, &p)) return;
    out["outside"] = kill(target, 0) == 0 ? "ok" : std::strerror(errno);
    {
      Privileges::Raised ring("signal");
      out["inside"] = kill(target, 0) == 0 ? "ok" : std::strerror(errno);
    }
    out["after"] = kill(target, 0) == 0 ? "ok" : std::strerror(errno);
  });
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["outside"], std::strerror(EPERM));
  EXPECT_EQ(r["inside"], "ok");
  EXPECT_EQ(r["after"], std::strerror(EPERM));
}

TEST_F(PrivilegesRuntime, RuntimeRingReachesASocketUidZeroDoesNotOwn) {
  // A rootless runtime's socket: owned by its user, in its user's 0700 directory.
  fs::path dir = fs::path(testing::TempDir()) / fmt::format("cs-priv-{}", getpid());
  fs::create_directories(dir);
  fs::path sock = dir / "runtime.sock";
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock.c_str());
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  ASSERT_EQ(chown(sock.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chmod(sock.c_str(), 0600), 0);
  ASSERT_EQ(chown(dir.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  auto try_connect = [addr] {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    std::string res = rc == 0 ? "ok" : std::strerror(errno);
    close(fd);
    return res;
  };
  Report r = run_in_child([&](Report& out) {
    Privileges p;
    if (!drop(out, {}, &p)) return;
    out["outside"] = try_connect();
    {
      Privileges::Raised ring("runtime");
      out["inside"] = try_connect();
    }
    out["after"] = try_connect();
  });
  close(listener);
  fs::remove_all(dir);
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["outside"], std::strerror(EACCES));
  EXPECT_EQ(r["inside"], "ok");
  EXPECT_EQ(r["after"], std::strerror(EACCES));
}

// What the agent reads of every process after the drop, through capscope's own
// /proc reader; and the same with CAP_SYS_PTRACE dropped, which loses the links.
TEST_F(PrivilegesRuntime, BaseSetReadsOtherProcessesAndIsNeededForIt) {
  std::string sleep_path = fs::canonical("/bin/sleep").string();
  for (const std::string options : {"bypass=false", "drop=cap_sys_ptrace"}) {
    SCOPED_TRACE(options);
    pid_t nobody = nobody_sleep_;
    pid_t root = root_sleep_;
    Report r = run_in_child([&](Report& out) {
      Privileges p;
      if (!drop(out, parsed(options), &p)) return;
      out["status"] = status_sets("/proc/self/status");
      capscope::ProcReader reader;
      for (auto [who, pid] : {std::pair{"nobody", nobody}, std::pair{"root", root}}) {
        auto info = reader.read(pid);
        if (!info) {
          out[std::string(who) + ".read"] = "none";
          continue;
        }
        out[std::string(who) + ".read"] = "ok";
        out[std::string(who) + ".args"] = fmt::format("{}", fmt::join(info->args, " "));
        out[std::string(who) + ".uid"] = std::to_string(info->uid);
        out[std::string(who) + ".exe"] = info->binary;
        out[std::string(who) + ".cwd"] = info->cwd;
        out[std::string(who) + ".mntns"] =
            std::to_string(info->ns[static_cast<size_t>(capscope::NsKind::Mnt)]);
        auto priv = capscope::read_file_privilege(fmt::format("/proc/{}/exe", pid));
        out[std::string(who) + ".file_privilege"] = priv ? "ok" : "none";
      }
    });
    ASSERT_EQ(r["drop"], "ok");
    bool with_ptrace = options == "bypass=false";
    CapSets want{.effective = with_ptrace ? base_ : 0,
                 .permitted = with_ptrace ? permitted_ : permitted_ & ~bit(CAP_SYS_PTRACE),
                 .bounding = with_ptrace ? permitted_ : permitted_ & ~bit(CAP_SYS_PTRACE)};
    EXPECT_EQ(r["status"], sets_text(want)) << "drop= of a base capability is honoured";
    for (std::string who : {"nobody", "root"}) {
      SCOPED_TRACE(who);
      // status, stat and cmdline are open to everyone.
      ASSERT_EQ(r[who + ".read"], "ok");
      EXPECT_EQ(r[who + ".args"], "sleep 120");
      EXPECT_EQ(r[who + ".uid"], who == "nobody" ? "65534" : "0");
      // exe, cwd and ns/* pass the ptrace read check only with CAP_SYS_PTRACE.
      EXPECT_EQ(r[who + ".exe"], with_ptrace ? sleep_path : "");
      EXPECT_EQ(r[who + ".cwd"].empty(), !with_ptrace);
      EXPECT_EQ(r[who + ".mntns"] == "0", !with_ptrace);
      EXPECT_EQ(r[who + ".file_privilege"], with_ptrace ? "ok" : "none");
    }
  }
}

TEST_F(PrivilegesRuntime, BypassChangesNothing) {
  Report r = run_in_child([](Report& out) {
    out["before"] = status_sets("/proc/self/status");
    Privileges p;
    drop(out, parsed("bypass=true"), &p);
    out["after"] = status_sets("/proc/self/status");
    out["this"] = p.describe_this_thread();
    Privileges::Raised ring("kallsyms");
    out["ring"] = ring.ok() ? agent::mask_names(ring.raised()) : ring.error();
  });
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_EQ(r["after"], r["before"]);
  EXPECT_NE(r["after"].find(fmt::format("eff={:016x}", held_)), std::string::npos) << r["after"];
  EXPECT_EQ(r["this"], "bypass");
  EXPECT_EQ(r["ring"], "none") << "everything is effective already";
}

TEST_F(PrivilegesRuntime, RaisingADroppedRingCapabilityIsAnErrorNotACrash) {
  Report r = run_in_child([](Report& out) {
    Privileges p;
    if (!drop(out, parsed("drop=cap_syslog"), &p)) return;
    {
      Privileges::Raised ring("kallsyms");
      out["error"] = ring.error();
      out["raised"] = agent::mask_names(ring.raised());
    }
    Privileges::Raised unknown("root");
    out["unknown"] = unknown.error();
    out["eff"] = fmt::format("{:016x}", status_effective("/proc/self/status"));
  });
  EXPECT_EQ(r["exit"], "0");
  ASSERT_EQ(r["drop"], "ok");
  EXPECT_NE(r["error"].find("CAP_SYSLOG not in the permitted set"), std::string::npos)
      << r["error"];
  EXPECT_EQ(r["raised"], "none");
  EXPECT_EQ(r["unknown"],
            "unknown capability ring 'root' (rings: ebpf, kallsyms, signal, runtime)");
  EXPECT_EQ(r["eff"], fmt::format("{:016x}", base_));
}

TEST_F(PrivilegesRuntime, AddOfACapabilityNotHeldStopsConfigure) {
  Report r = run_in_child([](Report& out) {
    if (!lose(bit(CAP_NET_ADMIN))) out["lose"] = "failed";
    Privileges p;
    std::string error;
    out["configure"] = p.configure(parsed("add=net_admin"), &error) ? "ok" : error;
  });
  EXPECT_EQ(r["lose"], "");
  EXPECT_NE(r["configure"].find("add=cap_net_admin"), std::string::npos) << r["configure"];
  EXPECT_NE(r["configure"].find("does not hold CAP_NET_ADMIN"), std::string::npos);
}

TEST_F(PrivilegesRuntime, DropFailureSaysWhyAndHowToSkipIt) {
  Report r = run_in_child([](Report& out) {
    // Without CAP_SETPCAP the bounding set cannot shrink.
    if (!lose(bit(CAP_SETPCAP))) out["lose"] = "failed";
    out["before"] = status_sets("/proc/self/status");
    Privileges p;
    drop(out, {}, &p);
    out["after"] = status_sets("/proc/self/status");
  });
  EXPECT_EQ(r["lose"], "");
  EXPECT_NE(r["drop"].find("CAP_SETPCAP is not in the permitted set"), std::string::npos)
      << r["drop"];
  EXPECT_NE(r["drop"].find("--capabilities bypass=true skips the drop"), std::string::npos);
  EXPECT_EQ(r["after"], r["before"]) << "it fails before changing anything";
}

}  // namespace
