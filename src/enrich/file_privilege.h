// What an executable file grants by itself at exec: its set-user-ID and
// set-group-ID bits and its file capabilities (the security.capability
// extended attribute). record keeps these for the binaries a workload ran, so
// the advice can say whether it needs privilege escalation (no_new_privs
// blocks both) and whether file capabilities are already in play.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace capscope {

struct FileCaps {
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
  bool effective = false;  // the "e" flag: permitted raised into effective at exec
  uint32_t rootid = 0;     // revision 3 (namespaced) attributes: the owner of the user namespace
};

struct FilePrivilege {
  bool setuid = false;
  bool setgid = false;
  uint32_t owner_uid = 0;
  uint32_t owner_gid = 0;
  std::optional<FileCaps> caps;

  [[nodiscard]] bool any() const { return setuid || setgid || caps.has_value(); }
};

// Decodes a security.capability value (struct vfs_cap_data, revisions 1 to
// 3, little-endian); nullopt when it is not one.
std::optional<FileCaps> parse_file_caps(const void* data, size_t size);

// The privilege of the file at `path` (followed if a link, so /proc/PID/exe
// works across mount namespaces); nullopt when it cannot be read, or when
// `inode` is not 0 and the file is another one (/proc/PID/exe after a later
// exec of the process, a path that names another file now).
std::optional<FilePrivilege> read_file_privilege(const std::string& path, uint64_t inode = 0);

// "cap_chown,cap_net_bind_service+ep": setcap's spelling of file capabilities.
std::string setcap_text(const FileCaps& caps);

}  // namespace capscope
