#include "advice/runtime_defaults.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "util/strings.h"

namespace capscope::advice {

namespace {

// Capability numbers (linux/capability.h), so the lists below read as names.
constexpr int kChown = 0, kDacOverride = 1, kFowner = 3, kFsetid = 4, kKill = 5, kSetgid = 6,
              kSetuid = 7, kSetpcap = 8, kNetBindService = 10, kNetRaw = 13, kSysChroot = 18,
              kMknod = 27, kAuditWrite = 29, kSetfcap = 31;

// Docker (moby): oci/caps/defaults.go DefaultCapabilities(), unchanged from
// Docker 1.x to 28; dockerd's `default-capabilities` setting can override it.
constexpr std::array kDocker = {kChown,     kDacOverride, kFowner,     kFsetid,         kKill,
                                kSetgid,    kSetuid,      kSetpcap,    kNetBindService, kNetRaw,
                                kSysChroot, kMknod,       kAuditWrite, kSetfcap};

// containerd's CRI plugin: pkg/oci/spec.go (oci/spec.go before 2.0)
// defaultUnixCaps(), the same 14 as Docker's. A 2024 change to drop MKNOD,
// NET_RAW, SETFCAP, SYS_CHROOT and AUDIT_WRITE in 2.0 was retracted
// (containerd PR #10435, issue #10434 still open); an opt-in "reduced"
// profile was proposed in PR #12588 (2025), with the default unchanged.
constexpr std::array kContainerd = kDocker;

// CRI-O: internal/config/capabilities Default(), 9 since CRI-O 1.18 (2020),
// which dropped NET_RAW and SYS_CHROOT (PR #3119) after MKNOD, SETFCAP and
// AUDIT_WRITE; crio.conf's `default_capabilities` can override it.
constexpr std::array kCrio = {kChown,  kDacOverride, kFowner,  kFsetid,        kKill,
                              kSetgid, kSetuid,      kSetpcap, kNetBindService};

// Podman: containers.conf `default_capabilities`. containers-common made
// these 11 the built-in default in late 2022 (containers/common PR #1240);
// distributions shipped the same list in containers.conf before. Checked
// against Debian 12's /usr/share/containers/containers.conf
// (golang-github-containers-common 0.50.1, podman 4.3.1).
constexpr std::array kPodman = {kChown,          kDacOverride, kFowner, kFsetid,
                                kKill,           kSetgid,      kSetuid, kSetpcap,
                                kNetBindService, kSysChroot,   kSetfcap};

template <size_t N>
constexpr std::array<int, N> sorted(std::array<int, N> a) {
  std::sort(a.begin(), a.end());
  return a;
}

constexpr auto kDockerSorted = sorted(kDocker);
constexpr auto kContainerdSorted = sorted(kContainerd);
constexpr auto kCrioSorted = sorted(kCrio);
constexpr auto kPodmanSorted = sorted(kPodman);

const std::array<RuntimeDefault, 4> kDefaults = {{
    {Runtime::Docker, "docker", "moby oci/caps/defaults.go (Docker 1.x to 28)", kDockerSorted},
    {Runtime::Containerd, "containerd", "containerd pkg/oci/spec.go defaultUnixCaps (1.x and 2.x)",
     kContainerdSorted},
    {Runtime::Crio, "cri-o", "CRI-O internal/config/capabilities (1.18 and later)", kCrioSorted},
    {Runtime::Podman, "podman",
     "containers.conf default_capabilities (containers-common 0.50, Podman 4.3 and later)",
     kPodmanSorted},
}};

}  // namespace

std::span<const RuntimeDefault> all_runtime_defaults() { return kDefaults; }

const RuntimeDefault& runtime_default(Runtime r) {
  return *std::find_if(kDefaults.begin(), kDefaults.end(),
                       [r](const RuntimeDefault& d) { return d.runtime == r; });
}

std::string_view runtime_name(Runtime r) { return runtime_default(r).name; }

std::optional<Runtime> runtime_from_name(std::string_view name) {
  std::string n = util::ascii_lower(name);
  if (n == "docker" || n == "moby") return Runtime::Docker;
  if (n == "containerd") return Runtime::Containerd;
  if (n == "cri-o" || n == "crio") return Runtime::Crio;
  if (n == "podman") return Runtime::Podman;
  return std::nullopt;
}

}  // namespace capscope::advice
