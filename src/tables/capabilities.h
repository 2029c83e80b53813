// Linux capability numbers, names and one-line descriptions, plus mask helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace capscope::tables {

struct CapabilityInfo {
  int number;               // As in linux/capability.h.
  std::string_view name;    // "CAP_CHOWN".
  std::string_view guards;  // One line: what the capability guards.
};

// Capabilities 0 (CAP_CHOWN) .. 40 (CAP_CHECKPOINT_RESTORE); entry i has number i.
std::span<const CapabilityInfo> all_capabilities();

// "CAP_SYS_ADMIN"; numbers outside the table give "CAP_UNKNOWN_<n>".
std::string cap_name(int cap);

// Kubernetes spelling, without "CAP_": "SYS_ADMIN"; outside the table "UNKNOWN_<n>".
std::string cap_short_name(int cap);

// Accepts "CAP_SYS_ADMIN", "SYS_ADMIN" in any letter case, or a decimal number 0..63
// (a kernel newer than this table may use numbers it has no name for). Surrounding
// whitespace is ignored. Anything else gives nullopt.
std::optional<int> cap_from_name(std::string_view s);

// Bit numbers set in `mask`, ascending.
std::vector<int> caps_in_mask(uint64_t mask);

// The mask with each cap's bit set; caps outside 0..63 have no bit and are ignored.
uint64_t mask_of(std::span<const int> caps);

// cap_short_name() of each, in order: {"CHOWN", "NET_BIND_SERVICE"}.
std::vector<std::string> cap_short_names(std::span<const int> caps);

// libcap's spelling (setcap, getcap, capsh): "cap_net_bind_service".
std::string cap_lower_name(int cap);

// cap_name() of each bit set in `mask`, ascending by number.
std::vector<std::string> cap_names_in_mask(uint64_t mask);

// The running kernel's highest capability number, or -1 if `path` is unreadable or
// does not hold a number in 0..63.
int kernel_last_cap(const std::string& path = "/proc/sys/kernel/cap_last_cap");

}  // namespace capscope::tables
