/* recommend.c - candidates -> features -> model -> JSON (recommend.h). */
#include "recommend.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define REC_BATCH 32u /* candidates whose degrees are read at once */

struct sel {
	double key;
	uint64_t member;
	uint32_t idx; /* slot index in the cand table, or item index */
	uint32_t v;   /* vertex id (for member ids of ties) */
};

void rec_params_default(struct rec_params *p)
{
	fof_params_default(&p->fof);
	walk_params_default(&p->walk);
	ppr_params_default(&p->ppr);
	p->ppr.eps = REC_PPR_EPS;
	p->gens = CAND_FOF | CAND_WALK | CAND_PPR;
	p->ppr_max_degree = 16;
	p->keep_per_gen = 200;
	p->need = FEAT_ALL;
	p->trend = NULL;
	p->recount = REC_RECOUNT_AUTO;
}

void rec_params_describe(const struct rec_params *p, char *buf, size_t len)
{
	snprintf(buf, len,
		 "fof %" PRIu32 "/%" PRIu32 "/%" PRIu32 "/%" PRIu32
		 " walk %" PRIu32 "/%g/%" PRIu32 "x%" PRIu32
		 " ppr %g/%g/%" PRIu32 "/%" PRIu32 "%s keep %" PRIu32
		 " trend %u",
		 p->fof.max_expand, p->fof.max_read, p->fof.hub_read,
		 p->fof.max_total, p->walk.steps, (double)p->walk.restart,
		 p->walk.settle_np, p->walk.settle_nv, (double)p->ppr.alpha,
		 (double)p->ppr.eps, p->ppr.max_pushes, p->ppr_max_degree,
		 p->ppr.with_residual ? "+r" : "", p->keep_per_gen, TREND_K);
}

int rec_model_generation(const struct model *m, const char *label, char *msg,
			 size_t len)
{
	struct rec_params p;
	char now[MODEL_GEN_MAX];

	if (m->builtin)
		return 0;
	rec_params_default(&p);
	rec_params_describe(&p, now, sizeof(now));
	if (!m->gen[0]) {
		snprintf(msg, len,
			 "%s does not say which candidate generation its features were computed with "
			 "(model files from before 7 Dec 2026 do not); if it is older, retrain it "
			 "(triad train): the walk's step budget changed then, from 2000 to 1000",
			 label);
		return 2;
	}
	if (!strcmp(m->gen, now))
		return 0;
	snprintf(msg, len,
		 "%s was trained with candidate generation \"%s\", this build generates with "
		 "\"%s\": some of its features are on another scale; retrain it (triad train)",
		 label, m->gen, now);
	return 1;
}

struct rec_ctx *rec_ctx_new(void)
{
	struct rec_ctx *c = mem_calloc(1, sizeof(*c));

	if (c && !(c->cc = cand_ctx_new())) {
		free(c);
		c = NULL;
	}
	return c;
}

void rec_ctx_free(struct rec_ctx *c)
{
	if (!c)
		return;
	cand_ctx_free(c->cc);
	feat_member_release(&c->fm);
	free(c->it);
	free(c->it2);
	free(c->sel);
	free(c);
}

void rec_ctx_set_now(struct rec_ctx *c, uint32_t now)
{
	c->now = now;
}

const struct model *rec_builtin_model(const struct trend *t)
{
	return t && t->bulk ? model_default_static() : model_default();
}

void rec_ctx_set_trend(struct rec_ctx *c, const struct trend *t)
{
	c->trend = t;
}

static int sel_cmp(const void *a, const void *b)
{
	const struct sel *x = a, *y = b;

	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return x->member < y->member ? -1 : x->member > y->member;
}

static void sel_swap(struct sel *s, size_t i, size_t j)
{
	struct sel t = s[i];

	s[i] = s[j];
	s[j] = t;
}

/* Reorder s[0..n) so that its `keep` smallest members come first, in no
 * particular order: quickselect, O(n) expected. Members are distinct. */
static void select_members(struct sel *s, size_t n, size_t keep)
{
	size_t lo = 0, hi = n, i, store;
	uint64_t piv;

	while (hi - lo > 1 && keep > lo && keep < hi) {
		sel_swap(s, lo + (hi - lo) / 2, hi - 1);
		piv = s[hi - 1].member;
		for (store = lo, i = lo; i < hi - 1; i++)
			if (s[i].member < piv)
				sel_swap(s, i, store++);
		sel_swap(s, store, hi - 1);
		if (store >= keep)
			hi = store;
		else
			lo = store + 1;
	}
}

/*
 * Move the best `keep` of s[0..n) (key descending, then member id
 * ascending: exactly the first `keep` of a full sort by sel_cmp) to the
 * front, in no particular order, in O(n) expected: a quickselect on the
 * key finds the cut, and only the entries tied with it at the cut need
 * their member id (a random read each when v is given: then members are
 * looked up from .v; with v NULL they are already set) and a second
 * quickselect. Returns keep.
 */
static size_t select_top(struct sel *s, size_t n, size_t keep,
			 const struct graph_view *v)
{
	size_t lo = 0, hi = n, above = 0, tied = 0, i;
	double cut;

	/* quickselect: afterwards s[keep - 1].key is the keep-th largest key */
	while (hi - lo > 1) {
		double piv = s[lo + (hi - lo) / 2].key;
		size_t lt = lo, gt = hi, j = lo;

		/* three-way partition: > piv | == piv | < piv */
		while (j < gt) {
			if (s[j].key > piv) {
				sel_swap(s, j, lt);
				lt++, j++;
			} else if (s[j].key < piv) {
				gt--;
				sel_swap(s, j, gt);
			} else {
				j++;
			}
		}
		if (keep - 1 < lt)
			hi = lt;
		else if (keep - 1 >= gt)
			lo = gt;
		else
			break; /* the cut falls among keys equal to piv */
	}
	cut = s[keep - 1].key;
	/* gather: keys above the cut first, then the ties */
	for (i = 0; i < n; i++)
		if (s[i].key > cut)
			sel_swap(s, i, above++);
	for (i = above; i < n; i++)
		if (s[i].key == cut) {
			sel_swap(s, i, above + tied);
			tied++;
		}
	/* among the ties, the smaller member ids */
	if (tied > keep - above) {
		if (v)
			for (i = above; i < above + tied; i++)
				s[i].member = graph_member(v, s[i].v);
		select_members(s + above, tied, keep - above);
	}
	return keep;
}

/* Mark (CAND_KEEP) the best `keep` candidates by one generator's signal. */
static int keep_best(struct rec_ctx *c, const struct graph_view *v,
		     unsigned gen, uint32_t keep)
{
	struct cand_ctx *cc = c->cc;
	size_t i, n = 0, have = gen == CAND_FOF ? cc->nreached : cc->n;
	struct cand *x;
	struct sel *s;

	if (mem_grow(&c->sel, &c->selcap, have, sizeof(struct sel)))
		return -1;
	s = c->sel;
	if (gen == CAND_FOF) {
		/* fof's candidates need no slot: their sums are in the map */
		for (i = 0; i < have; i++) {
			uint32_t m = 0;
			uint64_t aa = 0, ra = 0;

			cand_fof(cc, cc->reached[i], &m, &aa, &ra);
			s[n].key = cand_fx_value(aa);
			s[n].member = 0;
			s[n].idx = 0;
			s[n++].v = cc->reached[i];
		}
	} else {
		for (i = 0; i < have; i++) {
			x = &cc->c[i];
			if ((x->flags & CAND_EXCL) || !(x->flags & gen))
				continue;
			s[n].key = gen == CAND_WALK ? x->visits : x->ppr;
			s[n].member = 0;
			s[n].idx = (uint32_t)i;
			s[n++].v = x->v;
		}
	}
	if (keep && n > keep)
		n = select_top(s, n, keep, v);
	for (i = 0; i < n; i++) {
		if (!(x = gen == CAND_FOF ? cand_touch(cc, s[i].v) : &cc->c[s[i].idx]))
			return -1;
		x->flags |= CAND_KEEP;
	}
	return 0;
}

int rec_gather(struct rec_ctx *c, const struct graph_view *v, uint32_t u,
	       uint32_t now, const struct rec_params *p, uint64_t deadline_ns,
	       struct err *e)
{
	struct cand_ctx *cc = c->cc;
	static const unsigned gens[3] = { CAND_FOF, CAND_WALK, CAND_PPR };
	struct feat_in in;
	size_t i, n = 0;
	unsigned g;
	int counts;

	c->n = 0;
	c->degraded = 0;
	memset(c->run, 0, sizeof(c->run));
	if (cand_begin(cc, v, u, e))
		return -1;
	if ((p->gens & CAND_FOF) &&
	    fof_run(cc, v, &p->fof, deadline_ns, &c->run[0], e))
		return -1;
	if ((p->gens & CAND_WALK) &&
	    walk_run(cc, v, &p->walk, deadline_ns, &c->run[1], e))
		return -1;
	if ((p->gens & CAND_PPR) && cc->member_deg <= p->ppr_max_degree &&
	    ppr_run(cc, v, &p->ppr, deadline_ns, &c->run[2], e))
		return -1;
	c->degraded = c->run[0].cut || c->run[1].cut || c->run[2].cut;
	for (g = 0; g < 3; g++)
		if ((p->gens & gens[g]) && keep_best(c, v, gens[g], p->keep_per_gen))
			return err_set(e, "out of memory for candidate selection");
	/* the most active members lately: every one is scored (a slot each,
	 * which also carries the activity for members other generators
	 * found); the member and its neighbours are marked excluded */
	for (i = 0; p->trend && i < p->trend->n; i++) {
		uint32_t x = p->trend->v[i];
		struct cand *y;

		if (!cand_in_table(cc, x))
			continue;
		if (!(y = cand_touch(cc, x)))
			return err_set(e, "out of memory for candidate selection");
		if (y->flags & CAND_EXCL)
			continue;
		y->flags |= CAND_TREND | CAND_KEEP;
		y->trend = p->trend->act[i];
	}
	for (i = 0; i < cc->n; i++)
		if (cc->c[i].flags & CAND_KEEP)
			n++;
	if (mem_grow((void **)&c->it, &c->cap, n, sizeof(*c->it)))
		return err_set(e, "out of memory for %zu candidates", n);
	if (!now)
		now = cc->newest_ts;
	/* exact fof counts give every feature but the timed ones in O(1).
	 * Not on a directed graph: there fof counts paths u -> w -> c, while
	 * the features' mutual connections are out-neighbours u and c share
	 * (no in-lists to count paths by), and an answer must not depend on
	 * which way its features were computed (explain, time features) */
	counts = !(p->need & FEAT_TIME) && !graph_is_directed(v->g);
	/* fof was capped: exact counts for the kept ones by one pass over
	 * u's neighbours' lists, when that reads less than merging pair by
	 * pair would (a member with many connections; fof.h) */
	if (counts && !cc->fof_exact) {
		int rc = p->recount == REC_RECOUNT_NEVER ? 0
			 : fof_recount(cc, v, p->recount == REC_RECOUNT_ALWAYS,
				       deadline_ns, e);

		if (rc < 0)
			return -1;
		counts = rc;
	}
	if (!counts) {
		if (feat_member_set(&c->fm, v, u, now))
			return err_set(e, "out of memory for features");
	}
	/* the kept ones, with their degrees and member ids read in batches
	 * (their cache misses overlap) */
	for (i = n = 0; i < cc->n; i++)
		if (cc->c[i].flags & CAND_KEEP) {
			cc->c[i].flags &= ~CAND_KEEP;
			c->it[n++].v = (uint32_t)i; /* slot index, for now */
		}
	for (i = 0; i < n; i += REC_BATCH) {
		uint32_t ids[REC_BATCH], deg[REC_BATCH], j, m;
		uint64_t mem[REC_BATCH];

		m = n - i < REC_BATCH ? (uint32_t)(n - i) : REC_BATCH;
		/* features cost a merge each on the slow path: past the
		 * deadline, answer with the candidates scored so far */
		if (i && cand_past(deadline_ns)) {
			c->degraded = 1;
			break;
		}
		for (j = 0; j < m; j++)
			ids[j] = cc->c[c->it[i + j].v].v;
		graph_degree_member_batch(v, m, ids, counts ? deg : NULL, mem);
		for (j = 0; j < m; j++) {
			struct cand *x = &cc->c[c->it[i + j].v];
			struct rec_item *it = &c->it[c->n++];

			it->v = x->v;
			it->member = mem[j];
			it->flags = x->flags & (CAND_FOF | CAND_WALK | CAND_PPR | CAND_TREND);
			it->score = 0;
			in.visits = x->visits;
			in.ppr = x->ppr;
			in.trend = x->trend;
			if (counts)
				feat_from_counts(cc->member_deg, deg[j], x->mutual,
						 x->aa_fx, x->ra_fx, &in, p->need,
						 it->x);
			else
				feat_pair(&c->fm, x->v, &in, it->x, NULL);
		}
	}
	return 0;
}

void rec_score_model(struct rec_ctx *c, const struct model *m)
{
	if (c->n)
		model_score_n(m, c->n, c->it[0].x, sizeof(*c->it),
			      &c->it[0].score, sizeof(*c->it));
}

void rec_score_feature(struct rec_ctx *c, enum feat_id f)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		c->it[i].score = c->it[i].x[f];
}

/* Put the items in the order of s[0..n) (indices into c->it). */
static int permute_items(struct rec_ctx *c, const struct sel *s, size_t n)
{
	struct rec_item *t;
	size_t i;

	if (mem_grow((void **)&c->it2, &c->cap2, c->n, sizeof(*c->it2)))
		return -1;
	for (i = 0; i < n; i++)
		c->it2[i] = c->it[s[i].idx];
	t = c->it, c->it = c->it2, c->it2 = t;
	i = c->cap, c->cap = c->cap2, c->cap2 = i;
	return 0;
}

int rec_sort_top(struct rec_ctx *c, size_t m)
{
	struct sel *s;
	size_t i;

	if (c->n < 2)
		return 0;
	if (m > c->n)
		m = c->n;
	if (mem_grow(&c->sel, &c->selcap, c->n, sizeof(struct sel)))
		return -1;
	s = c->sel;
	for (i = 0; i < c->n; i++) {
		s[i].key = c->it[i].score;
		s[i].member = c->it[i].member;
		s[i].idx = (uint32_t)i;
		s[i].v = c->it[i].v;
	}
	if (m < c->n)
		select_top(s, c->n, m, NULL);
	qsort(s, m, sizeof(*s), sel_cmp);
	return permute_items(c, s, c->n);
}

int rec_sort(struct rec_ctx *c)
{
	return rec_sort_top(c, c->n);
}

/* ---- JSON ------------------------------------------------------------ */

static int put(struct graph_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int put(struct graph_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(room ? (char *)b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return 0;
		}
		if (mem_grow((void **)&b->p, &b->cap, b->len + (size_t)n + 1, 1))
			return -1;
	}
}

/* Append n bytes (no formatting: most of an answer is literal text and
 * integers, and vsnprintf costs hundreds of instructions a call). */
static int put_raw(struct graph_buf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n &&
	    mem_grow((void **)&b->p, &b->cap, b->len + n, 1))
		return -1;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return 0;
}

/* The answer's "sources", in this order. */
static const struct {
	uint32_t flag;
	const char *json;
} sources[] = {
	{ CAND_FOF, "\"fof\"" },
	{ CAND_WALK, "\"walk\"" },
	{ CAND_PPR, "\"ppr\"" },
	{ CAND_TREND, "\"trend\"" },
};
#define NSOURCES (sizeof(sources) / sizeof(sources[0]))

static int put_lit(struct graph_buf *b, const char *s)
{
	return put_raw(b, s, strlen(s));
}

/* v in decimal, as "%" PRIu64 prints it. */
static int put_u64(struct graph_buf *b, uint64_t v)
{
	char d[20];
	size_t n = sizeof(d);

	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put_raw(b, d + n, sizeof(d) - n);
}

/* A count feature as an integer (0 when unset or not finite). */
static uint32_t fin_count(double x)
{
	return x >= 0 && x < 4294967295.0 ? (uint32_t)x : 0;
}

/* A finite number in JSON: %.6g never prints nan/inf for finite values. */
static double fin(double x)
{
	return isfinite(x) ? x : 0.0;
}

int rec_answer_json(struct rec_ctx *c, const struct graph_view *v,
		    const struct model *m, const struct rec_request *r,
		    rec_dismissed_fn dis, void *dis_ctx, struct graph_buf *out,
		    struct err *e)
{
	uint64_t t0 = mono_ns(), budget;
	struct rec_params p;
	struct feat_via via;
	size_t i, start = out->len, shown = 0, want;
	uint32_t u, j, nvia;
	int first_src;

	if (r->k < 1 || r->k > REC_K_MAX)
		return err_set(e, "k %u is out of range 1..%u", r->k, REC_K_MAX);
	u = graph_lookup(v, r->member);
	if (u == GRAPH_NONE || graph_degree(v, u) == 0)
		return REC_UNKNOWN;
	rec_params_default(&p);
	p.trend = c->trend;
	if (p.keep_per_gen < 2 * r->k)
		p.keep_per_gen = 2 * r->k;
	/* the answer reports each item's mutual count, whatever the model
	 * reads */
	p.need = (r->explain ? FEAT_ALL : model_features(m)) |
		 FEAT_BIT(FEAT_MUTUAL);
	budget = (uint64_t)(r->budget_us ? r->budget_us : REC_BUDGET_US) * 1000u;
	if (rec_gather(c, v, u, c->now, &p, t0 + budget, e))
		return -1;
	rec_score_model(c, m);
	/* only the top needs an order: k plus the dismissed among them */
	for (want = (size_t)r->k + 8;; want *= 4) {
		size_t ok = 0;

		if (rec_sort_top(c, want))
			return err_set(e, "out of memory for the answer");
		for (i = 0; i < c->n && i < want && ok < r->k; i++)
			ok += !dis || dis(dis_ctx, r->member, c->it[i].member) != 1;
		if (ok >= r->k || want >= c->n)
			break;
	}
	/* pick the answer first so took_us covers all the ranking work */
	for (i = 0; i < c->n && shown < r->k; i++) {
		if (dis && dis(dis_ctx, r->member, c->it[i].member) == 1)
			continue;
		c->it[shown++] = c->it[i]; /* compact in place: shown <= i */
	}
	if (put(out, "{\"member\":%" PRIu64 ",\"k\":%u,\"model\":\"%s\",\"took_us\":%" PRIu64
		",\"degraded\":%s,\"recommendations\":[",
		r->member, r->k, model_name(m), (mono_ns() - t0) / 1000u,
		c->degraded ? "true" : "false"))
		goto oom;
	for (i = 0; i < shown; i++) {
		struct rec_item *it = &c->it[i];
		uint32_t mutual = fin_count(it->x[FEAT_MUTUAL]);

		/* the mutual connections (one merge each, k items, up to the
		 * last of the count the features found, the same merge's count
		 * on every graph (rec_gather): a list read since may have
		 * changed, so that count is a bound, not a promise) */
		feat_via(v, u, it->v, mutual, &via);
		nvia = via.n < (r->explain ? 5u : 3u) ? via.n : (r->explain ? 5u : 3u);
		if (put_lit(out, i ? ",{\"member\":" : "{\"member\":") ||
		    put_u64(out, it->member) ||
		    put(out, ",\"score\":%.6g", fin(it->score)) ||
		    put_lit(out, ",\"mutual\":") ||
		    put_u64(out, mutual) ||
		    put_lit(out, ",\"via\":["))
			goto oom;
		for (j = 0; j < nvia; j++)
			if ((j && put_lit(out, ",")) ||
			    put_u64(out, graph_member(v, via.v[j])))
				goto oom;
		if (put_lit(out, "],\"sources\":["))
			goto oom;
		for (j = 0, first_src = 1; j < NSOURCES; j++) {
			if (!(it->flags & sources[j].flag))
				continue;
			if ((!first_src && put_lit(out, ",")) ||
			    put_lit(out, sources[j].json))
				goto oom;
			first_src = 0;
		}
		if (put_lit(out, "]"))
			goto oom;
		if (r->explain) {
			if (put(out, ",\"features\":{"))
				goto oom;
			for (j = 0; j < FEAT_N; j++)
				if (put(out, "%s\"%s\":%.6g", j ? "," : "",
					feat_name(j), fin(it->x[j])))
					goto oom;
			if (put(out, "}"))
				goto oom;
		}
		if (put_lit(out, "}"))
			goto oom;
	}
	if (put_lit(out, "]}"))
		goto oom;
	return 0;
oom:
	out->len = start;
	return err_set(e, "out of memory for the answer");
}
