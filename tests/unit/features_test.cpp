// Backend selection and the reasons given when a backend cannot run, from kernel
// features set by hand (the runtime tests check the real kernel).
#include <gtest/gtest.h>

#include "capture/features.h"

using namespace capscope::capture;

namespace {

KernelFeatures modern() {
  KernelFeatures f;
  f.release = "6.18.0";
  f.btf = true;
  f.cap_capable_tracepoint = true;
  f.cap_capable_in_btf = true;
  f.cap_capable_in_kallsyms = true;
  f.kprobe_pmu = true;
  f.ftrace_known = true;
  f.ftrace_functions = true;
  f.ringbuf = true;
  return f;
}

TEST(Features, AutoPrefersTheTracepoint) {
  EXPECT_EQ(choose_backend(modern(), nullptr), Backend::Tracepoint);
}

TEST(Features, OlderKernelFallsBackToFentryThenKprobe) {
  KernelFeatures f = modern();
  f.release = "6.1.0-13-cloud-amd64";
  f.cap_capable_tracepoint = false;
  EXPECT_EQ(choose_backend(f, nullptr), Backend::Fentry);
  std::string why = backend_unavailable_reason(Backend::Tracepoint, f);
  EXPECT_NE(why.find("6.1.0-13-cloud-amd64"), std::string::npos) << why;
  EXPECT_NE(why.find("6.14"), std::string::npos) << why;
  f.ftrace_functions = false;
  EXPECT_EQ(choose_backend(f, nullptr), Backend::Kprobe);
  EXPECT_NE(backend_unavailable_reason(Backend::Fentry, f).find("ftrace"), std::string::npos);
}

// This project's machines: tracepoint yes, kprobes and ftrace no.
TEST(Features, NoKprobesNoFtraceSaysWhyForEach) {
  KernelFeatures f = modern();
  f.kprobe_pmu = false;
  f.ftrace_functions = false;
  EXPECT_EQ(choose_backend(f, nullptr), Backend::Tracepoint);
  EXPECT_NE(backend_unavailable_reason(Backend::Kprobe, f).find("CONFIG_KPROBES"),
            std::string::npos);
  f.cap_capable_tracepoint = false;
  std::string why;
  EXPECT_FALSE(choose_backend(f, &why));
  for (const char* name : {"tracepoint:", "fentry:", "kprobe:"})
    EXPECT_NE(why.find(name), std::string::npos) << why;
}

TEST(Features, NoBtfIsTheFirstThingSaid) {
  KernelFeatures f = modern();
  f.btf = false;
  for (Backend b : {Backend::Tracepoint, Backend::Fentry, Backend::Kprobe})
    EXPECT_NE(backend_unavailable_reason(b, f).find("CONFIG_DEBUG_INFO_BTF"), std::string::npos);
}

TEST(Features, KprobeNeedsCapCapableInKallsyms) {
  KernelFeatures f = modern();
  f.cap_capable_in_kallsyms = false;
  EXPECT_NE(backend_unavailable_reason(Backend::Kprobe, f).find("kallsyms"), std::string::npos);
}

TEST(Features, OptsOrAuditFromTheParameterName) {
  EXPECT_EQ(opts_kind_of_param("opts"), OptsKind::Opts);
  EXPECT_EQ(opts_kind_of_param("audit"), OptsKind::AuditInt);
  EXPECT_EQ(opts_kind_of_param("flags"), OptsKind::Unknown);
}

TEST(Features, ParseBackend) {
  EXPECT_EQ(parse_backend("tracepoint"), Backend::Tracepoint);
  EXPECT_EQ(parse_backend("fexit"), Backend::Fentry);
  EXPECT_EQ(parse_backend("auto"), Backend::Auto);
  EXPECT_FALSE(parse_backend("uprobe"));
}

TEST(Features, DescribeListsEveryProbe) {
  auto probes = describe(modern());
  EXPECT_GE(probes.size(), 12u);
  for (const auto& p : probes) EXPECT_FALSE(p.name.empty());
}

}  // namespace
