#include "api/event_query.h"

#include <fmt/format.h>

#include <stdexcept>

#include "enrich/cgroup_fs.h"
#include "tables/capabilities.h"

namespace capscope::api {

namespace {

// The kernel keeps this many bytes of a command name (TASK_COMM_LEN - 1).
constexpr size_t kCommBytes = 15;

template <typename Repeated>
bool within_limit(const Repeated& values, const char* field, const char* flag, std::string* error) {
  if (values.size() <= kMaxFilterValues) return true;
  *error = fmt::format(
      "{} ({}): {} values; at most {} are taken (filter on fewer, or run one more "
      "subscriber)",
      field, flag, values.size(), kMaxFilterValues);
  return false;
}

bool copy_ids(const v1::GetEventsRequest& r, filter::FilterSpec& f, std::string* error) {
  if (!within_limit(r.pids(), "pids", "--pid", error) ||
      !within_limit(r.tids(), "tids", "--tid", error) ||
      !within_limit(r.uids(), "uids", "--uid", error) ||
      !within_limit(r.gids(), "gids", "--gid", error) ||
      !within_limit(r.comms(), "comms", "--comm", error))
    return false;
  f.pids.assign(r.pids().begin(), r.pids().end());
  f.tids.assign(r.tids().begin(), r.tids().end());
  f.uids.assign(r.uids().begin(), r.uids().end());
  f.gids.assign(r.gids().begin(), r.gids().end());
  for (const auto& comm : r.comms()) f.comms.push_back(comm.substr(0, kCommBytes));
  return true;
}

bool resolve_cgroups(const v1::GetEventsRequest& r, filter::FilterSpec& f, std::string* error) {
  if (!within_limit(r.cgroups(), "cgroups", "--cgroup", error)) return false;
  CgroupFs fs;
  for (const auto& path : r.cgroups()) {
    auto id = path.empty() ? std::nullopt : fs.id_of(path);
    if (!id) {
      *error = fmt::format(
          "cgroups (--cgroup): '{}' is no cgroup v2 directory on the agent's host (give a path "
          "under /sys/fs/cgroup, or relative to it)",
          path);
      return false;
    }
    f.cgroup_ids.push_back(*id);
  }
  return true;
}

bool parse_caps(const v1::GetEventsRequest& r, filter::FilterSpec& f, std::string* error) {
  if (r.caps().empty()) return true;
  if (!within_limit(r.caps(), "caps", "--caps", error)) return false;
  uint64_t mask = 0;
  for (const auto& name : r.caps()) {
    auto cap = tables::cap_from_name(name);
    if (!cap || *cap > 63) {
      *error = fmt::format(
          "caps (--caps): unknown capability '{}' (`capscope caps` lists them; a number 0..63 "
          "also works)",
          name);
      return false;
    }
    mask |= 1ULL << *cap;
  }
  f.cap_mask = mask;
  return true;
}

bool parse_rate(const v1::GetEventsRequest& r, filter::FilterSpec& f, std::string* error) {
  if (!r.rate_limit().empty()) {
    f.rate_window_ns = filter::parse_duration_ns(r.rate_limit());
    if (!f.rate_window_ns) {
      *error = fmt::format(
          "rate_limit (--rate-limit): '{}' is not a duration (write e.g. 500ms, 30s, 1m, 1h30m)",
          r.rate_limit());
      return false;
    }
  }
  if (r.rate_limit_scope().empty()) return true;
  auto scope = filter::parse_rate_scope(r.rate_limit_scope());
  if (!scope) {
    *error =
        fmt::format("rate_limit_scope (--rate-limit-scope): '{}': use thread, process or global",
                    r.rate_limit_scope());
    return false;
  }
  f.rate_scope = *scope;
  return true;
}

bool parse_selection(const v1::GetEventsRequest& r, filter::ContainerSelection& sel,
                     std::string* error) {
  if (!within_limit(r.namespaces(), "namespaces", "--namespace", error) ||
      !within_limit(r.pods(), "pods", "--pod", error) ||
      !within_limit(r.containers(), "containers", "--container", error))
    return false;
  sel.namespaces.assign(r.namespaces().begin(), r.namespaces().end());
  sel.pods.assign(r.pods().begin(), r.pods().end());
  sel.containers.assign(r.containers().begin(), r.containers().end());
  if (r.selector().empty()) return true;
  try {
    sel.selector = LabelSelector::parse(r.selector());
  } catch (const std::invalid_argument& e) {
    *error = fmt::format("selector (--selector): {}", e.what());
    return false;
  }
  return true;
}

bool parse_format(v1::EventFormat format, std::string& out, std::string* error) {
  switch (format) {
    case v1::EVENT_FORMAT_UNSPECIFIED:
    case v1::EVENT_FORMAT_JSON:
      out = "json";
      return true;
    case v1::EVENT_FORMAT_COMPACT:
      out = "compact";
      return true;
    default:
      *error = fmt::format("format (-o): {} is no event format of API v1 (use JSON or COMPACT)",
                           static_cast<int>(format));
      return false;
  }
}

// The flags that cannot hold together, as trace says it.
bool check_scope(const v1::GetEventsRequest& r, bool by_identity, std::string* error) {
  if (!r.host_only()) return true;
  if (r.containers_only()) {
    *error = "host_only and containers_only (--host, --containers) exclude each other: choose one";
    return false;
  }
  if (by_identity) {
    *error =
        "host_only (--host) selects host processes, which are in no pod or container: drop it "
        "or the container filters";
    return false;
  }
  return true;
}

}  // namespace

std::optional<EventQuery> to_event_query(const v1::GetEventsRequest& request, std::string* error) {
  EventQuery q;
  filter::FilterSpec& f = q.spec;
  if (!copy_ids(request, f, error) || !parse_caps(request, f, error) ||
      !parse_rate(request, f, error) || !parse_selection(request, q.selection, error) ||
      !parse_format(request.format(), q.format, error) ||
      !check_scope(request, q.selection.any(), error) || !resolve_cgroups(request, f, error))
    return std::nullopt;
  f.denied_only = request.denied_only();
  f.audit_only = request.audit_only();
  f.host_only = request.host_only();
  // Only container processes can match an identity filter, as in trace. The
  // agent's capture serves every subscriber, so nothing is excluded in the kernel.
  f.containers_only = request.containers_only() || q.selection.any();
  f.exclude_unselected = false;
  f.unique = request.unique();
  return q;
}

}  // namespace capscope::api
