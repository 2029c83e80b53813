#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "enrich/proc_reader.h"

using namespace capscope;

namespace {

const std::string kProc = std::string(CAPSCOPE_FIXTURES) + "/proc";
const std::string kId = "cbbb7643c794be8442ecd5ffe36da2251f66e05a21a03afb6594fd7bcf70a2a8";

constexpr uint32_t ns(NsInodes n, NsKind k) { return n[static_cast<size_t>(k)]; }

TEST(ProcStatParse, CommWithSpacesAndParentheses) {
  auto s = parse_proc_stat(
      "6080 (my (weird) prog) S 6074 6080 6080 0 -1 4194560 1036 0 1 0 3 1 0 0 20 0 1 0 703900 "
      "2322432 316");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pid, 6080u);
  EXPECT_EQ(s->comm, "my (weird) prog");
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, 6074u);
  EXPECT_EQ(s->start_ticks, 703900u);
  // A comm that is itself ") S 1 2".
  auto t = parse_proc_stat("7 () S 1 2) R 3 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->comm, ") S 1 2");
  EXPECT_EQ(t->ppid, 3u);
  EXPECT_EQ(t->start_ticks, 99u);
}

TEST(ProcStatParse, RejectsGarbage) {
  for (std::string_view s :
       {"", "garbage", "4000 (broken S 1 2 3", "x (a) S 1 2", "5 (a) S 1 2 3 4",
        "5 (a) S x 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
        "18 19 20 21",
        "5 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -19"})
    EXPECT_FALSE(parse_proc_stat(s)) << s;
}

TEST(ProcHelpers, CmdlineAndNsLinks) {
  EXPECT_EQ(split_cmdline(std::string("a\0b c\0\0d\0", 9)),
            (std::vector<std::string>{"a", "b c", "", "d"}));
  EXPECT_EQ(split_cmdline(std::string("no-trailing-nul")),
            (std::vector<std::string>{"no-trailing-nul"}));
  EXPECT_TRUE(split_cmdline("").empty());
  EXPECT_EQ(parse_ns_link("mnt:[4026531841]").value(), 4026531841u);
  EXPECT_EQ(parse_ns_link("pid_for_children:[1]").value(), 1u);
  EXPECT_FALSE(parse_ns_link("garbage"));
  EXPECT_FALSE(parse_ns_link("mnt:[]"));
  EXPECT_FALSE(parse_ns_link("mnt:[99999999999]"));
  EXPECT_FALSE(parse_ns_link(":[5]"));
}

TEST(ProcReader, ListsOnlyPids) {
  ProcReader r(kProc);
  EXPECT_EQ(r.list_pids(), (std::vector<uint32_t>{1, 2, 640, 812, 4000, 4001, 4002, 6074, 6080}));
  EXPECT_TRUE(ProcReader("/nonexistent/proc").list_pids().empty());
}

TEST(ProcReader, ReadsInit) {
  auto p = ProcReader(kProc, 100).read(1);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->pid, 1u);
  EXPECT_EQ(p->ppid, 0u);
  EXPECT_EQ(p->comm, "systemd");
  EXPECT_EQ(p->binary, "/usr/lib/systemd/systemd");
  EXPECT_EQ(p->args, (std::vector<std::string>{"/sbin/init", "splash"}));
  EXPECT_EQ(p->cwd, "/");
  EXPECT_EQ(p->auid, 4294967295u);
  EXPECT_EQ(p->caps.effective, 0x000001ffffffffffULL);
  EXPECT_EQ(p->start_ktime_ns, 30'000'000u);  // 3 ticks at 100 Hz, boot time
  EXPECT_EQ(ns(p->ns, NsKind::Mnt), 4026531841u);
  EXPECT_EQ(ns(p->ns, NsKind::User), 4026531837u);
  EXPECT_EQ(p->cgroup_path, "/init.scope");
  EXPECT_TRUE(p->container.empty());
  EXPECT_TRUE(p->exec_id.empty());
  EXPECT_TRUE(p->flags.empty());
}

TEST(ProcReader, KernelThreadHasNoExeNorArgs) {
  auto p = ProcReader(kProc).read(2);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->comm, "kthreadd");
  EXPECT_TRUE(p->binary.empty());
  EXPECT_TRUE(p->args.empty());
  EXPECT_EQ(p->cwd, "/");
  EXPECT_EQ(p->cgroup_path, "/");
}

TEST(ProcReader, ContainerProcessAsMeasured) {
  auto p = ProcReader(kProc).read(6074);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->comm, "sleep");
  EXPECT_EQ(p->ppid, 640u);
  EXPECT_EQ(p->binary, "/bin/busybox");
  EXPECT_EQ(p->args, (std::vector<std::string>{"/bin/sleep", "300"}));
  EXPECT_EQ(p->caps.effective, 0xa80425fbULL);
  EXPECT_EQ(p->caps.permitted, 0xa80425fbULL);
  EXPECT_EQ(p->caps.bounding, 0xa80425fbULL);
  EXPECT_EQ(p->caps.ambient, 0u);
  EXPECT_EQ(p->cgroup_path, "/libpod_parent/libpod-" + kId);
  EXPECT_EQ(p->container.runtime, "podman");
  EXPECT_EQ(p->container.id, kId);
  EXPECT_EQ(ns(p->ns, NsKind::Pid), 4026532251u);
  EXPECT_EQ(ns(p->ns, NsKind::PidForChildren), 4026532251u);
  EXPECT_EQ(ns(p->ns, NsKind::Mnt), 4026532248u);
  EXPECT_EQ(ns(p->ns, NsKind::Time), 4026531834u);
  EXPECT_EQ(p->ns_pid, 1u);                              // "NSpid: 6074 1": the container's init
  EXPECT_EQ(ProcReader(kProc).read(640)->ns_pid, 640u);  // on the host, its own pid
}

TEST(ProcReader, WeirdCommDeletedExeNoLoginuid) {
  auto p = ProcReader(kProc).read(6080);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->comm, "my (weird) prog");
  EXPECT_EQ(p->ppid, 6074u);
  EXPECT_EQ(p->binary, "/opt/app/bin/prog");
  EXPECT_EQ(p->args,
            (std::vector<std::string>{"/opt/app/bin/prog", "--name", "hello world", "--flag=(x)"}));
  EXPECT_EQ(p->cwd, "/srv/my app");
  EXPECT_EQ(p->uid, 1000u);
  EXPECT_EQ(p->euid, 1000u);
  EXPECT_EQ(p->egid, 1000u);
  EXPECT_EQ(p->auid, 4294967295u);
  EXPECT_TRUE(p->no_new_privs);
  EXPECT_EQ(p->caps.effective, 0u);
  EXPECT_EQ(p->caps.bounding, 0xa80425fbULL);
  EXPECT_EQ(ns(p->ns, NsKind::Time), 0u);  // no time namespace links
  EXPECT_EQ(ns(p->ns, NsKind::TimeForChildren), 0u);
  EXPECT_EQ(ns(p->ns, NsKind::Uts), 4026532249u);
  EXPECT_EQ(p->container.id, kId);
}

TEST(ProcReader, HostShellWithGarbageNsLink) {
  auto p = ProcReader(kProc).read(812);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->args, (std::vector<std::string>{"-bash"}));
  EXPECT_EQ(p->auid, 1000u);
  EXPECT_EQ(p->cwd, "/home/dev");
  EXPECT_EQ(ns(p->ns, NsKind::Net), 0u);
  EXPECT_EQ(ns(p->ns, NsKind::Mnt), 4026531841u);
  EXPECT_EQ(p->cgroup_path, "/user.slice/user-1000.slice/session-3.scope");
}

TEST(ProcReader, ConmonIsNotAContainer) {
  auto p = ProcReader(kProc).read(640);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->cgroup_path, "/libpod_parent/conmon");
  EXPECT_TRUE(p->container.empty());
}

TEST(ProcReader, VanishedAndGarbageProcesses) {
  ProcReader r(kProc);
  EXPECT_FALSE(r.read(99999));  // never there
  EXPECT_FALSE(r.read(4000));   // garbage stat
  EXPECT_FALSE(r.read(4001));   // status, then gone
  EXPECT_FALSE(r.read(4002));   // stat cut short
  EXPECT_EQ(r.read_namespaces(99999), NsInodes{});
  EXPECT_FALSE(r.read_cwd(99999));
  EXPECT_FALSE(r.read_exe(2));
  EXPECT_FALSE(r.read_cgroup_path(4001));
  EXPECT_FALSE(r.read_start_boot_ns(4000));
  EXPECT_EQ(r.read_cgroup_path(4000).value(), "");  // garbage cgroup file: no path
  EXPECT_FALSE(ProcReader("/nonexistent/proc").read(1));
}

TEST(ProcReader, StartTimeUsesTheTickRate) {
  EXPECT_EQ(ProcReader(kProc, 100).read_start_boot_ns(6074).value(), 7038'420'000'000ULL);
  EXPECT_EQ(ProcReader(kProc, 1000).read_start_boot_ns(6074).value(), 703'842'000'000ULL);
}

TEST(ProcReader, ReadsTheLiveSelf) {
  // The real /proc: this very process must be readable.
  ProcReader r;
  auto self = static_cast<uint32_t>(::getpid());
  auto p = r.read(self);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->pid, self);
  EXPECT_FALSE(p->binary.empty());
  EXPECT_NE(ns(r.read_namespaces(self), NsKind::Mnt), 0u);
}

}  // namespace

namespace {

using capscope::host_namespaces;
using capscope::NsKind;

uint32_t ns_of(const capscope::NsInodes& ns, NsKind k) { return ns[static_cast<size_t>(k)]; }

TEST(HostNamespaces, FromInitWhenReadable) {
  capscope::ProcReader r(CAPSCOPE_FIXTURES "/proc");
  auto ns = host_namespaces(r, 1, 6074);
  EXPECT_EQ(ns_of(ns, NsKind::Mnt), 4026531841u);
  EXPECT_EQ(ns_of(ns, NsKind::Net), 4026531840u);
  EXPECT_EQ(ns_of(ns, NsKind::User), 4026531837u);
}

// /proc/1/ns denied (pid 4000 of the fixtures has no ns directory): the fixed
// initial inodes, and mount and network from capscope itself on the host (812).
TEST(HostNamespaces, FixedInodesWhenInitIsUnreadable) {
  capscope::ProcReader r(CAPSCOPE_FIXTURES "/proc");
  auto ns = host_namespaces(r, 4000, 812);
  EXPECT_EQ(ns_of(ns, NsKind::Uts), capscope::kInitUtsIno);
  EXPECT_EQ(ns_of(ns, NsKind::Pid), 4026531836u);
  EXPECT_EQ(ns_of(ns, NsKind::TimeForChildren), 4026531834u);
  EXPECT_EQ(ns_of(ns, NsKind::Cgroup), 4026531835u);
  EXPECT_EQ(ns_of(ns, NsKind::Mnt), 4026531841u);
  EXPECT_EQ(ns_of(ns, NsKind::Net), 0u) << "812's net link is garbage: unknown, never host";
}

// capscope itself in a container's pid namespace: its mount namespace is not the host's.
TEST(HostNamespaces, OwnMountNamespaceOnlyFromTheHostPidNamespace) {
  capscope::ProcReader r(CAPSCOPE_FIXTURES "/proc");
  auto ns = host_namespaces(r, 4000, 6074);
  EXPECT_EQ(ns_of(ns, NsKind::Mnt), 0u);
  EXPECT_EQ(ns_of(ns, NsKind::User), 4026531837u);
}

}  // namespace
