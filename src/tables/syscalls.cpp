#include "tables/syscalls.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <span>

#include "util/strings.h"

namespace capscope::tables {
namespace {

struct SyscallEntry {
  int nr;
  std::string_view name;
};

// Generated, sorted by number (scripts/gen_syscall_tables.py).
constexpr SyscallEntry kX86_64ByNr[] = {
#include "tables/syscalls_x86_64.inc"
};
constexpr SyscallEntry kArm64ByNr[] = {
#include "tables/syscalls_arm64.inc"
};

// Lookups binary-search these, so a table out of order would silently miss entries.
constexpr bool strictly_sorted_by_nr(std::span<const SyscallEntry> table) {
  return std::ranges::adjacent_find(table, [](const SyscallEntry& a, const SyscallEntry& b) {
           return a.nr >= b.nr;
         }) == table.end();
}
static_assert(strictly_sorted_by_nr(kX86_64ByNr));
static_assert(strictly_sorted_by_nr(kArm64ByNr));

// The same entries ordered by name, built at compile time for name lookups.
template <size_t N>
constexpr std::array<SyscallEntry, N> sorted_by_name(const SyscallEntry (&by_nr)[N]) {
  std::array<SyscallEntry, N> out{};
  std::ranges::copy(by_nr, out.begin());
  std::ranges::sort(out, {}, &SyscallEntry::name);
  return out;
}
constexpr auto kX86_64ByName = sorted_by_name(kX86_64ByNr);
constexpr auto kArm64ByName = sorted_by_name(kArm64ByNr);

// A name listed twice would make name lookups ambiguous.
constexpr bool unique_names(std::span<const SyscallEntry> by_name) {
  return std::ranges::adjacent_find(by_name, {}, &SyscallEntry::name) == by_name.end();
}
static_assert(unique_names(kX86_64ByName));
static_assert(unique_names(kArm64ByName));

// syscall_number() strips a "sys_" prefix, which would break a name that has one.
constexpr bool no_sys_prefix(std::span<const SyscallEntry> table) {
  return std::ranges::none_of(table,
                              [](const SyscallEntry& e) { return e.name.starts_with("sys_"); });
}
static_assert(no_sys_prefix(kX86_64ByNr));
static_assert(no_sys_prefix(kArm64ByNr));

std::span<const SyscallEntry> table_by_nr(Arch arch) {
  if (arch == Arch::Arm64) return kArm64ByNr;
  return kX86_64ByNr;
}

std::span<const SyscallEntry> table_by_name(Arch arch) {
  if (arch == Arch::Arm64) return kArm64ByName;
  return kX86_64ByName;
}

std::optional<std::string_view> find_name(int nr, Arch arch) {
  auto table = table_by_nr(arch);
  auto it = std::ranges::lower_bound(table, nr, {}, &SyscallEntry::nr);
  if (it == table.end() || it->nr != nr) return std::nullopt;
  return it->name;
}

}  // namespace

std::optional<std::string_view> known_syscall_name(int nr, Arch arch) {
  if (nr < 0) return std::nullopt;
  return find_name(nr, arch);
}

std::string syscall_name(int nr, Arch arch) {
  if (nr < 0) return "";
  if (auto name = find_name(nr, arch)) return std::string(*name);
  return "syscall_" + std::to_string(nr);
}

std::optional<int> syscall_number(std::string_view name, Arch arch) {
  std::string wanted = util::ascii_lower(util::trim_space(name));
  // No table name starts with "sys_" (asserted above), so the prefix is safe to strip.
  constexpr std::string_view kPrefix = "sys_";
  if (wanted.starts_with(kPrefix)) wanted.erase(0, kPrefix.size());
  auto table = table_by_name(arch);
  auto it = std::ranges::lower_bound(table, std::string_view(wanted), {}, &SyscallEntry::name);
  if (it == table.end() || it->name != wanted) return std::nullopt;
  return it->nr;
}

std::string syscall_display_name(int nr, Arch arch) {
  if (nr < 0) return "-";
  return "SYS_" + util::ascii_upper(syscall_name(nr, arch));
}

}  // namespace capscope::tables
