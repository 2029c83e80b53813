// How CLI commands find a running agent and talk to it (docs/API.md, "agent
// or stand-alone"): with --server-address given, the agent must answer; with
// the default address, the command uses the agent when one answers there and
// works stand-alone (reads the store) when none does.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/client.h"
#include "api/socket.h"
#include "profile/profile.h"
#include "store/profile_store.h"

namespace capscope::cli::remote {

// How long finding an agent may take before the command goes on without it.
inline constexpr std::chrono::milliseconds kConnectDeadline{2000};

struct ServerAddress {
  std::string address = api::kDefaultAddress;
  bool given = false;  // by the flag or CAPSCOPE_SERVER_ADDRESS
};

// --server-address (env CAPSCOPE_SERVER_ADDRESS) on a command.
void add_server_address_option(CLI::App* command, ServerAddress& s);

// "no capscope agent at ADDR: is `capscope agent` running? (or drop --server-address ...)"
std::string no_agent_message(const std::string& address);

// The agent, or nullopt: with *error empty, work stand-alone; with *error set
// (the address was explicit and no agent answers there), fail with it. A
// default address that is there but refuses this user logs a warning and
// goes stand-alone.
std::optional<api::Client> connect_agent(const std::string& address, bool explicit_address,
                                         std::string* error);
std::optional<api::Client> connect_agent(const ServerAddress& s, std::string* error);

// A failed call's exit code, its message printed: 2 for bad input or an
// unknown name, 1 otherwise.
int call_failure(const api::CallResult& r);

// --- profile, advise: the store's profiles through the agent. Each returns
// nullopt with *rc set (and the message printed) on failure.

// The agent to read profiles from, or nullopt: *rc 0 to read the store, else
// the exit code. A --db other than the default reads that store directly.
std::optional<api::Client> agent_for_profiles(const ServerAddress& s, const std::string& db,
                                              int* rc);
std::optional<profile::Profile> fetch_profile(api::Client& agent, const std::string& name, int* rc);
std::optional<std::vector<store::ProfileSummary>> fetch_summaries(api::Client& agent, int* rc);
std::optional<std::vector<profile::Profile>> fetch_profiles(api::Client& agent, int* rc);

}  // namespace capscope::cli::remote
