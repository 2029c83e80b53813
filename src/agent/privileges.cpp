#include "agent/privileges.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "tables/capabilities.h"
#include "util/strings.h"

namespace capscope::agent {
namespace {

constexpr uint64_t bit(int cap) { return uint64_t{1} << cap; }

// The base set. CAP_SYS_PTRACE passes the kernel's ptrace read-access check that
// guards /proc/PID/{exe,cwd,root,ns/*}: without it those links of a process of
// another user, or of a root process holding a capability the agent's effective
// set lacks (nearly every root process once the agent has dropped), are denied.
// tests/runtime/privileges_runtime_test.cpp shows both ways.
constexpr uint64_t kBase = bit(CAP_SYS_PTRACE);

// The rings (docs/PRIVILEGES.md explains each).
constexpr Ring kRings[] = {
    {"ebpf", bit(CAP_BPF) | bit(CAP_PERFMON) | bit(CAP_SYS_ADMIN) | bit(CAP_SYS_RESOURCE),
     "load and attach BPF programs and create maps after the start (CAP_BPF, CAP_PERFMON; "
     "CAP_SYS_ADMIN before Linux 5.8; CAP_SYS_RESOURCE to raise RLIMIT_MEMLOCK before 5.11)"},
    {"kallsyms", bit(CAP_SYSLOG),
     "read real kernel addresses from /proc/kallsyms (checked when the file is opened)"},
    {"signal", bit(CAP_KILL), "send a signal to a process of another user"},
    {"runtime", bit(CAP_DAC_OVERRIDE),
     "connect to a container runtime socket that uid 0 may not search or write without it "
     "(a rootless runtime's socket under its user's 0700 directory)"},
};

constexpr std::string_view kExpected =
    "expected bypass=true|false, add=CAP[,CAP...] or drop=CAP[,CAP...]";
constexpr std::string_view kBypassHint = "--capabilities bypass=true skips the drop";

bool fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return false;
}

pid_t current_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// ---- parsing --------------------------------------------------------------------

// A capability of capscope's table, by name (with or without CAP_, any case) or number.
std::optional<int> known_cap(std::string_view word) {
  auto cap = tables::cap_from_name(word);
  if (!cap || *cap >= static_cast<int>(tables::all_capabilities().size())) return std::nullopt;
  return cap;
}

std::optional<bool> parse_bool(std::string_view word) {
  std::string w = util::ascii_lower(word);
  if (w == "true" || w == "1") return true;
  if (w == "false" || w == "0") return false;
  return std::nullopt;
}

enum class ListKey { None, Add, Drop };

// One comma-separated item of a value; `list` is the add=/drop= list it continues.
bool parse_item(std::string_view item, std::string_view value, ListKey* list,
                CapabilityOptions* out, std::string* error) {
  std::string_view cap_word = item;
  if (auto eq = item.find('='); eq != std::string_view::npos) {
    std::string key = util::ascii_lower(util::trim_space(item.substr(0, eq)));
    std::string_view arg = util::trim_space(item.substr(eq + 1));
    if (key == "bypass") {
      auto b = parse_bool(arg);
      if (!b)
        return fail(error, fmt::format("--capabilities '{}': bypass takes true or false, not '{}'",
                                       value, arg));
      out->bypass = *b;
      *list = ListKey::None;
      return true;
    }
    if (key != "add" && key != "drop")
      return fail(error, fmt::format("--capabilities '{}': unknown option '{}'; {}", value,
                                     item.substr(0, eq), kExpected));
    *list = key == "add" ? ListKey::Add : ListKey::Drop;
    if (arg.empty())
      return fail(error, fmt::format("--capabilities '{}': {}= names no capability", value, key));
    cap_word = arg;
  } else if (*list == ListKey::None) {
    return fail(error, fmt::format("--capabilities '{}': '{}' is not an option; {}", value, item,
                                   kExpected));
  }
  auto cap = known_cap(cap_word);
  if (!cap)
    return fail(error, fmt::format("--capabilities '{}': unknown capability '{}' (see `capscope "
                                   "caps` for the names)",
                                   value, cap_word));
  (*list == ListKey::Add ? out->add : out->drop) |= bit(*cap);
  return true;
}

// ---- raw system calls ------------------------------------------------------------
// Everything below up to the broadcast handler runs inside a signal handler too, so
// it only makes system calls: no allocation, no locks, no exceptions.

struct RawCaps {
  uint64_t inheritable = 0;
  uint64_t permitted = 0;
  uint64_t effective = 0;
};

bool capget_raw(RawCaps* out) noexcept {
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &head, data) != 0) return false;
  auto join = [](uint32_t low, uint32_t high) { return uint64_t{low} | uint64_t{high} << 32; };
  out->inheritable = join(data[0].inheritable, data[1].inheritable);
  out->permitted = join(data[0].permitted, data[1].permitted);
  out->effective = join(data[0].effective, data[1].effective);
  return true;
}

bool capset_raw(const RawCaps& caps) noexcept {
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    auto word = [i](uint64_t mask) { return static_cast<uint32_t>(mask >> (32 * i)); };
    data[i] = {word(caps.effective), word(caps.permitted), word(caps.inheritable)};
  }
  return syscall(SYS_capset, &head, data) == 0;
}

bool in_bounding(int cap) noexcept { return prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1; }

// The sets every thread drops to. Atomics, because signal handlers in other threads
// read them.
struct SharedTarget {
  std::atomic<uint64_t> permitted{0};
  std::atomic<uint64_t> effective{0};
  std::atomic<uint64_t> bounding{0};
  std::atomic<uint64_t> valid{0};
};
SharedTarget g_target;

enum class Step : int { Ok, Capget, NoSetpcap, RaiseSetpcap, BoundingDrop, AmbientClear, Capset };

struct ApplyResult {
  Step step = Step::Ok;
  int err = 0;
  int cap = -1;
};

bool bounding_exceeds(uint64_t bounding, uint64_t valid) noexcept {
  for (int cap = 0; cap < 64; ++cap)
    if ((valid & bit(cap)) != 0 && (bounding & bit(cap)) == 0 && in_bounding(cap)) return true;
  return false;
}

// PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set, so the bounding set goes
// first, while the thread may still raise it.
ApplyResult shrink_bounding(RawCaps* now, uint64_t bounding, uint64_t valid) noexcept {
  if (!bounding_exceeds(bounding, valid)) return {};
  if ((now->effective & bit(CAP_SETPCAP)) == 0) {
    if ((now->permitted & bit(CAP_SETPCAP)) == 0) return {Step::NoSetpcap, EPERM};
    now->effective |= bit(CAP_SETPCAP);
    if (!capset_raw(*now)) return {Step::RaiseSetpcap, errno};
  }
  for (int cap = 0; cap < 64; ++cap) {
    if ((valid & bit(cap)) == 0 || (bounding & bit(cap)) != 0 || !in_bounding(cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return {Step::BoundingDrop, errno, cap};
  }
  return {};
}

ApplyResult apply_target_here() noexcept {
  RawCaps now;
  if (!capget_raw(&now)) return {Step::Capget, errno};
  ApplyResult r = shrink_bounding(&now, g_target.bounding.load(), g_target.valid.load());
  if (r.step != Step::Ok) return r;
  // EINVAL: a kernel before 4.3 has no ambient set, so there is nothing to clear.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return {Step::AmbientClear, errno};
  RawCaps target{0, g_target.permitted.load(), g_target.effective.load()};
  if (!capset_raw(target)) return {Step::Capset, errno};
  return {};
}

// The first failure a signal handler met: `claimed` by one handler, whose fields
// are complete once `ready` is set.
struct SharedFailure {
  std::atomic<bool> claimed{false};
  std::atomic<bool> ready{false};
  std::atomic<int> tid{0};
  std::atomic<int> step{0};
  std::atomic<int> err{0};
  std::atomic<int> cap{-1};
};
SharedFailure g_failure;

void reset_failure() {
  g_failure.ready = false;
  g_failure.claimed = false;
}

extern "C" void on_drop_signal(int /*sig*/) {
  int saved_errno = errno;
  ApplyResult r = apply_target_here();
  if (r.step != Step::Ok && !g_failure.claimed.exchange(true)) {
    g_failure.tid = current_tid();
    g_failure.step = static_cast<int>(r.step);
    g_failure.err = r.err;
    g_failure.cap = r.cap;
    g_failure.ready.store(true, std::memory_order_release);
  }
  errno = saved_errno;
}

std::string describe_step(const ApplyResult& r) {
  std::string why = std::strerror(r.err);
  switch (r.step) {
    case Step::Ok:
      return "no failure";
    case Step::Capget:
      return "capget failed: " + why;
    case Step::NoSetpcap:
      return "the bounding set cannot shrink: CAP_SETPCAP is not in the permitted set (start "
             "the agent with CAP_SETPCAP)";
    case Step::RaiseSetpcap:
      return "raising CAP_SETPCAP to shrink the bounding set failed: " + why;
    case Step::BoundingDrop:
      return fmt::format("PR_CAPBSET_DROP of {} failed: {}", tables::cap_name(r.cap), why);
    case Step::AmbientClear:
      return "clearing the ambient set failed: " + why;
    case Step::Capset:
      return "capset failed: " + why;
  }
  return why;
}

// ---- /proc/self/task -------------------------------------------------------------

struct ThreadStatus {
  pid_t tid = 0;
  std::string name;
  uint64_t blocked_signals = 0;
  CapSets sets;
};

std::optional<std::string> read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (n < 0) return std::nullopt;
  return text;
}

// The value after "Key:" on its line, trimmed; empty if absent.
std::string_view status_field(std::string_view status, std::string_view key) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ':')
      return util::trim_space(line.substr(key.size() + 1));
    pos = end + 1;
  }
  return {};
}

std::optional<uint64_t> parse_hex(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 16);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<ThreadStatus> read_thread_status(pid_t tid) {
  auto text = read_small_file(fmt::format("/proc/self/task/{}/status", tid));
  if (!text) return std::nullopt;
  auto sets = parse_status_caps(*text);
  if (!sets) return std::nullopt;
  ThreadStatus t;
  t.tid = tid;
  t.name = std::string(status_field(*text, "Name"));
  t.blocked_signals = parse_hex(status_field(*text, "SigBlk")).value_or(0);
  t.sets = *sets;
  return t;
}

std::vector<pid_t> list_tasks() {
  std::vector<pid_t> tids;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return tids;
  while (dirent* e = ::readdir(dir)) {
    int tid = 0;
    std::string_view name(e->d_name);
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (ec == std::errc() && end == name.data() + name.size()) tids.push_back(tid);
  }
  ::closedir(dir);
  return tids;
}

CapSets target_sets() {
  CapSets t;
  t.permitted = g_target.permitted.load();
  t.effective = g_target.effective.load();
  t.bounding = g_target.bounding.load();
  return t;
}

// Other threads whose sets are not the target yet.
std::vector<ThreadStatus> threads_off_target(pid_t self) {
  std::vector<ThreadStatus> off;
  CapSets want = target_sets();
  for (pid_t tid : list_tasks()) {
    if (tid == self) continue;
    auto t = read_thread_status(tid);
    if (t && !same_sets(t->sets, want)) off.push_back(std::move(*t));
  }
  return off;
}

constexpr auto kThreadWait = std::chrono::seconds(2);
constexpr int kBroadcastPasses = 5;

std::string thread_label(pid_t tid, std::string_view name) {
  return fmt::format("thread {} ({})", tid, name);
}

std::string handler_failure_message(const std::vector<ThreadStatus>& pending) {
  ApplyResult r{static_cast<Step>(g_failure.step.load()), g_failure.err.load(),
                g_failure.cap.load()};
  pid_t tid = g_failure.tid.load();
  std::string name = "?";
  for (const auto& t : pending)
    if (t.tid == tid) name = t.name;
  return fmt::format("cannot drop capabilities in {}: {}; {}", thread_label(tid, name),
                     describe_step(r), kBypassHint);
}

// Waits until every thread of `pending` has the target sets or is gone.
bool wait_for_threads(std::vector<ThreadStatus> pending, std::string* error) {
  auto deadline = std::chrono::steady_clock::now() + kThreadWait;
  CapSets want = target_sets();
  while (true) {
    if (g_failure.ready.load(std::memory_order_acquire))
      return fail(error, handler_failure_message(pending));
    std::erase_if(pending, [&](const ThreadStatus& t) {
      auto now = read_thread_status(t.tid);
      return !now || same_sets(now->sets, want);
    });
    if (pending.empty()) return true;
    if (std::chrono::steady_clock::now() > deadline) {
      const auto& t = pending.front();
      return fail(error, fmt::format("cannot drop capabilities in {}: it did not handle signal {} "
                                     "within {} s; {}",
                                     thread_label(t.tid, t.name), Privileges::broadcast_signal(),
                                     kThreadWait.count(), kBypassHint));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool install_drop_handler(std::string* error) {
  struct sigaction sa {};
  sa.sa_handler = on_drop_signal;
  sigemptyset(&sa.sa_mask);
  // Interrupted system calls restart where they can; those that never restart
  // (epoll_wait, nanosleep, ...) return EINTR, which their callers already retry.
  sa.sa_flags = SA_RESTART;
  if (sigaction(Privileges::broadcast_signal(), &sa, nullptr) != 0)
    return fail(error,
                fmt::format("cannot drop capabilities: sigaction({}) failed: {}; {}",
                            Privileges::broadcast_signal(), std::strerror(errno), kBypassHint));
  return true;
}

uint64_t lowest_bits(int count) { return count >= 64 ? ~uint64_t{0} : bit(count) - 1; }

// Which ring each capability belongs to, for messages: "CAP_SYS_RESOURCE (ring ebpf)".
std::string owners_text(uint64_t mask) {
  std::string out;
  for (int cap : tables::caps_in_mask(mask)) {
    std::string owner = (kBase & bit(cap)) != 0 ? "base" : "add=";
    for (const Ring& r : kRings)
      if ((r.caps & bit(cap)) != 0) owner = fmt::format("ring {}", r.name);
    if (!out.empty()) out += ", ";
    out += fmt::format("{} ({})", tables::cap_name(cap), owner);
  }
  return out;
}

}  // namespace

// ---- public: parsing and set arithmetic ---------------------------------------------

bool parse_capabilities_value(std::string_view value, CapabilityOptions* options,
                              std::string* error) {
  std::string_view text = util::trim_space(value);
  if (text.empty()) return fail(error, fmt::format("--capabilities: empty value; {}", kExpected));
  CapabilityOptions parsed = *options;
  ListKey list = ListKey::None;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = util::trim_space(text.substr(pos, comma - pos));
    if (item.empty())
      return fail(error, fmt::format("--capabilities '{}': empty item between commas; {}", text,
                                     kExpected));
    if (!parse_item(item, text, &list, &parsed, error)) return false;
    pos = comma + 1;
  }
  *options = parsed;
  return true;
}

bool parse_capabilities_values(std::span<const std::string> values, CapabilityOptions* options,
                               std::string* error) {
  CapabilityOptions parsed = *options;
  for (const std::string& v : values)
    if (!parse_capabilities_value(v, &parsed, error)) return false;
  *options = parsed;
  return true;
}

std::span<const Ring> rings() { return kRings; }

bool same_sets(const CapSets& a, const CapSets& b) {
  return a.effective == b.effective && a.permitted == b.permitted &&
         a.inheritable == b.inheritable && a.bounding == b.bounding && a.ambient == b.ambient;
}

const Ring* find_ring(std::string_view name) {
  for (const Ring& r : kRings)
    if (r.name == name) return &r;
  return nullptr;
}

uint64_t base_caps() { return kBase; }

uint64_t ring_caps() {
  uint64_t all = 0;
  for (const Ring& r : kRings) all |= r.caps;
  return all;
}

uint64_t unneeded_on_this_kernel(uint64_t valid) {
  uint64_t out = 0;
  if (valid & bit(CAP_BPF)) out |= bit(CAP_SYS_ADMIN);
  // Memory-cgroup accounting of BPF memory came in 5.11 with this helper; libbpf
  // decides whether to raise RLIMIT_MEMLOCK by the same probe.
  if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCKET_FILTER, BPF_FUNC_ktime_get_coarse_ns, nullptr) ==
      1)
    out |= bit(CAP_SYS_RESOURCE);
  return out;
}

DropPlan plan_drop(const CapabilityOptions& options, const CapSets& current, uint64_t valid) {
  uint64_t keep = valid & ~options.drop;
  uint64_t wanted_effective = (kBase | options.add) & keep;
  uint64_t wanted_permitted = (wanted_effective | ring_caps()) & keep;
  DropPlan plan;
  plan.missing_add = options.add & keep & ~current.permitted;
  plan.unavailable = wanted_permitted & ~current.permitted & ~plan.missing_add;
  plan.target.permitted = wanted_permitted & current.permitted;
  plan.target.effective = wanted_effective & current.permitted;
  // The bounding set can only shrink: a capability outside it now stays outside.
  plan.target.bounding = plan.target.permitted & current.bounding;
  return plan;
}

std::string mask_names(uint64_t mask) {
  if (mask == 0) return "none";
  std::string out;
  for (const std::string& name : tables::cap_names_in_mask(mask)) {
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

std::string describe_effective(uint64_t effective, uint64_t base_effective, uint64_t permitted) {
  uint64_t extra = effective & ~base_effective;
  std::string out = "base";
  uint64_t explained = 0;
  for (const Ring& r : kRings) {
    uint64_t raised = r.caps & extra;
    if (raised == 0) continue;
    explained |= raised;
    out += '+';
    out += r.name;
    if (raised != (r.caps & permitted)) out += fmt::format("({})", mask_names(raised));
  }
  for (int cap : tables::caps_in_mask(extra & ~explained)) out += "+" + tables::cap_name(cap);
  for (int cap : tables::caps_in_mask(base_effective & ~effective))
    out += "-" + tables::cap_name(cap);
  return out;
}

std::optional<CapSets> parse_status_caps(std::string_view status) {
  auto field = [&](std::string_view key) { return parse_hex(status_field(status, key)); };
  auto inh = field("CapInh");
  auto prm = field("CapPrm");
  auto eff = field("CapEff");
  auto bnd = field("CapBnd");
  if (!inh || !prm || !eff || !bnd) return std::nullopt;
  CapSets s{.effective = *eff, .permitted = *prm, .inheritable = *inh, .bounding = *bnd};
  if (!status_field(status, "CapAmb").empty()) {
    auto amb = field("CapAmb");
    if (!amb) return std::nullopt;
    s.ambient = *amb;
  }
  return s;
}

// ---- public: live state -----------------------------------------------------------------

uint64_t kernel_valid_caps() {
  static const uint64_t valid = [] {
    int count = 0;
    while (count < 64 && prctl(PR_CAPBSET_READ, count, 0, 0, 0) >= 0) ++count;
    return lowest_bits(count);
  }();
  return valid;
}

std::optional<CapSets> this_thread_caps() {
  RawCaps raw;
  if (!capget_raw(&raw)) return std::nullopt;
  CapSets s{.effective = raw.effective, .permitted = raw.permitted, .inheritable = raw.inheritable};
  for (int cap : tables::caps_in_mask(kernel_valid_caps())) {
    if (in_bounding(cap)) s.bounding |= bit(cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) s.ambient |= bit(cap);
  }
  return s;
}

std::vector<ThreadCaps> process_thread_caps() {
  std::vector<ThreadCaps> out;
  for (pid_t tid : list_tasks())
    if (auto t = read_thread_status(tid)) out.push_back({t->tid, t->name, t->sets});
  return out;
}

// ---- Privileges -------------------------------------------------------------------------

int Privileges::broadcast_signal() { return SIGRTMAX - 4; }

bool Privileges::configure(const CapabilityOptions& options, std::string* error) {
  options_ = options;
  configured_ = true;
  dropped_ = false;
  valid_ = kernel_valid_caps();
  auto current = this_thread_caps();
  if (!current)
    return fail(error, fmt::format("cannot read the agent's capabilities: capget failed: {}; {}",
                                   std::strerror(errno), kBypassHint));
  if (options.bypass) {
    plan_ = DropPlan{*current, 0, 0};
    return true;
  }
  unneeded_ = unneeded_on_this_kernel(valid_);
  plan_ = plan_drop(options, *current, valid_);
  plan_.unavailable &= ~unneeded_;
  if (plan_.missing_add != 0)
    return fail(error, fmt::format("--capabilities add={}: the agent does not hold {} (not in its "
                                   "permitted set): start it with them or remove them from add=",
                                   util::ascii_lower(mask_names(plan_.missing_add)),
                                   mask_names(plan_.missing_add)));
  return true;
}

bool Privileges::apply_here(std::string* error) const {
  ApplyResult r = apply_target_here();
  if (r.step == Step::Ok) return true;
  return fail(error,
              fmt::format("cannot drop capabilities: {}; {}", describe_step(r), kBypassHint));
}

bool Privileges::apply_in_other_threads(std::string* error) const {
  pid_t self = current_tid();
  auto pending = threads_off_target(self);
  if (pending.empty()) return true;  // the usual case: no other thread yet
  if (!install_drop_handler(error)) return false;
  reset_failure();
  uint64_t signal_bit = bit(broadcast_signal() - 1);
  // Threads may start while others are being dropped: each pass takes the threads
  // that are still off target, until none is.
  for (int pass = 0; pass < kBroadcastPasses && !pending.empty(); ++pass) {
    for (const auto& t : pending) {
      if ((t.blocked_signals & signal_bit) != 0)
        return fail(error,
                    fmt::format("cannot drop capabilities in {}: it blocks signal {}; "
                                "drop before starting threads, or leave it unblocked; {}",
                                thread_label(t.tid, t.name), broadcast_signal(), kBypassHint));
      if (syscall(SYS_tgkill, getpid(), t.tid, broadcast_signal()) != 0 && errno != ESRCH)
        return fail(error,
                    fmt::format("cannot drop capabilities in {}: tgkill failed: {}; {}",
                                thread_label(t.tid, t.name), std::strerror(errno), kBypassHint));
    }
    if (!wait_for_threads(pending, error)) return false;
    pending = threads_off_target(self);
  }
  if (pending.empty()) return true;
  return fail(error, fmt::format("cannot drop capabilities: threads kept starting with other "
                                 "capabilities ({} after {} passes); {}",
                                 thread_label(pending.front().tid, pending.front().name),
                                 kBroadcastPasses, kBypassHint));
}

bool Privileges::verify_all_threads(std::string* error) const {
  for (const ThreadCaps& t : process_thread_caps()) {
    if (same_sets(t.sets, plan_.target)) continue;
    return fail(error,
                fmt::format("cannot drop capabilities: {} still has CapPrm {:016x} CapEff {:016x} "
                            "CapBnd {:016x} (wanted {:016x} {:016x} {:016x}); {}",
                            thread_label(t.tid, t.name), t.sets.permitted, t.sets.effective,
                            t.sets.bounding, plan_.target.permitted, plan_.target.effective,
                            plan_.target.bounding, kBypassHint));
  }
  return true;
}

bool Privileges::drop_to_base(std::string* error) {
  if (!configured_) return fail(error, "cannot drop capabilities: configure() was not called");
  if (options_.bypass) return true;
  // Recomputed from the sets held now, which the start-up may have changed.
  auto current = this_thread_caps();
  if (!current)
    return fail(error, fmt::format("cannot drop capabilities: capget failed: {}; {}",
                                   std::strerror(errno), kBypassHint));
  plan_ = plan_drop(options_, *current, valid_);
  plan_.unavailable &= ~unneeded_;
  if (plan_.missing_add != 0)
    return fail(error, fmt::format("cannot drop capabilities: add= names {}, which the agent does "
                                   "not hold; {}",
                                   mask_names(plan_.missing_add), kBypassHint));
  g_target.permitted = plan_.target.permitted;
  g_target.effective = plan_.target.effective;
  g_target.bounding = plan_.target.bounding;
  g_target.valid = valid_;
  if (!apply_here(error) || !apply_in_other_threads(error) || !verify_all_threads(error))
    return false;
  dropped_ = true;
  return true;
}

std::string Privileges::warning() const {
  if (options_.bypass || plan_.unavailable == 0) return "";
  return fmt::format("the agent was started without {}: left out, and what needs them will fail",
                     owners_text(plan_.unavailable));
}

std::string Privileges::describe_this_thread() const {
  if (options_.bypass) return "bypass";
  if (!dropped_) return "not dropped";
  auto now = this_thread_caps();
  if (!now) return "unknown (capget failed)";
  return describe_effective(now->effective, plan_.target.effective, plan_.target.permitted);
}

std::string Privileges::describe_process() const {
  std::vector<ThreadCaps> threads = process_thread_caps();
  std::map<std::string, std::vector<pid_t>> by_state;
  for (const ThreadCaps& t : threads) {
    std::string state = options_.bypass ? "bypass"
                        : !dropped_     ? "not dropped"
                                    : describe_effective(t.sets.effective, plan_.target.effective,
                                                         plan_.target.permitted);
    by_state[state].push_back(t.tid);
  }
  std::string out = fmt::format("{} thread{}:", threads.size(), threads.size() == 1 ? "" : "s");
  bool first = true;
  for (const auto& [state, tids] : by_state) {
    out += fmt::format("{} {} {}", first ? "" : ",", tids.size(), state);
    first = false;
    // Naming the threads off the base set tells which one holds a ring.
    if (state != "base" && tids.size() <= 3) out += fmt::format(" (tid {})", fmt::join(tids, " "));
  }
  return out;
}

// ---- Raised -----------------------------------------------------------------------------

Privileges::Raised::Raised(std::string_view ring) : tid_(current_tid()) {
  const Ring* r = find_ring(ring);
  if (r == nullptr) {
    std::vector<std::string_view> names;
    for (const Ring& known : kRings) names.push_back(known.name);
    error_ = fmt::format("unknown capability ring '{}' (rings: {})", ring, fmt::join(names, ", "));
    return;
  }
  RawCaps now;
  if (!capget_raw(&now)) {
    error_ = fmt::format("ring {}: capget failed: {}", ring, std::strerror(errno));
    return;
  }
  uint64_t wanted = r->caps & kernel_valid_caps();
  uint64_t missing = wanted & ~now.permitted;
  uint64_t to_raise = wanted & now.permitted & ~now.effective;
  if (to_raise != 0) {
    RawCaps raised = now;
    raised.effective |= to_raise;
    if (!capset_raw(raised)) {
      error_ = fmt::format("ring {}: raising {} failed: {}", ring, mask_names(to_raise),
                           std::strerror(errno));
      return;
    }
    raised_ = to_raise;
  }
  if (missing != 0)
    error_ = fmt::format(
        "ring {}: {} not in the permitted set (dropped with --capabilities drop=, "
        "or the agent was started without it); raised the rest",
        ring, mask_names(missing));
}

Privileges::Raised::~Raised() {
  // Capabilities are per thread: lowering from another thread would touch the wrong one.
  if (raised_ == 0 || current_tid() != tid_) return;
  RawCaps now;
  if (!capget_raw(&now)) return;
  now.effective &= ~raised_;
  capset_raw(now);
}

}  // namespace capscope::agent
