#include "capture/bpf_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "capable_fexit.skel.h"
#include "capable_kprobe.skel.h"
#include "capable_tp.skel.h"
#include "capscope.h"
#include "capture/decode.h"

namespace capscope::capture {

namespace {

bool g_verbose_libbpf = false;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !g_verbose_libbpf) return 0;
  if (!g_verbose_libbpf && level == LIBBPF_INFO) return 0;
  return vfprintf(stderr, format, args);
}

// The parts of a generated skeleton the loader uses, whatever the backend.
struct Skeleton {
  bpf_object* obj = nullptr;
  bpf_object_skeleton* skel = nullptr;
  std::function<void()> destroy;
};

template <typename S>
Skeleton open_skeleton(S* (*open_fn)(), void (*destroy_fn)(S*)) {
  S* s = open_fn();
  if (!s) return {};
  return {s->obj, s->skeleton, [s, destroy_fn] { destroy_fn(s); }};
}

Skeleton open_backend(Backend b) {
  switch (b) {
    case Backend::Tracepoint:
      return open_skeleton(&capable_tp__open, &capable_tp__destroy);
    case Backend::Fentry:
      return open_skeleton(&capable_fexit__open, &capable_fexit__destroy);
    case Backend::Kprobe:
      return open_skeleton(&capable_kprobe__open, &capable_kprobe__destroy);
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

struct BpfCapture::Impl {
  Skeleton skel;
  ring_buffer* rb = nullptr;
  cs_config config{};
  ~Impl() {
    if (rb) ring_buffer__free(rb);
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

static uint32_t host_pidns_inode() {
  char buf[64] = {};
  ssize_t n = readlink("/proc/1/ns/pid", buf, sizeof(buf) - 1);
  if (n <= 0) return 0;
  const char* lb = std::strchr(buf, '[');
  return lb ? static_cast<uint32_t>(std::strtoul(lb + 1, nullptr, 10)) : 0;
}

void BpfCapture::write_config() {
  uint32_t zero = 0;
  bpf_map_update_elem(map_fd(impl_->skel.obj, "cfg_map"), &zero, &impl_->config, BPF_ANY);
}

std::unique_ptr<BpfCapture> BpfCapture::open(const CaptureOptions& opts, const KernelFeatures& f,
                                             std::string* error) {
  g_verbose_libbpf = opts.verbose_libbpf;
  libbpf_set_print(libbpf_print);
  Backend b = opts.backend;
  if (b == Backend::Auto) {
    std::string why;
    auto chosen = choose_backend(f, &why);
    if (!chosen) {
      *error = "no usable capture backend on this kernel: " + why;
      return nullptr;
    }
    b = *chosen;
  } else if (auto why = backend_unavailable_reason(b, f); !why.empty()) {
    *error = fmt::format("backend {} is not available on this kernel: {}", backend_name(b), why);
    return nullptr;
  }
  std::unique_ptr<BpfCapture> cap(new BpfCapture());
  cap->backend_ = b;
  cap->impl_ = std::make_unique<Impl>();
  Skeleton& sk = cap->impl_->skel;
  sk = open_backend(b);
  if (!sk.obj) {
    *error = fmt::format("cannot open the {} BPF object: {}", backend_name(b), errno_text(errno));
    return nullptr;
  }
  size_t rb_bytes = std::max<size_t>(opts.ringbuf_bytes, 1u << 16);
  size_t pow2 = 1;
  while (pow2 < rb_bytes) pow2 <<= 1;  // the ring buffer size must be a power of two
  bpf_map__set_max_entries(bpf_object__find_map_by_name(sk.obj, "events"), pow2);
  if (int err = bpf_object__load_skeleton(sk.skel); err) {
    std::string hint = err == -EPERM ? " (are you root with CAP_BPF and CAP_PERFMON?)" : "";
    if (b == Backend::Fentry && err == -EPERM)
      hint = " (this kernel refuses fentry/fexit programs: no ftrace-patchable functions?)";
    *error = fmt::format("cannot load the {} BPF programs: {}{}; --verbose shows the verifier log",
                         backend_name(b), errno_text(err), hint);
    return nullptr;
  }
  cs_config& cfg = cap->impl_->config;
  cfg.filter_flags = filter_bits(opts.filters);
  cfg.self_pid = static_cast<uint32_t>(getpid());
  cfg.cap_mask = opts.filters.cap_mask.value_or(~0ULL);
  cfg.host_pidns = host_pidns_inode();
  cfg.rate_scope = static_cast<uint32_t>(opts.filters.rate_scope);
  cfg.rate_window_ns = opts.filters.rate_window_ns.value_or(0);
  cfg.walk_start = 0;
  cfg.opts_kind = f.opts_kind == OptsKind::AuditInt ? 1 : 0;
  cfg.learn = opts.learn_callsites ? 1 : 0;
  cap->write_config();
  if (!write_filters(sk.obj, opts.filters, error)) return nullptr;
  if (b == Backend::Tracepoint) cap->learner_ = std::make_unique<CallSiteLearner>(Kallsyms::load());
  if (int err = bpf_object__attach_skeleton(sk.skel); err) {
    *error = fmt::format("cannot attach the {} BPF programs: {}", backend_name(b), errno_text(err));
    return nullptr;
  }
  cap->impl_->rb =
      ring_buffer__new(map_fd(sk.obj, "events"), &BpfCapture::on_record, cap.get(), nullptr);
  if (!cap->impl_->rb) {
    *error = fmt::format("cannot open the ring buffer: {}", errno_text(errno));
    return nullptr;
  }
  return cap;
}

BpfCapture::~BpfCapture() = default;

void BpfCapture::handle_sample(CapCheck& c) {
  if (!learner_ || c.stack.empty()) return;
  LearnResult r = learner_->learn(c.stack, c.raw_stack);
  c.audit = r.verdict.audit;
  c.insetid = r.verdict.insetid;
  c.audit_source = AuditSource::CallSite;
  int fd = map_fd(impl_->skel.obj, "callsites");
  for (const auto& e : r.entries) {
    cs_callsite v{e.advance, static_cast<uint32_t>(e.decision)};
    if (bpf_map_update_elem(fd, &e.ip, &v, BPF_ANY) != 0)
      spdlog::debug("call-site map full or refused {:#x}: {}", e.ip, errno_text(errno));
  }
  if (r.walk_start && impl_->config.walk_start == 0) {
    impl_->config.walk_start = *r.walk_start;
    write_config();
  }
  c.raw_stack.clear();
  c.raw_stack.shrink_to_fit();
}

int BpfCapture::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfCapture*>(ctx);
  DecodeResult r = decode_record({static_cast<const uint8_t*>(data), size});
  if (!r.record) {
    ++self->decode_errors_;
    return 0;
  }
  if (auto* c = std::get_if<CapCheck>(&*r.record); c && !c->stack.empty()) self->handle_sample(*c);
  (*self->handler_)(std::move(*r.record));
  return 0;
}

int BpfCapture::poll(int timeout_ms, const RecordHandler& handler) {
  handler_ = &handler;
  int n = ring_buffer__poll(impl_->rb, timeout_ms);
  handler_ = nullptr;
  return n;
}

KernelCounters BpfCapture::counters() const {
  KernelCounters k;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return k;
  int fd = map_fd(impl_->skel.obj, "counters");
  std::vector<uint64_t> vals(static_cast<size_t>(ncpu));
  uint64_t* fields[] = {&k.checks,          &k.filtered,    &k.unique_suppressed,
                        &k.rate_suppressed, &k.emitted,     &k.lost,
                        &k.samples,         &k.walk_misses, &k.proc_lost};
  static_assert(sizeof(fields) / sizeof(fields[0]) == CS_CNT_MAX);
  for (uint32_t i = 0; i < CS_CNT_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, vals.data()) != 0) continue;
    for (uint64_t v : vals) *fields[i] += v;
  }
  return k;
}

}  // namespace capscope::capture
