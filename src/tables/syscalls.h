// Syscall number <-> name tables for the architectures capscope runs on.
//
// The tables are generated from kernel headers by scripts/gen_syscall_tables.py;
// a number the table lacks (a newer kernel's syscall) still gets a printable name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace capscope::tables {

enum class Arch { X86_64, Arm64 };

// The architecture this binary was compiled for.
constexpr Arch host_arch() {
#if defined(__x86_64__)
  return Arch::X86_64;
#elif defined(__aarch64__)
  return Arch::Arm64;
#else
#error "capscope has syscall tables only for x86_64 and arm64"
#endif
}

// "setuid". Negative numbers (no syscall, e.g. a kernel thread) give ""; numbers the
// table lacks give "syscall_<nr>".
std::string syscall_name(int nr, Arch arch = host_arch());

// The table's name for `nr`, without allocating; nullopt for numbers it lacks (and
// negative ones).
std::optional<std::string_view> known_syscall_name(int nr, Arch arch = host_arch());

// Accepts "setuid", "SYS_SETUID" or "sys_setuid" (any letter case), surrounding
// whitespace ignored. Names the table lacks give nullopt.
std::optional<int> syscall_number(std::string_view name, Arch arch = host_arch());

// Inspektor Gadget's spelling: "SYS_" + upper-cased syscall_name(), e.g. "SYS_SETUID",
// "SYS_SYSCALL_999" for an unknown number. Negative numbers give "-".
std::string syscall_display_name(int nr, Arch arch = host_arch());

}  // namespace capscope::tables
