/*
 * Loads one program of bench/empty_tp.bpf.c, by its name, and none of the
 * others (they would show up beside it in bpftool, and ab.sh finds programs
 * by name). Returns the program, or NULL with a one-line error on stderr.
 */
#ifndef CAPSCOPE_BENCH_EMPTY_TP_LOAD_H
#define CAPSCOPE_BENCH_EMPTY_TP_LOAD_H

#include <stdio.h>

#include "empty_tp.skel.h"

static struct bpf_program *empty_tp_load_one(const char *tool, const char *name,
					     struct empty_tp **skel)
{
	struct empty_tp *s = empty_tp__open();
	struct bpf_program *prog = s ? bpf_object__find_program_by_name(s->obj, name) : NULL;
	struct bpf_program *p;

	*skel = s;
	if (s && !prog) {
		fprintf(stderr, "%s: no program %s in bench/empty_tp.bpf.c\n", tool, name);
		return NULL;
	}
	if (s)
		bpf_object__for_each_program(p, s->obj)
			bpf_program__set_autoload(p, p == prog);
	if (!s || empty_tp__load(s)) {
		fprintf(stderr, "%s: cannot load the program %s (root and BTF needed)\n", tool, name);
		return NULL;
	}
	return prog;
}

#endif
