// The agent's event fan-out: each event the capture thread publishes goes to every
// gRPC subscriber whose filters (trace's, applied here in user space) keep it. A
// subscriber's queue is bounded: the capture thread never waits for a slow reader,
// it drops the event for that reader and counts it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/backend.h"
#include "filter/check_filter.h"
#include "model/process.h"
#include "output/sink.h"
#include "output/writer.h"

namespace capscope::agent {

// A writer's output gathered in memory, one event at a time.
class StringSink final : public output::Sink {
 public:
  bool write(std::string_view bytes) override {
    text_.append(bytes);
    return true;
  }
  bool flush(bool /*complete*/) override { return true; }
  [[nodiscard]] const std::string& error() const override { return error_; }
  // The text gathered since the last take, without its final newline.
  std::string take();

 private:
  std::string text_;
  std::string error_;
};

// Formats events as lines, once per format however many readers want it.
class LineFormatter {
 public:
  explicit LineFormatter(const output::WriterOptions& options = {});
  // The event as a line of `format` ("json" or "compact").
  std::string line(const EnrichedCheck& e, output::Format format);

 private:
  StringSink json_sink_, compact_sink_;
  std::unique_ptr<output::EventWriter> json_, compact_;
};

class EventHub {
 public:
  static constexpr size_t kQueueLimit = 8192;

  explicit EventHub(size_t queue_limit = kQueueLimit) : queue_limit_(queue_limit) {}
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // Thread-safe. Null with *error for a format other than json or compact.
  std::unique_ptr<api::EventStream> subscribe(const api::EventQuery& query, std::string* error);
  // From the capture thread only.
  void publish(const EnrichedCheck& e);
  // Ends every stream (after what they hold); later subscribers get a closed stream.
  void close_all();

  [[nodiscard]] size_t subscribers() const;
  [[nodiscard]] uint64_t delivered() const { return delivered_.load(); }
  [[nodiscard]] uint64_t dropped() const { return dropped_.load(); }

  struct Subscriber;  // a reader's queue and filters (event_hub.cpp)

 private:
  size_t queue_limit_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subs_;
  bool closed_ = false;
  LineFormatter formatter_;  // capture thread only
  std::atomic<uint64_t> delivered_{0}, dropped_{0};
};

}  // namespace capscope::agent
