#include "pipeline/trace_pipeline.h"

#include <cerrno>
#include <thread>

#include "enrich/runtime/runtime_process.h"

namespace capscope::pipeline {

TracePipeline::TracePipeline(capture::EventSource& source, ProcessCache& cache,
                             output::EventWriter& writer, std::string node_name, NsInodes host_ns)
    : source_(source),
      cache_(cache),
      writer_(writer),
      node_name_(std::move(node_name)),
      host_ns_(host_ns) {}

void TracePipeline::on_check(CapCheck&& c) {
  EnrichedCheck e;
  e.wall_ns = static_cast<int64_t>(c.ktime_ns) + wall_offset_ns_;
  // Checks come in bursts from one process: reuse the last answer while the
  // cache has not changed, it was the process's current image and the check
  // is not older than that image (a check from before an exec, handed over
  // after it, belongs to the image the exec replaced).
  if (c.pid != last_.pid || cache_.generation() != last_.generation || !last_.process ||
      !last_.current || c.ktime_ns < last_.process->start_ktime_ns) {
    last_.process = cache_.lookup_at(c.pid, c.ktime_ns);
    last_.parent = last_.process ? cache_.parent_of(*last_.process) : nullptr;
    last_.pid = c.pid;
    last_.generation = cache_.generation();
    last_.current = last_.process != nullptr && last_.process == cache_.peek(c.pid);
  }
  // The cgroup of the check is the truth about the container: a process that
  // moved since the cache saw it is re-attributed (cgroup id 0: not known).
  // (Not an image an exec replaced: publishing it would make it current again.)
  if (last_.process && last_.current && c.cgroup_id != 0 &&
      last_.process->cgroup_id != c.cgroup_id) {
    last_.process = cache_.on_cgroup_change(last_.process, c.cgroup_id);
    last_.generation = cache_.generation();
  }
  e.process = last_.process;
  e.parent = last_.parent;
  if (!e.process) ++stats_.unattributed;
  e.node_name = node_name_;
  e.host_ns = host_ns_;
  e.check = std::move(c);
  name_containers(e);
  if (e.runtime_process) ++stats_.runtime_checks;
  deliver(std::move(e));
}

void TracePipeline::name_containers(EnrichedCheck& e) {
  if (!e.process) return;
  uint64_t gen = resolver_ != nullptr ? resolver_->generation() : 0;
  if (e.process != names_.process || e.parent != names_.parent ||
      gen != names_.resolver_generation) {
    names_ = {e.process, e.parent, gen, false, nullptr, nullptr};
    const ContainerRef& ref = e.process->container;
    names_.runtime_process = !ref.empty() && is_runtime_process(*e.process);
    if (resolver_ != nullptr && !ref.empty())
      names_.container = resolver_->lookup(ref.id, ref.runtime);
    if (resolver_ != nullptr && e.parent && !e.parent->container.empty()) {
      const ContainerRef& pref = e.parent->container;
      names_.parent_container =
          pref.id == ref.id ? names_.container : resolver_->lookup(pref.id, pref.runtime);
    }
    if (container_hook_ && names_.container) watch_process(e.process);
  }
  e.runtime_process = names_.runtime_process;
  e.container = names_.container;
  e.parent_container = names_.parent_container;
}

void TracePipeline::watch_process(const ProcessPtr& p) {
  if (p) watch_container(p->cgroup_id, p->container);
}

void TracePipeline::watch_container(uint64_t cgroup_id, const ContainerRef& ref) {
  if (!container_hook_ || ref.empty() || cgroup_id == 0) return;
  if (named_.contains(cgroup_id) || unnamed_.size() >= kMaxWatched) return;
  if (unnamed_.emplace(cgroup_id, ref).second && resolver_ != nullptr)
    resolver_->lookup(ref.id, ref.runtime);  // asks, off this thread
}

// The containers the resolver has named since last time go to the hook.
void TracePipeline::announce_containers() {
  if (announced_hook_ && resolver_ != nullptr)
    for (const auto& info : resolver_->take_named_from_events()) announced_hook_(*info);
  if (unnamed_.empty() || resolver_ == nullptr) return;
  uint64_t gen = resolver_->generation();
  if (gen == announced_generation_) return;
  announced_generation_ = gen;
  for (auto it = unnamed_.begin(); it != unnamed_.end();) {
    ContainerInfoPtr info = resolver_->lookup(it->second.id, it->second.runtime);
    if (!info) {
      ++it;
      continue;
    }
    if (named_.size() >= kMaxWatched) named_.clear();
    named_.insert(it->first);
    container_hook_(it->first, *info);
    it = unnamed_.erase(it);
  }
}

void TracePipeline::deliver(EnrichedCheck&& e) {
  // A policy's event is the policy's business: the container filters select trace's own.
  if (identity_.active() && e.check.policy_slot < 0) {
    const ContainerRef none;
    const ContainerRef& ref = e.process ? e.process->container : none;
    switch (identity_.decide(ref, e.container.get())) {
      case filter::Decision::Drop:
        ++stats_.not_selected;
        exclude(ref, e.check.cgroup_id);
        return;
      case filter::Decision::Wait:
        if (held_.size() >= hold_.max_held) {
          held_.pop_front();
          ++stats_.unresolved;
        }
        held_.push_back({std::move(e), std::chrono::steady_clock::now() + hold_.max_wait});
        return;
      case filter::Decision::Keep:
        break;
    }
  }
  writer_.write(e);
  ++stats_.reported;
}

// A container decided against: the kernel drops the rest of its cgroup's checks.
// Only containers: a check with no container ref may be one the cache has not
// placed yet, in a cgroup whose container is selected.
void TracePipeline::exclude(const ContainerRef& ref, uint64_t cgroup_id) {
  if (ref.empty() || cgroup_id == 0 || excluded_.contains(cgroup_id)) return;
  if (excluded_.size() >= kMaxExcluded) excluded_.clear();  // the kernel's set forgets too
  excluded_.insert(cgroup_id);
  source_.exclude_cgroup(cgroup_id);
  ++stats_.excluded_cgroups;
}

// Checks held for their container's name, in arrival order: each is decided once the
// resolver has answered, or dropped (and counted) when it waited too long.
void TracePipeline::release_held(bool final) {
  if (held_.empty() || resolver_ == nullptr) return;
  uint64_t gen = resolver_->generation();
  auto now = std::chrono::steady_clock::now();
  if (gen == held_generation_ && !final && now < held_.front().give_up) return;
  held_generation_ = gen;
  std::deque<Held> still;
  for (auto& h : held_) {
    const ContainerRef& ref = h.check.process->container;
    h.check.container = resolver_->lookup(ref.id, ref.runtime);
    auto d = identity_.decide(ref, h.check.container.get());
    if (d == filter::Decision::Keep) {
      writer_.write(h.check);
      ++stats_.reported;
    } else if (d == filter::Decision::Drop) {
      ++stats_.not_selected;
      exclude(ref, h.check.check.cgroup_id);
    } else if (final || now >= h.give_up) {
      ++stats_.unresolved;
    } else {
      still.push_back(std::move(h));
    }
  }
  held_ = std::move(still);
}

void TracePipeline::on_record(Record&& r) {
  std::visit(
      [this](auto&& rec) {
        using T = std::decay_t<decltype(rec)>;
        if constexpr (std::is_same_v<T, CapCheck>) {
          on_check(std::forward<decltype(rec)>(rec));
        } else if constexpr (std::is_same_v<T, ExecRecord>) {
          ++stats_.execs;
          cache_.on_exec(rec);
          if (container_hook_) watch_process(cache_.lookup(rec.pid));
        } else if constexpr (std::is_same_v<T, ForkRecord>) {
          ++stats_.forks;
          cache_.on_fork(rec);
        } else if constexpr (std::is_same_v<T, CgroupRecord>) {
          cache_.on_cgroup(rec);
        } else if constexpr (std::is_same_v<T, ExitRecord>) {
          ++stats_.exits;
          cache_.on_exit(rec);
          // Exited processes stay a grace period for late checks; sweep now and then.
          if (rec.ktime_ns - last_expire_ktime_ > 1'000'000'000ULL) {
            cache_.expire(rec.ktime_ns);
            last_expire_ktime_ = rec.ktime_ns;
          }
        }
      },
      std::move(r));
}

int TracePipeline::run(const std::atomic<bool>& stop, uint64_t max_events) {
  capture::RecordHandler handler = [this](Record&& r) { on_record(std::move(r)); };
  while (!stop.load(std::memory_order_relaxed) && !source_.finished()) {
    int n = source_.poll(100, handler);
    if (n < 0 && n != -EINTR) return n;
    release_held(false);
    announce_containers();
    if (n == 0) writer_.flush();
    if (max_events && stats_.reported >= max_events) break;
  }
  // Drain what the kernel already queued so nothing recorded is lost.
  bool limit_reached = max_events && stats_.reported >= max_events;
  while (!limit_reached && !source_.finished() && source_.poll(0, handler) > 0) {
  }
  // A last chance for held checks: the runtime may answer within the hold time.
  auto last_call = std::chrono::steady_clock::now() +
                   std::min<std::chrono::milliseconds>(hold_.max_wait, std::chrono::seconds(2));
  while (!held_.empty() && std::chrono::steady_clock::now() < last_call) {
    release_held(false);
    if (!held_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  release_held(true);
  writer_.flush();
  return 0;
}

}  // namespace capscope::pipeline
