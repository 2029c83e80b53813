// record --pod / --selector / --all-containers against real podman containers:
// one profile per container, named by its identity, with the workload's checks
// and neither runc's start-up checks nor overlayfs' borrowed-credential ones;
// restarts merge into one profile; advise --pod prints a patch kubectl and
// kustomize take.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "helpers.h"

namespace capscope::runtime_test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class PodRecordRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_EQ(podman_problem(), "");
    unique_ = "cspod" + std::to_string(getpid());
    dir_ = fs::temp_directory_path() / unique_;
    fs::create_directories(dir_);
    ASSERT_EQ(service_.start(dir_), "");
  }
  void TearDown() override {
    sh("podman pod rm -f -t 0 " + unique_ + "-xwing >/dev/null 2>&1");
    for (const auto& n : containers_) sh("podman rm -f -t 0 " + n + " >/dev/null 2>&1");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // What the seed's xwing does, a second after it starts: read the kernel log
  // (CAP_SYSLOG, denied: podman does not grant it), chown (CAP_CHOWN) and raise
  // its priority (CAP_SYS_NICE, denied).
  static constexpr const char* kWork =
      "sleep 1; dmesg >/dev/null 2>&1; touch /tmp/f; chown 1 /tmp/f; nice -n -20 true; sleep 600";

  std::string kube_play() {
    fs::path yaml = dir_ / "pod.yaml";
    std::ofstream(yaml) << "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " << unique_
                        << "-xwing\n  namespace: empire\n  labels:\n    app: " << unique_
                        << "\n    class: xwing\nspec:\n  containers:\n  - name: spaceship\n"
                        << "    image: " << kBusyboxImage
                        << "\n    command: [\"/bin/sh\", \"-c\", \"" << kWork << "\"]\n";
    return capture("podman --runtime runc kube play " + yaml.string() + " 2>&1");
  }

  // A plain container doing the same, which no pod selection may pick up.
  void run_plain(const std::string& name, const std::string& script) {
    containers_.push_back(name);
    EXPECT_EQ(sh("podman --runtime runc run -d --network none --name " + name + " " +
                 kBusyboxImage + " sh -c '" + script + "' >/dev/null"),
              0);
  }

  // Starts `capscope record ARGS --duration D --db DB` and waits until it records.
  pid_t start_record(const std::vector<std::string>& args, const fs::path& db, const fs::path& err,
                     const std::string& duration) {
    std::vector<std::string> all = {capscope_binary(), "record"};
    all.insert(all.end(), args.begin(), args.end());
    all.insert(all.end(), {"--duration", duration, "--db", db.string(), "--podman-socket",
                           service_.socket(), "--report", (dir_ / "report.txt").string()});
    if (!test_backend().empty()) all.insert(all.end(), {"--backend", test_backend()});
    pid_t pid = spawn(all, err);
    for (int i = 0; i < 300 && read_file(err).find("recording") == std::string::npos; ++i)
      std::this_thread::sleep_for(100ms);
    return pid;
  }

  static int wait_exit(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }

  json export_profile(const fs::path& db, const std::string& name) {
    std::string text =
        capture(capscope_binary() + " profile export '" + name + "' --db " + db.string());
    return json::parse(text, nullptr, false);
  }

  // Audited uses of a capability in an exported profile, granted or denied.
  static uint64_t audited(const json& profile, const std::string& cap, bool granted) {
    uint64_t n = 0;
    for (const auto& u : profile.at("uses"))
      if (u.at("capability") == cap && u.at("audit") == true &&
          u.at("verdict") == (granted ? "granted" : "denied"))
        n += u.at("count").get<uint64_t>();
    return n;
  }

  std::string unique_;
  fs::path dir_;
  PodmanService service_;
  std::vector<std::string> containers_;
};

TEST_F(PodRecordRuntime, RecordPodKeepsOneProfilePerContainerAndOnlyTheWorkloadsChecks) {
  fs::path db = dir_ / "pod.db", err = dir_ / "pod.err";
  fs::path sel_db = dir_ / "sel.db", sel_err = dir_ / "sel.err";
  fs::path events = dir_ / "pod.json", trace_err = dir_ / "trace.err";
  std::vector<std::string> trace = {
      capscope_binary(), "trace",           "-o",    "json",
      "--output",        events.string(),   "--pod", unique_ + "-xwing",
      "--podman-socket", service_.socket(), "-t",    "12"};
  if (!test_backend().empty()) trace.insert(trace.end(), {"--backend", test_backend()});
  pid_t tracer = spawn(trace, trace_err);
  pid_t by_pod = start_record({"--pod", unique_ + "-xwing"}, db, err, "12s");
  pid_t by_selector =
      start_record({"-l", "app=" + unique_ + ",class in (xwing,ywing)"}, sel_db, sel_err, "12s");
  ASSERT_NE(read_file(err).find("recording"), std::string::npos) << read_file(err);
  ASSERT_NE(read_file(sel_err).find("recording"), std::string::npos) << read_file(sel_err);
  std::string played = kube_play();
  run_plain(unique_ + "-other", kWork);
  EXPECT_EQ(wait_exit(by_pod), 0) << read_file(err) << played;
  EXPECT_EQ(wait_exit(by_selector), 0) << read_file(sel_err);
  EXPECT_EQ(wait_exit(tracer), 0) << read_file(trace_err);

  // trace --pod: every event is the pod's, named as the seed's xwing events are.
  bool syslog_denied = false;
  size_t workload_events = 0;
  std::ifstream in(events);
  for (std::string line; std::getline(in, line);) {
    json e = json::parse(line);
    const json& pk = e.at("process_kprobe");
    ASSERT_TRUE(pk.at("process").contains("pod")) << line;
    const json& pod = pk.at("process").at("pod");
    EXPECT_EQ(pod.at("name"), unique_ + "-xwing") << line;
    EXPECT_EQ(pod.at("pod_labels").at("class"), "xwing") << line;
    if (pk.at("capscope").value("runtime_process", false)) continue;
    ++workload_events;
    EXPECT_EQ(pod.at("container").at("name"), "spaceship") << line;
    EXPECT_EQ(pod.at("container").at("image").at("name"), std::string(kBusyboxImage) + ":latest");
    // The process's pid in the pod's own pid namespace: small, not the host's.
    ASSERT_TRUE(pod.at("container").contains("pid")) << line;
    EXPECT_GE(pod.at("container").at("pid").get<int>(), 1) << line;
    EXPECT_LT(pod.at("container").at("pid").get<int>(), 100) << line;
    EXPECT_NE(pod.at("container").at("pid"), pk.at("process").at("pid")) << line;
    syslog_denied |= pk.at("args")[1].at("capability_arg").at("name") == "CAP_SYSLOG" &&
                     pk.at("capscope").at("verdict") == "denied";
  }
  EXPECT_GT(workload_events, 0U) << read_file(trace_err);
  EXPECT_TRUE(syslog_denied) << "dmesg's denied CAP_SYSLOG is not in the trace";

  // Named by identity: podman keeps no namespace, so WORKLOAD/CONTAINER.
  std::string name = unique_ + "-xwing/spaceship";
  json p = export_profile(db, name);
  ASSERT_TRUE(p.is_object()) << read_file(err);
  const json& c = p.at("container");
  EXPECT_EQ(c.at("runtime"), "podman");
  EXPECT_EQ(c.at("pod"), unique_ + "-xwing");
  EXPECT_EQ(c.at("workload"), unique_ + "-xwing");
  EXPECT_EQ(c.at("workload_kind"), "Pod");
  EXPECT_EQ(c.at("container"), "spaceship");
  EXPECT_EQ(c.at("image"), std::string(kBusyboxImage) + ":latest");
  std::string id = capture("podman inspect --format '{{.Id}}' " + unique_ + "-xwing-spaceship");
  ASSERT_EQ(c.at("instances").size(), 1U);
  EXPECT_EQ(c.at("instances")[0], id.substr(0, 12));

  // The workload's checks...
  EXPECT_GE(audited(p, "CAP_SYSLOG", false), 1U) << p.dump(1);
  EXPECT_GE(audited(p, "CAP_CHOWN", true), 1U) << p.dump(1);
  EXPECT_GE(audited(p, "CAP_SYS_NICE", false), 1U) << p.dump(1);
  // ...and not runc's (it sets up the container with SETPCAP, SETUID, SYS_ADMIN...
  // before it execs the entrypoint) nor overlayfs' copy-up as its mounter.
  for (const char* cap : {"CAP_SETPCAP", "CAP_SETUID", "CAP_SETGID", "CAP_DAC_OVERRIDE"}) {
    EXPECT_EQ(audited(p, cap, true), 0U) << cap << "\n" << p.dump(1);
    EXPECT_EQ(audited(p, cap, false), 0U) << cap;
  }
  EXPECT_EQ(audited(p, "CAP_SYS_ADMIN", true), 0U) << p.dump(1);
  std::string log = read_file(err);
  EXPECT_NE(log.find("by the container runtime's own processes"), std::string::npos) << log;
  EXPECT_NE(log.find("1 container recorded into 1 profile"), std::string::npos) << log;

  // Only the pod: the plain container doing the same is in no profile.
  std::string list = capture(capscope_binary() + " profile list --db " + db.string());
  EXPECT_EQ(list.find(unique_ + "-other"), std::string::npos) << list;

  // The label selector picks the same container, under the same name.
  json q = export_profile(sel_db, name);
  ASSERT_TRUE(q.is_object()) << read_file(sel_err);
  EXPECT_GE(audited(q, "CAP_CHOWN", true), 1U);
  std::string sel_list = capture(capscope_binary() + " profile list --db " + sel_db.string());
  EXPECT_EQ(sel_list.find(unique_ + "-other"), std::string::npos) << sel_list;

  // advise --pod: a strategic-merge patch for the pod, its container by name.
  std::string patch =
      capture(capscope_binary() + " advise --pod " + unique_ + "-xwing --db " + db.string());
  YAML::Node doc = YAML::Load(patch);
  EXPECT_EQ(doc["apiVersion"].as<std::string>(), "v1") << patch;
  EXPECT_EQ(doc["kind"].as<std::string>(), "Pod");
  EXPECT_EQ(doc["metadata"]["name"].as<std::string>(), unique_ + "-xwing");
  YAML::Node ctr = doc["spec"]["containers"][0];
  EXPECT_EQ(ctr["name"].as<std::string>(), "spaceship");
  auto caps = ctr["securityContext"]["capabilities"];
  EXPECT_EQ(caps["drop"][0].as<std::string>(), "ALL");
  std::vector<std::string> add = caps["add"].as<std::vector<std::string>>();
  EXPECT_EQ(add, (std::vector<std::string>{"CHOWN", "SYS_NICE", "SYSLOG"})) << patch;
}

TEST_F(PodRecordRuntime, AllContainersMergesRestartsOfOneContainerIntoOneProfile) {
  fs::path db = dir_ / "all.db", err = dir_ / "all.err";
  pid_t rec = start_record({"--all-containers"}, db, err, "14s");
  ASSERT_NE(read_file(err).find("recording"), std::string::npos) << read_file(err);
  std::string name = unique_ + "-web";
  std::string ids;
  for (int run = 0; run < 2; ++run) {
    run_plain(name, "sleep 1; touch /tmp/f; chown 1 /tmp/f");
    ids += capture("podman inspect --format '{{.Id}}' " + name).substr(0, 12) + " ";
    sh("podman wait " + name + " >/dev/null 2>&1; podman rm -f -t 0 " + name + " >/dev/null");
  }
  EXPECT_EQ(wait_exit(rec), 0) << read_file(err);
  json p = export_profile(db, name + "@" + kBusyboxImage + ":latest");
  ASSERT_TRUE(p.is_object()) << read_file(err)
                             << capture(capscope_binary() + " profile list --db " + db.string());
  EXPECT_EQ(p.at("container").at("instances").size(), 2U) << ids << p.at("container").dump();
  EXPECT_EQ(p.at("container").at("workload"), "");
  EXPECT_GE(audited(p, "CAP_CHOWN", true), 2U) << p.dump(1);
  EXPECT_EQ(audited(p, "CAP_SETPCAP", true), 0U) << p.dump(1);
}

TEST_F(PodRecordRuntime, BadSelectionsAreUsageErrorsNamingTheFix) {
  std::string base = capscope_binary() + " record --duration 1s --db " + (dir_ / "x.db").string();
  struct Case {
    std::string args, says;
  };
  for (const Case& c : std::vector<Case>{
           {"--pod xwing --no-runtimes", "need a container runtime"},
           {"--selector 'app in (x'", "--selector"},
           {"--all-containers --pod xwing", "leave out --pod"},
           {"--pod xwing --name web --podman-socket " + service_.socket(), "named by its identity"},
           {"--pod xwing --container abc", "record needs one of"}}) {
    std::string out = capture(base + " " + c.args + " 2>&1; echo \"exit=$?\"");
    EXPECT_NE(out.find("exit=2"), std::string::npos) << c.args << ": " << out;
    EXPECT_NE(out.find(c.says), std::string::npos) << c.args << ": " << out;
  }
  std::string out = capture(capscope_binary() + " advise --pod nowhere --db " +
                            (dir_ / "x.db").string() + " 2>&1; echo \"exit=$?\"");
  EXPECT_NE(out.find("exit=2"), std::string::npos) << out;
  EXPECT_NE(out.find("no container profile"), std::string::npos) << out;
}

}  // namespace
}  // namespace capscope::runtime_test
