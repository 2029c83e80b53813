// What the process cache knows about a process, and what enrichment attaches
// to a check before it reaches the outputs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/container.h"
#include "model/records.h"

namespace capscope {

// Where a container id came from and what it is, as the cgroup path tells it.
// Names, images and pods come from the runtimes (EnrichedCheck::container).
struct ContainerRef {
  std::string runtime;  // "docker", "containerd", "cri-o", "podman", "lxc", ...
  std::string id;       // full id, usually 64 hex digits
  std::string pod_uid;  // Kubernetes pod uid when the path carries it
  std::string qos;      // Kubernetes QoS class from the slice: besteffort, burstable, guaranteed
  [[nodiscard]] bool empty() const { return id.empty(); }
};

struct ProcessInfo {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t euid = 0;
  uint32_t egid = 0;
  uint32_t auid = 0xffffffffu;
  std::string comm;
  std::string binary;             // absolute path of the executable
  std::vector<std::string> args;  // argv, argv[0] included
  std::string cwd;
  uint64_t start_ktime_ns = 0;  // CLOCK_MONOTONIC (or boot time from /proc, see flags)
  int64_t start_wall_ns = 0;    // wall clock
  std::string exec_id;
  std::string parent_exec_id;
  std::vector<std::string> flags;  // Tetragon-style: execve, procFS, clone, rootcwd, ...
  CapSets caps;
  bool no_new_privs = false;
  NsInodes ns{};
  uint32_t userns_level = 0;
  uint32_t ns_pid = 0;  // pid in its own pid namespace (NSpid's last); 0 unknown
  uint64_t cgroup_id = 0;
  std::string cgroup_path;  // the path used to find the container
  ContainerRef container;
  bool exited = false;
};

using ProcessPtr = std::shared_ptr<const ProcessInfo>;

// A check with everything user space could attach to it.
struct EnrichedCheck {
  CapCheck check;
  int64_t wall_ns = 0;  // wall-clock time of the check
  ProcessPtr process;   // null when the process could not be found
  ProcessPtr parent;
  std::string node_name;
  NsInodes host_ns{};  // the host's namespace inodes, for is_host
  // What the container runtime says about the process's (and parent's) container;
  // null outside containers, and until the runtime has answered.
  ContainerInfoPtr container;
  ContainerInfoPtr parent_container;
  // Made by the runtime's own process inside the container (runc init before it execs
  // the entrypoint, conmon, the pod's pause): the runtime's check, not the workload's.
  bool runtime_process = false;
};

}  // namespace capscope
