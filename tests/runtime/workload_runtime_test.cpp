// Real workloads under `capscope record --verify`: Debian's nginx (a root
// master that binds a low port and switches its workers to www-data), and a
// program of ours that needs exactly a known set, run as root and as a
// non-root user holding ambient capabilities. Each asserts the exact advice,
// then that the workload works confined to it and that each single drop breaks it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "record_fixture.h"

using namespace capscope::runtime_test;

namespace {

// A TCP port below 1024 that nothing listens on (binding it needs
// CAP_NET_BIND_SERVICE); 80 where free.
int free_low_port() {
  for (int port : {80, 81, 8, 800, 999}) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  return -1;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// --verify's lines say each advised capability, taken away alone, breaks the run.
void expect_each_drop_breaks(const std::string& err, const std::vector<std::string>& caps) {
  EXPECT_TRUE(contains(err, "the advice holds")) << err;
  for (const auto& cap : caps) EXPECT_TRUE(contains(err, "without " + cap + ": breaks")) << err;
}

class NginxRuntime : public RecordRuntime {};

// The advice for nginx as Debian runs it: bind port 80 (NET_BIND_SERVICE),
// chown its temporary directories (CHOWN) and switch the worker to www-data
// (SETGID for setgroups and setgid, SETUID). Confined to those four it serves
// the page; without any one of them it does not.
TEST_F(NginxRuntime, AdviceIsExactAndHoldsConfined) {
  if (!fs::exists("/usr/sbin/nginx"))
    GTEST_SKIP()
        << "Debian's nginx is not installed (scripts/install-deps.sh installs nginx-light)";
  int port = free_low_port();
  ASSERT_GT(port, 0) << "no free port below 1024 on 127.0.0.1";
  fs::path prefix = dir_ / "nginx";
  fs::create_directories(prefix);
  std::string serve = std::string(CAPSCOPE_SOURCE_DIR) + "/tests/workloads/nginx/serve.sh";
  int rc = record("nginx", serve + " " + prefix.string() + " " + std::to_string(port), "--verify");
  ASSERT_EQ(rc, 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("add"), json::array({"CHOWN", "SETGID", "SETUID", "NET_BIND_SERVICE"}))
      << r.dump();
  std::string bind = r.at("evidence").at("NET_BIND_SERVICE").at("evidence");
  EXPECT_TRUE(contains(bind, "in bind by /usr/sbin/nginx")) << bind;
  std::string setuid = r.at("evidence").at("SETUID").at("evidence");
  EXPECT_TRUE(contains(setuid, "in setuid by /usr/sbin/nginx")) << setuid;
  expect_each_drop_breaks(stderr_text(), {"CHOWN", "SETGID", "SETUID", "NET_BIND_SERVICE"});
}

class NeedsRuntime : public RecordRuntime {
 protected:
  // cs_needs FILE PORT: a root-owned file to chown, a low port to bind.
  std::string needs_command(const std::string& program = helpers_dir() + "/cs_needs") {
    fs::path target = dir_ / "target";
    std::ofstream(target) << "x";
    int port = free_low_port();
    EXPECT_GT(port, 0) << "no free port below 1024 on 127.0.0.1";
    return program + " " + target.string() + " " + std::to_string(port);
  }
  // A copy of cs_needs in the test's directory, to give privilege of its own.
  std::string needs_copy() {
    fs::path copy = dir_ / "cs_needs_copy";
    fs::copy_file(helpers_dir() + "/cs_needs", copy);
    return copy.string();
  }
  json exported(const std::string& name) {
    return json::parse(capture(capscope_binary() + " profile export " + name + " --db " + db_));
  }
};

TEST_F(NeedsRuntime, AsRootItNeedsExactlyItsThreeCapabilities) {
  ASSERT_EQ(record("needs", needs_command(), "--verify"), 0) << stderr_text();
  EXPECT_EQ(report().at("add"), json::array({"CHOWN", "NET_BIND_SERVICE", "SYS_NICE"}))
      << report().dump();
  std::string err = stderr_text();
  expect_each_drop_breaks(err, {"CHOWN", "NET_BIND_SERVICE", "SYS_NICE"});
  EXPECT_TRUE(contains(err, "(bounding set, as root)")) << err;
  // The exit status names what failed: 1 chown, 2 bind, 4 nice.
  EXPECT_TRUE(contains(err, "without SYS_NICE: breaks: exit 4 (was 0)")) << err;
  // The report comes after the confined runs and says it was verified.
  EXPECT_EQ(report().value("verified", ""),
            "verified by record --verify: confined to CHOWN,NET_BIND_SERVICE,SYS_NICE (bounding "
            "set, as root) it ran as before; without any one of CHOWN, NET_BIND_SERVICE, SYS_NICE "
            "it breaks");
}

// As nobody, the capabilities come from the ambient set: the same three, none
// of capscope's own switch to the user (setgroups, setresuid, capset) counted.
TEST_F(NeedsRuntime, AsAUserItNeedsTheSameThreeAsAmbientCapabilities) {
  ASSERT_EQ(record("needs", needs_command(), "--user nobody --verify"), 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("add"), json::array({"CHOWN", "NET_BIND_SERVICE", "SYS_NICE"})) << r.dump();
  std::string err = stderr_text();
  EXPECT_TRUE(contains(err, "(bounding and ambient sets, as user nobody)")) << err;
  expect_each_drop_breaks(err, {"CHOWN", "NET_BIND_SERVICE", "SYS_NICE"});
  EXPECT_TRUE(contains(err, "without CHOWN: breaks: exit 1 (was 0)")) << err;
  std::string systemd = advise("needs", "systemd");
  EXPECT_TRUE(contains(systemd, "AmbientCapabilities=CAP_CHOWN CAP_NET_BIND_SERVICE CAP_SYS_NICE"))
      << systemd;
}

// The PATH search happens before the command joins the recorded cgroup: a
// directory nobody cannot read, searched first, costs no DAC_READ_SEARCH of its.
TEST_F(NeedsRuntime, TrueAsAUserNeedsNoCapabilitiesWhateverPathHolds) {
  fs::path private_dir = dir_ / "private";
  fs::create_directories(private_dir);
  fs::permissions(private_dir, fs::perms::owner_all);
  std::string path = "PATH=" + private_dir.string() + ":/usr/bin:/bin ";
  ASSERT_EQ(sh(path + capscope_binary() + " record --db " + db_ + " --name true -o json --report " +
               report_file() + " --user nobody -- true 2>" + (dir_ / "stderr").string()),
            0)
      << stderr_text();
  EXPECT_TRUE(report().at("add").empty()) << report().dump();
}

TEST_F(NeedsRuntime, AnUnknownUserIsRefusedBeforeAnythingRuns) {
  EXPECT_EQ(record("needs", "/bin/true", "--user capscope-no-such-user"), 2);
  EXPECT_TRUE(contains(stderr_text(), "--user capscope-no-such-user: no such user"))
      << stderr_text();
  EXPECT_EQ(record("needs", "/bin/true", "--user 0"), 2);
  EXPECT_TRUE(contains(stderr_text(), "--user 0: that is root")) << stderr_text();
}

// The three capabilities as file capabilities, run as nobody, who holds them
// ambient already: the exec keeps them (it swaps the ambient set for the
// file's) and raises nothing, so no_new_privs would not stop it. The profile
// keeps the binary and its file capabilities; as a non-root workload it still
// keeps escalation allowed, where file capabilities are its only way.
TEST_F(NeedsRuntime, FileCapabilitiesAreRecordedWithTheBinary) {
  std::string copy = needs_copy();
  ASSERT_EQ(sh("setcap cap_chown,cap_net_bind_service,cap_sys_nice+ep " + copy), 0);
  ASSERT_EQ(record("fcaps", needs_command(copy), "--user nobody"), 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("add"), json::array({"CHOWN", "NET_BIND_SERVICE", "SYS_NICE"})) << r.dump();
  EXPECT_EQ(r.at("allow_privilege_escalation"), true) << r.dump();
  EXPECT_TRUE(contains(r.at("non_root_plan").dump(), copy + " already carries")) << r.dump();
  json p = exported("fcaps");
  ASSERT_EQ(p.at("privileged_binaries").size(), 1u) << p.dump();
  json b = p.at("privileged_binaries")[0];
  EXPECT_EQ(b.at("path"), copy);
  EXPECT_EQ(b.at("file_capabilities").at("permitted"),
            json::array({"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYS_NICE"}));
  EXPECT_EQ(b.at("execs"), 1);
  EXPECT_EQ(b.at("raised"), 0);
}

// The same binary from a shell that holds nothing (setpriv empties the
// inheritable and ambient sets before the shell's exec): now its exec raises
// the capabilities, so no_new_privs would break it and the advice says so.
TEST_F(NeedsRuntime, AnExecThatGainsFileCapabilitiesKeepsEscalationAllowed) {
  std::string copy = needs_copy();
  ASSERT_EQ(sh("setcap cap_chown,cap_net_bind_service,cap_sys_nice+ep " + copy), 0);
  std::string cmd =
      "setpriv --inh-caps=-all --ambient-caps=-all -- sh -c 'exec " + needs_command(copy) + "'";
  ASSERT_EQ(record("gain", cmd, "--user nobody"), 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("allow_privilege_escalation"), true) << r.dump();
  std::string why = r.at("privilege_escalation");
  EXPECT_TRUE(contains(why, copy + " raised its privileges through exec once (file capabilities "
                                   "cap_chown,cap_net_bind_service,cap_sys_nice+ep)"))
      << why;
  EXPECT_EQ(exported("gain").at("privileged_binaries").at(0).at("raised"), 1);
}

// Set-user-ID root, run as nobody: the exec raises the euid to 0.
TEST_F(NeedsRuntime, SetUserIdExecIsRecordedAndKeepsEscalationAllowed) {
  std::string copy = needs_copy();
  ASSERT_EQ(chmod(copy.c_str(), 04755), 0);
  ASSERT_EQ(record("suid", needs_command(copy), "--user nobody"), 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("allow_privilege_escalation"), true) << r.dump();
  std::string why = r.at("privilege_escalation");
  EXPECT_TRUE(contains(why, copy + " raised its privileges through exec once (set-user-ID uid 0)"))
      << why;
  json b = exported("suid").at("privileged_binaries").at(0);
  EXPECT_EQ(b.at("setuid"), true);
  EXPECT_EQ(b.at("owner_uid"), 0);
}

// The same program without privilege of its own: nothing raised, so
// no_new_privs is safe.
TEST_F(NeedsRuntime, WithoutPrivilegedBinariesEscalationCanBeForbidden) {
  ASSERT_EQ(record("plain", needs_command()), 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("allow_privilege_escalation"), false) << r.dump();
  EXPECT_TRUE(exported("plain").at("privileged_binaries").empty());
}

class ContainerRecordRuntime : public RecordRuntime {};

// A podman container recorded by an id prefix, from outside: its chown is in
// the profile, and the recording ends by itself when the container stops.
TEST_F(ContainerRecordRuntime, ARunningContainerIsRecordedByIdUntilItStops) {
  ASSERT_EQ(podman_problem(), "");
  std::string name = "capscope-record-" + std::to_string(getpid());
  std::string script = "while [ ! -e /x/go ]; do sleep 0.1; done; touch /tmp/f; chown 1:1 /tmp/f";
  ASSERT_EQ(sh("podman --runtime runc run -d --name " + name + " --network none -v " +
               dir_.string() + ":/x " + kBusyboxImage + " sh -c '" + script + "' >/dev/null"),
            0);
  std::string id = capture("podman inspect --format '{{.Id}}' " + name);
  ASSERT_GE(id.size(), 12u);
  std::vector<std::string> args = {
      capscope_binary(), "record",   "--db",        db_,  "--container",
      id.substr(0, 12),  "--report", report_file(), "-o", "json"};
  if (!test_backend().empty()) args.insert(args.end(), {"--backend", test_backend()});
  pid_t recorder = spawn(args, dir_ / "stderr");
  bool recording = wait_recording();
  std::ofstream(dir_ / "go") << "go";
  int st = 0;
  ASSERT_EQ(waitpid(recorder, &st, 0), recorder);
  sh("podman rm -f " + name + " >/dev/null 2>&1");
  ASSERT_TRUE(recording) << stderr_text();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << stderr_text();
  json r = report();
  EXPECT_EQ(r.at("profile"), id.substr(0, 12));
  ASSERT_TRUE(r.at("evidence").contains("CHOWN")) << r.dump();
  std::string chown = r.at("evidence").at("CHOWN").at("evidence");
  EXPECT_TRUE(contains(chown, "in chown")) << chown;
}

TEST_F(ContainerRecordRuntime, AnUnknownContainerIsRefused) {
  EXPECT_EQ(sh(capscope_binary() + " record --db " + db_ + " --container 0123456789ab 2>" +
               (dir_ / "stderr").string()),
            1);
  EXPECT_TRUE(contains(stderr_text(), "--container 0123456789ab: no running container"))
      << stderr_text();
  // A name needs a runtime to ask: with none (no socket here) it is a usage error.
  EXPECT_EQ(sh(capscope_binary() + " record --db " + db_ + " --no-runtimes --container web 2>" +
               (dir_ / "stderr").string()),
            2);
  EXPECT_TRUE(contains(stderr_text(), "give the container's id")) << stderr_text();
}

}  // namespace
