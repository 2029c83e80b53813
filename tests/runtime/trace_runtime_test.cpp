// Runtime tests: run the real capscope binary against the live kernel, make
// real commands do privileged things, and assert the exact capability,
// syscall, verdict and audit flag of the events they cause; count events
// against bpftrace attached to the same tracepoint at the same time.
//
// They need root and BPF. Where either is missing each test is skipped with
// the reason printed (GTEST_SKIP), never reported as passed.
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace capscope::runtime_test;
using namespace std::chrono_literals;

namespace {

// What the running kernel offers, read from the kernel itself (not from capscope).
bool kernel_has_tracepoint() { return sh("grep -qw __traceiter_cap_capable /proc/kallsyms") == 0; }
bool kernel_has_kprobes() { return fs::exists("/sys/bus/event_source/devices/kprobe/type"); }
bool mount_tracefs() {
  return sh("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing") == 0;
}
bool kernel_has_fentry() {
  return mount_tracefs() &&
         sh("grep -qx cap_capable /sys/kernel/tracing/available_filter_functions") == 0;
}

// The backend the tests exercise: the one asked for, or the one auto must take
// (the first the kernel offers, in capscope's order).
std::string effective_backend() {
  std::string b = test_backend();
  if (!b.empty() && b != "auto") return b;
  if (kernel_has_tracepoint()) return "tracepoint";
  if (kernel_has_fentry()) return "fentry";
  return "kprobe";
}

// fentry and kprobe read cap_capable's opts argument; the tracepoint has none,
// so capscope classifies its checks by kernel call site.
// (Decided once: the backend and the kernel do not change while the tests run.)
bool backend_reads_opts() {
  static const bool reads_opts = effective_backend() != "tracepoint";
  return reads_opts;
}
std::string expected_audit_source() { return backend_reads_opts() ? "opts" : "callsite"; }

// Expects the audit source this backend gives a check: "callsite" on the
// tracepoint; on fentry/kprobe "opts", or "caller" for a check recovered from
// a caller that inlines cap_capable. True if it said "opts".
bool expect_audit_source_of_backend(const json& e) {
  std::string source = e.at("process_kprobe").at("capscope").at("audit_source");
  if (backend_reads_opts())
    EXPECT_TRUE(source == "opts" || source == "caller") << e.dump();
  else
    EXPECT_EQ(source, "callsite") << e.dump();
  return source == "opts";
}

// cap_capable calls counted by an observer capscope has nothing to do with: an
// ftrace kprobe event with a hist trigger, keyed by capability and opts, for one
// command name. Needs kprobes (the qemu guest has them; this project's hosts do not).
class KprobeHistObserver {
 public:
  explicit KprobeHistObserver(const std::string& comm)
      : filter_("hist:keys=cap,opts:size=4096 if comm == \"" + comm + "\"") {
    ok_ = mount_tracefs() &&
          write(kTracing + "/kprobe_events", "p:capscope_obs cap_capable cap=%dx:s32 opts=%cx:u32",
                true) &&
          write(kTracing + "/events/kprobes/capscope_obs/trigger", filter_, false);
  }
  ~KprobeHistObserver() {
    write(kTracing + "/events/kprobes/capscope_obs/trigger", "!" + filter_, false);
    write(kTracing + "/kprobe_events", "-:capscope_obs", true);
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // Calls of cap, those made with CAP_OPT_NOAUDIT (opts bit 1) or without.
  long count(int cap, bool noaudit) const {
    std::string text = read_file(kTracing + "/events/kprobes/capscope_obs/hist");
    std::istringstream in(text);
    std::string line;
    long n = 0;
    while (std::getline(in, line)) {
      int c = -1;
      unsigned opts = 0;
      long hits = 0;
      if (std::sscanf(line.c_str(), "{ cap: %d, opts: %u } hitcount: %ld", &c, &opts, &hits) == 3 &&
          c == cap && ((opts & 2U) != 0) == noaudit)
        n += hits;
    }
    return n;
  }
  std::string text() const { return read_file(kTracing + "/events/kprobes/capscope_obs/hist"); }

 private:
  // One write(2) per line, as tracefs wants; the failure is kept for the message.
  bool write(const std::string& file, const std::string& line, bool append) {
    int fd = open(file.c_str(), O_WRONLY | (append ? O_APPEND : O_TRUNC));
    std::string text = line + "\n";
    bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (!ok) error_ = file + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return ok;
  }
  inline static const std::string kTracing = "/sys/kernel/tracing";
  std::string filter_, error_;
  bool ok_ = false;
};

// A process of another user (nobody), sleeping: root reading its /proc files
// makes CAP_SYS_PTRACE checks, a no-audit probe for /stat and an audited need
// for /environ, through the same path on every kernel.
class NobodySleeper {
 public:
  NobodySleeper() {
    pid_ = fork();
    if (pid_ == 0) {
      execlp("setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep",
             "60", static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait until setpriv has become sleep as nobody.
    for (int i = 0; i < 100 && !is_nobody(); ++i) std::this_thread::sleep_for(20ms);
  }
  ~NobodySleeper() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::string proc(const std::string& file) const {
    return "/proc/" + std::to_string(pid_) + "/" + file;
  }
  bool is_nobody() const {
    struct stat st {};  // /proc/PID belongs to the task's effective uid
    return stat(proc("").c_str(), &st) == 0 && st.st_uid == 65534 &&
           read_file(proc("comm")) == "sleep\n";
  }

 private:
  pid_t pid_ = -1;
};

// A capscope process in the background, writing events to a file.
class Capscope {
 public:
  explicit Capscope(std::vector<std::string> args) {
    dir_ = fs::temp_directory_path() /
           ("capscope-rt-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    out_ = dir_ / "events";
    err_ = dir_ / "stderr";
    args.insert(args.begin(), {capscope_binary(), "trace", "--output", out_.string()});
    if (!test_backend().empty()) args.insert(args.begin() + 2, {"--backend", test_backend()});
    pid_ = spawn(std::move(args), err_);
  }
  ~Capscope() {
    if (pid_ > 0) stop();
    fs::remove_all(dir_);
  }
  // Waits until capscope says it is attached.
  // Up to 60 s: attaching fentry trampolines under qemu's emulation takes 8-12 s on a
  // busy 2-core machine; on real hardware this returns within a second.
  bool wait_ready() {
    for (int i = 0; i < 1200; ++i) {
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
  // Stops and resumes the whole tracer: its reader falls behind meanwhile.
  void freeze() { kill(pid_, SIGSTOP); }
  void thaw() { kill(pid_, SIGCONT); }
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

// A row of `capscope check`: the name padded to 36 columns, then the rest.
std::string fmt_row(const std::string& name, const std::string& rest) {
  return name + std::string(name.size() < 37 ? 37 - name.size() : 1, ' ') + rest;
}

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

// /bin/true makes only the mmap/brk/execve no-audit probes of CAP_SYS_ADMIN
// (cap_vm_enough_memory): none may be reported as an audited need.
//
// Kernels differ here. The tracepoint sits inside cap_capable, so it sees these
// probes wherever cap_capable's body runs. Debian's 6.1 and 6.12 builds inline
// cap_capable into cap_vm_enough_memory: fentry and kprobes on the cap_capable
// symbol never see them, and those backends recover them from
// cap_vm_enough_memory itself (audit_source "caller"). An ftrace kprobe on
// cap_capable says how many cap_capable really saw: exactly those may say "opts".
TEST_F(TraceRuntime, TrueMakesOnlyNoAuditProbes) {
  std::unique_ptr<KprobeHistObserver> observer;
  if (backend_reads_opts()) {
    observer = std::make_unique<KprobeHistObserver>("true");
    ASSERT_TRUE(observer->ok()) << "cannot add an ftrace kprobe on cap_capable: "
                                << observer->error();
  }
  Capscope cs({"-o", "json", "--comm", "true"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  for (int i = 0; i < 20; ++i) ASSERT_EQ(sh("/bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = cs.events();
  ASSERT_FALSE(ev.empty()) << "expected the vm_enough_memory probes of /bin/true";
  long from_opts = 0;
  for (const auto& e : ev) {
    EXPECT_EQ(cap_name(e), "CAP_SYS_ADMIN") << e.dump();
    EXPECT_FALSE(audit_of(e)) << e.dump();
    EXPECT_EQ(ret_of(e), 0) << "root holds CAP_SYS_ADMIN: " << e.dump();
    from_opts += expect_audit_source_of_backend(e) ? 1 : 0;
  }
  if (observer) EXPECT_EQ(from_opts, observer->count(21, true)) << observer->text();
}

// The same probes made by nobody are denied. On kernels that inline cap_capable into
// cap_vm_enough_memory the fentry and kprobe backends work the verdict out from the
// credentials: the function's return value says "granted" as 1 up to 6.11 and as 0
// from 6.12, so reading it reported every probe of 6.12 as denied.
TEST_F(TraceRuntime, TrueAsNobodyMakesDeniedProbes) {
  Capscope cs({"-o", "json", "--comm", "true"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(sh("setpriv --reuid=65534 --regid=65534 --clear-groups /bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = cs.events();
  ASSERT_FALSE(ev.empty()) << "expected the vm_enough_memory probes of /bin/true";
  for (const auto& e : ev) {
    EXPECT_EQ(cap_name(e), "CAP_SYS_ADMIN") << e.dump();
    EXPECT_FALSE(audit_of(e)) << e.dump();
    EXPECT_EQ(ret_of(e), -1) << e.dump();
  }
}

// mmap() at address 0 (below vm.mmap_min_addr) needs CAP_SYS_RAWIO: an audited
// check in cap_mmap_addr, granted to root, denied to nobody. Debian's 6.1 and
// 6.12 inline that cap_capable call too; fentry and kprobe recover it from
// cap_mmap_addr, so no backend misses this need.
TEST_F(TraceRuntime, LowMmapNeedsSysRawioOnEveryBackend) {
  std::unique_ptr<KprobeHistObserver> observer;
  if (backend_reads_opts()) {
    observer = std::make_unique<KprobeHistObserver>("cs_mmap_low");
    ASSERT_TRUE(observer->ok()) << "cannot add an ftrace kprobe on cap_capable: "
                                << observer->error();
  }
  Capscope cs({"-o", "json", "--comm", "cs_mmap_low", "--caps", "CAP_SYS_RAWIO"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  std::string helper = helpers_dir() + "/cs_mmap_low";
  ASSERT_EQ(sh(helper + " 3"), 0);
  EXPECT_NE(sh("setpriv --reuid=65534 --regid=65534 --clear-groups " + helper + " 2 2>/dev/null"),
            0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "cs_mmap_low", "CAP_SYS_RAWIO");
  int granted = 0, denied = 0;
  long from_opts = 0;
  for (const auto& e : ev) {
    EXPECT_TRUE(audit_of(e)) << e.dump();
    EXPECT_EQ(syscall_of(e), "mmap") << e.dump();
    EXPECT_EQ(kprobe(e).at("args").at(0).at("user_ns_arg").at("level"), 0) << e.dump();
    int uid = kprobe(e).at("process").at("uid");
    if (ret_of(e) == 0) {
      ++granted;
      EXPECT_EQ(uid, 0) << e.dump();
    } else {
      ++denied;
      EXPECT_EQ(uid, 65534) << e.dump();
    }
    from_opts += expect_audit_source_of_backend(e) ? 1 : 0;
  }
  EXPECT_EQ(granted, 3) << cs.output_text();
  // nobody's single failed mmap() (the helper stops at the first failure).
  EXPECT_EQ(denied, 1) << cs.output_text();
  if (observer) EXPECT_EQ(from_opts, observer->count(17, false)) << observer->text();
}

// Root reading another user's /proc/PID/stat makes a no-audit CAP_SYS_PTRACE
// probe (ptrace_may_access with PTRACE_MODE_NOAUDIT); reading its environ makes
// an audited one. Same capability, same process: only the audit flag differs,
// and it must come from opts on fentry/kprobe, from the call site on the tracepoint.
TEST_F(TraceRuntime, PtraceProbeAndNeedAreToldApart) {
  NobodySleeper nobody;
  ASSERT_TRUE(nobody.is_nobody());
  Capscope cs({"-o", "json", "--comm", "cat", "--caps", "CAP_SYS_PTRACE"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh("cat " + nobody.proc("stat") + " >/dev/null"), 0);
  ASSERT_EQ(sh("cat " + nobody.proc("environ") + " >/dev/null"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "cat", "CAP_SYS_PTRACE");
  int probes = 0, needs = 0;
  for (const auto& e : ev) {
    EXPECT_EQ(ret_of(e), 0) << e.dump();
    EXPECT_EQ(kprobe(e).at("capscope").at("audit_source"), expected_audit_source()) << e.dump();
    if (audit_of(e)) {
      ++needs;
      EXPECT_EQ(syscall_of(e), "openat") << e.dump();
    } else {
      ++probes;
      EXPECT_EQ(syscall_of(e), "read") << e.dump();
    }
  }
  EXPECT_GE(probes, 1) << cs.output_text();
  EXPECT_GE(needs, 1) << cs.output_text();
}

// The same capability from two kernel call chains in turn, on one CPU: a no-audit
// probe (mmap's memory accounting) and an audited need (sethostname). The
// tracepoint backend keeps each CPU's last call-site walk and reuses its decision
// only while the stack holds the same return addresses; reused across chains, it
// would give one kind the other's flag here.
TEST_F(TraceRuntime, ProbeAndNeedInTurnKeepTheirOwnFlags) {
  const int n = 2000;
  Capscope cs({"-o", "json", "--comm", "cs_probe_turns", "--caps", "CAP_SYS_ADMIN"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(helpers_dir() + "/cs_probe_turns " + std::to_string(n)), 0);
  EXPECT_EQ(cs.stop(), 0);
  int needs = 0, probes = 0;
  for (const auto& e : select(cs.events(), "cs_probe_turns", "CAP_SYS_ADMIN")) {
    std::string sc = syscall_of(e);
    if (sc == "sethostname") {
      ++needs;
      EXPECT_TRUE(audit_of(e)) << e.dump();
    } else if (sc == "mmap") {
      ++probes;
      EXPECT_FALSE(audit_of(e)) << e.dump();
    }
    EXPECT_EQ(ret_of(e), 0) << "root holds CAP_SYS_ADMIN: " << e.dump();
  }
  EXPECT_EQ(needs, n) << cs.stderr_text();
  EXPECT_GE(probes, n) << cs.stderr_text();
  EXPECT_NE(cs.stderr_text().find(" 0 lost"), std::string::npos) << cs.stderr_text();
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Checks travel on per-CPU lanes, exec records on the ring buffer, so the reader
// may take a child's exec before the check it made just before exec'ing. Every
// child of cs_exec_turns checks CAP_SETUID once as cs_exec_turns, execs
// cs_setuid_loop and checks once more: each check names the binary that made it.
TEST_F(TraceRuntime, ChecksJustBeforeAnExecNameTheBinaryThatMadeThem) {
  const int n = 300;
  Capscope cs({"-o", "json", "--caps", "CAP_SETUID"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(helpers_dir() + "/cs_exec_turns " + std::to_string(n) + " " + helpers_dir() +
               "/cs_setuid_loop >/dev/null"),
            0);
  EXPECT_EQ(cs.stop(), 0);
  auto all = cs.events();
  for (const std::string comm : {"cs_exec_turns", "cs_setuid_loop"}) {
    auto events = select(all, comm, "CAP_SETUID");
    // The parent makes no check: one a child for each of its two images.
    EXPECT_EQ(events.size(), static_cast<size_t>(n)) << comm << "\n" << cs.stderr_text();
    int wrong = 0;
    for (const auto& e : events)
      if (!ends_with(kprobe(e).at("process").value("binary", ""), "/" + comm)) ++wrong;
    EXPECT_EQ(wrong, 0) << "checks of " << comm << " named after another binary, e.g. "
                        << (events.empty() ? "" : events.front().dump());
  }
  EXPECT_NE(cs.stderr_text().find(" 0 lost"), std::string::npos) << cs.stderr_text();
}

// The number just before `label` in capscope's summary line ("..., 120 reported, ..."); -1 if none.
long summary_count(const std::string& text, const std::string& label) {
  auto at = text.find(label);
  if (at == std::string::npos) return -1;
  auto from = text.find_last_of(" ,", at - 1);
  return std::stol(text.substr(from + 1, at - from - 1));
}

// The smallest ring buffer (1 MiB) and lanes (256 KiB, 2048 checks a CPU), and a
// reader stopped while a loop makes 50,000 checks: a full lane sends its checks on
// the ring buffer, which holds about 7,700 more; the rest are counted as lost,
// none dropped silently, and once the reader runs again it reports all it holds.
// A first loop with the reader running has the call site learned: unlearned, every
// check would be a 1.4 KB learning sample, and those never go on a lane.
TEST_F(TraceRuntime, FullLanesOverflowIntoTheRingBufferThenCountLosses) {
  const long warm = 1000, n = 50000;
  const long lane_capacity = 2048L * std::max(libbpf_num_possible_cpus(), 1);
  Capscope cs(
      {"-o", "json", "--comm", "cs_setuid_loop", "--caps", "CAP_SETUID", "--ringbuf-size", "1"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(helpers_dir() + "/cs_setuid_loop " + std::to_string(warm) + " >/dev/null"), 0);
  std::this_thread::sleep_for(500ms);
  cs.freeze();
  int rc = sh(helpers_dir() + "/cs_setuid_loop " + std::to_string(n) + " >/dev/null");
  cs.thaw();
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(cs.stop(), 0);
  long ours = static_cast<long>(select(cs.events(), "cs_setuid_loop", "CAP_SETUID").size());
  std::string text = cs.stderr_text();
  long lost = summary_count(text, " lost (");
  ASSERT_GE(lost, 0) << text;
  EXPECT_EQ(ours + lost, warm + n) << text;
  EXPECT_GT(lost, 0) << text;
  EXPECT_GT(ours, warm + lane_capacity) << "the ring buffer took none of the lanes' overflow\n"
                                        << text;
}

// The IRQ work interrupts CPU `cpu` has taken (/proc/interrupts, x86's IWI line):
// how the ring buffer's wakeups reach a reader. -1 where the line is missing.
long irq_work_interrupts(int cpu) {
  std::ifstream in("/proc/interrupts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name;
    words >> name;
    if (name != "IWI:") continue;
    long count = -1;
    for (int c = 0; c <= cpu && (words >> count); ++c) {
    }
    return count;
  }
  return -1;
}

// Under a flood the reader polls and keeps its wakeup flag down, so the checking
// CPU takes almost none of the ring buffer's wakeups (each a self-IPI there): the
// wakeup mark alone would send one per 256 KiB of a lane, 48 for these checks.
TEST_F(TraceRuntime, AFloodOfChecksWakesTheReaderAlmostNever) {
  const int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (cpus < 2) GTEST_SKIP() << "one CPU: the reader and the checks take turns on it";
  const int loop_cpu = cpus - 1;
  if (irq_work_interrupts(loop_cpu) < 0)
    GTEST_SKIP() << "no IWI line in /proc/interrupts (not x86): IRQ work is not counted apart";
  const long n = 100000;
  Capscope cs({"-o", "compact", "--comm", "cs_setuid_loop", "--caps", "CAP_SETUID"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  long before = irq_work_interrupts(loop_cpu);
  ASSERT_EQ(sh("taskset -c " + std::to_string(loop_cpu) + " " + helpers_dir() + "/cs_setuid_loop " +
               std::to_string(n) + " >/dev/null"),
            0);
  long wakeups = irq_work_interrupts(loop_cpu) - before;
  EXPECT_EQ(cs.stop(), 0);
  EXPECT_LT(wakeups, 20) << "IRQ work interrupts on CPU " << loop_cpu << " during " << n
                         << " checks\n"
                         << cs.stderr_text();
  // Every check accounted for. A reader slower than the loop (the ASan build's) loses
  // some, counted; it never sleeps then, so it is never woken either.
  std::string text = cs.stderr_text();
  EXPECT_EQ(summary_count(text, " reported") + summary_count(text, " lost ("), n) << text;
}

TEST_F(TraceRuntime, UniqueReportsOncePerCapabilityAndVerdict) {
  Capscope cs({"-o", "json", "--comm", "cs_setuid_loop", "--unique"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(helpers_dir() + "/cs_setuid_loop 5000 >/dev/null"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "cs_setuid_loop", "CAP_SETUID");
  ASSERT_EQ(ev.size(), 1u) << cs.output_text();
  EXPECT_EQ(syscall_of(ev[0]), "setuid");
  EXPECT_TRUE(kprobe(ev[0]).at("capscope").at("insetid"));
  EXPECT_NE(cs.stderr_text().find("suppressed by --unique"), std::string::npos);
}

// The kernel gives a freed mount namespace's inode number to the next one at once
// (three `unshare -m` in a row here all get the same inode): each new namespace is a
// new subject for --unique all the same, so each of these chroots is reported.
TEST_F(TraceRuntime, UniqueStartsOverInANamespaceThatReusesAnInode) {
  Capscope cs({"-o", "json", "--unique", "--comm", "chroot", "--caps", "CAP_SYS_CHROOT"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  constexpr int kRuns = 3;
  for (int i = 0; i < kRuns; ++i) ASSERT_EQ(sh("unshare -m chroot / true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "chroot", "CAP_SYS_CHROOT");
  EXPECT_EQ(ev.size(), size_t{kRuns}) << cs.output_text();
  for (const auto& e : ev) EXPECT_EQ(syscall_of(e), "chroot") << e.dump();
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

// --unique keeps a probe and a need of the same capability apart: the probe
// (reading another user's /proc/PID/stat) comes first and must not hide the need
// (its environ) that follows; each is then reported once.
TEST_F(TraceRuntime, UniqueShowsTheNeedAfterTheProbe) {
  NobodySleeper nobody;
  ASSERT_TRUE(nobody.is_nobody());
  Capscope cs({"-o", "json", "--unique", "--comm", "cat", "--caps", "CAP_SYS_PTRACE"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(sh("cat " + nobody.proc("stat") + " >/dev/null"), 0);
    ASSERT_EQ(sh("cat " + nobody.proc("environ") + " >/dev/null"), 0);
  }
  EXPECT_EQ(cs.stop(), 0);
  auto ev = select(cs.events(), "cat", "CAP_SYS_PTRACE");
  int probes = 0, needs = 0;
  for (const auto& e : ev) (audit_of(e) ? needs : probes) += ret_of(e) == 0 ? 1 : 0;
  EXPECT_EQ(probes, 1) << cs.output_text();
  EXPECT_EQ(needs, 1) << cs.output_text();
  for (const auto& e : ev)
    if (audit_of(e)) EXPECT_EQ(syscall_of(e), "openat");
}

TEST_F(TraceRuntime, RateLimitCountsWhatItSuppressed) {
  Capscope cs(
      {"-o", "json", "--comm", "cs_setuid_loop", "--rate-limit", "1h", "--caps", "CAP_SETUID"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  ASSERT_EQ(sh(helpers_dir() + "/cs_setuid_loop 1000 >/dev/null"), 0);
  EXPECT_EQ(cs.stop(), 0);
  auto ev = cs.events();
  ASSERT_EQ(ev.size(), 1u) << cs.output_text();
  EXPECT_NE(cs.stderr_text().find(" 999 by --rate-limit"), std::string::npos) << cs.stderr_text();
}

// Every check is attributed to the thread that made it, when threads come one after
// the other on one CPU, each likely on the kernel stack its predecessor freed: the
// case the tracepoint program's per-CPU memo of the checking task (cs_current_task)
// must not be fooled by. (Without the exit tracepoint's part in it, this fails.)
TEST_F(TraceRuntime, ThreadsInTurnAreEachTheirOwnChecker) {
  constexpr int kThreads = 150;
  Capscope cs({"-o", "json", "--comm", "cs_thread_turns", "--caps", "CAP_SETUID"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  fs::path tids_file = fs::temp_directory_path() / ("capscope-rt-tids-" + std::to_string(getpid()));
  std::string pin = sh("command -v taskset >/dev/null") == 0 ? "taskset -c 0 " : "";
  ASSERT_EQ(sh(pin + helpers_dir() + "/cs_thread_turns " + std::to_string(kThreads) + " > " +
               tids_file.string()),
            0);
  ASSERT_EQ(cs.stop(), 0);
  std::map<long, int> expected, seen;
  std::istringstream in(read_file(tids_file));
  for (long tid; in >> tid;) expected[tid] = 2;
  fs::remove(tids_file);
  ASSERT_EQ(expected.size(), size_t{kThreads});
  for (const auto& e : select(cs.events(), "cs_thread_turns", "CAP_SETUID"))
    ++seen[kprobe(e).at("process").at("tid").get<long>()];
  EXPECT_EQ(seen, expected);
}

constexpr int kLoopCalls = 20000;

// Runs cs_setuid_loop under capscope; returns capscope's count of granted CAP_SETUID.
long capscope_setuid_count(Capscope& cs) {
  EXPECT_EQ(sh(helpers_dir() + "/cs_setuid_loop " + std::to_string(kLoopCalls) + " >/dev/null"), 0);
  EXPECT_EQ(cs.stop(), 0);
  EXPECT_NE(cs.stderr_text().find(" 0 lost"), std::string::npos) << cs.stderr_text();
  long ours = 0;
  for (const auto& e : cs.events())
    if (cap_name(e) == "CAP_SETUID" && ret_of(e) == 0) ++ours;
  return ours;
}

// The same checks counted by capscope and by bpftrace on the same tracepoint.
void expect_counts_equal_bpftrace() {
  ASSERT_EQ(sh("command -v bpftrace >/dev/null"), 0)
      << "bpftrace is part of the test set-up: run scripts/install-deps.sh";
  // bpftrace attaches classic tracepoints, which need tracefs (capscope does not).
  ASSERT_TRUE(mount_tracefs());
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
  long ours = capscope_setuid_count(cs);
  kill(bt_pid, SIGINT);
  for (int i = 0; i < 100 && read_file(bt_out).find("@[") == std::string::npos; ++i)
    std::this_thread::sleep_for(100ms);
  // bpftrace prints "@[7, 0]: 20000" for CAP_SETUID granted.
  std::string text = read_file(bt_out);
  auto at = text.find("@[7, 0]: ");
  ASSERT_NE(at, std::string::npos) << text;
  long bt_count = std::stol(text.substr(at + 9));
  EXPECT_EQ(bt_count, kLoopCalls);
  EXPECT_EQ(ours, bt_count);
  fs::remove(bt_out);
}

// The same checks counted by capscope and by an ftrace kprobe on cap_capable,
// which also reads opts: every setuid() check is audited, with CAP_OPT_INSETID.
void expect_counts_equal_ftrace_kprobe() {
  KprobeHistObserver observer("cs_setuid_loop");
  ASSERT_TRUE(observer.ok()) << "cannot add an ftrace kprobe on cap_capable: " << observer.error();
  Capscope cs({"-o", "json", "--comm", "cs_setuid_loop"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  long ours = capscope_setuid_count(cs);
  EXPECT_EQ(observer.count(7, false), kLoopCalls) << observer.text();
  EXPECT_EQ(observer.count(7, true), 0) << observer.text();
  EXPECT_EQ(ours, observer.count(7, false));
}

// Event counts against an observer capscope did not write: bpftrace on the
// tracepoint where the kernel has one, else an ftrace kprobe (kernels before 6.14).
TEST_F(TraceRuntime, CountsEqualAnIndependentObserver) {
  if (kernel_has_tracepoint()) {
    expect_counts_equal_bpftrace();
  } else {
    ASSERT_TRUE(kernel_has_kprobes()) << "neither the tracepoint nor kprobes: nothing can observe";
    expect_counts_equal_ftrace_kprobe();
  }
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
// Backends that read opts walk nothing: there the flag changes nothing.
TEST_F(TraceRuntime, ProbeReadWalkClassifiesTheSame) {
  Capscope cs({"-o", "json", "--probe-read-walk", "--comm", "chown,true"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  bool walks = cs.stderr_text().find("call-site walk: probe reads") != std::string::npos;
  EXPECT_EQ(walks, !backend_reads_opts()) << cs.stderr_text();
  fs::path f = fs::temp_directory_path() / "capscope-walk-chown";
  std::ofstream(f) << "x";
  ASSERT_EQ(sh("chown 1:1 " + f.string() + " && /bin/true"), 0);
  EXPECT_EQ(cs.stop(), 0);
  fs::remove(f);
  auto all = cs.events();
  auto chown = select(all, "chown", "CAP_CHOWN");
  ASSERT_FALSE(chown.empty()) << cs.output_text();
  EXPECT_TRUE(audit_of(chown[0]));
  EXPECT_EQ(kprobe(chown[0]).at("capscope").at("audit_source"), expected_audit_source());
  auto probes = select(all, "true", "CAP_SYS_ADMIN");
  // (On opts backends /bin/true's probes may be invisible: see TrueMakesOnlyNoAuditProbes.)
  if (!backend_reads_opts()) ASSERT_FALSE(probes.empty()) << cs.output_text();
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
                            capscope_binary() + " trace -t 1 2>&1; echo \"rc=$?\"");
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  EXPECT_NE(out.find("CAP_BPF"), std::string::npos) << out;
  EXPECT_NE(out.find("sudo"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line of error, then rc: " << out;
}

// Root without CAP_SYSLOG reads /proc/kallsyms as zeros: the tracepoint backend
// cannot classify a call site then, and says so instead of guessing.
TEST_F(TraceRuntime, KallsymsOfZerosIsAOneLineError) {
  if (!test_backend().empty() && test_backend() != "tracepoint")
    GTEST_SKIP() << "the " << test_backend() << " backend reads the audit flag, not kallsyms";
  std::string out = capture("capsh --drop=cap_syslog -- -c '" + capscope_binary() +
                            " trace --backend tracepoint -t 1 2>&1; echo \"rc=$?\"'");
  if (out.find("tracepoint") != std::string::npos && out.find("not available") != std::string::npos)
    GTEST_SKIP() << "no cap_capable tracepoint here: " << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  EXPECT_NE(out.find("CAP_SYSLOG"), std::string::npos) << out;
  EXPECT_NE(out.find("kallsyms"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line of error, then rc: " << out;
}

TEST_F(TraceRuntime, BadFlagsFailWithOneLine) {
  std::string bin = capscope_binary();
  EXPECT_EQ(sh(bin + " trace --caps CAP_NOPE 2>/dev/null"), 2);
  EXPECT_EQ(sh(bin + " trace --rate-limit 5parsecs 2>/dev/null"), 2);
  EXPECT_EQ(sh(bin + " trace -o xml 2>/dev/null"), 2);
  EXPECT_EQ(sh(bin + " trace --host --containers 2>/dev/null"), 2);
}

// Every backend the kernel does not offer fails with one line saying so and why,
// never a crash or a hang: on this project's hosts fentry and kprobe, on the
// qemu guest's 6.1 the tracepoint.
TEST_F(TraceRuntime, UnavailableBackendsSayWhy) {
  struct Case {
    std::string backend;
    bool offered;
    std::string why;  // a word the reason must contain
  };
  std::vector<Case> cases = {{"tracepoint", kernel_has_tracepoint(), "6.14"},
                             {"fentry", kernel_has_fentry(), "ftrace"},
                             {"kprobe", kernel_has_kprobes(), "CONFIG_KPROBES"}};
  int unavailable = 0;
  for (const auto& c : cases) {
    if (c.offered) continue;
    ++unavailable;
    std::string out =
        capture(capscope_binary() + " trace --backend " + c.backend + " -t 1 2>&1; echo rc=$?");
    EXPECT_NE(out.find("backend " + c.backend + " is not available on this kernel"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(c.why), std::string::npos) << out;
    EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  }
  EXPECT_GE(unavailable, 1) << "no kernel this suite runs on offers all three backends";
}

// `check` loads each backend for real, and says which one auto takes: the first
// the kernel offers, in the order tracepoint, fentry, kprobe.
TEST_F(TraceRuntime, CheckReportsEveryBackend) {
  std::string out = capture(capscope_binary() + " check; echo rc=$?");
  std::vector<std::pair<std::string, bool>> offered = {{"tracepoint", kernel_has_tracepoint()},
                                                       {"fentry", kernel_has_fentry()},
                                                       {"kprobe", kernel_has_kprobes()}};
  std::string first;
  for (const auto& [backend, ok] : offered) {
    std::string line = fmt_row("backend " + backend, ok ? "ok   loads and attaches" : "no   ");
    EXPECT_NE(out.find(line), std::string::npos) << line << "\n" << out;
    if (ok && first.empty()) first = backend;
  }
  ASSERT_FALSE(first.empty()) << out;
  EXPECT_NE(out.find(fmt_row("backend auto", "ok   " + first)), std::string::npos) << out;
  for (const char* probe :
       {"btf", "privileges", "ring buffer", "kernel_cap_t layout", "cap_last_cap"})
    EXPECT_NE(out.find(probe), std::string::npos) << probe;
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
}

// The bounding set of this process, from /proc/self/status.
uint64_t own_bounding_set() {
  std::istringstream in(read_file("/proc/self/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("CapBnd:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

// The capability sets of a process, read from its cred in the kernel's own
// layout of kernel_cap_t (two u32 words before 6.3, one u64 since): a root
// process has all of its bounding set (this test's, by inheritance; the
// sandbox may hold some back), up to CAP_CHECKPOINT_RESTORE (40); nobody with ambient
// CAP_SYS_NICE and CAP_SYSLOG (numbers 23 and 34: one in each u32 word) has
// exactly those, and dmesg is granted CAP_SYSLOG.
TEST_F(TraceRuntime, ProcessCapsAreReadInTheKernelsLayout) {
  std::string restrict_before = read_file("/proc/sys/kernel/dmesg_restrict");
  std::ofstream("/proc/sys/kernel/dmesg_restrict") << "1";
  Capscope cs(
      {"-o", "json", "--process-caps", "--comm", "dmesg,chown", "--caps", "CAP_SYSLOG,CAP_CHOWN"});
  ASSERT_TRUE(cs.wait_ready()) << cs.stderr_text();
  fs::path f = fs::temp_directory_path() / "capscope-caps-chown";
  std::ofstream(f) << "x";
  ASSERT_EQ(sh("chown 1:1 " + f.string()), 0);
  int dmesg_rc =
      sh("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+sys_nice,+syslog "
         "--ambient-caps=+sys_nice,+syslog dmesg >/dev/null 2>&1");
  EXPECT_EQ(cs.stop(), 0);
  std::ofstream("/proc/sys/kernel/dmesg_restrict") << restrict_before;
  fs::remove(f);
  EXPECT_EQ(dmesg_rc, 0);
  auto all = cs.events();
  auto chown = select(all, "chown", "CAP_CHOWN");
  ASSERT_FALSE(chown.empty()) << cs.output_text();
  uint64_t bounding = own_bounding_set();
  ASSERT_NE(bounding & (1ULL << 40), 0U) << "CAP_CHECKPOINT_RESTORE is outside the bounding set";
  const json& root_caps = kprobe(chown[0]).at("process").at("cap");
  size_t expected_root = static_cast<size_t>(__builtin_popcountll(bounding));
  EXPECT_EQ(root_caps.at("effective").size(), expected_root) << root_caps.dump();
  EXPECT_EQ(root_caps.at("permitted").size(), expected_root) << root_caps.dump();
  EXPECT_EQ(root_caps.at("effective").back(), "CAP_CHECKPOINT_RESTORE") << root_caps.dump();
  auto dmesg = select(all, "dmesg", "CAP_SYSLOG");
  ASSERT_FALSE(dmesg.empty()) << cs.output_text();
  const json expected = json::array({"CAP_SYS_NICE", "CAP_SYSLOG"});
  for (const auto& e : dmesg) {
    EXPECT_EQ(ret_of(e), 0) << e.dump();
    EXPECT_TRUE(audit_of(e)) << e.dump();
    const json& caps = kprobe(e).at("process").at("cap");
    EXPECT_EQ(caps.at("effective"), expected) << caps.dump();
    EXPECT_EQ(caps.at("permitted"), expected) << caps.dump();
    EXPECT_EQ(caps.at("inheritable"), expected) << caps.dump();
  }
}

}  // namespace
