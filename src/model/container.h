// What a container runtime says about one container (filled by the runtime
// clients in enrich/runtime/, and by derive_workload for the workload fields).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace capscope {

using Labels = std::map<std::string, std::string>;

struct ContainerInfo {
  std::string id;       // full id, as the runtime spells it (64 hex digits)
  std::string runtime;  // "podman", "docker", "containerd", "cri-o"
  // The container's name: Kubernetes' container name (io.kubernetes.container.name)
  // under CRI or a kube-played pod, else the runtime's own name without a leading '/'.
  std::string name;
  std::string image;          // image name as the runtime reports it, e.g. localhost/busybox:latest
  std::string image_id;       // image id or digest
  Labels labels;              // the container's labels
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

using ContainerInfoPtr = std::shared_ptr<const ContainerInfo>;

}  // namespace capscope
