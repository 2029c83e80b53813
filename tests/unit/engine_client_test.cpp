// EngineClient against a fake engine on a unix socket (answers captured from
// podman 4.3.1's service, and broken ones), and the RFC 3339 parser.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "enrich/runtime/engine_client.h"

using capscope::ContainerInfo;
using capscope::created_from_event;
using capscope::CreatedContainer;
using capscope::EngineClient;
using capscope::EngineClientOptions;
using capscope::EngineFlavor;
using capscope::parse_rfc3339_ns;
using capscope::RuntimeError;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kKubeId = "fc0b60a953c001f3e217e32120472a9351c8b2d9b5fb37fc1bb3fdfbf3bf8a28";
constexpr const char* kPodId = "be3a2e1dabc5fa450418fd531a843585c037cf7187324c495a37894d7fe367d9";
constexpr const char* kPlainId = "0450fece7132d8c4f57b24d7c8160925dd361f255919d52132d91f17097805b4";
constexpr const char* kLibpod = "/v4.0.0/libpod";
// An answer starting with this: the fake sends the rest, then holds the
// connection open without another byte.
constexpr const char* kHang = "<hang>";

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(CAPSCOPE_FIXTURES) + "/runtime/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << name;
  return ss.str();
}

std::string http(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string not_found() {
  return http(404, R"({"cause":"no such container","message":"no container with name or ID )"
                   R"(\"nope\" found: no such container","response":404})");
}

// A temporary directory for sockets and files, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "cs-engine-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

// An engine on a unix socket, answering each request (one per connection) with
// the raw bytes its handler returns for the request path.
class FakeEngine {
 public:
  using Handler = std::function<std::string(const std::string& path)>;

  explicit FakeEngine(Handler handler) : handler_(std::move(handler)) {
    socket_ = (dir_.path / "engine.sock").string();
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socket_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() {
    stop_ = true;
    thread_.join();
    for (int fd : held_) close(fd);
    close(listen_fd_);
  }
  FakeEngine(const FakeEngine&) = delete;
  FakeEngine& operator=(const FakeEngine&) = delete;

  [[nodiscard]] const std::string& socket_path() const { return socket_; }
  std::vector<std::string> paths() {
    std::lock_guard<std::mutex> lock(mu_);
    return paths_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) answer(fd);
    }
  }
  void answer(int fd) {
    std::string path = read_request_path(fd);
    {
      std::lock_guard<std::mutex> lock(mu_);
      paths_.push_back(path);
    }
    std::string out = handler_(path);
    bool hang = out.rfind(kHang, 0) == 0;
    send_all(fd, hang ? out.substr(std::string(kHang).size()) : out);
    if (hang)
      held_.push_back(fd);
    else
      close(fd);
  }
  // MSG_NOSIGNAL: a client that gave up must not kill the test with SIGPIPE.
  static void send_all(int fd, const std::string& out) {
    for (size_t off = 0; off < out.size();) {
      ssize_t n = send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  static std::string read_request_path(int fd) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) break;
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    size_t a = req.find(' ');
    size_t b = req.find(' ', a + 1);
    return a == std::string::npos || b == std::string::npos ? "" : req.substr(a + 1, b - a - 1);
  }

  TempDir dir_;
  std::string socket_;
  int listen_fd_ = -1;
  Handler handler_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<int> held_;
  std::mutex mu_;
  std::vector<std::string> paths_;
};

EngineClient client(EngineFlavor flavor, const std::string& socket,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  EngineClientOptions o;
  o.flavor = flavor;
  o.socket_path = socket;
  o.timeout = timeout;
  return EngineClient(o);
}

// Serves podman's captured answers for the kube-played container, its pod and the
// plain container, libpod and Docker-compatible, like the real service.
std::string podman_answers(const std::string& path) {
  std::string lp = kLibpod;
  if (path == lp + "/containers/" + kKubeId + "/json")
    return http(200, fixture("podman-4.3.1-libpod-container-kube.json"));
  if (path == lp + "/pods/" + kPodId + "/json")
    return http(200, fixture("podman-4.3.1-libpod-pod-kube.json"));
  if (path == lp + "/containers/" + kPlainId + "/json")
    return http(200, fixture("podman-4.3.1-libpod-container-plain.json"));
  if (path == std::string("/containers/") + kKubeId + "/json")
    return http(200, fixture("podman-4.3.1-docker-container-kube.json"));
  if (path == lp + "/version") return http(200, fixture("podman-4.3.1-libpod-version.json"));
  if (path == "/version") return http(200, fixture("podman-4.3.1-docker-version.json"));
  if (path == lp + "/containers/json")
    return http(200, fixture("podman-4.3.1-libpod-containers-list.json"));
  if (path == "/containers/json")
    return http(200, fixture("podman-4.3.1-docker-containers-list.json"));
  return not_found();
}

// Runs f, which must throw RuntimeError of `kind`; returns its message.
template <typename F>
std::string expect_error(F&& f, RuntimeError::Kind kind) {
  try {
    f();
  } catch (const RuntimeError& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no RuntimeError";
  return "";
}

std::string unavailable_inspect(EngineFlavor flavor, const std::string& socket) {
  auto c = client(flavor, socket, std::chrono::milliseconds(500));
  return expect_error([&] { (void)c.inspect(kKubeId); }, RuntimeError::Kind::Unavailable);
}

// Serves `body` (any JSON) as the inspect answer of every container.
std::string unavailable_for_body(EngineFlavor flavor, const std::string& body) {
  FakeEngine engine([&](const std::string&) { return http(200, body); });
  return unavailable_inspect(flavor, engine.socket_path());
}

using Strings = std::vector<std::string>;

// ---- RFC 3339 ----

TEST(EngineRfc3339, ParsesNanosecondsAndZones) {
  const int64_t s = 1795559612;  // 2026-11-24T22:33:32Z
  EXPECT_EQ(parse_rfc3339_ns("2026-11-24T22:33:32.612831414Z"), s * 1'000'000'000 + 612831414);
  EXPECT_EQ(parse_rfc3339_ns("2026-11-24T22:33:32Z"), s * 1'000'000'000);
  EXPECT_EQ(parse_rfc3339_ns("2026-11-24T22:33:32.5Z"), s * 1'000'000'000 + 500'000'000);
  // podman drops trailing zeros: ".77052787" is 770527870 ns.
  EXPECT_EQ(parse_rfc3339_ns("2026-11-24T22:33:09.77052787Z"),
            (s - 23) * 1'000'000'000 + 770527870);
  EXPECT_EQ(parse_rfc3339_ns("2026-11-25T00:33:32.000000001+02:00"), s * 1'000'000'000 + 1);
  EXPECT_EQ(parse_rfc3339_ns("2026-11-24T17:03:32-05:30"), s * 1'000'000'000);
  EXPECT_EQ(parse_rfc3339_ns("2026-11-24t22:33:32z"), s * 1'000'000'000);
  // Finer than a nanosecond is dropped, not rounded.
  EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:00.1234567899Z"), 123456789);
  EXPECT_EQ(parse_rfc3339_ns("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_ns("2000-02-29T00:00:00Z"), 951782400LL * 1'000'000'000);
  EXPECT_EQ(parse_rfc3339_ns("1969-12-31T23:59:59Z"), -1'000'000'000);
  // Go's zero time and other dates outside int64 nanoseconds are no time.
  EXPECT_EQ(parse_rfc3339_ns("0001-01-01T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339_ns("2300-01-01T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339_ns("1677-09-22T00:00:00Z"), -9'223'286'400LL * 1'000'000'000);
}

TEST(EngineRfc3339, RejectsMalformed) {
  for (const char* bad :
       {"", "2026-11-24", "2026-11-24T22:33:32", "2026-11-24T22:33:32.Z", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-24T24:00:00Z",
        "2026-11-24T22:60:00Z", "2026-11-24T22:33:32+0200", "2026-11-24T22:33:32+02:00x",
        "2026-11-24T22:33:32Zjunk", "26-11-24T22:33:32Z", "2026-11-24T22:33:32.12a3Z",
        "2026/11/24T22:33:32Z", "2026-11-24T22:33:32+25:00"})
    EXPECT_FALSE(parse_rfc3339_ns(bad)) << bad;
}

// ---- good answers ----

TEST(EngineClient, RuntimeNamesAndDefaultSockets) {
  EXPECT_EQ(client(EngineFlavor::Podman, "").endpoint(), "/run/podman/podman.sock");
  EXPECT_EQ(client(EngineFlavor::Docker, "").endpoint(), "/var/run/docker.sock");
  EXPECT_EQ(client(EngineFlavor::Podman, "/x.sock").endpoint(), "/x.sock");
  EXPECT_EQ(client(EngineFlavor::Podman, "").runtime(), "podman");
  EXPECT_EQ(client(EngineFlavor::Docker, "").runtime(), "docker");
}

TEST(EngineClient, LibpodKubePlayedContainer) {
  FakeEngine engine(podman_answers);
  ContainerInfo i = client(EngineFlavor::Podman, engine.socket_path()).inspect(kKubeId);
  EXPECT_EQ(i.id, kKubeId);
  EXPECT_EQ(i.runtime, "podman");
  EXPECT_EQ(i.name, "spaceship");  // podman's own name is xwing-capture-spaceship
  EXPECT_EQ(i.image, "localhost/capscope-busybox:latest");
  EXPECT_EQ(i.image_id, "c0f9553a4f2ff640beaa7c138866293914341fca9ad38281d38a6639b1494e19");
  capscope::Labels xwing{{"app", "xwing"}, {"class", "xwing"}, {"org", "alliance"}};
  EXPECT_EQ(i.labels, xwing);
  EXPECT_EQ(i.started_at_ns, 1795559612LL * 1'000'000'000 + 612831414);
  EXPECT_EQ(i.pid, 17205u);
  EXPECT_TRUE(i.running);
  EXPECT_EQ(i.pod_id, kPodId);
  EXPECT_EQ(i.pod_name, "xwing-capture");
  EXPECT_EQ(i.pod_namespace, "");  // podman keeps no trace of the manifest's namespace
  EXPECT_EQ(i.pod_labels, xwing);
  EXPECT_EQ(i.pod_annotations, (capscope::Labels{{"capscope.test/note", "captured"}}));
  EXPECT_EQ(i.cap_add, Strings{"CAP_NET_ADMIN"});
  EXPECT_EQ(i.cap_drop, Strings{"CAP_CHOWN"});
  ASSERT_TRUE(i.effective_caps);
  EXPECT_EQ(i.effective_caps->size(), 14u);
  EXPECT_EQ(i.effective_caps->at(6), "CAP_NET_ADMIN");
  EXPECT_FALSE(i.privileged);
  EXPECT_EQ(engine.paths(), (Strings{std::string(kLibpod) + "/containers/" + kKubeId + "/json",
                                     std::string(kLibpod) + "/pods/" + kPodId + "/json"}));
}

TEST(EngineClient, LibpodPlainContainerHasNoPod) {
  FakeEngine engine(podman_answers);
  ContainerInfo i = client(EngineFlavor::Podman, engine.socket_path()).inspect(kPlainId);
  EXPECT_EQ(i.name, "engcap-plain");
  EXPECT_EQ(i.labels, (capscope::Labels{{"tier", "test"}}));
  EXPECT_EQ(i.pod_id, "");
  EXPECT_EQ(i.pod_name, "");
  EXPECT_TRUE(i.pod_annotations.empty());
  EXPECT_EQ(i.cap_add, Strings{"CAP_SYS_PTRACE"});
  // Podman says what differs from Docker's default set, not what was asked.
  EXPECT_EQ(i.cap_drop, (Strings{"CAP_AUDIT_WRITE", "CAP_MKNOD", "CAP_NET_RAW"}));
  EXPECT_EQ(engine.paths().size(), 1u);  // no pod lookup
}

TEST(EngineClient, DockerCompatKubePlayedContainer) {
  FakeEngine engine(podman_answers);
  ContainerInfo i = client(EngineFlavor::Docker, engine.socket_path()).inspect(kKubeId);
  EXPECT_EQ(i.id, kKubeId);
  EXPECT_EQ(i.runtime, "docker");
  EXPECT_EQ(i.name, "xwing-capture-spaceship");  // Docker's API has no pods
  EXPECT_EQ(i.image, "localhost/capscope-busybox:latest");
  EXPECT_EQ(i.image_id, "sha256:c0f9553a4f2ff640beaa7c138866293914341fca9ad38281d38a6639b1494e19");
  EXPECT_EQ(i.labels.at("org"), "alliance");
  EXPECT_EQ(i.started_at_ns, 1795559612LL * 1'000'000'000 + 612831414);
  EXPECT_EQ(i.pid, 17205u);
  EXPECT_TRUE(i.running);
  EXPECT_EQ(i.pod_name, "");
  EXPECT_EQ(i.cap_add, Strings{"NET_ADMIN"});
  EXPECT_EQ(i.cap_drop, Strings{"CHOWN"});
  EXPECT_FALSE(i.effective_caps);
  EXPECT_EQ(engine.paths(), Strings{std::string("/containers/") + kKubeId + "/json"});
}

TEST(EngineClient, KubernetesLabelsNameContainerAndPod) {
  json j = json::parse(fixture("podman-4.3.1-docker-container-kube.json"));
  j["Config"]["Labels"] = {{"io.kubernetes.container.name", "web"},
                           {"io.kubernetes.pod.name", "web-7d4b9"},
                           {"io.kubernetes.pod.namespace", "shop"},
                           {"io.kubernetes.pod.uid", "0b3c"}};
  j["HostConfig"]["Privileged"] = true;
  FakeEngine engine([&](const std::string&) { return http(200, j.dump()); });
  ContainerInfo i = client(EngineFlavor::Docker, engine.socket_path()).inspect(kKubeId);
  EXPECT_EQ(i.name, "web");
  EXPECT_EQ(i.pod_name, "web-7d4b9");
  EXPECT_EQ(i.pod_namespace, "shop");
  EXPECT_EQ(i.pod_uid, "0b3c");
  EXPECT_TRUE(i.privileged);
}

TEST(EngineClient, PodNotInKubePlayKeepsPodmanName) {
  json pod = json::parse(fixture("podman-4.3.1-libpod-pod-kube.json"));
  pod["ExitPolicy"] = "continue";  // what `podman pod create` makes
  FakeEngine engine([&](const std::string& path) {
    return path.find("/pods/") != std::string::npos ? http(200, pod.dump()) : podman_answers(path);
  });
  ContainerInfo i = client(EngineFlavor::Podman, engine.socket_path()).inspect(kKubeId);
  EXPECT_EQ(i.name, "xwing-capture-spaceship");
  EXPECT_EQ(i.pod_name, "xwing-capture");
  EXPECT_TRUE(i.pod_annotations.empty());
}

TEST(EngineClient, PodGoneKeepsContainer) {
  FakeEngine engine([](const std::string& path) {
    return path.find("/pods/") != std::string::npos ? not_found() : podman_answers(path);
  });
  ContainerInfo i = client(EngineFlavor::Podman, engine.socket_path()).inspect(kKubeId);
  EXPECT_EQ(i.pod_id, kPodId);
  EXPECT_EQ(i.pod_name, "");
  EXPECT_EQ(i.name, "xwing-capture-spaceship");
}

TEST(EngineClient, VersionAndList) {
  FakeEngine engine(podman_answers);
  auto podman = client(EngineFlavor::Podman, engine.socket_path());
  auto docker = client(EngineFlavor::Docker, engine.socket_path());
  EXPECT_EQ(podman.version(), "4.3.1");
  EXPECT_EQ(docker.version(), "4.3.1");
  Strings all{kPlainId, "6f19d76e4d91eab2ab3099003d2d17a029ebe95a380153bf83c8c1fb22085a2a",
              kKubeId};
  EXPECT_EQ(podman.list_running(), all);
  EXPECT_EQ(docker.list_running(), all);
}

TEST(EngineClient, IdIsEscapedInThePath) {
  FakeEngine engine(podman_answers);
  auto c = client(EngineFlavor::Docker, engine.socket_path());
  expect_error([&] { (void)c.inspect("../version?x=1"); }, RuntimeError::Kind::NotFound);
  EXPECT_EQ(engine.paths(), Strings{"/containers/..%2Fversion%3Fx%3D1/json"});
}

// ---- failures ----

TEST(EngineClient, NotFoundIs404) {
  FakeEngine engine(podman_answers);
  for (EngineFlavor f : {EngineFlavor::Podman, EngineFlavor::Docker}) {
    auto c = client(f, engine.socket_path());
    std::string msg = expect_error([&] { (void)c.inspect("nope"); }, RuntimeError::Kind::NotFound);
    EXPECT_NE(msg.find("no such container"), std::string::npos) << msg;
  }
}

TEST(EngineClient, ServerErrorIsUnavailable) {
  FakeEngine engine([](const std::string&) { return http(500, R"({"message":"boom\nbang"})"); });
  auto c = client(EngineFlavor::Podman, engine.socket_path());
  std::string msg =
      expect_error([&] { (void)c.inspect(kKubeId); }, RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("HTTP 500: boom bang"), std::string::npos) << msg;
  // A 404 on the version or the list is a wrong socket, not an unknown container.
  FakeEngine nf([](const std::string&) { return not_found(); });
  auto d = client(EngineFlavor::Docker, nf.socket_path());
  expect_error([&] { (void)d.version(); }, RuntimeError::Kind::Unavailable);
  expect_error([&] { (void)d.list_running(); }, RuntimeError::Kind::Unavailable);
}

TEST(EngineClient, PathThatIsNotASocket) {
  TempDir dir;
  fs::path file = dir.path / "x";
  std::ofstream(file) << "not a socket";
  std::string msg = unavailable_inspect(EngineFlavor::Podman, file.string());
  EXPECT_EQ(msg, "podman API at " + file.string() + ": " + file.string() +
                     " is not a socket (start the service with `podman system service` or pass "
                     "--podman-socket)");
  msg = unavailable_inspect(EngineFlavor::Docker, dir.path.string());
  EXPECT_NE(msg.find("is not a socket"), std::string::npos) << msg;
}

TEST(EngineClient, NoSuchPath) {
  TempDir dir;
  std::string msg = unavailable_inspect(EngineFlavor::Docker, (dir.path / "none.sock").string());
  EXPECT_NE(msg.find("docker API at "), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
}

TEST(EngineClient, ConnectionRefused) {
  TempDir dir;
  std::string path = (dir.path / "dead.sock").string();
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // the socket file stays, nobody listens: what a crashed engine leaves
  std::string msg = unavailable_inspect(EngineFlavor::Podman, path);
  EXPECT_NE(msg.find("cannot connect"), std::string::npos) << msg;
}

TEST(EngineClient, ServerClosesMidResponse) {
  std::string body = fixture("podman-4.3.1-libpod-container-kube.json");
  FakeEngine engine([&](const std::string&) { return http(200, body).substr(0, 600); });
  std::string msg = unavailable_inspect(EngineFlavor::Podman, engine.socket_path());
  EXPECT_NE(msg.find("mid-answer"), std::string::npos) << msg;
}

TEST(EngineClient, ServerClosesMidHeaders) {
  FakeEngine engine([](const std::string&) { return std::string("HTTP/1.1 200 OK\r\nContent-"); });
  unavailable_inspect(EngineFlavor::Docker, engine.socket_path());
}

TEST(EngineClient, ServerClosesWithoutAnswer) {
  FakeEngine engine([](const std::string&) { return std::string(); });
  std::string msg = unavailable_inspect(EngineFlavor::Docker, engine.socket_path());
  EXPECT_NE(msg.find("without answering"), std::string::npos) << msg;
}

TEST(EngineClient, GarbageBody) {
  FakeEngine engine([](const std::string&) { return http(200, "<html>not json</html>"); });
  std::string msg = unavailable_inspect(EngineFlavor::Podman, engine.socket_path());
  EXPECT_NE(msg.find("not JSON"), std::string::npos) << msg;
  auto c = client(EngineFlavor::Podman, engine.socket_path());
  expect_error([&] { (void)c.version(); }, RuntimeError::Kind::Unavailable);
  expect_error([&] { (void)c.list_running(); }, RuntimeError::Kind::Unavailable);
}

TEST(EngineClient, NotHttp) {
  FakeEngine engine([](const std::string&) { return std::string("SSH-2.0-OpenSSH\r\n\r\n"); });
  unavailable_inspect(EngineFlavor::Docker, engine.socket_path());
}

TEST(EngineClient, OversizedAnswer) {
  std::string huge = http(200, "[" + std::string(17u << 20, ' ') + "]");
  FakeEngine engine([&](const std::string&) { return huge; });
  std::string msg = unavailable_inspect(EngineFlavor::Docker, engine.socket_path());
  EXPECT_NE(msg.find("larger than"), std::string::npos) << msg;
}

TEST(EngineClient, WrongJsonTypes) {
  json good = json::parse(fixture("podman-4.3.1-libpod-container-kube.json"));
  std::vector<std::pair<std::function<void(json&)>, std::string>> breakages = {
      {[](json& j) { j["State"]["Pid"] = "17205"; }, "field State.Pid is not"},
      {[](json& j) { j["State"]["Pid"] = -1; }, "field State.Pid is not"},
      {[](json& j) { j["State"]["Pid"] = 1.5; }, "field State.Pid is not"},
      {[](json& j) { j["State"]["Pid"] = 1ULL << 40; }, "field State.Pid is not a 32-bit"},
      {[](json& j) { j["State"] = "running"; }, "field State is not an object"},
      {[](json& j) { j["State"]["Running"] = 1; }, "field State.Running is not"},
      {[](json& j) { j["State"]["StartedAt"] = 12; }, "field State.StartedAt is not"},
      {[](json& j) { j["Config"]["Labels"] = json::array({"a"}); }, "Config.Labels is not"},
      {[](json& j) { j["Config"]["Labels"]["app"] = 3; }, "Config.Labels.app is not a string"},
      {[](json& j) { j["Config"]["Annotations"] = 3; }, "Config.Annotations is not"},
      {[](json& j) { j["HostConfig"]["CapAdd"] = "CAP_NET_ADMIN"; }, "HostConfig.CapAdd is not"},
      {[](json& j) {
         j["HostConfig"]["CapDrop"] = {1, 2};
       },
       "HostConfig.CapDrop is not"},
      {[](json& j) { j["HostConfig"]["Privileged"] = "no"; }, "HostConfig.Privileged is not"},
      {[](json& j) { j["EffectiveCaps"] = json::object(); }, "EffectiveCaps is not"},
      {[](json& j) { j["Name"] = json::array(); }, "field Name is not a string"},
      {[](json& j) { j["Pod"] = 7; }, "field Pod is not"},
      {[](json& j) { j["Id"] = 7; }, "field Id is not"},
      {[](json& j) { j.erase("Id"); }, "no Id"},
      {[](json& j) { j = json::array({j}); }, "not a JSON object"},
      {[](json& j) { j = "string"; }, "not a JSON object"},
      {[](json& j) { j = nullptr; }, "not a JSON object"},
  };
  for (auto& [breakage, want] : breakages) {
    json j = good;
    j["Pod"] = "";  // the pod's answer is broken separately below
    breakage(j);
    std::string msg = unavailable_for_body(EngineFlavor::Podman, j.dump());
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
  }
  // Absent and null fields are merely unknown.
  json sparse = {{"Id", kKubeId}, {"State", nullptr}, {"Config", {{"Labels", nullptr}}}};
  FakeEngine engine([&](const std::string&) { return http(200, sparse.dump()); });
  ContainerInfo i = client(EngineFlavor::Docker, engine.socket_path()).inspect(kKubeId);
  EXPECT_EQ(i.id, kKubeId);
  EXPECT_EQ(i.pid, 0u);
  EXPECT_EQ(i.started_at_ns, 0);
}

TEST(EngineClient, WrongJsonTypesInPodListAndVersion) {
  json pod = json::parse(fixture("podman-4.3.1-libpod-pod-kube.json"));
  pod["Labels"] = {{"app", true}};
  FakeEngine engine([&](const std::string& path) {
    if (path.find("/pods/") != std::string::npos) return http(200, pod.dump());
    if (path.find("/version") != std::string::npos) return http(200, R"({"Version":4})");
    if (path.find("/containers/json") != std::string::npos)
      return http(200, R"([{"Id":"a"},{"Id":null}])");
    return podman_answers(path);
  });
  auto c = client(EngineFlavor::Podman, engine.socket_path());
  std::string msg =
      expect_error([&] { (void)c.inspect(kKubeId); }, RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("field Labels.app is not a string"), std::string::npos) << msg;
  expect_error([&] { (void)c.version(); }, RuntimeError::Kind::Unavailable);
  msg = expect_error([&] { (void)c.list_running(); }, RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("no Id string"), std::string::npos) << msg;
  FakeEngine obj([](const std::string&) { return http(200, R"({"Id":"a"})"); });
  auto d = client(EngineFlavor::Docker, obj.socket_path());
  msg = expect_error([&] { (void)d.list_running(); }, RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("not a JSON array"), std::string::npos) << msg;
}

TEST(EngineClient, ServerThatNeverAnswersTimesOut) {
  FakeEngine engine([](const std::string&) { return std::string(kHang); });
  auto c = client(EngineFlavor::Podman, engine.socket_path(), std::chrono::milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  std::string msg =
      expect_error([&] { (void)c.inspect(kKubeId); }, RuntimeError::Kind::Unavailable);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_NE(msg.find("no answer within 300 ms"), std::string::npos) << msg;
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

TEST(EngineClient, ServerThatStallsMidBodyTimesOut) {
  // Headers and a first part, then silence with the connection open.
  std::string partial =
      http(200, fixture("podman-4.3.1-libpod-container-kube.json")).substr(0, 400);
  FakeEngine engine([&](const std::string&) { return kHang + partial; });
  auto c = client(EngineFlavor::Docker, engine.socket_path(), std::chrono::milliseconds(200));
  auto start = std::chrono::steady_clock::now();
  expect_error([&] { (void)c.version(); }, RuntimeError::Kind::Unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
}

// ---- the create-event stream ----

// A create event as podman 4.3.1's service streams it (a container with label app=web),
// and one as Docker's API documents it (cri-dockerd's Kubernetes labels).
constexpr const char* kPodmanCreate =
    R"({"status":"create","id":"74967f3d4a63d738867ddb00393725b551ca2d2015ecc6ae8c948f7820813282",)"
    R"("from":"localhost/capscope-busybox:latest","Type":"container","Action":"create","Actor":{)"
    R"("ID":"74967f3d4a63d738867ddb00393725b551ca2d2015ecc6ae8c948f7820813282","Attributes":{)"
    R"("app":"web","containerExitCode":"0","image":"localhost/capscope-busybox:latest",)"
    R"("name":"adoring_sutherland","podId":""}},"scope":"local","time":1795614828,)"
    R"("timeNano":1795614828175610454})";
constexpr const char* kDockerCreate =
    R"({"status":"create","id":"c0ffee","from":"nginx:1.25","Type":"container",)"
    R"("Action":"create","Actor":{"ID":"c0ffee","Attributes":{"image":"nginx:1.25",)"
    R"("name":"k8s_web_web-7d9f-abcde_shop_uid-1_0","io.kubernetes.container.name":"web",)"
    R"("io.kubernetes.pod.name":"web-7d9f-abcde","io.kubernetes.pod.namespace":"shop",)"
    R"("io.kubernetes.pod.uid":"uid-1"}},"scope":"local","time":1,"timeNano":1})";

TEST(EngineEvents, APodmanCreateEventNamesTheContainer) {
  auto c = created_from_event(kPodmanCreate, EngineFlavor::Podman);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->complete);
  EXPECT_EQ(c->info.id, "74967f3d4a63d738867ddb00393725b551ca2d2015ecc6ae8c948f7820813282");
  EXPECT_EQ(c->info.runtime, "podman");
  EXPECT_EQ(c->info.name, "adoring_sutherland");
  EXPECT_EQ(c->info.image, "localhost/capscope-busybox:latest");
  // The engine's own keys are not labels.
  EXPECT_EQ(c->info.labels, (capscope::Labels{{"app", "web"}}));
}

TEST(EngineEvents, ADockerCreateEventCarriesKubernetesLabels) {
  auto c = created_from_event(kDockerCreate, EngineFlavor::Docker);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->complete);
  EXPECT_EQ(c->info.runtime, "docker");
  EXPECT_EQ(c->info.name, "web");  // Kubernetes' container name wins, as in inspect
  EXPECT_EQ(c->info.pod_name, "web-7d9f-abcde");
  EXPECT_EQ(c->info.pod_namespace, "shop");
  EXPECT_EQ(c->info.image, "nginx:1.25");
  EXPECT_EQ(c->info.labels.count("name"), 0u);
  EXPECT_EQ(c->info.labels.size(), 4u);
}

TEST(EngineEvents, APodmanPodsContainerIsNotCompleteFromItsEvent) {
  std::string line = kPodmanCreate;
  line.replace(line.find(R"("podId":"")"), 10, R"("podId":"be3a2e")");
  auto c = created_from_event(line, EngineFlavor::Podman);
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->complete) << "the pod's name and labels are not in the event";
  EXPECT_EQ(c->info.pod_id, "be3a2e");
}

TEST(EngineEvents, OtherLinesAreNotCreates) {
  std::string start = kPodmanCreate;
  start.replace(start.find(R"("Action":"create")"), 17, R"("Action":"start")");
  EXPECT_FALSE(created_from_event(start, EngineFlavor::Podman).has_value());
  std::string image = kDockerCreate;
  image.replace(image.find(R"("Type":"container")"), 18, R"("Type":"image")");
  EXPECT_FALSE(created_from_event(image, EngineFlavor::Docker).has_value());
  for (const char* bad : {"", "{", "[]", "null", R"({"Type":"container","Action":"create"})",
                          R"({"Type":"container","Action":"create","Actor":{"ID":7}})"})
    EXPECT_FALSE(created_from_event(bad, EngineFlavor::Docker).has_value()) << bad;
}

std::string chunk(const std::string& data) {
  std::ostringstream out;
  out << std::hex << data.size() << "\r\n" << data << "\r\n";
  return out.str();
}

const std::string kStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

// Runs follow_creates on a thread, collecting what it reports.
struct Follower {
  std::mutex mu;
  std::vector<CreatedContainer> created;
  std::atomic<bool> stop{false};
  std::atomic<bool> returned{false};
  std::string error;
  std::thread thread;

  explicit Follower(EngineClient& c) {
    thread = std::thread([this, &c] {
      try {
        c.follow_creates(
            [this](CreatedContainer cc) {
              std::lock_guard lock(mu);
              created.push_back(std::move(cc));
            },
            [this] { return stop.load(); });
      } catch (const RuntimeError& e) {
        std::lock_guard lock(mu);
        error = e.what();
      }
      returned = true;
    });
  }
  ~Follower() {
    stop = true;
    thread.join();
  }
  size_t count() {
    std::lock_guard lock(mu);
    return created.size();
  }
  bool wait_for(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return done();
  }
};

TEST(EngineEvents, FollowsTheStreamUntilStopped) {
  // Two events, the second split across chunks, then an open, quiet stream.
  std::string second = kDockerCreate;
  FakeEngine engine([&](const std::string&) {
    return kHang + kStreamHead + chunk(std::string(kPodmanCreate) + "\n" + second.substr(0, 50)) +
           chunk(second.substr(50) + "\n");
  });
  auto c = client(EngineFlavor::Podman, engine.socket_path());
  Follower f(c);
  ASSERT_TRUE(f.wait_for([&] { return f.count() == 2; })) << f.count() << " events";
  {
    std::lock_guard lock(f.mu);
    EXPECT_EQ(f.created[0].info.name, "adoring_sutherland");
    EXPECT_EQ(f.created[1].info.id, "c0ffee");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(f.returned) << "a quiet stream is not an error: " << f.error;
  auto stopped_at = std::chrono::steady_clock::now();
  f.stop = true;
  ASSERT_TRUE(f.wait_for([&] { return f.returned.load(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, std::chrono::milliseconds(500));
  EXPECT_EQ(f.error, "");
  ASSERT_EQ(engine.paths().size(), 1u);
  EXPECT_EQ(engine.paths()[0],
            std::string(kLibpod) +
                "/events?stream=true&filters=%7B%22type%22%3A%5B%22container%22%5D%2C%22event%22"
                "%3A%5B%22create%22%5D%7D");
}

TEST(EngineEvents, AStreamThatEndsIsAnError) {
  FakeEngine engine([&](const std::string&) {
    return kStreamHead + chunk(std::string(kDockerCreate) + "\n") + "0\r\n\r\n";
  });
  auto c = client(EngineFlavor::Docker, engine.socket_path());
  Follower f(c);
  ASSERT_TRUE(f.wait_for([&] { return f.returned.load(); }));
  EXPECT_EQ(f.count(), 1u) << "events before the end are kept";
  EXPECT_NE(f.error.find("the event stream ended"), std::string::npos) << f.error;
  EXPECT_EQ(engine.paths()[0].rfind("/events?filters=", 0), 0u) << engine.paths()[0];
}

TEST(EngineEvents, AnErrorAnswerAndAMissingSocketAreErrors) {
  FakeEngine engine(
      [](const std::string&) { return http(500, R"({"message":"events backend unavailable"})"); });
  auto c = client(EngineFlavor::Podman, engine.socket_path());
  std::string msg =
      expect_error([&] { c.follow_creates([](CreatedContainer) {}, [] { return false; }); },
                   RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("HTTP 500: events backend unavailable"), std::string::npos) << msg;
  TempDir dir;
  auto none = client(EngineFlavor::Docker, (dir.path / "none.sock").string());
  msg = expect_error([&] { none.follow_creates([](CreatedContainer) {}, [] { return false; }); },
                     RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(EngineEvents, AnEndlessLineIsRefused) {
  FakeEngine engine([](const std::string&) {
    return kHang + kStreamHead + chunk(std::string((size_t{1} << 20) + 10, 'x'));
  });
  auto c = client(EngineFlavor::Docker, engine.socket_path());
  std::string msg =
      expect_error([&] { c.follow_creates([](CreatedContainer) {}, [] { return false; }); },
                   RuntimeError::Kind::Unavailable);
  EXPECT_NE(msg.find("longer than 1 MiB"), std::string::npos) << msg;
}

}  // namespace
