#include "enrich/runtime/cri_client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "cri/api.grpc.pb.h"
#include "util/strings.h"

namespace capscope {

namespace v1 = runtime::v1;
using Clock = std::chrono::system_clock;

struct CriClient::Stubs {
  explicit Stubs(const std::string& path);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::RuntimeService::Stub> runtime;
};

namespace {

std::string socket_path(std::string socket) {
  for (std::string_view scheme : {"unix://", "unix:"}) {
    if (socket.starts_with(scheme)) return socket.substr(scheme.size());
  }
  return socket;
}

// Why the socket cannot be what we want, or empty. Said before gRPC tries, so
// the message names the actual problem instead of gRPC's "failed to connect".
std::string socket_problem(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "does not exist";
  if (!S_ISSOCK(st.st_mode)) return "is not a socket";
  return "";
}

[[noreturn]] void unavailable(const std::string& path, std::string_view problem) {
  throw RuntimeError(RuntimeError::Kind::Unavailable,
                     fmt::format("CRI socket {}: {}; start containerd or CRI-O, or give the "
                                 "path of its CRI socket",
                                 path, problem));
}

// NOT_FOUND is the runtime's answer about the id; everything else (refused,
// deadline, protocol errors) means the runtime did not answer properly.
[[noreturn]] void throw_status(const std::string& path, const char* call, std::string_view id,
                               const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::NOT_FOUND)
    throw RuntimeError(RuntimeError::Kind::NotFound,
                       fmt::format("CRI {}: {} not found: {}", path, id, s.error_message()));
  unavailable(path, fmt::format("{} failed: {} (gRPC code {})", call, s.error_message(),
                                static_cast<int>(s.error_code())));
}

// One deadline for every call a public method makes.
class Call {
 public:
  Call(const std::string& path, Clock::time_point deadline) : path_(path), deadline_(deadline) {
    if (auto problem = socket_problem(path); !problem.empty()) unavailable(path, problem);
  }
  grpc::ClientContext& context() {
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(deadline_);
    return *ctx_;
  }
  void check(const char* call, std::string_view id, const grpc::Status& s) const {
    if (!s.ok()) throw_status(path_, call, id, s);
  }

 private:
  const std::string& path_;
  Clock::time_point deadline_;
  std::unique_ptr<grpc::ClientContext> ctx_;
};

Labels to_labels(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

// containerd and CRI-O put the container's host pid in the verbose info, as
// JSON under "info"; 0 when absent or unreadable.
uint32_t info_pid(const google::protobuf::Map<std::string, std::string>& info) {
  auto it = info.find("info");
  if (it == info.end()) return 0;
  auto j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_object()) return 0;
  auto pid = j.find("pid");
  if (pid == j.end() || !pid->is_number_unsigned()) return 0;
  return pid->get<uint32_t>();
}

void fill_status(const v1::ContainerStatus& st, ContainerInfo& info) {
  info.id = st.id();
  info.labels = to_labels(st.labels());
  info.name = st.metadata().name();
  if (info.name.empty() && info.labels.contains("io.kubernetes.container.name"))
    info.name = info.labels.at("io.kubernetes.container.name");
  info.image = st.image().image().empty() ? st.image_ref() : st.image().image();
  info.image_id = st.image_ref();
  info.started_at_ns = st.started_at();
  info.running = st.state() == v1::CONTAINER_RUNNING;
}

void fill_container(const v1::ContainerStatusResponse& r, ContainerInfo& info) {
  fill_status(r.status(), info);
  info.pid = info.running ? info_pid(r.info()) : 0;
}

void fill_pod(const v1::PodSandboxStatus& pod, ContainerInfo& info) {
  info.pod_name = pod.metadata().name();
  info.pod_namespace = pod.metadata().namespace_();
  info.pod_uid = pod.metadata().uid();
  info.pod_labels = to_labels(pod.labels());
  info.pod_annotations = to_labels(pod.annotations());
}

}  // namespace

CriClient::Stubs::Stubs(const std::string& path) {
  grpc::ChannelArguments args;
  // gRPC backs off up to two minutes between reconnects by default; a runtime
  // that restarts should be asked again within seconds.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  // ListContainers on a busy node exceeds gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(64 << 20);
  channel = grpc::CreateCustomChannel("unix://" + path, grpc::InsecureChannelCredentials(), args);
  runtime = v1::RuntimeService::NewStub(channel);
}

std::string cri_runtime_name(std::string_view runtime_name) {
  return util::ascii_lower(runtime_name);
}

CriClient::CriClient(std::string socket, std::string expected_runtime,
                     std::chrono::milliseconds deadline)
    : socket_(socket_path(std::move(socket))),
      runtime_(std::move(expected_runtime)),
      deadline_(deadline),
      stubs_(std::make_unique<Stubs>(socket_)) {}

CriClient::~CriClient() = default;

std::string CriClient::version() {
  Call call(socket_, Clock::now() + deadline_);
  v1::VersionRequest req;
  req.set_version("v1");
  v1::VersionResponse resp;
  call.check("Version", "", stubs_->runtime->Version(&call.context(), req, &resp));
  if (!resp.runtime_name().empty()) runtime_ = cri_runtime_name(resp.runtime_name());
  return resp.runtime_version();
}

ContainerInfo CriClient::inspect(std::string_view id) {
  Call call(socket_, Clock::now() + deadline_);
  ContainerInfo info;
  info.runtime = runtime_;

  v1::ContainerStatusRequest status_req;
  status_req.set_container_id(std::string(id));
  status_req.set_verbose(true);  // the pid; the rest of the info is ignored
  v1::ContainerStatusResponse status;
  call.check("ContainerStatus", id,
             stubs_->runtime->ContainerStatus(&call.context(), status_req, &status));
  fill_container(status, info);

  v1::ListContainersRequest list_req;
  list_req.mutable_filter()->set_id(info.id);
  v1::ListContainersResponse list;
  call.check("ListContainers", id,
             stubs_->runtime->ListContainers(&call.context(), list_req, &list));
  for (const auto& c : list.containers())
    if (c.id() == info.id) info.pod_id = c.pod_sandbox_id();
  if (info.pod_id.empty()) return info;  // removed between the two calls

  v1::PodSandboxStatusRequest pod_req;
  pod_req.set_pod_sandbox_id(info.pod_id);
  v1::PodSandboxStatusResponse pod;
  auto s = stubs_->runtime->PodSandboxStatus(&call.context(), pod_req, &pod);
  // A sandbox removed since: the container is known, its pod no longer is.
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) return info;
  call.check("PodSandboxStatus", info.pod_id, s);
  fill_pod(pod.status(), info);
  return info;
}

std::optional<CreatedContainer> created_from_cri_event(const v1::ContainerEventResponse& ev,
                                                       const std::string& runtime) {
  if (ev.container_event_type() != v1::CONTAINER_CREATED_EVENT || ev.container_id().empty())
    return std::nullopt;
  if (ev.has_pod_sandbox_status() && ev.pod_sandbox_status().id() == ev.container_id())
    return std::nullopt;
  CreatedContainer c;
  c.info.id = ev.container_id();
  c.info.runtime = runtime;
  const auto& statuses = ev.containers_statuses();
  auto own = std::find_if(statuses.begin(), statuses.end(), [&](const v1::ContainerStatus& s) {
    return s.id() == ev.container_id();
  });
  // Without its own status or its pod's, the event only says "ask now".
  c.complete = own != statuses.end() && ev.has_pod_sandbox_status();
  if (!c.complete) return c;
  fill_status(*own, c.info);
  c.info.pod_id = ev.pod_sandbox_status().id();
  fill_pod(ev.pod_sandbox_status(), c.info);
  return c;
}

// The stream has no deadline (a quiet runtime has nothing to say); a second
// thread cancels it once stopped() says so, as gRPC's blocking Read cannot poll.
bool CriClient::follow_creates(const CreatedFn& on_created, const StoppedFn& stopped) {
  if (auto problem = socket_problem(socket_); !problem.empty()) unavailable(socket_, problem);
  grpc::ClientContext ctx;
  std::atomic<bool> done{false};
  std::thread canceller([&] {
    while (!done.load()) {
      if (stopped()) {
        ctx.TryCancel();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto reader = stubs_->runtime->GetContainerEvents(&ctx, v1::GetEventsRequest{});
  v1::ContainerEventResponse ev;
  while (reader->Read(&ev)) {
    if (auto created = created_from_cri_event(ev, runtime_)) on_created(std::move(*created));
  }
  grpc::Status s = reader->Finish();
  done = true;
  canceller.join();
  if (stopped()) return true;
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return false;
  unavailable(socket_, s.ok() ? std::string("GetContainerEvents: the event stream ended")
                              : fmt::format("GetContainerEvents failed: {} (gRPC code {})",
                                            s.error_message(), static_cast<int>(s.error_code())));
}

std::vector<std::string> CriClient::list_running() {
  Call call(socket_, Clock::now() + deadline_);
  v1::ListContainersRequest req;
  req.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
  v1::ListContainersResponse resp;
  call.check("ListContainers", "", stubs_->runtime->ListContainers(&call.context(), req, &resp));
  std::vector<std::string> ids;
  ids.reserve(static_cast<size_t>(resp.containers_size()));
  for (const auto& c : resp.containers()) ids.push_back(c.id());
  return ids;
}

}  // namespace capscope
