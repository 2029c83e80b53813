// Builds a profile while `record` runs: the kernel's aggregated check counts
// (drained from its map), the checks that still arrive one by one (learning
// samples, or overflow of a full map), and the exec/fork records that say
// which program each (pid, exec_seq) was and what its processes held.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "capture/bpf_capture.h"
#include "model/process.h"
#include "model/records.h"
#include "profile/profile.h"

namespace capscope::profile {

class Recorder {
 public:
  // subject_cgroups: the cgroup v2 ids recorded (none: whatever the kernel filters
  // pass); wall_minus_mono_ns converts the kernel's monotonic times to wall clock.
  Recorder(std::string name, std::string subject, std::set<uint64_t> subject_cgroups,
           int64_t wall_minus_mono_ns);

  // record --pid: only these processes and their descendants count (their held
  // sets); without any, the subject is the cgroup.
  void follow(uint32_t pid) { followed_.insert(pid); }
  // A followed process that ran before the recording: its program and sets, from /proc.
  void seed(const ProcessInfo& p);

  // What a process is known to hold before its next exec (record -- CMD knows
  // its command's), to tell an exec that raised capabilities from one that kept them.
  void seed_permitted(uint32_t pid, uint64_t permitted) { permitted_[pid] = permitted; }

  void on_record(const Record& r);
  void on_aggregate(const capture::AggregateEntry& e);
  // The profile of this one run, recorded for duration_ns.
  [[nodiscard]] Profile finish(uint64_t duration_ns) const;

  [[nodiscard]] uint64_t checks() const { return checks_; }

 private:
  struct Program {
    std::string binary;
    std::string args;
  };
  using ProgramKey = std::pair<uint32_t, uint32_t>;  // (pid, exec_seq)

  void on_exec(const ExecRecord& e);
  void on_fork(const ForkRecord& f);
  void on_check(const CapCheck& c);
  void add_held(const CapSets& caps, uint32_t euid, bool no_new_privs);
  void note_privileged_exec(const ExecRecord& e);
  [[nodiscard]] const Program* program_of(uint32_t pid, uint32_t exec_seq) const;
  [[nodiscard]] uint64_t wall(uint64_t mono_ns) const;

  Profile profile_;
  [[nodiscard]] bool in_subject(uint64_t cgroup_id) const {
    return subject_cgroups_.empty() || subject_cgroups_.contains(cgroup_id);
  }

  std::set<uint64_t> subject_cgroups_;
  int64_t wall_minus_mono_ns_;
  std::map<ProgramKey, Program> programs_;
  std::map<uint32_t, ProgramKey> current_;  // pid -> its program now
  std::set<uint32_t> followed_;
  std::map<uint32_t, Program> seeded_;  // pid -> program, for processes older than the capture
  // pid -> its permitted set as last known (its last exec, its parent's at fork,
  // or seeded). A capset or setuid since then is not seen: the set may be stale.
  std::map<uint32_t, uint64_t> permitted_;
  uint64_t checks_ = 0;
};

}  // namespace capscope::profile
