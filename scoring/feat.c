/* feat.c - pair features (feat.h). */
#include "feat.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

static const char *const names[FEAT_N] = {
	[FEAT_MUTUAL] = "mutual",
	[FEAT_ADAMIC_ADAR] = "adamic_adar",
	[FEAT_RESOURCE_ALLOC] = "resource_alloc",
	[FEAT_JACCARD] = "jaccard",
	[FEAT_COSINE] = "cosine",
	[FEAT_PREF_ATTACH] = "pref_attach",
	[FEAT_DEG_MEMBER] = "deg_member",
	[FEAT_DEG_CAND] = "deg_cand",
	[FEAT_WALK] = "walk",
	[FEAT_PPR] = "ppr",
	[FEAT_RECENT_MUTUAL] = "recent_mutual",
	[FEAT_MUTUAL_AGE] = "mutual_age",
	[FEAT_CAND_AGE] = "cand_age",
	[FEAT_CAND_RECENT] = "cand_recent",
	[FEAT_LOG_MUTUAL] = "log_mutual",
	[FEAT_TREND] = "trend",
};

const char *feat_name(enum feat_id f)
{
	return (unsigned)f < FEAT_N ? names[f] : "?";
}

int feat_lookup(const char *name)
{
	int i;

	for (i = 0; i < FEAT_N; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

struct acc {
	const struct graph_view *v;
	uint32_t now;
	uint64_t aa_fx, ra_fx;
	double rec;
	uint32_t newest; /* newest ts of an edge to a mutual connection */
	struct feat_via *via;
};

/* log1p of the small integers the count features take (degrees, mutual
 * counts, walk visits, recent edges), looked up instead of computed: the
 * same doubles log1p returns, so a feature is bit for bit what it was.
 * A query scores hundreds of candidates with five or six of these each. */
#define LOG1P_TAB 4096u
static double log1p_tab[LOG1P_TAB];
static pthread_once_t log1p_once = PTHREAD_ONCE_INIT;

static void log1p_init(void)
{
	for (uint32_t i = 0; i < LOG1P_TAB; i++)
		log1p_tab[i] = log1p((double)i);
}

static inline double log1p_n(uint64_t n)
{
	return n < LOG1P_TAB ? log1p_tab[n] : log1p((double)n);
}

static double age_s(uint32_t now, uint32_t ts)
{
	return ts >= now ? 0.0 : (double)(now - ts);
}

static void via_add(struct feat_via *via, uint32_t w, uint32_t ts)
{
	uint32_t i;

	/* keep the FEAT_VIA_MAX newest; ascending w arrives, so on equal ts
	 * the earlier (smaller) id stays ahead */
	if (via->n == FEAT_VIA_MAX && ts <= via->ts[via->n - 1])
		return;
	i = via->n < FEAT_VIA_MAX ? via->n++ : FEAT_VIA_MAX - 1;
	while (i > 0 && via->ts[i - 1] < ts) {
		via->v[i] = via->v[i - 1];
		via->ts[i] = via->ts[i - 1];
		i--;
	}
	via->v[i] = w;
	via->ts[i] = ts;
}

static int on_common(void *ctx, uint32_t w, uint32_t ts_aw, uint32_t ts_bw)
{
	struct acc *a = ctx;
	uint32_t dw = graph_degree(a->v, w);
	uint32_t later = ts_aw > ts_bw ? ts_aw : ts_bw;

	/* graph_common has no cap on the mutual connections (a member past
	 * FEAT_MEMBER_MAX, eval's exact heuristics): saturate (cand.h) */
	a->aa_fx = cand_fx_add(a->aa_fx, cand_fx_aa(dw));
	a->ra_fx = cand_fx_add(a->ra_fx, cand_fx_ra(dw));
	a->rec += exp(-(age_s(a->now, ts_aw) + age_s(a->now, ts_bw)) / FEAT_TAU);
	if (later > a->newest)
		a->newest = later;
	if (a->via)
		via_add(a->via, w, later);
	return 0;
}

void feat_from_counts(uint32_t du, uint32_t dc, uint32_t m, uint64_t aa_fx,
		      uint64_t ra_fx, const struct feat_in *in, uint32_t need,
		      double *x)
{
	double uni;
	uint32_t f;

	pthread_once(&log1p_once, log1p_init);
	for (f = 0; f < FEAT_N; f++)
		x[f] = NAN;
	if (need & FEAT_BIT(FEAT_MUTUAL))
		x[FEAT_MUTUAL] = m;
	if (need & FEAT_BIT(FEAT_ADAMIC_ADAR))
		x[FEAT_ADAMIC_ADAR] = cand_fx_value(aa_fx);
	if (need & FEAT_BIT(FEAT_RESOURCE_ALLOC))
		x[FEAT_RESOURCE_ALLOC] = cand_fx_value(ra_fx);
	if (need & FEAT_BIT(FEAT_JACCARD)) {
		uni = (double)du + (double)dc - (double)m;
		x[FEAT_JACCARD] = uni > 0 ? (double)m / uni : 0.0;
	}
	if (need & FEAT_BIT(FEAT_COSINE))
		x[FEAT_COSINE] = du && dc ? (double)m / sqrt((double)du * dc) : 0.0;
	if (need & FEAT_BIT(FEAT_PREF_ATTACH))
		x[FEAT_PREF_ATTACH] = log1p_n((uint64_t)du * dc);
	if (need & FEAT_BIT(FEAT_DEG_MEMBER))
		x[FEAT_DEG_MEMBER] = log1p_n(du);
	if (need & FEAT_BIT(FEAT_DEG_CAND))
		x[FEAT_DEG_CAND] = log1p_n(dc);
	if (need & FEAT_BIT(FEAT_WALK))
		x[FEAT_WALK] = log1p_n(in ? in->visits : 0);
	if (need & FEAT_BIT(FEAT_PPR))
		x[FEAT_PPR] = log1p(in ? 1e4 * (double)in->ppr : 0.0);
	if (need & FEAT_BIT(FEAT_LOG_MUTUAL))
		x[FEAT_LOG_MUTUAL] = log1p_n(m);
	if (need & FEAT_BIT(FEAT_TREND))
		x[FEAT_TREND] = log1p_n(in ? in->trend : 0);
}

/* Every feature: the counts' ones, then those that need timestamps. */
static void finish(double *x, uint32_t du, uint32_t dc, uint32_t m,
		   const struct acc *a, const struct feat_in *in, uint32_t now,
		   uint32_t got, uint32_t newest_c, uint32_t recent)
{
	feat_from_counts(du, dc, m, a->aa_fx, a->ra_fx, in, FEAT_ALL, x);
	x[FEAT_RECENT_MUTUAL] = a->rec;
	x[FEAT_MUTUAL_AGE] = log1p(m ? age_s(now, a->newest) / 3600.0
				     : FEAT_AGE_NONE);
	x[FEAT_CAND_AGE] = log1p(got ? age_s(now, newest_c) / 3600.0
				     : FEAT_AGE_NONE);
	x[FEAT_CAND_RECENT] = log1p_n(recent);
}

struct via_run {
	struct feat_via *via;
	uint32_t left; /* mutual connections still to come */
};

static int on_via(void *ctx, uint32_t w, uint32_t ts_aw, uint32_t ts_bw)
{
	struct via_run *r = ctx;

	via_add(r->via, w, ts_aw > ts_bw ? ts_aw : ts_bw);
	return --r->left == 0;
}

void feat_via(const struct graph_view *v, uint32_t u, uint32_t c,
	      uint32_t mutual, struct feat_via *via)
{
	struct via_run r = { via, mutual };

	via->n = 0;
	if (mutual)
		graph_common(v, u, c, on_via, &r);
}

/* c's newest 32 edges through the graph's newest index (d_c >= 1024). */
static void hub_recency(const struct graph_view *v, uint32_t c, uint32_t now,
			uint32_t *got, uint32_t *newest_c, uint32_t *recent)
{
	uint32_t nb[32], ts[32], i;

	*got = graph_sample(v, c, 32, GRAPH_SAMPLE_NEWEST, 0, nb, ts);
	*recent = 0;
	for (i = 0; i < *got; i++)
		if (age_s(now, ts[i]) < FEAT_TAU)
			(*recent)++;
	*newest_c = *got ? ts[0] : 0;
}

void feat_compute(const struct graph_view *v, uint32_t u, uint32_t c,
		  uint32_t now, const struct feat_in *in, double *x,
		  struct feat_via *via)
{
	struct acc a = { v, now, 0, 0, 0, 0, via };
	uint32_t du = graph_degree(v, u), dc = graph_degree(v, c);
	uint32_t got, recent = 0, m, newest_c;

	if (via)
		via->n = 0;
	m = graph_common(v, u, c, on_common, &a);
	/* c's newest 32 edges: the young ones among them are simply all its
	 * young edges, capped at 32, so a short list needs one plain pass
	 * (max ts and a count); a long one has the graph's newest index */
	if (dc >= 1024) {
		hub_recency(v, c, now, &got, &newest_c, &recent);
	} else {
		struct graph_iter it;
		uint32_t w, t;

		got = 0;
		newest_c = 0;
		graph_iter_init(&it, v, c);
		while (graph_iter_next(&it, &w, &t)) {
			got++;
			if (t > newest_c)
				newest_c = t;
			if (age_s(now, t) < FEAT_TAU)
				recent++;
		}
		if (recent > 32)
			recent = 32;
	}
	finish(x, du, dc, m, &a, in, now, got, newest_c, recent);
}

int feat_member_set(struct feat_member *m, const struct graph_view *v,
		    uint32_t u, uint32_t now)
{
	uint32_t d = graph_degree(v, u), n = 0, i;
	size_t c1 = m->cap, c2 = m->cap, c3 = m->cap, c4 = m->cap;

	m->v = v;
	m->u = u;
	m->now = now;
	m->lazy = d > FEAT_MEMBER_MAX;
	if (m->lazy) {
		m->du = d;
		return 0;
	}
	if (d > m->cap) {
		if (mem_grow((void **)&m->id, &c1, d, sizeof(*m->id)) ||
		    mem_grow((void **)&m->ts, &c2, d, sizeof(*m->ts)) ||
		    mem_grow((void **)&m->aa_fx, &c3, d, sizeof(*m->aa_fx)) ||
		    mem_grow((void **)&m->ra_fx, &c4, d, sizeof(*m->ra_fx)))
			return -1;
		m->cap = d;
	}
	/* each on its own: a failure leaves nothing half made for the next
	 * call to trust */
	if (!m->cid && !(m->cid = mem_alloc(FEAT_LIST_BUF, sizeof(*m->cid))))
		return -1;
	if (!m->cts && !(m->cts = mem_alloc(FEAT_LIST_BUF, sizeof(*m->cts))))
		return -1;
	n = graph_list(v, u, m->id, m->ts, d);
	for (i = 0; i < n; i++)
		m->aa_fx[i] = UINT64_MAX;
	m->du = n;
	return 0;
}

void feat_member_release(struct feat_member *m)
{
	free(m->id);
	free(m->ts);
	free(m->aa_fx);
	free(m->ra_fx);
	free(m->cid);
	free(m->cts);
	memset(m, 0, sizeof(*m));
}

/* First index >= lo with id[i] >= x (or n): galloping, then binary. */
static uint32_t gallop(const uint32_t *id, uint32_t lo, uint32_t n, uint32_t x)
{
	uint32_t step = 1, hi;

	while (lo + step < n && id[lo + step] < x)
		step *= 2;
	hi = lo + step < n ? lo + step + 1 : n;
	lo += step / 2;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (id[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* pair_common's mutual connections are u's, at most FEAT_MEMBER_MAX: a
 * plain add cannot overflow (cand.h) */
_Static_assert(FEAT_MEMBER_MAX < CAND_FX_TERMS_SAFE, "feat_pair sums could overflow");

/* on_common for the mutual at position i of u's array, with c's edge ts. */
static void mutual_at(struct feat_member *fm, struct acc *a, uint32_t i,
		      uint32_t ts_cw)
{
	uint32_t ts_uw = fm->ts[i], later = ts_uw > ts_cw ? ts_uw : ts_cw;

	if (fm->aa_fx[i] == UINT64_MAX) {
		uint32_t dw = graph_degree(fm->v, fm->id[i]);

		fm->aa_fx[i] = cand_fx_aa(dw);
		fm->ra_fx[i] = cand_fx_ra(dw);
	}
	a->aa_fx += fm->aa_fx[i];
	a->ra_fx += fm->ra_fx[i];
	a->rec += exp(-(age_s(a->now, ts_uw) + age_s(a->now, ts_cw)) / FEAT_TAU);
	if (later > a->newest)
		a->newest = later;
	if (a->via)
		via_add(a->via, fm->id[i], later);
}

/*
 * The mutual connections of the member and the candidate whose list is in
 * fm->cid/cts[0..n), ascending, each through mutual_at (so the sums take
 * their terms in the same order as every other path). Gallops in the
 * longer list from the shorter one: O(min * log(max / min)).
 */
static uint32_t pair_common(struct feat_member *fm, struct acc *a, uint32_t n)
{
	uint32_t i, j = 0, m = 0;

	if (fm->du <= n) {
		for (i = 0; i < fm->du && j < n; i++) {
			if (fm->cid[j] < fm->id[i])
				j = gallop(fm->cid, j, n, fm->id[i]);
			if (j < n && fm->cid[j] == fm->id[i]) {
				mutual_at(fm, a, i, fm->cts[j++]);
				m++;
			}
		}
		return m;
	}
	for (i = 0; i < n && j < fm->du; i++) {
		if (fm->id[j] < fm->cid[i])
			j = gallop(fm->id, j, fm->du, fm->cid[i]);
		if (j < fm->du && fm->id[j] == fm->cid[i]) {
			mutual_at(fm, a, j++, fm->cts[i]);
			m++;
		}
	}
	return m;
}

void feat_pair(struct feat_member *fm, uint32_t c, const struct feat_in *in,
	       double *x, struct feat_via *via)
{
	const struct graph_view *v = fm->v;
	struct acc a = { v, fm->now, 0, 0, 0, 0, via };
	uint32_t dc = graph_degree(v, c), got = 0, recent = 0, m = 0;
	uint32_t newest_c = 0, t, n, i;
	int64_t cut;

	if (via)
		via->n = 0;
	if (fm->lazy) {
		feat_compute(v, fm->u, c, fm->now, in, x, via);
		return;
	}
	if (dc >= 1024) {
		m = graph_common(v, fm->u, c, on_common, &a);
		hub_recency(v, c, fm->now, &got, &newest_c, &recent);
		finish(x, fm->du, dc, m, &a, in, fm->now, got, newest_c, recent);
		return;
	}
	/* the list in one call; one that grew past the buffer since its
	 * degree was read (a writer alongside) takes the one-pair path,
	 * which gives the same values */
	n = graph_list(v, c, fm->cid, fm->cts, FEAT_LIST_BUF);
	if (n == FEAT_LIST_BUF) {
		feat_compute(v, fm->u, c, fm->now, in, x, via);
		return;
	}
	/* age_s(now, t) < FEAT_TAU, in integers: t > now - tau */
	cut = (int64_t)fm->now - FEAT_TAU_S;
	for (i = 0; i < n; i++) {
		t = fm->cts[i];
		newest_c = t > newest_c ? t : newest_c;
		recent += (int64_t)t > cut;
	}
	got = n;
	m = pair_common(fm, &a, n);
	if (recent > 32)
		recent = 32;
	finish(x, fm->du, dc, m, &a, in, fm->now, got, newest_c, recent);
}
