/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every capscope backend shares: the maps, the in-kernel filters, the
 * --unique and --rate-limit suppression, the call-site walk that decides the
 * audit flag where cap_capable's opts argument is not available, the check
 * record, and the process lifecycle programs (exec, fork, exit) that feed the
 * user-space process cache.
 *
 * A backend (.bpf.c) only hooks cap_capable and calls cs_handle_check().
 */
#ifndef CAPSCOPE_CAPABLE_COMMON_BPF_H
#define CAPSCOPE_CAPABLE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "capscope.h"

#define PF_KTHREAD 0x00200000

char LICENSE[] SEC("license") = "GPL";

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* resized by user space before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_config);
} cfg_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Learned call sites: kernel return address -> frame advance and decision. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cs_callsite);
} callsites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct cs_unique_key);
	__type(value, struct cs_unique_val);
} unique_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct cs_rate_key);
	__type(value, struct cs_rate_val);
} rate_seen SEC(".maps");

/* Filter sets: membership means "keep". */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_MAX_FILTER_VALUES);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_MAX_FILTER_VALUES);
	__type(key, __u32);
	__type(value, __u8);
} filter_tids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_MAX_FILTER_VALUES);
	__type(key, __u32);
	__type(value, __u8);
} filter_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_MAX_FILTER_VALUES);
	__type(key, __u32);
	__type(value, __u8);
} filter_gids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_MAX_FILTER_VALUES);
	__type(key, struct cs_comm_key);
	__type(value, __u8);
} filter_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps");

/* ---- helpers ------------------------------------------------------------- */

static __always_inline void cs_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

/*
 * kernel_cap_t is u32[2] before Linux 6.3 and a u64 after; both are 8 bytes
 * and little-endian on the architectures we build for, so one 8-byte CO-RE
 * read at the relocated field offset gives the same mask on either layout.
 */
#define CS_READ_CAPSET(dst, cred, field)                                                   \
	do {                                                                               \
		(dst) = 0;                                                                 \
		bpf_core_read(&(dst), sizeof(__u64), &(cred)->field);                      \
	} while (0)

static __always_inline __u32 cs_task_mntns(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

static __always_inline __u32 cs_task_pidns_level(struct task_struct *task)
{
	return BPF_CORE_READ(task, thread_pid, level);
}

static __always_inline __u32 cs_task_pidns(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &pid->numbers[level & 31]);
	return BPF_CORE_READ(up.ns, ns.inum);
}

static __always_inline __s32 cs_syscall_nr(struct task_struct *task, __u32 *flags)
{
	struct pt_regs *regs;
	long nr;

	if (BPF_CORE_READ(task, flags) & PF_KTHREAD) {
		*flags |= CS_F_KTHREAD;
		return -1;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
		return -1;
#if defined(__TARGET_ARCH_x86)
	nr = BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
	nr = BPF_CORE_READ(regs, syscallno);
#else
	nr = -1;
#endif
	if (nr >= 0)
		*flags |= CS_F_IN_SYSCALL;
	return (__s32)nr;
}

/* The filters that need nothing but the task: cheap, applied first. */
static __always_inline bool cs_task_filters_pass(const struct cs_config *cfg, __u64 pid_tgid,
						  struct task_struct *task)
{
	__u32 ff = cfg->filter_flags;
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;

	if (tgid == cfg->self_pid)
		return false;
	if ((ff & CS_FILT_PID) && !bpf_map_lookup_elem(&filter_pids, &tgid))
		return false;
	if ((ff & CS_FILT_TID) && !bpf_map_lookup_elem(&filter_tids, &tid))
		return false;
	if (ff & CS_FILT_COMM) {
		struct cs_comm_key ck = {};

		bpf_get_current_comm(ck.comm, sizeof(ck.comm));
		if (!bpf_map_lookup_elem(&filter_comms, &ck))
			return false;
	}
	if (ff & CS_FILT_CGROUP) {
		__u64 cg = bpf_get_current_cgroup_id();

		if (!bpf_map_lookup_elem(&filter_cgroups, &cg))
			return false;
	}
	if (ff & (CS_FILT_HOST_ONLY | CS_FILT_CONTAINERS_ONLY)) {
		bool host = cs_task_pidns_level(task) == 0;

		if ((ff & CS_FILT_HOST_ONLY) && !host)
			return false;
		if ((ff & CS_FILT_CONTAINERS_ONLY) && host)
			return false;
	}
	return true;
}

static __always_inline bool cs_check_filters_pass(const struct cs_config *cfg, int cap, int ret)
{
	__u32 ff = cfg->filter_flags;

	if (ff & CS_FILT_CAPS) {
		if (cap < 0 || cap > 63 || !(cfg->cap_mask & (1ULL << cap)))
			return false;
	}
	if ((ff & CS_FILT_DENIED) && ret == 0)
		return false;
	return true;
}

static __always_inline bool cs_cred_filters_pass(const struct cs_config *cfg,
						  const struct cred *cred)
{
	__u32 ff = cfg->filter_flags;

	if (ff & CS_FILT_UID) {
		__u32 uid = BPF_CORE_READ(cred, uid.val);

		if (!bpf_map_lookup_elem(&filter_uids, &uid))
			return false;
	}
	if (ff & CS_FILT_GID) {
		__u32 gid = BPF_CORE_READ(cred, gid.val);

		if (!bpf_map_lookup_elem(&filter_gids, &gid))
			return false;
	}
	return true;
}

/*
 * The call-site walk (tracepoint backend). The tracepoint has no opts
 * argument, and taking a kernel stack with bpf_get_stack() costs about ten
 * times the whole empty program. Instead we read return addresses straight
 * off the kernel stack above our own frame: user space has learned, from
 * occasional full samples, how far apart consecutive return addresses are
 * (a frame's size is fixed at a given return address) and which function
 * decides the audit flag. Frames that only forward their caller's opts
 * (tracing plumbing, cap_capable, security_capable, ptrace_may_access, ...)
 * say PASS; the first other frame decides.
 *
 * Returns the decision, or -1 with *miss set to the unknown address.
 */
static __always_inline int cs_walk_callsites(const struct cs_config *cfg, __u64 anchor, __u64 *miss)
{
	__u64 off = cfg->walk_start;
	int i;

	for (i = 0; i < CS_MAX_WALK; i++) {
		struct cs_callsite *site;
		__u64 ip = 0;

		if (off > 4096 || bpf_probe_read_kernel(&ip, sizeof(ip), (void *)(anchor + off)))
			break;
		site = bpf_map_lookup_elem(&callsites, &ip);
		if (!site) {
			*miss = ip;
			return -1;
		}
		if (site->decision != CS_SITE_PASS)
			return site->decision;
		off += site->advance;
	}
	*miss = 0;
	return -1;
}

/* Outcome of the audit decision for one check. */
struct cs_audit {
	__u32 flags;  /* CS_F_AUDIT, CS_F_INSETID */
	__u32 source; /* enum cs_audit_source */
	bool sample;  /* take a learning sample */
	__u64 miss;
};

static __always_inline void cs_audit_from_site(struct cs_audit *a, int decision)
{
	a->source = CS_AUDIT_SRC_CALLSITE;
	if (decision == CS_SITE_NOAUDIT)
		a->flags = 0;
	else if (decision == CS_SITE_INSETID)
		a->flags = CS_F_AUDIT | CS_F_INSETID;
	else
		a->flags = CS_F_AUDIT;
}

static __always_inline void cs_decide_audit_by_walk(const struct cs_config *cfg, __u64 anchor,
						    struct cs_audit *a)
{
	int d = cs_walk_callsites(cfg, anchor, &a->miss);

	if (d > 0 && d != CS_SITE_SAMPLE) {
		cs_audit_from_site(a, d);
		return;
	}
	/* Unknown: audited until user space classifies the sample (never hide a need). */
	a->source = CS_AUDIT_SRC_UNKNOWN;
	a->flags = CS_F_AUDIT;
	cs_count(CS_CNT_WALK_MISS);
	a->sample = cfg->learn != 0;
}

/* --unique: the cheap part, before the audit flag is known. */
static __always_inline bool cs_unique_already_audited(const struct cs_unique_key *k)
{
	struct cs_unique_val *v = bpf_map_lookup_elem(&unique_seen, k);

	/*
	 * Once an audited use of the capability has been reported for this
	 * container and verdict, nothing more is news: drop without deciding
	 * the audit flag of this check (that is what makes --unique cheap).
	 */
	if (v && (v->seen & 1)) {
		__sync_fetch_and_add(&v->suppressed, 1);
		return true;
	}
	return false;
}

/* --unique: after the audit flag is known. True if this check is news. */
static __always_inline bool cs_unique_mark(const struct cs_unique_key *k, bool audit)
{
	__u64 bit = audit ? 1 : 2;
	struct cs_unique_val *v = bpf_map_lookup_elem(&unique_seen, k);
	struct cs_unique_val nv = {};

	if (v) {
		if (v->seen & bit) {
			__sync_fetch_and_add(&v->suppressed, 1);
			return false;
		}
		__sync_fetch_and_or(&v->seen, bit);
		return true;
	}
	nv.seen = bit;
	/* BPF_NOEXIST: another CPU may have raced us to the first report. */
	return bpf_map_update_elem(&unique_seen, k, &nv, BPF_NOEXIST) == 0;
}

/* --rate-limit: true if the check may be emitted; *suppressed gets the count it ends. */
static __always_inline bool cs_rate_allow(const struct cs_config *cfg, __u64 pid_tgid, int cap,
					  int ret, bool audit, __u64 now, __u64 *suppressed)
{
	struct cs_rate_key k = {
		.cap = cap,
		.denied = ret != 0,
		.audit = audit,
	};
	struct cs_rate_val *v, nv = {};

	if (cfg->rate_scope == CS_SCOPE_THREAD)
		k.scope_id = (__u32)pid_tgid;
	else if (cfg->rate_scope == CS_SCOPE_PROCESS)
		k.scope_id = pid_tgid >> 32;
	v = bpf_map_lookup_elem(&rate_seen, &k);
	if (v) {
		if (now - v->window_start_ns < cfg->rate_window_ns) {
			__sync_fetch_and_add(&v->suppressed, 1);
			return false;
		}
		*suppressed = __sync_fetch_and_and(&v->suppressed, 0);
		v->window_start_ns = now;
		return true;
	}
	nv.window_start_ns = now;
	return bpf_map_update_elem(&rate_seen, &k, &nv, BPF_NOEXIST) == 0;
}

static __always_inline void cs_fill_user_ns(struct cs_user_ns *out, struct user_namespace *ns)
{
	out->level = BPF_CORE_READ(ns, level);
	out->inum = BPF_CORE_READ(ns, ns.inum);
	out->owner_uid = BPF_CORE_READ(ns, owner.val);
	out->owner_gid = BPF_CORE_READ(ns, group.val);
}

static __always_inline void cs_fill_check(struct cs_cap_check *e, struct task_struct *task,
					  __u64 pid_tgid, const struct cred *cred,
					  struct user_namespace *target_ns, int cap, int ret,
					  __u64 now, __u32 mntns)
{
	const struct cred *real_cred = BPF_CORE_READ(task, real_cred);

	e->ktime_ns = now;
	e->cgroup_id = bpf_get_current_cgroup_id();
	CS_READ_CAPSET(e->cap_effective, cred, cap_effective);
	CS_READ_CAPSET(e->cap_permitted, cred, cap_permitted);
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(cred, uid.val);
	e->gid = BPF_CORE_READ(cred, gid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	e->mntns = mntns;
	e->pidns = cs_task_pidns(task);
	e->cap = cap;
	e->ret = ret;
	e->syscall_nr = cs_syscall_nr(task, &e->flags);
	if (cred != real_cred)
		e->flags |= CS_F_CRED_OVERRIDE;
	cs_fill_user_ns(&e->target_ns, target_ns);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* Put the check on the ring buffer, with a learning sample when asked. */
static __always_inline void cs_emit(void *ctx, struct task_struct *task, __u64 pid_tgid,
				    const struct cred *cred, struct user_namespace *target_ns,
				    int cap, int ret, __u64 now, __u32 mntns,
				    const struct cs_audit *a, __u64 suppressed, __u64 anchor)
{
	struct cs_cap_check *e;
	__u32 size = a->sample ? sizeof(struct cs_cap_check_sample) : sizeof(struct cs_cap_check);

	e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e) {
		cs_count(CS_CNT_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = CS_REC_CAP_CHECK;
	e->hdr.size = size;
	e->flags = a->flags;
	e->audit_source = a->source;
	e->suppressed = suppressed;
	e->walk_stop_ip_lo = (__u32)a->miss;
	cs_fill_check(e, task, pid_tgid, cred, target_ns, cap, ret, now, mntns);
	if (a->sample) {
		struct cs_cap_check_sample *s = (void *)e;
		long n = bpf_get_stack(ctx, s->stack, sizeof(s->stack), 0);

		e->flags |= CS_F_HAS_STACK;
		e->nstack = n > 0 ? n / sizeof(__u64) : 0;
		if (bpf_probe_read_kernel(s->raw_stack, sizeof(s->raw_stack), (void *)anchor) == 0)
			e->raw_stack_len = sizeof(s->raw_stack);
		cs_count(CS_CNT_SAMPLES);
	}
	bpf_ringbuf_submit(e, 0);
	cs_count(CS_CNT_EMITTED);
}

/*
 * One capability check, from any backend. `audit_known` is set by backends
 * that see cap_capable's opts (fexit, kprobe) with the decided flags in
 * `known_flags`; the tracepoint backend passes false and `anchor`, the kernel stack
 * pointer, for the call-site walk.
 */
static __always_inline int cs_handle_check(void *ctx, const struct cred *cred,
					   struct user_namespace *target_ns, int cap, int ret,
					   bool audit_known, __u32 known_flags, __u32 known_source,
					   __u64 anchor)
{
	__u32 zero = 0;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task = bpf_get_current_task_btf();
	struct cs_unique_key uk = {};
	struct cs_audit a = {};
	__u64 suppressed = 0, now;
	__u32 mntns = 0;
	bool unique;

	cs_count(CS_CNT_CHECKS);
	if (!cfg)
		return 0;
	if (!cs_check_filters_pass(cfg, cap, ret) || !cs_task_filters_pass(cfg, pid_tgid, task) ||
	    !cs_cred_filters_pass(cfg, cred)) {
		cs_count(CS_CNT_FILTERED);
		return 0;
	}
	mntns = cs_task_mntns(task);
	unique = cfg->filter_flags & CS_FILT_UNIQUE;
	if (unique) {
		uk.mntns = mntns;
		uk.cap = cap;
		uk.denied = ret != 0;
		if (cs_unique_already_audited(&uk)) {
			cs_count(CS_CNT_UNIQUE_SUPPRESSED);
			return 0;
		}
	}
	if (audit_known) {
		a.flags = known_flags;
		a.source = known_source;
	} else {
		cs_decide_audit_by_walk(cfg, anchor, &a);
	}
	if ((cfg->filter_flags & CS_FILT_AUDIT_ONLY) && !(a.flags & CS_F_AUDIT) &&
	    a.source != CS_AUDIT_SRC_UNKNOWN) {
		cs_count(CS_CNT_FILTERED);
		return 0;
	}
	if (unique && !cs_unique_mark(&uk, a.flags & CS_F_AUDIT)) {
		cs_count(CS_CNT_UNIQUE_SUPPRESSED);
		return 0;
	}
	now = bpf_ktime_get_ns();
	if ((cfg->filter_flags & CS_FILT_RATE) &&
	    !cs_rate_allow(cfg, pid_tgid, cap, ret, a.flags & CS_F_AUDIT, now, &suppressed)) {
		cs_count(CS_CNT_RATE_SUPPRESSED);
		return 0;
	}
	cs_emit(ctx, task, pid_tgid, cred, target_ns, cap, ret, now, mntns, &a, suppressed, anchor);
	return 0;
}

/* ---- process lifecycle ----------------------------------------------------- */

static __always_inline void cs_read_namespaces(struct cs_exec *e, struct task_struct *task)
{
	struct nsproxy *nsp = BPF_CORE_READ(task, nsproxy);

	e->ns[CS_NS_UTS] = BPF_CORE_READ(nsp, uts_ns, ns.inum);
	e->ns[CS_NS_IPC] = BPF_CORE_READ(nsp, ipc_ns, ns.inum);
	e->ns[CS_NS_MNT] = BPF_CORE_READ(nsp, mnt_ns, ns.inum);
	e->ns[CS_NS_PID] = cs_task_pidns(task);
	e->ns[CS_NS_PID_FOR_CHILDREN] = BPF_CORE_READ(nsp, pid_ns_for_children, ns.inum);
	e->ns[CS_NS_NET] = BPF_CORE_READ(nsp, net_ns, ns.inum);
	if (bpf_core_field_exists(nsp->time_ns)) {
		e->ns[CS_NS_TIME] = BPF_CORE_READ(nsp, time_ns, ns.inum);
		e->ns[CS_NS_TIME_FOR_CHILDREN] = BPF_CORE_READ(nsp, time_ns_for_children, ns.inum);
	}
	e->ns[CS_NS_CGROUP] = BPF_CORE_READ(nsp, cgroup_ns, ns.inum);
	e->ns[CS_NS_USER] = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	e->userns_level = BPF_CORE_READ(task, cred, user_ns, level);
}

static __always_inline void cs_read_exec_creds(struct cs_exec *e, struct task_struct *task)
{
	const struct cred *cred = BPF_CORE_READ(task, cred);

	e->uid = BPF_CORE_READ(cred, uid.val);
	e->gid = BPF_CORE_READ(cred, gid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	e->egid = BPF_CORE_READ(cred, egid.val);
	CS_READ_CAPSET(e->cap_effective, cred, cap_effective);
	CS_READ_CAPSET(e->cap_permitted, cred, cap_permitted);
	CS_READ_CAPSET(e->cap_inheritable, cred, cap_inheritable);
	CS_READ_CAPSET(e->cap_bounding, cred, cap_bset);
	CS_READ_CAPSET(e->cap_ambient, cred, cap_ambient);
	e->auid = BPF_CORE_READ(task, loginuid.val);
	/* atomic_flags bit 0 is PFA_NO_NEW_PRIVS */
	e->no_new_privs = BPF_CORE_READ(task, atomic_flags) & 1;
}

static __always_inline void cs_read_args(struct cs_exec *e, struct task_struct *task)
{
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	unsigned long start = BPF_CORE_READ(mm, arg_start);
	unsigned long end = BPF_CORE_READ(mm, arg_end);
	unsigned long len = end - start;

	if (end <= start)
		return;
	if (len > CS_ARGS_LEN) {
		len = CS_ARGS_LEN;
		e->args_truncated = 1;
	}
	if (bpf_probe_read_user(e->args, len, (void *)start) == 0)
		e->args_len = len;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(cs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task = bpf_get_current_task_btf();
	struct cs_exec *e;
	long n;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		cs_count(CS_CNT_PROC_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.type = CS_REC_EXEC;
	e->hdr.size = sizeof(*e);
	e->ktime_ns = bpf_ktime_get_ns();
	e->start_ns = BPF_CORE_READ(task, start_time);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	cs_read_exec_creds(e, task);
	cs_read_namespaces(e, task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n - 1 : 0;
	cs_read_args(e, task);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(cs_fork, struct task_struct *parent, struct task_struct *child)
{
	struct cs_fork *e;

	/* Threads share their process's entry in the cache. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		cs_count(CS_CNT_PROC_LOST);
		return 0;
	}
	e->hdr.type = CS_REC_FORK;
	e->hdr.size = sizeof(*e);
	e->ktime_ns = bpf_ktime_get_ns();
	e->start_ns = BPF_CORE_READ(child, start_time);
	e->pid = BPF_CORE_READ(child, tgid);
	e->ppid = BPF_CORE_READ(parent, tgid);
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cs_exit, struct task_struct *p)
{
	struct cs_exit *e;

	/* Only the last thread of the group ends the process. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		cs_count(CS_CNT_PROC_LOST);
		return 0;
	}
	e->hdr.type = CS_REC_EXIT;
	e->hdr.size = sizeof(*e);
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = BPF_CORE_READ(p, tgid);
	e->exit_code = BPF_CORE_READ(p, exit_code);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

#endif /* CAPSCOPE_CAPABLE_COMMON_BPF_H */
