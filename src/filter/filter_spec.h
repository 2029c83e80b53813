// What the user asked to keep, in one value shared by the kernel filters
// (written into BPF maps by the loader) and their user-space twin
// (CheckFilter, used by the replay source and the tests), so both apply
// exactly the same semantics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capscope::filter {

enum class RateScope { Thread, Process, Global };

struct FilterSpec {
  std::vector<uint32_t> pids, tids, uids, gids;
  std::vector<std::string> comms;
  std::vector<uint64_t> cgroup_ids;
  std::optional<uint64_t> cap_mask;
  bool denied_only = false;
  bool audit_only = false;
  bool host_only = false;
  bool containers_only = false;
  // Identity filters: user space may exclude the cgroups it decided against
  // (EventSource::exclude_cgroup), and the kernel then drops their checks.
  bool exclude_unselected = false;
  bool unique = false;
  std::optional<uint64_t> rate_window_ns;
  RateScope rate_scope = RateScope::Thread;
};

// "1m", "30s", "500ms", "2h", "1h30m": Tetragon's rateLimit spellings and more.
// nullopt for anything else (and for zero).
std::optional<uint64_t> parse_duration_ns(std::string_view s);

std::optional<RateScope> parse_rate_scope(std::string_view s);

}  // namespace capscope::filter
