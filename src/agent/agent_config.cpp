#include "agent/agent_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "filter/filter_spec.h"
#include "store/profile_store.h"
#include "util/yaml_tree.h"

namespace capscope::agent {

namespace fs = std::filesystem;

void add_agent_options(CLI::App* app, AgentOptions& o) {
  app->add_option("--config", o.config_file,
                  "Configuration file (YAML, keys are these flags without dashes); "
                  "capscope.d/*.yaml beside it are read after it")
      ->capture_default_str();
  app->add_option("--db", o.db, "Profile store (SQLite)")->default_str(store::kDefaultDbPath);
  app->add_option("--flush-interval", o.flush_interval, "Merge profiles into the store this often")
      ->capture_default_str();
  app->add_option(
         "--host-services", o.host_services,
         "Also profile host processes: none, unit (one profile per systemd service) or binary "
         "(one per executable)")
      ->capture_default_str();
  app->add_option("--event-mode", o.event_mode,
                  "Which checks become events: unique (once per container, capability and "
                  "verdict), all, or none (profiles and policies only)")
      ->capture_default_str();
  app->add_option("--event-rate-limit", o.event_rate_limit,
                  "At most one event per key per window (30s, 1m)");
  const char* exp = "Export";
  app->add_option("--export-file", o.export_file, "Write events as JSON lines to FILE")->group(exp);
  app->add_option("--export-file-max-size-mb", o.export_file_max_size_mb,
                  "Rotate the export file at this size")
      ->capture_default_str()
      ->group(exp);
  app->add_option("--export-file-rotation-interval", o.export_file_rotation_interval,
                  "Also rotate it this often (0: by size only)")
      ->capture_default_str()
      ->group(exp);
  app->add_option("--export-file-max-backups", o.export_file_max_backups, "Rotated files kept")
      ->capture_default_str()
      ->group(exp);
  app->add_flag("--export-file-compress", o.export_file_compress, "gzip rotated files")->group(exp);
  app->add_option("--export-allowlist", o.export_allowlist,
                  "Export only events matching these JSON filters (docs/EXPORT.md)")
      ->group(exp);
  app->add_option("--export-denylist", o.export_denylist,
                  "Never export events matching these JSON filters")
      ->group(exp);
  app->add_option("--metrics-address", o.metrics_address,
                  "Prometheus metrics on HOST:PORT (empty: none)")
      ->capture_default_str();
  app->add_option("--server-address", o.server_address, "gRPC API (unix:///path, owner-only)")
      ->capture_default_str();
  app->add_option("--policy-dir", o.policy_dir, "TracingPolicy files loaded at start and reload")
      ->capture_default_str();
  app->add_option("--capabilities", o.capabilities,
                  "The agent's own capabilities: bypass=true, add=CAP,..., drop=CAP,...");
  app->add_option("--node-name", o.node_name, "Node name in events (default: host name)");
  app->add_option("--backend", o.backend, "auto, tracepoint, fentry or kprobe")
      ->capture_default_str();
  app->add_option("--ringbuf-size", o.ringbuf_mb, "Ring buffer size in MiB")->capture_default_str();
  cli::add_runtime_options(app, o.runtimes);
}

std::vector<std::string> config_files(const std::string& main, bool main_required,
                                      std::string* error) {
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::exists(main, ec)) {
    files.push_back(main);
  } else if (main_required) {
    *error = fmt::format("--config {}: no such file (create it, or drop --config to use {})", main,
                         kDefaultConfigFile);
    return {};
  }
  fs::path dropins = fs::path(main).parent_path() / "capscope.d";
  std::vector<std::string> more;
  for (const auto& entry : fs::directory_iterator(dropins, ec)) {
    auto ext = entry.path().extension();
    if (entry.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml"))
      more.push_back(entry.path().string());
  }
  std::sort(more.begin(), more.end());
  files.insert(files.end(), more.begin(), more.end());
  return files;
}

namespace {

// One key's value from one file, and where it was.
struct Setting {
  std::vector<std::string> values;
  std::string where;  // FILE:LINE
};

std::string where_of(const std::string& file, const YAML::Node& n) {
  return fmt::format("{}:{}", file, n.Mark().line + 1);
}

bool read_value(const YAML::Node& v, Setting* out, std::string* error) {
  if (v.IsScalar()) {
    out->values = {v.Scalar()};
    return true;
  }
  if (v.IsNull()) {
    out->values = {""};
    return true;
  }
  if (v.IsSequence()) {
    for (const auto& item : v) {
      if (!item.IsScalar()) {
        *error = fmt::format("{}: a list of plain values is expected", out->where);
        return false;
      }
      out->values.push_back(item.Scalar());
    }
    return true;
  }
  *error = fmt::format("{}: a value or a list is expected, not a map", out->where);
  return false;
}

bool read_file(const std::string& file, CLI::App* app, std::map<std::string, Setting>* settings,
               std::string* error) {
  YAML::Node root;
  std::ifstream in(file, std::ios::binary);
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (!in && !in.eof()) {
    *error = fmt::format("{}: {}", file, std::strerror(errno));
    return false;
  }
  if (std::string hang = util::yaml_cpp_would_hang(text); !hang.empty()) {
    *error = fmt::format("{}: not YAML: {}", file, hang);
    return false;
  }
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    *error = fmt::format("{}:{}: not YAML: {}", file, e.mark.line + 1, e.msg);
    return false;
  }
  if (root.IsNull()) return true;  // an empty file
  if (!root.IsMap()) {
    *error = fmt::format("{}: a map of keys (the agent's flags without dashes) is expected", file);
    return false;
  }
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    Setting s;
    s.where = where_of(file, kv.first);
    if (key == "config" || app->get_option_no_throw("--" + key) == nullptr) {
      *error = fmt::format(
          "{}: unknown key '{}' (keys are the flags of `capscope agent --help` without the "
          "dashes, e.g. export-file)",
          s.where, key);
      return false;
    }
    if (!read_value(kv.second, &s, error)) return false;
    (*settings)[key] = std::move(s);
  }
  return true;
}

}  // namespace

bool apply_config_files(CLI::App* app, const std::vector<std::string>& files, std::string* error) {
  std::map<std::string, Setting> settings;
  for (const auto& f : files)
    if (!read_file(f, app, &settings, error)) return false;
  for (auto& [key, s] : settings) {
    CLI::Option* opt = app->get_option("--" + key);
    if (opt->count() > 0) continue;  // the command line wins
    try {
      opt->add_result(s.values);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      *error = fmt::format("{}: {}: {}", s.where, key, e.what());
      return false;
    }
  }
  return true;
}

namespace {

std::optional<std::chrono::milliseconds> duration_of(const std::string& key,
                                                     const std::string& value, bool zero_ok,
                                                     std::string* error) {
  if (zero_ok && (value == "0" || value.empty())) return std::chrono::milliseconds(0);
  auto ns = filter::parse_duration_ns(value);
  if (!ns) {
    *error = fmt::format("{} '{}': not a duration (use e.g. 30s, 5m, 1h)", key, value);
    return std::nullopt;
  }
  return std::chrono::milliseconds(*ns / 1000000);
}

}  // namespace

std::optional<AgentSettings> interpret(const AgentOptions& o, std::string* error) {
  AgentSettings s;
  s.given = o;
  if (s.given.db.empty()) s.given.db = store::kDefaultDbPath;
  auto flush = duration_of("flush-interval", o.flush_interval, false, error);
  if (!flush) return std::nullopt;
  if (*flush < std::chrono::seconds(1)) {
    *error = fmt::format("flush-interval '{}': at least 1s", o.flush_interval);
    return std::nullopt;
  }
  s.flush_interval = *flush;
  static const std::map<std::string, HostServices> host = {
      {"none", HostServices::None}, {"unit", HostServices::Unit}, {"binary", HostServices::Binary}};
  auto h = host.find(o.host_services);
  if (h == host.end()) {
    *error = fmt::format("host-services '{}': use none, unit or binary", o.host_services);
    return std::nullopt;
  }
  s.host_services = h->second;
  static const std::map<std::string, EventMode> modes = {
      {"unique", EventMode::Unique}, {"all", EventMode::All}, {"none", EventMode::None}};
  auto m = modes.find(o.event_mode);
  if (m == modes.end()) {
    *error = fmt::format("event-mode '{}': use unique, all or none", o.event_mode);
    return std::nullopt;
  }
  s.event_mode = m->second;
  if (!o.event_rate_limit.empty()) {
    s.event_rate_limit_ns = filter::parse_duration_ns(o.event_rate_limit);
    if (!s.event_rate_limit_ns) {
      *error = fmt::format("event-rate-limit '{}': not a duration (use e.g. 30s, 1m)",
                           o.event_rate_limit);
      return std::nullopt;
    }
  }
  auto rot =
      duration_of("export-file-rotation-interval", o.export_file_rotation_interval, true, error);
  if (!rot) return std::nullopt;
  s.export_rotation_interval = std::chrono::duration_cast<std::chrono::seconds>(*rot);
  if (o.export_file_max_size_mb == 0) {
    *error = "export-file-max-size-mb 0: give a size of at least 1 (MiB)";
    return std::nullopt;
  }
  if (o.export_file_max_backups < 0) {
    *error = "export-file-max-backups: give 0 or more";
    return std::nullopt;
  }
  if (o.ringbuf_mb == 0) {
    *error = "ringbuf-size 0: give a size in MiB (default 16)";
    return std::nullopt;
  }
  return s;
}

std::optional<AgentSettings> load_settings(const std::vector<std::string>& args,
                                           std::string* error) {
  CLI::App app{"capscope agent"};
  AgentOptions o;
  add_agent_options(&app, o);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them so
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    *error = e.what();
    return std::nullopt;
  }
  bool named = app.get_option("--config")->count() > 0;
  auto files = config_files(o.config_file, named, error);
  if (!error->empty()) return std::nullopt;
  if (!apply_config_files(&app, files, error)) return std::nullopt;
  auto s = interpret(o, error);
  if (s) s->config_sources = files;
  return s;
}

std::vector<std::string> restart_only_changes(const AgentOptions& a, const AgentOptions& b) {
  std::vector<std::string> keys;
  auto check = [&](const char* key, bool same) {
    if (!same) keys.emplace_back(key);
  };
  check("db", a.db == b.db);
  check("metrics-address", a.metrics_address == b.metrics_address);
  check("server-address", a.server_address == b.server_address);
  check("capabilities", a.capabilities == b.capabilities);
  check("backend", a.backend == b.backend);
  check("ringbuf-size", a.ringbuf_mb == b.ringbuf_mb);
  check("host-services", a.host_services == b.host_services);
  check("node-name", a.node_name == b.node_name);
  return keys;
}

}  // namespace capscope::agent
