/*
 * fuzz_load.c - load_events (graph/load.h) on an arbitrary file, as
 * "edges", "csv" or "ndjson" (input length mod 3: 0, 1, 2; the seeds in
 * tests/corpus/load/ are padded with blank lines to pick theirs), strict
 * and with skip_bad. Checks: never crashes; an accepted event never has
 * src == dst; an op is add or remove (only ndjson has removes); a strict
 * load that succeeds gives the same events as a skip_bad load, with
 * nothing skipped.
 */
#include <string.h>

#include "fuzz.h"
#include "load.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

static void fz_load_format(const char *path, const char *format)
{
	struct load_opts o = { format, 0, 0, 1 };
	struct event_list strict = { 0 }, lax = { 0 };
	struct err e = { "" }, e2 = { "" };
	size_t i;
	int rs, rl;

	rs = load_events(path, &o, &strict, &e);
	o.skip_bad = 1;
	rl = load_events(path, &o, &lax, &e2);
	if (rs)
		FUZZ_REQUIRE(e.msg[0] != '\0');
	for (i = 0; i < lax.n; i++) {
		FUZZ_REQUIRE(lax.ev[i].src != lax.ev[i].dst);
		FUZZ_REQUIRE(lax.ev[i].op == GRAPH_ADD ||
			     (lax.ev[i].op == GRAPH_REMOVE &&
			      !strcmp(format, "ndjson")));
	}
	for (i = 0; i < strict.n; i++)
		FUZZ_REQUIRE(strict.ev[i].src != strict.ev[i].dst);
	if (!rs) {
		/* nothing was bad, so skipping changes nothing (a missing ts
		 * is the load's start time, which may differ by a second) */
		FUZZ_REQUIRE(rl == 0);
		FUZZ_REQUIRE(lax.bad_skipped == 0);
		FUZZ_REQUIRE(lax.n == strict.n);
		FUZZ_REQUIRE(lax.self_loops == strict.self_loops);
		for (i = 0; i < strict.n; i++)
			FUZZ_REQUIRE(lax.ev[i].src == strict.ev[i].src &&
				     lax.ev[i].dst == strict.ev[i].dst &&
				     lax.ev[i].op == strict.ev[i].op);
	}
	event_list_release(&strict);
	event_list_release(&lax);
}

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	char path[256];

	if (!fuzz_file("load", data, size, path, sizeof(path)))
		return 0;
	/* one format per input (by length, so a reproducer stays one):
	 * a streamed load allocates an 8 MiB buffer, which ASan makes slow
	 * enough that three formats per input cut the exec rate threefold */
	fz_load_format(path, size % 3 == 0 ? "edges" :
			     size % 3 == 1 ? "csv" : "ndjson");
	unlink(path);
	return 0;
}
