// Output writers: JSON (Tetragon's process_kprobe shape), compact lines and the table.
//
// Golden files live in tests/fixtures/output/. After an intended change of the output,
// rewrite them with
//   CAPSCOPE_UPDATE_GOLDEN=1 ./build/tests/capscope_unit_tests --gtest_filter='Output*'
// and read the diff before committing it: the goldens are what users will see.
// The JSON golden carries syscall numbers, so there is one per architecture
// (events.x86_64.json, events.arm64.json); a missing one is skipped, not failed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "output/compact_writer.h"
#include "output/json_writer.h"
#include "output/table_writer.h"
#include "output/writer.h"
#include "tables/syscalls.h"
#include "util/base64.h"

using namespace capscope;
using namespace capscope::output;
using nlohmann::json;

namespace {

const std::string kGoldenDir = std::string(CAPSCOPE_FIXTURES) + "/output/";

constexpr int64_t kSec = 1'000'000'000;
// 2023-07-06T10:13:33Z, the day of Tetragon's documented dmesg event, and the monotonic
// clock at that moment (the machine booted 12842 s before).
constexpr int64_t kWall = 1688638413LL * kSec;
constexpr int64_t kMonoAtWall = 12842LL * kSec;

// The host's namespaces (those of Tetragon's example where it shows them).
const NsInodes kHostNs = {4026531838, 4026531839, 4026531841, 4026531836, 4026531836,
                          4026531840, 4026531834, 4026531834, 4026531835, 4026531837};
const std::string kCtrId = "cfb961400ff25811d22d139a10f6a62efef53c2ecc11af47bc911a7f9a2ac1f7";
const std::string kDockerId = "4a3c9d0e8b7f6a5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0e9";
// Docker's and containerd's default capability set.
constexpr uint64_t kDefaultCaps = (1ULL << 0) | (1ULL << 1) | (1ULL << 3) | (1ULL << 4) |
                                  (1ULL << 5) | (1ULL << 6) | (1ULL << 7) | (1ULL << 8) |
                                  (1ULL << 10) | (1ULL << 13) | (1ULL << 18) | (1ULL << 27) |
                                  (1ULL << 29) | (1ULL << 31);
constexpr uint64_t kAllCaps = (1ULL << 41) - 1;

int nr(const char* name) { return tables::syscall_number(name).value(); }

std::string exec_id(const std::string& node, uint64_t ktime, uint32_t pid) {
  return util::base64_encode(node + ":" + std::to_string(ktime) + ":" + std::to_string(pid));
}

// Tetragon's example pod: xwing's spaceship container.
ContainerRef spaceship() {
  ContainerRef c;
  c.runtime = "containerd";
  c.id = kCtrId;
  c.pod_uid = "3d6d2a0e-6b1c-4bb5-9d0c-1f3b0c6f1a2b";
  c.qos = "besteffort";
  return c;
}

// What containerd's CRI says about it.
ContainerInfoPtr spaceship_info() {
  auto i = std::make_shared<ContainerInfo>();
  i->id = kCtrId;
  i->runtime = "containerd";
  i->name = "spaceship";
  i->image = "docker.io/tgraf/netperf:latest";
  i->image_id =
      "docker.io/tgraf/netperf@sha256:"
      "8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6";
  i->started_at_ns = 1688630850000000000;  // 2023-07-06T08:07:30Z
  i->pod_name = "xwing";
  i->pod_namespace = "default";
  i->pod_uid = "3d6d2a0e-6b1c-4bb5-9d0c-1f3b0c6f1a2b";
  i->pod_labels = {{"app.kubernetes.io/name", "xwing"}, {"class", "xwing"}, {"org", "alliance"}};
  i->workload = "xwing";
  i->workload_kind = "Pod";
  return i;
}

NsInodes container_ns() {
  return {4026534655, 4026534656, 4026534731, 4026534732, 4026534732,
          4026534512, 4026531834, 4026531834, 4026534733, 4026531837};
}

std::shared_ptr<ProcessInfo> process(uint32_t pid, uint32_t ppid, const std::string& binary,
                                     std::vector<std::string> args, uint64_t start_ktime) {
  auto p = std::make_shared<ProcessInfo>();
  p->pid = pid;
  p->ppid = ppid;
  p->binary = binary;
  p->comm = binary.substr(binary.rfind('/') + 1);
  p->args = std::move(args);
  p->cwd = "/";
  p->start_ktime_ns = start_ktime;
  p->start_wall_ns = kWall - kMonoAtWall + static_cast<int64_t>(start_ktime);
  p->exec_id = exec_id("kind-control-plane", start_ktime, pid);
  p->flags = {"execve", "rootcwd", "clone"};
  return p;
}

CapCheck check(int cap, int ret, const char* syscall, const std::string& comm, uint32_t pid) {
  CapCheck c;
  c.cap = cap;
  c.ret = ret;
  c.syscall_nr = syscall ? nr(syscall) : -1;
  c.comm = comm;
  c.pid = pid;
  c.tid = pid;
  c.audit_source = AuditSource::Opts;
  c.target_ns = {0, 4026531837, 0, 0};
  c.mntns = 4026531841;
  c.pidns_level = 0;
  c.cgroup_id = 7321;
  return c;
}

EnrichedCheck enriched(CapCheck c, ProcessPtr p, ProcessPtr parent, int64_t at_ns) {
  EnrichedCheck e;
  e.check = std::move(c);
  e.wall_ns = kWall + at_ns;
  e.process = std::move(p);
  e.parent = std::move(parent);
  e.node_name = "kind-control-plane";
  e.host_ns = kHostNs;
  return e;
}

// dmesg in xwing's container is refused CAP_SYSLOG (Tetragon's documented event).
EnrichedCheck dmesg_denied() {
  auto bash = process(73850, 73841, "/bin/bash", {"/bin/bash"}, 12842127120972);
  bash->container = spaceship();
  bash->ns = container_ns();
  bash->auid = 4294967295;
  bash->ns_pid = 165;  // the seed's pids inside the pod
  auto dmesg = process(73860, 73850, "/bin/dmesg", {"dmesg"}, 12842783350684);
  dmesg->container = spaceship();
  dmesg->ns = container_ns();
  dmesg->caps = {kDefaultCaps, kDefaultCaps, 0, kDefaultCaps, 0};
  dmesg->parent_exec_id = bash->exec_id;
  dmesg->ns_pid = 171;
  CapCheck c = check(34, -1, "syslog", "dmesg", 73860);
  c.ppid = 73850;
  c.cap_effective = c.cap_permitted = kDefaultCaps;
  c.mntns = 4026534731;
  c.pidns_level = 1;
  auto e = enriched(std::move(c), std::move(dmesg), std::move(bash), 834882128);
  e.container = e.parent_container = spaceship_info();
  return e;
}

// sudo on the host switches to nobody: CAP_SETUID granted, from a set*id syscall.
EnrichedCheck sudo_setuid() {
  auto shell = process(4100, 4000, "/usr/bin/bash", {"-bash"}, 5'000'000'000);
  shell->uid = shell->gid = 1000;
  shell->auid = 1000;
  shell->cwd = "/home/alice";
  shell->flags = {"procFS"};
  shell->ns = kHostNs;
  auto sudo = process(4242, 4100, "/usr/bin/sudo", {"sudo", "-u", "nobody", "id"}, 9'000'000'000);
  sudo->uid = sudo->gid = 1000;
  sudo->euid = 0;
  sudo->auid = 1000;
  sudo->cwd = "/home/alice";
  sudo->flags = {"execve"};
  sudo->caps = {kAllCaps, kAllCaps, 0, kAllCaps, 0};
  sudo->ns = kHostNs;
  sudo->parent_exec_id = shell->exec_id;
  CapCheck c = check(7, 0, "setuid", "sudo", 4242);
  c.ppid = 4100;
  c.uid = 1000;
  c.gid = 1000;
  c.insetid = true;
  c.audit_source = AuditSource::CallSite;
  c.cap_effective = c.cap_permitted = kAllCaps;
  c.suppressed = 3;
  return enriched(std::move(c), std::move(sudo), std::move(shell), 900'000'000);
}

// A JVM's mmap asks cap_vm_enough_memory for CAP_SYS_ADMIN without audit: a probe, not
// a need. Unnamed Docker container, non-root user, long command line.
EnrichedCheck java_probe() {
  auto java = process(31337, 31300, "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
                      {"java", "-Xmx2g", "-Dapp.name=order service", "-cp",
                       "/app/lib/a.jar:/app/lib/b.jar:/app/lib/c.jar:/app/lib/d.jar:/app/lib/e.jar",
                       "com.example.orders.Main", "--port", "8080"},
                      20'000'000'000);
  java->uid = java->gid = 1001;
  java->cwd = "/app";
  java->flags = {"execve", "clone"};
  java->container.runtime = "docker";
  java->container.id = kDockerId;
  java->ns = container_ns();
  java->ns[static_cast<size_t>(NsKind::User)] = 4026532999;  // user namespace too
  CapCheck c = check(21, -1, "mmap", "java", 31337);
  c.tid = 31390;
  c.ppid = 31300;
  c.uid = c.euid = c.gid = 1001;
  c.mntns = 4026534731;
  c.pidns_level = 1;
  c.audit = false;
  c.target_ns = {1, 4026532999, 0, 0};
  return enriched(std::move(c), std::move(java), nullptr, 1'500'000'000);
}

// A kernel thread checks capability 45, which this build's table does not know.
EnrichedCheck unknown_cap() {
  auto kworker = process(123, 2, "", {}, 1'000'000);
  kworker->comm = "kworker/u8:2";
  kworker->exec_id = exec_id("kind-control-plane", 1'000'000, 123);
  kworker->flags = {"procFS"};
  kworker->start_wall_ns = 0;
  CapCheck c = check(45, 0, nullptr, "kworker/u8:2", 123);
  c.ppid = 2;
  c.kthread = true;
  c.cap_effective = c.cap_permitted = kAllCaps;
  return enriched(std::move(c), std::move(kworker), nullptr, 2'000'000'000);
}

// A check from a process the cache never saw.
EnrichedCheck unknown_process() {
  CapCheck c = check(13, 0, "socket", "ping", 999);
  c.tid = 1000;
  c.ppid = 998;
  c.uid = 0;
  c.cred_override = true;
  c.audit_source = AuditSource::Unknown;
  c.cap_effective = c.cap_permitted = 1ULL << 13;
  EnrichedCheck e = enriched(std::move(c), nullptr, nullptr, 2'500'000'000);
  e.node_name.clear();
  return e;
}

// Names and arguments are whatever bytes a process chose.
EnrichedCheck hostile_strings() {
  auto p = process(6666, 1, "/tmp/bad\xc3\x28name", {}, 30'000'000'000);
  p->args = {"x",
             "has space",
             "quo\"te",
             "back\\slash",
             "tab\there\nnewline",
             "\xff\xfe",
             "csi\xc2\x9bm",
             "\x1b[31mred",
             "\xc3\xbcn\xc3\xaf\xe2\x82\xac \xf0\x9f\x98\x80"};
  p->cwd =
      "/tmp/\x7f\x01"
      "dir";
  p->ns = kHostNs;
  CapCheck c = check(1, -1, "openat", std::string("we\"ird\\\x01\n\xff", 10), 6666);
  c.ppid = 1;
  c.uid = c.euid = c.gid = 65534;
  EnrichedCheck e = enriched(std::move(c), std::move(p), nullptr, 3'000'000'000);
  e.node_name = "node\t\"1\"";
  return e;
}

std::vector<EnrichedCheck> all_cases() {
  return {dmesg_denied(), sudo_setuid(),     java_probe(),
          unknown_cap(),  unknown_process(), hostile_strings()};
}

std::string run_writer(EventWriter& w, std::ostringstream& out,
                       const std::vector<EnrichedCheck>& events) {
  for (const auto& e : events) w.write(e);
  w.flush();
  return out.str();
}

std::string render(Format f, const WriterOptions& o = {},
                   const std::vector<EnrichedCheck>& events = all_cases()) {
  std::ostringstream out;
  StreamSink sink(out);
  auto w = make_writer(f, sink, o);
  return run_writer(*w, out, events);
}

bool update_golden() {
  const char* v = std::getenv("CAPSCOPE_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void expect_golden(const std::string& name, const std::string& actual) {
  std::string path = kGoldenDir + name;
  if (update_golden()) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
    return;
  }
  std::ifstream probe(path);
  ASSERT_TRUE(probe) << path << " is missing; create it with CAPSCOPE_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, read_file(path))
      << "output differs from " << path
      << "; if intended, rerun with CAPSCOPE_UPDATE_GOLDEN=1 and review the diff";
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> out;
  for (const auto& line : lines(text)) out.push_back(json::parse(line));  // throws if invalid
  return out;
}

std::string json_string(std::string_view s) {
  Buffer b;
  append_json_string(b, s);
  return {b.data(), b.size()};
}

std::string printable(std::string_view s) {
  Buffer b;
  append_printable(b, s);
  return {b.data(), b.size()};
}

// ---- Golden files -------------------------------------------------------------------

TEST(OutputGolden, Json) {
  const char* arch = tables::host_arch() == tables::Arch::X86_64 ? "x86_64" : "arm64";
  std::string name = fmt::format("events.{}.json", arch);
  if (!update_golden() && read_file(kGoldenDir + name).empty())
    GTEST_SKIP() << name << " not recorded yet; create it with CAPSCOPE_UPDATE_GOLDEN=1";
  // Every optional block on, so the golden shows them all.
  WriterOptions all;
  all.process_caps = all.process_ns = true;
  expect_golden(name, render(Format::Json, all));
}

TEST(OutputGolden, Compact) { expect_golden("events.compact.txt", render(Format::Compact)); }

TEST(OutputGolden, TableDefault) { expect_golden("events.table.txt", render(Format::Table)); }

TEST(OutputGolden, TableWide) {
  expect_golden("events.table-wide.txt", render(Format::Table, {{}, true}));
}

TEST(OutputGolden, TableCapscopeFields) {
  WriterOptions o;
  o.fields = {"container,comm,pid,ppid,binary,cap,verdict,audit_source,insetid,mntns",
              "cgroup_id,userns_level,suppressed,exec_id,args"};
  expect_golden("events.table-fields.txt", render(Format::Table, o));
}

// ---- JSON -----------------------------------------------------------------------------

TEST(OutputJson, EveryLineParsesAsTetragonShapedEvent) {
  auto events = parse_lines(render(Format::Json));
  ASSERT_EQ(events.size(), 6u);
  for (const auto& ev : events) {
    const json& k = ev.at("process_kprobe");
    EXPECT_EQ(k.at("function_name"), "cap_capable");
    EXPECT_EQ(k.at("action"), "KPROBE_ACTION_POST");
    EXPECT_EQ(k.at("policy_name"), "capscope");
    EXPECT_TRUE(k.at("args")[0].contains("user_ns_arg"));
    EXPECT_TRUE(k.at("args")[1].contains("capability_arg"));
    EXPECT_TRUE(k.at("return").contains("int_arg"));  // printed for 0 too
    EXPECT_TRUE(ev.at("time").get<std::string>().ends_with("Z"));
  }
}

TEST(OutputJson, DeniedDmesgMatchesTetragonExample) {
  WriterOptions with_ns;
  with_ns.process_ns = true;  // as the example was taken (Tetragon's --enable-process-ns)
  json ev = json::parse(render(Format::Json, with_ns, {dmesg_denied()}));
  const json& k = ev.at("process_kprobe");
  EXPECT_EQ(k.at("return").at("int_arg"), -1);
  EXPECT_EQ(k.at("args")[1].at("capability_arg"), json({{"value", 34}, {"name", "CAP_SYSLOG"}}));
  EXPECT_EQ(k.at("args")[0].at("user_ns_arg"),
            json::parse(R"({"level":0,"uid":0,"gid":0,"ns":{"inum":4026531837,"is_host":true}})"));
  const json& p = k.at("process");
  EXPECT_EQ(p.at("exec_id"), "a2luZC1jb250cm9sLXBsYW5lOjEyODQyNzgzMzUwNjg0OjczODYw");
  EXPECT_EQ(p.at("pid"), 73860);
  EXPECT_EQ(p.at("tid"), 73860);
  EXPECT_EQ(p.at("binary"), "/bin/dmesg");
  EXPECT_FALSE(p.contains("arguments"));  // argv[0] only
  EXPECT_EQ(p.at("flags"), "execve rootcwd clone");
  EXPECT_EQ(p.at("auid"), 4294967295u);
  EXPECT_EQ(p.at("docker"), "cfb961400ff25811d22d139a10f6a62");
  EXPECT_EQ(p.at("docker").get<std::string>().size(), 31u);
  // is_host only where the inode is the host's, and absent (not false) elsewhere.
  EXPECT_EQ(p.at("ns").at("time"), json::parse(R"({"inum":4026531834,"is_host":true})"));
  EXPECT_EQ(p.at("ns").at("user").at("is_host"), true);
  EXPECT_EQ(p.at("ns").at("mnt"), json::parse(R"({"inum":4026534731})"));
  // Tetragon's process.cap comes only when asked for (--process-caps).
  EXPECT_FALSE(p.contains("cap"));
  EXPECT_EQ(p.at("pod").at("container").at("id"), "containerd://" + kCtrId);
  EXPECT_EQ(p.at("pod").at("container").at("name"), "spaceship");
  const json& parent = k.at("parent");
  EXPECT_EQ(parent.at("binary"), "/bin/bash");
  EXPECT_EQ(parent.at("tid"), 73850);
  EXPECT_EQ(p.at("parent_exec_id"), parent.at("exec_id"));
  EXPECT_FALSE(parent.contains("ns"));
  const json& cs = k.at("capscope");
  EXPECT_EQ(cs.at("syscall").at("name"), "syslog");
  EXPECT_EQ(cs.at("verdict"), "denied");
  EXPECT_EQ(cs.at("errno"), -1);
  EXPECT_EQ(cs.at("audit"), true);
  EXPECT_EQ(cs.at("audit_source"), "opts");
  EXPECT_EQ(cs.at("container_id"), kCtrId);
  EXPECT_EQ(cs.at("container_runtime"), "containerd");
  EXPECT_EQ(cs.at("container").at("image"), "docker.io/tgraf/netperf:latest");
  EXPECT_FALSE(cs.contains("suppressed"));
  EXPECT_EQ(ev.at("node_name"), "kind-control-plane");
  EXPECT_EQ(ev.at("time"), "2023-07-06T10:13:33.834882128Z");
}

TEST(OutputJson, GrantedSetuidOnHost) {
  WriterOptions with_ns;
  with_ns.process_ns = true;
  json ev = json::parse(render(Format::Json, with_ns, {sudo_setuid()}));
  const json& k = ev.at("process_kprobe");
  EXPECT_EQ(k.at("return").at("int_arg"), 0);
  EXPECT_EQ(k.at("args")[1].at("capability_arg").at("name"), "CAP_SETUID");
  const json& p = k.at("process");
  EXPECT_EQ(p.at("arguments"), "-u nobody id");
  EXPECT_FALSE(p.contains("docker"));
  EXPECT_FALSE(p.contains("pod"));
  for (const auto& [kind, ns] : p.at("ns").items()) EXPECT_EQ(ns.at("is_host"), true) << kind;
  const json& cs = k.at("capscope");
  EXPECT_EQ(cs.at("syscall").at("name"), "setuid");
  EXPECT_EQ(cs.at("syscall").at("nr"), nr("setuid"));
  EXPECT_EQ(cs.at("insetid"), true);
  EXPECT_EQ(cs.at("audit_source"), "callsite");
  EXPECT_EQ(cs.at("suppressed"), 3);
  EXPECT_EQ(cs.at("uid"), 1000);
  // The checked credentials' sets, as /proc/PID/status prints them.
  EXPECT_EQ(cs.at("cap_effective"), "000001ffffffffff");
  EXPECT_FALSE(cs.contains("process_caps"));
  EXPECT_FALSE(cs.contains("container_id"));
}

// Tetragon's defaults: no process.ns, no process.cap unless asked for.
TEST(OutputJson, NamespacesAndCapsOnlyWhenAsked) {
  json ev = json::parse(render(Format::Json, {}, {dmesg_denied()}));
  const json& p = ev.at("process_kprobe").at("process");
  EXPECT_FALSE(p.contains("ns"));
  EXPECT_FALSE(p.contains("cap"));
  EXPECT_EQ(p.at("binary"), "/bin/dmesg");
  EXPECT_FALSE(ev.at("process_kprobe").at("capscope").contains("process_caps"));
}

TEST(OutputJson, ProcessCapsWhenAsked) {
  WriterOptions o;
  o.process_caps = true;
  json ev = json::parse(render(Format::Json, o, {dmesg_denied()}));
  const json& p = ev.at("process_kprobe").at("process");
  // Tetragon's shape: names, empty sets left out.
  EXPECT_EQ(p.at("cap").at("effective").size(), 14u);
  EXPECT_EQ(p.at("cap").at("effective")[0], "CAP_CHOWN");
  EXPECT_FALSE(p.at("cap").contains("inheritable"));
  const json& pc = ev.at("process_kprobe").at("capscope").at("process_caps");
  EXPECT_EQ(pc.at("bounding"), "00000000a80425fb");
  EXPECT_EQ(pc.at("ambient"), "0000000000000000");
  EXPECT_FALSE(ev.at("process_kprobe").at("parent").contains("cap"));
}

TEST(OutputJson, ProbeInUserNamespaceIsNotHost) {
  json ev = json::parse(render(Format::Json, {}, {java_probe()}));
  const json& k = ev.at("process_kprobe");
  EXPECT_EQ(k.at("args")[0].at("user_ns_arg").at("level"), 1);
  EXPECT_FALSE(k.at("args")[0].at("user_ns_arg").at("ns").contains("is_host"));
  EXPECT_EQ(k.at("process").at("arguments"),
            "-Xmx2g \"-Dapp.name=order service\" -cp "
            "/app/lib/a.jar:/app/lib/b.jar:/app/lib/c.jar:/app/lib/d.jar:/app/lib/e.jar "
            "com.example.orders.Main --port 8080");
  EXPECT_EQ(k.at("process").at("tid"), 31390);
  EXPECT_FALSE(k.contains("parent"));
  EXPECT_FALSE(k.at("process").contains("pod"));  // Docker: no pod
  EXPECT_EQ(k.at("capscope").at("audit"), false);
  EXPECT_FALSE(k.at("capscope").contains("container"));  // no name or image known
  EXPECT_EQ(k.at("capscope").at("container_runtime"), "docker");
}

TEST(OutputJson, UnknownCapabilityAndKernelThread) {
  json ev = json::parse(render(Format::Json, {}, {unknown_cap()}));
  const json& k = ev.at("process_kprobe");
  EXPECT_EQ(k.at("args")[1].at("capability_arg"),
            json({{"value", 45}, {"name", "CAP_UNKNOWN_45"}}));
  EXPECT_EQ(k.at("capscope").at("syscall"), json({{"nr", -1}}));
  EXPECT_EQ(k.at("capscope").at("kthread"), true);
  EXPECT_FALSE(k.at("process").contains("binary"));
  EXPECT_FALSE(k.at("process").contains("start_time"));
}

TEST(OutputJson, UnknownProcessKeepsWhatTheCheckCarries) {
  json ev = json::parse(render(Format::Json, {}, {unknown_process()}));
  const json& k = ev.at("process_kprobe");
  EXPECT_EQ(k.at("process"), json({{"pid", 999}, {"uid", 0}, {"tid", 1000}}));
  EXPECT_FALSE(k.contains("parent"));
  EXPECT_EQ(k.at("capscope").at("comm"), "ping");
  EXPECT_EQ(k.at("capscope").at("ppid"), 998);
  EXPECT_EQ(k.at("capscope").at("cred_override"), true);
  EXPECT_EQ(k.at("capscope").at("audit_source"), "unknown");
  EXPECT_FALSE(ev.contains("node_name"));
}

TEST(OutputJson, HostileStringsStayValidJson) {
  json ev = json::parse(render(Format::Json, {}, {hostile_strings()}));
  const json& k = ev.at("process_kprobe");
  EXPECT_EQ(k.at("capscope").at("comm"), "we\"ird\\\x01\n\xef\xbf\xbd");
  EXPECT_EQ(k.at("process").at("binary"), "/tmp/bad\xef\xbf\xbd(name");
  EXPECT_EQ(k.at("process").at("cwd"),
            "/tmp/\x7f\x01"
            "dir");
  std::string args = k.at("process").at("arguments");
  EXPECT_NE(args.find("\"has space\""), std::string::npos);
  EXPECT_NE(args.find(" tab\there\nnewline "), std::string::npos) << "no space: not quoted";
  EXPECT_NE(args.find("\xef\xbf\xbd\xef\xbf\xbd"), std::string::npos);
  EXPECT_NE(args.find("\"\xc3\xbcn\xc3\xaf\xe2\x82\xac \xf0\x9f\x98\x80\""), std::string::npos);
  EXPECT_EQ(ev.at("node_name"), "node\t\"1\"");
}

TEST(OutputJson, CachingWriterMatchesPlainSerialization) {
  // Repeats, switches of process and of host namespaces must not serve a stale block.
  auto a = dmesg_denied();
  auto b = sudo_setuid();
  auto c = unknown_process();
  auto a2 = dmesg_denied();  // same contents, other ProcessInfo objects
  auto a_other_host = a;
  a_other_host.host_ns = {};
  std::vector<EnrichedCheck> seq = {a, a, b, a, c, a2, a_other_host, a, b, b};
  std::string expected;
  for (const auto& e : seq) {
    Buffer buf;
    append_json_event(buf, e);
    expected.append(buf.data(), buf.size());
    expected += '\n';
  }
  EXPECT_EQ(render(Format::Json, {}, seq), expected);
}

TEST(OutputJson, CacheSurvivesManyInterleavedProcesses) {
  // More processes than cache slots, interleaved: collisions must evict, never mix up.
  std::vector<EnrichedCheck> seq;
  for (uint32_t i = 0; i < 40; ++i) {
    auto e = sudo_setuid();
    auto p = std::make_shared<ProcessInfo>(*e.process);
    p->pid = 5000 + i;
    p->binary = "/usr/bin/tool" + std::to_string(i);
    e.process = p;
    e.check.pid = e.check.tid = p->pid;
    seq.push_back(e);
  }
  std::vector<EnrichedCheck> twice = seq;
  twice.insert(twice.end(), seq.rbegin(), seq.rend());
  auto events = parse_lines(render(Format::Json, {}, twice));
  ASSERT_EQ(events.size(), 80u);
  for (const auto& ev : events) {
    const json& p = ev.at("process_kprobe").at("process");
    EXPECT_EQ(p.at("binary"), "/usr/bin/tool" + std::to_string(p.at("pid").get<int>() - 5000));
    EXPECT_EQ(p.at("tid"), p.at("pid"));
  }
}

TEST(OutputJson, PodBlockOnlyForKubernetesContainers) {
  Buffer b;
  append_pod(b, ContainerRef{});
  EXPECT_EQ(b.size(), 0u);
  ContainerRef docker;
  docker.runtime = "docker";
  docker.id = kDockerId;
  append_pod(b, docker);
  EXPECT_EQ(b.size(), 0u);
  ContainerRef k8s = spaceship();
  append_pod(b, k8s);
  EXPECT_EQ(
      std::string(b.data(), b.size()),
      R"(,"pod":{"uid":"3d6d2a0e-6b1c-4bb5-9d0c-1f3b0c6f1a2b","container":{"id":"containerd://)" +
          kCtrId + R"("}})");
}

TEST(OutputJson, PodBlockFromTheRuntimeAsTetragonPrintsIt) {
  json ev = json::parse(render(Format::Json, {}, {dmesg_denied()}));
  const json& pod = ev.at("process_kprobe").at("process").at("pod");
  EXPECT_EQ(pod.at("namespace"), "default");
  EXPECT_EQ(pod.at("name"), "xwing");
  EXPECT_EQ(pod.at("container").at("image").at("name"), "docker.io/tgraf/netperf:latest");
  EXPECT_EQ(pod.at("container").at("start_time"), "2023-07-06T08:07:30Z");
  EXPECT_EQ(pod.at("pod_labels").at("org"), "alliance");
  EXPECT_EQ(pod.at("pod_labels").size(), 3u);
  EXPECT_EQ(pod.at("workload"), "xwing");
  EXPECT_EQ(pod.at("workload_kind"), "Pod");
  // Each process's own pid in the pod's pid namespace, as the seed's are.
  EXPECT_EQ(pod.at("container").at("pid"), 171);
  // The parent is in the same pod: its block carries it too.
  EXPECT_EQ(ev.at("process_kprobe").at("parent").at("pod").at("name"), "xwing");
  EXPECT_EQ(ev.at("process_kprobe").at("parent").at("pod").at("container").at("pid"), 165);
}

TEST(OutputJson, PlainContainerNamedByItsRuntime) {
  auto e = java_probe();
  auto info = std::make_shared<ContainerInfo>();
  info->id = e.process->container.id;
  info->runtime = "podman";
  info->name = "orders";
  info->image = "localhost/orders:1.2";
  info->labels = {{"tier", "back\"end"}};
  e.container = info;
  e.runtime_process = true;
  json ev = json::parse(render(Format::Json, {}, {e}));
  const json& cs = ev.at("process_kprobe").at("capscope");
  EXPECT_FALSE(ev.at("process_kprobe").at("process").contains("pod"));
  EXPECT_EQ(cs.at("container_runtime"), "podman");  // the runtime's word over the cgroup's
  EXPECT_EQ(cs.at("container").at("name"), "orders");
  EXPECT_EQ(cs.at("container").at("labels").at("tier"), "back\"end");
  EXPECT_EQ(cs.at("runtime_process"), true);
  std::string line = render(Format::Compact, {}, {e});
  EXPECT_NE(line.find("container orders [runtime start-up]"), std::string::npos) << line;
}

TEST(OutputTable, NamespacePodAndImageColumns) {
  WriterOptions o;
  o.fields = {"namespace,pod,container,image,startup,cap"};
  std::string table = render(Format::Table, o, {dmesg_denied(), sudo_setuid()});
  EXPECT_NE(table.find("NAMESPACE"), std::string::npos);
  EXPECT_NE(table.find("default"), std::string::npos);
  EXPECT_NE(table.find("xwing"), std::string::npos);
  EXPECT_NE(table.find("spaceship"), std::string::npos);
  EXPECT_EQ(table.find("xwing/spaceship"), std::string::npos) << "the pod has its own column";
  std::string compact = render(Format::Compact, {}, {dmesg_denied()});
  EXPECT_NE(compact.find("container default/xwing/spaceship"), std::string::npos) << compact;
}

// ---- Escaping ---------------------------------------------------------------------------

TEST(OutputEscape, JsonStrings) {
  EXPECT_EQ(json_string(""), R"("")");
  EXPECT_EQ(json_string("plain /usr/bin"), R"("plain /usr/bin")");
  EXPECT_EQ(json_string("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_string("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(json_string(std::string("\0\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
  // Invalid: lone continuation, truncated sequence, overlong, surrogate, > U+10FFFF.
  EXPECT_EQ(json_string("\x80"), R"("\ufffd")");
  EXPECT_EQ(json_string("\xe2\x82"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xc0\xaf"), R"("\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");
  EXPECT_EQ(json_string("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");
  EXPECT_EQ(json_string("ok\xffok"), R"("ok\ufffdok")");
}

TEST(OutputEscape, RandomBytesAlwaysGiveValidJson) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255), len(0, 40);
  for (int i = 0; i < 5000; ++i) {
    std::string s(static_cast<size_t>(len(rng)), '\0');
    for (auto& ch : s) ch = static_cast<char>(byte(rng));
    std::string text = json_string(s);
    json parsed;
    ASSERT_NO_THROW(parsed = json::parse(text)) << text;
    // Well-formed input comes back unchanged.
    bool valid = true;
    try {
      (void)json(s).dump();
    } catch (const json::type_error&) {
      valid = false;
    }
    if (valid) {
      EXPECT_EQ(parsed.get<std::string>(), s);
    }
  }
}

TEST(OutputEscape, PrintableKeepsOneLineAndNoEscapeSequences) {
  EXPECT_EQ(printable("dmesg"), "dmesg");
  EXPECT_EQ(printable("a\nb\tc\rd\\e"), "a\\nb\\tc\\rd\\\\e");
  EXPECT_EQ(printable("\x1b[31m\x7f"), "\\x1b[31m\\x7f");
  EXPECT_EQ(printable("csi\xc2\x9bm"), "csi\\xc2\\x9bm");  // C1 control
  EXPECT_EQ(printable("\xff\xc3("), "\\xff\\xc3(");
  EXPECT_EQ(printable("\xc3\xbc\xe2\x82\xac"), "\xc3\xbc\xe2\x82\xac");
}

TEST(OutputEscape, ClippingCountsColumnsNotBytes) {
  Buffer b;
  EXPECT_EQ(append_clipped(b, "abcdef", 4), 4u);
  EXPECT_EQ(std::string(b.data(), b.size()), "abc…");
  b.clear();
  EXPECT_EQ(append_clipped(b, "/usr/local/bin/tool", 8, true), 8u);
  EXPECT_EQ(std::string(b.data(), b.size()), "…in/tool");
  b.clear();
  EXPECT_EQ(append_clipped(b, "\xc3\xbc\xc3\xbc\xc3\xbc", 3), 3u);  // üüü fits
  b.clear();
  EXPECT_EQ(append_clipped(b, "\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad", 4), 3u);  // 中中…
  EXPECT_EQ(std::string(b.data(), b.size()), "\xe4\xb8\xad\xe2\x80\xa6");
  EXPECT_EQ(display_width("\xe4\xb8\xad"
                          "a"),
            3u);
}

TEST(OutputText, TetragonArguments) {
  EXPECT_EQ(tetragon_arguments({}), "");
  EXPECT_EQ(tetragon_arguments({"ls"}), "");
  EXPECT_EQ(tetragon_arguments({"bash", "-c", "curl https://ebpf.io/"}),
            "-c \"curl https://ebpf.io/\"");
  EXPECT_EQ(tetragon_arguments({"echo", "say \"hi\""}), "\"say \"hi\"\"");  // no escaping
}

// ---- Compact --------------------------------------------------------------------------

TEST(OutputCompact, OneLinePerEventWithTheEssentials) {
  auto out = lines(render(Format::Compact));
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0],
            "❌ denied  CAP_SYSLOG    dmesg[73860] /bin/dmesg via syslog (audit)  container "
            "default/xwing/spaceship");
  EXPECT_EQ(out[1],
            "✅ granted CAP_SETUID    sudo[4242] /usr/bin/sudo -u nobody id via setuid (audit, "
            "insetid, +3 suppressed)  host");
  EXPECT_NE(out[2].find("(probe)  container 4a3c9d0e8b7f"), std::string::npos);
  EXPECT_NE(out[2].find("…"), std::string::npos) << "long arguments are cut";
  EXPECT_NE(out[3].find("CAP_UNKNOWN_45 kworker/u8:2[123] in a kernel thread"), std::string::npos);
  EXPECT_EQ(out[4], "✅ granted CAP_NET_RAW   ping[999] via socket (audit, cred-override)  ?");
  EXPECT_NE(out[5].find("we\"ird\\\\\\x01\\n\\xff[6666]"), std::string::npos) << out[5];
}

// ---- Table ----------------------------------------------------------------------------

TEST(OutputTable, HeaderOnceAndAlignedRows) {
  WriterOptions o;
  // Every cut-able column before a short last one: all rows must have the same width.
  o.fields = {"container,comm,pid,tid,uid,gid,capable,cap,syscall,audit"};
  auto events = all_cases();
  auto more = all_cases();
  events.insert(events.end(), more.begin(), more.end());
  auto out = lines(render(Format::Table, o, events));
  ASSERT_EQ(out.size(), 13u);
  EXPECT_EQ(out[0].rfind("CONTAINER", 0), 0u);
  EXPECT_TRUE(out[0].ends_with("AUDIT"));
  for (size_t i = 1; i < out.size(); ++i) EXPECT_EQ(display_width(out[i]), 117u) << out[i];
}

TEST(OutputTable, FlushWithoutEventsPrintsTheHeader) {
  std::ostringstream out;
  StreamSink sink(out);
  auto w = make_writer(Format::Table, sink, {});
  w->flush();
  w->flush();
  EXPECT_EQ(out.str(),
            "CONTAINER        COMM                 PID     TID     UID     GID CAPABLE AUDIT CAP   "
            "                 SYSCALL\n");
}

TEST(OutputTable, DefaultsFollowInspektorGadget) {
  auto names = [](const std::vector<Column>& cols) {
    std::string s;
    for (Column c : cols) s += std::string(column_name(c)) + " ";
    return s;
  };
  EXPECT_EQ(names(default_columns(false)),
            "CONTAINER COMM PID TID UID GID CAPABLE AUDIT CAP SYSCALL ");
  EXPECT_EQ(names(default_columns(true)),
            "CONTAINER COMM PID TID UID GID CAPABLE AUDIT CAP SYSCALL TIMESTAMP ");
  EXPECT_EQ(all_columns().size(), 27u);  // POLICY last (trace --policy)
}

TEST(OutputFields, ReplaceAddRemove) {
  using C = Column;
  EXPECT_EQ(resolve_columns({}, false), default_columns(false));
  EXPECT_EQ(resolve_columns({"comm", "Cap", "SYSCALL"}, false),
            (std::vector<C>{C::Comm, C::Cap, C::Syscall}));
  EXPECT_EQ(resolve_columns({"comm,pid, comm"}, true), (std::vector<C>{C::Comm, C::Pid}));
  auto v = resolve_columns({"+ppid", "-gid", "-TID", "+binary", "+ppid"}, false);
  EXPECT_EQ(v, (std::vector<C>{C::Container, C::Comm, C::Pid, C::Uid, C::Capable, C::Audit, C::Cap,
                               C::Syscall, C::Ppid, C::Binary}));
  // --wide changes the defaults that +/- start from.
  auto w = resolve_columns({"-container"}, true);
  EXPECT_EQ(w.back(), C::Timestamp);
  EXPECT_EQ(resolve_columns({"-timestamp"}, false), default_columns(false));
  EXPECT_EQ(resolve_columns({"+timestamp"}, false).back(), C::Timestamp);
}

TEST(OutputFields, Errors) {
  try {
    resolve_columns({"comm,bogus"}, false);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'bogus'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("CONTAINER, COMM, PID"), std::string::npos) << msg;
    EXPECT_NE(msg.find("SUPPRESSED"), std::string::npos) << msg;
  }
  EXPECT_THROW(resolve_columns({"+bogus"}, false), std::invalid_argument);
  EXPECT_THROW(resolve_columns({"comm", "+pid"}, false), std::invalid_argument);
  EXPECT_THROW(
      resolve_columns({"-container,-comm,-pid,-tid,-uid,-gid,-capable,-audit,-cap", "-syscall"},
                      false),
      std::invalid_argument);
  std::ostringstream out;
  StreamSink sink(out);
  EXPECT_THROW(make_writer(Format::Table, sink, {{"nope"}, false}), std::invalid_argument);
  EXPECT_THROW(make_writer(Format::Json, sink, {{"comm"}, false}), std::invalid_argument);
  EXPECT_THROW(make_writer(Format::Compact, sink, {{"comm"}, false}), std::invalid_argument);
}

// ---- Writers --------------------------------------------------------------------------

TEST(OutputWriter, ParseFormat) {
  EXPECT_EQ(parse_format("json"), Format::Json);
  EXPECT_EQ(parse_format("Compact"), Format::Compact);
  EXPECT_EQ(parse_format("TABLE"), Format::Table);
  EXPECT_FALSE(parse_format("yaml"));
  EXPECT_FALSE(parse_format(""));
}

TEST(OutputWriter, TrickleReachesTheStreamWithinADeadline) {
  // A steady trickle never leaves the pipeline idle, so the writer must flush by itself.
  std::ostringstream out;
  StreamSink sink(out);
  auto w = make_writer(Format::Compact, sink, {});
  w->write(sudo_setuid());
  EXPECT_EQ(lines(out.str()).size(), 1u) << "the first line goes out at once";
  w->write(sudo_setuid());
  EXPECT_EQ(lines(out.str()).size(), 1u) << "then lines are batched";
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  w->write(sudo_setuid());
  EXPECT_EQ(lines(out.str()).size(), 3u) << "but never held more than 100 ms";
}

TEST(OutputWriter, LargeVolumeArrivesWholeAndDestructorFlushes) {
  auto e = sudo_setuid();
  const int n = 2000;  // several 64 KiB blocks
  std::ostringstream out;
  StreamSink sink(out);
  {
    auto w = make_writer(Format::Json, sink, {});
    for (int i = 0; i < n; ++i) {
      e.check.tid = static_cast<uint32_t>(i);
      w->write(e);
    }
  }  // no flush(): the destructor must hand the rest over
  auto events = parse_lines(out.str());
  ASSERT_EQ(events.size(), static_cast<size_t>(n));
  EXPECT_EQ(events.back().at("process_kprobe").at("process").at("tid"), n - 1);
}

}  // namespace
