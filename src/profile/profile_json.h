// The export format of a profile: versioned JSON (docs/PROFILES.md), so a
// profile can move between machines and into review, and come back.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "profile/profile.h"

namespace capscope::profile {

inline constexpr int kExportFormatVersion = 1;

nlohmann::ordered_json to_export_json(const Profile& p);

struct ImportError {
  std::string message;  // names the field: uses[1]: unknown capability "CAP_NOPE"
  std::string pointer;  // JSON pointer of the field ("/uses/1/capability"), for a line number
};

// nullopt and *error naming the field when the document is not a profile of a
// version this capscope reads.
std::optional<Profile> from_export_json(const nlohmann::json& j, ImportError* error);
std::optional<Profile> from_export_json(const nlohmann::json& j, std::string* error);

}  // namespace capscope::profile
