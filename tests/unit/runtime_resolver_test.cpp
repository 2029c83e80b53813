// The resolver against fake runtimes: answers arrive off the caller's thread,
// a silent runtime degrades with one warning and recovers, unknown ids are
// asked again a bounded number of times, the cgroup's runtime is asked first.
#include "enrich/runtime/runtime_resolver.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

namespace capscope {
namespace {

using namespace std::chrono_literals;

struct FakeRuntime {
  std::mutex mu;
  std::set<std::string> known;
  bool down = false;
  std::chrono::milliseconds delay{0};
  std::atomic<int> inspects{0};
  bool streams = false;                 // has a create-event stream
  std::deque<CreatedContainer> events;  // sent on the stream, in order
  std::atomic<int> streams_opened{0};
};

class FakeClient final : public RuntimeClient {
 public:
  FakeClient(std::string name, std::shared_ptr<FakeRuntime> rt)
      : name_(std::move(name)), rt_(std::move(rt)) {}
  [[nodiscard]] std::string runtime() const override { return name_; }
  [[nodiscard]] std::string endpoint() const override { return "/fake/" + name_ + ".sock"; }
  std::string version() override {
    std::lock_guard lock(rt_->mu);
    if (rt_->down) throw RuntimeError(RuntimeError::Kind::Unavailable, name_ + " is down");
    return "1.0";
  }
  ContainerInfo inspect(std::string_view id) override {
    ++rt_->inspects;
    std::chrono::milliseconds delay;
    {
      std::lock_guard lock(rt_->mu);
      if (rt_->down) throw RuntimeError(RuntimeError::Kind::Unavailable, name_ + " is down");
      if (!rt_->known.count(std::string(id)))
        throw RuntimeError(RuntimeError::Kind::NotFound, "no such container");
      delay = rt_->delay;
    }
    std::this_thread::sleep_for(delay);
    ContainerInfo info;
    info.id = id;
    info.runtime = name_;
    info.name = "c-" + std::string(id);
    return info;
  }
  std::vector<std::string> list_running() override {
    std::lock_guard lock(rt_->mu);
    if (rt_->down) throw RuntimeError(RuntimeError::Kind::Unavailable, name_ + " is down");
    return {rt_->known.begin(), rt_->known.end()};
  }
  bool follow_creates(const CreatedFn& on_created, const StoppedFn& stopped) override {
    {
      std::lock_guard lock(rt_->mu);
      if (!rt_->streams) return false;
      if (rt_->down) throw RuntimeError(RuntimeError::Kind::Unavailable, name_ + " is down");
    }
    ++rt_->streams_opened;
    while (!stopped()) {
      std::deque<CreatedContainer> batch;
      {
        std::lock_guard lock(rt_->mu);
        batch.swap(rt_->events);
      }
      for (auto& c : batch) on_created(std::move(c));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

 private:
  std::string name_;
  std::shared_ptr<FakeRuntime> rt_;
};

struct Warnings {
  std::mutex mu;
  std::vector<std::string> lines;
  RuntimeResolver::WarnFn fn() {
    return [this](const std::string& m) {
      std::lock_guard lock(mu);
      lines.push_back(m);
    };
  }
  size_t count() {
    std::lock_guard lock(mu);
    return lines.size();
  }
};

ResolverOptions fast() {
  ResolverOptions o;
  o.retry_unavailable = 50ms;
  o.retry_not_found = 20ms;
  o.not_found_attempts = 3;
  return o;
}

std::vector<std::unique_ptr<RuntimeClient>> one(const std::string& name,
                                                std::shared_ptr<FakeRuntime> rt) {
  std::vector<std::unique_ptr<RuntimeClient>> v;
  v.push_back(std::make_unique<FakeClient>(name, std::move(rt)));
  return v;
}

TEST(RuntimeResolver, LookupNeverWaitsAndTheAnswerFollows) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->known = {"aaa"};
  rt->delay = 300ms;
  RuntimeResolver r(one("podman", rt), fast());
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(r.lookup("aaa", "podman"), nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  auto info = r.resolve("aaa", "podman", 2s);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "c-aaa");
  EXPECT_EQ(r.lookup("aaa").get(), info.get());
  EXPECT_EQ(rt->inspects.load(), 1);  // asked once, then cached
  EXPECT_GE(r.generation(), 1u);
}

TEST(RuntimeResolver, ADownRuntimeWarnsOnceAndRecovers) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->known = {"bbb", "ccc", "ddd"};
  rt->down = true;
  Warnings w;
  RuntimeResolver r(one("docker", rt), fast(), w.fn());
  EXPECT_EQ(r.resolve("bbb", "docker", 200ms), nullptr);
  EXPECT_EQ(r.resolve("ccc", "docker", 200ms), nullptr);
  EXPECT_EQ(w.count(), 1u) << "one warning for the runtime, not one per container";
  {
    std::lock_guard lock(rt->mu);
    rt->down = false;
  }
  // Both ids that waited are answered once the runtime is back, without being asked for.
  auto deadline = std::chrono::steady_clock::now() + 3s;
  while ((!r.lookup("bbb") || !r.lookup("ccc")) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_NE(r.lookup("bbb"), nullptr);
  EXPECT_NE(r.lookup("ccc"), nullptr);
  EXPECT_NE(r.resolve("ddd", "docker", 1s), nullptr);
  EXPECT_EQ(w.count(), 1u);
}

TEST(RuntimeResolver, AnUnknownIdIsAskedABoundedNumberOfTimes) {
  auto rt = std::make_shared<FakeRuntime>();
  RuntimeResolver r(one("podman", rt), fast());
  EXPECT_EQ(r.resolve("zzz", "podman", 2s), nullptr);
  EXPECT_EQ(rt->inspects.load(), 3);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(r.lookup("zzz"), nullptr);
  EXPECT_EQ(rt->inspects.load(), 3) << "given up: not asked again";
}

TEST(RuntimeResolver, AContainerCreatedLateIsFoundOnARetry) {
  auto rt = std::make_shared<FakeRuntime>();
  RuntimeResolver r(one("podman", rt), fast());
  EXPECT_EQ(r.lookup("late", "podman"), nullptr);
  std::this_thread::sleep_for(10ms);
  {
    std::lock_guard lock(rt->mu);
    rt->known.insert("late");
  }
  EXPECT_NE(r.resolve("late", "podman", 2s), nullptr);
}

TEST(RuntimeResolver, TheCgroupsRuntimeIsAskedFirst) {
  auto a = std::make_shared<FakeRuntime>();
  auto b = std::make_shared<FakeRuntime>();
  a->known = {"x1"};
  b->known = {"x1"};
  std::vector<std::unique_ptr<RuntimeClient>> v;
  v.push_back(std::make_unique<FakeClient>("docker", a));
  v.push_back(std::make_unique<FakeClient>("containerd", b));
  RuntimeResolver r(std::move(v), fast());
  auto info = r.resolve("x1", "containerd", 2s);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->runtime, "containerd");
  EXPECT_EQ(a->inspects.load(), 0);
}

TEST(RuntimeResolver, ListAndProbeReportEachRuntime) {
  auto up = std::make_shared<FakeRuntime>();
  auto down = std::make_shared<FakeRuntime>();
  up->known = {"r1", "r2"};
  down->down = true;
  std::vector<std::unique_ptr<RuntimeClient>> v;
  v.push_back(std::make_unique<FakeClient>("podman", up));
  v.push_back(std::make_unique<FakeClient>("cri-o", down));
  Warnings w;
  RuntimeResolver r(std::move(v), fast(), w.fn());
  auto running = r.list_running();
  ASSERT_EQ(running.size(), 2u);
  auto status = r.probe();
  ASSERT_EQ(status.size(), 2u);
  EXPECT_TRUE(status[0].answering);
  EXPECT_EQ(status[0].version, "1.0");
  EXPECT_FALSE(status[1].answering);
  EXPECT_NE(status[1].error.find("down"), std::string::npos);
}

TEST(RuntimeResolver, WithoutRuntimesEverythingIsNull) {
  RuntimeResolver r({}, fast());
  EXPECT_FALSE(r.has_clients());
  EXPECT_EQ(r.lookup("x"), nullptr);
  EXPECT_EQ(r.resolve("x", "", 10ms), nullptr);
}

TEST(RuntimeResolver, TheCacheIsBounded) {
  auto rt = std::make_shared<FakeRuntime>();
  ResolverOptions o = fast();
  o.max_entries = 100;
  RuntimeResolver r(one("podman", rt), o);
  for (int i = 0; i < 1000; ++i) r.lookup("id" + std::to_string(i), "podman");
  // Still answers for new ids after trimming.
  {
    std::lock_guard lock(rt->mu);
    rt->known.insert("fresh");
  }
  EXPECT_NE(r.resolve("fresh", "podman", 5s), nullptr);
}

CreatedContainer created(const std::string& id, bool complete = true) {
  CreatedContainer c;
  c.info.id = id;
  c.info.runtime = "podman";
  c.info.name = "event-" + id;
  c.complete = complete;
  return c;
}

void send(FakeRuntime& rt, CreatedContainer c) {
  std::lock_guard lock(rt.mu);
  rt.events.push_back(std::move(c));
}

// Waits for an answer about `id` named `name`. lookup() of an id not yet entered would
// ask the runtime itself, so it is called only once the generation has moved.
ContainerInfoPtr wait_named(RuntimeResolver& r, const std::string& id, const std::string& name,
                            std::chrono::milliseconds within, uint64_t after_generation = 0) {
  auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    auto info = r.generation() > after_generation ? r.lookup(id, "podman") : nullptr;
    if ((info && info->name == name) || std::chrono::steady_clock::now() >= deadline) return info;
    std::this_thread::sleep_for(2ms);
  }
}

TEST(RuntimeResolver, ACreateEventNamesAContainerBeforeTheRuntimeAnswersAnInspect) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->known = {"aaa"};
  rt->streams = true;
  rt->delay = 300ms;  // podman holds a starting container's lock
  ResolverOptions o = fast();
  o.refine_after = 100ms;
  RuntimeResolver r(one("podman", rt), o);
  uint64_t before = r.generation();
  send(*rt, created("aaa"));
  auto info = wait_named(r, "aaa", "event-aaa", 1s, before);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "event-aaa");
  EXPECT_EQ(rt->inspects.load(), 0) << "named from the event, not by asking";
  EXPECT_GT(r.generation(), before);
  EXPECT_EQ(r.named_from_events(), 1u);
  EXPECT_EQ(r.resolve("aaa", "podman", 10ms).get(), info.get()) << "resolve does not wait";
  // The full inspect follows and replaces it.
  info = wait_named(r, "aaa", "c-aaa", 2s);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "c-aaa");
  EXPECT_EQ(rt->inspects.load(), 1);
}

// What the OCI hook's wait relies on: the runtime's inspect is held (podman holds a
// starting container's lock) and its create event names the container meanwhile. A
// resolve() waiting on that id returns with the event's answer, not at its timeout.
TEST(RuntimeResolver, AWaitingResolveTakesACreateEventThatComesWhileTheInspectIsHeld) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->known = {"held"};
  rt->streams = true;
  rt->delay = 2s;
  ResolverOptions o = fast();
  o.refine_after = 10s;
  RuntimeResolver r(one("podman", rt), o);
  std::thread event([&] {
    std::this_thread::sleep_for(150ms);
    send(*rt, created("held"));
  });
  auto start = std::chrono::steady_clock::now();
  auto info = r.resolve("held", "podman", 1500ms);
  auto took = std::chrono::steady_clock::now() - start;
  event.join();
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "event-held");
  EXPECT_EQ(rt->inspects.load(), 1) << "the inspect was asked, and is still held";
  EXPECT_LT(took, 1000ms) << "resolve waited for its timeout, not for the event";
}

TEST(RuntimeResolver, AnIncompleteCreateEventIsAskedAboutAtOnce) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->known = {"pod1"};
  rt->streams = true;
  ResolverOptions o = fast();
  o.refine_after = 10s;  // not what this one waits for
  RuntimeResolver r(one("podman", rt), o);
  send(*rt, created("pod1", /*complete=*/false));
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (rt->inspects.load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(2ms);
  EXPECT_EQ(rt->inspects.load(), 1) << "asked without any check of it";
  auto info = wait_named(r, "pod1", "c-pod1", 1s);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "c-pod1") << "never the event's partial name";
  EXPECT_EQ(r.named_from_events(), 0u);
}

TEST(RuntimeResolver, AContainerGoneBeforeItsInspectKeepsItsEventName) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->streams = true;  // "short" is never known to inspect
  ResolverOptions o = fast();
  o.refine_after = 10ms;
  RuntimeResolver r(one("podman", rt), o);
  uint64_t before = r.generation();
  send(*rt, created("short"));
  ASSERT_NE(wait_named(r, "short", "event-short", 1s, before), nullptr);
  auto deadline = std::chrono::steady_clock::now() + 2s;
  while (rt->inspects.load() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rt->inspects.load(), 3);
  auto info = r.lookup("short", "podman");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->name, "event-short");
  EXPECT_FALSE(r.given_up("short"));
}

TEST(RuntimeResolver, AnEventStreamIsOpenedAgainAfterTheRuntimeComesBack) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->streams = true;
  rt->down = true;
  Warnings w;
  RuntimeResolver r(one("docker", rt), fast(), w.fn());
  std::this_thread::sleep_for(120ms);  // a few failed attempts, 50 ms apart
  EXPECT_EQ(rt->streams_opened.load(), 0);
  EXPECT_EQ(w.count(), 0u) << "the stream logs; warnings are the inspect path's";
  {
    std::lock_guard lock(rt->mu);
    rt->down = false;
  }
  uint64_t before = r.generation();
  send(*rt, created("back"));
  EXPECT_NE(wait_named(r, "back", "event-back", 1s, before), nullptr);
  EXPECT_EQ(rt->streams_opened.load(), 1);
}

TEST(RuntimeResolver, EventsAreNotFollowedWhenSwitchedOff) {
  auto rt = std::make_shared<FakeRuntime>();
  rt->streams = true;
  ResolverOptions o = fast();
  o.follow_events = false;
  RuntimeResolver r(one("podman", rt), o);
  send(*rt, created("aaa"));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rt->streams_opened.load(), 0);
  EXPECT_EQ(r.named_from_events(), 0u);
}

}  // namespace
}  // namespace capscope
