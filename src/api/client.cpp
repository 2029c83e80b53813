#include "api/client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "api/handlers.h"
#include "api/socket.h"
#include "capscope/v1/capscope.grpc.pb.h"

namespace capscope::api {

namespace {

using Clock = std::chrono::system_clock;

CallResult to_result(const grpc::Status& s, const std::string& address) {
  using Kind = CallResult::Kind;
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return {};
    case grpc::StatusCode::INVALID_ARGUMENT:
      return {Kind::InvalidArgument, s.error_message()};
    case grpc::StatusCode::NOT_FOUND:
      return {Kind::NotFound, s.error_message()};
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return {Kind::Unavailable,
              fmt::format("the agent at {} did not answer: {}", address, s.error_message())};
    default:
      return {Kind::Failed, fmt::format("the agent at {}: {} (gRPC code {})", address,
                                        s.error_message(), static_cast<int>(s.error_code()))};
  }
}

// Cancels a call when `stop` turns true, from a thread of its own: the reading
// thread is blocked in Read and cannot look.
class CancelWatch {
 public:
  CancelWatch(grpc::ClientContext& ctx, const std::atomic<bool>& stop)
      : thread_([this, &ctx, &stop] { watch(ctx, stop); }) {}
  ~CancelWatch() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  CancelWatch(const CancelWatch&) = delete;
  CancelWatch& operator=(const CancelWatch&) = delete;
  [[nodiscard]] bool fired() const { return fired_.load(); }

 private:
  void watch(grpc::ClientContext& ctx, const std::atomic<bool>& stop) {
    std::unique_lock lock(mu_);
    while (!done_) {
      if (stop.load()) {
        fired_.store(true);
        ctx.TryCancel();
        return;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace

struct Client::Impl {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::CapscopeAgent::Stub> stub;
  v1::GetVersionResponse version;

  std::unique_ptr<grpc::ClientContext> context(std::chrono::milliseconds deadline) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(Clock::now() + deadline);
    return ctx;
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

const std::string& Client::address() const { return impl_->address; }
const v1::GetVersionResponse& Client::version() const { return impl_->version; }

namespace {

// For a unix socket, the file and the listener first: they tell "no agent"
// from "not allowed" more exactly than gRPC's "failed to connect".
bool socket_answers(const std::string& address, std::string* error, ConnectProblem* problem) {
  auto path = unix_socket_path(address);
  if (!path) return true;
  std::string message;
  switch (probe_socket(*path, &message)) {
    case Probe::Answers:
      return true;
    case Probe::Missing:
    case Probe::Refused:
      *problem = ConnectProblem::NoAgent;
      *error = fmt::format("no capscope agent at {}", address);
      return false;
    case Probe::Denied:
      *problem = ConnectProblem::Denied;
      break;
    case Probe::NotSocket:
    case Probe::Error:
      *problem = ConnectProblem::Broken;
      break;
  }
  *error = fmt::format("capscope agent at {}: {}", address, message);
  return false;
}

}  // namespace

std::optional<Client> Client::connect(const std::string& address,
                                      std::chrono::milliseconds deadline, std::string* error,
                                      ConnectProblem* problem) {
  ConnectProblem ignored{};
  if (!problem) problem = &ignored;
  if (!socket_answers(address, error, problem)) return std::nullopt;
  auto impl = std::make_unique<Impl>();
  impl->address = address;
  grpc::ChannelArguments args;
  // A store of many profiles makes a ListProfiles answer larger than gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(64 << 20);
  impl->channel =
      grpc::CreateCustomChannel(grpc_target(address), grpc::InsecureChannelCredentials(), args);
  impl->stub = v1::CapscopeAgent::NewStub(impl->channel);
  auto ctx = impl->context(deadline);
  grpc::Status s = impl->stub->GetVersion(ctx.get(), v1::GetVersionRequest(), &impl->version);
  bool tcp_nobody = !unix_socket_path(address) && s.error_code() == grpc::StatusCode::UNAVAILABLE;
  if (tcp_nobody) {
    *problem = ConnectProblem::NoAgent;
    *error = fmt::format("no capscope agent at {}", address);
    return std::nullopt;
  }
  if (!s.ok() || impl->version.api_version() != kApiVersion) {
    *problem = ConnectProblem::Broken;
    *error = s.ok() ? fmt::format(
                          "{} serves capscope API {}, this capscope speaks {}: use the "
                          "capscope of the agent's version",
                          address, impl->version.api_version(), kApiVersion)
                    : fmt::format("{} answers, but not as a capscope agent: {}", address,
                                  s.error_message());
    return std::nullopt;
  }
  return Client(std::move(impl));
}

CallResult Client::list_profiles(v1::ListProfilesResponse* out) {
  auto ctx = impl_->context(call_deadline_);
  return to_result(impl_->stub->ListProfiles(ctx.get(), v1::ListProfilesRequest(), out),
                   impl_->address);
}

CallResult Client::get_profile(const std::string& name, v1::Profile* out) {
  auto ctx = impl_->context(call_deadline_);
  v1::GetProfileRequest req;
  req.set_name(name);
  return to_result(impl_->stub->GetProfile(ctx.get(), req, out), impl_->address);
}

CallResult Client::advise(const v1::AdviseRequest& request, v1::AdviseResponse* out) {
  auto ctx = impl_->context(call_deadline_);
  return to_result(impl_->stub->Advise(ctx.get(), request, out), impl_->address);
}

CallResult Client::add_policy(const std::string& yaml, v1::AddPolicyResponse* out) {
  auto ctx = impl_->context(call_deadline_);
  v1::AddPolicyRequest req;
  req.set_yaml(yaml);
  return to_result(impl_->stub->AddPolicy(ctx.get(), req, out), impl_->address);
}

CallResult Client::delete_policy(const std::string& name) {
  auto ctx = impl_->context(call_deadline_);
  v1::DeletePolicyRequest req;
  req.set_name(name);
  v1::DeletePolicyResponse resp;
  return to_result(impl_->stub->DeletePolicy(ctx.get(), req, &resp), impl_->address);
}

CallResult Client::list_policies(v1::ListPoliciesResponse* out) {
  auto ctx = impl_->context(call_deadline_);
  return to_result(impl_->stub->ListPolicies(ctx.get(), v1::ListPoliciesRequest(), out),
                   impl_->address);
}

CallResult Client::health(v1::GetHealthResponse* out) {
  auto ctx = impl_->context(call_deadline_);
  return to_result(impl_->stub->GetHealth(ctx.get(), v1::GetHealthRequest(), out), impl_->address);
}

CallResult Client::announce_container(const v1::AnnounceContainerRequest& request,
                                      v1::AnnounceContainerResponse* out) {
  auto ctx = impl_->context(call_deadline_);
  return to_result(impl_->stub->AnnounceContainer(ctx.get(), request, out), impl_->address);
}

CallResult Client::get_events(const v1::GetEventsRequest& request,
                              const std::function<bool(const v1::Event&)>& on_event,
                              const std::atomic<bool>& stop) {
  grpc::ClientContext ctx;
  auto reader = impl_->stub->GetEvents(&ctx, request);
  bool enough = false;
  grpc::Status status;
  {
    CancelWatch watch(ctx, stop);
    v1::Event event;
    while (reader->Read(&event)) {
      if (!on_event(event)) {
        enough = true;
        ctx.TryCancel();
        break;
      }
    }
    // After a cancel, Read returns false at once; Finish wants the stream drained.
    while (reader->Read(&event)) {
    }
    status = reader->Finish();
    enough = enough || watch.fired();
  }
  if (enough && status.error_code() == grpc::StatusCode::CANCELLED) return {};
  return to_result(status, impl_->address);
}

}  // namespace capscope::api
