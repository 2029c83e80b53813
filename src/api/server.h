// The agent's gRPC API (proto/capscope/v1/capscope.proto, docs/API.md) over a
// Backend. Listens on a unix socket, owner-only by default, or on TCP.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "api/backend.h"
#include "api/socket.h"

namespace capscope::api {

struct ServerOptions {
  std::string address = kDefaultAddress;
  mode_t socket_mode = 0600;  // of a unix socket; 0660 lets the socket's group in
  // GetEvents streams at once; one more is refused (RESOURCE_EXHAUSTED).
  size_t max_subscribers = 64;
  // stop(): how long streams and calls get to end before they are cancelled.
  std::chrono::milliseconds stop_grace{1000};
};

class Server {
 public:
  // Listens and serves on gRPC's threads. Null and a one-line *error
  // ("--server-address ADDR: why, and the fix") when the address cannot be
  // used: a live agent answers there, a file is in the way, the folder cannot
  // be made, the port is taken.
  static std::unique_ptr<Server> start(Backend& backend, const ServerOptions& options,
                                       std::string* error);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Ends every stream (each gets a last message with `final` set), waits for
  // calls in flight up to stop_grace, cancels what is left, and removes the
  // socket file. Returns within stop_grace plus a poll interval (100 ms). Idempotent.
  void stop();

  [[nodiscard]] const std::string& address() const;
  [[nodiscard]] size_t subscribers() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  static std::unique_ptr<Server> listen(Backend& backend, const ServerOptions& options,
                                        std::string* error);
  std::unique_ptr<Impl> impl_;
};

}  // namespace capscope::api
