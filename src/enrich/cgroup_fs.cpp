#include "enrich/cgroup_fs.h"

#include <sys/stat.h>

#include <vector>

namespace capscope {

namespace fs = std::filesystem;

std::optional<uint64_t> CgroupFs::id_of(std::string_view path) const {
  std::vector<fs::path> candidates;
  fs::path p{std::string(path)};
  for (const auto& root : roots_)
    if (p.is_absolute() && p.string().starts_with(root.string())) candidates.push_back(p);
  for (const auto& root : roots_) candidates.push_back(root / p.relative_path());
  for (const auto& c : candidates) {
    struct stat st {};
    if (stat(c.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return st.st_ino;
  }
  return std::nullopt;
}

namespace {

// Depth first, each directory listed on its own: one that vanishes between being
// listed and being entered (a container ending) is skipped, and the walk goes on.
// (std::filesystem::recursive_directory_iterator ends the whole walk on that error.)
void walk_tree(const fs::path& root, uint64_t root_id,
               const std::function<void(uint64_t, std::string)>& visit, size_t limit) {
  if (limit == 0) return;
  visit(root_id, "/");
  size_t n = 1;
  // Paths as /proc/PID/cgroup prints them ("/a/b"), "" for the root itself.
  std::vector<std::string> pending{""};
  auto on_disk = [&](const std::string& rel) { return rel.empty() ? root : root / rel.substr(1); };
  while (!pending.empty()) {
    std::string rel = std::move(pending.back());
    pending.pop_back();
    std::error_code ec;
    fs::directory_iterator it(on_disk(rel), fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;
      if (!fs::is_directory(it->symlink_status(type_ec))) continue;
      struct stat st {};
      if (stat(it->path().c_str(), &st) != 0) continue;  // gone already
      if (n++ >= limit) return;
      std::string child = rel + "/" + it->path().filename().string();
      visit(st.st_ino, child);
      pending.push_back(std::move(child));
    }
  }
}

}  // namespace

void CgroupFs::walk(const std::function<void(uint64_t, std::string)>& visit, size_t limit) const {
  for (const auto& root : roots_) {
    std::error_code ec;
    struct stat st {};
    // /sys/fs/cgroup of a hybrid system is a tmpfs of v1 mounts, not a v2 root.
    if (stat(root.c_str(), &st) != 0 || !fs::exists(root / "cgroup.procs", ec)) continue;
    walk_tree(root, st.st_ino, visit, limit);
    return;
  }
}

std::optional<std::string_view> unified_cgroup_path(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.starts_with("0::")) return line.substr(3);
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace capscope
