// What the gRPC API (src/api/server.h) needs from a running agent. The agent
// implements Backend; the server turns requests into these calls and their
// answers into messages, so neither side knows the other's internals and the
// tests can drive the real server with a fake Backend.
//
// Threading: the server calls every method from its own RPC threads, any
// number at once; an implementation must be thread-safe. No method may block
// for long (a store read is fine, waiting for the next flush is not).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "enrich/runtime/oci_state.h"
#include "filter/container_filter.h"
#include "filter/filter_spec.h"
#include "profile/profile.h"

namespace capscope::api {

// What a GetEvents subscriber asked for, validated (src/api/event_query.h).
struct EventQuery {
  filter::FilterSpec spec;               // the filters of `capscope trace`
  filter::ContainerSelection selection;  // --namespace/--pod/--container/--selector
  std::string format = "json";           // "json" (trace -o json lines) or "compact"
};

// One event as a subscriber gets it: the line in the asked format, and a few
// fields for clients that do not parse JSON.
struct StreamEvent {
  std::string line;           // one event, no trailing newline
  uint64_t time_ns = 0;       // wall clock, ns since the epoch
  std::string capability;     // "CAP_SYS_ADMIN"
  bool denied = false;        // the check was refused
  uint32_t pid = 0;           // thread group id, as the host sees it
  std::string k8s_namespace;  // empty outside Kubernetes
  std::string pod;            // empty outside a pod
  std::string container;      // container name; empty for host processes
  std::string policy;         // the policy whose Post emitted it; empty for the agent's own events
};

// One subscriber's events. The agent pushes into a bounded queue and never
// waits for the subscriber: what does not fit is dropped and counted.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // The next event, or nullopt when none came within `timeout` or the stream is
  // closed (then closed() is true). Called from one thread at a time.
  virtual std::optional<StreamEvent> next(std::chrono::milliseconds timeout) = 0;
  // The agent will send nothing more (it is stopping, or stopped producing
  // events); queued events are still returned by next() first.
  [[nodiscard]] virtual bool closed() const = 0;
  // Events this subscriber lost because its queue was full, since subscribe.
  [[nodiscard]] virtual uint64_t dropped() const = 0;
};

// A loaded policy, as policy list shows it.
struct PolicyInfo {
  std::string name;    // metadata.name
  std::string source;  // the file it was loaded from, or "api"
  uint32_t selectors = 0;
  std::vector<std::string> actions;  // "Post", "NoPost", "Sigkill": one per selector
  uint64_t hits = 0;                 // checks its selectors matched, summed
  std::string yaml;                  // the document as loaded
};

// The server adds its own version and the number of GetEvents subscribers.
struct Health {
  std::string status = "ok";          // "ok" or "degraded" (then `problems` says why)
  std::vector<std::string> problems;  // one line each
  std::string backend;                // capture backend: tracepoint, fentry, kprobe
  std::string node_name;
  uint64_t uptime_ns = 0;
  uint64_t checks = 0;      // capability checks the kernel saw
  uint64_t events = 0;      // events emitted (before per-subscriber filters)
  uint64_t lost = 0;        // checks or events lost: ring buffer full, queues full
  uint64_t processes = 0;   // process cache size
  uint64_t containers = 0;  // container cache size
  uint64_t profiles = 0;    // profiles (in memory and in the store)
  uint64_t policies = 0;    // loaded policies
};

// A container its runtime's hook announces before its first process runs
// (capscope oci-hook).
struct ContainerAnnouncement {
  OciState state;  // checked (check_oci_state); pid: the runtime's process in the container
  // How long the agent may wait for a runtime to name the container.
  std::chrono::milliseconds wait{0};
};

struct AnnounceResult {
  std::string container;  // its name, or its id when nothing named it in time
  bool named = false;
  uint64_t cgroup_id = 0;
  std::string cgroup_path;
  std::vector<std::string> policies;  // scoped policies in force for it now
};

class Backend {
 public:
  virtual ~Backend() = default;

  // A new subscriber. Null and a one-line *error when the agent cannot serve
  // it (e.g. it runs with --event-mode none); the query is already validated.
  virtual std::unique_ptr<EventStream> subscribe(const EventQuery& query, std::string* error) = 0;

  // Every profile: the store's merged with what the agent recorded since its
  // last flush. nullopt and *error when the store cannot be read.
  virtual std::optional<std::vector<profile::Profile>> list_profiles(std::string* error) = 0;
  // nullopt with *error empty: no profile of that name; with *error: failure.
  virtual std::optional<profile::Profile> get_profile(const std::string& name,
                                                      std::string* error) = 0;

  // Parses, compiles and loads a policy (TracingPolicy YAML), replacing a
  // loaded one of the same name. nullopt and a one-line *error naming the line
  // and field when it does not load (or the kernel cannot take it); the policy
  // loaded before under that name, if any, then stays.
  virtual std::optional<PolicyInfo> add_policy(const std::string& yaml, std::string* error) = 0;
  // False with *error empty: no policy of that name; with *error: failure.
  virtual bool delete_policy(const std::string& name, std::string* error) = 0;
  virtual std::vector<PolicyInfo> list_policies() = 0;

  virtual Health health() = 0;

  // Names an announced container and puts its cgroup in the kernel's scoped policies
  // before it returns (waits up to a.wait for its runtime). nullopt and a one-line
  // *error when it cannot (*invalid set when the announcement itself is wrong: the pid
  // is not in that container's cgroup).
  virtual std::optional<AnnounceResult> announce_container(const ContainerAnnouncement& a,
                                                           bool* invalid, std::string* error) = 0;
};

}  // namespace capscope::api
