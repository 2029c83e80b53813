// `capscope advise NAME --current FILE | --current-pid PID`: the profile's
// advice against what the workload is granted today (src/advice/compare.h).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "profile/profile.h"

namespace capscope::cli {

struct CurrentOptions {
  std::string file;             // --current
  std::optional<uint32_t> pid;  // --current-pid
  std::string runtime;          // --runtime: whose default set a spec starts from
  std::string container;        // --container: compare only this one

  [[nodiscard]] bool requested() const { return !file.empty() || pid.has_value(); }
};

// Registers --current, --current-pid, --runtime and --container on `advise`.
void add_current_options(CLI::App* advise, CurrentOptions& o);

// Prints the comparison (-f json: JSON, any other form: the text report, whose
// recommended block is in the spec's own syntax); returns the exit code.
int run_advise_current(const CurrentOptions& o, const profile::Profile& p,
                       const std::string& format);

}  // namespace capscope::cli
