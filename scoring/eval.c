/* eval.c - the temporal hold-out protocol (eval.h). */
#include "eval.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "par.h"
#include "recommend.h"

static const char *const method_names[EVAL_NMETHODS] = {
	"cn", "aa", "jaccard", "ra", "ppr", "model"
};

const char *eval_method_name(enum eval_method m)
{
	return (unsigned)m < EVAL_NMETHODS ? method_names[m] : "?";
}

int eval_methods_parse(const char *list, unsigned *set, struct err *e)
{
	const char *p = list, *q;
	size_t len;
	unsigned i, s = 0;

	while (*p) {
		q = strchr(p, ',');
		len = q ? (size_t)(q - p) : strlen(p);
		for (i = 0; i < EVAL_NMETHODS; i++)
			if (strlen(method_names[i]) == len &&
			    !strncmp(p, method_names[i], len))
				break;
		if (i == EVAL_NMETHODS)
			return err_set(e, "unknown method \"%.*s\" (methods: cn, aa, jaccard, ra, ppr, model)",
				       (int)len, p);
		s |= 1u << i;
		p += len + (q ? 1 : 0);
	}
	if (!s)
		return err_set(e, "empty method list");
	*set = s;
	return 0;
}

/* Stable merge sort of events by ts. */
static void msort(struct graph_event *a, struct graph_event *tmp, size_t n)
{
	size_t h = n / 2, i = 0, j = h, k = 0;

	if (n < 2)
		return;
	msort(a, tmp, h);
	msort(a + h, tmp, n - h);
	while (i < h && j < n)
		tmp[k++] = a[j].ts < a[i].ts ? a[j++] : a[i++];
	while (i < h)
		tmp[k++] = a[i++];
	while (j < n)
		tmp[k++] = a[j++];
	memcpy(a, tmp, n * sizeof(*a));
}

struct upair {
	uint64_t a, b;
};

static int upair_cmp(const void *x, const void *y)
{
	const struct upair *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	return p->b < q->b ? -1 : p->b > q->b;
}

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static size_t upair_unique(struct upair *p, size_t n)
{
	size_t i, m = 0;

	qsort(p, n, sizeof(*p), upair_cmp);
	for (i = 0; i < n; i++)
		if (!m || upair_cmp(&p[m - 1], &p[i]))
			p[m++] = p[i];
	return m;
}

/* One event's place in eval_random_order: its pair's hash, the pair,
 * its index (file order within the pair). */
struct rkey {
	uint64_t h, a, b;
	size_t i;
};

static int rkey_cmp(const void *x, const void *y)
{
	const struct rkey *p = x, *q = y;

	if (p->h != q->h)
		return p->h < q->h ? -1 : 1;
	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return p->i < q->i ? -1 : p->i > q->i;
}

uint64_t eval_pair_hash(uint64_t a, uint64_t b)
{
	uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int eval_random_order(struct graph_event *ev, size_t n, struct err *e)
{
	struct rkey *k;
	struct graph_event *tmp;
	size_t i;

	if (n > (size_t)(UINT32_MAX - EVAL_RANDOM_T0))
		return err_set(e, "%zu events are too many to put in a random order (at most %u)",
			       n, UINT32_MAX - EVAL_RANDOM_T0);
	k = mem_alloc(n ? n : 1, sizeof(*k));
	tmp = mem_alloc(n ? n : 1, sizeof(*tmp));
	if (!k || !tmp) {
		free(k);
		free(tmp);
		return err_set(e, "out of memory");
	}
	for (i = 0; i < n; i++) {
		k[i].a = ev[i].src < ev[i].dst ? ev[i].src : ev[i].dst;
		k[i].b = ev[i].src < ev[i].dst ? ev[i].dst : ev[i].src;
		k[i].h = eval_pair_hash(k[i].a, k[i].b);
		k[i].i = i;
	}
	qsort(k, n, sizeof(*k), rkey_cmp);
	for (i = 0; i < n; i++) {
		tmp[i] = ev[k[i].i];
		tmp[i].ts = EVAL_RANDOM_T0 + (uint32_t)i;
	}
	memcpy(ev, tmp, n * sizeof(*ev));
	free(k);
	free(tmp);
	return 0;
}

void eval_split_release(struct eval_split *s)
{
	free(s->train);
	free(s->judge);
	memset(s, 0, sizeof(*s));
}

size_t eval_split_groups(const struct eval_split *s, size_t *start)
{
	size_t i, g = 0, most = 0;

	for (i = 0; i < s->njudge; i++)
		if (!i || s->judge[i].member != s->judge[i - 1].member)
			start[g++] = i;
	start[g] = s->njudge;
	for (i = 0; i < g; i++)
		if (start[i + 1] - start[i] > most)
			most = start[i + 1] - start[i];
	return most;
}

int eval_split_make(const struct graph_event *ev, size_t n, double frac,
		    enum eval_split_how how, uint32_t split_time, struct eval_split *s,
		    struct err *e)
{
	struct graph_event *all = NULL, *tmp = NULL;
	struct upair *tr = NULL, *te = NULL, key;
	uint64_t *ends = NULL;
	size_t i, m = 0, nev, ntr, nte, nends, nj = 0, idx;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (how != EVAL_SPLIT_TIME && !(frac > 0 && frac <= 1)) {
		err_set(e, "split fraction %g is not in (0, 1]", frac);
		goto out;
	}
	all = mem_alloc(n, sizeof(*all));
	tmp = mem_alloc(n, sizeof(*tmp));
	if (!all || !tmp)
		goto oom;
	for (i = 0; i < n; i++)
		if (ev[i].src != ev[i].dst && ev[i].op == GRAPH_ADD)
			all[m++] = ev[i];
	if (m == 0) {
		err_set(e, "no edge events to split");
		goto out;
	}
	if (how == EVAL_SPLIT_RANDOM && eval_random_order(all, m, e))
		goto out;
	msort(all, tmp, m);
	if (how == EVAL_SPLIT_TIME) {
		s->split_time = split_time;
	} else {
		idx = (size_t)floor(frac * (double)m);
		s->split_time = all[idx < m ? idx : m - 1].ts;
	}
	for (nev = 0; nev < m && all[nev].ts <= s->split_time; nev++)
		;
	tr = mem_alloc(nev, sizeof(*tr));
	te = mem_alloc(m - nev, sizeof(*te));
	ends = mem_alloc(2 * nev, sizeof(*ends));
	if (!tr || !te || !ends)
		goto oom;
	for (i = 0; i < m; i++) {
		struct upair *q = i < nev ? &tr[i] : &te[i - nev];

		q->a = all[i].src < all[i].dst ? all[i].src : all[i].dst;
		q->b = all[i].src < all[i].dst ? all[i].dst : all[i].src;
		if (i < nev) {
			ends[2 * i] = all[i].src;
			ends[2 * i + 1] = all[i].dst;
		}
	}
	ntr = upair_unique(tr, nev);
	nte = upair_unique(te, m - nev);
	qsort(ends, 2 * nev, sizeof(*ends), u64_cmp);
	for (i = 0, nends = 0; i < 2 * nev; i++)
		if (!nends || ends[nends - 1] != ends[i])
			ends[nends++] = ends[i];
	/* keep test pairs new after T with both ends known before it; reuse
	 * te in place (nj <= i) */
	for (i = 0; i < nte; i++) {
		key = te[i];
		if (bsearch(&key, tr, ntr, sizeof(*tr), upair_cmp) ||
		    !bsearch(&key.a, ends, nends, sizeof(*ends), u64_cmp) ||
		    !bsearch(&key.b, ends, nends, sizeof(*ends), u64_cmp))
			continue;
		te[nj++] = key;
	}
	s->test_pairs = nj;
	s->njudge = 2 * nj;
	if (!(s->judge = mem_alloc(s->njudge ? s->njudge : 1, sizeof(*s->judge))))
		goto oom;
	for (i = 0; i < nj; i++) {
		s->judge[2 * i].member = te[i].a;
		s->judge[2 * i].target = te[i].b;
		s->judge[2 * i + 1].member = te[i].b;
		s->judge[2 * i + 1].target = te[i].a;
	}
	qsort(s->judge, s->njudge, sizeof(*s->judge), upair_cmp);
	for (i = 0; i < s->njudge; i++)
		if (!i || s->judge[i].member != s->judge[i - 1].member)
			s->members++;
	s->train = all;
	s->ntrain = nev;
	all = NULL;
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory splitting %zu events", n);
out:
	free(all);
	free(tmp);
	free(tr);
	free(te);
	free(ends);
	return rc;
}

int eval_build_graph(struct graph *g, const struct eval_split *s,
		     struct err *e)
{
	return graph_build(g, s->train, s->ntrain, 0, NULL, e);
}

void eval_judge(const uint64_t *ranked, size_t nr, const uint64_t *targets,
		size_t nt, uint32_t k, struct eval_acc *acc)
{
	double dcg = 0, idcg = 0, rr = 0;
	size_t i;

	for (i = 0; i < nr && i < k; i++) {
		if (!bsearch(&ranked[i], targets, nt, sizeof(*targets), u64_cmp))
			continue;
		acc->hits++;
		dcg += 1.0 / log2((double)i + 2.0);
		if (rr == 0)
			rr = 1.0 / ((double)i + 1.0);
	}
	for (i = 0; i < nt && i < k; i++)
		idcg += 1.0 / log2((double)i + 2.0);
	acc->relevant += nt;
	acc->members++;
	acc->rr += rr;
	acc->ndcg += idcg > 0 ? dcg / idcg : 0;
}

void eval_metrics(const struct eval_acc *acc, uint32_t k,
		  struct eval_metrics *m)
{
	memset(m, 0, sizeof(*m));
	if (acc->relevant)
		m->recall = (double)acc->hits / (double)acc->relevant;
	if (acc->members) {
		m->precision = (double)acc->hits / ((double)k * (double)acc->members);
		m->mrr = acc->rr / (double)acc->members;
		m->ndcg = acc->ndcg / (double)acc->members;
	}
}

/* Top k member ids with a positive score, from sorted items. */
static size_t topk(const struct rec_ctx *c, uint32_t k, uint64_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < c->n && n < k; i++)
		if (c->it[i].score > 0)
			out[n++] = c->it[i].member;
	return n;
}

/*
 * Judging in parallel. The judged members are cut into blocks of
 * EVAL_BLOCK (in member order); workers take blocks from a shared counter,
 * each with its own context and view of the (read-only) graph, and add a
 * block's figures into that block's own accumulators. The blocks are then
 * summed in block order, so the report is the same bit for bit whatever
 * the number of threads.
 */
#define EVAL_BLOCK 16u
#define EVAL_THREADS_MAX 16u

struct eval_job {
	const struct eval_split *s;
	const struct graph *g;
	const size_t *gstart;       /* judge index of each member's first pair; ngroups + 1 */
	size_t ngroups, nblocks, maxgroup;
	struct eval_acc *acc;       /* nblocks * EVAL_NMETHODS */
	const struct rec_params *ph, *pp, *pm;
	const struct model *m;
	unsigned methods;
	uint32_t k;
	atomic_size_t next;         /* next block to take */
	atomic_size_t done;         /* members judged */
	atomic_int stop;            /* a worker failed */
	eval_progress_fn progress;  /* called by worker 0 only */
	void *pctx;
};

/* Judge the top k of c's items, ranked by their scores, into acc. */
static int judge_top(struct rec_ctx *c, const struct eval_job *j,
		     uint64_t *ranked, const uint64_t *targets, size_t nt,
		     struct eval_acc *acc, struct err *e)
{
	if (rec_sort_top(c, j->k))
		return err_set(e, "out of memory for the ranking");
	eval_judge(ranked, topk(c, j->k, ranked), targets, nt, j->k, acc);
	return 0;
}

/* Rank for member group gi with each method and judge into acc. */
static int judge_member(struct eval_job *j, struct rec_ctx *c,
			const struct graph_view *v, size_t gi, uint64_t *ranked,
			uint64_t *targets, struct eval_acc *acc, struct err *e)
{
	static const enum feat_id heur[4] = {
		FEAT_MUTUAL, FEAT_ADAMIC_ADAR, FEAT_JACCARD, FEAT_RESOURCE_ALLOC
	};
	const struct eval_pair *p = j->s->judge + j->gstart[gi];
	size_t nt = j->gstart[gi + 1] - j->gstart[gi], i;
	uint32_t u, now = j->s->split_time;
	unsigned h;

	for (i = 0; i < nt; i++)
		targets[i] = p[i].target;
	u = graph_lookup(v, p[0].member);
	if (u == GRAPH_NONE)
		return err_set(e, "member %llu of a test pair is not in the training graph",
			       (unsigned long long)p[0].member);
	if (j->methods & 15u) {
		if (rec_gather(c, v, u, now, j->ph, 0, e))
			return -1;
		for (h = 0; h < 4; h++) {
			if (!(j->methods & (1u << h)))
				continue;
			rec_score_feature(c, heur[h]);
			if (judge_top(c, j, ranked, targets, nt, &acc[h], e))
				return -1;
		}
	}
	if (j->methods & (1u << EVAL_PPR)) {
		if (rec_gather(c, v, u, now, j->pp, 0, e))
			return -1;
		rec_score_feature(c, FEAT_PPR);
		if (judge_top(c, j, ranked, targets, nt, &acc[EVAL_PPR], e))
			return -1;
	}
	if (j->methods & (1u << EVAL_MODEL)) {
		if (rec_gather(c, v, u, now, j->pm, 0, e))
			return -1;
		rec_score_model(c, j->m);
		if (judge_top(c, j, ranked, targets, nt, &acc[EVAL_MODEL], e))
			return -1;
	}
	return 0;
}

static int eval_worker(void *ctx, unsigned worker, struct err *e)
{
	struct eval_job *j = ctx;
	struct rec_ctx *c = rec_ctx_new();
	uint64_t *ranked = mem_alloc(j->k, sizeof(*ranked));
	uint64_t *targets = mem_alloc(j->maxgroup ? j->maxgroup : 1, sizeof(*targets));
	struct graph_view v;
	size_t b, gi, end, done, reported = 0;
	int rc = 0;

	if (!c || !ranked || !targets)
		rc = err_set(e, "out of memory");
	while (!rc && par_next(&j->next, &j->stop, j->nblocks, &b)) {
		end = (b + 1) * EVAL_BLOCK < j->ngroups ? (b + 1) * EVAL_BLOCK : j->ngroups;
		graph_view_begin(j->g, &v); /* one short view a block */
		for (gi = b * EVAL_BLOCK; !rc && gi < end; gi++)
			rc = judge_member(j, c, &v, gi, ranked, targets,
					  j->acc + b * EVAL_NMETHODS, e);
		graph_view_end(&v);
		done = atomic_fetch_add(&j->done, end - b * EVAL_BLOCK) + end - b * EVAL_BLOCK;
		if (worker == 0 && j->progress && done >= reported + 256) {
			j->progress(j->pctx, done, j->ngroups);
			reported = done;
		}
	}
	rec_ctx_free(c);
	free(ranked);
	free(targets);
	return rc;
}

int eval_run(const struct graph_event *ev, size_t n, double frac,
	     enum eval_split_how how, uint32_t split_time, uint32_t k, unsigned methods,
	     const struct model *m, eval_progress_fn progress, void *pctx,
	     struct eval_report *r, struct err *e)
{
	return eval_run_threads(ev, n, frac, how, split_time, k, methods,
				m, 0, progress, pctx, r, e);
}

int eval_run_threads(const struct graph_event *ev, size_t n, double frac,
		     enum eval_split_how how, uint32_t split_time, uint32_t k,
		     unsigned methods, const struct model *m, unsigned threads,
		     eval_progress_fn progress, void *pctx,
		     struct eval_report *r, struct err *e)
{
	struct rec_params ph, pp, pm;
	struct trend tr;
	struct eval_split s;
	struct graph *g = NULL;
	struct graph_stats gs;
	struct eval_job j;
	size_t *gstart = NULL, b;
	unsigned h;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	memset(&j, 0, sizeof(j));
	if (k < 1)
		return err_set(e, "k must be at least 1");
	if ((methods & (1u << EVAL_MODEL)) && !m)
		return err_set(e, "method \"model\" needs a model");
	if (eval_split_make(ev, n, frac, how, split_time, &s, e))
		return -1;
	r->split_time = s.split_time;
	r->members = s.members;
	r->test_pairs = s.test_pairs;
	r->k = k;
	r->methods = methods;
	if (!(g = graph_new(0)) ||
	    !(gstart = mem_alloc(s.members + 1, sizeof(*gstart)))) {
		err_set(e, "out of memory");
		goto out;
	}
	j.maxgroup = eval_split_groups(&s, gstart);
	if (eval_build_graph(g, &s, e))
		goto out;
	graph_stats(g, &gs);
	r->train_edges = gs.edges;
	rec_params_default(&ph);
	ph.gens = CAND_FOF;
	/* every path: aa and ra sum a term per mutual connection, with no
	 * cap, and 11.6 million of them would wrap a plain uint64_t. They
	 * never do: each way of making them stays below that or saturates
	 * (cand.h, "Overflow") */
	ph.fof.max_expand = ph.fof.max_read = ph.fof.max_total = FOF_UNCAPPED;
	ph.keep_per_gen = 0;
	ph.need = FEAT_BIT(FEAT_MUTUAL) | FEAT_BIT(FEAT_ADAMIC_ADAR) |
		  FEAT_BIT(FEAT_JACCARD) | FEAT_BIT(FEAT_RESOURCE_ALLOC);
	rec_params_default(&pp);
	pp.gens = CAND_PPR;
	/* the method: PPR close to converged for every member (EVAL_PPR_EPS),
	 * scored p + alpha r (ppr.h); only its top k are ranked, chosen as a
	 * full sort would (score, then member id) */
	ppr_params_default(&pp.ppr);
	pp.ppr.eps = EVAL_PPR_EPS;
	pp.ppr.with_residual = 1;
	pp.ppr_max_degree = UINT32_MAX;
	pp.keep_per_gen = k;
	pp.need = FEAT_BIT(FEAT_PPR);
	rec_params_default(&pm);
	pm.need = m ? model_features(m) : FEAT_ALL;
	/* as the server has it then; a graph without times has no "lately" */
	if ((methods & (1u << EVAL_MODEL)) && how != EVAL_SPLIT_RANDOM) {
		trend_build_graph(&tr, g, s.split_time);
		pm.trend = &tr;
	}
	j.s = &s;
	j.g = g;
	j.gstart = gstart;
	j.ngroups = s.members;
	j.nblocks = (s.members + EVAL_BLOCK - 1) / EVAL_BLOCK;
	j.ph = &ph;
	j.pp = &pp;
	j.pm = &pm;
	j.m = m;
	j.methods = methods;
	j.k = k;
	j.progress = progress;
	j.pctx = pctx;
	atomic_init(&j.next, 0);
	atomic_init(&j.done, 0);
	atomic_init(&j.stop, 0);
	if (!(j.acc = mem_calloc(j.nblocks ? j.nblocks * EVAL_NMETHODS : 1, sizeof(*j.acc)))) {
		err_set(e, "out of memory");
		goto out;
	}
	if (par_run(par_threads(threads, EVAL_THREADS_MAX, j.nblocks), eval_worker,
		    &j, &j.stop, e))
		goto out;
	for (b = 0; b < j.nblocks; b++)
		for (h = 0; h < EVAL_NMETHODS; h++) {
			const struct eval_acc *a = &j.acc[b * EVAL_NMETHODS + h];

			r->acc[h].hits += a->hits;
			r->acc[h].relevant += a->relevant;
			r->acc[h].members += a->members;
			r->acc[h].rr += a->rr;
			r->acc[h].ndcg += a->ndcg;
		}
	for (h = 0; h < EVAL_NMETHODS; h++)
		eval_metrics(&r->acc[h], k, &r->m[h]);
	rc = 0;
out:
	free(j.acc);
	graph_free(g);
	free(gstart);
	eval_split_release(&s);
	return rc;
}
