/*
 * fuzz_event.c - event_parse on arbitrary bytes: never crashes, the fast
 * scanner and json-c agree (same rc, same event), accepted events obey
 * graph/event.h (src != dst unless EVENT_ALLOW_SELF, op add or remove).
 */
#include <string.h>

#include "event.h"
#include "fuzz.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

static struct event_parser *fz_event_p;

static void fz_event_one_flags(const char *s, size_t n, unsigned flags)
{
	struct graph_event a, b;
	struct err ea = { "" }, eb = { "" };
	int ra, rb;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	ra = event_parse_flags(fz_event_p, s, n, 1234567u, flags, &a, &ea);
	rb = event_parse_flags(fz_event_p, s, n, 1234567u,
			       flags | EVENT_SLOW_PATH, &b, &eb);
	FUZZ_REQUIRE(ra == rb);
	if (ra) {
		FUZZ_REQUIRE(ra == -1);
		FUZZ_REQUIRE(ea.msg[0] != '\0' && eb.msg[0] != '\0');
		return;
	}
	FUZZ_REQUIRE(a.src == b.src && a.dst == b.dst && a.ts == b.ts &&
		     a.op == b.op);
	FUZZ_REQUIRE(a.op == GRAPH_ADD || a.op == GRAPH_REMOVE);
	if (!(flags & EVENT_ALLOW_SELF))
		FUZZ_REQUIRE(a.src != a.dst);
}

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	if (!fz_event_p) {
		fz_event_p = event_parser_new();
		if (!fz_event_p)
			return 0;
	}
	fz_event_one_flags((const char *)data, size, 0);
	fz_event_one_flags((const char *)data, size, EVENT_ALLOW_SELF);
	return 0;
}
