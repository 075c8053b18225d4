/* walk.c - random walk with restart (walk.h). */
#include "walk.h"

#include "mem.h"

/* A list is decoded into a per-query cache once the steps taken from its
 * vertex would have decoded about as many entries through the block index
 * (WALK_AMORTISE each on average): after 2 steps from a short list, after
 * d / 32 from a long one. Later steps from it are O(1). Most vertices a
 * walk reaches are stepped from once or twice, so caching on first sight
 * would decode whole lists to use one entry. The cache holds at most
 * WALK_ARENA_MAX entries per query. */
#define WALK_AMORTISE 32u
#define WALK_ARENA_MAX (1u << 22)
/* Independent walkers stepped together, so their list reads overlap in
 * memory instead of waiting one after another. */
#define WALK_WALKERS 16u

/*
 * Where a walker steps from x with random fraction r (32 bits) goes, when
 * that needs no list read: 1 with *out set (from the cache, or from the
 * list decoded into it now), 0 when the graph must pick (graph_nth_batch;
 * walk_seen records the degree it reports), -1 OOM. A vertex with no
 * neighbours gives *out = GRAPH_NONE. Before CAND_CACHED, a seen slot's
 * nb_len is the degree and nb_off the steps taken from it.
 */
static int step_local(struct cand_ctx *c, const struct graph_view *v,
		      uint32_t x, uint32_t r, uint32_t *out)
{
	struct cand *s = cand_touch(c, x);
	uint32_t d, n;

	if (!s)
		return -1;
	if (!(s->flags & CAND_CACHED)) {
		if (!(s->flags & CAND_SEEN))
			return 0;
		d = s->nb_len;
		if ((uint64_t)++s->nb_off * WALK_AMORTISE < d ||
		    c->alen + d > WALK_ARENA_MAX)
			return 0;
		if (mem_grow((void **)&c->arena, &c->acap, c->alen + d,
			     sizeof(*c->arena)))
			return -1;
		n = graph_ids(v, x, c->arena + c->alen);
		s = cand_find(c, x); /* the table may have moved: re-find */
		s->nb_off = (uint32_t)c->alen;
		s->nb_len = n;
		s->flags |= CAND_CACHED;
		c->alen += n;
	}
	*out = s->nb_len ? c->arena[s->nb_off + (uint32_t)(((uint64_t)r *
						s->nb_len) >> 32)]
			 : GRAPH_NONE;
	return 1;
}

/* After the graph picked for x: remember its degree (x was touched). */
static void walk_seen(struct cand_ctx *c, uint32_t x, uint32_t d)
{
	struct cand *s = cand_find(c, x);

	if (!(s->flags & CAND_SEEN)) {
		s->flags |= CAND_SEEN;
		s->nb_len = d;
		s->nb_off = 1;
	}
}

void walk_params_default(struct walk_params *p)
{
	p->steps = 8000;
	p->restart = 0.35f;
	p->settle_np = 40;
	p->settle_nv = 12;
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
	uint32_t bd[WALK_WALKERS];
	uint32_t settled = 0, step = 0, k, m, j, rnd;
	struct cand *s;
	int rc = 0, got, done = 0;

	for (k = 0; k < WALK_WALKERS; k++) {
		st[k] = seed + k * 0x632be59bd9b4e019ull;
		cur[k] = c->member;
	}
	while (!done && step < p->steps) {
		if (cand_past(deadline_ns)) {
			r.cut = 1;
			break;
		}
		/* each walker's next vertex: from its cache, else in one batch
		 * through the graph */
		for (k = m = 0; k < WALK_WALKERS; k++) {
			rnd = (uint32_t)(walk_rand(&st[k]) >> 32);
			got = step_local(c, v, cur[k], rnd, &nxt[k]);
			if (got < 0) {
				rc = err_set(e, "out of memory for the random walk");
				goto out;
			}
			if (!got) {
				bu[m] = cur[k];
				br[m] = rnd;
				bk[m++] = k;
			}
		}
		graph_nth_batch(v, m, bu, br, bn, bd);
		for (j = 0; j < m; j++) {
			nxt[bk[j]] = bn[j];
			walk_seen(c, bu[j], bd[j]);
		}
		for (k = 0; k < WALK_WALKERS; k++)
			cand_prefetch(c, nxt[k]);
		/* land, count, restart: in walker order, so deterministic */
		for (k = 0; k < WALK_WALKERS && step < p->steps; k++) {
			step++;
			if (nxt[k] == GRAPH_NONE) {
				cur[k] = c->member; /* dead end (directed graphs) */
				continue;
			}
			r.edges_read++;
			if (!(s = cand_touch(c, nxt[k]))) {
				rc = err_set(e, "out of memory for the random walk");
				goto out;
			}
			if (!(s->flags & CAND_EXCL)) {
				s->flags |= CAND_WALK;
				if (++s->visits == p->settle_nv && p->settle_nv &&
				    ++settled >= p->settle_np) {
					done = 1;
					break;
				}
			}
			cur[k] = ((walk_rand(&st[k]) >> 32) < thr) ? c->member
								   : nxt[k];
		}
	}
out:
	r.steps = step;
	if (run)
		*run = r;
	return rc;
}
