#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace capscope::metrics {

namespace {

bool is_name_start(char c, bool colon_ok) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}
bool is_name_char(char c, bool colon_ok) {
  return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}
bool valid_name(std::string_view n, bool colon_ok) {
  if (n.empty() || !is_name_start(n[0], colon_ok)) return false;
  return std::all_of(n.begin(), n.end(), [&](char c) { return is_name_char(c, colon_ok); });
}

[[noreturn]] void bad_label(std::string_view what, const std::string& label,
                            const std::string& family) {
  std::string msg(what);
  msg += " '";
  msg += label;
  msg += "' in ";
  msg += family;
  throw std::invalid_argument(msg);
}

void check_family_spec(const std::string& name, MetricType type,
                       const std::vector<std::string>& labels) {
  if (!valid_name(name, true)) throw std::invalid_argument("invalid metric name: " + name);
  if (type == MetricType::Counter && !name.ends_with("_total"))
    throw std::invalid_argument("counter name must end in _total: " + name);
  for (const std::string& l : labels) {
    if (!valid_name(l, false) || l.starts_with("__")) bad_label("invalid label name", l, name);
    if (std::count(labels.begin(), labels.end(), l) > 1) bad_label("duplicate label name", l, name);
  }
}

template <typename A, typename B>
bool labels_less(const A& a, const B& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](std::string_view x, std::string_view y) { return x < y; });
}

void render_sample(std::string& out, const std::string& name,
                   const std::vector<std::string>& label_names,
                   const std::vector<std::string>& label_values, const std::string& value) {
  out += name;
  if (!label_names.empty()) {
    out += '{';
    for (size_t i = 0; i < label_names.size(); ++i) {
      if (i != 0) out += ',';
      out += label_names[i];
      out += "=\"";
      out += escape_label_value(label_values[i]);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

double read_gauge(const detail::Series& s) {
  std::function<double()> fn;
  {
    std::lock_guard lock(s.fn_mutex);
    fn = s.fn;
  }
  if (!fn) return s.value.load(std::memory_order_relaxed);
  // Called outside the lock: a slow callback must not block set_function().
  try {
    return fn();
  } catch (...) {
    // A scrape must never take the agent down; NaN shows the source is broken.
    return std::nan("");
  }
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return {buf, res.ptr};
}

void Counter::advance_to(uint64_t total) const {
  if (series_ == nullptr) return;
  uint64_t cur = series_->count.load(std::memory_order_relaxed);
  while (cur < total &&
         !series_->count.compare_exchange_weak(cur, total, std::memory_order_relaxed)) {
  }
}

void Gauge::set_function(std::function<double()> fn) const {
  if (series_ == nullptr) return;
  std::lock_guard lock(series_->fn_mutex);
  series_->fn = std::move(fn);
}

double Gauge::value() const { return series_ != nullptr ? read_gauge(*series_) : 0.0; }

bool Family::LabelsLess::operator()(const std::vector<std::string>& a,
                                    const std::vector<std::string>& b) const {
  return labels_less(a, b);
}
bool Family::LabelsLess::operator()(const std::vector<std::string>& a,
                                    std::span<const std::string_view> b) const {
  return labels_less(a, b);
}
bool Family::LabelsLess::operator()(std::span<const std::string_view> a,
                                    const std::vector<std::string>& b) const {
  return labels_less(a, b);
}

Family::Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
               size_t max_series, Counter overflow)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      labels_(std::move(labels)),
      max_series_(std::max<size_t>(max_series, 1)),
      overflow_(overflow) {
  check_family_spec(name_, type_, labels_);
  if (labels_.empty()) series_.try_emplace(std::vector<std::string>{});
}

void Family::check_type(MetricType wanted) const {
  if (wanted != type_)
    throw std::invalid_argument(
        name_ + (type_ == MetricType::Counter ? " is a counter family" : " is a gauge family"));
}

detail::Series* Family::find_or_create(std::span<const std::string_view> label_values) {
  if (label_values.size() != labels_.size())
    throw std::invalid_argument(name_ + " takes " + std::to_string(labels_.size()) +
                                " label values, got " + std::to_string(label_values.size()));
  std::lock_guard lock(mutex_);
  if (auto it = series_.find(label_values); it != series_.end()) return &it->second;
  if (series_.size() < max_series_) {
    std::vector<std::string> key(label_values.begin(), label_values.end());
    return &series_.try_emplace(std::move(key)).first->second;
  }
  // Full: fold. The "_other_" series may be the one past the bound (max_series + 1 in
  // all), which keeps the bound a promise about real label sets.
  overflow_.inc();
  std::vector<std::string> other(labels_.size(), std::string(kOtherLabelValue));
  return &series_.try_emplace(std::move(other)).first->second;
}

Counter Family::counter(std::span<const std::string_view> label_values) {
  check_type(MetricType::Counter);
  return Counter(find_or_create(label_values));
}

Gauge Family::gauge(std::span<const std::string_view> label_values) {
  check_type(MetricType::Gauge);
  return Gauge(find_or_create(label_values));
}

size_t Family::series_count() const {
  std::lock_guard lock(mutex_);
  return series_.size();
}

void Family::render(std::string& out) const {
  out += "# HELP " + name_ + ' ' + escape_help(help_) + '\n';
  out += "# TYPE " + name_ + (type_ == MetricType::Counter ? " counter\n" : " gauge\n");
  // Values are read under the family lock; gauge callbacks are called after it is
  // released, so a callback that takes its own locks cannot deadlock with an increment
  // that creates a series.
  std::vector<std::pair<const std::vector<std::string>*, const detail::Series*>> rows;
  {
    std::lock_guard lock(mutex_);
    rows.reserve(series_.size());
    for (const auto& [labels, series] : series_) rows.emplace_back(&labels, &series);
  }
  for (const auto& [labels, series] : rows) {
    std::string value = type_ == MetricType::Counter
                            ? std::to_string(series->count.load(std::memory_order_relaxed))
                            : format_value(read_gauge(*series));
    render_sample(out, name_, labels_, *labels, value);
  }
}

Registry::Registry() {
  // The overflow family counts folds of every other family; it has one series per
  // family, so it is bounded by the number of families and cannot fold itself.
  overflow_ = &add_family(std::string(kOverflowFamily),
                          "Lookups of new label sets folded into the \"_other_\" series because "
                          "the family had reached its series limit.",
                          MetricType::Counter, {"family"}, SIZE_MAX);
}

Family& Registry::add_family(std::string name, std::string help, MetricType type,
                             std::vector<std::string> labels, size_t max_series) {
  std::lock_guard lock(mutex_);
  for (const auto& f : families_)
    if (f->name() == name) throw std::invalid_argument("metric family registered twice: " + name);
  Counter overflow;
  // Pre-created at 0 so an alert on its rate works before the first fold.
  if (overflow_ != nullptr && !labels.empty()) overflow = overflow_->counter({name});
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), type,
                                               std::move(labels), max_series, overflow));
  return *families_.back();
}

Family& Registry::counter_family(std::string name, std::string help,
                                 std::vector<std::string> labels, size_t max_series) {
  return add_family(std::move(name), std::move(help), MetricType::Counter, std::move(labels),
                    max_series);
}

Family& Registry::gauge_family(std::string name, std::string help, std::vector<std::string> labels,
                               size_t max_series) {
  return add_family(std::move(name), std::move(help), MetricType::Gauge, std::move(labels),
                    max_series);
}

Counter Registry::counter(std::string name, std::string help) {
  return counter_family(std::move(name), std::move(help)).counter({});
}

Gauge Registry::gauge(std::string name, std::string help) {
  return gauge_family(std::move(name), std::move(help)).gauge({});
}

std::string Registry::render() const {
  std::vector<const Family*> order;
  {
    std::lock_guard lock(mutex_);
    // The overflow family (registered first) goes last: it is about the others.
    for (size_t i = 1; i < families_.size(); ++i) order.push_back(families_[i].get());
    order.push_back(families_.front().get());
  }
  std::string out;
  for (const Family* f : order) f->render(out);
  return out;
}

}  // namespace capscope::metrics
