// --metrics-address HOST:PORT: parsing and printing, apart from the HTTP server so
// code that only checks the flag does not pull cpp-httplib in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace capscope::metrics {

inline constexpr std::string_view kDefaultMetricsAddress = "127.0.0.1:2113";

struct ListenAddress {
  std::string host;   // "127.0.0.1", "::1", "localhost", "0.0.0.0"
  uint16_t port = 0;  // 0: any free port
};

// "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every IPv4 interface). Anything else gives
// nullopt and a one-line error naming the text, what is wrong and the expected form,
// without the flag's name (callers prefix it, or the config file's position):
// "'localhost': no port: expected HOST:PORT, e.g. 127.0.0.1:2113 or [::1]:2113".
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error);

// "127.0.0.1:2113", "[::1]:2113".
std::string format_listen_address(const std::string& host, uint16_t port);

}  // namespace capscope::metrics
