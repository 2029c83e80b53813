#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "enrich/process_cache.h"
#include "util/base64.h"

using namespace capscope;

namespace {

const std::string kProc = std::string(CAPSCOPE_FIXTURES) + "/proc";
const std::string kId = "cbbb7643c794be8442ecd5ffe36da2251f66e05a21a03afb6594fd7bcf70a2a8";
constexpr uint64_t kSec = 1'000'000'000ULL;

// 2 s spent suspended; monotonic 0 is 2023-07-06T00:00:00Z.
util::ClockOffsets test_clocks() {
  util::ClockOffsets c;
  c.boot_minus_mono_ns = 2 * static_cast<int64_t>(kSec);
  c.wall_minus_mono_ns = 1688601600LL * static_cast<int64_t>(kSec);
  c.ticks_per_second = 100;
  return c;
}

// Monotonic start of a fixture process from its stat starttime ticks.
uint64_t mono_of_ticks(uint64_t ticks) { return ticks * 10'000'000ULL - 2 * kSec; }

ProcessCache make_cache(ProcessCacheLimits limits = {}) {
  return ProcessCache(ProcReader(kProc, 100), "node1", test_clocks(), limits);
}

std::string decode(const std::string& exec_id) { return util::base64_decode(exec_id).value(); }

ExecRecord exec_rec(uint32_t pid, uint32_t ppid, uint64_t ktime, std::string filename,
                    uint64_t start_ns = 0) {
  ExecRecord e;
  e.ktime_ns = ktime;
  e.start_ns = start_ns;
  e.pid = e.tid = pid;
  e.ppid = ppid;
  e.uid = e.euid = 1000;
  e.gid = e.egid = 1000;
  e.auid = 1000;
  e.caps.bounding = 0xa80425fbULL;
  e.ns[static_cast<size_t>(NsKind::Mnt)] = 4026532248u;
  e.cgroup_id = 4242;
  e.comm = "prog";
  e.filename = std::move(filename);
  e.args = {"prog", "--flag"};
  return e;
}

ForkRecord fork_rec(uint32_t pid, uint32_t ppid, uint64_t ktime) {
  return ForkRecord{ktime, ktime - 1000, pid, ppid, "child"};
}

TEST(ExecId, IsTetragonsFormat) {
  EXPECT_EQ(make_exec_id("kind-control-plane", 12842783350684ULL, 73860),
            "a2luZC1jb250cm9sLXBsYW5lOjEyODQyNzgzMzUwNjg0OjczODYw");
}

TEST(ProcessCache, LookupMissReadsProcAndLinksParent) {
  ProcessCache cache = make_cache();
  ProcessPtr p = cache.lookup(6080);
  ASSERT_TRUE(p);
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(p->comm, "my (weird) prog");
  EXPECT_EQ(p->container.id, kId);
  EXPECT_EQ(p->start_ktime_ns, mono_of_ticks(703900));
  EXPECT_EQ(p->start_wall_ns,
            static_cast<int64_t>(mono_of_ticks(703900)) + test_clocks().wall_minus_mono_ns);
  EXPECT_EQ(decode(p->exec_id), "node1:" + std::to_string(mono_of_ticks(703900)) + ":6080");
  EXPECT_EQ(decode(p->parent_exec_id), "node1:" + std::to_string(mono_of_ticks(703842)) + ":6074");
  EXPECT_EQ(p->flags, (std::vector<std::string>{"procFS"}));  // cwd is /srv/my app
  // A hit does not read /proc again.
  EXPECT_EQ(cache.lookup(6080), p);
  EXPECT_EQ(cache.misses(), 1u);
  // The parent is read (and cached) on demand, with the exec_id the child named.
  ProcessPtr parent = cache.parent_of(*p);
  ASSERT_TRUE(parent);
  EXPECT_EQ(parent->pid, 6074u);
  EXPECT_EQ(parent->exec_id, p->parent_exec_id);
  EXPECT_EQ(parent->flags, (std::vector<std::string>{"procFS", "rootcwd"}));
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ProcessCache, LookupOfVanishedPid) {
  ProcessCache cache = make_cache();
  EXPECT_EQ(cache.lookup(99999), nullptr);
  EXPECT_EQ(cache.lookup(4001), nullptr);
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ProcessCache, SeedFromProc) {
  ProcessCache cache = make_cache();
  cache.seed_from_proc();
  EXPECT_EQ(cache.size(), 6u);  // 1 2 640 812 6074 6080; garbage and vanished skipped
  EXPECT_EQ(cache.misses(), 0u);
  ProcessPtr init = cache.peek(1);
  ASSERT_TRUE(init);
  EXPECT_TRUE(init->parent_exec_id.empty());
  EXPECT_EQ(init->flags, (std::vector<std::string>{"procFS", "rootcwd"}));
  ProcessPtr kthread = cache.peek(2);
  ASSERT_TRUE(kthread);
  EXPECT_TRUE(kthread->binary.empty());
  EXPECT_EQ(cache.peek(6080)->parent_exec_id, cache.peek(6074)->exec_id);
  EXPECT_EQ(cache.peek(6074)->parent_exec_id, cache.peek(640)->exec_id);
  EXPECT_EQ(cache.peek(640)->parent_exec_id, init->exec_id);
  EXPECT_EQ(cache.parent_of(*cache.peek(6074)), cache.peek(640));
  EXPECT_EQ(cache.parent_of(*init), nullptr);
  EXPECT_EQ(cache.misses(), 0u);
}

TEST(ProcessCache, ExecReadsCwdAndCgroupFromProc) {
  ProcessCache cache = make_cache();
  // 6080 is in the fixture with a matching start time: a relative filename
  // resolves against its cwd.
  ExecRecord e = exec_rec(6080, 6074, 7100 * kSec, "./bin/../prog", mono_of_ticks(703900) + 3);
  cache.on_exec(e);
  ProcessPtr p = cache.peek(6080);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->binary, "/srv/my app/prog");
  EXPECT_EQ(p->cwd, "/srv/my app");
  EXPECT_EQ(p->container.id, kId);
  EXPECT_EQ(p->container.runtime, "podman");
  EXPECT_EQ(p->args, (std::vector<std::string>{"prog", "--flag"}));
  EXPECT_EQ(p->comm, "prog");
  EXPECT_EQ(p->auid, 1000u);
  EXPECT_EQ(p->cgroup_id, 4242u);
  EXPECT_EQ(p->flags, (std::vector<std::string>{"execve"}));
  EXPECT_EQ(p->start_ktime_ns, 7100 * kSec);
  EXPECT_EQ(decode(p->exec_id), "node1:7100000000000:6080");
  // The parent (6074) came from /proc on the way.
  EXPECT_EQ(decode(p->parent_exec_id), "node1:" + std::to_string(mono_of_ticks(703842)) + ":6074");
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(ProcessCache, ForkThenExecIsExecveRootcwdClone) {
  ProcessCache cache = make_cache();
  cache.on_fork({mono_of_ticks(703842), mono_of_ticks(703842), 6074, 640, "conmon"});
  ProcessPtr forked = cache.peek(6074);
  ASSERT_TRUE(forked);
  EXPECT_EQ(forked->binary, "/usr/bin/conmon");  // the parent's image
  EXPECT_EQ(forked->flags, (std::vector<std::string>{"clone", "rootcwd"}));
  EXPECT_EQ(forked->parent_exec_id, cache.peek(640)->exec_id);
  ExecRecord e = exec_rec(6074, 640, 7040 * kSec, "/bin/sleep", mono_of_ticks(703842));
  e.args_truncated = true;
  cache.on_exec(e);
  ProcessPtr p = cache.peek(6074);
  EXPECT_EQ(p->flags, (std::vector<std::string>{"execve", "rootcwd", "truncArgs", "clone"}));
  EXPECT_EQ(p->binary, "/bin/sleep");
  EXPECT_EQ(p->container.id, kId);  // read from /proc, unlike conmon's
  EXPECT_NE(p->exec_id, forked->exec_id);
  // The forked image is retired, not gone, and unchanged for whoever holds it.
  EXPECT_EQ(cache.find_exec_id(forked->exec_id), forked);
  EXPECT_EQ(forked->flags, (std::vector<std::string>{"clone", "rootcwd"}));
}

TEST(ProcessCache, ExecOfVanishedProcessInheritsContainer) {
  ProcessCache cache = make_cache();
  // 7000 exits before we read /proc: no cwd; the container comes from the parent.
  cache.on_exec(exec_rec(7000, 6074, 7200 * kSec, "bin/tool", 7199 * kSec));
  ProcessPtr p = cache.peek(7000);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->cwd.empty());
  EXPECT_EQ(p->binary, "bin/tool");  // nothing to make it absolute against
  EXPECT_EQ(p->container.id, kId);
  EXPECT_EQ(p->cgroup_path, "/libpod_parent/libpod-" + kId);
  EXPECT_EQ(p->flags, (std::vector<std::string>{"execve", "nocwd"}));
}

TEST(ProcessCache, ExecIgnoresProcOfAReusedPid) {
  ProcessCache cache = make_cache();
  // The record's process started long before what /proc/812 now holds.
  cache.on_fork(fork_rec(812, 6074, 100 * kSec));
  cache.on_exec(exec_rec(812, 6074, 101 * kSec, "/bin/x", 100 * kSec - 1000));
  ProcessPtr p = cache.peek(812);
  EXPECT_TRUE(p->cwd.empty());
  EXPECT_EQ(p->container.id, kId);  // from its forked image, not the host shell's /proc
  EXPECT_EQ(p->flags, (std::vector<std::string>{"execve", "nocwd", "clone"}));
}

TEST(ProcessCache, ForkCopiesParentAndLinks) {
  ProcessCache cache = make_cache();
  cache.on_exec(exec_rec(7000, 6074, 50 * kSec, "/bin/sh"));
  cache.on_fork(fork_rec(7001, 7000, 51 * kSec));
  ProcessPtr child = cache.peek(7001);
  ASSERT_TRUE(child);
  ProcessPtr parent = cache.peek(7000);
  EXPECT_EQ(child->binary, "/bin/sh");
  EXPECT_EQ(child->comm, "child");
  EXPECT_EQ(child->ppid, 7000u);
  EXPECT_EQ(child->parent_exec_id, parent->exec_id);
  EXPECT_EQ(child->start_ktime_ns, 51 * kSec - 1000);
  EXPECT_EQ(decode(child->exec_id), "node1:" + std::to_string(51 * kSec - 1000) + ":7001");
  EXPECT_EQ(child->flags, (std::vector<std::string>{"clone"}));
  EXPECT_EQ(cache.parent_of(*child), parent);
}

TEST(ProcessCache, ForkWithUnknownParent) {
  ProcessCache cache = make_cache();
  cache.on_fork(fork_rec(7001, 7000, 51 * kSec));  // neither is in /proc
  ProcessPtr p = cache.peek(7001);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->comm, "child");
  EXPECT_TRUE(p->parent_exec_id.empty());
  EXPECT_EQ(cache.parent_of(*p), nullptr);
}

TEST(ProcessCache, ChildFindsParentImageReplacedByExec) {
  ProcessCache cache = make_cache();
  cache.on_exec(exec_rec(7000, 6074, 50 * kSec, "/bin/sh"));
  ProcessPtr sh = cache.peek(7000);
  cache.on_fork(fork_rec(7001, 7000, 51 * kSec));
  cache.on_exec(exec_rec(7000, 6074, 52 * kSec, "/bin/server"));  // sh -c 'a & exec b'
  ProcessPtr child = cache.peek(7001);
  EXPECT_EQ(cache.parent_of(*child), sh);
  EXPECT_EQ(cache.lookup(7000)->binary, "/bin/server");
}

// A check made before an exec can be handed over after the exec record (checks
// come on per-CPU lanes, exec records on the ring buffer): its time finds the
// image that made it, through any number of execs kept in the cache.
TEST(ProcessCache, CheckFromBeforeAnExecFindsTheImageItReplaced) {
  ProcessCache cache = make_cache({.grace_ns = 10 * kSec, .max_entries = 100});
  cache.on_exec(exec_rec(7000, 6074, 50 * kSec, "/bin/sh"));
  cache.on_exec(exec_rec(7000, 6074, 52 * kSec, "/bin/server"));
  cache.on_exec(exec_rec(7000, 6074, 54 * kSec, "/bin/worker"));
  EXPECT_EQ(cache.lookup_at(7000, 51 * kSec)->binary, "/bin/sh");
  EXPECT_EQ(cache.lookup_at(7000, 52 * kSec)->binary, "/bin/server");  // at the exec: the new one
  EXPECT_EQ(cache.lookup_at(7000, 53 * kSec)->binary, "/bin/server");
  EXPECT_EQ(cache.lookup_at(7000, 55 * kSec)->binary, "/bin/worker");
  EXPECT_EQ(cache.lookup_at(7000, 0)->binary, "/bin/worker");  // no time: the current image
  EXPECT_EQ(cache.peek(7000)->binary, "/bin/worker");          // the current image stays so
  // Once /bin/sh has expired, the oldest image kept is the best answer left.
  cache.expire(63 * kSec);
  EXPECT_EQ(cache.lookup_at(7000, 51 * kSec)->binary, "/bin/server");
}

// Only an exec's image starts at a known instant: a forked child's checks are its
// own whatever their time says, and another pid's images are never taken.
TEST(ProcessCache, CheckTimeDoesNotLeaveAForkedImageOrItsPid) {
  ProcessCache cache = make_cache();
  cache.on_exec(exec_rec(7000, 6074, 50 * kSec, "/bin/sh"));
  cache.on_fork(fork_rec(7001, 7000, 51 * kSec));
  EXPECT_EQ(cache.lookup_at(7001, 40 * kSec), cache.peek(7001));
  cache.on_exec(exec_rec(7001, 7000, 52 * kSec, "/bin/child"));
  EXPECT_EQ(cache.lookup_at(7001, 51 * kSec + 1)->pid, 7001u);
  EXPECT_EQ(cache.lookup_at(7001, 51 * kSec + 1)->comm, "child");  // the forked image
  EXPECT_EQ(cache.lookup_at(7001, 40 * kSec)->pid, 7001u);
}

TEST(ProcessCache, ExitKeepsEntryForTheGracePeriod) {
  ProcessCache cache = make_cache({.grace_ns = 10 * kSec, .max_entries = 100});
  cache.on_exec(exec_rec(7000, 6074, 50 * kSec, "/bin/sh"));
  ProcessPtr before = cache.peek(7000);
  cache.on_exit({60 * kSec, 7000, 0});
  ProcessPtr after = cache.lookup(7000);
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->exited);
  EXPECT_FALSE(before->exited);  // published entries are never changed
  EXPECT_EQ(after->exec_id, before->exec_id);
  size_t n = cache.size();
  cache.expire(70 * kSec);  // exactly the grace period: kept
  EXPECT_TRUE(cache.peek(7000));
  cache.expire(70 * kSec + 1);
  EXPECT_FALSE(cache.peek(7000));
  EXPECT_EQ(cache.size(), n - 1);
  EXPECT_EQ(cache.lookup(7000), nullptr);  // gone from /proc too
  // Running processes do not expire.
  cache.expire(1000 * kSec);
  EXPECT_TRUE(cache.peek(6074));
}

TEST(ProcessCache, RetiredImagesExpireToo) {
  ProcessCache cache = make_cache({.grace_ns = 10 * kSec, .max_entries = 100});
  cache.on_exec(exec_rec(7000, 0, 50 * kSec, "/bin/sh"));
  std::string old_id = cache.peek(7000)->exec_id;
  cache.on_exec(exec_rec(7000, 0, 52 * kSec, "/bin/server"));
  EXPECT_TRUE(cache.find_exec_id(old_id));
  cache.expire(63 * kSec);
  EXPECT_FALSE(cache.find_exec_id(old_id));
  EXPECT_EQ(cache.peek(7000)->binary, "/bin/server");
}

TEST(ProcessCache, ExitOfUnknownPidIsIgnored) {
  ProcessCache cache = make_cache();
  cache.on_exit({60 * kSec, 7000, 0});
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.misses(), 0u);
}

TEST(ProcessCache, LruBound) {
  ProcessCache cache = make_cache({.grace_ns = 10 * kSec, .max_entries = 3});
  for (uint32_t pid = 7001; pid <= 7003; ++pid) cache.on_fork(fork_rec(pid, 0, pid * kSec));
  EXPECT_EQ(cache.size(), 3u);
  ASSERT_TRUE(cache.lookup(7001));  // used: now the most recent
  cache.on_fork(fork_rec(7004, 0, 7004 * kSec));
  cache.on_fork(fork_rec(7005, 0, 7005 * kSec));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_TRUE(cache.peek(7001));
  EXPECT_FALSE(cache.peek(7002));
  EXPECT_FALSE(cache.peek(7003));
  EXPECT_TRUE(cache.peek(7004));
  EXPECT_TRUE(cache.peek(7005));
}

}  // namespace

namespace {

// A cgroup v2 tree in a temporary directory: the "id" of a cgroup is its inode.
struct FakeCgroupRoot {
  std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("capscope-cgroot-" + std::to_string(getpid()));
  FakeCgroupRoot() {
    std::filesystem::create_directories(root / "libpod_parent" / ("libpod-" + kId));
  }
  ~FakeCgroupRoot() { std::filesystem::remove_all(root); }
  uint64_t id_of(const std::string& rel) const { return CgroupFs({root}).id_of(rel).value(); }
};

// runc's init forks from runc on the host, then moves itself into the container's
// cgroup: its checks must be attributed to the container (6074's cgroup file
// names the podman container), and the cgroup remembered by id.
TEST(ProcessCache, ProcessThatMovedCgroupIsReattributed) {
  FakeCgroupRoot cg;
  ProcessCache cache(ProcReader(kProc, 100), "node1", test_clocks(), {}, CgroupFs({cg.root}));
  cache.on_fork(fork_rec(6074, 1, 5 * kSec));
  ProcessPtr before = cache.lookup(6074);
  ASSERT_TRUE(before);
  uint64_t ctr = cg.id_of("/libpod_parent/libpod-" + kId);
  ProcessPtr after = cache.on_cgroup_change(before, ctr);
  EXPECT_EQ(after->container.id, kId);
  EXPECT_EQ(after->container.runtime, "podman");
  EXPECT_EQ(after->cgroup_id, ctr);
  EXPECT_EQ(after->exec_id, before->exec_id) << "the same image, with its new cgroup";
  EXPECT_EQ(cache.lookup(6074), after);
}

// The cgroup the check came from is not the one /proc/PID/cgroup names now (the
// process moved again, or its pid was reused): nothing is attributed from it.
TEST(ProcessCache, CgroupChangeNotConfirmedByIdKeepsNoContainer) {
  FakeCgroupRoot cg;
  ProcessCache cache(ProcReader(kProc, 100), "node1", test_clocks(), {}, CgroupFs({cg.root}));
  ProcessPtr p = cache.lookup(812);  // a host session process
  ASSERT_TRUE(p);
  ProcessPtr after = cache.on_cgroup_change(p, cg.id_of("/libpod_parent/libpod-" + kId) + 12345);
  EXPECT_TRUE(after->container.empty());
  EXPECT_EQ(after->cgroup_id, cg.id_of("/libpod_parent/libpod-" + kId) + 12345)
      << "remembered, so the next check does not read /proc again";
}

TEST(CgroupFs, IdIsTheDirectoryInodeUnderAnyRoot) {
  FakeCgroupRoot cg;
  CgroupFs fs({"/nonexistent", cg.root});
  auto id = fs.id_of("/libpod_parent/libpod-" + kId);
  ASSERT_TRUE(id);
  EXPECT_EQ(fs.id_of((cg.root / "libpod_parent" / ("libpod-" + kId)).string()), id);
  EXPECT_FALSE(fs.id_of("/no/such/cgroup"));
  EXPECT_EQ(unified_cgroup_path("12:pids:/a\n0::/b/c\n").value(), "/b/c");
  EXPECT_FALSE(unified_cgroup_path("12:pids:/a\n"));
}

}  // namespace

namespace {

// A container's cgroup announced by its mkdir record: a check from a process that is
// gone by the time it is read (pid 9999 has no /proc entry) still gets its container.
TEST(ProcessCache, CgroupRecordAttributesProcessesAlreadyGone) {
  ProcessCache cache = make_cache();
  cache.on_cgroup(CgroupRecord{1 * kSec, 777, "/libpod_parent/libpod-" + kId});
  cache.on_fork(fork_rec(9999, 1, 2 * kSec));
  ProcessPtr p = cache.peek(9999);
  ASSERT_TRUE(p);
  ProcessPtr moved = cache.on_cgroup_change(p, 777);
  EXPECT_EQ(moved->container.id, kId);
  EXPECT_EQ(moved->container.runtime, "podman");
  EXPECT_EQ(moved->cgroup_path, "/libpod_parent/libpod-" + kId);
}

// An exec whose /proc entry is gone takes its container from the cgroup id it ran in.
TEST(ProcessCache, ExecOfGoneProcessUsesItsCgroupId) {
  ProcessCache cache = make_cache();
  cache.on_cgroup(CgroupRecord{1 * kSec, 4242, "/libpod_parent/libpod-" + kId});
  cache.on_exec(exec_rec(9998, 1, 3 * kSec, "/bin/sh"));  // exec_rec's cgroup_id is 4242
  ProcessPtr p = cache.peek(9998);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->container.id, kId);
  EXPECT_EQ(p->cgroup_id, 4242u);
}

TEST(CgroupFs, WalkListsEveryCgroupOfAV2Root) {
  FakeCgroupRoot cg;
  std::ofstream(cg.root / "cgroup.procs") << "";
  std::map<std::string, uint64_t> seen;
  CgroupFs({"/nonexistent", cg.root}).walk([&](uint64_t id, std::string p) { seen[p] = id; }, 100);
  EXPECT_EQ(seen.size(), 3u);  // "/", "/libpod_parent", "/libpod_parent/libpod-<id>"
  EXPECT_EQ(seen.at("/libpod_parent/libpod-" + kId), cg.id_of("/libpod_parent/libpod-" + kId));
  seen.clear();
  CgroupFs({cg.root}).walk([&](uint64_t id, std::string p) { seen[p] = id; }, 2);
  EXPECT_EQ(seen.size(), 2u) << "the limit holds";
}

// Containers end while the agent walks: a cgroup removed after its parent was listed
// costs the walk that cgroup, not every cgroup listed after it (the router settles a
// cgroup a walk did not see as gone, so a cut-short walk lost their profiles).
TEST(CgroupFs, WalkGoesOnPastACgroupRemovedMidWalk) {
  FakeCgroupRoot cg;
  std::ofstream(cg.root / "cgroup.procs") << "";
  for (int i = 0; i < 40; ++i)
    std::filesystem::create_directories(cg.root / ("c" + std::to_string(i)) / "inner");
  std::string removed;
  std::map<std::string, uint64_t> seen;
  CgroupFs({cg.root}).walk(
      [&](uint64_t id, const std::string& p) {
        seen[p] = id;
        if (removed.empty() && p.starts_with("/c") && p.find('/', 1) == std::string::npos) {
          removed = p;  // listed, not yet entered: it goes now
          std::filesystem::remove_all(cg.root / p.substr(1));
        }
      },
      1000);
  ASSERT_FALSE(removed.empty());
  for (int i = 0; i < 40; ++i) {
    std::string dir = "/c" + std::to_string(i);
    if (dir == removed) continue;
    EXPECT_TRUE(seen.contains(dir)) << dir << " not walked after " << removed << " went";
    EXPECT_TRUE(seen.contains(dir + "/inner")) << dir << "/inner";
  }
  EXPECT_FALSE(seen.contains(removed + "/inner"));
}

}  // namespace
