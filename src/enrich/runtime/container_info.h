// The interface every container runtime client (Engine API for Docker and Podman, CRI for
// containerd and CRI-O) implements. The resolver (runtime_resolver.h) asks the clients off the
// event path and caches the answers by container id.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/container.h"

namespace capscope {

// Thrown by runtime clients. Kind NotFound means the runtime answered and does
// not know the id (another runtime may); Unavailable means it did not answer
// properly (no socket, not a socket, refused, timed out, closed mid-response,
// garbage): the resolver degrades to cgroup-only attribution and retries later.
class RuntimeError : public std::runtime_error {
 public:
  enum class Kind { NotFound, Unavailable };
  RuntimeError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  [[nodiscard]] Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

class RuntimeClient {
 public:
  RuntimeClient() = default;
  RuntimeClient(const RuntimeClient&) = delete;
  RuntimeClient& operator=(const RuntimeClient&) = delete;
  virtual ~RuntimeClient() = default;

  // "podman", "docker", "containerd" or "cri-o" (for a CRI client: what the
  // runtime's Version call names, lower-cased).
  [[nodiscard]] virtual std::string runtime() const = 0;
  [[nodiscard]] virtual std::string endpoint() const = 0;  // the socket path
  // The runtime's version ("4.3.1"); throws RuntimeError(Unavailable) when it does not answer.
  virtual std::string version() = 0;
  // Everything the runtime says about container `id` (a full id). Throws RuntimeError.
  virtual ContainerInfo inspect(std::string_view id) = 0;
  // Ids of the containers running now. Throws RuntimeError(Unavailable).
  virtual std::vector<std::string> list_running() = 0;
};

}  // namespace capscope
