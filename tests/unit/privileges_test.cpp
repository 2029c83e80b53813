// The agent's capability management, the pure parts: --capabilities parsing, the
// ring table, the drop arithmetic, /proc status parsing and the ring description.
#include <gtest/gtest.h>
#include <linux/capability.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/privileges.h"

using namespace capscope::agent;

namespace {

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

// Capabilities 0..40, as on Linux 5.9 and later.
constexpr uint64_t kAll41 = (uint64_t{1} << 41) - 1;

CapabilityOptions parse_ok(const std::vector<std::string>& values) {
  CapabilityOptions o;
  std::string error;
  EXPECT_TRUE(parse_capabilities_values(values, &o, &error)) << error;
  EXPECT_EQ(error, "");
  return o;
}

std::string parse_error(const std::string& value) {
  CapabilityOptions o;
  std::string error;
  EXPECT_FALSE(parse_capabilities_value(value, &o, &error)) << value;
  EXPECT_EQ(o, CapabilityOptions{}) << "a failed parse must leave the options alone";
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  return error;
}

capscope::CapSets full_root() {
  return {.effective = kAll41, .permitted = kAll41, .bounding = kAll41};
}

}  // namespace

// ---- parsing ----------------------------------------------------------------------

TEST(CapabilitiesFlag, BypassTrueFalseAndNumbers) {
  EXPECT_TRUE(parse_ok({"bypass=true"}).bypass);
  EXPECT_TRUE(parse_ok({"bypass=1"}).bypass);
  EXPECT_TRUE(parse_ok({"BYPASS=True"}).bypass);
  EXPECT_FALSE(parse_ok({"bypass=false"}).bypass);
  EXPECT_FALSE(parse_ok({"bypass=true", "bypass=0"}).bypass) << "the last occurrence wins";
}

TEST(CapabilitiesFlag, NamesWithOrWithoutPrefixAnyCase) {
  auto o = parse_ok({"add=cap_kill,SYS_ADMIN,Cap_Syslog"});
  EXPECT_EQ(o.add, bit(CAP_KILL) | bit(CAP_SYS_ADMIN) | bit(CAP_SYSLOG));
  EXPECT_EQ(o.drop, 0U);
  EXPECT_FALSE(o.bypass);
}

TEST(CapabilitiesFlag, RepeatedFlagsMerge) {
  auto o = parse_ok({"add=cap_kill", "add=cap_chown", "drop=cap_sys_ptrace"});
  EXPECT_EQ(o.add, bit(CAP_KILL) | bit(CAP_CHOWN));
  EXPECT_EQ(o.drop, bit(CAP_SYS_PTRACE));
}

TEST(CapabilitiesFlag, OneValueCarriesSeveralOptions) {
  auto o = parse_ok({"bypass=false, add=cap_kill,cap_chown ,drop=cap_bpf,perfmon"});
  EXPECT_FALSE(o.bypass);
  EXPECT_EQ(o.add, bit(CAP_KILL) | bit(CAP_CHOWN));
  EXPECT_EQ(o.drop, bit(CAP_BPF) | bit(CAP_PERFMON));
}

TEST(CapabilitiesFlag, NumbersOfTheTableAreAccepted) {
  EXPECT_EQ(parse_ok({"add=19"}).add, bit(CAP_SYS_PTRACE));
}

TEST(CapabilitiesFlag, UnknownCapabilityNamesValueAndCapsCommand) {
  std::string e = parse_error("add=cap_kill,cap_fly");
  EXPECT_NE(e.find("'cap_fly'"), std::string::npos) << e;
  EXPECT_NE(e.find("add=cap_kill,cap_fly"), std::string::npos) << e;
  EXPECT_NE(e.find("capscope caps"), std::string::npos) << e;
  // Beyond capscope's table: no name to show, so not accepted either.
  EXPECT_NE(parse_error("drop=50").find("'50'"), std::string::npos);
}

TEST(CapabilitiesFlag, BadShapesAreOneLineErrors) {
  EXPECT_NE(parse_error("").find("empty value"), std::string::npos);
  EXPECT_NE(parse_error("bypass=maybe").find("'maybe'"), std::string::npos);
  EXPECT_NE(parse_error("raise=cap_kill").find("unknown option 'raise'"), std::string::npos);
  EXPECT_NE(parse_error("add=").find("add= names no capability"), std::string::npos);
  EXPECT_NE(parse_error("cap_kill").find("'cap_kill' is not an option"), std::string::npos);
  EXPECT_NE(parse_error("bypass=true,cap_kill").find("'cap_kill' is not an option"),
            std::string::npos)
      << "a bare name continues add= or drop=, never bypass=";
  EXPECT_NE(parse_error("add=cap_kill,").find("empty item"), std::string::npos);
}

TEST(CapabilitiesFlag, AFailingValueKeepsEarlierOnes) {
  CapabilityOptions o;
  std::string error;
  ASSERT_TRUE(parse_capabilities_value("add=cap_kill", &o, &error));
  std::vector<std::string> more = {"drop=cap_chown", "add=nope"};
  EXPECT_FALSE(parse_capabilities_values(more, &o, &error));
  EXPECT_EQ(o.add, bit(CAP_KILL));
  EXPECT_EQ(o.drop, 0U) << "nothing of a failed list is applied";
}

// ---- the table --------------------------------------------------------------------

TEST(PrivilegeRings, TableIsWhatTheDocsSay) {
  EXPECT_EQ(base_caps(), bit(CAP_SYS_PTRACE));
  ASSERT_NE(find_ring("ebpf"), nullptr);
  EXPECT_EQ(find_ring("ebpf")->caps,
            bit(CAP_BPF) | bit(CAP_PERFMON) | bit(CAP_SYS_ADMIN) | bit(CAP_SYS_RESOURCE));
  ASSERT_NE(find_ring("kallsyms"), nullptr);
  EXPECT_EQ(find_ring("kallsyms")->caps, bit(CAP_SYSLOG));
  ASSERT_NE(find_ring("signal"), nullptr);
  EXPECT_EQ(find_ring("signal")->caps, bit(CAP_KILL));
  ASSERT_NE(find_ring("runtime"), nullptr);
  EXPECT_EQ(find_ring("runtime")->caps, bit(CAP_DAC_OVERRIDE));
  EXPECT_EQ(find_ring("root"), nullptr);
}

TEST(PrivilegeRings, RingsAreDisjointFromEachOtherAndFromBase) {
  uint64_t seen = base_caps();
  std::set<std::string_view> names;
  for (const Ring& r : rings()) {
    EXPECT_NE(r.caps, 0U) << r.name;
    EXPECT_EQ(r.caps & seen, 0U) << r.name << " overlaps another ring or the base set";
    EXPECT_FALSE(r.why.empty()) << r.name;
    EXPECT_TRUE(names.insert(r.name).second) << r.name;
    seen |= r.caps;
  }
  EXPECT_EQ(seen & ~base_caps(), ring_caps());
}

// ---- the drop arithmetic -------------------------------------------------------------

TEST(DropPlan, DefaultKeepsBaseEffectiveAndRingsPermitted) {
  DropPlan p = plan_drop({}, full_root(), kAll41);
  EXPECT_EQ(p.target.effective, bit(CAP_SYS_PTRACE));
  EXPECT_EQ(p.target.permitted, base_caps() | ring_caps());
  EXPECT_EQ(p.target.bounding, p.target.permitted);
  EXPECT_EQ(p.target.inheritable, 0U);
  EXPECT_EQ(p.target.ambient, 0U);
  EXPECT_EQ(p.unavailable, 0U);
  EXPECT_EQ(p.missing_add, 0U);
  // The numbers docs/PRIVILEGES.md shows for a running agent.
  EXPECT_EQ(p.target.effective, 0x0000000000080000U);
  EXPECT_EQ(p.target.permitted, 0x000000c401280022U);
}

TEST(DropPlan, AddIsEffectiveAndPermitted) {
  CapabilityOptions o;
  o.add = bit(CAP_CHOWN);
  DropPlan p = plan_drop(o, full_root(), kAll41);
  EXPECT_EQ(p.target.effective, bit(CAP_SYS_PTRACE) | bit(CAP_CHOWN));
  EXPECT_EQ(p.target.permitted, base_caps() | ring_caps() | bit(CAP_CHOWN));
}

TEST(DropPlan, DropRemovesFromBaseAndRingsAndWinsOverAdd) {
  CapabilityOptions o;
  o.add = bit(CAP_KILL);
  o.drop = bit(CAP_SYS_PTRACE) | bit(CAP_KILL) | bit(CAP_SYS_ADMIN);
  DropPlan p = plan_drop(o, full_root(), kAll41);
  EXPECT_EQ(p.target.effective, 0U);
  EXPECT_EQ(p.target.permitted, bit(CAP_BPF) | bit(CAP_PERFMON) | bit(CAP_SYS_RESOURCE) |
                                    bit(CAP_SYSLOG) | bit(CAP_DAC_OVERRIDE));
  EXPECT_EQ(p.missing_add, 0U) << "a dropped add= is not missing";
}

TEST(DropPlan, CapabilitiesNotHeldAreLeftOutAndCounted) {
  // Started without CAP_SYS_RESOURCE (a container runtime's default set lacks it).
  capscope::CapSets current = full_root();
  current.permitted &= ~bit(CAP_SYS_RESOURCE);
  current.effective = current.permitted;
  DropPlan p = plan_drop({}, current, kAll41);
  EXPECT_EQ(p.unavailable, bit(CAP_SYS_RESOURCE));
  EXPECT_EQ(p.target.permitted & bit(CAP_SYS_RESOURCE), 0U);
  EXPECT_EQ(p.target.effective, bit(CAP_SYS_PTRACE));
}

TEST(DropPlan, AddOfACapabilityNotHeldIsAnError) {
  capscope::CapSets current = full_root();
  current.permitted &= ~bit(CAP_NET_ADMIN);
  CapabilityOptions o;
  o.add = bit(CAP_NET_ADMIN) | bit(CAP_CHOWN);
  DropPlan p = plan_drop(o, current, kAll41);
  EXPECT_EQ(p.missing_add, bit(CAP_NET_ADMIN));
  EXPECT_EQ(p.unavailable, 0U) << "the base and rings are all held";
}

TEST(DropPlan, BoundingOnlyShrinksAndOldKernelsLackBpf) {
  // Linux 5.4: 0..37, no CAP_PERFMON (38) or CAP_BPF (39).
  uint64_t valid = (uint64_t{1} << 38) - 1;
  capscope::CapSets current{
      .effective = valid, .permitted = valid, .bounding = valid & ~bit(CAP_SYSLOG)};
  DropPlan p = plan_drop({}, current, valid);
  EXPECT_EQ(p.target.permitted & (bit(CAP_BPF) | bit(CAP_PERFMON)), 0U);
  EXPECT_EQ(p.unavailable, 0U) << "capabilities the kernel lacks are not missing";
  EXPECT_NE(p.target.permitted & bit(CAP_SYSLOG), 0U);
  EXPECT_EQ(p.target.bounding, p.target.permitted & ~bit(CAP_SYSLOG));
}

// ---- description ----------------------------------------------------------------------

TEST(DescribeEffective, NamesTheRaisedRings) {
  uint64_t base = bit(CAP_SYS_PTRACE);
  uint64_t permitted = base | ring_caps();
  EXPECT_EQ(describe_effective(base, base, permitted), "base");
  EXPECT_EQ(describe_effective(base | bit(CAP_SYSLOG), base, permitted), "base+kallsyms");
  EXPECT_EQ(describe_effective(base | find_ring("ebpf")->caps | bit(CAP_KILL), base, permitted),
            "base+ebpf+signal");
  EXPECT_EQ(describe_effective(base | bit(CAP_BPF), base, permitted), "base+ebpf(CAP_BPF)");
  EXPECT_EQ(describe_effective(base | bit(CAP_CHOWN), base, permitted), "base+CAP_CHOWN");
  EXPECT_EQ(describe_effective(0, base, permitted), "base-CAP_SYS_PTRACE");
}

TEST(DescribeEffective, ARingRaisedAsFarAsPermittedIsWhole) {
  uint64_t base = bit(CAP_SYS_PTRACE);
  uint64_t ebpf = find_ring("ebpf")->caps;
  uint64_t permitted = base | (ebpf & ~bit(CAP_SYS_RESOURCE));
  EXPECT_EQ(describe_effective(permitted, base, permitted), "base+ebpf");
}

TEST(MaskNames, NoneOrCommaList) {
  EXPECT_EQ(mask_names(0), "none");
  EXPECT_EQ(mask_names(bit(CAP_CHOWN) | bit(CAP_BPF)), "CAP_CHOWN,CAP_BPF");
}

// ---- /proc status -------------------------------------------------------------------------

TEST(StatusCaps, ReadsTheFiveLines) {
  const char* status =
      "Name:\tcapscope\nUmask:\t0022\nSigBlk:\t0000000000000000\n"
      "CapInh:\t0000000000000000\nCapPrm:\t000000c401280022\nCapEff:\t0000000000080000\n"
      "CapBnd:\t000000c401280022\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n";
  auto s = parse_status_caps(status);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->inheritable, 0U);
  EXPECT_EQ(s->permitted, 0xc401280022U);
  EXPECT_EQ(s->effective, 0x80000U);
  EXPECT_EQ(s->bounding, 0xc401280022U);
  EXPECT_EQ(s->ambient, 0U);
}

TEST(StatusCaps, AmbientIsOptionalTheOthersAreNot) {
  auto old = parse_status_caps("CapInh:\t0\nCapPrm:\tff\nCapEff:\tf\nCapBnd:\tff\n");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->ambient, 0U);
  EXPECT_EQ(old->effective, 0xfU);
  EXPECT_FALSE(parse_status_caps("CapInh:\t0\nCapPrm:\tff\nCapBnd:\tff\n").has_value());
  EXPECT_FALSE(parse_status_caps("CapInh:\t0\nCapPrm:\tzz\nCapEff:\t0\nCapBnd:\t0\n"));
  EXPECT_FALSE(parse_status_caps("CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\tx\n"));
  // "CapPrmX:" is another key, not CapPrm.
  EXPECT_FALSE(parse_status_caps("CapInh:\t0\nCapPrmX:\t0\nCapEff:\t0\nCapBnd:\t0\n"));
}
