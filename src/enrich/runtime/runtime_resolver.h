// The runtime resolver: names containers by asking their runtimes, off the
// event path. The pipeline calls lookup() for each check's container id; it
// never blocks: an id seen for the first time is queued for a worker thread
// that asks the runtimes, and the answer is there for the checks that follow.
//
// A runtime that is absent, slow, or dies mid-run degrades attribution to the
// cgroup's container id: one warning when it stops answering, one notice when
// it answers again, and the ids that waited for it are asked again then.
// A runtime that answers "no such container" is asked again a few times (the
// cgroup of a container being created appears before the runtime lists it).
//
// Runtimes with an event stream (Docker, podman, CRI's GetContainerEvents) are also
// followed, each on a thread of its own: a container's create event names it before its
// cgroup exists, so a container is named by its first check, not ~0.1 s later (podman
// holds a starting container's lock, and answers an inspect only once it has started).
// The event's fields are published at once and the full inspect asked `refine_after`
// later; see docs/RUNTIMES.md.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "enrich/runtime/container_info.h"

namespace capscope {

struct ResolverOptions {
  std::chrono::milliseconds retry_unavailable{3000};  // ask a silent runtime again after this
  std::chrono::milliseconds retry_not_found{500};     // ask again for an id no runtime knew
  int not_found_attempts = 6;                         // then give up on that id
  size_t max_entries = 8192;                          // the cache forgets the oldest beyond this
  bool follow_events = true;                          // follow runtimes' create events
  std::chrono::milliseconds refine_after{1000};       // inspect a container named by its event
};

struct RuntimeStatus {
  std::string runtime;
  std::string endpoint;
  bool answering = false;
  std::string version;  // when answering
  std::string error;    // the last problem, when not
};

class RuntimeResolver {
 public:
  // Warnings go to `warn` (spdlog by default): one line per change of a runtime's state.
  using WarnFn = std::function<void(const std::string&)>;
  explicit RuntimeResolver(std::vector<std::unique_ptr<RuntimeClient>> clients,
                           ResolverOptions options = {}, WarnFn warn = {});
  RuntimeResolver(const RuntimeResolver&) = delete;
  RuntimeResolver& operator=(const RuntimeResolver&) = delete;
  ~RuntimeResolver();

  // The runtime's answer for container `id` if it is known; otherwise queues the
  // question (once) and returns null. `runtime_hint` (from the cgroup path) is asked first.
  ContainerInfoPtr lookup(std::string_view id, std::string_view runtime_hint = {});
  // Waits up to `timeout` for the answer (start-up and record, not the event path).
  ContainerInfoPtr resolve(std::string_view id, std::string_view runtime_hint,
                           std::chrono::milliseconds timeout);
  // Every running container of every answering runtime, asked now (blocking).
  std::vector<ContainerInfoPtr> list_running();
  // Asks each runtime for its version now; what `capscope check` prints.
  std::vector<RuntimeStatus> probe();
  // True once every answering runtime has said, again and again, that it does not
  // know `id`: no name will come for it (a container of a runtime not configured).
  [[nodiscard]] bool given_up(std::string_view id) const;
  // Bumped whenever an answer is published: callers holding answers refresh on change.
  [[nodiscard]] uint64_t generation() const;
  [[nodiscard]] bool has_clients() const { return !clients_.empty(); }
  // Containers first named from a runtime's create event (before any inspect answered).
  [[nodiscard]] uint64_t named_from_events() const {
    return named_from_events_.load(std::memory_order_relaxed);
  }
  // The containers named from create events since the last call (at most the newest
  // 1,024): the agent tells the kernel their scoped policies before their cgroups exist.
  std::vector<ContainerInfoPtr> take_named_from_events();
  // Containers cached (named, or known to be unknown), bounded by max_entries.
  [[nodiscard]] size_t cached() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  enum class State : uint8_t { Queued, Known, Unknown };
  struct Entry {
    State state = State::Queued;
    ContainerInfoPtr info;
    std::string hint;
    int attempts = 0;
    std::chrono::steady_clock::time_point retry_at{};
    uint64_t order = 0;  // insertion order, for the size bound
  };
  struct ClientState {
    std::unique_ptr<RuntimeClient> client;
    bool down = false;
    std::chrono::steady_clock::time_point retry_at{};
  };

  void worker_loop();
  void watch_loop(RuntimeClient& client);
  void on_created(CreatedContainer created);
  void ask(const std::string& id);
  // Asks the clients in hint order; returns the info, or null with `all_down` set when no
  // client could answer at all (as opposed to every answering one saying "not found").
  ContainerInfoPtr ask_clients(const std::string& id, const std::string& hint, bool* all_down);
  void mark_down(ClientState& c, const std::string& why);
  void mark_up(ClientState& c);
  void trim();

  std::vector<ClientState> clients_;
  ResolverOptions options_;
  WarnFn warn_;
  mutable std::mutex mu_;
  std::mutex client_mu_;            // clients are not thread-safe: one question at a time
  std::condition_variable wake_;    // the worker: new work or stop
  std::condition_variable answer_;  // resolve(): an answer was published
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::string> queue_;
  std::deque<ContainerInfoPtr> announced_;  // take_named_from_events()
  uint64_t next_order_ = 0;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  std::atomic<bool> stopping_{false};   // stop_, for the event streams' polls
  std::condition_variable watch_wait_;  // a watcher between two attempts: stop
  std::atomic<uint64_t> named_from_events_{0};
  std::thread worker_;
  std::vector<std::thread> watchers_;
};

// Clients for the runtimes whose sockets exist (or were named): podman, docker,
// containerd, cri-o. Empty socket options mean the default paths.
struct RuntimeSockets {
  std::string podman, docker, containerd, crio;
};
std::vector<std::unique_ptr<RuntimeClient>> make_runtime_clients(const RuntimeSockets& sockets);

}  // namespace capscope
