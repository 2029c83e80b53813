// capscope getevents: the events of a running agent, with the filters of
// trace, until Ctrl-C, --max-events or --timeout.
#include <fmt/format.h>

#include <unistd.h>
#include <atomic>
#include <chrono>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/remote.h"
#include "cli/runtime_options.h"

namespace capscope::cli {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

struct GetEventsOptions {
  std::string format = "json";
  std::vector<uint32_t> pids, tids, uids, gids;
  std::vector<std::string> comms, cgroups, caps;
  bool denied = false, audit_only = false, host = false, containers = false, unique = false;
  std::string rate_limit, rate_scope;
  IdentityCliOptions identity;
  double timeout_s = 0;
  uint64_t max_events = 0;
  remote::ServerAddress server;
};

template <typename T>
void set_all(google::protobuf::RepeatedField<T>* out, const std::vector<T>& values) {
  out->Add(values.begin(), values.end());
}

void set_all(google::protobuf::RepeatedPtrField<std::string>* out,
             const std::vector<std::string>& values) {
  for (const auto& v : values) out->Add()->assign(v);
}

// The flags as the request carries them; the agent checks them (one place, so
// every API client gets the same answers) and says what is wrong.
v1::GetEventsRequest to_request(const GetEventsOptions& o) {
  v1::GetEventsRequest r;
  set_all(r.mutable_pids(), o.pids);
  set_all(r.mutable_tids(), o.tids);
  set_all(r.mutable_uids(), o.uids);
  set_all(r.mutable_gids(), o.gids);
  set_all(r.mutable_comms(), o.comms);
  set_all(r.mutable_cgroups(), o.cgroups);
  set_all(r.mutable_caps(), o.caps);
  r.set_denied_only(o.denied);
  r.set_audit_only(o.audit_only);
  r.set_host_only(o.host);
  r.set_containers_only(o.containers);
  r.set_unique(o.unique);
  r.set_rate_limit(o.rate_limit);
  r.set_rate_limit_scope(o.rate_scope);
  set_all(r.mutable_namespaces(), o.identity.namespaces);
  set_all(r.mutable_pods(), o.identity.pods);
  set_all(r.mutable_containers(), o.identity.containers);
  r.set_selector(o.identity.selector);
  r.set_format(o.format == "compact" ? v1::EVENT_FORMAT_COMPACT : v1::EVENT_FORMAT_JSON);
  return r;
}

struct Tally {
  uint64_t received = 0;
  uint64_t dropped = 0;
  bool agent_stopped = false;
};

void print_tally(const Tally& t) {
  std::cerr << fmt::format(
      "capscope: {} events received, {} dropped by the agent (this client "
      "read too slowly){}\n",
      t.received, t.dropped, t.agent_stopped ? "; the agent stopped" : "");
}

// Stops the stream after --timeout seconds (0: never).
class Timeout {
 public:
  explicit Timeout(double seconds) {
    if (seconds <= 0) return;
    std::signal(SIGALRM, on_signal);
    alarm(static_cast<unsigned>(std::max(1.0, seconds)));
  }
  ~Timeout() { alarm(0); }
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
};

int run_getevents(const GetEventsOptions& o) {
  if (o.format != "json" && o.format != "compact")
    return usage_error(fmt::format("-o {}: use json or compact", o.format));
  std::string error;
  api::ConnectProblem problem{};
  // Events exist only in a running agent: the default address must answer too.
  auto agent = api::Client::connect(o.server.address, remote::kConnectDeadline, &error, &problem);
  if (!agent && problem == api::ConnectProblem::NoAgent)
    return failure(
        fmt::format("no capscope agent at {}: is `capscope agent` running? (without "
                    "one, `capscope trace` takes the same filters)",
                    o.server.address));
  if (!agent) return failure(error);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  Timeout timeout(o.timeout_s);
  Tally tally;
  auto on_event = [&](const v1::Event& e) {
    tally.dropped = e.dropped();
    tally.agent_stopped = e.final();
    if (e.line().empty()) return true;  // a status message: counters only
    std::cout << e.line() << '\n' << std::flush;
    ++tally.received;
    return o.max_events == 0 || tally.received < o.max_events;
  };
  auto result = agent->get_events(to_request(o), on_event, g_stop);
  // A refused request never streamed: nothing to count.
  if (result.kind != api::CallResult::Kind::InvalidArgument) print_tally(tally);
  if (!result.ok()) return remote::call_failure(result);
  return kExitOk;
}

}  // namespace

Runner add_getevents_command(CLI::App& app, const GlobalOptions&) {
  auto o = std::make_shared<GetEventsOptions>();
  CLI::App* c = app.add_subcommand(
      "getevents", "Stream a running agent's events, with the filters of trace (docs/API.md)");
  c->add_option("-o,--output-format", o->format, "json or compact")->capture_default_str();
  c->add_option("--pid", o->pids, "Only these processes (thread group ids)")->delimiter(',');
  c->add_option("--tid", o->tids, "Only these threads")->delimiter(',');
  c->add_option("--uid", o->uids, "Only checks of these user ids")->delimiter(',');
  c->add_option("--gid", o->gids, "Only checks of these group ids")->delimiter(',');
  c->add_option("--comm", o->comms, "Only these command names")->delimiter(',');
  c->add_option("--cgroup", o->cgroups, "Only tasks in these cgroup v2 paths (on the agent's host)")
      ->delimiter(',');
  c->add_option("--caps", o->caps, "Only these capabilities (CAP_SYS_ADMIN, sys_admin, 21)")
      ->delimiter(',');
  c->add_flag("--denied", o->denied, "Only denied checks");
  c->add_flag("--audit-only", o->audit_only, "Only audited checks (no no-audit probes)");
  c->add_flag("--host", o->host, "Only host processes");
  c->add_flag("--containers", o->containers, "Only processes in containers");
  c->add_flag("--unique", o->unique, "Once per container, capability and verdict");
  c->add_option("--rate-limit", o->rate_limit, "At most one event per key per window (30s, 1m)");
  c->add_option("--rate-limit-scope", o->rate_scope, "thread (default), process or global");
  add_identity_options(c, o->identity);
  c->add_option("-t,--timeout", o->timeout_s, "Stop after this many seconds");
  c->add_option("--max-events", o->max_events, "Stop after this many events");
  remote::add_server_address_option(c, o->server);
  return [o] { return run_getevents(*o); };
}

}  // namespace capscope::cli
