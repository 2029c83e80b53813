// The process cache: what capscope knows about each process, kept current
// from exec/fork/exit records and filled from /proc for processes that
// started before capscope or whose records were lost.
//
// Identity follows Tetragon: every process image has an exec_id, base64 of
// "<node>:<start ktime ns>:<pid>", where the start is the exec time for an
// exec, the task start time for a fork, and the /proc start time (converted
// to CLOCK_MONOTONIC) for processes found in /proc. Flags are Tetragon's
// words: "execve", "clone", "procFS", "rootcwd", plus "nocwd" (cwd unknown)
// and "truncArgs" (argv cut by the kernel side). An exec of a process we saw
// forked also carries "clone", as Tetragon prints "execve rootcwd clone".
//
// Entries are immutable once published (ProcessPtr points to const): an exec,
// fork or exit publishes a new ProcessInfo, so outputs may hold on to what
// they got. Images replaced by an exec, and exited processes, stay for a grace
// period so late checks and children still find them (by pid, and by
// parent_exec_id). The cache is bounded: least recently used entries go first.
//
// Not thread-safe: the trace pipeline calls it from its single consumer thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "enrich/cgroup_fs.h"
#include "enrich/proc_reader.h"
#include "model/process.h"
#include "model/records.h"
#include "util/clock.h"

namespace capscope {

struct ProcessCacheLimits {
  uint64_t grace_ns = 10'000'000'000ULL;  // exited / replaced images stay this long
  size_t max_entries = 65536;             // LRU bound on images kept (at least 1)
};

// Tetragon's exec_id: base64("<node_name>:<ktime_ns>:<pid>").
std::string make_exec_id(std::string_view node_name, uint64_t ktime_ns, uint32_t pid);

class ProcessCache {
 public:
  ProcessCache(ProcReader reader, std::string node_name, util::ClockOffsets clocks,
               ProcessCacheLimits limits = {}, CgroupFs cgroups = CgroupFs());

  // Walks /proc once (at start): every readable process, flags "procFS".
  // Processes already cached from records are kept as they are.
  void seed_from_proc();

  // A new image: new exec_id, flags "execve" (+ "rootcwd", "clone", "nocwd",
  // "truncArgs"), parent linked by ppid. cwd and cgroup come from /proc/PID
  // when it is still the same process; otherwise cwd stays empty and the
  // container is the previous image's (or the parent's).
  void on_exec(const ExecRecord& rec);
  // A new process with its parent's image: flags "clone".
  void on_fork(const ForkRecord& rec);
  // Marks the process exited; it stays the grace period.
  void on_exit(const ExitRecord& rec);
  // `p` made a check from cgroup `cgroup_id`, not the one it is known by: it moved
  // (a container runtime's init moves itself into the container after fork). Finds
  // that cgroup's path and container (from /proc/PID/cgroup, checked against the id,
  // and remembered by id) and publishes p with them.
  ProcessPtr on_cgroup_change(const ProcessPtr& p, uint64_t cgroup_id);
  // A cgroup was created: remember its path and container by id.
  void on_cgroup(const CgroupRecord& rec);
  // Walks the unified hierarchy once (at start) for the cgroups that already exist.
  void seed_cgroups();

  // The current image of `pid`; on a miss, reads /proc and caches the result.
  // nullptr when the process is gone.
  ProcessPtr lookup(uint32_t pid);
  // The image of `pid` that made a check at `ktime_ns`: lookup(pid), or, for a
  // check made before that image's exec and handed over after it (checks and
  // exec records travel on different channels, see struct cs_lane_pos), the
  // image the exec replaced while it is still kept.
  ProcessPtr lookup_at(uint32_t pid, uint64_t ktime_ns);
  // The image `p` was started from (by parent_exec_id), else ppid's current one.
  ProcessPtr parent_of(const ProcessInfo& p);

  // Drops exited / replaced images older than the grace period at
  // `now_ktime_ns` (CLOCK_MONOTONIC), and enforces the size bound.
  void expire(uint64_t now_ktime_ns);

  [[nodiscard]] size_t size() const { return images_.size(); }
  // Changes whenever what lookup() or parent_of() would return may have changed,
  // so a caller may reuse their last answers while it stays the same.
  [[nodiscard]] uint64_t generation() const { return generation_; }
  [[nodiscard]] uint64_t misses() const { return misses_; }

  // Cache-only reads: no /proc, no LRU update.
  [[nodiscard]] ProcessPtr peek(uint32_t pid) const;
  [[nodiscard]] ProcessPtr find_exec_id(const std::string& exec_id) const;

  [[nodiscard]] const std::string& node_name() const { return node_name_; }
  [[nodiscard]] const util::ClockOffsets& clocks() const { return clocks_; }

 private:
  struct Slot {
    ProcessPtr proc;
    uint64_t dead_since_ns = 0;  // exit or replacement ktime; 0 while current and running
    std::string replaces;        // exec_id of the image of the same pid this one replaced
    std::list<std::string>::iterator lru;
  };

  ProcessPtr publish(ProcessInfo info, uint64_t now_ns);
  void retire(const std::string& exec_id, uint64_t now_ns);
  void erase(std::unordered_map<std::string, Slot>::iterator it);
  void touch(Slot& slot);
  void enforce_bound();
  void note_time(uint64_t ktime_ns);

  ProcessInfo from_proc(ProcessInfo info) const;
  std::string exec_id_from_proc(uint32_t pid) const;
  bool proc_is_same_process(const ExecRecord& rec) const;
  void fill_exec_context(const ExecRecord& rec, const ProcessInfo* prev, const ProcessInfo* parent,
                         ProcessInfo& p) const;

  struct CgroupEntry {
    std::string path;
    ContainerRef container;
  };
  std::optional<CgroupEntry> resolve_cgroup(uint32_t pid, uint64_t cgroup_id);
  void remember_cgroup(uint64_t id, std::string path);

  ProcReader reader_;
  CgroupFs cgroups_fs_;
  std::unordered_map<uint64_t, CgroupEntry> cgroups_;  // by cgroup v2 id
  std::string node_name_;
  util::ClockOffsets clocks_;
  ProcessCacheLimits limits_;
  std::unordered_map<std::string, Slot> images_;       // by exec_id
  std::unordered_map<uint32_t, std::string> current_;  // pid -> exec_id of its newest image
  std::list<std::string> lru_;                         // exec_ids, most recently used first
  uint64_t misses_ = 0;
  uint64_t generation_ = 0;
  uint64_t last_ktime_ns_ = 1;  // newest record time seen: stamps retirements without one
};

}  // namespace capscope
