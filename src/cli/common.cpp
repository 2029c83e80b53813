#include "cli/common.h"

#include <fmt/format.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "capture/features.h"
#include "cli/commands.h"
#include "enrich/cgroup_fs.h"
#include "enrich/proc_reader.h"

namespace capscope::cli {

int usage_error(const std::string& msg) {
  std::cerr << "capscope: " << msg << '\n';
  return kExitUsage;
}

int failure(const std::string& msg) {
  std::cerr << "capscope: " << msg << '\n';
  return kExitFailure;
}

std::string privilege_problem() {
  uint64_t eff = capture::effective_caps();
  bool bpf = eff & (1ULL << CAP_BPF), perfmon = eff & (1ULL << CAP_PERFMON),
       admin = eff & (1ULL << CAP_SYS_ADMIN);
  if ((bpf && perfmon) || admin) return "";
  std::string_view has = bpf ? "CAP_BPF only" : perfmon ? "CAP_PERFMON only" : "neither";
  return fmt::format(
      "tracing needs root, or CAP_BPF and CAP_PERFMON (this process has {}): run it with sudo",
      has);
}

std::optional<uint64_t> cgroup_id_of(const std::string& path, std::string* error) {
  if (auto id = CgroupFs().id_of(path)) return id;
  *error = fmt::format(
      "--cgroup {}: no such cgroup v2 directory (looked under /sys/fs/cgroup "
      "and /sys/fs/cgroup/unified)",
      path);
  return std::nullopt;
}

NsInodes host_namespaces() {
  return capscope::host_namespaces(ProcReader(), 1, static_cast<uint32_t>(getpid()));
}

std::string node_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

std::optional<std::vector<std::string>> parse_field_list(const std::string& s, std::string* error) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string f = s.substr(pos, end - pos);
    if (f.empty()) {
      *error = fmt::format("--fields '{}': empty field name", s);
      return std::nullopt;
    }
    out.push_back(f);
    pos = end + 1;
  }
  return out;
}

}  // namespace capscope::cli
