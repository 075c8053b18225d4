/*
 * synth.h - a synthetic temporal social graph for benchmarks (header-only).
 *
 * Holme-Kim growth (preferential attachment plus triad formation):
 * members join one after another; each joins with `m` edges, the first to
 * a member chosen in proportion to degree, each further one with
 * probability `triad_p` to a neighbour of the previous target (closing a
 * triangle) and otherwise again by degree. Degrees follow a power law
 * (exponent about 3) with clustering, like a friendship graph. Member ids
 * are handed out in join order, as most services do, and an edge's
 * timestamp is its creation time, spread evenly over `span` seconds.
 *
 * Deterministic for the same options. O(members * m) time and memory.
 */
#ifndef TRIAD_SYNTH_H
#define TRIAD_SYNTH_H

#include <stdint.h>
#include <stdlib.h>

#include "graph.h"

struct synth_opts {
	uint64_t members; /* >= m + 1 */
	uint32_t m;       /* edges each member joins with, >= 1 */
	double triad_p;   /* 0..1 */
	uint32_t t0;      /* first timestamp, seconds */
	uint32_t span;    /* seconds covered by the whole stream */
	uint64_t seed;
};

static inline uint64_t synth_rand(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Number of events synth_generate writes. */
static inline size_t synth_count(const struct synth_opts *o)
{
	return (size_t)(o->members - (o->m + 1)) * o->m +
	       (size_t)o->m * (o->m + 1) / 2;
}

/* A member's neighbours so far (private to synth_generate). */
struct synth_adj {
	uint32_t *p;
	uint32_t n, cap;
};

static inline int synth_push(struct synth_adj *a, uint32_t x)
{
	if (a->n == a->cap) {
		uint32_t ncap = a->cap ? 2 * a->cap : 4;
		uint32_t *np = realloc(a->p, (size_t)ncap * sizeof(*np));

		if (!np)
			return -1;
		a->p = np;
		a->cap = ncap;
	}
	a->p[a->n++] = x;
	return 0;
}

/*
 * Fill ev[0 .. synth_count(o)) with add events in time order. Member ids
 * are 1..members. Returns the count, or 0 when out of memory (about
 * 16 bytes per member and 24 per edge of scratch).
 */
static inline size_t synth_generate(const struct synth_opts *o,
				    struct graph_event *ev)
{
	size_t total = synth_count(o), n = 0;
	/* every edge endpoint so far: a uniform pick is a degree-weighted
	 * member */
	uint32_t *ends = malloc(2 * total * sizeof(uint32_t));
	/* every member's neighbours so far: for the triad step */
	struct synth_adj *adj = calloc(o->members, sizeof(*adj));
	uint64_t s = o->seed ? o->seed : 1, v;
	uint32_t m = o->m;
	int oom = !ends || !adj;

	/* a small clique to start from */
	for (v = 0; v <= m && !oom; v++)
		for (uint64_t w = 0; w < v; w++) {
			ends[2 * n] = (uint32_t)v;
			ends[2 * n + 1] = (uint32_t)w;
			oom |= synth_push(&adj[v], (uint32_t)w) ||
			       synth_push(&adj[w], (uint32_t)v);
			ev[n].src = v + 1;
			ev[n].dst = w + 1;
			ev[n].ts = o->t0;
			ev[n].op = GRAPH_ADD;
			n++;
		}
	for (v = m + 1; v < o->members && !oom; v++) {
		uint32_t ts = o->t0 + (uint32_t)((double)o->span * (double)v /
						 (double)o->members);
		uint32_t prev = 0;

		for (uint32_t j = 0; j < m; j++) {
			uint32_t t;

			if (j && (double)(synth_rand(&s) >> 11) * 0x1.0p-53 <
					 o->triad_p) {
				/* triad formation: a uniformly chosen
				 * neighbour of the previous target */
				t = adj[prev].p[synth_rand(&s) % adj[prev].n];
			} else {
				t = ends[synth_rand(&s) % (2 * n)];
			}
			ends[2 * n] = (uint32_t)v;
			ends[2 * n + 1] = t;
			if (t != v)
				oom |= synth_push(&adj[v], t) ||
				       synth_push(&adj[t], (uint32_t)v);
			ev[n].src = v + 1;
			ev[n].dst = (uint64_t)t + 1;
			ev[n].ts = ts;
			ev[n].op = GRAPH_ADD;
			n++;
			prev = t;
		}
	}
	free(ends);
	if (adj)
		for (v = 0; v < o->members; v++)
			free(adj[v].p);
	free(adj);
	return oom ? 0 : n;
}

#endif
