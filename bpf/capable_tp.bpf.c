// SPDX-License-Identifier: GPL-2.0
/*
 * Tracepoint backend: the capability:cap_capable tracepoint (Linux 6.14+),
 * attached as tp_btf so no tracefs is needed and arguments are typed.
 * The tracepoint carries no opts, so the audit flag comes from the
 * call-site walk in capable_common.bpf.h.
 */
/* Plain loads for the syscall number, and the checking task memoised (capable_common.bpf.h). */
#define CS_BACKEND_TRACEPOINT 1
#include "capable_common.bpf.h"

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_cap_capable_tp, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	struct cs_check_args args = {
		.cred = cred,
		.target_ns = target_ns,
		.cap = cap,
		.ret = ret,
	};
	return cs_handle_check(ctx, &args, NULL);
}
