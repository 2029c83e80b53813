// Decoded kernel records: what the capture stage hands to the rest of the
// pipeline. Plain values, no kernel layouts (those stay in bpf/capscope.h and
// src/capture/decode.*), so enrichment, filters and outputs are testable from
// fixtures without BPF.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace capscope {

// How the audit flag of a check was decided.
enum class AuditSource : uint8_t {
  Unknown,   // could not be decided (treated as audited: never hide a need)
  Opts,      // the opts argument of cap_capable (fexit, kprobe)
  AuditArg,  // the pre-5.1 `int audit` argument (fexit, kprobe on old kernels)
  CallSite,  // the kernel call site, from the learned call-site table (tracepoint)
  Caller,    // recovered from a caller that inlines cap_capable (fexit, kprobe)
};

// The spelling of an AuditSource in events and saved records.
constexpr std::string_view audit_source_name(AuditSource s) {
  switch (s) {
    case AuditSource::Opts:
      return "opts";
    case AuditSource::AuditArg:
      return "audit_arg";
    case AuditSource::CallSite:
      return "callsite";
    case AuditSource::Caller:
      return "caller";
    case AuditSource::Unknown:
      break;
  }
  return "unknown";
}

// audit_source_name() read back; anything else is Unknown.
constexpr AuditSource audit_source_from_name(std::string_view s) {
  if (s == "opts") return AuditSource::Opts;
  if (s == "audit_arg") return AuditSource::AuditArg;
  if (s == "callsite") return AuditSource::CallSite;
  if (s == "caller") return AuditSource::Caller;
  return AuditSource::Unknown;
}

struct UserNs {
  uint32_t level = 0;
  uint32_t inum = 0;
  uint32_t owner_uid = 0;
  uint32_t owner_gid = 0;
  [[nodiscard]] bool is_host() const { return level == 0; }
};

struct CapSets {
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
  uint64_t bounding = 0;
  uint64_t ambient = 0;

  // The union, set by set.
  CapSets& operator|=(const CapSets& o) {
    effective |= o.effective;
    permitted |= o.permitted;
    inheritable |= o.inheritable;
    bounding |= o.bounding;
    ambient |= o.ambient;
    return *this;
  }
};

// Namespace inodes of a process, in the order of Tetragon's `ns` block.
enum class NsKind : uint8_t {
  Uts,
  Ipc,
  Mnt,
  Pid,
  PidForChildren,
  Net,
  Time,
  TimeForChildren,
  Cgroup,
  User,
};
inline constexpr size_t kNsKinds = 10;
using NsInodes = std::array<uint32_t, kNsKinds>;

// One capability check, decoded.
struct CapCheck {
  uint64_t ktime_ns = 0;  // CLOCK_MONOTONIC
  uint64_t cgroup_id = 0;
  uint64_t cap_effective = 0;
  uint64_t cap_permitted = 0;
  uint64_t suppressed = 0;  // rate-limited checks of the same key before this one
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t euid = 0;
  uint32_t mntns = 0;
  // The mount namespace's boot-unique id (low 32 bits; 0 where the kernel has
  // none): the kernel reuses a freed namespace's inode number, never this id.
  uint32_t mntns_id = 0;
  uint32_t pidns_level = 0;  // depth of the pid namespace: 0 is the host
  int32_t cap = 0;
  int32_t ret = 0;          // 0 granted, negative errno denied
  int32_t syscall_nr = -1;  // -1: not in a syscall (kernel thread, ...)
  bool audit = true;
  bool insetid = false;
  bool cred_override = false;
  bool kthread = false;
  bool aggregated = false;  // also counted in the kernel's aggregation map (agent mode)
  // Agent mode: a check the kernel could not count (a learning sample, a full map) that
  // the event filters dropped: it reaches the profile, but it is not an event.
  bool profile_only = false;
  // A policy's event (trace --policy, the agent): the slot of the selector that posted it
  // (numbered as the policy set was given to BpfCapture::set_policies), its policy's name,
  // and whether that selector's action is Sigkill. -1 and empty: capscope's own event.
  int32_t policy_slot = -1;
  std::string policy_name;
  bool policy_sigkill = false;
  bool policy_killed = false;  // SIGKILL was sent for it (by the kernel, or late by user space)
  AuditSource audit_source = AuditSource::Unknown;
  UserNs target_ns;
  std::string comm;
  std::vector<uint64_t> stack;     // kernel return addresses, when sampled
  std::vector<uint8_t> raw_stack;  // raw stack bytes, when sampled (learning)

  [[nodiscard]] bool granted() const { return ret == 0; }
};

// A successful execve.
struct ExecRecord {
  uint64_t ktime_ns = 0;
  uint64_t start_ns = 0;
  uint32_t exec_seq = 0;  // the kernel's self_exec_id after this exec: (pid, exec_seq) names it
  uint64_t cgroup_id = 0;
  uint64_t exe_ino = 0;  // inode number of the file exec'd; 0 unknown
  CapSets caps;
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t euid = 0;
  uint32_t egid = 0;
  uint32_t auid = 0;
  bool no_new_privs = false;
  NsInodes ns{};
  uint32_t userns_level = 0;
  std::string comm;
  std::string filename;
  std::vector<std::string> args;  // argv, argv[0] included
  bool args_truncated = false;
  uint32_t ns_pid = 0;  // pid in its own pid namespace (1: a container's init); 0 unknown
};

struct ForkRecord {
  uint64_t ktime_ns = 0;
  uint64_t start_ns = 0;
  uint32_t pid = 0;
  uint32_t ppid = 0;
  std::string comm;
  uint32_t exec_seq = 0;  // inherited from the parent until the child execs
  uint32_t ns_pid = 0;    // the child's pid in its own pid namespace; 0 unknown
};

struct ExitRecord {
  uint64_t ktime_ns = 0;
  uint32_t pid = 0;
  uint32_t exit_code = 0;
};

// A cgroup created in the unified hierarchy (a container runtime makes one per container).
struct CgroupRecord {
  uint64_t ktime_ns = 0;
  uint64_t id = 0;   // cgroup v2 id, as checks carry it
  std::string path;  // from the hierarchy's root: "/libpod_parent/libpod-<id>"
};

using Record = std::variant<CapCheck, ExecRecord, ForkRecord, ExitRecord, CgroupRecord>;

}  // namespace capscope
