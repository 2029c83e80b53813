// Deciding whether a capability check is audited (a need) or a no-audit probe
// from the kernel call site, for the tracepoint backend that has no opts.
//
// The rules work on function names of a kernel stack, innermost first:
// functions that forward their caller's opts or ptrace mode are "pass"; the
// first other function decides. The learner turns stack samples from the BPF
// program into per-return-address entries of the in-kernel call-site map, so
// later checks through the same path are classified in the kernel without a
// stack walk (see bpf/capable_common.bpf.h, cs_walk_callsites).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capture/kallsyms.h"

namespace capscope::capture {

enum class SiteDecision : uint32_t { Pass = 0, Audit = 1, NoAudit = 2, InSetid = 3, Sample = 4 };

// The decision a function makes when it appears in a cap_capable stack.
SiteDecision classify_function(std::string_view function_name);

struct StackVerdict {
  bool audit = true;
  bool insetid = false;
  std::string decided_by;  // the deciding function, empty if none decided
};

// Classifies a whole stack given as function names, innermost first.
StackVerdict classify_stack(std::span<const std::string> functions);

struct CallSiteEntry {
  uint64_t ip = 0;
  uint32_t advance = 0;
  SiteDecision decision = SiteDecision::Pass;
};

struct LearnResult {
  StackVerdict verdict;
  std::vector<CallSiteEntry> entries;  // to write into the call-site map
  std::optional<uint32_t> walk_start;  // offset of the first return address
  std::vector<std::string> functions;  // the symbolized stack
};

class CallSiteLearner {
 public:
  explicit CallSiteLearner(Kallsyms syms) : syms_(std::move(syms)) {}

  // Learns from one sample: `stack` from bpf_get_stack (innermost first),
  // `raw` the kernel stack memory from the walk anchor up.
  LearnResult learn(std::span<const uint64_t> stack, std::span<const uint8_t> raw);

  // Classifies a stack without learning (fexit/kprobe samples, tests).
  StackVerdict classify(std::span<const uint64_t> stack) const;

  [[nodiscard]] size_t known_sites() const { return sites_.size(); }
  [[nodiscard]] uint64_t conflicts() const { return conflicts_; }
  [[nodiscard]] const Kallsyms& symbols() const { return syms_; }

 private:
  std::vector<std::string> symbolize(std::span<const uint64_t> stack) const;
  void remember(const CallSiteEntry& e, std::vector<CallSiteEntry>& out);

  Kallsyms syms_;
  std::unordered_map<uint64_t, CallSiteEntry> sites_;
  uint64_t conflicts_ = 0;
};

}  // namespace capscope::capture
