#include "agent/agent.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <unordered_set>

#include "agent/policy_manager.h"
#include "capture/event_source.h"
#include "capture/features.h"
#include "cli/common.h"
#include "enrich/cgroup_fs.h"
#include "enrich/cgroup_path.h"
#include "export/export_filter.h"
#include "export/rotating_file.h"
#include "pipeline/trace_pipeline.h"
#include "tables/capabilities.h"
#include "util/clock.h"

namespace capscope::agent {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kDrainEvery = std::chrono::seconds(1);
constexpr auto kExportFlushEvery = std::chrono::seconds(1);
// How long a new container's cgroup waits for its runtime's answer when a scoped
// policy may take it in (podman answers in about 15 ms here).
constexpr auto kScopedPolicyWait = std::chrono::milliseconds(200);
constexpr auto kTaskWait = std::chrono::seconds(10);

uint64_t wall_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The capture as the pipeline's source. Every record reaches the recorder (and the
// router, for new cgroups) before the pipeline; between polls the agent does its
// periodic work, so one thread owns the capture, the recorder and the pipeline.
class AgentSource final : public capture::EventSource {
 public:
  AgentSource(capture::BpfCapture& cap, profile::Recorder& rec,
              std::function<void(uint64_t, const std::string&)> on_cgroup,
              std::function<void(const CapCheck&)> on_check, std::function<void()> tick)
      : cap_(cap),
        rec_(rec),
        on_cgroup_(std::move(on_cgroup)),
        on_check_(std::move(on_check)),
        tick_(std::move(tick)) {}

  int poll(int timeout_ms, const capture::RecordHandler& h) override {
    capture::RecordHandler tee = [&](Record&& r) {
      if (const auto* cg = std::get_if<CgroupRecord>(&r)) on_cgroup_(cg->id, cg->path);
      if (const auto* c = std::get_if<CapCheck>(&r); c && !c->aggregated && c->policy_slot < 0)
        on_check_(*c);
      rec_.on_record(r);
      h(std::move(r));
    };
    int n = cap_.poll(timeout_ms, tee);
    tick_();
    return n;
  }
  [[nodiscard]] bool finished() const override { return false; }
  [[nodiscard]] capture::SourceStats stats() const override { return {}; }
  [[nodiscard]] std::string describe() const override { return "the agent's capture"; }
  void exclude_cgroup(uint64_t id) override { cap_.exclude_cgroup(id); }

 private:
  capture::BpfCapture& cap_;
  profile::Recorder& rec_;
  std::function<void(uint64_t, const std::string&)> on_cgroup_;
  std::function<void(const CapCheck&)> on_check_;
  std::function<void()> tick_;
};

// The pipeline's writer: every enriched event goes to the agent.
class AgentWriter final : public output::EventWriter {
 public:
  explicit AgentWriter(Agent& agent) : agent_(agent) {}
  void write(const EnrichedCheck& e) override {
    if (!e.check.profile_only) agent_.on_event(e);
  }
  void flush() override {}

 private:
  Agent& agent_;
};

}  // namespace

Agent::Agent(AgentSettings settings) : settings_(std::move(settings)) {}

Agent::~Agent() {
  hub_.close_all();
  pipeline_.reset();
  policy_target_.reset();
  capture_.reset();
}

std::unique_ptr<Agent> Agent::start(AgentSettings settings, std::vector<std::string> args,
                                    bool verbose, std::string* error) {
  std::unique_ptr<Agent> a(new Agent(std::move(settings)));
  a->args_ = std::move(args);
  a->node_ = a->settings_.given.node_name.empty() ? cli::node_name() : a->settings_.given.node_name;
  if (!a->open_store(error) || !a->open_export(a->settings_, error)) return nullptr;
  a->policies_ = std::make_unique<PolicyManager>();
  if (!a->policies_->load_dir(a->settings_.given.policy_dir, error)) return nullptr;
  if (!a->open_capture(verbose, error)) return nullptr;
  return a;
}

bool Agent::open_store(std::string* error) {
  store_ = store::ProfileStore::open(settings_.given.db, error);
  if (!store_) return false;
  read_store_ = store::ProfileStore::open(settings_.given.db, error);
  return read_store_ != nullptr;
}

bool Agent::open_export(const AgentSettings& s, std::string* error) {
  auto filter =
      exporter::ExportFilter::parse(s.given.export_allowlist, s.given.export_denylist, error);
  if (!filter) return false;
  std::unique_ptr<exporter::RotatingFile> file;
  if (!s.given.export_file.empty()) {
    exporter::RotationOptions ro;
    ro.max_size_bytes = s.given.export_file_max_size_mb << 20;
    ro.rotation_interval_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(s.export_rotation_interval).count();
    ro.max_backups = static_cast<unsigned>(s.given.export_file_max_backups);
    ro.compress = s.given.export_file_compress;
    file = std::make_unique<exporter::RotatingFile>(s.given.export_file, ro);
    std::string why;
    if (!file->open(&why))
      spdlog::warn("export file: {} (events are dropped and counted until it opens)", why);
  }
  // Swapped on the capture thread (or before it runs), so no event sees half of it.
  export_filter_ = std::move(filter);
  export_file_ = std::move(file);
  if (!export_format_) export_format_ = std::make_unique<LineFormatter>();
  return true;
}

bool Agent::open_capture(bool verbose, std::string* error) {
  auto backend = capture::parse_backend(settings_.given.backend);
  if (!backend) {
    *error = fmt::format("backend '{}': use auto, tracepoint, fentry or kprobe",
                         settings_.given.backend);
    return false;
  }
  if (auto why = cli::privilege_problem(); !why.empty()) return *error = why, false;
  resolver_ = cli::make_resolver(settings_.given.runtimes);
  router_ = std::make_unique<profile::ContainerRouter>(*resolver_, filter::ContainerFilter({}));
  router_->route_host_units(settings_.host_services == HostServices::Unit);
  router_->route_host_binaries(settings_.host_services == HostServices::Binary);
  router_->seed();

  capture::CaptureOptions copts;
  copts.backend = *backend;
  copts.verbose_libbpf = verbose;
  copts.ringbuf_bytes = settings_.given.ringbuf_mb << 20;
  copts.aggregate = true;
  copts.aggregate_emit = settings_.event_mode != EventMode::None;
  copts.filters.containers_only = settings_.host_services == HostServices::None;
  copts.filters.unique = settings_.event_mode == EventMode::Unique;
  copts.filters.rate_window_ns = settings_.event_rate_limit_ns;
  capture_ = capture::BpfCapture::open(copts, capture::probe_kernel(), error);
  if (!capture_) return false;
  policy_target_ = kernel_policy_target(*capture_);
  if (!policies_->apply(*policy_target_, error)) return false;

  util::ClockOffsets clocks = util::ClockOffsets::now();
  recorder_ = std::make_unique<profile::Recorder>("", "", std::set<uint64_t>{},
                                                  clocks.monotonic_to_wall_offset_ns());
  recorder_->route_by(router_.get());
  recorder_->exclude_runtime_programs();
  cache_ = std::make_unique<ProcessCache>(ProcReader(), node_, clocks);
  cache_->seed_cgroups();
  cache_->seed_from_proc();
  writer_ = std::make_unique<AgentWriter>(*this);
  return true;
}

std::string Agent::backend_name() const {
  return std::string(capture_ ? capture::backend_name(capture_->backend()) : "none");
}

int Agent::run(const std::atomic<bool>& stop, std::atomic<bool>& reload) {
  auto on_cgroup = [this](uint64_t id, const std::string& path) { new_cgroup(id, path); };
  // Checks the kernel did not count (samples, a full map) count in the metrics here.
  auto on_check = [this](const CapCheck& c) {
    const auto& id = router_->route(c.cgroup_id, false).container;
    metrics_.count_check(c.cap, !c.granted(), id.namespace_name, id.workload, 1);
  };
  AgentSource source(*capture_, *recorder_, on_cgroup, on_check, [&] {
    if (reload.exchange(false)) do_reload();
    tick();
  });
  util::ClockOffsets clocks = util::ClockOffsets::now();
  pipeline::TracePipeline pipe(source, *cache_, *writer_, node_, cli::host_namespaces());
  pipe.set_wall_offset_ns(clocks.monotonic_to_wall_offset_ns());
  pipe.set_resolver(resolver_.get());
  // The containers already running: no waiting for their runtimes' answers here.
  CgroupFs().walk(
      [this](uint64_t id, const std::string& path) { track_policy_scope(id, path, false); },
      1'000'000);
  spdlog::info("agent running with the {} backend on node {}: {} polic{}, events {}",
               backend_name(), node_, policies_->size(), policies_->size() == 1 ? "y" : "ies",
               settings_.given.event_mode);
  int rc = pipe.run(stop);
  if (rc < 0) {
    spdlog::error("reading events failed: {}", std::strerror(-rc));
    capture_failed_ = true;
  }
  run_tasks();
  drain();
  drain();  // checks counted while the first drain flipped banks
  recorder_->settle(true);
  flush_profiles(true);
  if (export_file_) export_file_->flush();
  hub_.close_all();
  auto k = capture_->counters();
  spdlog::info(
      "agent stopping: {} checks seen, {} events ({} exported, {} left out by the export "
      "filters), {} lost; {} profile updates saved, {} flushes failed",
      k.checks, counters_.events.load(), counters_.exported.load(),
      counters_.export_filtered.load(), k.lost, counters_.profiles_saved.load(),
      counters_.flush_failures.load());
  return rc < 0 ? 1 : 0;
}

void Agent::new_cgroup(uint64_t id, const std::string& path) {
  router_->on_cgroup(id, path);
  track_policy_scope(id, path, true);
}

void Agent::track_policy_scope(uint64_t id, const std::string& path, bool new_container) {
  CgroupMatch m = classify_cgroup(path);
  if (m.kind != CgroupKind::Container || m.ref.empty()) return;
  policies_->on_container_cgroup(id, m.ref);
  // Ask the runtime now, not at the container's first check: the runtime knows the
  // container before it makes its cgroup, so a container-scoped policy is in the
  // kernel before the container's first process runs. For a new container the capture
  // thread waits for the answer (bounded) when a scoped policy needs it; events queue
  // meanwhile.
  if (new_container && policies_->any_scoped()) {
    resolver_->resolve(m.ref.id, m.ref.runtime, kScopedPolicyWait);
    policies_->refresh(*resolver_, *policy_target_);
  } else {
    resolver_->lookup(m.ref.id, m.ref.runtime);
  }
}

// No record says a cgroup is gone: a walk of the hierarchy says which still are.
void Agent::prune_policy_cgroups() {
  if (size_t n = policy_target_->expire_expected(PolicyManager::kExpectFor); n > 0)
    spdlog::info("{} announced container(s) never made their cgroup: forgotten", n);
  if (policies_->cgroups_tracked() == 0) return;
  std::unordered_set<uint64_t> alive;
  CgroupFs().walk([&](uint64_t id, const std::string&) { alive.insert(id); }, 1'000'000);
  if (alive.empty()) return;  // no cgroup v2 hierarchy readable: forget nothing
  size_t n = policies_->prune([&](uint64_t id) { return alive.contains(id); }, *policy_target_);
  if (n > 0) spdlog::info("{} ended container cgroup(s) left the policy maps", n);
}

void Agent::tick() {
  run_tasks();
  policies_->refresh(*resolver_, *policy_target_);
  auto now = Clock::now();
  if (now - last_drain_ >= kDrainEvery) {
    drain();
    publish_snapshot();
    update_gauges();
    last_drain_ = now;
  }
  if (now - last_flush_ >= settings_.flush_interval) {
    flush_profiles(false);
    prune_policy_cgroups();
    last_flush_ = now;
  }
  if (export_file_ && now - last_export_flush_ >= kExportFlushEvery) {
    export_file_->flush();
    last_export_flush_ = now;
  }
}

void Agent::drain() {
  capture_->drain_aggregates([this](const capture::AggregateEntry& e) {
    recorder_->on_aggregate(e);
    count_aggregate(e);
  });
  recorder_->drained();
  policies_->sync_hits(*policy_target_, metrics_);
}

// capscope_checks_total by capability, verdict, namespace and workload: the
// container's identity is what the router decided for the cgroup.
void Agent::count_aggregate(const capture::AggregateEntry& e) {
  profile::Route r = router_->route(e.cgroup_id, false);
  const auto& c = r.container;
  metrics_.count_check(e.cap, !e.granted, c.namespace_name, c.workload, e.count);
}

void Agent::update_gauges() {
  auto k = capture_->counters();
  uint64_t lost_before = kernel_lost_.exchange(k.lost);
  if (k.lost > lost_before) metrics_.lost_ringbuf.inc(k.lost - lost_before);
  kernel_checks_ = k.checks;
  metrics_.ringbuf_lag_bytes.set(static_cast<double>(capture_->ring_lag_bytes()));
  metrics_.process_cache_size.set(static_cast<double>(cache_->size()));
  metrics_.container_cache_size.set(static_cast<double>(resolver_->cached()));
  metrics_.containers_named_from_events.advance_to(resolver_->named_from_events());
  uint64_t lost_sub = hub_.dropped();
  static uint64_t last_lost_sub = 0;  // capture thread only
  if (lost_sub > last_lost_sub) metrics_.lost_subscriber.inc(lost_sub - last_lost_sub);
  last_lost_sub = lost_sub;
}

// Merges what was recorded since the last flush into the store. A profile the
// store refuses (locked, disk full) stays in memory and is merged with the next
// delta: nothing recorded is lost while the agent runs.
void Agent::flush_profiles(bool final) {
  auto now = Clock::now();
  uint64_t recorded = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_recorded_).count());
  last_recorded_ = now;
  uint64_t wall = wall_now_ns();
  for (auto& p : recorder_->take_recorded()) {
    p.recorded_ns = recorded;
    p.first_run_ns = p.last_run_ns = wall;
    // One agent run counts once per profile, however many flushes it takes.
    p.runs = run_counted_.insert(p.name).second ? 1 : 0;
    auto [it, added] = unsaved_.try_emplace(p.name, p);
    if (!added) it->second.merge(p);
  }
  counters_.flushes += 1;
  bool failed = false;
  for (auto it = unsaved_.begin(); it != unsaved_.end();) {
    std::string error;
    if (store_->merge_save(it->second, &error)) {
      counters_.profiles_saved += 1;
      it = unsaved_.erase(it);
      continue;
    }
    // The rest waits for the next flush too: a locked store costs its busy timeout
    // once per flush, not once per profile, on the thread that reads the events.
    spdlog::warn("profile store: {} ({} profile update(s) kept in memory, retried next flush)",
                 error, unsaved_.size());
    failed = true;
    break;
  }
  unsaved_count_ = unsaved_.size();
  if (failed) {
    counters_.flush_failures += 1;
    metrics_.store_flushes_failed.inc();
    if (final)
      spdlog::error("{} profile update(s) could not be saved: the store refused them",
                    unsaved_.size());
  } else {
    metrics_.store_flushes_ok.inc();
  }
  publish_snapshot();
}

void Agent::publish_snapshot() {
  std::map<std::string, profile::Profile> snap = unsaved_;
  for (auto& p : recorder_->peek_recorded()) {
    auto [it, added] = snap.try_emplace(p.name, p);
    if (!added) it->second.merge(p);
  }
  std::lock_guard lock(snapshot_mu_);
  snapshot_ = std::move(snap);
}

void Agent::on_event(const EnrichedCheck& e) {
  counters_.events += 1;
  hub_.publish(e);
  if (!export_file_) return;
  std::string_view policy = policies_->policy_of(e.check, *policy_target_);
  if (!export_filter_->exported(e, policy)) {
    counters_.export_filtered += 1;
    metrics_.events_dropped_filter.inc();
    return;
  }
  if (export_file_->write_line(export_format_->line(e, output::Format::Json))) {
    counters_.exported += 1;
    metrics_.events_exported.inc();
  } else {
    metrics_.lost_export.inc();
  }
}

// SIGHUP: the configuration files and the policy directory are read again. What
// can change while running does (event mode, export, policies, flush interval);
// what cannot is named in the log. A bad file changes nothing.
void Agent::do_reload() {
  std::string error;
  auto fresh = load_settings(args_, &error);
  if (!fresh) {
    counters_.reload_failures += 1;
    spdlog::error("reload: {} (the running configuration is kept)", error);
    return;
  }
  for (const auto& key : restart_only_changes(settings_.given, fresh->given))
    spdlog::warn("reload: {} changed: it takes effect when the agent restarts", key);
  if (!policies_->reload_dir(fresh->given.policy_dir, *policy_target_, &error)) {
    counters_.reload_failures += 1;
    spdlog::error("reload: {} (the loaded policies are kept)", error);
    return;
  }
  if (export_file_) export_file_->flush();
  if (!open_export(*fresh, &error)) {
    counters_.reload_failures += 1;
    spdlog::error("reload: {} (the export settings are kept)", error);
    return;
  }
  apply_event_mode(*fresh);
  settings_.flush_interval = fresh->flush_interval;
  settings_.given.policy_dir = fresh->given.policy_dir;
  settings_.config_sources = fresh->config_sources;
  counters_.reloads += 1;
  spdlog::info("reloaded the configuration ({} file{}) and {} polic{}",
               fresh->config_sources.size(), fresh->config_sources.size() == 1 ? "" : "s",
               policies_->size(), policies_->size() == 1 ? "y" : "ies");
}

// event-mode and event-rate-limit: the kernel's event filters, rewritten in place.
void Agent::apply_event_mode(const AgentSettings& fresh) {
  if (fresh.event_mode == settings_.event_mode &&
      fresh.event_rate_limit_ns == settings_.event_rate_limit_ns)
    return;
  if (!capture_->set_event_filters(fresh.event_mode != EventMode::None,
                                   fresh.event_mode == EventMode::Unique,
                                   fresh.event_rate_limit_ns)) {
    counters_.reload_failures += 1;
    spdlog::error("reload: cannot change the kernel's event filters: {} (event-mode {} kept)",
                  std::strerror(errno), settings_.given.event_mode);
    return;
  }
  spdlog::info("reload: event-mode {}, event-rate-limit {}", fresh.given.event_mode,
               fresh.given.event_rate_limit.empty() ? "none" : fresh.given.event_rate_limit);
  settings_.event_mode = fresh.event_mode;
  settings_.event_rate_limit_ns = fresh.event_rate_limit_ns;
  settings_.given.event_mode = fresh.given.event_mode;
  settings_.given.event_rate_limit = fresh.given.event_rate_limit;
}

void Agent::run_tasks() {
  std::vector<std::packaged_task<void()>> tasks;
  {
    std::lock_guard lock(tasks_mu_);
    tasks.swap(tasks_);
  }
  for (auto& t : tasks) t();
}

bool Agent::on_capture_thread(const std::function<void()>& fn, std::string* error) {
  std::packaged_task<void()> task(fn);
  auto done = task.get_future();
  {
    std::lock_guard lock(tasks_mu_);
    tasks_.push_back(std::move(task));
  }
  if (capture_) capture_->wake();  // not at the poll's next timeout: a hook may be waiting
  if (done.wait_for(kTaskWait) != std::future_status::ready) {
    *error = "the agent's capture thread did not answer within 10 s (is it overloaded?)";
    return false;
  }
  done.get();
  return true;
}

std::unique_ptr<api::EventStream> Agent::subscribe(const api::EventQuery& query,
                                                   std::string* error) {
  if (settings_.event_mode == EventMode::None && policies_->size() == 0) {
    *error =
        "this agent runs with --event-mode none and no policy: it makes no events (restart "
        "it with --event-mode unique or all, or add a policy)";
    return nullptr;
  }
  return hub_.subscribe(query, error);
}

std::optional<std::vector<profile::Profile>> Agent::list_profiles(std::string* error) {
  std::optional<std::vector<store::ProfileSummary>> names;
  std::map<std::string, profile::Profile> all;
  {
    std::lock_guard lock(read_store_mu_);
    names = read_store_->list(error);
    if (!names) return std::nullopt;
    for (const auto& s : *names) {
      auto p = read_store_->load(s.name, error);
      if (!p && !error->empty()) return std::nullopt;
      if (p) all.emplace(s.name, std::move(*p));
    }
  }
  std::lock_guard lock(snapshot_mu_);
  for (const auto& [name, p] : snapshot_) {
    auto [it, added] = all.try_emplace(name, p);
    if (!added) it->second.merge(p);
  }
  std::vector<profile::Profile> out;
  out.reserve(all.size());
  for (auto& [name, p] : all) out.push_back(std::move(p));
  return out;
}

std::optional<profile::Profile> Agent::get_profile(const std::string& name, std::string* error) {
  std::optional<profile::Profile> p;
  {
    std::lock_guard lock(read_store_mu_);
    p = read_store_->load(name, error);
    if (!p && !error->empty()) return std::nullopt;
  }
  std::lock_guard lock(snapshot_mu_);
  if (auto it = snapshot_.find(name); it != snapshot_.end()) {
    if (p)
      p->merge(it->second);
    else
      p = it->second;
  }
  return p;
}

std::optional<api::PolicyInfo> Agent::add_policy(const std::string& yaml, std::string* error) {
  auto parsed = PolicyManager::parse_api_policy(yaml, error);
  if (!parsed) return std::nullopt;
  std::optional<api::PolicyInfo> info;
  bool ran = on_capture_thread(
      [&] { info = policies_->add(std::move(*parsed), yaml, *policy_target_, error); }, error);
  return ran ? info : std::nullopt;
}

bool Agent::delete_policy(const std::string& name, std::string* error) {
  bool removed = false;
  bool ran =
      on_capture_thread([&] { removed = policies_->remove(name, *policy_target_, error); }, error);
  return ran && removed;
}

std::vector<api::PolicyInfo> Agent::list_policies() { return policies_->list(); }

std::string Agent::health_problem() {
  if (capture_failed_) return "the capture stopped: events cannot be read";
  return "";
}

api::Health Agent::health() {
  api::Health h;
  if (auto why = health_problem(); !why.empty()) {
    h.status = "degraded";
    h.problems.push_back(why);
  }
  if (unsaved_count_ > 0)
    h.problems.emplace_back("the profile store refused the last flush: updates kept in memory");
  h.backend = backend_name();
  h.node_name = node_;
  h.uptime_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started_).count());
  h.checks = kernel_checks_;
  h.events = counters_.events;
  h.lost = kernel_lost_ + hub_.dropped();
  h.processes = metrics_.process_cache_size.value();
  h.containers = metrics_.container_cache_size.value();
  {
    std::lock_guard lock(snapshot_mu_);
    h.profiles = snapshot_.size();
  }
  h.policies = policies_->size();
  return h;
}

}  // namespace capscope::agent
