// The interface every container runtime client (Engine API for Docker and Podman, CRI for
// containerd and CRI-O) implements. The resolver (runtime_resolver.h) asks the clients off the
// event path and caches the answers by container id.
#pragma once

#include <functional>
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

// What a runtime's event stream says of a container it has just created, before its
// cgroup exists. `complete` is false when naming the container needs more than the event
// carries (a podman pod's name and labels are in the pod's own inspect): the resolver then
// asks the runtime instead of publishing the event's fields.
struct CreatedContainer {
  ContainerInfo info;  // id, runtime, name, image, labels (and what they imply)
  bool complete = true;
};

class RuntimeClient {
 public:
  using CreatedFn = std::function<void(CreatedContainer)>;
  using StoppedFn = std::function<bool()>;

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
  // Follows the runtime's container-create events, calling `on_created` for each, until
  // `stopped()` is true (returns true; it is polled at least every 100 ms) or the stream
  // fails or ends (throws RuntimeError(Unavailable)). A runtime without such a stream
  // returns false at once. Runs on a thread of its own, beside the other calls: it must
  // not share a connection with them.
  virtual bool follow_creates(const CreatedFn& /*on_created*/, const StoppedFn& /*stopped*/) {
    return false;
  }
};

}  // namespace capscope
