// What a workload is granted today, read from where it is declared: a
// Kubernetes workload (Pod, Deployment, DaemonSet, StatefulSet, ReplicaSet,
// Job, CronJob, or a List of them), a compose file, `docker inspect` JSON, or
// a live process's capability sets. `advise --current` compares a profile
// against it (see compare.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "advice/runtime_defaults.h"
#include "model/records.h"

namespace capscope {
class ProcReader;
}

namespace capscope::advice {

enum class SpecKind { Kubernetes, Compose, DockerInspect, Process };

struct CurrentContainer {
  SpecKind kind = SpecKind::Kubernetes;
  std::string name;      // container name, compose service, docker Name without "/", "pid N"
  std::string workload;  // Kubernetes only: "Deployment/web"
  bool init = false;     // a Kubernetes initContainer
  int line = 0;          // where it is declared in the file (1-based; 0: unknown)

  std::optional<Runtime> runtime;  // whose default set it starts from; none for a process
  bool runtime_assumed = false;    // neither the user nor the spec said which

  bool drop_all = false;       // drop: [ALL] / cap_drop: [ALL]
  bool add_all = false;        // add: [ALL]
  std::vector<int> add, drop;  // the named ones, ascending
  // Of those, the ones written with CAP_ (containerd takes them for other names).
  std::vector<int> add_prefixed, drop_prefixed;
  bool privileged = false;
  std::optional<bool> allow_privilege_escalation;
  std::optional<int64_t> run_as_user;  // the container's, else the pod's
  std::optional<bool> run_as_non_root;
  std::string user;  // compose `user`, docker Config.User

  // --current-pid only.
  uint32_t pid = 0;
  CapSets live;
};

struct CurrentSpec {
  std::string file;  // as the user named it; "pid N" for a process
  std::vector<CurrentContainer> containers;
};

struct SpecOptions {
  std::optional<Runtime> runtime;  // --runtime
};

// Parses a spec; the format comes from the content, not the file name. On an
// error, nullopt and one line in *error: "FILE:LINE: FIELD: problem (fix)".
std::optional<CurrentSpec> parse_current_spec(std::string_view text, const std::string& file,
                                              const SpecOptions& opts, std::string* error);

// Reads and parses a file.
std::optional<CurrentSpec> load_current_spec(const std::string& path, const SpecOptions& opts,
                                             std::string* error);

// A live process: its sets from /proc/PID/status.
std::optional<CurrentSpec> current_of_process(const ProcReader& reader, uint32_t pid,
                                              std::string* error);

// What the container holds today: all capabilities when privileged, else the
// runtime default (nothing after drop ALL) minus drops plus adds; for a
// process, its bounding and effective sets. Ascending.
std::vector<int> held_caps(const CurrentContainer& c);

// "Deployment/web, container app", "service web", "container web", "pid 42".
std::string describe(const CurrentContainer& c);

// --container NAME: the container's name, or WORKLOAD/NAME ("Deployment/web/app").
bool matches(const CurrentContainer& c, std::string_view selector);

}  // namespace capscope::advice
