// The deployment files (deploy/, docs/DEPLOY.md), run for real: `capscope agent`
// with exactly the capabilities the systemd unit bounds it to, and inside podman with
// the DaemonSet's security context, mounts and ConfigMap. Each records a real podman
// container: if a capability, a mount or a profile the files leave out were needed,
// the container's check would go missing, unattributed or unnamed here.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "helpers.h"
#include "tables/capabilities.h"

namespace capscope::runtime_test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using tables::cap_from_name;
using tables::cap_name;
using tables::caps_in_mask;
using tables::kernel_last_cap;

fs::path deploy_dir() { return fs::path(CAPSCOPE_SOURCE_DIR) / "deploy"; }

// CapabilityBoundingSet= of the systemd unit.
std::set<int> unit_capabilities() {
  std::ifstream in(deploy_dir() / "systemd/capscope-agent.service");
  const std::string key = "CapabilityBoundingSet=";
  std::set<int> caps;
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(key)) continue;
    std::istringstream words(line.substr(key.size()));
    for (std::string w; words >> w;)
      if (auto c = cap_from_name(w)) caps.insert(*c);
  }
  return caps;
}

// The document of `kind` named `name` in a manifest file.
YAML::Node manifest(const std::string& file, const std::string& kind, const std::string& name) {
  for (const auto& doc : YAML::LoadAllFromFile((deploy_dir() / "kubernetes" / file).string()))
    if (doc["kind"].as<std::string>() == kind && doc["metadata"]["name"].as<std::string>() == name)
      return doc;
  return {};
}

std::set<int> mask_set(uint64_t mask) {
  auto caps = caps_in_mask(mask);
  return {caps.begin(), caps.end()};
}

std::string names(const std::set<int>& caps) {
  std::string out;
  for (int c : caps) out += (out.empty() ? "" : ",") + cap_name(c);
  return out;
}

// A /proc/PID/status line's value ("CapBnd", "NoNewPrivs", "Seccomp").
std::string status_field(pid_t pid, const std::string& field) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(field + ":")) {
      auto v = line.substr(field.size() + 1);
      return v.substr(v.find_first_not_of(" \t"));
    }
  return "";
}

std::set<int> status_caps(pid_t pid, const std::string& field) {
  return mask_set(std::stoull(status_field(pid, field), nullptr, 16));
}

// "metrics on http://ADDR/metrics" in a log: the /healthz URL, or "".
std::string healthz_url(const std::string& log) {
  static const std::regex re("metrics on http://([^ \n/]+)/metrics");
  std::smatch m;
  return std::regex_search(log, m, re) ? "http://" + m[1].str() + "/healthz" : "";
}

// Waits up to 90 s (loading under emulation is slow) for the log to name the metrics
// address and /healthz to answer 200; the URL, or "" with the reason in `why`.
template <typename LogFn, typename AliveFn>
std::string wait_healthy(LogFn log, AliveFn alive, std::string* why) {
  auto end = std::chrono::steady_clock::now() + 90s;
  while (std::chrono::steady_clock::now() < end) {
    std::string url = healthz_url(log());
    if (!url.empty() && capture("curl -s -o /dev/null -w '%{http_code}' " + url) == "200")
      return url;
    if (!alive()) break;
    std::this_thread::sleep_for(200ms);
  }
  *why = "the agent did not become healthy; its log:\n" + log();
  return "";
}

// The JSON events of an export file.
std::vector<json> read_events(const fs::path& file) {
  std::vector<json> events;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) events.push_back(json::parse(line, nullptr, false));
  return events;
}

// The events of the container `id` in an export.
std::vector<json> container_events(const std::vector<json>& events, const std::string& id) {
  std::vector<json> out;
  for (const auto& e : events) {
    const json& k = e.value("process_kprobe", json::object());
    if (k.value("capscope", json::object()).value("container_id", "") == id &&
        k.value("args", json::array()).size() >= 2)
      out.push_back(k);
  }
  return out;
}

std::string capability_of(const json& k) {
  return k["args"][1].value("capability_arg", json::object()).value("name", "");
}

// The granted CAP_CHOWN of a container, or null.
json granted_chown(const std::vector<json>& events) {
  for (const auto& k : events)
    if (capability_of(k) == "CAP_CHOWN" && k["capscope"].value("verdict", "") == "granted")
      return k;
  return nullptr;
}

// Whether the CAP_SYS_ADMIN probes of memory accounting (cap_vm_enough_memory: every
// process that maps, grows or copies writable memory makes one) came out as probes
// (audit false), as they must, and none as a need: the tracepoint backend can tell
// only with real /proc/kallsyms addresses (CAP_SYSLOG). With --unique only each
// container's first probe goes out, and which syscall makes it depends on the order
// runc and the host do things in: a container's is clone (runc's fork) or execve, the
// host's whatever ran first (a test that asked for mmap or brk alone failed when the
// host's first probe was a fork's). So any accounting syscall's probe counts, and an
// audited one of the syscalls that make no audited CAP_SYS_ADMIN check fails.
::testing::AssertionResult memory_probes_are_probes(const std::vector<json>& export_events) {
  static const std::set<std::string> kAccounting = {"mmap",   "brk",     "mprotect", "mremap",
                                                    "clone",  "clone3",  "fork",     "vfork",
                                                    "execve", "execveat"};
  static const std::set<std::string> kNeverAudited = {"mmap", "brk", "mprotect", "mremap"};
  int probes = 0;
  std::string sys_admin;  // what was exported of CAP_SYS_ADMIN, for the failure message
  for (const auto& e : export_events) {
    const json& k = e.value("process_kprobe", json::object());
    if (k.value("args", json::array()).size() < 2) continue;
    if (capability_of(k) != "CAP_SYS_ADMIN") continue;
    const json& cs = k["capscope"];
    std::string call = cs.value("syscall", json::object()).value("name", "");
    bool audit = cs.value("audit", true);
    sys_admin += " " + call + (audit ? "(audit)" : "(probe)") + "@" +
                 cs.value("container", json::object()).value("name", "host");
    if (audit && kNeverAudited.contains(call))
      return ::testing::AssertionFailure() << "an audited " << call << ": " << k.dump();
    if (!audit && kAccounting.contains(call)) ++probes;
  }
  if (probes == 0)
    return ::testing::AssertionFailure()
           << "no memory-accounting probe of CAP_SYS_ADMIN exported; CAP_SYS_ADMIN exported:"
           << sys_admin;
  return ::testing::AssertionSuccess();
}

class DeployRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    if (auto why = podman_problem(); !why.empty()) FAIL() << why;
    dir_ = fs::temp_directory_path() / ("capscope-deploy-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    for (const char* d : {"podman-run", "store", "export", "api", "config", "policies", "x"})
      fs::create_directories(dir_ / d);
    std::string why = podman_.start(dir_ / "podman-run");
    ASSERT_TRUE(why.empty()) << why;
  }
  void TearDown() override {
    for (const auto& n : containers_) sh("podman rm -f -t 0 " + n + " >/dev/null 2>&1");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The ConfigMap's capscope.yaml, as the pod reads it: a drop-in.
  void write_configmap_dropin() const {
    YAML::Node cm = manifest("20-configmap.yaml", "ConfigMap", "capscope-config");
    ASSERT_TRUE(cm) << "deploy/kubernetes/20-configmap.yaml has no ConfigMap capscope-config";
    std::ofstream(dir_ / "config/capscope.yaml") << cm["data"]["capscope.yaml"].as<std::string>();
  }

  // A busybox container that, once the agent runs, chowns a file and is refused
  // nice -n -5; returns its full id once it has exited.
  std::string run_victim(const std::string& name) {
    containers_.push_back(name);
    EXPECT_EQ(sh("podman --runtime runc run --name " + name + " --network none " + kBusyboxImage +
                 " sh -c 'touch /tmp/f; chown 1:1 /tmp/f; nice -n -5 true' " + ">/dev/null 2>&1"),
              0);
    return capture("podman inspect --format '{{.Id}}' " + name);
  }

  // A busybox container started now that waits for release_waiting(), then chowns
  // a file from its first process (busybox runs the applet in a fork, not an exec):
  // a process older than the agent, which only /proc can name. It stays up, so that
  // no later container gets its mount namespace's inode number.
  void start_waiting(const std::string& name) {
    containers_.push_back(name);
    EXPECT_EQ(sh("podman --runtime runc run -d --name " + name + " --network none -v " +
                 (dir_ / "x").string() + ":/x " + kBusyboxImage +
                 " sh -c 'while [ ! -e /x/go ]; do sleep 0.1; done; touch /tmp/f; "
                 "chown 1:1 /tmp/f; touch /x/done; sleep 300' >/dev/null 2>&1"),
              0);
  }
  // Releases it and waits (at most 30 s) until it has chowned; returns its id.
  std::string release_waiting(const std::string& name) {
    std::ofstream(dir_ / "x/go") << "go";
    for (int i = 0; i < 300 && !fs::exists(dir_ / "x/done"); ++i)
      std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(fs::exists(dir_ / "x/done")) << name << " did not chown";
    return capture("podman inspect --format '{{.Id}}' " + name);
  }

  // What the export says of a container run while the agent ran: its granted
  // CAP_CHOWN, named by the runtime, and its memory probes told from needs.
  void expect_recorded(const std::string& id, const std::string& name) const {
    auto events = container_events(read_events(dir_ / "export/events.json"), id);
    json chown = granted_chown(events);
    ASSERT_FALSE(chown.is_null()) << "no granted CAP_CHOWN from " << name << " (" << id
                                  << ") among the " << events.size() << " events of its container";
    EXPECT_EQ(chown["capscope"].value("container", json::object()).value("name", ""), name);
    EXPECT_TRUE(memory_probes_are_probes(read_events(dir_ / "export/events.json")));
    EXPECT_NE(profiles().find(name), std::string::npos) << profiles();
  }

  // What the store holds, as `capscope profile list` prints it.
  [[nodiscard]] std::string profiles() const {
    return capture(capscope_binary() + " profile list --db " +
                   (dir_ / "store/capscope.db").string() + " 2>&1");
  }

  fs::path dir_;
  PodmanService podman_;
  std::vector<std::string> containers_;
};

// The unit's CapabilityBoundingSet= is all the agent gets (root's capabilities at
// exec are its bounding set), and all it needs: it starts, answers /healthz, keeps
// no capability outside the set, exports a container's check named by the runtime,
// tells its memory probes from needs (CAP_SYSLOG), names the binary of a process older
// than itself (CAP_SYS_PTRACE), exits 0 on SIGTERM and has stored the profile.
TEST_F(DeployRuntime, AgentRunsWithTheSystemdUnitsCapabilities) {
  std::set<int> allowed = unit_capabilities();
  ASSERT_EQ(names(allowed), "CAP_SETPCAP,CAP_SYS_PTRACE,CAP_SYSLOG,CAP_PERFMON,CAP_BPF");
  write_configmap_dropin();
  fs::path log = dir_ / "agent.err";
  std::vector<std::string> args = {
      capscope_binary(),
      "agent",
      "--config=" + (dir_ / "config/capscope.yaml").string(),
      "--db=" + (dir_ / "store/capscope.db").string(),
      "--export-file=" + (dir_ / "export/events.json").string(),
      "--server-address=unix://" + (dir_ / "api/capscope.sock").string(),
      "--policy-dir=" + (dir_ / "policies").string(),
      "--metrics-address=127.0.0.1:0",
      "--podman-socket=" + podman_.socket()};
  if (!test_backend().empty()) args.push_back("--backend=" + test_backend());
  pid_t pid = fork();
  if (pid == 0) {
    // What systemd does with CapabilityBoundingSet= before it runs ExecStart.
    for (int cap = 0; cap <= kernel_last_cap(); ++cap)
      if (!allowed.contains(cap)) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  std::string older = "cs-deploy-older-" + std::to_string(getpid());
  start_waiting(older);
  auto alive = [&] { return waitpid(pid, nullptr, WNOHANG) == 0; };
  std::string why;
  std::string url = wait_healthy([&] { return read_file(log); }, alive, &why);
  if (url.empty()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    FAIL() << why;
  }
  // Nothing outside the unit's set, whatever the agent raises and drops.
  for (const char* set : {"CapBnd", "CapPrm", "CapEff"}) {
    std::set<int> held = status_caps(pid, set);
    EXPECT_TRUE(std::includes(allowed.begin(), allowed.end(), held.begin(), held.end()))
        << set << " " << names(held);
  }
  std::string older_id = release_waiting(older);
  std::string name = "cs-deploy-unit-" + std::to_string(getpid());
  std::string id = run_victim(name);
  std::this_thread::sleep_for(6s);  // the runtime's answer (checks wait up to 5 s for it)
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::string text = read_file(log);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
  expect_recorded(id, name);
  // The older container's process is named from /proc/PID/exe: CAP_SYS_PTRACE.
  json chown = granted_chown(container_events(read_events(dir_ / "export/events.json"), older_id));
  ASSERT_FALSE(chown.is_null()) << text;
  EXPECT_EQ(chown["process"].value("binary", ""), "/bin/busybox") << chown.dump();
}

// The DaemonSet's container, as podman runs it: its capabilities (drop ALL, add the
// list), seccomp profile, no_new_privs, read-only root, hostPID, the ConfigMap as a
// drop-in, the node's cgroup tree, the runtime socket by its directory, the store,
// export and API directories. An image of the binary under test and the libraries
// it links stands in for the Containerfile's (same paths, same entrypoint).
TEST_F(DeployRuntime, AgentRunsWithTheDaemonSetsSecurityContext) {
  YAML::Node ds = manifest("30-daemonset.yaml", "DaemonSet", "capscope");
  ASSERT_TRUE(ds) << "deploy/kubernetes/30-daemonset.yaml has no DaemonSet capscope";
  YAML::Node pod = ds["spec"]["template"]["spec"];
  YAML::Node sc = pod["containers"][0]["securityContext"];
  ASSERT_TRUE(pod["hostPID"].as<bool>());
  ASSERT_FALSE(sc["privileged"].as<bool>());
  ASSERT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL");
  std::string add;
  std::set<int> allowed;
  for (const auto& c : sc["capabilities"]["add"]) {
    add += (add.empty() ? "" : ",") + c.as<std::string>();
    allowed.insert(cap_from_name(c.as<std::string>()).value_or(-1));
  }
  write_configmap_dropin();

  std::string image = "localhost/capscope-deploy-test:" + std::to_string(getpid());
  std::string build =
      "set -e; r=" + (dir_ / "image").string() + "; b=" + capscope_binary() +
      "; mkdir -p $r/usr/local/bin $r/etc/capscope/capscope.d $r/etc/capscope/policies "
      "$r/var/lib/capscope $r/var/log/capscope $r/run/capscope $r/tmp $r/proc $r/sys $r/dev; "
      "ln -s ../run $r/var/run; cp $b $r/usr/local/bin/capscope; "
      "for l in $(ldd $b | grep -o '/[^ ]*'); do mkdir -p $r$(dirname $l); cp -L $l $r$l; done; "
      "tar -C $r -c . | podman import --change 'ENTRYPOINT "
      "[\"/usr/local/bin/capscope\",\"agent\"]' "
      "- " +
      image + " >/dev/null 2>&1";
  ASSERT_EQ(sh(build), 0) << "could not build the test image";
  std::string name = "cs-deploy-ds-" + std::to_string(getpid());
  containers_.push_back(name);
  std::string run = "podman --runtime runc run -d --name " + name + " --network host --user 0";
  if (pod["hostPID"].as<bool>()) run += " --pid host";
  run += " --cap-drop ALL --cap-add " + add;
  if (sc["seccompProfile"]["type"].as<std::string>() == "Unconfined")
    run += " --security-opt seccomp=unconfined";
  if (!sc["allowPrivilegeEscalation"].as<bool>()) run += " --security-opt no-new-privileges";
  if (sc["readOnlyRootFilesystem"].as<bool>()) run += " --read-only";
  run += " --tmpfs /tmp";
  // The DaemonSet's host paths: the cgroup tree as it is; the store, export and API
  // directories in the test's folder; the runtime socket: this test's podman service.
  for (const auto& m : pod["containers"][0]["volumeMounts"]) {
    std::string path = m["mountPath"].as<std::string>();
    std::string ro = m["readOnly"] && m["readOnly"].as<bool>() ? ":ro" : "";
    if (path == "/sys/fs/cgroup") run += " -v /sys/fs/cgroup:/sys/fs/cgroup" + ro;
    if (path == "/var/lib/capscope") run += " -v " + (dir_ / "store").string() + ":" + path + ro;
    if (path == "/var/log/capscope") run += " -v " + (dir_ / "export").string() + ":" + path + ro;
    if (path == "/var/run/capscope") run += " -v " + (dir_ / "api").string() + ":" + path + ro;
    if (path == "/etc/capscope/capscope.d")
      run += " -v " + (dir_ / "config").string() + ":" + path + ro;
    if (path == "/etc/capscope/policies")
      run += " -v " + (dir_ / "policies").string() + ":" + path + ro;
  }
  run += " -v " + (dir_ / "podman-run").string() + ":/run/podman:ro,rslave " + image;
  run += " --node-name=deploy-test --metrics-address=127.0.0.1:0";
  if (!test_backend().empty()) run += " --backend=" + test_backend();
  ASSERT_EQ(sh(run + " >/dev/null"), 0) << run;
  auto log = [&] { return capture("podman logs " + name + " 2>&1"); };
  auto alive = [&] {
    return capture("podman inspect --format '{{.State.Running}}' " + name) == "true";
  };
  std::string why;
  std::string url = wait_healthy(log, alive, &why);
  ASSERT_FALSE(url.empty()) << why;

  pid_t pid = std::stoi(capture("podman inspect --format '{{.State.Pid}}' " + name));
  for (const char* set : {"CapBnd", "CapPrm", "CapEff"}) {
    std::set<int> held = status_caps(pid, set);
    EXPECT_TRUE(std::includes(allowed.begin(), allowed.end(), held.begin(), held.end()))
        << set << " " << names(held);
  }
  EXPECT_EQ(status_field(pid, "NoNewPrivs"), "1");

  std::string victim = "cs-deploy-victim-" + std::to_string(getpid());
  std::string id = run_victim(victim);
  std::this_thread::sleep_for(6s);
  EXPECT_EQ(sh("podman stop -t 30 " + name + " >/dev/null"), 0);
  EXPECT_EQ(capture("podman inspect --format '{{.State.ExitCode}}' " + name), "0") << log();
  expect_recorded(id, victim);
  sh("podman rm -f -t 0 " + name + " >/dev/null 2>&1; podman rmi -f " + image + " >/dev/null 2>&1");
}

}  // namespace
}  // namespace capscope::runtime_test
