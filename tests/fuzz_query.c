/*
 * fuzz_query.c - query_parse and query_u64 (server/query.h) on arbitrary
 * query strings, with the parameter sets of GET /recommend and
 * POST /dismiss. Checks: success means every required key was seen and
 * every value is in range; failure always leaves a message; query_u64
 * agrees with a plain reference (strtoull on a digits-only string).
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "query.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

static void fz_query_check(const char *qs, struct query_param *p, size_t n)
{
	char msg[160];
	size_t i;

	msg[0] = '\0';
	if (query_parse(qs, p, n, msg, sizeof(msg))) {
		FUZZ_REQUIRE(msg[0] != '\0');
		return;
	}
	for (i = 0; i < n; i++) {
		FUZZ_REQUIRE(p[i].seen <= 1);
		if (p[i].required)
			FUZZ_REQUIRE(p[i].seen == 1);
		if (p[i].seen)
			FUZZ_REQUIRE(p[i].val >= p[i].min &&
				     p[i].val <= p[i].max);
	}
}

/* query_u64 against strtoull on the same digits, leading zeros (any
 * number of them) skipped first. */
static void fz_query_u64(const char *s, size_t n)
{
	char buf[32];
	uint64_t v = 0, ref;
	size_t i, z = 0;
	int ok = n >= 1, rc;

	for (i = 0; ok && i < n; i++)
		ok = s[i] >= '0' && s[i] <= '9';
	rc = query_u64(s, n, &v);
	if (!ok) {
		FUZZ_REQUIRE(rc == -1);
		return;
	}
	while (z + 1 < n && s[z] == '0')
		z++;
	if (n - z > 20) { /* 21 significant digits: past 2^64 */
		FUZZ_REQUIRE(rc == -1);
		return;
	}
	memcpy(buf, s + z, n - z);
	buf[n - z] = '\0';
	errno = 0;
	ref = strtoull(buf, NULL, 10);
	if (errno == ERANGE) {
		FUZZ_REQUIRE(rc == -1);
		return;
	}
	FUZZ_REQUIRE(rc == 0 && v == ref);
}

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	struct query_param rec[4] = {
		{ "member", 1, 0, UINT64_MAX, 0, 0 },
		{ "k", 0, 1, 1000, 10, 0 },
		{ "explain", 0, 0, 1, 0, 0 },
		{ "budget_ms", 0, 1, 60000, 0, 0 },
	};
	struct query_param dis[2] = {
		{ "member", 1, 0, UINT64_MAX, 0, 0 },
		{ "candidate", 1, 0, UINT64_MAX, 0, 0 },
	};
	char *qs;

	/* the server sees a NUL-terminated string: cut at the first NUL */
	qs = malloc(size + 1);
	if (!qs)
		return 0;
	memcpy(qs, data, size);
	qs[size] = '\0';
	fz_query_check(qs, rec, 4);
	fz_query_check(qs, dis, 2);
	fz_query_u64((const char *)data, size);
	free(qs);
	return 0;
}
