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
#define PF_EXITING 0x00000004

char LICENSE[] SEC("license") = "GPL";

/*
 * Reads. tp_btf and fexit programs get their arguments as BTF pointers and
 * may load through them directly (the verifier makes each load fault-safe),
 * which costs a plain load instead of a bpf_probe_read_kernel() call; the
 * kprobe backend defines CS_UNTRUSTED_ARGS and reads through helpers.
 * Both are CO-RE: vmlinux.h marks every struct preserve_access_index.
 */
#ifdef CS_UNTRUSTED_ARGS
#define CS_READ(...) BPF_CORE_READ(__VA_ARGS__)
#else
#define CS_READ(...) (___arrow(__VA_ARGS__))
#endif

/* kernel_cap_t before Linux 6.3, which turned its u32[2] into one u64. */
struct kernel_cap_struct___pre63 {
	__u32 cap[2];
} __attribute__((preserve_access_index));

struct cred___pre63 {
	struct kernel_cap_struct___pre63 cap_inheritable;
	struct kernel_cap_struct___pre63 cap_permitted;
	struct kernel_cap_struct___pre63 cap_effective;
	struct kernel_cap_struct___pre63 cap_bset;
	struct kernel_cap_struct___pre63 cap_ambient;
} __attribute__((preserve_access_index));

/* A capability set of `cred` as a 64-bit mask, in either layout of kernel_cap_t. */
#define CS_CAPSET(cred, field)                                                             \
	({                                                                                 \
		__u64 __set;                                                               \
		if (bpf_core_field_exists((cred)->field.val)) {                            \
			__set = CS_READ(cred, field.val);                                  \
		} else {                                                                   \
			const struct cred___pre63 *__old = (const void *)(cred);           \
			__set = CS_READ(__old, field.cap[0]) |                             \
				((__u64)CS_READ(__old, field.cap[1]) << 32);               \
		}                                                                          \
		__set;                                                                     \
	})

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* resized by user space before load */
} events SEC(".maps");

/* Check lanes (struct cs_lane_pos): both resized by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_lane_slot);
} lanes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_lane_pos);
} lane_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_reader_state);
} reader_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_config);
} cfg_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cs_counters);
} counters SEC(".maps");

/* Learned call sites: kernel return address -> frame advance and decision. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cs_callsite);
} callsites SEC(".maps");

/* The same entries, direct-mapped (see struct cs_callsite_slot). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CS_CALLSITE_SLOTS);
	__type(key, __u32);
	__type(value, struct cs_callsite_slot);
} callsite_cache SEC(".maps");

/* --unique: direct-mapped slots by mount namespace, and the overflow. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CS_UNIQUE_SLOTS);
	__type(key, __u32);
	__type(value, struct cs_unique_slot);
} unique_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct cs_unique_slot);
} unique_more SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct cs_rate_key);
	__type(value, struct cs_rate_val);
} rate_seen SEC(".maps");

/* Filter sets: membership means "keep". */
#define CS_FILTER_SET(name, key_type, entries)                                             \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_HASH);                                           \
		__uint(max_entries, entries);                                              \
		__type(key, key_type);                                                     \
		__type(value, __u8);                                                       \
	} name SEC(".maps")

CS_FILTER_SET(filter_pids, __u32, CS_MAX_FILTER_VALUES);
CS_FILTER_SET(filter_tids, __u32, CS_MAX_FILTER_VALUES);
CS_FILTER_SET(filter_uids, __u32, CS_MAX_FILTER_VALUES);
CS_FILTER_SET(filter_gids, __u32, CS_MAX_FILTER_VALUES);
CS_FILTER_SET(filter_comms, struct cs_comm_key, CS_MAX_FILTER_VALUES);
CS_FILTER_SET(filter_cgroups, __u64, 4096);
/*
 * Identity filters (--pod, --selector, ...): the cgroups of containers user space has
 * decided are not selected. Only user space can decide (it asks the runtime), so a
 * cgroup not in the set passes; an LRU map, so a full set forgets the oldest decision
 * (those checks then reach user space again and are dropped there), never a selection.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} unselected_cgroups SEC(".maps");
/* record --pid: the process and every descendant forked since (cs_fork adds them). */
CS_FILTER_SET(follow_pids, __u32, 65536);

/* ---- helpers ------------------------------------------------------------- */

static __always_inline struct cs_counters *cs_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

/* Per-CPU counters: no atomics needed, a program does not migrate mid-run. */
static __always_inline void cs_count(struct cs_counters *cnt, __u32 idx)
{
	if (cnt && idx < CS_CNT_MAX)
		cnt->v[idx] += 1;
}

/*
 * The tick clock, of record and of --rate-limit windows (not of events, which
 * read bpf_ktime_get_ns()). bpf_ktime_get_ns() costs more than all the rest of
 * a cached count on a virtual machine (its TSC read is ordered); jiffies are a
 * plain load. The time of the first use in each jiffy on a CPU stands
 * for every later one in that jiffy, so times are CLOCK_MONOTONIC, up to one
 * tick (1-10 ms) early, and bpf_ktime_get_ns() runs at most HZ times a second
 * per CPU.
 */
static __always_inline __u64 cs_tick_now(struct cs_counters *cnt)
{
	__u64 j = bpf_jiffies64();

	if (!cnt)
		return bpf_ktime_get_ns();
	if (cnt->tick_jiffies != j || !cnt->tick_ns) {
		/*
		 * The time first: a preemptible (fexit) run cut off between the two
		 * stores leaves the old jiffy, which the next run replaces, never
		 * the new jiffy with an old time.
		 */
		cnt->tick_ns = bpf_ktime_get_ns();
		cnt->tick_jiffies = j;
	}
	return cnt->tick_ns;
}

/* bpf_get_current_pid_tgid() without the helper call where task is a BTF pointer. */
static __always_inline __u64 cs_task_pid_tgid(struct task_struct *task)
{
#ifdef CS_UNTRUSTED_ARGS
	return bpf_get_current_pid_tgid();
#else
	return ((__u64)task->tgid << 32) | (__u32)task->pid;
#endif
}

static __always_inline __u32 cs_task_mntns(struct task_struct *task)
{
	return CS_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* Linux before 6.18 numbered mount namespaces in their own `seq`, not in ns_common. */
struct mnt_namespace___seq {
	__u64 seq;
} __attribute__((preserve_access_index));

/*
 * The boot-unique id of the task's mount namespace (0 where the kernel has
 * neither field): inode numbers are reused, these ids never are.
 */
static __always_inline __u64 cs_task_mntns_id(struct task_struct *task)
{
	struct mnt_namespace *ns = CS_READ(task, nsproxy, mnt_ns);
	struct mnt_namespace___seq *old = (void *)ns;

	if (bpf_core_field_exists(ns->ns.ns_id))
		return CS_READ(ns, ns.ns_id);
	if (bpf_core_field_exists(old->seq))
		return CS_READ(old, seq);
	return 0;
}

static __always_inline __u32 cs_task_pidns_level(struct task_struct *task)
{
	return CS_READ(task, thread_pid, level);
}

/*
 * bpf_get_current_cgroup_id() and bpf_get_current_comm() are helper calls;
 * with BTF pointers the same fields are a few plain loads.
 */
static __always_inline __u64 cs_task_cgroup_id(struct task_struct *task)
{
#ifdef CS_UNTRUSTED_ARGS
	return bpf_get_current_cgroup_id();
#else
	return task->cgroups->dfl_cgrp->kn->id;
#endif
}

static __always_inline void cs_task_comm(struct task_struct *task, char *comm)
{
#ifdef CS_UNTRUSTED_ARGS
	bpf_get_current_comm(comm, CS_COMM_LEN);
#else
	__u64 *dst = (__u64 *)comm;
	const __u64 *src = (const __u64 *)task->comm;

	dst[0] = src[0];
	dst[1] = src[1];
#endif
}

/* The pid namespace the task lives in: numbers[level] of its struct pid. */
static __always_inline __u32 cs_task_pidns(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	__u32 level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &pid->numbers[level & 31]);
	return BPF_CORE_READ(up.ns, ns.inum);
}

/*
 * A check made with credentials not the task's own (an override: overlayfs's
 * copy-up as its mounter, a kernel thread acting for someone).
 */
static __always_inline bool cs_cred_borrowed(struct task_struct *task, const struct cred *cred)
{
	return (__u64)cred != (__u64)CS_READ(task, real_cred);
}

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

/*
 * Set by the loader before load: plain loads through bpf_rdonly_cast(ptr, 0)
 * (untrusted read-only memory, fault-safe; recent kernels) for the call-site
 * walk's stack words and the saved registers, else helpers. The loader tries
 * the first and falls back when the verifier refuses it.
 */
const volatile bool cs_walk_direct = false;

/*
 * Defined to 1 by the tracepoint backend before it includes this file. Only
 * its program reads the saved registers with a plain load and keeps the
 * per-CPU memo of the checking task (cs_current_task, cs_exit_gen): the
 * fentry and kprobe programs keep the helper calls, which every kernel they
 * load on verifies (6.1's verifier refuses the offset's pointer arithmetic
 * below even where the branch is never taken at run time).
 */
#ifndef CS_BACKEND_TRACEPOINT
#define CS_BACKEND_TRACEPOINT 0
#endif

/*
 * Where a task's saved user registers lie above its stack page:
 * bpf_task_pt_regs(task) - task->stack, the same for every task of a kernel
 * (THREAD_SIZE less the registers, on x86-64 and arm64). Learnt from the
 * helper's first answer; then the registers are a plain load away without
 * the helper call, which costs more than the load on kernels that send every
 * return through a mitigation thunk (AMD's Safe RET: about 20 ns a check).
 */
__u64 cs_pt_regs_offset = 0;

#if defined(__TARGET_ARCH_x86)
#define CS_SYSCALL_NR_FIELD orig_ax
#elif defined(__TARGET_ARCH_arm64)
#define CS_SYSCALL_NR_FIELD syscallno
#endif

#ifdef CS_SYSCALL_NR_FIELD
/* The saved registers' syscall number with one plain load, once the offset is known. */
static __always_inline bool cs_syscall_nr_direct(struct task_struct *task, long *nr)
{
	__u64 stack, off;
	const __u64 *words;

	if (!CS_BACKEND_TRACEPOINT || !cs_walk_direct)
		return false;
	off = *(volatile __u64 *)&cs_pt_regs_offset;
	stack = (__u64)CS_READ(task, stack);
	if (!off || !stack)
		return false;
	words = bpf_rdonly_cast((void *)(stack + off), 0);
	*nr = (long)words[bpf_core_field_offset(struct pt_regs, CS_SYSCALL_NR_FIELD) / 8];
	return true;
}

/* Through the helper; where the plain load is allowed, learns its offset. */
static __always_inline long cs_syscall_nr_helper(struct task_struct *task)
{
	/*
	 * With direct loads the tracepoint's task is untrusted (cs_current_task) and
	 * the helper wants current itself; without them task is the helper's own answer.
	 */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(
		CS_BACKEND_TRACEPOINT && cs_walk_direct ? bpf_get_current_task_btf() : task);
	__u64 stack;

	if (!regs)
		return -1;
	if (CS_BACKEND_TRACEPOINT && cs_walk_direct) {
		stack = (__u64)CS_READ(task, stack);
		if (stack && (__u64)regs > stack)
			cs_pt_regs_offset = (__u64)regs - stack;
	}
	return CS_READ(regs, CS_SYSCALL_NR_FIELD);
}
#endif

/* The syscall the task is in, from its saved user registers. */
static __always_inline __s32 cs_syscall_nr(struct task_struct *task, __u16 *flags)
{
	long nr = -1;

	if (CS_READ(task, flags) & PF_KTHREAD) {
		*flags |= CS_F_KTHREAD;
		return -1;
	}
#ifdef CS_SYSCALL_NR_FIELD
	if (!cs_syscall_nr_direct(task, &nr))
		nr = cs_syscall_nr_helper(task);
#endif
	if (nr >= 0)
		*flags |= CS_F_IN_SYSCALL;
	return (__s32)nr;
}

#define CS_STACK_ALIGN 16384ULL /* the smallest THREAD_SIZE of the kernels capscope runs on */

#if CS_BACKEND_TRACEPOINT
/* Bumped by every task's exit (cs_exit): a task memo taken before it may be stale. */
__u64 cs_exit_gen = 0;
/* Bumped by every cgroup migration (cs_cgroup_attach): record's memo taken before may be stale. */
__u64 cs_cgroup_gen = 0;
#endif

/*
 * The checking task. bpf_get_current_task_btf() is a helper call, and on a
 * kernel that sends every return through a mitigation thunk (AMD's Safe RET)
 * a call costs more than the rest of a --unique check. The tracepoint
 * backend keeps its last answer per CPU with the base of that task's kernel
 * stack: while ctx (on the checking task's stack) lies in that stack, the
 * task is the same one, for a stack belongs to one live task and is freed
 * only after its task passed sched_process_exit, which bumps cs_exit_gen. A
 * task already exiting (PF_EXITING, set before that tracepoint) is not kept,
 * nor is any before cs_exit first ran (the two programs attach one by one).
 * Checks on an interrupt stack miss and take the helper.
 *
 * Both ways the pointer comes back untrusted (bpf_rdonly_cast), one type for
 * the verifier: it is only read through, as tracing programs' loads are.
 */
static __always_inline struct task_struct *cs_current_task(void *ctx, struct cs_counters *cnt)
{
#if CS_BACKEND_TRACEPOINT
	__u32 task_id = bpf_core_type_id_kernel(struct task_struct);
	struct task_struct *task;
	struct cs_task_memo *m;
	__u64 gen, anchor;

	if (!cs_walk_direct || !cnt)
		return bpf_get_current_task_btf();
	m = &cnt->task_memo;
	gen = *(volatile __u64 *)&cs_exit_gen;
	/* ctx as a number (the verifier allows no arithmetic on it): via the map value. */
	*(volatile __u64 *)&m->anchor = (__u64)ctx;
	anchor = *(volatile __u64 *)&m->anchor;
	if (m->gen == gen && m->task && anchor - m->stack < CS_STACK_ALIGN)
		return bpf_rdonly_cast((void *)m->task, task_id);
	task = bpf_get_current_task_btf();
	/* gen 0: cs_exit has not run yet, so it may not be attached yet either. */
	if (gen && !(task->flags & PF_EXITING)) {
		m->task = (__u64)task;
		m->stack = (__u64)task->stack;
		m->gen = gen;
	}
	return bpf_rdonly_cast(task, task_id);
#else
	return bpf_get_current_task_btf();
#endif
}

/*
 * --cgroup and record's subject: whether the task's cgroup is in the set. A
 * CPU running one workload asks about the same cgroup again and again, so the
 * last answer is kept (cs_counters.cgroup_memo) and the hash lookup skipped.
 */
static __always_inline bool cs_cgroup_filter_pass(struct cs_counters *cnt, __u64 cg)
{
	__u64 memo;
	bool pass;

	if (cnt) {
		memo = *(volatile __u64 *)&cnt->cgroup_memo;
		if (memo >> 1 == cg)
			return memo & 1;
	}
	pass = bpf_map_lookup_elem(&filter_cgroups, &cg) != NULL;
	if (cnt)
		*(volatile __u64 *)&cnt->cgroup_memo = (cg << 1) | pass;
	return pass;
}

/* The filters that need nothing but the task. */
static __always_inline bool cs_task_filters_pass(const struct cs_config *cfg,
						  struct cs_counters *cnt, __u64 pid_tgid,
						  struct task_struct *task, __u64 cgid)
{
	__u32 ff = cfg->filter_flags;
	__u32 tgid = pid_tgid >> 32, tid = (__u32)pid_tgid;

	if ((ff & CS_FILT_PID) && !bpf_map_lookup_elem(&filter_pids, &tgid))
		return false;
	if ((ff & CS_FILT_TID) && !bpf_map_lookup_elem(&filter_tids, &tid))
		return false;
	if ((ff & CS_FILT_FOLLOW) && !bpf_map_lookup_elem(&follow_pids, &tgid))
		return false;
	if (ff & CS_FILT_COMM) {
		struct cs_comm_key ck = {};

		bpf_get_current_comm(ck.comm, sizeof(ck.comm));
		if (!bpf_map_lookup_elem(&filter_comms, &ck))
			return false;
	}
	if ((ff & CS_FILT_CGROUP) && !cs_cgroup_filter_pass(cnt, cgid))
		return false;
	if (ff & (CS_FILT_HOST_ONLY | CS_FILT_CONTAINERS_ONLY)) {
		bool host = cs_task_pidns_level(task) == 0;

		if ((ff & CS_FILT_HOST_ONLY) && !host)
			return false;
		if ((ff & CS_FILT_CONTAINERS_ONLY) && host)
			return false;
	}
	if ((ff & CS_FILT_UNSELECTED) && bpf_map_lookup_elem(&unselected_cgroups, &cgid))
		return false;
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
		__u32 uid = CS_READ(cred, uid.val);

		if (!bpf_map_lookup_elem(&filter_uids, &uid))
			return false;
	}
	if (ff & CS_FILT_GID) {
		__u32 gid = CS_READ(cred, gid.val);

		if (!bpf_map_lookup_elem(&filter_gids, &gid))
			return false;
	}
	return true;
}

#define CS_FILT_CHECK_TESTS                                                                \
	(CS_FILT_PID | CS_FILT_TID | CS_FILT_UID | CS_FILT_GID | CS_FILT_COMM | CS_FILT_CGROUP |  \
	 CS_FILT_CAPS | CS_FILT_DENIED | CS_FILT_HOST_ONLY | CS_FILT_CONTAINERS_ONLY |            \
	 CS_FILT_FOLLOW | CS_FILT_UNSELECTED)

static __always_inline bool cs_filters_pass(const struct cs_config *cfg, struct cs_counters *cnt,
					    __u64 pid_tgid, struct task_struct *task, __u64 cgid,
					    const struct cred *cred, int cap, int ret)
{
	/* --unique, --rate-limit, --audit-only and record are not tested here. */
	if (!(cfg->filter_flags & CS_FILT_CHECK_TESTS))
		return true;
	return cs_check_filters_pass(cfg, cap, ret) &&
	       cs_task_filters_pass(cfg, cnt, pid_tgid, task, cgid) &&
	       cs_cred_filters_pass(cfg, cred);
}

/* A learned call site: the direct-mapped cache first, the hash map behind it. */
static __always_inline struct cs_callsite *cs_callsite_lookup(__u64 ip)
{
	__u32 idx = cs_callsite_slot_of(ip);
	struct cs_callsite_slot *slot = bpf_map_lookup_elem(&callsite_cache, &idx);

	if (slot && slot->ip == ip)
		return &slot->site;
	return bpf_map_lookup_elem(&callsites, &ip);
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
/* cs_walk_direct (above): the stack words with plain loads, else one bpf_probe_read_kernel() each. */

/*
 * The address `ctx` points to, as a plain number: copying the pointer
 * through memory hides it from the verifier, which forbids arithmetic on a
 * context pointer. Done only when the walk reads through helpers, or for a
 * sample.
 */
static __always_inline __u64 cs_stack_anchor(void *ctx)
{
	__u64 anchor = 0;

	bpf_probe_read_kernel(&anchor, sizeof(anchor), &ctx);
	return anchor;
}

#if CS_BACKEND_TRACEPOINT
/*
 * The walk's shortcut. A task checking in a loop walks the same frames again
 * and again; each CPU keeps its last decided walk (cs_walk_memo). When the
 * stack holds the same return addresses at the same offsets, under the same
 * walk_start and call-site generation, the walk would read the same entries
 * and so decide the same: its decision is taken as it is. Its comparisons are
 * independent loads from one memo, where the walk is a chain of dependent ones
 * (each offset comes from the previous frame's entry, in a 64 KiB cache).
 * Returns the decision, or -1 when the stack is not the memo's.
 */
static __always_inline int cs_walk_repeat(const struct cs_walk_memo *m, __u32 walk_start,
					  __u32 gen, const __u64 *stk)
{
	__u32 frames = m->frames;
	int i;

	if (!frames || m->walk_start != walk_start || m->callsite_gen != gen)
		return -1;
	for (i = 0; i < CS_MAX_WALK && i < frames; i++) {
		__u64 off = m->off[i];

		if (off > 4096 || stk[off / 8] != m->ip[i])
			return -1;
	}
	return m->decision;
}

/*
 * Keeps a walk that decided, frames [0, n), for cs_walk_repeat, under the
 * walk_start and generation read when it began (user space may change both
 * meanwhile: the memo is then of an older generation, never a newer one).
 */
static __always_inline void cs_walk_keep(struct cs_walk_memo *m, __u32 walk_start, __u32 gen,
					 int n, int decision)
{
	m->decision = decision;
	m->walk_start = walk_start;
	m->callsite_gen = gen;
	m->frames = n;
}
#endif

static __always_inline int cs_walk_callsites(const struct cs_config *cfg, struct cs_counters *cnt,
					     void *ctx, __u64 *miss)
{
	__u32 walk_start = *(volatile const __u32 *)&cfg->walk_start;
	__u64 off = walk_start;
#if CS_BACKEND_TRACEPOINT
	__u32 gen = *(volatile const __u32 *)&cfg->callsite_gen;
	struct cs_walk_memo *m = NULL;
#endif
	__u64 anchor = 0;
	__u64 *stk = NULL;
	int i, d;

	*miss = 0;
	/* The cast takes ctx as it is (its argument's type is ignored): no helper call. */
	if (cs_walk_direct)
		stk = bpf_rdonly_cast(ctx, 0);
	else
		anchor = cs_stack_anchor(ctx);
#if CS_BACKEND_TRACEPOINT
	if (cs_walk_direct && cnt) {
		m = &cnt->walk_memo;
		d = cs_walk_repeat(m, walk_start, gen, stk);
		if (d > 0)
			return d;
		m->frames = 0;
	}
#endif
	for (i = 0; i < CS_MAX_WALK; i++) {
		struct cs_callsite *site;
		__u64 ip = 0;

		if (off > 4096)
			break;
		if (cs_walk_direct)
			ip = stk[off / 8];
		else if (bpf_probe_read_kernel(&ip, sizeof(ip), (void *)(anchor + off)))
			break;
		site = cs_callsite_lookup(ip);
		if (!site) {
			*miss = ip;
			return -1;
		}
		d = site->decision;
#if CS_BACKEND_TRACEPOINT
		if (m) {
			m->ip[i] = ip;
			m->off[i] = off;
			if (d != CS_SITE_PASS && d != CS_SITE_SAMPLE)
				cs_walk_keep(m, walk_start, gen, i + 1, d);
		}
#endif
		if (d != CS_SITE_PASS)
			return d;
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
	__u64 miss;   /* the return address the walk did not know */
	__u64 anchor; /* where the walk started, for the sample */
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

/*
 * fexit and kprobe: the audit flag from cap_capable's fourth argument, an
 * opts bitmask (Linux 5.1+) or, where the kernel BTF names it `audit`, the
 * older int (SECURITY_CAP_AUDIT == 1). User space tells which in opts_kind.
 */
static __always_inline struct cs_audit cs_audit_from_opts(__u32 opts)
{
	__u32 zero = 0;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);
	struct cs_audit a = {};

	if (cfg && cfg->opts_kind == 1) {
		a.source = CS_AUDIT_SRC_AUDIT_ARG;
		a.flags = opts ? CS_F_AUDIT : 0;
		return a;
	}
	a.source = CS_AUDIT_SRC_OPTS;
	a.flags = ((opts & CS_OPTS_NOAUDIT) ? 0 : CS_F_AUDIT) |
		  ((opts & CS_OPTS_INSETID) ? CS_F_INSETID : 0);
	return a;
}

static __always_inline void cs_decide_audit_by_walk(const struct cs_config *cfg,
						    struct cs_counters *cnt, void *ctx,
						    struct cs_audit *a)
{
	int d = cs_walk_callsites(cfg, cnt, ctx, &a->miss);

	if (d > 0 && d != CS_SITE_SAMPLE) {
		cs_audit_from_site(a, d);
		return;
	}
	/* Unknown: audited until user space classifies the sample (never hide a need). */
	a->source = CS_AUDIT_SRC_UNKNOWN;
	a->flags = CS_F_AUDIT;
	cs_count(cnt, CS_CNT_WALK_MISS);
	a->sample = cfg->learn != 0;
	a->anchor = cs_stack_anchor(ctx);
}

/* --unique: the state of a mount namespace, created on first use. */

/*
 * A slot whose inode number now belongs to a new namespace starts over. The
 * bits are cleared before the id is swapped: a CPU racing here may clear a
 * bit another just set, which reports that capability twice, never zero times.
 */
static __always_inline struct cs_unique_slot *cs_unique_current(struct cs_unique_slot *s,
								 __u64 ns_id)
{
	__u64 old = s->ns_id;

	if (old == ns_id)
		return s;
	s->seen[0] = 0;
	s->seen[1] = 0;
	s->seen[2] = 0;
	s->seen[3] = 0;
	__sync_val_compare_and_swap(&s->ns_id, old, ns_id);
	return s;
}

/* The overflow of cs_unique_slot(): a namespace whose array slot another one holds. */
static __noinline struct cs_unique_slot *cs_unique_overflow(__u32 mntns, __u64 ns_id)
{
	struct cs_unique_slot fresh = {.mntns = mntns, .ns_id = ns_id};
	struct cs_unique_slot *s = bpf_map_lookup_elem(&unique_more, &mntns);

	if (s)
		return cs_unique_current(s, ns_id);
	bpf_map_update_elem(&unique_more, &mntns, &fresh, BPF_NOEXIST);
	s = bpf_map_lookup_elem(&unique_more, &mntns);
	return s ? cs_unique_current(s, ns_id) : NULL;
}

static __always_inline struct cs_unique_slot *cs_unique_slot(__u32 mntns, __u64 ns_id)
{
	__u32 idx = cs_unique_slot_of(mntns);
	struct cs_unique_slot *s = bpf_map_lookup_elem(&unique_cache, &idx);

	if (!s)
		return NULL;
	if (s->mntns == mntns)
		return cs_unique_current(s, ns_id);
	/* A free slot is claimed once; whoever loses the race re-reads it. */
	if (s->mntns == 0 && __sync_val_compare_and_swap(&s->mntns, 0, mntns) == 0)
		return cs_unique_current(s, ns_id);
	if (s->mntns == mntns)
		return cs_unique_current(s, ns_id);
	return cs_unique_overflow(mntns, ns_id);
}

/*
 * --unique, before the audit flag is known: once an audited use of the
 * capability has been reported for this container and verdict, nothing
 * more is news. Dropping here, before the call-site walk, is what makes
 * --unique cheap.
 */
static __always_inline bool cs_unique_already_audited(const struct cs_unique_slot *s, int cap,
						      int ret)
{
	__u32 row = ret != 0 ? 2 : 0;

	/* Keeps the mask in the program: 6.1's verifier cannot bound row without it. */
	barrier_var(row);
	return (s->seen[row & 3] >> (cap & 63)) & 1;
}

/* --unique, once the audit flag is known: true if this check is news (exactly once). */
static __always_inline bool cs_unique_mark(struct cs_unique_slot *s, int cap, int ret, bool audit)
{
	__u32 row = (ret != 0 ? 2 : 0) + (audit ? 0 : 1);
	__u64 bit = 1ULL << (cap & 63);

	barrier_var(row);
	row &= 3;
	if (s->seen[row] & bit)
		return false;
	return !(__sync_fetch_and_or(&s->seen[row], bit) & bit);
}

/*
 * --rate-limit: true if the check may be emitted; *suppressed gets the count it ends.
 *
 * Windows of a second or more are timed with record's tick clock
 * (cs_tick_now): a check the window drops then costs no bpf_ktime_get_ns()
 * (about 50 ns here), and a window is at most one tick (1-10 ms, under 1% of
 * it) off. Each CPU's tick time is up to a tick early, so a window another CPU
 * opened may seem to start after `now`: the signed compare counts that as
 * inside it. Shorter windows keep the precise clock.
 */
#define CS_RATE_TICK_MIN_NS 1000000000ULL

/*
 * One window of `window` ns per key; `policy` 0 is --rate-limit's, else a slot's
 * tag. *suppressed (if not NULL) gets the count of the window that ends.
 */
static __always_inline bool cs_rate_allow_key(struct cs_counters *cnt, __u64 window, __u32 scope,
					      __u64 pid_tgid, int cap, int ret, bool audit,
					      __u16 policy, __u64 *suppressed)
{
	__u64 now = window >= CS_RATE_TICK_MIN_NS ? cs_tick_now(cnt) : bpf_ktime_get_ns();
	struct cs_rate_key k = {
		.cap = cap,
		.denied = ret != 0,
		.audit = audit,
		.policy = policy,
	};
	struct cs_rate_val *v, nv = {};

	if (scope == CS_SCOPE_THREAD)
		k.scope_id = (__u32)pid_tgid;
	else if (scope == CS_SCOPE_PROCESS)
		k.scope_id = pid_tgid >> 32;
	v = bpf_map_lookup_elem(&rate_seen, &k);
	if (v) {
		if ((__s64)(now - v->window_start_ns) < (__s64)window) {
			__sync_fetch_and_add(&v->suppressed, 1);
			return false;
		}
		if (suppressed)
			*suppressed = __sync_lock_test_and_set(&v->suppressed, 0);
		else
			v->suppressed = 0;
		v->window_start_ns = now;
		return true;
	}
	nv.window_start_ns = now;
	return bpf_map_update_elem(&rate_seen, &k, &nv, BPF_NOEXIST) == 0;
}

static __always_inline bool cs_rate_allow(const struct cs_config *cfg, struct cs_counters *cnt,
					  __u64 pid_tgid, int cap, int ret, bool audit,
					  __u64 *suppressed)
{
	return cs_rate_allow_key(cnt, cfg->rate_window_ns, cfg->rate_scope, pid_tgid, cap, ret,
				 audit, 0, suppressed);
}

/* Whether the reader sleeps; if so it is this caller's to wake (struct cs_reader_state). */
static __always_inline bool cs_take_sleeping_reader(void)
{
	__u32 zero = 0;
	struct cs_reader_state *rs = bpf_map_lookup_elem(&reader_state, &zero);

	return rs && *(volatile __u64 *)&rs->sleeping && __sync_lock_test_and_set(&rs->sleeping, 0);
}

/*
 * Ring-buffer notification: this CPU wakes a sleeping reader once per
 * cfg->wakeup_bytes of records, never otherwise (0: the kernel's default).
 * A reader that is awake finds the records without a wakeup; the count goes
 * on, so the first record after it falls asleep wakes it.
 */
static __always_inline __u64 cs_wakeup_flags(const struct cs_config *cfg, struct cs_counters *cnt,
					     __u64 size)
{
	__u64 mark = cfg ? cfg->wakeup_bytes : 0;

	if (!mark || !cnt)
		return 0;
	cnt->unsignalled += size;
	if (cnt->unsignalled < mark || !cs_take_sleeping_reader())
		return BPF_RB_NO_WAKEUP;
	cnt->unsignalled = 0;
	return BPF_RB_FORCE_WAKEUP;
}

/* Submit a process-lifecycle record under the same wakeup policy as checks. */
static __always_inline void cs_submit_record(void *rec, __u64 size)
{
	__u32 zero = 0;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);

	bpf_ringbuf_submit(rec, cs_wakeup_flags(cfg, cs_counters(), size));
}

/* The initial user namespace's inode number (PROC_USER_INIT_INO). */
#define CS_INIT_USER_NS_INUM 0xEFFFFFFDU

/* ns NULL: the initial user namespace (a check recovered from an inlining caller). */
static __always_inline void cs_fill_user_ns(struct cs_user_ns *out, struct user_namespace *ns)
{
	if (!ns) {
		out->level = 0;
		out->inum = CS_INIT_USER_NS_INUM;
		out->owner_uid = 0;
		out->owner_gid = 0;
		return;
	}
	out->level = CS_READ(ns, level);
	out->inum = CS_READ(ns, ns.inum);
	out->owner_uid = CS_READ(ns, owner.val);
	out->owner_gid = CS_READ(ns, group.val);
}

/* What one check says about itself. */
struct cs_check_args {
	const struct cred *cred;
	struct user_namespace *target_ns;
	int cap;
	int ret;
};

static __always_inline void cs_fill_check(struct cs_cap_check *e, struct task_struct *task,
					  __u64 pid_tgid, const struct cs_check_args *args,
					  __u64 now, __u32 mntns)
{
	const struct cred *cred = args->cred;

	e->ktime_ns = now;
	e->cgroup_id = cs_task_cgroup_id(task);
	e->cap_effective = CS_CAPSET(cred, cap_effective);
	e->cap_permitted = CS_CAPSET(cred, cap_permitted);
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = CS_READ(task, real_parent, tgid);
	e->uid = CS_READ(cred, uid.val);
	e->gid = CS_READ(cred, gid.val);
	e->euid = CS_READ(cred, euid.val);
	e->mntns = mntns;
	e->mntns_id = (__u32)cs_task_mntns_id(task);
	e->pidns_level = cs_task_pidns_level(task);
	e->cap = args->cap;
	e->ret = args->ret;
	e->syscall_nr = cs_syscall_nr(task, &e->flags);
	if (cs_cred_borrowed(task, cred))
		e->flags |= CS_F_CRED_OVERRIDE;
	cs_fill_user_ns(&e->target_ns, args->target_ns);
	cs_task_comm(task, e->comm);
}

/*
 * record: aggregation in the kernel.
 *
 * A check is counted in this CPU's slot of agg_cache, a per-CPU direct-mapped
 * array: a repeated key costs one inlined lookup, a compare and a plain add,
 * where the hash map costs a 32-byte jhash, a bucket walk and an atomic add.
 * A slot taken by another key is evicted into the agg hash map (adding its
 * count there); if the hash map is full the slot is kept and the check goes
 * to the hash map itself, or out as a record (cs_handle_check).
 *
 * Draining without losing or double counting. Both maps come in two banks
 * (slot index bank * CS_AGG_SLOTS + slot; the bank is part of the hash key),
 * and a program run reads cs_config.agg_bank once and touches only that
 * bank. User space (BpfCapture::drain_aggregates) flips agg_bank, then waits
 * for an RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL) is
 * synchronize_rcu()): every program run is an RCU read-side critical section
 * (tracepoint and kprobe programs run with preemption off, trampolines under
 * rcu_read_lock()), so once it returns every run that could have read the old
 * bank number has finished, its writes visible, and every later run uses the
 * new bank. The old bank is then quiescent: user space reads every slot of
 * it on every CPU and every hash entry of it, and zeroes or deletes each
 * before the next flip makes the bank live again. Each check is counted once,
 * in the bank it read, and that bank is drained exactly once after it. (With
 * one map, a lookup-and-delete could copy an entry while a program on another
 * CPU held a pointer to it, and that program's add was lost.)
 *
 * Per-CPU slots need no atomics: only programs on their CPU write them, and
 * two runs on one CPU do not interleave (a tracepoint or kprobe program runs
 * with preemption off, and a program nested under itself by an interrupt is
 * skipped by the kernel's recursion guard). Trampoline programs may be
 * preempted, so the fexit backend (CS_AGG_NO_PERCPU_CACHE) counts in the
 * hash map only.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_AGG_MAX_ENTRIES);
	__type(key, struct cs_agg_key);
	__type(value, struct cs_agg_val);
} agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * CS_AGG_SLOTS);
	__type(key, __u32);
	__type(value, struct cs_agg_slot);
} agg_cache SEC(".maps");

/* Adds `add` to the hash map's entry for k; false if the map is full. */
static __noinline bool cs_agg_add(const struct cs_agg_key *k, const struct cs_agg_val *add)
{
	struct cs_agg_val *v = bpf_map_lookup_elem(&agg, k);

	if (!v) {
		if (bpf_map_update_elem(&agg, k, add, BPF_NOEXIST) == 0)
			return true;
		v = bpf_map_lookup_elem(&agg, k); /* another CPU added it meanwhile */
		if (!v)
			return false;
	}
	/* Other CPUs evict into the same entry: the count is atomic, the times approximate. */
	__sync_fetch_and_add(&v->count, add->count);
	if (add->first_ns < v->first_ns)
		v->first_ns = add->first_ns;
	if (add->last_ns > v->last_ns)
		v->last_ns = add->last_ns;
	return true;
}

#define CS_AGG_NO_SLOT 0xffffffffu

/* The key as four words, for hashing and comparing. */
struct cs_agg_words {
	__u64 w[4];
};

static __always_inline __u32 cs_agg_slot_of(const struct cs_agg_words *k)
{
	__u64 h = ((k->w[0] ^ k->w[1]) * 0x9E3779B97F4A7C15ULL ^ k->w[2]) * 0xC2B2AE3D27D4EB4FULL;

	return (__u32)(((h ^ k->w[3]) * 0x165667B19E3779F9ULL) >> 56) & (CS_AGG_SLOTS - 1);
}

/* record: count a decided check; false if the full hash map cannot take it. */
static __always_inline bool cs_aggregate(const struct cs_config *cfg, struct cs_counters *cnt,
					 struct task_struct *task, __u64 pid_tgid, __u64 cgid,
					 const struct cs_check_args *args, const struct cs_audit *a,
					 __u32 *slot_used)
{
	__u16 ignored = 0;
	struct cs_agg_key k = {
		.cgroup_id = cgid,
		.pid = pid_tgid >> 32,
		.exec_seq = (__u32)CS_READ(task, self_exec_id),
		.syscall_nr = cs_syscall_nr(task, &ignored),
		.cap = args->cap,
		.flags = (args->ret == 0 ? CS_AGG_GRANTED : 0) |
			 ((a->flags & CS_F_AUDIT) ? CS_AGG_AUDIT : 0) |
			 ((a->flags & CS_F_INSETID) ? CS_AGG_INSETID : 0) |
			 (cs_cred_borrowed(task, args->cred) ? CS_AGG_CRED_OVERRIDE : 0),
		/* Read once: the whole run uses one bank (see above). */
		.bank = *(volatile const __u32 *)&cfg->agg_bank & 1,
	};
	const struct cs_agg_words *kw = (const void *)&k;
	__u64 now = cs_tick_now(cnt);
	struct cs_agg_val one = {.count = 1, .first_ns = now, .last_ns = now};
	struct cs_agg_slot *slot;
	struct cs_agg_words *sw;
	__u32 idx;

	*slot_used = CS_AGG_NO_SLOT;
#ifdef CS_AGG_NO_PERCPU_CACHE
	return cs_agg_add(&k, &one);
#endif
	idx = k.bank * CS_AGG_SLOTS + cs_agg_slot_of(kw);
	slot = bpf_map_lookup_elem(&agg_cache, &idx);
	if (!slot)
		return cs_agg_add(&k, &one);
	sw = (void *)&slot->key;
	if (slot->val.count && sw->w[0] == kw->w[0] && sw->w[1] == kw->w[1] &&
	    sw->w[2] == kw->w[2] && sw->w[3] == kw->w[3]) {
		slot->val.count += 1;
		slot->val.last_ns = now;
		*slot_used = idx;
		return true;
	}
	if (slot->val.count) {
		struct cs_agg_key old = slot->key;
		struct cs_agg_val oldv = slot->val;

		/* The hash map is full: the slot keeps its key, the check goes on without it. */
		if (!cs_agg_add(&old, &oldv))
			return cs_agg_add(&k, &one);
	}
	slot->key = k;
	slot->val = one;
	*slot_used = idx;
	return true;
}

#if CS_BACKEND_TRACEPOINT
/*
 * Filters whose verdict on a check stays the same while its task, cgroup,
 * capability and verdict do: record's memo may stand in for them.
 */
#define CS_FILT_AGG_REPEATABLE                                                               \
	(CS_FILT_AGGREGATE | CS_FILT_CGROUP | CS_FILT_FOLLOW | CS_FILT_PID | CS_FILT_TID |     \
	 CS_FILT_CAPS | CS_FILT_DENIED | CS_FILT_HOST_ONLY | CS_FILT_CONTAINERS_ONLY)

static __always_inline __u64 cs_pair(__u32 lo, __u32 hi)
{
	return (__u64)lo | ((__u64)hi << 32);
}

/* Whether record's memo stands in for a repeated check: record, and only such filters. */
static __always_inline bool cs_agg_memo_on(const struct cs_config *cfg)
{
	__u32 ff = cfg->filter_flags;

	return cs_walk_direct && (ff & CS_FILT_AGGREGATE) && !(ff & ~CS_FILT_AGG_REPEATABLE);
}

/*
 * What identifies a check to record's memo (struct cs_agg_memo): everything
 * its key is made of, or what decides it, but the cgroup id (four dependent
 * loads) and the call site (cs_walk_repeat).
 */
static __always_inline void cs_agg_ident(const struct cs_config *cfg, struct task_struct *task,
					 const struct cs_check_args *args, struct cs_agg_memo *id)
{
	__u16 ignored = 0;

	id->task = (__u64)task;
	id->css = (__u64)task->cgroups;
	id->exit_gen = *(volatile __u64 *)&cs_exit_gen;
	id->cgroup_gen = *(volatile __u64 *)&cs_cgroup_gen;
	id->exec_nr = cs_pair((__u32)CS_READ(task, self_exec_id), (__u32)cs_syscall_nr(task, &ignored));
	id->check = cs_pair((__u32)args->cap, (__u32)args->ret);
	id->flags = (*(volatile const __u32 *)&cfg->agg_bank & 1) |
		    (cs_cred_borrowed(task, args->cred) ? 2 : 0);
	id->slot = CS_AGG_NO_SLOT;
	id->decision = 0;
	id->pad = 0;
}

/*
 * record: a check that repeats the CPU's last counted one (same task, still
 * in the same cgroup, same program, syscall, capability, verdict, credentials
 * and bank, the stack holding the same call sites) is counted in that check's
 * slot at once. The slot still holds its key: only cs_aggregate on this CPU
 * gives a slot another key, and cs_agg_keep then replaces the memo; user space
 * zeroes a slot only in the bank not in use (its count is then 0). The
 * identity lives only here, not across the event path (registers are few).
 */
static __always_inline bool cs_agg_repeat(void *ctx, const struct cs_config *cfg,
					  struct cs_counters *cnt, struct task_struct *task,
					  const struct cs_check_args *args)
{
	const struct cs_agg_memo *m = &cnt->agg_memo;
	struct cs_agg_memo id;
	struct cs_agg_slot *slot;
	__u32 idx = m->slot;

	if (!m->task)
		return false;
	cs_agg_ident(cfg, task, args, &id);
	if (m->task != id.task || m->css != id.css || m->exit_gen != id.exit_gen ||
	    m->cgroup_gen != id.cgroup_gen || m->exec_nr != id.exec_nr || m->check != id.check ||
	    m->flags != id.flags)
		return false;
	if (cs_walk_repeat(&cnt->walk_memo, *(volatile const __u32 *)&cfg->walk_start,
			   *(volatile const __u32 *)&cfg->callsite_gen,
			   bpf_rdonly_cast(ctx, 0)) != m->decision)
		return false;
	slot = bpf_map_lookup_elem(&agg_cache, &idx);
	if (!slot || !slot->val.count)
		return false;
	slot->val.count += 1;
	slot->val.last_ns = cs_tick_now(cnt);
	return true;
}

/*
 * After every cs_aggregate: the memo of the check it counted in a slot, if a
 * walk decided it and the memo is on; else none. Cleared even while the memo
 * is off (the agent turns emitting on and off at run time), so that no memo
 * outlives its slot being given another key.
 */
static __always_inline void cs_agg_keep(const struct cs_config *cfg, struct cs_counters *cnt,
					struct task_struct *task, const struct cs_check_args *args,
					__u32 slot, const struct cs_audit *a)
{
	struct cs_agg_memo *m = &cnt->agg_memo;
	const struct cs_walk_memo *w = &cnt->walk_memo;

	m->task = 0;
	if (!cs_agg_memo_on(cfg) || slot == CS_AGG_NO_SLOT || !w->frames ||
	    a->source != CS_AUDIT_SRC_CALLSITE)
		return;
	cs_agg_ident(cfg, task, args, m);
	m->slot = slot;
	m->decision = w->decision;
}
#else
/* fentry and kprobe keep no memo: fentry counts in the hash map, kprobe reads opts. */
static __always_inline bool cs_agg_memo_on(const struct cs_config *cfg)
{
	return false;
}

static __always_inline bool cs_agg_repeat(void *ctx, const struct cs_config *cfg,
					  struct cs_counters *cnt, struct task_struct *task,
					  const struct cs_check_args *args)
{
	return false;
}

static __always_inline void cs_agg_keep(const struct cs_config *cfg, struct cs_counters *cnt,
					struct task_struct *task, const struct cs_check_args *args,
					__u32 slot, const struct cs_audit *a)
{
}
#endif

/* Publishes a lane's new head after the slot's stores (x86 keeps stores in order). */
static __always_inline void cs_lane_publish(__u64 *head, __u64 h)
{
#if defined(__TARGET_ARCH_x86)
	barrier();
	*(volatile __u64 *)head = h;
#else
	__sync_fetch_and_add(head, 1); /* a full barrier where stores may be reordered */
#endif
}

/*
 * Put a plain check on this CPU's lane (struct cs_lane_pos); false if it must
 * go on the ring buffer: lanes off, the lane busy (this is an interrupt's
 * check) or full.
 */
static __always_inline bool cs_lane_put(const struct cs_config *cfg, struct cs_counters *cnt,
					struct task_struct *task, __u64 pid_tgid,
					const struct cs_check_args *args, __u64 now, __u32 mntns,
					const struct cs_audit *a, __u64 suppressed)
{
	__u32 slots = cfg->lane_slots;
	__u32 cpu, idx;
	struct cs_lane_pos *lp;
	struct cs_lane_slot *slot;
	struct cs_cap_check *e;
	__u64 h, tail;

	if (!slots)
		return false;
	cpu = bpf_get_smp_processor_id();
	lp = bpf_map_lookup_elem(&lane_pos, &cpu);
	if (!lp || *(volatile __u64 *)&lp->busy)
		return false;
	*(volatile __u64 *)&lp->busy = 1;
	barrier();
	h = *(volatile __u64 *)&lp->head;
	tail = *(volatile __u64 *)&lp->tail;
	idx = cpu * slots + ((__u32)h & (slots - 1));
	slot = h - tail < slots ? bpf_map_lookup_elem(&lanes, &idx) : NULL;
	if (!slot) {
		barrier();
		*(volatile __u64 *)&lp->busy = 0;
		return false;
	}
	e = &slot->check;
	e->hdr.type = CS_REC_CAP_CHECK;
	e->hdr.size = sizeof(*e);
	e->flags = a->flags;
	e->audit_source = a->source;
	e->suppressed = suppressed > 0xffffffffULL ? 0xffffffffU : (__u32)suppressed;
	cs_fill_check(e, task, pid_tgid, args, now, mntns);
	cs_lane_publish(&lp->head, h + 1);
	barrier();
	*(volatile __u64 *)&lp->busy = 0;
	cs_count(cnt, CS_CNT_EMITTED);
	if ((h + 1 - tail) * sizeof(struct cs_lane_slot) >= cfg->wakeup_bytes &&
	    cs_take_sleeping_reader()) {
		struct cs_record_hdr wake = { .type = CS_REC_LANE_WAKE, .size = sizeof(wake) };

		/* If the ring buffer is full the reader is busy anyway: it finds the lane then. */
		bpf_ringbuf_output(&events, &wake, sizeof(wake), BPF_RB_FORCE_WAKEUP);
	}
	return true;
}

/*
 * Put the check on the ring buffer, with a learning sample when asked, and
 * the policy part when policies act on it (pol not NULL).
 */
static __always_inline void cs_emit(void *ctx, const struct cs_config *cfg, struct cs_counters *cnt,
				    struct task_struct *task, __u64 pid_tgid,
				    const struct cs_check_args *args, __u64 now, __u32 mntns,
				    const struct cs_audit *a, __u64 suppressed,
				    const struct cs_policy_ext *pol)
{
	struct cs_sample *smp = NULL;
	struct cs_cap_check *e;
	__u32 size;

	if (pol)
		size = a->sample ? sizeof(struct cs_policy_check_sample) : sizeof(struct cs_policy_check);
	else
		size = a->sample ? sizeof(struct cs_cap_check_sample) : sizeof(struct cs_cap_check);
	if (!pol && !a->sample && cfg &&
	    cs_lane_put(cfg, cnt, task, pid_tgid, args, now, mntns, a, suppressed))
		return;
	e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e) {
		cs_count(cnt, CS_CNT_LOST);
		return;
	}
	e->hdr.type = CS_REC_CAP_CHECK;
	e->hdr.size = size;
	e->flags = a->flags;
	e->audit_source = a->source;
	e->suppressed = suppressed > 0xffffffffULL ? 0xffffffffU : (__u32)suppressed;
	cs_fill_check(e, task, pid_tgid, args, now, mntns);
	if (pol) {
		struct cs_policy_check *pc = (void *)e;

		pc->policy = *pol;
		e->flags |= CS_F_POLICY;
		if (a->sample)
			smp = &((struct cs_policy_check_sample *)e)->sample;
	} else if (a->sample) {
		smp = &((struct cs_cap_check_sample *)e)->sample;
	}
	if (smp) {
		long n = bpf_get_stack(ctx, smp->stack, sizeof(smp->stack), 0);

		e->flags |= CS_F_HAS_STACK;
		smp->nstack = n > 0 ? n / sizeof(__u64) : 0;
		smp->raw_stack_len = 0;
		if (bpf_probe_read_kernel(smp->raw_stack, sizeof(smp->raw_stack), (void *)a->anchor) == 0) {
			smp->raw_stack_len = sizeof(smp->raw_stack);
		} else {
			/*
			 * Near the top of the task's stack (a check right under the
			 * syscall entry) the full read crosses the stack's end and
			 * fails: read up to the 16 KiB boundary. Kernel stacks are at
			 * least that large and aligned to their size, so the bytes up
			 * to it are the stack's.
			 */
			__u64 left = CS_STACK_ALIGN - (a->anchor & (CS_STACK_ALIGN - 1));

			left &= CS_STACK_ALIGN - 1;
			if (left >= 8 && left < sizeof(smp->raw_stack) &&
			    bpf_probe_read_kernel(smp->raw_stack, left, (void *)a->anchor) == 0)
				smp->raw_stack_len = left;
		}
		cs_count(cnt, CS_CNT_SAMPLES);
	}
	/*
	 * A kill user space must decide always wakes the reader. A learning sample
	 * skips the mark, not the flag: a reader that is awake finds it within its
	 * poll timer, one that falls asleep when it polls the ring buffer before it
	 * sleeps (a fresh trace's hundreds of samples would otherwise each
	 * interrupt the checking CPU).
	 */
	if (pol && pol->pending)
		bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	else if (a->sample)
		bpf_ringbuf_submit(e, cs_take_sleeping_reader() ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	else
		bpf_ringbuf_submit(e, cs_wakeup_flags(cfg, cnt, size));
	cs_count(cnt, CS_CNT_EMITTED);
}

/* ---- policies ------------------------------------------------------------- */

/*
 * TracingPolicy selectors, compiled by user space into slots of a bank
 * (struct cs_policy_bank): the programs evaluate cs_config.policy_bank's
 * bank while user space may prepare the other (BpfCapture::set_policies).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct cs_policy_bank);
} policy_banks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * CS_POLICY_SLOTS);
	__type(key, __u32);
	__type(value, struct cs_policy_counts);
} policy_counts SEC(".maps");

/* matchBinaries: exec'd path -> the slots that list it (per bank). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct cs_path_key);
	__type(value, struct cs_policy_bits);
} policy_binaries SEC(".maps");

/*
 * The slots that list each process's binary: set at exec from policy_binaries,
 * copied at fork, deleted at exit (CS_FILT_POLICY_BINS); user space seeds the
 * processes that were running before from /proc/PID/exe. No entry: no slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct cs_policy_bits);
} task_policy_bins SEC(".maps");

/*
 * Scoped policies (a Kubernetes namespace, podSelector, containerSelector):
 * cgroup id -> the slots that take that container in, written by user space
 * once the runtime has named the container. Not an LRU: forgetting a cgroup
 * would lift an enforcement policy from a running container. User space drops
 * ended containers' cgroups; its bound is this size (BpfCapture::kMaxPolicyCgroups).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cs_policy_bits);
} policy_cgroups SEC(".maps");

/*
 * Containers a runtime has announced (a create event) whose cgroup does not
 * exist yet: the names their cgroup may take -> their scoped slots. The
 * cgroup_mkdir program copies a match into policy_cgroups as the cgroup is
 * made, so the policy holds from the container's first process on, whatever
 * user space is doing then. Written and emptied by user space.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct cs_cgroup_name);
	__type(value, struct cs_policy_bits);
} policy_pending SEC(".maps");

/* The task's namespace of kind k (enum cs_ns_index), compared with the host's. */
static __always_inline __u64 cs_policy_ns_kind(const struct cs_policy_bank *pb, __u64 cand,
					       int k, __u32 inum)
{
	bool host = inum == pb->host_ns[k];

	return cand & ~(host ? pb->ns_not_host[k] : pb->ns_host[k]);
}

/* matchNamespaces: drops from cand the slots whose namespace conditions the task fails. */
static __always_inline __u64 cs_policy_namespaces(const struct cs_policy_bank *pb, __u64 cand,
						  struct task_struct *task)
{
	struct nsproxy *nsp = CS_READ(task, nsproxy);

#define CS_NS_WANTED(k) (cand & (pb->ns_host[k] | pb->ns_not_host[k]))
	if (CS_NS_WANTED(CS_NS_UTS))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_UTS, CS_READ(nsp, uts_ns, ns.inum));
	if (CS_NS_WANTED(CS_NS_IPC))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_IPC, CS_READ(nsp, ipc_ns, ns.inum));
	if (CS_NS_WANTED(CS_NS_MNT))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_MNT, CS_READ(nsp, mnt_ns, ns.inum));
	if (CS_NS_WANTED(CS_NS_PID))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_PID, cs_task_pidns(task));
	if (CS_NS_WANTED(CS_NS_PID_FOR_CHILDREN))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_PID_FOR_CHILDREN,
					 CS_READ(nsp, pid_ns_for_children, ns.inum));
	if (CS_NS_WANTED(CS_NS_NET))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_NET, CS_READ(nsp, net_ns, ns.inum));
	if (bpf_core_field_exists(nsp->time_ns)) {
		if (CS_NS_WANTED(CS_NS_TIME))
			cand = cs_policy_ns_kind(pb, cand, CS_NS_TIME, CS_READ(nsp, time_ns, ns.inum));
		if (CS_NS_WANTED(CS_NS_TIME_FOR_CHILDREN))
			cand = cs_policy_ns_kind(pb, cand, CS_NS_TIME_FOR_CHILDREN,
						 CS_READ(nsp, time_ns_for_children, ns.inum));
	} else {
		/* No time namespaces: every task shares the host's time (inode 0 on both sides). */
		cand &= ~(pb->ns_not_host[CS_NS_TIME] | pb->ns_not_host[CS_NS_TIME_FOR_CHILDREN]);
	}
	if (CS_NS_WANTED(CS_NS_CGROUP))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_CGROUP, CS_READ(nsp, cgroup_ns, ns.inum));
	if (CS_NS_WANTED(CS_NS_USER))
		cand = cs_policy_ns_kind(pb, cand, CS_NS_USER, CS_READ(task, cred, user_ns, ns.inum));
#undef CS_NS_WANTED
	return cand;
}

/*
 * The slots that act: of each policy, the first selector (lowest slot) that
 * matched. `starts` marks each policy's first slot; one pass per policy that
 * matched, not per slot.
 */
static __always_inline __u64 cs_policy_firsts(__u64 cand, __u64 starts)
{
	__u64 first = 0;
	int i;

#pragma clang loop unroll(disable)
	for (i = 0; i < CS_POLICY_SLOTS && cand; i++) {
		__u64 low = cand & -cand;
		__u64 next = starts & ~((low << 1) - 1); /* policies that start above it */

		first |= low;
		next &= -next;
		cand = next ? cand & ~(next - 1) : 0; /* the rest of low's policy goes */
	}
	return first;
}

/*
 * runc's own stages ("runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]") and crun
 * run in a container's cgroup while they set it up, or join it for an exec. Their
 * checks are the runtime's, which profiles leave out: a container-scoped policy
 * leaves them alone too (a Sigkill there would break `podman exec`, not stop the
 * workload). The comm is what tells them: runc runs as a memfd copy of itself.
 * Before its first stage renames itself, `runc init` is "exe" (it was exec'd as
 * /proc/self/exe): that one is told by its executable, runc's memfd copy
 * ("memfd:runc_cloned:/proc/self/exe") or runc itself, not by the name alone.
 */
static __always_inline bool cs_task_is_runc_exe(struct task_struct *task)
{
	const unsigned char *name = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
	char buf[16] = {};
	__u64 head;

	if (!name || bpf_probe_read_kernel_str(buf, sizeof(buf), name) < 0)
		return false;
	__builtin_memcpy(&head, buf, sizeof(head));
	return head == 0x75723a64666d656dULL /* "memfd:ru" */ ? buf[8] == 'n' && buf[9] == 'c'
	       : (head & 0xffffffffffULL) == 0x636e7572ULL; /* "runc\0" */
}

static __always_inline bool cs_task_is_runtime_stage(struct task_struct *task)
{
	char comm[CS_COMM_LEN];
	__u64 head;

	cs_task_comm(task, comm);
	__builtin_memcpy(&head, comm, sizeof(head));
	if ((head & 0xffffffffULL) == 0x00657865ULL) /* "exe\0" */
		return cs_task_is_runc_exe(task);
	return (head & 0xffffffffffffULL) == 0x5b3a636e7572ULL || /* "runc:[" */
	       (head & 0xffffffffffULL) == 0x6e757263ULL;          /* "crun\0" */
}

/* The slots of the check, before the per-policy choice. */
static __always_inline __u64 cs_policy_candidates(const struct cs_policy_bank *pb, __u32 bank,
						  struct task_struct *task, __u64 pid_tgid,
						  int cap, int ret)
{
	__u64 cand = pb->active & pb->by_cap[cap & 63] & (ret == 0 ? pb->granted : pb->denied);

	if (cand & pb->scoped) {
		__u64 cg = cs_task_cgroup_id(task);
		struct cs_policy_bits *in = bpf_map_lookup_elem(&policy_cgroups, &cg);

		cand &= ~pb->scoped | (in ? in->bits[bank & 1] : 0);
		if ((cand & pb->scoped) && cs_task_is_runtime_stage(task))
			cand &= ~pb->scoped;
	}
	if (cand & (pb->bin_in | pb->bin_not_in)) {
		__u32 tgid = pid_tgid >> 32;
		struct cs_policy_bits *bins = bpf_map_lookup_elem(&task_policy_bins, &tgid);
		__u64 listed = bins ? bins->bits[bank & 1] : 0;

		cand &= ~(pb->bin_in & ~listed) & ~(pb->bin_not_in & listed);
	}
	if (cand & pb->ns_any)
		cand = cs_policy_namespaces(pb, cand, task);
	return cand;
}

/*
 * The policy evaluation is two global functions: the verifier checks each once,
 * on its own, and the program that calls them sees two calls. Inlined, their
 * loops multiplied the states of everything after them past the verifier's
 * limit. Scalars and pointers to plain memory go in and out. Every argument
 * must be used: clang leaves an unused one's register unset, and the verifier
 * refuses a call that passes it.
 */

/*
 * The slots of `bank` whose selectors match this check (*cand), but for opts, which
 * needs the audit decision: cs_policy_act filters on it and picks, of each policy, the
 * first selector left. Returns 1 if any matches, else 0.
 */
__noinline int cs_policy_match(__u64 pid_tgid, int cap, int ret, __u32 bank, __u64 *out)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct cs_policy_bank *pb;
	__u64 cand;

	if (!out)
		return 0;
	*out = 0;
	bank &= 1;
	pb = bpf_map_lookup_elem(&policy_banks, &bank);
	if (!pb || cap < 0 || cap > 63)
		return 0;
	cand = cs_policy_candidates(pb, bank, task, pid_tgid, cap, ret);
	if (!cand)
		return 0;
	*out = cand;
	return 1;
}

/*
 * A check as cs_policy_post and cs_policy_post_ok take it, packed into one
 * argument (fewer values to keep across calls: their stack frames stay small,
 * and the whole chain of frames must fit the verifier's 512 bytes).
 */
#define CS_POLICY_CHECK(cap, ret, bank) (((cap) & 0xff) | (((ret) != 0) << 8) | (((bank) & 1) << 9))

/*
 * Whether slot `slot` posts the check: its rateLimit's window (if it has one)
 * lets it through. Counted either way. A global function, called once per
 * posting slot from a loop: its branches are verified once, not once per slot.
 */
__noinline int cs_policy_post_ok(__u64 pid_tgid, __u32 check, __u32 slot)
{
	__u32 bank = (check >> 9) & 1;
	__u32 idx = bank * CS_POLICY_SLOTS + (slot & (CS_POLICY_SLOTS - 1));
	struct cs_policy_counts *pc = bpf_map_lookup_elem(&policy_counts, &idx);
	struct cs_policy_bank *pb = bpf_map_lookup_elem(&policy_banks, &bank);
	struct cs_policy_slot *sl;

	slot &= CS_POLICY_SLOTS - 1;
	if (!pb || !pc)
		return 1;
	sl = &pb->slot[slot];
	if (((pb->rated >> slot) & 1) &&
	    !cs_rate_allow_key(cs_counters(), sl->rate_window_ns, sl->rate_scope, pid_tgid,
			       check & 0xff, (check >> 8) & 1, false,
			       cs_policy_rate_tag(pb->gen, bank, slot), NULL)) {
		pc->rate_limited += 1;
		return 0;
	}
	pc->posted += 1;
	return 1;
}

/*
 * The rateLimit of each slot that would post (ext->post, from cs_policy_act):
 * ext->post keeps those that do. Returns 1 if any, else 0.
 */
__noinline int cs_policy_post(__u64 pid_tgid, __u32 check, struct cs_policy_ext *ext)
{
	__u64 todo, posted = 0;
	int i;

	if (!ext)
		return 0;
	todo = ext->post;
#pragma clang loop unroll(disable)
	for (i = 0; i < CS_POLICY_SLOTS && todo; i++) {
		__u64 low = todo & -todo;

		todo ^= low;
		if (cs_policy_post_ok(pid_tgid, check, __builtin_popcountll(low - 1)))
			posted |= low;
	}
	ext->post = posted;
	ext->pending &= posted;
	return posted != 0;
}

/* cs_policy_act's `how`: the bank, and the audit decision of the check. */
#define CS_POLICY_HOW(bank, flags, source)                                                 \
	(((bank) & 1) | (((flags) & 0xff) << 8) | (((source) & 0xff) << 16))

/* What the acting slots do to one check. */
struct cs_policy_outcome {
	__u64 post;
	__u64 killed;
	__u64 pending;
	__u64 spared;
	__u64 kill_failed;
};

/* The kernel's SIGNAL_UNKILLABLE: the task is the init of its PID namespace. */
#define CS_SIGNAL_UNKILLABLE 0x00000040

static __always_inline bool cs_current_is_unkillable_init(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return BPF_CORE_READ(task, signal, flags) & CS_SIGNAL_UNKILLABLE;
}

/*
 * What the matching slots (ext->post on entry, from cs_policy_match) do to the
 * check. The opts of the check (CAP_OPT_NOAUDIT from the audit decision, and
 * CAP_OPT_INSETID) drop the slots whose matchArgs on opts refuse them; then each
 * policy's first matching selector acts: Post makes the check an
 * event of that slot (rate-limited by cs_policy_post_ok), NoPost only counts, Sigkill
 * sends SIGKILL to the checking process and posts too, as Tetragon does.
 * Sigkill acts only on an audited check: a no-audit probe (mmap's
 * CAP_SYS_ADMIN, ...) is the kernel asking, not the process using a
 * capability, and killing for it would kill every process that maps memory.
 * Nor on a check made with borrowed credentials (CS_F_CRED_OVERRIDE): overlayfs
 * copies a file up with its mounter's credentials, so a container's first write
 * to a lower-layer file makes checks that are the mount's, not the process's.
 * A check whose audit flag the kernel cannot decide yet (a learning sample)
 * is posted with the kill pending: user space classifies it and kills then.
 * So is one made by a PID namespace's init (a container's PID 1): it ignores a
 * SIGKILL sent from inside its namespace, bpf_send_signal()'s included, and
 * takes one from the agent, whose namespace is an ancestor of its.
 *
 * Fills *ext (post: the slots that would post, before their rateLimit);
 * returns 1 if any, else 0.
 */
__noinline int cs_policy_act(__u32 how, struct cs_policy_ext *ext)
{
	struct cs_policy_outcome o = {};
	struct cs_policy_bank *pb;
	__u32 bank = how & 1, audit_flags = (how >> 8) & 0xff, source = (how >> 16) & 0xff;
	__u64 first, kill;
	int i;

	if (!ext)
		return 0;
	first = ext->post;
	__builtin_memset(ext, 0, sizeof(*ext));
	pb = bpf_map_lookup_elem(&policy_banks, &bank);
	if (!pb || !first)
		return 0;
	first &= pb->by_opts[((audit_flags & CS_F_AUDIT) ? 0 : 1) |
			     ((audit_flags & CS_F_INSETID) ? 2 : 0)];
	first = cs_policy_firsts(first, pb->first);
	if (!first)
		return 0;
	kill = first & pb->kill;
	if (kill) {
		if (source == CS_AUDIT_SRC_UNKNOWN || cs_current_is_unkillable_init())
			o.pending = kill;
		else if (!(audit_flags & CS_F_AUDIT) || (audit_flags & CS_F_CRED_OVERRIDE))
			o.spared = kill;
		else if (bpf_send_signal(9 /* SIGKILL */) == 0)
			o.killed = kill;
		else
			o.kill_failed = kill;
	}
	o.post = first & (pb->post | (kill & ~o.spared));

	/*
	 * Each acting slot's counters. Branch-free (shifts, not tests), so that the
	 * verifier walks one path per slot rather than one per combination.
	 */
#pragma clang loop unroll(disable)
	for (i = 0; i < CS_POLICY_SLOTS && first; i++) {
		__u64 low = first & -first;
		__u32 s = __builtin_popcountll(low - 1) & (CS_POLICY_SLOTS - 1);
		__u32 idx = bank * CS_POLICY_SLOTS + s;
		struct cs_policy_counts *pc = bpf_map_lookup_elem(&policy_counts, &idx);

		first ^= low;
		if (!pc)
			continue;
		pc->hits += 1;
		pc->killed += (o.killed >> s) & 1;
		pc->pending += (o.pending >> s) & 1;
		pc->spared += (o.spared >> s) & 1;
		pc->kill_failed += (o.kill_failed >> s) & 1;
	}
	if (!o.post)
		return 0;
	ext->post = o.post;
	ext->killed = o.killed;
	ext->pending = o.pending & o.post;
	ext->gen = pb->gen;
	ext->bank = bank;
	return 1;
}

/* exec: the new image's slots (matchBinaries), by the path execve was given. */
static __always_inline void cs_policy_exec(struct linux_binprm *bprm, __u32 tgid)
{
	struct cs_path_key key;
	struct cs_policy_bits *bits;

	__builtin_memset(&key, 0, sizeof(key));
	bpf_probe_read_kernel_str(key.path, sizeof(key.path), BPF_CORE_READ(bprm, filename));
	bits = bpf_map_lookup_elem(&policy_binaries, &key);
	if (bits)
		bpf_map_update_elem(&task_policy_bins, &tgid, bits, BPF_ANY);
	else
		bpf_map_delete_elem(&task_policy_bins, &tgid);
}

static __always_inline void cs_policy_fork(__u32 parent_tgid, __u32 child_tgid)
{
	struct cs_policy_bits *bits = bpf_map_lookup_elem(&task_policy_bins, &parent_tgid);

	if (bits)
		bpf_map_update_elem(&task_policy_bins, &child_tgid, bits, BPF_ANY);
}

static __always_inline bool cs_policy_bins_on(void)
{
	__u32 zero = 0;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);

	return cfg && (cfg->filter_flags & CS_FILT_POLICY_BINS);
}

/*
 * The event path of one check, after capscope's own exclusion and the policies:
 * the filters, --unique, the audit decision (unless `have_audit`: the policies
 * needed it first and *a holds it), --audit-only, aggregation, --rate-limit,
 * and the ring buffer. `pol` (not NULL) is what policies made of the check: it
 * goes out even if the event path drops it, marked CS_F_POLICY_ONLY, and once,
 * carrying both, if it keeps it.
 *
 * The order is the cost order: every test that can drop the check runs
 * before anything that costs more than it.
 */
static __always_inline int cs_event_path(void *ctx, const struct cs_config *cfg,
					 struct cs_counters *cnt, struct task_struct *task,
					 __u64 pid_tgid, const struct cs_check_args *args,
					 const struct cs_audit *known, struct cs_audit *a, bool have_audit,
					 const struct cs_policy_ext *pol)
{
	struct cs_unique_slot *uslot = NULL;
	__u64 suppressed = 0, now, cgid = 0;
	__u32 mntns, slot = CS_AGG_NO_SLOT;
	bool decided;

	if (cfg->filter_flags & CS_FILT_POLICY_ONLY)
		goto filtered;
	/* record: a repeat of this CPU's last counted check is counted in its slot at once. */
	if (cnt && cs_agg_memo_on(cfg) && cs_agg_repeat(ctx, cfg, cnt, task, args)) {
		cs_count(cnt, CS_CNT_AGGREGATED);
		return 0;
	}
	/* Read once for the cgroup filters and record's key: four dependent loads. */
	if (cfg->filter_flags & (CS_FILT_CGROUP | CS_FILT_UNSELECTED | CS_FILT_AGGREGATE))
		cgid = cs_task_cgroup_id(task);
	if (!cs_filters_pass(cfg, cnt, pid_tgid, task, cgid, args->cred, args->cap, args->ret))
		goto filtered;
	if ((cfg->filter_flags & CS_FILT_UNIQUE) && args->cap >= 0 && args->cap < 64) {
		uslot = cs_unique_slot(cs_task_mntns(task), cs_task_mntns_id(task));
		/* The agent counts every check before it asks whether to send it. */
		if (uslot && !(cfg->filter_flags & CS_FILT_AGGREGATE) &&
		    cs_unique_already_audited(uslot, args->cap, args->ret)) {
			cs_count(cnt, CS_CNT_UNIQUE_SUPPRESSED);
			goto not_an_event;
		}
	}
	if (!have_audit) {
		if (known)
			*a = *known;
		else
			cs_decide_audit_by_walk(cfg, cnt, ctx, a);
	}
	if ((cfg->filter_flags & CS_FILT_AUDIT_ONLY) && !(a->flags & CS_F_AUDIT) &&
	    a->source != CS_AUDIT_SRC_UNKNOWN)
		goto filtered;
	/*
	 * A check whose audit flag is not decided yet (a learning sample) goes out
	 * as it is: user space decides its flag, and applies --audit-only, --unique
	 * and --rate-limit to it; marking it here under a guessed flag would hide
	 * later checks of the other kind.
	 */
	decided = a->source != CS_AUDIT_SRC_UNKNOWN;
	if ((cfg->filter_flags & CS_FILT_AGGREGATE) && decided) {
		bool counted = cs_aggregate(cfg, cnt, task, pid_tgid, cgid, args, a, &slot);

		if (cnt)
			cs_agg_keep(cfg, cnt, task, args, slot, a);
		if (!counted) {
			/* Sent as it is, past --unique and --rate-limit: user space counts it. */
			cs_count(cnt, CS_CNT_AGG_FULL);
			goto emit;
		}
		cs_count(cnt, CS_CNT_AGGREGATED);
		a->flags |= CS_F_AGGREGATED;
		if (!(cfg->filter_flags & CS_FILT_AGG_EMIT))
			goto not_an_event;
	}
	if (uslot && decided && !cs_unique_mark(uslot, args->cap, args->ret, a->flags & CS_F_AUDIT)) {
		cs_count(cnt, CS_CNT_UNIQUE_SUPPRESSED);
		goto not_an_event;
	}
	if ((cfg->filter_flags & CS_FILT_RATE) && decided &&
	    !cs_rate_allow(cfg, cnt, pid_tgid, args->cap, args->ret, a->flags & CS_F_AUDIT,
			   &suppressed)) {
		cs_count(cnt, CS_CNT_RATE_SUPPRESSED);
		goto not_an_event;
	}
emit:
	/* Only a check that goes out reads the precise clock: events carry ns times. */
	now = bpf_ktime_get_ns();
	/* Read here, not before: record, which aggregates, never needs it. */
	mntns = cs_task_mntns(task);
	cs_emit(ctx, cfg, cnt, task, pid_tgid, args, now, mntns, a, suppressed, pol);
	return 0;
filtered:
	cs_count(cnt, CS_CNT_FILTERED);
not_an_event:
	if (!pol)
		return 0;
	a->flags |= CS_F_POLICY_ONLY;
	suppressed = 0;
	goto emit;
}

/*
 * A check some policy acts on: the audit decision (a Post or Sigkill needs it,
 * and the event path then reuses it), what the policies do, then the event path.
 */
static __always_inline int cs_policy_check(void *ctx, const struct cs_config *cfg,
					   struct cs_counters *cnt, struct task_struct *task,
					   __u64 pid_tgid, const struct cs_check_args *args,
					   const struct cs_audit *known, struct cs_audit *a, __u32 bank,
					   struct cs_policy_ext *pol)
{
	__u32 borrowed = cs_cred_borrowed(task, args->cred) ? CS_F_CRED_OVERRIDE : 0;

	if (known)
		*a = *known;
	else
		cs_decide_audit_by_walk(cfg, cnt, ctx, a);
	if (!cs_policy_act(CS_POLICY_HOW(bank, a->flags | borrowed, a->source), pol) ||
	    !cs_policy_post(pid_tgid, CS_POLICY_CHECK(args->cap, args->ret, bank), pol))
		return cs_event_path(ctx, cfg, cnt, task, pid_tgid, args, known, a, true, NULL);
	return cs_event_path(ctx, cfg, cnt, task, pid_tgid, args, known, a, true, pol);
}

/*
 * One capability check, from any backend. Backends that see cap_capable's
 * opts (fexit, kprobe) pass the decided audit flags in `known`; the
 * tracepoint backend passes NULL, and the call-site walk starts from ctx, the
 * argument array bpf_trace_run5() keeps on the checking task's kernel stack.
 * (Our own r10 is no anchor: recent kernels may run tracing programs on a
 * private per-CPU stack.)
 *
 * Policies (CS_FILT_POLICY) come first, after capscope's own exclusion only:
 * enforcement and policy counts must not depend on what the event filters
 * keep. A check no policy acts on takes the event path as it is; one they act
 * on takes its own copy of it (cs_policy_check). Without policies the cost is
 * one test of filter_flags.
 */
static __always_inline int cs_handle_check(void *ctx, const struct cs_check_args *args,
					   const struct cs_audit *known)
{
	__u32 zero = 0;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);
	struct cs_counters *cnt = cs_counters();
	struct task_struct *task = cs_current_task(ctx, cnt);
	__u64 pid_tgid = cs_task_pid_tgid(task);
	struct cs_audit a = {};

	cs_count(cnt, CS_CNT_CHECKS);
	if (!cfg)
		return 0;
	if ((__u32)(pid_tgid >> 32) == cfg->self_pid) {
		cs_count(cnt, CS_CNT_FILTERED);
		return 0;
	}
	if (cfg->filter_flags & CS_FILT_POLICY) {
		/* pol.post: the matching slots, then the acting ones, then those that post (cs_policy_*). */
		struct cs_policy_ext pol = {};
		__u32 bank = cfg->policy_bank & 1;

		if (cs_policy_match(pid_tgid, args->cap, args->ret, bank, &pol.post))
			return cs_policy_check(ctx, cfg, cnt, task, pid_tgid, args, known, &a, bank,
					       &pol);
	}
	return cs_event_path(ctx, cfg, cnt, task, pid_tgid, args, known, &a, false, NULL);
}

/* ---- process lifecycle ----------------------------------------------------- */

/*
 * The process's id in its own pid namespace (the last NSpid of /proc/PID/status;
 * what Tetragon's pod.container.pid is). The address of numbers[level] is computed
 * as a number: a variable offset on a BTF pointer is not allowed.
 */
static __always_inline __u32 cs_task_ns_tgid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	__u32 level, nr = 0;
	unsigned long at;

	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	if (level > 31)
		return 0;
	at = (unsigned long)pid + bpf_core_field_offset(struct pid, numbers) +
	     level * bpf_core_type_size(struct upid) + bpf_core_field_offset(struct upid, nr);
	bpf_probe_read_kernel(&nr, sizeof(nr), (void *)at);
	return nr;
}

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
	const struct cred *cred = CS_READ(task, cred);

	e->uid = BPF_CORE_READ(cred, uid.val);
	e->gid = BPF_CORE_READ(cred, gid.val);
	e->euid = BPF_CORE_READ(cred, euid.val);
	e->egid = BPF_CORE_READ(cred, egid.val);
	e->cap_effective = CS_CAPSET(cred, cap_effective);
	e->cap_permitted = CS_CAPSET(cred, cap_permitted);
	e->cap_inheritable = CS_CAPSET(cred, cap_inheritable);
	e->cap_bounding = CS_CAPSET(cred, cap_bset);
	e->cap_ambient = CS_CAPSET(cred, cap_ambient);
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

/*
 * A process-lifecycle or cgroup record on the ring buffer, its header written.
 * NULL (and counted) when the buffer is full: the process cache then falls back
 * on /proc for what it missed.
 */
static __always_inline void *cs_reserve_record(__u32 size, __u16 type)
{
	struct cs_record_hdr *h = bpf_ringbuf_reserve(&events, size, 0);

	if (!h) {
		cs_count(cs_counters(), CS_CNT_PROC_LOST);
		return NULL;
	}
	h->type = type;
	h->size = size;
	return h;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(cs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *task = bpf_get_current_task_btf();
	struct cs_exec *e;
	long n;

	if (cs_policy_bins_on())
		cs_policy_exec(bprm, pid_tgid >> 32);
	e = cs_reserve_record(sizeof(*e), CS_REC_EXEC);
	if (!e)
		return 0;
	__builtin_memset((char *)e + sizeof(e->hdr), 0, sizeof(*e) - sizeof(e->hdr));
	e->ktime_ns = bpf_ktime_get_ns();
	e->start_ns = BPF_CORE_READ(task, start_time);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->exe_ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exec_seq = (__u32)BPF_CORE_READ(task, self_exec_id);
	e->ns_pid = cs_task_ns_tgid(task);
	cs_read_exec_creds(e, task);
	cs_read_namespaces(e, task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n - 1 : 0;
	cs_read_args(e, task);
	cs_submit_record(e, sizeof(*e));
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(cs_fork, struct task_struct *parent, struct task_struct *child)
{
	struct cs_fork *e;

	__u32 zero = 0, child_tgid, parent_tgid;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);

	/* Threads share their process's entry in the cache. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	child_tgid = BPF_CORE_READ(child, tgid);
	parent_tgid = BPF_CORE_READ(parent, tgid);
	if (cfg && (cfg->filter_flags & CS_FILT_FOLLOW) &&
	    bpf_map_lookup_elem(&follow_pids, &parent_tgid)) {
		__u8 one = 1;

		bpf_map_update_elem(&follow_pids, &child_tgid, &one, BPF_ANY);
	}
	if (cfg && (cfg->filter_flags & CS_FILT_POLICY_BINS))
		cs_policy_fork(parent_tgid, child_tgid);
	e = cs_reserve_record(sizeof(*e), CS_REC_FORK);
	if (!e)
		return 0;
	e->exec_seq = (__u32)BPF_CORE_READ(child, self_exec_id);
	e->ktime_ns = bpf_ktime_get_ns();
	e->start_ns = BPF_CORE_READ(child, start_time);
	e->pid = BPF_CORE_READ(child, tgid);
	e->ppid = BPF_CORE_READ(parent, tgid);
	e->ns_pid = cs_task_ns_tgid(child);
	e->pad = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, child, comm);
	cs_submit_record(e, sizeof(*e));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(cs_exit, struct task_struct *p)
{
	struct cs_exit *e;

#if CS_BACKEND_TRACEPOINT
	/* Every thread: its kernel stack may go to a new task after this (cs_current_task). */
	__sync_fetch_and_add(&cs_exit_gen, 1);
#endif
	/* Only the last thread of the group ends the process. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (cs_policy_bins_on()) {
		__u32 tgid = BPF_CORE_READ(p, tgid);

		bpf_map_delete_elem(&task_policy_bins, &tgid);
	}
	e = cs_reserve_record(sizeof(*e), CS_REC_EXIT);
	if (!e)
		return 0;
	e->pad0 = 0;
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = BPF_CORE_READ(p, tgid);
	e->exit_code = BPF_CORE_READ(p, exit_code);
	cs_submit_record(e, sizeof(*e));
	return 0;
}

#if CS_BACKEND_TRACEPOINT
/* A task moved to another cgroup: record's memo of its checks (cs_agg_repeat) may no longer hold. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cs_cgroup_attach, struct cgroup *dst_cgrp, const char *path, struct task_struct *task,
	     bool threadgroup)
{
	__sync_fetch_and_add(&cs_cgroup_gen, 1);
	return 0;
}
#endif

/* kernfs_node's parent before Linux 6.15 named it __parent. */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *cs_kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/*
 * A cgroup made for an announced container takes its scoped policies at once.
 * The name policy_pending knows it by is its directory's name (no path to
 * parse: kernfs has it), or its parent's when it is "container" (crun's and
 * systemd's inner cgroup of a .scope).
 */
static __always_inline void cs_policy_pending_cgroup(struct cgroup *cgrp, __u64 id)
{
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	struct cs_cgroup_name key = {};
	struct cs_policy_bits *bits;
	__u64 head;

	if (bpf_probe_read_kernel_str(key.name, sizeof(key.name), BPF_CORE_READ(kn, name)) <= 0)
		return;
	__builtin_memcpy(&head, key.name, sizeof(head));
	if (head == 0x656e6961746e6f63ULL && key.name[8] == 'r' && key.name[9] == 0) { /* "containe" */
		__builtin_memset(&key, 0, sizeof(key));
		if (bpf_probe_read_kernel_str(key.name, sizeof(key.name),
					      BPF_CORE_READ(cs_kn_parent(kn), name)) <= 0)
			return;
	}
	bits = bpf_map_lookup_elem(&policy_pending, &key);
	if (bits)
		bpf_map_update_elem(&policy_cgroups, &id, bits, BPF_ANY);
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cs_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct cs_cgroup *e;
	long n;

	/* The default hierarchy has id 0; v1 hierarchies number their cgroups apart. */
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return 0;
	e = cs_reserve_record(sizeof(*e), CS_REC_CGROUP);
	if (!e)
		return 0;
	e->ktime_ns = bpf_ktime_get_ns();
	e->id = BPF_CORE_READ(cgrp, kn, id);
	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	e->path_len = n > 0 ? n - 1 : 0;
	cs_policy_pending_cgroup(cgrp, e->id);
	/* At once: the agent names a new container before its first process runs,
	 * so that container-scoped policies are in the kernel by then. Rare. */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

#endif /* CAPSCOPE_CAPABLE_COMMON_BPF_H */
