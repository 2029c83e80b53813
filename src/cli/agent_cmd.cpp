// capscope agent: the node daemon (src/agent/agent.h). This file wires it to the
// process: its settings, signals, the metrics and API servers, and the agent's own
// capabilities once its programs are attached.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iterator>

#include "agent/agent.h"
#include "agent/agent_config.h"
#include "agent/privileges.h"
#include "api/server.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "metrics/http_server.h"

namespace capscope::cli {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void on_stop(int) { g_stop.store(true); }
extern "C" void on_hup(int) { g_reload.store(true); }

void install_signals() {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_hup;
  sigaction(SIGHUP, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// The words after `agent` on this process's command line: what a reload parses again.
std::vector<std::string> agent_args() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> words;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    words.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  auto it = std::find(words.begin() + std::min<size_t>(1, words.size()), words.end(), "agent");
  if (it == words.end()) return {};
  return {std::next(it), words.end()};
}

int run_agent(const GlobalOptions& g) {
  std::vector<std::string> args = agent_args();
  std::string error;
  auto settings = agent::load_settings(args, &error);
  if (!settings) return usage_error(error);
  for (const auto& f : settings->config_sources) spdlog::info("configuration: {}", f);
  agent::CapabilityOptions caps;
  if (!agent::parse_capabilities_values(settings->given.capabilities, &caps, &error))
    return usage_error(error);
  agent::Privileges privileges;
  if (!privileges.configure(caps, &error)) return failure(error);
  install_signals();
  auto agent = agent::Agent::start(*settings, args, g.verbose, &error);
  if (!agent) return failure(error);
  // Attached: from here on the agent keeps only what it needs (docs/PRIVILEGES.md).
  // The servers start after, so their threads begin with the reduced sets.
  if (!privileges.drop_to_base(&error)) return failure(error);
  if (auto w = privileges.warning(); !w.empty()) spdlog::warn("{}", w);
  spdlog::info("own capabilities: {}", privileges.describe_process());

  metrics::MetricsServer metrics_server(agent->metrics().registry());
  metrics_server.set_health_check([a = agent.get()] { return a->health_problem(); });
  if (!settings->given.metrics_address.empty()) {
    if (auto why = metrics_server.start(settings->given.metrics_address); !why.empty())
      return failure("--metrics-address " + why);
    spdlog::info("metrics on http://{}/metrics", metrics_server.address());
  }
  api::ServerOptions sopts;
  sopts.address = settings->given.server_address;
  std::unique_ptr<api::Server> server;
  if (!sopts.address.empty()) {
    server = api::Server::start(*agent, sopts, &error);
    if (!server) return failure(error);
    spdlog::info("API on {}", server->address());
  }
  int rc = agent->run(g_stop, g_reload);
  if (server) server->stop();
  metrics_server.stop();
  return rc;
}

}  // namespace

Runner add_agent_command(CLI::App& app, const GlobalOptions& g) {
  auto o = std::make_shared<agent::AgentOptions>();
  CLI::App* a = app.add_subcommand(
      "agent",
      "Run as the node agent: profiles of every container into the store, events to the "
      "export file, subscribers and metrics, policies in the kernel");
  agent::add_agent_options(a, *o);
  // `o` only backs the parse of the command line (help, types); run_agent derives the
  // settings itself, as a reload does. It must live as long as the parser writes to it.
  return [o, &g] { return run_agent(g); };
}

}  // namespace capscope::cli
