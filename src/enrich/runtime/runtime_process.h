// Start-up noise: the container runtime's own processes make capability checks
// inside a container's cgroup (runc's init sets up namespaces, mounts and
// capabilities with SYS_ADMIN, SETPCAP, ... before it execs the entrypoint; a
// pod's pause or catatonit holds the namespaces). Those checks are the
// runtime's, not the workload's: traces mark them, profiles leave them out.
#pragma once

#include "model/process.h"

namespace capscope {

// True for runc's init stages (comm "runc:[0:PARENT]", "runc:[1:CHILD]",
// "runc:[2:INIT]"), and for runtime binaries by name: runc, crun, youki, runsc,
// conmon, containerd-shim*, catatonit, pause.
bool is_runtime_process(const ProcessInfo& p);

}  // namespace capscope
