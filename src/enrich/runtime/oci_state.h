// What an OCI runtime hook is given: the container's state (runtime-spec
// "state", on the hook's stdin) and, from its annotations, what a Kubernetes
// runtime says of the container before any API can be asked. `capscope oci-hook`
// reads the first; the agent falls back on the second (docs/RUNTIMES.md, "OCI hook").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "enrich/runtime/container_info.h"

namespace capscope {

struct OciState {
  std::string id;      // the container's id, as its runtime names it
  std::string status;  // "creating" at createRuntime, "created", "running", "stopped"
  uint32_t pid = 0;    // the runtime's process in the container (0 once stopped)
  std::string bundle;  // the bundle directory (holds config.json)
  Labels annotations;
};

// The state read from a hook's stdin is at most this long: a runtime's is a few KiB.
inline constexpr size_t kMaxOciStateBytes = 1 << 20;

// Parses the state; nullopt and a one-line *error naming the field when it is not
// one a hook can act on (not JSON, no id, an id that is not a runtime's, no pid).
std::optional<OciState> parse_oci_state(std::string_view text, std::string* error);

// Whether a state (parsed, or sent to the agent) names a container a hook can act on:
// a runtime's container id and a pid. False and a one-line *error naming the field.
bool check_oci_state(const OciState& state, std::string* error);

// True for the pause container of a pod sandbox (CRI's annotations say so): it runs
// nothing of the workload's, and a hook has nothing to announce for it.
bool is_sandbox(const Labels& annotations);

// The container's name and pod (name, namespace, uid) from the annotations containerd's
// CRI plugin (io.kubernetes.cri.*) or CRI-O (io.kubernetes.*) put in its spec; nullopt
// without them (podman and Docker put no name there). Pod labels are never among
// them: a podSelector with labels needs the runtime's own answer.
std::optional<ContainerInfo> identity_from_annotations(std::string_view id,
                                                       const Labels& annotations);

}  // namespace capscope
