#include "filter/container_filter.h"

#include <fmt/format.h>

#include <string_view>

namespace capscope::filter {

namespace {

bool matches_pod(std::string_view want, const ContainerInfo& info) {
  if (auto slash = want.find('/'); slash != std::string_view::npos)
    return info.pod_namespace == want.substr(0, slash) && info.pod_name == want.substr(slash + 1);
  return info.pod_name == want;
}

bool is_id_prefix(std::string_view want, std::string_view id) {
  return want.size() >= 3 && id.starts_with(want);
}

template <typename Pred>
bool any_of(const std::vector<std::string>& wants, Pred pred) {
  if (wants.empty()) return true;  // no such criterion: it does not restrict
  for (const auto& w : wants)
    if (pred(w)) return true;
  return false;
}

void add_part(std::string& out, std::string_view what, const std::vector<std::string>& values) {
  if (values.empty()) return;
  if (!out.empty()) out += ", ";
  out += fmt::format("{} {}", what, fmt::join(values, "|"));
}

}  // namespace

std::string ContainerSelection::describe() const {
  std::string out;
  add_part(out, "namespace", namespaces);
  add_part(out, "pod", pods);
  add_part(out, "container", containers);
  if (selector) add_part(out, "selector", {selector->str()});
  return out;
}

bool ContainerFilter::matches(const ContainerInfo& info) const {
  if (!any_of(sel_.namespaces, [&](const auto& ns) { return info.pod_namespace == ns; }))
    return false;
  if (!any_of(sel_.pods, [&](const auto& p) { return matches_pod(p, info); })) return false;
  if (!any_of(sel_.containers,
              [&](const auto& c) { return info.name == c || is_id_prefix(c, info.id); }))
    return false;
  if (sel_.selector)
    return sel_.selector->matches(info.pod_id.empty() ? info.labels : info.pod_labels);
  return true;
}

Decision ContainerFilter::decide(const ContainerRef& ref, const ContainerInfo* info) const {
  if (!sel_.any()) return Decision::Keep;
  if (ref.empty()) return Decision::Drop;  // a host process is in no container
  if (info != nullptr) return matches(*info) ? Decision::Keep : Decision::Drop;
  // Only ids are known before the runtime answers: a selection by ids alone is decided now.
  bool ids_only = sel_.namespaces.empty() && sel_.pods.empty() && !sel_.selector;
  if (ids_only && any_of(sel_.containers, [&](const auto& c) { return is_id_prefix(c, ref.id); }))
    return Decision::Keep;
  return Decision::Wait;
}

}  // namespace capscope::filter
