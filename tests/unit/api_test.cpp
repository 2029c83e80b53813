// The agent's gRPC API end to end: the real server on a unix socket in a
// temporary folder, a fake Backend, the real client and the CLI's connection
// rules.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "advice/advice.h"
#include "advice/compare.h"
#include "advice/current_spec.h"
#include "api/client.h"
#include "api/event_query.h"
#include "api/server.h"
#include "cli/remote.h"
#include "profile/profile_json.h"
#include "tables/capabilities.h"

namespace capscope::api {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kChown = 0, kNetBind = 10, kNetRaw = 13, kSysAdmin = 21;

profile::Observation obs(int cap, bool granted, bool audit, uint64_t count, std::string syscall,
                         std::string binary) {
  profile::Observation o;
  o.key = {cap, granted, audit};
  o.count = count;
  o.first_ns = 1'700'000'000'000'000'000;
  o.last_ns = o.first_ns + 1000;
  o.syscall = std::move(syscall);
  o.binary = std::move(binary);
  return o;
}

profile::Profile web() {
  profile::Profile p;
  p.name = "web";
  p.subject = "container: default/web/nginx";
  p.runs = 2;
  p.recorded_ns = 5'000'000'000;
  p.add(obs(kChown, true, true, 3, "fchownat", "/usr/bin/chown"));
  p.add(obs(kNetBind, true, true, 1, "bind", "/usr/sbin/nginx"));
  p.add(obs(kNetRaw, false, true, 2, "socket", "/usr/bin/ping"));
  p.add(obs(kSysAdmin, true, false, 40, "mmap", "/usr/sbin/nginx"));
  p.container.runtime = "containerd";
  p.container.namespace_name = "default";
  p.container.workload = "web";
  p.container.workload_kind = "Deployment";
  p.container.pod = "web-7d9f-abcde";
  p.container.container = "nginx";
  return p;
}

profile::Profile tool() {
  profile::Profile p;
  p.name = "tool";
  p.subject = "command: chown 1 /x";
  p.runs = 1;
  p.add(obs(kChown, true, true, 1, "fchownat", "/usr/bin/chown"));
  return p;
}

StreamEvent event(uint32_t pid, size_t line_bytes = 40) {
  StreamEvent e;
  e.line = "{\"pid\":" + std::to_string(pid) + ",\"pad\":\"" + std::string(line_bytes, 'x') + "\"}";
  e.time_ns = 1'700'000'000'000'000'000ULL + pid;
  e.capability = "CAP_NET_RAW";
  e.denied = pid % 2 == 1;
  e.pid = pid;
  e.k8s_namespace = "default";
  e.pod = "xwing";
  e.container = "c1";
  return e;
}

// A subscriber's queue as the agent keeps it: bounded, never waiting for the
// reader; what does not fit is counted.
class FakeQueue {
 public:
  explicit FakeQueue(size_t capacity) : capacity_(capacity) {}
  void push(StreamEvent e) {
    std::lock_guard lock(mu_);
    if (items_.size() >= capacity_) {
      ++dropped_;
      return;
    }
    items_.push_back(std::move(e));
    cv_.notify_all();
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return std::nullopt;
    StreamEvent e = std::move(items_.front());
    items_.pop_front();
    return e;
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_ && items_.empty();
  }
  uint64_t dropped() const {
    std::lock_guard lock(mu_);
    return dropped_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamEvent> items_;
  size_t capacity_;
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

class FakeStream final : public EventStream {
 public:
  explicit FakeStream(std::shared_ptr<FakeQueue> q) : q_(std::move(q)) {}
  std::optional<StreamEvent> next(std::chrono::milliseconds timeout) override {
    return q_->next(timeout);
  }
  [[nodiscard]] bool closed() const override { return q_->closed(); }
  [[nodiscard]] uint64_t dropped() const override { return q_->dropped(); }

 private:
  std::shared_ptr<FakeQueue> q_;
};

class FakeBackend final : public Backend {
 public:
  size_t queue_capacity = 1024;

  std::unique_ptr<EventStream> subscribe(const EventQuery& query, std::string* error) override {
    std::lock_guard lock(mu_);
    if (refuse_events) {
      *error = "the agent runs with --event-mode none: no events to stream";
      return nullptr;
    }
    last_query_ = query;
    queues_.push_back(std::make_shared<FakeQueue>(queue_capacity));
    cv_.notify_all();
    return std::make_unique<FakeStream>(queues_.back());
  }
  // The queue of the n-th subscriber (1-based), once it subscribed; null after 5 s.
  std::shared_ptr<FakeQueue> wait_for_subscriber(size_t n = 1) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 5s, [&] { return queues_.size() >= n; });
    return queues_.size() >= n ? queues_[n - 1] : nullptr;
  }
  std::optional<EventQuery> last_query() {
    std::lock_guard lock(mu_);
    return last_query_;
  }

  std::optional<std::vector<profile::Profile>> list_profiles(std::string*) override {
    return std::vector<profile::Profile>{web(), tool()};
  }
  std::optional<profile::Profile> get_profile(const std::string& name, std::string*) override {
    for (auto p : {web(), tool()})
      if (p.name == name) return p;
    return std::nullopt;
  }

  std::optional<PolicyInfo> add_policy(const std::string& yaml, std::string* error) override {
    if (yaml.find("kind: TracingPolicy") == std::string::npos) {
      *error = "policy:1: kind: not a TracingPolicy (write kind: TracingPolicy)";
      return std::nullopt;
    }
    PolicyInfo info{"creds", "api", 1, {"Post"}, 0, yaml};
    std::lock_guard lock(mu_);
    policies_.push_back(info);
    return info;
  }
  bool delete_policy(const std::string& name, std::string*) override {
    std::lock_guard lock(mu_);
    return std::erase_if(policies_, [&](const PolicyInfo& p) { return p.name == name; }) > 0;
  }
  std::vector<PolicyInfo> list_policies() override {
    std::lock_guard lock(mu_);
    return policies_;
  }
  Health health() override {
    Health h;
    h.backend = "tracepoint";
    h.checks = 42;
    h.processes = 7;
    return h;
  }

  std::optional<AnnounceResult> announce_container(const ContainerAnnouncement& a, bool* invalid,
                                                   std::string* error) override {
    std::lock_guard lock(mu_);
    last_announcement = a;
    if (a.state.pid == 1) {  // stands for "not in that container's cgroup"
      *invalid = true;
      *error = "pid 1 is in cgroup /init.scope, not in container " + a.state.id + "'s";
      return std::nullopt;
    }
    return AnnounceResult{"web", true, 4242, "/libpod_parent/libpod-" + a.state.id, {"web-kill"}};
  }

  bool refuse_events = false;
  std::optional<ContainerAnnouncement> last_announcement;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<EventQuery> last_query_;
  std::vector<std::shared_ptr<FakeQueue>> queues_;
  std::vector<PolicyInfo> policies_;
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/capscope-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // A folder the server has to make: it must come out owner-only.
    socket_ = (dir_ / "run" / "capscope.sock").string();
    address_ = "unix://" + socket_;
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  Server& start(ServerOptions options = {}) {
    options.address = address_;
    std::string error;
    server_ = Server::start(backend_, options, &error);
    EXPECT_NE(server_, nullptr) << error;
    return *server_;
  }
  Client connect() {
    std::string error;
    auto c = Client::connect(address_, 2s, &error);
    EXPECT_TRUE(c.has_value()) << error;
    return std::move(*c);
  }

  fs::path dir_;
  std::string socket_, address_;
  FakeBackend backend_;
  std::unique_ptr<Server> server_;
};

TEST_F(ApiTest, SocketIsOwnerOnlyInAnOwnerOnlyFolder) {
  start();
  struct stat st {};
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(stat((dir_ / "run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  server_->stop();
  EXPECT_FALSE(fs::exists(socket_)) << "stop() leaves no socket file behind";
}

TEST_F(ApiTest, SocketModeCanBeWidened) {
  ServerOptions o;
  o.socket_mode = 0660;
  start(o);
  struct stat st {};
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
}

// The OCI hook's call: the state's fields reach the agent, the agent's wait is what the
// caller's deadline leaves, and a bad announcement is told apart from a busy agent.
TEST_F(ApiTest, AnnounceContainerCarriesTheStateAndLeavesTheWaitWithinTheDeadline) {
  start();
  auto c = connect();
  const std::string id(64, 'a');
  v1::AnnounceContainerRequest req;
  req.set_id(id);
  req.set_pid(4321);
  req.set_bundle("/run/b");
  (*req.mutable_annotations())["io.kubernetes.cri.container-name"] = "web";
  c.set_call_deadline(1500ms);
  v1::AnnounceContainerResponse resp;
  auto r = c.announce_container(req, &resp);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(resp.container(), "web");
  EXPECT_TRUE(resp.named());
  EXPECT_EQ(resp.cgroup_id(), 4242u);
  ASSERT_EQ(resp.policies_size(), 1);
  EXPECT_EQ(resp.policies(0), "web-kill");
  auto a = backend_.last_announcement;
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->state.id, id);
  EXPECT_EQ(a->state.pid, 4321u);
  EXPECT_EQ(a->state.bundle, "/run/b");
  EXPECT_EQ(a->state.annotations.at("io.kubernetes.cri.container-name"), "web");
  // Time is kept back to answer in: the wait ends before the caller gives up.
  EXPECT_GT(a->wait, 500ms);
  EXPECT_LT(a->wait, 1500ms);

  req.set_pid(1);
  r = c.announce_container(req, &resp);
  EXPECT_EQ(r.kind, CallResult::Kind::Failed) << "FAILED_PRECONDITION: not the request's form";
  EXPECT_NE(r.message.find("gRPC code 9"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("not in container"), std::string::npos) << r.message;
  req.set_pid(0);
  r = c.announce_container(req, &resp);
  EXPECT_EQ(r.kind, CallResult::Kind::InvalidArgument);
  EXPECT_NE(r.message.find("createRuntime"), std::string::npos) << r.message;
  req.set_pid(5);
  req.set_id("../../etc");
  r = c.announce_container(req, &resp);
  EXPECT_EQ(r.kind, CallResult::Kind::InvalidArgument);
  EXPECT_NE(r.message.find("not a container id"), std::string::npos) << r.message;
}

TEST_F(ApiTest, StaleSocketIsReplaced) {
  // What an agent killed with SIGKILL leaves: a socket file nobody listens on.
  fs::create_directories(fs::path(socket_).parent_path());
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);
  ASSERT_TRUE(fs::exists(socket_));
  std::string why;
  EXPECT_EQ(probe_socket(socket_, &why), Probe::Refused);

  start();
  auto c = connect();
  EXPECT_EQ(c.version().api_version(), "v1");
}

TEST_F(ApiTest, LiveAgentIsNotDisplaced) {
  start();
  std::string error;
  ServerOptions o;
  o.address = address_;
  auto second = Server::start(backend_, o, &error);
  EXPECT_EQ(second, nullptr);
  EXPECT_NE(error.find("another process answers there"), std::string::npos) << error;
  // The first one still serves.
  auto c = connect();
  v1::GetHealthResponse h;
  EXPECT_TRUE(c.health(&h).ok());
}

TEST_F(ApiTest, AFileInTheWayIsNamed) {
  fs::create_directories(fs::path(socket_).parent_path());
  std::ofstream(socket_) << "not a socket";
  ServerOptions o;
  o.address = address_;
  std::string error;
  EXPECT_EQ(Server::start(backend_, o, &error), nullptr);
  EXPECT_NE(error.find("is not a socket"), std::string::npos) << error;
  EXPECT_TRUE(fs::exists(socket_)) << "a file that is not a socket is never removed";
}

TEST_F(ApiTest, ProfilesRoundTrip) {
  start();
  auto c = connect();
  v1::ListProfilesResponse list;
  ASSERT_TRUE(c.list_profiles(&list).ok());
  ASSERT_EQ(list.profiles_size(), 2);
  EXPECT_EQ(list.profiles(0).name(), "tool");  // by name
  const auto& w = list.profiles(1);
  EXPECT_EQ(w.name(), "web");
  EXPECT_EQ(w.runs(), 2u);
  EXPECT_EQ(std::vector<std::string>(w.needed().begin(), w.needed().end()),
            (std::vector<std::string>{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}));
  EXPECT_EQ(std::vector<std::string>(w.denied().begin(), w.denied().end()),
            std::vector<std::string>{"CAP_NET_RAW"});
  EXPECT_EQ(std::vector<std::string>(w.probes_only().begin(), w.probes_only().end()),
            std::vector<std::string>{"CAP_SYS_ADMIN"});
  EXPECT_EQ(w.workload_kind(), "Deployment");
  EXPECT_EQ(w.container(), "nginx");

  v1::Profile got;
  ASSERT_TRUE(c.get_profile("web", &got).ok());
  std::string error;
  auto back = profile::from_export_json(nlohmann::json::parse(got.export_json()), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(profile::to_export_json(*back), profile::to_export_json(web()));

  auto missing = c.get_profile("nope", &got);
  EXPECT_EQ(missing.kind, CallResult::Kind::NotFound);
  EXPECT_NE(missing.message.find("no profile named \"nope\""), std::string::npos);
}

TEST_F(ApiTest, CliFetchesProfilesThroughTheAgent) {
  start();
  auto c = connect();
  int rc = 0;
  auto p = cli::remote::fetch_profile(c, "web", &rc);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->needed(), web().needed());
  auto summaries = cli::remote::fetch_summaries(c, &rc);
  ASSERT_TRUE(summaries);
  ASSERT_EQ(summaries->size(), 2u);
  EXPECT_EQ((*summaries)[1].needed, web().needed());
  auto all = cli::remote::fetch_profiles(c, &rc);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 2u);
  EXPECT_FALSE(cli::remote::fetch_profile(c, "nope", &rc));
  EXPECT_EQ(rc, 2) << "an unknown name is the user's error";
}

TEST_F(ApiTest, AdviseIsTheTextTheCliPrints) {
  start();
  auto c = connect();
  profile::Profile p = web();
  for (std::string format : {"k8s", "text", "json", "docker", "compose", "systemd", "setcap"}) {
    advice::Format f{};
    ASSERT_TRUE(advice::parse_format(format, &f));
    v1::AdviseRequest req;
    req.set_name("web");
    req.set_format(format);
    v1::AdviseResponse resp;
    ASSERT_TRUE(c.advise(req, &resp).ok()) << format;
    EXPECT_EQ(resp.text(), advice::render(advice::advise(p), p, f)) << format;
  }
  v1::AdviseRequest req;
  req.set_name("web");
  v1::AdviseResponse resp;
  ASSERT_TRUE(c.advise(req, &resp).ok());
  EXPECT_EQ(std::vector<std::string>(resp.add().begin(), resp.add().end()),
            (std::vector<std::string>{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}));
  EXPECT_EQ(std::vector<std::string>(resp.drop().begin(), resp.drop().end()),
            std::vector<std::string>{"ALL"});
  EXPECT_EQ(std::vector<std::string>(resp.probes().begin(), resp.probes().end()),
            std::vector<std::string>{"CAP_SYS_ADMIN"});

  req.set_format("yaml-please");
  auto bad = c.advise(req, &resp);
  EXPECT_EQ(bad.kind, CallResult::Kind::InvalidArgument);
  EXPECT_NE(bad.message.find("'yaml-please' is not an advice format"), std::string::npos);
}

TEST_F(ApiTest, AdviseAgainstACurrentSpec) {
  std::ifstream in(std::string(CAPSCOPE_FIXTURES) + "/specs/pod.yaml");
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  start();
  auto c = connect();
  v1::AdviseRequest req;
  req.set_name("web");
  req.set_format("text");
  req.set_current_spec(text.str());
  req.set_current_spec_name("pod.yaml");
  v1::AdviseResponse resp;
  auto r = c.advise(req, &resp);
  ASSERT_TRUE(r.ok()) << r.message;

  profile::Profile p = web();
  std::string error;
  auto spec = advice::parse_current_spec(text.str(), "pod.yaml", {}, &error);
  ASSERT_TRUE(spec) << error;
  advice::Advice a = advice::advise(p);
  std::vector<advice::Comparison> all;
  for (const auto& cont : spec->containers) all.push_back(advice::compare(a, p, cont));
  EXPECT_EQ(resp.text(), advice::render_comparisons(all, *spec, a, p, false));

  // Texts Debian 12's yaml-cpp loops on, allocating, in YAML::LoadAll: an
  // answer, not a hung agent.
  for (std::string looping : {"&a,", ",\n", "!t,"}) {
    req.set_current_spec(looping);
    auto stuck = c.advise(req, &resp);
    EXPECT_EQ(stuck.kind, CallResult::Kind::InvalidArgument) << looping << ": " << stuck.message;
    EXPECT_NE(stuck.message.find("pod.yaml:"), std::string::npos) << stuck.message;
  }

  req.set_current_spec("kind: [unclosed");
  auto bad = c.advise(req, &resp);
  EXPECT_EQ(bad.kind, CallResult::Kind::InvalidArgument);
  EXPECT_NE(bad.message.find("pod.yaml"), std::string::npos) << bad.message;
}

TEST_F(ApiTest, EventsStreamWithTheirFiltersConverted) {
  start();
  auto c = connect();
  v1::GetEventsRequest req;
  req.add_pids(42);
  req.add_caps("CAP_NET_RAW");
  req.add_caps("sys_admin");
  req.add_comms("a-very-long-command-name");
  req.set_denied_only(true);
  req.set_rate_limit("1m");
  req.set_rate_limit_scope("process");
  req.add_pods("xwing");
  req.set_selector("app in (rebels), tier!=db");
  req.set_format(v1::EVENT_FORMAT_COMPACT);

  std::thread producer([&] {
    auto q = backend_.wait_for_subscriber();
    ASSERT_NE(q, nullptr);
    for (uint32_t pid = 1; pid <= 3; ++pid) q->push(event(pid));
    q->close();
  });
  std::vector<v1::Event> got;
  std::atomic<bool> stop{false};
  auto r = c.get_events(
      req,
      [&](const v1::Event& e) {
        got.push_back(e);
        return true;
      },
      stop);
  producer.join();
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(got.size(), 4u) << "three events and the last message";
  EXPECT_EQ(got[1].pid(), 2u);
  EXPECT_EQ(got[1].line(), event(2).line);
  EXPECT_EQ(got[1].pod(), "xwing");
  EXPECT_EQ(got[1].capability(), "CAP_NET_RAW");
  EXPECT_FALSE(got[1].denied());
  EXPECT_TRUE(got[2].denied());
  EXPECT_TRUE(got[3].line().empty());
  EXPECT_TRUE(got[3].final());
  EXPECT_EQ(got[3].dropped(), 0u);

  auto q = backend_.last_query();
  ASSERT_TRUE(q);
  EXPECT_EQ(q->format, "compact");
  EXPECT_EQ(q->spec.pids, std::vector<uint32_t>{42});
  EXPECT_EQ(q->spec.cap_mask, (1ULL << kNetRaw) | (1ULL << kSysAdmin));
  EXPECT_EQ(q->spec.comms, std::vector<std::string>{"a-very-long-com"});  // the kernel's 15 bytes
  EXPECT_TRUE(q->spec.denied_only);
  EXPECT_EQ(q->spec.rate_window_ns, 60'000'000'000ULL);
  EXPECT_EQ(q->spec.rate_scope, filter::RateScope::Process);
  EXPECT_TRUE(q->spec.containers_only) << "a pod filter only matches container processes";
  EXPECT_FALSE(q->spec.exclude_unselected) << "the agent's capture serves every subscriber";
  EXPECT_EQ(q->selection.pods, std::vector<std::string>{"xwing"});
  ASSERT_TRUE(q->selection.selector);
  EXPECT_EQ(q->selection.selector->str(), "app in (rebels),tier!=db");
}

TEST_F(ApiTest, BadFiltersAreInvalidArgumentsWithOneLine) {
  start();
  auto c = connect();
  struct Case {
    std::function<void(v1::GetEventsRequest&)> set;
    std::string says;
  };
  std::vector<Case> cases = {
      {[](auto& r) { r.add_caps("CAP_NOPE"); }, "caps (--caps): unknown capability 'CAP_NOPE'"},
      {[](auto& r) { r.set_rate_limit("soon"); }, "rate_limit (--rate-limit): 'soon'"},
      {[](auto& r) { r.set_rate_limit_scope("cluster"); }, "'cluster': use thread, process"},
      {[](auto& r) { r.set_selector("app in (a,b"); }, "selector (--selector):"},
      {[](auto& r) { r.set_format(static_cast<v1::EventFormat>(7)); }, "7 is no event format"},
      {[](auto& r) {
         r.set_host_only(true);
         r.add_pods("xwing");
       },
       "host processes, which are in no pod"},
      {[](auto& r) { r.add_cgroups("/no/such/cgroup/here"); }, "no cgroup v2 directory"},
      {[](auto& r) {
         for (int i = 0; i <= kMaxFilterValues; ++i) r.add_pids(static_cast<uint32_t>(i));
       },
       "at most 1024"},
  };
  std::atomic<bool> stop{false};
  for (const auto& k : cases) {
    v1::GetEventsRequest req;
    k.set(req);
    bool called = false;
    auto r = c.get_events(
        req,
        [&](const v1::Event&) {
          called = true;
          return true;
        },
        stop);
    EXPECT_EQ(r.kind, CallResult::Kind::InvalidArgument) << k.says;
    EXPECT_NE(r.message.find(k.says), std::string::npos) << r.message;
    EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
    EXPECT_FALSE(called);
  }
  EXPECT_FALSE(backend_.last_query()) << "nothing invalid reaches the agent";
}

TEST_F(ApiTest, AgentThatCannotStreamSaysWhy) {
  backend_.refuse_events = true;
  start();
  auto c = connect();
  std::atomic<bool> stop{false};
  auto r = c.get_events(
      {}, [](const v1::Event&) { return true; }, stop);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message.find("--event-mode none"), std::string::npos) << r.message;
}

TEST_F(ApiTest, SlowSubscriberLosesEventsCountedNeverBlocksTheAgent) {
  backend_.queue_capacity = 64;
  start();
  auto c = connect();
  constexpr uint32_t kEvents = 4000;
  std::atomic<bool> produced{false};
  Clock::duration slowest_push{};
  std::thread producer([&] {
    auto q = backend_.wait_for_subscriber();
    ASSERT_NE(q, nullptr);
    // 4 KiB events at a pace the server keeps up with, 16 MiB in all: far more
    // than gRPC buffers for a client that does not read, so the server's
    // Write blocks and the queue behind it overflows.
    for (uint32_t pid = 1; pid <= kEvents; ++pid) {
      auto t0 = Clock::now();
      q->push(event(pid, 4096));
      slowest_push = std::max(slowest_push, Clock::now() - t0);
      std::this_thread::sleep_for(20us);
    }
    produced.store(true);
    q->close();
  });
  uint64_t received = 0, dropped = 0;
  bool final = false;
  std::atomic<bool> stop{false};
  auto r = c.get_events(
      {},
      [&](const v1::Event& e) {
        // Stuck while the agent produces: the reader of a slow terminal.
        while (!produced.load()) std::this_thread::sleep_for(5ms);
        if (!e.line().empty()) ++received;
        dropped = e.dropped();
        final = e.final();
        return true;
      },
      stop);
  producer.join();
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_TRUE(final);
  EXPECT_GT(dropped, 0u);
  EXPECT_GT(received, 0u);
  EXPECT_EQ(received + dropped, kEvents) << "every event either arrived or was counted";
  EXPECT_LT(slowest_push, 100ms) << "the agent's side never waited for the subscriber";
  std::cerr << "slow subscriber: " << received << " received, " << dropped << " dropped\n";
}

TEST_F(ApiTest, StopEndsAttachedStreamsWithinTwoSeconds) {
  start();
  auto idle = connect();
  auto stuck = connect();
  std::atomic<bool> stop{false};
  std::atomic<bool> idle_final{false};
  std::thread idle_reader([&] {
    auto r = idle.get_events(
        {},
        [&](const v1::Event& e) {
          idle_final.store(e.final());
          return true;
        },
        stop);
    EXPECT_TRUE(r.ok()) << r.message;
  });
  auto idle_queue = backend_.wait_for_subscriber();
  ASSERT_NE(idle_queue, nullptr);

  // A second subscriber that stopped reading while events pour in: its
  // server thread sits in a Write that cannot complete.
  std::atomic<bool> release{false};
  std::thread stuck_reader([&] {
    stuck.get_events(
        {},
        [&](const v1::Event&) {
          while (!release.load()) std::this_thread::sleep_for(5ms);
          return true;
        },
        stop);
  });
  auto flood = backend_.wait_for_subscriber(2);
  ASSERT_NE(flood, nullptr);
  std::atomic<bool> flooding{true};
  std::thread flooder([&] {
    uint32_t pid = 0;
    while (flooding.load()) flood->push(event(++pid, 4096));
  });
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(server_->subscribers(), 2u);

  auto t0 = Clock::now();
  server_->stop();
  auto took = Clock::now() - t0;
  EXPECT_LT(took, 2s);
  std::cerr << "stop took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms\n";
  flooding.store(false);
  release.store(true);
  flooder.join();
  idle_reader.join();
  stuck_reader.join();
  EXPECT_TRUE(idle_final.load()) << "a stream ends with its last message";
}

TEST_F(ApiTest, TooManySubscribersAreRefused) {
  ServerOptions o;
  o.max_subscribers = 1;
  start(o);
  auto first = connect();
  auto second = connect();
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    first.get_events(
        {}, [](const v1::Event&) { return true; }, stop);
  });
  ASSERT_NE(backend_.wait_for_subscriber(), nullptr);
  auto r = second.get_events(
      {}, [](const v1::Event&) { return true; }, stop);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message.find("already serves 1 event streams"), std::string::npos) << r.message;
  stop.store(true);
  reader.join();
}

TEST_F(ApiTest, ClientStopsOnItsFlag) {
  start();
  auto c = connect();
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    backend_.wait_for_subscriber();
    std::this_thread::sleep_for(200ms);
    stop.store(true);
  });
  auto t0 = Clock::now();
  auto r = c.get_events(
      {}, [](const v1::Event&) { return true; }, stop);
  stopper.join();
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST_F(ApiTest, Policies) {
  start();
  auto c = connect();
  v1::AddPolicyResponse added;
  auto bad = c.add_policy("kind: Pod\n", &added);
  EXPECT_EQ(bad.kind, CallResult::Kind::InvalidArgument);
  EXPECT_NE(bad.message.find("not a TracingPolicy"), std::string::npos);
  ASSERT_TRUE(c.add_policy("kind: TracingPolicy\nmetadata: {name: creds}\n", &added).ok());
  EXPECT_EQ(added.policy().name(), "creds");
  v1::ListPoliciesResponse list;
  ASSERT_TRUE(c.list_policies(&list).ok());
  ASSERT_EQ(list.policies_size(), 1);
  EXPECT_EQ(list.policies(0).actions(0), "Post");
  EXPECT_TRUE(c.delete_policy("creds").ok());
  auto gone = c.delete_policy("creds");
  EXPECT_EQ(gone.kind, CallResult::Kind::NotFound);
  EXPECT_NE(gone.message.find("no policy named \"creds\""), std::string::npos);
}

TEST_F(ApiTest, HealthAndVersion) {
  start();
  auto c = connect();
  EXPECT_EQ(c.version().version(), CAPSCOPE_VERSION);
  v1::GetHealthResponse h;
  ASSERT_TRUE(c.health(&h).ok());
  EXPECT_EQ(h.status(), "ok");
  EXPECT_EQ(h.version(), CAPSCOPE_VERSION);
  EXPECT_EQ(h.backend(), "tracepoint");
  EXPECT_EQ(h.checks(), 42u);
  EXPECT_EQ(h.subscribers(), 0u);
}

TEST_F(ApiTest, CliChoosesAgentOrStandAlone) {
  std::string error;
  // Default address, nothing there: stand-alone, no error.
  EXPECT_FALSE(cli::remote::connect_agent(address_, false, &error));
  EXPECT_TRUE(error.empty()) << error;
  // Asked for explicitly: an error that says what to do.
  EXPECT_FALSE(cli::remote::connect_agent(address_, true, &error));
  EXPECT_EQ(error, cli::remote::no_agent_message(address_));
  EXPECT_NE(error.find("is `capscope agent` running?"), std::string::npos);

  start();
  error.clear();
  EXPECT_TRUE(cli::remote::connect_agent(address_, false, &error)) << error;
  EXPECT_TRUE(cli::remote::connect_agent(address_, true, &error)) << error;

  // A --db of its own reads that store, unless an agent is asked for as well.
  cli::remote::ServerAddress s{address_, false};
  int rc = 0;
  EXPECT_FALSE(cli::remote::agent_for_profiles(s, "/tmp/other.db", &rc));
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(cli::remote::agent_for_profiles(s, store::kDefaultDbPath, &rc));
  s.given = true;
  EXPECT_TRUE(cli::remote::agent_for_profiles(s, "/tmp/other.db", &rc));
}

TEST(ApiAddress, Forms) {
  EXPECT_EQ(unix_socket_path("unix:///var/run/capscope/capscope.sock"),
            "/var/run/capscope/capscope.sock");
  EXPECT_EQ(unix_socket_path("unix:/run/x.sock"), "/run/x.sock");
  EXPECT_EQ(unix_socket_path("/run/x.sock"), "/run/x.sock");
  EXPECT_EQ(unix_socket_path("localhost:54321"), std::nullopt);
  EXPECT_EQ(grpc_target("unix:///run/x.sock"), "unix:/run/x.sock");
  EXPECT_EQ(grpc_target("127.0.0.1:2114"), "127.0.0.1:2114");
}

TEST(ApiAddress, TcpWithNobodyIsNoAgent) {
  std::string error;
  ConnectProblem problem{};
  // Port 1 on loopback: nothing listens there.
  EXPECT_FALSE(Client::connect("127.0.0.1:1", 2s, &error, &problem));
  EXPECT_EQ(problem, ConnectProblem::NoAgent) << error;
}

}  // namespace
}  // namespace capscope::api
