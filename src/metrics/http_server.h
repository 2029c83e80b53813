// The agent's metrics endpoint: GET /metrics (the registry in the Prometheus text
// format) and GET /healthz, on --metrics-address HOST:PORT. cpp-httplib is kept inside
// http_server.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "metrics/listen_address.h"
#include "metrics/registry.h"

namespace capscope::metrics {

// Two worker threads, one request per connection, clients dropped after 2 s of silence.
// The server's threads block every signal, so the agent's signals go to its own threads.
// Note: cpp-httplib's server sets SIGPIPE to SIG_IGN for the whole process when one
// is constructed.
class MetricsServer {
 public:
  // Serves `registry`, which must outlive the server.
  explicit MetricsServer(const Registry& registry);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // What /healthz says: the function returns "" when healthy (200 "ok"), else the
  // reason (503 with the reason). Without one, /healthz is 200 while the server runs.
  // Set before start(); it is called on the server's threads.
  void set_health_check(std::function<std::string()> check);

  // Binds `address` and serves on a thread of its own. Returns "" on success, else one
  // line naming the address, the cause and what to do, e.g. "127.0.0.1:2113: address
  // already in use: another agent running? pass --metrics-address".
  std::string start(std::string_view address);
  // Stops serving and joins the server's threads; safe to call twice or before start().
  void stop();

  // Where the server listens once started ("127.0.0.1:41234": the port it really got
  // when asked for port 0), and that port.
  [[nodiscard]] std::string address() const;
  [[nodiscard]] uint16_t port() const;
  [[nodiscard]] uint64_t scrapes() const;  // GET /metrics served so far

 private:
  void start_serving_thread();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace capscope::metrics
