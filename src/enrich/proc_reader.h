// Reads what procfs says about a process into a ProcessInfo.
//
// Processes come and go while we read: every call tolerates a pid that
// vanishes half-way (or never existed) and files holding garbage, by
// returning nullopt or defaults. Nothing here throws on I/O errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/process.h"
#include "util/clock.h"

namespace capscope {

// The fields capscope takes from /proc/PID/stat.
struct ProcStat {
  uint32_t pid = 0;
  std::string comm;  // raw (unescaped), may hold spaces and parentheses
  char state = '?';
  uint32_t ppid = 0;
  uint64_t start_ticks = 0;  // field 22: clock ticks since boot (CLOCK_BOOTTIME)
};

// nullopt when the text is not a stat line (no "(comm)", too few fields).
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// /proc/PID/cmdline: NUL-separated arguments; the final NUL ends the last one.
std::vector<std::string> split_cmdline(std::string_view text);

// A namespace link target such as "mnt:[4026531841]"; nullopt if malformed.
std::optional<uint32_t> parse_ns_link(std::string_view target);

// Inode numbers the kernel gives the initial namespaces (include/linux/proc_ns.h);
// mount and network namespaces have fixed ones only on recent kernels.
inline constexpr uint32_t kInitIpcIno = 0xEFFFFFFFU;
inline constexpr uint32_t kInitUtsIno = 0xEFFFFFFEU;
inline constexpr uint32_t kInitUserIno = 0xEFFFFFFDU;
inline constexpr uint32_t kInitPidIno = 0xEFFFFFFCU;
inline constexpr uint32_t kInitCgroupIno = 0xEFFFFFFBU;
inline constexpr uint32_t kInitTimeIno = 0xEFFFFFFAU;

class ProcReader;

// The host's namespaces, for is_host: those of init_pid (1). Where its links cannot
// be read (some sandboxes deny /proc/1/ns even to root), the initial namespaces'
// fixed inode numbers, and for mount and network capscope's own (self_pid) when it
// runs in the initial pid namespace; 0 (never host) where nothing tells.
NsInodes host_namespaces(const ProcReader& reader, uint32_t init_pid, uint32_t self_pid);

class ProcReader {
 public:
  explicit ProcReader(std::filesystem::path proc_root = "/proc",
                      uint64_t ticks_per_second = util::clock_ticks_per_second());

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

  // Numeric entries of the root, ascending; empty if it cannot be listed.
  [[nodiscard]] std::vector<uint32_t> list_pids() const;

  // Everything procfs gives about `pid`, or nullopt if status or stat cannot
  // be read and parsed (the process is gone, or the files are garbage).
  // Optional parts (exe, cwd, cmdline, loginuid, ns, cgroup) are left empty
  // or at their defaults when missing: kernel threads have no exe, zombies
  // no cwd. Conventions of the result:
  //  - start_ktime_ns is CLOCK_BOOTTIME ns (stat starttime in ns): ProcessCache
  //    converts it to CLOCK_MONOTONIC; start_wall_ns, exec ids and flags are
  //    the cache's business and left empty here;
  //  - binary is the exe link with " (deleted)" removed; empty for kernel threads;
  //  - auid is 4294967295 when loginuid is missing (no audit support);
  //  - cgroup_path is select_cgroup_path() of /proc/PID/cgroup, container its
  //    parse; cgroup_id and userns_level are not in procfs and stay 0.
  [[nodiscard]] std::optional<ProcessInfo> read(uint32_t pid) const;

  // Namespace inodes in NsKind order; 0 for any link missing or malformed
  // (e.g. no time namespaces before Linux 5.6).
  [[nodiscard]] NsInodes read_namespaces(uint32_t pid) const;

  [[nodiscard]] std::optional<ProcStat> read_stat(uint32_t pid) const;
  [[nodiscard]] std::optional<std::string> read_cwd(uint32_t pid) const;
  [[nodiscard]] std::optional<std::string> read_exe(uint32_t pid) const;
  // The selected cgroup path (see select_cgroup_path), nullopt if unreadable.
  [[nodiscard]] std::optional<std::string> read_cgroup_path(uint32_t pid) const;
  // The path in the unified (v2) hierarchy, nullopt if unreadable or absent.
  [[nodiscard]] std::optional<std::string> read_unified_cgroup_path(uint32_t pid) const;
  // Start time as CLOCK_BOOTTIME ns, from stat.
  [[nodiscard]] std::optional<uint64_t> read_start_boot_ns(uint32_t pid) const;

 private:
  [[nodiscard]] std::filesystem::path dir(uint32_t pid) const;

  std::filesystem::path root_;
  uint64_t ticks_per_second_;
};

}  // namespace capscope
