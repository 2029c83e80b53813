// What a container runtime says about one container, and the interface every
// runtime client (Engine API for Docker and Podman, CRI for containerd and
// CRI-O) implements. The resolver (runtime_resolver.h) asks the clients off
// the event path and caches the answers by container id.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace capscope {

using Labels = std::map<std::string, std::string>;

struct ContainerInfo {
  std::string id;       // full id, as the runtime spells it (64 hex digits)
  std::string runtime;  // "podman", "docker", "containerd", "cri-o"
  // The container's name: Kubernetes' container name (io.kubernetes.container.name)
  // under CRI or a kube-played pod, else the runtime's own name without a leading '/'.
  std::string name;
  std::string image;     // image name as the runtime reports it, e.g. localhost/busybox:latest
  std::string image_id;  // image id or digest
  Labels labels;         // the container's labels
  int64_t started_at_ns = 0;  // wall clock (Unix epoch ns), 0 when unknown
  uint32_t pid = 0;           // the container's init on the host, 0 when unknown
  bool running = false;

  // Pod: a Kubernetes pod sandbox through CRI, or a podman pod.
  std::string pod_id;         // sandbox id or podman pod id
  std::string pod_name;       // Kubernetes pod name, or podman's pod name
  std::string pod_namespace;  // Kubernetes namespace; empty for a podman pod not from kube play
  std::string pod_uid;
  Labels pod_labels;
  Labels pod_annotations;

  // Workload that owns the pod (filled by derive_workload, see workload.h).
  std::string workload;       // e.g. "web" for Deployment web
  std::string workload_kind;  // Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, Pod
  std::string workload_from;  // how it was known: "owner", "labels", "name", "pod"

  // What the container was given, as the runtime reports it. Names are spelt
  // as written in the spec (with or without CAP_); effective_caps, when the
  // runtime reports the resulting set (podman's EffectiveCaps), is the set itself.
  std::vector<std::string> cap_add, cap_drop;
  std::optional<std::vector<std::string>> effective_caps;
  bool privileged = false;
};

// Thrown by runtime clients. Kind NotFound means the runtime answered and does
// not know the id (another runtime may); Unavailable means it did not answer
// properly (no socket, not a socket, refused, timed out, closed mid-response,
// garbage): the resolver degrades to cgroup-only attribution and retries later.
class RuntimeError : public std::runtime_error {
 public:
  enum class Kind { NotFound, Unavailable };
  RuntimeError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  [[nodiscard]] Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

class RuntimeClient {
 public:
  RuntimeClient() = default;
  RuntimeClient(const RuntimeClient&) = delete;
  RuntimeClient& operator=(const RuntimeClient&) = delete;
  virtual ~RuntimeClient() = default;

  // "podman", "docker", "containerd" or "cri-o" (for a CRI client: what the
  // runtime's Version call names, lower-cased).
  [[nodiscard]] virtual std::string runtime() const = 0;
  [[nodiscard]] virtual std::string endpoint() const = 0;  // the socket path
  // The runtime's version ("4.3.1"); throws RuntimeError(Unavailable) when it does not answer.
  virtual std::string version() = 0;
  // Everything the runtime says about container `id` (a full id). Throws RuntimeError.
  virtual ContainerInfo inspect(std::string_view id) = 0;
  // Ids of the containers running now. Throws RuntimeError(Unavailable).
  virtual std::vector<std::string> list_running() = 0;
};

}  // namespace capscope
