// Small ASCII string helpers shared across the tree (capability and syscall
// names, runtime names, YAML words): locale-independent on purpose, since every
// name they touch is ASCII.
#pragma once

#include <string>
#include <string_view>

namespace capscope::util {

std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);
// Without leading and trailing white space (" \t\n\r\f\v").
std::string_view trim_space(std::string_view s);

}  // namespace capscope::util
