/*
 * event.h - one JSON edge event, parsed and checked.
 *
 * What always holds:
 * - Input is one JSON object as in CONTRACT.md "Events":
 *     {"op":"add","src":1001,"dst":2002,"ts":1700000000}
 *   op is "add" (default) or "remove"; src and dst are unsigned 64-bit
 *   member ids given as JSON integers or as decimal strings (digits only:
 *   no sign, no space, no leading "+", at most UINT64_MAX); ts is a JSON
 *   integer 0..UINT32_MAX and defaults to the caller's `now`. Unknown
 *   fields are ignored. Doubles, booleans and null are never ids or ts.
 * - Only whitespace may follow the object.
 * - The parser never trusts its input: any byte string gives either a
 *   checked event or an error message; nothing it reads can crash it.
 *
 * Workload: NDJSON bodies and Kafka messages of ~60 bytes each, one parser
 * per thread. A plain flat object ("src":1 or "src":"1", no escapes, no
 * nesting) is read by a small scanner without allocating; anything else,
 * and every error, goes through json-c (its tokener is reused between
 * calls), so both paths give the same answer.
 */
#ifndef TRIAD_EVENT_H
#define TRIAD_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "graph.h"

struct event_parser; /* opaque: a reusable json_tokener */

/* A new parser. NULL when out of memory. Not thread-safe: one per thread. */
struct event_parser *event_parser_new(void);

/* Free the parser. NULL does nothing. */
void event_parser_free(struct event_parser *p);

/* Flags of event_parse_flags. */
#define EVENT_ALLOW_SELF 1u /* accept src == dst (file loading drops and
			       counts them instead of failing) */
#define EVENT_SLOW_PATH 2u  /* always use json-c (tests compare the plain
			       fast path against it); same answers */

/*
 * Parse one event from s[0..n) (no NUL needed; a NUL byte inside is an
 * error). `now` is the ts used when "ts" is absent.
 * Returns 0 with *ev filled, or -1 with e->msg naming the field at fault,
 * without a location prefix (callers add "line N: " or "offset N: "),
 * e.g.  "src" "12a" is not a decimal member id
 * *ev is unspecified after an error. O(n) time.
 */
int event_parse(struct event_parser *p, const char *s, size_t n, uint32_t now,
		struct graph_event *ev, struct err *e);

/* The same with flags (EVENT_ALLOW_SELF); event_parse is flags = 0. */
int event_parse_flags(struct event_parser *p, const char *s, size_t n,
		      uint32_t now, unsigned flags, struct graph_event *ev,
		      struct err *e);

#endif
