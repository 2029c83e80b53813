/*
 * Attaches one of bench/empty_tp.bpf.c's tp_btf programs and waits for
 * SIGINT/SIGTERM; prints "attached" once it is. Usage:
 *   cs_bench_empty_attach [empty|stream|count|clock]   (default empty: the floor)
 * `stream` also drains its ring buffer every millisecond, as a reader would.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "empty_tp_load.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int discard(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "empty";
	struct ring_buffer *rb = NULL;
	struct bpf_program *prog;
	struct bpf_link *link;
	struct empty_tp *s;
	char name[32];

	if (strcmp(kind, "empty") && strcmp(kind, "stream") && strcmp(kind, "count") &&
	    strcmp(kind, "clock")) {
		fprintf(stderr, "empty_attach: unknown program %s (empty, stream, count or clock)\n",
			kind);
		return 2;
	}
	snprintf(name, sizeof(name), "cs_bench_%s", kind);
	prog = empty_tp_load_one("empty_attach", name, &s);
	if (!prog) {
		empty_tp__destroy(s);
		return 1;
	}
	link = bpf_program__attach(prog);
	if (!link) {
		fprintf(stderr, "empty_attach: cannot attach %s to tp_btf/cap_capable\n", kind);
		return 1;
	}
	if (prog == s->progs.cs_bench_stream) {
		rb = ring_buffer__new(bpf_map__fd(s->maps.cs_bench_ring), discard, NULL, NULL);
		/* Undrained, the ring fills and the program would time failed reservations. */
		if (!rb) {
			fprintf(stderr, "empty_attach: cannot open the stream program's ring buffer\n");
			return 1;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("attached\n");
	fflush(stdout);
	while (!stop) {
		if (rb) {
			ring_buffer__consume(rb);
			usleep(1000);
		} else {
			pause();
		}
	}
	ring_buffer__free(rb);
	bpf_link__destroy(link);
	empty_tp__destroy(s);
	return 0;
}
