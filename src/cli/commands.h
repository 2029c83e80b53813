// The subcommands of the capscope command line. Each registers its flags on
// the CLI11 app and returns the process exit code when run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace capscope::cli {

// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct GlobalOptions {
  bool verbose = false;
};

using Runner = std::function<int()>;

Runner add_trace_command(CLI::App& app, const GlobalOptions& g);
Runner add_check_command(CLI::App& app, const GlobalOptions& g);
Runner add_caps_command(CLI::App& app, const GlobalOptions& g);
Runner add_record_command(CLI::App& app, const GlobalOptions& g);
Runner add_profile_command(CLI::App& app, const GlobalOptions& g);
Runner add_advise_command(CLI::App& app, const GlobalOptions& g);
Runner add_getevents_command(CLI::App& app, const GlobalOptions& g);
Runner add_agent_command(CLI::App& app, const GlobalOptions& g);
Runner add_policy_command(CLI::App& app, const GlobalOptions& g);
Runner add_oci_hook_command(CLI::App& app, const GlobalOptions& g);

}  // namespace capscope::cli
