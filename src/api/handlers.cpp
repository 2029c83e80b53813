#include "api/handlers.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "advice/advice.h"
#include "advice/compare.h"
#include "advice/current_spec.h"
#include "enrich/runtime/oci_state.h"
#include "profile/profile_json.h"
#include "tables/capabilities.h"
#include "util/yaml_tree.h"

namespace capscope::api {

namespace {

using grpc::Status;
using grpc::StatusCode;

Status invalid(const std::string& message) { return {StatusCode::INVALID_ARGUMENT, message}; }

// The backend could not do it (store locked, kernel map full): worth retrying.
Status unavailable(const std::string& message) { return {StatusCode::UNAVAILABLE, message}; }

void add_names(const std::vector<int>& caps, google::protobuf::RepeatedPtrField<std::string>* out) {
  for (int cap : caps) out->Add(tables::cap_name(cap));
}

const char* pss_name(advice::PssLevel level) {
  switch (level) {
    case advice::PssLevel::Restricted:
      return "restricted";
    case advice::PssLevel::Baseline:
      return "baseline";
    case advice::PssLevel::Privileged:
      break;
  }
  return "privileged";
}

void fill_policy(const PolicyInfo& p, v1::PolicyInfo* out) {
  out->set_name(p.name);
  out->set_source(p.source);
  out->set_selectors(p.selectors);
  for (const auto& a : p.actions) out->add_actions(a);
  out->set_hits(p.hits);
  out->set_yaml(p.yaml);
}

// The profile, or the status to answer with.
std::optional<profile::Profile> load_profile(Backend& b, const std::string& name, Status* status) {
  if (name.empty()) {
    *status = invalid("name: give a profile name (ListProfiles has them)");
    return std::nullopt;
  }
  std::string error;
  auto p = b.get_profile(name, &error);
  if (p) return p;
  *status = error.empty()
                ? Status(StatusCode::NOT_FOUND,
                         fmt::format("no profile named \"{}\" (capscope profile list shows the "
                                     "names)",
                                     name))
                : unavailable(error);
  return std::nullopt;
}

// Debian 12's yaml-cpp loops forever, allocating, in YAML::LoadAll on some
// malformed texts (see util/yaml_tree.h), and parse_current_spec reads YAML
// with it. A request must not hang the agent: a spec that is not JSON is read
// first by load_yaml_documents, which notices a parser that does not move on.
bool yaml_terminates(const std::string& text, const std::string& file, Status* status) {
  constexpr size_t kMaxSpecDocuments = 1000;
  if (nlohmann::json::accept(text)) return true;
  try {
    util::load_yaml_documents(text, kMaxSpecDocuments);
    return true;
  } catch (const util::YamlError& e) {
    *status = invalid(fmt::format("{}:{}: {}", file, e.line(), e.what()));
    return false;
  }
}

// advise --current: the spec's containers the request picks, or the status.
std::optional<advice::CurrentSpec> load_current(const v1::AdviseRequest& req, Status* status) {
  advice::SpecOptions opts;
  if (!req.runtime().empty()) {
    opts.runtime = advice::runtime_from_name(req.runtime());
    if (!opts.runtime) {
      *status = invalid(fmt::format(
          "runtime (--runtime): '{}' is not a runtime capscope knows (containerd, cri-o, docker, "
          "podman)",
          req.runtime()));
      return std::nullopt;
    }
  }
  std::string file = req.current_spec_name().empty() ? "current_spec" : req.current_spec_name();
  if (!yaml_terminates(req.current_spec(), file, status)) return std::nullopt;
  std::string error;
  auto spec = advice::parse_current_spec(req.current_spec(), file, opts, &error);
  if (!spec) {
    *status = invalid(error);
    return std::nullopt;
  }
  if (req.container().empty()) return spec;
  std::vector<std::string> names;
  std::erase_if(spec->containers, [&](const advice::CurrentContainer& c) {
    names.push_back(c.workload.empty() ? c.name : c.workload + "/" + c.name);
    return !advice::matches(c, req.container());
  });
  if (spec->containers.empty()) {
    *status = invalid(fmt::format("container (--container): {} is not in {} (it has {})",
                                  req.container(), file, fmt::join(names, ", ")));
    return std::nullopt;
  }
  return spec;
}

void fill_advice_lists(const advice::Advice& a, v1::AdviseResponse* resp) {
  for (const auto& c : a.add) resp->add_add(tables::cap_name(c.cap));
  resp->add_drop("ALL");
  add_names(a.probes, resp->mutable_probes());
  resp->set_pss_level(pss_name(a.pss));
  resp->set_allow_privilege_escalation(!a.escalation.can_forbid());
}

// With a current spec: what to add and drop over every compared container.
void fill_comparison_lists(const advice::Advice& a, const std::vector<advice::Comparison>& all,
                           v1::AdviseResponse* resp) {
  std::set<int> add, drop;
  for (const auto& c : all)
    for (const auto& line : c.lines) {
      if (line.action == advice::Action::Add) add.insert(line.cap);
      if (line.action == advice::Action::Drop) drop.insert(line.cap);
    }
  add_names({add.begin(), add.end()}, resp->mutable_add());
  add_names({drop.begin(), drop.end()}, resp->mutable_drop());
  add_names(a.probes, resp->mutable_probes());
  resp->set_pss_level(pss_name(a.pss));
  resp->set_allow_privilege_escalation(!a.escalation.can_forbid());
}

}  // namespace

void fill_summary(const profile::Profile& p, v1::ProfileSummary* out) {
  out->set_name(p.name);
  out->set_subject(p.subject);
  out->set_runs(p.runs);
  out->set_recorded_nanos(p.recorded_ns);
  out->set_last_run_unix_nano(p.last_run_ns);
  add_names(p.needed(), out->mutable_needed());
  add_names(p.denied_needs(), out->mutable_denied());
  add_names(p.probes_only(), out->mutable_probes_only());
  const auto& c = p.container;
  out->set_runtime(c.runtime);
  out->set_namespace_(c.namespace_name);
  out->set_workload_kind(c.workload_kind);
  out->set_workload(c.workload);
  out->set_pod(c.pod);
  out->set_container(c.container);
  out->set_image(c.image);
}

Status list_profiles(Backend& b, const v1::ListProfilesRequest&, v1::ListProfilesResponse* resp) {
  std::string error;
  auto all = b.list_profiles(&error);
  if (!all) return unavailable(error);
  std::sort(all->begin(), all->end(),
            [](const profile::Profile& x, const profile::Profile& y) { return x.name < y.name; });
  for (const auto& p : *all) fill_summary(p, resp->add_profiles());
  return Status::OK;
}

Status get_profile(Backend& b, const v1::GetProfileRequest& req, v1::Profile* resp) {
  Status status;
  auto p = load_profile(b, req.name(), &status);
  if (!p) return status;
  fill_summary(*p, resp->mutable_summary());
  resp->set_export_json(profile::to_export_json(*p).dump());
  return Status::OK;
}

Status advise(Backend& b, const v1::AdviseRequest& req, v1::AdviseResponse* resp) {
  const std::string format = req.format().empty() ? "k8s" : req.format();
  advice::Format f{};
  if (!advice::parse_format(format, &f))
    return invalid(fmt::format(
        "format (-f): '{}' is not an advice format (k8s, docker, compose, systemd, setcap, json, "
        "text)",
        format));
  if (req.current_spec().empty() && (!req.runtime().empty() || !req.container().empty()))
    return invalid(
        "runtime and container (--runtime, --container) go with current_spec: give the "
        "spec to compare with");
  Status status;
  auto p = load_profile(b, req.name(), &status);
  if (!p) return status;
  advice::Advice a = advice::advise(*p);
  if (req.current_spec().empty()) {
    resp->set_text(advice::render(a, *p, f));
    fill_advice_lists(a, resp);
    return Status::OK;
  }
  auto spec = load_current(req, &status);
  if (!spec) return status;
  std::vector<advice::Comparison> all;
  for (const auto& c : spec->containers) all.push_back(advice::compare(a, *p, c));
  resp->set_text(advice::render_comparisons(all, *spec, a, *p, format == "json"));
  fill_comparison_lists(a, all, resp);
  return Status::OK;
}

Status add_policy(Backend& b, const v1::AddPolicyRequest& req, v1::AddPolicyResponse* resp) {
  if (req.yaml().empty()) return invalid("yaml: give the TracingPolicy document to load");
  std::string error;
  auto info = b.add_policy(req.yaml(), &error);
  if (!info) return invalid(error.empty() ? "the policy did not load" : error);
  fill_policy(*info, resp->mutable_policy());
  return Status::OK;
}

Status delete_policy(Backend& b, const v1::DeletePolicyRequest& req, v1::DeletePolicyResponse*) {
  if (req.name().empty()) return invalid("name: give the policy's metadata.name");
  std::string error;
  if (b.delete_policy(req.name(), &error)) return Status::OK;
  if (!error.empty()) return unavailable(error);
  return {StatusCode::NOT_FOUND, fmt::format("no policy named \"{}\" is loaded (capscope policy "
                                             "list shows them)",
                                             req.name())};
}

Status announce_container(Backend& b, const v1::AnnounceContainerRequest& req,
                          std::chrono::milliseconds wait, v1::AnnounceContainerResponse* resp) {
  ContainerAnnouncement a{{req.id(), "", req.pid(), req.bundle(),
                           Labels(req.annotations().begin(), req.annotations().end())},
                          wait};
  std::string error;
  if (!check_oci_state(a.state, &error)) return invalid(error);
  bool bad = false;
  auto result = b.announce_container(a, &bad, &error);
  if (!result) {
    if (bad) return {StatusCode::FAILED_PRECONDITION, error};
    return unavailable(error);
  }
  resp->set_container(result->container);
  resp->set_named(result->named);
  resp->set_cgroup_id(result->cgroup_id);
  resp->set_cgroup_path(result->cgroup_path);
  for (const auto& p : result->policies) resp->add_policies(p);
  return Status::OK;
}

Status list_policies(Backend& b, const v1::ListPoliciesRequest&, v1::ListPoliciesResponse* resp) {
  auto all = b.list_policies();
  std::sort(all.begin(), all.end(),
            [](const PolicyInfo& x, const PolicyInfo& y) { return x.name < y.name; });
  for (const auto& p : all) fill_policy(p, resp->add_policies());
  return Status::OK;
}

Status get_health(Backend& b, const v1::GetHealthRequest&, v1::GetHealthResponse* resp) {
  Health h = b.health();
  resp->set_status(h.status);
  for (const auto& p : h.problems) resp->add_problems(p);
  resp->set_version(CAPSCOPE_VERSION);
  resp->set_backend(h.backend);
  resp->set_node_name(h.node_name);
  resp->set_uptime_nanos(h.uptime_ns);
  resp->set_checks(h.checks);
  resp->set_events(h.events);
  resp->set_lost(h.lost);
  resp->set_processes(h.processes);
  resp->set_containers(h.containers);
  resp->set_profiles(h.profiles);
  resp->set_policies(h.policies);
  return Status::OK;
}

Status get_version(const v1::GetVersionRequest&, v1::GetVersionResponse* resp) {
  resp->set_version(CAPSCOPE_VERSION);
  resp->set_api_version(kApiVersion);
  return Status::OK;
}

}  // namespace capscope::api
