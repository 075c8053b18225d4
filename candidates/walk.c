/* walk.c - random walk with restart (walk.h). */
#include "walk.h"

#include <string.h>

#include "mem.h"

/* Independent walkers stepped together, so their list reads overlap in
 * memory instead of waiting one after another. */
#define WALK_WALKERS 64u
/* The lists of u and of its neighbours are decoded once per query (a walk
 * spends about 75% of its steps at depth 0 and 1 with restart 0.5):
 * neighbour lists up to WALK_HOT_DEG entries (fewer for a member with many
 * neighbours, see hot_build), 4 * steps entries in all. */
#define WALK_HOT_DEG 4096u

/* The hot table: open addressing on the vertex id, 3 words a slot
 * (vertex + 1, offset into c->arena, length); 0 = empty. */
static uint32_t *hot_find(uint32_t *t, uint32_t mask, uint32_t x)
{
	uint32_t i = (x * 0x9e3779b1u) & mask;

	while (t[3 * i] && t[3 * i] != x + 1)
		i = (i + 1) & mask;
	return &t[3 * i];
}

/*
 * Decode u's list and the short lists of its neighbours into c->arena and
 * index them in c->hot. Returns the table mask, or -1 when out of memory.
 * O(d_u + the entries decoded), at most 4 * steps entries in all.
 */
static int64_t hot_build(struct cand_ctx *c, const struct graph_view *v,
			 uint32_t steps)
{
	uint32_t du = c->member_deg, slots = 4, n, i, w, dw, *h, *nb, lim;
	uint64_t budget = 4 * (uint64_t)steps;

	c->alen = 0;
	if (du > budget) { /* u's own list would cost more than the walk */
		if (mem_grow((void **)&c->hot, &c->hotcap, 3 * 4, sizeof(*c->hot)))
			return -1;
		memset(c->hot, 0, 3 * 4 * sizeof(*c->hot));
		return 3;
	}
	while (slots < 2 * (du + 1))
		slots *= 2;
	if (mem_grow((void **)&c->hot, &c->hotcap, (size_t)slots * 3,
		     sizeof(*c->hot)) ||
	    mem_grow((void **)&c->arena, &c->acap, du, sizeof(*c->arena)))
		return -1;
	memset(c->hot, 0, (size_t)slots * 3 * sizeof(*c->hot));
	c->alen = graph_ids(v, c->member, c->arena, du);
	h = hot_find(c->hot, slots - 1, c->member);
	h[0] = c->member + 1, h[1] = 0, h[2] = (uint32_t)c->alen;
	n = (uint32_t)c->alen;
	budget -= n < budget ? n : budget;
	/* a neighbour is stepped from about 0.25 * steps / d_u times; decode
	 * its list when that many block-index steps would cost more */
	lim = (uint32_t)(6 * (uint64_t)steps / (du ? du : 1));
	if (lim > WALK_HOT_DEG)
		lim = WALK_HOT_DEG;
	/* the neighbours' degrees in one batch, their misses overlapped */
	if (cand_reserve_buf(c, n ? n : 1))
		return -1;
	graph_degree_member_batch(v, n, c->arena, c->tsbuf, NULL);
	for (i = 0; i < n; i++) {
		w = c->arena[i];
		dw = c->tsbuf[i];
		if (dw > lim || dw > budget)
			continue;
		if (mem_grow((void **)&c->arena, &c->acap, c->alen + dw,
			     sizeof(*c->arena)))
			return -1;
		nb = c->arena + c->alen;
		dw = graph_ids(v, w, nb, dw);
		h = hot_find(c->hot, slots - 1, w);
		h[0] = w + 1, h[1] = (uint32_t)c->alen, h[2] = dw;
		c->alen += dw;
		budget -= dw;
	}
	return slots - 1;
}

/* Count landings l[0..n) in order; 1 once the walk has settled. */
static int count_landings(struct cand_ctx *c, const struct walk_params *p,
			  const uint32_t *l, uint32_t n, uint32_t *settled,
			  int *oom)
{
	struct cand *s;
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (!cand_in_table(c, l[i]))
			continue; /* joined during the query */
		if (!(s = cand_touch(c, l[i]))) {
			*oom = 1;
			return 1;
		}
		if (s->flags & CAND_EXCL)
			continue;
		s->flags |= CAND_WALK;
		if (++s->visits == p->settle_nv && p->settle_nv &&
		    ++*settled >= p->settle_np)
			return 1;
	}
	return 0;
}

void walk_params_default(struct walk_params *p)
{
	p->steps = 1000;
	p->restart = 0.5f;
	p->settle_np = 20;
	p->settle_nv = 6;
}

uint64_t walk_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int walk_run(struct cand_ctx *c, const struct graph_view *v,
	     const struct walk_params *p, uint64_t deadline_ns,
	     struct cand_run *run, struct err *e)
{
	struct cand_run r = { 0, 0, 0 };
	uint64_t seed = graph_member(v, c->member) ^ 0x7472696164ull; /* "triad" */
	/* restart test on the top 32 bits: compare with a fixed threshold */
	uint64_t thr = (uint64_t)((double)p->restart * 4294967296.0);
	uint64_t st[WALK_WALKERS];
	uint32_t cur[WALK_WALKERS], nxt[WALK_WALKERS], bu[WALK_WALKERS];
	uint32_t br[WALK_WALKERS], bn[WALK_WALKERS], bk[WALK_WALKERS];
	uint32_t land[WALK_WALKERS], prev[WALK_WALKERS], np = 0;
	uint32_t settled = 0, step = 0, k, m, j, rnd, *h, *uh, mask;
	int64_t hm;
	int oom = 0;

	if ((hm = hot_build(c, v, p->steps)) < 0) {
		oom = 1;
		goto out;
	}
	mask = (uint32_t)hm;
	uh = hot_find(c->hot, mask, c->member);
	for (k = 0; k < WALK_WALKERS; k++) {
		st[k] = seed + k * 0x632be59bd9b4e019ull;
		cur[k] = c->member;
	}
	while (step < p->steps) {
		if (cand_past(deadline_ns)) {
			r.cut = 1;
			break;
		}
		/* each walker's next vertex: from a hot list, else in one
		 * batch through the graph */
		for (k = m = 0; k < WALK_WALKERS; k++) {
			rnd = (uint32_t)(walk_rand(&st[k]) >> 32);
			h = hot_find(c->hot, mask, cur[k]);
			if (h[0]) {
				nxt[k] = h[2] ? c->arena[h[1] + (uint32_t)(((uint64_t)rnd *
							     h[2]) >> 32)]
					      : GRAPH_NONE;
			} else {
				bu[m] = cur[k];
				br[m] = rnd;
				bk[m++] = k;
			}
		}
		graph_nth_batch(v, m, bu, br, bn, NULL);
		for (j = 0; j < m; j++)
			nxt[bk[j]] = bn[j];
		for (k = 0; k < WALK_WALKERS; k++)
			cand_prefetch(c, nxt[k]);
		/* count the previous round's landings, prefetched a round
		 * ago; then this round's restarts. In walker order, so the
		 * visits are deterministic. */
		if (count_landings(c, p, prev, np, &settled, &oom)) {
			np = 0; /* counted: not again below */
			break;
		}
		for (k = np = 0; k < WALK_WALKERS && step < p->steps; k++) {
			step++;
			if (nxt[k] == GRAPH_NONE) {
				cur[k] = c->member; /* dead end (directed graphs) */
			} else {
				land[np++] = nxt[k];
				if ((walk_rand(&st[k]) >> 32) >= thr) {
					cur[k] = nxt[k];
					continue;
				}
				cur[k] = c->member;
			}
			/* back at u: a step from u lands on a neighbour of u,
			 * which counts no visit (excluded), so take such steps
			 * right here from u's decoded list, each a step of the
			 * budget followed by its own restart test as before,
			 * until one leaves u; the next round then spends its
			 * step where a landing can count */
			while (uh[0] && uh[2] && step < p->steps) {
				rnd = (uint32_t)(walk_rand(&st[k]) >> 32);
				step++;
				r.edges_read++;
				if ((walk_rand(&st[k]) >> 32) >= thr) {
					cur[k] = c->arena[uh[1] +
						(uint32_t)(((uint64_t)rnd * uh[2]) >> 32)];
					break;
				}
			}
		}
		memcpy(prev, land, np * sizeof(*land));
		r.edges_read += np;
	}
	if (!oom && np)
		count_landings(c, p, prev, np, &settled, &oom);
out:
	r.steps = step;
	if (run)
		*run = r;
	if (oom)
		return err_set(e, "out of memory for the random walk");
	return 0;
}
