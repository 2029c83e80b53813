/*
 * Starts N processes that sleep until this one ends, prints N on stdout once all
 * run, and sleeps. Its children die with it (PR_SET_PDEATHSIG). The agent's soak
 * test uses it to fill the process cache. Usage: cs_sleepers N
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	pid_t parent = getpid();
	long started = 0;

	for (; started < n; started++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("cs_sleepers: fork");
			break;
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
	}
	printf("%ld\n", started);
	fflush(stdout);
	for (;;)
		pause();
}
