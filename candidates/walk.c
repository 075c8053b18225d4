/* walk.c - random walk with restart (walk.h). */
#include "walk.h"

#include "mem.h"

/* A list is decoded and cached on the second step from its vertex (up to
 * this long), so later steps cost O(1); the first step, and every step
 * from longer lists, picks the same neighbour number through the graph's
 * block index (graph_nth) without decoding the list. Most vertices a walk
 * reaches are stepped from once, so caching on first sight decoded lists
 * only to use one entry. The cache holds at most WALK_ARENA_MAX entries
 * per query. */
#define WALK_CACHE_DEG 4096u
#define WALK_ARENA_MAX (1u << 22)

/* A uniformly chosen neighbour of x into *out; 0 when x has none, -1 OOM. */
static int step_from(struct cand_ctx *c, const struct graph_view *v,
		     uint32_t x, uint64_t rnd, uint32_t *out)
{
	struct cand *s = cand_touch(c, x);
	struct graph_iter it;
	uint32_t d, w, n = 0;

	if (!s)
		return -1;
	if (!(s->flags & CAND_CACHED)) {
		d = graph_degree(v, x);
		if (d == 0)
			return 0;
		if (!(s->flags & CAND_SEEN) || d > WALK_CACHE_DEG ||
		    c->alen + d > WALK_ARENA_MAX) {
			s->flags |= CAND_SEEN;
			return graph_nth(v, x, (uint32_t)((rnd >> 32) * d >> 32),
					 out);
		}
		if (mem_grow((void **)&c->arena, &c->acap, c->alen + d,
			     sizeof(*c->arena)))
			return -1;
		graph_iter_init(&it, v, x);
		while (n < d && graph_iter_next(&it, &w, NULL))
			c->arena[c->alen + n++] = w;
		s = cand_find(c, x); /* the table may have moved: re-find */
		s->nb_off = (uint32_t)c->alen;
		s->nb_len = n;
		s->flags |= CAND_CACHED;
		c->alen += n;
	}
	if (!s->nb_len)
		return 0;
	*out = c->arena[s->nb_off + (uint32_t)((rnd >> 32) * s->nb_len >> 32)];
	return 1;
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
	uint64_t st = graph_member(v, c->member) ^ 0x7472696164ull; /* "triad" */
	/* restart test on the top 32 bits: compare with a fixed threshold */
	uint64_t thr = (uint64_t)((double)p->restart * 4294967296.0);
	uint32_t cur = c->member, nxt, settled = 0, step;
	struct cand *s;
	int rc = 0, got;

	for (step = 0; step < p->steps; step++) {
		if ((step & 63) == 0 && cand_past(deadline_ns)) {
			r.cut = 1;
			break;
		}
		got = step_from(c, v, cur, walk_rand(&st), &nxt);
		if (got < 0) {
			rc = err_set(e, "out of memory for the random walk");
			break;
		}
		if (got == 0) {
			cur = c->member; /* dead end (directed graphs) */
			continue;
		}
		r.edges_read++;
		s = cand_touch(c, nxt);
		if (!s) {
			rc = err_set(e, "out of memory for the random walk");
			break;
		}
		if (!(s->flags & CAND_EXCL)) {
			s->flags |= CAND_WALK;
			if (++s->visits == p->settle_nv && p->settle_nv &&
			    ++settled >= p->settle_np) {
				step++;
				break;
			}
		}
		cur = ((walk_rand(&st) >> 32) < thr) ? c->member : nxt;
	}
	r.steps = step;
	if (run)
		*run = r;
	return rc;
}
