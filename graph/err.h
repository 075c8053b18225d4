/*
 * err.h - error messages for library code.
 *
 * Library functions never print and never exit. A function that can fail
 * takes a `struct err *` (which may be NULL when the caller does not care),
 * returns a negative status and fills the message. Messages are lowercase,
 * quote the thing at fault and end without a full stop, e.g.
 *   data/x.txt:17: "abc" is not a member id
 */
#ifndef TRIAD_ERR_H
#define TRIAD_ERR_H

#define ERR_MSG_MAX 512

struct err {
	char msg[ERR_MSG_MAX]; /* NUL-terminated; "" while no error */
};

/* Format a message into e (when e is not NULL). Always returns -1. */
int err_set(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefix the current message with "prefix: " (e.g. a file name). */
void err_prefix(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reset to the empty message. */
void err_clear(struct err *e);

#endif
