#include "enrich/process_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "enrich/cgroup_path.h"
#include "util/base64.h"

namespace capscope {

namespace {

bool has_flag(const ProcessInfo& p, std::string_view flag) {
  return std::find(p.flags.begin(), p.flags.end(), flag) != p.flags.end();
}

// The kernel reports what execve was given; a relative name is relative to cwd.
std::string absolute_binary(const std::string& filename, const std::string& cwd) {
  if (filename.empty() || filename.front() == '/' || cwd.empty()) return filename;
  return (std::filesystem::path(cwd) / filename).lexically_normal().string();
}

uint64_t abs_diff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

}  // namespace

std::string make_exec_id(std::string_view node_name, uint64_t ktime_ns, uint32_t pid) {
  return util::base64_encode(fmt::format("{}:{}:{}", node_name, ktime_ns, pid));
}

ProcessCache::ProcessCache(ProcReader reader, std::string node_name, util::ClockOffsets clocks,
                           ProcessCacheLimits limits, CgroupFs cgroups)
    : reader_(std::move(reader)),
      cgroups_fs_(std::move(cgroups)),
      node_name_(std::move(node_name)),
      clocks_(clocks),
      limits_(limits) {
  limits_.max_entries = std::max<size_t>(limits_.max_entries, 1);
}

// ---- storage ---------------------------------------------------------------

void ProcessCache::touch(Slot& slot) { lru_.splice(lru_.begin(), lru_, slot.lru); }

void ProcessCache::note_time(uint64_t ktime_ns) {
  last_ktime_ns_ = std::max(last_ktime_ns_, ktime_ns);
}

void ProcessCache::erase(std::unordered_map<std::string, Slot>::iterator it) {
  ++generation_;
  auto cur = current_.find(it->second.proc->pid);
  if (cur != current_.end() && cur->second == it->first) current_.erase(cur);
  lru_.erase(it->second.lru);
  images_.erase(it);
}

void ProcessCache::retire(const std::string& exec_id, uint64_t now_ns) {
  auto it = images_.find(exec_id);
  if (it != images_.end() && it->second.dead_since_ns == 0)
    it->second.dead_since_ns = std::max<uint64_t>(now_ns, 1);
}

void ProcessCache::enforce_bound() {
  while (images_.size() > limits_.max_entries) erase(images_.find(lru_.back()));
}

ProcessPtr ProcessCache::publish(ProcessInfo info, uint64_t now_ns) {
  ++generation_;
  auto proc = std::make_shared<const ProcessInfo>(std::move(info));
  const std::string& id = proc->exec_id;
  // The image this one replaces stays, retired, for children that name it.
  auto cur = current_.find(proc->pid);
  std::string replaced;
  if (cur != current_.end() && cur->second != id) {
    retire(cur->second, now_ns);
    replaced = cur->second;
  }
  current_[proc->pid] = id;
  auto [it, inserted] = images_.try_emplace(id);
  if (inserted) {
    lru_.push_front(id);
    it->second.lru = lru_.begin();
  } else {
    touch(it->second);
  }
  if (!replaced.empty()) it->second.replaces = std::move(replaced);
  it->second.proc = proc;
  it->second.dead_since_ns = proc->exited ? std::max<uint64_t>(now_ns, 1) : 0;
  enforce_bound();
  return proc;
}

void ProcessCache::expire(uint64_t now_ktime_ns) {
  note_time(now_ktime_ns);
  for (auto it = images_.begin(); it != images_.end();) {
    auto next = std::next(it);
    uint64_t dead = it->second.dead_since_ns;
    if (dead != 0 && now_ktime_ns >= dead && now_ktime_ns - dead > limits_.grace_ns) erase(it);
    it = next;
  }
  enforce_bound();
}

ProcessPtr ProcessCache::peek(uint32_t pid) const {
  auto cur = current_.find(pid);
  if (cur == current_.end()) return nullptr;
  return images_.at(cur->second).proc;
}

ProcessPtr ProcessCache::find_exec_id(const std::string& exec_id) const {
  auto it = images_.find(exec_id);
  return it == images_.end() ? nullptr : it->second.proc;
}

// ---- /proc -----------------------------------------------------------------

std::string ProcessCache::exec_id_from_proc(uint32_t pid) const {
  if (pid == 0) return "";
  auto boot = reader_.read_start_boot_ns(pid);
  if (!boot) return "";
  return make_exec_id(node_name_, clocks_.boot_to_mono_ns(*boot), pid);
}

// ProcReader gives the start on CLOCK_BOOTTIME; records use CLOCK_MONOTONIC.
ProcessInfo ProcessCache::from_proc(ProcessInfo info) const {
  info.start_ktime_ns = clocks_.boot_to_mono_ns(info.start_ktime_ns);
  info.start_wall_ns = clocks_.mono_to_wall_ns(info.start_ktime_ns);
  info.exec_id = make_exec_id(node_name_, info.start_ktime_ns, info.pid);
  if (info.parent_exec_id.empty()) {
    auto cur = current_.find(info.ppid);
    info.parent_exec_id = cur != current_.end() ? cur->second : exec_id_from_proc(info.ppid);
  }
  info.flags = {"procFS"};
  if (info.cwd == "/") info.flags.emplace_back("rootcwd");
  return info;
}

void ProcessCache::seed_from_proc() {
  std::vector<ProcessInfo> found;
  std::unordered_map<uint32_t, std::string> ids;
  for (uint32_t pid : reader_.list_pids()) {
    if (current_.count(pid)) continue;  // records know better than /proc
    auto info = reader_.read(pid);
    if (!info) continue;  // exited while we walked
    uint64_t start = clocks_.boot_to_mono_ns(info->start_ktime_ns);
    ids[pid] = make_exec_id(node_name_, start, pid);
    found.push_back(std::move(*info));
  }
  // Link parents among the walked processes without re-reading their stat.
  for (auto& info : found) {
    if (auto it = ids.find(info.ppid); it != ids.end()) info.parent_exec_id = it->second;
    publish(from_proc(std::move(info)), last_ktime_ns_);
  }
}

ProcessPtr ProcessCache::lookup(uint32_t pid) {
  if (auto cur = current_.find(pid); cur != current_.end()) {
    Slot& slot = images_.at(cur->second);
    touch(slot);
    return slot.proc;
  }
  ++misses_;
  auto info = reader_.read(pid);
  if (!info) return nullptr;
  return publish(from_proc(std::move(*info)), last_ktime_ns_);
}

ProcessPtr ProcessCache::lookup_at(uint32_t pid, uint64_t ktime_ns) {
  ProcessPtr p = lookup(pid);
  // Only an exec's image starts at a known instant (the exec record's time).
  while (p && ktime_ns != 0 && ktime_ns < p->start_ktime_ns && has_flag(*p, "execve")) {
    auto self = images_.find(p->exec_id);
    if (self == images_.end() || self->second.replaces.empty()) break;
    auto prev = images_.find(self->second.replaces);
    if (prev == images_.end() || prev->second.proc->pid != pid) break;
    touch(prev->second);
    p = prev->second.proc;
  }
  return p;
}

ProcessPtr ProcessCache::parent_of(const ProcessInfo& p) {
  if (!p.parent_exec_id.empty()) {
    if (auto it = images_.find(p.parent_exec_id); it != images_.end()) {
      touch(it->second);
      return it->second.proc;
    }
  }
  // The image the child started from is gone: the parent's current one (it
  // may have exec'd since) is the best left.
  if (p.ppid == 0 || p.ppid == p.pid) return nullptr;
  return lookup(p.ppid);
}

// ---- records ---------------------------------------------------------------

// /proc/PID may already belong to another process (the exec'd one exited and
// the pid was reused): trust it only if it started when the record says.
bool ProcessCache::proc_is_same_process(const ExecRecord& rec) const {
  auto boot = reader_.read_start_boot_ns(rec.pid);
  if (!boot) return false;
  if (rec.start_ns == 0) return true;  // records without a start time: cannot tell
  // stat counts in clock ticks: allow two of them plus clock sampling error.
  uint64_t hz = std::max<uint64_t>(clocks_.ticks_per_second, 1);
  uint64_t tolerance = 2 * 1'000'000'000ULL / hz + 1'000'000;
  return abs_diff(clocks_.boot_to_mono_ns(*boot), rec.start_ns) <= tolerance;
}

// cwd from /proc while it still shows this process. The container from the
// cgroup the exec record names: known by its id, or read from /proc; failing
// both, inherited (exec does not change cgroups: the same process's previous
// image knows best, its parent's is the next guess) together with the cgroup id
// it was derived from, so that a check from another cgroup resolves it anew.
void ProcessCache::fill_exec_context(const ExecRecord& rec, const ProcessInfo* prev,
                                     const ProcessInfo* parent, ProcessInfo& p) const {
  bool same = proc_is_same_process(rec);
  p.cwd = same ? reader_.read_cwd(rec.pid).value_or("") : "";
  if (auto known = cgroups_.find(rec.cgroup_id); rec.cgroup_id != 0 && known != cgroups_.end()) {
    p.cgroup_path = known->second.path;
    p.container = known->second.container;
    return;
  }
  if (auto cgroup = same ? reader_.read_cgroup_path(rec.pid) : std::nullopt) {
    p.cgroup_path = std::move(*cgroup);
    p.container = parse_container_cgroup(p.cgroup_path);
    return;
  }
  const ProcessInfo* from = prev ? prev : parent;
  p.cgroup_id = from ? from->cgroup_id : 0;
  if (from) {
    p.cgroup_path = from->cgroup_path;
    p.container = from->container;
  }
}

void ProcessCache::on_exec(const ExecRecord& rec) {
  note_time(rec.ktime_ns);
  ProcessPtr prev = peek(rec.pid);
  ProcessPtr parent = rec.ppid != 0 && rec.ppid != rec.pid ? lookup(rec.ppid) : nullptr;
  ProcessInfo p;
  p.pid = rec.pid;
  p.ppid = rec.ppid;
  p.uid = rec.uid;
  p.gid = rec.gid;
  p.euid = rec.euid;
  p.egid = rec.egid;
  p.auid = rec.auid;
  p.comm = rec.comm;
  p.args = rec.args;
  p.start_ktime_ns = rec.ktime_ns;
  p.start_wall_ns = clocks_.mono_to_wall_ns(rec.ktime_ns);
  p.exec_id = make_exec_id(node_name_, rec.ktime_ns, rec.pid);
  p.parent_exec_id = parent ? parent->exec_id : "";
  p.caps = rec.caps;
  p.no_new_privs = rec.no_new_privs;
  p.ns = rec.ns;
  p.userns_level = rec.userns_level;
  p.ns_pid = rec.ns_pid;
  p.cgroup_id = rec.cgroup_id;
  fill_exec_context(rec, prev.get(), parent.get(), p);
  p.binary = absolute_binary(rec.filename, p.cwd);
  p.flags = {"execve"};
  if (p.cwd == "/") p.flags.emplace_back("rootcwd");
  if (p.cwd.empty()) p.flags.emplace_back("nocwd");
  if (rec.args_truncated) p.flags.emplace_back("truncArgs");
  if (prev && has_flag(*prev, "clone")) p.flags.emplace_back("clone");
  publish(std::move(p), rec.ktime_ns);
}

void ProcessCache::on_fork(const ForkRecord& rec) {
  note_time(rec.ktime_ns);
  ProcessPtr parent = rec.ppid != 0 && rec.ppid != rec.pid ? lookup(rec.ppid) : nullptr;
  ProcessInfo p;
  if (parent) {
    p = *parent;  // the child runs its parent's image
  } else if (auto info = reader_.read(rec.pid)) {
    p = std::move(*info);  // parent unknown: what /proc says of the child itself
  }
  p.pid = rec.pid;
  p.ppid = rec.ppid;
  p.ns_pid = rec.ns_pid;
  if (!rec.comm.empty()) p.comm = rec.comm;
  p.start_ktime_ns = rec.start_ns != 0 ? rec.start_ns : rec.ktime_ns;
  p.start_wall_ns = clocks_.mono_to_wall_ns(p.start_ktime_ns);
  p.exec_id = make_exec_id(node_name_, p.start_ktime_ns, rec.pid);
  p.parent_exec_id = parent ? parent->exec_id : "";
  p.exited = false;
  p.flags = {"clone"};
  if (p.cwd == "/") p.flags.emplace_back("rootcwd");
  publish(std::move(p), rec.ktime_ns);
}

std::optional<ProcessCache::CgroupEntry> ProcessCache::resolve_cgroup(uint32_t pid,
                                                                      uint64_t cgroup_id) {
  if (auto it = cgroups_.find(cgroup_id); it != cgroups_.end()) return it->second;
  auto path = reader_.read_unified_cgroup_path(pid);
  // The process may have moved again, or exited and left its pid to another:
  // trust the path only if it is the cgroup the check came from.
  if (!path || cgroups_fs_.id_of(*path) != cgroup_id) return std::nullopt;
  remember_cgroup(cgroup_id, *path);
  return cgroups_.at(cgroup_id);
}

void ProcessCache::remember_cgroup(uint64_t id, std::string path) {
  if (cgroups_.size() >= limits_.max_entries) cgroups_.clear();  // bounded; refills on demand
  ContainerRef ref = parse_container_cgroup(path);
  cgroups_.insert_or_assign(id, CgroupEntry{std::move(path), std::move(ref)});
}

void ProcessCache::on_cgroup(const CgroupRecord& rec) {
  note_time(rec.ktime_ns);
  remember_cgroup(rec.id, rec.path);
}

void ProcessCache::seed_cgroups() {
  cgroups_fs_.walk([this](uint64_t id, std::string path) { remember_cgroup(id, std::move(path)); },
                   limits_.max_entries);
}

ProcessPtr ProcessCache::on_cgroup_change(const ProcessPtr& p, uint64_t cgroup_id) {
  ProcessInfo moved = *p;
  moved.cgroup_id = cgroup_id;
  if (auto entry = resolve_cgroup(p->pid, cgroup_id)) {
    moved.cgroup_path = entry->path;
    moved.container = entry->container;
  }
  return publish(std::move(moved), last_ktime_ns_);
}

void ProcessCache::on_exit(const ExitRecord& rec) {
  note_time(rec.ktime_ns);
  ProcessPtr cur = peek(rec.pid);
  if (!cur || cur->exited) return;  // never seen: nothing to keep for late events
  ProcessInfo p = *cur;
  p.exited = true;
  publish(std::move(p), rec.ktime_ns);
}

}  // namespace capscope
