/* trend.c - the most active members lately (trend.h). */
#include "trend.h"

#include <string.h>

static const uint32_t windows[TREND_NWINDOWS] = {
	1u * 86400u, 3u * 86400u, 7u * 86400u, 14u * 86400u,
	30u * 86400u, 90u * 86400u, 365u * 86400u,
};

/* The k most active for one window: a min-heap on rank (the root is the
 * least of those kept). */
struct heap {
	uint32_t n;
	uint32_t v[TREND_K], act[TREND_K];
	uint64_t busy; /* members with activity >= 2 in this window */
};

/* x ranks above y: more active, then the smaller member id. */
static int above(const struct graph_view *g, uint32_t ax, uint32_t x,
		 uint32_t ay, uint32_t y)
{
	return ax != ay ? ax > ay : graph_member(g, x) < graph_member(g, y);
}

static void swap(struct heap *h, uint32_t i, uint32_t j)
{
	uint32_t a = h->v[i], b = h->act[i];

	h->v[i] = h->v[j], h->act[i] = h->act[j];
	h->v[j] = a, h->act[j] = b;
}

static void sift_down(struct heap *h, const struct graph_view *g, uint32_t i,
		      uint32_t n)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < n && above(g, h->act[m], h->v[m], h->act[l], h->v[l]))
			m = l;
		if (r < n && above(g, h->act[m], h->v[m], h->act[r], h->v[r]))
			m = r;
		if (m == i)
			return;
		swap(h, i, m);
		i = m;
	}
}

static void offer(struct heap *h, const struct graph_view *g, uint32_t k,
		  uint32_t x, uint32_t a)
{
	uint32_t i, p;

	if (h->n < k) {
		i = h->n++;
		h->v[i] = x;
		h->act[i] = a;
		while (i) { /* sift up */
			p = (i - 1) / 2;
			if (!above(g, h->act[p], h->v[p], h->act[i], h->v[i]))
				break;
			swap(h, i, p);
			i = p;
		}
	} else if (above(g, a, x, h->act[0], h->v[0])) {
		h->v[0] = x;
		h->act[0] = a;
		sift_down(h, g, 0, h->n);
	}
}

/*
 * The timestamp held by more than half of the graph's list entries, if one
 * is (Boyer-Moore majority vote; the caller's pass counts the votes):
 * a file loaded without times, or a graph that was built in one go, stamps
 * its edges alike, and such a stamp is a bulk, not activity.
 */
static uint32_t majority_ts(const struct graph_view *g, uint32_t nv)
{
	uint32_t cand = 0, x, w, ts;
	uint64_t votes = 0;
	struct graph_iter it;

	for (x = 0; x < nv; x++) {
		if (!graph_degree(g, x))
			continue;
		graph_iter_init(&it, g, x);
		while (graph_iter_next(&it, &w, &ts))
			if (!votes)
				cand = ts, votes = 1;
			else if (ts == cand)
				votes++;
			else
				votes--;
	}
	return cand;
}

void trend_build(struct trend *t, const struct graph_view *g, uint32_t now,
		 uint32_t k)
{
	static const uint32_t none = TREND_NWINDOWS;
	/* [0]: every edge counts; [1]: the edges of the majority stamp not */
	struct heap h[2][TREND_NWINDOWS];
	uint32_t nv = graph_nvertices(g), x, w, ts, i, j, bulk;
	uint32_t c[2][TREND_NWINDOWS];
	uint64_t total = 0, at_bulk = 0;
	struct graph_iter it;
	struct heap *best, *hs;

	memset(t, 0, sizeof(*t));
	memset(h, 0, sizeof(h));
	t->now = now;
	if (k > TREND_K)
		k = TREND_K;
	if (!k)
		return;
	bulk = majority_ts(g, nv);
	for (x = 0; x < nv; x++) {
		if (!graph_degree(g, x))
			continue;
		memset(c, 0, sizeof(c));
		graph_iter_init(&it, g, x);
		while (graph_iter_next(&it, &w, &ts)) {
			uint32_t age = now - ts, j0 = none;

			total++;
			at_bulk += ts == bulk;
			if (ts > now)
				continue;
			for (j = 0; j < TREND_NWINDOWS; j++)
				if (age < windows[j]) {
					j0 = j;
					break;
				}
			if (j0 != none) {
				c[0][j0]++;
				c[1][j0] += ts != bulk;
			}
		}
		for (i = 0; i < 2; i++) {
			for (j = 1; j < TREND_NWINDOWS; j++) /* nested windows */
				c[i][j] += c[i][j - 1];
			for (j = 0; j < TREND_NWINDOWS; j++)
				if (c[i][j]) {
					h[i][j].busy += c[i][j] >= 2;
					offer(&h[i][j], g, k, x, c[i][j]);
				}
		}
	}
	t->bulk = 2 * at_bulk > total;
	if (at_bulk == total)
		return; /* no edges, or one timestamp on every edge: no "lately" */
	/* a bulk stamp: the other edges alone */
	hs = 2 * at_bulk > total ? h[1] : h[0];
	for (j = 0; j + 1 < TREND_NWINDOWS && hs[j].busy < k; j++)
		;
	best = &hs[j];
	t->window = windows[j];
	/* most active first: pop the heap into the back */
	for (i = best->n; i > 1; i--) {
		swap(best, 0, i - 1);
		sift_down(best, g, 0, i - 1);
	}
	t->n = best->n;
	memcpy(t->v, best->v, sizeof(t->v));
	memcpy(t->act, best->act, sizeof(t->act));
	for (i = 0; i < t->n; i++)
		t->by_v[i] = i;
	for (i = 1; i < t->n; i++) /* insertion sort by vertex id: n <= 32 */
		for (j = i; j > 0 && t->v[t->by_v[j - 1]] > t->v[t->by_v[j]]; j--) {
			uint32_t s = t->by_v[j];

			t->by_v[j] = t->by_v[j - 1];
			t->by_v[j - 1] = s;
		}
}

void trend_build_graph(struct trend *t, const struct graph *g, uint32_t now)
{
	struct graph_view v;

	graph_view_begin(g, &v);
	trend_build(t, &v, now, TREND_K);
	graph_view_end(&v);
}

uint32_t trend_activity(const struct trend *t, uint32_t x)
{
	uint32_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2, y = t->v[t->by_v[mid]];

		if (y == x)
			return t->act[t->by_v[mid]];
		if (y < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}
