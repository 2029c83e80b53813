// Where the agent's API listens and who may reach it: the address forms
// --server-address takes, and the unix socket's life cycle (its folder, a stale
// file left by a killed agent, a live agent already answering there).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace capscope::api {

inline constexpr const char* kDefaultAddress = "unix:///var/run/capscope/capscope.sock";

// The socket file of a unix address ("unix:///abs/path", "unix:path", or a
// bare absolute path); nullopt for a TCP address ("localhost:54321").
std::optional<std::string> unix_socket_path(std::string_view address);

// The address in the form gRPC takes ("unix:/abs/path", "host:port").
std::string grpc_target(std::string_view address);

enum class Probe {
  Missing,    // no such file
  NotSocket,  // a file that is not a socket
  Refused,    // a socket nobody listens on: left by an agent that died
  Denied,     // this user may not connect (the socket is owner-only)
  Answers,    // something accepts connections there
  Error,      // anything else (the message says what)
};

// Tries to connect to a unix socket, without sending anything. *message says
// what is wrong, without the path (the caller names it).
Probe probe_socket(const std::string& path, std::string* message);

// Makes the socket's folder (0700, when missing), and clears the way: a stale
// socket file is removed; a live one, or a file that is not a socket, is an
// error naming the fix (the caller names the address).
bool prepare_socket_path(const std::string& path, std::string* error);

}  // namespace capscope::api
