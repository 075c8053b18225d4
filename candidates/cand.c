/* cand.c - the dense per-query candidate table (see cand.h). */
#include "cand.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"

struct cand_ctx *cand_ctx_new(void)
{
	return mem_calloc(1, sizeof(struct cand_ctx));
}

void cand_ctx_free(struct cand_ctx *c)
{
	if (!c)
		return;
	free(c->map);
	free(c->c);
	free(c->buf);
	free(c->tsbuf);
	free(c->queue);
	free(c->arena);
	free(c->hot);
	free(c->reached);
	free(c->keepbits);
	free(c);
}

static int grow_map(struct cand_ctx *c, uint32_t nv)
{
	struct cand_map *m;
	size_t ncap = c->cap_v ? c->cap_v : 1024;

	while (ncap < nv)
		ncap *= 2;
	if (ncap > UINT32_MAX)
		ncap = UINT32_MAX;
	m = mem_calloc(ncap, sizeof(*m));
	if (!m)
		return -1;
	/* stamps restart: the old table's contents belong to no live query */
	free(c->map);
	c->map = m;
	c->cap_v = (uint32_t)ncap;
	c->epoch = 0;
	return 0;
}

int cand_reserve_buf(struct cand_ctx *c, size_t n)
{
	size_t cap1 = c->bufcap, cap2 = c->bufcap;

	if (n <= c->bufcap)
		return 0;
	if (mem_grow((void **)&c->buf, &cap1, n, sizeof(uint32_t)) ||
	    mem_grow((void **)&c->tsbuf, &cap2, n, sizeof(uint32_t)))
		return -1;
	c->bufcap = cap1 < cap2 ? cap1 : cap2;
	return 0;
}

struct cand *cand_add(struct cand_ctx *c, uint32_t x)
{
	struct cand_map *m;
	struct cand *s;

	if (x >= c->cap_v)
		return NULL;
	m = &c->map[x];
	if (m->stamp == c->epoch)
		return &c->c[m->slot];
	if (c->n == c->cap &&
	    mem_grow((void **)&c->c, &c->cap, c->n + 1, sizeof(*c->c)))
		return NULL;
	s = &c->c[c->n];
	memset(s, 0, sizeof(*s));
	s->v = x;
	if (m->mark == CAND_MARK_FOF(c->epoch)) {
		s->flags = CAND_FOF;
		s->mutual = m->mutual;
		s->aa_fx = m->aa_fx;
		s->ra_fx = m->ra_fx;
	} else {
		if (m->mark != CAND_MARK_EXCL(c->epoch) && c->lazy &&
		    graph_edge_ts(c->view, c->member, x, NULL))
			m->mark = CAND_MARK_EXCL(c->epoch);
		if (m->mark == CAND_MARK_EXCL(c->epoch))
			s->flags = CAND_EXCL;
	}
	m->stamp = c->epoch;
	m->slot = (uint32_t)c->n++;
	return s;
}

int cand_begin(struct cand_ctx *c, const struct graph_view *v, uint32_t u,
	       struct err *e)
{
	uint32_t nv = graph_nvertices(v), w, ts;
	struct graph_iter it;

	if (u >= nv)
		return err_set(e, "vertex %u is not in the graph", u);
	if (nv > c->cap_v && grow_map(c, nv))
		return err_set(e, "out of memory for a candidate table of %u vertices", nv);
	if (++c->epoch >= CAND_EPOCH_MAX) {
		/* wrapped: old stamps could collide, clear once per 2^31 queries */
		memset(c->map, 0, (size_t)c->cap_v * sizeof(*c->map));
		c->epoch = 1;
	}
	c->n = 0;
	c->alen = 0;
	c->nv = nv;
	c->member = u;
	c->member_deg = graph_degree(v, u);
	c->newest_ts = 0;
	c->excl_read = 0;
	c->fof_exact = 0;
	c->nreached = 0;
	if (c->cap < 1024 &&
	    mem_grow((void **)&c->c, &c->cap, 1024, sizeof(*c->c)))
		return err_set(e, "out of memory for candidates");
	c->view = v;
	c->map[u].mark = CAND_MARK_EXCL(c->epoch);
	c->lazy = c->member_deg > CAND_LAZY_DEG;
	if (c->lazy) {
		uint32_t nb, t;

		if (graph_sample(v, u, 1, GRAPH_SAMPLE_NEWEST, 0, &nb, &t))
			c->newest_ts = t;
		return 0;
	}
	graph_iter_init(&it, v, u);
	while (graph_iter_next(&it, &w, &ts)) {
		c->excl_read++;
		if (ts > c->newest_ts)
			c->newest_ts = ts;
		if (cand_in_table(c, w)) /* else created since: never a candidate */
			c->map[w].mark = CAND_MARK_EXCL(c->epoch);
	}
	return 0;
}
