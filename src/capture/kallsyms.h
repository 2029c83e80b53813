// Kernel symbol lookup from /proc/kallsyms: turns the return addresses of a
// stack sample into function names for the call-site classifier.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capscope::capture {

struct KernelSymbol {
  uint64_t addr = 0;
  std::string name;
};

class Kallsyms {
 public:
  // Loads text symbols; addresses are all zero when kptr_restrict hides them,
  // which `usable()` reports.
  static Kallsyms load(const std::filesystem::path& path = "/proc/kallsyms");
  static Kallsyms from_text(std::string_view text);

  // The function containing addr (the nearest text symbol at or below it).
  [[nodiscard]] std::optional<std::string_view> function_at(uint64_t addr) const;
  [[nodiscard]] std::optional<uint64_t> address_of(std::string_view name) const;
  [[nodiscard]] bool usable() const { return !symbols_.empty(); }
  [[nodiscard]] size_t size() const { return symbols_.size(); }

 private:
  std::vector<KernelSymbol> symbols_;  // sorted by address
};

}  // namespace capscope::capture
