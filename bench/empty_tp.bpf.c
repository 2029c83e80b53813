// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of the benchmark, an empty program on the same tracepoint, and
 * two reference programs that do the least a tracer of each kind can do:
 * what any tool pays on this kernel and CPU, whatever its design.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_bench_empty)
{
	return 0;
}

/*
 * The same, on the classic (perf) tracepoint, as bpftrace's tracepoint probes
 * attach: the kernel fills the event's fields in a per-CPU buffer before it
 * runs the program. For floor_pairs' classic figure only.
 */
SEC("tracepoint/capability/cap_capable")
int cs_bench_empty_classic(void *ctx)
{
	return 0;
}

/*
 * The least a streaming tracer does: one record a check on a BPF ring buffer,
 * with a timestamp and who checked what (32 bytes), no wakeup (the reader
 * polls). capscope's -o json adds, on top of this, the decision about the
 * audit flag, the filters and a 120-byte record.
 */
struct cs_bench_rec {
	__u64 ktime_ns;
	__u64 pid_tgid;
	__s32 cap;
	__s32 ret;
	__u64 cgroup_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} cs_bench_ring SEC(".maps");

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_bench_stream, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	struct cs_bench_rec *r = bpf_ringbuf_reserve(&cs_bench_ring, sizeof(*r), 0);

	if (!r)
		return 0;
	r->ktime_ns = bpf_ktime_get_ns();
	r->pid_tgid = bpf_get_current_pid_tgid();
	r->cap = cap;
	r->ret = ret;
	r->cgroup_id = bpf_get_current_cgroup_id();
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	return 0;
}

/*
 * What a nanosecond timestamp costs by itself: one bpf_ktime_get_ns() a check,
 * as every streaming tracer takes for its events' time (the helper reads the
 * clocksource through calls that the CPU's return-stack mitigations make dear).
 * Tracing programs cannot take bpf_ktime_get_coarse_ns().
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cs_bench_last_ns SEC(".maps");

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_bench_clock)
{
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&cs_bench_last_ns, &zero);

	if (last)
		*last = bpf_ktime_get_ns();
	return 0;
}

/*
 * The least an aggregating tracer does: a per-CPU count per capability and
 * verdict, no key of who checked. capscope's record adds, on top of this,
 * the subject (cgroup), the audit flag, the syscall and the binary in its key.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} cs_bench_counts SEC(".maps");

SEC("tp_btf/cap_capable")
int BPF_PROG(cs_bench_count, const struct cred *cred, struct user_namespace *target_ns,
	     const struct user_namespace *capable_ns, int cap, int ret)
{
	__u32 key = ((__u32)cap & 63) | (ret ? 64 : 0);
	__u64 *n = bpf_map_lookup_elem(&cs_bench_counts, &key);

	if (n)
		*n += 1;
	return 0;
}
