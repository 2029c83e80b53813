#include "tables/capabilities.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <fstream>

#include "util/strings.h"

namespace capscope::tables {
namespace {

// Capability bits live in 64-bit masks, so no capability can be numbered above 63.
constexpr int kMaxCapBit = 63;

constexpr std::array<CapabilityInfo, 41> kCapabilities = {{
    {0, "CAP_CHOWN", "change the owner and group of any file"},
    {1, "CAP_DAC_OVERRIDE", "bypass file read, write and execute permission checks"},
    {2, "CAP_DAC_READ_SEARCH",
     "bypass file read and directory search permission checks; open_by_handle_at"},
    {3, "CAP_FOWNER",
     "act as the owner of any file: chmod, utimes, ACLs, deleting in sticky directories"},
    {4, "CAP_FSETID", "keep set-user-ID and set-group-ID bits when modifying or chowning files"},
    {5, "CAP_KILL", "send signals to processes of other users"},
    {6, "CAP_SETGID", "change group IDs and supplementary groups; write gid_map"},
    {7, "CAP_SETUID", "change user IDs; forge UIDs in socket credentials; write uid_map"},
    {8, "CAP_SETPCAP", "drop capabilities from the bounding set and change securebits"},
    {9, "CAP_LINUX_IMMUTABLE", "set and clear the immutable and append-only file attributes"},
    {10, "CAP_NET_BIND_SERVICE", "bind sockets to privileged ports (below 1024)"},
    {11, "CAP_NET_BROADCAST", "socket broadcasting and multicast listening (unused by the kernel)"},
    {12, "CAP_NET_ADMIN", "configure interfaces, routes, firewall rules and other network state"},
    {13, "CAP_NET_RAW", "use raw and packet sockets; bind to any address for transparent proxying"},
    {14, "CAP_IPC_LOCK", "lock memory (mlock, mlockall, SHM_LOCK) beyond RLIMIT_MEMLOCK"},
    {15, "CAP_IPC_OWNER", "bypass permission checks on System V IPC objects"},
    {16, "CAP_SYS_MODULE", "load and unload kernel modules"},
    {17, "CAP_SYS_RAWIO", "raw I/O: ioperm/iopl, /dev/mem, FIBMAP, raw SCSI commands"},
    {18, "CAP_SYS_CHROOT", "call chroot and switch mount namespaces with setns"},
    {19, "CAP_SYS_PTRACE", "trace and inspect any process: ptrace, process_vm_readv, kcmp"},
    {20, "CAP_SYS_PACCT", "turn process accounting on and off (acct)"},
    {21, "CAP_SYS_ADMIN",
     "broad administration: mount, namespaces, quotas, swap, sethostname and much more"},
    {22, "CAP_SYS_BOOT", "reboot the machine and load a new kernel with kexec"},
    {23, "CAP_SYS_NICE",
     "raise priority, set other processes' nice values, scheduling policy and CPU affinity"},
    {24, "CAP_SYS_RESOURCE", "exceed resource limits and quotas; raise hard rlimits"},
    {25, "CAP_SYS_TIME", "set the system clock and the hardware real-time clock"},
    {26, "CAP_SYS_TTY_CONFIG", "vhangup and privileged ioctls on virtual terminals"},
    {27, "CAP_MKNOD", "create device files with mknod"},
    {28, "CAP_LEASE", "take leases on files the process does not own"},
    {29, "CAP_AUDIT_WRITE", "write records to the kernel audit log"},
    {30, "CAP_AUDIT_CONTROL", "enable and disable kernel auditing and change audit rules"},
    {31, "CAP_SETFCAP", "set file capabilities; map user ID 0 into a new user namespace"},
    {32, "CAP_MAC_OVERRIDE", "override mandatory access control (Smack)"},
    {33, "CAP_MAC_ADMIN", "change mandatory access control policy and settings"},
    {34, "CAP_SYSLOG", "privileged syslog operations; see kernel addresses despite kptr_restrict"},
    {35, "CAP_WAKE_ALARM", "set timers that wake the system from suspend"},
    {36, "CAP_BLOCK_SUSPEND", "keep the system from suspending (EPOLLWAKEUP, wake locks)"},
    {37, "CAP_AUDIT_READ", "read the audit log through a multicast netlink socket"},
    {38, "CAP_PERFMON", "use perf_events and other performance monitoring"},
    {39, "CAP_BPF", "privileged BPF: create maps, load programs, iterate BPF objects"},
    {40, "CAP_CHECKPOINT_RESTORE",
     "checkpoint/restore: choose PIDs (ns_last_pid, clone3 set_tid), read map_files"},
}};

// cap_name() indexes the table by number, so entry i must be capability i.
constexpr bool numbered_by_index() {
  for (size_t i = 0; i < kCapabilities.size(); ++i) {
    if (kCapabilities[i].number != static_cast<int>(i)) return false;
  }
  return true;
}
static_assert(numbered_by_index());

constexpr std::string_view kCapPrefix = "CAP_";

const CapabilityInfo* find_by_number(int cap) {
  if (cap < 0 || static_cast<size_t>(cap) >= kCapabilities.size()) return nullptr;
  return &kCapabilities[static_cast<size_t>(cap)];
}

// A whole-string decimal number in [0, max], or nullopt (signs and junk included).
std::optional<int> parse_small_number(std::string_view s, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (value < 0 || value > max) return std::nullopt;
  return value;
}

}  // namespace

std::span<const CapabilityInfo> all_capabilities() { return kCapabilities; }

std::string cap_name(int cap) {
  const CapabilityInfo* info = find_by_number(cap);
  if (info == nullptr) return "CAP_UNKNOWN_" + std::to_string(cap);
  return std::string(info->name);
}

std::string cap_short_name(int cap) { return cap_name(cap).substr(kCapPrefix.size()); }

std::optional<int> cap_from_name(std::string_view s) {
  s = util::trim_space(s);
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front()))) {
    return parse_small_number(s, kMaxCapBit);
  }
  std::string wanted = util::ascii_upper(s);
  if (!wanted.starts_with(kCapPrefix)) wanted.insert(0, kCapPrefix);
  for (const CapabilityInfo& info : kCapabilities) {
    if (info.name == wanted) return info.number;
  }
  return std::nullopt;
}

std::vector<int> caps_in_mask(uint64_t mask) {
  std::vector<int> caps;
  for (int bit = 0; bit <= kMaxCapBit; ++bit) {
    if ((mask >> bit) & 1U) caps.push_back(bit);
  }
  return caps;
}

uint64_t mask_of(std::span<const int> caps) {
  uint64_t mask = 0;
  for (int cap : caps) {
    // Shifting by 64 or more is undefined, so out-of-range numbers are skipped.
    if (cap >= 0 && cap <= kMaxCapBit) mask |= uint64_t{1} << cap;
  }
  return mask;
}

std::vector<std::string> cap_short_names(std::span<const int> caps) {
  std::vector<std::string> names;
  names.reserve(caps.size());
  for (int cap : caps) names.push_back(cap_short_name(cap));
  return names;
}

std::string cap_lower_name(int cap) { return util::ascii_lower(cap_name(cap)); }

std::vector<std::string> cap_names_in_mask(uint64_t mask) {
  std::vector<std::string> names;
  for (int cap : caps_in_mask(mask)) names.push_back(cap_name(cap));
  return names;
}

int kernel_last_cap(const std::string& path) {
  std::ifstream in(path);
  if (!in) return -1;
  // The file holds a short number; reading a bounded amount keeps a wrong path
  // (a large file or a device) from costing more than a few bytes.
  std::array<char, 32> buf{};
  in.read(buf.data(), buf.size());
  std::string_view text(buf.data(), static_cast<size_t>(in.gcount()));
  if (text.size() == buf.size()) return -1;
  return parse_small_number(util::trim_space(text), kMaxCapBit).value_or(-1);
}

}  // namespace capscope::tables
