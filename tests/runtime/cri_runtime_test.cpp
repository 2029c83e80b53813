// Runtime tests of CriClient against a real containerd (Debian's, with its CRI
// plugin), started privately by tests/runtime/containerd-env.sh: a pod sandbox
// and a container are created through the CRI stubs, the way the kubelet does,
// then read back through CriClient; the container's cgroup is checked against
// classify_cgroup. Errors: an unknown id, a missing socket, a file that is not
// a socket, and a socket that never answers, each within the deadline.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cri/api.grpc.pb.h"
#include "enrich/cgroup_path.h"
#include "enrich/runtime/cri_client.h"
#include "helpers.h"

using namespace capscope;
using namespace capscope::runtime_test;
namespace v1 = runtime::v1;
using std::chrono::milliseconds;

namespace {

constexpr const char* kImage = "localhost/capscope-busybox:latest";
constexpr const char* kPodName = "rebel-base";
constexpr const char* kPodNamespace = "yavin";

std::string env_script() {
  return std::string(CAPSCOPE_SOURCE_DIR) + "/tests/runtime/containerd-env.sh";
}

std::chrono::system_clock::time_point in(std::chrono::seconds s) {
  return std::chrono::system_clock::now() + s;
}

class CriRuntime : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      skip_ = "the CRI tests need root";
    } else if (sh("command -v containerd >/dev/null && command -v ctr >/dev/null") != 0) {
      skip_ = "containerd is not installed (scripts/install-deps.sh installs it)";
    }
    if (!skip_.empty()) return;
    dir_ = capture("mktemp -d /tmp/capscope-cri.XXXXXX");
    socket_ = capture("bash " + env_script() + " start " + dir_);
    if (socket_.empty() || !fs::exists(socket_)) {
      error_ =
          "containerd-env.sh start failed; log: " + read_file(fs::path(dir_) / "containerd.log");
      return;
    }
    pod_uid_ = "7a1e5c3b-0d2f-4e6a-9b8c-" + std::to_string(1000000000000 + getpid());
    error_ = create_pod();
  }

  static void TearDownTestSuite() {
    if (!pod_id_.empty()) {
      auto stub = v1::RuntimeService::NewStub(channel());
      grpc::ClientContext stop_ctx, remove_ctx;
      stop_ctx.set_deadline(in(std::chrono::seconds(20)));
      remove_ctx.set_deadline(in(std::chrono::seconds(20)));
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(pod_id_);
      v1::StopPodSandboxResponse stopped;
      stub->StopPodSandbox(&stop_ctx, stop, &stopped);
      v1::RemovePodSandboxRequest remove;
      remove.set_pod_sandbox_id(pod_id_);
      v1::RemovePodSandboxResponse removed;
      stub->RemovePodSandbox(&remove_ctx, remove, &removed);
    }
    if (!dir_.empty()) sh("bash " + env_script() + " stop " + dir_);
    remove_pod_cgroups();
  }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  static std::shared_ptr<grpc::Channel> channel() {
    return grpc::CreateChannel("unix://" + socket_, grpc::InsecureChannelCredentials());
  }

  // What the kubelet's cgroupfs driver gives a BestEffort pod.
  static std::string cgroup_parent() { return "/kubepods/besteffort/pod" + pod_uid_; }

  static v1::PodSandboxConfig sandbox_config() {
    v1::PodSandboxConfig config;
    config.mutable_metadata()->set_name(kPodName);
    config.mutable_metadata()->set_namespace_(kPodNamespace);
    config.mutable_metadata()->set_uid(pod_uid_);
    auto& labels = *config.mutable_labels();
    labels["app"] = "xwing";
    labels["class"] = "xwing";
    labels["org"] = "alliance";
    // The kubelet labels every sandbox and container so; containerd adds none of its own.
    labels["io.kubernetes.pod.name"] = kPodName;
    labels["io.kubernetes.pod.namespace"] = kPodNamespace;
    labels["io.kubernetes.pod.uid"] = pod_uid_;
    (*config.mutable_annotations())["capscope.test/squadron"] = "red";
    config.mutable_linux()->set_cgroup_parent(cgroup_parent());
    // Host network: no CNI plugin needed.
    config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        v1::NODE);
    return config;
  }

  static std::string create_pod() {
    note_existing_cgroups();
    auto stub = v1::RuntimeService::NewStub(channel());
    v1::PodSandboxConfig sandbox = sandbox_config();
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(in(std::chrono::seconds(30)));
      v1::RunPodSandboxRequest req;
      *req.mutable_config() = sandbox;
      v1::RunPodSandboxResponse resp;
      auto s = stub->RunPodSandbox(&ctx, req, &resp);
      if (!s.ok()) return "RunPodSandbox: " + s.error_message();
      pod_id_ = resp.pod_sandbox_id();
    }
    std::string error;
    container_id_ = create_container("spaceship", {"/bin/sleep", "300"}, &error);
    return container_id_.empty() ? error : start_container(container_id_);
  }

  // A container of the pod, as the kubelet creates one: its id, or empty and *error.
  static std::string create_container(const std::string& name,
                                      const std::vector<std::string>& command, std::string* error) {
    auto stub = v1::RuntimeService::NewStub(channel());
    v1::PodSandboxConfig sandbox = sandbox_config();
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(30)));
    v1::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id_);
    *req.mutable_sandbox_config() = sandbox;
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(kImage);
    c->add_command(command.front());
    for (size_t i = 1; i < command.size(); ++i) c->add_args(command[i]);
    auto& labels = *c->mutable_labels();
    labels = sandbox.labels();
    labels.erase("app");
    labels.erase("class");
    labels.erase("org");
    labels["io.kubernetes.container.name"] = name;
    labels["role"] = "fighter";
    v1::CreateContainerResponse resp;
    auto s = stub->CreateContainer(&ctx, req, &resp);
    if (!s.ok()) *error = "CreateContainer: " + s.error_message();
    return s.ok() ? resp.container_id() : "";
  }

  static std::string start_container(const std::string& id) {
    auto stub = v1::RuntimeService::NewStub(channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(in(std::chrono::seconds(30)));
    v1::StartContainerRequest req;
    req.set_container_id(id);
    v1::StartContainerResponse resp;
    auto s = stub->StartContainer(&ctx, req, &resp);
    return s.ok() ? "" : "StartContainer: " + s.error_message();
  }

  // Hierarchies where the test's runc makes /kubepods; the test removes only
  // the kubepods (and besteffort) cgroups that were not there before it.
  static std::vector<fs::path> hierarchies() {
    std::vector<fs::path> roots{"/sys/fs/cgroup"};
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec))
      if (e.is_directory() && !e.is_symlink()) roots.push_back(e.path());
    return roots;
  }
  static void note_existing_cgroups() {
    for (const auto& root : hierarchies()) {
      if (fs::exists(root / "kubepods")) had_kubepods_.push_back(root);
      if (fs::exists(root / "kubepods/besteffort")) had_besteffort_.push_back(root);
    }
  }
  static void remove_pod_cgroups() {
    if (pod_uid_.empty()) return;
    auto had = [](const std::vector<fs::path>& v, const fs::path& p) {
      return std::find(v.begin(), v.end(), p) != v.end();
    };
    for (const auto& root : hierarchies()) {
      rmdir((root / ("kubepods/besteffort/pod" + pod_uid_)).c_str());
      if (!had(had_besteffort_, root)) rmdir((root / "kubepods/besteffort").c_str());
      if (!had(had_kubepods_, root)) rmdir((root / "kubepods").c_str());
    }
  }

  static inline std::string skip_, error_, dir_, socket_, pod_uid_, pod_id_, container_id_;
  static inline std::vector<fs::path> had_kubepods_, had_besteffort_;
};

TEST_F(CriRuntime, VersionNamesContainerd) {
  CriClient client(socket_, "cri-o");
  std::string version = client.version();
  EXPECT_FALSE(version.empty());
  EXPECT_EQ(client.runtime(), "containerd");
  EXPECT_EQ(client.endpoint(), socket_);
  EXPECT_EQ(CriClient("unix://" + socket_).endpoint(), socket_);
}

// containerd before 1.7 has no GetContainerEvents: the client must say so at
// once (the resolver then names CRI containers from their cgroups only), not
// fail or retry. From 1.7 on the stream stays open until stopped.
TEST_F(CriRuntime, EventStreamIsToldApartByVersion) {
  CriClient client(socket_);
  std::string version = client.version();
  bool has_events = !(version.starts_with("1.6.") || version.starts_with("v1.6."));
  auto start = std::chrono::steady_clock::now();
  bool followed = client.follow_creates(
      [](CreatedContainer) {},
      [&] { return std::chrono::steady_clock::now() - start > std::chrono::seconds(1); });
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(followed, has_events) << "containerd " << version;
  if (!has_events) EXPECT_LT(took, std::chrono::seconds(1)) << "containerd " << version;
}

TEST_F(CriRuntime, ListRunningHasTheContainer) {
  CriClient client(socket_);
  auto ids = client.list_running();
  EXPECT_NE(std::find(ids.begin(), ids.end(), container_id_), ids.end());
  // Sandboxes are not containers to CRI.
  EXPECT_EQ(std::find(ids.begin(), ids.end(), pod_id_), ids.end());
}

TEST_F(CriRuntime, InspectNamesContainerAndPod) {
  CriClient client(socket_);
  ContainerInfo info = client.inspect(container_id_);
  EXPECT_EQ(info.id, container_id_);
  EXPECT_EQ(info.runtime, "containerd");
  EXPECT_EQ(info.name, "spaceship");
  EXPECT_EQ(info.image, kImage);
  EXPECT_TRUE(info.image_id.starts_with("sha256:")) << info.image_id;
  EXPECT_EQ(info.labels["role"], "fighter");
  EXPECT_EQ(info.labels["io.kubernetes.container.name"], "spaceship");
  EXPECT_EQ(info.labels["io.kubernetes.pod.name"], kPodName);
  EXPECT_EQ(info.labels["io.kubernetes.pod.namespace"], kPodNamespace);
  EXPECT_EQ(info.labels["io.kubernetes.pod.uid"], pod_uid_);
  EXPECT_TRUE(info.running);
  EXPECT_GT(info.started_at_ns, 1'600'000'000'000'000'000);
  EXPECT_GT(info.pid, 0u);
  EXPECT_EQ(info.pod_id, pod_id_);
  EXPECT_EQ(info.pod_name, kPodName);
  EXPECT_EQ(info.pod_namespace, kPodNamespace);
  EXPECT_EQ(info.pod_uid, pod_uid_);
  EXPECT_EQ(info.pod_labels["app"], "xwing");
  EXPECT_EQ(info.pod_labels["class"], "xwing");
  EXPECT_EQ(info.pod_labels["org"], "alliance");
  EXPECT_EQ(info.pod_labels["io.kubernetes.pod.name"], kPodName);
  EXPECT_EQ(info.pod_annotations["capscope.test/squadron"], "red");
  for (const auto& [k, v] : info.labels) std::cout << "container label " << k << "=" << v << "\n";
  for (const auto& [k, v] : info.pod_labels) std::cout << "pod label " << k << "=" << v << "\n";
}

// The container's cgroup, as the kernel reports it for its process, names the
// container and its pod without asking containerd.
TEST_F(CriRuntime, CgroupPathNamesTheContainer) {
  CriClient client(socket_);
  uint32_t pid = client.inspect(container_id_).pid;
  ASSERT_GT(pid, 0u);
  std::string text = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  std::string path = select_cgroup_path(text);
  std::cout << "containerd container cgroup: " << path << "\n" << text;
  RecordProperty("cgroup_path", path);
  CgroupMatch m = classify_cgroup(path);
  EXPECT_EQ(m.kind, CgroupKind::Container) << path;
  EXPECT_EQ(m.ref.runtime, "containerd");
  EXPECT_EQ(m.ref.id, container_id_);
  EXPECT_EQ(m.ref.pod_uid, pod_uid_);
  EXPECT_EQ(m.ref.qos, "besteffort");
}

TEST_F(CriRuntime, UnknownIdIsNotFound) {
  CriClient client(socket_);
  try {
    (void)client.inspect(std::string(64, 'a'));
    FAIL() << "inspect of an unknown id returned";
  } catch (const RuntimeError& e) {
    EXPECT_EQ(e.kind(), RuntimeError::Kind::NotFound) << e.what();
  }
}

// Kind Unavailable within the deadline; the message names the socket.
void expect_unavailable(const std::string& socket, milliseconds deadline) {
  CriClient client(socket, "containerd", deadline);
  for (int call = 0; call < 3; call++) {
    auto start = std::chrono::steady_clock::now();
    try {
      if (call == 0) (void)client.version();
      if (call == 1) (void)client.inspect(std::string(64, 'a'));
      if (call == 2) (void)client.list_running();
      ADD_FAILURE() << "call " << call << " on " << socket << " returned";
    } catch (const RuntimeError& e) {
      EXPECT_EQ(e.kind(), RuntimeError::Kind::Unavailable) << e.what();
      EXPECT_NE(std::string(e.what()).find(socket), std::string::npos) << e.what();
      std::cout << e.what() << "\n";
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, deadline + milliseconds(500));
  }
}

// A unix socket bound at `path` (not listening yet); -1 if that fails.
int bound_unix_socket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return fd;
  close(fd);
  return -1;
}

TEST_F(CriRuntime, MissingSocketIsUnavailable) {
  expect_unavailable(dir_ + "/no-such.sock", milliseconds(2000));
}

TEST_F(CriRuntime, FileThatIsNotASocketIsUnavailable) {
  std::string file = dir_ + "/not-a-socket";
  std::ofstream(file) << "x";
  expect_unavailable(file, milliseconds(2000));
}

// A socket file nobody listens on: connect() is refused, gRPC says UNAVAILABLE.
TEST_F(CriRuntime, RefusedSocketIsUnavailable) {
  std::string path = dir_ + "/refused.sock";
  int fd = bound_unix_socket(path);
  ASSERT_GE(fd, 0) << "cannot bind " << path;
  close(fd);
  expect_unavailable(path, milliseconds(2000));
}

// A socket that accepts connections (the backlog does) but never speaks:
// only the deadline ends the call.
TEST_F(CriRuntime, SilentSocketIsUnavailableAtTheDeadline) {
  std::string path = dir_ + "/silent.sock";
  int fd = bound_unix_socket(path);
  ASSERT_GE(fd, 0) << "cannot bind " << path;
  ASSERT_EQ(listen(fd, 16), 0);
  auto start = std::chrono::steady_clock::now();
  expect_unavailable(path, milliseconds(300));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(3 * 300));
  close(fd);
}

// containerd going away mid-run makes the same client Unavailable, and it
// answers again once containerd is back (gRPC reconnects within its 5 s
// backoff cap), with the running container still known.
// A container the kubelet would start, traced and recorded by its pod: the events
// carry Kubernetes' names and the pod's labels, from containerd itself.
TEST_F(CriRuntime, TraceAndRecordNameTheContainerByItsPod) {
  fs::path dir = fs::path(dir_);
  fs::path events = dir / "events.json", trace_err = dir / "trace.err", rec_err = dir / "rec.err";
  std::string pod = std::string(kPodNamespace) + "/" + kPodName;
  std::vector<std::string> trace = {
      capscope_binary(),     "trace", "-o", "json", "--output", events.string(), "--pod", pod,
      "--containerd-socket", socket_, "-t", "12"};
  std::vector<std::string> record = {
      capscope_binary(), "record",     "--pod", pod,    "--containerd-socket",
      socket_,           "--duration", "10s",   "--db", (dir / "cri.db").string()};
  for (auto* args : {&trace, &record})
    if (!test_backend().empty()) args->insert(args->end(), {"--backend", test_backend()});
  pid_t tracer = spawn(trace, trace_err);
  pid_t recorder = spawn(record, rec_err);
  for (int i = 0; i < 300 && (read_file(trace_err).find("tracing with") == std::string::npos ||
                              read_file(rec_err).find("recording") == std::string::npos);
       ++i)
    usleep(100'000);
  std::string error;
  std::string id = create_container(
      "pilot",
      {"/bin/sh", "-c", "sleep 1; dmesg >/dev/null 2>&1; touch /tmp/p; chown 1 /tmp/p; sleep 300"},
      &error);
  ASSERT_FALSE(id.empty()) << error;
  ASSERT_EQ(start_container(id), "");
  int st = 0;
  waitpid(tracer, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(trace_err);
  waitpid(recorder, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << read_file(rec_err);

  bool syslog_denied = false;
  size_t pilot_events = 0;
  std::ifstream in(events);
  for (std::string line; std::getline(in, line);) {
    auto e = nlohmann::json::parse(line);
    const auto& pk = e.at("process_kprobe");
    ASSERT_TRUE(pk.at("process").contains("pod")) << "no pod block: " << line;
    const auto& p = pk.at("process").at("pod");  // where Tetragon puts it
    EXPECT_EQ(p.at("namespace"), kPodNamespace) << line;
    EXPECT_EQ(p.at("name"), kPodName) << line;
    EXPECT_EQ(p.at("pod_labels").at("app"), "xwing") << line;
    if (p.at("container").at("name") != "pilot") continue;
    ++pilot_events;
    EXPECT_EQ(p.at("container").at("id"), "containerd://" + id);
    EXPECT_EQ(p.at("container").at("image").at("name"), kImage);
    syslog_denied |= pk.at("capscope").at("comm") == "dmesg" &&
                     pk.at("args")[1].at("capability_arg").at("name") == "CAP_SYSLOG" &&
                     pk.at("capscope").at("verdict") == "denied";
  }
  EXPECT_GT(pilot_events, 0U) << read_file(trace_err);
  EXPECT_TRUE(syslog_denied) << "dmesg's denied CAP_SYSLOG is missing";

  // One profile for the container, named NAMESPACE/WORKLOAD/CONTAINER.
  std::string list = capture(capscope_binary() + " profile list --db " + (dir / "cri.db").string());
  EXPECT_NE(list.find(std::string(kPodNamespace) + "/" + kPodName + "/pilot"), std::string::npos)
      << list << read_file(rec_err);
}

TEST_F(CriRuntime, SameClientAnswersAgainAfterContainerdRestarts) {
  CriClient client(socket_, "containerd", milliseconds(1000));
  ASSERT_FALSE(client.version().empty());
  ASSERT_EQ(sh("kill -TERM $(cat " + dir_ + "/containerd.pid) && while kill -0 $(cat " + dir_ +
               "/containerd.pid) 2>/dev/null; do sleep 0.05; done"),
            0);
  EXPECT_THROW((void)client.version(), RuntimeError);
  ASSERT_EQ(sh("bash " + env_script() + " restart " + dir_), 0);
  auto start = std::chrono::steady_clock::now();
  std::string version;
  while (version.empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(8)) {
    try {
      version = client.version();
    } catch (const RuntimeError&) {
      usleep(100'000);
    }
  }
  EXPECT_FALSE(version.empty()) << "no answer 8 s after the restart";
  std::cout
      << "answered again after "
      << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count()
      << " ms\n";
  EXPECT_EQ(client.inspect(container_id_).name, "spaceship");
}

}  // namespace
