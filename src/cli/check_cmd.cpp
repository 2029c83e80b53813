// capscope check: what this kernel supports and what capscope will use.
#include <fmt/format.h>

#include <iostream>
#include <optional>

#include "capture/bpf_capture.h"
#include "capture/features.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/runtime_options.h"

namespace capscope::cli {

namespace {

// One line per container runtime found (or named): whether it answered, and its version.
void print_runtimes(const RuntimeCliOptions& o) {
  auto resolver = make_resolver(o);
  auto status = resolver->probe();
  if (status.empty())
    std::cout << fmt::format("{:<36} {:<4} {}\n", "container runtimes", "no",
                             "no runtime socket found: containers are named by cgroup id only "
                             "(name a socket with --podman-socket, --docker-socket, ...)");
  for (const auto& s : status)
    std::cout << fmt::format(
        "{:<36} {:<4} {}\n", fmt::format("runtime {}", s.runtime), s.answering ? "ok" : "no",
        s.answering ? fmt::format("{} answers at {}", s.version, s.endpoint) : s.error);
}

int run_check(bool try_load, const RuntimeCliOptions& runtimes, const GlobalOptions& g) {
  capture::KernelFeatures f = capture::probe_kernel();
  for (const auto& p : capture::describe(f))
    std::cout << fmt::format("{:<36} {:<4} {}\n", p.name, p.ok ? "ok" : "no", p.detail);
  bool loading = try_load && privilege_problem().empty();
  std::optional<capture::Backend> first_loaded;
  for (auto b :
       {capture::Backend::Tracepoint, capture::Backend::Fentry, capture::Backend::Kprobe}) {
    std::string why = capture::backend_unavailable_reason(b, f);
    std::string walk;
    if (why.empty() && loading) {
      // Probing tells what should work; loading for real tells what does.
      capture::CaptureOptions o;
      o.backend = b;
      o.ringbuf_bytes = 1 << 16;
      o.verbose_libbpf = g.verbose;
      std::string err;
      auto cap = capture::BpfCapture::open(o, f, &err);
      why = cap ? "" : err;
      if (cap && !first_loaded) first_loaded = b;
      if (cap && b == capture::Backend::Tracepoint)
        walk = cap->walk_direct() ? " (call-site walk: direct stack loads)"
                                  : " (call-site walk: bpf_probe_read_kernel per frame)";
    }
    std::cout << fmt::format(
        "{:<36} {:<4} {}\n", fmt::format("backend {}", capture::backend_name(b)),
        why.empty() ? "ok" : "no", why.empty() ? "loads and attaches" + walk : why);
  }
  // auto takes the first backend that loads; without loading, the first that probing allows.
  std::string why = "no backend loads on this kernel (see the lines above)";
  auto chosen = loading ? first_loaded : capture::choose_backend(f, &why);
  std::cout << fmt::format("{:<36} {:<4} {}\n", "backend auto", chosen ? "ok" : "no",
                           chosen ? std::string(capture::backend_name(*chosen)) : why);
  print_runtimes(runtimes);
  if (auto p = privilege_problem(); !p.empty()) {
    std::cout << fmt::format("{:<36} {:<4} {}\n", "can trace", "no", p);
    return kExitFailure;
  }
  return chosen ? kExitOk : kExitFailure;
}

}  // namespace

Runner add_check_command(CLI::App& app, const GlobalOptions& g) {
  auto try_load = std::make_shared<bool>(true);
  CLI::App* c =
      app.add_subcommand("check", "Report what this kernel supports and what capscope uses");
  c->add_flag("!--no-load", *try_load, "Only probe; do not load the backends to confirm");
  auto runtimes = std::make_shared<RuntimeCliOptions>();
  add_runtime_options(c, *runtimes);
  return [try_load, runtimes, &g] { return run_check(*try_load, *runtimes, g); };
}

}  // namespace capscope::cli
