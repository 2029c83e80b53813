// capscope policy validate|list|add|delete|from-profile: Tetragon-form
// TracingPolicies (docs/POLICIES.md) in the policy folder.
//
// list, add and delete talk to a running agent when one answers (its API, as
// `tetra tracingpolicy` does: a policy added there is in the kernel at once and
// lasts until the agent stops); with no agent, or with --policy-dir given, they
// work on the folder through src/policy/policy_dir.h, which the agent loads at
// start and on SIGHUP.
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/remote.h"
#include "policy/from_profile.h"
#include "policy/policy_dir.h"
#include "policy/tracing_policy.h"
#include "store/profile_store.h"

namespace capscope::cli {

namespace {

struct PolicyOptions {
  std::vector<std::string> files;  // validate; add: one
  std::string dir = policy::kDefaultPolicyDir;
  std::string name;  // delete, from-profile: the profile
  bool replace = false;
  std::string action = "Sigkill";
  std::string db = store::kDefaultDbPath;
  std::string out;          // from-profile: -o
  std::string policy_name;  // from-profile: --name
  std::string rate_limit = "1m";
  bool dir_given = false;        // --policy-dir: the folder, even with an agent running
  remote::ServerAddress server;  // list, add, delete: a running agent's policies
};

std::string actions_of(const policy::CompiledPolicy& c) {
  std::set<std::string> names;
  for (const auto& s : c.selectors) names.insert(policy::action_name(s.action));
  return fmt::format("{}", fmt::join(names, ","));
}

void print_summary(const policy::TracingPolicy& p, const policy::CompiledPolicy& c) {
  std::cout << fmt::format("{}: {} from {}:{}, applies to {}\n", p.name, policy::kind_name(p.kind),
                           p.file, p.line, policy::describe_scope(c));
  for (size_t i = 0; i < c.selectors.size(); ++i)
    std::cout << fmt::format("  selector {}: {}\n", i + 1, policy::describe(c.selectors[i]));
}

// Every file is checked; the first error of each is printed. Exit 2 if any failed.
int run_validate(const std::vector<std::string>& files) {
  int bad = 0;
  for (const auto& file : files) {
    try {
      for (const auto& p : policy::load_policy_file(file)) print_summary(p, policy::compile(p));
    } catch (const policy::PolicyError& e) {
      std::cerr << "capscope: " << e.what() << "\n";
      ++bad;
    }
  }
  if (bad > 0 && files.size() > 1)
    std::cerr << fmt::format("capscope: {} of {} files are not valid policies\n", bad,
                             files.size());
  return bad > 0 ? kExitUsage : kExitOk;
}

int run_list(const std::string& dir) {
  policy::PolicyDirContents here = policy::load_policy_dir(dir);
  std::cout << fmt::format("{:<32} {:<23} {:<36} {:>9}  {:<14} {}\n", "NAME", "KIND", "SCOPE",
                           "SELECTORS", "ACTIONS", "FILE");
  for (const auto& l : here.policies)
    std::cout << fmt::format("{:<32} {:<23} {:<36} {:>9}  {:<14} {}\n", l.policy.name,
                             policy::kind_name(l.policy.kind), policy::describe_scope(l.compiled),
                             l.compiled.selectors.size(), actions_of(l.compiled), l.policy.file);
  for (const auto& e : here.errors) std::cerr << "capscope: " << e << "\n";
  if (here.errors.empty()) return kExitOk;
  return failure(fmt::format("{} file(s) or policies in {} could not be loaded (listed above)",
                             here.errors.size(), dir));
}

int run_add(const std::string& dir, const std::string& file, bool replace) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return usage_error(fmt::format("{}: {}", file, std::strerror(errno)));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return usage_error(fmt::format("{}: {}", file, std::strerror(errno)));
  try {
    auto r = policy::add_policy(dir, text, file, std::filesystem::path(file).filename().string(),
                                replace);
    for (const auto& n : r.added) std::cout << fmt::format("added policy {} ({})\n", n, r.path);
    for (const auto& n : r.replaced)
      std::cout << fmt::format("replaced policy {} ({})\n", n, r.path);
    for (const auto& f : r.removed_files) std::cout << fmt::format("removed {}\n", f);
    return kExitOk;
  } catch (const policy::PolicyError& e) {
    return usage_error(e.what());
  } catch (const policy::PolicyDirError& e) {
    return e.usage() ? usage_error(e.what()) : failure(e.what());
  }
}

int run_delete(const std::string& dir, const std::string& name) {
  try {
    std::string file = policy::delete_policy(dir, name);
    std::cout << fmt::format("deleted policy {} ({})\n", name, file);
    return kExitOk;
  } catch (const policy::PolicyDirError& e) {
    return e.usage() ? usage_error(e.what()) : failure(e.what());
  } catch (const policy::PolicyError& e) {
    return failure(e.what());
  }
}

int run_from_profile(const PolicyOptions& o) {
  std::string error;
  auto db = store::ProfileStore::open(o.db, &error);
  if (!db) return failure(error);
  auto p = db->load(o.name, &error);
  if (!p)
    return error.empty() ? usage_error(fmt::format("no profile named \"{}\" in {} (capscope "
                                                   "profile list shows the names)",
                                                   o.name, o.db))
                         : failure(error);
  policy::FromProfileOptions fo;
  fo.action = o.action == "Post" ? policy::Action::Post : policy::Action::Sigkill;
  fo.name = o.policy_name;
  fo.rate_limit = o.rate_limit == "none" ? "" : o.rate_limit;
  std::string text;
  try {
    text = policy::policy_from_profile(*p, fo);
  } catch (const std::invalid_argument& e) {
    return usage_error(e.what());
  }
  if (o.out.empty() || o.out == "-") {
    std::cout << text;
    return kExitOk;
  }
  std::ofstream out(o.out, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) return failure(fmt::format("-o {}: {}", o.out, std::strerror(errno)));
  std::cerr << fmt::format("capscope: wrote {} (load it with: capscope policy add {})\n", o.out,
                           o.out);
  return kExitOk;
}

void add_dir(CLI::App* c, PolicyOptions& o) {
  c->add_option("--policy-dir", o.dir,
                "The policy folder (given: work on it even when an agent runs)")
      ->capture_default_str()
      ->each([&o](const std::string&) { o.dir_given = true; });
}

// The running agent to send list/add/delete to, or nullopt: *rc 0 to work on
// the folder, else the exit code (--server-address given and no agent there).
std::optional<api::Client> agent_for_policies(const PolicyOptions& o, int* rc) {
  *rc = kExitOk;
  if (o.dir_given && !o.server.given) return std::nullopt;
  std::string error;
  auto agent = remote::connect_agent(o.server, &error);
  if (!agent && !error.empty()) *rc = failure(error);
  return agent;
}

int remote_list(api::Client& agent) {
  v1::ListPoliciesResponse resp;
  if (auto r = agent.list_policies(&resp); !r.ok()) return remote::call_failure(r);
  std::cout << fmt::format("{:<32} {:>9}  {:<14} {:>10}  {}\n", "NAME", "SELECTORS", "ACTIONS",
                           "HITS", "SOURCE");
  for (const auto& p : resp.policies()) {
    std::set<std::string> actions(p.actions().begin(), p.actions().end());
    std::cout << fmt::format("{:<32} {:>9}  {:<14} {:>10}  {}\n", p.name(), p.selectors(),
                             fmt::format("{}", fmt::join(actions, ",")), p.hits(), p.source());
  }
  return kExitOk;
}

int remote_add(api::Client& agent, const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return usage_error(fmt::format("{}: {}", file, std::strerror(errno)));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return usage_error(fmt::format("{}: {}", file, std::strerror(errno)));
  v1::AddPolicyResponse resp;
  if (auto r = agent.add_policy(text, &resp); !r.ok()) {
    r.message = fmt::format("{}: {}", file, r.message);
    return remote::call_failure(r);
  }
  std::cout << fmt::format(
      "added policy {} to the agent at {} (until it stops: `capscope policy add --policy-dir "
      "DIR` keeps it across restarts)\n",
      resp.policy().name(), agent.address());
  return kExitOk;
}

int remote_delete(api::Client& agent, const std::string& name) {
  if (auto r = agent.delete_policy(name); !r.ok()) return remote::call_failure(r);
  std::cout << fmt::format("deleted policy {} from the agent at {}\n", name, agent.address());
  return kExitOk;
}

// list, add, delete: through the agent when one answers, else on the folder.
int run_dir_command(const std::string& which, const PolicyOptions& o) {
  int rc = kExitOk;
  auto agent = agent_for_policies(o, &rc);
  if (rc != kExitOk) return rc;
  if (agent) {
    if (which == "add") return remote_add(*agent, o.files.at(0));
    if (which == "delete") return remote_delete(*agent, o.name);
    return remote_list(*agent);
  }
  if (which == "add") return run_add(o.dir, o.files.at(0), o.replace);
  if (which == "delete") return run_delete(o.dir, o.name);
  return run_list(o.dir);
}

}  // namespace

Runner add_policy_command(CLI::App& app, const GlobalOptions&) {
  auto o = std::make_shared<PolicyOptions>();
  auto which = std::make_shared<std::string>();
  CLI::App* p = app.add_subcommand(
      "policy", "Tetragon-form TracingPolicies on cap_capable: check, list, add, delete, make");
  p->require_subcommand(1);
  CLI::App* validate =
      p->add_subcommand("validate", "Check policy files; print what each policy selects");
  validate->add_option("files", o->files, "Policy files (YAML)")->required();
  CLI::App* list = p->add_subcommand("list", "The policies in the policy folder");
  add_dir(list, *o);
  CLI::App* add = p->add_subcommand("add", "Check a policy file and copy it into the folder");
  add->add_option("file", o->files, "Policy file (YAML)")->required()->expected(1);
  add->add_flag("--replace", o->replace, "Replace policies of the same names");
  add_dir(add, *o);
  CLI::App* del = p->add_subcommand("delete", "Remove a policy from the folder");
  del->add_option("name", o->name, "Policy name (metadata.name)")->required();
  add_dir(del, *o);
  CLI::App* from = p->add_subcommand(
      "from-profile", "A policy that kills (or reports) any capability outside a profile's needs");
  from->add_option("name", o->name, "Profile name")->required();
  from->add_option("--action", o->action, "Sigkill (enforce) or Post (report)")
      ->check(CLI::IsMember({"Sigkill", "Post"}))
      ->capture_default_str();
  from->add_option("--db", o->db, "Profile database")->capture_default_str();
  from->add_option("-o,--out", o->out, "Write the policy here instead of stdout");
  from->add_option("--name", o->policy_name,
                   "The policy's metadata.name (default: capscope-<profile name>)");
  from->add_option("--rate-limit", o->rate_limit,
                   "With --action Post: at most one event per thread and this window "
                   "(Tetragon's rateLimit: 30s, 1m, 2h; none: every check)")
      ->capture_default_str();
  for (CLI::App* c : {list, add, del}) remote::add_server_address_option(c, o->server);
  for (auto [c, name] : {std::pair{validate, "validate"},
                         {list, "list"},
                         {add, "add"},
                         {del, "delete"},
                         {from, "from-profile"}})
    c->callback([which, n = std::string(name)] { *which = n; });
  return [o, which] {
    if (*which == "validate") return run_validate(o->files);
    if (*which == "from-profile") return run_from_profile(*o);
    return run_dir_command(*which, *o);
  };
}

}  // namespace capscope::cli
