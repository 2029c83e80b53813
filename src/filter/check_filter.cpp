#include "filter/check_filter.h"

#include <algorithm>

namespace capscope::filter {

namespace {

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

bool CheckFilter::passes_static(const CapCheck& c) const {
  if (spec_.cap_mask && (c.cap < 0 || c.cap > 63 || !(*spec_.cap_mask & (1ULL << c.cap))))
    return false;
  if (spec_.denied_only && c.granted()) return false;
  if (self_pid_ && c.pid == self_pid_) return false;
  if (!spec_.pids.empty() && !contains(spec_.pids, c.pid)) return false;
  if (!spec_.tids.empty() && !contains(spec_.tids, c.tid)) return false;
  // The kernel compares the 16-byte comm: names longer than 15 bytes are cut.
  if (!spec_.comms.empty() &&
      std::none_of(spec_.comms.begin(), spec_.comms.end(),
                   [&](const std::string& s) { return s.substr(0, 15) == c.comm; }))
    return false;
  if (!spec_.cgroup_ids.empty() && !contains(spec_.cgroup_ids, c.cgroup_id)) return false;
  bool host = c.pidns_level == 0;
  if (spec_.host_only && !host) return false;
  if (spec_.containers_only && host) return false;
  if (!spec_.uids.empty() && !contains(spec_.uids, c.uid)) return false;
  if (!spec_.gids.empty() && !contains(spec_.gids, c.gid)) return false;
  return true;
}

bool CheckFilter::unique_keep(const CapCheck& c) {
  // The namespace's id too: a new container may get a dead one's inode number.
  uint32_t& seen = unique_seen_[{c.mntns, c.mntns_id, c.cap, !c.granted()}];
  uint32_t bit = c.audit ? 1u : 2u;
  // Once an audited use was reported, nothing more for the key is news.
  if ((seen & 1u) || (seen & bit)) {
    ++stats_.unique_suppressed;
    return false;
  }
  seen |= bit;
  return true;
}

bool CheckFilter::rate_keep(CapCheck& c) {
  uint32_t scope = spec_.rate_scope == RateScope::Thread    ? c.tid
                   : spec_.rate_scope == RateScope::Process ? c.pid
                                                            : 0;
  auto [it, fresh] = rate_seen_.try_emplace({scope, c.cap, !c.granted(), c.audit});
  RateState& st = it->second;
  if (!fresh && c.ktime_ns - st.window_start < *spec_.rate_window_ns) {
    ++st.suppressed;
    ++stats_.rate_suppressed;
    return false;
  }
  // Added to what the kernel counted, when the check comes from the live source.
  c.suppressed += fresh ? 0 : st.suppressed;
  st.suppressed = 0;
  st.window_start = c.ktime_ns;
  return true;
}

bool CheckFilter::keep(CapCheck& c) {
  if (!passes_static(c)) {
    ++stats_.filtered;
    return false;
  }
  if (spec_.audit_only && !c.audit && c.audit_source != AuditSource::Unknown) {
    ++stats_.filtered;
    return false;
  }
  if (spec_.unique && !unique_keep(c)) return false;
  if (spec_.rate_window_ns && !rate_keep(c)) return false;
  return true;
}

namespace {

FilterSpec sampled_part(const FilterSpec& spec) {
  FilterSpec s;
  s.audit_only = spec.audit_only;
  return s;
}

FilterSpec every_part(const FilterSpec& spec) {
  FilterSpec s;
  s.unique = spec.unique;
  s.rate_window_ns = spec.rate_window_ns;
  s.rate_scope = spec.rate_scope;
  return s;
}

}  // namespace

SampledCheckFilter::SampledCheckFilter(const FilterSpec& spec)
    : sampled_(sampled_part(spec)),
      every_(every_part(spec)),
      every_enabled_(spec.unique || spec.rate_window_ns) {}

bool SampledCheckFilter::keep(CapCheck& c, bool sampled) {
  if (sampled && !sampled_.keep(c)) return false;
  return !every_enabled_ || every_.keep(c);
}

FilterStats SampledCheckFilter::stats() const {
  FilterStats s = sampled_.stats();
  s.unique_suppressed += every_.stats().unique_suppressed;
  s.rate_suppressed += every_.stats().rate_suppressed;
  return s;
}

}  // namespace capscope::filter
