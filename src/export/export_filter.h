// Which events the agent exports: --export-allowlist and --export-denylist, in
// Tetragon's export filter form, so a filter written for Tetragon's capability events
// means the same here.
//
// A list is one or more JSON objects (one per line, or any white space between them), or
// a JSON array of objects. Each object is a filter: its fields are ANDed, the values
// within a field ORed. An event is exported when it matches any allow filter (or there
// is none) and no deny filter. docs/EXPORT.md lists the fields.
//
//   --export-allowlist '{"namespace":["prod"],"verdict":["denied"]}'
//   --export-denylist  '{"namespace":["","kube-system"]}
//                       {"binary_regex":["^/usr/sbin/(chronyd|sshd)$"]}'
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/process.h"

namespace capscope::exporter {

// The parent pid of a pid (0 when unknown): lets pid_set take in descendants.
using ParentPidLookup = std::function<uint32_t(uint32_t pid)>;

// What a filter is asked about one event.
struct FilterEvent {
  const EnrichedCheck& check;
  std::string_view policy_name;              // the event's policy_name field
  const ParentPidLookup* parents = nullptr;  // optional, for pid_set
};

struct Filter;  // one parsed object (export_filter.cpp)

class FilterList {
 public:
  FilterList();
  ~FilterList();
  FilterList(FilterList&&) noexcept;
  FilterList& operator=(FilterList&&) noexcept;

  // `flag` names the list in errors ("--export-allowlist"). Empty or blank text is an
  // empty list. nullopt and a one-line error naming the filter, the field and the fix.
  static std::optional<FilterList> parse(std::string_view text, std::string_view flag,
                                         std::string* error);

  [[nodiscard]] bool empty() const;
  [[nodiscard]] size_t size() const;
  // Whether any filter of the list matches.
  [[nodiscard]] bool matches(const FilterEvent& e) const;

 private:
  std::vector<Filter> filters_;
};

struct ExportFilterStats {
  uint64_t checked = 0;        // events asked about
  uint64_t matched_allow = 0;  // matched a filter of the allowlist
  uint64_t matched_deny = 0;   // matched a filter of the denylist (and were dropped)
  uint64_t dropped = 0;        // not exported: no allow filter matched, or a deny one did
};

class ExportFilter {
 public:
  ExportFilter(FilterList allow, FilterList deny)
      : allow_(std::move(allow)), deny_(std::move(deny)) {}

  // Both lists at once; nullptr and a one-line error naming the flag, filter and field.
  static std::unique_ptr<ExportFilter> parse(std::string_view allowlist, std::string_view denylist,
                                             std::string* error);

  // With it, pid_set takes in descendants of the listed pids at any depth; without it,
  // only the pids and their children. Set before the first exported() call.
  void set_parent_lookup(ParentPidLookup lookup) { parents_ = std::move(lookup); }

  // Whether the event is exported; counted. Thread-safe.
  [[nodiscard]] bool exported(const EnrichedCheck& e, std::string_view policy_name = {}) const;

  [[nodiscard]] ExportFilterStats stats() const;
  [[nodiscard]] bool active() const { return !allow_.empty() || !deny_.empty(); }

 private:
  FilterList allow_;
  FilterList deny_;
  ParentPidLookup parents_;
  mutable std::atomic<uint64_t> checked_{0};
  mutable std::atomic<uint64_t> matched_allow_{0};
  mutable std::atomic<uint64_t> matched_deny_{0};
  mutable std::atomic<uint64_t> dropped_{0};
};

}  // namespace capscope::exporter
