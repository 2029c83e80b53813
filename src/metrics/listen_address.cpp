#include "metrics/listen_address.h"

namespace capscope::metrics {

namespace {

constexpr const char* kAddressForm = "expected HOST:PORT, e.g. 127.0.0.1:2113 or [::1]:2113";

std::optional<ListenAddress> bad_address(std::string_view text, const std::string& why,
                                         std::string* error) {
  if (error != nullptr) *error = "'" + std::string(text) + "': " + why + ": " + kAddressForm;
  return std::nullopt;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

}  // namespace

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error) {
  if (text.empty()) return bad_address(text, "empty", error);
  ListenAddress out;
  std::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find("]:");
    if (close == std::string_view::npos)
      return bad_address(text, "an IPv6 address needs ']:PORT' after it", error);
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    if (out.host.empty()) return bad_address(text, "empty IPv6 address", error);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad_address(text, "no port", error);
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos)
      return bad_address(text, "put an IPv6 address in brackets", error);
    // Go's convention, which Prometheus users know: ":2113" is every interface.
    if (out.host.empty()) out.host = "0.0.0.0";
  }
  auto port = parse_port(port_text);
  if (!port)
    return bad_address(text, "port '" + std::string(port_text) + "' is not a number in 0..65535",
                       error);
  out.port = *port;
  return out;
}

std::string format_listen_address(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace capscope::metrics
