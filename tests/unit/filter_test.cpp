#include <gtest/gtest.h>

#include "filter/check_filter.h"
#include "filter/filter_spec.h"

using namespace capscope;
using namespace capscope::filter;

namespace {

CapCheck check(int cap, int ret, bool audit, uint32_t tid = 10, uint64_t t = 0) {
  CapCheck c;
  c.cap = cap;
  c.ret = ret;
  c.audit = audit;
  c.audit_source = AuditSource::CallSite;
  c.pid = 10;
  c.tid = tid;
  c.mntns = 1;
  c.pidns_level = 0;
  c.ktime_ns = t;
  c.comm = "prog";
  return c;
}

TEST(Duration, Parses) {
  EXPECT_EQ(parse_duration_ns("1m").value(), 60'000'000'000ULL);
  EXPECT_EQ(parse_duration_ns("30s").value(), 30'000'000'000ULL);
  EXPECT_EQ(parse_duration_ns("500ms").value(), 500'000'000ULL);
  EXPECT_EQ(parse_duration_ns("1h30m").value(), 5'400'000'000'000ULL);
  EXPECT_FALSE(parse_duration_ns(""));
  EXPECT_FALSE(parse_duration_ns("0s"));
  EXPECT_FALSE(parse_duration_ns("5"));
  EXPECT_FALSE(parse_duration_ns("5parsecs"));
  EXPECT_FALSE(parse_duration_ns("-1m"));
}

TEST(CheckFilter, UniqueDoesNotHideALaterDenialOrAuditedUse) {
  FilterSpec s;
  s.unique = true;
  CheckFilter f(s);
  auto probe = check(21, 0, false);
  auto granted = check(21, 0, true);
  auto denied = check(21, -1, true);
  EXPECT_TRUE(f.keep(probe));    // first no-audit probe of SYS_ADMIN
  EXPECT_FALSE(f.keep(probe));   // the same again: suppressed
  EXPECT_TRUE(f.keep(granted));  // an audited use after the probe is news
  EXPECT_FALSE(f.keep(granted));
  EXPECT_FALSE(f.keep(probe));  // after an audited use, probes are not news
  EXPECT_TRUE(f.keep(denied));  // a later denial of a granted capability is news
  EXPECT_FALSE(f.keep(denied));
  EXPECT_EQ(f.stats().unique_suppressed, 4u);
  auto other_container = check(21, 0, true);
  other_container.mntns = 2;
  EXPECT_TRUE(f.keep(other_container));
}

// The kernel hands a freed mount namespace's inode to the next namespace: a new
// container with an old inode number is a new subject, told apart by the id.
TEST(CheckFilter, UniqueTellsANamespaceThatReusesAnInodeFromTheOldOne) {
  FilterSpec s;
  s.unique = true;
  CheckFilter f(s);
  auto first = check(0, 0, true);
  first.mntns_id = 7;
  auto again = first;
  auto next = first;
  next.mntns_id = 8;
  EXPECT_TRUE(f.keep(first));
  EXPECT_FALSE(f.keep(again));
  EXPECT_TRUE(f.keep(next));
  EXPECT_FALSE(f.keep(next));
}

TEST(CheckFilter, RateLimitPerThreadCountsSuppressed) {
  FilterSpec s;
  s.rate_window_ns = 1000;
  CheckFilter f(s);
  auto a = check(7, 0, true, 1, 0);
  EXPECT_TRUE(f.keep(a));
  for (uint64_t t = 100; t < 1000; t += 100) {
    auto b = check(7, 0, true, 1, t);
    EXPECT_FALSE(f.keep(b));
  }
  auto other_thread = check(7, 0, true, 2, 500);
  EXPECT_TRUE(f.keep(other_thread));
  auto later = check(7, 0, true, 1, 1500);
  EXPECT_TRUE(f.keep(later));
  EXPECT_EQ(later.suppressed, 9u);
  auto denied = check(7, -1, true, 1, 1600);  // the verdict is part of the key
  EXPECT_TRUE(f.keep(denied));
}

TEST(CheckFilter, RateLimitGlobalScope) {
  FilterSpec s;
  s.rate_window_ns = 1000;
  s.rate_scope = RateScope::Global;
  CheckFilter f(s);
  auto a = check(7, 0, true, 1, 0);
  auto b = check(7, 0, true, 2, 10);
  EXPECT_TRUE(f.keep(a));
  EXPECT_FALSE(f.keep(b));
}

TEST(CheckFilter, StaticFilters) {
  FilterSpec s;
  s.cap_mask = 1ULL << 34;
  s.denied_only = true;
  s.comms = {"dmesg"};
  CheckFilter f(s);
  auto c = check(34, -1, true);
  c.comm = "dmesg";
  EXPECT_TRUE(f.keep(c));
  auto granted = c;
  granted.ret = 0;
  EXPECT_FALSE(f.keep(granted));
  auto other_cap = c;
  other_cap.cap = 21;
  EXPECT_FALSE(f.keep(other_cap));
  auto other_comm = c;
  other_comm.comm = "bash";
  EXPECT_FALSE(f.keep(other_comm));
  auto unknown_cap = c;
  unknown_cap.cap = 70;
  EXPECT_FALSE(f.keep(unknown_cap));
  EXPECT_EQ(f.stats().filtered, 4u);
}

TEST(CheckFilter, HostAndContainersAndAuditOnly) {
  FilterSpec host;
  host.host_only = true;
  CheckFilter fh(host);
  auto in_container = check(21, 0, true);
  in_container.pidns_level = 1;
  EXPECT_FALSE(fh.keep(in_container));
  auto on_host = check(21, 0, true);
  EXPECT_TRUE(fh.keep(on_host));
  FilterSpec ctr;
  ctr.containers_only = true;
  CheckFilter fc(ctr);
  EXPECT_TRUE(fc.keep(in_container));
  FilterSpec audit;
  audit.audit_only = true;
  CheckFilter fa(audit);
  auto probe = check(21, 0, false);
  EXPECT_FALSE(fa.keep(probe));
  auto unknown = probe;
  unknown.audit_source = AuditSource::Unknown;  // undecided: kept, never hide a need
  EXPECT_TRUE(fa.keep(unknown));
}

TEST(CheckFilter, LongCommsMatchTheKernelsFifteenBytes) {
  FilterSpec s;
  s.comms = {"a-very-long-command-name"};
  CheckFilter f(s);
  auto c = check(21, 0, true);
  c.comm = "a-very-long-com";
  EXPECT_TRUE(f.keep(c));
}

}  // namespace

namespace {

// Live checks: the kernel filtered; what it could not decide (samples) is decided here.
TEST(SampledCheckFilter, AuditOnlyDropsSampledProbesOnly) {
  FilterSpec s;
  s.audit_only = true;
  SampledCheckFilter f(s);
  auto probe = check(21, 0, false);
  EXPECT_FALSE(f.keep(probe, true)) << "a sample classified as a probe";
  auto need = check(21, 0, true);
  EXPECT_TRUE(f.keep(need, true));
  EXPECT_EQ(f.stats().filtered, 1u);
}

// The kernel does not mark a sample's --unique key: the first kernel-decided check of
// the same key reaches user space and must be suppressed there.
TEST(SampledCheckFilter, UniqueCoversSamplesAndKernelDecidedChecks) {
  FilterSpec s;
  s.unique = true;
  SampledCheckFilter f(s);
  auto sampled = check(7, 0, true);
  EXPECT_TRUE(f.keep(sampled, true));
  auto decided = check(7, 0, true);
  EXPECT_FALSE(f.keep(decided, false));
  auto denied = check(7, -1, true);
  EXPECT_TRUE(f.keep(denied, false)) << "another verdict is another key";
  EXPECT_EQ(f.stats().unique_suppressed, 1u);
}

// Suppression counts add up: what the kernel counted travels with the check.
TEST(SampledCheckFilter, RateLimitAddsToTheKernelsCount) {
  FilterSpec s;
  s.rate_window_ns = 1'000'000'000;
  SampledCheckFilter f(s);
  auto first = check(7, 0, true, 10, 0);
  EXPECT_TRUE(f.keep(first, true));
  auto again = check(7, 0, true, 10, 100);
  EXPECT_FALSE(f.keep(again, false));
  auto later = check(7, 0, true, 10, 2'000'000'000);
  later.suppressed = 5;  // the kernel's count
  EXPECT_TRUE(f.keep(later, false));
  EXPECT_EQ(later.suppressed, 6u);
  EXPECT_EQ(f.stats().rate_suppressed, 1u);
}

}  // namespace
