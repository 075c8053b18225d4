/*
 * trend.h - the members most active lately: a candidate source that does
 * not need a path from the member.
 *
 * In message and reply networks a large share of new links go to whoever
 * is active right now, often with no mutual connection yet (on CollegeMsg
 * the 100 members with the most edges in the last 14 days are the far end
 * of a third of the test period's new pairs). Friends of friends and short
 * walks cannot reach them; this table can.
 *
 * Activity of x at time `now` over a window W = the number of x's edges
 * whose timestamp is in (now - W, now] (an edge's timestamp is its newest
 * event, so a pair messaging again counts once, refreshed). The table
 * holds the k most active (activity >= 1; ties: the smaller member id).
 * W adapts to the graph's pace: the shortest of 1, 3, 7, 14, 30, 90 and
 * 365 days in which at least k members have two or more such edges (the
 * longest when none has). A busy network gets a day, a slow one months.
 * A stamp that more than half of the edges carry is a bulk, not activity
 * (a file loaded without times gets its load's stamp on every edge, then
 * events arrive with their own): its edges count for nothing, and the
 * table is made from the others alone. When every edge carries it, the
 * graph has no notion of "lately": the table is empty, window 0. Either
 * way the table is not the highest-degree members under another name.
 * The table is a function of the graph's contents and `now` alone: a
 * snapshot, a replica and an offline rebuild of the same edges agree.
 *
 * Built by two passes over every list with timestamps, O(E + V log k)
 * (a majority vote for the bulk stamp, then all windows at once, with
 * and without that stamp's edges); the server rebuilds it in the
 * background when the graph has changed, at most once a second and at
 * most a twentieth of the time (serve.c), and swaps it in. Lookups are
 * O(log k).
 */
#ifndef TRIAD_TREND_H
#define TRIAD_TREND_H

#include <stdint.h>

#include "err.h"
#include "graph.h"

#define TREND_K 32u       /* members in the table */
#define TREND_NWINDOWS 7u /* the windows tried, 1 day .. 365 days */

struct trend {
	uint32_t n;              /* entries, <= TREND_K */
	uint32_t now;            /* what it was built for */
	uint32_t window;         /* seconds: the window chosen (0: empty) */
	uint32_t bulk;           /* 1: more than half of the edges carry one
				  * stamp (a graph without times of its own) */
	uint32_t v[TREND_K];     /* vertex ids, most active first */
	uint32_t act[TREND_K];   /* their activity */
	uint32_t by_v[TREND_K];  /* indices into v, by vertex id ascending */
};

/* Build t from view v at time now, keeping up to k (<= TREND_K) members. */
void trend_build(struct trend *t, const struct graph_view *v, uint32_t now,
		 uint32_t k);

/* trend_build with TREND_K members on a view of g begun and ended here
 * (the graph as it is now; a writer may run alongside). */
void trend_build_graph(struct trend *t, const struct graph *g, uint32_t now);

/* x's activity if x is in the table, else 0. O(log n). */
uint32_t trend_activity(const struct trend *t, uint32_t x);

#endif
