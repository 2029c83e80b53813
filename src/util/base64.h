// Standard base64 (RFC 4648, with padding), as Tetragon uses for exec_id.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace capscope::util {

std::string base64_encode(std::string_view data);

// nullopt when `text` is not padded standard base64 (wrong length, bad
// character, misplaced '='). Used by tests and tools that read exec ids back.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace capscope::util
