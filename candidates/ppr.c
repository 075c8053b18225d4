/* ppr.c - forward-push personalised PageRank (ppr.h). */
#include "ppr.h"

#include "mem.h"

#define INQ 32u /* slot flag: waiting in the push queue */

void ppr_params_default(struct ppr_params *p)
{
	p->alpha = 0.15f;
	p->eps = 1e-4f;
	p->max_pushes = 20000;
	p->with_residual = 0;
}

int ppr_run(struct cand_ctx *c, const struct graph_view *v,
	    const struct ppr_params *p, uint64_t deadline_ns,
	    struct cand_run *run, struct err *e)
{
	struct cand_run r = { 0, 0, 0 };
	size_t head = 0, tail = 0, i;
	struct cand *s, *t;
	uint32_t x, w, dx, nb, j;
	float rx, share;
	int rc = -1;

	if (!(p->alpha > 0 && p->alpha < 1 && p->eps > 0)) {
		err_set(e, "ppr parameters out of range");
		goto out;
	}
	if (!(s = cand_touch(c, c->member)) ||
	    mem_grow((void **)&c->queue, &c->qcap, 64, sizeof(*c->queue))) {
		err_set(e, "out of memory for personalised pagerank");
		goto out;
	}
	s->ppr_r = 1.0f;
	s->flags |= INQ;
	c->queue[tail++] = c->member;
	while (head < tail) {
		if (r.steps >= p->max_pushes ||
		    ((r.steps & 31) == 0 && cand_past(deadline_ns))) {
			r.cut = r.steps < p->max_pushes;
			break;
		}
		x = c->queue[head++];
		s = cand_find(c, x);
		s->flags &= ~INQ;
		dx = graph_degree(v, x);
		rx = s->ppr_r;
		if (dx == 0) { /* dead end: keep the mass here */
			s->ppr += rx;
			s->ppr_r = 0;
			continue;
		}
		if (rx < p->eps * (float)dx)
			continue;
		r.steps++;
		s->ppr += p->alpha * rx;
		s->ppr_r = 0;
		share = (1 - p->alpha) * rx / (float)dx;
		if (cand_reserve_buf(c, dx)) {
			err_set(e, "out of memory for personalised pagerank");
			goto out;
		}
		nb = graph_ids(v, x, c->buf, dx);
		/* the neighbours' degrees (for the push test) in one batch,
		 * their cache misses overlapped */
		graph_degree_member_batch(v, nb, c->buf, c->tsbuf, NULL);
		for (j = 0; j < nb; j++) {
			w = c->buf[j];
			r.edges_read++;
			if (!cand_in_table(c, w))
				continue; /* joined during the query */
			if (!(t = cand_touch(c, w))) {
				err_set(e, "out of memory for personalised pagerank");
				goto out;
			}
			t->ppr_r += share;
			if (!(t->flags & INQ) &&
			    t->ppr_r >= p->eps * (float)c->tsbuf[j]) {
				if (tail == c->qcap &&
				    mem_grow((void **)&c->queue, &c->qcap,
					     tail + 1, sizeof(*c->queue))) {
					err_set(e, "out of memory for personalised pagerank");
					goto out;
				}
				t->flags |= INQ;
				c->queue[tail++] = w;
			}
		}
	}
	for (i = 0; i < c->n; i++) {
		s = &c->c[i];
		s->flags &= ~INQ;
		if (p->with_residual)
			s->ppr += p->alpha * s->ppr_r;
		if (s->ppr > 0 && !(s->flags & CAND_EXCL))
			s->flags |= CAND_PPR;
	}
	rc = 0;
out:
	if (run)
		*run = r;
	return rc;
}
