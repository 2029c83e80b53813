#include <gtest/gtest.h>

#include <cstring>

#include "capture/callsite.h"
#include "capture/kallsyms.h"

using namespace capscope::capture;

namespace {

// A kallsyms excerpt of the shape /proc/kallsyms has (addresses made up).
constexpr const char* kSyms =
    "ffffffff81000100 T entry_SYSCALL_64\n"
    "ffffffff81100000 T __sys_setuid\n"
    "ffffffff81200000 T ns_capable_setid\n"
    "ffffffff81200100 T ns_capable\n"
    "ffffffff81200200 T ns_capable_noaudit\n"
    "ffffffff81300000 T security_capable\n"
    "ffffffff81300100 T security_vm_enough_memory_mm\n"
    "ffffffff81400000 T cap_capable\n"
    "ffffffff81400200 T cap_vm_enough_memory\n"
    "ffffffff81500000 T bpf_trace_run5\n"
    "ffffffff81600000 t do_task_stat.isra.0\n"
    "ffffffff81700000 T ptrace_may_access\n"
    "ffffffff81800000 d some_data\n";

TEST(Kallsyms, FindsTheFunctionContainingAnAddress) {
  Kallsyms k = Kallsyms::from_text(kSyms);
  EXPECT_EQ(k.function_at(0xffffffff81400083).value(), "cap_capable");
  EXPECT_EQ(k.function_at(0xffffffff81200010).value(), "ns_capable_setid");
  EXPECT_FALSE(k.function_at(0x1000).has_value());
  // Data symbols are not functions.
  EXPECT_FALSE(k.address_of("some_data").has_value());
  EXPECT_EQ(k.address_of("cap_capable").value(), 0xffffffff81400000u);
}

TEST(CallSite, FunctionRules) {
  EXPECT_EQ(classify_function("cap_capable"), SiteDecision::Pass);
  EXPECT_EQ(classify_function("security_capable"), SiteDecision::Pass);
  EXPECT_EQ(classify_function("bpf_trace_run5"), SiteDecision::Pass);
  EXPECT_EQ(classify_function("ptrace_may_access"), SiteDecision::Pass);
  EXPECT_EQ(classify_function("cap_vm_enough_memory"), SiteDecision::NoAudit);
  EXPECT_EQ(classify_function("ns_capable_noaudit"), SiteDecision::NoAudit);
  EXPECT_EQ(classify_function("do_task_stat.isra.0"), SiteDecision::NoAudit);
  EXPECT_EQ(classify_function("kallsyms_show_value"), SiteDecision::NoAudit);
  EXPECT_EQ(classify_function("ns_capable_setid"), SiteDecision::InSetid);
  EXPECT_EQ(classify_function("ns_capable"), SiteDecision::Audit);
  EXPECT_EQ(classify_function("__x64_sys_chroot"), SiteDecision::Audit);
}

TEST(CallSite, StackVerdicts) {
  std::vector<std::string> mmap = {"",
                                   "bpf_trace_run5",
                                   "cap_capable",
                                   "cap_vm_enough_memory",
                                   "security_vm_enough_memory_mm",
                                   "__mmap_region"};
  auto v = classify_stack(mmap);
  EXPECT_FALSE(v.audit);
  EXPECT_EQ(v.decided_by, "cap_vm_enough_memory");
  // Inlined cap_vm_enough_memory: its caller decides the same way.
  std::vector<std::string> inlined = {"cap_capable", "security_vm_enough_memory_mm", "do_mmap"};
  EXPECT_FALSE(classify_stack(inlined).audit);
  // ptrace_may_access forwards its mode: do_task_stat passes NOAUDIT, others do not.
  std::vector<std::string> stat = {"cap_capable", "security_capable", "ptrace_may_access",
                                   "do_task_stat.isra.0", "proc_single_show"};
  EXPECT_FALSE(classify_stack(stat).audit);
  std::vector<std::string> mem = {"cap_capable", "security_capable", "ptrace_may_access",
                                  "proc_mem_open", "mem_open"};
  EXPECT_TRUE(classify_stack(mem).audit);
  std::vector<std::string> setuid = {"cap_capable", "security_capable", "ns_capable_setid",
                                     "__sys_setuid"};
  auto s = classify_stack(setuid);
  EXPECT_TRUE(s.audit);
  EXPECT_TRUE(s.insetid);
  // Nothing decides: audited (never hide a need).
  std::vector<std::string> none = {"cap_capable", "security_capable"};
  EXPECT_TRUE(classify_stack(none).audit);
}

// Builds raw stack memory with `ips` placed at the given byte offsets.
std::vector<uint8_t> raw_with(const std::vector<std::pair<uint32_t, uint64_t>>& at) {
  std::vector<uint8_t> raw(512, 0);
  for (auto [off, v] : at) std::memcpy(raw.data() + off, &v, 8);
  return raw;
}

TEST(CallSiteLearner, LearnsAdvancesUpToTheDecidingFrame) {
  CallSiteLearner l(Kallsyms::from_text(kSyms));
  // Innermost first, as bpf_get_stack gives them; the first two (the BPF
  // program and bpf_trace_run5) lie below the anchor and are not on the raw stack.
  std::vector<uint64_t> stack = {0xffffffffc0001234, 0xffffffff815000c2, 0xffffffff81400083,
                                 0xffffffff8130004b, 0xffffffff8120003d, 0xffffffff81100061};
  auto raw = raw_with({{80, stack[2]}, {96, stack[3]}, {136, stack[4]}, {152, stack[5]}});
  LearnResult r = l.learn(stack, raw);
  EXPECT_TRUE(r.verdict.audit);
  EXPECT_TRUE(r.verdict.insetid);
  ASSERT_TRUE(r.walk_start.has_value());
  EXPECT_EQ(*r.walk_start, 80u);
  ASSERT_EQ(r.entries.size(), 3u);
  EXPECT_EQ(r.entries[0].ip, stack[2]);
  EXPECT_EQ(r.entries[0].decision, SiteDecision::Pass);
  EXPECT_EQ(r.entries[0].advance, 16u);
  EXPECT_EQ(r.entries[1].advance, 40u);
  EXPECT_EQ(r.entries[2].decision, SiteDecision::InSetid);
  // The same sample again teaches nothing new.
  EXPECT_TRUE(l.learn(stack, raw).entries.empty());
  EXPECT_EQ(l.known_sites(), 3u);
}

TEST(CallSiteLearner, ConflictingSamplesTurnTheSiteIntoSample) {
  CallSiteLearner l(Kallsyms::from_text(kSyms));
  std::vector<uint64_t> stack = {0xffffffff81400083, 0xffffffff8130004b, 0xffffffff8120003d};
  l.learn(stack, raw_with({{80, stack[0]}, {96, stack[1]}, {136, stack[2]}}));
  auto r = l.learn(stack, raw_with({{80, stack[0]}, {112, stack[1]}, {160, stack[2]}}));
  ASSERT_FALSE(r.entries.empty());
  EXPECT_EQ(r.entries[0].decision, SiteDecision::Sample);
  EXPECT_GE(l.conflicts(), 1u);
}

TEST(CallSiteLearner, AGapInTheRawStackStopsTheWalkThere) {
  CallSiteLearner l(Kallsyms::from_text(kSyms));
  std::vector<uint64_t> stack = {0xffffffff81400083, 0xffffffff8130004b, 0xffffffff8120003d};
  // security_capable's return address is missing from the raw stack.
  auto r = l.learn(stack, raw_with({{80, stack[0]}, {136, stack[2]}}));
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].decision, SiteDecision::Sample);
  EXPECT_TRUE(r.verdict.audit);  // still classified from the whole stack
}

}  // namespace
