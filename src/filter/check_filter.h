// The user-space twin of the in-kernel filters (bpf/capable_common.bpf.h):
// same order, same keys, same suppression counts. The live source does not
// need it (the kernel filtered already); the replay source does, and the
// unit tests pin the semantics both must share.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>

#include "filter/filter_spec.h"
#include "model/records.h"

namespace capscope::filter {

struct FilterStats {
  uint64_t filtered = 0;
  uint64_t unique_suppressed = 0;
  uint64_t rate_suppressed = 0;
};

class CheckFilter {
 public:
  // "host" is a task in the initial pid namespace (level 0), as the kernel
  // side decides it.
  explicit CheckFilter(FilterSpec spec, uint32_t self_pid = 0)
      : spec_(std::move(spec)), self_pid_(self_pid) {}

  // True if the check is to be reported. May set c.suppressed (rate limit).
  bool keep(CapCheck& c);
  [[nodiscard]] const FilterStats& stats() const { return stats_; }

 private:
  bool passes_static(const CapCheck& c) const;
  bool unique_keep(const CapCheck& c);
  bool rate_keep(CapCheck& c);

  FilterSpec spec_;
  uint32_t self_pid_;
  FilterStats stats_;
  // (mntns, mntns_id, cap, denied) -> bit 0 audited seen, bit 1 probe seen
  std::map<std::tuple<uint32_t, uint32_t, int32_t, bool>, uint32_t> unique_seen_;
  struct RateState {
    uint64_t window_start = 0;
    uint64_t suppressed = 0;
  };
  std::map<std::tuple<uint32_t, int32_t, bool, bool>, RateState> rate_seen_;
};

// The user-space half of the live (kernel) filters, for what the kernel could not
// decide: checks it sent as learning samples, whose audit flag user space decides from
// their stack. --audit-only applies to those here. --unique and --rate-limit apply to
// every check, because the kernel does not mark a sample's key (it could not tell
// which kind, audited or probe, the sample is): a later check of the same key, decided
// in the kernel, is news to the kernel but not to the user.
class SampledCheckFilter {
 public:
  explicit SampledCheckFilter(const FilterSpec& spec);
  // True if the check is to be reported.
  bool keep(CapCheck& c, bool sampled);
  [[nodiscard]] FilterStats stats() const;

 private:
  CheckFilter sampled_;
  CheckFilter every_;
  bool every_enabled_;
};

}  // namespace capscope::filter
