// capscope agent: the node daemon. One capture in "aggregate + emit" mode feeds two
// things at once: the kernel's aggregation map becomes one profile per container
// (and per host service, if asked), merged into the store as it goes; the checks the
// event filters keep become events for the export file, the gRPC subscribers and the
// metrics. Everything that touches the capture runs on one thread (run()); the API's
// threads reach it through thread-safe snapshots and a task queue.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "agent/event_hub.h"
#include "api/backend.h"
#include "capture/bpf_capture.h"
#include "enrich/process_cache.h"
#include "enrich/runtime/runtime_resolver.h"
#include "metrics/agent_metrics.h"
#include "profile/container_router.h"
#include "profile/recorder.h"
#include "store/profile_store.h"

namespace capscope::exporter {
class RotatingFile;
class ExportFilter;
}  // namespace capscope::exporter
namespace capscope::pipeline {
class TracePipeline;
}

namespace capscope::agent {

class PolicyManager;
class PolicyTarget;

// What the agent did, for the final report, health and the tests.
struct AgentCounters {
  std::atomic<uint64_t> events{0};           // events out of the capture (before filters)
  std::atomic<uint64_t> exported{0};         // lines written to the export file
  std::atomic<uint64_t> export_filtered{0};  // left out by the allow/deny lists
  std::atomic<uint64_t> flushes{0}, flush_failures{0};
  std::atomic<uint64_t> profiles_saved{0};  // profile deltas merged into the store
  std::atomic<uint64_t> reloads{0}, reload_failures{0};
};

class Agent final : public api::Backend {
 public:
  // Opens the store, the runtimes, the capture, the export file and the policies.
  // Null and a one-line *error (naming what and the fix) when it cannot start.
  static std::unique_ptr<Agent> start(AgentSettings settings, std::vector<std::string> args,
                                      bool verbose, std::string* error);
  ~Agent() override;
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // The capture loop, until `stop`; `reload` (SIGHUP) is taken and cleared here.
  // Flushes everything before it returns. 0, or 1 when the capture failed.
  int run(const std::atomic<bool>& stop, std::atomic<bool>& reload);

  [[nodiscard]] metrics::AgentMetrics& metrics() { return metrics_; }
  [[nodiscard]] const AgentSettings& settings() const { return settings_; }
  [[nodiscard]] const AgentCounters& counters() const { return counters_; }
  [[nodiscard]] std::string backend_name() const;
  // "" when healthy, else what is wrong (the metrics server's /healthz says it).
  [[nodiscard]] std::string health_problem();

  // api::Backend, from any thread.
  std::unique_ptr<api::EventStream> subscribe(const api::EventQuery& query,
                                              std::string* error) override;
  std::optional<std::vector<profile::Profile>> list_profiles(std::string* error) override;
  std::optional<profile::Profile> get_profile(const std::string& name, std::string* error) override;
  std::optional<api::PolicyInfo> add_policy(const std::string& yaml, std::string* error) override;
  bool delete_policy(const std::string& name, std::string* error) override;
  std::vector<api::PolicyInfo> list_policies() override;
  api::Health health() override;
  // capscope oci-hook's call (container_announce.cpp).
  std::optional<api::AnnounceResult> announce_container(const api::ContainerAnnouncement& a,
                                                        bool* invalid, std::string* error) override;

  // For the event writer: one event out of the pipeline.
  void on_event(const EnrichedCheck& e);

 private:
  explicit Agent(AgentSettings settings);
  bool open_store(std::string* error);
  bool open_export(const AgentSettings& s, std::string* error);
  bool open_capture(bool verbose, std::string* error);
  void tick();  // periodic work on the capture thread
  void prune_policy_cgroups();
  void new_cgroup(uint64_t id, const std::string& path);
  // new_container: a cgroup just made (its record), not one found by the start-up walk.
  void track_policy_scope(uint64_t id, const std::string& path, bool new_container);
  void drain();  // the kernel's map into the recorder
  void flush_profiles(bool final);
  void publish_snapshot();  // what API readers see of the unflushed profiles
  void do_reload();
  void apply_event_mode(const AgentSettings& fresh);
  void run_tasks();
  // Runs `fn` on the capture thread and waits for it (up to 10 s).
  bool on_capture_thread(const std::function<void()>& fn, std::string* error);
  void count_aggregate(const capture::AggregateEntry& e);
  void update_gauges();

  AgentSettings settings_;
  std::vector<std::string> args_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::string node_;
  AgentCounters counters_;
  metrics::AgentMetrics metrics_;

  std::unique_ptr<store::ProfileStore> store_;  // capture thread
  std::mutex read_store_mu_;
  std::unique_ptr<store::ProfileStore> read_store_;  // API threads
  std::unique_ptr<RuntimeResolver> resolver_;
  std::unique_ptr<profile::ContainerRouter> router_;
  std::unique_ptr<capture::BpfCapture> capture_;
  std::unique_ptr<ProcessCache> cache_;
  std::unique_ptr<profile::Recorder> recorder_;
  std::unique_ptr<pipeline::TracePipeline> pipeline_;
  std::unique_ptr<output::EventWriter> writer_;
  EventHub hub_;
  std::unique_ptr<LineFormatter> export_format_;
  std::unique_ptr<exporter::RotatingFile> export_file_;
  std::unique_ptr<exporter::ExportFilter> export_filter_;
  std::unique_ptr<PolicyManager> policies_;
  std::unique_ptr<PolicyTarget> policy_target_;  // the capture's policy maps

  // Profiles recorded and not yet in the store (a failed flush keeps them here).
  std::map<std::string, profile::Profile> unsaved_;
  std::atomic<size_t> unsaved_count_{0};
  std::set<std::string> run_counted_;  // profiles that got this agent run's `runs` += 1
  std::chrono::steady_clock::time_point last_drain_{}, last_flush_{}, last_export_flush_{};
  std::chrono::steady_clock::time_point last_recorded_ = std::chrono::steady_clock::now();

  std::mutex snapshot_mu_;
  std::map<std::string, profile::Profile> snapshot_;  // unflushed, for list/get_profile

  std::mutex tasks_mu_;
  std::vector<std::packaged_task<void()>> tasks_;
  std::atomic<bool> capture_failed_{false};
  std::atomic<uint64_t> kernel_checks_{0}, kernel_lost_{0};
};

}  // namespace capscope::agent
