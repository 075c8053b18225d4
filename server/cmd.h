/*
 * cmd.h - the subcommands of bin/triad.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status: 0 success, 1 runtime
 * failure (one line on stderr naming the file, line or member at fault),
 * 2 bad usage (one line on stderr). Each answers --help on stdout with 0.
 */
#ifndef TRIAD_CMD_H
#define TRIAD_CMD_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "query.h"

/* A decimal option value, at most max, read as the HTTP parameters are
 * (query_u64: digits only, no sign, no blanks, which strtoull would take,
 * no wrap-around). 0, or -1 when it is not. */
static inline int cmd_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (!s || query_u64(s, strlen(s), &v) || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A decimal option value with a fraction or exponent ("0.8", "1e5"):
 * it starts with a digit or a point (no sign, no blank, no "inf" or
 * "nan", which strtod would take), is not hexadecimal ("0x1p-1", which
 * strtod takes too) and is finite. 0, or -1 when not. */
static inline int cmd_real(const char *s, double *out)
{
	char *end;

	if (!s || !((unsigned)*s - '0' <= 9 || *s == '.') || strpbrk(s, "xX"))
		return -1;
	*out = strtod(s, &end);
	return *end || !isfinite(*out) ? -1 : 0;
}

/* Bad usage: "triad CMD: REASON (try 'triad CMD --help')" on stderr, one
 * line, the same shape in every command. Returns 2, the exit status. */
static inline int cmd_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int cmd_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "triad %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'triad %s --help')\n", cmd);
	return 2;
}

/* A value option may be given once: a second one silently replaced the
 * first (`-o a.snap -o b.snap` wrote b.snap). opts: the command's value
 * options, NULL-terminated (at most 32); *seen: a bit for each one
 * given so far. 0 the first time opt is given, -1 after saying "triad
 * CMD: option OPT given twice" on stderr (bad usage). */
static inline int cmd_once(const char *cmd, const char *opt,
			   const char *const *opts, unsigned *seen)
{
	unsigned b;

	for (b = 0; opts[b] && strcmp(opts[b], opt); b++)
		;
	if (*seen & (1u << b)) {
		cmd_usage(cmd, "option %s given twice", opt);
		return -1;
	}
	*seen |= 1u << b;
	return 0;
}

/* An input whose format neither --format nor its extension names is bad
 * usage when the file is there (`triad load` had it so; eval, train,
 * replay and serve --events failed with 1 instead); one that is not there
 * fails later, as any unreadable input does (1). 0, or -1 after saying
 * "triad CMD: "PATH": unknown file format (name it with --format)". */
static inline int cmd_format_known(const char *cmd, const char *path,
				   const char *format)
{
	if (format || !path || load_format_guess(path) || access(path, F_OK))
		return 0;
	cmd_usage(cmd, "\"%s\": unknown file format (name it with --format)",
		  path);
	return -1;
}

/* --brokers, --topic or --group naming nothing ("", or only commas and
 * blanks) is bad usage: serve ran on without ingest, logging that no
 * broker was configured (with --group '': ready, and never consumed),
 * and replay retried for 30 s, or sent to a topic "" that a real cluster
 * refuses. 0, or -1 after saying "triad CMD: empty OPT". */
static inline int cmd_kafka_name(const char *cmd, const char *opt,
				 const char *v)
{
	if (!v || v[strspn(v, ", \t")])
		return 0;
	cmd_usage(cmd, "empty %s", opt);
	return -1;
}

int cmd_load(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_kafka_mock(int argc, char **argv);

#endif
