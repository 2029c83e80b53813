#include "cli/advise_current.h"

#include <fmt/format.h>

#include <iostream>

#include "advice/advice.h"
#include "advice/compare.h"
#include "advice/current_spec.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "enrich/proc_reader.h"

namespace capscope::cli {

namespace {

std::optional<advice::CurrentSpec> load_spec(const CurrentOptions& o,
                                             const advice::SpecOptions& spec_opts,
                                             std::string* error) {
  if (o.pid) return advice::current_of_process(ProcReader(), *o.pid, error);
  return advice::load_current_spec(o.file, spec_opts, error);
}

// --container: the matching containers, or an error naming the ones there are.
std::optional<std::vector<advice::CurrentContainer>> pick(const advice::CurrentSpec& spec,
                                                          const std::string& selector,
                                                          std::string* error) {
  if (selector.empty()) return spec.containers;
  std::vector<advice::CurrentContainer> picked;
  std::vector<std::string> names;
  for (const auto& c : spec.containers) {
    if (advice::matches(c, selector)) picked.push_back(c);
    names.push_back(c.workload.empty() ? c.name : c.workload + "/" + c.name);
  }
  if (picked.empty())
    *error = fmt::format("--container {}: not in {} (it has {})", selector, spec.file,
                         fmt::join(names, ", "));
  return picked.empty() ? std::nullopt : std::optional(picked);
}

}  // namespace

void add_current_options(CLI::App* advise, CurrentOptions& o) {
  auto* file = advise->add_option(
      "--current", o.file,
      "Compare with this spec: a Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet, Job or "
      "CronJob YAML, a compose file, or docker inspect JSON");
  auto* pid = advise->add_option("--current-pid", o.pid,
                                 "Compare with a running process's capability sets");
  file->excludes(pid);
  advise->add_option("--runtime", o.runtime,
                     "Whose default set the spec starts from: containerd (Kubernetes' "
                     "assumption), cri-o, docker (compose and docker inspect), podman");
  advise->add_option("--container", o.container,
                     "With --current: compare only this container (NAME or KIND/WORKLOAD/NAME)");
}

int run_advise_current(const CurrentOptions& o, const profile::Profile& p,
                       const std::string& format) {
  advice::SpecOptions spec_opts;
  if (!o.runtime.empty()) {
    spec_opts.runtime = advice::runtime_from_name(o.runtime);
    if (!spec_opts.runtime)
      return usage_error(fmt::format(
          "--runtime {}: not a runtime capscope knows (containerd, cri-o, docker, podman)",
          o.runtime));
  }
  std::string error;
  auto spec = load_spec(o, spec_opts, &error);
  if (!spec) return usage_error(error);
  auto containers = pick(*spec, o.container, &error);
  if (!containers) return usage_error(error);
  advice::Advice a = advice::advise(p);
  std::vector<advice::Comparison> all;
  for (const auto& c : *containers) all.push_back(advice::compare(a, p, c));
  std::cout << advice::render_comparisons(all, *spec, a, p, format == "json");
  return kExitOk;
}

}  // namespace capscope::cli
