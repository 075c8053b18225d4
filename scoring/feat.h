/*
 * feat.h - the one feature module: every number a ranking method or model
 * sees about a (member, candidate) pair. train, eval, recommend and the
 * server all call feat_compute, so a model sees the same values offline
 * and online.
 *
 * What always holds:
 * - Features are computed on one graph view for member u and candidate c
 *   (c != u, usually not adjacent), relative to a reference time `now`
 *   (seconds): the split time offline, the newest event ts when serving.
 *   Timestamps newer than `now` count as age 0.
 * - Common-neighbour features are exact (one graph_common merge, or the
 *   friends-of-friends counts when that read every path), whatever caps
 *   the candidate generators used. Adamic-Adar and resource allocation are
 *   fixed-point sums (cand.h), so the order mutual connections arrive in
 *   does not change a bit of them; past 11.6 million mutual connections
 *   they saturate (at 2^24) rather than wrap.
 * - Values are finite; counts with heavy tails are given as log1p(...) so a
 *   linear model can use them directly (the model normalises on top).
 */
#ifndef TRIAD_FEAT_H
#define TRIAD_FEAT_H

#include <stdint.h>

#include "cand.h"
#include "graph.h"

enum feat_id {
	FEAT_MUTUAL,         /* |N(u) & N(c)| */
	FEAT_ADAMIC_ADAR,    /* sum over mutual w of 1 / ln d_w */
	FEAT_RESOURCE_ALLOC, /* sum over mutual w of 1 / d_w */
	FEAT_JACCARD,        /* mutual / |N(u) | N(c)| */
	FEAT_COSINE,         /* mutual / sqrt(d_u d_c) (Salton) */
	FEAT_PREF_ATTACH,    /* ln(1 + d_u d_c) */
	FEAT_DEG_MEMBER,     /* ln(1 + d_u) */
	FEAT_DEG_CAND,       /* ln(1 + d_c) */
	FEAT_WALK,           /* ln(1 + random-walk visits) */
	FEAT_PPR,            /* ln(1 + 10^4 * PPR estimate) */
	FEAT_RECENT_MUTUAL,  /* sum over w of exp(-(age(u,w) + age(c,w)) / FEAT_TAU) */
	FEAT_MUTUAL_AGE,     /* ln(1 + hours since the newest edge to a mutual w) */
	FEAT_CAND_AGE,       /* ln(1 + hours since c's newest edge) */
	FEAT_CAND_RECENT,    /* ln(1 + c's edges, of its newest 32, younger than FEAT_TAU) */
	FEAT_LOG_MUTUAL,     /* ln(1 + mutual) */
	FEAT_TREND,          /* ln(1 + c's activity) when c is among the most
			      * active members lately (trend.h), else 0 */
	FEAT_N
};

#define FEAT_BIT(f) (1u << (f))
#define FEAT_ALL ((1u << FEAT_N) - 1u)
/* Features that read edge timestamps: the only ones feat_from_counts cannot
 * give. */
#define FEAT_TIME (FEAT_BIT(FEAT_RECENT_MUTUAL) | FEAT_BIT(FEAT_MUTUAL_AGE) | \
		   FEAT_BIT(FEAT_CAND_AGE) | FEAT_BIT(FEAT_CAND_RECENT))

#define FEAT_TAU_S (14 * 86400)           /* recency decay constant, seconds */
#define FEAT_TAU ((double)FEAT_TAU_S)     /* the same, as a double */
#define FEAT_AGE_NONE 100000.0     /* hours used when there is no such edge */
#define FEAT_VIA_MAX 5u            /* mutual connections reported per pair */

/* Generator signals passed in (feat_compute cannot recompute them). */
struct feat_in {
	uint32_t visits; /* random-walk landings on c */
	float ppr;       /* PPR estimate of c */
	uint32_t trend;  /* c's activity in the trend table (0: not in it) */
};

/* Mutual connections of a pair, newest first (by the later of the two
 * edges; ties smaller vertex id first). */
struct feat_via {
	uint32_t n;
	uint32_t v[FEAT_VIA_MAX]; /* vertex ids */
	uint32_t ts[FEAT_VIA_MAX];
};

/* The feature's name as used in model files and explain output. */
const char *feat_name(enum feat_id f);

/* The id of a feature name, or -1 when unknown. O(FEAT_N). */
int feat_lookup(const char *name);

/*
 * Fill x[FEAT_N] for member u and candidate c of view v at time now. via
 * (may be NULL) gets up to FEAT_VIA_MAX mutual connections.
 * O(min(d_u, d_c) (log(d/B) + B)) or O(d_u + d_c) for the merge, plus
 * O(32 + D) (or O(d_c log 32) for d_c < 1024) for c's newest edges.
 */
void feat_compute(const struct graph_view *v, uint32_t u, uint32_t c,
		  uint32_t now, const struct feat_in *in, double *x,
		  struct feat_via *via);

/*
 * Just the mutual connections of u and c for an answer's "via", as
 * feat_compute reports them: one graph_common merge, O(min(d_u, d_c) *
 * (log(d/B) + B)) when the degrees differ a lot, O(d_u + d_c) otherwise.
 * `mutual` is how many the pair has when the caller knows it (the merge
 * stops at the last of them; none: no merge), UINT32_MAX when not.
 */
void feat_via(const struct graph_view *v, uint32_t u, uint32_t c,
	      uint32_t mutual, struct feat_via *via);

/*
 * The features in `need` outside FEAT_TIME from a pair's counts, in O(1):
 * degrees du and dc, the mutual count and the fixed-point Adamic-Adar and
 * resource-allocation sums (cand.h). Given exact counts (fof_exact) these
 * are feat_compute's values bit for bit; every other entry of x is set to
 * NaN (not computed).
 */
void feat_from_counts(uint32_t du, uint32_t dc, uint32_t mutual,
		      uint64_t aa_fx, uint64_t ra_fx, const struct feat_in *in,
		      uint32_t need, double *x);

/*
 * The member's side of many pairs, prepared once per query: u's neighbours
 * with their edge timestamps, and 1 / ln d_w, 1 / d_w of each filled in on
 * first use. feat_pair then reads each candidate's list once (the merge
 * with u and c's own recency in one pass) where feat_compute reads it
 * twice and looks up every mutual's degree again. Same values as
 * feat_compute, bit for bit (same operations in the same order); a test
 * holds them to it. Per-thread scratch, reused across queries.
 */
#define FEAT_MEMBER_MAX 65536u /* bigger members: graph_common per pair */

struct feat_member {
	const struct graph_view *v;
	uint32_t u, du, now;
	int lazy;          /* du > FEAT_MEMBER_MAX: u's list is not copied */
	uint32_t *id, *ts; /* u's neighbours, ascending, and edge ts (seconds) */
	uint64_t *aa_fx;   /* cand_fx_aa(d_w), or UINT64_MAX until first needed */
	uint64_t *ra_fx;   /* cand_fx_ra(d_w) */
	size_t cap;
	uint32_t *cid, *cts; /* a candidate's list (FEAT_LIST_BUF entries) */
};

/* feat_pair reads a candidate list of fewer than 1,024 entries (by the
 * degree it read first) into the member's buffers in one graph_list call,
 * at most this many entries; should the list have grown to this many
 * since, the pair goes through feat_compute instead. */
#define FEAT_LIST_BUF 2048u

/* Prepare m for member u of view v at time now: O(d_u), or O(1) when
 * d_u > FEAT_MEMBER_MAX (feat_pair then merges through graph_common, as
 * feat_compute does). 0, or -1 when out of memory. */
int feat_member_set(struct feat_member *m, const struct graph_view *v,
		    uint32_t u, uint32_t now);

/* Free m's buffers (m itself is the caller's). */
void feat_member_release(struct feat_member *m);

/*
 * feat_compute(m->v, m->u, c, m->now, in, x, via) through m. For d_c below
 * 1024: one pass over c's list, finding each entry in u's array by a
 * galloping search, O(d_c log(d_u / d_c + 1)); bigger candidates go through
 * graph_common as in feat_compute.
 */
void feat_pair(struct feat_member *m, uint32_t c, const struct feat_in *in,
	       double *x, struct feat_via *via);

#endif
