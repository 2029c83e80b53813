// Compiled policies in the kernel's form: a bank of slots (struct cs_policy_bank in
// bpf/capscope.h), one slot per selector, mostly bitmasks over the slots so that the BPF
// side finds the slots a check matches with a few AND operations. Pure functions: the
// loader (bpf_capture.cpp) writes what they build into the maps.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capscope.h"
#include "capture/bpf_capture.h"
#include "model/container.h"
#include "model/records.h"
#include "policy/compiled.h"

namespace capscope::capture {

struct CompiledBank {
  cs_policy_bank bank{};
  std::vector<PolicySlotInfo> slots;
  // matchBinaries: each exec path the kernel may see (see path_spellings) -> the slots
  // that list it, In or NotIn.
  std::map<std::string, uint64_t> binaries;
};

// Whether /DIR is a symbolic link to /usr/DIR on this host (merged /usr): "bin", ...
using MergedUsrFn = std::function<bool(std::string_view dir)>;
bool host_has_merged_usr(std::string_view dir);

// The spellings of an executable path that execve may be given for the same file on a
// merged-/usr host: /usr/bin/chown and /bin/chown. The kernel compares the path as
// execve was given it (after the shell's PATH search), not the file it names.
std::vector<std::string> path_spellings(const std::string& path, const MergedUsrFn& merged);

// Builds the bank of a set; nullopt and a one-line *error if the kernel cannot take it
// (more than CS_POLICY_SLOTS selectors, a binary path too long, too many paths).
std::optional<CompiledBank> compile_bank(const std::vector<policy::CompiledPolicy>& set,
                                         const NsInodes& host_ns, uint32_t generation,
                                         const MergedUsrFn& merged, std::string* error);

// The slots of the set's scoped policies that take this container in.
uint64_t scoped_slots_for(const std::vector<policy::CompiledPolicy>& set,
                          const ContainerInfo& container);

// The slots of `to` whose policies (by name) have a slot in `bits` of `from`: carries a
// cgroup's scoped slots over to a new set.
uint64_t carry_slots(uint64_t bits, const std::vector<PolicySlotInfo>& from,
                     const std::vector<PolicySlotInfo>& to);

}  // namespace capscope::capture
