#include "enrich/cgroup_fs.h"

#include <sys/stat.h>

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

void CgroupFs::walk(const std::function<void(uint64_t, std::string)>& visit, size_t limit) const {
  for (const auto& root : roots_) {
    std::error_code ec;
    struct stat st {};
    // /sys/fs/cgroup of a hybrid system is a tmpfs of v1 mounts, not a v2 root.
    if (stat(root.c_str(), &st) != 0 || !fs::exists(root / "cgroup.procs", ec)) continue;
    visit(st.st_ino, "/");
    size_t n = 1;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator() && n < limit; it.increment(ec)) {
      if (it->is_symlink(ec) || !it->is_directory(ec)) continue;
      if (stat(it->path().c_str(), &st) != 0) continue;
      visit(st.st_ino, "/" + fs::relative(it->path(), root, ec).string());
      ++n;
    }
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
