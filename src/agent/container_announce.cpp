// The OCI hook's announcement (capscope oci-hook, api::Backend::announce_container):
// a container whose cgroup exists and whose first process waits for the hook to
// return. The agent names it and writes its scoped policies into the kernel before it
// answers, so they hold from the container's first check, whenever the runtime's
// create event or inspect answer would have come (docs/RUNTIMES.md, "OCI hook").
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/policy_manager.h"
#include "enrich/cgroup_fs.h"
#include "enrich/cgroup_path.h"
#include "enrich/proc_reader.h"
#include "enrich/runtime/oci_state.h"

namespace capscope::agent {

namespace {

struct AnnouncedCgroup {
  std::string path;  // in the unified hierarchy
  uint64_t id = 0;
  ContainerRef ref;
};

// The cgroup the announced pid runs in, which must be the announced container's own.
std::optional<AnnouncedCgroup> cgroup_of(const OciState& s, std::string* error) {
  auto path = ProcReader().read_unified_cgroup_path(s.pid);
  if (!path) {
    *error = fmt::format(
        "pid {} of container {} has no cgroup v2 path (gone, or no unified hierarchy): run "
        "the hook at createRuntime, while the container's process exists",
        s.pid, s.id);
    return std::nullopt;
  }
  CgroupMatch m = classify_cgroup(*path);
  if (m.kind != CgroupKind::Container || m.ref.id != s.id) {
    *error = fmt::format(
        "pid {} is in cgroup {}, not in container {}'s: give the hook the container's own "
        "state (its createRuntime hook), and let the runtime make a cgroup per container",
        s.pid, *path, s.id);
    return std::nullopt;
  }
  auto id = CgroupFs().id_of(*path);
  if (!id) {
    *error =
        fmt::format("container {}'s cgroup {} is not in the cgroup v2 hierarchy here", s.id, *path);
    return std::nullopt;
  }
  return AnnouncedCgroup{*path, *id, m.ref};
}

}  // namespace

std::optional<api::AnnounceResult> Agent::announce_container(const api::ContainerAnnouncement& a,
                                                             bool* invalid, std::string* error) {
  auto cg = cgroup_of(a.state, error);
  if (!cg) {
    *invalid = true;
    return std::nullopt;
  }
  // The runtime's answer (its create event, or its inspect), waited for only when a
  // scoped policy may take the container in: the container starts once this returns.
  const bool scoped = policies_->any_scoped();
  ContainerInfoPtr info = resolver_->lookup(a.state.id, cg->ref.runtime);
  if (!info && scoped && a.wait.count() > 0)
    info = resolver_->resolve(a.state.id, cg->ref.runtime, a.wait);
  bool from_runtime = info != nullptr;
  if (!info)
    if (auto partial = identity_from_annotations(a.state.id, a.state.annotations))
      info = std::make_shared<const ContainerInfo>(std::move(*partial));

  api::AnnounceResult r{info ? info->name : a.state.id, info != nullptr, cg->id, cg->path, {}};
  bool ran = on_capture_thread(
      [&] {
        router_->on_cgroup(cg->id, cg->path);
        r.policies = policies_->announce(cg->id, cg->ref, info, from_runtime, *policy_target_);
      },
      error);
  if (!ran) return std::nullopt;
  (r.named ? metrics_.containers_announced_named : metrics_.containers_announced_unnamed).inc();
  if (!r.named && scoped)
    spdlog::warn(
        "container {} announced by its OCI hook, but no runtime named it within {} ms: "
        "container-scoped policies reach it only once one does",
        a.state.id, a.wait.count());
  else if (!r.policies.empty())
    // Tests and operators wait for this line: the container has not started yet.
    spdlog::info(
        "policy {} holds from the first process of container {}, announced by its OCI "
        "hook (cgroup {})",
        fmt::join(r.policies, ", "), r.container, cg->id);
  return r;
}

}  // namespace capscope::agent
