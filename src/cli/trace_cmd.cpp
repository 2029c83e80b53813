// capscope trace: stream every capability check, attributed and filtered.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "capture/event_source.h"
#include "capture/features.h"
#include "capture/policy_bank.h"
#include "capture/record_json.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/runtime_options.h"
#include "enrich/cgroup_fs.h"
#include "enrich/cgroup_path.h"
#include "enrich/proc_reader.h"
#include "enrich/process_cache.h"
#include "filter/filter_spec.h"
#include "output/writer.h"
#include "pipeline/trace_pipeline.h"
#include "policy/policy_dir.h"
#include "policy/tracing_policy.h"
#include "tables/capabilities.h"
#include "util/clock.h"

namespace capscope::cli {

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

struct TraceOptions {
  std::string format = "compact";
  std::string output_file;
  std::string fields;
  bool wide = false;
  std::string backend = "auto";
  std::vector<uint32_t> pids, tids, uids, gids;
  std::vector<std::string> comms, cgroups, caps;
  bool denied = false, audit_only = false, host = false, containers = false, unique = false;
  std::string rate_limit, rate_scope = "thread";
  double timeout_s = 0;
  uint64_t max_events = 0;
  size_t ringbuf_mb = 16;
  std::string save_records, replay;
  std::string node_name;
  bool probe_read_walk = false;
  bool process_caps = false;
  bool process_ns = false;
  RuntimeCliOptions runtimes;
  IdentityCliOptions identity;
  std::vector<std::string> policy_files;
  std::string policy_dir;
  bool with_events = false;
};

// A record sink that also saves every record (for --save-records).
class SavingSource final : public capture::EventSource {
 public:
  SavingSource(capture::EventSource& inner, std::ostream& out) : inner_(inner), out_(out) {}
  int poll(int timeout_ms, const capture::RecordHandler& h) override {
    capture::RecordHandler tee = [&](Record&& r) {
      out_ << capture::record_to_json(r).dump() << '\n';
      h(std::move(r));
    };
    return inner_.poll(timeout_ms, tee);
  }
  [[nodiscard]] bool finished() const override { return inner_.finished(); }
  [[nodiscard]] capture::SourceStats stats() const override { return inner_.stats(); }
  [[nodiscard]] std::string describe() const override { return inner_.describe(); }
  void exclude_cgroup(uint64_t cgroup_id) override { inner_.exclude_cgroup(cgroup_id); }

 private:
  capture::EventSource& inner_;
  std::ostream& out_;
};

// Builds the filter spec; on bad input returns nullopt with a one-line error.
// `by_identity`: a container selection (--pod, ...) is on.
std::optional<filter::FilterSpec> build_filters(const TraceOptions& o, bool by_identity,
                                                std::string* error) {
  filter::FilterSpec f;
  f.pids = o.pids;
  f.tids = o.tids;
  f.uids = o.uids;
  f.gids = o.gids;
  f.comms = o.comms;
  for (const auto& c : f.comms)
    if (c.size() > 15)
      spdlog::warn("--comm {}: the kernel keeps 15 bytes of a command name; matching '{}'", c,
                   c.substr(0, 15));
  for (auto& c : f.comms) c = c.substr(0, 15);
  for (const auto& path : o.cgroups) {
    auto id = cgroup_id_of(path, error);
    if (!id) return std::nullopt;
    f.cgroup_ids.push_back(*id);
  }
  if (!o.caps.empty()) {
    uint64_t mask = 0;
    for (const auto& name : o.caps) {
      auto cap = tables::cap_from_name(name);
      if (!cap || *cap > 63) {
        *error =
            fmt::format("--caps: unknown capability '{}' (try `capscope caps` for the list)", name);
        return std::nullopt;
      }
      mask |= 1ULL << *cap;
    }
    f.cap_mask = mask;
  }
  f.denied_only = o.denied;
  f.audit_only = o.audit_only;
  f.host_only = o.host;
  // Identity is decided in user space, but only container processes can match it:
  // the kernel drops the host's checks before they cross.
  f.containers_only = o.containers || by_identity;
  // ...and, once user space has decided a container is not selected, its checks too.
  f.exclude_unselected = by_identity;
  if (o.host && f.containers_only) {
    *error = o.containers ? "--host and --containers exclude each other: choose one"
                          : "--host selects host processes, which are in no pod or container: "
                            "drop --host or the container filters";
    return std::nullopt;
  }
  f.unique = o.unique;
  if (!o.rate_limit.empty()) {
    f.rate_window_ns = filter::parse_duration_ns(o.rate_limit);
    if (!f.rate_window_ns) {
      *error =
          fmt::format("--rate-limit '{}': not a duration (use e.g. 30s, 1m, 1h)", o.rate_limit);
      return std::nullopt;
    }
  }
  auto scope = filter::parse_rate_scope(o.rate_scope);
  if (!scope) {
    *error = fmt::format("--rate-limit-scope '{}': use thread, process or global", o.rate_scope);
    return std::nullopt;
  }
  f.rate_scope = *scope;
  return f;
}

// The policies of --policy and --policy-dir, compiled; nullopt and a one-line error
// (the parser's: file, line and field) if one cannot be loaded.
std::optional<std::vector<policy::CompiledPolicy>> load_policies(const TraceOptions& o,
                                                                 std::string* error) {
  std::vector<policy::CompiledPolicy> out;
  std::set<std::string> names;
  auto add = [&](policy::CompiledPolicy c, const std::string& from) {
    if (!names.insert(c.name).second) {
      *error = fmt::format("{}: policy '{}' is loaded twice: give each policy once", from, c.name);
      return false;
    }
    out.push_back(std::move(c));
    return true;
  };
  try {
    for (const auto& file : o.policy_files)
      for (const auto& p : policy::load_policy_file(file))
        if (!add(policy::compile(p), file)) return std::nullopt;
  } catch (const policy::PolicyError& e) {
    *error = e.what();
    return std::nullopt;
  }
  if (o.policy_dir.empty()) return out;
  std::error_code ec;
  if (!std::filesystem::is_directory(o.policy_dir, ec)) {
    *error = fmt::format("--policy-dir {}: not a folder", o.policy_dir);
    return std::nullopt;
  }
  policy::PolicyDirContents dir = policy::load_policy_dir(o.policy_dir);
  if (!dir.errors.empty()) {
    *error = dir.errors.front();
    return std::nullopt;
  }
  if (dir.policies.empty()) {
    *error = fmt::format("--policy-dir {}: no policy in it (*.yaml, *.yml)", o.policy_dir);
    return std::nullopt;
  }
  for (auto& l : dir.policies)
    if (!add(std::move(l.compiled), l.policy.file)) return std::nullopt;
  return out;
}

// Options that choose trace's own events, which --policy turns off unless --events.
bool has_event_filters(const TraceOptions& o, bool by_identity) {
  return by_identity || !o.pids.empty() || !o.tids.empty() || !o.uids.empty() || !o.gids.empty() ||
         !o.comms.empty() || !o.cgroups.empty() || !o.caps.empty() || o.denied || o.audit_only ||
         o.host || o.containers || o.unique || !o.rate_limit.empty();
}

// Empty, or why the policy options do not go together with the others.
std::string policy_usage_problem(const TraceOptions& o, bool by_identity) {
  bool policies = !o.policy_files.empty() || !o.policy_dir.empty();
  if (!policies) return o.with_events ? "--events goes with --policy or --policy-dir" : "";
  if (!o.replay.empty())
    return "--policy acts in the kernel as checks happen: it cannot be used with --replay";
  if (has_event_filters(o, by_identity) && !o.with_events)
    return "with --policy, trace prints the policies' events, which its filters do not select "
           "(use the policy's selectors): drop the filters, or add --events to print capscope's "
           "own events too, filtered";
  return "";
}

// What the kernel counted per policy (its selectors' slots added up), and the kills user
// space made for checks the kernel could not classify.
void print_policy_summary(const capture::BpfCapture& cap) {
  std::map<std::string, capture::PolicySlotCounts> by_policy;
  std::map<std::string, bool> sigkill;
  auto counts = cap.policy_counts();
  const auto& slots = cap.policy_slots();
  for (size_t s = 0; s < slots.size() && s < counts.size(); ++s) {
    capture::PolicySlotCounts& t = by_policy[slots[s].policy];
    const capture::PolicySlotCounts& c = counts[s];
    t.hits += c.hits;
    t.posted += c.posted;
    t.rate_limited += c.rate_limited;
    t.killed += c.killed;
    t.spared += c.spared;
    t.pending += c.pending;
    t.kill_failed += c.kill_failed;
    sigkill[slots[s].policy] |= slots[s].action == policy::Action::Sigkill;
  }
  for (const auto& [name, t] : by_policy) {
    std::cerr << fmt::format("capscope: policy {}: {} checks matched, {} events, {} rate-limited",
                             name, t.hits, t.posted, t.rate_limited);
    if (sigkill[name])
      std::cerr << fmt::format(
          ", {} killed, {} not killed (probes, borrowed credentials), {} left to user space, {} "
          "refused",
          t.killed, t.spared, t.pending, t.kill_failed);
    std::cerr << '\n';
  }
  capture::LateKillStats late = cap.late_kills();
  if (late.killed + late.spared + late.gone + late.undecided > 0)
    std::cerr << fmt::format(
        "capscope: Sigkill decided in user space: {} killed, {} spared (probes), {} gone "
        "before, {} not classified (not killed)\n",
        late.killed, late.spared, late.gone, late.undecided);
}

// The names of the policies that have a slot in `bits`, for messages.
std::string policy_names(const std::vector<capture::PolicySlotInfo>& slots, uint64_t bits) {
  std::string names;
  std::set<std::string_view> seen;
  for (size_t s = 0; s < slots.size() && s < 64; ++s)
    if ((bits >> s & 1) && seen.insert(slots[s].policy).second)
      names += (names.empty() ? "" : ", ") + slots[s].policy;
  return names;
}

// Tells the kernel which containers the scoped policies take in, as the runtime names them.
void watch_policy_scopes(pipeline::TracePipeline& pipe, capture::BpfCapture& cap,
                         const std::vector<policy::CompiledPolicy>& set,
                         const RuntimeResolver& resolver) {
  auto scoped = std::find_if(set.begin(), set.end(), [](const auto& p) { return p.scoped(); });
  if (scoped == set.end()) return;
  if (!resolver.has_clients())
    spdlog::warn(
        "policy {} applies to some containers only, but no container runtime answers to name "
        "them: it applies to none (see `capscope check`)",
        scoped->name);
  pipe.set_container_hook([&cap, &set](uint64_t cgroup_id, const ContainerInfo& info) {
    if (!cap.note_container(cgroup_id, info))
      spdlog::warn("cannot tell the kernel the policies of container {}: {}", info.name,
                   std::strerror(errno));
    uint64_t bits = capture::scoped_slots_for(set, info);
    if (bits != 0)
      spdlog::info("policy {} now applies to container {} (cgroup {})",
                   policy_names(cap.policy_slots(), bits), info.name, cgroup_id);
  });
  // Containers named from their create events: their cgroups take their policies in the
  // kernel as they are made, before their first process runs. Announcements whose cgroup
  // never came are forgotten after a minute, looked at with each announcement.
  pipe.set_announced_hook([&cap](const ContainerInfo& info) {
    cap.expire_expected(capture::BpfCapture::kExpectFor);
    if (uint64_t bits = cap.expect_container(info); bits != 0)
      spdlog::info("policy {} will apply to container {} from its first process",
                   policy_names(cap.policy_slots(), bits), info.name);
  });
  // The containers that run already, from their cgroups (as checks report them).
  CgroupFs().walk(
      [&pipe](uint64_t id, const std::string& path) {
        CgroupMatch m = classify_cgroup(path);
        if (m.kind == CgroupKind::Container) pipe.watch_container(id, m.ref);
      },
      1'000'000);
}

void print_summary(const capture::SourceStats& s, const pipeline::PipelineStats& p,
                   const ProcessCache& cache) {
  std::cerr << fmt::format(
      "capscope: {} checks seen, {} reported, {} filtered, {} suppressed by --unique, {} by "
      "--rate-limit, {} lost (ring buffer full), {} process records lost, {} malformed; "
      "{} unattributed, {} processes cached, {} call-site samples",
      s.checks_seen, p.reported, s.filtered, s.unique_suppressed, s.rate_suppressed, s.lost,
      s.proc_lost, s.decode_errors, p.unattributed, cache.size(), s.callsite_samples);
  if (p.not_selected + p.unresolved > 0)
    std::cerr << fmt::format(
        "; {} not in the selected containers ({} of their cgroups then filtered in the kernel), "
        "{} dropped because no runtime named their container in time",
        p.not_selected, p.excluded_cgroups, p.unresolved);
  if (p.runtime_checks > 0)
    std::cerr << fmt::format("; {} made by container runtimes' own processes (marked)",
                             p.runtime_checks);
  std::cerr << '\n';
}

int run_trace(const TraceOptions& o, const GlobalOptions& g) {
  std::string error;
  auto format = output::parse_format(o.format);
  if (!format) return usage_error(fmt::format("-o {}: use json, compact or table", o.format));
  auto backend = capture::parse_backend(o.backend);
  if (!backend)
    return usage_error(
        fmt::format("--backend {}: use auto, tracepoint, fentry or kprobe", o.backend));
  auto selection = build_selection(o.identity, &error);
  if (!selection) return usage_error(error);
  auto filters = build_filters(o, selection->any(), &error);
  if (!filters) return usage_error(error);
  if (auto why = policy_usage_problem(o, selection->any()); !why.empty()) return usage_error(why);
  auto policies = load_policies(o, &error);
  if (!policies) return usage_error(error);
  bool with_policies = !o.policy_files.empty() || !o.policy_dir.empty();
  output::WriterOptions wopts;
  wopts.wide = o.wide;
  wopts.process_caps = o.process_caps;
  wopts.process_ns = o.process_ns;
  if (!o.fields.empty()) {
    auto fields = parse_field_list(o.fields, &error);
    if (!fields) return usage_error(error);
    wopts.fields = *fields;
  } else if (with_policies && *format == output::Format::Table) {
    wopts.fields = {"+policy"};
  }

  std::unique_ptr<output::Sink> sink;
  if (o.output_file.empty()) {
    sink = std::make_unique<output::StreamSink>(std::cout);
  } else {
    auto file = output::FileSink::open(o.output_file, &error);
    if (!file) return failure(error);
    sink = std::move(file);
  }
  std::unique_ptr<output::EventWriter> writer;
  try {
    writer = output::make_writer(*format, *sink, wopts);
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }

  // Before "tracing with" is printed: a Ctrl-C any time after it (the /proc walk
  // below can take seconds) must stop the trace with its summary, not kill it.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  NsInodes host_ns = host_namespaces();
  std::unique_ptr<capture::EventSource> source;
  capture::BpfCapture* bpf = nullptr;  // owned by the live source
  if (!o.replay.empty()) {
    source = capture::ReplaySource::open(o.replay, *filters, &error);
    if (!source) return failure(error);
  } else {
    if (auto why = privilege_problem(); !why.empty()) return failure(why);
    capture::KernelFeatures feats = capture::probe_kernel();
    capture::CaptureOptions copts;
    copts.backend = *backend;
    copts.ringbuf_bytes = o.ringbuf_mb << 20;
    copts.verbose_libbpf = g.verbose;
    copts.filters = *filters;
    copts.try_direct_walk = !o.probe_read_walk;
    copts.policy_events_only = with_policies && !o.with_events;
    copts.host_ns = host_ns;
    auto cap = capture::BpfCapture::open(copts, feats, &error);
    if (!cap) return failure(error);
    if (with_policies) {
      if (!cap->set_policies(*policies, &error)) return failure(error);
      spdlog::info("{} polic{} loaded, {} selectors", policies->size(),
                   policies->size() == 1 ? "y" : "ies", cap->policy_slots().size());
    }
    bpf = cap.get();
    spdlog::info("tracing with the {} backend{}", capture::backend_name(cap->backend()),
                 cap->backend() != capture::Backend::Tracepoint ? ""
                 : cap->walk_direct()                           ? " (call-site walk: direct loads)"
                                                                : " (call-site walk: probe reads)");
    source = std::make_unique<capture::LiveSource>(std::move(cap));
  }

  std::ofstream saved;
  std::unique_ptr<capture::EventSource> saving;
  capture::EventSource* src = source.get();
  if (!o.save_records.empty()) {
    saved.open(o.save_records, std::ios::out | std::ios::trunc);
    if (!saved)
      return failure(fmt::format("--save-records {}: {}", o.save_records, std::strerror(errno)));
    saving = std::make_unique<SavingSource>(*source, saved);
    src = saving.get();
  }

  std::string node = o.node_name.empty() ? node_name() : o.node_name;
  util::ClockOffsets clocks = util::ClockOffsets::now();
  ProcessCache cache(ProcReader(), node, clocks);
  if (o.replay.empty()) {
    cache.seed_cgroups();
    cache.seed_from_proc();
  }
  pipeline::TracePipeline pipe(*src, cache, *writer, node, host_ns);
  pipe.set_wall_offset_ns(clocks.monotonic_to_wall_offset_ns());
  std::unique_ptr<RuntimeResolver> resolver = make_resolver(o.runtimes);
  if (selection->any() && !resolver->has_clients())
    spdlog::warn(
        "no container runtime to ask (see `capscope check`): only --container ID "
        "can match; name the runtime's socket with --podman-socket, ...");
  pipe.set_resolver(resolver.get());
  pipe.set_container_filter(filter::ContainerFilter(*selection));
  if (bpf != nullptr && with_policies) watch_policy_scopes(pipe, *bpf, *policies, *resolver);

  if (o.timeout_s > 0) {
    std::signal(SIGALRM, on_signal);
    alarm(static_cast<unsigned>(std::max(1.0, o.timeout_s)));
  }
  int rc = pipe.run(g_stop, o.max_events);
  writer->flush();
  if (saved.is_open()) saved.flush();
  print_summary(src->stats(), pipe.stats(), cache);
  if (bpf != nullptr && with_policies) print_policy_summary(*bpf);
  if (rc < 0) return failure(fmt::format("reading events failed: {}", std::strerror(-rc)));
  if (!sink->error().empty()) return failure(sink->error());
  return kExitOk;
}

}  // namespace

Runner add_trace_command(CLI::App& app, const GlobalOptions& g) {
  auto o = std::make_shared<TraceOptions>();
  CLI::App* t = app.add_subcommand("trace", "Stream capability checks as they happen");
  t->add_option("-o,--output-format", o->format, "json, compact or table")->capture_default_str();
  t->add_option("--output", o->output_file, "Write events to FILE instead of standard output");
  t->add_option("--fields", o->fields,
                "Table columns: a list replaces the defaults, +F/-F add or remove");
  t->add_flag("--wide", o->wide, "Table: add the TIMESTAMP column");
  t->add_flag("--process-caps,--process-cred", o->process_caps,
              "JSON: add the process's capability sets (Tetragon's process.cap, names)");
  t->add_flag("--process-ns", o->process_ns,
              "JSON: add the process's namespaces (Tetragon's process.ns, with is_host)");
  t->add_option("--backend", o->backend, "auto, tracepoint, fentry or kprobe")
      ->capture_default_str();
  t->add_option("--pid", o->pids, "Only these processes (thread group ids)")->delimiter(',');
  t->add_option("--tid", o->tids, "Only these threads")->delimiter(',');
  t->add_option("--uid", o->uids, "Only checks of these user ids")->delimiter(',');
  t->add_option("--gid", o->gids, "Only checks of these group ids")->delimiter(',');
  t->add_option("--comm", o->comms, "Only these command names")->delimiter(',');
  t->add_option("--cgroup", o->cgroups, "Only tasks in these cgroup v2 paths")->delimiter(',');
  t->add_option("--caps", o->caps, "Only these capabilities (CAP_SYS_ADMIN, sys_admin, 21)")
      ->delimiter(',');
  t->add_flag("--denied", o->denied, "Only denied checks");
  t->add_flag("--audit-only", o->audit_only, "Only audited checks (no no-audit probes)");
  t->add_flag("--host", o->host, "Only host processes (initial pid namespace)");
  t->add_flag("--containers", o->containers, "Only processes in containers");
  t->add_flag("--unique", o->unique,
              "Once per container, capability and verdict (a later audited use still shows)");
  t->add_option("--rate-limit", o->rate_limit,
                "At most one event per key per window (30s, 1m, 1h); suppressed ones counted");
  t->add_option("--rate-limit-scope", o->rate_scope, "thread, process or global")
      ->capture_default_str();
  t->add_option("-t,--timeout", o->timeout_s, "Stop after this many seconds");
  t->add_option("--max-events", o->max_events, "Stop after this many events");
  t->add_option("--ringbuf-size", o->ringbuf_mb, "Ring buffer size in MiB")->capture_default_str();
  t->add_option("--save-records", o->save_records, "Also save raw records (JSON lines) to FILE");
  t->add_option("--replay", o->replay, "Read records saved with --save-records instead of BPF");
  t->add_option("--node-name", o->node_name, "Node name in events (default: host name)");
  t->add_option("--policy", o->policy_files,
                "Load the TracingPolicy FILE (repeatable): trace prints the policies' events")
      ->type_name("FILE");
  t->add_option("--policy-dir", o->policy_dir, "Load every policy file (*.yaml) of DIR")
      ->type_name("DIR");
  t->add_flag("--events", o->with_events,
              "With --policy: print capscope's own events too (the filters select those)");
  add_identity_options(t, o->identity);
  add_runtime_options(t, o->runtimes);
  // Hidden: the call-site walk older kernels get (the tests run it here too).
  t->add_flag("--probe-read-walk", o->probe_read_walk)->group("");
  return [o, &g] { return run_trace(*o, g); };
}

}  // namespace capscope::cli
