// capscope record: run a command (or watch a cgroup) and keep the capability
// profile of everything it does, aggregated in the kernel, merged into the
// profile store under a name; then print the advice.
//
//   capscope record [--name N] [--db F] [--report F] [-o text|json|yaml|k8s|docker] -- CMD ARGS...
//   capscope record --name N --cgroup PATH --duration 5m
//   capscope record --pid 4242            (that process and its descendants)
//
// With -- CMD, CMD runs in a cgroup of its own, so its whole process tree is
// recorded and nothing else is; CMD keeps the terminal and capscope returns
// its exit status, as time(1) does.
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "advice/advice.h"
#include "capture/bpf_capture.h"
#include "capture/features.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/runtime_options.h"
#include "enrich/cgroup_fs.h"
#include "enrich/cgroup_path.h"
#include "enrich/proc_reader.h"
#include "filter/filter_spec.h"
#include "profile/container_router.h"
#include "profile/profile_json.h"
#include "profile/recorder.h"
#include "store/profile_store.h"
#include "tables/capabilities.h"
#include "util/clock.h"
#include "util/json_yaml.h"

namespace capscope::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop.store(true); }

struct RecordOptions {
  std::string name;
  std::string db = store::kDefaultDbPath;
  std::string report_file;
  std::string format = "text";
  std::string cgroup;
  std::string container;        // a name, an id or an id prefix
  IdentityCliOptions identity;  // --namespace, --pod, --selector: one profile per container
  bool all_containers = false;
  RuntimeCliOptions runtimes;
  uint32_t pid = 0;
  std::string duration;
  bool verify = false;
  std::string user;  // run CMD as this user, its capabilities ambient
  std::string backend = "auto";
  std::vector<std::string> command;
};

// The cgroup v2 mount point, from /proc/mounts.
std::optional<fs::path> cgroup2_mount() {
  std::ifstream in("/proc/mounts");
  std::string dev, dir, type, rest;
  while (in >> dev >> dir >> type && std::getline(in, rest))
    if (type == "cgroup2") return fs::path(dir);
  return std::nullopt;
}

// A cgroup made for one recorded command, removed when empty at the end.
struct OwnCgroup {
  fs::path dir;
  uint64_t id = 0;
};

std::optional<OwnCgroup> make_cgroup(std::string* error) {
  auto root = cgroup2_mount();
  if (!root) {
    *error =
        "record -- CMD needs a cgroup v2 hierarchy (none is mounted: mount -t cgroup2 none "
        "/sys/fs/cgroup)";
    return std::nullopt;
  }
  OwnCgroup cg;
  cg.dir = *root / "capscope" / fmt::format("record-{}", getpid());
  std::error_code ec;
  fs::create_directories(cg.dir, ec);
  struct stat st {};
  if (ec || stat(cg.dir.c_str(), &st) != 0) {
    *error = fmt::format("cannot create the cgroup {}: {}", cg.dir.string(),
                         ec ? ec.message() : std::strerror(errno));
    return std::nullopt;
  }
  cg.id = st.st_ino;
  return cg;
}

// The command, forked and held until released: it must be in its cgroup,
// and the capture attached, before it runs its first instruction.
struct Child {
  pid_t pid = -1;
  int release_fd = -1;  // write a byte: exec
  int ready_fd = -1;    // then read: end of file when the exec worked
  std::string failure;  // why it could not be started as asked
};

// A non-root user to run CMD as (--user), resolved before forking: the
// child must not call into NSS between fork and exec.
struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

std::optional<RunAs> resolve_user(const std::string& spec, std::string* error) {
  const passwd* pw = getpwnam(spec.c_str());
  if (pw == nullptr) {
    char* end = nullptr;
    unsigned long uid = std::strtoul(spec.c_str(), &end, 10);
    if (!spec.empty() && *end == '\0') pw = getpwuid(static_cast<uid_t>(uid));
  }
  if (pw == nullptr) {
    *error = fmt::format("--user {}: no such user (give a name or uid from /etc/passwd)", spec);
    return std::nullopt;
  }
  if (pw->pw_uid == 0) {
    *error = fmt::format(
        "--user {}: that is root, which record runs as anyway (--user is for a non-root user)",
        spec);
    return std::nullopt;
  }
  RunAs u{pw->pw_name, pw->pw_uid, pw->pw_gid, {}};
  int n = 64;
  u.groups.resize(n);
  if (getgrouplist(pw->pw_name, pw->pw_gid, u.groups.data(), &n) < 0) {
    u.groups.resize(n);
    getgrouplist(pw->pw_name, pw->pw_gid, u.groups.data(), &n);
  }
  u.groups.resize(n);
  return u;
}

// How a command runs: as root with its bounding set cut (--verify), and/or
// as another user holding `caps` as ambient capabilities (--user).
struct Confinement {
  std::optional<uint64_t> bounding;
  const RunAs* user = nullptr;
};

// The capabilities of the calling thread's bounding set.
uint64_t bounding_set() {
  uint64_t mask = 0;
  for (int cap = 0; cap < 64; ++cap)
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) mask |= 1ULL << cap;
  return mask;
}

// What the child reports on its `ready` pipe: that it is confined (Ready), or
// which step failed, with errno. Between fork and exec it only makes system
// calls and writes this: the parent puts the words to it.
enum class ChildStep : char { Ready, SwitchUser, SetCaps, RaiseAmbient, Exec };
struct ChildReport {
  ChildStep step = ChildStep::Ready;
  int err = 0;
};

// In the child, as root: become the user and keep `caps` as permitted,
// inheritable and ambient, so the command (not set-user-ID, without file
// capabilities) starts with exactly them, as a systemd service with
// AmbientCapabilities= would.
ChildStep become(const RunAs& u, uint64_t caps) {
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(u.groups.size(), u.groups.data()) != 0 ||
      setresgid(u.gid, u.gid, u.gid) != 0 || setresuid(u.uid, u.uid, u.uid) != 0)
    return ChildStep::SwitchUser;
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    auto word = static_cast<uint32_t>(caps >> (32 * i));
    data[i] = {word, word, word};  // effective, permitted, inheritable
  }
  if (syscall(SYS_capset, &head, data) != 0) return ChildStep::SetCaps;
  for (int cap = 0; cap < 64; ++cap)
    if ((caps & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
      return ChildStep::RaiseAmbient;
  return ChildStep::Ready;
}

// In the child: apply the confinement before exec.
ChildStep confine(const Confinement& c) {
  if (c.bounding)
    for (int cap = 0; cap < 64; ++cap)
      if (!(*c.bounding & (1ULL << cap))) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  return c.user ? become(*c.user, bounding_set()) : ChildStep::Ready;
}

std::string describe_child_failure(const ChildReport& r, const std::vector<std::string>& argv,
                                   const Confinement& c) {
  std::string user = c.user ? c.user->name : "";
  std::string why = std::strerror(r.err);
  switch (r.step) {
    case ChildStep::SwitchUser:
      return fmt::format("cannot switch to user {}: {}", user, why);
    case ChildStep::SetCaps:
      return fmt::format("cannot set the capabilities of user {}: {}", user, why);
    case ChildStep::RaiseAmbient:
      return fmt::format("cannot raise the ambient capabilities of user {}: {}", user, why);
    case ChildStep::Exec:
      return fmt::format("cannot run {}: {}", argv[0], why);
    case ChildStep::Ready:
      break;
  }
  return "";
}

// Reads the child's report: nullopt at end of file (its exec closed the pipe).
std::optional<ChildReport> read_report(int fd) {
  ChildReport r;
  ssize_t n = read(fd, &r, sizeof(r));
  if (n != static_cast<ssize_t>(sizeof(r))) return std::nullopt;
  return r;
}

// Where execvp(3) would look for `name`: itself if it has a slash, else in
// each directory of PATH (the default path where PATH is unset).
std::vector<std::string> exec_candidates(const std::string& name) {
  if (name.find('/') != std::string::npos) return {name};
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/bin:/usr/bin";
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = dirs.find(':', start);
    std::string dir = dirs.substr(start, end == std::string::npos ? end : end - start);
    out.push_back((dir.empty() ? "." : dir) + "/" + name);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// The child confines itself first and says so on `ready`: its own
// setgroups, setresuid and capset are capscope's doing, not the command's, so
// they happen before it joins the recorded cgroup. After `go` it execs; the
// ready pipe closes with the exec, or carries why the exec failed.
Child fork_held(const std::vector<std::string>& argv, const Confinement& confinement) {
  int go_pipe[2], ready[2];
  if (pipe2(go_pipe, O_CLOEXEC) != 0) return {};
  if (pipe2(ready, O_CLOEXEC) != 0) {
    close(go_pipe[0]);
    close(go_pipe[1]);
    return {};
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> candidates = exec_candidates(argv[0]);
  pid_t pid = fork();
  if (pid == 0) {
    close(go_pipe[1]);
    close(ready[0]);
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    ChildReport r{confine(confinement), errno};
    // The PATH search, too, before joining the cgroup: a non-root user's
    // search through directories it cannot read would be checks of capscope's.
    const char* program = nullptr;
    for (const auto& c : candidates)
      if (program == nullptr && faccessat(AT_FDCWD, c.c_str(), X_OK, AT_EACCESS) == 0)
        program = c.c_str();
    if (r.step == ChildStep::Ready && program == nullptr) r = {ChildStep::Exec, ENOENT};
    char go = 0;
    if (write(ready[1], &r, sizeof(r)) != sizeof(r) || r.step != ChildStep::Ready ||
        read(go_pipe[0], &go, 1) != 1)
      _exit(127);  // failed (reported), or capscope gave up
    execv(program, args.data());
    r = {ChildStep::Exec, errno};
    if (write(ready[1], &r, sizeof(r)) != sizeof(r)) _exit(127);
    _exit(127);
  }
  close(go_pipe[0]);
  close(ready[1]);
  if (pid < 0) {
    close(go_pipe[1]);
    close(ready[0]);
    return {};
  }
  auto report = read_report(ready[0]);
  if (!report || report->step != ChildStep::Ready) {
    close(go_pipe[1]);
    close(ready[0]);
    waitpid(pid, nullptr, 0);
    std::string why = report ? describe_child_failure(*report, argv, confinement)
                             : std::string("the command's process ended before it was confined");
    return {.pid = -1, .release_fd = -1, .ready_fd = -1, .failure = why};
  }
  return {pid, go_pipe[1], ready[0], ""};
}

bool join_cgroup(const OwnCgroup& cg, pid_t pid, std::string* error) {
  std::ofstream procs(cg.dir / "cgroup.procs");
  procs << pid << '\n';
  procs.flush();
  if (procs) return true;
  *error =
      fmt::format("cannot move the command into {}: {}", cg.dir.string(), std::strerror(errno));
  return false;
}

// time(1)'s convention: the command's status, or 128 + the signal that ended it.
int exit_status_of(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return kExitFailure;
}

std::optional<std::chrono::nanoseconds> parse_duration(const std::string& s) {
  if (s.empty()) return std::chrono::nanoseconds(0);
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  double mult = unit == "s" || unit.empty() ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (mult < 0 || v < 0) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(v * mult * 1e9));
}

std::string subject_of(const RecordOptions& o) {
  if (!o.command.empty()) {
    std::string cmd;
    for (const auto& a : o.command) cmd += (cmd.empty() ? "" : " ") + a;
    return "command: " + cmd;
  }
  if (o.pid != 0) return fmt::format("pid: {} and its descendants", o.pid);
  if (!o.container.empty()) return "container: " + o.container;
  if (o.all_containers) return "every container";
  if (!o.cgroup.empty()) return "cgroup: " + o.cgroup;
  std::string error;
  auto sel = build_selection(o.identity, &error);
  return "containers of " + (sel ? sel->describe() : o.identity.selector);
}

// The process and every descendant it has now, from /proc (the kernel adds
// those it forks from now on).
std::vector<uint32_t> tree_of(uint32_t root) {
  ProcReader proc;
  std::map<uint32_t, std::vector<uint32_t>> children;
  for (uint32_t pid : proc.list_pids())
    if (auto st = proc.read_stat(pid)) children[st->ppid].push_back(pid);
  std::vector<uint32_t> tree{root};
  for (size_t i = 0; i < tree.size(); ++i)
    for (uint32_t c : children[tree[i]]) tree.push_back(c);
  return tree;
}

// The cgroups of the running container whose id starts with `prefix`: its own
// and any beneath it (a runtime may nest one), by cgroup id.
struct ContainerCgroups {
  std::string id;
  std::map<uint64_t, std::string> cgroups;  // id -> path
};

// An id or a prefix of one: lower-case hexadecimal digits, as every runtime writes them.
bool is_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::optional<ContainerCgroups> find_container(const std::string& prefix, std::string* error) {
  if (!is_hex(prefix)) {
    *error = fmt::format(
        "--container {}: not a container id; give its id, a prefix of it, or its name (podman "
        "ps / docker ps / crictl ps show them)",
        prefix);
    return std::nullopt;
  }
  std::map<std::string, ContainerCgroups> found;
  CgroupFs().walk(
      [&](uint64_t id, const std::string& path) {
        CgroupMatch m = classify_cgroup(path);
        if (m.kind == CgroupKind::Container && m.ref.id.starts_with(prefix))
          found[m.ref.id].cgroups[id] = path;
      },
      1'000'000);
  if (found.size() == 1) {
    found.begin()->second.id = found.begin()->first;
    return found.begin()->second;
  }
  *error = found.empty()
               ? fmt::format(
                     "--container {}: no running container has an id starting so (its "
                     "cgroup was not found under the cgroup v2 hierarchy)",
                     prefix)
               : fmt::format("--container {}: {} containers have ids starting so; give more of it",
                             prefix, found.size());
  return std::nullopt;
}

// The id of the running container called `name`, asked of the runtimes: its own name
// (Kubernetes' container name under CRI or kube play), or podman's "<pod>-<container>".
std::optional<ContainerInfoPtr> container_named(const std::string& name,
                                                const RuntimeCliOptions& runtimes,
                                                std::string* error) {
  auto resolver = make_resolver(runtimes);
  if (!resolver->has_clients()) {
    *error = fmt::format(
        "--container {}: no container runtime to ask for the name (no socket found); give the "
        "container's id, or name the runtime's socket (--podman-socket, --docker-socket, "
        "--containerd-socket, --crio-socket)",
        name);
    return std::nullopt;
  }
  std::vector<ContainerInfoPtr> found;
  for (auto& info : resolver->list_running())
    if (info->name == name ||
        (!info->pod_name.empty() && info->pod_name + "-" + info->name == name))
      found.push_back(info);
  if (found.size() == 1) return found.front();
  if (found.empty()) {
    *error = fmt::format(
        "--container {}: no running container of the runtimes asked has that name (`capscope "
        "check` lists the runtimes that answer)",
        name);
  } else {
    std::vector<std::string> where;
    where.reserve(found.size());
    for (const auto& f : found)
      where.push_back(fmt::format("{} ({})", f->id.substr(0, 12), f->pod_name));
    *error = fmt::format("--container {}: {} running containers have that name: {}; give the id",
                         name, found.size(), fmt::join(where, ", "));
  }
  return std::nullopt;
}

// Running: present, and not a zombie waiting for its parent to reap it.
bool alive(uint32_t pid) {
  auto st = ProcReader().read_stat(pid);
  return st && st->state != 'Z' && st->state != 'X';
}

// Runs the capture until the child exits (or the duration ends, or SIGINT
// without a child); drains the kernel's map every second and at the end.
struct RunResult {
  int child_status = -1;
  uint64_t duration_ns = 0;
};

RunResult run_capture(capture::BpfCapture& cap, profile::Recorder& rec, pid_t child,
                      const std::function<bool()>& subject_gone, std::chrono::nanoseconds limit,
                      profile::ContainerRouter* router) {
  auto start = Clock::now();
  auto last_drain = start;
  auto drain = [&] {
    cap.drain_aggregates([&](const auto& e) { rec.on_aggregate(e); });
    rec.drained();
  };
  auto handle = [&](Record&& r) {
    if (const auto* cg = std::get_if<CgroupRecord>(&r); cg && router)
      router->on_cgroup(cg->id, cg->path);
    rec.on_record(r);
  };
  RunResult out;
  for (;;) {
    cap.poll(100, handle);
    auto now = Clock::now();
    if (now - last_drain > std::chrono::seconds(1)) {
      drain();
      last_drain = now;
    }
    int st = 0;
    if (child > 0 && waitpid(child, &st, WNOHANG) == child) {
      out.child_status = exit_status_of(st);
      break;
    }
    if ((child <= 0 && g_stop.load()) || (limit.count() > 0 && now - start >= limit)) break;
    if (subject_gone()) break;
  }
  // Records of the last moments are in the ring buffer: read them, then the
  // map, twice: checks counted while the first drain flipped banks are in the
  // other one.
  cap.poll(0, handle);
  drain();
  drain();
  rec.settle(true);
  out.duration_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
  return out;
}

// Where a profile goes when the store refuses it: nothing recorded is lost.
// It is the export format, so `capscope profile import` takes it back.
// /var/tmp first (it survives a reboot), else the temporary directory.
std::string save_aside(const profile::Profile& p) {
  std::string text = profile::to_export_json(p).dump(2) + "\n";
  std::error_code ec;
  for (const fs::path& dir : {fs::path("/var/tmp"), fs::temp_directory_path(ec)}) {
    if (dir.empty()) continue;
    fs::path path = dir / fmt::format("capscope-{}-{}.json", p.name, getpid());
    std::ofstream out(path);
    out << text;
    out.flush();
    if (out) return path.string();
  }
  return "";
}

// -o yaml is the JSON report written as YAML (the generic converter), so the
// two carry the same fields.
std::string report_text(const RecordOptions& o, const profile::Profile& merged,
                        const std::string& verified) {
  bool yaml = o.format == "yaml";
  advice::Format f = advice::Format::Json;
  if (!yaml) advice::parse_format(o.format, &f);
  advice::Advice a = advice::advise(merged);
  a.verified = verified;
  std::string text = advice::render(a, merged, f);
  return yaml ? util::json_to_yaml(nlohmann::ordered_json::parse(text)) : text;
}

int report(const RecordOptions& o, const profile::Profile& merged,
           const std::string& verified = "") {
  std::string text = report_text(o, merged, verified);
  if (o.report_file.empty()) {
    std::cerr << text;
    return kExitOk;
  }
  std::ofstream out(o.report_file);
  out << text;
  if (!out) return failure(fmt::format("--report {}: {}", o.report_file, std::strerror(errno)));
  return kExitOk;
}

// One recorded run of the subject, its command run under `confinement`.
struct RunOnce {
  profile::Profile profile;
  std::vector<profile::Profile> containers;  // routed: one profile per container
  int status = -1;                           // the command's exit status; -1 without a command
};

bool routed(const RecordOptions& o) {
  const auto& i = o.identity;
  return o.all_containers || !i.namespaces.empty() || !i.pods.empty() || !i.selector.empty();
}

std::optional<RunOnce> record_run(const RecordOptions& o, const std::string& name,
                                  capture::Backend backend, bool verbose,
                                  const Confinement& confinement, std::string* error) {
  std::optional<OwnCgroup> own;
  std::set<uint64_t> cgroup_ids;
  std::function<bool()> gone = [] { return false; };
  std::unique_ptr<RuntimeResolver> resolver;
  std::optional<profile::ContainerRouter> router;
  if (routed(o)) {
    resolver = make_resolver(o.runtimes);
    auto sel = build_selection(o.identity, error);
    if (!sel) return std::nullopt;
    router.emplace(*resolver, filter::ContainerFilter(*sel));
    router->seed();
  }
  if (!o.command.empty()) {
    own = make_cgroup(error);
    if (!own) return std::nullopt;
    cgroup_ids = {own->id};
  } else if (!o.cgroup.empty()) {
    auto id = cgroup_id_of(o.cgroup, error);
    if (!id) return std::nullopt;
    cgroup_ids = {*id};
  } else if (!o.container.empty()) {
    auto ct = find_container(o.container, error);
    if (!ct) return std::nullopt;
    for (const auto& [id, path] : ct->cgroups) cgroup_ids.insert(id);
    // The container has stopped when its cgroups are gone.
    gone = [paths = ct->cgroups] {
      return std::none_of(paths.begin(), paths.end(),
                          [](const auto& c) { return CgroupFs().id_of(c.second).has_value(); });
    };
  } else if (o.pid != 0) {
    gone = [pid = o.pid] { return !alive(pid); };
  }
  capture::CaptureOptions copts;
  copts.backend = backend;
  copts.verbose_libbpf = verbose;
  copts.aggregate = true;
  copts.filters.cgroup_ids.assign(cgroup_ids.begin(), cgroup_ids.end());
  copts.filters.containers_only = router.has_value();
  copts.filters.exclude_unselected = router.has_value();
  if (o.pid != 0) copts.follow_pids = {o.pid};
  Child child;
  if (!o.command.empty()) {
    child = fork_held(o.command, confinement);
    if (!child.failure.empty()) return *error = child.failure, std::nullopt;
    if (child.pid < 0)
      return *error = fmt::format("cannot fork: {}", std::strerror(errno)), std::nullopt;
    if (!join_cgroup(*own, child.pid, error)) {
      close(child.release_fd);
      close(child.ready_fd);
      kill(child.pid, SIGKILL);
      waitpid(child.pid, nullptr, 0);
      return std::nullopt;
    }
  }
  auto cap = capture::BpfCapture::open(copts, capture::probe_kernel(), error);
  if (!cap) {
    if (child.pid > 0) {
      close(child.release_fd);  // the child exits without running the command
      close(child.ready_fd);
      waitpid(child.pid, nullptr, 0);
    }
    return std::nullopt;
  }
  util::ClockOffsets clocks = util::ClockOffsets::now();
  profile::Recorder rec(name, subject_of(o), cgroup_ids, clocks.monotonic_to_wall_offset_ns());
  if (router) {
    rec.route_by(&*router);
    router->exclude_through([c = cap.get()](uint64_t id) { c->exclude_cgroup(id); });
  }
  if (router || !o.container.empty()) rec.exclude_runtime_programs();
  if (child.pid > 0 && confinement.user)  // it holds its bounding set, ambient
    rec.seed_permitted(child.pid, bounding_set() & confinement.bounding.value_or(~0ULL));
  if (o.pid != 0) {
    // After attaching: a process forked meanwhile is either in /proc now or
    // forked by one the kernel already follows.
    for (uint32_t pid : tree_of(o.pid)) {
      cap->follow(pid);
      if (auto info = ProcReader().read(pid))
        rec.seed(*info);
      else
        rec.follow(pid);
    }
  }
  spdlog::info("recording \"{}\" with the {} backend{}", name.empty() ? subject_of(o) : name,
               capture::backend_name(cap->backend()),
               confinement.bounding ? " (confined, to verify)" : "");
  // Like time(1): Ctrl-C is the command's to handle; capscope waits for it to end.
  std::signal(SIGINT, child.pid > 0 ? SIG_IGN : on_stop_signal);
  std::signal(SIGQUIT, child.pid > 0 ? SIG_IGN : SIG_DFL);
  std::signal(SIGTERM, on_stop_signal);
  if (child.pid > 0) {
    char go = 1;
    if (write(child.release_fd, &go, 1) != 1) spdlog::warn("could not start the command");
    close(child.release_fd);
    if (auto failed = read_report(child.ready_fd))  // else the exec closed it: CMD runs
      spdlog::error("{}", describe_child_failure(*failed, o.command, confinement));
    close(child.ready_fd);
  }
  auto limit = parse_duration(o.duration).value_or(std::chrono::nanoseconds(0));
  RunResult run = run_capture(*cap, rec, child.pid, gone, limit, router ? &*router : nullptr);
  auto k = cap->counters();
  if (router) router->exclude_through({});
  cap.reset();
  if (own) {
    std::error_code ec;
    if (!fs::remove(own->dir, ec))
      spdlog::info("left {} in place: processes of the command still run in it", own->dir.string());
  }
  RunOnce out;
  out.status = run.child_status;
  out.profile = rec.finish(run.duration_ns);
  auto now_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  out.profile.first_run_ns = out.profile.last_run_ns = now_ns;
  if (router) {
    out.containers = rec.finish_all(run.duration_ns);
    for (auto& p : out.containers) p.first_run_ns = p.last_run_ns = now_ns;
  }
  spdlog::info("{} checks recorded ({} aggregated in the kernel, {} sent one by one, {} lost)",
               rec.checks(), k.aggregated, k.emitted, k.lost);
  if (rec.runtime_checks() > 0)
    spdlog::info(
        "{} checks by the container runtime's own processes (runc init, conmon, pause) "
        "left out of the profile",
        rec.runtime_checks());
  if (rec.borrowed_checks() > 0)
    spdlog::info(
        "{} checks made with borrowed credentials (overlayfs copying up as its mounter) "
        "left out of the profile: the process's own capabilities did not decide them",
        rec.borrowed_checks());
  if (router)
    spdlog::info("{} container{} recorded into {} profile{}", router->recorded().size(),
                 router->recorded().size() == 1 ? "" : "s", out.containers.size(),
                 out.containers.size() == 1 ? "" : "s");
  if (rec.unresolved_checks() > 0)
    spdlog::warn(
        "{} checks of containers no runtime named in time were left out: whether they "
        "were selected cannot be known (is the runtime's socket answering? capscope "
        "check says)",
        rec.unresolved_checks());
  if (k.lost > 0)
    spdlog::warn("{} checks were lost (ring buffer full): the profile may miss some", k.lost);
  return out;
}

// Audited denials of a run, by capability.
std::set<int> denied_caps(const profile::Profile& p) {
  auto v = p.denied_needs();
  return {v.begin(), v.end()};
}

// "exit 1 (was 0), denied CAP_CHOWN in fchownat by /usr/bin/chown"
std::string what_changed(const RunOnce& base, const RunOnce& confined) {
  std::vector<std::string> parts;
  if (confined.status != base.status)
    parts.push_back(fmt::format("exit {} (was {})", confined.status, base.status));
  auto before = denied_caps(base.profile);
  for (const auto& c : advice::advise(confined.profile).add)
    if (c.denied && !before.contains(c.cap))
      parts.push_back(fmt::format("{} {}", tables::cap_name(c.cap), c.evidence));
  return fmt::format("{}", fmt::join(parts, "; "));
}

// --verify: run again confined to the advice, then with each advised
// capability taken away in turn, and say what holds.
// *verdict: one line for the report, saying what was verified and how.
int verify(const RecordOptions& o, const std::string& name, capture::Backend backend, bool verbose,
           const RunAs* user, const RunOnce& base, const std::vector<int>& advised,
           std::string* verdict) {
  std::string error;
  uint64_t mask = tables::mask_of(advised);
  auto confined = record_run(o, name, backend, verbose, {mask, user}, &error);
  if (!confined) return failure("--verify: " + error);
  std::string names = advised.empty()
                          ? "no capabilities"
                          : fmt::format("{}", fmt::join(tables::cap_short_names(advised), ","));
  std::string how = user ? "bounding and ambient sets, as user " + user->name
                         : std::string("bounding set, as root");
  std::string changed = what_changed(base, *confined);
  if (!changed.empty()) {
    *verdict = fmt::format("NOT verified: confined to {} ({}) it fails: {}", names, how, changed);
    std::cerr << fmt::format("verify: confined to {} ({}) it fails: {}\n", names, how, changed);
    return kExitFailure;
  }
  *verdict =
      fmt::format("verified by record --verify: confined to {} ({}) it ran as before", names, how);
  std::vector<std::string> breaks, spare;
  std::cerr << fmt::format(
      "verify: confined to {} ({}): exit {} as before, no new denials: the advice holds\n", names,
      how, confined->status);
  for (int cap : advised) {
    auto fewer = record_run(o, name, backend, verbose, {mask & ~(1ULL << cap), user}, &error);
    if (!fewer) return failure("--verify: " + error);
    std::string broke = what_changed(base, *fewer);
    (broke.empty() ? spare : breaks).push_back(tables::cap_short_name(cap));
    std::cerr << fmt::format(
        "verify: without {}: {}\n", tables::cap_short_name(cap),
        broke.empty() ? "still works the same (not needed on this run)" : "breaks: " + broke);
  }
  if (!breaks.empty())
    *verdict += fmt::format("; without any one of {} it breaks", fmt::join(breaks, ", "));
  if (!spare.empty())
    *verdict += fmt::format("; without {} it still worked on this run", fmt::join(spare, ", "));
  return kExitOk;
}

// Saves a profile, or sets it aside where the store refuses it; false if it was not stored.
bool save(store::ProfileStore& db, const profile::Profile& p) {
  std::string error;
  if (db.merge_save(p, &error)) return true;
  std::string aside = save_aside(p);
  failure(error + (aside.empty() ? "; this run's profile could not be saved aside either "
                                   "(neither /var/tmp nor the temporary directory is "
                                   "writable): it is in the report below only"
                                 : "; this run's profile is saved in " + aside +
                                       " (capscope profile import takes it)"));
  return false;
}

int run_record_containers(const RecordOptions& o, const GlobalOptions& g);

// --pod, --namespace, --selector, --all-containers: one profile per container,
// each merged into the stored one of its identity, and a report for each.
int record_containers(const RecordOptions& o, const GlobalOptions& g, store::ProfileStore& db) {
  std::string error;
  auto backend = capture::parse_backend(o.backend);
  if (!backend) return usage_error(fmt::format("--backend {}: unknown", o.backend));
  auto run = record_run(o, "", *backend, g.verbose, {}, &error);
  if (!run) return failure(error);
  if (run->containers.empty()) {
    std::cerr << "no container of the selection made a capability check while recording "
                 "(is it running? `capscope check` lists the runtimes that answer)\n";
    return kExitFailure;
  }
  bool all_saved = true;
  for (const auto& p : run->containers) {
    bool saved = save(db, p);
    all_saved = all_saved && saved;
    std::string load_error;
    auto merged = saved ? db.load(p.name, &load_error).value_or(p) : p;
    if (int rc = report(o, merged); rc != kExitOk) return rc;
  }
  return all_saved ? kExitOk : kExitFailure;
}

int run_record(const RecordOptions& given, const GlobalOptions& g) {
  RecordOptions o = given;
  advice::Format fmt_check{};
  if (o.format != "yaml" && !advice::parse_format(o.format, &fmt_check))
    return usage_error(fmt::format(
        "-o {}: not a report format (text, json, yaml, k8s, docker, compose, systemd, setcap)",
        o.format));
  int subjects =
      !o.command.empty() + !o.cgroup.empty() + !o.container.empty() + (o.pid != 0) + routed(o);
  if (subjects != 1)
    return usage_error(
        "record needs one of -- CMD ARGS..., --cgroup PATH, --container NAME|ID, --pid PID, or "
        "containers by --pod, --namespace, --selector or --all-containers");
  if (routed(o)) return run_record_containers(o, g);
  if (o.verify && o.command.empty()) return usage_error("--verify needs -- CMD ARGS...");
  if (o.pid != 0 && !alive(o.pid))
    return usage_error(fmt::format("--pid {}: no such process", o.pid));
  if (!parse_duration(o.duration))
    return usage_error(fmt::format("--duration {}: use a number with s, m or h", o.duration));
  auto backend = capture::parse_backend(o.backend);
  if (!backend) return usage_error(fmt::format("--backend {}: unknown", o.backend));
  std::string name = o.name;
  if (name.empty() && !o.command.empty()) name = fs::path(o.command[0]).filename().string();
  if (name.empty() && o.pid != 0) {
    if (auto info = ProcReader().read(o.pid)) name = info->comm;
  }
  if (!o.container.empty() && !is_hex(o.container)) {
    std::string error;
    auto named = container_named(o.container, o.runtimes, &error);
    if (!named) return usage_error(error);
    if (name.empty()) name = o.container;
    o.container = (*named)->id;
  }
  if (name.empty() && !o.container.empty()) name = o.container.substr(0, 12);
  if (name.empty()) return usage_error("--name is needed when recording a cgroup");
  if (auto why = privilege_problem(); !why.empty()) return failure(why);

  std::string error;
  std::optional<RunAs> user;
  if (!o.user.empty()) {
    if (o.command.empty()) return usage_error("--user needs -- CMD ARGS...");
    user = resolve_user(o.user, &error);
    if (!user) return usage_error(error);
  }
  // The store first: a bad --db fails before anything runs.
  auto db = store::ProfileStore::open(o.db, &error);
  if (!db) return failure(error);
  const RunAs* as = user ? &*user : nullptr;
  auto run = record_run(o, name, *backend, g.verbose, {std::nullopt, as}, &error);
  if (!run) return failure(error);
  const profile::Profile& p = run->profile;
  if (!save(*db, p)) {
    report(o, p);
    return run->status >= 0 ? run->status : kExitFailure;
  }
  std::string load_error;
  auto merged = db->load(name, &load_error).value_or(p);
  // Verified advice says so: the report comes after the confined runs.
  std::string verdict;
  int vrc = o.verify ? verify(o, name, *backend, g.verbose, as, *run, merged.needed(), &verdict)
                     : kExitOk;
  int rc = report(o, merged, verdict);
  if (vrc != kExitOk) return vrc;
  if (run->status >= 0) return run->status;
  return rc;
}

// Checks the flags of a recording by container identity, then records.
int run_record_containers(const RecordOptions& o, const GlobalOptions& g) {
  if (!o.name.empty())
    return usage_error(
        "--name does not go with --pod, --namespace, --selector or --all-containers: each "
        "container's profile is named by its identity (NAMESPACE/WORKLOAD/CONTAINER)");
  if (o.verify || !o.user.empty()) return usage_error("--verify and --user need -- CMD ARGS...");
  if (o.all_containers &&
      (!o.identity.namespaces.empty() || !o.identity.pods.empty() || !o.identity.selector.empty()))
    return usage_error(
        "--all-containers records every container: leave out --pod, --namespace "
        "and --selector, or --all-containers");
  if (!parse_duration(o.duration))
    return usage_error(fmt::format("--duration {}: use a number with s, m or h", o.duration));
  std::string error;
  if (!build_selection(o.identity, &error)) return usage_error(error);
  if (!o.all_containers && (o.runtimes.none || !make_resolver(o.runtimes)->has_clients()))
    return usage_error(
        "--pod, --namespace and --selector need a container runtime to name pods (no socket "
        "found); name the runtime's socket (--podman-socket, --docker-socket, "
        "--containerd-socket, --crio-socket), or record by --container ID");
  if (auto why = privilege_problem(); !why.empty()) return failure(why);
  auto db = store::ProfileStore::open(o.db, &error);
  if (!db) return failure(error);
  return record_containers(o, g, *db);
}

}  // namespace

Runner add_record_command(CLI::App& app, const GlobalOptions& g) {
  auto o = std::make_shared<RecordOptions>();
  CLI::App* r = app.add_subcommand(
      "record", "Record the capabilities a command (-- CMD) or a cgroup uses, into a profile");
  r->add_option("--name", o->name, "Profile name (default: the command's name)");
  r->add_option("--db", o->db, "Profile database")->capture_default_str();
  r->add_option("--report", o->report_file, "Write the report here instead of stderr");
  r->add_option("-o,--output", o->format,
                "Report format: text, json, yaml, k8s, docker, compose, systemd, setcap")
      ->capture_default_str();
  r->add_option("--cgroup", o->cgroup, "Record a cgroup v2 directory instead of a command");
  r->add_option("--pid", o->pid, "Record a running process and its descendants, until it exits");
  r->add_option("--container", o->container,
                "Record a running container (its name, id or an id prefix), until it stops");
  r->add_option("--duration", o->duration, "Stop after this long (30s, 5m, 1h)");
  r->add_flag("--verify", o->verify,
              "Then run the command again confined to the advice, and once without each advised "
              "capability, and report what holds");
  r->add_option("--user", o->user,
                "Run the command as this user (name or uid), holding the bounding set's "
                "capabilities as ambient ones; --verify then confines those");
  r->add_option("--backend", o->backend, "auto, tracepoint, fentry or kprobe")
      ->capture_default_str();
  add_identity_options(r, o->identity, false);
  r->add_flag("--all-containers", o->all_containers,
              "Record every container (one profile each, by its identity) until Ctrl-C or "
              "--duration")
      ->group("Containers and pods");
  add_runtime_options(r, o->runtimes);
  r->add_option("command", o->command, "The command to run and record (after --)");
  r->positionals_at_end();
  return [o, &g] { return run_record(*o, g); };
}

}  // namespace capscope::cli
