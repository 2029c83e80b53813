/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Checks that fentry and kprobes on cap_capable cannot see: where the compiler
 * inlines cap_capable into its callers in security/commoncap.c (Debian's 6.1
 * and 6.12 builds do), no probe on the cap_capable symbol fires. The fexit and
 * kprobe backends hook those callers too and, when cap_capable did not run as
 * a function while the caller ran, report the check the caller made, from
 * its arguments and its return value or the task's credentials:
 *
 *   cap_vm_enough_memory(mm, pages)  CAP_SYS_ADMIN, no-audit (every mmap, brk, execve);
 *                                    returns 1 when granted up to Linux 6.11, 0 from
 *                                    6.12 (the LSM hook's return values were
 *                                    refactored), so its verdict is not taken from
 *                                    the return value but worked out from the
 *                                    credentials, as cap_capable would
 *   cap_mmap_addr(addr)              CAP_SYS_RAWIO, audited, only when
 *                                    addr < dac_mmap_min_addr; returns 0 or -EPERM
 *
 * Both check the task's own credentials against the initial user namespace.
 * Where cap_capable is not inlined, its own probe reports the check and the
 * caller's hook stays silent, so nothing is counted twice.
 */
#ifndef CAPSCOPE_INLINED_CALLERS_BPF_H
#define CAPSCOPE_INLINED_CALLERS_BPF_H

#include "capable_common.bpf.h"

#define CS_CAP_SYS_RAWIO 17
#define CS_CAP_SYS_ADMIN 21
#define CS_EPERM 1

/* vm.mmap_min_addr; weak: a kernel without it never makes the RAWIO check. */
extern const void dac_mmap_min_addr __ksym __weak;

/* A caller running on a thread: its argument, and whether cap_capable ran. */
struct cs_inline_call {
	__u64 arg;
	__u8 saw_cap_capable;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct cs_inline_call);
} inline_calls SEC(".maps");

static __always_inline void cs_inline_caller_enter(__u64 arg)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_inline_call c = { .arg = arg };

	bpf_map_update_elem(&inline_calls, &tid, &c, BPF_ANY);
}

/* Called by the cap_capable probe: the check it reports is the caller's. */
static __always_inline void cs_inline_caller_saw_check(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_inline_call *c = bpf_map_lookup_elem(&inline_calls, &tid);

	if (c)
		c->saw_cap_capable = 1;
}

/* The caller returned; false if cap_capable was seen (or the entry is missing). */
static __always_inline bool cs_inline_caller_exit(__u64 *arg)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_inline_call *c = bpf_map_lookup_elem(&inline_calls, &tid);
	bool inlined;

	if (!c)
		return false;
	inlined = !c->saw_cap_capable;
	*arg = c->arg;
	bpf_map_delete_elem(&inline_calls, &tid);
	return inlined;
}

/* The checking task's credentials: the callers check them (current_cred()). */
static __always_inline const struct cred *cs_inline_caller_cred(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return CS_READ(task, cred);
}

static __always_inline int cs_report_inlined(void *ctx, const struct cred *cred, int cap,
					     bool audit, int ret)
{
	struct cs_check_args args = {
		.cred = cred,
		.target_ns = NULL, /* &init_user_ns */
		.cap = cap,
		.ret = ret,
	};
	struct cs_audit known = {
		.source = CS_AUDIT_SRC_CALLER,
		.flags = audit ? CS_F_AUDIT : 0,
	};

	return cs_handle_check(ctx, &args, &known);
}

/*
 * cap_capable(cred, &init_user_ns, cap)'s answer: only a credential of the
 * initial user namespace can hold a capability in it (cap_capable refuses a
 * target namespace at or above the credential's level unless it is the
 * credential's own), and then only if its effective set has it.
 */
static __always_inline int cs_init_ns_verdict(const struct cred *cred, int cap)
{
	if (CS_READ(cred, user_ns, level) != 0)
		return -CS_EPERM;
	return (CS_CAPSET(cred, cap_effective) >> cap) & 1 ? 0 : -CS_EPERM;
}

static __always_inline int cs_vm_enough_memory_returned(void *ctx)
{
	const struct cred *cred;
	__u64 unused;

	if (!cs_inline_caller_exit(&unused))
		return 0;
	cred = cs_inline_caller_cred();
	return cs_report_inlined(ctx, cred, CS_CAP_SYS_ADMIN, false,
				 cs_init_ns_verdict(cred, CS_CAP_SYS_ADMIN));
}

static __always_inline int cs_mmap_addr_returned(void *ctx, int ret)
{
	unsigned long min_addr = 0;
	__u64 addr;

	if (!cs_inline_caller_exit(&addr) || !&dac_mmap_min_addr)
		return 0;
	bpf_probe_read_kernel(&min_addr, sizeof(min_addr), &dac_mmap_min_addr);
	if (addr >= min_addr)
		return 0; /* no check was made */
	return cs_report_inlined(ctx, cs_inline_caller_cred(), CS_CAP_SYS_RAWIO, true, ret);
}

#endif
