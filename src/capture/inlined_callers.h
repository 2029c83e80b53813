// The callers some kernels inline cap_capable into, hooked by the fentry and
// kprobe backends to recover the checks a probe on cap_capable cannot see
// (bpf/inlined_callers.bpf.h).
#pragma once

#include <string>
#include <vector>

#include "capture/features.h"

struct bpf_object;
struct bpf_link;

namespace capscope::capture {

// Before the object loads: a caller the kernel cannot hook (not in its BTF for
// fentry, not in kallsyms for kprobe, as probe_kernel() found) is left out;
// every caller is kept out of the skeleton's attach, so that one failing
// caller cannot fail the backend.
void prepare_inlined_callers(bpf_object* obj, Backend b, const KernelFeatures& f);

// Links of the hooked callers, and the names of those that attached.
struct InlinedCallerLinks {
  std::vector<bpf_link*> links;
  std::vector<std::string> hooked;
  std::vector<std::string> failed;  // "function: reason"
};

// After the skeleton attached: attaches each caller's entry and exit together;
// a pair that cannot attach is dropped whole.
InlinedCallerLinks attach_inlined_callers(bpf_object* obj);

}  // namespace capscope::capture
