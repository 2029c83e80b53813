// Small things every subcommand needs: one-line errors with exit codes,
// privilege checks, host identity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/records.h"

namespace capscope::cli {

// Print "capscope: <msg>" on stderr and return the exit code.
int usage_error(const std::string& msg);
int failure(const std::string& msg);

// Empty if this process may load and attach BPF programs, else why not and what to do.
std::string privilege_problem();

// The id of a cgroup v2 directory (its inode), from an absolute path or one
// relative to the cgroup v2 mount.
std::optional<uint64_t> cgroup_id_of(const std::string& path, std::string* error);

// The namespaces of pid 1: what "host" means.
NsInodes host_namespaces();

std::string node_name();

// --fields: a comma list; validated by the table writer.
std::optional<std::vector<std::string>> parse_field_list(const std::string& s, std::string* error);

}  // namespace capscope::cli
