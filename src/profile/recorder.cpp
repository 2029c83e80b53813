#include "profile/recorder.h"

#include <filesystem>
#include <system_error>
#include <variant>

#include "output/writer.h"
#include "tables/syscalls.h"

namespace capscope::profile {

namespace {

std::string syscall_of(int32_t nr) { return nr < 0 ? "" : tables::syscall_name(nr); }

}  // namespace

Recorder::Recorder(std::string name, std::string subject, std::set<uint64_t> subject_cgroups,
                   int64_t wall_minus_mono_ns)
    : subject_cgroups_(std::move(subject_cgroups)), wall_minus_mono_ns_(wall_minus_mono_ns) {
  profile_.name = std::move(name);
  profile_.subject = std::move(subject);
}

uint64_t Recorder::wall(uint64_t mono_ns) const {
  return static_cast<uint64_t>(static_cast<int64_t>(mono_ns) + wall_minus_mono_ns_);
}

void Recorder::on_record(const Record& r) {
  if (const auto* e = std::get_if<ExecRecord>(&r))
    on_exec(*e);
  else if (const auto* f = std::get_if<ForkRecord>(&r))
    on_fork(*f);
  else if (const auto* c = std::get_if<CapCheck>(&r))
    on_check(*c);
}

void Recorder::on_exec(const ExecRecord& e) {
  ProgramKey key{e.pid, e.exec_seq};
  programs_[key] = {e.filename, output::tetragon_arguments(e.args)};
  current_[e.pid] = key;
  if (!in_subject(e.cgroup_id)) return;
  if (!followed_.empty() && !followed_.contains(e.pid)) return;
  add_held(e.caps, e.euid, e.no_new_privs);
  note_privileged_exec(e);
  permitted_[e.pid] = e.caps.permitted;
}

// Whether the exec used the binary's own privilege: set-ID bits make the
// effective id the file's owner while the real id stays; file capabilities
// give a non-root process permitted capabilities beyond its ambient ones.
// no_new_privs keeps both from happening. The file is read through
// /proc/PID/exe (right in any mount namespace) while the process lives.
void Recorder::note_privileged_exec(const ExecRecord& e) {
  auto file = read_file_privilege("/proc/" + std::to_string(e.pid) + "/exe");
  if (!file && e.filename.starts_with('/')) file = read_file_privilege(e.filename);
  if (!file || !file->any()) return;
  // File capabilities raised something if the new permitted set has what the
  // old did not (the kernel's own test for no_new_privs); where the old set is
  // unknown, anything beyond the ambient set of a non-root process.
  auto before = permitted_.find(e.pid);
  uint64_t gained = before != permitted_.end() ? e.caps.permitted & ~before->second
                    : e.euid != 0              ? e.caps.permitted & ~e.caps.ambient
                                               : 0;
  bool raised = (file->setuid && e.euid == file->owner_uid && e.uid != e.euid) ||
                (file->setgid && e.egid == file->owner_gid && e.gid != e.egid) ||
                (file->caps && gained != 0);
  bool could_raise = (file->setuid && file->owner_uid != e.uid) ||
                     (file->setgid && file->owner_gid != e.gid) || (file->caps && e.euid != 0);
  PrivilegedBinary b;
  b.file = *file;
  b.execs = 1;
  b.raised = raised ? 1 : 0;
  b.held_back = !raised && could_raise && e.no_new_privs ? 1 : 0;
  profile_.privileged_binaries[e.filename].merge(b);
}

void Recorder::add_held(const CapSets& caps, uint32_t euid, bool no_new_privs) {
  HeldSets h;
  h.caps = caps;
  (euid == 0 ? h.ran_as_root : h.ran_as_user) = true;
  h.no_new_privs = no_new_privs;
  profile_.held.merge(h);
}

void Recorder::seed(const ProcessInfo& p) {
  follow(p.pid);
  seeded_[p.pid] = {p.binary, output::tetragon_arguments(p.args)};
  permitted_[p.pid] = p.caps.permitted;
  add_held(p.caps, p.euid, p.no_new_privs);
}

// A child runs its parent's program until it execs.
void Recorder::on_fork(const ForkRecord& f) {
  if (followed_.contains(f.ppid)) followed_.insert(f.pid);
  const Program* prog = nullptr;
  if (auto parent = current_.find(f.ppid); parent != current_.end())
    prog = program_of(parent->second.first, parent->second.second);
  else if (auto old = seeded_.find(f.ppid); old != seeded_.end())
    prog = &old->second;
  if (auto held = permitted_.find(f.ppid); held != permitted_.end())
    permitted_[f.pid] = held->second;
  if (prog == nullptr) return;
  ProgramKey key{f.pid, f.exec_seq};
  programs_[key] = *prog;
  current_[f.pid] = key;
}

const Recorder::Program* Recorder::program_of(uint32_t pid, uint32_t exec_seq) const {
  auto it = programs_.find({pid, exec_seq});
  if (it != programs_.end()) return &it->second;
  auto old = seeded_.find(pid);
  return old == seeded_.end() ? nullptr : &old->second;
}

void Recorder::on_check(const CapCheck& c) {
  if (!in_subject(c.cgroup_id)) return;
  Observation o;
  o.key = {c.cap, c.granted(), c.audit};
  o.count = 1;
  o.first_ns = o.last_ns = wall(c.ktime_ns);
  o.syscall = syscall_of(c.syscall_nr);
  // Checks on the ring carry no exec_seq: the process's program now is theirs.
  if (auto cur = current_.find(c.pid); cur != current_.end())
    if (const Program* p = program_of(cur->second.first, cur->second.second)) {
      o.binary = p->binary;
      o.args = p->args;
    }
  ++checks_;
  profile_.add(o);
}

void Recorder::on_aggregate(const capture::AggregateEntry& e) {
  Observation o;
  o.key = {e.cap, e.granted, e.audit};
  o.count = e.count;
  o.first_ns = wall(e.first_ktime_ns);
  o.last_ns = wall(e.last_ktime_ns);
  o.syscall = syscall_of(e.syscall_nr);
  if (const Program* p = program_of(e.pid, e.exec_seq)) {
    o.binary = p->binary;
    o.args = p->args;
  } else {
    // Started before the recording: its program from /proc, if it still runs.
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(e.pid) + "/exe", ec);
    if (!ec) o.binary = exe.string();
  }
  checks_ += e.count;
  profile_.add(o);
}

Profile Recorder::finish(uint64_t duration_ns) const {
  Profile p = profile_;
  p.runs = 1;
  p.recorded_ns = duration_ns;
  return p;
}

}  // namespace capscope::profile
