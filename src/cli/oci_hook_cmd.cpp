// capscope oci-hook: run by a container runtime as an OCI createRuntime hook
// (podman's and CRI-O's hooks.d, deploy/oci-hooks/). It reads the container's state
// from stdin and announces the container to the agent, which names it and puts its
// cgroup under its container-scoped policies before the hook returns: the runtime
// starts the container's process only then, so those policies hold from its first
// capability check. By default a hook that cannot reach the agent says why and lets
// the container start (fail open); --fail-closed makes the runtime refuse it instead.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "cli/remote.h"
#include "enrich/runtime/oci_state.h"

namespace capscope::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct OciHookOptions {
  remote::ServerAddress server;
  double timeout_s = 2.0;
  bool fail_closed = false;
  std::string log_file;
};

// The runtime gives the hook's stderr to whoever ran it, or to nobody: with
// --log-file every line also goes there, with the time.
class HookLog {
 public:
  explicit HookLog(std::string path) : path_(std::move(path)) {}
  void line(const std::string& text) {
    std::cerr << "capscope oci-hook: " << text << "\n";
    if (!path_.empty() && !file_.is_open()) file_.open(path_, std::ios::app);
    if (file_)
      file_ << fmt::format("{:%Y-%m-%dT%H:%M:%S}Z ", fmt::gmtime(std::time(nullptr))) << text
            << std::endl;
  }

 private:
  std::string path_;
  std::ofstream file_;  // opened at the first line: a hook that has nothing to say makes no file
};

std::optional<std::string> read_stdin(std::string* error) {
  // Run by hand at a terminal it would wait for input that never comes.
  if (isatty(STDIN_FILENO) != 0) {
    *error =
        "the OCI state comes on stdin, from the container runtime: install the hook "
        "(deploy/oci-hooks/) instead of running it by hand";
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  // Past the bound, reading stops: parse_oci_state refuses the size.
  while (text.size() <= kMaxOciStateBytes) {
    size_t n = std::fread(buf, 1, sizeof buf, stdin);
    if (n == 0) break;
    text.append(buf, n);
  }
  if (std::ferror(stdin) != 0) {
    *error = "cannot read the OCI state from stdin";
    return std::nullopt;
  }
  return text;
}

v1::AnnounceContainerRequest request_of(const OciState& s) {
  v1::AnnounceContainerRequest req;
  req.set_id(s.id);
  req.set_pid(s.pid);
  req.set_bundle(s.bundle);
  for (const auto& [k, v] : s.annotations) (*req.mutable_annotations())[k] = v;
  return req;
}

int run_oci_hook(const OciHookOptions& o, bool verbose) {
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1e3));
  HookLog log(o.log_file);
  std::string error;
  auto text = read_stdin(&error);
  auto state = text ? parse_oci_state(*text, &error) : std::nullopt;
  if (!state) {
    log.line(error);
    return kExitUsage;
  }
  if (is_sandbox(state->annotations)) return kExitOk;  // a pod's pause container
  // Past this point the container is fine and the agent is not: fail open unless asked.
  const int agent_failed = o.fail_closed ? kExitFailure : kExitOk;
  const char* outcome = o.fail_closed ? "the runtime will not start it (--fail-closed)"
                                      : "it starts without its container-scoped policies";
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  auto agent = api::Client::connect(o.server.address, left(), &error);
  if (!agent) {
    log.line(fmt::format("container {}: {}; {}", state->id, error, outcome));
    return agent_failed;
  }
  agent->set_call_deadline(left());
  v1::AnnounceContainerResponse resp;
  api::CallResult r = agent->announce_container(request_of(*state), &resp);
  if (!r.ok()) {
    log.line(fmt::format("container {}: {}; {}", state->id, r.message, outcome));
    return agent_failed;
  }
  if (verbose) {
    std::string policies = fmt::format("{}", fmt::join(resp.policies(), ", "));
    log.line(fmt::format("container {} ({}): cgroup {}, {}, scoped policies: {}", resp.container(),
                         state->id, resp.cgroup_id(), resp.named() ? "named" : "not named",
                         policies.empty() ? "none" : policies));
  }
  return kExitOk;
}

}  // namespace

Runner add_oci_hook_command(CLI::App& app, const GlobalOptions& g) {
  auto opts = std::make_shared<OciHookOptions>();
  auto* cmd = app.add_subcommand(
      "oci-hook",
      "Run by a container runtime as an OCI createRuntime hook: announces the container to "
      "the agent so its container-scoped policies hold from its first process");
  remote::add_server_address_option(cmd, opts->server);
  cmd->add_option("--timeout", opts->timeout_s,
                  "Seconds the hook may take, the agent's wait for the runtime included")
      ->check(CLI::Range(0.1, 60.0))
      ->capture_default_str();
  cmd->add_flag("--fail-closed", opts->fail_closed,
                "When the agent cannot be reached, fail the hook, so the runtime does not start "
                "the container (default: let it start, and say why)");
  cmd->add_option("--log-file", opts->log_file,
                  "Also append the hook's messages here (runtimes often drop a hook's stderr)");
  return [opts, &g] { return run_oci_hook(*opts, g.verbose); };
}

}  // namespace capscope::cli
