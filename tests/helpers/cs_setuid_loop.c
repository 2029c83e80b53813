/*
 * Makes exactly N capability checks of one kind: N calls of setuid(0) as
 * root, each checked against CAP_SETUID once. Used by the runtime tests (to
 * count events against bpftrace) and by the benchmark (the tight loop).
 * Usage: cs_setuid_loop N  -> prints the ns per call on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		syscall(SYS_setuid, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n);
	return 0;
}
