// A small thread-safe metrics registry that renders the Prometheus text exposition
// format (version 0.0.4). Families have fixed label names; a family's series appear on
// first use, up to a bound, after which new label sets fold into one "_other_" series
// so a burst of new pods cannot grow the agent's memory or a Prometheus server's.
//
// Hot path: callers keep Counter/Gauge handles (a pointer to the series' atomic), so an
// increment is one relaxed atomic add with no lookup and no lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace capscope::metrics {

inline constexpr size_t kDefaultMaxSeries = 1000;
// The label value every label of a folded series carries.
inline constexpr std::string_view kOtherLabelValue = "_other_";
// Counts, per family, the lookups of new label sets that were folded into "_other_".
inline constexpr std::string_view kOverflowFamily = "capscope_metrics_series_overflow_total";

enum class MetricType { Counter, Gauge };

namespace detail {
struct Series {
  std::atomic<uint64_t> count{0};  // counters
  std::atomic<double> value{0.0};  // gauges
  // A gauge read at scrape time instead of `value`; guarded by `fn_mutex` because it is
  // set by the agent's thread and called from the HTTP thread.
  mutable std::mutex fn_mutex;
  std::function<double()> fn;
};
}  // namespace detail

// A handle on one counter series. Default-constructed handles ignore every call, so
// code can hold handles whether or not metrics are enabled.
class Counter {
 public:
  Counter() = default;
  void inc(uint64_t n = 1) const {
    if (series_ != nullptr) series_->count.fetch_add(n, std::memory_order_relaxed);
  }
  // Mirrors a monotonic total kept elsewhere (a kernel counter): raises the value to
  // `total`, never lowers it, so the series stays a valid counter if the source resets.
  void advance_to(uint64_t total) const;
  [[nodiscard]] uint64_t value() const {
    return series_ != nullptr ? series_->count.load(std::memory_order_relaxed) : 0;
  }

 private:
  friend class Family;
  explicit Counter(detail::Series* s) : series_(s) {}
  detail::Series* series_ = nullptr;
};

// A handle on one gauge series: set by the owner, or computed at scrape time.
class Gauge {
 public:
  Gauge() = default;
  void set(double v) const {
    if (series_ != nullptr) series_->value.store(v, std::memory_order_relaxed);
  }
  void add(double v) const {
    if (series_ != nullptr) series_->value.fetch_add(v, std::memory_order_relaxed);
  }
  // From now on a scrape calls `fn` (on the HTTP server's thread: it must be safe to
  // call from there) instead of reading the set value. An empty `fn` goes back to set().
  // A throwing `fn` makes the series NaN for that scrape.
  void set_function(std::function<double()> fn) const;
  // The value a scrape would show.
  [[nodiscard]] double value() const;

 private:
  friend class Family;
  explicit Gauge(detail::Series* s) : series_(s) {}
  detail::Series* series_ = nullptr;
};

// One metric family: a name, help, type, fixed label names and its series.
class Family {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
         size_t max_series, Counter overflow);
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The series for these label values (one per label name, in order), created on first
  // use; beyond max_series new label sets get the "_other_" series. A wrong number of
  // values is a programming error: std::invalid_argument.
  Counter counter(std::span<const std::string_view> label_values);
  Counter counter(std::initializer_list<std::string_view> label_values) {
    return counter(std::span(label_values.begin(), label_values.size()));
  }
  Gauge gauge(std::span<const std::string_view> label_values);
  Gauge gauge(std::initializer_list<std::string_view> label_values) {
    return gauge(std::span(label_values.begin(), label_values.size()));
  }

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] MetricType type() const { return type_; }
  [[nodiscard]] const std::vector<std::string>& label_names() const { return labels_; }
  [[nodiscard]] size_t max_series() const { return max_series_; }
  // Series that exist now, the "_other_" one included.
  [[nodiscard]] size_t series_count() const;

  // Appends this family in the text exposition format.
  void render(std::string& out) const;

 private:
  // Orders label-value tuples, and lets a lookup by string_views avoid allocating.
  struct LabelsLess {
    using is_transparent = void;
    bool operator()(const std::vector<std::string>& a, const std::vector<std::string>& b) const;
    bool operator()(const std::vector<std::string>& a, std::span<const std::string_view> b) const;
    bool operator()(std::span<const std::string_view> a, const std::vector<std::string>& b) const;
  };
  detail::Series* find_or_create(std::span<const std::string_view> label_values);
  void check_type(MetricType wanted) const;

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> labels_;
  size_t max_series_;
  Counter overflow_;
  mutable std::mutex mutex_;
  // std::map: nodes never move, so handles (pointers to the Series) stay valid.
  std::map<std::vector<std::string>, detail::Series, LabelsLess> series_;
};

class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family. Names are checked against Prometheus's rules (metric names
  // [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and not "__"-prefixed),
  // counters must end in "_total", names are unique: a violation is a programming
  // error and throws std::invalid_argument. A family without labels has its single
  // series from the start, so it is exposed (as 0) before its first use.
  Family& counter_family(std::string name, std::string help, std::vector<std::string> labels = {},
                         size_t max_series = kDefaultMaxSeries);
  Family& gauge_family(std::string name, std::string help, std::vector<std::string> labels = {},
                       size_t max_series = kDefaultMaxSeries);
  // Shorthands for a family without labels.
  Counter counter(std::string name, std::string help);
  Gauge gauge(std::string name, std::string help);

  // The whole registry in the text exposition format, families in registration order,
  // series sorted by label values.
  [[nodiscard]] std::string render() const;

 private:
  Family& add_family(std::string name, std::string help, MetricType type,
                     std::vector<std::string> labels, size_t max_series);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  Family* overflow_ = nullptr;
};

// The content type of render()'s output, for the HTTP response.
inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Exposition-format helpers, public for the tests.
std::string escape_label_value(std::string_view v);  // \ " and newline escaped
std::string escape_help(std::string_view v);         // \ and newline escaped
std::string format_value(double v);                  // shortest round-trip form; NaN, +Inf, -Inf

}  // namespace capscope::metrics
