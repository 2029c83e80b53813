// trace and record against real podman containers, named through podman's API
// socket (started by the test): events carry the container's name, image and
// labels; --container NAME selects exactly that container while another one does
// the same things; runc's own checks at start-up are marked, the workload's not.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

#include "helpers.h"

namespace capscope::runtime_test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class ContainerTraceRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_EQ(podman_problem(), "");
    dir_ = fs::temp_directory_path() / ("capscope-ctrace-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::all);
    ASSERT_EQ(service_.start(dir_), "");
    socket_ = service_.socket();
  }
  void TearDown() override {
    for (const auto& n : containers_) sh("podman rm -f -t 0 " + n + " >/dev/null 2>&1");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A container that waits for /x/go, then reads the kernel log, chowns a file and
  // tries to raise its priority.
  std::string start_container(const std::string& role, const std::string& work = "") {
    std::string name = "cs-" + role + "-" + std::to_string(getpid());
    std::string script =
        "while [ ! -e /x/go ]; do sleep 0.1; done; dmesg >/dev/null 2>&1; touch /tmp/f; " +
        (work.empty() ? "chown 1:1 /tmp/f; nice -n -5 true; sleep 1" : work);
    EXPECT_EQ(sh("podman --runtime runc run -d --name " + name + " --label tier=" + role +
                 " --network none -v " + dir_.string() + ":/x " + kBusyboxImage + " sh -c '" +
                 script + "' >/dev/null"),
              0);
    containers_.push_back(name);
    return name;
  }

  bool wait_for(const fs::path& err, const std::string& text) {
    for (int i = 0; i < 300; ++i) {
      if (read_file(err).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // Traces `target` by name as JSON into `out` while both containers, released by
  // /x/go, run to their end; the tracer's wait status, or -1 (and a failure) if it
  // never attached or could not be waited for.
  int trace_until_both_end(const std::string& target, const std::string& other, const fs::path& out,
                           const fs::path& err) {
    std::vector<std::string> args = {capscope_binary(), "trace",      "-o",          "json",
                                     "--output",        out.string(), "--container", target,
                                     "--podman-socket", socket_,      "-t",          "60"};
    if (!test_backend().empty()) args.insert(args.end(), {"--backend", test_backend()});
    pid_t tracer = spawn(args, err);
    if (!wait_for(err, "tracing with")) {
      ADD_FAILURE() << "the tracer did not attach: " << read_file(err);
      kill(tracer, SIGKILL);
      waitpid(tracer, nullptr, 0);
      return -1;
    }
    std::ofstream(dir_ / "go") << "go";
    sh("podman wait " + target + " " + other + " >/dev/null 2>&1");
    kill(tracer, SIGINT);
    int st = 0;
    if (waitpid(tracer, &st, 0) != tracer) {
      ADD_FAILURE() << "could not wait for the tracer";
      return -1;
    }
    return st;
  }

  std::vector<json> events(const fs::path& file) {
    std::vector<json> out;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(json::parse(line));
    return out;
  }

  fs::path dir_;
  PodmanService service_;
  std::string socket_;
  std::vector<std::string> containers_;
};

TEST_F(ContainerTraceRuntime, TraceByContainerNameSelectsExactlyItAndNamesIt) {
  std::string target = start_container("target");
  std::string other = start_container("other");
  fs::path out = dir_ / "events.json", err = dir_ / "trace.err";
  int st = trace_until_both_end(target, other, out, err);
  ASSERT_NE(st, -1);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(err);

  auto evs = events(out);
  ASSERT_FALSE(evs.empty()) << read_file(err);
  bool syslog_denied = false, chown_granted = false;
  std::string target_id = capture("podman inspect --format '{{.Id}}' " + target);
  for (const auto& e : evs) {
    const json& cs = e.at("process_kprobe").at("capscope");
    ASSERT_EQ(cs.at("container_id"), target_id) << "another container's check: " << e.dump();
    ASSERT_TRUE(cs.contains("container")) << "not named by the runtime: " << e.dump();
    EXPECT_EQ(cs.at("container").at("name"), target);
    EXPECT_EQ(cs.at("container").at("labels").at("tier"), "target");
    EXPECT_NE(cs.at("container").at("image").get<std::string>().find("capscope-busybox"),
              std::string::npos);
    EXPECT_EQ(cs.at("container_runtime"), "podman");
    std::string comm = cs.at("comm");
    std::string cap = e.at("process_kprobe").at("args")[1].at("capability_arg").at("name");
    bool runtime = cs.value("runtime_process", false);
    if (comm.starts_with("runc:[")) EXPECT_TRUE(runtime) << e.dump();
    if (comm == "dmesg" || comm == "chown") EXPECT_FALSE(runtime) << e.dump();
    syslog_denied |= comm == "dmesg" && cap == "CAP_SYSLOG" && cs.at("verdict") == "denied";
    chown_granted |= comm == "chown" && cap == "CAP_CHOWN" && cs.at("verdict") == "granted";
  }
  EXPECT_TRUE(syslog_denied) << "dmesg's denied CAP_SYSLOG is missing";
  EXPECT_TRUE(chown_granted) << "chown's CAP_CHOWN is missing";
  EXPECT_NE(read_file(err).find("not in the selected containers"), std::string::npos)
      << "the other container's checks were not counted: " << read_file(err);
}

// Once user space has decided a container is not selected, the kernel drops its
// checks: they no longer cross to be dropped one by one.
TEST_F(ContainerTraceRuntime, UnselectedContainersAreDroppedInTheKernelOnceDecided) {
  // A first check decides each container; two seconds later, 300 chowns.
  std::string burst = "sleep 2; i=0; while [ $i -lt 300 ]; do chown $i /tmp/f; i=$((i+1)); done";
  std::string target = start_container("ktarget", burst);
  std::string other = start_container("kother", burst);
  fs::path out = dir_ / "kernel.json", err = dir_ / "kernel.err";
  ASSERT_NE(trace_until_both_end(target, other, out, err), -1);

  // The selected container's burst is all there...
  size_t target_chowns = 0;
  for (const auto& e : events(out)) {
    const json& pk = e.at("process_kprobe");
    if (pk.at("args")[1].at("capability_arg").at("name") == "CAP_CHOWN" &&
        pk.at("capscope").at("syscall").at("name") == "chown")
      ++target_chowns;
  }
  EXPECT_GE(target_chowns, 300U) << read_file(err);
  // ...and of the other's, only what came before its decision reached user space.
  std::string summary = read_file(err);
  auto at = summary.find(" not in the selected containers (");
  ASSERT_NE(at, std::string::npos) << summary;
  auto start = summary.rfind(' ', at - 1) + 1;
  uint64_t not_selected = std::stoull(summary.substr(start, at - start));
  uint64_t excluded = std::stoull(summary.substr(at + 33));
  std::cout << "the other container's checks that reached user space: " << not_selected
            << "; cgroups excluded in the kernel: " << excluded << "; target's chowns "
            << target_chowns << "\n";
  EXPECT_LT(not_selected, 150U) << summary;
  EXPECT_GE(excluded, 1U) << summary;
}

TEST_F(ContainerTraceRuntime, CheckReportsTheRuntime) {
  std::string text = capture(capscope_binary() + " check --no-load --podman-socket " + socket_);
  EXPECT_NE(text.find("runtime podman"), std::string::npos) << text;
  EXPECT_NE(text.find("answers at " + socket_), std::string::npos) << text;
  std::string dead = capture(capscope_binary() + " check --no-load --docker-socket " +
                             (dir_ / "podman-service.err").string() + " 2>&1");
  EXPECT_NE(dead.find("runtime docker"), std::string::npos) << dead;
  EXPECT_NE(dead.find("not a socket"), std::string::npos) << dead;
}

TEST_F(ContainerTraceRuntime, RecordByContainerName) {
  std::string target = start_container("rec");
  std::string db = (dir_ / "profiles.db").string();
  fs::path report = dir_ / "report.json", err = dir_ / "record.err";
  std::vector<std::string> args = {
      capscope_binary(), "record",        "--db", db,     "--container",     target,
      "--report",        report.string(), "-o",   "json", "--podman-socket", socket_};
  if (!test_backend().empty()) args.insert(args.end(), {"--backend", test_backend()});
  pid_t recorder = spawn(args, err);
  ASSERT_TRUE(wait_for(err, "recording")) << read_file(err);
  std::ofstream(dir_ / "go") << "go";
  int st = 0;
  ASSERT_EQ(waitpid(recorder, &st, 0), recorder);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(err);
  json r = json::parse(read_file(report));
  EXPECT_EQ(r.at("profile"), target) << "the profile is named after the container";
  EXPECT_TRUE(r.at("evidence").contains("CHOWN")) << r.dump();
  // A name no container has is refused with the fix.
  std::string bad = capture(capscope_binary() + " record --db " + db +
                            " --container no-such-ctr --podman-socket " + socket_ + " 2>&1");
  EXPECT_NE(bad.find("--container no-such-ctr: no running container"), std::string::npos) << bad;
}

}  // namespace
}  // namespace capscope::runtime_test
