/*
 * Attaches one of bench/empty_tp.bpf.c's tp_btf programs and waits for
 * SIGINT/SIGTERM; prints "attached" once it is. Usage:
 *   cs_bench_empty_attach [empty|stream|count]   (default empty: the floor)
 * `stream` also drains its ring buffer every millisecond, as a reader would.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "empty_tp.skel.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int discard(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

static struct bpf_program *chosen(struct empty_tp *s, const char *kind)
{
	if (strcmp(kind, "empty") == 0)
		return s->progs.cs_bench_empty;
	if (strcmp(kind, "stream") == 0)
		return s->progs.cs_bench_stream;
	if (strcmp(kind, "count") == 0)
		return s->progs.cs_bench_count;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "empty";
	struct empty_tp *s = empty_tp__open();
	struct ring_buffer *rb = NULL;
	struct bpf_program *prog, *p;
	struct bpf_link *link;

	prog = s ? chosen(s, kind) : NULL;
	if (s && !prog) {
		fprintf(stderr, "empty_attach: unknown program %s (empty, stream or count)\n", kind);
		return 2;
	}
	/* Only the chosen program is loaded: the others would show up beside it in bpftool. */
	if (s)
		bpf_object__for_each_program(p, s->obj)
			bpf_program__set_autoload(p, p == prog);
	if (!s || empty_tp__load(s)) {
		fprintf(stderr, "empty_attach: cannot load the %s program (root and BTF needed)\n", kind);
		return 1;
	}
	link = bpf_program__attach(prog);
	if (!link) {
		fprintf(stderr, "empty_attach: cannot attach %s to tp_btf/cap_capable\n", kind);
		return 1;
	}
	if (prog == s->progs.cs_bench_stream)
		rb = ring_buffer__new(bpf_map__fd(s->maps.cs_bench_ring), discard, NULL, NULL);
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
