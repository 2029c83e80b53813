// CriClient's GetContainerEvents stream against a fake CRI runtime served by
// gRPC on a unix socket in this process (Debian 12's containerd 1.6 does not
// implement the stream; tests/runtime/cri_runtime_test.cpp checks that a real
// containerd without it is told apart), and the reading of one create event.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cri/api.grpc.pb.h"
#include "enrich/runtime/cri_client.h"

using capscope::CreatedContainer;
using capscope::CriClient;
using capscope::RuntimeError;
namespace v1 = runtime::v1;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kContainerId =
    "5d1c0e3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d";
constexpr const char* kSandboxId =
    "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

// A create event as containerd 1.7 sends it: the pod's status and the statuses
// of the pod's containers, the new one among them.
v1::ContainerEventResponse create_event(const std::string& id = kContainerId) {
  v1::ContainerEventResponse ev;
  ev.set_container_id(id);
  ev.set_container_event_type(v1::CONTAINER_CREATED_EVENT);
  ev.set_created_at(1764000000000000000);
  auto* pod = ev.mutable_pod_sandbox_status();
  pod->set_id(kSandboxId);
  pod->mutable_metadata()->set_name("web-7d4b9c-x2x9z");
  pod->mutable_metadata()->set_namespace_("shop");
  pod->mutable_metadata()->set_uid("0c7c3c52-7a43-4b1e-9a3e-2f1c9d8e7b6a");
  (*pod->mutable_labels())["app"] = "web";
  (*pod->mutable_labels())["pod-template-hash"] = "7d4b9c";
  auto* other = ev.add_containers_statuses();
  other->set_id(std::string(64, 'e'));
  other->mutable_metadata()->set_name("sidecar");
  auto* own = ev.add_containers_statuses();
  own->set_id(id);
  own->mutable_metadata()->set_name("nginx");
  own->mutable_image()->set_image("docker.io/library/nginx:1.25");
  own->set_image_ref("sha256:0123");
  own->set_state(v1::CONTAINER_CREATED);
  (*own->mutable_labels())["io.kubernetes.container.name"] = "nginx";
  return ev;
}

TEST(CriEvents, ACreateEventNamesTheContainerAndItsPod) {
  auto c = capscope::created_from_cri_event(create_event(), "containerd");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->complete);
  EXPECT_EQ(c->info.id, kContainerId);
  EXPECT_EQ(c->info.runtime, "containerd");
  EXPECT_EQ(c->info.name, "nginx");
  EXPECT_EQ(c->info.image, "docker.io/library/nginx:1.25");
  EXPECT_EQ(c->info.pod_id, kSandboxId);
  EXPECT_EQ(c->info.pod_name, "web-7d4b9c-x2x9z");
  EXPECT_EQ(c->info.pod_namespace, "shop");
  EXPECT_EQ(c->info.pod_labels.at("app"), "web");
  EXPECT_FALSE(c->info.running);
}

TEST(CriEvents, OtherEventsAndTheSandboxesOwnAreNotContainersCreated) {
  auto started = create_event();
  started.set_container_event_type(v1::CONTAINER_STARTED_EVENT);
  EXPECT_FALSE(capscope::created_from_cri_event(started, "containerd"));
  // containerd also reports its sandboxes: the id is the pod's, not a container's.
  EXPECT_FALSE(capscope::created_from_cri_event(create_event(kSandboxId), "containerd"));
}

TEST(CriEvents, AnEventWithoutTheStatusesOnlyAsksForAnInspect) {
  auto bare = create_event();
  bare.clear_containers_statuses();
  auto c = capscope::created_from_cri_event(bare, "cri-o");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->complete);
  EXPECT_EQ(c->info.id, kContainerId);
  EXPECT_EQ(c->info.runtime, "cri-o");
  EXPECT_TRUE(c->info.name.empty());
  auto podless = create_event();
  podless.clear_pod_sandbox_status();
  EXPECT_FALSE(capscope::created_from_cri_event(podless, "cri-o")->complete);
}

// A runtime whose event stream sends `events`, then stays open until the
// client goes (or, with end_after_events, ends it with `end`).
class FakeRuntime final : public v1::RuntimeService::Service {
 public:
  std::vector<v1::ContainerEventResponse> events;
  bool end_after_events = false;
  grpc::Status end = grpc::Status::OK;
  std::atomic<bool> client_gone{false};

  grpc::Status GetContainerEvents(grpc::ServerContext* ctx, const v1::GetEventsRequest*,
                                  grpc::ServerWriter<v1::ContainerEventResponse>* w) override {
    for (const auto& ev : events) w->Write(ev);
    if (end_after_events) return end;
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(10ms);
    client_gone = true;
    return grpc::Status::CANCELLED;
  }
};

// The service GetContainerEvents is missing from, as in containerd 1.6.
class OldRuntime final : public v1::RuntimeService::Service {};

class CriEventStream : public ::testing::Test {
 protected:
  void serve(grpc::Service* service) {
    socket_ = fs::temp_directory_path() / ("capscope-cri-events-" + std::to_string(getpid()));
    fs::remove(socket_);
    grpc::ServerBuilder b;
    b.AddListeningPort("unix://" + socket_.string(), grpc::InsecureServerCredentials());
    b.RegisterService(service);
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_) << "cannot serve on " << socket_;
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 1s);
    fs::remove(socket_);
  }

  // follow_creates on a thread of its own until `stop` is set; what it returned.
  struct Follow {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<CreatedContainer> created;
    std::atomic<bool> stop{false};
    std::atomic<int> result{-1};  // -1 running, 0 false, 1 true, 2 threw
    std::string error;
  };
  std::thread follow(CriClient& client, Follow& f) {
    return std::thread([&client, &f] {
      try {
        bool r = client.follow_creates(
            [&f](CreatedContainer c) {
              std::lock_guard lock(f.mu);
              f.created.push_back(std::move(c));
              f.cv.notify_all();
            },
            [&f] { return f.stop.load(); });
        f.result = r ? 1 : 0;
      } catch (const RuntimeError& e) {
        f.error = e.what();
        f.result = 2;
      }
    });
  }

  fs::path socket_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(CriEventStream, CreatesArePublishedAndAStopEndsTheStreamAtOnce) {
  FakeRuntime runtime;
  runtime.events = {create_event(), create_event(kSandboxId)};
  auto started = create_event();
  started.set_container_event_type(v1::CONTAINER_STARTED_EVENT);
  runtime.events.push_back(started);
  serve(&runtime);
  CriClient client(socket_.string(), "containerd");
  Follow f;
  std::thread t = follow(client, f);
  {
    std::unique_lock lock(f.mu);
    ASSERT_TRUE(f.cv.wait_for(lock, 10s, [&] { return !f.created.empty(); }));
  }
  std::this_thread::sleep_for(200ms);  // the sandbox's and the start event, if they were taken
  auto stop_at = std::chrono::steady_clock::now();
  f.stop = true;
  t.join();
  auto took = std::chrono::steady_clock::now() - stop_at;
  EXPECT_EQ(f.result, 1) << f.error;
  EXPECT_LT(took, 500ms);
  ASSERT_EQ(f.created.size(), 1U);
  EXPECT_EQ(f.created[0].info.name, "nginx");
  EXPECT_EQ(f.created[0].info.pod_namespace, "shop");
  EXPECT_TRUE(f.created[0].complete);
  server_->Shutdown(std::chrono::system_clock::now() + 1s);
  EXPECT_TRUE(runtime.client_gone.load());
}

TEST_F(CriEventStream, ARuntimeWithoutTheStreamSaysSoAtOnce) {
  OldRuntime runtime;
  serve(&runtime);
  CriClient client(socket_.string(), "containerd");
  Follow f;
  auto start = std::chrono::steady_clock::now();
  std::thread t = follow(client, f);
  t.join();
  EXPECT_EQ(f.result, 0) << f.error;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(CriEventStream, AStreamThatEndsOrFailsIsUnavailable) {
  FakeRuntime runtime;
  runtime.end_after_events = true;
  runtime.events = {create_event()};
  serve(&runtime);
  CriClient client(socket_.string(), "containerd");
  {
    Follow f;
    std::thread t = follow(client, f);
    t.join();
    EXPECT_EQ(f.result, 2);
    EXPECT_NE(f.error.find("the event stream ended"), std::string::npos) << f.error;
    EXPECT_EQ(f.created.size(), 1U);  // what came before the end was published
  }
  runtime.end = grpc::Status(grpc::StatusCode::INTERNAL, "events broker gone");
  {
    Follow f;
    std::thread t = follow(client, f);
    t.join();
    EXPECT_EQ(f.result, 2);
    EXPECT_NE(f.error.find("GetContainerEvents failed: events broker gone"), std::string::npos)
        << f.error;
  }
}

TEST(CriEvents, NoSocketIsUnavailableWithoutWaiting) {
  CriClient client("/nonexistent/capscope-cri.sock", "containerd");
  try {
    client.follow_creates([](CreatedContainer) {}, [] { return false; });
    FAIL() << "no error";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
}

}  // namespace
