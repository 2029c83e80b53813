// SPDX-License-Identifier: GPL-2.0
/*
 * fexit backend: cap_capable's arguments and return value through a BPF
 * trampoline (Linux 5.5+ with BTF). The fourth argument is `unsigned int
 * opts` since Linux 5.1 and `int audit` before (backported to some older
 * stable kernels); user space reads which from the kernel BTF and says so
 * in config.opts_kind.
 */
/*
 * Trampoline programs run with migration, not preemption, disabled: under a
 * fully preemptible kernel this program and an inlined caller's could
 * interleave on one CPU, which record's per-CPU cache does not allow.
 */
#define CS_AGG_NO_PERCPU_CACHE 1
#include "capable_common.bpf.h"
#include "inlined_callers.bpf.h"

SEC("fexit/cap_capable")
int BPF_PROG(cs_cap_capable_fexit, const struct cred *cred, struct user_namespace *target_ns,
	     int cap, unsigned int opts, int ret)
{
	struct cs_check_args args = {
		.cred = cred,
		.target_ns = target_ns,
		.cap = cap,
		.ret = ret,
	};
	struct cs_audit known = cs_audit_from_opts(opts);

	cs_inline_caller_saw_check();
	return cs_handle_check(ctx, &args, &known);
}

/* Callers some kernels inline cap_capable into (inlined_callers.bpf.h). */
SEC("fentry/cap_vm_enough_memory")
int BPF_PROG(cs_vm_enough_memory_entry)
{
	cs_inline_caller_enter(0);
	return 0;
}

/* Its return value means different things before and after 6.12: not read (inlined_callers.bpf.h). */
SEC("fexit/cap_vm_enough_memory")
int BPF_PROG(cs_vm_enough_memory_exit)
{
	return cs_vm_enough_memory_returned(ctx);
}

SEC("fentry/cap_mmap_addr")
int BPF_PROG(cs_mmap_addr_entry, unsigned long addr)
{
	cs_inline_caller_enter(addr);
	return 0;
}

SEC("fexit/cap_mmap_addr")
int BPF_PROG(cs_mmap_addr_exit, unsigned long addr, int ret)
{
	return cs_mmap_addr_returned(ctx, ret);
}
