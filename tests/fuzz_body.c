/*
 * fuzz_body.c - a POST /edges body as the server reads it: ndjson_next
 * splits it (server/ndjson.h), event_parse reads each non-empty line.
 * Checks: lines cover the body in order without overlap, line numbers
 * count up by one, and a line the server accepts is a proper event.
 */
#include <string.h>

#include "event.h"
#include "fuzz.h"
#include "ndjson.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

static struct event_parser *fz_body_p;

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data, *s, *prev_end = body;
	struct ndjson_cursor cur;
	size_t n, lines = 0, newlines = 0, i, accepted = 0, rejected = 0;

	if (!fz_body_p) {
		fz_body_p = event_parser_new();
		if (!fz_body_p)
			return 0;
	}
	for (i = 0; i < size; i++)
		newlines += body[i] == '\n';
	ndjson_init(&cur, size ? body : NULL, size);
	while (ndjson_next(&cur, &s, &n)) {
		struct graph_event ev;
		struct err e = { "" };

		lines++;
		FUZZ_REQUIRE(cur.line == lines);
		FUZZ_REQUIRE(s >= prev_end && s + n <= body + size);
		FUZZ_REQUIRE(!memchr(s, '\n', n));
		if (n) {
			FUZZ_REQUIRE(s[0] != ' ' && s[0] != '\t');
			FUZZ_REQUIRE(s[n - 1] != '\r' && s[n - 1] != ' ' &&
				     s[n - 1] != '\t');
		}
		prev_end = s + n;
		if (!n)
			continue;
		if (event_parse(fz_body_p, s, n, 1700000000u, &ev, &e)) {
			FUZZ_REQUIRE(e.msg[0] != '\0');
			rejected++;
			continue;
		}
		FUZZ_REQUIRE(ev.src != ev.dst);
		FUZZ_REQUIRE(ev.op == GRAPH_ADD || ev.op == GRAPH_REMOVE);
		accepted++;
	}
	/* one line per '\n', plus the tail when the body does not end in one */
	FUZZ_REQUIRE(lines == newlines + (size && body[size - 1] != '\n'));
	FUZZ_REQUIRE(accepted + rejected <= lines);
	return 0;
}
