/*
 * fuzz_import.c - the igraph formats through load_events (graph/import.c):
 * the input as ncol, lgl, pajek, gml or graphml (input length mod 5: 0..4;
 * the seeds in tests/corpus/import/ are padded with blank lines or spaces
 * to pick theirs), undirected or --directed (length / 5, odd). Checks:
 * never crashes or aborts (igraph's errors go to our handler); a refusal
 * has a message that names the file; an accepted event is an add with
 * src != dst; a line number triad puts in a message is within the file.
 */
#include <string.h>

#include "fuzz.h"
#include "load.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

static const char *const fz_import_fmt[] = { "ncol", "lgl", "pajek", "gml",
					     "graphml" };

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	struct load_opts o = { fz_import_fmt[size % 5], 0,
			       (int)((size / 5) & 1), 1 };
	struct event_list l = { 0 };
	struct err e = { "" };
	char path[256];
	const char *at;
	size_t i, lines = 1;

	if (size > 1 << 16 || !fuzz_file("import", data, size, path,
					 sizeof(path)))
		return 0;
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (load_events(path, &o, &l, &e)) {
		FUZZ_REQUIRE(!strncmp(e.msg, path, strlen(path)));
		/* "..., line N (": the corrected number stays in the file */
		at = strstr(e.msg, ", line ");
		if (at && strstr(e.msg, "unexpected end of line"))
			FUZZ_REQUIRE(strtoul(at + 7, NULL, 10) >= 1 &&
				     strtoul(at + 7, NULL, 10) <= lines);
	}
	for (i = 0; i < l.n; i++)
		FUZZ_REQUIRE(l.ev[i].src != l.ev[i].dst &&
			     l.ev[i].op == GRAPH_ADD);
	event_list_release(&l);
	unlink(path);
	return 0;
}
