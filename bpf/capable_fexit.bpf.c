// SPDX-License-Identifier: GPL-2.0
/*
 * fexit backend: cap_capable's arguments and return value through a BPF
 * trampoline (Linux 5.5+ with BTF). The fourth argument is `unsigned int
 * opts` since Linux 5.1 and `int audit` before (backported to some older
 * stable kernels); user space reads which from the kernel BTF and says so
 * in config.opts_kind.
 */
#include "capable_common.bpf.h"

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

	return cs_handle_check(ctx, &args, &known);
}
