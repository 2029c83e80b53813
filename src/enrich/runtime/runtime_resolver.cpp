#include "enrich/runtime/runtime_resolver.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "enrich/runtime/workload.h"

namespace capscope {

namespace {

using Clock = std::chrono::steady_clock;

// take_named_from_events() keeps this many: a caller that never takes them costs no more.
constexpr size_t kMaxAnnounced = 1024;

}  // namespace

RuntimeResolver::RuntimeResolver(std::vector<std::unique_ptr<RuntimeClient>> clients,
                                 ResolverOptions options, WarnFn warn)
    : options_(options), warn_(std::move(warn)) {
  if (!warn_) warn_ = [](const std::string& m) { spdlog::warn("{}", m); };
  for (auto& c : clients) clients_.push_back(ClientState{std::move(c)});
  if (!clients_.empty()) worker_ = std::thread([this] { worker_loop(); });
  if (options_.follow_events)
    for (auto& c : clients_)
      watchers_.emplace_back([this, client = c.client.get()] { watch_loop(*client); });
}

RuntimeResolver::~RuntimeResolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  watch_wait_.notify_all();
  for (auto& w : watchers_) w.join();
  if (worker_.joinable()) worker_.join();
}

// Follows one runtime's create events for the resolver's life; a stream that fails
// (the runtime is down or restarting) is opened again after retry_unavailable. The
// inspect path warns about a runtime that does not answer; this one only logs.
void RuntimeResolver::watch_loop(RuntimeClient& client) {
  const std::string runtime = client.runtime();
  bool failing = false;
  while (!stopping_) {
    try {
      (void)client.follow_creates([this](CreatedContainer c) { on_created(std::move(c)); },
                                  [this] { return stopping_.load(); });
      return;  // stopped, or the runtime has no event stream
    } catch (const std::exception& e) {
      if (!failing) spdlog::debug("{} events: {}; retrying", runtime, e.what());
      failing = true;
    }
    std::unique_lock lock(mu_);
    watch_wait_.wait_for(lock, options_.retry_unavailable, [this] { return stop_; });
  }
}

// A container named by its runtime's create event: published now, inspected later
// (the full answer also has what the event lacks: pid, start time, capabilities).
void RuntimeResolver::on_created(CreatedContainer created) {
  ContainerInfo& info = created.info;
  if (info.id.empty()) return;
  if (created.complete && info.workload.empty()) derive_workload(info);
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(info.id);
  Entry& e = it->second;
  if (e.state == State::Known || e.info) return;  // answered already
  if (inserted) {
    e.hint = info.runtime;
    e.order = next_order_++;
  }
  if (created.complete) {
    e.info = std::make_shared<const ContainerInfo>(std::move(info));
    announced_.push_back(e.info);
    if (announced_.size() > kMaxAnnounced) announced_.pop_front();
    named_from_events_.fetch_add(1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    answer_.notify_all();
    // A runtime answers an inspect of a starting container only once it has started.
    if (inserted) e.retry_at = Clock::now() + options_.refine_after;
  } else if (inserted) {
    queue_.push_back(it->first);
  }
  wake_.notify_one();
  if (inserted) trim();
}

std::vector<ContainerInfoPtr> RuntimeResolver::take_named_from_events() {
  std::lock_guard lock(mu_);
  std::vector<ContainerInfoPtr> out(announced_.begin(), announced_.end());
  announced_.clear();
  return out;
}

ContainerInfoPtr RuntimeResolver::lookup(std::string_view id, std::string_view runtime_hint) {
  if (id.empty() || clients_.empty()) return nullptr;
  std::lock_guard lock(mu_);
  auto [it, inserted] = entries_.try_emplace(std::string(id));
  if (!inserted) return it->second.info;
  it->second.hint = runtime_hint;
  it->second.order = next_order_++;
  queue_.push_back(it->first);
  trim();
  wake_.notify_one();
  return nullptr;
}

ContainerInfoPtr RuntimeResolver::resolve(std::string_view id, std::string_view runtime_hint,
                                          std::chrono::milliseconds timeout) {
  if (auto info = lookup(id, runtime_hint); info || clients_.empty()) return info;
  std::unique_lock lock(mu_);
  std::string key(id);
  answer_.wait_for(lock, timeout, [&] {
    auto it = entries_.find(key);
    // A create event names a queued id without ending its question (info set, state
    // still Queued): that answer is enough here.
    return stop_ || it == entries_.end() || it->second.state != State::Queued ||
           it->second.info != nullptr;
  });
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second.info;
}

bool RuntimeResolver::given_up(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(std::string(id));
  return it != entries_.end() && it->second.state == State::Unknown;
}

uint64_t RuntimeResolver::generation() const { return generation_.load(std::memory_order_acquire); }

void RuntimeResolver::worker_loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      // Ids waiting for a retry sit in entries_ as Queued with a retry time: wake for
      // the earliest of them.
      auto next = Clock::time_point::max();
      for (const auto& [id, e] : entries_)
        if (e.state == State::Queued && e.retry_at != Clock::time_point{})
          next = std::min(next, e.retry_at);
      if (next == Clock::time_point::max()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, next);
      }
      if (stop_) break;
      auto now = Clock::now();
      for (auto& [id, e] : entries_) {
        if (e.state != State::Queued || e.retry_at == Clock::time_point{} || e.retry_at > now)
          continue;
        e.retry_at = {};
        queue_.push_back(id);
      }
      continue;
    }
    std::string id = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    ask(id);
    lock.lock();
  }
}

void RuntimeResolver::ask(const std::string& id) {
  std::string hint;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;  // forgotten by the size bound meanwhile
    hint = it->second.hint;
  }
  bool all_down = false;
  ContainerInfoPtr info = ask_clients(id, hint, &all_down);
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (info) {
    e.state = State::Known;
    e.info = std::move(info);
    generation_.fetch_add(1, std::memory_order_release);
  } else if (all_down) {
    // Nobody could answer: ask again when a runtime is due for a retry.
    e.retry_at = Clock::now() + options_.retry_unavailable;
  } else if (++e.attempts < options_.not_found_attempts) {
    e.retry_at = Clock::now() + options_.retry_not_found;
  } else {
    // Gone before it could be inspected: a name from its create event stands.
    e.state = e.info ? State::Known : State::Unknown;
  }
  answer_.notify_all();
}

ContainerInfoPtr RuntimeResolver::ask_clients(const std::string& id, const std::string& hint,
                                              bool* all_down) {
  std::lock_guard clients_lock(client_mu_);
  // The runtime the cgroup path names first; the others after (a bare id under
  // kubepods may be containerd's or CRI-O's, a docker-named one podman's).
  std::vector<ClientState*> order;
  for (auto& c : clients_)
    if (c.client->runtime() == hint) order.push_back(&c);
  for (auto& c : clients_)
    if (c.client->runtime() != hint) order.push_back(&c);
  bool answered = false;
  auto now = Clock::now();
  for (ClientState* c : order) {
    if (c->down && now < c->retry_at) continue;
    try {
      auto info = std::make_shared<ContainerInfo>(c->client->inspect(id));
      mark_up(*c);
      if (info->workload.empty()) derive_workload(*info);
      return info;
    } catch (const RuntimeError& e) {
      if (e.kind() == RuntimeError::Kind::NotFound) {
        mark_up(*c);
        answered = true;
      } else {
        mark_down(*c, e.what());
      }
    } catch (const std::exception& e) {
      mark_down(*c, e.what());
    }
  }
  *all_down = !answered;
  return nullptr;
}

void RuntimeResolver::mark_down(ClientState& c, const std::string& why) {
  c.retry_at = Clock::now() + options_.retry_unavailable;
  if (c.down) return;
  c.down = true;
  warn_(fmt::format("{}; naming its containers by cgroup id only until it answers", why));
}

void RuntimeResolver::mark_up(ClientState& c) {
  if (!c.down) return;
  c.down = false;
  spdlog::info("{} runtime at {} answers again", c.client->runtime(), c.client->endpoint());
}

void RuntimeResolver::trim() {
  if (entries_.size() <= options_.max_entries) return;
  // Forget the oldest tenth: cheaper than an LRU list, and an id asked again is
  // simply queued again.
  std::vector<std::pair<uint64_t, std::string>> by_age;
  by_age.reserve(entries_.size());
  for (const auto& [id, e] : entries_) by_age.emplace_back(e.order, id);
  size_t drop = entries_.size() - options_.max_entries + options_.max_entries / 10;
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop) - 1,
                   by_age.end());
  for (size_t i = 0; i < drop; ++i) entries_.erase(by_age[i].second);
}

std::vector<ContainerInfoPtr> RuntimeResolver::list_running() {
  std::vector<ContainerInfoPtr> out;
  std::vector<std::pair<std::string, std::string>> ids;  // id, runtime
  {
    std::lock_guard clients_lock(client_mu_);
    for (auto& c : clients_) {
      try {
        for (auto& id : c.client->list_running()) ids.emplace_back(id, c.client->runtime());
        mark_up(c);
      } catch (const std::exception& e) {
        mark_down(c, e.what());
      }
    }
  }
  for (const auto& [id, runtime] : ids)
    if (auto info = resolve(id, runtime, std::chrono::seconds(5))) out.push_back(info);
  return out;
}

std::vector<RuntimeStatus> RuntimeResolver::probe() {
  std::lock_guard clients_lock(client_mu_);
  std::vector<RuntimeStatus> out;
  for (auto& c : clients_) {
    RuntimeStatus s;
    s.runtime = c.client->runtime();
    s.endpoint = c.client->endpoint();
    try {
      s.version = c.client->version();
      s.answering = true;
    } catch (const std::exception& e) {
      s.error = e.what();
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace capscope
