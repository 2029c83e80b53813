#include "advice/workload_patch.h"

#include <fmt/format.h>

#include <algorithm>

#include "tables/capabilities.h"
#include "util/strings.h"

namespace capscope::advice {

namespace {

// A kind derived from a pod's name alone may be several ("DaemonSet|Job|ReplicaSet").
std::vector<std::string> kinds_of(const std::string& kind) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t bar = kind.find('|'); bar != std::string::npos; bar = kind.find('|', start)) {
    out.push_back(kind.substr(start, bar - start));
    start = bar + 1;
  }
  out.push_back(kind.substr(start));
  return out;
}

std::string evidence_comments(const ContainerAdvice& c) {
  const auto& a = c.advice;
  const std::string& name = c.profile->container.container;
  std::string out = fmt::format("# container {} (profile \"{}\": {} run{}, {} instance{})\n", name,
                                c.profile->name, c.profile->runs, c.profile->runs == 1 ? "" : "s",
                                c.profile->container.instances.size(),
                                c.profile->container.instances.size() == 1 ? "" : "s");
  for (const auto& add : a.add)
    out += fmt::format("#   {}: {}\n", tables::cap_short_name(add.cap), add.evidence);
  if (a.add.empty()) out += "#   no capability needed\n";
  for (const auto& w : a.warnings) out += "#   warning: " + w + "\n";
  return out;
}

// The container's entry of the list, indented to sit under `containers:` at `depth`.
std::string container_entry(const ContainerAdvice& c, size_t depth) {
  std::string pad(depth * 2, ' ');
  return fmt::format("{}- name: {}\n", pad, c.profile->container.container) +
         security_context_yaml(c.advice, pad + "  ");
}

}  // namespace

std::vector<std::string> containers_path(const std::string& kind) {
  if (kind == "Pod") return {"spec", "containers"};
  if (kind == "CronJob") return {"spec", "jobTemplate", "spec", "template", "spec", "containers"};
  return {"spec", "template", "spec", "containers"};
}

std::string api_version_of(const std::string& kind) {
  if (kind == "Pod") return "v1";
  if (kind == "Job" || kind == "CronJob") return "batch/v1";
  return "apps/v1";
}

std::string render_workload_patch(const std::vector<ContainerAdvice>& containers) {
  if (containers.empty()) return "";
  const auto& id = containers.front().profile->container;
  auto kinds = kinds_of(id.workload_kind);
  const std::string& kind = kinds.front();
  std::string ns_flag = id.namespace_name.empty() ? "" : " -n " + id.namespace_name;
  std::string file = id.workload + "-capabilities.yaml";
  std::string out = fmt::format("# capscope advice for {} {}{}: {} container{}\n", id.workload_kind,
                                id.namespace_name.empty() ? "" : id.namespace_name + "/",
                                id.workload, containers.size(), containers.size() == 1 ? "" : "s");
  if (kinds.size() > 1)
    out += fmt::format(
        "# the kind was read from the pod's name and may be any of {}: correct `kind` (and "
        "the path to the containers) before applying\n",
        fmt::join(kinds, ", "));
  else if (id.workload_from == "name")
    out += "# the workload was read from the pod's name (no owner or label said it)\n";
  out += fmt::format("# apply: kubectl patch {} {}{} --patch-file {}\n", util::ascii_lower(kind),
                     id.workload, ns_flag, file);
  out += fmt::format("#    or: list {} under `patches:` in a kustomize overlay\n", file);
  if (kind == "Pod")
    out += "# a running Pod's capabilities cannot change: patch its manifest and recreate it\n";
  for (const auto& c : containers) out += evidence_comments(c);
  out += fmt::format("apiVersion: {}\nkind: {}\nmetadata:\n  name: {}\n", api_version_of(kind),
                     kind, id.workload);
  if (!id.namespace_name.empty()) out += fmt::format("  namespace: {}\n", id.namespace_name);
  auto path = containers_path(kind);
  for (size_t i = 0; i < path.size(); ++i)
    out += fmt::format("{}{}:\n", std::string(i * 2, ' '), path[i]);
  for (const auto& c : containers) out += container_entry(c, path.size() - 1);
  return out;
}

}  // namespace capscope::advice
