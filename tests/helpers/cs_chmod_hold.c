/*
 * Waits BEFORE_MS milliseconds, changes the mode of PATH to 0600, says how that
 * went on stderr, then stays for SECONDS and exits 0. Linked statically so that it runs as a container's PID 1
 * from a bind mount, whatever the image holds: the agent's test of a Sigkill
 * policy against a process the kernel will not kill from inside its namespace.
 * Usage: cs_chmod_hold PATH BEFORE_MS SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: cs_chmod_hold PATH BEFORE_MS SECONDS\n");
		return 2;
	}
	usleep((useconds_t)atoi(argv[2]) * 1000);
	if (chmod(argv[1], 0600) != 0)
		perror("cs_chmod_hold: chmod");
	else
		fprintf(stderr, "cs_chmod_hold: chmod done\n");
	sleep((unsigned)atoi(argv[3]));
	return 0;
}
