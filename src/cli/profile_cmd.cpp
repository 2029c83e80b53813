// capscope profile list|show|delete, and capscope advise NAME: read the
// profile store that `record` fills.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "advice/advice.h"
#include "advice/workload_patch.h"
#include "cli/advise_current.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/remote.h"
#include "profile/profile_json.h"
#include "profile/profile_yaml.h"
#include "store/profile_store.h"
#include "tables/capabilities.h"
#include "util/clock.h"

namespace capscope::cli {

namespace {

struct StoreOptions {
  std::string db = store::kDefaultDbPath;
  std::string name;
  std::string other;  // diff: the newer profile
  std::string file;   // export: where to (default stdout); import: from where
  std::string format = "text";
  std::string export_format;     // export: json or yaml; empty: from --out's extension
  std::string pod;               // advise: every container profile of this pod's workload
  std::string workload;          // advise: ... of this workload
  remote::ServerAddress server;  // a running agent's profiles instead of the store's
};

// `profile diff` exits with this when the newer profile needs a capability
// the older did not (a regression a CI job should stop on).
constexpr int kExitNewNeeds = 3;

std::string seconds(uint64_t ns) { return fmt::format("{:.1f}s", static_cast<double>(ns) / 1e9); }

std::string short_names(const std::vector<int>& caps) {
  return caps.empty() ? "-" : fmt::format("{}", fmt::join(tables::cap_short_names(caps), ","));
}

// A held set: "ALL" when it has every capability this capscope knows (a root
// process's usual sets), "ALL but X" when it lacks a few, else the names.
std::string held_names(uint64_t mask) {
  std::vector<int> missing;
  for (const auto& info : tables::all_capabilities())
    if (!(mask & (1ULL << info.number))) missing.push_back(info.number);
  if (missing.empty()) return "ALL";
  if (missing.size() <= 3) return "ALL but " + short_names(missing);
  return short_names(tables::caps_in_mask(mask));
}

// Opens the store and loads one profile; the exit code on failure.
std::optional<profile::Profile> load_one(const StoreOptions& o, int* rc) {
  if (auto agent = remote::agent_for_profiles(o.server, o.db, rc))
    return remote::fetch_profile(*agent, o.name, rc);
  if (*rc != kExitOk) return std::nullopt;
  std::string error;
  auto db = store::ProfileStore::open(o.db, &error);
  if (!db) {
    *rc = failure(error);
    return std::nullopt;
  }
  auto p = db->load(o.name, &error);
  if (!p) {
    *rc = error.empty() ? usage_error(fmt::format("no profile named \"{}\" in {} (capscope "
                                                  "profile list shows the names)",
                                                  o.name, o.db))
                        : failure(error);
    return std::nullopt;
  }
  return p;
}

// The profiles' summaries, from the agent when one runs, else from the store.
std::optional<std::vector<store::ProfileSummary>> list_all(const StoreOptions& o, int* rc) {
  if (auto agent = remote::agent_for_profiles(o.server, o.db, rc))
    return remote::fetch_summaries(*agent, rc);
  if (*rc != kExitOk) return std::nullopt;
  std::string error;
  auto db = store::ProfileStore::open(o.db, &error);
  auto all = db ? db->list(&error) : std::nullopt;
  if (!all) *rc = failure(error);
  return all;
}

// Every profile, from the agent when one runs, else from the store.
std::optional<std::vector<profile::Profile>> load_all(const StoreOptions& o, int* rc) {
  if (auto agent = remote::agent_for_profiles(o.server, o.db, rc))
    return remote::fetch_profiles(*agent, rc);
  if (*rc != kExitOk) return std::nullopt;
  std::string error;
  auto db = store::ProfileStore::open(o.db, &error);
  auto summaries = db ? db->list(&error) : std::nullopt;
  if (!summaries) {
    *rc = failure(error);
    return std::nullopt;
  }
  std::vector<profile::Profile> all;
  for (const auto& summary : *summaries) {
    auto p = db->load(summary.name, &error);
    if (p) all.push_back(std::move(*p));
    if (!error.empty()) {
      *rc = failure(error);
      return std::nullopt;
    }
  }
  return all;
}

int run_list(const StoreOptions& o) {
  int rc = kExitOk;
  auto all = list_all(o, &rc);
  if (!all) return rc;
  std::cout << fmt::format("{:<24} {:>4} {:>10}  {}\n", "NAME", "RUNS", "RECORDED", "NEEDS");
  for (const auto& s : *all)
    std::cout << fmt::format("{:<24} {:>4} {:>10}  {}\n", s.name, s.runs, seconds(s.recorded_ns),
                             short_names(s.needed));
  return kExitOk;
}

int run_show(const StoreOptions& o) {
  int rc = kExitOk;
  auto p = load_one(o, &rc);
  if (!p) return rc;
  std::cout << fmt::format("profile {}: {} ({} runs, {} recorded)\n", p->name, p->subject, p->runs,
                           seconds(p->recorded_ns));
  std::cout << fmt::format("{:<22} {:<7} {:<6} {:>8}  {}\n", "CAPABILITY", "VERDICT", "AUDIT",
                           "COUNT", "SYSCALLS / BINARIES");
  for (const auto& [key, s] : p->uses) {
    std::vector<std::string> where;
    for (const auto& [sc, n] : s.syscalls) where.push_back(fmt::format("{}:{}", sc, n));
    for (const auto& [bin, b] : s.binaries) where.push_back(bin);
    std::cout << fmt::format("{:<22} {:<7} {:<6} {:>8}  {}\n", tables::cap_name(key.cap),
                             key.granted ? "granted" : "denied", key.audit ? "need" : "probe",
                             s.count, fmt::join(where, " "));
  }
  std::cout << fmt::format("held: effective {} permitted {} bounding {} ambient {}{}{}\n",
                           held_names(p->held.caps.effective), held_names(p->held.caps.permitted),
                           held_names(p->held.caps.bounding), held_names(p->held.caps.ambient),
                           p->held.ran_as_root ? "; ran as root" : "",
                           p->held.no_new_privs ? "; no_new_privs" : "");
  return kExitOk;
}

// --format, else yaml for an --out ending in .yaml or .yml, else json.
bool exports_yaml(const StoreOptions& o) {
  if (!o.export_format.empty()) return o.export_format == "yaml";
  auto ext = std::filesystem::path(o.file).extension();
  return ext == ".yaml" || ext == ".yml";
}

int run_export(const StoreOptions& o) {
  int rc = kExitOk;
  auto p = load_one(o, &rc);
  if (!p) return rc;
  std::string text =
      exports_yaml(o) ? profile::to_export_yaml(*p) : profile::to_export_json(*p).dump(2) + "\n";
  if (o.file.empty() || o.file == "-") {
    std::cout << text;
    return kExitOk;
  }
  std::ofstream out(o.file);
  out << text;
  if (!out) return failure(fmt::format("--out {}: {}", o.file, std::strerror(errno)));
  return kExitOk;
}

int run_import(const StoreOptions& o) {
  std::ifstream in(o.file);
  if (!in) return usage_error(fmt::format("{}: {}", o.file, std::strerror(errno)));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return usage_error(fmt::format("{}: {}", o.file, std::strerror(errno)));
  std::string error;
  auto p = profile::from_export_text(text, o.file, &error);
  if (!p) return usage_error(error);
  if (!o.name.empty()) p->name = o.name;
  auto db = store::ProfileStore::open(o.db, &error);
  if (!db) return failure(error);
  if (!db->merge_save(*p, &error)) return failure(error);
  std::cout << fmt::format("imported {} into {} ({} runs)\n", p->name, o.db, p->runs);
  return kExitOk;
}

// What the newer profile needs that the older did not, and what it no longer needs.
int run_diff(const StoreOptions& o) {
  int rc = kExitOk;
  auto older = load_one(o, &rc);
  if (!older) return rc;
  StoreOptions newer_opts = o;
  newer_opts.name = o.other;
  auto newer = load_one(newer_opts, &rc);
  if (!newer) return rc;
  auto a = older->needed(), b = newer->needed();
  std::vector<int> added, removed;
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(added));
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(removed));
  auto evidence = advice::advise(*newer);
  for (int cap : added) {
    std::string why;
    for (const auto& c : evidence.add)
      if (c.cap == cap) why = c.evidence;
    std::cout << fmt::format("+ {:<22} {} needs it: {}\n", tables::cap_name(cap), newer->name, why);
  }
  for (int cap : removed)
    std::cout << fmt::format("- {:<22} {} no longer uses it\n", tables::cap_name(cap), newer->name);
  if (added.empty() && removed.empty())
    std::cout << fmt::format("{} and {} need the same capabilities\n", older->name, newer->name);
  return added.empty() ? kExitOk : kExitNewNeeds;
}

int run_delete(const StoreOptions& o) {
  std::string error;
  auto db = store::ProfileStore::open(o.db, &error);
  if (!db) return failure(error);
  bool removed = db->remove(o.name, &error);
  if (!error.empty()) return failure(error);
  if (!removed) return usage_error(fmt::format("no profile named \"{}\" in {}", o.name, o.db));
  return kExitOk;
}

// "NS/NAME" or "NAME" (any namespace).
bool same_place(const profile::ContainerIdentity& c, const std::string& spec, bool pod) {
  auto slash = spec.find('/');
  std::string ns = slash == std::string::npos ? "" : spec.substr(0, slash);
  std::string name = slash == std::string::npos ? spec : spec.substr(slash + 1);
  if (!ns.empty() && ns != c.namespace_name) return false;
  return c.workload == name || (pod && c.pod == name);
}

// advise --pod / --workload: the container profiles of one workload, as one patch each.
int run_advise_workload(const StoreOptions& o, advice::Format f) {
  bool pod = !o.pod.empty();
  const std::string& spec = pod ? o.pod : o.workload;
  int rc = kExitOk;
  auto all = load_all(o, &rc);
  if (!all) return rc;
  // By workload: a pod name matches the workload it was last seen in.
  std::map<std::string, std::vector<profile::Profile>> by_workload;
  for (const auto& loaded : *all) {
    const auto* p = &loaded;
    const auto& c = p->container;
    if (c.empty() || c.workload.empty() || !same_place(c, spec, pod)) continue;
    by_workload[c.namespace_name + "/" + c.workload_kind + "/" + c.workload].push_back(*p);
  }
  if (by_workload.empty())
    return usage_error(fmt::format(
        "--{} {}: no container profile in {} was recorded from it (record --pod NAME or "
        "--selector records one profile per container; `capscope profile list` shows them)",
        pod ? "pod" : "workload", spec, o.db));
  bool first = true;
  for (const auto& [key, profiles] : by_workload) {
    if (!first) std::cout << (f == advice::Format::K8s ? "---\n" : "\n");
    first = false;
    std::vector<advice::ContainerAdvice> advised;
    for (const auto& p : profiles) advised.push_back({&p, advice::advise(p)});
    if (f == advice::Format::K8s) {
      std::cout << advice::render_workload_patch(advised);
      continue;
    }
    for (const auto& a : advised) std::cout << advice::render(a.advice, *a.profile, f);
  }
  return kExitOk;
}

int run_advise(const StoreOptions& o, const CurrentOptions& current) {
  advice::Format f{};
  if (!advice::parse_format(o.format, &f))
    return usage_error(fmt::format(
        "-f {}: not an advice format (k8s, docker, compose, systemd, setcap, json, text)",
        o.format));
  int given = !o.name.empty() + !o.pod.empty() + !o.workload.empty();
  if (given != 1)
    return usage_error(
        "advise needs one of: a profile NAME, --pod [NAMESPACE/]POD or --workload "
        "[NAMESPACE/]WORKLOAD");
  if (o.name.empty()) {
    if (current.requested())
      return usage_error("--current compares one profile: give its NAME, not --pod or --workload");
    return run_advise_workload(o, f);
  }
  int rc = kExitOk;
  auto p = load_one(o, &rc);
  if (!p) return rc;
  if (current.requested()) return run_advise_current(current, *p, o.format);
  std::cout << advice::render(advice::advise(*p), *p, f);
  return kExitOk;
}

void add_db(CLI::App* c, StoreOptions& o) {
  c->add_option("--db", o.db, "Profile database")->capture_default_str();
}

}  // namespace

Runner add_profile_command(CLI::App& app, const GlobalOptions&) {
  auto o = std::make_shared<StoreOptions>();
  auto which = std::make_shared<std::string>();
  CLI::App* p = app.add_subcommand("profile", "List, show or delete recorded profiles");
  p->require_subcommand(1);
  CLI::App* list = p->add_subcommand("list", "The recorded profiles");
  CLI::App* show = p->add_subcommand("show", "Every capability a profile used, with counts");
  CLI::App* del = p->add_subcommand("delete", "Remove a profile");
  CLI::App* exp =
      p->add_subcommand("export", "A profile as versioned JSON or YAML (docs/PROFILES.md)");
  CLI::App* imp = p->add_subcommand("import", "Merge an exported profile into the store");
  CLI::App* diff = p->add_subcommand(
      "diff", "Capabilities NEWER needs that OLD did not (exit 3 if any), and the reverse");
  for (CLI::App* c : {list, show, del, exp, imp, diff}) add_db(c, *o);
  for (CLI::App* c : {show, del, exp}) c->add_option("name", o->name, "Profile name")->required();
  for (CLI::App* c : {list, show, exp, diff}) remote::add_server_address_option(c, o->server);
  exp->add_option("--out", o->file, "Write here instead of stdout");
  exp->add_option("--format", o->export_format,
                  "json or yaml (default: yaml if --out ends in .yaml or .yml, else json)")
      ->check(CLI::IsMember({"json", "yaml"}));
  imp->add_option("file", o->file, "An exported profile (JSON or YAML)")->required();
  imp->add_option("--name", o->name, "Store it under this name instead of its own");
  diff->add_option("old", o->name, "The older profile")->required();
  diff->add_option("new", o->other, "The newer profile")->required();
  for (auto [c, name] : {std::pair{list, "list"},
                         {show, "show"},
                         {del, "delete"},
                         {exp, "export"},
                         {imp, "import"},
                         {diff, "diff"}})
    c->callback([which, n = std::string(name)] { *which = n; });
  return [o, which] {
    if (*which == "show") return run_show(*o);
    if (*which == "delete") return run_delete(*o);
    if (*which == "export") return run_export(*o);
    if (*which == "import") return run_import(*o);
    if (*which == "diff") return run_diff(*o);
    return run_list(*o);
  };
}

Runner add_advise_command(CLI::App& app, const GlobalOptions&) {
  auto o = std::make_shared<StoreOptions>();
  o->format = "k8s";
  CLI::App* a = app.add_subcommand("advise", "What to add and drop, from a recorded profile");
  add_db(a, *o);
  a->add_option("name", o->name, "Profile name");
  a->add_option("--pod", o->pod,
                "Every container of this pod's workload ([NAMESPACE/]POD), as one patch for "
                "kubectl patch or kustomize");
  a->add_option("--workload", o->workload,
                "Every container of this workload ([NAMESPACE/]NAME), as one patch");
  a->add_option("-f,--format", o->format, "k8s, docker, compose, systemd, setcap, json or text")
      ->capture_default_str();
  remote::add_server_address_option(a, o->server);
  auto current = std::make_shared<CurrentOptions>();
  add_current_options(a, *current);
  return [o, current] { return run_advise(*o, *current); };
}

}  // namespace capscope::cli
