/* feat.c - pair features (feat.h). */
#include "feat.h"

#include <math.h>
#include <string.h>

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
	double aa, ra, rec;
	uint32_t newest; /* newest ts of an edge to a mutual connection */
	struct feat_via *via;
};

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

	/* a mutual w has both u and c as neighbours, so d_w >= 2 */
	if (dw >= 2) {
		a->aa += 1.0 / log((double)dw);
		a->ra += 1.0 / (double)dw;
	}
	a->rec += exp(-(age_s(a->now, ts_aw) + age_s(a->now, ts_bw)) / FEAT_TAU);
	if (later > a->newest)
		a->newest = later;
	if (a->via)
		via_add(a->via, w, later);
	return 0;
}

void feat_compute(const struct graph_view *v, uint32_t u, uint32_t c,
		  uint32_t now, const struct feat_in *in, double *x,
		  struct feat_via *via)
{
	struct acc a = { v, now, 0, 0, 0, 0, via };
	uint32_t du = graph_degree(v, u), dc = graph_degree(v, c);
	uint32_t nb[32], ts[32], got, i, recent = 0, m, newest_c;
	double uni;

	if (via)
		via->n = 0;
	m = graph_common(v, u, c, on_common, &a);
	x[FEAT_MUTUAL] = m;
	x[FEAT_ADAMIC_ADAR] = a.aa;
	x[FEAT_RESOURCE_ALLOC] = a.ra;
	uni = (double)du + (double)dc - (double)m;
	x[FEAT_JACCARD] = uni > 0 ? (double)m / uni : 0.0;
	x[FEAT_COSINE] = du && dc ? (double)m / sqrt((double)du * dc) : 0.0;
	x[FEAT_PREF_ATTACH] = log1p((double)du * (double)dc);
	x[FEAT_DEG_MEMBER] = log1p(du);
	x[FEAT_DEG_CAND] = log1p(dc);
	x[FEAT_WALK] = log1p(in ? in->visits : 0);
	x[FEAT_PPR] = log1p(in ? 1e4 * (double)in->ppr : 0.0);
	x[FEAT_RECENT_MUTUAL] = a.rec;
	x[FEAT_MUTUAL_AGE] = log1p(m ? age_s(now, a.newest) / 3600.0
				     : FEAT_AGE_NONE);
	/* c's newest 32 edges: the young ones among them are simply all its
	 * young edges, capped at 32, so a short list needs one plain pass
	 * (max ts and a count); a long one has the graph's newest index */
	if (dc >= 1024) {
		got = graph_sample(v, c, 32, GRAPH_SAMPLE_NEWEST, 0, nb, ts);
		for (i = 0; i < got; i++)
			if (age_s(now, ts[i]) < FEAT_TAU)
				recent++;
		newest_c = got ? ts[0] : 0;
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
	x[FEAT_CAND_AGE] = log1p(got ? age_s(now, newest_c) / 3600.0
				     : FEAT_AGE_NONE);
	x[FEAT_CAND_RECENT] = log1p(recent);
	x[FEAT_LOG_MUTUAL] = log1p(m);
}
