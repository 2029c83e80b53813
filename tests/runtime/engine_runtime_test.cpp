// EngineClient against the real podman service: a kube-played pod (labels in the
// style of Tetragon's xwing pod) and a plain container, read through podman's
// libpod API and through its Docker-compatible API on the same socket.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "enrich/runtime/engine_client.h"
#include "helpers.h"

namespace capscope::runtime_test {
namespace {

using std::chrono::milliseconds;

// kube play needs an infra image; podman builds its own from catatonit, which
// Debian's podman only recommends. This one is busybox sleeping.
constexpr const char* kPauseImage = "localhost/capscope-engine-pause";

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "CAP_NET_ADMIN" and "NET_ADMIN" alike.
bool has_cap(const std::vector<std::string>& caps, const std::string& name) {
  return std::any_of(caps.begin(), caps.end(),
                     [&](const std::string& c) { return c == name || c == "CAP_" + name; });
}

// Bit `cap` of the CapEff line of /proc/PID/status: what the kernel gave the process.
bool kernel_effective(uint32_t pid, int cap) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("CapEff:\t");
  if (at == std::string::npos) return false;
  uint64_t mask = std::stoull(status.substr(at + 8, 16), nullptr, 16);
  return ((mask >> cap) & 1) != 0;
}

class EngineRuntime : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      skip_ = "the podman service needs root";
      return;
    }
    skip_ = podman_problem();
    if (!skip_.empty()) return;
    error_ = start_service();
    if (error_.empty()) error_ = start_containers();
  }

  static void TearDownTestSuite() {
    if (!unique_.empty()) {
      // -t 0: sleep as pid 1 ignores SIGTERM, and podman would wait 10 s for it.
      sh("podman pod rm -f -t 0 " + unique_ + "-xwing >/dev/null 2>&1");
      sh("podman rm -f -t 0 " + unique_ + "-plain >/dev/null 2>&1");
    }
    if (service_pid_ > 0) {
      kill(service_pid_, SIGTERM);
      waitpid(service_pid_, nullptr, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
    if (!socket_.empty()) fs::remove(socket_);
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_EQ(error_, "");
  }

  static EngineClient client(EngineFlavor flavor) {
    EngineClientOptions o;
    o.flavor = flavor;
    o.socket_path = socket_;
    o.timeout = milliseconds(5000);  // a first libpod call can take a while on a busy machine
    return EngineClient(o);
  }

  // Checks what both APIs report alike for a container podman knows as `name`.
  static void expect_common(const ContainerInfo& i, const std::string& id, uint32_t pid,
                            int64_t started_after, int64_t started_before) {
    EXPECT_EQ(i.id, id);
    EXPECT_EQ(i.image, std::string(kBusyboxImage) + ":latest");
    EXPECT_FALSE(i.image_id.empty());
    EXPECT_EQ(i.pid, pid);
    EXPECT_TRUE(i.running);
    EXPECT_GE(i.started_at_ns, started_after);
    EXPECT_LE(i.started_at_ns, started_before);
    EXPECT_FALSE(i.privileged);
    // The pid is the container's: its cgroup carries the id.
    EXPECT_NE(read_file("/proc/" + std::to_string(i.pid) + "/cgroup").find(id), std::string::npos);
  }

  static std::string start_service();
  static std::string start_containers();

  static inline std::string skip_, error_, unique_, socket_, kube_id_, plain_id_, pod_id_;
  static inline uint32_t kube_pid_ = 0, plain_pid_ = 0;
  static inline int64_t kube_after_ = 0, kube_before_ = 0, plain_after_ = 0, plain_before_ = 0;
  static inline pid_t service_pid_ = -1;
  static inline fs::path dir_;
};

std::string EngineRuntime::start_service() {
  unique_ = "cs-engine-" + std::to_string(getpid());
  dir_ = fs::temp_directory_path() / unique_;
  fs::create_directories(dir_);
  socket_ = "/tmp/" + unique_ + ".sock";
  std::string podman = capture("command -v podman");
  service_pid_ =
      spawn({podman, "system", "service", "--time=0", "unix://" + socket_}, dir_ / "service.err");
  auto c = client(EngineFlavor::Podman);
  for (int i = 0; i < 100; i++) {
    try {
      c.version();
      return "";
    } catch (const RuntimeError&) {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  return "podman system service did not answer on " + socket_ + ": " +
         read_file(dir_ / "service.err");
}

std::string EngineRuntime::start_containers() {
  std::string build_pause = "podman image exists " + std::string(kPauseImage) +
                            " || { d=$(mktemp -d) && mkdir $d/bin && cp /bin/busybox $d/bin/ && "
                            "ln -s busybox $d/bin/sleep && tar -C $d -c . | podman import --change "
                            "'ENTRYPOINT [\"/bin/sleep\",\"2147483647\"]' - " +
                            kPauseImage + " >/dev/null; rc=$?; rm -rf $d; exit $rc; }";
  if (sh(build_pause) != 0) return "could not build " + std::string(kPauseImage);
  // CONTAINERS_CONF replaces /etc/containers/containers.conf: repeat what it says here.
  std::ofstream(dir_ / "containers.conf") << "[containers]\ndefault_ulimits = []\n[engine]\n"
                                          << "infra_image = \"" << kPauseImage << "\"\n";
  std::ofstream(dir_ / "pod.yaml") << "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " << unique_
                                   << "-xwing\n  namespace: empire\n  labels:\n"
                                   << "    app: xwing\n    class: xwing\n    org: alliance\n"
                                   << "  annotations:\n    capscope.test/fleet: rogue\n"
                                   << "spec:\n  containers:\n  - name: spaceship\n"
                                   << "    image: " << kBusyboxImage << "\n"
                                   << "    command: [\"/bin/sleep\", \"600\"]\n"
                                   << "    securityContext:\n      capabilities:\n"
                                   << "        add: [\"NET_ADMIN\"]\n        drop: [\"CHOWN\"]\n";
  kube_after_ = wall_ns();
  std::string out =
      capture("CONTAINERS_CONF=" + (dir_ / "containers.conf").string() +
              " podman --runtime runc kube play " + (dir_ / "pod.yaml").string() + " 2>&1");
  kube_before_ = wall_ns();
  kube_id_ = capture("podman inspect --format '{{.Id}}' " + unique_ + "-xwing-spaceship");
  if (kube_id_.size() != 64) return "podman kube play failed: " + out;
  pod_id_ = capture("podman pod inspect --format '{{.Id}}' " + unique_ + "-xwing");
  kube_pid_ = std::stoul(capture("podman inspect --format '{{.State.Pid}}' " + kube_id_));
  plain_after_ = wall_ns();
  plain_id_ = capture("podman --runtime runc run -d --name " + unique_ +
                      "-plain --label tier=test --label app=plain --cap-add SYS_PTRACE "
                      "--cap-drop NET_RAW " +
                      kBusyboxImage + " sleep 600 2>&1");
  plain_before_ = wall_ns();
  if (plain_id_.size() != 64) return "podman run failed: " + plain_id_;
  plain_pid_ = std::stoul(capture("podman inspect --format '{{.State.Pid}}' " + plain_id_));
  return "";
}

const Labels kXwing{{"app", "xwing"}, {"class", "xwing"}, {"org", "alliance"}};

TEST_F(EngineRuntime, LibpodKubePlayedPod) {
  ContainerInfo i = client(EngineFlavor::Podman).inspect(kube_id_);
  expect_common(i, kube_id_, kube_pid_, kube_after_, kube_before_);
  EXPECT_EQ(i.runtime, "podman");
  EXPECT_EQ(i.name, "spaceship");
  EXPECT_EQ(i.labels, kXwing);
  EXPECT_EQ(i.pod_id, pod_id_);
  EXPECT_EQ(i.pod_name, unique_ + "-xwing");
  EXPECT_EQ(i.pod_namespace, "");  // podman 4.3.1 keeps the manifest's namespace nowhere
  EXPECT_EQ(i.pod_labels, kXwing);
  EXPECT_EQ(i.pod_annotations, (Labels{{"capscope.test/fleet", "rogue"}}));
  EXPECT_TRUE(has_cap(i.cap_add, "NET_ADMIN"));
  EXPECT_TRUE(has_cap(i.cap_drop, "CHOWN"));
  ASSERT_TRUE(i.effective_caps);
  EXPECT_TRUE(has_cap(*i.effective_caps, "NET_ADMIN"));
  EXPECT_FALSE(has_cap(*i.effective_caps, "CHOWN"));
  EXPECT_TRUE(kernel_effective(i.pid, 12));  // CAP_NET_ADMIN
  EXPECT_FALSE(kernel_effective(i.pid, 0));  // CAP_CHOWN
}

TEST_F(EngineRuntime, DockerCompatKubePlayedPod) {
  ContainerInfo i = client(EngineFlavor::Docker).inspect(kube_id_);
  expect_common(i, kube_id_, kube_pid_, kube_after_, kube_before_);
  EXPECT_EQ(i.runtime, "docker");
  // Docker's API has no pods: podman's own container name, and no pod.
  EXPECT_EQ(i.name, unique_ + "-xwing-spaceship");
  EXPECT_EQ(i.labels, kXwing);
  EXPECT_EQ(i.pod_name, "");
  EXPECT_TRUE(i.pod_labels.empty());
  EXPECT_TRUE(has_cap(i.cap_add, "NET_ADMIN"));
  EXPECT_TRUE(has_cap(i.cap_drop, "CHOWN"));
  EXPECT_FALSE(i.effective_caps);
}

TEST_F(EngineRuntime, PlainContainerBothFlavours) {
  Labels want{{"tier", "test"}, {"app", "plain"}};
  for (EngineFlavor f : {EngineFlavor::Podman, EngineFlavor::Docker}) {
    ContainerInfo i = client(f).inspect(plain_id_);
    expect_common(i, plain_id_, plain_pid_, plain_after_, plain_before_);
    EXPECT_EQ(i.name, unique_ + "-plain");
    EXPECT_EQ(i.labels, want);
    EXPECT_EQ(i.pod_id, "");
    EXPECT_EQ(i.pod_name, "");
    EXPECT_TRUE(has_cap(i.cap_add, "SYS_PTRACE"));
    EXPECT_TRUE(has_cap(i.cap_drop, "NET_RAW"));
    EXPECT_EQ(i.effective_caps.has_value(), f == EngineFlavor::Podman);
    if (i.effective_caps) {
      EXPECT_TRUE(has_cap(*i.effective_caps, "SYS_PTRACE"));
      EXPECT_FALSE(has_cap(*i.effective_caps, "NET_RAW"));
    }
  }
  EXPECT_TRUE(kernel_effective(plain_pid_, 19));   // CAP_SYS_PTRACE
  EXPECT_FALSE(kernel_effective(plain_pid_, 13));  // CAP_NET_RAW
}

TEST_F(EngineRuntime, ListRunningAndVersion) {
  std::string want = capture("podman version --format '{{.Client.Version}}'");
  for (EngineFlavor f : {EngineFlavor::Podman, EngineFlavor::Docker}) {
    auto c = client(f);
    EXPECT_EQ(c.version(), want);
    std::vector<std::string> ids = c.list_running();
    EXPECT_NE(std::find(ids.begin(), ids.end(), kube_id_), ids.end());
    EXPECT_NE(std::find(ids.begin(), ids.end(), plain_id_), ids.end());
  }
}

TEST_F(EngineRuntime, UnknownIdIsNotFound) {
  for (EngineFlavor f : {EngineFlavor::Podman, EngineFlavor::Docker}) {
    try {
      (void)client(f).inspect(std::string(64, '0'));
      ADD_FAILURE() << "no error";
    } catch (const RuntimeError& e) {
      EXPECT_EQ(e.kind(), RuntimeError::Kind::NotFound) << e.what();
    }
  }
}

}  // namespace
}  // namespace capscope::runtime_test
