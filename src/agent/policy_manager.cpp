#include "agent/policy_manager.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace capscope::agent {

namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

api::PolicyInfo info_of(const std::string& name, const policy::CompiledPolicy& c,
                        const std::string& yaml, uint64_t hits) {
  api::PolicyInfo i;
  i.name = name;
  i.source = c.source;
  i.selectors = static_cast<uint32_t>(c.selectors.size());
  for (const auto& s : c.selectors) i.actions.emplace_back(policy::action_name(s.action));
  i.hits = hits;
  i.yaml = yaml;
  return i;
}

}  // namespace

bool PolicyManager::read_dir(const std::string& dir, Set* out, std::string* error) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto ext = e.path().extension();
    if (e.is_regular_file(ec) && (ext == ".yaml" || ext == ".yml"))
      files.push_back(e.path().string());
  }
  if (ec) {
    *error = fmt::format("policy-dir {}: {}", dir, ec.message());
    return false;
  }
  std::sort(files.begin(), files.end());
  try {
    for (const auto& f : files) {
      std::string text = read_text(f);
      for (auto& p : policy::parse_policies(text, f)) {
        std::string name = p.name;
        if (out->contains(name)) {
          *error = fmt::format("{}: a policy named '{}' is loaded already (from {})", f, name,
                               out->at(name).compiled.source);
          return false;
        }
        policy::CompiledPolicy c = policy::compile(p);
        c.source = f;
        out->emplace(name, Loaded{std::move(p), std::move(c), text, false});
      }
    }
  } catch (const policy::PolicyError& e) {
    *error = e.what();
    return false;
  }
  return true;
}

bool PolicyManager::load_dir(const std::string& dir, std::string* error) {
  Set next;
  if (!read_dir(dir, &next, error)) return false;
  std::lock_guard lock(mu_);
  set_ = std::move(next);
  return true;
}

bool PolicyManager::apply(PolicyTarget& cap, std::string* error) {
  Set current;
  {
    std::lock_guard lock(mu_);
    current = set_;
  }
  return install(std::move(current), cap, error);
}

// The kernel takes the whole set at once; its slots follow the set's order, each
// policy's selectors in a row.
bool PolicyManager::install(Set next, PolicyTarget& cap, std::string* error) {
  std::vector<policy::CompiledPolicy> compiled;
  std::vector<std::pair<std::string, policy::Action>> slots;
  for (const auto& [name, l] : next) {
    compiled.push_back(l.compiled);
    for (const auto& s : l.compiled.selectors) slots.emplace_back(name, s.action);
  }
  if (!cap.set_policies(compiled, error)) return false;
  {
    std::lock_guard lock(mu_);
    set_ = std::move(next);
    slots_ = std::move(slots);
    last_hits_.assign(slots_.size(), 0);
  }
  for (auto& [id, t] : cgroups_) t.bits = ~0ULL;  // recomputed below
  reapply_cgroups(cap);
  return true;
}

bool PolicyManager::reload_dir(const std::string& dir, PolicyTarget& cap, std::string* error) {
  Set next;
  if (!read_dir(dir, &next, error)) return false;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, l] : set_) {
      if (!l.from_api) continue;
      if (next.contains(name)) {
        *error = fmt::format("{}: '{}' is also a policy added through the API (delete it first)",
                             next.at(name).compiled.source, name);
        return false;
      }
      next.emplace(name, l);
    }
  }
  return install(std::move(next), cap, error);
}

std::optional<policy::TracingPolicy> PolicyManager::parse_api_policy(const std::string& yaml,
                                                                     std::string* error) {
  try {
    auto all = policy::parse_policies(yaml, "api");
    if (all.size() != 1) {
      *error = fmt::format("api: {} policies in one request: add them one at a time", all.size());
      return std::nullopt;
    }
    policy::compile(all.front());  // a selector that can match nothing is refused now
    return std::move(all.front());
  } catch (const policy::PolicyError& e) {
    *error = e.what();
    return std::nullopt;
  }
}

std::optional<api::PolicyInfo> PolicyManager::add(policy::TracingPolicy p, const std::string& yaml,
                                                  PolicyTarget& cap, std::string* error) {
  Set next;
  {
    std::lock_guard lock(mu_);
    next = set_;
  }
  std::string name = p.name;
  policy::CompiledPolicy c;
  try {
    c = policy::compile(p);
  } catch (const policy::PolicyError& e) {
    *error = e.what();
    return std::nullopt;
  }
  c.source = "api";
  next.insert_or_assign(name, Loaded{std::move(p), c, yaml, true});
  if (!install(std::move(next), cap, error)) return std::nullopt;
  return info_of(name, c, yaml, 0);
}

bool PolicyManager::remove(const std::string& name, PolicyTarget& cap, std::string* error) {
  Set next;
  {
    std::lock_guard lock(mu_);
    next = set_;
  }
  if (next.erase(name) == 0) return false;
  return install(std::move(next), cap, error);
}

std::vector<api::PolicyInfo> PolicyManager::list() const {
  std::lock_guard lock(mu_);
  std::vector<api::PolicyInfo> out;
  size_t slot = 0;
  for (const auto& [name, l] : set_) {
    uint64_t hits = 0;
    for (size_t i = 0; i < l.compiled.selectors.size(); ++i, ++slot)
      if (slot < last_hits_.size()) hits += last_hits_[slot];
    out.push_back(info_of(name, l.compiled, l.yaml, hits));
  }
  return out;
}

size_t PolicyManager::size() const {
  std::lock_guard lock(mu_);
  return set_.size();
}

std::string_view PolicyManager::policy_of(const CapCheck& c, const PolicyTarget& cap) const {
  int found = cap.slot_of(c);
  if (found < 0) return {};
  std::lock_guard lock(mu_);
  auto slot = static_cast<size_t>(found);
  return slot < slots_.size() ? std::string_view(slots_[slot].first) : std::string_view();
}

void PolicyManager::on_container_cgroup(uint64_t cgroup_id, const ContainerRef& ref) {
  if (cgroups_.size() >= kMaxTrackedCgroups) {
    // Not silent: a container-scoped policy does not reach this container.
    if (!full_warned_)
      spdlog::warn(
          "{} live container cgroups tracked for container-scoped policies: newer "
          "containers are out of their reach until some of these end",
          kMaxTrackedCgroups);
    full_warned_ = true;
    return;
  }
  if (cgroups_.try_emplace(cgroup_id, Tracked{ref, nullptr, ~0ULL}).second) cgroups_added_ = true;
}

uint64_t PolicyManager::slot_bits_for(const ContainerInfo& info) const {
  uint64_t bits = 0;
  size_t slot = 0;
  for (const auto& [name, l] : set_) {
    bool takes_in = l.compiled.scoped() && policy::pod_matches(l.compiled, info);
    for (size_t i = 0; i < l.compiled.selectors.size(); ++i, ++slot)
      if (takes_in && slot < 64) bits |= 1ULL << slot;
  }
  return bits;
}

std::vector<std::string> PolicyManager::names_of_slots(uint64_t bits) const {
  std::set<std::string> names;
  for (size_t slot = 0; slot < slots_.size() && slot < 64; ++slot)
    if (bits & (1ULL << slot)) names.insert(slots_[slot].first);
  return {names.begin(), names.end()};
}

bool PolicyManager::apply_to(uint64_t id, Tracked& t, const ContainerInfo& info, PolicyTarget& cap,
                             std::string_view how) {
  uint64_t bits = 0;
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    bits = slot_bits_for(info);
    names = names_of_slots(bits);
  }
  if (bits == t.bits) return true;
  if (!cap.set_cgroup_policies(id, bits)) {
    spdlog::warn("cannot tell the kernel the policies of container {} (cgroup {}): {}", info.name,
                 id, std::strerror(errno));
    return false;
  }
  t.bits = bits;
  // Tests and operators wait for this line: from here the kernel enforces.
  if (bits != 0)
    spdlog::info("policy {} {} container {} (cgroup {})", fmt::join(names, ", "), how, info.name,
                 id);
  return true;
}

void PolicyManager::reapply_cgroups(PolicyTarget& cap) {
  for (auto& [id, t] : cgroups_)
    if (t.info) apply_to(id, t, *t.info, cap, "now applies to");
}

std::vector<std::string> PolicyManager::announce(uint64_t cgroup_id, const ContainerRef& ref,
                                                 const ContainerInfoPtr& info, bool from_runtime,
                                                 PolicyTarget& cap) {
  on_container_cgroup(cgroup_id, ref);
  auto it = cgroups_.find(cgroup_id);
  if (it == cgroups_.end() || !info) return {};  // past the bound, or nothing names it
  Tracked& t = it->second;
  if (from_runtime) t.info = info;
  if (!apply_to(cgroup_id, t, *info, cap, "now applies to")) return {};
  std::lock_guard lock(mu_);
  return names_of_slots(t.bits);
}

// Containers named from create events: their cgroups take their scoped policies in the
// kernel as they are made, before their first process runs, whatever this thread does then.
void PolicyManager::expect_announced(RuntimeResolver& resolver, PolicyTarget& cap) {
  std::vector<ContainerInfoPtr> announced = resolver.take_named_from_events();
  if (announced.empty() || !any_scoped()) return;
  for (const auto& info : announced) {
    uint64_t bits = cap.expect_container(*info);
    if (bits == 0) continue;
    std::vector<std::string> names;
    {
      std::lock_guard lock(mu_);
      names = names_of_slots(bits);
    }
    // Tests and operators wait for this line: from here the kernel enforces at its start.
    spdlog::info("policy {} will apply to container {} from its first process",
                 fmt::join(names, ", "), info->name);
  }
}

void PolicyManager::refresh(RuntimeResolver& resolver, PolicyTarget& cap) {
  expect_announced(resolver, cap);
  uint64_t gen = resolver.generation();
  if (gen == resolver_generation_ && !cgroups_added_) return;
  resolver_generation_ = gen;
  cgroups_added_ = false;
  bool named = false;
  for (auto& [id, t] : cgroups_) {
    if (t.info) continue;
    t.info = resolver.lookup(t.ref.id, t.ref.runtime);
    named = named || t.info != nullptr;
  }
  if (named) reapply_cgroups(cap);
}

bool PolicyManager::any_scoped() const {
  std::lock_guard lock(mu_);
  return std::any_of(set_.begin(), set_.end(),
                     [](const auto& entry) { return entry.second.compiled.scoped(); });
}

size_t PolicyManager::prune(const std::function<bool(uint64_t)>& alive, PolicyTarget& cap) {
  size_t forgotten = std::erase_if(cgroups_, [&](const auto& entry) {
    if (alive(entry.first)) return false;
    cap.forget_cgroup(entry.first);
    return true;
  });
  if (forgotten > 0) full_warned_ = false;  // warn again if it fills up again
  return forgotten;
}

void PolicyManager::sync_hits(PolicyTarget& cap, metrics::AgentMetrics& m) {
  std::vector<uint64_t> hits = cap.policy_hits();
  std::lock_guard lock(mu_);
  for (size_t slot = 0; slot < slots_.size() && slot < hits.size(); ++slot) {
    uint64_t before = slot < last_hits_.size() ? last_hits_[slot] : 0;
    if (hits[slot] > before)
      m.policy_hits(slots_[slot].first, policy::action_name(slots_[slot].second))
          .inc(hits[slot] - before);
    if (slot < last_hits_.size()) last_hits_[slot] = hits[slot];
  }
}

}  // namespace capscope::agent
