/*
 * A workload that needs exactly three capabilities, one operation each:
 *   CAP_CHOWN            chown FILE to 1:1 (a file the caller does not own, or as root)
 *   CAP_NET_BIND_SERVICE bind 127.0.0.1:PORT, a port below 1024
 *   CAP_SYS_NICE         raise its own priority to nice -5
 * Usage: cs_needs FILE PORT
 * The exit status is a bit mask of what failed (1 chown, 2 bind, 4 nice), so
 * a test sees exactly which capability a confined run lacked.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static int try_chown(const char *file)
{
	if (chown(file, 1, 1) == 0)
		return 0;
	perror("cs_needs: chown");
	return 1;
}

static int try_bind(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int failed;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	failed = fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0;
	if (failed)
		perror("cs_needs: bind");
	if (fd >= 0)
		close(fd);
	return failed ? 2 : 0;
}

static int try_nice(void)
{
	if (setpriority(PRIO_PROCESS, 0, -5) == 0)
		return 0;
	perror("cs_needs: setpriority -5");
	return 4;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: cs_needs FILE PORT\n");
		return 64;
	}
	return try_chown(argv[1]) | try_bind(atoi(argv[2])) | try_nice();
}
