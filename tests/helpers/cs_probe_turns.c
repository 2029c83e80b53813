/*
 * Makes, N times in turn from one thread, a no-audit probe and an audited
 * need of the same capability, CAP_SYS_ADMIN:
 *   probe  mmap of a private writable anonymous page (its memory accounting
 *          asks cap_vm_enough_memory, with CAP_OPT_NOAUDIT), then munmap
 *   need   sethostname to the name the host already has, in a UTS namespace
 *          of its own (unshare(CLONE_NEWUTS) once at start, itself a need)
 * A tracer that reuses an audit decision across checks whose kernel call
 * chains differ would give the two the same flag. Run as root.
 * Usage: cs_probe_turns N
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	char name[256];

	if (unshare(CLONE_NEWUTS) != 0) {
		perror("cs_probe_turns: unshare(CLONE_NEWUTS)");
		return 1;
	}
	if (gethostname(name, sizeof(name)) != 0) {
		perror("cs_probe_turns: gethostname");
		return 1;
	}
	for (long i = 0; i < n; i++) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("cs_probe_turns: mmap");
			return 1;
		}
		munmap(p, 4096);
		if (sethostname(name, strlen(name)) != 0) {
			perror("cs_probe_turns: sethostname");
			return 1;
		}
	}
	return 0;
}
