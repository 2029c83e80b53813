#include "capture/event_source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "capture/record_json.h"

namespace capscope::capture {

SourceStats LiveSource::stats() const {
  KernelCounters k = cap_->counters();
  SourceStats s;
  s.checks_seen = k.checks;
  filter::FilterStats user = cap_->user_filter_stats();
  s.filtered = k.filtered + user.filtered;
  s.unique_suppressed = k.unique_suppressed + user.unique_suppressed;
  s.rate_suppressed = k.rate_suppressed + user.rate_suppressed;
  s.lost = k.lost;
  s.proc_lost = k.proc_lost;
  s.decode_errors = cap_->decode_errors();
  s.callsite_samples = k.samples;
  return s;
}

std::string LiveSource::describe() const {
  return fmt::format("live, {} backend", backend_name(cap_->backend()));
}

std::unique_ptr<ReplaySource> ReplaySource::open(const std::string& path, filter::FilterSpec spec,
                                                 std::string* error) {
  std::unique_ptr<ReplaySource> src(new ReplaySource(path, std::move(spec)));
  src->in_.open(path);
  if (!src->in_) {
    *error = fmt::format("cannot open replay file {}: {}", path, std::strerror(errno));
    return nullptr;
  }
  return src;
}

int ReplaySource::poll(int /*timeout_ms*/, const RecordHandler& handler) {
  constexpr int kBatch = 4096;
  int n = 0;
  std::string line;
  while (n < kBatch && std::getline(in_, line)) {
    ++line_no_;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    std::string err;
    std::optional<Record> rec;
    if (!j.is_discarded()) rec = record_from_json(j, &err);
    if (!rec) {
      ++bad_lines_;
      spdlog::warn("{}:{}: skipped: {}", path_, line_no_, err.empty() ? "not JSON" : err);
      continue;
    }
    if (auto* c = std::get_if<CapCheck>(&*rec)) {
      ++checks_;
      if (!filter_.keep(*c)) continue;
    }
    handler(std::move(*rec));
    ++n;
  }
  if (!in_) done_ = true;
  return n;
}

SourceStats ReplaySource::stats() const {
  SourceStats s;
  s.checks_seen = checks_;
  s.filtered = filter_.stats().filtered;
  s.unique_suppressed = filter_.stats().unique_suppressed;
  s.rate_suppressed = filter_.stats().rate_suppressed;
  s.decode_errors = bad_lines_;
  return s;
}

}  // namespace capscope::capture
