// libFuzzer: any bytes through the policy parser and compiler. Errors are
// expected; a crash, a hang, an exception other than PolicyError, or an error
// message that is not one line starting with the file name is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/compiled.h"
#include "policy/tracing_policy.h"

namespace {

// A container every scoped policy is asked about, so pod_matches runs too.
capscope::ContainerInfo probe_container() {
  capscope::ContainerInfo c;
  c.name = "web";
  c.pod_name = "web-1";
  c.pod_namespace = "shop";
  c.pod_labels = {{"app", "web"}, {"tier", "front"}};
  c.workload = "web";
  c.workload_kind = "Deployment";
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const capscope::ContainerInfo container = probe_container();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& p : capscope::policy::parse_policies(text, "fuzz.yaml")) {
      capscope::policy::CompiledPolicy c = capscope::policy::compile(p);
      if (c.selectors.empty()) __builtin_trap();  // a policy always selects something
      for (const auto& s : c.selectors) {
        if (s.cap_mask == 0 || s.verdicts == 0 || s.verdicts > 3) __builtin_trap();
        (void)capscope::policy::describe(s);
      }
      (void)capscope::policy::describe_scope(c);
      (void)capscope::policy::pod_matches(c, container);
    }
  } catch (const capscope::policy::PolicyError& e) {
    std::string_view what = e.what();
    if (!what.starts_with("fuzz.yaml") || what.find('\n') != std::string_view::npos)
      __builtin_trap();
  }
  return 0;
}
