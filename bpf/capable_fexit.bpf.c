// SPDX-License-Identifier: GPL-2.0
/*
 * fexit backend: cap_capable's arguments and return value through a BPF
 * trampoline (Linux 5.5+ with BTF). The fourth argument is `unsigned int
 * opts` since Linux 5.1 and `int audit` before (backported to some older
 * stable kernels); user space reads which from the kernel BTF and says so
 * in config.opts_kind.
 */
#include "capable_common.bpf.h"

static __always_inline __u32 cs_flags_from_opts(__u32 opts_kind, __u64 opts)
{
	if (opts_kind == 1)
		return opts ? CS_F_AUDIT : 0; /* int audit: SECURITY_CAP_AUDIT == 1 */
	return ((opts & CS_OPTS_NOAUDIT) ? 0 : CS_F_AUDIT) | ((opts & CS_OPTS_INSETID) ? CS_F_INSETID : 0);
}

SEC("fexit/cap_capable")
int BPF_PROG(cs_cap_capable_fexit, const struct cred *cred, struct user_namespace *target_ns,
	     int cap, unsigned int opts, int ret)
{
	__u32 zero = 0;
	struct cs_config *cfg = bpf_map_lookup_elem(&cfg_map, &zero);
	__u32 kind = cfg ? cfg->opts_kind : 0;

	return cs_handle_check(ctx, cred, target_ns, cap, ret, true, cs_flags_from_opts(kind, opts),
			       kind == 1 ? CS_AUDIT_SRC_AUDIT_ARG : CS_AUDIT_SRC_OPTS, 0);
}
