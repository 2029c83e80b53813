// SPDX-License-Identifier: GPL-2.0
/*
 * kprobe backend: kprobe + kretprobe on cap_capable, for kernels without the
 * tracepoint or BPF trampolines. The entry saves the arguments per thread;
 * the return handles the check. Where a kernel inlines cap_capable into its
 * callers (cap_vm_enough_memory, ...) a kprobe does not see those checks: the
 * callers are hooked too (inlined_callers.bpf.h).
 * Arguments are plain numbers here, not BTF pointers: every read goes
 * through a helper.
 */
#define CS_UNTRUSTED_ARGS 1
#include "capable_common.bpf.h"
#include "inlined_callers.bpf.h"

struct cs_kprobe_args {
	__u64 cred;
	__u64 target_ns;
	__s32 cap;
	__u32 opts;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct cs_kprobe_args);
} kprobe_args SEC(".maps");

SEC("kprobe/cap_capable")
int BPF_KPROBE(cs_cap_capable_entry, const struct cred *cred, struct user_namespace *target_ns,
	       int cap, unsigned int opts)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_kprobe_args a = {
		.cred = (__u64)cred,
		.target_ns = (__u64)target_ns,
		.cap = cap,
		.opts = opts,
	};

	bpf_map_update_elem(&kprobe_args, &tid, &a, BPF_ANY);
	return 0;
}

SEC("kretprobe/cap_capable")
int BPF_KRETPROBE(cs_cap_capable_return, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_kprobe_args *saved = bpf_map_lookup_elem(&kprobe_args, &tid);
	struct cs_check_args args = {};
	struct cs_audit known;

	if (!saved)
		return 0;
	args.cred = (const struct cred *)saved->cred;
	args.target_ns = (struct user_namespace *)saved->target_ns;
	args.cap = saved->cap;
	args.ret = ret;
	known = cs_audit_from_opts(saved->opts);
	bpf_map_delete_elem(&kprobe_args, &tid);
	cs_inline_caller_saw_check();
	return cs_handle_check(ctx, &args, &known);
}

/* Callers some kernels inline cap_capable into (inlined_callers.bpf.h). */
SEC("kprobe/cap_vm_enough_memory")
int BPF_KPROBE(cs_vm_enough_memory_entry)
{
	cs_inline_caller_enter(0);
	return 0;
}

/* Its return value means different things before and after 6.12: not read (inlined_callers.bpf.h). */
SEC("kretprobe/cap_vm_enough_memory")
int BPF_KRETPROBE(cs_vm_enough_memory_exit)
{
	return cs_vm_enough_memory_returned(ctx);
}

SEC("kprobe/cap_mmap_addr")
int BPF_KPROBE(cs_mmap_addr_entry, unsigned long addr)
{
	cs_inline_caller_enter(addr);
	return 0;
}

SEC("kretprobe/cap_mmap_addr")
int BPF_KRETPROBE(cs_mmap_addr_exit, int ret)
{
	return cs_mmap_addr_returned(ctx, ret);
}
