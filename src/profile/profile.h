// A capability profile: what a subject (a command and its descendants, a
// process tree, a cgroup) used and had, aggregated over one or more runs.
// Recording the same name again merges runs, so a profile grows with coverage.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "enrich/file_privilege.h"
#include "model/records.h"

namespace capscope::profile {

// One row of a profile: a capability, its verdict, and whether it was a need
// (audited) or a probe (CAP_OPT_NOAUDIT).
struct UseKey {
  int cap = 0;
  bool granted = true;
  bool audit = true;
  bool operator<(const UseKey& o) const {
    return std::tie(cap, granted, audit) < std::tie(o.cap, o.granted, o.audit);
  }
  bool operator==(const UseKey& o) const = default;
};

struct BinaryUse {
  uint64_t count = 0;
  std::string sample_args;  // the arguments of one process that made the check
};

struct UseStats {
  uint64_t count = 0;
  uint64_t first_ns = 0;  // wall clock, ns since the epoch
  uint64_t last_ns = 0;
  std::map<std::string, uint64_t> syscalls;   // "fchownat" -> checks made in it
  std::map<std::string, BinaryUse> binaries;  // "/usr/bin/chown" -> ...

  void merge(const UseStats& o);
};

// What the subject's processes had: the union over every process seen.
struct HeldSets {
  CapSets caps;               // each set's union
  bool ran_as_root = false;   // some process had euid 0
  bool ran_as_user = false;   // some process had euid != 0
  bool no_new_privs = false;  // some process ran with no_new_privs

  void merge(const HeldSets& o);
};

// An executed binary that carries privilege of its own (a set-ID bit or file
// capabilities), and what its execs did with it. Only such binaries are kept.
struct PrivilegedBinary {
  FilePrivilege file;
  uint64_t execs = 0;
  uint64_t raised = 0;     // execs that raised the process's ids or capabilities through it
  uint64_t held_back = 0;  // execs where no_new_privs kept its privilege from the process

  void merge(const PrivilegedBinary& o);
};

// One observed check group, as the recorder hands it over.
struct Observation {
  UseKey key;
  uint64_t count = 0;
  uint64_t first_ns = 0, last_ns = 0;
  std::string syscall;  // empty: not in a syscall
  std::string binary;   // empty: unknown
  std::string args;
};

// The container a profile was recorded from (record --pod, --selector,
// --all-containers), by what its replicas and restarts share: namespace,
// workload and container name under Kubernetes, the runtime's name and the
// image outside it. The rest says where it was last seen.
struct ContainerIdentity {
  static constexpr size_t kMaxInstances = 64;

  std::string runtime;              // podman, docker, containerd, cri-o
  std::string namespace_name;       // Kubernetes namespace; empty outside Kubernetes
  std::string workload;             // the pod's owner, or the pod itself
  std::string workload_kind;        // Deployment, StatefulSet, ..., Pod; empty without a pod
  std::string workload_from;        // how the workload was known: owner, labels, name, pod
  std::string pod;                  // the pod it was last seen in
  std::string container;            // the container's name
  std::string image;                // the image it last ran
  std::set<std::string> instances;  // container ids (12 hex digits) merged in, the first 64

  void merge(const ContainerIdentity& o);
  [[nodiscard]] bool empty() const { return container.empty(); }
};

struct Profile {
  static constexpr int kFormatVersion = 1;

  std::string name;
  std::string subject;  // how it was recorded: "command: nginx -g daemon off;"
  uint32_t runs = 0;
  uint64_t recorded_ns = 0;  // total time recorded, over all runs
  uint64_t first_run_ns = 0, last_run_ns = 0;
  std::map<UseKey, UseStats> uses;
  HeldSets held;
  std::map<std::string, PrivilegedBinary> privileged_binaries;  // by path
  ContainerIdentity container;  // empty unless recorded from a container

  void add(const Observation& o);
  // Union of capabilities, summed counts and durations, runs added up.
  void merge(const Profile& o);

  // Audited checks, granted or denied: what the workload needs (or tried to use).
  [[nodiscard]] std::vector<int> needed() const;
  // Needed capabilities that were denied at least once.
  [[nodiscard]] std::vector<int> denied_needs() const;
  // Capabilities only ever probed (no audited check): never advised.
  [[nodiscard]] std::vector<int> probes_only() const;
  // All rows of one capability.
  [[nodiscard]] std::vector<std::pair<UseKey, const UseStats*>> rows_of(int cap) const;
};

}  // namespace capscope::profile
