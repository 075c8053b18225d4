/*
 * query.h - the HTTP query-string and id parsing of the service.
 *
 * What always holds:
 * - A query string is "key=value" pairs joined by '&' (empty pairs are
 *   skipped). Every key must be one the handler declares, at most once,
 *   and every value is a strict unsigned decimal within the declared
 *   range. No percent-decoding: ids and counts never need it.
 * - Input is untrusted (straight from the request line); nothing in it can
 *   make these functions read outside the string or crash.
 *
 * Split out of serve.c so tests/fuzz_query.c fuzzes the code the server
 * runs. Workload: a few short parameters per request; no allocation.
 */
#ifndef TRIAD_QUERY_H
#define TRIAD_QUERY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Strict unsigned decimal p[0..n): one digit or more (leading zeros, any
 * number of them, do not count towards overflow), no sign, no space, no
 * overflow past UINT64_MAX. 0 with *out set, or -1 (*out untouched). O(n).
 */
int query_u64(const char *p, size_t n, uint64_t *out);

/* One declared parameter: filled in by the handler, val/seen by the parser. */
struct query_param {
	const char *name; /* key, NUL-terminated */
	int required;     /* 1: missing is an error */
	uint64_t min, max; /* inclusive range of the value */
	uint64_t val;     /* in: default; out: the value when seen */
	int seen;         /* in: 0; out: times the key appeared (0 or 1) */
};

/*
 * Parse qs (NUL-terminated; NULL is the empty string) against
 * params[0..n). Returns 0 with each seen parameter's val set, or -1 with a
 * lowercase message in msg[0..msz) naming the parameter at fault (unknown
 * key, repeated key, missing value, not a decimal, negative, too large,
 * out of range, missing required). O(length of qs * n).
 */
int query_parse(const char *qs, struct query_param *params, size_t n,
		char *msg, size_t msz);

#endif
