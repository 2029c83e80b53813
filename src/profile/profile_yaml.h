// The export format as YAML: the same versioned document as the JSON export
// (docs/PROFILES.md), written through the generic JSON <-> YAML converter, so
// the two forms carry exactly the same fields and cannot drift apart.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "profile/profile.h"

namespace capscope::profile {

std::string to_export_yaml(const Profile& p);

// nullopt and *error when the text is not a profile this capscope reads. The
// error starts with source (the file name) and the line:
//   web.yaml:14: uses[1]: unknown capability "CAP_NOPE"
std::optional<Profile> from_export_yaml(std::string_view text, const std::string& source,
                                        std::string* error);

// An exported profile in either form, told apart by its content: JSON when
// its first non-space character is '{' and it parses as JSON, YAML otherwise
// (a YAML flow mapping starts with '{' too).
std::optional<Profile> from_export_text(std::string_view text, const std::string& source,
                                        std::string* error);

}  // namespace capscope::profile
