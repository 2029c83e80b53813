// Tetragon's TracingPolicy and TracingPolicyNamespaced (apiVersion
// cilium.io/v1alpha1), for what capscope hooks: the cap_capable function with
// its user_namespace and capability arguments and its return value.
//
// parse_policies() reads YAML text (one policy per document) into the model
// below, checking everything it can: every key is known (a typo never
// silently widens a policy), every value has its type and range, and what
// Tetragon offers but capscope cannot do (other hooks, matchPIDs, Override,
// ...) is named as such. Each error is one line:
//   policy.yaml:14: spec.kprobes[0].selectors[0].matchArgs[0].operator: "Foo" is not one of
//   Equal, NotEqual
// compile() turns a parsed policy into the CompiledPolicy the kernel side loads
// (compiled.h). docs/POLICIES.md describes the subset.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "filter/filter_spec.h"
#include "filter/label_selector.h"
#include "policy/compiled.h"

namespace capscope::policy {

inline constexpr std::string_view kApiVersion = "cilium.io/v1alpha1";
// Larger policy files are refused before YAML sees them.
inline constexpr size_t kMaxPolicyBytes = 1 << 20;
// YAML documents (policies and empty ones) in one text.
inline constexpr size_t kMaxDocuments = 256;
// Tetragon's own limit of selectors per hook.
inline constexpr size_t kMaxSelectorsPerHook = 5;
// The kernel's selector slots, shared by every loaded policy.
inline constexpr size_t kMaxCompiledSelectors = 64;

// One line: "FILE:LINE: FIELD: MESSAGE" (LINE left out when unknown).
class PolicyError : public std::runtime_error {
 public:
  PolicyError(std::string file, int line, std::string field, const std::string& message);
  [[nodiscard]] const std::string& file() const { return file_; }
  [[nodiscard]] int line() const { return line_; }  // 1-based; 0 unknown
  [[nodiscard]] const std::string& field() const { return field_; }

 private:
  std::string file_;
  int line_;
  std::string field_;
};

enum class PolicyKind : uint8_t { TracingPolicy, TracingPolicyNamespaced };

// Where a part of a policy was written: for errors found after parsing.
struct Where {
  int line = 0;
  std::string field;  // "spec.kprobes[0].selectors[1]"
};

// matchArgs on the capability argument: Equal (any of caps) or NotEqual (none of caps).
struct CapabilityFilter {
  Where where;
  bool equal = true;
  std::vector<int> caps;  // as written, numbers 0..63
};

// matchArgs on cap_capable's fourth argument, opts (declared `- index: 3, type: int`):
// CAP_OPT_NOAUDIT (2) marks a probe, CAP_OPT_INSETID (4) a set*id syscall's check.
// Equal/NotEqual compare the whole value, Mask passes when any of its bits is set.
struct OptionsFilter {
  enum class Op : uint8_t { Equal, NotEqual, Mask };
  Where where;
  Op op = Op::Equal;
  std::vector<uint32_t> values;  // each 0..6, a combination of 2 and 4
};

// matchReturnArgs on cap_capable's return value (0 granted, -EPERM denied).
struct ReturnFilter {
  enum class Op : uint8_t { Equal, NotEqual, GreaterThan, LessThan };
  Where where;
  Op op = Op::Equal;
  std::vector<int64_t> values;
};

struct BinaryFilter {
  Where where;
  BinaryOp op = BinaryOp::In;
  std::vector<std::string> paths;
};

struct NamespaceFilter {
  Where where;
  NamespaceMatch match{};
};

struct ActionSpec {
  Where where;
  Action action = Action::Post;
  uint64_t rate_limit_ns = 0;  // Post only; 0 none
  std::string rate_limit;      // as written ("1m"), for listings
  filter::RateScope rate_scope = filter::RateScope::Thread;
};

struct Selector {
  Where where;
  std::vector<CapabilityFilter> capabilities;  // ANDed
  std::vector<OptionsFilter> options;          // ANDed
  std::vector<ReturnFilter> returns;           // ANDed
  std::optional<BinaryFilter> binaries;
  std::vector<NamespaceFilter> namespaces;  // ANDed
  std::optional<ActionSpec> action;         // none: Post
};

// One hook on cap_capable: a kprobe (spec.kprobes[]) or the capability:cap_capable
// tracepoint (spec.tracepoints[]). Both report the same checks.
struct Hook {
  Where where;
  bool tracepoint = false;
  bool return_value = false;        // `return: true`: the verdict is reported and may be filtered
  bool options_declared = false;    // args has `- index: 3, type: int` (kprobe only)
  std::vector<Selector> selectors;  // none: every check, Post
};

struct TracingPolicy {
  std::string file;  // where it was read from, or "api"
  int line = 0;      // the line its document starts on
  PolicyKind kind = PolicyKind::TracingPolicy;
  std::string name;           // metadata.name
  std::string k8s_namespace;  // metadata.namespace, TracingPolicyNamespaced only
  std::optional<LabelSelector> pod_selector;
  std::optional<LabelSelector> container_selector;
  std::vector<Hook> hooks;
};

// Every policy in text (YAML documents separated by ---; empty documents are
// skipped). `file` names the source in errors and in TracingPolicy::file.
// Throws PolicyError: malformed YAML, a schema error, no policy at all, or two
// policies of one name.
std::vector<TracingPolicy> parse_policies(std::string_view text, const std::string& file);

// Reads and parses a file. Throws PolicyError (an unreadable file too).
std::vector<TracingPolicy> load_policy_file(const std::string& path);

// The kernel's form. Throws PolicyError for a selector that can match no
// check (e.g. matchArgs Equal CAP_CHOWN and NotEqual CAP_CHOWN).
CompiledPolicy compile(const TracingPolicy& p);

// Tetragon's rateLimit: a number of seconds, or a number (at most 6 digits)
// and s, m or h. nullopt for anything else and for zero.
std::optional<uint64_t> parse_rate_limit(std::string_view s);

// A Kubernetes object name (RFC 1123 subdomain): what metadata.name may be.
bool is_object_name(std::string_view s);

// "TracingPolicy" or "TracingPolicyNamespaced".
const char* kind_name(PolicyKind k);

// One line describing a compiled selector, for validate and list:
// "caps SYS_ADMIN,NET_ADMIN; denied; Pid NotIn host_ns; binary In /usr/bin/x -> Post rateLimit
// 1m/thread"
std::string describe(const CompiledSelector& s);
// "namespace shop, pods app=web, containers name=nginx" or "all processes".
std::string describe_scope(const CompiledPolicy& p);

}  // namespace capscope::policy
