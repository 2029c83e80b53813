/*
 * Runs N threads one after the other, each making two setuid(0) checks (raw
 * syscalls: glibc's setuid() would make every thread of the process repeat
 * it), and prints each thread's tid, one a line, in order. Between threads the
 * main thread sleeps a little and makes no capability check, so a thread's
 * checks come right after its predecessor's on the CPU, often from the kernel
 * stack that predecessor freed: the case the tracepoint program's per-CPU
 * memo of the checking task must get right. Used by the runtime tests.
 * Usage: cs_thread_turns N
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void *turn(void *out)
{
	*(long *)out = syscall(SYS_gettid);
	if (syscall(SYS_setuid, 0) != 0 || syscall(SYS_setuid, 0) != 0)
		*(long *)out = -1;
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;
	/* Past an RCU grace period: a freed kernel stack returns to the CPU's cache after one. */
	struct timespec pause = {0, 3 * 1000 * 1000};
	pthread_t t;
	long tid;

	for (long i = 0; i < n; i++) {
		if (pthread_create(&t, NULL, turn, &tid) != 0 || pthread_join(t, NULL) != 0 || tid < 0) {
			perror("cs_thread_turns");
			return 1;
		}
		printf("%ld\n", tid);
		nanosleep(&pause, NULL);
	}
	return 0;
}
