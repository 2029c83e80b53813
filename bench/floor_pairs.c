/*
 * The floor's added cost measured in pairs within one process: chunks of
 * setuid(0) calls with nothing attached and with the empty program attached
 * (bench/empty_tp.bpf.c), one right after the other, the order alternating
 * from pair to pair so a slow drift cancels out.
 *
 * Why: bench/run.sh takes the floor as the difference of two separate runs'
 * figures (the loop with the empty program, the loop with nothing), and on
 * these machines that difference moved from 38 to 127 ns between runs of the
 * same build while each program's own time stayed put. Here both halves of
 * a difference run seconds apart in one process, on the same pages.
 *
 * Usage: cs_bench_floor_pairs PAIRS CHUNK [tp_btf|classic]
 *   (classic: the empty program on the perf tracepoint, where bpftrace attaches)
 *   -> one line per pair, "none_ns floor_ns" (ns per call of each chunk),
 *      then "floor_added MEDIAN" (the median of the pairs' differences).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "empty_tp_load.h"

#define MAX_PAIRS 1000

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* ns per call of `calls` setuid(0) calls. */
static double timed_chunk(long calls)
{
	double start = now_ns();

	for (long i = 0; i < calls; i++)
		syscall(SYS_setuid, 0);
	return (now_ns() - start) / (double)calls;
}

/* One chunk with the empty program attached: attach, time, detach. */
static int timed_attached_chunk(struct bpf_program *prog, long calls, double *ns)
{
	struct bpf_link *link = bpf_program__attach(prog);

	if (!link) {
		fprintf(stderr, "floor_pairs: cannot attach the empty program to tp_btf/cap_capable\n");
		return -1;
	}
	*ns = timed_chunk(calls);
	bpf_link__destroy(link);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 40;
	long chunk = argc > 2 ? atol(argv[2]) : 100000;
	static double diff[MAX_PAIRS];
	const char *kind = argc > 3 ? argv[3] : "tp_btf";
	struct bpf_program *prog;
	struct empty_tp *skel;

	if (pairs < 1 || pairs > MAX_PAIRS || chunk < 1) {
		fprintf(stderr, "floor_pairs: usage: cs_bench_floor_pairs PAIRS(1-%d) CHUNK(>0) [tp_btf|classic]\n",
			MAX_PAIRS);
		return 2;
	}
	if (strcmp(kind, "tp_btf") && strcmp(kind, "classic")) {
		fprintf(stderr, "floor_pairs: unknown kind %s (tp_btf or classic)\n", kind);
		return 2;
	}
	prog = empty_tp_load_one("floor_pairs",
				 strcmp(kind, "classic") ? "cs_bench_empty" : "cs_bench_empty_classic",
				 &skel);
	if (!prog) {
		empty_tp__destroy(skel);
		return 1;
	}
	timed_chunk(chunk); /* warm-up: page faults, caches */
	for (long p = 0; p < pairs; p++) {
		double none, floor;

		if (p % 2 == 0) {
			none = timed_chunk(chunk);
			if (timed_attached_chunk(prog, chunk, &floor))
				goto fail;
		} else {
			if (timed_attached_chunk(prog, chunk, &floor))
				goto fail;
			none = timed_chunk(chunk);
		}
		diff[p] = floor - none;
		printf("%.1f %.1f\n", none, floor);
	}
	qsort(diff, pairs, sizeof(diff[0]), cmp_double);
	printf("floor_added %.1f\n",
	       pairs % 2 ? diff[pairs / 2] : (diff[pairs / 2 - 1] + diff[pairs / 2]) / 2);
	empty_tp__destroy(skel);
	return 0;
fail:
	empty_tp__destroy(skel);
	return 1;
}
