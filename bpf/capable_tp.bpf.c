// SPDX-License-Identifier: GPL-2.0
/*
 * Tracepoint backend: the capability:cap_capable tracepoint (Linux 6.14+),
 * attached as tp_btf so no tracefs is needed and arguments are typed.
 * The tracepoint carries no opts, so the audit flag comes from the
 * call-site walk in capable_common.bpf.h.
 */
#include "capable_common.bpf.h"

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_cap_capable_tp, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	void *args = ctx;
	__u64 base = 0;

	/*
	 * ctx is the argument array bpf_trace_run5() keeps in its own frame, on
	 * the kernel stack of the checking task: the anchor of the call-site
	 * walk. (Our own r10 is no anchor: recent kernels may run tracing
	 * programs on a private per-CPU stack.) Copying the pointer through
	 * memory turns it into a plain number the walk can do arithmetic on.
	 */
	bpf_probe_read_kernel(&base, sizeof(base), &args);
	return cs_handle_check(ctx, cred, target_ns, cap, ret, false, 0, 0, base);
}
