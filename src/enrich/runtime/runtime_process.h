// Start-up noise: the container runtime's own processes make capability checks
// inside a container's cgroup (runc's init sets up namespaces, mounts and
// capabilities with SYS_ADMIN, SETPCAP, ... before it execs the entrypoint; a
// pod's pause or catatonit holds the namespaces). Those checks are the
// runtime's, not the workload's: traces mark them, profiles leave them out.
#pragma once

#include <string_view>

#include "model/process.h"

namespace capscope {

// True for runc's init stages (comm "runc:[0:PARENT]", "runc:[1:CHILD]",
// "runc:[2:INIT]"), and for runtime binaries by name: runc, crun, youki, runsc,
// conmon, containerd-shim*, catatonit, pause.
bool is_runtime_process(const ProcessInfo& p);

// The same test on what an exec or fork record carries: the file executed, argv[0]
// (runc re-executes itself as /proc/self/exe or a memfd copy, keeping argv[0]
// "runc"), and the comm.
bool is_runtime_program(std::string_view binary, std::string_view argv0, std::string_view comm);

}  // namespace capscope
