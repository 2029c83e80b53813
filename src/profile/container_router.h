// One profile per container for record --pod, --selector, --namespace and
// --all-containers: a check's cgroup id names its container (the cgroup's path,
// from the kernel's cgroup records or a walk of the hierarchy), the runtime names
// the container's identity, and the identity names the profile, so that the
// replicas of a workload and the restarts of a container merge into one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "enrich/cgroup_fs.h"
#include "enrich/cgroup_path.h"
#include "enrich/runtime/runtime_resolver.h"
#include "filter/container_filter.h"
#include "profile/recorder.h"

namespace capscope::profile {

// What a runtime's answer says about the container's lasting identity.
ContainerIdentity identity_of(const ContainerInfo& info);
// A container the runtime never named: its runtime and id only.
ContainerIdentity identity_of(const ContainerRef& ref);
// "NAMESPACE/WORKLOAD/CONTAINER" under Kubernetes, "WORKLOAD/CONTAINER" in a pod
// without a namespace (podman), "NAME@IMAGE" outside a pod, "ID@RUNTIME" unnamed.
std::string profile_name_of(const ContainerIdentity& c);
// One line: "container web of Deployment shop/web (from labels), image nginx:1.27".
std::string subject_of(const ContainerIdentity& c);

class ContainerRouter : public Router {
 public:
  // `resolver` must outlive the router. An empty selection records every container.
  ContainerRouter(RuntimeResolver& resolver, filter::ContainerFilter selection,
                  CgroupFs cgroups = CgroupFs(),
                  std::chrono::milliseconds final_wait = std::chrono::seconds(3));

  // The cgroups that exist now (call before the capture starts).
  void seed();
  // A cgroup created during the recording.
  void on_cgroup(uint64_t id, const std::string& path);

  Route route(uint64_t cgroup_id, bool final) override;

  // Told each container cgroup decided against, so the kernel drops its checks
  // from then on (BpfCapture::exclude_cgroup); empty: nobody is told.
  void exclude_through(std::function<void(uint64_t)> exclude) { exclude_ = std::move(exclude); }

  // The agent's --host-services unit: a host process's checks go to the profile of
  // its systemd service ("host:nginx.service"), named from its cgroup's path.
  void route_host_units(bool on) { host_units_ = on; }
  // The agent's --host-services binary: a host process's checks go to the profile
  // of its binary ("host:/usr/sbin/nginx").
  void route_host_binaries(bool on) { host_binaries_ = on; }

  // Cgroups remembered at most (known and decided, each): past it the router
  // forgets them all and walks the hierarchy again, which drops the dead ones.
  static constexpr size_t kMaxCgroups = 65536;
  [[nodiscard]] size_t cgroups_known() const { return cgroups_.size(); }

  // The containers recorded (full ids), for the report.
  [[nodiscard]] const std::set<std::string>& recorded() const { return recorded_; }

 private:
  const CgroupMatch* match_of(uint64_t cgroup_id);
  Route decide(const CgroupMatch& m, bool final);
  bool walked_since_first_asked(uint64_t cgroup_id);

  RuntimeResolver& resolver_;
  filter::ContainerFilter selection_;
  CgroupFs fs_;
  std::chrono::milliseconds final_wait_;
  std::unordered_map<uint64_t, CgroupMatch> cgroups_;
  std::unordered_map<uint64_t, Route> settled_;  // Keep and Drop are for good
  std::chrono::steady_clock::time_point next_walk_{};
  std::chrono::steady_clock::time_point last_walk_{};
  // Cgroups asked about but not found yet, and when first asked.
  std::unordered_map<uint64_t, std::chrono::steady_clock::time_point> unseen_;
  std::optional<std::chrono::steady_clock::time_point> final_deadline_;
  std::set<std::string> recorded_;
  std::function<void(uint64_t)> exclude_;
  bool host_units_ = false;
  bool host_binaries_ = false;
  bool walking_ = false;
  std::unordered_map<uint64_t, std::string> units_;  // host cgroup -> its service unit
};

// The systemd service a host cgroup belongs to: the deepest "*.service" in its
// path ("/system.slice/nginx.service" -> "nginx.service"); empty if none.
std::string service_unit_of(std::string_view cgroup_path);

}  // namespace capscope::profile
