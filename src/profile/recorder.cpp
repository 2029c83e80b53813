#include "profile/recorder.h"

#include <filesystem>
#include <fstream>
#include <system_error>
#include <variant>

#include "enrich/runtime/runtime_process.h"
#include "output/writer.h"
#include "tables/syscalls.h"

namespace capscope::profile {

namespace {

std::string syscall_of(int32_t nr) { return nr < 0 ? "" : tables::syscall_name(nr); }

}  // namespace

Recorder::Recorder(std::string name, std::string subject, std::set<uint64_t> subject_cgroups,
                   int64_t wall_minus_mono_ns)
    : name_(std::move(name)),
      subject_(std::move(subject)),
      subject_cgroups_(std::move(subject_cgroups)),
      wall_minus_mono_ns_(wall_minus_mono_ns) {}

Profile& Recorder::profile_for(const Route& r) {
  auto [it, added] = profiles_.try_emplace(r.profile);
  Profile& p = it->second;
  if (added) {
    p.name = r.profile;
    p.subject = r.subject;
  }
  p.container.merge(r.container);
  return p;
}

void Recorder::apply(Profile& p, const Contribution& what) {
  if (const auto* o = std::get_if<Observation>(&what))
    p.add(*o);
  else if (const auto* h = std::get_if<HeldSets>(&what))
    p.held.merge(*h);
  else if (const auto* b = std::get_if<std::pair<std::string, PrivilegedBinary>>(&what))
    p.privileged_binaries[b->first].merge(b->second);
}

// A by-binary route names the profile after the binary the contribution is about;
// one that names none (the sets a process held) belongs to no binary's profile.
void Recorder::apply_routed(const Route& r, const Contribution& what) {
  if (!r.by_binary) {
    apply(profile_for(r), what);
    return;
  }
  std::string binary;
  if (const auto* o = std::get_if<Observation>(&what)) binary = o->binary;
  if (const auto* b = std::get_if<std::pair<std::string, PrivilegedBinary>>(&what))
    binary = b->first;
  if (binary.empty()) return;
  apply(profile_for({Route::Kind::Keep, "host:" + binary, "binary " + binary + " on the host", {}}),
        what);
}

void Recorder::contribute(uint64_t cgroup_id, Contribution what) {
  if (router_ == nullptr) {
    apply(profile_for({Route::Kind::Keep, name_, subject_, {}}), what);
    return;
  }
  Route r = router_->route(cgroup_id, false);
  if (r.kind == Route::Kind::Keep)
    apply_routed(r, what);
  else if (r.kind == Route::Kind::Wait)
    pending_.push_back({cgroup_id, std::move(what)});
}

void Recorder::settle(bool final) {
  if (router_ == nullptr || pending_.empty()) return;
  std::vector<Pending> still;
  std::map<uint64_t, Route> routes;  // one question per cgroup
  for (auto& p : pending_) {
    auto it = routes.find(p.cgroup_id);
    if (it == routes.end())
      it = routes.emplace(p.cgroup_id, router_->route(p.cgroup_id, final)).first;
    const Route& r = it->second;
    if (r.kind == Route::Kind::Keep) {
      apply_routed(r, p.what);
    } else if (r.kind == Route::Kind::Wait && !final) {
      still.push_back(std::move(p));
    } else if (r.kind == Route::Kind::Wait) {
      if (const auto* o = std::get_if<Observation>(&p.what)) unresolved_ += o->count;
    }
  }
  pending_ = std::move(still);
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
  else if (const auto* x = std::get_if<ExitRecord>(&r))
    on_exit(*x);
}

void Recorder::remember(ProgramKey key, Program p) {
  p.stamp = next_stamp_++;
  programs_[key] = std::move(p);
  current_[key.first] = key;
}

// Checks on the ring come before their process's exit record, so what reads the
// program "now" is forgotten at once; the kernel's map may still hold checks of
// any of its programs until two drains from now.
void Recorder::on_exit(const ExitRecord& x) {
  current_.erase(x.pid);
  permitted_.erase(x.pid);
  for (auto it = programs_.lower_bound({x.pid, 0});
       it != programs_.end() && it->first.first == x.pid; ++it)
    retired_.push_back({it->first, it->second.stamp, 0});
}

void Recorder::drained() {
  settle(false);
  std::vector<Retired> keep;
  for (auto& r : retired_) {
    if (++r.drains < 2) {
      keep.push_back(r);
      continue;
    }
    auto it = programs_.find(r.key);
    if (it != programs_.end() && it->second.stamp == r.stamp) programs_.erase(it);
    seeded_.erase(r.key.first);
  }
  retired_ = std::move(keep);
}

void Recorder::on_exec(const ExecRecord& e) {
  ProgramKey key{e.pid, e.exec_seq};
  std::string_view argv0 = e.args.empty() ? std::string_view() : std::string_view(e.args[0]);
  bool runtime = is_runtime_program(e.filename, argv0, e.comm);
  remember(key, {e.filename, output::tetragon_arguments(e.args), runtime});
  if (!in_subject(e.cgroup_id)) return;
  if (!followed_.empty() && !followed_.contains(e.pid)) return;
  if (!runtime || !exclude_runtime_) {
    add_held(e.cgroup_id, e.caps, e.euid, e.no_new_privs);
    note_privileged_exec(e);
  }
  permitted_[e.pid] = e.caps.permitted;
}

// Whether the exec used the binary's own privilege: set-ID bits make the
// effective id the file's owner while the real id stays; file capabilities
// give a non-root process permitted capabilities beyond its ambient ones.
// no_new_privs keeps both from happening. The file is read through
// /proc/PID/exe (right in any mount namespace) while the process lives and
// has not exec'd again: a record read late must not take the next program's
// file for its own, so both paths must lead to the inode the kernel exec'd.
void Recorder::note_privileged_exec(const ExecRecord& e) {
  auto file = read_file_privilege("/proc/" + std::to_string(e.pid) + "/exe", e.exe_ino);
  if (!file && e.filename.starts_with('/')) file = read_file_privilege(e.filename, e.exe_ino);
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
  contribute(e.cgroup_id, std::pair{e.filename, b});
}

void Recorder::add_held(uint64_t cgroup_id, const CapSets& caps, uint32_t euid, bool no_new_privs) {
  HeldSets h;
  h.caps = caps;
  (euid == 0 ? h.ran_as_root : h.ran_as_user) = true;
  h.no_new_privs = no_new_privs;
  contribute(cgroup_id, h);
}

// record --pid: not routed, so the cgroup does not matter.
void Recorder::seed(const ProcessInfo& p) {
  follow(p.pid);
  seeded_[p.pid] = {p.binary, output::tetragon_arguments(p.args), is_runtime_process(p)};
  permitted_[p.pid] = p.caps.permitted;
  add_held(0, p.caps, p.euid, p.no_new_privs);
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
  // runc names its stages as it forks them ("runc:[1:CHILD]"): a runtime
  // process whose parent's program is not known is still known as one.
  bool runtime_comm = is_runtime_program("", "", f.comm);
  if (prog == nullptr && !runtime_comm) return;
  Program child = prog != nullptr ? *prog : Program{};
  child.runtime = child.runtime || runtime_comm;
  remember({f.pid, f.exec_seq}, std::move(child));
}

const Recorder::Program* Recorder::program_of(uint32_t pid, uint32_t exec_seq) const {
  auto it = programs_.find({pid, exec_seq});
  if (it != programs_.end()) return &it->second;
  auto old = seeded_.find(pid);
  return old == seeded_.end() ? nullptr : &old->second;
}

void Recorder::on_check(const CapCheck& c) {
  // The agent's events: their count reaches the profile through the kernel's map.
  if (c.aggregated || !in_subject(c.cgroup_id)) return;
  if (c.cred_override) {
    borrowed_checks_ += 1;
    return;
  }
  const Program* p = nullptr;
  // Checks on the ring carry no exec_seq: the process's program now is theirs.
  if (auto cur = current_.find(c.pid); cur != current_.end())
    p = program_of(cur->second.first, cur->second.second);
  if (exclude_runtime_ && ((p != nullptr && p->runtime) || is_runtime_program("", "", c.comm))) {
    ++runtime_checks_;
    return;
  }
  Observation o;
  o.key = {c.cap, c.granted(), c.audit};
  o.count = 1;
  o.first_ns = o.last_ns = wall(c.ktime_ns);
  o.syscall = syscall_of(c.syscall_nr);
  if (p != nullptr) {
    o.binary = p->binary;
    o.args = p->args;
  }
  ++checks_;
  contribute(c.cgroup_id, std::move(o));
}

// Started before the recording: its program from /proc, if it still runs.
Recorder::Program Recorder::program_from_proc(uint32_t pid) const {
  std::string dir = "/proc/" + std::to_string(pid);
  std::error_code ec;
  auto exe = std::filesystem::read_symlink(dir + "/exe", ec);
  Program p;
  if (!ec) p.binary = exe.string();
  if (exclude_runtime_) {
    std::string comm;
    std::getline(std::ifstream(dir + "/comm"), comm);
    p.runtime = is_runtime_program(p.binary, "", comm);
  }
  return p;
}

// The kernel kept only the subject's checks (its cgroups and their descendants).
void Recorder::on_aggregate(const capture::AggregateEntry& e) {
  if (e.cred_override) {
    borrowed_checks_ += e.count;
    return;
  }
  Observation o;
  o.key = {e.cap, e.granted, e.audit};
  o.count = e.count;
  o.first_ns = wall(e.first_ktime_ns);
  o.last_ns = wall(e.last_ktime_ns);
  o.syscall = syscall_of(e.syscall_nr);
  const Program* known = program_of(e.pid, e.exec_seq);
  Program p = known != nullptr ? *known : program_from_proc(e.pid);
  if (exclude_runtime_ && p.runtime) {
    runtime_checks_ += e.count;
    return;
  }
  o.binary = std::move(p.binary);
  o.args = std::move(p.args);
  checks_ += e.count;
  contribute(e.cgroup_id, std::move(o));
}

Profile Recorder::finish(uint64_t duration_ns) const {
  auto it = profiles_.find(name_);
  Profile p = it != profiles_.end() ? it->second : Profile{};
  p.name = name_;
  if (p.subject.empty()) p.subject = subject_;
  p.runs = 1;
  p.recorded_ns = duration_ns;
  return p;
}

std::vector<Profile> Recorder::finish_all(uint64_t duration_ns) const {
  std::vector<Profile> out;
  for (const auto& [name, profile] : profiles_) {
    if (profile.uses.empty()) continue;
    Profile p = profile;
    p.runs = 1;
    p.recorded_ns = duration_ns;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<Profile> Recorder::take_recorded() {
  std::vector<Profile> out;
  for (auto it = profiles_.begin(); it != profiles_.end();) {
    if (it->second.uses.empty()) {
      ++it;
      continue;
    }
    out.push_back(std::move(it->second));
    it = profiles_.erase(it);
  }
  return out;
}

std::vector<Profile> Recorder::peek_recorded() const {
  std::vector<Profile> out;
  for (const auto& [name, p] : profiles_)
    if (!p.uses.empty()) out.push_back(p);
  return out;
}

}  // namespace capscope::profile
