// Records as JSON lines: `trace --save-records FILE` writes them and the
// replay source reads them back, so a captured session can be replayed
// through enrichment, filters and outputs without root or BPF (tests, bug
// reports). The format is versioned by the "v" key of every line.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "model/records.h"

namespace capscope::capture {

// 2: checks carry pidns_level (not the pid namespace inode); cgroup records.
inline constexpr int kRecordFormatVersion = 2;

nlohmann::json record_to_json(const Record& r);
// nullopt and a reason in *error for a line that is not a valid record.
std::optional<Record> record_from_json(const nlohmann::json& j, std::string* error);

}  // namespace capscope::capture
