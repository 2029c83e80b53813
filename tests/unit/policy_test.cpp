// The policy model: Tetragon TracingPolicy YAML -> TracingPolicy -> CompiledPolicy,
// the policy folder, and profiles turned into policies.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "policy/compiled.h"
#include "policy/from_profile.h"
#include "policy/policy_dir.h"
#include "policy/tracing_policy.h"
#include "tables/capabilities.h"

namespace capscope::policy {
namespace {

namespace fs = std::filesystem;

const std::string kExamples = std::string(CAPSCOPE_FIXTURES) + "/../../examples/policies";
const std::string kFixtures = std::string(CAPSCOPE_FIXTURES) + "/policies";

constexpr uint64_t kMinute = 60'000'000'000ULL;

// A kprobe policy whose selectors start on line 18.
std::string with_selectors(const std::string& selectors) {
  return R"(apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: t
spec:
  kprobes:
  - call: cap_capable
    return: true
    args:
    - index: 1
      type: user_namespace
    - index: 2
      type: capability
    returnArg:
      index: 0
      type: int
    selectors:
)" + selectors;
}

CompiledPolicy compile_text(const std::string& text) {
  auto policies = parse_policies(text, "t.yaml");
  EXPECT_EQ(policies.size(), 1U);
  return compile(policies.at(0));
}

// The one line a bad policy gives, or "" if it loads.
std::string error_of(const std::string& text) {
  try {
    for (const auto& p : parse_policies(text, "t.yaml")) compile(p);
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "";
}

uint64_t bit(int cap) { return 1ULL << cap; }

// ---- the seed's policy ----

TEST(Policy, SeedPolicyCompilesToOneNonHostPidSelectorRateLimitedPost) {
  auto policies = load_policy_file(kExamples + "/creds-capability-usage.yaml");
  ASSERT_EQ(policies.size(), 1U);
  const TracingPolicy& p = policies[0];
  EXPECT_EQ(p.name, "creds-capability-checks");
  EXPECT_EQ(p.kind, PolicyKind::TracingPolicy);
  ASSERT_EQ(p.hooks.size(), 1U);
  EXPECT_TRUE(p.hooks[0].return_value);
  CompiledPolicy c = compile(p);
  EXPECT_FALSE(c.scoped());
  EXPECT_EQ(c.source, kExamples + "/creds-capability-usage.yaml");
  ASSERT_EQ(c.selectors.size(), 1U);
  const CompiledSelector& s = c.selectors[0];
  EXPECT_EQ(s.cap_mask, ~0ULL);
  EXPECT_EQ(s.verdicts, kVerdictGranted | kVerdictDenied);
  ASSERT_EQ(s.namespaces.size(), 1U);
  EXPECT_EQ(s.namespaces[0].kind, NsKind::Pid);
  EXPECT_FALSE(s.namespaces[0].host);
  EXPECT_EQ(s.binary_op, BinaryOp::Any);
  EXPECT_EQ(s.action, Action::Post);
  EXPECT_EQ(s.rate_limit_ns, kMinute);
  EXPECT_EQ(s.rate_scope, filter::RateScope::Thread);
  EXPECT_EQ(describe(s),
            "all capabilities; granted+denied; Pid NotIn host_ns -> Post rateLimit 1m/thread");
}

TEST(Policy, OtherExamplesLoad) {
  auto kill = load_policy_file(kExamples + "/sys-admin-sigkill.yaml");
  CompiledPolicy k = compile(kill.at(0));
  EXPECT_EQ(k.k8s_namespace, "shop");
  EXPECT_TRUE(k.scoped());
  ASSERT_EQ(k.selectors.size(), 1U);
  EXPECT_EQ(k.selectors[0].cap_mask, bit(21));  // CAP_SYS_ADMIN
  EXPECT_EQ(k.selectors[0].action, Action::Sigkill);

  auto audit = load_policy_file(kExamples + "/denied-audit.yaml");
  CompiledPolicy a = compile(audit.at(0));
  ASSERT_EQ(a.selectors.size(), 1U);
  EXPECT_EQ(a.selectors[0].verdicts, kVerdictDenied);
  EXPECT_EQ(a.selectors[0].binary_op, BinaryOp::NotIn);
  EXPECT_EQ(a.selectors[0].binaries,
            (std::vector<std::string>{"/usr/sbin/nginx", "/usr/bin/node"}));
  EXPECT_EQ(a.selectors[0].rate_scope, filter::RateScope::Process);
  EXPECT_EQ(describe_scope(a), "pods tier=frontend");

  auto audited = load_policy_file(kExamples + "/audited-only.yaml");
  CompiledPolicy o = compile(audited.at(0));
  ASSERT_EQ(o.selectors.size(), 2U);
  EXPECT_EQ(describe(o.selectors[0]),
            "all capabilities; granted+denied; no-audit probes only -> NoPost");
  EXPECT_EQ(describe(o.selectors[1]),
            "all capabilities; granted+denied; Pid NotIn host_ns -> Post rateLimit 1m/process");
}

// ---- capabilities ----

TEST(Policy, CapabilityNamesWithAndWithoutCapAndNumbers) {
  auto c = compile_text(with_selectors(R"(    - matchArgs:
      - index: 2
        operator: Equal
        values: ["CAP_SYS_ADMIN", "NET_ADMIN", "cap_chown", "34", 12]
)"));
  EXPECT_EQ(c.selectors.at(0).cap_mask, bit(21) | bit(12) | bit(0) | bit(34));
}

TEST(Policy, NotEqualExcludesTheCapabilities) {
  auto c = compile_text(with_selectors(R"(    - matchArgs:
      - index: 2
        operator: NotEqual
        values: [SYS_ADMIN, 0]
)"));
  EXPECT_EQ(c.selectors.at(0).cap_mask, ~(bit(21) | bit(0)));
  EXPECT_EQ(describe(c.selectors[0]), "all but CHOWN,SYS_ADMIN; granted+denied -> Post");
}

TEST(Policy, SeveralMatchArgsAreAnded) {
  auto c = compile_text(with_selectors(R"(    - matchArgs:
      - index: 2
        operator: Equal
        values: [SYS_ADMIN, NET_ADMIN, CHOWN]
      - index: 2
        operator: NotEqual
        values: [NET_ADMIN]
)"));
  EXPECT_EQ(c.selectors.at(0).cap_mask, bit(21) | bit(0));
}

TEST(Policy, CapabilityDeclaredAsIntAlsoFilters) {
  std::string text = with_selectors(R"(    - matchArgs:
      - index: 2
        operator: Equal
        values: [SYS_ADMIN]
)");
  text.replace(text.find("type: capability"), 16, "type: int");
  EXPECT_EQ(compile_text(text).selectors.at(0).cap_mask, bit(21));
}

// ---- opts (cap_capable's fourth argument) ----

// with_selectors() with opts declared: `- index: 3, type: int`.
std::string with_options(const std::string& selectors) {
  std::string text = with_selectors(selectors);
  text.insert(text.find("    returnArg:"), "    - index: 3\n      type: int\n");
  return text;
}

struct OptionsCase {
  const char* filter;  // matchArgs entries on index 3
  uint8_t options;     // bit i: opts options_value(i) = 0, 2, 4, 6 pass
  const char* described;
};

TEST(Policy, MatchArgsOnOptsSelectAuditedChecksOrProbes) {
  EXPECT_EQ(options_value(0), 0U);
  EXPECT_EQ(options_value(1), 2U);
  EXPECT_EQ(options_value(2), 4U);
  EXPECT_EQ(options_value(3), 6U);
  const OptionsCase cases[] = {
      {"operator: Mask\n        values: [CAP_OPT_NOAUDIT]", 0b1010, "no-audit probes only"},
      {"operator: Mask\n        values: [\"2\"]", 0b1010, "no-audit probes only"},
      {"operator: NotEqual\n        values: [2, 6]", 0b0101, "audited only"},
      {"operator: Equal\n        values: [CAP_OPT_NONE, CAP_OPT_INSETID]", 0b0101, "audited only"},
      {"operator: Equal\n        values: [0]", 0b0001, "opts in {0}"},
      {"operator: Mask\n        values: [0x4]", 0b1100, "opts in {4,6}"},
      {"operator: Mask\n        values: [6]", 0b1110, "opts in {2,4,6}"},
  };
  for (const auto& c : cases) {
    auto compiled = compile_text(with_options(
        std::string("    - matchArgs:\n      - index: 3\n        ") + c.filter + "\n"));
    const CompiledSelector& sel = compiled.selectors.at(0);
    EXPECT_EQ(sel.options, c.options) << c.filter;
    EXPECT_EQ(sel.cap_mask, ~0ULL) << c.filter;
    EXPECT_EQ(describe(sel),
              std::string("all capabilities; granted+denied; ") + c.described + " -> Post")
        << c.filter;
  }
  // With the capability, ANDed; a selector without opts takes them all.
  auto two = compile_text(with_options(R"(    - matchArgs:
      - index: 2
        operator: Equal
        values: [SYS_ADMIN]
      - index: 3
        operator: Mask
        values: [CAP_OPT_NOAUDIT]
      matchActions:
      - action: NoPost
    - matchActions:
      - action: Post
)"));
  ASSERT_EQ(two.selectors.size(), 2U);
  EXPECT_EQ(two.selectors[0].cap_mask, bit(21));
  EXPECT_EQ(two.selectors[0].options, 0b1010);
  EXPECT_EQ(two.selectors[1].options, kAllOptions);
}

TEST(Policy, BadOptsFiltersNameTheirField) {
  const std::string sel = "spec.kprobes[0].selectors[0].matchArgs[0]";
  auto bad = [](const std::string& filter) {
    return with_options("    - matchArgs:\n      - index: 3\n        " + filter + "\n");
  };
  EXPECT_EQ(error_of(bad("operator: Mask\n        values: [3]")),
            "t.yaml:23: " + sel +
                ".values[0]: \"3\" is not a value of cap_capable's opts (CAP_OPT_NONE 0, "
                "CAP_OPT_NOAUDIT 2, CAP_OPT_INSETID 4, or a sum of the last two)");
  EXPECT_EQ(error_of(bad("operator: Prefix\n        values: [2]")),
            "t.yaml:22: " + sel + ".operator: \"Prefix\" is not one of Equal, NotEqual, Mask");
  EXPECT_EQ(error_of(bad("operator: Equal\n        values: [2]\n      - index: 3\n        "
                         "operator: NotEqual\n        values: [2]")),
            "t.yaml:20: spec.kprobes[0].selectors[0]: matchArgs: no value of opts can pass "
            "these filters together");
  // Not declared: the filter says how to declare it.
  EXPECT_EQ(error_of(with_selectors("    - matchArgs:\n      - index: 3\n        operator: "
                                    "Mask\n        values: [2]\n")),
            "t.yaml:19: " + sel +
                ".index: 3 is cap_capable's opts: declare it in args (`- index: 3, type: int`) "
                "to filter on it");
}

// ---- verdicts ----

struct VerdictCase {
  const char* op;
  const char* values;
  uint8_t verdicts;
};

TEST(Policy, ReturnFiltersMapToVerdictBits) {
  const VerdictCase cases[] = {
      {"Equal", "[\"0\"]", kVerdictGranted},
      {"NotEqual", "[\"0\"]", kVerdictDenied},
      {"Equal", "[\"-1\"]", kVerdictDenied},
      {"Equal", "[-EPERM]", kVerdictDenied},
      {"Equal", "[0, -1]", kVerdictGranted | kVerdictDenied},
      {"NotEqual", "[\"-13\"]", kVerdictGranted | kVerdictDenied},
      {"GT", "[\"-1\"]", kVerdictGranted},
      {"LT", "[\"0\"]", kVerdictDenied},
      {"GreaterThan", "[\"-5\"]", kVerdictGranted | kVerdictDenied},
      {"LessThan", "[\"1\"]", kVerdictGranted | kVerdictDenied},
  };
  for (const auto& c : cases) {
    auto compiled = compile_text(with_selectors(std::string(R"(    - matchReturnArgs:
      - index: 0
        operator: )") + c.op +
                                                "\n        values: " + c.values + "\n"));
    EXPECT_EQ(compiled.selectors.at(0).verdicts, c.verdicts) << c.op << " " << c.values;
  }
}

// ---- selectors, actions ----

TEST(Policy, NoSelectorMeansEveryCheckPosted) {
  std::string text = with_selectors("");
  text.erase(text.find("    selectors:\n"));
  auto c = compile_text(text);
  ASSERT_EQ(c.selectors.size(), 1U);
  EXPECT_EQ(c.selectors[0].cap_mask, ~0ULL);
  EXPECT_EQ(c.selectors[0].verdicts, 3);
  EXPECT_EQ(c.selectors[0].action, Action::Post);
}

TEST(Policy, SelectorsKeepTheirOrderAcrossHooks) {
  auto c = compile_text(R"(apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: two-hooks}
spec:
  kprobes:
  - call: cap_capable
    args: [{index: 2, type: capability}]
    selectors:
    - matchArgs: [{index: 2, operator: Equal, values: [CHOWN]}]
      matchActions: [{action: sigkill}]
    - matchBinaries: [{operator: In, values: [/bin/a, /bin/b, /bin/a]}]
      matchActions: [{action: NoPost}]
  tracepoints:
  - subsystem: capability
    event: cap_capable
    args: [{index: 3, type: capability}]
    selectors:
    - matchArgs: [{index: 3, operator: Equal, values: [SETUID]}]
      matchNamespaces:
      - {namespace: Mnt, operator: In, values: [host_ns]}
      - {namespace: User, operator: NotIn, values: [host_ns, host_ns]}
      matchActions: [{action: Post, rateLimit: 30, rateLimitScope: global}]
)");
  ASSERT_EQ(c.selectors.size(), 3U);
  EXPECT_EQ(c.selectors[0].cap_mask, bit(0));
  EXPECT_EQ(c.selectors[0].action, Action::Sigkill);
  EXPECT_EQ(c.selectors[1].binary_op, BinaryOp::In);
  EXPECT_EQ(c.selectors[1].binaries, (std::vector<std::string>{"/bin/a", "/bin/b"}));
  EXPECT_EQ(c.selectors[1].action, Action::NoPost);
  EXPECT_EQ(c.selectors[2].cap_mask, bit(7));
  EXPECT_EQ(c.selectors[2].namespaces,
            (std::vector<NamespaceMatch>{{NsKind::Mnt, true}, {NsKind::User, false}}));
  EXPECT_EQ(c.selectors[2].rate_limit_ns, 30'000'000'000ULL);
  EXPECT_EQ(c.selectors[2].rate_scope, filter::RateScope::Global);
}

// ---- several documents ----

TEST(Policy, SeveralDocumentsAreSeveralPolicies) {
  std::string one = with_selectors("    - matchActions: [{action: Post}]\n");
  std::string two = one;
  two.replace(two.find("name: t"), 7, "name: u");
  auto policies = parse_policies("---\n" + one + "---\n" + two + "---\n", "t.yaml");
  ASSERT_EQ(policies.size(), 2U);
  EXPECT_EQ(policies[0].name, "t");
  EXPECT_EQ(policies[0].line, 2);
  EXPECT_EQ(policies[1].name, "u");
  EXPECT_EQ(policies[1].line, 21);
  EXPECT_EQ(error_of(one + "---\n" + one),
            "t.yaml:20: metadata.name: \"t\" is also the name of the policy on line 1");
}

// ---- pods and containers ----

TEST(Policy, PodSelectorNamespaceAndContainerSelectorMatch) {
  auto c = compile_text(R"(apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: scoped
  namespace: shop
spec:
  podSelector:
    matchLabels:
      app: web
    matchExpressions:
    - {key: tier, operator: In, values: [front, edge]}
    - {key: canary, operator: DoesNotExist}
  containerSelector:
    matchExpressions:
    - {key: name, operator: NotIn, values: [sidecar]}
  kprobes:
  - call: cap_capable
)");
  EXPECT_TRUE(c.scoped());
  EXPECT_EQ(describe_scope(c),
            "namespace shop, pods app=web,!canary,tier in (edge,front), containers name notin "
            "(sidecar)");
  ContainerInfo in;
  in.name = "nginx";
  in.pod_name = "web-1";
  in.pod_namespace = "shop";
  in.pod_labels = {{"app", "web"}, {"tier", "edge"}};
  EXPECT_TRUE(pod_matches(c, in));
  ContainerInfo other_ns = in;
  other_ns.pod_namespace = "default";
  EXPECT_FALSE(pod_matches(c, other_ns));
  ContainerInfo canary = in;
  canary.pod_labels["canary"] = "1";
  EXPECT_FALSE(pod_matches(c, canary));
  ContainerInfo sidecar = in;
  sidecar.name = "sidecar";
  EXPECT_FALSE(pod_matches(c, sidecar));
  ContainerInfo other_tier = in;
  other_tier.pod_labels["tier"] = "back";
  EXPECT_FALSE(pod_matches(c, other_tier));
}

TEST(Policy, PodSelectorTakesOnlyPodsAndSeesTheWorkloadLabels) {
  auto c = compile_text(R"(apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: w}
spec:
  podSelector:
    matchLabels: {workload.capscope.io/name: web, workload.capscope.io/kind: Deployment}
  kprobes: [{call: cap_capable}]
)");
  ContainerInfo pod;
  pod.name = "nginx";
  pod.pod_name = "web-6d4b-x2x7z";
  pod.workload = "web";
  pod.workload_kind = "Deployment";
  EXPECT_TRUE(pod_matches(c, pod));
  pod.workload_kind = "StatefulSet";
  EXPECT_FALSE(pod_matches(c, pod));
  ContainerInfo lone;  // a container outside any pod
  lone.name = "web";
  lone.workload = "web";
  lone.workload_kind = "Deployment";
  EXPECT_FALSE(pod_matches(c, lone));
  ContainerInfo labelled = lone;  // pod labels alone say it is in a pod
  labelled.pod_labels = {{"app", "web"}};
  EXPECT_TRUE(pod_matches(c, labelled));
  CompiledPolicy unscoped;
  EXPECT_FALSE(unscoped.scoped());
  EXPECT_TRUE(pod_matches(unscoped, lone));
}

// ---- errors: file, line and field, one line each ----

struct ErrorCase {
  std::string text;
  std::string error;
};

TEST(Policy, EveryErrorNamesFileLineAndField) {
  const std::string sel = "spec.kprobes[0].selectors[0]";
  const ErrorCase cases[] = {
      {with_selectors("    - matchArgs:\n      - index: 2\n        operator: Foo\n        values: "
                      "[SYS_ADMIN]\n"),
       "t.yaml:20: " + sel + ".matchArgs[0].operator: \"Foo\" is not one of Equal, NotEqual"},
      {with_selectors("    - matchArgs:\n      - index: 2\n        operator: Mask\n        values: "
                      "[SYS_ADMIN]\n"),
       "t.yaml:20: " + sel +
           ".matchArgs[0].operator: \"Mask\" is not supported by capscope on the capability: use "
           "Equal or NotEqual"},
      {with_selectors(
           "    - matchArgs:\n      - index: 2\n        operator: Equal\n        values: "
           "[SYS_ADMN]\n"),
       "t.yaml:21: " + sel +
           ".matchArgs[0].values[0]: \"SYS_ADMN\" is not a capability (write CAP_SYS_ADMIN, "
           "SYS_ADMIN or a number 0..63)"},
      {with_selectors(
           "    - matchArgs:\n      - index: 1\n        operator: Equal\n        values: "
           "[SYS_ADMIN]\n"),
       "t.yaml:19: " + sel +
           ".matchArgs[0].index: 1 is not the capability argument (declared at index 2): capscope "
           "filters only on the capability"},
      {with_selectors("    - matchArg:\n      - index: 2\n"),
       "t.yaml:18: " + sel +
           ".matchArg: unknown key (allowed: matchArgs, matchReturnArgs, matchBinaries, "
           "matchNamespaces, matchActions)"},
      {with_selectors("    - matchPIDs:\n      - operator: In\n"),
       "t.yaml:18: " + sel +
           ".matchPIDs: not supported by capscope: capscope selects by capability (matchArgs), "
           "verdict (matchReturnArgs), binary, namespace and pod"},
      {with_selectors("    - matchActions:\n      - action: Override\n        argError: -1\n"),
       "t.yaml:20: " + sel +
           ".matchActions[0].argError: not supported by capscope: action arguments of actions "
           "capscope does not take"},
      {with_selectors("    - matchActions:\n      - action: Override\n"),
       "t.yaml:19: " + sel +
           ".matchActions[0].action: \"Override\" is not supported by capscope (Post, NoPost or "
           "Sigkill)"},
      {with_selectors("    - matchActions:\n      - action: Sigkill\n        rateLimit: 1m\n"),
       "t.yaml:20: " + sel + ".matchActions[0].rateLimit: applies to action Post only"},
      {with_selectors("    - matchActions:\n      - action: Post\n        rateLimit: 1d\n"),
       "t.yaml:20: " + sel +
           ".matchActions[0].rateLimit: \"1d\" is not a duration (seconds, or a number and s, m or "
           "h: \"1m\"; at most 6 digits)"},
      {with_selectors("    - matchActions:\n      - action: Post\n        rateLimit: 1m\n        "
                      "rateLimitScope: pod\n"),
       "t.yaml:21: " + sel +
           ".matchActions[0].rateLimitScope: \"pod\" is not one of thread, process, global"},
      {with_selectors(
           "    - matchNamespaces:\n      - namespace: Pid\n        operator: NotIn\n    "
           "    values: [\"4026531836\"]\n"),
       "t.yaml:21: " + sel +
           ".matchNamespaces[0].values[0]: namespace numbers are not supported by capscope: use "
           "host_ns"},
      {with_selectors("    - matchNamespaces:\n      - namespace: Pidd\n        operator: NotIn\n  "
                      "      values: [host_ns]\n"),
       "t.yaml:19: " + sel +
           ".matchNamespaces[0].namespace: \"Pidd\" is not one of Uts, Ipc, Mnt, Pid, "
           "PidForChildren, Net, Time, TimeForChildren, Cgroup, User"},
      {with_selectors("    - matchNamespaces:\n      - {namespace: Pid, operator: In, values: "
                      "[host_ns]}\n      - {namespace: Pid, operator: NotIn, values: [host_ns]}\n"),
       "t.yaml:20: " + sel + ".matchNamespaces[1]: Pid cannot be both In and NotIn host_ns"},
      {with_selectors("    - matchBinaries:\n      - operator: Prefix\n        values: [/usr]\n"),
       "t.yaml:19: " + sel +
           ".matchBinaries[0].operator: \"Prefix\" is not supported by capscope: matchBinaries "
           "takes exact paths with In or NotIn"},
      {with_selectors("    - matchBinaries:\n      - operator: In\n        values: [bin/sh]\n"),
       "t.yaml:20: " + sel + ".matchBinaries[0].values[0]: \"bin/sh\" is not an absolute path"},
      {with_selectors(
           "    - matchReturnArgs:\n      - operator: Equal\n        values: [\"-13\"]\n"),
       "t.yaml:19: " + sel +
           ".matchReturnArgs[0]: matches no check: cap_capable returns 0 (granted) or -1 (-EPERM, "
           "denied)"},
      {with_selectors(
           "    - matchReturnArgs:\n      - operator: Equal\n        values: [granted]\n"),
       "t.yaml:20: " + sel +
           ".matchReturnArgs[0].values[0]: \"granted\" is not a return value (0 granted, -1 or "
           "-EPERM denied)"},
      {with_selectors("    - matchArgs:\n      - {index: 2, operator: Equal, values: [CHOWN]}\n   "
                      "   - {index: 2, operator: NotEqual, values: [CHOWN]}\n"),
       "t.yaml:18: " + sel + ": matchArgs: no capability can pass these filters together"},
      {with_selectors("    - matchActions: [{action: Post}, {action: Sigkill}]\n"),
       "t.yaml:18: " + sel + ".matchActions: has 2 entries; at most 1 are allowed"},
      {with_selectors("    - matchArgs: []\n"),
       "t.yaml:18: " + sel + ".matchArgs: is an empty list"},
      {with_selectors("    - matchArgs:\n      - index: 2\n        operator: Equal\n"),
       "t.yaml:19: " + sel + ".matchArgs[0].values: is required"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_of(c.text), c.error);
}

TEST(Policy, HookAndDocumentErrorsNameTheirField) {
  const ErrorCase cases[] = {
      {"apiVersion: cilium.io/v1\nkind: TracingPolicy\nmetadata: {name: a}\nspec: {}\n",
       "t.yaml:1: apiVersion: \"cilium.io/v1\" is not cilium.io/v1alpha1"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicies\nmetadata: {name: a}\nspec: {}\n",
       "t.yaml:2: kind: \"TracingPolicies\" is not one of TracingPolicy, TracingPolicyNamespaced"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: A_b}\nspec: {}\n",
       "t.yaml:3: metadata.name: \"A_b\" is not a Kubernetes object name (lowercase letters, "
       "digits, '-' and '.', beginning and ending with a letter or digit, at most 253)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\n",
       "t.yaml:1: spec: is required"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec: {}\n",
       "t.yaml:4: spec.kprobes: is required: a kprobe on cap_capable (or the "
       "capability/cap_capable tracepoint)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicyNamespaced\nmetadata:\n  name: a\n"
       "spec:\n  kprobes: [{call: cap_capable}]\n",
       "t.yaml:4: metadata.namespace: is required for a TracingPolicyNamespaced: the Kubernetes "
       "namespace whose pods it applies to"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a, namespace: x}\n"
       "spec:\n  kprobes: [{call: cap_capable}]\n",
       "t.yaml:3: metadata.namespace: a TracingPolicy applies to the whole node; for the pods of "
       "one namespace write kind: TracingPolicyNamespaced"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "kprobes:\n  - call: fd_install\n",
       "t.yaml:6: spec.kprobes[0].call: \"fd_install\" is not supported by capscope: it hooks only "
       "cap_capable"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "kprobes:\n  - call: cap_capable\n    syscall: true\n",
       "t.yaml:7: spec.kprobes[0].syscall: must be false: cap_capable is a kernel function, not a "
       "syscall"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "kprobes:\n  - call: cap_capable\n    retrun: true\n",
       "t.yaml:7: spec.kprobes[0].retrun: unknown key (allowed: call, syscall, return, args, "
       "returnArg, selectors, message, tags)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "kprobes:\n  - call: cap_capable\n    args:\n    - index: 2\n      type: string\n",
       "t.yaml:9: spec.kprobes[0].args[0].type: \"string\" does not fit argument 2 of cap_capable "
       "(index 1: user_namespace, index 2: capability; others: int or nop)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "kprobes:\n  - call: cap_capable\n    selectors:\n    - matchReturnArgs:\n      - "
       "{operator: Equal, values: [0]}\n",
       "t.yaml:9: spec.kprobes[0].selectors[0].matchReturnArgs: needs return: true in "
       "spec.kprobes[0] (the verdict is cap_capable's return value)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "kprobes:\n  - call: cap_capable\n    returnArg: {type: int}\n",
       "t.yaml:7: spec.kprobes[0].returnArg: needs return: true (the verdict is the return value)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_mount\n",
       "t.yaml:6: spec.tracepoints[0].subsystem: tracepoint syscalls/sys_enter_mount is not "
       "supported by capscope: it hooks only capability/cap_capable"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "uprobes: []\n",
       "t.yaml:5: spec.uprobes: not supported by capscope: capscope hooks only cap_capable "
       "(spec.kprobes with call: cap_capable)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "podSelector:\n    matchLabels:\n      app: \"a b\"\n  kprobes: [{call: cap_capable}]\n",
       "t.yaml:7: spec.podSelector.matchLabels.app: selector \"app=a b\": unexpected \"b\" "
       "after a requirement at column 7 (write: requirements separated by ',', e.g. a=b,c in "
       "(d,e))"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "containerSelector:\n    matchLabels:\n      image: nginx\n  kprobes: [{call: "
       "cap_capable}]\n",
       "t.yaml:7: spec.containerSelector.matchLabels.image: a containerSelector selects by the "
       "container's name only (key: name)"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {name: a}\nspec:\n  "
       "podSelector:\n    matchExpressions:\n    - {key: app, operator: Exists, values: [x]}\n"
       "  kprobes: [{call: cap_capable}]\n",
       "t.yaml:7: spec.podSelector.matchExpressions[0].values: must be left out with operator "
       "Exists"},
      {"apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nkind: TracingPolicy\n",
       "t.yaml:3: kind: appears twice"},
      {"apiVersion: [cilium.io/v1alpha1\n", ""},  // a YAML error: checked below
      {"# only a comment\n", "t.yaml: holds no policy (expected a TracingPolicy document)"},
  };
  for (const auto& c : cases) {
    if (c.error.empty()) continue;
    EXPECT_EQ(error_of(c.text), c.error);
  }
  std::string yaml_error = error_of("apiVersion: [cilium.io/v1alpha1\n");
  EXPECT_TRUE(yaml_error.starts_with("t.yaml:")) << yaml_error;
  EXPECT_NE(yaml_error.find(": not valid YAML: "), std::string::npos) << yaml_error;
}

TEST(Policy, ErrorsAreOneLineAndTooLargeFilesAreRefused) {
  std::string huge(kMaxPolicyBytes + 1, '#');
  EXPECT_EQ(error_of(huge), "t.yaml: 1048577 bytes: a policy file holds at most 1048576");
  std::string multi =
      error_of(with_selectors("    - matchArgs:\n      - index: 2\n        "
                              "operator: \"a\\nb\"\n        values: [CHOWN]\n"));
  EXPECT_FALSE(multi.empty());
  EXPECT_EQ(multi.find("t.yaml:20: "), 0U) << multi;
}

TEST(Policy, AliasCyclesAndDeepNestingEndInErrors) {
  EXPECT_FALSE(error_of("&a [*a]\n").empty());
  EXPECT_FALSE(error_of(with_selectors("    - &s {matchArgs: *s}\n")).empty());
  EXPECT_FALSE(error_of(std::string(5000, '[')).empty());
  // Debian's yaml-cpp 0.7 loops forever in LoadAll on these (yaml-cpp issue 1040).
  EXPECT_EQ(error_of("&a,\n"), "t.yaml:1: not valid YAML: the parser cannot go on from here");
  EXPECT_EQ(error_of("!t,\n"), "t.yaml:1: not valid YAML: the parser cannot go on from here");
  EXPECT_EQ(error_of("x: [&a [*a]]\n"),
            "t.yaml:1: an alias refers to the node that holds it (or to no node at all)");
  EXPECT_THROW(load_policy_file("/nonexistent/p.yaml"), PolicyError);
}

// ---- from profiles ----

profile::Profile profile_with(std::initializer_list<std::pair<int, bool>> uses) {
  profile::Profile p;
  p.name = "shop/web/nginx";
  p.subject = "container nginx of Deployment shop/web (from labels), image nginx:1.27";
  for (auto [cap, audit] : uses) {
    profile::Observation o;
    o.key = {cap, true, audit};
    o.count = 3;
    o.binary = "/usr/sbin/nginx";
    p.add(o);
  }
  return p;
}

TEST(Policy, FromContainerProfileRoundTrips) {
  profile::Profile p = profile_with({{0, true}, {10, true}, {21, false}});  // SYS_ADMIN only probed
  p.container.runtime = "cri-o";
  p.container.namespace_name = "shop";
  p.container.workload = "web";
  p.container.workload_kind = "Deployment";
  p.container.workload_from = "labels";
  p.container.container = "nginx";
  p.container.image = "nginx:1.27";
  std::string text = policy_from_profile(p, {});
  auto policies = parse_policies(text, "gen.yaml");
  ASSERT_EQ(policies.size(), 1U) << text;
  EXPECT_EQ(policies[0].name, "capscope-shop-web-nginx");
  EXPECT_EQ(policies[0].kind, PolicyKind::TracingPolicyNamespaced);
  CompiledPolicy c = compile(policies[0]);
  EXPECT_EQ(c.k8s_namespace, "shop");
  ASSERT_TRUE(c.pod_selector && c.container_selector);
  EXPECT_EQ(c.pod_selector->str(),
            "workload.capscope.io/kind=Deployment,workload.capscope.io/name=web");
  EXPECT_EQ(c.container_selector->str(), "name=nginx");
  ASSERT_EQ(c.selectors.size(), 1U);
  // Needed: CHOWN (0) and NET_BIND_SERVICE (10); the probe of SYS_ADMIN is no need.
  EXPECT_EQ(c.selectors[0].cap_mask, ~(bit(0) | bit(10)));
  EXPECT_EQ(c.selectors[0].verdicts, 3);
  EXPECT_EQ(c.selectors[0].action, Action::Sigkill);
  EXPECT_EQ(c.selectors[0].binary_op, BinaryOp::Any);

  ContainerInfo replica;
  replica.name = "nginx";
  replica.pod_name = "web-7d9f8b6c5d-abcde";
  replica.pod_namespace = "shop";
  replica.workload = "web";
  replica.workload_kind = "Deployment";
  EXPECT_TRUE(pod_matches(c, replica));
  replica.name = "log-shipper";
  EXPECT_FALSE(pod_matches(c, replica));

  FromProfileOptions post;
  post.action = Action::Post;
  post.name = "web-alerts";
  CompiledPolicy alert = compile(parse_policies(policy_from_profile(p, post), "gen.yaml").at(0));
  EXPECT_EQ(alert.name, "web-alerts");
  EXPECT_EQ(alert.selectors.at(0).action, Action::Post);
  EXPECT_EQ(alert.selectors.at(0).rate_limit_ns, kMinute);
}

TEST(Policy, FromPodmanContainerAndFromBinaries) {
  profile::Profile lone = profile_with({{12, true}});
  lone.name = "web@docker.io/library/nginx:1.27";
  lone.container.runtime = "podman";
  lone.container.container = "web";
  lone.container.image = "docker.io/library/nginx:1.27";
  CompiledPolicy c = compile(parse_policies(policy_from_profile(lone, {}), "g.yaml").at(0));
  EXPECT_EQ(c.name, "capscope-web-docker.io-library-nginx-1.27");
  EXPECT_TRUE(c.k8s_namespace.empty());
  EXPECT_FALSE(c.pod_selector);
  EXPECT_EQ(c.container_selector->str(), "name=web");

  profile::Profile cmd = profile_with({{0, true}});
  cmd.name = "backup";
  profile::Observation odd;
  odd.key = {1, false, true};
  odd.count = 1;
  odd.binary = "/opt/we\"ird: \\path\t#x";
  cmd.add(odd);
  std::string text = policy_from_profile(cmd, {});
  CompiledPolicy b = compile(parse_policies(text, "g.yaml").at(0));
  EXPECT_FALSE(b.scoped());
  ASSERT_EQ(b.selectors.size(), 1U);
  EXPECT_EQ(b.selectors[0].binary_op, BinaryOp::In);
  EXPECT_EQ(b.selectors[0].binaries,
            (std::vector<std::string>{"/opt/we\"ird: \\path\t#x", "/usr/sbin/nginx"}));
  EXPECT_EQ(b.selectors[0].cap_mask, ~(bit(0) | bit(1))) << text;  // denied needs count
}

TEST(Policy, FromProfileRefusesWhatItCannotScope) {
  profile::Profile none = profile_with({});
  none.name = "empty";
  EXPECT_THROW(policy_from_profile(none, {}), std::invalid_argument);
  profile::Profile unnamed = profile_with({{0, true}});
  unnamed.container.runtime = "docker";
  unnamed.container.container = "0123456789ab";
  EXPECT_THROW(policy_from_profile(unnamed, {}), std::invalid_argument);
  FromProfileOptions bad_name;
  bad_name.name = "Not_A_Name";
  try {
    policy_from_profile(profile_with({{0, true}}), bad_name);
    FAIL() << "took a bad --name";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).find("--name Not_A_Name: not a Kubernetes object name"), 0U)
        << e.what();
  }
  FromProfileOptions bad_rate;
  bad_rate.action = Action::Post;
  bad_rate.rate_limit = "soon";
  EXPECT_THROW(policy_from_profile(profile_with({{0, true}}), bad_rate), std::invalid_argument);
}

TEST(Policy, RateLimitsAreTetragonDurationsWithoutOverflow) {
  EXPECT_EQ(parse_rate_limit("30"), 30'000'000'000ULL);  // seconds by default
  EXPECT_EQ(parse_rate_limit("30s"), 30'000'000'000ULL);
  EXPECT_EQ(parse_rate_limit("1m"), kMinute);
  EXPECT_EQ(parse_rate_limit("2h"), 7'200'000'000'000ULL);
  EXPECT_EQ(parse_rate_limit("999999h"), 999'999ULL * 3'600'000'000'000ULL);
  for (const char* bad : {"", "0", "0m", "1000000h", "1d", "1m30s", "-1m", "m", "1.5m", " 1m"})
    EXPECT_FALSE(parse_rate_limit(bad)) << bad;
}

TEST(Policy, PolicyNamesFromProfileNames) {
  EXPECT_EQ(policy_name_for("shop/web/nginx"), "capscope-shop-web-nginx");
  EXPECT_EQ(policy_name_for("Web_App@@x"), "capscope-web-app-x");
  EXPECT_EQ(policy_name_for("///"), "capscope");
}

// ---- the policy folder ----

class PolicyDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("capscope-policy-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  std::string dir() const { return dir_.string(); }
  fs::path dir_;
};

std::string named(const std::string& name) {
  std::string text = with_selectors("    - matchActions: [{action: Post}]\n");
  text.replace(text.find("name: t"), 7, "name: " + name);
  return text;
}

TEST_F(PolicyDir, AddListReplaceDelete) {
  EXPECT_TRUE(load_policy_dir(dir()).policies.empty());  // no folder: no policy
  AddResult r = add_policy(dir(), named("a"), "a-src.yaml", "a.yaml", false);
  EXPECT_EQ(r.added, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(fs::exists(dir_ / "a.yaml"));
  // The same name from another file: refused, then replaced (the old file goes).
  EXPECT_THROW(add_policy(dir(), named("a"), "b-src.yaml", "b.yaml", false), PolicyDirError);
  r = add_policy(dir(), named("a"), "b-src.yaml", "b", true);
  EXPECT_EQ(r.replaced, (std::vector<std::string>{"a"}));
  EXPECT_EQ(r.removed_files, (std::vector<std::string>{(dir_ / "a.yaml").string()}));
  EXPECT_FALSE(fs::exists(dir_ / "a.yaml"));
  EXPECT_TRUE(fs::exists(dir_ / "b.yaml"));
  // A bad policy never reaches the folder.
  EXPECT_THROW(add_policy(dir(), "kind: x\n", "bad.yaml", "bad.yaml", false), PolicyError);
  EXPECT_FALSE(fs::exists(dir_ / "bad.yaml"));
  // Two policies in one file; delete one, the other stays.
  add_policy(dir(), "# two\n" + named("c") + "---\n# second\n" + named("d"), "cd.yaml", "cd.yml",
             false);
  auto here = load_policy_dir(dir());
  ASSERT_EQ(here.policies.size(), 3U);
  EXPECT_TRUE(here.errors.empty());
  EXPECT_EQ(delete_policy(dir(), "c"), (dir_ / "cd.yml").string());
  std::string left = read(dir_ / "cd.yml");
  EXPECT_EQ(left, "---\n# second\n" + named("d"));
  EXPECT_EQ(delete_policy(dir(), "d"), (dir_ / "cd.yml").string());
  EXPECT_FALSE(fs::exists(dir_ / "cd.yml"));
  EXPECT_THROW(delete_policy(dir(), "d"), PolicyDirError);
  ASSERT_EQ(load_policy_dir(dir()).policies.size(), 1U);
}

TEST_F(PolicyDir, ReplaceRefusesToDropOtherPolicies) {
  add_policy(dir(), named("c") + "---\n" + named("d"), "cd.yaml", "cd.yaml", false);
  try {
    add_policy(dir(), named("c"), "c.yaml", "c.yaml", true);
    FAIL() << "replaced half of a file";
  } catch (const PolicyDirError& e) {
    EXPECT_TRUE(e.usage());
    EXPECT_NE(std::string(e.what()).find("together with \"d\""), std::string::npos) << e.what();
  }
  EXPECT_EQ(load_policy_dir(dir()).policies.size(), 2U);
}

TEST_F(PolicyDir, BrokenFilesAndRepeatedNamesAreCountedNotFatal) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "1-good.yaml") << named("a");
  std::ofstream(dir_ / "2-again.yaml") << named("a");
  std::ofstream(dir_ / "3-broken.yaml") << "apiVersion: [\n";
  std::ofstream(dir_ / "notes.txt") << "not a policy";
  std::ofstream(dir_ / ".hidden.yaml") << "not a policy";
  auto here = load_policy_dir(dir());
  ASSERT_EQ(here.policies.size(), 1U);
  EXPECT_EQ(here.policies[0].policy.file, (dir_ / "1-good.yaml").string());
  ASSERT_EQ(here.errors.size(), 2U);
  EXPECT_EQ(here.errors[0], (dir_ / "2-again.yaml").string() +
                                ":1: metadata.name: \"a\" is already loaded from " +
                                (dir_ / "1-good.yaml").string());
  EXPECT_EQ(here.errors[1].find((dir_ / "3-broken.yaml").string() + ":"), 0U);
}

// Every file of the fuzz corpus that is a valid policy must stay one, and no
// file may crash the parser (the fuzzer runs them too; this runs in CI).
TEST(Policy, FixturesParseOrFailWithOneLine) {
  for (const auto& entry : fs::directory_iterator(kFixtures)) {
    std::string name = entry.path().filename().string();
    std::string err;
    try {
      for (const auto& p : load_policy_file(entry.path().string())) compile(p);
    } catch (const PolicyError& e) {
      err = e.what();
    }
    if (name.starts_with("valid-")) EXPECT_EQ(err, "") << name;
    if (name.starts_with("invalid-")) {
      EXPECT_EQ(err.find(entry.path().string() + ":"), 0U) << name << ": " << err;
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    }
  }
}

}  // namespace
}  // namespace capscope::policy
