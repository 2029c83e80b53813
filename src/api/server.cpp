#include "api/server.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "api/event_query.h"
#include "api/handlers.h"
#include "capscope/v1/capscope.grpc.pb.h"

namespace capscope::api {

namespace {

using grpc::ServerContext;
using grpc::Status;
using grpc::StatusCode;

// How often a stream looks at the agent's queue, its client and the stop flag.
constexpr std::chrono::milliseconds kPoll{100};

void fill_event(const StreamEvent& e, v1::Event* out) {
  out->set_line(e.line);
  out->set_time_unix_nano(e.time_ns);
  out->set_capability(e.capability);
  out->set_denied(e.denied);
  out->set_pid(e.pid);
  out->set_namespace_(e.k8s_namespace);
  out->set_pod(e.pod);
  out->set_container(e.container);
  out->set_policy(e.policy);
}

// A handler that throws answers INTERNAL with the reason instead of gRPC's
// anonymous "unexpected error".
template <typename Fn>
Status guarded(const char* call, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    spdlog::warn("API {}: {}", call, e.what());
    return {StatusCode::INTERNAL, fmt::format("{}: {}", call, e.what())};
  }
}

// Counts a stream in for as long as it lives; refused when the count is full.
class SubscriberSlot {
 public:
  SubscriberSlot(std::atomic<size_t>& count, size_t max) : count_(count) {
    taken_ = count_.fetch_add(1) < max;
  }
  ~SubscriberSlot() { count_.fetch_sub(1); }
  SubscriberSlot(const SubscriberSlot&) = delete;
  SubscriberSlot& operator=(const SubscriberSlot&) = delete;
  [[nodiscard]] bool taken() const { return taken_; }

 private:
  std::atomic<size_t>& count_;
  bool taken_ = false;
};

// What a caller's deadline leaves for waiting on a runtime: the time to answer is
// kept back, and a call without a deadline waits at most kMaxAnnounceWait.
constexpr std::chrono::milliseconds kAnswerMargin{150};
constexpr std::chrono::milliseconds kMaxAnnounceWait{5000};

std::chrono::milliseconds wait_within(std::chrono::system_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::system_clock::now());
  return std::clamp(left - kAnswerMargin, std::chrono::milliseconds(0), kMaxAnnounceWait);
}

}  // namespace

class Service;

struct Server::Impl {
  Impl(Backend& b, ServerOptions o) : backend(b), options(std::move(o)) {}
  Backend& backend;
  ServerOptions options;
  std::optional<std::string> socket_path;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> subscribers{0};
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  std::mutex stop_mu;
  bool stopped = false;
};

class Service final : public v1::CapscopeAgent::Service {
 public:
  explicit Service(Server::Impl& impl) : impl_(impl), backend_(impl.backend) {}

  Status GetEvents(ServerContext* ctx, const v1::GetEventsRequest* req,
                   grpc::ServerWriter<v1::Event>* writer) override {
    return guarded("GetEvents", [&] { return get_events(ctx, *req, writer); });
  }
  Status ListProfiles(ServerContext*, const v1::ListProfilesRequest* req,
                      v1::ListProfilesResponse* resp) override {
    return guarded("ListProfiles", [&] { return list_profiles(backend_, *req, resp); });
  }
  Status GetProfile(ServerContext*, const v1::GetProfileRequest* req, v1::Profile* resp) override {
    return guarded("GetProfile", [&] { return get_profile(backend_, *req, resp); });
  }
  Status Advise(ServerContext*, const v1::AdviseRequest* req, v1::AdviseResponse* resp) override {
    return guarded("Advise", [&] { return advise(backend_, *req, resp); });
  }
  Status AddPolicy(ServerContext*, const v1::AddPolicyRequest* req,
                   v1::AddPolicyResponse* resp) override {
    return guarded("AddPolicy", [&] { return add_policy(backend_, *req, resp); });
  }
  Status DeletePolicy(ServerContext*, const v1::DeletePolicyRequest* req,
                      v1::DeletePolicyResponse* resp) override {
    return guarded("DeletePolicy", [&] { return delete_policy(backend_, *req, resp); });
  }
  Status ListPolicies(ServerContext*, const v1::ListPoliciesRequest* req,
                      v1::ListPoliciesResponse* resp) override {
    return guarded("ListPolicies", [&] { return list_policies(backend_, *req, resp); });
  }
  Status GetHealth(ServerContext*, const v1::GetHealthRequest* req,
                   v1::GetHealthResponse* resp) override {
    return guarded("GetHealth", [&] {
      Status s = get_health(backend_, *req, resp);
      resp->set_subscribers(impl_.subscribers.load());
      return s;
    });
  }
  Status AnnounceContainer(ServerContext* ctx, const v1::AnnounceContainerRequest* req,
                           v1::AnnounceContainerResponse* resp) override {
    return guarded("AnnounceContainer", [&] {
      return announce_container(backend_, *req, wait_within(ctx->deadline()), resp);
    });
  }
  Status GetVersion(ServerContext*, const v1::GetVersionRequest* req,
                    v1::GetVersionResponse* resp) override {
    return get_version(*req, resp);
  }

 private:
  Status get_events(ServerContext* ctx, const v1::GetEventsRequest& req,
                    grpc::ServerWriter<v1::Event>* writer) {
    std::string error;
    auto query = to_event_query(req, &error);
    if (!query) return {StatusCode::INVALID_ARGUMENT, error};
    SubscriberSlot slot(impl_.subscribers, impl_.options.max_subscribers);
    if (!slot.taken())
      return {StatusCode::RESOURCE_EXHAUSTED,
              fmt::format("the agent already serves {} event streams (its limit): end one first",
                          impl_.options.max_subscribers)};
    auto stream = backend_.subscribe(*query, &error);
    if (!stream) return {StatusCode::FAILED_PRECONDITION, error};
    return pump(ctx, *stream, writer);
  }

  // Copies the agent's queue to the client until one side ends. A client that
  // reads slowly blocks only this thread in Write; the agent keeps filling the
  // bounded queue and counts what does not fit, and every message says so.
  Status pump(ServerContext* ctx, EventStream& stream, grpc::ServerWriter<v1::Event>* writer) {
    uint64_t reported_dropped = 0;
    while (!ctx->IsCancelled()) {
      if (impl_.stopping.load()) return finish(stream, writer);
      auto event = stream.next(kPoll);
      uint64_t dropped = stream.dropped();
      if (!event) {
        if (stream.closed()) return finish(stream, writer);
        if (dropped == reported_dropped) continue;
      }
      v1::Event message;
      if (event) fill_event(*event, &message);
      message.set_dropped(dropped);
      if (!writer->Write(message)) break;  // the client went away
      reported_dropped = dropped;
    }
    return {StatusCode::CANCELLED, "the client ended the stream"};
  }

  static Status finish(const EventStream& stream, grpc::ServerWriter<v1::Event>* writer) {
    v1::Event last;
    last.set_dropped(stream.dropped());
    last.set_final(true);
    writer->Write(last);
    return Status::OK;
  }

  Server::Impl& impl_;
  Backend& backend_;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(); }

const std::string& Server::address() const { return impl_->options.address; }

size_t Server::subscribers() const { return impl_->subscribers.load(); }

std::unique_ptr<Server> Server::start(Backend& backend, const ServerOptions& options,
                                      std::string* error) {
  std::string why;
  auto server = listen(backend, options, &why);
  if (!server) *error = fmt::format("--server-address {}: {}", options.address, why);
  return server;
}

std::unique_ptr<Server> Server::listen(Backend& backend, const ServerOptions& options,
                                       std::string* error) {
  auto impl = std::make_unique<Impl>(backend, options);
  impl->socket_path = unix_socket_path(options.address);
  if (impl->socket_path && !prepare_socket_path(*impl->socket_path, error)) return nullptr;
  impl->service = std::make_unique<Service>(*impl);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(grpc_target(options.address), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || (!impl->socket_path && port == 0)) {
    *error =
        "cannot listen there (in use, or not an address: write unix:///path/to.sock or "
        "HOST:PORT)";
    if (impl->server) impl->server->Shutdown();
    return nullptr;
  }
  if (impl->socket_path && chmod(impl->socket_path->c_str(), options.socket_mode) != 0) {
    *error = fmt::format("cannot set the mode of {}: {}", *impl->socket_path, std::strerror(errno));
    impl->server->Shutdown();
    unlink(impl->socket_path->c_str());
    return nullptr;
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::stop() {
  std::lock_guard lock(impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Streams see the flag within a poll and end with their last message; what
  // is still running at the deadline (a Write to a client that stopped
  // reading) is cancelled by gRPC.
  impl_->stopping.store(true);
  impl_->server->Shutdown(std::chrono::system_clock::now() + impl_->options.stop_grace);
  impl_->server->Wait();
  if (impl_->socket_path) unlink(impl_->socket_path->c_str());
}

}  // namespace capscope::api
