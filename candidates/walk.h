/*
 * walk.h - random walk with restart from the member (Pixie-style).
 *
 * Walks start at member u, step to a uniformly chosen neighbour, and jump
 * back to u with probability `restart` after each step. Every landing on a
 * vertex that is not excluded counts a visit (CAND_WALK). The walk stops
 * after `steps` steps, or early once `settle_np` candidates each have at
 * least `settle_nv` visits (the top of the ranking has settled), or at the
 * deadline (checked every 16 steps).
 *
 * The steps are shared by 16 independent walkers that move in lockstep:
 * their list reads go to the graph as one batch (graph_nth_batch), so the
 * cache misses of a round overlap instead of following one another. The
 * visits have the same distribution as one walker's.
 *
 * Deterministic: each walker's generator is seeded from the member's
 * external id and its number, and landings are counted in walker order,
 * so the same graph and parameters give the same visits.
 * Work: at most `steps` steps. The second step from a vertex of degree
 * d <= 4096 decodes its list once into a per-query cache (O(d), at most
 * 4M entries cached per query); later steps from it are O(1). Other steps
 * sample through the graph's block index, O(log(d/B) + B) each.
 */
#ifndef TRIAD_WALK_H
#define TRIAD_WALK_H

#include <stdint.h>

#include "cand.h"

struct walk_params {
	uint32_t steps;     /* step budget */
	float restart;      /* probability of jumping back to u, 0..1 */
	uint32_t settle_np; /* stop once this many candidates ... */
	uint32_t settle_nv; /* ... have at least this many visits (0: never) */
};

/* steps 8000, restart 0.35, settle 40 candidates at 12 visits. */
void walk_params_default(struct walk_params *p);

/*
 * Run the walk for the query begun with cand_begin(c, v, u). run (may be
 * NULL) gets cut (deadline), steps taken and neighbour samples made.
 * Returns 0, or -1 with e filled when out of memory.
 */
int walk_run(struct cand_ctx *c, const struct graph_view *v,
	     const struct walk_params *p, uint64_t deadline_ns,
	     struct cand_run *run, struct err *e);

/* The 64-bit generator the walk uses (splitmix64), exposed for tests. */
uint64_t walk_rand(uint64_t *state);

#endif
