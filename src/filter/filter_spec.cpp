#include "filter/filter_spec.h"

#include <cctype>

namespace capscope::filter {

std::optional<uint64_t> parse_duration_ns(std::string_view s) {
  uint64_t total = 0;
  size_t i = 0;
  if (s.empty()) return std::nullopt;
  while (i < s.size()) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    uint64_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (n > 1'000'000'000ULL) return std::nullopt;
      n = n * 10 + static_cast<uint64_t>(s[i++] - '0');
    }
    std::string_view unit;
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    unit = s.substr(u, i - u);
    uint64_t mult;
    if (unit == "ms")
      mult = 1'000'000ULL;
    else if (unit == "s")
      mult = 1'000'000'000ULL;
    else if (unit == "m")
      mult = 60'000'000'000ULL;
    else if (unit == "h")
      mult = 3'600'000'000'000ULL;
    else
      return std::nullopt;
    total += n * mult;
  }
  if (total == 0) return std::nullopt;
  return total;
}

std::optional<RateScope> parse_rate_scope(std::string_view s) {
  if (s == "thread") return RateScope::Thread;
  if (s == "process") return RateScope::Process;
  if (s == "global") return RateScope::Global;
  return std::nullopt;
}

}  // namespace capscope::filter
