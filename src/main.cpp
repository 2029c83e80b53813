// capscope: which Linux capabilities processes, containers and pods use, and
// what to add or drop in their security context.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace capscope::cli;
  CLI::App app{"capscope: record the Linux capabilities processes and containers use"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("capscope ") + CAPSCOPE_VERSION);
  GlobalOptions g;
  app.add_flag("-v,--verbose", g.verbose, "Verbose diagnostics (libbpf and verifier logs)");
  // Subcommands inherit this: `capscope trace -v` works as well as `capscope -v trace`.
  app.fallthrough();
  // Diagnostics go to stderr: stdout carries the events.
  spdlog::set_default_logger(spdlog::stderr_logger_st("capscope"));
  spdlog::set_pattern("capscope: %l: %v");
  std::map<CLI::App*, Runner> runners;
  auto add = [&](Runner (*fn)(CLI::App&, const GlobalOptions&)) {
    size_t before = app.get_subcommands({}).size();
    Runner r = fn(app, g);
    runners[app.get_subcommands({}).at(before)] = std::move(r);
  };
  add(&add_trace_command);
  add(&add_check_command);
  add(&add_caps_command);
  add(&add_record_command);
  add(&add_profile_command);
  add(&add_advise_command);
  add(&add_getevents_command);
  add(&add_agent_command);
  add(&add_policy_command);
  add(&add_oci_hook_command);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "capscope: " << e.what() << " (see capscope --help)\n";
    return kExitUsage;
  }
  if (g.verbose) spdlog::set_level(spdlog::level::debug);
  for (CLI::App* sub : app.get_subcommands())
    if (auto it = runners.find(sub); it != runners.end()) return it->second();
  return kExitUsage;
}
