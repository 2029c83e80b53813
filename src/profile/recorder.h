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
#include <variant>
#include <vector>

#include "capture/bpf_capture.h"
#include "model/process.h"
#include "model/records.h"
#include "profile/profile.h"

namespace capscope::profile {

// Where the checks of one cgroup go when a recording keeps one profile per
// container (record --pod, --selector, --all-containers).
struct Route {
  enum class Kind : uint8_t { Keep, Drop, Wait };
  Kind kind = Kind::Drop;
  std::string profile;  // Keep: the profile's name
  std::string subject;  // Keep: how it is described, for a new profile
  ContainerIdentity container;
  // Keep: one profile per binary, "host:" and the binary's path (the agent's
  // --host-services binary); `profile` and `subject` are not used then.
  bool by_binary = false;
};

class Router {
 public:
  virtual ~Router() = default;
  // Wait: not known yet (the runtime has not named the container); asked again
  // later. With `final`, the last chance: Wait then counts as unresolved.
  virtual Route route(uint64_t cgroup_id, bool final) = 0;
};

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

  // One profile per container, as `router` (which must outlive the recorder) says.
  void route_by(Router* router) { router_ = router; }
  // A container's subject: checks the runtime's own programs make in its cgroups
  // (runc's init before it execs the entrypoint, runc exec's, a pod's pause) are not
  // the workload's and stay out of the profile; runtime_checks() counts them.
  void exclude_runtime_programs() { exclude_runtime_ = true; }

  void on_record(const Record& r);
  void on_aggregate(const capture::AggregateEntry& e);
  // Asks the router again for what waits; with `final`, for the last time.
  void settle(bool final);
  // After each drain of the kernel's map: settles, and forgets the programs of
  // processes that exited two drains ago (their last checks have been drained by
  // then), so a long recording of a busy node does not grow without bound.
  void drained();
  [[nodiscard]] size_t programs_known() const { return programs_.size(); }
  // The profile of this one run, recorded for duration_ns (its name's, when routed).
  [[nodiscard]] Profile finish(uint64_t duration_ns) const;
  // Every profile of this run, routed ones included, each with at least one check.
  [[nodiscard]] std::vector<Profile> finish_all(uint64_t duration_ns) const;
  // The agent: what was recorded since the last take, for profiles with at least one
  // check, handed over and forgotten (the agent merges it into the store); a profile
  // without a check yet keeps what its processes held until its first check.
  [[nodiscard]] std::vector<Profile> take_recorded();
  // A copy of what take_recorded() would hand over, left in place.
  [[nodiscard]] std::vector<Profile> peek_recorded() const;

  [[nodiscard]] uint64_t checks() const { return checks_; }
  [[nodiscard]] uint64_t runtime_checks() const { return runtime_checks_; }
  // Checks made with credentials not the process's own (overlayfs copying a file up
  // with its mounter's): what the process holds does not decide them, so a
  // profile leaves them out.
  [[nodiscard]] uint64_t borrowed_checks() const { return borrowed_checks_; }
  // Checks of containers the runtime never named (routed recordings).
  [[nodiscard]] uint64_t unresolved_checks() const { return unresolved_; }
  [[nodiscard]] size_t waiting() const { return pending_.size(); }

 private:
  struct Program {
    std::string binary;
    std::string args;
    bool runtime = false;  // the container runtime's own (runc init, conmon, pause)
    uint64_t stamp = 0;    // when it was learnt: a reused pid's programs are newer
  };
  // What a cgroup's activity adds to its profile, kept while its route waits.
  using Contribution =
      std::variant<Observation, HeldSets, std::pair<std::string, PrivilegedBinary>>;
  struct Pending {
    uint64_t cgroup_id;
    Contribution what;
  };
  using ProgramKey = std::pair<uint32_t, uint32_t>;  // (pid, exec_seq)

  void on_exec(const ExecRecord& e);
  void on_fork(const ForkRecord& f);
  void on_exit(const ExitRecord& x);
  void remember(ProgramKey key, Program p);
  void on_check(const CapCheck& c);
  void add_held(uint64_t cgroup_id, const CapSets& caps, uint32_t euid, bool no_new_privs);
  void note_privileged_exec(const ExecRecord& e);
  [[nodiscard]] const Program* program_of(uint32_t pid, uint32_t exec_seq) const;
  [[nodiscard]] uint64_t wall(uint64_t mono_ns) const;
  [[nodiscard]] Program program_from_proc(uint32_t pid) const;
  // Adds to the profile the cgroup's route names, or holds it back while the route waits.
  void contribute(uint64_t cgroup_id, Contribution what);
  static void apply(Profile& p, const Contribution& what);
  Profile& profile_for(const Route& r);
  void apply_routed(const Route& r, const Contribution& what);
  [[nodiscard]] bool in_subject(uint64_t cgroup_id) const {
    return router_ != nullptr || subject_cgroups_.empty() || subject_cgroups_.contains(cgroup_id);
  }

  std::string name_;
  std::string subject_;
  std::map<std::string, Profile> profiles_;  // by name; one unless routed
  Router* router_ = nullptr;
  bool exclude_runtime_ = false;
  std::vector<Pending> pending_;
  uint64_t runtime_checks_ = 0;
  uint64_t borrowed_checks_ = 0;
  uint64_t unresolved_ = 0;

  std::set<uint64_t> subject_cgroups_;
  int64_t wall_minus_mono_ns_;
  std::map<ProgramKey, Program> programs_;
  std::map<uint32_t, ProgramKey> current_;  // pid -> its program now
  std::set<uint32_t> followed_;
  std::map<uint32_t, Program> seeded_;  // pid -> program, for processes older than the capture
  // pid -> its permitted set as last known (its last exec, its parent's at fork,
  // or seeded). A capset or setuid since then is not seen: the set may be stale.
  std::map<uint32_t, uint64_t> permitted_;
  // Programs of exited processes, forgotten after two more drains: (key, stamp, drains).
  struct Retired {
    ProgramKey key;
    uint64_t stamp;
    int drains = 0;
  };
  std::vector<Retired> retired_;
  uint64_t next_stamp_ = 1;
  uint64_t checks_ = 0;
};

}  // namespace capscope::profile
