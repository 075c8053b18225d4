/*
 * ppr.h - personalised PageRank from the member by forward push
 * (Andersen, Chung, Lang 2006).
 *
 * Keeps an estimate p and a residual r per touched vertex (in the query's
 * dense table); starts with r(u) = 1 and repeatedly pushes a vertex x whose
 * residual is at least eps * d_x: p(x) += alpha r(x), then each neighbour
 * gets (1 - alpha) r(x) / d_x. Meant for members with few connections,
 * where friends of friends find little: mass reaches 3 hops and beyond.
 * Every non-excluded vertex with a positive score gets CAND_PPR and its
 * score in cand.ppr: p, or with with_residual p + alpha r.
 *
 * Why p + alpha r is a better estimate: the push keeps the invariant
 * pi_u = p + sum_x r(x) pi_x (pi_x: the PPR vector from x), and pi_x(x) >=
 * alpha, so pi_u(v) >= p(v) + alpha r(v) >= p(v): a tighter lower bound
 * at no extra work. It matters where degrees are high: a vertex two hops
 * away is pushed only once its residual reaches eps * d, so with eps
 * 1e-4 and degrees near 60 most second-hop members keep p = 0 and the
 * textbook estimate ranks almost nobody (triad eval's ppr method, recall@10
 * on a dense 1,000-member stream: 0.0027 with p, 0.0692 with p + alpha r).
 *
 * Work: the pushes read at most 1 / (alpha * eps) neighbour entries in
 * total whatever the graph (each push of x spends >= alpha * eps * d_x of
 * the unit mass), and stop early at max_pushes or the deadline (checked
 * every 32 pushes). Defaults alpha 0.15, eps 1e-4: <= 66,667 entries.
 * Deterministic (FIFO order over ascending neighbour lists).
 */
#ifndef TRIAD_PPR_H
#define TRIAD_PPR_H

#include <stdint.h>

#include "cand.h"

struct ppr_params {
	float alpha;         /* teleport (stop) probability, 0 < alpha < 1 */
	float eps;           /* push threshold per unit of degree, > 0 */
	uint32_t max_pushes; /* push budget */
	int with_residual;   /* 0: score p (serving's feature); 1: p + alpha r
			      * (triad eval's ppr method) */
};

void ppr_params_default(struct ppr_params *p);

/*
 * Run the push for the query begun with cand_begin(c, v, u). run (may be
 * NULL) gets cut, pushes made and neighbour entries read. Returns 0, or -1
 * with e filled (out of memory, bad parameters).
 */
int ppr_run(struct cand_ctx *c, const struct graph_view *v,
	    const struct ppr_params *p, uint64_t deadline_ns,
	    struct cand_run *run, struct err *e);

#endif
