// The agent's settings: every flag of `capscope agent` is also a key of its
// configuration file (/etc/capscope/capscope.yaml) and of the drop-in files beside
// it (/etc/capscope/capscope.d/*.yaml, in name order, later ones winning); a flag
// given on the command line wins over every file. SIGHUP reads them all again.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/runtime_options.h"

namespace capscope::agent {

inline constexpr const char* kDefaultConfigFile = "/etc/capscope/capscope.yaml";
inline constexpr const char* kDefaultServerAddress = "unix:///var/run/capscope/capscope.sock";
inline constexpr const char* kDefaultMetricsAddress = "127.0.0.1:2113";
inline constexpr const char* kDefaultPolicyDir = "/etc/capscope/policies";

enum class HostServices { None, Unit, Binary };
enum class EventMode { Unique, All, None };

// As given: strings for what is validated later, so a file and a flag spell it alike.
struct AgentOptions {
  std::string config_file = kDefaultConfigFile;
  std::string db;  // default: store::kDefaultDbPath
  std::string flush_interval = "30s";
  std::string host_services = "none";
  std::string event_mode = "unique";
  std::string event_rate_limit;
  std::string export_file;
  uint64_t export_file_max_size_mb = 10;
  std::string export_file_rotation_interval = "0";
  int export_file_max_backups = 5;
  bool export_file_compress = false;
  std::string export_allowlist, export_denylist;
  std::string metrics_address = kDefaultMetricsAddress;
  std::string server_address = kDefaultServerAddress;
  std::string policy_dir = kDefaultPolicyDir;
  std::vector<std::string> capabilities;
  std::string node_name;
  std::string backend = "auto";
  size_t ringbuf_mb = 16;
  cli::RuntimeCliOptions runtimes;
};

// What the options mean, validated.
struct AgentSettings {
  AgentOptions given;
  std::chrono::milliseconds flush_interval{30000};
  HostServices host_services = HostServices::None;
  EventMode event_mode = EventMode::Unique;
  std::optional<uint64_t> event_rate_limit_ns;
  std::chrono::seconds export_rotation_interval{0};
  std::vector<std::string> config_sources;  // the files read, in order
};

// Registers the agent's flags on `app`, bound to `o`.
void add_agent_options(CLI::App* app, AgentOptions& o);

// The configuration files to read: `main` (if it exists, or if it was named
// explicitly: then it must), then main's directory's capscope.d/*.yaml in name order.
std::vector<std::string> config_files(const std::string& main, bool main_required,
                                      std::string* error);

// Reads the files and gives each key's value to the option of the same name that
// the command line left unset. False with a one-line error naming the file, line
// and key on a file that does not parse, an unknown key, or a value the option refuses.
bool apply_config_files(CLI::App* app, const std::vector<std::string>& files, std::string* error);

// Validates and interprets; nullopt with a one-line error naming the key and the fix.
std::optional<AgentSettings> interpret(const AgentOptions& o, std::string* error);

// The whole derivation, as at start and on SIGHUP: parse `args` (the words after
// `agent`), read the configuration files, interpret.
std::optional<AgentSettings> load_settings(const std::vector<std::string>& args,
                                           std::string* error);

// Keys whose change a reload cannot apply (the agent must be restarted), by name.
std::vector<std::string> restart_only_changes(const AgentOptions& before,
                                              const AgentOptions& after);

}  // namespace capscope::agent
