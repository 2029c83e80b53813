// The agent's own capabilities: least privilege for capscope itself.
//
// Loading and attaching the BPF programs needs a lot (CAP_BPF, CAP_PERFMON, often
// CAP_SYS_ADMIN). Once they run, the agent needs little: a BASE set it keeps
// effective for its whole life, and a few RINGS, each a small set raised in the
// effective set of one thread only around one operation (Privileges::Raised).
// drop_to_base() gives up everything else, in every thread, for good:
//
//   permitted   = base + every ring + add - drop   (what can ever be raised again)
//   effective   = base + add - drop                (what is in force most of the time)
//   inheritable = ambient = none                   (nothing passes to programs it runs)
//   bounding    = permitted                        (execve cannot bring back the rest)
//
// The user id stays 0: files and sockets root owns stay the agent's own, with no
// capability needed to open them. docs/PRIVILEGES.md explains each capability.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/records.h"

namespace capscope::agent {

// What --capabilities asked, all of its occurrences merged.
struct CapabilityOptions {
  bool bypass = false;  // keep every capability the agent started with
  uint64_t add = 0;     // kept effective for the agent's whole life
  uint64_t drop = 0;    // removed from the base set and from every ring; wins over add

  bool operator==(const CapabilityOptions&) const = default;
};

// Parses one --capabilities value into `options` (merging with what is there).
// A value is a comma-separated list of items: "bypass=true|false" (also 1|0),
// "add=CAP[,CAP...]", "drop=CAP[,CAP...]"; an item without '=' continues the list of
// the add= or drop= before it, so "add=cap_kill,cap_syslog,drop=sys_admin" works.
// Capability names are accepted with or without "CAP_", in any case. On a bad value
// returns false and sets `error` to one line naming the value and the fix.
bool parse_capabilities_value(std::string_view value, CapabilityOptions* options,
                              std::string* error);

// Every value of a repeated --capabilities flag, in order.
bool parse_capabilities_values(std::span<const std::string> values, CapabilityOptions* options,
                               std::string* error);

// A ring: capabilities permitted but not effective, raised around one operation.
struct Ring {
  std::string_view name;  // "ebpf"
  uint64_t caps;          // bit mask
  std::string_view why;   // one line: what the agent does with it
};

// The rings, in a fixed order (docs/PRIVILEGES.md has the same table).
std::span<const Ring> rings();
// nullptr for a name that is not a ring.
const Ring* find_ring(std::string_view name);
// The base set: effective for the agent's whole life after the drop.
uint64_t base_caps();
// The union of every ring.
uint64_t ring_caps();

// A thread's five capability sets: capscope::CapSets of model/records.h.
// Whether all five are equal.
bool same_sets(const CapSets& a, const CapSets& b);

// What drop_to_base() will do, computed from the options and the sets the thread
// has now (a capability it does not hold cannot be kept).
struct DropPlan {
  CapSets target;
  uint64_t unavailable = 0;  // base or ring capabilities the agent does not hold: left out
  uint64_t missing_add = 0;  // add= capabilities the agent does not hold: an error
};

// Pure set arithmetic. `valid` is the mask of capabilities the kernel knows
// (bits 0..cap_last_cap); nothing outside it is ever kept.
DropPlan plan_drop(const CapabilityOptions& options, const CapSets& current, uint64_t valid);

// "base", "base+ebpf", "base+ebpf(CAP_BPF)" (a ring only partly raised),
// "base+kallsyms+CAP_CHOWN" (a capability no ring explains), "base-CAP_SYS_PTRACE"
// (a base capability lowered): how `effective` differs from `base_effective`.
// `permitted` tells which of a ring's capabilities could be raised at all.
std::string describe_effective(uint64_t effective, uint64_t base_effective, uint64_t permitted);

// "CAP_BPF,CAP_PERFMON", or "none".
std::string mask_names(uint64_t mask);

// The CapInh, CapPrm, CapEff, CapBnd and CapAmb lines of a /proc/PID/status text;
// nullopt if any is missing or not hexadecimal (CapAmb is absent before Linux 4.3:
// it reads as 0 then).
std::optional<CapSets> parse_status_caps(std::string_view status);

// Bits 0..cap_last_cap of the running kernel (found with PR_CAPBSET_READ, so it
// works without /proc/sys).
uint64_t kernel_valid_caps();
// Ring capabilities this kernel never asks for, left out of the start-up warning:
// CAP_SYS_ADMIN where the kernel knows CAP_BPF (5.8+), CAP_SYS_RESOURCE where BPF
// memory is charged to the memory cgroup instead of RLIMIT_MEMLOCK (5.11+).
uint64_t unneeded_on_this_kernel(uint64_t valid);

// The calling thread's sets, from capget(2) and prctl(2); nullopt if capget fails.
std::optional<CapSets> this_thread_caps();

// One thread of this process, from /proc/self/task/TID/status.
struct ThreadCaps {
  pid_t tid = 0;
  std::string name;
  CapSets sets;
};
// Every thread that could be read (threads that exit meanwhile are left out).
std::vector<ThreadCaps> process_thread_caps();

class Privileges {
 public:
  // The real-time signal drop_to_base() sends to the process's other threads to have
  // each apply the drop to itself (capset(2) changes only the calling thread). Its
  // handler stays installed afterwards: nothing else in capscope may use it.
  static int broadcast_signal();

  // Checks the options against the sets the agent holds now; changes nothing.
  // Fails (one line in `error`) if add= names a capability the agent does not hold.
  bool configure(const CapabilityOptions& options, std::string* error);

  // After the BPF programs are loaded and attached: drops to the base set in every
  // thread of the process (see the top of this file), then checks every thread's
  // /proc/self/task/TID/status. With bypass=true it changes nothing and returns true.
  // Other threads get the drop through broadcast_signal(); calling it before any
  // other thread starts avoids that. A thread created later inherits the sets of the
  // thread that creates it. On failure returns false and says why in `error`, and
  // that `--capabilities bypass=true` skips the drop.
  bool drop_to_base(std::string* error);

  [[nodiscard]] bool bypassed() const { return options_.bypass; }
  [[nodiscard]] bool dropped() const { return dropped_; }
  [[nodiscard]] const CapabilityOptions& options() const { return options_; }
  [[nodiscard]] const DropPlan& plan() const { return plan_; }

  // Empty, or one line for the log: base or ring capabilities the agent was started
  // without (the features that need them will fail).
  [[nodiscard]] std::string warning() const;

  // Which ring the calling thread has raised now: "base", "base+ebpf", ...; or
  // "bypass" / "not dropped" before a drop.
  [[nodiscard]] std::string describe_this_thread() const;

  // Every thread: "3 threads: 2 base, 1 base+kallsyms (tid 812)".
  [[nodiscard]] std::string describe_process() const;

  // Raises a ring's capabilities in the calling thread's effective set for the
  // lifetime of the object, and lowers again exactly those it raised. Capabilities
  // already effective are left alone (so nesting works, and with bypass=true or
  // before the drop nothing changes). Must be destroyed on the thread that made it.
  class Raised {
   public:
    explicit Raised(std::string_view ring);
    ~Raised();
    Raised(const Raised&) = delete;
    Raised& operator=(const Raised&) = delete;
    Raised(Raised&&) = delete;
    Raised& operator=(Raised&&) = delete;

    // False when the ring is unknown or some of its capabilities are not in the
    // permitted set (those are not raised; the rest are).
    [[nodiscard]] bool ok() const { return error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    // What this object raised (and will lower).
    [[nodiscard]] uint64_t raised() const { return raised_; }

   private:
    std::string error_;
    uint64_t raised_ = 0;
    pid_t tid_ = 0;
  };

 private:
  bool apply_here(std::string* error) const;
  bool apply_in_other_threads(std::string* error) const;
  bool verify_all_threads(std::string* error) const;

  CapabilityOptions options_;
  DropPlan plan_;
  uint64_t valid_ = 0;
  uint64_t unneeded_ = 0;  // ring capabilities this kernel never asks for (no warning)
  bool configured_ = false;
  bool dropped_ = false;
};

}  // namespace capscope::agent
