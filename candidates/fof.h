/*
 * fof.h - friends of friends: triangle-closing candidates.
 *
 * For member u, walks u's neighbours w and their neighbours x, counting in
 * the query's dense table how many w each x was reached through (its
 * mutual connections). No set is built per query; everything lives in the
 * reusable cand_ctx.
 *
 * Bounded work, whatever the graph. With E = max_expand, R = max_read,
 * H = hub_read (<= 32, the graph's fast newest-sample path) and
 * T = max_total, one run counts (edges_read)
 *   at most  min(E * max(R, H), T + R + E * H)  neighbour entries of
 *   intermediates, and decodes at most T + R + E * max(H, 1023) of their
 *   base entries (a list under 1,024 entries keeps no newest index: its H
 *   newest take a pass over it, see below), pending delta entries aside,
 * plus choosing which of u's neighbours to expand: all of them when
 * d_u <= E, else the E newest (one pass over u's list and a linear-time
 * selection: O(d_u) expected, 8 bytes of scratch per neighbour), and for
 * d_u > CAND_LAZY_DEG only the min(E, H) newest, from the graph's newest
 * index in O(H + D), so a member with millions of connections costs no
 * pass over their list.
 * An intermediate w with d_w <= R is read in full; a bigger one gives only
 * its H newest neighbours (O(H + D) through the graph's newest index,
 * which lists of degree >= 1024 keep, so every capped list takes that fast
 * path as long as R >= 1024). Once T entries have been read, every further
 * intermediate gives only its H newest: through the index in O(H + D), or,
 * for a list of 33 to 1,023 entries, by a pass over it with a linear-time
 * selection. With the defaults (E = 256, R = 4096, H = 32, T = 65,536)
 * that is <= 77,824 entries counted and <= 331,520 decoded (a member whose
 * 256 neighbours have 1,000 each: 0.74-0.78 ms a query, against 0.2 ms at
 * 1,024 each; 2.8-3.0 ms while the selection was an insertion, 7 Dec).
 * Mutual counts and the Adamic-Adar and resource-allocation sums are exact
 * when nothing was capped (d_u <= E, every list read whole, no deadline
 * cut); fof_run then sets c->fof_exact, and a vertex it did not reach has
 * no mutual connection at all. Otherwise they count only the paths read.
 * On the synthetic power-law graphs of the benchmarks 98-99.9% of uniformly
 * chosen members are exact with these caps.
 */
#ifndef TRIAD_FOF_H
#define TRIAD_FOF_H

#include <stdint.h>

#include "cand.h"

#define FOF_MAX_EXPAND 256u
#define FOF_MAX_READ 4096u
#define FOF_HUB_READ 32u
#define FOF_MAX_TOTAL 65536u
#define FOF_UNCAPPED UINT32_MAX

struct fof_params {
	uint32_t max_expand; /* neighbours of u expanded (newest first when more) */
	uint32_t max_read;   /* intermediates with more neighbours than this ... */
	uint32_t hub_read;   /* ... give only their this-many newest */
	uint32_t max_total;  /* full reads stop once this many entries were read;
			      * later intermediates give their hub_read newest */
};

/* The defaults above. */
void fof_params_default(struct fof_params *p);

/*
 * Add u's friends of friends to the query begun with cand_begin(c, v, u):
 * each reached non-excluded vertex gets CAND_FOF, its mutual count and its
 * Adamic-Adar and resource-allocation sums (cand_fx_aa(d_w) and
 * cand_fx_ra(d_w) per intermediate w, d_w its full degree), and
 * c->fof_exact says whether they are exact (above).
 * deadline_ns: monotonic (mono_ns) time to stop at, 0 for none;
 * checked before each intermediate. run (may be NULL) gets cut/work
 * (edges_read counts u's own list too).
 * Returns 0, or -1 with e filled when out of memory.
 */
int fof_run(struct cand_ctx *c, const struct graph_view *v,
	    const struct fof_params *p, uint64_t deadline_ns,
	    struct cand_run *run, struct err *e);

/*
 * Exact counts for the candidates a capped fof_run left approximate: the
 * slots flagged CAND_KEEP (the ones a caller is about to score) get their
 * mutual count and Adamic-Adar and resource-allocation sums over every
 * neighbour of u, by one pass over the lists of all of u's neighbours
 * (ids only, sum_w d_w entries). The sums are fixed point, so they are
 * the ones a merge of u's list with each candidate's gives, bit for bit.
 * That merge, pair by pair, is the alternative: it reads each candidate's
 * list (d_c entries; a block per probe for d_c >= 1024), which for a
 * member with many connections and a few hundred candidates costs far
 * more than the pass. `force`: 0 makes the pass only when it reads no
 * more entries than the merges would (FOF_RECOUNT_WEIGHT), 1 always.
 * Work: sum_w d_w + O(kept candidates) entries, plus d_u for u's list.
 * Returns 1 when every kept slot's counts are exact, 0 when it did not
 * make them (the pass would cost more, u is lazy (d_u > CAND_LAZY_DEG),
 * or the deadline came first: the kept slots' counts are then unreliable),
 * -1 with e filled when out of memory.
 */
int fof_recount(struct cand_ctx *c, const struct graph_view *v, int force,
		uint64_t deadline_ns, struct err *e);

/* An entry of the pass counts this many entries of the merges. Both
 * decode about as fast: the pass tests a bitmap of the kept candidates
 * (in cache) and touches the query's table only on a hit. Measured on the
 * served graph after its stream (members by degree, d_u > 256): 1 and 2
 * alike, both ahead of always or never making the pass. */
#define FOF_RECOUNT_WEIGHT 1u

#endif
