/*
 * Makes N setuid(0) checks (CAP_SETUID, granted as root), then moves itself
 * into another cgroup by writing its pid to that cgroup's cgroup.procs, then
 * makes N more from the same thread. A recorder that follows the first cgroup
 * must count exactly the first N: one that remembered "this task's checks are
 * the subject's" across the move would count 2N. The move is open, write and
 * close alone (no stdio buffer, whose allocation could make a capability check
 * of its own between the two runs and hide such a memory).
 * Usage: cs_cgroup_hop N CGROUP_PROCS_FILE
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void checks(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_setuid, 0);
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[1]) : 0;
	char pid[32];
	int fd, len;

	if (n <= 0) {
		fprintf(stderr, "usage: cs_cgroup_hop N CGROUP_PROCS_FILE\n");
		return 2;
	}
	len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	checks(n);
	fd = open(argv[2], O_WRONLY);
	if (fd < 0 || write(fd, pid, len) != len || close(fd) != 0) {
		perror("cs_cgroup_hop: moving into the other cgroup");
		return 1;
	}
	checks(n);
	return 0;
}
