// What the running kernel offers capscope, probed at start. `capscope check`
// prints all of it; backend selection and the loader's errors use it so a
// user learns *why* a backend cannot run, and what to do about it.
#pragma once

#include <array>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace capscope::capture {

enum class Backend { Auto, Tracepoint, Fentry, Kprobe };

std::optional<Backend> parse_backend(std::string_view s);
std::string_view backend_name(Backend b);

// How cap_capable's fourth argument reads on this kernel (from its BTF).
enum class OptsKind { Opts, AuditInt, Unknown };

struct Probe {
  std::string name;
  bool ok = false;
  std::string detail;  // what was found, or why not and how to fix it
};

struct KernelFeatures {
  std::string release;
  bool btf = false;
  bool cap_capable_tracepoint = false;  // btf_trace_cap_capable in BTF
  bool cap_capable_in_btf = false;      // FUNC cap_capable in BTF
  bool cap_capable_in_kallsyms = false;
  // Which of kInlinedCallers the kernel has, in BTF (fentry) and in kallsyms (kprobe).
  std::set<std::string, std::less<>> inlined_callers_in_btf, inlined_callers_in_kallsyms;
  OptsKind opts_kind = OptsKind::Unknown;
  std::string opts_param_name;
  bool kprobe_pmu = false;        // /sys/bus/event_source/devices/kprobe
  bool ftrace_functions = false;  // some function can be patched (fentry/fexit)
  bool ftrace_known = false;      // whether the above could be read
  bool ringbuf = false;
  bool cap_bpf = false, cap_perfmon = false, cap_sys_admin = false;
  int cap_last_cap = -1;
  bool kernel_cap_u64 = false;  // kernel_cap_t is { u64 val } (6.3+)
  std::string lockdown;
  bool bpffs_mounted = false, tracefs_mounted = false;
};

// Functions in security/commoncap.c that some builds inline cap_capable into;
// the fentry and kprobe backends hook them too (bpf/inlined_callers.bpf.h).
inline constexpr std::array<std::string_view, 2> kInlinedCallers = {"cap_vm_enough_memory",
                                                                    "cap_mmap_addr"};

KernelFeatures probe_kernel();

// This process's effective capability set (CapEff of /proc/self/status).
uint64_t effective_caps();

// How cap_capable's fourth parameter reads, from its name in the kernel BTF: "opts"
// (Linux 5.1+, and kernels the change was backported to) or "audit" (older).
OptsKind opts_kind_of_param(std::string_view name);

// Why `b` cannot run here (empty if it can, as far as probing tells).
std::string backend_unavailable_reason(Backend b, const KernelFeatures& f);

// The backend `auto` picks, or nullopt with every reason in `why`.
std::optional<Backend> choose_backend(const KernelFeatures& f, std::string* why);

std::vector<Probe> describe(const KernelFeatures& f);

}  // namespace capscope::capture
