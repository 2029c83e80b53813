#include "api/socket.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace capscope::api {

namespace {

// sun_path holds 108 bytes with the terminating NUL.
constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

// The closing of a descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

Probe probe_by_errno(int err, std::string* message) {
  switch (err) {
    case ENOENT:
      return Probe::Missing;
    case ECONNREFUSED:
      return Probe::Refused;
    case EACCES:
    case EPERM:
      *message =
          "permission denied (the socket is owner-only: run as root, or as the agent's user)";
      return Probe::Denied;
    default:
      *message = std::strerror(err);
      return Probe::Error;
  }
}

bool make_folder(const std::filesystem::path& dir, std::string* error) {
  std::error_code ec;
  if (dir.empty() || std::filesystem::is_directory(dir, ec)) return true;
  std::filesystem::create_directories(dir, ec);
  // Owner-only: the socket's own mode is set after bind, and the folder keeps
  // everyone else out in between.
  if (!ec) std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  if (!ec) return true;
  *error = fmt::format("cannot create the folder {}: {} (create it, or choose another address)",
                       dir.string(), ec.message());
  return false;
}

}  // namespace

std::optional<std::string> unix_socket_path(std::string_view address) {
  if (address.starts_with("unix://")) return std::string(address.substr(7));
  if (address.starts_with("unix:")) return std::string(address.substr(5));
  if (address.starts_with("/")) return std::string(address);
  return std::nullopt;
}

std::string grpc_target(std::string_view address) {
  if (auto path = unix_socket_path(address)) return "unix:" + *path;
  return std::string(address);
}

Probe probe_socket(const std::string& path, std::string* message) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return probe_by_errno(errno, message);
  if (!S_ISSOCK(st.st_mode)) {
    *message = "not a socket";
    return Probe::NotSocket;
  }
  if (path.size() > kMaxSocketPath) {
    *message = fmt::format("path longer than {} bytes", kMaxSocketPath);
    return Probe::Error;
  }
  Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return probe_by_errno(errno, message);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0)
    return Probe::Answers;
  return probe_by_errno(errno, message);
}

bool prepare_socket_path(const std::string& path, std::string* error) {
  if (path.empty() || path.size() > kMaxSocketPath) {
    *error = fmt::format("a unix socket path must have 1 to {} bytes", kMaxSocketPath);
    return false;
  }
  if (!make_folder(std::filesystem::path(path).parent_path(), error)) return false;
  std::string message;
  switch (probe_socket(path, &message)) {
    case Probe::Missing:
      return true;
    case Probe::Refused:
      // Left by an agent that did not stop cleanly: nobody listens on it.
      if (unlink(path.c_str()) == 0 || errno == ENOENT) return true;
      *error =
          fmt::format("cannot remove the stale socket file {}: {}", path, std::strerror(errno));
      return false;
    case Probe::Answers:
      *error =
          "another process answers there (a capscope agent already running?): stop it, or choose "
          "another address";
      return false;
    case Probe::NotSocket:
      *error = fmt::format("{} is {}: remove it, or choose another address", path, message);
      return false;
    case Probe::Denied:
    case Probe::Error:
      break;
  }
  *error = message;
  return false;
}

}  // namespace capscope::api
