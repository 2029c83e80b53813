// SPDX-License-Identifier: GPL-2.0
/* The floor of the benchmark: an empty program on the same tracepoint. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_bench_empty)
{
	return 0;
}
