#include "capture/bpf_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/membarrier.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <utility>

#include "capable_fexit.skel.h"
#include "capable_kprobe.skel.h"
#include "capable_tp.skel.h"
#include "capscope.h"
#include "capture/decode.h"
#include "capture/inlined_callers.h"
#include "capture/lane_reader.h"
#include "capture/policy_bank.h"
#include "capture/reader_pacing.h"
#include "capture/ring_reader.h"
#include "enrich/cgroup_path.h"
#include "enrich/proc_reader.h"
#include "tables/capabilities.h"
#include "util/clock.h"

namespace capscope::capture {

namespace {

bool g_verbose_libbpf = false;

// libbpf speaks only with --verbose: every failure it would warn about
// reaches the user as capscope's own one-line error, which names the fix.
int libbpf_print(enum libbpf_print_level /*level*/, const char* format, va_list args) {
  if (!g_verbose_libbpf) return 0;
  return vfprintf(stderr, format, args);
}

// The parts of a generated skeleton the loader uses, whatever the backend.
struct Skeleton {
  bpf_object* obj = nullptr;
  bpf_object_skeleton* skel = nullptr;
  std::function<void()> destroy;
};

template <typename S>
Skeleton adopt(S* s, void (*destroy_fn)(S*)) {
  if (!s) return {};
  return {s->obj, s->skeleton, [s, destroy_fn] { destroy_fn(s); }};
}

// walk_direct: the tracepoint backend's call-site walk reads the stack, and its
// syscall number the saved registers, with plain loads (needs a kernel whose
// verifier takes bpf_rdonly_cast(p, 0)).
Skeleton open_backend(Backend b, bool walk_direct) {
  switch (b) {
    case Backend::Tracepoint: {
      capable_tp* s = capable_tp__open();
      if (s) s->rodata->cs_walk_direct = walk_direct;
      return adopt(s, &capable_tp__destroy);
    }
    case Backend::Fentry:
      return adopt(capable_fexit__open(), &capable_fexit__destroy);
    case Backend::Kprobe:
      return adopt(capable_kprobe__open(), &capable_kprobe__destroy);
    case Backend::Auto:
      break;
  }
  return {};
}

int map_fd(bpf_object* obj, const char* name) {
  bpf_map* m = bpf_object__find_map_by_name(obj, name);
  return m ? bpf_map__fd(m) : -1;
}

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

// The loaded policy set and what user space keeps for it (see set_policies).
struct PolicyState {
  std::vector<policy::CompiledPolicy> set;
  std::vector<PolicySlotInfo> slots;
  uint32_t generation = 0;
  bool any_binaries = false;
  bool events_only = false;  // trace --policy
  NsInodes host_ns{};
  // The slot tables of the last loads, by generation: a record in flight names its set.
  std::map<uint32_t, std::vector<PolicySlotInfo>> tables;
  // Container cgroups scoped policies were told about: the container when described
  // (note_container: recomputed for a new set), else the bits last given.
  struct Cgroup {
    std::optional<ContainerInfo> container;
    uint64_t bits = 0;
  };
  std::unordered_map<uint64_t, Cgroup> cgroups;
  // Containers announced before their cgroup exists (expect_container), by id.
  struct Expected {
    ContainerInfo container;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::string, Expected> expected;
};

struct BpfCapture::Impl {
  Skeleton skel;
  std::unique_ptr<RingReader> rb;
  std::unique_ptr<LaneReader> lanes;  // nullptr: every check comes on the ring buffer
  std::unique_ptr<ReaderPacing> pacing;
  cs_config config{};
  InlinedCallerLinks callers;
  PolicyState policy;
  ~Impl() {
    rb.reset();  // before the skeleton closes the maps
    lanes.reset();
    pacing.reset();
    for (bpf_link* l : callers.links) bpf_link__destroy(l);
    if (skel.destroy) skel.destroy();
  }
};

static uint32_t filter_bits(const filter::FilterSpec& f) {
  uint32_t b = 0;
  if (!f.pids.empty()) b |= CS_FILT_PID;
  if (!f.tids.empty()) b |= CS_FILT_TID;
  if (!f.uids.empty()) b |= CS_FILT_UID;
  if (!f.gids.empty()) b |= CS_FILT_GID;
  if (!f.comms.empty()) b |= CS_FILT_COMM;
  if (!f.cgroup_ids.empty()) b |= CS_FILT_CGROUP;
  if (f.cap_mask) b |= CS_FILT_CAPS;
  if (f.denied_only) b |= CS_FILT_DENIED;
  if (f.audit_only) b |= CS_FILT_AUDIT_ONLY;
  if (f.host_only) b |= CS_FILT_HOST_ONLY;
  if (f.containers_only) b |= CS_FILT_CONTAINERS_ONLY;
  if (f.exclude_unselected) b |= CS_FILT_UNSELECTED;
  if (f.unique) b |= CS_FILT_UNIQUE;
  if (f.rate_window_ns) b |= CS_FILT_RATE;
  return b;
}

template <typename K>
static bool fill_set(int fd, const std::vector<K>& keys, std::string* error, const char* what) {
  uint8_t one = 1;
  for (const K& k : keys) {
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) {
      *error = fmt::format("cannot add {} filter value: {} (at most {} values)", what,
                           errno_text(errno), CS_MAX_FILTER_VALUES);
      return false;
    }
  }
  return true;
}

static bool write_filters(bpf_object* obj, const filter::FilterSpec& f, std::string* error) {
  std::vector<cs_comm_key> comms;
  for (const auto& c : f.comms) {
    cs_comm_key k{};
    std::strncpy(k.comm, c.c_str(), sizeof(k.comm) - 1);
    comms.push_back(k);
  }
  return fill_set(map_fd(obj, "filter_pids"), f.pids, error, "pid") &&
         fill_set(map_fd(obj, "filter_tids"), f.tids, error, "tid") &&
         fill_set(map_fd(obj, "filter_uids"), f.uids, error, "uid") &&
         fill_set(map_fd(obj, "filter_gids"), f.gids, error, "gid") &&
         fill_set(map_fd(obj, "filter_comms"), comms, error, "comm") &&
         fill_set(map_fd(obj, "filter_cgroups"), f.cgroup_ids, error, "cgroup");
}

// Each CPU wakes the reader once per this many bytes of records, else the
// reader finds them at its next poll timeout: big enough that a busy stream
// wakes it rarely, small enough that all CPUs together stay far from filling
// the buffer before it is read.
static uint64_t wakeup_mark(size_t ringbuf_bytes) {
  uint64_t cpus = std::max(libbpf_num_possible_cpus(), 1);
  return std::clamp<uint64_t>(ringbuf_bytes / (4 * cpus), 4096, 1u << 20);
}

bool BpfCapture::write_config() {
  uint32_t zero = 0;
  return bpf_map_update_elem(map_fd(impl_->skel.obj, "cfg_map"), &zero, &impl_->config, BPF_ANY) ==
         0;
}

// Each CPU's check lane: an eighth of the ring buffer's size per CPU, between
// 256 KiB and 8 MiB, in slots (a power of two). A full lane is no loss (its
// checks go on the ring buffer), so many CPUs get small lanes, not much memory.
static uint32_t lane_slots(size_t ringbuf_bytes) {
  uint64_t cpus = std::max(libbpf_num_possible_cpus(), 1);
  uint64_t bytes = std::clamp<uint64_t>(ringbuf_bytes / 8 / cpus, 256u << 10, 8u << 20);
  uint64_t slots = 1;
  while (slots * 2 * sizeof(cs_lane_slot) <= bytes) slots <<= 1;
  return static_cast<uint32_t>(slots);
}

// The ring buffer's size: a power of two (the kernel requires it), at least 64 KiB.
static size_t ringbuf_size(size_t requested) {
  size_t pow2 = 1;
  while (pow2 < std::max<size_t>(requested, 1u << 16)) pow2 <<= 1;
  return pow2;
}

// Opens and loads the programs of backend b into impl; 0, or a negative
// errno with the reason in *error.
static int load_backend(BpfCapture::Impl& impl, Backend b, const KernelFeatures& f,
                        bool walk_direct, size_t ringbuf_bytes, std::string* error) {
  if (impl.skel.destroy) impl.skel.destroy();
  impl.skel = open_backend(b, walk_direct);
  Skeleton& sk = impl.skel;
  if (!sk.obj) {
    *error = fmt::format("cannot open the {} BPF object: {}", backend_name(b), errno_text(errno));
    return -EINVAL;
  }
  bpf_map__set_max_entries(bpf_object__find_map_by_name(sk.obj, "events"),
                           ringbuf_size(ringbuf_bytes));
  auto cpus = static_cast<uint32_t>(std::max(libbpf_num_possible_cpus(), 1));
  bpf_map__set_max_entries(bpf_object__find_map_by_name(sk.obj, "lane_pos"), cpus);
  bpf_map__set_max_entries(bpf_object__find_map_by_name(sk.obj, "lanes"),
                           cpus * lane_slots(ringbuf_bytes));
  if (b != Backend::Tracepoint) prepare_inlined_callers(sk.obj, b, f);
  int err = bpf_object__load_skeleton(sk.skel);
  if (err == 0) return 0;
  std::string hint = err == -EPERM ? " (are you root with CAP_BPF and CAP_PERFMON?)" : "";
  if (b == Backend::Fentry && err == -EPERM)
    hint = " (this kernel refuses fentry/fexit programs: no ftrace-patchable functions?)";
  *error = fmt::format("cannot load the {} BPF programs: {}{}; --verbose shows the verifier log",
                       backend_name(b), errno_text(err), hint);
  return err;
}

std::unique_ptr<BpfCapture> BpfCapture::open(const CaptureOptions& opts, const KernelFeatures& f,
                                             std::string* error) {
  g_verbose_libbpf = opts.verbose_libbpf;
  libbpf_set_print(libbpf_print);
  if (opts.backend != Backend::Auto) {
    if (auto why = backend_unavailable_reason(opts.backend, f); !why.empty()) {
      *error = fmt::format("backend {} is not available on this kernel: {}",
                           backend_name(opts.backend), why);
      return nullptr;
    }
    return open_backend_as(opts.backend, opts, f, error);
  }
  // auto: the first backend that really loads and attaches. Probing alone can
  // be wrong (fentry looks possible until the kernel refuses the program).
  std::string reasons;
  for (Backend b : {Backend::Tracepoint, Backend::Fentry, Backend::Kprobe}) {
    std::string why = backend_unavailable_reason(b, f);
    if (why.empty()) {
      if (auto cap = open_backend_as(b, opts, f, &why)) return cap;
    }
    reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : "; ", backend_name(b), why);
  }
  *error = "no usable capture backend on this kernel: " + reasons;
  return nullptr;
}

std::unique_ptr<BpfCapture> BpfCapture::open_backend_as(Backend b, const CaptureOptions& opts,
                                                        const KernelFeatures& f,
                                                        std::string* error) {
  std::unique_ptr<BpfCapture> cap(new BpfCapture());
  cap->backend_ = b;
  cap->impl_ = std::make_unique<Impl>();
  // The tracepoint backend first tries its fast stack walk; a kernel whose
  // verifier refuses it gets the walk through bpf_probe_read_kernel().
  cap->walk_direct_ = b == Backend::Tracepoint && opts.try_direct_walk;
  cap->post_filter_ = std::make_unique<filter::SampledCheckFilter>(opts.filters);
  cap->filters_ = opts.filters;
  cap->aggregate_ = opts.aggregate;
  for (;;) {
    int err = load_backend(*cap->impl_, b, f, cap->walk_direct_, opts.ringbuf_bytes, error);
    if (err == 0) break;
    if (!cap->walk_direct_) return nullptr;
    spdlog::debug("direct stack reads refused ({}); walking with bpf_probe_read_kernel", *error);
    cap->walk_direct_ = false;
  }
  size_t pow2 = ringbuf_size(opts.ringbuf_bytes);
  cs_config& cfg = cap->impl_->config;
  cfg.filter_flags = filter_bits(opts.filters) | (opts.aggregate ? CS_FILT_AGGREGATE : 0) |
                     (opts.aggregate && opts.aggregate_emit ? CS_FILT_AGG_EMIT : 0) |
                     (opts.follow_pids.empty() ? 0 : CS_FILT_FOLLOW) |
                     (opts.policy_events_only ? CS_FILT_POLICY_ONLY : 0);
  PolicyState& ps = cap->impl_->policy;
  ps.events_only = opts.policy_events_only;
  ps.host_ns =
      opts.host_ns.value_or(host_namespaces(ProcReader(), 1, static_cast<uint32_t>(getpid())));
  cfg.self_pid = static_cast<uint32_t>(getpid());
  cfg.cap_mask = opts.filters.cap_mask.value_or(~0ULL);
  cfg.rate_scope = static_cast<uint32_t>(opts.filters.rate_scope);
  cfg.rate_window_ns = opts.filters.rate_window_ns.value_or(0);
  cfg.walk_start = 0;
  cfg.opts_kind = f.opts_kind == OptsKind::AuditInt ? 1 : 0;
  cfg.learn = opts.learn_callsites ? 1 : 0;
  cfg.lane_slots = lane_slots(opts.ringbuf_bytes);
  // A lane's checks wake the reader before its lane is a quarter full.
  cfg.wakeup_bytes =
      std::min<uint64_t>(wakeup_mark(pow2), uint64_t{cfg.lane_slots} * sizeof(cs_lane_slot) / 4);
  cap->write_config();
  Skeleton& sk = cap->impl_->skel;
  if (!write_filters(sk.obj, opts.filters, error) ||
      !fill_set(map_fd(sk.obj, "follow_pids"), opts.follow_pids, error, "followed pid"))
    return nullptr;
  if (b == Backend::Tracepoint) {
    // Without real addresses no call site can be classified, and every check would be
    // reported as undecided: refuse instead of reporting wrong audit flags.
    Kallsyms symbols = Kallsyms::load();
    if (!symbols.usable()) {
      *error =
          "/proc/kallsyms shows no kernel addresses (all zero: capscope lacks CAP_SYSLOG, or "
          "kernel.kptr_restrict is 2), which the tracepoint backend needs to tell probes from "
          "needs: run it with CAP_SYSLOG and kernel.kptr_restrict at 0 or 1";
      return nullptr;
    }
    cap->learner_ = std::make_unique<CallSiteLearner>(std::move(symbols));
  }
  if (int err = bpf_object__attach_skeleton(sk.skel); err) {
    *error = fmt::format("cannot attach the {} BPF programs: {}", backend_name(b), errno_text(err));
    return nullptr;
  }
  if (b != Backend::Tracepoint) {
    cap->impl_->callers = attach_inlined_callers(sk.obj);
    for (const auto& f : cap->impl_->callers.failed)
      spdlog::warn("checks cap_capable makes inlined into {} (if any) are not seen", f);
  }
  cap->impl_->rb = RingReader::open(map_fd(sk.obj, "events"), error);
  if (!cap->impl_->rb) return nullptr;
  cap->impl_->lanes = LaneReader::open(
      map_fd(sk.obj, "lanes"), map_fd(sk.obj, "lane_pos"),
      static_cast<uint32_t>(std::max(libbpf_num_possible_cpus(), 1)), cfg.lane_slots, error);
  if (!cap->impl_->lanes) return nullptr;
  cap->impl_->pacing = ReaderPacing::open(map_fd(sk.obj, "reader_state"), cfg.wakeup_bytes, error);
  if (!cap->impl_->pacing) return nullptr;
  return cap;
}

BpfCapture::~BpfCapture() = default;

// The hash map holds every learned site; the direct-mapped cache the first
// site of each slot (and its later corrections), which the BPF side checks
// first.
void BpfCapture::store_callsite(const CallSiteEntry& e) {
  cs_callsite v{e.advance, static_cast<uint32_t>(e.decision)};
  if (bpf_map_update_elem(map_fd(impl_->skel.obj, "callsites"), &e.ip, &v, BPF_ANY) != 0)
    spdlog::debug("call-site map full or refused {:#x}: {}", e.ip, errno_text(errno));
  uint32_t idx = cs_callsite_slot_of(e.ip);
  int cache = map_fd(impl_->skel.obj, "callsite_cache");
  cs_callsite_slot slot{};
  if (bpf_map_lookup_elem(cache, &idx, &slot) != 0) return;
  if (slot.ip != 0 && slot.ip != e.ip) return;
  slot = {e.ip, v};
  bpf_map_update_elem(cache, &idx, &slot, BPF_ANY);
}

bool BpfCapture::handle_sample(CapCheck& c) {
  if (!learner_ || c.stack.empty()) return false;
  LearnResult r = learner_->learn(c.stack, c.raw_stack);
  c.audit = r.verdict.audit;
  c.insetid = r.verdict.insetid;
  c.audit_source = AuditSource::CallSite;
  if (spdlog::should_log(spdlog::level::debug)) {
    std::string path;
    for (const auto& fn : r.functions) path += (path.empty() ? "" : " <- ") + fn;
    spdlog::debug("call-site sample {} {}: {} (decided by {})", tables::cap_name(c.cap),
                  c.audit ? "audit" : "noaudit", path, r.verdict.decided_by);
    for (const auto& e : r.entries)
      spdlog::debug("  learned {:#x} {} advance {} decision {}", e.ip,
                    learner_->symbols().function_at(e.ip).value_or("?"), e.advance,
                    static_cast<int>(e.decision));
  }
  for (const auto& e : r.entries) store_callsite(e);
  bool config_changed = !r.entries.empty();
  // A stored entry may correct one a CPU's last walk read: the generation tells its memo.
  if (config_changed) ++impl_->config.callsite_gen;
  if (r.walk_start && impl_->config.walk_start == 0) {
    impl_->config.walk_start = *r.walk_start;
    config_changed = true;
  }
  if (config_changed) write_config();
  c.raw_stack.clear();
  c.raw_stack.shrink_to_fit();
  return !r.verdict.decided_by.empty();
}

void BpfCapture::on_record(std::span<const uint8_t> bytes, const RecordHandler& handler) {
  cs_record_hdr hdr{};
  if (bytes.size() >= sizeof(hdr)) std::memcpy(&hdr, bytes.data(), sizeof(hdr));
  if (hdr.type == CS_REC_LANE_WAKE) return;  // only woke us
  DecodeResult r = decode_record(bytes);
  if (!r.record) {
    ++decode_errors_;
    return;
  }
  auto* c = std::get_if<CapCheck>(&*r.record);
  if (c == nullptr) {
    handler(std::move(*r.record));
    return;
  }
  bool sampled = !c->stack.empty();
  // Whether the audit flag is known: the kernel's, or learned from this sample. A kill
  // the kernel left pending with a known flag is that of a PID namespace's init.
  bool classified = sampled ? handle_sample(*c) : true;
  std::optional<PolicyPart> part = decode_policy_part(bytes);
  bool event = !(part && part->policy_only) && post_filter_->keep(*c, sampled);
  // The agent's profiles need every check the kernel did not count, event or not.
  if (!event && aggregate_ && !c->aggregated && !(part && part->policy_only)) {
    c->profile_only = true;
    event = true;
  }
  if (!part) {
    if (event) handler(std::move(*r.record));
    return;
  }
  CapCheck check = *c;  // the policies' events are copies of it
  if (event) handler(std::move(*r.record));
  deliver_policy_events(std::move(check), *part, classified, sampled, handler);
}

namespace {

// Whether process `pid` started before `ktime_ns` (CLOCK_MONOTONIC): the process that
// made a check then, not another that reused its pid since. /proc counts start times in
// clock ticks of CLOCK_BOOTTIME; a tick of slack keeps a process started in the same
// tick as the check.
bool started_before(uint32_t pid, uint64_t ktime_ns) {
  auto st = ProcReader().read_stat(pid);
  if (!st) return false;
  timespec boot{}, mono{};
  clock_gettime(CLOCK_BOOTTIME, &boot);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  int64_t boot_minus_mono =
      (boot.tv_sec - mono.tv_sec) * 1'000'000'000LL + (boot.tv_nsec - mono.tv_nsec);
  uint64_t tick_ns = 1'000'000'000ULL / std::max<uint64_t>(util::clock_ticks_per_second(), 1);
  uint64_t start_ns = st->start_ticks * tick_ns;
  return static_cast<int64_t>(start_ns) <=
         static_cast<int64_t>(ktime_ns) + boot_minus_mono + static_cast<int64_t>(tick_ns);
}

}  // namespace

namespace {

// The slots whose matchArgs on cap_capable's opts refuse check c (by its audit and
// INSETID flags).
uint64_t refused_by_options(const CapCheck& c, const std::vector<PolicySlotInfo>& table) {
  unsigned index = policy::options_index(c.audit, c.insetid);
  uint64_t refused = 0;
  for (size_t s = 0; s < table.size() && s < 64; ++s)
    if ((table[s].options >> index & 1) == 0) refused |= 1ULL << s;
  return refused;
}

}  // namespace

// Sends SIGKILL for a check whose Sigkill the kernel left to us, if the process that
// made it still runs (it may have exec'd since: a kill ends it all the same).
bool BpfCapture::late_kill(const CapCheck& c) {
  if (!started_before(c.pid, c.ktime_ns) || kill(static_cast<pid_t>(c.pid), SIGKILL) != 0) {
    ++late_kills_.gone;
    return false;
  }
  ++late_kills_.killed;
  return true;
}

// One event per slot that posted the check, named from the slot table of the set the
// kernel evaluated (it may have been replaced since).
void BpfCapture::deliver_policy_events(CapCheck c, const PolicyPart& part, bool classified,
                                       bool sampled, const RecordHandler& handler) {
  const PolicyState& ps = impl_->policy;
  auto table_it = ps.tables.find(part.generation);
  const std::vector<PolicySlotInfo>* table =
      table_it == ps.tables.end() ? nullptr : &table_it->second;
  uint64_t post = part.post, killed = part.killed;
  // A sampled check's audit flag was unknown to the kernel, which took it as audited:
  // the slots whose matchArgs on opts refuse what it turned out to be do not post it.
  if (sampled && classified && table != nullptr) post &= ~refused_by_options(c, *table);
  if (part.pending != 0) {
    if (!classified) {
      ++late_kills_.undecided;  // reported as audited, as every undecided check is; not killed
    } else if (!c.audit || c.cred_override) {
      // A probe, or a check with borrowed credentials (overlayfs's copy-up): Sigkill
      // neither kills nor posts, as in the kernel.
      post &= ~part.pending;
      ++late_kills_.spared;
    } else if (late_kill(c)) {
      killed |= part.pending;
    }
  }
  c.stack.clear();
  for (uint64_t bits = post; bits != 0; bits &= bits - 1) {
    int slot = std::countr_zero(bits);
    CapCheck e = c;
    e.policy_slot = slot;
    const PolicySlotInfo* info =
        table != nullptr && static_cast<size_t>(slot) < table->size() ? &(*table)[slot] : nullptr;
    e.policy_name = info != nullptr ? info->policy : "?";
    e.policy_sigkill = info != nullptr && info->action == policy::Action::Sigkill;
    e.policy_killed = (killed >> slot & 1) != 0;
    handler(Record{std::move(e)});
  }
}

bool BpfCapture::set_event_filters(bool emit, bool unique, std::optional<uint64_t> rate_window_ns) {
  cs_config old = impl_->config;
  cs_config& cfg = impl_->config;
  cfg.filter_flags &= ~(CS_FILT_AGG_EMIT | CS_FILT_UNIQUE | CS_FILT_RATE);
  if (emit && aggregate_) cfg.filter_flags |= CS_FILT_AGG_EMIT;
  if (unique) cfg.filter_flags |= CS_FILT_UNIQUE;
  if (rate_window_ns) cfg.filter_flags |= CS_FILT_RATE;
  cfg.rate_window_ns = rate_window_ns.value_or(0);
  if (!write_config()) {
    cfg = old;
    return false;
  }
  filters_.unique = unique;
  filters_.rate_window_ns = rate_window_ns;
  post_filter_ = std::make_unique<filter::SampledCheckFilter>(filters_);
  return true;
}

uint64_t BpfCapture::ring_lag_bytes() const {
  return (impl_->rb ? impl_->rb->lag_bytes() : 0) + (impl_->lanes ? impl_->lanes->lag_bytes() : 0);
}

// The kernel side wakes us only while we sleep and only past the wakeup mark
// (cs_config.wakeup_bytes; under a flood we poll instead, see ReaderPacing):
// what came in below it is read when the wait times out. The lanes' heads are
// taken before the ring buffer is drained, so the exec, fork and exit records
// that came before a check taken from a lane are in this drain; the two streams
// are merged by time: each ring buffer record comes after the lanes' older ones
// (a learning sample after the decided checks made before it, as they happened).
int BpfCapture::poll(int timeout_ms, const RecordHandler& handler) {
  LaneReader& lanes = *impl_->lanes;
  if (int err = impl_->pacing->wait(timeout_ms, *impl_->rb, lanes); err < 0) return err;
  auto on = [&](std::span<const uint8_t> bytes) { on_record(bytes, handler); };
  int n = 0;
  int from_lanes = 0;
  auto on_ring_record = [&](std::span<const uint8_t> bytes) {
    if (uint64_t t = record_ktime(bytes); t != 0) from_lanes += lanes.consume_before(t, on);
    on(bytes);
  };
  lanes.mark();
  n += impl_->rb->consume(on_ring_record);
  from_lanes += lanes.consume(on);
  impl_->pacing->drained(static_cast<uint64_t>(from_lanes) * sizeof(cs_lane_slot));
  return n + from_lanes;
}

void BpfCapture::wake() { impl_->rb->wake(); }

bool BpfCapture::follow(uint32_t pid) {
  uint8_t one = 1;
  return bpf_map_update_elem(map_fd(impl_->skel.obj, "follow_pids"), &pid, &one, BPF_ANY) == 0;
}

bool BpfCapture::exclude_cgroup(uint64_t cgroup_id) {
  uint8_t one = 1;
  return bpf_map_update_elem(map_fd(impl_->skel.obj, "unselected_cgroups"), &cgroup_id, &one,
                             BPF_ANY) == 0;
}

namespace {

AggregateEntry entry_of(const cs_agg_key& k, const cs_agg_val& v) {
  return {k.cgroup_id,
          k.pid,
          k.exec_seq,
          k.syscall_nr,
          k.cap,
          (k.flags & CS_AGG_GRANTED) != 0,
          (k.flags & CS_AGG_AUDIT) != 0,
          (k.flags & CS_AGG_INSETID) != 0,
          v.count,
          v.first_ns,
          v.last_ns,
          (k.flags & CS_AGG_CRED_OVERRIDE) != 0};
}

// Returns once every BPF program run that started before the call has
// finished: MEMBARRIER_CMD_GLOBAL is synchronize_rcu(), and every run is an
// RCU read-side critical section. On one CPU the kernel skips the wait: no
// tracepoint or kprobe run (preemption off) is in progress while we run, but
// an fentry run may be preempted (it only disables migration), so there a
// pause stands in, as where membarrier is refused (nohz_full): a run lasts
// microseconds, so the pause lets it finish, though it is no proof.
void wait_for_program_runs(Backend backend) {
  bool one_cpu = sysconf(_SC_NPROCESSORS_ONLN) == 1;
  if (!(one_cpu && backend == Backend::Fentry) &&
      syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
    return;
  static bool said = false;  // once: record drains every second
  if (!std::exchange(said, true))
    spdlog::info("each drain waits 50 ms for BPF program runs to end ({})",
                 one_cpu ? "one CPU, preemptible fentry runs" : "membarrier refused");
  usleep(50 * 1000);
}

}  // namespace

// The programs count in one bank of the per-CPU cache and the hash map
// (cs_config.agg_bank); see cs_aggregate in bpf/capable_common.bpf.h for why
// flipping the bank and waiting for the runs that read the old number makes
// the old bank ours alone: each count is drained exactly once.
int BpfCapture::drain_aggregates(const std::function<void(const AggregateEntry&)>& sink) {
  int fd = map_fd(impl_->skel.obj, "agg");
  int cache_fd = map_fd(impl_->skel.obj, "agg_cache");
  int ncpu = libbpf_num_possible_cpus();
  if (fd < 0 || cache_fd < 0 || ncpu <= 0) return -ENOENT;
  uint32_t old_bank = impl_->config.agg_bank & 1;
  impl_->config.agg_bank = old_bank ^ 1;
  if (!write_config()) {
    // The programs still count in the old bank: draining it now could lose counts.
    int err = errno;
    impl_->config.agg_bank = old_bank;
    return -err;
  }
  wait_for_program_runs(backend_);
  int drained = 0;
  // The per-CPU cache of the old bank: each slot index on every CPU, zeroed
  // before its counts are handed on (a slot that cannot be zeroed keeps its
  // counts for a later drain of this bank rather than have them twice).
  std::vector<cs_agg_slot> slots(static_cast<size_t>(ncpu));
  const std::vector<cs_agg_slot> zeros(static_cast<size_t>(ncpu));
  for (uint32_t i = 0; i < CS_AGG_SLOTS; ++i) {
    uint32_t idx = old_bank * CS_AGG_SLOTS + i;
    if (bpf_map_lookup_elem(cache_fd, &idx, slots.data()) != 0) continue;
    bool used = std::ranges::any_of(slots, [](const cs_agg_slot& s) { return s.val.count != 0; });
    if (!used || bpf_map_update_elem(cache_fd, &idx, zeros.data(), BPF_ANY) != 0) continue;
    for (const cs_agg_slot& s : slots) {
      if (s.val.count == 0) continue;
      sink(entry_of(s.key, s.val));
      ++drained;
    }
  }
  // The hash map's entries of the old bank. Keys first, then lookup-and-delete
  // each: deleting while iterating would restart the walk from the beginning.
  std::vector<cs_agg_key> keys;
  cs_agg_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (next.bank == old_bank) keys.push_back(next);
    key = next;
    prev = &key;
  }
  for (const cs_agg_key& k : keys) {
    cs_agg_val v{};
    if (bpf_map_lookup_and_delete_elem(fd, &k, &v) != 0) continue;
    sink(entry_of(k, v));
    ++drained;
  }
  return drained;
}

KernelCounters BpfCapture::counters() const {
  KernelCounters k;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return k;
  int fd = map_fd(impl_->skel.obj, "counters");
  std::vector<cs_counters> per_cpu(static_cast<size_t>(ncpu));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(fd, &zero, per_cpu.data()) != 0) return k;
  uint64_t* fields[] = {&k.checks,    &k.filtered,   &k.unique_suppressed, &k.rate_suppressed,
                        &k.emitted,   &k.lost,       &k.samples,           &k.walk_misses,
                        &k.proc_lost, &k.aggregated, &k.agg_full};
  static_assert(sizeof(fields) / sizeof(fields[0]) == CS_CNT_MAX);
  for (const cs_counters& cpu : per_cpu)
    for (uint32_t i = 0; i < CS_CNT_MAX; ++i) *fields[i] += cpu.v[i];
  return k;
}

// ---- Policies ---------------------------------------------------------------------------

namespace {

// Reads one u64 word of a bank out of a cs_policy_bits map entry, or writes it; the other
// bank's word is kept as the map has it.
bool write_bank_word(int fd, const void* key, uint32_t bank, uint64_t bits, bool create) {
  cs_policy_bits v{};
  bool have = bpf_map_lookup_elem(fd, key, &v) == 0;
  if (!have && (!create || bits == 0)) return true;
  v.bits[bank & 1] = bits;
  return bpf_map_update_elem(fd, key, &v, BPF_ANY) == 0;
}

template <typename K>
std::vector<K> map_keys(int fd) {
  std::vector<K> keys;
  K key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

// Deletes the entries whose word of `bank` is 0 (after a switch to `bank`, the other
// word is no longer read).
template <typename K>
void prune_bank_words(int fd, uint32_t bank) {
  for (const K& k : map_keys<K>(fd)) {
    cs_policy_bits v{};
    if (bpf_map_lookup_elem(fd, &k, &v) == 0 && v.bits[bank & 1] == 0) bpf_map_delete_elem(fd, &k);
  }
}

cs_cgroup_name cgroup_name_key(const std::string& name) {
  cs_cgroup_name k{};
  std::memcpy(k.name, name.data(), std::min(name.size(), sizeof(k.name) - 1));
  return k;
}

// Every name the cgroup of container `id` may take gets `bits` as its word of `bank`.
bool write_expected(int fd, const std::string& id, uint32_t bank, uint64_t bits) {
  bool ok = true;
  for (const auto& name : container_cgroup_names(id)) {
    cs_cgroup_name k = cgroup_name_key(name);
    ok = write_bank_word(fd, &k, bank, bits, true) && ok;
  }
  return ok;
}

// The names written for container `id` leave the map.
void delete_expected(int fd, const std::string& id) {
  for (const auto& name : container_cgroup_names(id)) {
    cs_cgroup_name k = cgroup_name_key(name);
    bpf_map_delete_elem(fd, &k);
  }
}

cs_path_key path_key(const std::string& path) {
  cs_path_key k{};
  std::memcpy(k.path, path.data(), std::min(path.size(), sizeof(k.path) - 1));
  return k;
}

// matchBinaries: every path of the new set, and every path the map has, gets its word of
// `bank`; the words of the bank in use stay.
bool write_binaries(int fd, uint32_t bank, const std::map<std::string, uint64_t>& paths,
                    std::string* error) {
  for (const cs_path_key& k : map_keys<cs_path_key>(fd)) {
    std::string path(k.path, strnlen(k.path, sizeof(k.path)));
    if (!paths.contains(path)) write_bank_word(fd, &k, bank, 0, false);
  }
  for (const auto& [path, bits] : paths) {
    cs_path_key k = path_key(path);
    if (!write_bank_word(fd, &k, bank, bits, true)) {
      *error = fmt::format("cannot write the policies' binary paths into the kernel: {}",
                           errno_text(errno));
      return false;
    }
  }
  return true;
}

uint64_t bits_of_exe(const ProcReader& proc, uint32_t pid,
                     const std::map<std::string, uint64_t>& paths) {
  auto exe = proc.read_exe(pid);
  if (!exe) return 0;
  auto it = paths.find(*exe);
  return it == paths.end() ? 0 : it->second;
}

// The processes that run already: their binary from /proc/PID/exe (the kernel sets the
// bits of later ones at exec and fork). A process that execs while we write may end with
// our stale word: its exe is read again after the write, and the write redone.
void seed_task_bins(int fd, uint32_t bank, const std::map<std::string, uint64_t>& paths) {
  ProcReader proc;
  for (uint32_t pid : proc.list_pids()) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      uint64_t bits = bits_of_exe(proc, pid, paths);
      write_bank_word(fd, &pid, bank, bits, true);
      if (bits_of_exe(proc, pid, paths) == bits) break;
    }
  }
  for (uint32_t pid : map_keys<uint32_t>(fd))
    if (!std::filesystem::exists(proc.root() / std::to_string(pid))) bpf_map_delete_elem(fd, &pid);
}

void zero_counts(int fd, uint32_t bank) {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return;
  const std::vector<cs_policy_counts> zeros(static_cast<size_t>(ncpu));
  for (uint32_t s = 0; s < CS_POLICY_SLOTS; ++s) {
    uint32_t idx = (bank & 1) * CS_POLICY_SLOTS + s;
    bpf_map_update_elem(fd, &idx, zeros.data(), BPF_ANY);
  }
}

}  // namespace

// The order makes a reload safe: everything the new set needs is written into the bank
// the programs do not read (slots, binaries' and cgroups' words, counters), then
// cs_config.policy_bank flips in one store, then an RCU grace period passes before the
// old bank's words may be pruned. A check is evaluated against one whole set.
bool BpfCapture::set_policies(const std::vector<policy::CompiledPolicy>& set, std::string* error) {
  PolicyState& ps = impl_->policy;
  bpf_object* obj = impl_->skel.obj;
  uint32_t next = (impl_->config.policy_bank & 1) ^ 1;
  auto built = compile_bank(set, ps.host_ns, ps.generation + 1, host_has_merged_usr, error);
  if (!built) return false;
  bool any_binaries = !built->binaries.empty();
  zero_counts(map_fd(obj, "policy_counts"), next);
  if (!write_binaries(map_fd(obj, "policy_binaries"), next, built->binaries, error)) return false;
  if (any_binaries && !(impl_->config.filter_flags & CS_FILT_POLICY_BINS)) {
    // exec and fork keep the bits from now on, before the walk: none falls between.
    impl_->config.filter_flags |= CS_FILT_POLICY_BINS;
    write_config();
  }
  if (any_binaries) seed_task_bins(map_fd(obj, "task_policy_bins"), next, built->binaries);
  int cg_fd = map_fd(obj, "policy_cgroups");
  for (auto& [id, cg] : ps.cgroups) {
    cg.bits = cg.container ? scoped_slots_for(set, *cg.container)
                           : carry_slots(cg.bits, ps.slots, built->slots);
    write_bank_word(cg_fd, &id, next, cg.bits, true);
  }
  int expected_fd = map_fd(obj, "policy_pending");
  for (const auto& [id, ex] : ps.expected)
    write_expected(expected_fd, id, next, scoped_slots_for(set, ex.container));
  if (bpf_map_update_elem(map_fd(obj, "policy_banks"), &next, &built->bank, BPF_ANY) != 0) {
    *error = fmt::format("cannot write the policies into the kernel: {}", errno_text(errno));
    return false;
  }
  uint32_t old_flags = impl_->config.filter_flags;
  uint32_t old_bank = impl_->config.policy_bank;
  uint32_t flags = old_flags & ~(CS_FILT_POLICY | CS_FILT_POLICY_BINS);
  if (built->bank.active != 0) flags |= CS_FILT_POLICY;
  // Until a set without binaries has been switched to, exec and fork keep the old set's.
  if (any_binaries || ps.any_binaries) flags |= CS_FILT_POLICY_BINS;
  impl_->config.filter_flags = flags;
  impl_->config.policy_bank = next;
  if (!write_config()) {
    int err = errno;
    impl_->config.filter_flags = old_flags;
    impl_->config.policy_bank = old_bank;
    *error = fmt::format("cannot switch the kernel to the new policies: {}", errno_text(err));
    return false;
  }
  wait_for_program_runs(backend_);
  prune_bank_words<cs_path_key>(map_fd(obj, "policy_binaries"), next);
  prune_bank_words<uint64_t>(cg_fd, next);
  prune_bank_words<cs_cgroup_name>(expected_fd, next);
  if (!any_binaries) {
    impl_->config.filter_flags &= ~CS_FILT_POLICY_BINS;
    write_config();
    for (uint32_t pid : map_keys<uint32_t>(map_fd(obj, "task_policy_bins")))
      bpf_map_delete_elem(map_fd(obj, "task_policy_bins"), &pid);
  }
  ps.set = set;
  ps.slots = built->slots;
  ps.generation = built->bank.gen;
  ps.any_binaries = any_binaries;
  ps.tables[ps.generation] = ps.slots;
  while (ps.tables.size() > 4) ps.tables.erase(ps.tables.begin());
  return true;
}

bool BpfCapture::set_cgroup_policies(uint64_t cgroup_id, uint64_t slot_bits) {
  PolicyState& ps = impl_->policy;
  if (ps.cgroups.size() < kMaxPolicyCgroups || ps.cgroups.contains(cgroup_id))
    ps.cgroups[cgroup_id] = {std::nullopt, slot_bits};
  int fd = map_fd(impl_->skel.obj, "policy_cgroups");
  return write_bank_word(fd, &cgroup_id, impl_->config.policy_bank, slot_bits, true);
}

bool BpfCapture::note_container(uint64_t cgroup_id, const ContainerInfo& container) {
  PolicyState& ps = impl_->policy;
  uint64_t bits = scoped_slots_for(ps.set, container);
  if (ps.cgroups.size() < kMaxPolicyCgroups || ps.cgroups.contains(cgroup_id))
    ps.cgroups[cgroup_id] = {container, bits};
  int fd = map_fd(impl_->skel.obj, "policy_cgroups");
  return write_bank_word(fd, &cgroup_id, impl_->config.policy_bank, bits, true);
}

uint64_t BpfCapture::expect_container(const ContainerInfo& container) {
  PolicyState& ps = impl_->policy;
  if (container.id.empty()) return 0;
  uint64_t bits = scoped_slots_for(ps.set, container);
  bool known = ps.expected.contains(container.id);
  if (bits == 0 && !known) return 0;
  int fd = map_fd(impl_->skel.obj, "policy_pending");
  if (bits == 0) {
    delete_expected(fd, container.id);
    ps.expected.erase(container.id);
    return 0;
  }
  // A full map leaves the container to the cgroup record's path (user space, later).
  if (!write_expected(fd, container.id, impl_->config.policy_bank, bits)) return 0;
  ps.expected[container.id] = {container, std::chrono::steady_clock::now()};
  return bits;
}

size_t BpfCapture::expire_expected(std::chrono::seconds age) {
  PolicyState& ps = impl_->policy;
  auto before = std::chrono::steady_clock::now() - age;
  int fd = map_fd(impl_->skel.obj, "policy_pending");
  return std::erase_if(ps.expected, [&](const auto& entry) {
    if (entry.second.since > before) return false;
    delete_expected(fd, entry.first);
    return true;
  });
}

void BpfCapture::forget_cgroup_policies(uint64_t cgroup_id) {
  impl_->policy.cgroups.erase(cgroup_id);
  bpf_map_delete_elem(map_fd(impl_->skel.obj, "policy_cgroups"), &cgroup_id);
}

std::vector<PolicySlotCounts> BpfCapture::policy_counts() const {
  const PolicyState& ps = impl_->policy;
  std::vector<PolicySlotCounts> out(ps.slots.size());
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  int fd = map_fd(impl_->skel.obj, "policy_counts");
  std::vector<cs_policy_counts> per_cpu(static_cast<size_t>(ncpu));
  for (uint32_t s = 0; s < out.size(); ++s) {
    uint32_t idx = (impl_->config.policy_bank & 1) * CS_POLICY_SLOTS + s;
    if (bpf_map_lookup_elem(fd, &idx, per_cpu.data()) != 0) continue;
    PolicySlotCounts& o = out[s];
    for (const cs_policy_counts& c : per_cpu) {
      o.hits += c.hits;
      o.posted += c.posted;
      o.rate_limited += c.rate_limited;
      o.killed += c.killed;
      o.spared += c.spared;
      o.pending += c.pending;
      o.kill_failed += c.kill_failed;
    }
  }
  return out;
}

std::vector<uint64_t> BpfCapture::policy_hits() const {
  std::vector<uint64_t> hits;
  for (const PolicySlotCounts& c : policy_counts()) hits.push_back(c.hits);
  return hits;
}

const std::vector<PolicySlotInfo>& BpfCapture::policy_slots() const { return impl_->policy.slots; }

}  // namespace capscope::capture
