/*
 * ndjson.h - splitting an NDJSON body into lines, as POST /edges reads it.
 *
 * What always holds:
 * - Lines end at '\n'; the last line may lack it. Leading spaces and tabs
 *   and trailing spaces, tabs and '\r' are trimmed; a line that trims to
 *   nothing is still returned (with n == 0) so line numbers stay those of
 *   the body. NUL bytes are ordinary bytes (the event parser refuses them).
 * - Never reads outside buf[0..len); the cursor holds pointers into buf
 *   and allocates nothing.
 *
 * Split out of serve.c so tests/fuzz_body.c fuzzes the exact splitting the
 * server runs (each line then goes to event_parse, graph/event.h).
 */
#ifndef TRIAD_NDJSON_H
#define TRIAD_NDJSON_H

#include <stddef.h>

struct ndjson_cursor {
	const char *p, *end; /* unread part of the body */
	size_t line;         /* 1-based number of the line last returned */
};

/* Start reading buf[0..len). buf may be NULL when len is 0. */
void ndjson_init(struct ndjson_cursor *c, const char *buf, size_t len);

/*
 * The next line, trimmed: 1 with *s, *n set (n may be 0) and c->line its
 * number, or 0 at the end of the body. O(length of the line).
 */
int ndjson_next(struct ndjson_cursor *c, const char **s, size_t *n);

#endif
