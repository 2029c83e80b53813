#include "enrich/runtime/runtime_process.h"

#include <array>
#include <string_view>

namespace capscope {

namespace {

std::string_view basename_of(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_runtime_binary(std::string_view name) {
  static constexpr std::array<std::string_view, 7> kNames = {
      "runc", "crun", "youki", "runsc", "conmon", "catatonit", "pause"};
  for (auto n : kNames)
    if (name == n) return true;
  return name.starts_with("containerd-shim");
}

}  // namespace

bool is_runtime_process(const ProcessInfo& p) {
  // runc re-executes itself from /proc/self/exe and renames its stages; the comm is
  // what survives (the binary may read as a memfd copy of runc).
  if (std::string_view(p.comm).starts_with("runc:[")) return true;
  if (!p.binary.empty()) return is_runtime_binary(basename_of(p.binary));
  return is_runtime_binary(p.comm);
}

bool is_runtime_program(std::string_view binary, std::string_view argv0, std::string_view comm) {
  if (comm.starts_with("runc:[")) return true;
  if (is_runtime_binary(basename_of(binary))) return true;
  // Only a self re-execution is trusted by argv[0]: a workload may call itself anything.
  bool reexec = binary.starts_with("/proc/self/") || binary.starts_with("/dev/fd/") ||
                binary.starts_with("/proc/self/fd/") || binary.starts_with("memfd:");
  return reexec && is_runtime_binary(basename_of(argv0));
}

}  // namespace capscope
