/*
 * Makes exactly N capability checks of one kind: N calls of setuid(0) as
 * root, each checked against CAP_SETUID once. Used by the runtime tests (to
 * count events against bpftrace) and by the benchmark (the tight loop).
 * Usage: cs_setuid_loop N [CHUNK]
 *   -> prints the ns per call of the whole run on stdout; with CHUNK, also
 *      the ns per call of each CHUNK calls, on the same line. The benchmark
 *      uses the chunks: this machine's noise comes in bursts that slow some
 *      chunks of a run and not others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHUNKS 4096

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	long chunk = argc > 2 ? atol(argv[2]) : 0;
	static double chunk_ns[MAX_CHUNKS];
	long nchunks = 0;
	double start, last;

	if (chunk <= 0 || chunk > n)
		chunk = n;
	start = last = now_ns();
	/* Chunk by chunk, so the calls themselves run in a loop with nothing else in it. */
	for (long done = 0; done < n;) {
		long k = n - done < chunk ? n - done : chunk;
		double t;

		for (long i = 0; i < k; i++)
			syscall(SYS_setuid, 0);
		done += k;
		t = now_ns();
		if (k == chunk && nchunks < MAX_CHUNKS)
			chunk_ns[nchunks++] = (t - last) / k;
		last = t;
	}
	printf("%.1f", (last - start) / (double)n);
	if (argc > 2)
		for (long c = 0; c < nchunks; c++)
			printf(" %.1f", chunk_ns[c]);
	printf("\n");
	return 0;
}
