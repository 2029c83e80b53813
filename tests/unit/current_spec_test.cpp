// advise --current: the runtimes' default sets, the spec parsers (Kubernetes,
// compose, docker inspect, a live process) and the comparison against a profile.
#include <gtest/gtest.h>

#include <algorithm>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "advice/advice.h"
#include "advice/compare.h"
#include "advice/current_spec.h"
#include "advice/runtime_defaults.h"
#include "enrich/proc_reader.h"
#include "profile/profile.h"

using namespace capscope;
using advice::CurrentContainer;
using advice::CurrentSpec;
using advice::Runtime;
using advice::SpecKind;
using profile::Observation;
using profile::Profile;

namespace {

namespace fs = std::filesystem;

constexpr int kChown = 0, kDacOverride = 1, kDacReadSearch = 2, kFowner = 3, kSetgid = 6,
              kSetuid = 7, kNetBind = 10, kNetAdmin = 12, kNetRaw = 13, kSysAdmin = 21,
              kSysNice = 23, kMknod = 27;

using Caps = std::vector<int>;

fs::path spec_path(const std::string& name) { return fs::path(CAPSCOPE_FIXTURES) / "specs" / name; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compares with tests/fixtures/advice/current/<name>; CAPSCOPE_UPDATE_GOLDEN=1 rewrites it.
void expect_golden(const std::string& name, const std::string& got) {
  fs::path file = fs::path(CAPSCOPE_FIXTURES) / "advice" / "current" / name;
  if (std::getenv("CAPSCOPE_UPDATE_GOLDEN") != nullptr) std::ofstream(file) << got;
  EXPECT_EQ(got, read_file(file)) << "golden " << file;
}

// Parses a fixture by its bare name, so errors name it as a user would see it.
CurrentSpec load(const std::string& name, advice::SpecOptions opts = {}) {
  std::string error;
  auto spec = advice::parse_current_spec(read_file(spec_path(name)), name, opts, &error);
  EXPECT_TRUE(spec) << error;
  return spec.value_or(CurrentSpec{});
}

std::string load_error(const std::string& name) {
  std::string error;
  auto spec = advice::parse_current_spec(read_file(spec_path(name)), name, {}, &error);
  EXPECT_FALSE(spec) << name << " parsed";
  return error;
}

std::string parse_error(const std::string& text) {
  std::string error;
  auto spec = advice::parse_current_spec(text, "x.yaml", {}, &error);
  EXPECT_FALSE(spec) << "parsed: " << text;
  return error;
}

Observation obs(int cap, bool granted, bool audit, uint64_t count, std::string syscall,
                std::string binary) {
  Observation o;
  o.key = {cap, granted, audit};
  o.count = count;
  o.first_ns = 1000;
  o.last_ns = 2000;
  o.syscall = std::move(syscall);
  o.binary = std::move(binary);
  return o;
}

// Needs CHOWN (granted) and SYS_NICE (denied); probes SYS_ADMIN.
Profile web() {
  Profile p;
  p.name = "web";
  p.subject = "command: nginx";
  p.runs = 1;
  p.recorded_ns = 2'500'000'000;
  p.add(obs(kChown, true, true, 3, "fchownat", "/usr/bin/chown"));
  p.add(obs(kSysAdmin, true, false, 40, "mmap", "/usr/sbin/nginx"));
  p.add(obs(kSysNice, false, true, 2, "setpriority", "/usr/bin/nice"));
  return p;
}

std::vector<std::string> lines_of(const advice::Comparison& c) {
  std::vector<std::string> v;
  for (const auto& l : c.lines) v.push_back(advice::line_text(l));
  return v;
}

advice::Comparison compare_with(const CurrentContainer& c) {
  Profile p = web();
  return advice::compare(advice::advise(p), p, c);
}

}  // namespace

TEST(CurrentRuntimeDefaults, EachRuntimesSet) {
  auto names = [](Runtime r) {
    std::vector<int> v(advice::runtime_default(r).caps.begin(),
                       advice::runtime_default(r).caps.end());
    return v;
  };
  EXPECT_EQ(names(Runtime::Docker), (Caps{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}));
  EXPECT_EQ(names(Runtime::Containerd), names(Runtime::Docker));
  EXPECT_EQ(names(Runtime::Crio), (Caps{0, 1, 3, 4, 5, 6, 7, 8, 10}));
  EXPECT_EQ(names(Runtime::Podman), (Caps{0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 31}));
  EXPECT_EQ(advice::all_runtime_defaults().size(), 4U);
}

TEST(CurrentRuntimeDefaults, LookupByName) {
  EXPECT_EQ(advice::runtime_from_name("docker"), Runtime::Docker);
  EXPECT_EQ(advice::runtime_from_name("containerd"), Runtime::Containerd);
  EXPECT_EQ(advice::runtime_from_name("CRI-O"), Runtime::Crio);
  EXPECT_EQ(advice::runtime_from_name("crio"), Runtime::Crio);
  EXPECT_EQ(advice::runtime_from_name("Podman"), Runtime::Podman);
  EXPECT_EQ(advice::runtime_from_name("lxc"), std::nullopt);
  EXPECT_EQ(advice::runtime_name(Runtime::Crio), "cri-o");
}

TEST(CurrentSpec, PodLevelAndContainerLevelSecurityContext) {
  CurrentSpec spec = load("pod.yaml");
  ASSERT_EQ(spec.containers.size(), 2U);
  const CurrentContainer& web = spec.containers[0];
  EXPECT_EQ(web.kind, SpecKind::Kubernetes);
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.workload, "Pod/web");
  EXPECT_EQ(web.line, 11);
  EXPECT_EQ(web.add, (Caps{kNetBind, kSysNice}));  // "CAP_sys_nice": prefix and case accepted
  EXPECT_EQ(web.drop, (Caps{kNetRaw, kMknod}));
  EXPECT_FALSE(web.drop_all);
  EXPECT_EQ(web.run_as_user, 0);  // the container's own wins over the pod's
  EXPECT_EQ(web.run_as_non_root, false);
  EXPECT_EQ(web.allow_privilege_escalation, false);
  EXPECT_EQ(web.runtime, Runtime::Containerd);
  EXPECT_TRUE(web.runtime_assumed);
  const CurrentContainer& sidecar = spec.containers[1];
  EXPECT_EQ(sidecar.run_as_user, 1000);  // inherited from the pod
  EXPECT_EQ(sidecar.run_as_non_root, true);
  EXPECT_EQ(sidecar.allow_privilege_escalation, std::nullopt);
  EXPECT_TRUE(sidecar.add.empty());
}

TEST(CurrentSpec, DeploymentWithInitContainer) {
  CurrentSpec spec = load("deployment.yaml");
  ASSERT_EQ(spec.containers.size(), 3U);
  EXPECT_EQ(spec.containers[0].name, "migrate");
  EXPECT_TRUE(spec.containers[0].init);
  EXPECT_TRUE(spec.containers[0].drop_all);
  EXPECT_EQ(spec.containers[1].name, "app");
  EXPECT_FALSE(spec.containers[1].init);
  EXPECT_TRUE(spec.containers[1].drop_all);
  EXPECT_EQ(spec.containers[1].add, (Caps{kChown, kNetBind}));
  EXPECT_EQ(spec.containers[2].name, "metrics");
  EXPECT_FALSE(spec.containers[2].drop_all);
  for (const auto& c : spec.containers) EXPECT_EQ(c.workload, "Deployment/shop");
  EXPECT_TRUE(advice::matches(spec.containers[1], "app"));
  EXPECT_TRUE(advice::matches(spec.containers[1], "Deployment/shop/app"));
  EXPECT_FALSE(advice::matches(spec.containers[1], "metrics"));
}

TEST(CurrentSpec, MultiDocumentPicksTheWorkload) {
  CurrentSpec spec = load("multi.yaml");
  ASSERT_EQ(spec.containers.size(), 1U);
  EXPECT_EQ(spec.containers[0].workload, "StatefulSet/api");
  EXPECT_EQ(spec.containers[0].add, (Caps{kSysAdmin}));
  EXPECT_EQ(spec.containers[0].line, 33);
}

TEST(CurrentSpec, CronJob) {
  CurrentSpec spec = load("cronjob.yaml");
  ASSERT_EQ(spec.containers.size(), 1U);
  EXPECT_EQ(spec.containers[0].workload, "CronJob/backup");
  EXPECT_TRUE(spec.containers[0].drop_all);
  EXPECT_EQ(spec.containers[0].add, (Caps{kDacReadSearch}));
  EXPECT_EQ(spec.containers[0].run_as_user, 999);
}

TEST(CurrentSpec, Compose) {
  CurrentSpec spec = load("compose.yaml");
  ASSERT_EQ(spec.containers.size(), 2U);
  const CurrentContainer& web = spec.containers[0];
  EXPECT_EQ(web.kind, SpecKind::Compose);
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.drop, (Caps{kNetRaw}));
  EXPECT_EQ(web.add, (Caps{kSysNice}));
  EXPECT_EQ(web.user, "101:101");
  EXPECT_EQ(web.runtime, Runtime::Docker);
  const CurrentContainer& db = spec.containers[1];
  EXPECT_TRUE(db.drop_all);
  EXPECT_EQ(db.add, (Caps{kChown, kDacOverride, kFowner, kSetgid, kSetuid}));
}

TEST(CurrentSpec, DockerInspect) {
  CurrentSpec spec = load("docker-inspect.json");
  ASSERT_EQ(spec.containers.size(), 2U);
  const CurrentContainer& web = spec.containers[0];
  EXPECT_EQ(web.kind, SpecKind::DockerInspect);
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.add, (Caps{kNetAdmin}));
  EXPECT_EQ(web.drop, (Caps{kNetRaw, kMknod}));
  EXPECT_FALSE(web.privileged);
  EXPECT_EQ(web.runtime, Runtime::Docker);
  const CurrentContainer& tools = spec.containers[1];
  EXPECT_TRUE(tools.privileged);  // CapAdd: null is no list, not an error
  EXPECT_EQ(tools.user, "1000");
}

TEST(CurrentSpec, FormatComesFromContentNotName) {
  std::string error;
  auto spec =
      advice::parse_current_spec(read_file(spec_path("docker-inspect.json")), "a.yaml", {}, &error);
  ASSERT_TRUE(spec) << error;
  EXPECT_EQ(spec->containers[0].kind, SpecKind::DockerInspect);
  spec = advice::parse_current_spec(read_file(spec_path("compose.yaml")), "a.json", {}, &error);
  ASSERT_TRUE(spec) << error;
  EXPECT_EQ(spec->containers[0].kind, SpecKind::Compose);
}

TEST(CurrentSpec, RuntimeOptionReplacesTheAssumption) {
  CurrentSpec spec = load("pod.yaml", {Runtime::Crio});
  EXPECT_EQ(spec.containers[0].runtime, Runtime::Crio);
  EXPECT_FALSE(spec.containers[0].runtime_assumed);
}

TEST(CurrentSpec, HeldCaps) {
  CurrentSpec pod = load("pod.yaml");
  // containerd's 14 without NET_RAW. It prefixes every name with CAP_ itself,
  // so "CAP_sys_nice" (added) and "cap_mknod" (dropped) do nothing there.
  EXPECT_EQ(advice::held_caps(pod.containers[0]),
            (Caps{0, 1, 3, 4, 5, 6, 7, 8, 10, 18, 27, 29, 31}));
  auto warned = compare_with(pod.containers[0]).warnings;
  EXPECT_TRUE(std::any_of(warned.begin(), warned.end(), [](const std::string& w) {
    return w.find("CAP_CAP_X") != std::string::npos;
  }));
  CurrentSpec crio = load("pod.yaml", {Runtime::Crio});
  EXPECT_EQ(advice::held_caps(crio.containers[0]), (Caps{0, 1, 3, 4, 5, 6, 7, 8, 10, 23}));
  CurrentSpec deploy = load("deployment.yaml");
  EXPECT_EQ(advice::held_caps(deploy.containers[1]), (Caps{kChown, kNetBind}));
  EXPECT_TRUE(advice::held_caps(deploy.containers[0]).empty());
  CurrentSpec priv = load("privileged.yaml");
  EXPECT_EQ(advice::held_caps(priv.containers[0]).size(), 41U);
}

TEST(CurrentSpec, UnknownCapabilityNamesLineFieldAndFix) {
  EXPECT_EQ(load_error("unknown-cap.yaml"),
            "unknown-cap.yaml:20: spec.template.spec.containers[0].securityContext.capabilities."
            "add[1]: unknown capability \"NET_BIN\" (did you mean NET_BIND_SERVICE? names as in "
            "capabilities(7), with or without CAP_, or ALL)");
}

TEST(CurrentSpec, MalformedYamlNamesTheLine) {
  std::string error = load_error("malformed.yaml");
  EXPECT_EQ(error.rfind("malformed.yaml:11: not valid YAML: ", 0), 0U) << error;
}

TEST(CurrentSpec, NoContainerIsAnError) {
  EXPECT_EQ(load_error("no-containers.yaml"),
            "no-containers.yaml: no container found (it holds Service, which run no container): "
            "--current takes a Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet, Job or "
            "CronJob, a compose file (services:), or docker inspect JSON");
  EXPECT_NE(parse_error("just: a map\n").find("no container found"), std::string::npos);
}

TEST(CurrentSpec, WrongTypesNameTheField) {
  EXPECT_EQ(parse_error("kind: Pod\nspec:\n  containers:\n    - name: a\n      securityContext:\n"
                        "        privileged: maybe\n"),
            "x.yaml:6: spec.containers[0].securityContext.privileged: expected true or false");
  EXPECT_EQ(parse_error("kind: Pod\nspec:\n  containers: web\n"),
            "x.yaml:3: spec.containers: expected a list, found a scalar");
  EXPECT_EQ(parse_error("kind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: 1\n"),
            "x.yaml:5: spec.template: missing: a Deployment keeps its pod spec under "
            "spec.template.spec");
  EXPECT_EQ(parse_error("services:\n  web:\n    cap_add: [NOPE_NOPE_NOPE]\n"),
            "x.yaml:3: services.web.cap_add[0]: unknown capability \"NOPE_NOPE_NOPE\" (names as "
            "in capabilities(7), with or without CAP_, or ALL)");
  EXPECT_EQ(parse_error(R"([{"Name": "/a", "HostConfig": {"CapAdd": ["CAP_CHOWN", 7]}}])"),
            "x.yaml: [0].HostConfig.CapAdd[1]: expected a capability name");
  // Fields of an unexpected type are an error, not a crash.
  EXPECT_NE(parse_error(R"([{"Name": null, "HostConfig": {}, "Config": {"User": 7}}])")
                .find("x.yaml: not docker inspect output as expected"),
            std::string::npos);
  // A number is no capability name in a spec, though capscope's tables take one elsewhere.
  EXPECT_NE(parse_error("services:\n  web:\n    cap_add: [\"12\"]\n").find("unknown capability"),
            std::string::npos);
}

TEST(CurrentCompare, DropsAddsAndKeeps) {
  // Deployment/shop app: drop ALL, add CHOWN and NET_BIND_SERVICE.
  auto c = compare_with(load("deployment.yaml").containers[1]);
  EXPECT_EQ(lines_of(c), (std::vector<std::string>{
                             "drop CAP_NET_BIND_SERVICE (added in the spec, never used)",
                             "add CAP_SYS_NICE (denied 2 times: setpriority by /usr/bin/nice)",
                             "keep CAP_CHOWN (used 3 times: fchownat by /usr/bin/chown)",
                         }));
  EXPECT_EQ(c.recommended, (Caps{kChown, kSysNice}));
}

TEST(CurrentCompare, RuntimeDefaultAndProbes) {
  auto c = compare_with(load("privileged.yaml").containers[0]);
  auto lines = lines_of(c);
  EXPECT_EQ(lines.size(), 41U);  // 39 drops, 2 keeps
  EXPECT_EQ(lines[0], "drop CAP_DAC_OVERRIDE (granted by privileged: true, never used)");
  EXPECT_NE(
      std::find(lines.begin(), lines.end(),
                "drop CAP_SYS_ADMIN (granted by privileged: true, probed only, never needed)"),
      lines.end());
  ASSERT_FALSE(c.warnings.empty());
  EXPECT_EQ(c.warnings[0].rfind("privileged: every capability", 0), 0U);

  auto compose = compare_with(load("compose.yaml").containers[0]);
  EXPECT_EQ(lines_of(compose)[0],
            "drop CAP_DAC_OVERRIDE (granted by the docker default, never used)");
}

TEST(CurrentCompare, GoldenText) {
  Profile p = web();
  advice::Advice a = advice::advise(p);
  for (const std::string& name :
       {"pod.yaml", "deployment.yaml", "compose.yaml", "docker-inspect.json", "privileged.yaml"}) {
    CurrentSpec spec = load(name);
    std::vector<advice::Comparison> all;
    for (const auto& c : spec.containers) all.push_back(advice::compare(a, p, c));
    expect_golden(name + ".txt", advice::render_comparisons(all, spec, a, p, false));
  }
}

TEST(CurrentCompare, GoldenJson) {
  Profile p = web();
  advice::Advice a = advice::advise(p);
  CurrentSpec spec = load("deployment.yaml");
  std::vector<advice::Comparison> all;
  for (const auto& c : spec.containers) all.push_back(advice::compare(a, p, c));
  expect_golden("deployment.yaml.json", advice::render_comparisons(all, spec, a, p, true));
}

TEST(CurrentCompare, LiveProcess) {
  ProcReader reader(fs::path(CAPSCOPE_FIXTURES) / "proc", 100);
  std::string error;
  auto spec = advice::current_of_process(reader, 6074, &error);
  ASSERT_TRUE(spec) << error;
  const CurrentContainer& c = spec->containers[0];
  EXPECT_EQ(c.kind, SpecKind::Process);
  EXPECT_EQ(c.live.bounding, 0xa80425fbULL);  // Docker's default set
  EXPECT_EQ(advice::held_caps(c), (Caps{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}));
  Profile p = web();
  advice::Advice a = advice::advise(p);
  auto cmp = advice::compare(a, p, c);
  auto lines = lines_of(cmp);
  EXPECT_EQ(lines.front(), "drop CAP_DAC_OVERRIDE (effective in pid 6074, never used)");
  EXPECT_EQ(lines[lines.size() - 2],
            "add CAP_SYS_NICE (denied 2 times: setpriority by /usr/bin/nice)");
  EXPECT_EQ(lines.back(), "keep CAP_CHOWN (used 3 times: fchownat by /usr/bin/chown)");
  EXPECT_EQ(advice::recommended_form(cmp),
            "setpriv --bounding-set -all,+chown,+sys_nice -- COMMAND...\n");
  expect_golden("pid-6074.txt", advice::render_comparisons({cmp}, *spec, a, p, false));

  // Non-root: the bounding set holds CHOWN, but it is not effective.
  auto user = advice::current_of_process(reader, 6080, &error);
  ASSERT_TRUE(user) << error;
  auto user_lines = lines_of(advice::compare(a, p, user->containers[0]));
  EXPECT_EQ(user_lines.back(),
            "keep CAP_CHOWN (used 3 times: fchownat by /usr/bin/chown; in the bounding set, not "
            "effective)");
  EXPECT_FALSE(advice::current_of_process(reader, 99999, &error));
  EXPECT_NE(error.find("--current-pid 99999"), std::string::npos);
}

// A non-root container needs file capabilities for what it adds, so escalation
// stays allowed; not under Podman, which makes added capabilities ambient.
TEST(CurrentCompare, NonRootEscalationDependsOnTheRuntime) {
  CurrentContainer c;
  c.name = "app";
  c.drop_all = true;
  c.run_as_user = 1000;
  c.runtime = Runtime::Containerd;
  auto containerd = compare_with(c);
  EXPECT_TRUE(containerd.escalation.needs_file_caps);
  EXPECT_NE(advice::recommended_form(containerd).find("allowPrivilegeEscalation: true"),
            std::string::npos);
  c.runtime = Runtime::Podman;
  auto podman = compare_with(c);
  EXPECT_TRUE(podman.escalation.can_forbid()) << podman.escalation.evidence;
  for (const auto& w : podman.warnings) EXPECT_EQ(w.find("non-root"), std::string::npos) << w;
}

// Recorded as a non-root user (file capabilities needed), compared with a spec
// that runs it as root: escalation can be forbidden there.
TEST(CurrentCompare, ARootSpecNeedsNoFileCapabilities) {
  Profile p = web();
  p.held.ran_as_user = true;
  auto a = advice::advise(p);
  ASSERT_TRUE(a.escalation.needs_file_caps);
  CurrentContainer c;
  c.name = "app";
  c.run_as_user = 0;
  c.runtime = Runtime::Containerd;
  auto cmp = advice::compare(a, p, c);
  EXPECT_TRUE(cmp.escalation.can_forbid()) << cmp.escalation.evidence;
}
