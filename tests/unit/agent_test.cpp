// The agent's parts that need no kernel: its configuration (files, drop-ins, flags),
// the policy manager against a fake kernel, and the event fan-out to subscribers.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/agent_config.h"
#include "agent/event_hub.h"
#include "agent/policy_manager.h"
#include "capture/policy_bank.h"
#include "metrics/agent_metrics.h"

namespace capscope::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() / ("capscope-agent-unit-" + std::to_string(getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_ / "capscope.d");
  }
  ~TempDir() { fs::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(path_ / rel) << text;
  }
  [[nodiscard]] std::string at(const std::string& rel) const { return (path_ / rel).string(); }

 private:
  fs::path path_;
};

std::optional<AgentSettings> load(const std::vector<std::string>& args, std::string* error) {
  return load_settings(args, error);
}

TEST(AgentConfig, DropInsOverrideTheMainFileInNameOrderAndFlagsWin) {
  TempDir d;
  d.write("capscope.yaml", "event-mode: all\nflush-interval: 10s\nexport-file: /tmp/a\n");
  d.write("capscope.d/20-b.yaml", "flush-interval: 20s\n");
  d.write("capscope.d/10-a.yaml", "flush-interval: 5s\nexport-file: /tmp/b\n");
  d.write("capscope.d/notes.txt", "flush-interval: 99s\n");  // not YAML by name: ignored
  std::string error;
  auto s = load({"--config", d.at("capscope.yaml")}, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->flush_interval, 20s);
  EXPECT_EQ(s->given.export_file, "/tmp/b");
  EXPECT_EQ(s->event_mode, EventMode::All);
  ASSERT_EQ(s->config_sources.size(), 3u);
  EXPECT_EQ(s->config_sources[1], d.at("capscope.d/10-a.yaml"));

  auto f = load({"--config", d.at("capscope.yaml"), "--flush-interval", "3s"}, &error);
  ASSERT_TRUE(f) << error;
  EXPECT_EQ(f->flush_interval, 3s);
}

TEST(AgentConfig, ListsAndFlagsFromFiles) {
  TempDir d;
  d.write("capscope.yaml",
          "capabilities: [bypass=true, add=CAP_KILL]\nexport-file-compress: true\n"
          "no-runtimes: true\n");
  std::string error;
  auto s = load({"--config", d.at("capscope.yaml")}, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->given.capabilities, (std::vector<std::string>{"bypass=true", "add=CAP_KILL"}));
  EXPECT_TRUE(s->given.export_file_compress);
  EXPECT_TRUE(s->given.runtimes.none);
}

TEST(AgentConfig, UnknownKeyNamesFileLineAndKey) {
  TempDir d;
  d.write("capscope.yaml", "# comment\nevent-mode: all\nexportfile: /tmp/x\n");
  std::string error;
  EXPECT_FALSE(load({"--config", d.at("capscope.yaml")}, &error));
  EXPECT_EQ(error.rfind(d.at("capscope.yaml") + ":3: unknown key 'exportfile'", 0), 0u) << error;
}

TEST(AgentConfig, BadYamlAndBadValuesAreOneLineErrors) {
  TempDir d;
  d.write("capscope.yaml", "event-mode: [unclosed\n");
  std::string error;
  EXPECT_FALSE(load({"--config", d.at("capscope.yaml")}, &error));
  EXPECT_NE(error.find("not YAML"), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);

  d.write("capscope.yaml", "&a,");  // yaml-cpp's LoadFile would loop forever on it
  error.clear();
  EXPECT_FALSE(load({"--config", d.at("capscope.yaml")}, &error));
  EXPECT_NE(error.find("not YAML"), std::string::npos) << error;

  d.write("capscope.yaml", "export-file-max-backups: many\n");
  error.clear();
  EXPECT_FALSE(load({"--config", d.at("capscope.yaml")}, &error));
  EXPECT_NE(error.find(d.at("capscope.yaml") + ":1: export-file-max-backups"), std::string::npos)
      << error;

  d.write("capscope.yaml", "flush-interval: soon\n");
  error.clear();
  EXPECT_FALSE(load({"--config", d.at("capscope.yaml")}, &error));
  EXPECT_EQ(error, "flush-interval 'soon': not a duration (use e.g. 30s, 5m, 1h)");

  d.write("capscope.yaml", "host-services: everything\n");
  error.clear();
  EXPECT_FALSE(load({"--config", d.at("capscope.yaml")}, &error));
  EXPECT_EQ(error, "host-services 'everything': use none, unit or binary");
}

TEST(AgentConfig, NamedConfigMustExistTheDefaultNeedNot) {
  TempDir d;
  std::string error;
  EXPECT_FALSE(load({"--config", d.at("missing.yaml")}, &error));
  EXPECT_NE(error.find("no such file"), std::string::npos) << error;
  error.clear();
  auto files = config_files(d.at("missing.yaml"), false, &error);
  EXPECT_TRUE(error.empty());
  EXPECT_TRUE(files.empty());
}

TEST(AgentConfig, RestartOnlyKeysAreNamed) {
  AgentOptions a, b;
  b.db = "/elsewhere.db";
  b.flush_interval = "1m";  // reloadable: not named
  b.event_mode = "all";     // reloadable: the kernel's filters are rewritten in place
  b.host_services = "unit";
  EXPECT_EQ(restart_only_changes(a, b), (std::vector<std::string>{"db", "host-services"}));
}

// ---- policies, against a fake kernel ----------------------------------------------

class FakeTarget final : public PolicyTarget {
 public:
  bool set_policies(const std::vector<policy::CompiledPolicy>& set, std::string* error) override {
    size_t slots = 0;
    for (const auto& p : set) slots += p.selectors.size();
    if (slots > max_slots) {
      *error = "too many selectors";
      return false;
    }
    loaded = set;
    hits.assign(slots, 0);
    return true;
  }
  bool set_cgroup_policies(uint64_t cgroup_id, uint64_t bits) override {
    cgroups[cgroup_id] = bits;
    return true;
  }
  void forget_cgroup(uint64_t cgroup_id) override { cgroups.erase(cgroup_id); }
  uint64_t expect_container(const ContainerInfo& c) override {
    uint64_t bits = capture::scoped_slots_for(loaded, c);
    if (bits != 0) expected[c.id] = bits;
    return bits;
  }
  size_t expire_expected(std::chrono::seconds /*age*/) override { return 0; }
  [[nodiscard]] std::vector<uint64_t> policy_hits() const override { return hits; }
  [[nodiscard]] int slot_of(const CapCheck& c) const override { return c.policy_slot; }

  size_t max_slots = 64;
  std::vector<policy::CompiledPolicy> loaded;
  std::vector<uint64_t> hits;
  std::map<uint64_t, uint64_t> cgroups;
  std::map<std::string, uint64_t> expected;  // container id -> slots
};

const char* kScoped = R"(apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: web-only
spec:
  podSelector:
    matchLabels:
      app: web
  kprobes:
  - call: cap_capable
    args:
    - index: 2
      type: capability
    selectors:
    - matchActions:
      - action: Post
)";

// Loads kScoped into `m`, whose set `t` takes.
void add_scoped(PolicyManager& m, FakeTarget& t) {
  std::string error;
  auto parsed = PolicyManager::parse_api_policy(kScoped, &error);
  ASSERT_TRUE(parsed) << error;
  ASSERT_TRUE(m.add(*parsed, kScoped, t, &error)) << error;
}

// A podman container whose pod is labelled app=APP; its id is 64 times id_char.
std::shared_ptr<ContainerInfo> podman_container(char id_char, const std::string& app) {
  auto c = std::make_shared<ContainerInfo>();
  c->id = std::string(64, id_char);
  c->runtime = "podman";
  c->pod_labels = {{"app", app}};
  return c;
}

// A runtime that knows these containers, and answers their inspect with them.
class KnownContainers final : public RuntimeClient {
 public:
  explicit KnownContainers(std::vector<ContainerInfoPtr> known) : known_(std::move(known)) {}
  [[nodiscard]] std::string runtime() const override { return "podman"; }
  [[nodiscard]] std::string endpoint() const override { return "fake"; }
  std::string version() override { return "fake"; }
  ContainerInfo inspect(std::string_view id) override {
    for (const auto& k : known_)
      if (k->id == id) return *k;
    throw RuntimeError(RuntimeError::Kind::NotFound, "no such container");
  }
  std::vector<std::string> list_running() override {
    std::vector<std::string> ids;
    for (const auto& k : known_) ids.push_back(k->id);
    return ids;
  }

 private:
  std::vector<ContainerInfoPtr> known_;
};

TEST(PolicyManager, LoadsTheExamplesAndListsThem) {
  PolicyManager m;
  FakeTarget t;
  std::string error;
  ASSERT_TRUE(m.load_dir(std::string(CAPSCOPE_FIXTURES) + "/../../examples/policies", &error))
      << error;
  ASSERT_TRUE(m.apply(t, &error)) << error;
  EXPECT_EQ(t.loaded.size(), m.size());
  auto names = m.list();
  ASSERT_FALSE(names.empty());
  bool seed = false;
  for (const auto& p : names) seed = seed || p.name == "creds-capability-checks";
  EXPECT_TRUE(seed);
}

TEST(PolicyManager, AddReplaceDeleteAndAFailedInstallChangesNothing) {
  PolicyManager m;
  FakeTarget t;
  std::string error;
  auto parsed = PolicyManager::parse_api_policy(kScoped, &error);
  ASSERT_TRUE(parsed) << error;
  ASSERT_TRUE(m.add(*parsed, kScoped, t, &error)) << error;
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.list().at(0).source, "api");
  EXPECT_EQ(m.list().at(0).yaml, kScoped);

  t.max_slots = 0;  // the kernel refuses the next set
  std::string renamed = std::string(kScoped);
  renamed.replace(renamed.find("web-only"), 8, "web-two");
  auto second = PolicyManager::parse_api_policy(renamed, &error);
  ASSERT_TRUE(second) << error;
  EXPECT_FALSE(m.add(*second, renamed, t, &error));
  EXPECT_EQ(error, "too many selectors");
  EXPECT_EQ(m.size(), 1u);
  t.max_slots = 64;

  error.clear();
  EXPECT_FALSE(m.remove("nope", t, &error));
  EXPECT_TRUE(error.empty());
  EXPECT_TRUE(m.remove("web-only", t, &error)) << error;
  EXPECT_EQ(m.size(), 0u);
  EXPECT_TRUE(t.loaded.empty());
}

TEST(PolicyManager, TwoDocumentsInOneApiRequestAreRefused) {
  std::string error;
  std::string two = std::string(kScoped) + "---\n" + kScoped;
  EXPECT_FALSE(PolicyManager::parse_api_policy(two, &error));
  EXPECT_FALSE(error.empty());
}

TEST(PolicyManager, ScopedPolicyReachesTheCgroupsOfMatchingContainersOnceNamed) {
  PolicyManager m;
  FakeTarget t;
  ASSERT_NO_FATAL_FAILURE(add_scoped(m, t));

  auto web = podman_container('a', "web");
  web->labels = {{"app", "web"}};
  auto db = podman_container('b', "db");
  db->labels = {{"app", "db"}};

  std::vector<std::unique_ptr<RuntimeClient>> clients;
  clients.push_back(std::make_unique<KnownContainers>(std::vector<ContainerInfoPtr>{web, db}));
  RuntimeResolver resolver(std::move(clients));
  m.on_container_cgroup(11, ContainerRef{"podman", web->id, "", ""});
  m.on_container_cgroup(12, ContainerRef{"podman", db->id, "", ""});
  ASSERT_TRUE(resolver.resolve(web->id, "podman", 5s));
  ASSERT_TRUE(resolver.resolve(db->id, "podman", 5s));
  m.refresh(resolver, t);
  EXPECT_EQ(t.cgroups[11], 1u);  // slot 0: the policy's only selector
  EXPECT_FALSE(t.cgroups.contains(12) && t.cgroups[12] != 0);
  // A cgroup of a container the resolver had named already (from its create event,
  // before the cgroup existed) is named at the next refresh, though no answer came since.
  m.on_container_cgroup(13, ContainerRef{"podman", web->id, "", ""});
  m.refresh(resolver, t);
  EXPECT_EQ(t.cgroups[13], 1u);

  // The web container ends: its cgroup leaves the manager and the kernel's map.
  EXPECT_EQ(m.cgroups_tracked(), 3u);
  EXPECT_EQ(m.prune([](uint64_t id) { return id != 11; }, t), 1u);
  EXPECT_EQ(m.cgroups_tracked(), 2u);
  EXPECT_FALSE(t.cgroups.contains(11));
  EXPECT_EQ(m.prune([](uint64_t) { return true; }, t), 0u);
}

// Containers named from their runtime's create events are told to the kernel before
// their cgroups exist, with the slots of the scoped policies that take them in; once.
TEST(PolicyManager, AnnouncedContainersAreExpectedBeforeTheirCgroupsExist) {
  class Announcing final : public RuntimeClient {
   public:
    [[nodiscard]] std::string runtime() const override { return "podman"; }
    [[nodiscard]] std::string endpoint() const override { return "fake"; }
    std::string version() override { return "fake"; }
    ContainerInfo inspect(std::string_view) override {
      throw RuntimeError(RuntimeError::Kind::NotFound, "starting");
    }
    std::vector<std::string> list_running() override { return {}; }
    bool follow_creates(const CreatedFn& on_created, const StoppedFn& stopped) override {
      for (const char* app : {"web", "db"}) {
        CreatedContainer c;
        c.info.id = std::string(64, app[0]);
        c.info.runtime = "podman";
        c.info.name = app;
        c.info.labels = {{"app", app}};
        c.info.pod_labels = {{"app", app}};
        on_created(std::move(c));
      }
      while (!stopped()) std::this_thread::sleep_for(10ms);
      return true;
    }
  };
  std::vector<std::unique_ptr<RuntimeClient>> clients;
  clients.push_back(std::make_unique<Announcing>());
  RuntimeResolver resolver(std::move(clients));
  for (int i = 0; i < 500 && resolver.named_from_events() < 2; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(resolver.named_from_events(), 2u);

  PolicyManager m;
  FakeTarget t;
  ASSERT_NO_FATAL_FAILURE(add_scoped(m, t));
  m.refresh(resolver, t);
  EXPECT_EQ(t.expected, (std::map<std::string, uint64_t>{{std::string(64, 'w'), 1u}}));
  t.expected.clear();
  m.refresh(resolver, t);
  EXPECT_TRUE(t.expected.empty()) << "each announcement is told once";
}

// The OCI hook's announcement: the cgroup takes its policies at once. The runtime's
// answer is kept; the CRI annotations' partial identity holds only until the runtime
// names the container, whose full answer then decides.
TEST(PolicyManager, AnAnnouncedCgroupTakesItsPoliciesAtOnceAndTheRuntimeHasTheLastWord) {
  PolicyManager m;
  FakeTarget t;
  ASSERT_NO_FATAL_FAILURE(add_scoped(m, t));

  auto web = podman_container('a', "web");
  web->name = "web";
  web->pod_name = "web-0";
  EXPECT_EQ(m.announce(21, ContainerRef{"podman", web->id, "", ""}, web, true, t),
            std::vector<std::string>{"web-only"});
  EXPECT_EQ(t.cgroups[21], 1u);
  EXPECT_EQ(m.cgroups_tracked(), 1u);

  // Not in the selector's scope: tracked, no slot.
  auto db = std::make_shared<ContainerInfo>(*web);
  db->id = std::string(64, 'b');
  db->pod_labels = {{"app", "db"}};
  EXPECT_TRUE(m.announce(22, ContainerRef{"podman", db->id, "", ""}, db, true, t).empty());
  EXPECT_FALSE(t.cgroups.contains(22) && t.cgroups[22] != 0);
  // Nothing named it: tracked, so the runtime's answer reaches it later.
  EXPECT_TRUE(m.announce(23, ContainerRef{"cri-o", std::string(64, 'c'), "", ""}, nullptr, false, t)
                  .empty());
  EXPECT_EQ(m.cgroups_tracked(), 3u);

  // A partial identity (annotations: pod name, no labels) that a policy happens to take
  // in, then the runtime's answer, which the policy does not: the answer wins.
  auto partial = std::make_shared<ContainerInfo>(*db);
  partial->id = std::string(64, 'd');
  partial->pod_labels = {{"app", "web"}};  // what the partial guess implied
  EXPECT_EQ(m.announce(24, ContainerRef{"cri-o", partial->id, "", ""}, partial, false, t),
            std::vector<std::string>{"web-only"});
  EXPECT_EQ(t.cgroups[24], 1u);
  auto answer = std::make_shared<ContainerInfo>(*partial);
  answer->name = "db";
  answer->pod_name = "db-0";
  answer->pod_labels = {{"app", "db"}};
  std::vector<std::unique_ptr<RuntimeClient>> clients;
  clients.push_back(std::make_unique<KnownContainers>(std::vector<ContainerInfoPtr>{answer}));
  RuntimeResolver resolver(std::move(clients));
  ASSERT_TRUE(resolver.resolve(partial->id, "cri-o", 5s));
  m.refresh(resolver, t);
  EXPECT_EQ(t.cgroups[24], 0u) << "the runtime's answer replaces the annotations' guess";
}

TEST(PolicyManager, TheBoundCountsLiveCgroupsOnly) {
  PolicyManager m;
  FakeTarget t;
  size_t bound = PolicyManager::kMaxTrackedCgroups;
  for (uint64_t id = 1; id <= bound + 10; ++id)
    m.on_container_cgroup(id, ContainerRef{"podman", fmt::format("{:064x}", id), "", ""});
  EXPECT_EQ(m.cgroups_tracked(), bound);  // full: the last ten were not taken in
  EXPECT_EQ(m.prune([&](uint64_t id) { return id > 100; }, t), 100u);
  m.on_container_cgroup(bound + 20, ContainerRef{"podman", std::string(64, 'f'), "", ""});
  EXPECT_EQ(m.cgroups_tracked(), bound - 99);  // room again
}

TEST(PolicyManager, HitsBecomeMetricsOnce) {
  PolicyManager m;
  FakeTarget t;
  ASSERT_NO_FATAL_FAILURE(add_scoped(m, t));
  metrics::AgentMetrics metrics;
  t.hits = {5};
  m.sync_hits(t, metrics);
  m.sync_hits(t, metrics);  // no new hits: nothing added
  t.hits = {7};
  m.sync_hits(t, metrics);
  EXPECT_EQ(metrics.policy_hits("web-only", "Post").value(), 7u);
  EXPECT_EQ(m.list().at(0).hits, 7u);
  CapCheck c;
  c.policy_slot = 0;
  EXPECT_EQ(m.policy_of(c, t), "web-only");
  c.policy_slot = 3;
  EXPECT_EQ(m.policy_of(c, t), "");
}

// ---- the event fan-out ---------------------------------------------------------------

EnrichedCheck check_of(int cap, int ret, uint32_t pid) {
  EnrichedCheck e;
  e.check.cap = cap;
  e.check.ret = ret;
  e.check.pid = e.check.tid = pid;
  e.check.comm = "x";
  e.wall_ns = 1'700'000'000'000'000'000;
  return e;
}

TEST(EventHub, EachSubscriberGetsWhatItsFiltersKeep) {
  EventHub hub;
  std::string error;
  api::EventQuery all;
  api::EventQuery denied;
  denied.spec.denied_only = true;
  denied.format = "compact";
  auto s_all = hub.subscribe(all, &error);
  auto s_denied = hub.subscribe(denied, &error);
  ASSERT_TRUE(s_all && s_denied) << error;
  hub.publish(check_of(0, 0, 10));    // CHOWN granted
  hub.publish(check_of(34, -1, 11));  // SYSLOG denied
  auto a1 = s_all->next(100ms), a2 = s_all->next(100ms);
  ASSERT_TRUE(a1 && a2);
  EXPECT_EQ(a1->capability, "CAP_CHOWN");
  EXPECT_NE(a1->line.find("\"process_kprobe\""), std::string::npos) << a1->line;
  auto d1 = s_denied->next(100ms);
  ASSERT_TRUE(d1);
  EXPECT_EQ(d1->capability, "CAP_SYSLOG");
  EXPECT_TRUE(d1->denied);
  EXPECT_EQ(d1->line.find('{'), std::string::npos) << "compact, not JSON: " << d1->line;
  EXPECT_FALSE(s_denied->next(20ms));
}

TEST(EventHub, ASlowSubscriberLosesEventsCountedAndNeverBlocks) {
  EventHub hub(4);
  std::string error;
  auto s = hub.subscribe({}, &error);
  for (uint32_t i = 0; i < 10; ++i) hub.publish(check_of(0, 0, 100 + i));
  EXPECT_EQ(s->dropped(), 6u);
  EXPECT_EQ(hub.dropped(), 6u);
  int got = 0;
  while (s->next(10ms)) ++got;
  EXPECT_EQ(got, 4);
}

TEST(EventHub, CloseEndsStreamsAfterWhatTheyHoldAndRefusesTable) {
  EventHub hub;
  std::string error;
  auto s = hub.subscribe({}, &error);
  hub.publish(check_of(0, 0, 1));
  hub.close_all();
  EXPECT_FALSE(s->closed());  // one event still queued
  EXPECT_TRUE(s->next(10ms));
  EXPECT_FALSE(s->next(10ms));
  EXPECT_TRUE(s->closed());
  api::EventQuery table;
  table.format = "table";
  EXPECT_FALSE(hub.subscribe(table, &error));
  EXPECT_NE(error.find("json or compact"), std::string::npos);
  EXPECT_EQ(hub.subscribers(), 0u);
}

TEST(EventHub, AReaderThatLetGoIsForgotten) {
  EventHub hub;
  std::string error;
  {
    auto s = hub.subscribe({}, &error);
    EXPECT_EQ(hub.subscribers(), 1u);
  }
  hub.publish(check_of(0, 0, 1));
  EXPECT_EQ(hub.subscribers(), 0u);
}

}  // namespace
}  // namespace capscope::agent
