#include "enrich/runtime/workload.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace capscope {

namespace {

struct Workload {
  std::string kind, name;
};

// Kubernetes' random-string alphabet (no vowels) and generateName's suffix.
constexpr std::string_view kRandomAlphabet = "bcdfghjklmnpqrstvwxz2456789";
constexpr size_t kRandomLength = 5;
constexpr size_t kMaxNameLength = 63;   // generateName cuts the base to fit this
constexpr size_t kMaxCronJobName = 52;  // room for "-<minute>" in a 63-character Job name

// A CronJob's Job names carry the scheduled minute since the epoch. CronJobs
// (then ScheduledJobs) came in 2016, so 2016-01-01 .. 2100-01-01: 8 digits,
// and no YYYYMMDD date or seconds count falls in the range.
constexpr uint64_t kFirstMinute = 24'193'440;
constexpr uint64_t kLastMinute = 68'374'080;

// pod-template-hash is a uint32 in decimal with each digit d written as the
// alphabet's character (48 + d) % 27: '0'..'9' -> "456789bcdf".
constexpr std::string_view kHashDigits = "456789bcdf";

constexpr std::string_view kKindChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

const std::string* find(const Labels& labels, std::string_view key) {
  auto it = labels.find(std::string(key));
  return it == labels.end() ? nullptr : &it->second;
}

bool all_of_set(std::string_view s, std::string_view set) {
  return std::all_of(s.begin(), s.end(), [&](char c) { return set.find(c) != set.npos; });
}

bool is_digits(std::string_view s) { return !s.empty() && all_of_set(s, "0123456789"); }

// A controller's name ends in a letter or digit (it is a DNS name).
bool plausible_name(std::string_view s) {
  if (s.empty()) return false;
  char c = s.back();
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_random_suffix(std::string_view s) {
  return s.size() == kRandomLength && all_of_set(s, kRandomAlphabet);
}

// "<base>-<5 random>" -> base. Not for names at the length cap: their base
// may have been cut.
std::optional<std::string_view> generated_base(std::string_view pod) {
  if (pod.size() >= kMaxNameLength || pod.size() < kRandomLength + 2) return std::nullopt;
  std::string_view base = pod.substr(0, pod.size() - kRandomLength - 1);
  if (pod[base.size()] != '-' || !is_random_suffix(pod.substr(base.size() + 1)))
    return std::nullopt;
  if (!plausible_name(base)) return std::nullopt;
  return base;
}

// "<cronjob>-<minute>" -> cronjob.
std::optional<std::string_view> cronjob_of(std::string_view job) {
  size_t dash = job.rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view cronjob = job.substr(0, dash), minute = job.substr(dash + 1);
  if (!plausible_name(cronjob) || cronjob.size() > kMaxCronJobName) return std::nullopt;
  if (minute.size() != 8 || !is_digits(minute)) return std::nullopt;
  uint64_t m = 0;
  std::from_chars(minute.data(), minute.data() + minute.size(), m);
  if (m < kFirstMinute || m >= kLastMinute) return std::nullopt;
  return cronjob;
}

// Could `h` be a pod-template-hash? 7 to 10 characters: a shorter one is a
// hash below 10^6 (one in 4,000), too rare to outweigh names that merely
// use these letters.
bool looks_like_template_hash(std::string_view h) {
  if (h.size() < 7 || h.size() > 10) return false;
  uint64_t v = 0;
  for (char c : h) {
    size_t d = kHashDigits.find(c);
    if (d == std::string_view::npos || (v == 0 && d == 0)) return false;  // no leading zero
    v = v * 10 + d;
  }
  return v <= UINT32_MAX;
}

Workload job_or_cronjob(std::string_view job) {
  if (auto cronjob = cronjob_of(job)) return {"CronJob", std::string(*cronjob)};
  return {"Job", std::string(job)};
}

// "<set>-<ordinal>"; a pod-index label, where present, must agree.
std::optional<Workload> statefulset(const Labels& labels, std::string_view pod) {
  size_t dash = pod.rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view set = pod.substr(0, dash), ordinal = pod.substr(dash + 1);
  if (!plausible_name(set) || !is_digits(ordinal) || (ordinal.size() > 1 && ordinal[0] == '0'))
    return std::nullopt;
  const std::string* index = find(labels, "apps.kubernetes.io/pod-index");
  if (index && *index != ordinal) return std::nullopt;
  return Workload{"StatefulSet", std::string(set)};
}

// Pod "<deployment>-<hash>-<5 random>". At the 63-character cap the base
// "<deployment>-<hash>-" may have lost its '-'; the known hash still shows
// where the Deployment's name ends.
std::optional<Workload> deployment(std::string_view pod, std::string_view hash) {
  if (pod.size() <= kRandomLength || !is_random_suffix(pod.substr(pod.size() - kRandomLength)))
    return std::nullopt;
  std::string_view rest = pod.substr(0, pod.size() - kRandomLength);
  if (!rest.empty() && rest.back() == '-')
    rest.remove_suffix(1);
  else if (pod.size() != kMaxNameLength)
    return std::nullopt;
  std::string tail = "-" + std::string(hash);
  if (hash.empty() || rest.size() <= tail.size() || !rest.ends_with(tail)) return std::nullopt;
  std::string_view name = rest.substr(0, rest.size() - tail.size());
  if (!plausible_name(name)) return std::nullopt;
  return Workload{"Deployment", std::string(name)};
}

// "Kind/name", Kind a word with a capital first letter.
std::optional<Workload> from_hint(const ContainerInfo& c) {
  const std::string* v = find(c.pod_annotations, kWorkloadHintKey);
  if (!v) v = find(c.labels, kWorkloadHintKey);
  if (!v) return std::nullopt;
  size_t slash = v->find('/');
  if (slash == std::string::npos) return std::nullopt;
  std::string kind = v->substr(0, slash), name = v->substr(slash + 1);
  bool kind_ok = !kind.empty() && kind[0] >= 'A' && kind[0] <= 'Z' && all_of_set(kind, kKindChars);
  bool name_ok = !name.empty() && name.size() <= 253 &&
                 std::all_of(name.begin(), name.end(),
                             [](char ch) { return ch > ' ' && ch < 0x7f && ch != '/'; });
  if (!kind_ok || !name_ok) return std::nullopt;
  return Workload{kind, name};
}

// Checked most specific first: a Job's or StatefulSet's pods never carry the
// DaemonSet or Deployment labels, and DaemonSets from the old extensions API
// put pod-template-hash on their pods next to pod-template-generation.
std::optional<Workload> from_labels(const ContainerInfo& c) {
  const Labels& l = c.pod_labels;
  const std::string* job = find(l, "batch.kubernetes.io/job-name");
  if (!job) job = find(l, "job-name");
  if (job && !job->empty()) return job_or_cronjob(*job);
  const std::string* set_pod = find(l, "statefulset.kubernetes.io/pod-name");
  if (set_pod && find(l, "controller-revision-hash")) return statefulset(l, *set_pod);
  if (find(l, "pod-template-generation")) {
    auto base = generated_base(c.pod_name);
    if (!base) return std::nullopt;
    return Workload{"DaemonSet", std::string(*base)};
  }
  if (const std::string* hash = find(l, "pod-template-hash")) return deployment(c.pod_name, *hash);
  return std::nullopt;
}

// The kubelet adds io.kubernetes.* labels to every pod sandbox; anything else
// means the runtime passed the pod's own labels on.
bool pod_labels_known(const Labels& labels) {
  return std::any_of(labels.begin(), labels.end(),
                     [](const auto& kv) { return !kv.first.starts_with("io.kubernetes."); });
}

std::optional<Workload> from_name(std::string_view pod) {
  auto base = generated_base(pod);
  if (!base) return std::nullopt;
  if (auto cronjob = cronjob_of(*base)) return Workload{"CronJob", std::string(*cronjob)};
  size_t dash = base->rfind('-');
  if (dash != std::string_view::npos && plausible_name(base->substr(0, dash)) &&
      looks_like_template_hash(base->substr(dash + 1)))
    return Workload{"Deployment", std::string(base->substr(0, dash))};
  return Workload{"DaemonSet|Job|ReplicaSet", std::string(*base)};
}

std::optional<std::pair<Workload, std::string>> decide(const ContainerInfo& c) {
  if (auto w = from_hint(c)) return {{*w, "owner"}};
  if (c.pod_name.empty()) return std::nullopt;  // not in a pod
  // A podman pod (no Kubernetes namespace) has no controller to find.
  if (!c.pod_namespace.empty()) {
    if (auto w = from_labels(c)) return {{*w, "labels"}};
    if (!pod_labels_known(c.pod_labels)) {
      if (auto w = from_name(c.pod_name)) return {{*w, "name"}};
    }
  }
  return {{Workload{"Pod", c.pod_name}, "pod"}};
}

}  // namespace

void derive_workload(ContainerInfo& info) {
  info.workload.clear();
  info.workload_kind.clear();
  info.workload_from.clear();
  if (auto d = decide(info)) {
    info.workload = std::move(d->first.name);
    info.workload_kind = std::move(d->first.kind);
    info.workload_from = std::move(d->second);
  }
}

}  // namespace capscope
