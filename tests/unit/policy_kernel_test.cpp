// The kernel side of policies, without the kernel: the bank of slots user space builds
// from compiled policies (src/capture/policy_bank), the policy part of check records
// (decode), and how the writers show a policy's event.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "capscope.h"
#include "capture/decode.h"
#include "capture/policy_bank.h"
#include "output/compact_writer.h"
#include "output/json_writer.h"
#include "output/writer.h"

using namespace capscope;
using namespace capscope::capture;

namespace {

constexpr int kCapSyslog = 34;
constexpr int kCapSysAdmin = 21;
constexpr int kCapSysNice = 23;
const NsInodes kHost = {11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

bool merged(std::string_view dir) { return dir == "bin" || dir == "sbin"; }
bool not_merged(std::string_view /*dir*/) { return false; }

policy::CompiledSelector selector(uint64_t caps, policy::Action action) {
  policy::CompiledSelector s;
  s.cap_mask = caps;
  s.action = action;
  return s;
}

// creds-capability-checks (two selectors) and a scoped Sigkill policy on two binaries.
std::vector<policy::CompiledPolicy> sample_set() {
  policy::CompiledPolicy creds;
  creds.name = "creds";
  auto outside_host = selector(~0ULL, policy::Action::Post);
  outside_host.namespaces = {{policy::NsKind::Pid, false}};
  outside_host.rate_limit_ns = 60'000'000'000ULL;
  outside_host.rate_scope = filter::RateScope::Process;
  auto denied_syslog = selector(1ULL << kCapSyslog, policy::Action::NoPost);
  denied_syslog.verdicts = policy::kVerdictDenied;
  denied_syslog.namespaces = {{policy::NsKind::User, true}};
  denied_syslog.options = 0b0101;  // audited only (CAP_OPT_NOAUDIT clear)
  creds.selectors = {outside_host, denied_syslog};

  policy::CompiledPolicy kill;
  kill.name = "no-admin";
  kill.k8s_namespace = "shop";
  auto admin = selector((1ULL << kCapSysAdmin) | (1ULL << kCapSysNice), policy::Action::Sigkill);
  admin.binary_op = policy::BinaryOp::NotIn;
  admin.binaries = {"/usr/bin/chown", "/opt/tool"};
  kill.selectors = {admin};
  return {creds, kill};
}

TEST(PolicyBank, SlotsFollowThePoliciesInOrderWithTheirMasks) {
  std::string error;
  auto built = compile_bank(sample_set(), kHost, 7, merged, &error);
  ASSERT_TRUE(built) << error;
  const cs_policy_bank& b = built->bank;
  EXPECT_EQ(b.gen, 7U);
  EXPECT_EQ(b.active, 0b111U);
  EXPECT_EQ(b.first, 0b101U) << "slot 0 starts creds, slot 2 starts no-admin";
  EXPECT_EQ(b.by_cap[kCapSyslog], 0b011U);
  EXPECT_EQ(b.by_cap[kCapSysAdmin], 0b101U);
  EXPECT_EQ(b.by_cap[kCapSysNice], 0b101U);
  EXPECT_EQ(b.by_cap[0], 0b001U);
  EXPECT_EQ(b.granted, 0b101U) << "the NoPost selector takes denied checks only";
  EXPECT_EQ(b.denied, 0b111U);
  EXPECT_EQ(b.post, 0b001U);
  EXPECT_EQ(b.kill, 0b100U);
  EXPECT_EQ(b.rated, 0b001U);
  // opts index bit 0 is CAP_OPT_NOAUDIT: slot 1 takes audited checks only.
  EXPECT_EQ(b.by_opts[0], 0b111U);
  EXPECT_EQ(b.by_opts[1], 0b101U);
  EXPECT_EQ(b.by_opts[2], 0b111U);
  EXPECT_EQ(b.by_opts[3], 0b101U);
  EXPECT_EQ(built->slots.at(1).options, 0b0101);
  EXPECT_EQ(b.slot[0].rate_window_ns, 60'000'000'000ULL);
  EXPECT_EQ(b.slot[0].rate_scope, CS_SCOPE_PROCESS);
  EXPECT_EQ(b.slot[1].action, CS_POLICY_NOPOST);
  EXPECT_EQ(b.slot[2].action, CS_POLICY_SIGKILL);
  EXPECT_EQ(b.slot[2].policy, 1U);
  EXPECT_EQ(b.scoped, 0b100U);
  EXPECT_EQ(b.bin_in, 0U);
  EXPECT_EQ(b.bin_not_in, 0b100U);
  EXPECT_EQ(b.ns_any, 0b011U);
  EXPECT_EQ(b.ns_not_host[CS_NS_PID], 0b001U);
  EXPECT_EQ(b.ns_host[CS_NS_USER], 0b010U);
  EXPECT_EQ(b.ns_host[CS_NS_PID], 0U);
  EXPECT_EQ(b.slot[0].ns_not_host, 1U << CS_NS_PID);
  for (size_t k = 0; k < CS_NS_COUNT; ++k) EXPECT_EQ(b.host_ns[k], kHost[k]);

  ASSERT_EQ(built->slots.size(), 3U);
  EXPECT_EQ(built->slots[1].policy, "creds");
  EXPECT_EQ(built->slots[1].selector, 1U);
  EXPECT_FALSE(built->slots[1].scoped);
  EXPECT_EQ(built->slots[2].policy, "no-admin");
  EXPECT_TRUE(built->slots[2].scoped);
  EXPECT_EQ(built->slots[2].action, policy::Action::Sigkill);
}

TEST(PolicyBank, BinariesAreListedInEverySpellingExecveMayGet) {
  std::string error;
  auto built = compile_bank(sample_set(), kHost, 1, merged, &error);
  ASSERT_TRUE(built) << error;
  EXPECT_EQ(built->binaries.at("/usr/bin/chown"), 0b100U);
  EXPECT_EQ(built->binaries.at("/bin/chown"), 0b100U) << "merged /usr: /bin is /usr/bin";
  EXPECT_EQ(built->binaries.at("/opt/tool"), 0b100U);
  EXPECT_EQ(built->binaries.size(), 3U);

  EXPECT_EQ(path_spellings("/usr/bin/chown", not_merged),
            std::vector<std::string>{"/usr/bin/chown"});
  EXPECT_EQ(path_spellings("/sbin/ip", merged),
            (std::vector<std::string>{"/sbin/ip", "/usr/sbin/ip"}));
  EXPECT_EQ(path_spellings("/usr/lib/x", merged), std::vector<std::string>{"/usr/lib/x"});
}

TEST(PolicyBank, MoreThanSixtyFourSelectorsAreRefusedNamingTheLimitAndThePolicy) {
  std::vector<policy::CompiledPolicy> set(2);
  set[0].name = "first";
  set[0].selectors.assign(60, selector(1, policy::Action::Post));
  set[1].name = "second";
  set[1].selectors.assign(5, selector(1, policy::Action::Post));
  std::string error;
  EXPECT_FALSE(compile_bank(set, kHost, 1, merged, &error));
  EXPECT_NE(error.find("65 selectors"), std::string::npos) << error;
  EXPECT_NE(error.find("at most 64"), std::string::npos) << error;
  EXPECT_NE(error.find("'second'"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << "one line";

  set[1].selectors.resize(4);
  error.clear();
  auto full = compile_bank(set, kHost, 1, merged, &error);
  ASSERT_TRUE(full) << error;
  EXPECT_EQ(full->bank.active, ~0ULL);
  EXPECT_EQ(full->bank.first, (1ULL << 0) | (1ULL << 60));
}

TEST(PolicyBank, RelativeOrOverlongBinaryPathsAreRefused) {
  auto set = sample_set();
  set[1].selectors[0].binaries = {"chown"};
  std::string error;
  EXPECT_FALSE(compile_bank(set, kHost, 1, merged, &error));
  EXPECT_NE(error.find("'chown' is not absolute"), std::string::npos) << error;
  set[1].selectors[0].binaries = {"/" + std::string(300, 'a')};
  EXPECT_FALSE(compile_bank(set, kHost, 1, merged, &error));
  EXPECT_NE(error.find("longer than 255 bytes"), std::string::npos) << error;
}

TEST(PolicyBank, ScopedSlotsFollowTheContainerAndCarryOverByName) {
  auto set = sample_set();
  ContainerInfo shop;
  shop.name = "web";
  shop.pod_namespace = "shop";
  ContainerInfo other = shop;
  other.pod_namespace = "default";
  EXPECT_EQ(scoped_slots_for(set, shop), 0b100U);
  EXPECT_EQ(scoped_slots_for(set, other), 0U);

  std::vector<PolicySlotInfo> before = {{"creds", 0, false, policy::Action::Post},
                                        {"no-admin", 0, true, policy::Action::Sigkill}};
  std::vector<PolicySlotInfo> after = {{"new", 0, true, policy::Action::Post},
                                       {"no-admin", 0, true, policy::Action::Sigkill},
                                       {"no-admin", 1, true, policy::Action::Sigkill}};
  EXPECT_EQ(carry_slots(0b10, before, after), 0b110U);
  EXPECT_EQ(carry_slots(0b01, before, after), 0U) << "creds is not in the new set";
}

// A policy record as the BPF side writes it: check, policy part, optional sample.
std::vector<uint8_t> policy_record(uint16_t flags, uint32_t nstack) {
  bool sampled = (flags & CS_F_HAS_STACK) != 0;
  std::vector<uint8_t> bytes(sampled ? sizeof(cs_policy_check_sample) : sizeof(cs_policy_check));
  cs_policy_check_sample r{};
  r.check.hdr = {CS_REC_CAP_CHECK, static_cast<uint16_t>(bytes.size())};
  r.check.flags = static_cast<uint16_t>(flags | CS_F_POLICY);
  r.check.cap = kCapSysAdmin;
  r.check.pid = 42;
  std::memcpy(r.check.comm, "nice", 5);
  r.policy = {0b1010, 0b1000, 0b0010, 9, 1};
  r.sample.nstack = nstack;
  for (uint32_t i = 0; i < nstack; ++i) r.sample.stack[i] = 0xffffffff81000000ULL + i;
  std::memcpy(bytes.data(), &r, bytes.size());
  return bytes;
}

TEST(PolicyDecode, ThePolicyPartComesBeforeTheSample) {
  auto bytes = policy_record(CS_F_POLICY_ONLY | CS_F_HAS_STACK, 3);
  DecodeResult r = decode_record(bytes);
  ASSERT_TRUE(r.record);
  const auto& c = std::get<CapCheck>(*r.record);
  EXPECT_EQ(c.cap, kCapSysAdmin);
  ASSERT_EQ(c.stack.size(), 3U) << "the sample is read after the policy part";
  EXPECT_EQ(c.stack[2], 0xffffffff81000002ULL);
  auto part = decode_policy_part(bytes);
  ASSERT_TRUE(part);
  EXPECT_EQ(part->post, 0b1010U);
  EXPECT_EQ(part->killed, 0b1000U);
  EXPECT_EQ(part->pending, 0b0010U);
  EXPECT_EQ(part->generation, 9U);
  EXPECT_EQ(part->bank, 1U);
  EXPECT_TRUE(part->policy_only);

  auto plain = policy_record(0, 0);
  EXPECT_FALSE(decode_policy_part(plain)->policy_only);
  EXPECT_TRUE(std::get<CapCheck>(*decode_record(plain).record).stack.empty());
}

TEST(PolicyDecode, TruncatedPolicyRecordsAreRejected) {
  auto bytes = policy_record(0, 0);
  bytes.resize(sizeof(cs_cap_check) + 8);
  reinterpret_cast<cs_record_hdr*>(bytes.data())->size = static_cast<uint16_t>(bytes.size());
  EXPECT_FALSE(decode_record(bytes).record);
  EXPECT_FALSE(decode_policy_part(bytes));
  auto sampled = policy_record(CS_F_HAS_STACK, 2);
  sampled.resize(sizeof(cs_policy_check) + 4);
  reinterpret_cast<cs_record_hdr*>(sampled.data())->size = static_cast<uint16_t>(sampled.size());
  EXPECT_EQ(decode_record(sampled).error, DecodeError::TooShort);
}

EnrichedCheck policy_event(bool sigkill, bool killed) {
  EnrichedCheck e;
  e.check.cap = kCapSysNice;
  e.check.ret = -1;
  e.check.comm = "nice";
  e.check.pid = 7;
  e.check.policy_slot = 2;
  e.check.policy_name = "no-\"admin\"";
  e.check.policy_sigkill = sigkill;
  e.check.policy_killed = killed;
  return e;
}

TEST(PolicyOutput, JsonNamesThePolicyAndTheSigkillAction) {
  output::Buffer b;
  output::append_json_event(b, policy_event(true, true), {});
  std::string line(b.data(), b.size());
  EXPECT_NE(line.find(R"("action":"KPROBE_ACTION_SIGKILL","policy_name":"no-\"admin\"")"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("policy_slot":2,"killed":true)"), std::string::npos) << line;

  b.clear();
  output::append_json_event(b, policy_event(false, false), {});
  line.assign(b.data(), b.size());
  EXPECT_NE(line.find(R"("action":"KPROBE_ACTION_POST","policy_name":"no-\"admin\"")"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("\"killed\""), std::string::npos) << line;

  b.clear();
  EnrichedCheck own;
  output::append_json_event(b, own, {});
  line.assign(b.data(), b.size());
  EXPECT_NE(line.find(R"("action":"KPROBE_ACTION_POST","policy_name":"capscope")"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("policy_slot"), std::string::npos) << line;
}

TEST(PolicyOutput, CompactEndsWithThePolicy) {
  output::Buffer b;
  output::append_compact_line(b, policy_event(true, true));
  std::string line(b.data(), b.size());
  EXPECT_TRUE(line.ends_with("  policy no-\"admin\" [killed]")) << line;
  b.clear();
  output::append_compact_line(b, policy_event(true, false));
  line.assign(b.data(), b.size());
  EXPECT_TRUE(line.ends_with("  policy no-\"admin\" [sigkill]")) << line;
  b.clear();
  output::append_compact_line(b, EnrichedCheck{});
  line.assign(b.data(), b.size());
  EXPECT_EQ(line.find("policy"), std::string::npos) << line;
}

}  // namespace
