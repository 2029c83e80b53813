/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel/user contract of capscope: every record the BPF programs put on
 * the ring buffer, and every map key and value user space reads or writes.
 *
 * This header is compiled twice: by clang for the BPF target (with vmlinux.h
 * providing the __u* types) and by the C++ compiler for user space (with
 * <linux/types.h>). Layouts are fixed-size, naturally aligned and free of
 * implicit padding; user space static_asserts the sizes below, so a change on
 * one side that the other does not follow fails the build.
 */
#ifndef CAPSCOPE_BPF_CAPSCOPE_H
#define CAPSCOPE_BPF_CAPSCOPE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CS_COMM_LEN 16
#define CS_MAX_STACK 32        /* kernel return addresses in a learning sample */
#define CS_RAW_STACK_BYTES 1024 /* raw kernel stack bytes above the BPF frame */
#define CS_MAX_WALK 12         /* frames the call-site walk may take */
#define CS_PATH_LEN 256
#define CS_ARGS_LEN 512
#define CS_MAX_FILTER_VALUES 64

/* Record types on the ring buffer. */
enum cs_record_type {
	CS_REC_CAP_CHECK = 1,
	CS_REC_EXEC = 2,
	CS_REC_FORK = 3,
	CS_REC_EXIT = 4,
	CS_REC_CGROUP = 5,
	CS_REC_LANE_WAKE = 6, /* header only: a CPU's lane passed its wakeup mark (struct cs_lane_pos) */
};

/* How the audit flag of a check was decided. */
enum cs_audit_source {
	CS_AUDIT_SRC_UNKNOWN = 0, /* not decided in the kernel: user space must */
	CS_AUDIT_SRC_OPTS = 1,    /* the opts argument of cap_capable */
	CS_AUDIT_SRC_AUDIT_ARG = 2, /* the pre-5.1 int audit argument */
	CS_AUDIT_SRC_CALLSITE = 3,  /* the learned call-site table (tracepoint) */
	CS_AUDIT_SRC_CALLER = 4,    /* recovered from a caller that inlines cap_capable (fexit, kprobe) */
};

/* The verdict a call site gives, as stored in the call-site map. */
enum cs_callsite_decision {
	CS_SITE_PASS = 0,    /* forwards its caller's opts: keep walking */
	CS_SITE_AUDIT = 1,   /* a normal, audited check */
	CS_SITE_NOAUDIT = 2, /* a probe (CAP_OPT_NOAUDIT) */
	CS_SITE_INSETID = 3, /* audited, made from a set*id syscall */
	CS_SITE_SAMPLE = 4,  /* cannot be walked past: sample the stack every time */
};

/* Bits of cs_cap_check.flags. */
#define CS_F_AUDIT (1u << 0)         /* the check is audited (a need, not a probe) */
#define CS_F_INSETID (1u << 1)       /* CAP_OPT_INSETID: made by a set*id syscall */
#define CS_F_CRED_OVERRIDE (1u << 2) /* checked creds are not the task's real creds */
#define CS_F_KTHREAD (1u << 3)       /* made by a kernel thread */
#define CS_F_HAS_STACK (1u << 4)     /* a learning sample follows the fixed part */
#define CS_F_IN_SYSCALL (1u << 5)    /* syscall_nr is valid */
#define CS_F_AGGREGATED (1u << 6)    /* also counted in the aggregation map (agent: not to count twice) */
#define CS_F_POLICY (1u << 7)        /* a struct cs_policy_ext follows the check (before any sample) */
#define CS_F_POLICY_ONLY (1u << 8)   /* sent for its policies only: the event filters dropped it */

/* Every record starts with this header. */
struct cs_record_hdr {
	__u16 type; /* enum cs_record_type */
	__u16 size; /* bytes of the whole record, header included */
};

struct cs_user_ns {
	__u32 level;
	__u32 inum;
	__u32 owner_uid;
	__u32 owner_gid;
};

/*
 * One capability check: 120 bytes, so that with the ring buffer's own 8-byte
 * header a record fills exactly two cache lines (a check crosses from the
 * checking CPU to the reader's; every line costs a transfer).
 */
struct cs_cap_check {
	struct cs_record_hdr hdr;
	__u16 flags;        /* CS_F_* */
	__u8 audit_source;  /* enum cs_audit_source */
	__u8 pidns_level;   /* depth of the task's pid namespace: 0 is the host's */
	__u64 ktime_ns;     /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 cgroup_id;    /* cgroup v2 id of the task */
	__u64 cap_effective; /* effective set of the checked creds */
	__u64 cap_permitted;
	__u32 pid;          /* thread group id */
	__u32 tid;
	__u32 ppid;         /* thread group id of the real parent */
	__u32 uid;          /* of the checked creds */
	__u32 gid;
	__u32 euid;
	__u32 mntns;        /* mount namespace inode of the task */
	__s32 cap;
	__s32 ret;          /* 0 granted, negative errno denied */
	__s32 syscall_nr;   /* valid when CS_F_IN_SYSCALL */
	__u32 suppressed;   /* checks of this key suppressed by --rate-limit before this one (saturates) */
	struct cs_user_ns target_ns;
	char comm[CS_COMM_LEN];
	__u32 mntns_id;     /* low 32 bits of the mount namespace's boot-unique id (0: unknown) */
};

/* A learning sample: what follows a check with CS_F_HAS_STACK. */
struct cs_sample {
	__u32 nstack;                         /* valid entries in stack[] */
	__u32 raw_stack_len;                  /* valid bytes in raw_stack[] */
	__u64 stack[CS_MAX_STACK];            /* bpf_get_stack(), innermost first */
	__u8 raw_stack[CS_RAW_STACK_BYTES];   /* kernel stack memory from the walk anchor up */
};

/* A check record with its learning sample (CS_F_HAS_STACK). */
struct cs_cap_check_sample {
	struct cs_cap_check check;
	struct cs_sample sample;
};

/*
 * Policies (TracingPolicy selectors compiled into slots, see struct
 * cs_policy_bank): what a check that policies act on carries after its
 * fixed part (CS_F_POLICY). Slots are numbered within `bank`; `gen` names
 * the load of the policy set they belong to, so user space maps a record
 * to its policies even if the set was replaced while it was in flight.
 */
struct cs_policy_ext {
	__u64 post;    /* slots this check is an event of (Post, and Sigkill on an audited or undecided check) */
	__u64 killed;  /* slots whose Sigkill the kernel sent */
	__u64 pending; /* slots whose Sigkill waits for user space to classify the check (a sample) */
	__u32 gen;
	__u32 bank;
};

struct cs_policy_check {
	struct cs_cap_check check;
	struct cs_policy_ext policy;
};

struct cs_policy_check_sample {
	struct cs_cap_check check;
	struct cs_policy_ext policy;
	struct cs_sample sample;
};

/* An execve that succeeded: what the process cache needs to describe the new image. */
struct cs_exec {
	struct cs_record_hdr hdr;
	__u32 exec_seq;    /* task->self_exec_id (low 32 bits): which exec of the process this is */
	__u64 ktime_ns;
	__u64 start_ns;    /* task->start_time (CLOCK_MONOTONIC) */
	__u64 cgroup_id;
	__u64 exe_ino;     /* inode number of the file exec'd: names it after a later exec */
	__u64 cap_effective;
	__u64 cap_permitted;
	__u64 cap_inheritable;
	__u64 cap_bounding;
	__u64 cap_ambient;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 euid;
	__u32 egid;
	__u32 auid;
	__u32 no_new_privs;
	/* namespace inodes: uts ipc mnt pid pid_for_children net time time_for_children cgroup user */
	__u32 ns[10];
	__u32 userns_level;
	__u32 filename_len;
	__u32 args_len;    /* NUL-separated argv bytes in args[] */
	__u32 args_truncated;
	__u32 ns_pid;      /* pid in its own pid namespace (NSpid's last), 0 unknown */
	char comm[CS_COMM_LEN];
	char filename[CS_PATH_LEN];
	char args[CS_ARGS_LEN];
};

/* A new process (not a new thread). */
struct cs_fork {
	struct cs_record_hdr hdr;
	__u32 exec_seq;    /* the child's self_exec_id: its parent's, until it execs */
	__u64 ktime_ns;
	__u64 start_ns;
	__u32 pid;
	__u32 ppid;
	__u32 ns_pid;      /* the child's pid in its own pid namespace (1: a namespace's init) */
	__u32 pad;
	char comm[CS_COMM_LEN];
};

/* A whole process exited (the thread group leader is gone). */
struct cs_exit {
	struct cs_record_hdr hdr;
	__u32 pad0;
	__u64 ktime_ns;
	__u32 pid;
	__u32 exit_code;
};

/*
 * A cgroup created in the unified (v2) hierarchy. Container runtimes create
 * one per container before anything runs in it, so user space learns which
 * container a cgroup id belongs to even for processes gone before it looks.
 */
struct cs_cgroup {
	struct cs_record_hdr hdr;
	__u32 path_len;
	__u64 ktime_ns;
	__u64 id; /* what bpf_get_current_cgroup_id() reports for tasks in it */
	char path[CS_PATH_LEN];
};

/* Index of cs_exec.ns[]. */
enum cs_ns_index {
	CS_NS_UTS = 0,
	CS_NS_IPC,
	CS_NS_MNT,
	CS_NS_PID,
	CS_NS_PID_FOR_CHILDREN,
	CS_NS_NET,
	CS_NS_TIME,
	CS_NS_TIME_FOR_CHILDREN,
	CS_NS_CGROUP,
	CS_NS_USER,
	CS_NS_COUNT,
};

/* Value of the call-site map (key: a kernel return address). */
struct cs_callsite {
	__u32 advance;  /* bytes from this return address's slot to the next one's */
	__u32 decision; /* enum cs_callsite_decision */
};

/*
 * A slot of the direct-mapped call-site cache: the same entries as the
 * call-site hash map, found with one inlined array lookup instead of a
 * hash. User space fills a slot when it learns an address and the slot is
 * free; an address whose slot is taken is found in the hash map.
 */
struct cs_callsite_slot {
	__u64 ip;
	struct cs_callsite site;
};

#define CS_CALLSITE_SLOTS 4096

static inline __u32 cs_callsite_slot_of(__u64 ip)
{
	return (__u32)((ip ^ (ip >> 12)) & (CS_CALLSITE_SLOTS - 1));
}

/*
 * --unique state of one container (mount namespace): which capabilities
 * have been reported, as bitmaps indexed by verdict and kind of check.
 * A direct-mapped array of these answers the hot path with one inlined
 * lookup; slots taken by another namespace overflow into an LRU hash.
 */
struct cs_unique_slot {
	__u32 mntns;
	__u32 pad;
	/*
	 * The namespace's id, unique for the boot: the kernel hands a freed
	 * namespace's inode number to the next one, so the inode alone would
	 * let a new container inherit a dead one's reported capabilities.
	 */
	__u64 ns_id;
	__u64 seen[4]; /* [denied * 2 + probe]: bit n = capability n reported */
};

#define CS_UNIQUE_SLOTS 1024

static inline __u32 cs_unique_slot_of(__u32 mntns)
{
	return (mntns * 2654435761u) >> 22; /* Fibonacci hashing to 10 bits */
}

/* Key of the --rate-limit map, and of policies' rateLimit. */
struct cs_rate_key {
	__u32 scope_id; /* tid, tgid or 0 by scope */
	__s32 cap;
	__u32 denied;
	__u16 audit;    /* --rate-limit only: policies' keys do not know it (as Tetragon's) */
	__u16 policy;   /* 0: --rate-limit; else a policy slot's key (cs_policy_rate_tag) */
};

struct cs_rate_val {
	__u64 window_start_ns;
	__u64 suppressed;
};

/* Counters: one per-CPU struct cs_counters, indexed by enum cs_counter. */
enum cs_counter {
	CS_CNT_CHECKS = 0,       /* capability checks the program saw */
	CS_CNT_FILTERED,         /* dropped by an in-kernel filter */
	CS_CNT_UNIQUE_SUPPRESSED,
	CS_CNT_RATE_SUPPRESSED,
	CS_CNT_EMITTED,          /* check records put on the ring buffer */
	CS_CNT_LOST,             /* records the ring buffer had no room for */
	CS_CNT_SAMPLES,          /* learning samples taken (bpf_get_stack) */
	CS_CNT_WALK_MISS,        /* call-site walks that met an unknown address */
	CS_CNT_PROC_LOST,        /* exec/fork/exit records lost */
	CS_CNT_AGGREGATED,       /* checks counted in the aggregation map (record) */
	CS_CNT_AGG_FULL,         /* checks the full aggregation map sent as records instead */
	CS_CNT_MAX,
};

/*
 * The tracepoint backend's last answer to "which task is checking" on a CPU
 * (cs_current_task): the task, the base of its kernel stack, and the exit
 * generation it was taken under. anchor is scratch space.
 */
struct cs_task_memo {
	__u64 task;
	__u64 stack;
	__u64 gen;
	__u64 anchor;
};

/*
 * The call-site walk's last decided path on a CPU (cs_walk_repeat): the
 * return addresses it read, at which offsets above the walk's anchor, and
 * what they decided, under which walk_start and call-site generation
 * (cs_config). frames 0: nothing kept.
 */
struct cs_walk_memo {
	__u64 ip[CS_MAX_WALK];
	__u16 off[CS_MAX_WALK];
	__u32 frames;
	__s32 decision;
	__u32 walk_start;
	__u32 callsite_gen;
};

/*
 * record's last check counted in the per-CPU cache on a CPU (cs_agg_repeat):
 * what identifies it without reading its cgroup id or hashing its key again,
 * and the slot that counts it. task 0: nothing kept.
 */
struct cs_agg_memo {
	__u64 task;       /* the checking task */
	__u64 css;        /* its css_set */
	__u64 exit_gen;   /* cs_exit_gen when kept: no task exited since */
	__u64 cgroup_gen; /* cs_cgroup_gen when kept: no task changed cgroups since */
	__u64 exec_nr;    /* self_exec_id | syscall number << 32 */
	__u64 check;      /* cap | ret << 32 */
	__u32 flags;      /* the bank | 2 when the creds were borrowed */
	__u32 slot;       /* its index in agg_cache */
	__s32 decision;   /* the call-site walk's (cs_walk_memo) */
	__u32 pad;
};

struct cs_counters {
	__u64 v[CS_CNT_MAX];
	__u64 unsignalled; /* record bytes this CPU produced since it last woke the reader */
	/*
	 * The tick clock of record and of --rate-limit windows (cs_tick_now):
	 * bpf_ktime_get_ns() as read at its first use in jiffy tick_jiffies on
	 * this CPU.
	 */
	__u64 tick_jiffies;
	__u64 tick_ns;
	/*
	 * The cgroup filter's last answer on this CPU: (cgroup id << 1) | passed.
	 * The filter's set is fixed once loaded and cgroup ids are never reused,
	 * so an answer stays true; one word, so a preempted (fexit) run cannot
	 * leave an id with another id's answer.
	 */
	__u64 cgroup_memo;
	struct cs_task_memo task_memo;
	struct cs_walk_memo walk_memo;
	struct cs_agg_memo agg_memo;
};

/* Scopes of --rate-limit. */
enum cs_rate_scope {
	CS_SCOPE_THREAD = 0,
	CS_SCOPE_PROCESS = 1,
	CS_SCOPE_GLOBAL = 2,
};

/* Bits of the filter flags (cs_config.filter_flags). */
#define CS_FILT_PID (1u << 0)
#define CS_FILT_TID (1u << 1)
#define CS_FILT_UID (1u << 2)
#define CS_FILT_COMM (1u << 3)
#define CS_FILT_CGROUP (1u << 4)
#define CS_FILT_CAPS (1u << 5)
#define CS_FILT_DENIED (1u << 6)
#define CS_FILT_AUDIT_ONLY (1u << 7)
#define CS_FILT_HOST_ONLY (1u << 8)
#define CS_FILT_CONTAINERS_ONLY (1u << 9)
#define CS_FILT_UNIQUE (1u << 10)
#define CS_FILT_RATE (1u << 11)
#define CS_FILT_GID (1u << 12)
#define CS_FILT_AGGREGATE (1u << 13) /* record: count decided checks in the agg map, send none */
#define CS_FILT_FOLLOW (1u << 14)    /* only processes in follow_pids, which their children join */
#define CS_FILT_UNSELECTED (1u << 15) /* identity filters: drop cgroups user space decided against */
/*
 * agent: with CS_FILT_AGGREGATE, a check counted in the aggregation map goes on to the
 * event filters (--unique, --rate-limit) and may be sent too, marked CS_F_AGGREGATED.
 */
#define CS_FILT_AGG_EMIT (1u << 16)
/* Policies are loaded: evaluate cs_config.policy_bank's slots for every check. */
#define CS_FILT_POLICY (1u << 17)
/* trace --policy: the checks no policy posts are not events (the event path is off). */
#define CS_FILT_POLICY_ONLY (1u << 18)
/* Some slot has matchBinaries: the exec, fork and exit programs keep task_policy_bins. */
#define CS_FILT_POLICY_BINS (1u << 19)

/*
 * Run-time configuration, one entry of an array map that user space writes
 * before attaching (and may rewrite while running).
 */
struct cs_config {
	__u32 filter_flags;
	__u32 self_pid;    /* capscope's own tgid: never reported */
	__u64 cap_mask;    /* capabilities to keep (bit n = capability n), n < 64 */
	__u32 rate_scope;  /* enum cs_rate_scope */
	__u32 walk_start;  /* byte offset above the walk anchor where the walk begins */
	__u64 rate_window_ns;
	__u32 opts_kind;   /* fexit/kprobe: 0 opts bitmask, 1 pre-5.1 int audit */
	__u32 learn;       /* take learning samples on unknown call sites */
	/*
	 * A CPU wakes a sleeping reader (struct cs_reader_state) once this many
	 * bytes of its records wait; a quiet trickle is picked up by the reader's
	 * poll timeout. A wakeup per record would cost the checking task an
	 * interrupt each (a self-IPI, a VM exit on a virtual machine).
	 */
	__u64 wakeup_bytes;
	/*
	 * record: which bank of the aggregation maps checks go to (0 or 1). User
	 * space flips it to drain the other (see cs_aggregate, drain_aggregates).
	 */
	__u32 agg_bank;
	/*
	 * Which bank of policy_banks the programs evaluate (0 or 1). User space
	 * writes a new set into the other bank, then flips this (see
	 * BpfCapture::set_policies): a check is evaluated against one whole set.
	 */
	__u32 policy_bank;
	/*
	 * Bumped by user space whenever it stores call sites: a walk decided
	 * under another generation may have read an entry since corrected, so
	 * its memo (cs_walk_memo) is not reused.
	 */
	__u32 callsite_gen;
	/*
	 * Slots of each CPU's check lane (a power of two), 0: every check goes
	 * on the ring buffer (see struct cs_lane_pos).
	 */
	__u32 lane_slots;
};

/*
 * Check lanes. A plain check record (no learning sample, no policy part)
 * goes on its CPU's lane rather than the shared ring buffer: a slot of the
 * `lanes` array (CPU * lane_slots + head % lane_slots), then the head moves
 * on. Both maps are mapped by the reader. The ring buffer's reservation
 * takes a lock and its commit an atomic exchange, about 50 ns a check here;
 * a lane is written by one CPU only, so plain stores do.
 *
 * - busy: set while a program of this CPU writes the lane; a check made in
 *   an interrupt meanwhile goes on the ring buffer instead.
 * - A full lane (head - tail == lane_slots) sends the check on the ring
 *   buffer too: nothing is lost that the ring buffer could take.
 * - Wakeups: only a reader that sleeps is woken (struct cs_reader_state),
 *   once a CPU's lane holds cs_config.wakeup_bytes of unread records: a
 *   header-only CS_REC_LANE_WAKE record goes on the ring buffer with a
 *   wakeup. Below that the reader finds the records at its poll timeout.
 * - Order: the reader reads every lane's head, then drains the ring buffer
 *   and the lanes up to those heads merged by time (every record has its
 *   ktime_ns at byte 8). A check on a lane is then never handed over before
 *   the exec, fork or exit records that came before it. It may come after a
 *   later exec of its process (published after the heads were read);
 *   user space attributes it by its time (ProcessCache::lookup_at).
 * head and tail are on cache lines of their own: each is written by one side.
 */
struct cs_lane_pos {
	__u64 head; /* records published by this CPU */
	__u64 busy;
	__u64 pad[6];
	__u64 tail; /* records the reader has consumed */
	__u64 pad2[7];
};

/*
 * Whether the reader sleeps, waiting for a wakeup (a BPF_F_MMAPABLE array of
 * one). Under a flood the reader polls on a short timer instead and leaves
 * `sleeping` at 0, so no check pays for waking it. The reader sets it, then
 * looks at the lanes once more before it sleeps; the program that wakes it
 * clears it (an exchange, so one wakeup a sleep). A program that reads it
 * before the reader's store is visible, for the one record that reaches the
 * mark, leaves the reader to its poll timeout, as any record below the mark.
 */
struct cs_reader_state {
	__u64 sleeping;
	__u64 pad[7];
};

/* A lane slot: a check record, padded to two whole cache lines. */
struct cs_lane_slot {
	struct cs_cap_check check;
	__u64 pad;
};

/*
 * record: decided checks are counted in the kernel instead of crossing to user
 * space one by one: in a per-CPU direct-mapped cache (agg_cache) first, whose
 * evicted entries go to a hash map (agg). Both come in two banks, selected by
 * cs_config.agg_bank; user space drains the bank the programs no longer use
 * (see cs_aggregate). A check the full map cannot take goes out as an
 * ordinary record.
 */
#define CS_AGG_MAX_ENTRIES 65536
#define CS_AGG_SLOTS 256 /* per CPU and bank; a power of two */
#define CS_AGG_GRANTED (1u << 0)
#define CS_AGG_AUDIT (1u << 1)
#define CS_AGG_INSETID (1u << 2)
#define CS_AGG_CRED_OVERRIDE (1u << 3) /* checked creds are not the task's (CS_F_CRED_OVERRIDE) */

struct cs_agg_key {
	__u64 cgroup_id;
	__u32 pid;        /* thread group */
	__u32 exec_seq;   /* with pid: which program (see cs_exec.exec_seq) */
	__s32 syscall_nr; /* -1 outside a syscall */
	__s32 cap;
	__u32 flags;      /* CS_AGG_* */
	__u32 bank;       /* cs_config.agg_bank when counted */
};

/* Times: CLOCK_MONOTONIC to the tick (cs_tick_now): up to one jiffy early. */
struct cs_agg_val {
	__u64 count;
	__u64 first_ns;
	__u64 last_ns;
};

/* A slot of the per-CPU cache; count 0: free. */
struct cs_agg_slot {
	struct cs_agg_key key;
	struct cs_agg_val val;
};

/* Keys of the filter-set maps (pid, tid, uid, gid, cgroup, comm). */
struct cs_comm_key {
	char comm[CS_COMM_LEN];
};

/*
 * Policies: at most CS_POLICY_SLOTS selectors over all loaded policies, each in
 * a slot. A bank holds a whole set, mostly as bitmasks over the slots, so that
 * the hot path finds the slots a check matches with a few AND operations
 * instead of a loop over the slots.
 */
#define CS_POLICY_SLOTS 64

enum cs_policy_action {
	CS_POLICY_POST = 0,
	CS_POLICY_NOPOST = 1,
	CS_POLICY_SIGKILL = 2,
};

/* One selector: what the loop over matched slots needs, and what user space lists. */
struct cs_policy_slot {
	__u64 cap_mask;       /* capabilities it takes (bit n = capability n) */
	__u64 rate_window_ns; /* Post's rateLimit; 0 none */
	__u16 policy;         /* index of its policy in the set */
	__u8 verdicts;        /* bit 0 granted, bit 1 denied */
	__u8 action;          /* enum cs_policy_action */
	__u8 rate_scope;      /* enum cs_rate_scope */
	__u8 binary_op;       /* 0 any, 1 In, 2 NotIn */
	__u16 ns_host;        /* namespace kinds (bit = enum cs_ns_index) that must be the host's */
	__u16 ns_not_host;    /* kinds that must not be */
	__u16 pad[3];
};

struct cs_policy_bank {
	__u64 active;                   /* slots in use */
	__u64 by_cap[64];               /* bit s of by_cap[n]: slot s takes capability n */
	__u64 granted;                  /* slots that take granted checks */
	__u64 denied;                   /* slots that take denied checks */
	__u64 first;                    /* the first slot of each policy (its selectors follow in order) */
	__u64 post;                     /* action Post */
	__u64 kill;                     /* action Sigkill */
	__u64 rated;                    /* Post with a rateLimit */
	__u64 scoped;                   /* slots of policies scoped to containers (policy_cgroups) */
	__u64 bin_in;                   /* matchBinaries In: the task's binary must be listed */
	__u64 bin_not_in;               /* matchBinaries NotIn: it must not be */
	__u64 ns_any;                   /* slots with namespace conditions */
	__u64 ns_host[CS_NS_COUNT];     /* slots that need the task's namespace of kind k to be the host's */
	__u64 ns_not_host[CS_NS_COUNT]; /* slots that need it not to be */
	__u64 by_opts[4];               /* slots that take checks of these opts: index bit 0
					 * CAP_OPT_NOAUDIT, bit 1 CAP_OPT_INSETID */
	__u32 host_ns[CS_NS_COUNT];     /* the host's namespace inodes (/proc/1/ns) */
	__u32 gen;                      /* which load of the set this is (in cs_policy_ext) */
	__u32 pad;
	struct cs_policy_slot slot[CS_POLICY_SLOTS];
};

/* Per-slot bits of the two banks: value of policy_binaries, task_policy_bins, policy_cgroups. */
struct cs_policy_bits {
	__u64 bits[2];
};

/*
 * Key of policy_pending: the last component of a container cgroup's path
 * ("libpod-<id>", "docker-<id>.scope", ...), NUL-padded.
 */
#define CS_CGROUP_NAME_LEN 128
struct cs_cgroup_name {
	char name[CS_CGROUP_NAME_LEN];
};

/* Key of policy_binaries: an exec'd path, NUL-padded. */
struct cs_path_key {
	char path[CS_PATH_LEN];
};

/* Per-CPU counters of one slot (policy_counts, index bank * CS_POLICY_SLOTS + slot). */
struct cs_policy_counts {
	__u64 hits;         /* checks the slot's selector acted on (its policy's first match) */
	__u64 posted;       /* events of the slot put on the ring buffer */
	__u64 rate_limited; /* events its rateLimit suppressed */
	__u64 killed;       /* SIGKILL sent */
	__u64 spared;       /* Sigkill not sent: a no-audit probe, not a use */
	__u64 pending;      /* Sigkill left to user space: the audit flag was not known yet */
	__u64 kill_failed;  /* bpf_send_signal refused (a kernel thread, an exiting task) */
	__u64 pad;
};

/* Tags a policy slot's rate-limit keys by load, so a replaced set's windows do not apply. */
static inline __u16 cs_policy_rate_tag(__u32 gen, __u32 bank, __u32 slot)
{
	return (__u16)(0x8000u | ((gen & 0x3fu) << 7) | ((bank & 1u) << 6) | (slot & 63u));
}

#define CS_OPTS_NOAUDIT (1u << 1)
#define CS_OPTS_INSETID (1u << 2)

#endif /* CAPSCOPE_BPF_CAPSCOPE_H */
