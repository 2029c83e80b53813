#include "enrich/file_privilege.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "tables/capabilities.h"

namespace capscope {

namespace {

// The layout of security.capability, from the kernel's uapi capability.h.
constexpr uint32_t kRevisionMask = 0xFF000000;
constexpr uint32_t kRevision1 = 0x01000000;  // 32-bit sets, 12 bytes
constexpr uint32_t kRevision2 = 0x02000000;  // 64-bit sets, 20 bytes
constexpr uint32_t kRevision3 = 0x03000000;  // revision 2 and a rootid, 24 bytes
constexpr uint32_t kFlagEffective = 0x000001;

uint32_t le32_at(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

std::optional<FileCaps> parse_file_caps(const void* data, size_t size) {
  const auto* b = static_cast<const unsigned char*>(data);
  if (size < 4) return std::nullopt;
  uint32_t magic = le32_at(b);
  uint32_t revision = magic & kRevisionMask;
  size_t words = revision == kRevision1 ? 1 : 2;
  size_t want = revision == kRevision1 ? 12 : revision == kRevision2 ? 20 : 24;
  if ((revision != kRevision1 && revision != kRevision2 && revision != kRevision3) || size < want)
    return std::nullopt;
  FileCaps c;
  c.effective = (magic & kFlagEffective) != 0;
  for (size_t i = 0; i < words; ++i) {
    c.permitted |= static_cast<uint64_t>(le32_at(b + 4 + 8 * i)) << (32 * i);
    c.inheritable |= static_cast<uint64_t>(le32_at(b + 8 + 8 * i)) << (32 * i);
  }
  if (revision == kRevision3) c.rootid = le32_at(b + 20);
  return c;
}

std::optional<FilePrivilege> read_file_privilege(const std::string& path, uint64_t inode) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || (inode != 0 && st.st_ino != inode)) return std::nullopt;
  FilePrivilege f;
  f.setuid = (st.st_mode & S_ISUID) != 0;
  // Set-group-ID without group execute is mandatory locking, not privilege.
  f.setgid = (st.st_mode & S_ISGID) != 0 && (st.st_mode & S_IXGRP) != 0;
  f.owner_uid = st.st_uid;
  f.owner_gid = st.st_gid;
  std::array<unsigned char, 32> buf{};
  ssize_t n = getxattr(path.c_str(), "security.capability", buf.data(), buf.size());
  if (n > 0) f.caps = parse_file_caps(buf.data(), static_cast<size_t>(n));
  // A link (/proc/PID/exe) may have moved on between the two reads.
  struct stat after {};
  if (inode != 0 && (stat(path.c_str(), &after) != 0 || after.st_ino != inode)) return std::nullopt;
  return f;
}

std::string setcap_text(const FileCaps& caps) {
  std::string names;
  for (int cap : tables::caps_in_mask(caps.permitted | caps.inheritable))
    names += (names.empty() ? "" : ",") + tables::cap_lower_name(cap);
  std::string flags = caps.effective ? "e" : "";
  if (caps.inheritable != 0) flags += "i";
  if (caps.permitted != 0) flags += "p";
  // setcap takes one flag set for the list; mixed sets are rare enough to show apart.
  if (caps.inheritable != 0 && caps.permitted != 0 && caps.inheritable != caps.permitted)
    return names + "+" + flags + " (permitted and inheritable differ)";
  return names.empty() ? "=" : names + "+" + flags;
}

}  // namespace capscope
