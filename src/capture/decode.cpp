#include "capture/decode.h"

#include <cstddef>
#include <cstring>
#include <string>

#include "capscope.h"

namespace capscope::capture {

// The contract with the BPF side: sizes are part of it.
static_assert(sizeof(cs_record_hdr) == 4);
static_assert(sizeof(cs_user_ns) == 16);
static_assert(sizeof(cs_cap_check) == 120);  // + the ring buffer's 8: two cache lines
static_assert(sizeof(cs_sample) == 8 + CS_MAX_STACK * 8 + CS_RAW_STACK_BYTES);
static_assert(sizeof(cs_cap_check_sample) == 120 + sizeof(cs_sample));
static_assert(sizeof(cs_policy_ext) == 32 && sizeof(cs_policy_check) == 152);
static_assert(sizeof(cs_policy_check_sample) == 152 + sizeof(cs_sample));
static_assert(sizeof(cs_policy_check_sample) < 65536);  // cs_record_hdr.size is 16 bits
static_assert(sizeof(cs_policy_slot) == 32 && sizeof(cs_policy_counts) == 64);
static_assert(sizeof(cs_policy_bank) ==
              8 * (11 + 64 + 2 * CS_NS_COUNT + 4) + 4 * CS_NS_COUNT + 8 + 32 * CS_POLICY_SLOTS);
static_assert(sizeof(cs_policy_bits) == 16 && sizeof(cs_path_key) == CS_PATH_LEN);
static_assert(sizeof(cs_exec) == 960);
static_assert(sizeof(cs_fork) == 56);
static_assert(sizeof(cs_exit) == 24);
static_assert(sizeof(cs_cgroup) == 24 + CS_PATH_LEN);
static_assert(sizeof(cs_config) == 64);
static_assert(sizeof(cs_callsite) == 8);
static_assert(sizeof(cs_unique_slot) == 48);
static_assert(sizeof(cs_callsite_slot) == 16);
static_assert(sizeof(cs_counters) == 8 * (CS_CNT_MAX + 4) + sizeof(cs_task_memo) +
                                         sizeof(cs_walk_memo) + sizeof(cs_agg_memo));
static_assert(sizeof(cs_agg_memo) == 64);
static_assert(sizeof(cs_walk_memo) == 10 * CS_MAX_WALK + 16);
static_assert(sizeof(cs_agg_key) == 32 && sizeof(cs_agg_slot) == 56);
static_assert(sizeof(cs_rate_key) == 16 && sizeof(cs_rate_val) == 16);

namespace {

std::string bounded_string(const char* s, size_t max) { return std::string(s, strnlen(s, max)); }

template <typename T>
std::optional<T> copy_as(std::span<const uint8_t> data) {
  if (data.size() < sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, data.data(), sizeof(T));
  return v;
}

AuditSource audit_source_of(uint32_t src) {
  switch (src) {
    case CS_AUDIT_SRC_OPTS:
      return AuditSource::Opts;
    case CS_AUDIT_SRC_AUDIT_ARG:
      return AuditSource::AuditArg;
    case CS_AUDIT_SRC_CALLSITE:
      return AuditSource::CallSite;
    case CS_AUDIT_SRC_CALLER:
      return AuditSource::Caller;
    default:
      return AuditSource::Unknown;
  }
}

DecodeResult decode_check(std::span<const uint8_t> data) {
  auto raw = copy_as<cs_cap_check>(data);
  if (!raw) return {std::nullopt, DecodeError::TooShort};
  CapCheck c;
  c.ktime_ns = raw->ktime_ns;
  c.cgroup_id = raw->cgroup_id;
  c.cap_effective = raw->cap_effective;
  c.cap_permitted = raw->cap_permitted;
  c.suppressed = raw->suppressed;
  c.pid = raw->pid;
  c.tid = raw->tid;
  c.ppid = raw->ppid;
  c.uid = raw->uid;
  c.gid = raw->gid;
  c.euid = raw->euid;
  c.mntns = raw->mntns;
  c.mntns_id = raw->mntns_id;
  c.pidns_level = raw->pidns_level;
  c.cap = raw->cap;
  c.ret = raw->ret;
  c.syscall_nr = (raw->flags & CS_F_IN_SYSCALL) ? raw->syscall_nr : -1;
  c.audit = raw->flags & CS_F_AUDIT;
  c.insetid = raw->flags & CS_F_INSETID;
  c.cred_override = raw->flags & CS_F_CRED_OVERRIDE;
  c.kthread = raw->flags & CS_F_KTHREAD;
  c.aggregated = raw->flags & CS_F_AGGREGATED;
  c.audit_source = audit_source_of(raw->audit_source);
  c.target_ns = {raw->target_ns.level, raw->target_ns.inum, raw->target_ns.owner_uid,
                 raw->target_ns.owner_gid};
  c.comm = bounded_string(raw->comm, sizeof(raw->comm));
  // The policy part, when there is one, comes before the sample.
  size_t sample_at = sizeof(cs_cap_check);
  if (raw->flags & CS_F_POLICY) {
    if (data.size() < sizeof(cs_policy_check)) return {std::nullopt, DecodeError::TooShort};
    sample_at = sizeof(cs_policy_check);
  }
  if (raw->flags & CS_F_HAS_STACK) {
    auto sample = copy_as<cs_sample>(data.subspan(sample_at));
    if (!sample) return {std::nullopt, DecodeError::TooShort};
    if (sample->nstack > CS_MAX_STACK || sample->raw_stack_len > CS_RAW_STACK_BYTES)
      return {std::nullopt, DecodeError::BadLength};
    c.stack.assign(sample->stack, sample->stack + sample->nstack);
    c.raw_stack.assign(sample->raw_stack, sample->raw_stack + sample->raw_stack_len);
  }
  return {Record{std::move(c)}, std::nullopt};
}

DecodeResult decode_exec(std::span<const uint8_t> data) {
  auto raw = copy_as<cs_exec>(data);
  if (!raw) return {std::nullopt, DecodeError::TooShort};
  if (raw->args_len > CS_ARGS_LEN || raw->filename_len > CS_PATH_LEN)
    return {std::nullopt, DecodeError::BadLength};
  ExecRecord e;
  e.ktime_ns = raw->ktime_ns;
  e.start_ns = raw->start_ns;
  e.exec_seq = raw->exec_seq;
  e.cgroup_id = raw->cgroup_id;
  e.exe_ino = raw->exe_ino;
  e.caps = {raw->cap_effective, raw->cap_permitted, raw->cap_inheritable, raw->cap_bounding,
            raw->cap_ambient};
  e.pid = raw->pid;
  e.tid = raw->tid;
  e.ppid = raw->ppid;
  e.uid = raw->uid;
  e.gid = raw->gid;
  e.euid = raw->euid;
  e.egid = raw->egid;
  e.auid = raw->auid;
  e.no_new_privs = raw->no_new_privs;
  for (size_t i = 0; i < kNsKinds; ++i) e.ns[i] = raw->ns[i];
  e.userns_level = raw->userns_level;
  e.comm = bounded_string(raw->comm, sizeof(raw->comm));
  e.filename = bounded_string(raw->filename, sizeof(raw->filename));
  e.args = split_args(std::span<const char>(raw->args, raw->args_len));
  e.args_truncated = raw->args_truncated;
  e.ns_pid = raw->ns_pid;
  return {Record{std::move(e)}, std::nullopt};
}

DecodeResult decode_fork(std::span<const uint8_t> data) {
  auto raw = copy_as<cs_fork>(data);
  if (!raw) return {std::nullopt, DecodeError::TooShort};
  ForkRecord f{raw->ktime_ns,
               raw->start_ns,
               raw->pid,
               raw->ppid,
               bounded_string(raw->comm, sizeof(raw->comm)),
               raw->exec_seq,
               raw->ns_pid};
  return {Record{std::move(f)}, std::nullopt};
}

DecodeResult decode_exit(std::span<const uint8_t> data) {
  auto raw = copy_as<cs_exit>(data);
  if (!raw) return {std::nullopt, DecodeError::TooShort};
  return {Record{ExitRecord{raw->ktime_ns, raw->pid, raw->exit_code}}, std::nullopt};
}

DecodeResult decode_cgroup(std::span<const uint8_t> data) {
  auto raw = copy_as<cs_cgroup>(data);
  if (!raw) return {std::nullopt, DecodeError::TooShort};
  if (raw->path_len > CS_PATH_LEN) return {std::nullopt, DecodeError::BadLength};
  return {Record{CgroupRecord{raw->ktime_ns, raw->id, bounded_string(raw->path, raw->path_len)}},
          std::nullopt};
}

}  // namespace

std::optional<PolicyPart> decode_policy_part(std::span<const uint8_t> data) {
  auto raw = copy_as<cs_policy_check>(data);
  if (!raw || raw->check.hdr.type != CS_REC_CAP_CHECK || !(raw->check.flags & CS_F_POLICY))
    return std::nullopt;
  const cs_policy_ext& p = raw->policy;
  return PolicyPart{p.post, p.killed, p.pending,
                    p.gen,  p.bank,   (raw->check.flags & CS_F_POLICY_ONLY) != 0};
}

std::vector<std::string> split_args(std::span<const char> bytes) {
  std::vector<std::string> args;
  size_t start = 0;
  for (size_t i = 0; i <= bytes.size(); ++i) {
    if (i == bytes.size() || bytes[i] == '\0') {
      if (i > start || (i < bytes.size())) args.emplace_back(bytes.data() + start, i - start);
      start = i + 1;
    }
  }
  while (!args.empty() && args.back().empty()) args.pop_back();
  return args;
}

static_assert(offsetof(cs_cap_check, ktime_ns) == 8 && offsetof(cs_exec, ktime_ns) == 8 &&
              offsetof(cs_fork, ktime_ns) == 8 && offsetof(cs_exit, ktime_ns) == 8 &&
              offsetof(cs_cgroup, ktime_ns) == 8);

uint64_t record_ktime(std::span<const uint8_t> data) {
  uint64_t t = 0;
  if (data.size() >= 16) std::memcpy(&t, data.data() + 8, sizeof t);
  return t;
}

DecodeResult decode_record(std::span<const uint8_t> data) {
  auto hdr = copy_as<cs_record_hdr>(data);
  if (!hdr) return {std::nullopt, DecodeError::TooShort};
  if (hdr->size > data.size()) return {std::nullopt, DecodeError::BadLength};
  switch (hdr->type) {
    case CS_REC_CAP_CHECK:
      return decode_check(data);
    case CS_REC_EXEC:
      return decode_exec(data);
    case CS_REC_FORK:
      return decode_fork(data);
    case CS_REC_EXIT:
      return decode_exit(data);
    case CS_REC_CGROUP:
      return decode_cgroup(data);
    default:
      return {std::nullopt, DecodeError::UnknownType};
  }
}

}  // namespace capscope::capture
