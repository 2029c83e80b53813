#include "cli/remote.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "profile/profile_json.h"
#include "tables/capabilities.h"

namespace capscope::cli::remote {

void add_server_address_option(CLI::App* command, ServerAddress& s) {
  command
      ->add_option("--server-address", s.address,
                   "The agent's API: unix:///PATH or HOST:PORT. Given, the agent must answer; "
                   "by default it is used when it runs")
      ->envname("CAPSCOPE_SERVER_ADDRESS")
      ->capture_default_str()
      ->each([&s](const std::string&) { s.given = true; });
}

std::string no_agent_message(const std::string& address) {
  return fmt::format(
      "no capscope agent at {}: is `capscope agent` running? (or drop --server-address to read "
      "the store directly)",
      address);
}

std::optional<api::Client> connect_agent(const std::string& address, bool explicit_address,
                                         std::string* error) {
  std::string why;
  api::ConnectProblem problem{};
  auto client = api::Client::connect(address, kConnectDeadline, &why, &problem);
  if (client) return client;
  if (explicit_address) {
    *error = problem == api::ConnectProblem::NoAgent ? no_agent_message(address) : why;
    return std::nullopt;
  }
  // Something is at the default address but cannot be used: say so, since the
  // store alone may lag behind what the agent has not flushed yet.
  if (problem != api::ConnectProblem::NoAgent) spdlog::warn("{}; reading the store directly", why);
  return std::nullopt;
}

std::optional<api::Client> connect_agent(const ServerAddress& s, std::string* error) {
  return connect_agent(s.address, s.given, error);
}

int call_failure(const api::CallResult& r) {
  using Kind = api::CallResult::Kind;
  bool user_input = r.kind == Kind::InvalidArgument || r.kind == Kind::NotFound;
  return user_input ? usage_error(r.message) : failure(r.message);
}

std::optional<api::Client> agent_for_profiles(const ServerAddress& s, const std::string& db,
                                              int* rc) {
  *rc = kExitOk;
  // --db names a store of its own: read that one, unless an agent is asked for too.
  if (db != store::kDefaultDbPath && !s.given) return std::nullopt;
  std::string error;
  auto agent = connect_agent(s, &error);
  if (!agent && !error.empty()) *rc = failure(error);
  return agent;
}

namespace {

std::optional<profile::Profile> decode(const api::Client& agent, const v1::Profile& reply,
                                       int* rc) {
  auto doc = nlohmann::json::parse(reply.export_json(), nullptr, false);
  std::string error = "not JSON";
  auto p = doc.is_discarded() ? std::nullopt : profile::from_export_json(doc, &error);
  if (!p)
    *rc =
        failure(fmt::format("the agent at {} sent profile {} in a form this capscope cannot "
                            "read ({}): use the capscope of the agent's version",
                            agent.address(), reply.summary().name(), error));
  return p;
}

}  // namespace

std::optional<profile::Profile> fetch_profile(api::Client& agent, const std::string& name,
                                              int* rc) {
  v1::Profile reply;
  auto r = agent.get_profile(name, &reply);
  if (!r.ok()) {
    *rc = call_failure(r);
    return std::nullopt;
  }
  return decode(agent, reply, rc);
}

namespace {

std::vector<int> cap_numbers(const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::vector<int> caps;
  for (const auto& name : names)
    if (auto cap = tables::cap_from_name(name)) caps.push_back(*cap);
  return caps;
}

}  // namespace

std::optional<std::vector<store::ProfileSummary>> fetch_summaries(api::Client& agent, int* rc) {
  v1::ListProfilesResponse reply;
  auto r = agent.list_profiles(&reply);
  if (!r.ok()) {
    *rc = call_failure(r);
    return std::nullopt;
  }
  std::vector<store::ProfileSummary> all;
  for (const auto& s : reply.profiles())
    all.push_back({.name = s.name(),
                   .subject = s.subject(),
                   .runs = s.runs(),
                   .recorded_ns = s.recorded_nanos(),
                   .last_run_ns = s.last_run_unix_nano(),
                   .needed = cap_numbers(s.needed())});
  return all;
}

std::optional<std::vector<profile::Profile>> fetch_profiles(api::Client& agent, int* rc) {
  auto summaries = fetch_summaries(agent, rc);
  if (!summaries) return std::nullopt;
  std::vector<profile::Profile> all;
  for (const auto& s : *summaries) {
    v1::Profile reply;
    auto r = agent.get_profile(s.name, &reply);
    if (r.kind == api::CallResult::Kind::NotFound) continue;  // deleted since the listing
    if (!r.ok()) {
      *rc = call_failure(r);
      return std::nullopt;
    }
    auto p = decode(agent, reply, rc);
    if (!p) return std::nullopt;
    all.push_back(std::move(*p));
  }
  return all;
}

}  // namespace capscope::cli::remote
