#include "capture/policy_bank.h"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <set>
#include <system_error>

namespace capscope::capture {

namespace {

// The kernel's map of exec paths (policy_binaries) holds this many.
constexpr size_t kMaxBinaryPaths = 4096;

// The directories merged /usr links from the root.
constexpr std::array<std::string_view, 6> kMergedDirs = {"bin",   "sbin",  "lib",
                                                         "lib32", "lib64", "libx32"};

size_t selector_count(const std::vector<policy::CompiledPolicy>& set) {
  size_t n = 0;
  for (const auto& p : set) n += p.selectors.size();
  return n;
}

std::string too_many_selectors(const std::vector<policy::CompiledPolicy>& set) {
  size_t n = 0;
  for (const auto& p : set) {
    n += p.selectors.size();
    if (n > CS_POLICY_SLOTS)
      return fmt::format(
          "the policies have {} selectors but the kernel takes at most {} (policy '{}' goes past "
          "the limit): load fewer policies or merge selectors",
          selector_count(set), CS_POLICY_SLOTS, p.name);
  }
  return {};
}

uint8_t action_code(policy::Action a) {
  switch (a) {
    case policy::Action::NoPost:
      return CS_POLICY_NOPOST;
    case policy::Action::Sigkill:
      return CS_POLICY_SIGKILL;
    case policy::Action::Post:
      break;
  }
  return CS_POLICY_POST;
}

uint8_t binary_op_code(policy::BinaryOp op) {
  switch (op) {
    case policy::BinaryOp::In:
      return 1;
    case policy::BinaryOp::NotIn:
      return 2;
    case policy::BinaryOp::Any:
      break;
  }
  return 0;
}

// One selector into slot `s` of the bank: its own entry and its bits in the masks.
void place_selector(const policy::CompiledSelector& sel, bool scoped, uint32_t policy_index,
                    uint32_t s, cs_policy_bank& b) {
  uint64_t bit = 1ULL << s;
  cs_policy_slot& slot = b.slot[s];
  slot.cap_mask = sel.cap_mask;
  slot.verdicts = sel.verdicts;
  slot.action = action_code(sel.action);
  slot.policy = static_cast<uint16_t>(policy_index);
  slot.binary_op = binary_op_code(sel.binary_op);
  b.active |= bit;
  for (int cap = 0; cap < 64; ++cap)
    if (sel.cap_mask >> cap & 1) b.by_cap[cap] |= bit;
  if (sel.verdicts & policy::kVerdictGranted) b.granted |= bit;
  if (sel.verdicts & policy::kVerdictDenied) b.denied |= bit;
  for (unsigned i = 0; i < 4; ++i)
    if (sel.options >> i & 1) b.by_opts[i] |= bit;
  if (sel.action == policy::Action::Post) b.post |= bit;
  if (sel.action == policy::Action::Sigkill) b.kill |= bit;
  if (sel.action == policy::Action::Post && sel.rate_limit_ns > 0) {
    b.rated |= bit;
    slot.rate_window_ns = sel.rate_limit_ns;
    slot.rate_scope = static_cast<uint8_t>(sel.rate_scope);
  }
  if (scoped) b.scoped |= bit;
  if (sel.binary_op == policy::BinaryOp::In) b.bin_in |= bit;
  if (sel.binary_op == policy::BinaryOp::NotIn) b.bin_not_in |= bit;
  for (const auto& ns : sel.namespaces) {
    auto k = static_cast<size_t>(ns.kind);
    if (k >= CS_NS_COUNT) continue;
    b.ns_any |= bit;
    (ns.host ? b.ns_host : b.ns_not_host)[k] |= bit;
    (ns.host ? slot.ns_host : slot.ns_not_host) |= static_cast<uint16_t>(1U << k);
  }
}

// The selector's binaries, in every spelling, into the path -> slots map.
bool add_binaries(const policy::CompiledPolicy& p, const policy::CompiledSelector& sel, uint32_t s,
                  const MergedUsrFn& merged, CompiledBank& out, std::string* error) {
  if (sel.binary_op == policy::BinaryOp::Any) return true;
  for (const auto& path : sel.binaries) {
    if (path.empty() || path.front() != '/') {
      *error = fmt::format(
          "policy '{}': matchBinaries path '{}' is not absolute: the kernel compares the path "
          "execve is given, write it in full",
          p.name, path);
      return false;
    }
    if (path.size() >= CS_PATH_LEN) {
      *error = fmt::format("policy '{}': matchBinaries path '{}...' is longer than {} bytes",
                           p.name, path.substr(0, 40), CS_PATH_LEN - 1);
      return false;
    }
    for (auto& spelling : path_spellings(path, merged)) out.binaries[spelling] |= 1ULL << s;
  }
  if (out.binaries.size() > kMaxBinaryPaths) {
    *error = fmt::format("the policies list more than {} binary paths: list fewer in matchBinaries",
                         kMaxBinaryPaths);
    return false;
  }
  return true;
}

}  // namespace

bool host_has_merged_usr(std::string_view dir) {
  std::error_code ec;
  std::filesystem::path link = std::filesystem::path("/") / dir;
  return std::filesystem::is_symlink(link, ec) &&
         std::filesystem::equivalent(link, std::filesystem::path("/usr") / dir, ec);
}

std::vector<std::string> path_spellings(const std::string& path, const MergedUsrFn& merged) {
  std::vector<std::string> out{path};
  for (std::string_view dir : kMergedDirs) {
    std::string root = fmt::format("/{}/", dir);
    std::string usr = fmt::format("/usr/{}/", dir);
    if (path.starts_with(usr) && merged(dir)) out.push_back(root + path.substr(usr.size()));
    if (path.starts_with(root) && merged(dir)) out.push_back(usr + path.substr(root.size()));
  }
  return out;
}

std::optional<CompiledBank> compile_bank(const std::vector<policy::CompiledPolicy>& set,
                                         const NsInodes& host_ns, uint32_t generation,
                                         const MergedUsrFn& merged, std::string* error) {
  if (auto why = too_many_selectors(set); !why.empty()) {
    *error = why;
    return std::nullopt;
  }
  CompiledBank out;
  cs_policy_bank& b = out.bank;
  b.gen = generation;
  for (size_t k = 0; k < CS_NS_COUNT && k < host_ns.size(); ++k) b.host_ns[k] = host_ns[k];
  uint32_t s = 0;
  for (uint32_t pi = 0; pi < set.size(); ++pi) {
    const policy::CompiledPolicy& p = set[pi];
    if (p.selectors.empty()) continue;
    b.first |= 1ULL << s;
    for (size_t i = 0; i < p.selectors.size(); ++i, ++s) {
      place_selector(p.selectors[i], p.scoped(), pi, s, b);
      if (!add_binaries(p, p.selectors[i], s, merged, out, error)) return std::nullopt;
      out.slots.push_back({p.name, i, p.scoped(), p.selectors[i].action, p.selectors[i].options});
    }
  }
  return out;
}

uint64_t scoped_slots_for(const std::vector<policy::CompiledPolicy>& set,
                          const ContainerInfo& container) {
  uint64_t bits = 0;
  size_t s = 0;
  for (const auto& p : set) {
    bool takes_in = p.scoped() && policy::pod_matches(p, container);
    for (size_t i = 0; i < p.selectors.size() && s < CS_POLICY_SLOTS; ++i, ++s)
      if (takes_in) bits |= 1ULL << s;
  }
  return bits;
}

uint64_t carry_slots(uint64_t bits, const std::vector<PolicySlotInfo>& from,
                     const std::vector<PolicySlotInfo>& to) {
  std::set<std::string_view> names;
  for (size_t s = 0; s < from.size() && s < CS_POLICY_SLOTS; ++s)
    if (bits >> s & 1) names.insert(from[s].policy);
  uint64_t out = 0;
  for (size_t s = 0; s < to.size() && s < CS_POLICY_SLOTS; ++s)
    if (to[s].scoped && names.contains(to[s].policy)) out |= 1ULL << s;
  return out;
}

}  // namespace capscope::capture
