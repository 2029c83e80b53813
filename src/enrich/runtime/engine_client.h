// RuntimeClient for the Engine API: Docker's API, or podman's libpod API,
// HTTP/1.1 over the engine's unix socket (docs/RUNTIMES.md says what is read
// from which endpoint and field).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "enrich/runtime/container_info.h"

namespace capscope {

enum class EngineFlavor { Docker, Podman };

struct EngineClientOptions {
  EngineFlavor flavor = EngineFlavor::Docker;
  std::string socket_path;  // empty: the flavour's default socket
  // Whole request, connect included: the resolver must never wait long on a stuck engine.
  std::chrono::milliseconds timeout{2000};
};

class EngineClient : public RuntimeClient {
 public:
  explicit EngineClient(EngineClientOptions options);

  static std::string default_socket(EngineFlavor flavor);

  [[nodiscard]] std::string runtime() const override;
  [[nodiscard]] std::string endpoint() const override { return options_.socket_path; }
  std::string version() override;
  ContainerInfo inspect(std::string_view id) override;
  std::vector<std::string> list_running() override;
  // GET /events (Docker) or /libpod/events (podman), filtered to container creates,
  // read as a stream of JSON lines.
  bool follow_creates(const CreatedFn& on_created, const StoppedFn& stopped) override;

 private:
  struct Response {
    long status = 0;
    std::string body;
  };
  Response get(const std::string& path) const;
  [[nodiscard]] std::string api_prefix() const;
  nlohmann::json fetch(const std::string& path, RuntimeError::Kind on_404) const;
  [[noreturn]] void fail(const std::string& problem) const;
  void add_podman_pod(ContainerInfo& info, const Labels& annotations) const;

  EngineClientOptions options_;
};

// One line of the engine's event stream, if it is a container's create event: the
// event's attributes are the container's labels plus the engine's own keys (name,
// image, and podman's podId), which are taken out again.
std::optional<CreatedContainer> created_from_event(std::string_view line, EngineFlavor flavor);

// An RFC 3339 time ("2026-11-24T22:33:32.612831414Z", "...T10:00:00.5+02:00")
// as Unix epoch nanoseconds; nullopt when malformed or out of range.
std::optional<int64_t> parse_rfc3339_ns(std::string_view text);

}  // namespace capscope
