#include "profile/profile.h"

#include <algorithm>
#include <set>

namespace capscope::profile {

namespace {

// Earliest of two times where 0 means "none".
uint64_t earliest(uint64_t a, uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

void UseStats::merge(const UseStats& o) {
  count += o.count;
  first_ns = earliest(first_ns, o.first_ns);
  last_ns = std::max(last_ns, o.last_ns);
  for (const auto& [name, n] : o.syscalls) syscalls[name] += n;
  for (const auto& [path, b] : o.binaries) {
    BinaryUse& mine = binaries[path];
    mine.count += b.count;
    if (mine.sample_args.empty()) mine.sample_args = b.sample_args;
  }
}

void HeldSets::merge(const HeldSets& o) {
  caps |= o.caps;
  ran_as_root |= o.ran_as_root;
  ran_as_user |= o.ran_as_user;
  no_new_privs |= o.no_new_privs;
}

void PrivilegedBinary::merge(const PrivilegedBinary& o) {
  file = o.file;  // the newest run's view of the file
  execs += o.execs;
  raised += o.raised;
  held_back += o.held_back;
}

// The latest run names where the container was last seen; ids accumulate.
void ContainerIdentity::merge(const ContainerIdentity& o) {
  if (o.empty()) return;
  std::set<std::string> ids = std::move(instances);
  for (const auto& id : o.instances)
    if (ids.size() < kMaxInstances) ids.insert(id);
  *this = o;
  instances = std::move(ids);
}

void Profile::add(const Observation& o) {
  UseStats one;
  one.count = o.count;
  one.first_ns = o.first_ns;
  one.last_ns = o.last_ns;
  if (!o.syscall.empty()) one.syscalls[o.syscall] = o.count;
  if (!o.binary.empty()) one.binaries[o.binary] = {o.count, o.args};
  uses[o.key].merge(one);
}

void Profile::merge(const Profile& o) {
  if (subject.empty()) subject = o.subject;
  runs += o.runs;
  recorded_ns += o.recorded_ns;
  first_run_ns = earliest(first_run_ns, o.first_run_ns);
  last_run_ns = std::max(last_run_ns, o.last_run_ns);
  for (const auto& [key, stats] : o.uses) uses[key].merge(stats);
  held.merge(o.held);
  for (const auto& [path, b] : o.privileged_binaries) privileged_binaries[path].merge(b);
  container.merge(o.container);
}

std::vector<int> Profile::needed() const {
  std::set<int> caps;
  for (const auto& [key, stats] : uses)
    if (key.audit && stats.count > 0) caps.insert(key.cap);
  return {caps.begin(), caps.end()};
}

std::vector<int> Profile::denied_needs() const {
  std::set<int> caps;
  for (const auto& [key, stats] : uses)
    if (key.audit && !key.granted && stats.count > 0) caps.insert(key.cap);
  return {caps.begin(), caps.end()};
}

std::vector<int> Profile::probes_only() const {
  std::vector<int> need = needed();
  std::set<int> caps;
  for (const auto& [key, stats] : uses)
    if (!key.audit && stats.count > 0 && !std::binary_search(need.begin(), need.end(), key.cap))
      caps.insert(key.cap);
  return {caps.begin(), caps.end()};
}

std::vector<std::pair<UseKey, const UseStats*>> Profile::rows_of(int cap) const {
  std::vector<std::pair<UseKey, const UseStats*>> rows;
  for (const auto& [key, stats] : uses)
    if (key.cap == cap) rows.emplace_back(key, &stats);
  return rows;
}

}  // namespace capscope::profile
