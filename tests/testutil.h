/*
 * testutil.h - assertions for hot loops in tests.
 *
 * Check's ck_assert_* records its location on every *passing* call (a
 * write() to the runner), which makes a differential test with millions of
 * comparisons spend its time in the kernel. These only talk to Check when
 * they fail, with the same message shape.
 */
#ifndef TRIAD_TESTUTIL_H
#define TRIAD_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define REQ_OP(a, op, b)                                                     \
	do {                                                                 \
		uintmax_t req_a_ = (uintmax_t)(a), req_b_ = (uintmax_t)(b);  \
		if (!(req_a_ op req_b_))                                     \
			ck_abort_msg("%s:%d: '%s %s %s' failed: %ju vs %ju", \
				     __FILE__, __LINE__, #a, #op, #b,        \
				     req_a_, req_b_);                        \
	} while (0)

#define REQ_EQ(a, b) REQ_OP(a, ==, b)
#define REQ_NE(a, b) REQ_OP(a, !=, b)
#define REQ_LT(a, b) REQ_OP(a, <, b)
#define REQ_LE(a, b) REQ_OP(a, <=, b)
#define REQ_GT(a, b) REQ_OP(a, >, b)
#define REQ_GE(a, b) REQ_OP(a, >=, b)
#define REQ(c)                                                               \
	do {                                                                 \
		if (!(c))                                                    \
			ck_abort_msg("%s:%d: '%s' failed", __FILE__,         \
				     __LINE__, #c);                          \
	} while (0)

/* Run one suite (each test in its own process, Check's default) and turn
 * the outcome into the exit status. */
static inline int testutil_main(Suite *s)
{
	SRunner *r = srunner_create(s);
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}

/*
 * Personalised PageRank from u by power iteration on an n x n adjacency
 * matrix (adj[a * n + b] == 1 is an edge; other values are not), the
 * reference the push tests compare with: p = alpha e_u + (1 - alpha) p W,
 * `iters` rounds (the mass left is (1 - alpha)^iters). p gets n values.
 */
static inline void testutil_ppr_power(const uint8_t *adj, uint32_t n,
				      uint32_t u, double alpha, unsigned iters,
				      double *p)
{
	double *r = calloc(n, sizeof(double)), *nr = calloc(n, sizeof(double));
	uint32_t *deg = calloc(n, sizeof(uint32_t));

	ck_assert(r && nr && deg);
	for (uint32_t a = 0; a < n; a++) {
		for (uint32_t b = 0; b < n; b++)
			deg[a] += adj[(size_t)a * n + b] == 1;
		p[a] = 0;
	}
	r[u] = 1;
	for (unsigned it = 0; it < iters; it++) {
		memset(nr, 0, n * sizeof(double));
		for (uint32_t a = 0; a < n; a++) {
			p[a] += alpha * r[a];
			for (uint32_t b = 0; b < n; b++)
				if (adj[(size_t)a * n + b] == 1)
					nr[b] += (1 - alpha) * r[a] / deg[a];
		}
		memcpy(r, nr, n * sizeof(double));
	}
	free(r);
	free(nr);
	free(deg);
}

#endif
