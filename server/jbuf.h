/*
 * jbuf.h - appending text and JSON pieces to a struct graph_buf.
 *
 * What always holds: on failure (out of memory) a buffer keeps what it had
 * and the call returns -1; callers build a whole answer and check once via
 * the sticky `failed` convention of their own, or per call.
 */
#ifndef TRIAD_JBUF_H
#define TRIAD_JBUF_H

#include <stddef.h>
#include <stdint.h>

#include "graph.h"

/* Append n bytes. 0 or -1 (out of memory). O(n) amortised. */
int jbuf_add(struct graph_buf *b, const void *p, size_t n);

/* Append printf-style text. 0 or -1. */
int jbuf_printf(struct graph_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Append s as a JSON string literal (quotes included), escaping quotes,
 * backslashes and control bytes; a byte that does not start a well-formed
 * UTF-8 character (a client's raw bytes, a message cut inside one) becomes
 * U+FFFD, so the output is always valid JSON. 0 or -1. O(strlen(s)). */
int jbuf_str(struct graph_buf *b, const char *s);

#endif
