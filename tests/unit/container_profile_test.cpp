// One profile per container: identities and their names, routing a recording's
// checks by cgroup, leaving out the runtime's and borrowed-credential checks,
// storing and exporting the identity, and the workload patch advise prints.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "advice/workload_patch.h"
#include "enrich/runtime/runtime_process.h"
#include "profile/container_router.h"
#include "profile/profile_json.h"
#include "profile/recorder.h"
#include "store/profile_store.h"

using namespace capscope;
using profile::ContainerIdentity;
using profile::Profile;
using profile::Route;

namespace {

constexpr int kChown = 0, kSetpcap = 8, kSysAdmin = 21, kSyslog = 34, kNetBind = 10;

ContainerInfo deployment_pod(const std::string& id, const std::string& pod) {
  ContainerInfo c;
  c.id = id;
  c.runtime = "containerd";
  c.name = "nginx";
  c.image = "docker.io/library/nginx:1.27@sha256:abcd";
  c.pod_name = pod;
  c.pod_namespace = "shop";
  c.workload = "web";
  c.workload_kind = "Deployment";
  c.workload_from = "labels";
  return c;
}

TEST(ContainerIdentity, ReplicasOfAWorkloadShareOneName) {
  auto a = profile::identity_of(deployment_pod(std::string(64, 'a'), "web-7d9f8-abcde"));
  auto b = profile::identity_of(deployment_pod(std::string(64, 'b'), "web-7d9f8-fghij"));
  EXPECT_EQ(profile::profile_name_of(a), "shop/web/nginx");
  EXPECT_EQ(profile::profile_name_of(b), profile::profile_name_of(a));
  EXPECT_EQ(a.image, "docker.io/library/nginx:1.27");  // the digest pins a build, not a name
  EXPECT_EQ(a.instances, (std::set<std::string>{"aaaaaaaaaaaa"}));
  EXPECT_EQ(profile::subject_of(a),
            "container nginx of Deployment shop/web (from labels), image "
            "docker.io/library/nginx:1.27");
}

TEST(ContainerIdentity, NamesOutsideKubernetes) {
  ContainerInfo podman_pod;
  podman_pod.id = std::string(64, 'c');
  podman_pod.runtime = "podman";
  podman_pod.name = "spaceship";
  podman_pod.pod_name = "xwing";
  podman_pod.image = "localhost/busybox:latest";
  auto c = profile::identity_of(podman_pod);
  EXPECT_EQ(c.workload, "xwing");  // a bare pod is its own workload
  EXPECT_EQ(c.workload_kind, "Pod");
  EXPECT_EQ(profile::profile_name_of(c), "xwing/spaceship");

  ContainerInfo plain;
  plain.id = std::string(64, 'd');
  plain.runtime = "docker";
  plain.name = "web";
  plain.image = "nginx:1.27";
  EXPECT_EQ(profile::profile_name_of(profile::identity_of(plain)), "web@nginx:1.27");

  ContainerRef unnamed{"podman", std::string(64, 'e'), "", ""};
  auto u = profile::identity_of(unnamed);
  EXPECT_EQ(profile::profile_name_of(u), "eeeeeeeeeeee@podman");
  EXPECT_NE(profile::subject_of(u).find("not named by its runtime"), std::string::npos);
}

TEST(ContainerIdentity, MergeKeepsTheLatestPlaceAndBoundedInstances) {
  Profile p;
  for (int i = 0; i < 70; ++i) {
    Profile run;
    run.container = profile::identity_of(deployment_pod(
        fmt::format("{:012x}{}", i, std::string(52, '0')), "web-" + std::to_string(i)));
    p.merge(run);
  }
  EXPECT_EQ(p.container.pod, "web-69");
  EXPECT_EQ(p.container.instances.size(), ContainerIdentity::kMaxInstances);
  Profile empty_run;
  p.merge(empty_run);  // a run with no container does not erase it
  EXPECT_EQ(p.container.container, "nginx");
}

TEST(RuntimeProgram, RecognisesRuncsReexecutionsByArgv0Only) {
  EXPECT_TRUE(is_runtime_program("/usr/bin/runc", "runc", "runc"));
  EXPECT_TRUE(is_runtime_program("/dev/fd/6", "runc", "6"));  // runc's memfd copy
  EXPECT_TRUE(is_runtime_program("/proc/self/exe", "/usr/sbin/runc", "exe"));
  EXPECT_TRUE(is_runtime_program("", "", "runc:[2:INIT]"));
  EXPECT_TRUE(is_runtime_program("/catatonit", "/catatonit", "catatonit"));
  // busybox runs applets through /proc/self/exe too: those are the workload's.
  EXPECT_FALSE(is_runtime_program("/proc/self/exe", "dmesg", "exe"));
  // A workload's own binary does not become the runtime by its argv[0].
  EXPECT_FALSE(is_runtime_program("/app/server", "runc", "server"));
}

// Routes by a fixed table; cgroups listed in `later` wait until `answer()`.
class TableRouter : public profile::Router {
 public:
  std::map<uint64_t, Route> table;
  std::set<uint64_t> later;
  int asked = 0;
  Route route(uint64_t cgroup_id, bool) override {
    ++asked;
    if (later.contains(cgroup_id)) return Route{Route::Kind::Wait, "", "", {}};
    auto it = table.find(cgroup_id);
    return it == table.end() ? Route{} : it->second;
  }
};

Route keep(const std::string& container, const std::string& id12) {
  ContainerIdentity c;
  c.container = container;
  c.workload = "web";
  c.namespace_name = "shop";
  c.instances = {id12};
  return {Route::Kind::Keep, profile::profile_name_of(c), profile::subject_of(c), c};
}

capture::AggregateEntry agg(uint64_t cgroup, uint32_t pid, uint32_t seq, int cap, uint64_t count) {
  capture::AggregateEntry e;
  e.cgroup_id = cgroup;
  e.pid = pid;
  e.exec_seq = seq;
  e.cap = cap;
  e.count = count;
  return e;
}

ExecRecord exec(uint32_t pid, uint32_t seq, uint64_t cgroup, std::string file,
                std::vector<std::string> args) {
  ExecRecord e;
  e.pid = pid;
  e.exec_seq = seq;
  e.cgroup_id = cgroup;
  e.filename = std::move(file);
  e.args = std::move(args);
  e.comm = "x";
  return e;
}

class RoutedRecorder : public ::testing::Test {
 protected:
  void SetUp() override {
    router.table[10] = keep("nginx", "aaaaaaaaaaaa");
    router.table[11] = keep("nginx", "bbbbbbbbbbbb");  // a replica
    router.table[20] = keep("sidecar", "cccccccccccc");
    rec.route_by(&router);
    rec.exclude_runtime_programs();
  }
  std::map<std::string, Profile> finish() {
    std::map<std::string, Profile> out;
    for (auto& p : rec.finish_all(1'000'000'000)) out.emplace(p.name, p);
    return out;
  }
  TableRouter router;
  profile::Recorder rec{"", "", {}, 0};
};

TEST_F(RoutedRecorder, ReplicasMergeAndEachContainerGetsItsOwnProfile) {
  rec.on_aggregate(agg(10, 100, 1, kNetBind, 2));
  rec.on_aggregate(agg(11, 200, 1, kNetBind, 3));
  rec.on_aggregate(agg(20, 300, 1, kChown, 1));
  rec.on_aggregate(agg(99, 400, 1, kSysAdmin, 5));  // not a selected container
  auto profiles = finish();
  ASSERT_EQ(profiles.size(), 2U);
  const Profile& nginx = profiles.at("shop/web/nginx");
  EXPECT_EQ(nginx.uses.at({kNetBind, true, true}).count, 5U);
  EXPECT_EQ(nginx.container.instances, (std::set<std::string>{"aaaaaaaaaaaa", "bbbbbbbbbbbb"}));
  EXPECT_EQ(nginx.runs, 1U);
  EXPECT_EQ(profiles.at("shop/web/sidecar").needed(), (std::vector<int>{kChown}));
  EXPECT_EQ(rec.checks(), 11U);
}

TEST_F(RoutedRecorder, ChecksWaitForTheirContainersNameAndAreCountedIfItNeverComes) {
  router.later = {30, 40};
  rec.on_aggregate(agg(30, 100, 1, kChown, 2));
  rec.on_aggregate(agg(40, 200, 1, kChown, 7));
  EXPECT_EQ(rec.waiting(), 2U);
  EXPECT_TRUE(finish().empty());
  router.later = {40};
  router.table[30] = keep("late", "dddddddddddd");
  rec.settle(false);
  EXPECT_EQ(rec.waiting(), 1U);
  rec.settle(true);  // 40 never named
  EXPECT_EQ(rec.waiting(), 0U);
  EXPECT_EQ(rec.unresolved_checks(), 7U);
  auto profiles = finish();
  ASSERT_EQ(profiles.size(), 1U);
  EXPECT_EQ(profiles.at("shop/web/late").uses.at({kChown, true, true}).count, 2U);
}

TEST_F(RoutedRecorder, RuntimeAndBorrowedCredentialChecksStayOut) {
  // runc's init: re-executed from a memfd as "runc init", then it forks its
  // stages and execs the entrypoint.
  rec.on_record(exec(100, 1, 10, "/dev/fd/6", {"runc", "init"}));
  rec.on_aggregate(agg(10, 100, 1, kSetpcap, 4));
  ForkRecord stage;
  stage.pid = 101;
  stage.ppid = 77;  // a parent the recorder never saw
  stage.exec_seq = 1;
  stage.comm = "runc:[1:CHILD]";
  rec.on_record(stage);
  rec.on_aggregate(agg(10, 101, 1, kSysAdmin, 3));
  rec.on_record(exec(100, 2, 10, "/docker-entrypoint.sh", {"/docker-entrypoint.sh"}));
  rec.on_aggregate(agg(10, 100, 2, kNetBind, 1));
  auto borrowed = agg(10, 100, 2, kSysAdmin, 9);  // overlayfs copying up as its mounter
  borrowed.cred_override = true;
  rec.on_aggregate(borrowed);
  CapCheck ring;  // one sent one by one by runc's init
  ring.pid = 555;
  ring.cgroup_id = 10;
  ring.cap = kSyslog;
  ring.comm = "runc:[2:INIT]";
  rec.on_record(ring);
  EXPECT_EQ(rec.runtime_checks(), 8U);
  EXPECT_EQ(rec.borrowed_checks(), 9U);
  auto profiles = finish();
  const Profile& nginx = profiles.at("shop/web/nginx");
  EXPECT_EQ(nginx.needed(), (std::vector<int>{kNetBind}));
  EXPECT_EQ(nginx.uses.at({kNetBind, true, true}).binaries.begin()->first, "/docker-entrypoint.sh");
}

TEST(Recorder, WithoutARouterEverythingIsTheOneNamedProfile) {
  profile::Recorder rec("web", "command: web", {}, 0);
  rec.on_aggregate(agg(5, 1, 1, kChown, 2));
  Profile p = rec.finish(10);
  EXPECT_EQ(p.name, "web");
  EXPECT_EQ(p.subject, "command: web");
  EXPECT_EQ(p.uses.at({kChown, true, true}).count, 2U);
  EXPECT_TRUE(p.container.empty());
}

TEST(Recorder, ExitedProcessesAreForgottenTwoDrainsLaterNotBefore) {
  profile::Recorder rec("busy", "", {}, 0);
  for (uint32_t pid = 1000; pid < 6000; ++pid) {
    rec.on_record(exec(pid, 1, 5, "/usr/bin/job", {"job"}));
    rec.on_record(ExitRecord{0, pid, 0});
  }
  EXPECT_EQ(rec.programs_known(), 5000U);
  rec.drained();
  // Its checks may still be in the kernel's map: still attributed after one drain.
  rec.on_aggregate(agg(5, 1000, 1, kChown, 1));
  EXPECT_EQ(rec.finish(1).uses.at({kChown, true, true}).binaries.count("/usr/bin/job"), 1U);
  // The pid is reused meanwhile: the new process's program is not the old one's to forget.
  rec.on_record(exec(1001, 1, 5, "/usr/bin/other", {"other"}));
  rec.drained();
  EXPECT_EQ(rec.programs_known(), 1U);
  rec.on_aggregate(agg(5, 1001, 1, kSysAdmin, 1));
  EXPECT_EQ(rec.finish(1).uses.at({kSysAdmin, true, true}).binaries.count("/usr/bin/other"), 1U);
}

// A set-user-ID exec whose record is read after the process exec'd again: its
// /proc/PID/exe (here this test's own binary, with no privilege) is the next
// program's file, so the exec'd inode sends the recorder to the path instead.
TEST(Recorder, ALateExecRecordDoesNotTakeTheNextProgramsFileForItsOwn) {
  auto path =
      std::filesystem::temp_directory_path() / ("capscope-late-exec-" + std::to_string(getpid()));
  std::ofstream(path) << "#!/bin/sh\n";
  ASSERT_EQ(chmod(path.c_str(), 04755), 0);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  profile::Recorder rec("late", "", {}, 0);
  ExecRecord e = exec(static_cast<uint32_t>(getpid()), 2, 5, path.string(), {"job"});
  e.exe_ino = st.st_ino;
  e.euid = st.st_uid;
  e.uid = st.st_uid + 1;
  rec.on_record(e);
  // A record of the same inode after the path was replaced (made before the old
  // one goes, so the new file cannot reuse its inode): the path is not its file.
  auto next = path.string() + ".next";
  std::ofstream(next) << "#!/bin/sh\n";
  ASSERT_EQ(chmod(next.c_str(), 04755), 0);
  std::filesystem::rename(next, path);
  ExecRecord stale = exec(static_cast<uint32_t>(getpid()), 3, 5, path.string(), {"job"});
  stale.exe_ino = st.st_ino;
  stale.euid = st.st_uid;
  stale.uid = st.st_uid + 1;
  rec.on_record(stale);
  std::filesystem::remove(path);
  auto binaries = rec.finish(1).privileged_binaries;
  ASSERT_EQ(binaries.size(), 1U);
  const auto& b = binaries.at(path.string());
  EXPECT_TRUE(b.file.setuid);
  EXPECT_EQ(b.execs, 1U);
  EXPECT_EQ(b.raised, 1U);
}

Profile container_profile(const std::string& container, std::vector<int> caps,
                          const std::string& kind = "Deployment") {
  Profile p;
  p.container = profile::identity_of(deployment_pod(std::string(64, 'f'), "web-1"));
  p.container.container = container;
  p.container.workload_kind = kind;
  p.name = profile::profile_name_of(p.container);
  p.runs = 1;
  for (int cap : caps) {
    profile::Observation o;
    o.key = {cap, true, true};
    o.count = 1;
    o.binary = "/usr/sbin/" + container;
    p.add(o);
  }
  return p;
}

TEST(ContainerProfileStore, IdentityIsStoredMergedAndExported) {
  auto dir = std::filesystem::temp_directory_path() / ("capscope-cp-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string error;
  {
    auto db = store::ProfileStore::open((dir / "p.db").string(), &error);
    ASSERT_TRUE(db) << error;
    Profile a = container_profile("nginx", {kNetBind});
    Profile b = a;
    b.container.instances = {"999999999999"};
    b.container.pod = "web-2";
    ASSERT_TRUE(db->merge_save(a, &error)) << error;
    ASSERT_TRUE(db->merge_save(b, &error)) << error;
    auto p = db->load("shop/web/nginx", &error);
    ASSERT_TRUE(p) << error;
    EXPECT_EQ(p->container.pod, "web-2");
    EXPECT_EQ(p->container.workload_kind, "Deployment");
    EXPECT_EQ(p->container.image, "docker.io/library/nginx:1.27");
    EXPECT_EQ(p->container.instances, (std::set<std::string>{"ffffffffffff", "999999999999"}));
    EXPECT_EQ(p->runs, 2U);

    auto back = profile::from_export_json(profile::to_export_json(*p), &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(back->container.instances, p->container.instances);
    EXPECT_EQ(back->container.workload, "web");
    EXPECT_EQ(back->container.namespace_name, "shop");
  }
  std::filesystem::remove_all(dir);
}

TEST(ContainerProfileStore, ABadContainerBlockIsNamed) {
  auto j = profile::to_export_json(container_profile("nginx", {kNetBind}));
  j["container"]["instances"] = "abc";
  std::string error;
  EXPECT_FALSE(profile::from_export_json(nlohmann::json::parse(j.dump()), &error));
  EXPECT_NE(error.find("container: field \"instances\" has the wrong type"), std::string::npos)
      << error;
}

// A runtime that knows a fixed set of containers.
class MapClient final : public RuntimeClient {
 public:
  explicit MapClient(std::map<std::string, ContainerInfo> known) : known_(std::move(known)) {}
  [[nodiscard]] std::string runtime() const override { return "podman"; }
  [[nodiscard]] std::string endpoint() const override { return "/fake/podman.sock"; }
  std::string version() override { return "4.3.1"; }
  ContainerInfo inspect(std::string_view id) override {
    auto it = known_.find(std::string(id));
    if (it == known_.end()) throw RuntimeError(RuntimeError::Kind::NotFound, "no such container");
    return it->second;
  }
  std::vector<std::string> list_running() override { return {}; }

 private:
  std::map<std::string, ContainerInfo> known_;
};

TEST(ContainerRouter, RoutesSelectedContainersAndExcludesTheRestInTheKernel) {
  std::string xwing_id(64, '1'), other_id(64, '2'), gone_id(64, '3');
  ContainerInfo xwing;
  xwing.id = xwing_id;
  xwing.runtime = "podman";
  xwing.name = "spaceship";
  xwing.pod_name = "xwing";
  xwing.image = "localhost/busybox:latest";
  ContainerInfo other = xwing;
  other.id = other_id;
  other.pod_name = "tie";
  std::vector<std::unique_ptr<RuntimeClient>> clients;
  clients.push_back(std::make_unique<MapClient>(
      std::map<std::string, ContainerInfo>{{xwing_id, xwing}, {other_id, other}}));
  ResolverOptions fast;
  fast.retry_not_found = std::chrono::milliseconds(1);
  fast.not_found_attempts = 1;
  RuntimeResolver resolver(std::move(clients), fast, [](const std::string&) {});
  filter::ContainerSelection sel;
  sel.pods = {"xwing"};
  profile::ContainerRouter router(resolver, filter::ContainerFilter(sel),
                                  CgroupFs({"/nonexistent"}), std::chrono::milliseconds(2000));
  std::vector<uint64_t> excluded;
  router.exclude_through([&](uint64_t id) { excluded.push_back(id); });
  router.on_cgroup(100, "/machine.slice/libpod-" + xwing_id + ".scope");
  router.on_cgroup(200, "/machine.slice/libpod-" + other_id + ".scope");
  router.on_cgroup(300, "/machine.slice/libpod-" + gone_id + ".scope");
  router.on_cgroup(400, "/user.slice/user-0.slice/session-1.scope");

  // The runtime has not answered yet: undecided, not excluded.
  EXPECT_EQ(router.route(100, false).kind, Route::Kind::Wait);
  Route r = router.route(100, true);  // the last chance waits for the answer
  ASSERT_EQ(r.kind, Route::Kind::Keep);
  EXPECT_EQ(r.profile, "xwing/spaceship");
  EXPECT_EQ(r.container.instances, (std::set<std::string>{"111111111111"}));
  EXPECT_EQ(router.route(200, true).kind, Route::Kind::Drop);
  EXPECT_EQ(router.route(200, false).kind, Route::Kind::Drop);  // settled, asked once
  // A container no runtime knows cannot be decided for a pod selection.
  EXPECT_EQ(router.route(300, true).kind, Route::Kind::Wait);
  EXPECT_EQ(router.route(400, false).kind, Route::Kind::Drop);  // not a container
  EXPECT_EQ(router.route(999, true).kind, Route::Kind::Drop);   // a cgroup never seen
  EXPECT_EQ(excluded, (std::vector<uint64_t>{200}));
  EXPECT_EQ(router.recorded(), (std::set<std::string>{xwing_id}));
}

// A runtime that never answers: the end of a recording waits once, not once per container.
class SilentClient final : public RuntimeClient {
 public:
  [[nodiscard]] std::string runtime() const override { return "podman"; }
  [[nodiscard]] std::string endpoint() const override { return "/fake/silent.sock"; }
  std::string version() override { throw RuntimeError(RuntimeError::Kind::Unavailable, "down"); }
  ContainerInfo inspect(std::string_view) override {
    throw RuntimeError(RuntimeError::Kind::Unavailable, "down");
  }
  std::vector<std::string> list_running() override { return {}; }
};

TEST(ContainerRouter, TheLastWaitIsSharedByEveryUnnamedContainer) {
  std::vector<std::unique_ptr<RuntimeClient>> clients;
  clients.push_back(std::make_unique<SilentClient>());
  RuntimeResolver resolver(std::move(clients), {}, [](const std::string&) {});
  filter::ContainerSelection sel;
  sel.pods = {"xwing"};
  profile::ContainerRouter router(resolver, filter::ContainerFilter(sel),
                                  CgroupFs({"/nonexistent"}), std::chrono::milliseconds(300));
  for (uint64_t i = 0; i < 20; ++i)
    router.on_cgroup(i + 1, "/machine.slice/libpod-" + fmt::format("{:064x}", i + 1) + ".scope");
  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < 20; ++i) EXPECT_EQ(router.route(i + 1, true).kind, Route::Kind::Wait);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(2));  // 20 waits of 300 ms would be 6 s
}

TEST(ContainerRouter, AllContainersKeepsAnUnnamedContainerByItsId) {
  RuntimeResolver none({}, {}, [](const std::string&) {});
  profile::ContainerRouter router(none, filter::ContainerFilter({}), CgroupFs({"/nonexistent"}));
  std::string id(64, '4');
  router.on_cgroup(10, "/machine.slice/libpod-" + id + ".scope");
  Route r = router.route(10, false);
  ASSERT_EQ(r.kind, Route::Kind::Keep);
  EXPECT_EQ(r.profile, "444444444444@podman");
}

// The agent records every container: one no runtime knows is kept by its id once
// the runtimes have said so, not held back until the agent stops.
TEST(ContainerRouter, AContainerNoRuntimeKnowsIsKeptByIdOnceTheRuntimesSaySo) {
  std::vector<std::unique_ptr<RuntimeClient>> clients;
  clients.push_back(std::make_unique<MapClient>(std::map<std::string, ContainerInfo>{}));
  ResolverOptions fast;
  fast.retry_not_found = std::chrono::milliseconds(1);
  fast.not_found_attempts = 2;
  RuntimeResolver resolver(std::move(clients), fast, [](const std::string&) {});
  profile::ContainerRouter router(resolver, filter::ContainerFilter({}),
                                  CgroupFs({"/nonexistent"}));
  std::string id(64, '6');
  router.on_cgroup(10, "/system.slice/docker-" + id + ".scope");
  EXPECT_EQ(router.route(10, false).kind, Route::Kind::Wait);  // asked, not answered yet
  EXPECT_FALSE(resolver.given_up(id));
  Route r;
  for (int i = 0; i < 200 && (r = router.route(10, false)).kind == Route::Kind::Wait; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(resolver.given_up(id));
  ASSERT_EQ(r.kind, Route::Kind::Keep);
  EXPECT_EQ(r.profile, "666666666666@docker");
}

// A thousand containers starting at once: a check can be drained before its
// cgroup's record and between two walks. It waits; it is not a host cgroup for good.
TEST(ContainerRouter, AnUnseenCgroupWaitsForTheNextWalkBeforeItCountsAsTheHosts) {
  RuntimeResolver none({}, {}, [](const std::string&) {});
  profile::ContainerRouter router(none, filter::ContainerFilter({}), CgroupFs({"/nonexistent"}));
  router.seed();  // the start-up walk: the next one is a second away
  std::string id(64, '5');
  EXPECT_EQ(router.route(10, false).kind, Route::Kind::Wait);  // its record is late
  router.on_cgroup(10, "/system.slice/docker-" + id + ".scope");
  Route late = router.route(10, false);
  ASSERT_EQ(late.kind, Route::Kind::Keep);
  EXPECT_EQ(late.profile, "555555555555@docker");

  EXPECT_EQ(router.route(11, false).kind, Route::Kind::Wait);  // never made
  EXPECT_EQ(router.route(11, false).kind, Route::Kind::Wait);  // no walk since
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(router.route(11, false).kind, Route::Kind::Drop);  // walked, still unseen
}

std::string patch_of(const std::vector<Profile>& profiles) {
  std::vector<advice::ContainerAdvice> advised;
  for (const auto& p : profiles) advised.push_back({&p, advice::advise(p)});
  return advice::render_workload_patch(advised);
}

TEST(WorkloadPatch, DeploymentPatchMergesContainersByName) {
  std::vector<Profile> ps = {container_profile("nginx", {kNetBind}),
                             container_profile("sidecar", {})};
  std::string text = patch_of(ps);
  YAML::Node doc = YAML::Load(text);
  EXPECT_EQ(doc["apiVersion"].as<std::string>(), "apps/v1") << text;
  EXPECT_EQ(doc["kind"].as<std::string>(), "Deployment");
  EXPECT_EQ(doc["metadata"]["name"].as<std::string>(), "web");
  EXPECT_EQ(doc["metadata"]["namespace"].as<std::string>(), "shop");
  YAML::Node ctrs = doc["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(ctrs.size(), 2U) << text;
  EXPECT_EQ(ctrs[0]["name"].as<std::string>(), "nginx");
  auto caps = ctrs[0]["securityContext"]["capabilities"];
  EXPECT_EQ(caps["drop"].as<std::vector<std::string>>(), (std::vector<std::string>{"ALL"}));
  EXPECT_EQ(caps["add"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"NET_BIND_SERVICE"}));
  EXPECT_FALSE(ctrs[1]["securityContext"]["capabilities"]["add"]);  // needs nothing
  EXPECT_FALSE(ctrs[1]["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_NE(text.find("kubectl patch deployment web -n shop --patch-file web-capabilities.yaml"),
            std::string::npos)
      << text;
}

TEST(WorkloadPatch, PodTemplatePathFollowsTheKind) {
  YAML::Node cron = YAML::Load(patch_of({container_profile("job", {kChown}, "CronJob")}));
  EXPECT_EQ(cron["apiVersion"].as<std::string>(), "batch/v1");
  EXPECT_TRUE(cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"]);
  std::string pod_text = patch_of({container_profile("app", {kChown}, "Pod")});
  YAML::Node pod = YAML::Load(pod_text);
  EXPECT_EQ(pod["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(pod["spec"]["containers"][0]["name"].as<std::string>(), "app");
  EXPECT_NE(pod_text.find("cannot change"), std::string::npos);
  // A kind guessed from a pod's name alone is said to be a guess.
  std::string guessed = patch_of({container_profile("app", {}, "DaemonSet|Job|ReplicaSet")});
  EXPECT_EQ(YAML::Load(guessed)["kind"].as<std::string>(), "DaemonSet");
  EXPECT_NE(guessed.find("may be any of DaemonSet, Job, ReplicaSet"), std::string::npos) << guessed;
}

}  // namespace
