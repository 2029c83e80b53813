// Runtime tests: run the real capscope binary against the live kernel, make
// real commands do privileged things, and assert the exact capability,
// syscall, verdict and audit flag of the events they cause; count events
// against bpftrace attached to the same tracepoint at the same time.
//
// They need root and BPF. Where either is missing each test is skipped with
// the reason printed (GTEST_SKIP), never reported as passed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string skip_reason() {
  if (geteuid() != 0) return "runtime tests need root";
  if (!fs::exists("/sys/kernel/btf/vmlinux")) return "kernel has no BTF";
  return "";
}

// Runs a shell command, returns its exit status.
int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Runs a shell command, returns its standard output without the final newline.
std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The mount point of the unified (v2) cgroup hierarchy, empty if none.
std::string cgroup2_mount() {
  return capture("awk '$3 == \"cgroup2\" { print $2; exit }' /proc/mounts");
}

// A busybox image for podman, built from Debian's busybox-static by
// scripts/busybox-image.sh (no registry is reachable from the test machines).
constexpr const char* kBusyboxImage = "localhost/capscope-busybox";

// Empty, or why podman cannot run the test containers. Podman, runc and busybox-static
// are part of the test set-up (scripts/install-deps.sh): their absence is a failure.
std::string podman_problem() {
  if (sh("command -v podman >/dev/null && command -v runc >/dev/null") != 0)
    return "podman and runc are not installed: run scripts/install-deps.sh";
  std::string build = std::string("bash ") + CAPSCOPE_SOURCE_DIR + "/scripts/busybox-image.sh " +
                      kBusyboxImage + " >/dev/null 2>&1";
  if (sh(build) != 0) return "scripts/busybox-image.sh could not build the busybox image";
  return "";
}

// A capscope process in the background, writing events to a file.
class Capscope {
 public:
  explicit Capscope(std::vector<std::string> args) {
    dir_ = fs::temp_directory_path() /
           ("capscope-rt-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    out_ = dir_ / "events";
    err_ = dir_ / "stderr";
    args.insert(args.begin(), {CAPSCOPE_BINARY, "trace", "--output", out_.string()});
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Capscope() {
    if (pid_ > 0) stop();
    fs::remove_all(dir_);
  }
  // Waits until capscope says it is attached.
  bool wait_ready() {
    for (int i = 0; i < 200; ++i) {
      if (read_file(err_).find("tracing with the") != std::string::npos) return true;
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  int stop() {
    // Give the ring buffer a moment, then SIGINT: capscope drains and flushes.
    std::this_thread::sleep_for(300ms);
    kill(pid_, SIGINT);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::vector<json> events() const {
    std::vector<json> v;
    std::ifstream in(out_);
    std::string line;
    while (std::getline(in, line))
      if (!line.empty()) v.push_back(json::parse(line));
    return v;
  }
  std::string stderr_text() const { return read_file(err_); }
  std::string output_text() const { return read_file(out_); }

 private:
  static inline int counter_ = 0;
  fs::path dir_, out_, err_;
  pid_t pid_ = -1;
};

const json& kprobe(const json& e) { return e.at("process_kprobe"); }
std::string cap_name(const json& e) {
  return kprobe(e).at("args").at(1).at("capability_arg").at("name");
}
int ret_of(const json& e) { return kprobe(e).at("return").value("int_arg", 0); }
std::string syscall_of(const json& e) {
  return kprobe(e).at("capscope").at("syscall").value("name", "");
}
bool audit_of(const json& e) { return kprobe(e).at("capscope").at("audit"); }
std::string comm_of(const json& e) { return kprobe(e).at("capscope").at("comm"); }

// Events of one command name, for one capability.
std::vector<json> select(const std::vector<json>& all, const std::string& comm,
                         const std::string& cap) {
  std::vector<json> out;
  for (const auto& e : all)
    if (comm_of(e) == comm && cap_name(e) == cap) out.push_back(e);
  return out;
}

class TraceRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_F(TraceRuntime, ChownIsGrantedAuditedThroughFchownat) {
  Capscope cs({"-o", "json", "--comm", "chown"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  fs::path f = fs::temp_directory_path() / "capscope-chown-target";
  std::ofstream(f) << "x";
  ASSERT_EQ(sh("chown 1:1 " + f.string()), 0);
  EXPECT_EQ(cs.stop(), 0) << cs.stderr_text();
  fs::remove(f);
  auto ev = select(cs.events(), "chown", "CAP_CHOWN");
  ASSERT_FALSE(ev.empty()) << cs.output_text();
  for (const auto& e : ev) {
    EXPECT_EQ(ret_of(e), 0);
    EXPECT_TRUE(audit_of(e));
    EXPECT_EQ(syscall_of(e), "fchownat");
    EXPECT_EQ(kprobe(e).at("process").at("binary"), "/usr/bin/chown");
  }
}

TEST_F(TraceRuntime, NiceAsNobodyIsDeniedSysNiceThroughSetpriority) {
  Capscope cs({"-o", "json", "--comm", "nice", "--denied"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  // nice fails (exit 0 with a warning, or 125): either way the check happened.
  sh("setpriv --reuid=65534 --regid=65534 --clear-groups nice -n -20 true 2>/dev/null");
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "nice", "CAP_SYS_NICE");
  ASSERT_FALSE(ev.empty()) << cs.output_text();
  EXPECT_EQ(ret_of(ev[0]), -1);
  EXPECT_TRUE(audit_of(ev[0]));
  EXPECT_EQ(syscall_of(ev[0]), "setpriority");
  EXPECT_EQ(kprobe(ev[0]).at("process").at("uid"), 65534);
  // --denied: nothing granted may come through.
  for (const auto& e : cs.events()) EXPECT_EQ(ret_of(e), -1);
}

TEST_F(TraceRuntime, ChrootAndMountAndUnshare) {
  Capscope cs({"-o", "json", "--comm", "chroot,unshare,mount"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh("chroot / true"), 0);
  ASSERT_EQ(sh("unshare -m sh -c 'mount -t tmpfs none /mnt'"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto all = cs.events();
  auto chroot = select(all, "chroot", "CAP_SYS_CHROOT");
  ASSERT_FALSE(chroot.empty()) << cs.output_text();
  EXPECT_EQ(syscall_of(chroot[0]), "chroot");
  EXPECT_TRUE(audit_of(chroot[0]));
  auto unshare = select(all, "unshare", "CAP_SYS_ADMIN");
  ASSERT_FALSE(unshare.empty());
  bool saw_unshare_syscall = false;
  for (const auto& e : unshare) saw_unshare_syscall |= syscall_of(e) == "unshare" && audit_of(e);
  EXPECT_TRUE(saw_unshare_syscall);
  auto mount = select(all, "mount", "CAP_SYS_ADMIN");
  bool saw_mount = false;
  for (const auto& e : mount)
    saw_mount |= syscall_of(e) == "mount" && audit_of(e) && ret_of(e) == 0;
  EXPECT_TRUE(saw_mount) << cs.output_text();
}

TEST_F(TraceRuntime, DmesgAsNobodyIsDeniedSyslog) {
  std::string restrict_before = read_file("/proc/sys/kernel/dmesg_restrict");
  // With dmesg_restrict=1 reading the log checks CAP_SYSLOG.
  std::ofstream("/proc/sys/kernel/dmesg_restrict") << "1";
  Capscope cs({"-o", "json", "--comm", "dmesg"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  sh("setpriv --reuid=65534 --regid=65534 --clear-groups dmesg >/dev/null 2>&1");
  EXPECT_EQ(cs.stop(), 0);
  std::ofstream("/proc/sys/kernel/dmesg_restrict") << restrict_before;
  // util-linux dmesg opens /dev/kmsg first, then falls back to syslog(2)
  // (klogctl): each is a denied, audited CAP_SYSLOG check.
  auto ev = select(cs.events(), "dmesg", "CAP_SYSLOG");
  ASSERT_FALSE(ev.empty()) << cs.output_text();
  std::set<std::string> syscalls;
  for (const auto& e : ev) {
    EXPECT_EQ(ret_of(e), -1) << e.dump();
    EXPECT_TRUE(audit_of(e)) << e.dump();
    syscalls.insert(syscall_of(e));
  }
  EXPECT_EQ(syscalls, (std::set<std::string>{"openat", "syslog"}));
}

// /bin/true makes only the mmap/brk/execve no-audit probes of CAP_SYS_ADMIN:
// none may be reported as an audited need.
TEST_F(TraceRuntime, TrueMakesOnlyNoAuditProbes) {
  Capscope cs({"-o", "json", "--comm", "true"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(sh("/bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = cs.events();
  ASSERT_FALSE(ev.empty()) << "expected the vm_enough_memory probes of /bin/true";
  for (const auto& e : ev) {
    EXPECT_EQ(cap_name(e), "CAP_SYS_ADMIN") << e.dump();
    EXPECT_FALSE(audit_of(e)) << e.dump();
    EXPECT_EQ(kprobe(e).at("capscope").at("audit_source"), "callsite");
  }
}

TEST_F(TraceRuntime, UniqueReportsOncePerCapabilityAndVerdict) {
  Capscope cs({"-o", "json", "--comm", "cs_setuid_loop", "--unique"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(std::string(CAPSCOPE_HELPERS_DIR) + "/cs_setuid_loop 5000 >/dev/null"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "cs_setuid_loop", "CAP_SETUID");
  ASSERT_EQ(ev.size(), 1u) << cs.output_text();
  EXPECT_EQ(syscall_of(ev[0]), "setuid");
  EXPECT_TRUE(kprobe(ev[0]).at("capscope").at("insetid"));
  EXPECT_NE(cs.stderr_text().find("suppressed by --unique"), std::string::npos);
}

// --audit-only in a fresh capscope: the first checks on each kernel path are learning
// samples the kernel cannot classify; user space must still keep their probes out.
TEST_F(TraceRuntime, AuditOnlyHidesProbesFromTheFirstCheckOn) {
  Capscope cs({"-o", "json", "--audit-only", "--comm", "true"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(sh("/bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  EXPECT_TRUE(cs.events().empty()) << cs.output_text();
  EXPECT_NE(cs.stderr_text().find(" 0 reported"), std::string::npos) << cs.stderr_text();
}

// --unique keeps a probe and a need of the same capability apart: unshare -u probes
// CAP_SYS_ADMIN on mmap first, then needs it for unshare(CLONE_NEWUTS) (a new UTS
// namespace, not a new mount namespace: the same --unique key).
TEST_F(TraceRuntime, UniqueShowsTheNeedAfterTheProbe) {
  Capscope cs({"-o", "json", "--unique", "--comm", "unshare", "--caps", "CAP_SYS_ADMIN"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh("unshare -u /bin/true && unshare -u /bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "unshare", "CAP_SYS_ADMIN");
  int probes = 0, needs = 0;
  for (const auto& e : ev) (audit_of(e) ? needs : probes) += ret_of(e) == 0 ? 1 : 0;
  EXPECT_EQ(probes, 1) << cs.output_text();
  EXPECT_EQ(needs, 1) << cs.output_text();
  for (const auto& e : ev)
    if (audit_of(e)) EXPECT_EQ(syscall_of(e), "unshare");
}

TEST_F(TraceRuntime, RateLimitCountsWhatItSuppressed) {
  Capscope cs(
      {"-o", "json", "--comm", "cs_setuid_loop", "--rate-limit", "1h", "--caps", "CAP_SETUID"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(std::string(CAPSCOPE_HELPERS_DIR) + "/cs_setuid_loop 1000 >/dev/null"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = cs.events();
  ASSERT_EQ(ev.size(), 1u) << cs.output_text();
  EXPECT_NE(cs.stderr_text().find(" 999 by --rate-limit"), std::string::npos) << cs.stderr_text();
}

// The same checks counted by capscope and by bpftrace on the same tracepoint.
TEST_F(TraceRuntime, CountsEqualBpftrace) {
  ASSERT_EQ(sh("command -v bpftrace >/dev/null"), 0)
      << "bpftrace is part of the test set-up: run scripts/install-deps.sh";
  // bpftrace attaches classic tracepoints, which need tracefs (capscope does not).
  ASSERT_EQ(sh("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing"),
            0);
  fs::path bt_out = fs::temp_directory_path() / "capscope-bpftrace.out";
  std::string bt =
      "bpftrace -e 'tracepoint:capability:cap_capable /comm == \"cs_setuid_loop\"/ "
      "{ @[args->cap, args->ret] = count(); }' > " +
      bt_out.string() + " 2>&1 & echo $!";
  FILE* p = popen(bt.c_str(), "r");
  ASSERT_NE(p, nullptr);
  int bt_pid = 0;
  ASSERT_EQ(fscanf(p, "%d", &bt_pid), 1);
  pclose(p);
  Capscope cs({"-o", "json", "--comm", "cs_setuid_loop"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  for (int i = 0; i < 100 && read_file(bt_out).find("Attaching") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  std::this_thread::sleep_for(500ms);
  constexpr int kCalls = 20000;
  ASSERT_EQ(sh(std::string(CAPSCOPE_HELPERS_DIR) + "/cs_setuid_loop " + std::to_string(kCalls) +
               " >/dev/null"),
            0);
  EXPECT_EQ(cs.stop(), 0);
  kill(bt_pid, SIGINT);
  for (int i = 0; i < 100 && read_file(bt_out).find("@[") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  // bpftrace prints "@[7, 0]: 20000" for CAP_SETUID granted.
  std::string text = read_file(bt_out);
  auto at = text.find("@[7, 0]: ");
  ASSERT_NE(at, std::string::npos) << text;
  long bt_count = std::stol(text.substr(at + 9));
  long ours = 0;
  for (const auto& e : cs.events())
    if (cap_name(e) == "CAP_SETUID" && ret_of(e) == 0) ++ours;
  EXPECT_EQ(bt_count, kCalls);
  EXPECT_EQ(ours, bt_count);
  EXPECT_NE(cs.stderr_text().find(" 0 lost"), std::string::npos) << cs.stderr_text();
  fs::remove(bt_out);
}

// A real container: podman (with runc, as this machine's hybrid cgroups need) runs
// chown. Its checks carry the container id podman reports, from the cgroup the
// check came from (runc's init moves into the container's cgroup after fork), and
// --containers keeps the host's own chown out.
TEST_F(TraceRuntime, PodmanContainerIsAttributedFromItsCgroup) {
  ASSERT_EQ(podman_problem(), "");
  std::string name = "capscope-rt-" + std::to_string(getpid());
  fs::path host_file = fs::temp_directory_path() / "capscope-host-chown";
  std::ofstream(host_file) << "x";
  Capscope cs({"-o", "json", "--process-ns", "--containers", "--comm", "chown"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh("podman --runtime runc run --name " + name + " --network none " + kBusyboxImage +
               " sh -c 'touch /tmp/f && chown 1:1 /tmp/f' >/dev/null 2>&1"),
            0);
  ASSERT_EQ(sh("chown 1:1 " + host_file.string()), 0);
  std::string id = capture("podman inspect --format '{{.Id}}' " + name);
  sh("podman rm -f " + name + " >/dev/null 2>&1");
  fs::remove(host_file);
  EXPECT_EQ(cs.stop(), 0);
  ASSERT_EQ(id.size(), 64u) << id;
  auto ev = select(cs.events(), "chown", "CAP_CHOWN");
  ASSERT_FALSE(ev.empty()) << cs.output_text();
  for (const auto& e : ev) {
    const json& cs_block = kprobe(e).at("capscope");
    EXPECT_EQ(cs_block.at("container_id"), id) << e.dump();
    EXPECT_EQ(cs_block.at("container_runtime"), "podman");
    EXPECT_EQ(cs_block.at("pidns_level"), 1);
    EXPECT_EQ(kprobe(e).at("process").at("docker"), id.substr(0, 31));
    EXPECT_FALSE(kprobe(e).at("process").at("ns").at("mnt").contains("is_host"));
    EXPECT_EQ(ret_of(e), 0);
    EXPECT_TRUE(audit_of(e));
  }
}

// --cgroup keeps exactly the tasks of one cgroup v2 directory.
TEST_F(TraceRuntime, CgroupFilterKeepsOneCgroup) {
  std::string root = cgroup2_mount();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
  fs::path cg = fs::path(root) / ("capscope-rt-" + std::to_string(getpid()));
  ASSERT_TRUE(fs::create_directory(cg)) << cg;
  fs::path f = fs::temp_directory_path() / "capscope-cgroup-chown";
  std::ofstream(f) << "x";
  Capscope cs({"-o", "json", "--cgroup", cg.string(), "--caps", "CAP_CHOWN"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh("chown 1:1 " + f.string()), 0);  // outside: filtered out
  ASSERT_EQ(sh("sh -c 'echo $$ > " + (cg / "cgroup.procs").string() + " && exec chown 2:2 " +
               f.string() + "'"),
            0);
  EXPECT_EQ(cs.stop(), 0);
  struct stat st {};
  ASSERT_EQ(stat(cg.c_str(), &st), 0);
  fs::remove(f);
  fs::remove(cg);
  // chown 2:2 checks CAP_CHOWN for the owner and for the group; chown 1:1 ran outside.
  auto ev = cs.events();
  ASSERT_FALSE(ev.empty()) << cs.output_text();
  for (const auto& e : ev) {
    EXPECT_EQ(comm_of(e), "chown");
    EXPECT_EQ(kprobe(e).at("process").at("arguments"), "2:2 " + f.string());
    EXPECT_EQ(kprobe(e).at("capscope").at("cgroup_id"), st.st_ino);
  }
}

// The call-site walk kernels before bpf_rdonly_cast(ptr, 0) get classifies the same.
TEST_F(TraceRuntime, ProbeReadWalkClassifiesTheSame) {
  Capscope cs({"-o", "json", "--probe-read-walk", "--comm", "chown,true"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  EXPECT_NE(cs.stderr_text().find("call-site walk: probe reads"), std::string::npos)
      << cs.stderr_text();
  fs::path f = fs::temp_directory_path() / "capscope-walk-chown";
  std::ofstream(f) << "x";
  ASSERT_EQ(sh("chown 1:1 " + f.string() + " && /bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  fs::remove(f);
  auto all = cs.events();
  auto chown = select(all, "chown", "CAP_CHOWN");
  ASSERT_FALSE(chown.empty()) << cs.output_text();
  EXPECT_TRUE(audit_of(chown[0]));
  auto probes = select(all, "true", "CAP_SYS_ADMIN");
  ASSERT_FALSE(probes.empty()) << cs.output_text();
  for (const auto& e : probes) EXPECT_FALSE(audit_of(e)) << e.dump();
}

// Host processes: every namespace of a plain host command is the host's.
TEST_F(TraceRuntime, HostProcessNamespacesAreHost) {
  Capscope cs({"-o", "json", "--process-ns", "--comm", "chown", "--host"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  fs::path f = fs::temp_directory_path() / "capscope-host-ns";
  std::ofstream(f) << "x";
  ASSERT_EQ(sh("chown 1:1 " + f.string()), 0);
  EXPECT_EQ(cs.stop(), 0);
  fs::remove(f);
  auto ev = select(cs.events(), "chown", "CAP_CHOWN");
  ASSERT_FALSE(ev.empty()) << cs.output_text();
  const json& ns = kprobe(ev[0]).at("process").at("ns");
  for (const char* kind : {"uts", "ipc", "mnt", "pid", "net", "cgroup", "user"})
    EXPECT_EQ(ns.at(kind).value("is_host", false), true) << kind << " " << ns.dump();
  EXPECT_EQ(kprobe(ev[0]).at("capscope").at("pidns_level"), 0);
}

TEST_F(TraceRuntime, WithoutPrivilegesSaysSoInOneLine) {
  std::string out = capture("setpriv --reuid=65534 --regid=65534 --clear-groups " +
                            std::string(CAPSCOPE_BINARY) + " trace -t 1 2>&1; echo \"rc=$?\"");
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  EXPECT_NE(out.find("CAP_BPF"), std::string::npos) << out;
  EXPECT_NE(out.find("sudo"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line of error, then rc: " << out;
}

TEST_F(TraceRuntime, BadFlagsFailWithOneLine) {
  std::string bin = CAPSCOPE_BINARY;
  EXPECT_EQ(sh(bin + " trace --caps CAP_NOPE 2>/dev/null"), 2);
  EXPECT_EQ(sh(bin + " trace --rate-limit 5parsecs 2>/dev/null"), 2);
  EXPECT_EQ(sh(bin + " trace -o xml 2>/dev/null"), 2);
  EXPECT_EQ(sh(bin + " trace --host --containers 2>/dev/null"), 2);
}

TEST_F(TraceRuntime, FentryAndKprobeSayWhyNotHere) {
  // On this project's kernels kprobes are off and nothing is ftrace-patchable:
  // asking for those backends must fail with a reason, not crash or hang.
  std::string bin = CAPSCOPE_BINARY;
  if (fs::exists("/sys/bus/event_source/devices/kprobe/type"))
    GTEST_SKIP() << "this kernel has kprobes; the qemu suite covers that backend";
  std::string kprobe = capture(bin + " trace --backend kprobe -t 1 2>&1; echo rc=$?");
  EXPECT_NE(kprobe.find("backend kprobe is not available on this kernel"), std::string::npos)
      << kprobe;
  EXPECT_NE(kprobe.find("CONFIG_KPROBES"), std::string::npos) << kprobe;
  EXPECT_NE(kprobe.find("rc=1"), std::string::npos) << kprobe;
  std::string fentry = capture(bin + " trace --backend fentry -t 1 2>&1; echo rc=$?");
  EXPECT_NE(fentry.find("fentry"), std::string::npos) << fentry;
  EXPECT_NE(fentry.find("ftrace"), std::string::npos) << fentry;
  EXPECT_NE(fentry.find("rc=1"), std::string::npos) << fentry;
  EXPECT_EQ(std::count(fentry.begin(), fentry.end(), '\n'), 1) << fentry;
}

// `check` loads each backend for real and says which one auto takes.
TEST_F(TraceRuntime, CheckReportsEveryBackend) {
  std::string out = capture(std::string(CAPSCOPE_BINARY) + " check; echo rc=$?");
  EXPECT_NE(out.find("backend tracepoint                   ok   loads and attaches"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("backend auto                         ok   tracepoint"), std::string::npos)
      << out;
  for (const char* probe :
       {"btf", "privileges", "ring buffer", "kernel_cap_t layout", "cap_last_cap"})
    EXPECT_NE(out.find(probe), std::string::npos) << probe;
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
}

}  // namespace
