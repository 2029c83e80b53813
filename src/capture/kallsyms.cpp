#include "capture/kallsyms.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace capscope::capture {

namespace {

bool is_text_type(char t) { return t == 't' || t == 'T' || t == 'w' || t == 'W'; }

// A kallsyms line: "ffffffff81abcc70 T cap_capable" or "... t name\t[module]".
std::optional<KernelSymbol> parse_line(std::string_view line) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 + 3 > line.size()) return std::nullopt;
  char type = line[sp1 + 1];
  if (!is_text_type(type)) return std::nullopt;
  std::string_view name = line.substr(sp1 + 3);
  name = name.substr(0, name.find_first_of("\t "));
  KernelSymbol sym;
  sym.addr = std::strtoull(std::string(line.substr(0, sp1)).c_str(), nullptr, 16);
  if (sym.addr == 0 || name.empty()) return std::nullopt;
  sym.name = std::string(name);
  return sym;
}

}  // namespace

Kallsyms Kallsyms::from_text(std::string_view text) {
  Kallsyms k;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (auto sym = parse_line(text.substr(pos, end - pos))) k.symbols_.push_back(std::move(*sym));
    pos = end + 1;
  }
  std::sort(k.symbols_.begin(), k.symbols_.end(),
            [](const KernelSymbol& a, const KernelSymbol& b) { return a.addr < b.addr; });
  return k;
}

Kallsyms Kallsyms::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return from_text(ss.str());
}

std::optional<std::string_view> Kallsyms::function_at(uint64_t addr) const {
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), addr,
                             [](uint64_t a, const KernelSymbol& s) { return a < s.addr; });
  if (it == symbols_.begin()) return std::nullopt;
  --it;
  // Past the last symbol by far: not kernel text we know (e.g. a BPF program).
  if (std::next(it) == symbols_.end() && addr - it->addr > (1u << 20)) return std::nullopt;
  return std::string_view(it->name);
}

std::optional<uint64_t> Kallsyms::address_of(std::string_view name) const {
  for (const auto& s : symbols_)
    if (s.name == name) return s.addr;
  return std::nullopt;
}

}  // namespace capscope::capture
