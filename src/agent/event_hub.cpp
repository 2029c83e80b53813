#include "agent/event_hub.h"

#include <fmt/format.h>

#include <algorithm>

#include "tables/capabilities.h"

namespace capscope::agent {

std::string StringSink::take() {
  std::string out = std::move(text_);
  text_.clear();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

LineFormatter::LineFormatter(const output::WriterOptions& options)
    : json_(output::make_writer(output::Format::Json, json_sink_, options)),
      compact_(output::make_writer(output::Format::Compact, compact_sink_, options)) {}

std::string LineFormatter::line(const EnrichedCheck& e, output::Format format) {
  bool json = format == output::Format::Json;
  output::EventWriter& w = json ? *json_ : *compact_;
  w.write(e);
  w.flush();
  return (json ? json_sink_ : compact_sink_).take();
}

struct EventHub::Subscriber {
  Subscriber(const api::EventQuery& q, output::Format f)
      : checks(q.spec), containers(q.selection), format(f) {}

  // Capture thread only.
  filter::CheckFilter checks;
  filter::ContainerFilter containers;
  output::Format format;

  std::mutex mu;
  std::condition_variable ready;
  std::deque<api::StreamEvent> queue;
  bool closed = false;
  bool gone = false;  // the reader let go of its stream
  uint64_t dropped = 0;

  // Whether this reader wants the event (trace's filters, then its selection).
  bool wants(const EnrichedCheck& e) {
    CapCheck c = e.check;
    if (!checks.keep(c)) return false;
    if (!containers.active()) return true;
    const ContainerRef none;
    const ContainerRef& ref = e.process ? e.process->container : none;
    // A container not named yet cannot be told apart: the reader misses it rather
    // than gets one it did not ask for.
    return containers.decide(ref, e.container.get()) == filter::Decision::Keep;
  }
};

namespace {

class HubStream final : public api::EventStream {
 public:
  explicit HubStream(std::shared_ptr<EventHub::Subscriber> s) : s_(std::move(s)) {}
  ~HubStream() override {
    std::lock_guard lock(s_->mu);
    s_->gone = true;
    s_->queue.clear();
  }
  HubStream(const HubStream&) = delete;
  HubStream& operator=(const HubStream&) = delete;

  std::optional<api::StreamEvent> next(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(s_->mu);
    s_->ready.wait_for(lock, timeout, [&] { return !s_->queue.empty() || s_->closed; });
    if (s_->queue.empty()) return std::nullopt;
    api::StreamEvent e = std::move(s_->queue.front());
    s_->queue.pop_front();
    return e;
  }
  [[nodiscard]] bool closed() const override {
    std::lock_guard lock(s_->mu);
    return s_->closed && s_->queue.empty();
  }
  [[nodiscard]] uint64_t dropped() const override {
    std::lock_guard lock(s_->mu);
    return s_->dropped;
  }

 private:
  std::shared_ptr<EventHub::Subscriber> s_;
};

api::StreamEvent typed_fields(const EnrichedCheck& e) {
  api::StreamEvent out;
  out.time_ns = static_cast<uint64_t>(e.wall_ns);
  out.capability = tables::cap_name(e.check.cap);
  out.denied = !e.check.granted();
  out.pid = e.check.pid;
  out.policy = e.check.policy_name;
  if (e.container) {
    out.k8s_namespace = e.container->pod_namespace;
    out.pod = e.container->pod_name;
    out.container = e.container->name;
  }
  return out;
}

}  // namespace

EventHub::~EventHub() { close_all(); }

std::unique_ptr<api::EventStream> EventHub::subscribe(const api::EventQuery& query,
                                                      std::string* error) {
  auto format = output::parse_format(query.format);
  if (!format || *format == output::Format::Table) {
    *error = fmt::format("format '{}': a stream is json or compact", query.format);
    return nullptr;
  }
  auto s = std::make_shared<Subscriber>(query, *format);
  std::lock_guard lock(mu_);
  if (closed_) {
    s->closed = true;
  } else {
    subs_.push_back(s);
  }
  return std::make_unique<HubStream>(s);
}

void EventHub::publish(const EnrichedCheck& e) {
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard lock(mu_);
    std::erase_if(subs_, [](const auto& s) {
      std::lock_guard l(s->mu);
      return s->gone;
    });
    if (subs_.empty()) return;
    subs = subs_;
  }
  std::optional<api::StreamEvent> base;
  std::string lines[2];  // by format: json, compact; made once each
  for (const auto& s : subs) {
    if (!s->wants(e)) continue;
    if (!base) base = typed_fields(e);
    int idx = s->format == output::Format::Json ? 0 : 1;
    if (lines[idx].empty()) lines[idx] = formatter_.line(e, s->format);
    api::StreamEvent ev = *base;
    ev.line = lines[idx];
    std::lock_guard lock(s->mu);
    if (s->queue.size() >= queue_limit_) {
      ++s->dropped;
      dropped_.fetch_add(1);
      continue;
    }
    s->queue.push_back(std::move(ev));
    delivered_.fetch_add(1);
    s->ready.notify_one();
  }
}

void EventHub::close_all() {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (const auto& s : subs_) {
    std::lock_guard l(s->mu);
    s->closed = true;
    s->ready.notify_all();
  }
  subs_.clear();
}

size_t EventHub::subscribers() const {
  std::lock_guard lock(mu_);
  return subs_.size();
}

}  // namespace capscope::agent
