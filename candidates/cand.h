/*
 * cand.h - candidate sets for one recommendation query.
 *
 * What always holds:
 * - A query works for one member u of one graph view. Every vertex the
 *   generators touch gets one slot in a dense, reusable table (a per-vertex
 *   epoch stamp plus slot index; no clearing, no hashing, no per-query
 *   allocation once the context has grown to the graph's size).
 * - u and its current neighbours are marked excluded when the query begins
 *   (cand_begin) and can never come out of cand_list; dismissed members are
 *   filtered by the caller's callback at selection time (scoring/recommend).
 * - Each slot records which generators found it (CAND_FOF, CAND_WALK,
 *   CAND_PPR) and each generator's signal, so several generators merge into
 *   one list with provenance.
 * - A context belongs to one thread at a time; make one per worker thread.
 *
 * Tuned for: power-law social graphs where a query touches 10^2..10^5
 * vertices out of 10^5..10^8.
 */
#ifndef TRIAD_CAND_H
#define TRIAD_CAND_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "graph.h"
#include "mono.h"

#define CAND_FOF 1u   /* found by friends-of-friends (triangle closing) */
#define CAND_WALK 2u  /* visited by the random walk with restart */
#define CAND_PPR 4u   /* reached by personalised PageRank push */
#define CAND_TREND 8u /* among the most active members lately (trend.h) */
#define CAND_EXCL 64u /* the member or a current neighbour: never a candidate */
#define CAND_KEEP 128u /* scratch mark for selection passes */

struct cand {
	uint32_t v;      /* vertex id */
	uint32_t mutual; /* mutual connections counted by fof (within caps) */
	uint64_t aa_fx;  /* Adamic-Adar over those, fixed point (CAND_FX_ONE) */
	uint64_t ra_fx;  /* resource allocation over those, fixed point */
	uint32_t visits; /* random-walk landings */
	uint32_t flags;  /* CAND_* bits */
	float ppr;       /* PPR estimate p(v), 0..1 */
	float ppr_r;     /* PPR residual (private to ppr.c) */
	uint32_t trend;  /* activity, when in the trend table (else 0) */
};

/* Why a generator stopped; filled by every generator. */
struct cand_run {
	int cut;             /* 1 when the deadline stopped it early */
	uint64_t edges_read; /* neighbour entries read (work done) */
	uint32_t steps;      /* walk steps / PPR pushes / fof intermediates */
};

/*
 * Pair sums in fixed point. Adamic-Adar (1 / ln d_w) and resource
 * allocation (1 / d_w) are summed over mutual connections as integers in
 * units of 2^-40: every term is rounded once, so a sum is the same whatever
 * order its terms arrive in. friends-of-friends (per candidate, in the
 * order it expands u's neighbours) and the feature module (per pair, in
 * the order of a merge) therefore agree bit for bit, and so do two
 * replicas whose vertex numbering differs.
 *
 * Overflow. The largest term is cand_fx_aa(2), 1.4427 * 2^40 (resource
 * allocation's is cand_fx_ra(1) = 2^40, or 2^39 undirected, where d >= 2),
 * so a uint64_t holds any sum of CAND_FX_TERMS_SAFE = 11,629,079 terms
 * (2^64 / (1.4427 * 2^40)), and 11,629,080 mutual connections of degree 2
 * overflow an Adamic-Adar sum (resource allocation: 2^24 terms of degree 1,
 * 2^25 of degree 2). Where sums are made:
 * - friends-of-friends and fof_recount add one term per neighbour of u
 *   they expand. For u with at most CAND_LAZY_DEG neighbours that is few
 *   enough (a static assertion below). For a lazy u (more) no feature
 *   reads them (fof_exact is 0 and fof_recount declines: the features are
 *   merged); fof's own Adamic-Adar still picks its kept candidates, from
 *   at most max_expand terms, more than CAND_FX_TERMS_SAFE only with fof
 *   uncapped, which triad eval alone does, keeping every candidate;
 * - feat_pair's merge runs for members of at most FEAT_MEMBER_MAX
 *   (feat.h; asserted there);
 * - a merge with no such cap (feat_compute: the largest members, triad
 *   eval's exact heuristics among them) adds with cand_fx_add, which
 *   saturates: its sum is min(exact sum, UINT64_MAX), still the same in
 *   any order (partial sums only grow), and reads as 2^24.
 */
#define CAND_FX_ONE 1099511627776.0 /* 2^40 */
#define CAND_FX_TERMS_SAFE 11629079u /* UINT64_MAX / cand_fx_aa(2) */

/* sum + term in fixed point, saturating at UINT64_MAX (above). O(1). */
static inline uint64_t cand_fx_add(uint64_t sum, uint64_t term)
{
	return sum > UINT64_MAX - term ? UINT64_MAX : sum + term;
}

/*
 * 1 / ln d in fixed point; 0 for d < 2. Undirected, a mutual connection
 * has d >= 2 (it is linked to both ends). Directed, d is the out-degree
 * and can be 1 (w's only arc goes to c) or 0: 1 / ln 1 is undefined, so
 * Adamic-Adar leaves such a w out.
 */
static inline uint64_t cand_fx_aa(uint32_t d)
{
	return d >= 2 ? (uint64_t)(CAND_FX_ONE / log((double)d) + 0.5) : 0;
}

/* 1 / d in fixed point, the textbook term for every d >= 1 (d = 1 occurs
 * on a directed graph, above); 0 for d = 0 (a directed w with no arc out
 * passes nothing on). */
static inline uint64_t cand_fx_ra(uint32_t d)
{
	return d ? (uint64_t)(CAND_FX_ONE / (double)d + 0.5) : 0;
}

/* A fixed-point sum as a double. */
static inline double cand_fx_value(uint64_t fx)
{
	return (double)fx / CAND_FX_ONE;
}

/*
 * One vertex's entry in the dense map, 32 bytes: two to a cache line, so a
 * touch reads one line, not several arrays. fof counts straight into the
 * entry (mark, mutual, aa_fx, ra_fx) and makes no slot; a slot made later
 * for the vertex (cand_touch) takes the counts with it.
 */
struct cand_map {
	uint32_t stamp;  /* == epoch: slot is valid for this query */
	uint32_t slot;   /* index into cand_ctx.c */
	uint32_t mark;   /* CAND_MARK_EXCL(epoch): the member or a neighbour;
			  * CAND_MARK_FOF(epoch): fof's sums below are valid */
	uint32_t mutual;
	uint64_t aa_fx;
	uint64_t ra_fx;
};

#define CAND_MARK_FOF(e) (2u * (e))
#define CAND_MARK_EXCL(e) (2u * (e) + 1u)
#define CAND_EPOCH_MAX (1u << 31) /* epochs wrap here (marks are 2e, 2e+1) */

struct cand_ctx {
	/* private: dense per-vertex map (see struct cand_map) */
	struct cand_map *map;
	uint32_t cap_v;
	uint32_t nv;       /* vertices when the query began (<= cap_v) */
	uint32_t epoch;
	/* touched vertices of this query (excluded ones included) */
	struct cand *c;
	size_t n, cap;
	/* scratch buffers for generators (neighbour samples, PPR queue) */
	uint32_t *buf, *tsbuf;
	size_t bufcap;
	uint32_t *queue;
	size_t qcap;
	uint32_t *reached;   /* the vertices fof counted, nreached of them */
	size_t nreached, rcap;
	uint32_t *arena;     /* private to walk.c: decoded neighbour lists */
	size_t alen, acap;
	uint32_t *hot;       /* private to walk.c: which lists are in arena */
	size_t hotcap;
	uint64_t *keepbits;  /* private to fof.c: a bit per vertex, all clear
			      * between calls */
	size_t keepcap;      /* words in keepbits */
	uint32_t member;     /* vertex id of the query's member */
	uint32_t member_deg; /* its degree */
	uint32_t newest_ts;  /* newest ts of the member's own edges, seconds */
	uint64_t excl_read;  /* neighbour entries read to mark exclusions */
	int lazy;            /* d_u > CAND_LAZY_DEG: exclusions found on demand */
	int fof_exact;       /* fof read every path u-w-x of this query: its
			      * mutual, aa_fx and ra_fx are exact for every
			      * vertex, and 0 for every one it did not reach */
	const struct graph_view *view; /* the query's view */
};

/* Members with more connections than this are not marked up front (that
 * would cost O(d_u) random writes a query): a vertex is tested against the
 * member's list (graph_edge_ts, O(log(d_u/B) + B)) when a query first
 * touches it. Smaller members are marked eagerly. */
#define CAND_LAZY_DEG 65536u
/* friends-of-friends sums of a member that is not lazy cannot overflow */
_Static_assert(CAND_LAZY_DEG < CAND_FX_TERMS_SAFE, "fof sums could overflow");

/* A new empty context (grows on first use). NULL when out of memory. */
struct cand_ctx *cand_ctx_new(void);
/* Free it. NULL is fine. */
void cand_ctx_free(struct cand_ctx *c);

/*
 * Start a query for vertex u of view v: forget the previous query, make the
 * dense map cover graph_nvertices(v) (grows once, O(n) then; O(1) after)
 * and mark u and all its neighbours excluded: O(d_u) neighbour reads and
 * 4-byte writes, or O(1) for d_u > CAND_LAZY_DEG (see there).
 * Returns 0, or -1 with e filled when out of memory or u is not a vertex.
 */
int cand_begin(struct cand_ctx *c, const struct graph_view *v, uint32_t u,
	       struct err *e);

/* 1 when x was a vertex when the query began. Members the writer creates
 * while it runs can turn up in the lists it reads (with ids past its
 * table, and past what its view can name: graph.h): the generators pass
 * them over. O(1). */
static inline int cand_in_table(const struct cand_ctx *c, uint32_t x)
{
	return x < c->nv;
}

/* Private: cand_touch's path for a vertex new to the query. */
struct cand *cand_add(struct cand_ctx *c, uint32_t x);

/* The slot of vertex x, created when x is new to this query (zeroed,
 * flags CAND_EXCL when x is the member or a neighbour, CAND_FOF with fof's
 * counts when fof reached x). NULL when out of memory. O(1) amortised;
 * inline for the common case of a known x. */
static inline struct cand *cand_touch(struct cand_ctx *c, uint32_t x)
{
	if (x < c->cap_v && c->map[x].stamp == c->epoch)
		return &c->c[c->map[x].slot];
	return cand_add(c, x);
}

/* The slot of x when touched by this query, else NULL. O(1). */
static inline struct cand *cand_find(const struct cand_ctx *c, uint32_t x)
{
	if (x < c->cap_v && c->map[x].stamp == c->epoch)
		return &c->c[c->map[x].slot];
	return NULL;
}

/* 1 with fof's counts for x when fof reached x in this query (x is then a
 * friends-of-friends candidate, whether or not it has a slot), else 0. O(1). */
static inline int cand_fof(const struct cand_ctx *c, uint32_t x,
			   uint32_t *mutual, uint64_t *aa_fx, uint64_t *ra_fx)
{
	const struct cand_map *m;

	if (x >= c->cap_v || c->map[x].mark != CAND_MARK_FOF(c->epoch))
		return 0;
	m = &c->map[x];
	*mutual = m->mutual;
	*aa_fx = m->aa_fx;
	*ra_fx = m->ra_fx;
	return 1;
}

/* A hint that x's slot is looked up soon. No effect on results. O(1). */
static inline void cand_prefetch(const struct cand_ctx *c, uint32_t x)
{
	if (x < c->cap_v)
		__builtin_prefetch(&c->map[x]);
}

/* 1 when x is the query's member or one of its neighbours. O(1), or
 * O(log(d_u/B) + B) for a lazy query (CAND_LAZY_DEG). */
static inline int cand_is_excluded(const struct cand_ctx *c, uint32_t x)
{
	if (x < c->cap_v && c->map[x].mark == CAND_MARK_EXCL(c->epoch))
		return 1;
	return c->lazy && x < c->cap_v &&
	       graph_edge_ts(c->view, c->member, x, NULL);
}

/* Make the scratch buffers hold at least n entries. 0 or -1 (OOM). */
int cand_reserve_buf(struct cand_ctx *c, size_t n);

/* 1 when deadline_ns is not 0 and has passed. */
static inline int cand_past(uint64_t deadline_ns)
{
	return deadline_ns && mono_ns() >= deadline_ns;
}

#endif
