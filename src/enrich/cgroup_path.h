// Container identity from a cgroup path. The container runtimes name the
// cgroup of a container after its id; this reads the id (and, for Kubernetes,
// the pod uid and QoS class) back without asking any runtime.
//
// Layouts recognised (deepest match wins, so a container nested in another
// one, e.g. a kind node's pods, reports the inner container):
//   docker       /docker/<id>, /system.slice/docker-<id>.scope,
//                /actions_job/<id> (GitHub Actions' cgroup parent)
//   containerd   /<namespace>/<id> (ctr, e.g. /default/<id>), and under Kubernetes
//                /kubepods[/<qos>]/pod<uid>/<id>,
//                /kubepods.slice/.../kubepods-<qos>-pod<uid_>.slice/cri-containerd-<id>.scope
//   cri-o        crio-<id>[.scope] (systemd or cgroupfs, under kubepods)
//   podman       /libpod_parent/libpod-<id>, [/...]/libpod-<id>.scope[/container]
//                (machine.slice and rootless user.slice)
//   lxc          /lxc.payload.<name>, legacy /lxc/<name>: the id is the name
// Trailing sub-cgroups (init.scope, system.slice/..., podman's /container) are
// skipped. A bare <id> under Kubernetes is reported as containerd: cri-dockerd
// uses the same layout, and only the runtime stage can tell them apart.
//
// Monitors: conmon (crio-conmon-<id>, libpod-conmon-<id>, /libpod_parent/conmon)
// and lxc.monitor.<name> run outside the container they watch. Their checks
// are the runtime's, not the workload's, so parse_container_cgroup() returns
// an empty ref for them; classify_cgroup() says why (CgroupKind::Monitor) and
// still names the monitored container when the path carries its id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/process.h"

namespace capscope {

enum class CgroupKind : uint8_t {
  None,       // no container in the path (host process, or an unknown layout)
  Container,  // the process runs in the container of `ref`
  Monitor,    // a runtime monitor (conmon, lxc.monitor) of the container in `ref`, if named
};

struct CgroupMatch {
  CgroupKind kind = CgroupKind::None;
  ContainerRef ref;  // runtime, id, pod_uid, qos (id may be empty for a Monitor)
};

CgroupMatch classify_cgroup(std::string_view cgroup_path);

// The container a process in `cgroup_path` runs in, or an empty ref (host
// process, monitor, or an unknown layout).
ContainerRef parse_container_cgroup(std::string_view cgroup_path);

// True for 64 hexadecimal digits: the id docker, containerd, cri-o and podman use.
bool is_container_id(std::string_view s);

// The names the cgroup of container `id` takes, as the last component of its
// path (before crun's and systemd's inner "container"), under each runtime and
// cgroup driver classify_cgroup knows: podman's libpod-ID and libpod-ID.scope,
// Docker's ID and docker-ID.scope, containerd's ID and cri-containerd-ID.scope,
// CRI-O's crio-ID and crio-ID.scope. Their monitors' cgroups are not among them.
std::vector<std::string> container_cgroup_names(std::string_view id);

// Given the text of /proc/PID/cgroup (v2 `0::/path`, v1 `N:ctrl,ctrl:/path`,
// or both on a hybrid system), picks the path most likely to carry a
// container id: the v2 path if it names a container; else the first v1 path
// that does, trying name=systemd, pids, memory and cpu before the others;
// else the v2 path; else the first path. Empty if the text has no path.
std::string select_cgroup_path(std::string_view proc_pid_cgroup);

}  // namespace capscope
