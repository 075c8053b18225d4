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
#include <stdint.h>
#include <stdlib.h>

/* A decimal option value: digits only (no sign, no blanks, which strtoull
 * would take, and no wrap-around), at most max. 0, or -1 when it is not. */
static inline int cmd_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)*s - '0';

		if (d > 9 || d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* A decimal option value with a fraction or exponent ("0.8", "1e5"):
 * it starts with a digit or a point (no sign, no blank, no "inf" or
 * "nan", which strtod would take) and is finite. 0, or -1 when not. */
static inline int cmd_real(const char *s, double *out)
{
	char *end;

	if (!s || !((unsigned)*s - '0' <= 9 || *s == '.'))
		return -1;
	*out = strtod(s, &end);
	return *end || !isfinite(*out) ? -1 : 0;
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
