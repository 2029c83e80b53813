#include "capture/inlined_callers.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace capscope::capture {

namespace {

struct InlinedCaller {
  std::string_view function;
  const char* entry_prog;
  const char* exit_prog;
};

// The programs of each of kInlinedCallers, by the same names in
// capable_fexit.bpf.c and capable_kprobe.bpf.c.
constexpr std::array<InlinedCaller, kInlinedCallers.size()> kCallers = {{
    {"cap_vm_enough_memory", "cs_vm_enough_memory_entry", "cs_vm_enough_memory_exit"},
    {"cap_mmap_addr", "cs_mmap_addr_entry", "cs_mmap_addr_exit"},
}};

}  // namespace

void prepare_inlined_callers(bpf_object* obj, Backend b, const KernelFeatures& f) {
  const auto& present =
      b == Backend::Fentry ? f.inlined_callers_in_btf : f.inlined_callers_in_kallsyms;
  for (const auto& c : kCallers) {
    bool hookable = present.contains(c.function);
    for (const char* name : {c.entry_prog, c.exit_prog}) {
      bpf_program* p = bpf_object__find_program_by_name(obj, name);
      if (p == nullptr) continue;
      bpf_program__set_autoattach(p, false);
      if (!hookable) bpf_program__set_autoload(p, false);
    }
  }
}

InlinedCallerLinks attach_inlined_callers(bpf_object* obj) {
  InlinedCallerLinks out;
  for (const auto& c : kCallers) {
    bpf_program* entry = bpf_object__find_program_by_name(obj, c.entry_prog);
    bpf_program* exit = bpf_object__find_program_by_name(obj, c.exit_prog);
    if (entry == nullptr || exit == nullptr || !bpf_program__autoload(entry)) {
      out.failed.push_back(fmt::format("{}: not hookable on this kernel", c.function));
      continue;
    }
    bpf_link* in = bpf_program__attach(entry);
    int err = in ? 0 : errno;
    bpf_link* back = in ? bpf_program__attach(exit) : nullptr;
    if (in && !back) err = errno;
    if (!in || !back) {
      if (in) bpf_link__destroy(in);
      out.failed.push_back(fmt::format("{}: {}", c.function, std::strerror(err)));
      continue;
    }
    out.links.push_back(in);
    out.links.push_back(back);
    out.hooked.emplace_back(c.function);
  }
  return out;
}

}  // namespace capscope::capture
