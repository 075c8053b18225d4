/*
 * recommend.h - the whole answer pipeline: candidates from the generators,
 * features, model score, exclusions, top k, and the JSON answer of
 * GET /recommend (CONTRACT.md). Used by `triad recommend`, the server,
 * `triad eval` and `triad train`, so all of them rank the same way.
 *
 * What always holds:
 * - An answer never holds the member, a current neighbour, or a candidate
 *   the dismissed callback rejects.
 * - Deterministic: the same graph, model, request and reference time give
 *   the same recommendations (walks are seeded from the member id; ties go
 *   to the smaller member id). Only took_us varies.
 * - Bounded: candidate generation obeys the generators' stated bounds and
 *   the request's budget (degraded = true when it cut them short); at most
 *   3 * keep_per_gen + TREND_K candidates are scored (each generator's
 *   best, and the trend table's members when there is one; keep_per_gen 0
 *   keeps all), each costing one common-neighbour merge (feat.h) or, from
 *   exact fof counts, O(1).
 * - A rec_ctx is per-thread scratch, reused across requests.
 */
#ifndef TRIAD_RECOMMEND_H
#define TRIAD_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "cand.h"
#include "err.h"
#include "feat.h"
#include "fof.h"
#include "graph.h"
#include "model.h"
#include "ppr.h"
#include "trend.h"
#include "walk.h"

#define REC_UNKNOWN (-2)
#define REC_K_MAX 1000u
#define REC_BUDGET_US 50000u /* default latency budget of candidate generation */
/* The serving push threshold: 10x ppr_params_default's (at most 6,667
 * entries read instead of 66,667). Chosen on CollegeMsg's training period
 * (triad train's inner validation recall@10 0.0672 against 0.0641 with
 * 1e-4, within noise); `triad eval`'s ppr method keeps the textbook 1e-4. */
#define REC_PPR_EPS 1e-3f

struct rec_params {
	struct fof_params fof;
	struct walk_params walk;
	struct ppr_params ppr;
	unsigned gens;           /* CAND_FOF | CAND_WALK | CAND_PPR to run */
	uint32_t ppr_max_degree; /* PPR only for members with d_u <= this */
	uint32_t keep_per_gen;   /* per generator, its best this-many are scored (fof by
				  * Adamic-Adar, walk by visits, ppr by estimate); 0 = all */
	uint32_t need;           /* FEAT_BIT()s the caller reads (default FEAT_ALL);
				  * features outside it may be left NaN */
	const struct trend *trend; /* the most active members (NULL: none):
				  * each is a candidate, and feeds FEAT_TREND */
	int recount;             /* fof capped and no time feature needed: exact
				  * counts by fof_recount when it is cheaper
				  * (REC_RECOUNT_AUTO, the default), never, or
				  * always; the features are the same either way */
};

enum { REC_RECOUNT_AUTO, REC_RECOUNT_NEVER, REC_RECOUNT_ALWAYS };

/* The serving defaults: all three generators (fof_params_default,
 * walk_params_default, PPR with eps REC_PPR_EPS for d_u <= 16), 200 kept per
 * generator, every feature, REC_RECOUNT_AUTO. */
void rec_params_default(struct rec_params *p);

/*
 * The parameters of p that shape the features a model sees (generators,
 * their budgets, the keep, the trend table's size) in one line, e.g.
 * "fof 256/4096/32/65536 walk 1000/0.5/20x6 ppr 0.15/0.001/20000/16
 * keep 200 trend 32" ("16+r" when PPR scores with its residual, ppr.h),
 * into buf (truncated to len). triad train records the
 * defaults' line in a model file (info.generation) and rec_model_generation
 * compares it with this build's: a model fitted on features computed one
 * way and served with another sees numbers on another scale (the walk's
 * visits grow with its step budget).
 */
void rec_params_describe(const struct rec_params *p, char *buf, size_t len);

/*
 * Whether m was trained with the candidate generation this build serves
 * with (rec_params_default, described as above): 0 yes (built-in models
 * are by construction: make model refits them, and test_scoring checks
 * it), 1 when m records another, 2 when it records none (a file from
 * before 7 Dec 2026 or written by hand). For 1 and 2, msg gets one line
 * saying so, for a warning; the model still works.
 */
int rec_model_generation(const struct model *m, const char *label, char *msg,
			 size_t len);

/* The built-in model for a graph whose trend table is t (built over all of
 * it): model_default_static() when more than half of its edges carry one
 * stamp (t->bulk: a graph without times of its own, such as the bundled
 * facebook sample), else model_default(). */
const struct model *rec_builtin_model(const struct trend *t);

/* One scored candidate. */
struct rec_item {
	uint64_t member; /* external id */
	uint32_t v;      /* vertex id */
	uint32_t flags;  /* CAND_FOF | CAND_WALK | CAND_PPR provenance */
	double score;    /* model score, or the ranking key of rec_sort */
	double x[FEAT_N];
};

struct rec_ctx {
	struct cand_ctx *cc;
	struct rec_item *it; /* the gathered candidates, n of them */
	size_t n, cap;
	struct rec_item *it2; /* private: sorting scratch */
	size_t cap2;
	void *sel;           /* private: selection scratch */
	size_t selcap;
	int degraded;        /* last gather was cut short by its deadline */
	uint32_t now;        /* reference time for the next answer; 0 = derive */
	const struct trend *trend; /* most active members for the next answer
				    * (NULL: none); the caller owns it */
	struct cand_run run[3]; /* fof, walk, ppr of the last gather */
	struct feat_member fm;  /* private: the member's side of the features */
};

/* A new per-thread context (grows to the graph's size on first use, about
 * 12 bytes per vertex, and keeps that memory for later queries). NULL when
 * out of memory. Free with rec_ctx_free (NULL is fine). */
struct rec_ctx *rec_ctx_new(void);
void rec_ctx_free(struct rec_ctx *c);

/* Set the reference time ("now", seconds) for rec_answer_json calls on
 * this context: the newest event ts the caller has seen. 0 (the initial
 * value) derives it per query as the newest ts of the member's own
 * edges. */
void rec_ctx_set_now(struct rec_ctx *c, uint32_t now);

/* The trend table (trend.h) rec_answer_json calls on c use: a candidate
 * source and FEAT_TREND. NULL (the default) leaves both out. t must stay
 * valid while answers use it. */
void rec_ctx_set_trend(struct rec_ctx *c, const struct trend *t);

/*
 * Candidates and features for vertex u: runs the generators of p (each
 * until deadline_ns, 0 = none), keeps each generator's best keep_per_gen
 * and every member of p->trend (up to TREND_K) that is not excluded,
 * and computes the features p->need asks for (equal to feat_compute's) of
 * each kept one at time now (0: the newest ts of u's own edges) into
 * c->it[0..c->n) in unspecified order. When p->need has no FEAT_TIME
 * feature and friends-of-friends read every path (fof_exact), a
 * candidate's features cost O(1) (feat_from_counts); otherwise one
 * feat_pair merge each.
 * Sets c->degraded when the deadline cut a generator or the features
 * short (then only the candidates featured in time are in c->it). Returns 0, or -1 with e filled (out of memory).
 */
int rec_gather(struct rec_ctx *c, const struct graph_view *v, uint32_t u,
	       uint32_t now, const struct rec_params *p, uint64_t deadline_ns,
	       struct err *e);

/* Score each gathered item with m (into .score). O(n * nf). */
void rec_score_model(struct rec_ctx *c, const struct model *m);

/* Set each item's score to its feature f. O(n). */
void rec_score_feature(struct rec_ctx *c, enum feat_id f);

/* Sort the gathered items by score descending, ties smaller member first.
 * O(n log n). 0, or -1 when out of memory (items unchanged). */
int rec_sort(struct rec_ctx *c);

/* Put the best min(m, n) items first, in rec_sort's order; the others
 * follow in unspecified order. O(n + m log m). 0 or -1 (out of memory). */
int rec_sort_top(struct rec_ctx *c, size_t m);

typedef int (*rec_dismissed_fn)(void *ctx, uint64_t member, uint64_t candidate); /* 1 = dismissed */

struct rec_request {
	uint64_t member;
	uint32_t k;         /* 1..1000 */
	int explain;        /* add "features" and up to 5 "via" */
	uint32_t budget_us; /* candidate generation budget; 0 = REC_BUDGET_US */
};

/*
 * Appends the CONTRACT's JSON answer for GET /recommend to out:
 *   {"member":ID,"k":N,"model":"NAME@VERSION","took_us":T,"degraded":B,
 *    "recommendations":[{"member":ID,"score":S,"mutual":M,"via":[IDS],
 *    "sources":["fof","walk","ppr"], "features":{...} (explain only)}]}
 * via lists up to 3 mutual connections (5 with explain), newest first.
 * Returns 0; REC_UNKNOWN when the member is unknown or has no edges
 * (nothing appended); -1 with e filled (k out of range, out of memory).
 */
int rec_answer_json(struct rec_ctx *c, const struct graph_view *v,
		    const struct model *m, const struct rec_request *r,
		    rec_dismissed_fn dis, void *dis_ctx, struct graph_buf *out,
		    struct err *e);

#endif
