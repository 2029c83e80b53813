// The capabilities each container runtime grants a container that asks for
// none: what a spec without `drop: [ALL]` starts from. They differ (CRI-O and
// Podman trimmed Docker's list), so "drop X" advice needs to know which applies.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace capscope::advice {

enum class Runtime { Docker, Containerd, Crio, Podman };

struct RuntimeDefault {
  Runtime runtime;
  std::string_view name;      // "containerd"
  std::string_view source;    // where the list comes from, with the version it holds for
  std::span<const int> caps;  // ascending capability numbers
};

// The default set of one runtime.
const RuntimeDefault& runtime_default(Runtime r);

// Every runtime, in the order docs and --help list them.
std::span<const RuntimeDefault> all_runtime_defaults();

// "docker" (also "moby"), "containerd", "cri-o" (also "crio"), "podman"; any letter case.
std::optional<Runtime> runtime_from_name(std::string_view name);

std::string_view runtime_name(Runtime r);

}  // namespace capscope::advice
