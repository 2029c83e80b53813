// A client of the agent's API: what the CLI commands use when an agent runs
// (src/cli/remote.h decides when that is).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "capscope/v1/capscope.pb.h"

namespace capscope::api {

// Why connect() found no agent.
enum class ConnectProblem {
  NoAgent,  // no socket file, or nobody listens: no agent runs there
  Denied,   // the socket is there but this user may not use it
  Broken,   // something answered, but not as a capscope agent of API v1 does (or too slowly)
};

struct CallResult {
  enum class Kind { Ok, InvalidArgument, NotFound, Unavailable, Failed };
  Kind kind = Kind::Ok;
  std::string message;  // one line, the agent's own when it gave one
  [[nodiscard]] bool ok() const { return kind == Kind::Ok; }
};

class Client {
 public:
  // Connects and asks the agent's version, all within `deadline`. nullopt, the
  // problem and a one-line *error when no capscope agent answers.
  static std::optional<Client> connect(const std::string& address,
                                       std::chrono::milliseconds deadline, std::string* error,
                                       ConnectProblem* problem = nullptr);
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  [[nodiscard]] const std::string& address() const;
  // The agent's answer to GetVersion at connect().
  [[nodiscard]] const v1::GetVersionResponse& version() const;

  CallResult list_profiles(v1::ListProfilesResponse* out);
  CallResult get_profile(const std::string& name, v1::Profile* out);
  CallResult advise(const v1::AdviseRequest& request, v1::AdviseResponse* out);
  CallResult add_policy(const std::string& yaml, v1::AddPolicyResponse* out);
  CallResult delete_policy(const std::string& name);
  CallResult list_policies(v1::ListPoliciesResponse* out);
  CallResult health(v1::GetHealthResponse* out);
  // The OCI hook's call; the agent waits for the runtime within the call's deadline.
  CallResult announce_container(const v1::AnnounceContainerRequest& request,
                                v1::AnnounceContainerResponse* out);

  // Streams events to on_event until the agent ends the stream (Ok), on_event
  // returns false (Ok), or `stop` turns true (Ok; looked at every 100 ms).
  CallResult get_events(const v1::GetEventsRequest& request,
                        const std::function<bool(const v1::Event&)>& on_event,
                        const std::atomic<bool>& stop);

  // Unary calls get this long (default 10 s).
  void set_call_deadline(std::chrono::milliseconds d) { call_deadline_ = d; }

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::chrono::milliseconds call_deadline_{10000};
};

}  // namespace capscope::api
