/*
 * ppr.h - personalised PageRank from the member by forward push
 * (Andersen, Chung, Lang 2006).
 *
 * Keeps an estimate p and a residual r per touched vertex (in the query's
 * dense table); starts with r(u) = 1 and repeatedly pushes a vertex x whose
 * residual is at least eps * d_x: p(x) += alpha r(x), then each neighbour
 * gets (1 - alpha) r(x) / d_x. Meant for members with few connections,
 * where friends of friends find little: mass reaches 3 hops and beyond.
 * Every non-excluded vertex with p > 0 gets CAND_PPR and its p.
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
