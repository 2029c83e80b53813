/* Attaches bench/empty_tp.bpf.c and waits for SIGINT/SIGTERM. Prints "attached". */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "empty_tp.skel.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(void)
{
	struct empty_tp *s = empty_tp__open_and_load();

	if (!s || empty_tp__attach(s)) {
		fprintf(stderr, "empty_attach: cannot load or attach\n");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("attached\n");
	fflush(stdout);
	while (!stop)
		pause();
	empty_tp__destroy(s);
	return 0;
}
