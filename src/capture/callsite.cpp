#include "capture/callsite.h"

#include <array>
#include <cstring>

namespace capscope::capture {

namespace {

// Strip compiler suffixes: "do_task_stat.isra.0" and "foo.cold" are the same function.
std::string_view base_name(std::string_view fn) { return fn.substr(0, fn.find('.')); }

bool starts_with_any(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  for (auto p : prefixes)
    if (s.starts_with(p)) return true;
  return false;
}

// Functions that hand their caller's opts (or ptrace mode) down to
// cap_capable: they cannot decide, their caller does.
constexpr std::array kPassThrough = {
    std::string_view("cap_capable"),       std::string_view("cap_capable_helper"),
    std::string_view("security_capable"),  std::string_view("ns_capable_common"),
    std::string_view("ptrace_has_cap"),    std::string_view("__ptrace_may_access"),
    std::string_view("ptrace_may_access"), std::string_view("mm_access"),
    std::string_view("call_int_hook"),
};

// Call sites that pass CAP_OPT_NOAUDIT (or PTRACE_MODE_NOAUDIT), directly or
// through an inlined helper. Kernels inline differently: the caller of an
// inlined helper is listed too (security_vm_enough_memory_mm for
// cap_vm_enough_memory, proc_*_stat for do_task_stat).
constexpr std::array kNoAudit = {
    std::string_view("cap_vm_enough_memory"),   std::string_view("security_vm_enough_memory_mm"),
    std::string_view("ns_capable_noaudit"),     std::string_view("has_ns_capability_noaudit"),
    std::string_view("has_capability_noaudit"), std::string_view("ptracer_capable"),
    std::string_view("kallsyms_show_value"),    std::string_view("do_task_stat"),
    std::string_view("proc_tgid_stat"),         std::string_view("proc_tid_stat"),
    std::string_view("has_cap_mac_admin"),      std::string_view("selinux_inode_getsecurity"),
};

constexpr std::array kInSetid = {std::string_view("ns_capable_setid")};

template <size_t N>
bool in(const std::array<std::string_view, N>& set, std::string_view fn) {
  for (auto s : set)
    if (s == fn) return true;
  return false;
}

}  // namespace

SiteDecision classify_function(std::string_view function_name) {
  std::string_view fn = base_name(function_name);
  // Tracing plumbing between cap_capable and the BPF program.
  if (fn.empty() || starts_with_any(fn, {"bpf_", "__bpf_", "__traceiter_", "trace_", "perf_"}))
    return SiteDecision::Pass;
  if (in(kPassThrough, fn)) return SiteDecision::Pass;
  if (in(kNoAudit, fn)) return SiteDecision::NoAudit;
  if (in(kInSetid, fn)) return SiteDecision::InSetid;
  return SiteDecision::Audit;
}

StackVerdict classify_stack(std::span<const std::string> functions) {
  StackVerdict v;
  for (const auto& fn : functions) {
    SiteDecision d = classify_function(fn);
    if (d == SiteDecision::Pass) continue;
    v.audit = d != SiteDecision::NoAudit;
    v.insetid = d == SiteDecision::InSetid;
    v.decided_by = std::string(base_name(fn));
    return v;
  }
  return v;  // nothing decided: audited, never hide a need
}

std::vector<std::string> CallSiteLearner::symbolize(std::span<const uint64_t> stack) const {
  std::vector<std::string> out;
  out.reserve(stack.size());
  for (uint64_t ip : stack) {
    auto fn = syms_.function_at(ip);
    out.emplace_back(fn ? std::string(*fn) : std::string());
  }
  return out;
}

StackVerdict CallSiteLearner::classify(std::span<const uint64_t> stack) const {
  auto fns = symbolize(stack);
  return classify_stack(fns);
}

void CallSiteLearner::remember(const CallSiteEntry& e, std::vector<CallSiteEntry>& out) {
  auto [it, inserted] = sites_.try_emplace(e.ip, e);
  if (inserted) {
    out.push_back(e);
    return;
  }
  CallSiteEntry& known = it->second;
  bool needs_advance = known.decision == SiteDecision::Pass;
  if (known.decision == e.decision && (!needs_advance || known.advance == e.advance)) return;
  if (known.decision == SiteDecision::Sample) return;
  // Two samples disagree on this return address (a stale copy of an address
  // on the stack can fool the matcher): stop trusting the walk here and let
  // the kernel sample every check that reaches it.
  ++conflicts_;
  known.decision = SiteDecision::Sample;
  out.push_back(known);
}

// Positions of the stack's return addresses in the raw stack memory, in
// order: each found above the previous one. Addresses not on the raw stack
// (below the anchor, like the BPF program's own) are skipped.
static std::vector<std::pair<size_t, uint32_t>> locate(std::span<const uint64_t> stack,
                                                       std::span<const uint8_t> raw) {
  std::vector<std::pair<size_t, uint32_t>> found;  // (index in stack, byte offset)
  size_t words = raw.size() / 8;
  size_t from = 0;
  for (size_t i = 0; i < stack.size(); ++i) {
    for (size_t w = from; w < words; ++w) {
      uint64_t v;
      std::memcpy(&v, raw.data() + w * 8, 8);
      if (v == stack[i]) {
        found.emplace_back(i, static_cast<uint32_t>(w * 8));
        from = w + 1;
        break;
      }
    }
  }
  return found;
}

LearnResult CallSiteLearner::learn(std::span<const uint64_t> stack, std::span<const uint8_t> raw) {
  LearnResult r;
  r.functions = symbolize(stack);
  r.verdict = classify_stack(r.functions);
  auto found = locate(stack, raw);
  if (found.empty()) return r;
  r.walk_start = found.front().second;
  for (size_t k = 0; k < found.size(); ++k) {
    auto [idx, off] = found[k];
    CallSiteEntry e;
    e.ip = stack[idx];
    e.decision = classify_function(r.functions[idx]);
    if (e.decision == SiteDecision::Pass) {
      // A pass frame needs the distance to the next return address; the
      // next one must be the very next frame of the stack, or we would skip
      // a frame the walk cannot see.
      if (k + 1 >= found.size() || found[k + 1].first != idx + 1) {
        e.decision = SiteDecision::Sample;
        remember(e, r.entries);
        break;
      }
      e.advance = found[k + 1].second - off;
    }
    remember(e, r.entries);
    if (e.decision != SiteDecision::Pass) break;
  }
  return r;
}

}  // namespace capscope::capture
