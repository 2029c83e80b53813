#include "profile/container_router.h"

#include <fmt/format.h>

#include <utility>

namespace capscope::profile {

namespace {

// "nginx@sha256:..." and "nginx:1.27@sha256:...": the digest pins one build; the
// name (and tag) is what a profile is about.
std::string without_digest(const std::string& image) {
  auto at = image.find("@sha256:");
  return at == std::string::npos ? image : image.substr(0, at);
}

Route waiting() {
  Route r;
  r.kind = Route::Kind::Wait;
  return r;
}

Route keep(const ContainerIdentity& c) {
  return {Route::Kind::Keep, profile_name_of(c), subject_of(c), c};
}

}  // namespace

ContainerIdentity identity_of(const ContainerInfo& info) {
  ContainerIdentity c;
  c.runtime = info.runtime;
  c.namespace_name = info.pod_namespace;
  c.pod = info.pod_name;
  if (!info.pod_name.empty()) {
    c.workload = info.workload.empty() ? info.pod_name : info.workload;
    c.workload_kind = info.workload_kind.empty() ? "Pod" : info.workload_kind;
    c.workload_from = info.workload_from.empty() ? "pod" : info.workload_from;
  }
  c.container = info.name.empty() ? info.id.substr(0, 12) : info.name;
  c.image = without_digest(info.image);
  c.instances.insert(info.id.substr(0, 12));
  return c;
}

ContainerIdentity identity_of(const ContainerRef& ref) {
  ContainerIdentity c;
  c.runtime = ref.runtime;
  c.container = ref.id.substr(0, 12);
  c.instances.insert(c.container);
  return c;
}

std::string profile_name_of(const ContainerIdentity& c) {
  if (!c.namespace_name.empty())
    return fmt::format("{}/{}/{}", c.namespace_name, c.workload, c.container);
  if (!c.workload.empty()) return fmt::format("{}/{}", c.workload, c.container);
  if (!c.image.empty()) return fmt::format("{}@{}", c.container, c.image);
  return fmt::format("{}@{}", c.container, c.runtime.empty() ? "container" : c.runtime);
}

std::string subject_of(const ContainerIdentity& c) {
  std::string s = fmt::format("container {}", c.container);
  if (!c.workload.empty()) {
    std::string where = c.namespace_name.empty() ? c.workload : c.namespace_name + "/" + c.workload;
    s += fmt::format(" of {} {} ({})", c.workload_kind, where,
                     c.workload_from == "owner" ? "its owner" : "from " + c.workload_from);
  }
  if (!c.image.empty()) s += ", image " + c.image;
  if (c.image.empty() && c.workload.empty()) s += " (not named by its runtime)";
  return s;
}

ContainerRouter::ContainerRouter(RuntimeResolver& resolver, filter::ContainerFilter selection,
                                 CgroupFs cgroups, std::chrono::milliseconds final_wait)
    : resolver_(resolver),
      selection_(std::move(selection)),
      fs_(std::move(cgroups)),
      final_wait_(final_wait) {}

void ContainerRouter::seed() {
  walking_ = true;
  fs_.walk([this](uint64_t id, const std::string& path) { on_cgroup(id, path); }, 1'000'000);
  walking_ = false;
  last_walk_ = std::chrono::steady_clock::now();
  next_walk_ = last_walk_ + std::chrono::seconds(1);
}

// Containers come and go for as long as the agent runs; no record says a cgroup
// is gone, so the maps are bounded by forgetting everything and walking again.
void ContainerRouter::on_cgroup(uint64_t id, const std::string& path) {
  if (!walking_ && cgroups_.size() >= kMaxCgroups && !cgroups_.contains(id)) {
    cgroups_.clear();
    units_.clear();
    settled_.clear();
    unseen_.clear();
    seed();
  }
  CgroupMatch m = classify_cgroup(path);
  if (host_units_ && m.kind == CgroupKind::None) {
    if (std::string unit = service_unit_of(path); !unit.empty()) units_.insert_or_assign(id, unit);
  }
  cgroups_.insert_or_assign(id, std::move(m));
}

std::string service_unit_of(std::string_view path) {
  std::string unit;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.size() > 8 && part.ends_with(".service")) unit = part;
    start = end + 1;
  }
  return unit;
}

// A cgroup not seen yet (its record lost, or made before the capture between the
// walk and the attach): walk again, at most once a second.
const CgroupMatch* ContainerRouter::match_of(uint64_t cgroup_id) {
  auto it = cgroups_.find(cgroup_id);
  if (it == cgroups_.end() && std::chrono::steady_clock::now() >= next_walk_) {
    seed();
    it = cgroups_.find(cgroup_id);
  }
  return it == cgroups_.end() ? nullptr : &it->second;
}

Route ContainerRouter::route(uint64_t cgroup_id, bool final) {
  if (auto s = settled_.find(cgroup_id); s != settled_.end()) return s->second;
  if (settled_.size() >= kMaxCgroups) settled_.clear();  // decided again on demand
  const CgroupMatch* m = match_of(cgroup_id);
  if (m == nullptr && !final && !walked_since_first_asked(cgroup_id)) return waiting();
  unseen_.erase(cgroup_id);
  // Not a container (a host process, a runtime's monitor), or a cgroup gone unseen.
  if (m == nullptr || m->kind != CgroupKind::Container || m->ref.empty()) {
    if (host_binaries_ && m != nullptr && m->kind == CgroupKind::None) {
      Route by_binary{Route::Kind::Keep, "", "", {}};
      by_binary.by_binary = true;
      return settled_[cgroup_id] = by_binary;
    }
    auto unit = units_.find(cgroup_id);
    if (m == nullptr || m->kind != CgroupKind::None || unit == units_.end())
      return settled_[cgroup_id] = Route{};
    return settled_[cgroup_id] = Route{Route::Kind::Keep,
                                       "host:" + unit->second,
                                       "systemd unit " + unit->second + " on the host",
                                       {}};
  }
  Route r = decide(*m, final);
  if (r.kind == Route::Kind::Wait) return r;
  settled_[cgroup_id] = r;
  if (r.kind == Route::Kind::Keep)
    recorded_.insert(m->ref.id);
  else if (exclude_)
    exclude_(cgroup_id);
  return r;
}

// A cgroup made in a burst (a thousand containers starting) can be asked about
// before its record arrives and between two walks: it waits for the next walk
// rather than being taken for a host cgroup for good.
bool ContainerRouter::walked_since_first_asked(uint64_t cgroup_id) {
  auto [it, first] = unseen_.try_emplace(cgroup_id, std::chrono::steady_clock::now());
  if (first && unseen_.size() > kMaxCgroups) {
    unseen_.clear();  // bounded like the rest: those still unseen start over
    unseen_.emplace(cgroup_id, std::chrono::steady_clock::now());
    return false;
  }
  return !first && last_walk_ > it->second;
}

Route ContainerRouter::decide(const CgroupMatch& m, bool final) {
  const ContainerRef& ref = m.ref;
  ContainerInfoPtr info = resolver_.lookup(ref.id, ref.runtime);
  if (!info && final) {
    // One wait for all: a dead runtime with many unnamed containers must not
    // hold the end of a recording for final_wait each.
    auto now = std::chrono::steady_clock::now();
    if (!final_deadline_) final_deadline_ = now + final_wait_;
    if (now < *final_deadline_)
      info = resolver_.resolve(
          ref.id, ref.runtime,
          std::chrono::duration_cast<std::chrono::milliseconds>(*final_deadline_ - now));
  }
  switch (selection_.decide(ref, info.get())) {
    case filter::Decision::Drop:
      return {};
    case filter::Decision::Keep:
      if (info) return keep(identity_of(*info));
      // Kept by id alone (--all-containers, the agent): named by the runtime if it
      // answers in time; by its id once the runtimes have said they do not know it.
      if (!final && resolver_.has_clients() && !resolver_.given_up(ref.id)) return waiting();
      return keep(identity_of(ref));
    case filter::Decision::Wait:
      break;
  }
  return waiting();
}

}  // namespace capscope::profile
