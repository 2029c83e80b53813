// RuntimeClient for the Kubernetes Container Runtime Interface (CRI, gRPC
// package runtime.v1, proto/cri/api.proto) over a unix socket: containerd's
// CRI plugin and CRI-O. Each public call has one deadline for all the gRPC
// calls it makes, so a hung runtime costs the resolver at most that long
// before it degrades to cgroup-only attribution.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "enrich/runtime/container_info.h"

namespace runtime::v1 {
class ContainerEventResponse;
}  // namespace runtime::v1

namespace capscope {

inline constexpr const char* kContainerdCriSocket = "/run/containerd/containerd.sock";
inline constexpr const char* kCrioSocket = "/var/run/crio/crio.sock";

class CriClient : public RuntimeClient {
 public:
  // `socket` is a path or a unix:// URI. `expected_runtime` ("containerd",
  // "cri-o") is what runtime() says until Version has answered.
  explicit CriClient(std::string socket = kContainerdCriSocket,
                     std::string expected_runtime = "containerd",
                     std::chrono::milliseconds deadline = std::chrono::seconds(2));
  ~CriClient() override;

  [[nodiscard]] std::string runtime() const override { return runtime_; }
  [[nodiscard]] std::string endpoint() const override { return socket_; }
  // Version's runtime_version; also sets runtime() from its runtime_name.
  std::string version() override;
  // ContainerStatus (verbose, for the pid), ListContainers filtered by the id
  // (ContainerStatus does not name the sandbox; Container.pod_sandbox_id does),
  // then PodSandboxStatus of that sandbox. Pod labels are the sandbox's labels
  // as the runtime returns them, the kubelet's io.kubernetes.pod.* ones included.
  ContainerInfo inspect(std::string_view id) override;
  std::vector<std::string> list_running() override;
  // GetContainerEvents: each CONTAINER_CREATED_EVENT names its container from the
  // statuses the event carries (complete when its pod's status is there too).
  // False at once from a runtime that does not implement the stream (containerd
  // before 1.7, CRI-O before 1.26).
  bool follow_creates(const CreatedFn& on_created, const StoppedFn& stopped) override;

 private:
  struct Stubs;
  std::string socket_;
  std::string runtime_;
  std::chrono::milliseconds deadline_;
  std::unique_ptr<Stubs> stubs_;
};

// VersionResponse.runtime_name lower-cased: "containerd", "cri-o".
std::string cri_runtime_name(std::string_view runtime_name);

// What a CRI create event says of its container; nullopt for other events and
// for the pod sandbox's own (its id is the sandbox's, not a container's).
std::optional<CreatedContainer> created_from_cri_event(
    const ::runtime::v1::ContainerEventResponse& ev, const std::string& runtime);

}  // namespace capscope
