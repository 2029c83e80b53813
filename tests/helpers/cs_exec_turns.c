/*
 * N times: forks a child that makes one CAP_SETUID check (setuid(0)) and at
 * once execs PROGRAM (cs_setuid_loop 1), which makes one more. Each child's
 * pid thus checks the same capability from two images within microseconds.
 * A tracer that hands the exec over before the first check must still name
 * the first check's binary as this program's. Run as root.
 * Usage: cs_exec_turns N PROGRAM
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[1]) : 0;

	if (n <= 0) {
		fprintf(stderr, "usage: cs_exec_turns N PROGRAM\n");
		return 2;
	}
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		int st = 0;

		if (pid < 0) {
			perror("cs_exec_turns: fork");
			return 1;
		}
		if (pid == 0) {
			if (syscall(SYS_setuid, 0) != 0)
				_exit(3);
			execl(argv[2], "cs_setuid_loop", "1", (char *)NULL);
			_exit(4);
		}
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "cs_exec_turns: child %d failed (status %#x)\n", pid, st);
			return 1;
		}
	}
	return 0;
}
