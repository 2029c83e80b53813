// The cgroup v2 (unified) hierarchy as a file system: the id the kernel gives a
// cgroup, which BPF's bpf_get_current_cgroup_id() reports, is the inode number of
// its directory. Mounted at /sys/fs/cgroup (v2) or /sys/fs/cgroup/unified (hybrid).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capscope {

class CgroupFs {
 public:
  explicit CgroupFs(std::vector<std::filesystem::path> roots = {"/sys/fs/cgroup",
                                                                "/sys/fs/cgroup/unified"})
      : roots_(std::move(roots)) {}

  // The id of the cgroup at `path`: absolute in the file system, or relative to a
  // root ("/libpod_parent/libpod-<id>" as /proc/PID/cgroup prints it). nullopt if no
  // root holds such a directory.
  [[nodiscard]] std::optional<uint64_t> id_of(std::string_view path) const;

  // Calls visit(id, path) for every cgroup of the first root that is a cgroup v2
  // hierarchy, the root itself included ("/"), at most `limit` of them. Directories
  // that vanish during the walk are skipped.
  void walk(const std::function<void(uint64_t, std::string)>& visit, size_t limit) const;

 private:
  std::vector<std::filesystem::path> roots_;
};

// The unified hierarchy's path in the text of /proc/PID/cgroup (its "0::" line).
std::optional<std::string_view> unified_cgroup_path(std::string_view proc_pid_cgroup);

}  // namespace capscope
