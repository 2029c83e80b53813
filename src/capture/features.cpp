#include "capture/features.h"

#include <algorithm>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/utsname.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace capscope::capture {

namespace fs = std::filesystem;

std::optional<Backend> parse_backend(std::string_view s) {
  if (s == "auto") return Backend::Auto;
  if (s == "tracepoint" || s == "tp") return Backend::Tracepoint;
  if (s == "fentry" || s == "fexit") return Backend::Fentry;
  if (s == "kprobe") return Backend::Kprobe;
  return std::nullopt;
}

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::Auto:
      return "auto";
    case Backend::Tracepoint:
      return "tracepoint";
    case Backend::Fentry:
      return "fentry";
    case Backend::Kprobe:
      return "kprobe";
  }
  return "?";
}

namespace {

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

bool mounted(std::string_view fstype, std::string_view where) {
  std::ifstream in("/proc/mounts");
  std::string dev, mnt, type, rest;
  while (in >> dev >> mnt >> type && std::getline(in, rest))
    if (type == fstype && mnt == where) return true;
  return false;
}

void probe_btf(KernelFeatures& f) {
  struct btf* btf = btf__load_vmlinux_btf();
  if (!btf) return;
  f.btf = true;
  f.cap_capable_tracepoint =
      btf__find_by_name_kind(btf, "btf_trace_cap_capable", BTF_KIND_TYPEDEF) >= 0;
  int fid = btf__find_by_name_kind(btf, "cap_capable", BTF_KIND_FUNC);
  if (fid >= 0) {
    f.cap_capable_in_btf = true;
    const struct btf_type* func = btf__type_by_id(btf, fid);
    const struct btf_type* proto = btf__type_by_id(btf, func->type);
    if (proto && btf_vlen(proto) >= 4) {
      const struct btf_param* params = btf_params(proto);
      f.opts_param_name = btf__name_by_offset(btf, params[3].name_off);
      f.opts_kind = opts_kind_of_param(f.opts_param_name);
    }
  }
  for (std::string_view caller : kInlinedCallers)
    if (btf__find_by_name_kind(btf, std::string(caller).c_str(), BTF_KIND_FUNC) >= 0)
      f.inlined_callers_in_btf.emplace(caller);
  int kc = btf__find_by_name_kind(btf, "kernel_cap_t", BTF_KIND_TYPEDEF);
  if (kc >= 0) {
    const struct btf_type* t = btf__type_by_id(btf, btf__resolve_type(btf, kc));
    f.kernel_cap_u64 =
        t && btf_vlen(t) == 1 &&
        std::string_view(btf__name_by_offset(btf, btf_members(t)[0].name_off)) == "val";
  }
  btf__free(btf);
}

// cap_capable and the inlining callers, in one pass that stops once all are found.
void probe_kallsyms(KernelFeatures& f) {
  std::ifstream in("/proc/kallsyms");
  std::string addr, type, name;
  while (in >> addr >> type >> name) {
    if (name == "cap_capable")
      f.cap_capable_in_kallsyms = true;
    else if ((type == "T" || type == "t") &&
             std::find(kInlinedCallers.begin(), kInlinedCallers.end(), name) !=
                 kInlinedCallers.end())
      f.inlined_callers_in_kallsyms.insert(name);
    if (f.cap_capable_in_kallsyms && f.inlined_callers_in_kallsyms.size() == kInlinedCallers.size())
      break;
    in.ignore(4096, '\n');
  }
}

void probe_ftrace(KernelFeatures& f) {
  for (const char* base : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    fs::path p = fs::path(base) / "available_filter_functions";
    std::error_code ec;
    if (!fs::exists(p, ec)) continue;
    std::ifstream in(p);
    std::string line;
    f.ftrace_known = true;
    f.ftrace_functions = static_cast<bool>(std::getline(in, line)) && !line.empty();
    return;
  }
}

}  // namespace

uint64_t effective_caps() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("CapEff:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 16);
  return 0;
}

// Decided by name, not kernel version: the opts change was backported.
OptsKind opts_kind_of_param(std::string_view name) {
  if (name == "opts") return OptsKind::Opts;
  if (name == "audit") return OptsKind::AuditInt;
  return OptsKind::Unknown;
}

KernelFeatures probe_kernel() {
  KernelFeatures f;
  struct utsname u {};
  if (uname(&u) == 0) f.release = u.release;
  probe_btf(f);
  probe_kallsyms(f);
  std::error_code ec;
  f.kprobe_pmu = fs::exists("/sys/bus/event_source/devices/kprobe/type", ec);
  probe_ftrace(f);
  f.ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
  uint64_t eff = effective_caps();
  f.cap_bpf = eff & (1ULL << CAP_BPF);
  f.cap_perfmon = eff & (1ULL << CAP_PERFMON);
  f.cap_sys_admin = eff & (1ULL << CAP_SYS_ADMIN);
  std::string last = read_first_line("/proc/sys/kernel/cap_last_cap");
  f.cap_last_cap = last.empty() ? -1 : std::atoi(last.c_str());
  f.lockdown = read_first_line("/sys/kernel/security/lockdown");
  f.bpffs_mounted = mounted("bpf", "/sys/fs/bpf");
  f.tracefs_mounted = mounted("tracefs", "/sys/kernel/tracing");
  return f;
}

std::string backend_unavailable_reason(Backend b, const KernelFeatures& f) {
  if (!f.btf)
    return "the kernel has no BTF (/sys/kernel/btf/vmlinux); capscope needs a kernel built "
           "with CONFIG_DEBUG_INFO_BTF=y";
  switch (b) {
    case Backend::Tracepoint:
      if (!f.cap_capable_tracepoint)
        return fmt::format(
            "kernel {} has no capability:cap_capable tracepoint (added in "
            "Linux 6.14); use --backend fentry or kprobe",
            f.release);
      return "";
    case Backend::Fentry:
      if (!f.cap_capable_in_btf)
        return "cap_capable is not in the kernel BTF, so fexit cannot attach to it";
      if (f.ftrace_known && !f.ftrace_functions)
        return "this kernel has no ftrace-patchable functions (available_filter_functions is "
               "empty), so fentry/fexit programs cannot attach; use --backend tracepoint or "
               "kprobe";
      return "";
    case Backend::Kprobe:
      if (!f.kprobe_pmu)
        return "this kernel has no kprobe support (CONFIG_KPROBES is off: no "
               "/sys/bus/event_source/devices/kprobe); use --backend tracepoint or fentry";
      if (!f.cap_capable_in_kallsyms)
        return "cap_capable is not in /proc/kallsyms (inlined?), so a kprobe cannot attach";
      return "";
    case Backend::Auto:
      return "";
  }
  return "";
}

std::optional<Backend> choose_backend(const KernelFeatures& f, std::string* why) {
  std::string reasons;
  for (Backend b : {Backend::Tracepoint, Backend::Fentry, Backend::Kprobe}) {
    std::string r = backend_unavailable_reason(b, f);
    if (r.empty()) return b;
    reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", backend_name(b), r);
  }
  if (why) *why = reasons;
  return std::nullopt;
}

std::vector<Probe> describe(const KernelFeatures& f) {
  auto yes = [](bool b) { return b ? "yes" : "no"; };
  std::vector<Probe> p;
  p.push_back({"kernel", true, f.release});
  p.push_back(
      {"btf", f.btf, f.btf ? "/sys/kernel/btf/vmlinux" : "missing: need CONFIG_DEBUG_INFO_BTF"});
  p.push_back({"privileges", f.cap_bpf && f.cap_perfmon,
               fmt::format("CAP_BPF {} CAP_PERFMON {} CAP_SYS_ADMIN {}", yes(f.cap_bpf),
                           yes(f.cap_perfmon), yes(f.cap_sys_admin))});
  p.push_back({"ring buffer", f.ringbuf,
               f.ringbuf ? "BPF_MAP_TYPE_RINGBUF" : "not supported (Linux 5.8+ needed)"});
  p.push_back(
      {"tracepoint capability:cap_capable", f.cap_capable_tracepoint,
       f.cap_capable_tracepoint ? "tp_btf (no tracefs needed)" : "absent (added in Linux 6.14)"});
  p.push_back({"cap_capable in BTF", f.cap_capable_in_btf,
               f.opts_param_name.empty() ? "" : "4th parameter: " + f.opts_param_name});
  p.push_back({"cap_capable in kallsyms", f.cap_capable_in_kallsyms, ""});
  p.push_back(
      {"kprobes", f.kprobe_pmu, f.kprobe_pmu ? "kprobe PMU present" : "CONFIG_KPROBES off"});
  p.push_back({"fentry/fexit", f.ftrace_known ? f.ftrace_functions : f.cap_capable_in_btf,
               f.ftrace_known ? (f.ftrace_functions ? "ftrace-patchable functions present"
                                                    : "no ftrace-patchable functions")
                              : "not probed (tracefs not mounted); tried at load"});
  p.push_back({"kernel_cap_t layout", true, f.kernel_cap_u64 ? "u64 (6.3+)" : "u32[2] (pre-6.3)"});
  p.push_back({"cap_last_cap", f.cap_last_cap >= 0, std::to_string(f.cap_last_cap)});
  p.push_back(
      {"lockdown", true, f.lockdown.empty() ? "unknown (securityfs not mounted)" : f.lockdown});
  p.push_back({"bpffs", true, f.bpffs_mounted ? "mounted" : "not mounted (not needed for trace)"});
  p.push_back(
      {"tracefs", true, f.tracefs_mounted ? "mounted" : "not mounted (not needed: tp_btf)"});
  return p;
}

}  // namespace capscope::capture
