/*
 * walk.h - random walk with restart from the member (Pixie-style).
 *
 * Walks start at member u, step to a uniformly chosen neighbour, and jump
 * back to u with probability `restart` after each step. Every landing on a
 * vertex that is not excluded counts a visit (CAND_WALK). The walk stops
 * after `steps` steps, or early once `settle_np` candidates each have at
 * least `settle_nv` visits (the top of the ranking has settled), or at the
 * deadline, checked once per round of the 64 walkers below (a round takes
 * at least 64 steps unless the budget runs out, more when walkers back at
 * u step on from there at once).
 *
 * A walker back at u takes its steps from u at once, from u's decoded list
 * (each a step of the budget with its own restart test, until one leaves
 * u): they land on u's neighbours, which count no visit, so the rounds
 * below are spent on steps whose landings can count.
 *
 * The steps are shared by 64 independent walkers that move in lockstep:
 * their list reads go to the graph as one batch (graph_nth_batch), so the
 * cache misses of a round overlap instead of following one another, and
 * each round's landings are counted one round later, after their table
 * entries were prefetched. The visits have the same distribution as one
 * walker's. 64 (graph_nth_batch's most) rather than 16: a served answer
 * 8% faster (6 Dec, same-process A/B on bench_server's graph after its
 * stream), as more misses are in flight at once.
 *
 * Deterministic: each walker's generator is seeded from the member's
 * external id and its number, and landings are counted in walker order,
 * so the same graph and parameters give the same visits.
 * Work: at most `steps` steps. Before the first step, u's list and the
 * lists of u's neighbours that a walk of that length would step from
 * often enough (d_w <= min(4096, 6 * steps / d_u)) are decoded once, at
 * most 4 * steps entries in all (none when d_u > 4 * steps); a step from
 * one of them is O(1). Other steps sample through the graph's block index,
 * O(log(d/B) + B) each. Measured: about 0.1 us a step on a 1M-edge graph.
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

/* steps 1000, restart 0.5, settle 20 candidates at 6 visits. Chosen on
 * training periods only (triad train's inner validation recall@10, serving
 * PPR eps 1e-3). On CollegeMsg: with restart 0.35, 0.0664 at 8000 steps,
 * 0.0664 at 4000, 0.0672 at 2000; at 2000 steps, 0.0668 with restart 0.25
 * and 0.0684 with 0.5 (which also takes fewer of the costly deep steps:
 * 20% less time a query); settling at 20 candidates with 6 visits instead
 * of 40 with 12 kept 0.0684 and saved another 16% on the 1M-edge
 * benchmark graph. 7 Dec, with the features and validation of today's
 * train (two windows), restart 0.5: 0.0796 at 2000 and at 1000 steps,
 * 0.0784 at 1500, 0.0773 at 750, 0.0779 at 500 (restart 0.6: 0.0790,
 * 0.0757, 0.0782 at 2000, 1500, 1000; 0.7: 0.0761-0.0776); on the
 * msgstream.py 1 100000 1000000 0.5 0.2 0.15 stream, 0.0577 at 2000,
 * 0.0571 at 1000, 0.0566 at 500: all within the walk's own seed spread
 * (about 0.005). 1000 is the fewest steps that match the best, and a
 * served answer on the benchmark graph after its stream costs 30% less
 * than at 2000 (the walk is most of it; README, "Candidate generation"). */
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
