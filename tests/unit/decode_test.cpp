#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "capscope.h"
#include "capture/decode.h"
#include "capture/record_json.h"

using namespace capscope;
using namespace capscope::capture;

namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& v) {
  std::vector<uint8_t> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}

cs_cap_check sample_check() {
  cs_cap_check c{};
  c.hdr = {CS_REC_CAP_CHECK, sizeof(cs_cap_check)};
  c.ktime_ns = 123;
  c.pid = 42;
  c.tid = 43;
  c.uid = 65534;
  c.cap = 34;
  c.ret = -1;
  c.syscall_nr = 103;
  c.flags = CS_F_AUDIT | CS_F_IN_SYSCALL;
  c.audit_source = CS_AUDIT_SRC_CALLSITE;
  c.target_ns = {0, 4026531837u, 0, 0};
  std::memcpy(c.comm, "dmesg", 6);
  return c;
}

TEST(Decode, CapCheck) {
  auto r = decode_record(bytes_of(sample_check()));
  ASSERT_TRUE(r.record.has_value());
  const auto& c = std::get<CapCheck>(*r.record);
  EXPECT_EQ(c.pid, 42u);
  EXPECT_EQ(c.cap, 34);
  EXPECT_FALSE(c.granted());
  EXPECT_EQ(c.syscall_nr, 103);
  EXPECT_TRUE(c.audit);
  EXPECT_EQ(c.audit_source, AuditSource::CallSite);
  EXPECT_EQ(c.comm, "dmesg");
  EXPECT_EQ(c.target_ns.inum, 4026531837u);
}

// Every audit source the kernel side writes reads back, and its name round-trips.
TEST(Decode, AuditSources) {
  const std::pair<uint8_t, AuditSource> sources[] = {
      {CS_AUDIT_SRC_UNKNOWN, AuditSource::Unknown},
      {CS_AUDIT_SRC_OPTS, AuditSource::Opts},
      {CS_AUDIT_SRC_AUDIT_ARG, AuditSource::AuditArg},
      {CS_AUDIT_SRC_CALLSITE, AuditSource::CallSite},
      {CS_AUDIT_SRC_CALLER, AuditSource::Caller}};
  for (auto [raw_source, expected] : sources) {
    auto raw = sample_check();
    raw.audit_source = raw_source;
    auto c = std::get<CapCheck>(*decode_record(bytes_of(raw)).record);
    EXPECT_EQ(c.audit_source, expected) << int(raw_source);
    EXPECT_EQ(audit_source_from_name(audit_source_name(expected)), expected) << int(raw_source);
  }
  EXPECT_EQ(audit_source_name(AuditSource::Caller), "caller");
}

TEST(Decode, SyscallOnlyWhenInSyscall) {
  auto raw = sample_check();
  raw.flags = CS_F_KTHREAD;
  auto c = std::get<CapCheck>(*decode_record(bytes_of(raw)).record);
  EXPECT_EQ(c.syscall_nr, -1);
  EXPECT_TRUE(c.kthread);
  EXPECT_FALSE(c.audit);
}

TEST(Decode, CommWithoutTerminatorIsBounded) {
  auto raw = sample_check();
  std::memset(raw.comm, 'a', sizeof(raw.comm));
  auto c = std::get<CapCheck>(*decode_record(bytes_of(raw)).record);
  EXPECT_EQ(c.comm.size(), 16u);
}

TEST(Decode, RejectsShortAndUnknownRecords) {
  auto b = bytes_of(sample_check());
  EXPECT_EQ(decode_record(std::span(b.data(), 2)).error, DecodeError::TooShort);
  EXPECT_EQ(decode_record(std::span(b.data(), 100)).error, DecodeError::BadLength);
  auto raw = sample_check();
  raw.hdr.type = 99;
  EXPECT_EQ(decode_record(bytes_of(raw)).error, DecodeError::UnknownType);
  // A sample flag without the sample's bytes must not be read past.
  raw = sample_check();
  raw.flags |= CS_F_HAS_STACK;
  EXPECT_EQ(decode_record(bytes_of(raw)).error, DecodeError::TooShort);
}

TEST(Decode, SampleLengthsAreChecked) {
  cs_cap_check_sample s{};
  s.check = sample_check();
  s.check.hdr.size = sizeof(s);
  s.check.flags |= CS_F_HAS_STACK;
  s.sample.nstack = 3;
  s.sample.raw_stack_len = 64;
  s.sample.stack[0] = 1;
  s.sample.stack[2] = 3;
  auto c = std::get<CapCheck>(*decode_record(bytes_of(s)).record);
  ASSERT_EQ(c.stack.size(), 3u);
  EXPECT_EQ(c.stack[2], 3u);
  EXPECT_EQ(c.raw_stack.size(), 64u);
  s.sample.nstack = CS_MAX_STACK + 1;
  EXPECT_EQ(decode_record(bytes_of(s)).error, DecodeError::BadLength);
}

TEST(Decode, ExecArgs) {
  cs_exec e{};
  e.hdr = {CS_REC_EXEC, sizeof(cs_exec)};
  e.pid = 7;
  const char args[] = "nginx\0-g\0daemon off;\0";
  std::memcpy(e.args, args, sizeof(args) - 1);
  e.args_len = sizeof(args) - 1;
  std::memcpy(e.filename, "/usr/sbin/nginx", 15);
  e.ns_pid = 1;
  auto x = std::get<ExecRecord>(*decode_record(bytes_of(e)).record);
  EXPECT_EQ(x.ns_pid, 1u);
  ASSERT_EQ(x.args.size(), 3u);
  EXPECT_EQ(x.args[2], "daemon off;");
  EXPECT_EQ(x.filename, "/usr/sbin/nginx");
  e.args_len = CS_ARGS_LEN + 1;
  EXPECT_EQ(decode_record(bytes_of(e)).error, DecodeError::BadLength);
}

TEST(Decode, ForkCarriesThePidInItsNamespace) {
  cs_fork f{};
  f.hdr = {CS_REC_FORK, sizeof(cs_fork)};
  f.pid = 4242;
  f.ppid = 4200;
  f.exec_seq = 3;
  f.ns_pid = 17;
  std::memcpy(f.comm, "sh", 2);
  auto x = std::get<ForkRecord>(*decode_record(bytes_of(f)).record);
  EXPECT_EQ(x.pid, 4242u);
  EXPECT_EQ(x.ns_pid, 17u);
  EXPECT_EQ(x.exec_seq, 3u);
  std::string err;
  auto back = record_from_json(record_to_json(Record{x}), &err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(std::get<ForkRecord>(*back).ns_pid, 17u);
  EXPECT_EQ(std::get<ForkRecord>(*back).exec_seq, 3u);
  // Saved before these fields existed: unknown, not an error.
  auto old = nlohmann::json::parse(
      R"({"v":2,"type":"fork","ktime_ns":1,"start_ns":1,"pid":2,"ppid":1,"comm":"sh"})");
  auto legacy = record_from_json(old, &err);
  ASSERT_TRUE(legacy) << err;
  EXPECT_EQ(std::get<ForkRecord>(*legacy).ns_pid, 0u);
}

TEST(Decode, SplitArgsKeepsEmptyMiddleArguments) {
  const char a[] = "echo\0\0x";
  auto v = split_args(std::span<const char>(a, sizeof(a) - 1));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1], "");
  EXPECT_EQ(v[2], "x");
}

TEST(RecordJson, RoundTrip) {
  auto c = std::get<CapCheck>(*decode_record(bytes_of(sample_check())).record);
  auto j = record_to_json(Record{c});
  std::string err;
  auto back = record_from_json(j, &err);
  ASSERT_TRUE(back.has_value()) << err;
  const auto& d = std::get<CapCheck>(*back);
  EXPECT_EQ(d.cap, c.cap);
  EXPECT_EQ(d.ret, c.ret);
  EXPECT_EQ(d.comm, c.comm);
  EXPECT_EQ(d.audit_source, c.audit_source);
  EXPECT_EQ(d.target_ns.inum, c.target_ns.inum);
  ExecRecord e;
  e.pid = 5;
  e.args = {"a", "b c"};
  e.ns[3] = 99;
  e.ns_pid = 7;
  auto eb = record_from_json(record_to_json(Record{e}), &err);
  ASSERT_TRUE(eb.has_value()) << err;
  EXPECT_EQ(std::get<ExecRecord>(*eb).ns_pid, 7u);
  EXPECT_EQ(std::get<ExecRecord>(*eb).args[1], "b c");
  EXPECT_EQ(std::get<ExecRecord>(*eb).ns[3], 99u);
}

TEST(RecordJson, RejectsBadLines) {
  std::string err;
  EXPECT_FALSE(record_from_json(nlohmann::json{{"v", 2}, {"type", "nope"}}, &err));
  EXPECT_NE(err.find("nope"), std::string::npos);
  EXPECT_FALSE(record_from_json(nlohmann::json{{"v", 1}, {"type", "exit"}}, &err));
  EXPECT_NE(err.find("version 1"), std::string::npos) << err;
  EXPECT_FALSE(record_from_json(nlohmann::json{{"v", 2}, {"type", "exit"}}, &err));
  EXPECT_NE(err.find("malformed"), std::string::npos);
}

TEST(Decode, CgroupRecord) {
  cs_cgroup raw{};
  raw.hdr = {CS_REC_CGROUP, sizeof(cs_cgroup)};
  raw.id = 310;
  const char path[] = "/libpod_parent/libpod-abc";
  std::memcpy(raw.path, path, sizeof(path) - 1);
  raw.path_len = sizeof(path) - 1;
  auto r = decode_record(bytes_of(raw));
  ASSERT_TRUE(r.record);
  const auto& c = std::get<CgroupRecord>(*r.record);
  EXPECT_EQ(c.id, 310u);
  EXPECT_EQ(c.path, path);
  raw.path_len = CS_PATH_LEN + 1;
  EXPECT_EQ(decode_record(bytes_of(raw)).error, DecodeError::BadLength);
  std::string err;
  auto back = record_from_json(record_to_json(Record{c}), &err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(std::get<CgroupRecord>(*back).path, path);
  EXPECT_EQ(std::get<CgroupRecord>(*back).id, 310u);
}

}  // namespace
