// Policies in the kernel, through `capscope trace --policy`: real commands make real
// checks, and the tests assert what the policies made of them: which checks became
// events (and under which policy), which processes were killed, and what the kernel
// counted, against bpftrace on the same tracepoint where the kernel has one.
//
// PolicyRuntime runs everywhere the runtime suite runs (the qemu guests included);
// PolicyPodmanRuntime needs podman (the host only).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "capture/bpf_capture.h"
#include "capture/features.h"
#include "helpers.h"
#include "policy/tracing_policy.h"

namespace capscope::runtime_test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

bool wait_for_text(const fs::path& file, const std::string& text, int tenths = 600) {
  for (int i = 0; i < tenths; ++i) {
    if (read_file(file).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

bool kernel_has_tracepoint() { return sh("grep -qw __traceiter_cap_capable /proc/kallsyms") == 0; }

// A TracingPolicy on cap_capable: `selector` is the YAML of one selector's filters,
// indented by six spaces; `scope` goes under spec (a containerSelector, ...).
std::string cap_policy(const std::string& name, const std::string& selector,
                       const std::string& scope = "") {
  return "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: \"" + name +
         "\"\nspec:\n" + scope +
         "  kprobes:\n  - call: \"cap_capable\"\n    syscall: false\n    return: true\n"
         "    args:\n    - index: 1\n      type: \"user_namespace\"\n    - index: 2\n"
         "      type: \"capability\"\n    returnArg:\n      index: 0\n      type: \"int\"\n"
         "    selectors:\n    - " +
         selector.substr(6) + "\n";
}

std::string match_cap(const std::string& cap) {
  return "      matchArgs:\n      - index: 2\n        operator: \"Equal\"\n        values:\n"
         "        - \"" +
         cap + "\"\n";
}

std::string match_binary(const std::string& op, const std::string& path) {
  return "      matchBinaries:\n      - operator: \"" + op + "\"\n        values:\n        - \"" +
         path + "\"\n";
}

std::string action(const std::string& a) {
  return "      matchActions:\n      - action: " + a + "\n";
}

// What `trace` said about one policy at exit (print_policy_summary).
struct PolicyCounts {
  long matched = -1, events = -1, rate_limited = -1, killed = -1, spared = -1, pending = -1;
};

// `capscope trace --policy ...` with JSON events into a file, for the length of a test.
class PolicyTracer {
 public:
  PolicyTracer(const fs::path& dir, const std::vector<fs::path>& policies,
               std::vector<std::string> extra = {})
      : out_(dir / "events.json"), err_(dir / "trace.err") {
    std::vector<std::string> args = {capscope_binary(), "trace",       "-o", "json",
                                     "--output",        out_.string(), "-t", "300"};
    for (const auto& p : policies) args.insert(args.end(), {"--policy", p.string()});
    args.insert(args.end(), extra.begin(), extra.end());
    if (!test_backend().empty()) args.insert(args.end(), {"--backend", test_backend()});
    pid_ = spawn(args, err_);
  }
  ~PolicyTracer() {
    if (pid_ > 0) stop();
  }
  bool ready() { return wait_for_text(err_, "tracing with"); }
  // Stops it (SIGINT) and returns its wait status.
  int stop() {
    kill(pid_, SIGINT);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return st;
  }
  [[nodiscard]] std::string err() const { return read_file(err_); }
  [[nodiscard]] const fs::path& err_path() const { return err_; }
  [[nodiscard]] std::vector<json> events() const {
    std::vector<json> out;
    std::ifstream in(out_);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }
  [[nodiscard]] PolicyCounts counts(const std::string& policy) const {
    PolicyCounts c;
    std::string text = err();
    std::smatch m;
    std::regex line(
        "capscope: policy " + policy +
        R"(: (\d+) checks matched, (\d+) events, (\d+) rate-limited)"
        R"((, (\d+) killed, (\d+) not killed \(probes, borrowed credentials\), (\d+) left to )"
        R"(user space)?)");
    if (!std::regex_search(text, m, line)) return c;
    c.matched = std::stol(m[1]);
    c.events = std::stol(m[2]);
    c.rate_limited = std::stol(m[3]);
    if (m[4].matched) {
      c.killed = std::stol(m[5]);
      c.spared = std::stol(m[6]);
      c.pending = std::stol(m[7]);
    }
    return c;
  }

 private:
  fs::path out_, err_;
  pid_t pid_ = -1;
};

std::string comm_of(const json& e) { return e.at("process_kprobe").at("capscope").at("comm"); }
std::string cap_of(const json& e) {
  return e.at("process_kprobe").at("args")[1].at("capability_arg").at("name");
}
std::string policy_of(const json& e) { return e.at("process_kprobe").at("policy_name"); }
int ret_of(const json& e) { return e.at("process_kprobe").at("return").at("int_arg"); }

// Counts checks on the tracepoint with bpftrace, an observer capscope has nothing to do
// with: `filter` is a bpftrace predicate. Only where the kernel has the tracepoint.
class BpftraceCount {
 public:
  BpftraceCount(const fs::path& dir, const std::string& filter) : out_(dir / "bpftrace.out") {
    sh("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing");
    pid_ = spawn({"/usr/bin/bpftrace", "-o", out_.string(), "-e",
                  "tracepoint:capability:cap_capable /" + filter + "/ { @n = count(); }"},
                 out_.string() + ".err");
  }
  bool ready() { return wait_for_text(out_, "Attaching", 300); }
  // Stops bpftrace and returns its count (-1 if it printed none).
  long stop() {
    kill(pid_, SIGINT);
    waitpid(pid_, nullptr, 0);
    std::smatch m;
    std::string text = read_file(out_);
    static const std::regex count(R"(@n: (\d+))");
    if (!std::regex_search(text, m, count))
      return text.find("Attaching") != std::string::npos ? 0 : -1;
    return std::stol(m[1]);
  }

 private:
  fs::path out_;
  pid_t pid_ = -1;
};

class PolicyRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    dir_ = fs::temp_directory_path() /
           ("capscope-policy-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path write_policy(const std::string& file, const std::string& yaml) {
    fs::path p = dir_ / file;
    std::ofstream(p) << yaml;
    return p;
  }
  std::string helper(const std::string& name) const { return helpers_dir() + "/" + name; }
  // bpftrace counting cs_mmap_low's CAP_SYS_ADMIN checks, where the kernel has the
  // tracepoint; null elsewhere.
  std::unique_ptr<BpftraceCount> count_mmap_low_probes() const {
    if (!kernel_has_tracepoint()) return nullptr;
    return std::make_unique<BpftraceCount>(dir_, "comm == \"cs_mmap_low\" && args->cap == 21");
  }

  fs::path dir_;
};

// matchBinaries In and NotIn, by the path each process exec'd; a process that ran before
// the capture is found by its /proc/PID/exe. (Only commands the qemu guests have too.)
TEST_F(PolicyRuntime, MatchBinariesInAndNotIn) {
  fs::path file = dir_ / "f";
  std::ofstream(file) << "x";
  fs::path go = dir_ / "go";
  // bash runs before the tracer starts; once told to, its ulimit builtin raises a hard
  // limit (a CAP_SYS_RESOURCE check, made by bash itself).
  pid_t bash = spawn({"/usr/bin/bash", "-c",
                      "while [ ! -e " + go.string() +
                          " ]; do sleep 0.05; done; ulimit -n 1000; "
                          "ulimit -n 1001 2>/dev/null; true"},
                     dir_ / "bash.err");
  std::this_thread::sleep_for(300ms);
  auto in = write_policy(
      "in.yaml",
      cap_policy("chown-only", match_cap("CAP_CHOWN") + match_binary("In", "/usr/bin/chown")));
  auto not_in = write_policy(
      "notin.yaml",
      cap_policy("not-chown", match_cap("CAP_CHOWN") + match_binary("NotIn", "/usr/bin/chown")));
  auto seeded = write_policy(
      "bash.yaml",
      cap_policy("bash-only", match_cap("CAP_SYS_RESOURCE") + match_binary("In", "/usr/bin/bash")));
  PolicyTracer t(dir_, {in, not_in, seeded});
  ASSERT_TRUE(t.ready()) << t.err();
  EXPECT_EQ(sh("/usr/bin/chown 1:1 " + file.string()), 0);
  // cs_needs chowns too (and binds a low port, and raises its priority).
  sh(helper("cs_needs") + " " + file.string() + " 1023 >/dev/null 2>&1");
  std::ofstream(go) << "go";
  int bash_status = 0;
  waitpid(bash, &bash_status, 0);
  EXPECT_TRUE(WIFEXITED(bash_status) && WEXITSTATUS(bash_status) == 0)
      << read_file(dir_ / "bash.err");
  std::this_thread::sleep_for(500ms);
  int st = t.stop();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << t.err();

  std::map<std::string, std::set<std::string>> comms;  // policy -> comms of its events
  for (const auto& e : t.events()) comms[policy_of(e)].insert(comm_of(e) + " " + cap_of(e));
  EXPECT_EQ(comms["chown-only"], std::set<std::string>{"chown CAP_CHOWN"}) << t.err();
  EXPECT_EQ(comms["not-chown"], std::set<std::string>{"cs_needs CAP_CHOWN"}) << t.err();
  EXPECT_EQ(comms["bash-only"], std::set<std::string>{"bash CAP_SYS_RESOURCE"})
      << "bash started before the capture: its binary comes from /proc\n"
      << t.err();
  EXPECT_FALSE(comms.contains("capscope")) << "only the policies' events are printed";
}

// matchReturnArgs: only the refused check (a user's nice -5) is an event, not root's.
TEST_F(PolicyRuntime, MatchReturnArgsDeniedOnly) {
  std::string denied =
      "      matchReturnArgs:\n      - index: 0\n        operator: \"Equal\"\n"
      "        values:\n        - \"-1\"\n";
  auto p =
      write_policy("denied.yaml", cap_policy("nice-denied", match_cap("CAP_SYS_NICE") + denied));
  PolicyTracer t(dir_, {p});
  ASSERT_TRUE(t.ready()) << t.err();
  EXPECT_EQ(sh("/usr/bin/nice -n -5 /bin/true"), 0);
  sh("/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/nice -n -5 /bin/true "
     "2>/dev/null");
  std::this_thread::sleep_for(500ms);
  t.stop();
  long refused = 0;
  for (const auto& e : t.events()) {
    EXPECT_EQ(ret_of(e), -1) << "a granted check passed matchReturnArgs: " << e.dump();
    EXPECT_EQ(cap_of(e), "CAP_SYS_NICE");
    if (comm_of(e) == "nice" && e.at("process_kprobe").at("capscope").at("uid") == 65534) ++refused;
  }
  EXPECT_GE(refused, 1) << t.err();
  PolicyCounts c = t.counts("nice-denied");
  EXPECT_EQ(c.matched, c.events) << t.err();
  EXPECT_GE(c.matched, 1) << t.err();
}

// NoPost counts without events; the count equals bpftrace's on the same tracepoint
// (where the kernel has it) and the loop's own number of checks.
TEST_F(PolicyRuntime, HitCountsMatchAnIndependentCount) {
  constexpr long kCalls = 20000;
  std::string loop = helper("cs_setuid_loop");
  auto p = write_policy(
      "count.yaml", cap_policy("count-setuid", match_cap("CAP_SETUID") + match_binary("In", loop) +
                                                   action("NoPost")));
  std::unique_ptr<BpftraceCount> bt;
  if (kernel_has_tracepoint()) {
    bt = std::make_unique<BpftraceCount>(dir_, "comm == \"cs_setuid_loop\" && args->cap == 7");
    ASSERT_TRUE(bt->ready()) << read_file(dir_ / "bpftrace.out.err");
  }
  PolicyTracer t(dir_, {p});
  ASSERT_TRUE(t.ready()) << t.err();
  EXPECT_EQ(sh(loop + " " + std::to_string(kCalls) + " >/dev/null"), 0);
  // Another binary making the same check is not counted (matchBinaries).
  EXPECT_EQ(sh("/usr/bin/setpriv --reuid=0 --regid=0 --clear-groups /bin/true"), 0);
  std::this_thread::sleep_for(300ms);
  t.stop();
  PolicyCounts c = t.counts("count-setuid");
  EXPECT_EQ(c.matched, kCalls) << t.err();
  EXPECT_EQ(c.events, 0) << t.err();
  EXPECT_TRUE(t.events().empty()) << "NoPost posts nothing";
  if (bt) {
    long observed = bt->stop();
    std::cout << "count-setuid: policy hits " << c.matched << ", bpftrace " << observed << "\n";
    EXPECT_EQ(observed, kCalls);
    EXPECT_EQ(c.matched, observed);
  }
}

// Sigkill kills the process that makes the check, and only it: run twice, the first
// check of a kernel path may be classified by user space (tracepoint), the second in
// the kernel; the same binary's no-check run survives.
TEST_F(PolicyRuntime, SigkillKillsTheCheckingProcess) {
  std::string loop = helper("cs_setuid_loop");
  auto p = write_policy(
      "kill.yaml", cap_policy("kill-setuid", match_cap("CAP_SETUID") + match_binary("In", loop) +
                                                 action("Sigkill")));
  PolicyTracer t(dir_, {p});
  ASSERT_TRUE(t.ready()) << t.err();
  for (int run = 0; run < 2; ++run) {
    // Long enough for a kill decided in user space to come while it runs.
    int st = std::system((loop + " 500000000 >/dev/null").c_str());
    EXPECT_TRUE(WIFSIGNALED(st) ? WTERMSIG(st) == SIGKILL : WEXITSTATUS(st) == 128 + SIGKILL)
        << "run " << run << ": status " << st << "\n"
        << t.err();
  }
  EXPECT_EQ(sh(loop + " 0 >/dev/null"), 0) << "no check, no kill";
  std::this_thread::sleep_for(300ms);
  t.stop();
  PolicyCounts c = t.counts("kill-setuid");
  std::cout << "kill-setuid: " << c.killed << " killed in the kernel, " << c.pending
            << " left to user space\n";
  EXPECT_GE(c.killed, 1) << "the second run at least is killed in the kernel\n" << t.err();
  EXPECT_GE(c.killed + c.pending, 2) << t.err();
  long killed_events = 0;
  for (const auto& e : t.events()) {
    EXPECT_EQ(e.at("process_kprobe").at("action"), "KPROBE_ACTION_SIGKILL") << e.dump();
    EXPECT_EQ(policy_of(e), "kill-setuid");
    if (e.at("process_kprobe").at("capscope").value("killed", false)) ++killed_events;
  }
  EXPECT_GE(killed_events, 2) << t.err();
}

// A no-audit probe (the CAP_SYS_ADMIN check mmap makes for memory accounting) is not a
// use: a Sigkill policy on CAP_SYS_ADMIN never kills for it.
TEST_F(PolicyRuntime, NoAuditProbeIsNeverKilled) {
  std::string low = helper("cs_mmap_low");
  auto p = write_policy(
      "probe.yaml", cap_policy("kill-admin", match_cap("CAP_SYS_ADMIN") + match_binary("In", low) +
                                                 action("Sigkill")));
  std::unique_ptr<BpftraceCount> bt = count_mmap_low_probes();
  if (bt) ASSERT_TRUE(bt->ready());
  PolicyTracer t(dir_, {p});
  ASSERT_TRUE(t.ready()) << t.err();
  for (int run = 0; run < 3; ++run)
    EXPECT_EQ(sh(low + " 3"), 0) << "run " << run << "\n" << t.err();
  std::this_thread::sleep_for(500ms);
  t.stop();
  PolicyCounts c = t.counts("kill-admin");
  std::cout << "kill-admin: " << c.matched << " probes matched, " << c.spared
            << " spared in the kernel, " << c.pending << " classified in user space\n";
  EXPECT_EQ(c.killed, 0) << t.err();
  EXPECT_GE(c.matched, 1) << "the probes reached the policy\n" << t.err();
  EXPECT_GE(c.spared + c.pending, c.matched) << t.err();
  if (bt) EXPECT_GE(bt->stop(), 1) << "cs_mmap_low made no CAP_SYS_ADMIN check to spare";
  for (const auto& e : t.events())
    ADD_FAILURE() << "a probe was posted by a Sigkill policy: " << e.dump();
}

// matchArgs on cap_capable's opts (index 3, declared int): NotEqual CAP_OPT_NOAUDIT
// (and with INSETID) posts audited checks only. cs_mmap_low's CAP_SYS_ADMIN checks are
// no-audit probes (mmap's memory accounting); unshare -m's is audited.
TEST_F(PolicyRuntime, MatchArgsOnOptsPostsAuditedChecksOnly) {
  std::string low = helper("cs_mmap_low");
  std::string unshare = capture("command -v unshare");
  unshare.erase(unshare.find_last_not_of('\n') + 1);
  ASSERT_FALSE(unshare.empty());
  auto p = write_policy(
      "audited.yaml",
      "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: audited-admin\n"
      "spec:\n  kprobes:\n  - call: cap_capable\n    syscall: false\n    args:\n"
      "    - index: 2\n      type: capability\n    - index: 3\n      type: int\n"
      "    selectors:\n    - matchArgs:\n      - index: 2\n        operator: Equal\n"
      "        values: [CAP_SYS_ADMIN]\n      - index: 3\n        operator: NotEqual\n"
      "        values: [CAP_OPT_NOAUDIT, \"6\"]\n      matchBinaries:\n      - operator: In\n"
      "        values: [\"" +
          low + "\", \"" + unshare + "\"]\n");
  std::unique_ptr<BpftraceCount> bt = count_mmap_low_probes();
  if (bt) ASSERT_TRUE(bt->ready());
  PolicyTracer t(dir_, {p});
  ASSERT_TRUE(t.ready()) << t.err();
  for (int run = 0; run < 3; ++run) {
    EXPECT_EQ(sh(low + " 3"), 0) << t.err();
    EXPECT_EQ(sh(unshare + " -m true"), 0) << t.err();
  }
  std::this_thread::sleep_for(500ms);
  t.stop();
  int from_unshare = 0;
  for (const auto& e : t.events()) {
    if (!e.contains("process_kprobe") || !e["process_kprobe"].contains("policy_name")) continue;
    EXPECT_EQ(comm_of(e), "unshare") << "a probe was posted: " << e.dump();
    EXPECT_EQ(cap_of(e), "CAP_SYS_ADMIN") << e.dump();
    EXPECT_TRUE(e["process_kprobe"]["capscope"].value("audit", false)) << e.dump();
    from_unshare += comm_of(e) == "unshare" ? 1 : 0;
  }
  EXPECT_GE(from_unshare, 3) << "one audited CAP_SYS_ADMIN check per unshare -m\n" << t.err();
  if (bt) EXPECT_GE(bt->stop(), 1) << "cs_mmap_low made no CAP_SYS_ADMIN probe to leave out";
}

// A bad policy file is a usage error naming the file; too many selectors name the limit.
// A process that joins cgroup `dir` and raises its priority (CAP_SYS_NICE): how it ended.
int nice_in_cgroup(const fs::path& dir) {
  std::string procs = (dir / "cgroup.procs").string();
  pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls after a fork: no allocation.
    int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) _exit(2);
    close(fd);
    _exit(setpriority(PRIO_PROCESS, 0, -20) == 0 ? 0 : 1);
  }
  int st = 0;
  waitpid(child, &st, 0);
  return st;
}

// The kernel side of a container its runtime announced (a create event, see
// docs/POLICIES.md): the cgroup made under one of its names takes the scoped policy
// as it is made, with user space reading nothing meanwhile, and a process in it is
// killed at its first check by the kernel alone. A cgroup of another container is not.
TEST_F(PolicyRuntime, AnAnnouncedContainersCgroupIsInThePolicyAsItIsMade) {
  fs::path root = cgroup2_mount();
  if (root.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy is mounted";
  capture::CaptureOptions o;
  if (!test_backend().empty()) o.backend = *capture::parse_backend(test_backend());
  std::string error;
  auto cap = capture::BpfCapture::open(o, capture::probe_kernel(), &error);
  ASSERT_TRUE(cap) << error;
  std::string scope = "  containerSelector:\n    matchLabels:\n      name: \"announced-web\"\n";
  auto parsed = policy::parse_policies(
      cap_policy("announced", match_cap("CAP_SYS_NICE") + action("Sigkill"), scope), "test");
  ASSERT_TRUE(cap->set_policies({policy::compile(parsed.at(0))}, &error)) << error;
  // The tracepoint backend classifies a new call site in user space: let it learn this
  // one from the host (out of the policy's scope) while it still reads.
  for (int i = 0; i < 10; ++i) {
    sh("nice -n -20 true");
    cap->poll(50, [](Record&&) {});
  }
  ContainerInfo web, other;
  web.id = std::string(56, 'a') + fmt::format("{:08x}", getpid());
  web.name = "announced-web";
  web.runtime = "podman";
  other = web;
  other.id = std::string(56, 'b') + fmt::format("{:08x}", getpid());
  other.name = "announced-db";
  EXPECT_NE(cap->expect_container(web), 0U);
  EXPECT_EQ(cap->expect_container(other), 0U) << "not in the policy's scope";
  fs::path parent = root / ("capscope-announce-" + std::to_string(getpid()));
  fs::path web_cg = parent / ("libpod-" + web.id), other_cg = parent / ("libpod-" + other.id);
  ASSERT_TRUE(fs::create_directories(web_cg));
  fs::create_directories(other_cg);
  int in_web = nice_in_cgroup(web_cg), in_other = nice_in_cgroup(other_cg);
  // crun's and systemd's layout: the processes run in the .scope's inner "container".
  ContainerInfo scoped = web;
  scoped.id = std::string(56, 'c') + fmt::format("{:08x}", getpid());
  EXPECT_NE(cap->expect_container(scoped), 0U);
  fs::path scope_cg = parent / ("libpod-" + scoped.id + ".scope"),
           inner_cg = scope_cg / "container";
  fs::create_directories(inner_cg);
  int in_inner = nice_in_cgroup(inner_cg);
  // A name made for a container whose announcement has expired is in no policy.
  EXPECT_EQ(cap->expire_expected(std::chrono::seconds(0)), 2U);
  fs::path late_cg = parent / ("libpod-" + web.id + ".scope");
  fs::create_directories(late_cg);
  int in_late = nice_in_cgroup(late_cg);
  for (const auto& d : {web_cg, other_cg, late_cg, inner_cg, scope_cg, parent}) rmdir(d.c_str());
  EXPECT_TRUE(WIFSIGNALED(in_inner) && WTERMSIG(in_inner) == SIGKILL)
      << "status " << in_inner << ": not killed in the .scope's inner cgroup";
  EXPECT_TRUE(WIFSIGNALED(in_web) && WTERMSIG(in_web) == SIGKILL)
      << "status " << in_web << ": not killed in the announced container's cgroup";
  EXPECT_TRUE(WIFEXITED(in_other) && WEXITSTATUS(in_other) == 0) << "status " << in_other;
  EXPECT_TRUE(WIFEXITED(in_late) && WEXITSTATUS(in_late) == 0) << "status " << in_late;
}

TEST_F(PolicyRuntime, BadPoliciesAreRefusedWithOneLine) {
  auto bad = write_policy("bad.yaml",
                          "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\n"
                          "metadata:\n  name: x\nspec:\n  kprobes:\n  - call: fd_install\n");
  std::string out =
      capture(capscope_binary() + " trace --policy " + bad.string() + " 2>&1; echo rc=$?");
  EXPECT_NE(out.find("bad.yaml:7"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
  std::string yaml;  // 13 policies of 5 selectors: 65 slots
  for (int i = 0; i < 13; ++i) {
    yaml += (i > 0 ? "---\n" : "") + cap_policy("p" + std::to_string(i), match_cap("CAP_CHOWN"));
    for (int s = 0; s < 4; ++s) yaml += "    - " + match_cap("CAP_CHOWN").substr(6);
  }
  auto many = write_policy("many.yaml", yaml);
  out = capture(capscope_binary() + " trace --policy " + many.string() + " -t 1 2>&1; echo rc=$?");
  EXPECT_NE(out.find("65 selectors but the kernel takes at most 64"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  auto good = write_policy("good.yaml", cap_policy("good", match_cap("CAP_CHOWN")));
  out =
      capture(capscope_binary() + " trace --policy " + good.string() + " --pid 1 2>&1; echo rc=$?");
  EXPECT_NE(out.find("add --events"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=2"), std::string::npos) << out;
}

// ---- with podman --------------------------------------------------------------------

class PolicyPodmanRuntime : public PolicyRuntime {
 protected:
  void SetUp() override {
    PolicyRuntime::SetUp();
    if (IsSkipped()) return;
    ASSERT_EQ(podman_problem(), "");
  }
  void TearDown() override {
    for (const auto& n : containers_) sh("podman rm -f -t 0 " + n + " >/dev/null 2>&1");
    PolicyRuntime::TearDown();
  }
  std::string run_container(const std::string& role, const std::string& script) {
    std::string name = "cs-pol-" + role + "-" + std::to_string(getpid());
    EXPECT_EQ(sh("podman --runtime runc run -d --name " + name + " --network none " +
                 kBusyboxImage + " sh -c '" + script + "' >/dev/null"),
              0);
    containers_.push_back(name);
    return name;
  }
  std::vector<std::string> containers_;
};

// The seed's policy reports a container's refused dmesg as Tetragon documents it, not
// the host's own dmesg (the host's pid namespace), and its rateLimit (1m, per thread)
// suppresses the same check repeated within a minute: counted.
TEST_F(PolicyPodmanRuntime, SeedPolicyReportsContainerDmesgOnly) {
  fs::path seed = fs::path(CAPSCOPE_SOURCE_DIR) / "examples/policies/creds-capability-usage.yaml";
  // A second copy, global: a second dmesg process within the minute is suppressed too.
  std::string global = read_file(seed);
  global = std::regex_replace(global, std::regex("creds-capability-checks"), "creds-global");
  global = std::regex_replace(global, std::regex(R"(rateLimit: "1m")"),
                              "rateLimit: \"1m\"\n        rateLimitScope: \"global\"");
  auto global_file = write_policy("global.yaml", global);
  PolicyTracer t(dir_, {seed, global_file});
  ASSERT_TRUE(t.ready()) << t.err();
  sh("dmesg >/dev/null 2>&1");
  std::string c =
      run_container("dmesg", "dmesg >/dev/null 2>&1; sleep 1; dmesg >/dev/null 2>&1; true");
  EXPECT_EQ(sh("podman wait " + c + " >/dev/null"), 0);
  std::this_thread::sleep_for(700ms);
  t.stop();

  std::string id = capture("podman inspect --format '{{.Id}}' " + c);
  long seed_syslog = 0, global_syslog = 0;
  for (const auto& e : t.events()) {
    const json& pk = e.at("process_kprobe");
    EXPECT_NE(pk.at("capscope").at("pidns_level"), 0) << "a host check: " << e.dump();
    if (comm_of(e) != "dmesg" || cap_of(e) != "CAP_SYSLOG") continue;
    EXPECT_EQ(pk.at("function_name"), "cap_capable");
    EXPECT_EQ(pk.at("action"), "KPROBE_ACTION_POST");
    EXPECT_EQ(ret_of(e), -1) << e.dump();
    EXPECT_EQ(pk.at("capscope").at("container_id"), id) << e.dump();
    (policy_of(e) == "creds-capability-checks" ? seed_syslog : global_syslog) += 1;
  }
  // busybox dmesg asks twice (buffer size, then read): per thread, each process posts
  // once; globally, the first of all only.
  EXPECT_EQ(seed_syslog, 2) << t.err();
  EXPECT_EQ(global_syslog, 1) << t.err();
  EXPECT_GE(t.counts("creds-capability-checks").rate_limited, 2) << t.err();
  EXPECT_GE(t.counts("creds-global").rate_limited, 3) << t.err();
}

// Sigkill scoped to one container (containerSelector) kills that container's process
// making the check, and neither another container's nor the host's. A container created
// ahead of its start (`podman create`) and in the scope is named from podman's create event,
// and the kernel gives its cgroup the policy as the cgroup is made: its first process's
// check is killed, though trace names containers only ~0.1 s after they start otherwise.
TEST_F(PolicyPodmanRuntime, ScopedSigkillKillsOnlyInItsContainer) {
  PodmanService service;
  ASSERT_EQ(service.start(dir_), "");
  std::string target = run_container("target", "sleep 120");
  std::string other = run_container("other", "sleep 120");
  std::string created = "cs-pol-created-" + std::to_string(getpid());
  containers_.push_back(created);
  std::string scope =
      "  containerSelector:\n    matchExpressions:\n    - key: name\n"
      "      operator: In\n      values: [\"" +
      target + "\", \"" + created + "\"]\n";
  auto p = write_policy(
      "nice.yaml", cap_policy("no-nice", match_cap("CAP_SYS_NICE") + action("Sigkill"), scope));
  PolicyTracer t(dir_, {p}, {"--podman-socket", service.socket()});
  ASSERT_TRUE(t.ready()) << t.err();
  ASSERT_TRUE(wait_for_text(t.err_path(), "now applies to container " + target)) << t.err();
  // Twice: the first check of this kernel path may be classified in user space
  // (tracepoint), which kills a moment later; `sleep 2` keeps the process there for it.
  for (int run = 0; run < 2; ++run)
    EXPECT_EQ(sh("podman exec " + target + " nice -n -20 sleep 2 >/dev/null 2>&1"), 137)
        << "run " << run << "\n"
        << t.err();
  EXPECT_EQ(sh("podman exec " + target + " nice -n 5 true"), 0) << "lowering needs no capability";
  EXPECT_EQ(sh("podman exec " + other + " nice -n -20 true >/dev/null 2>&1"), 0) << t.err();
  EXPECT_EQ(sh("nice -n -20 true"), 0) << "the host is not in the policy's scope";
  // The call site is learned by now (above): the kernel decides at the created one's check.
  ASSERT_EQ(sh("podman --runtime runc create --name " + created + " --network none " +
               kBusyboxImage + " sh -c 'nice -n -20 true; exit $?' >/dev/null"),
            0);
  ASSERT_TRUE(wait_for_text(t.err_path(), "policy no-nice will apply to container " + created +
                                              " from its first process"))
      << t.err();
  EXPECT_EQ(sh("podman start -a " + created + " >/dev/null 2>&1"), 137)
      << "the created container's first nice was not killed\n"
      << t.err();
  std::this_thread::sleep_for(500ms);
  t.stop();
  PolicyCounts c = t.counts("no-nice");
  std::cout << "no-nice: " << c.killed << " killed in the kernel, " << c.pending
            << " left to user space\n";
  EXPECT_GE(c.killed, 1) << t.err();
  std::string target_id = capture("podman inspect --format '{{.Id}}' " + target);
  std::string created_id = capture("podman inspect --format '{{.Id}}' " + created);
  long killed = 0;
  for (const auto& e : t.events()) {
    std::string id = e.at("process_kprobe").at("capscope").at("container_id");
    EXPECT_TRUE(id == target_id || id == created_id) << e.dump();
    EXPECT_EQ(e.at("process_kprobe").at("action"), "KPROBE_ACTION_SIGKILL");
    if (e.at("process_kprobe").at("capscope").value("killed", false)) ++killed;
  }
  EXPECT_GE(killed, 2) << t.err();
}

}  // namespace
}  // namespace capscope::runtime_test
