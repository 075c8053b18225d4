/*
 * test_candidates.c - the candidate generators against brute force.
 *
 * Small random graphs are held both in the compressed graph and in a plain
 * adjacency matrix; friends of friends must find exactly the 2-hop
 * non-neighbours with exact mutual counts, PPR must agree with power
 * iteration, no generator may ever surface the member or a neighbour,
 * answers repeat exactly, deadlines stop the work, and a hub of 200k
 * leaves costs no more than the bounds the headers state.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cand.h"
#include "fof.h"
#include "graph.h"
#include "ppr.h"
#include "trend.h"
#include "walk.h"
#include "testutil.h"

#define NV 80

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t ext(uint32_t i)
{
	return 1000003u * (uint64_t)i + 17u; /* sparse member ids */
}

/* A random graph of NV members into g and adj (NV x NV 0/1). Returns the
 * vertex id of each member index in vid[]. pad > 0 adds a path of pad
 * other members, apart from the NV: a graph large enough that the
 * generators take their paths for maps out of cache. */
static struct graph *random_graph_pad(uint64_t seed, double p, uint8_t *adj,
				      uint32_t *vid, uint32_t pad)
{
	struct graph_event *ev = malloc((NV * NV + pad) * sizeof(*ev));
	struct graph *g = graph_new(0);
	struct graph_view v;
	size_t n = 0;
	uint32_t i, j;

	memset(adj, 0, NV * NV);
	/* every member gets one edge to the next so all are vertices */
	for (i = 0; i < NV; i++)
		for (j = i + 1; j < NV; j++)
			if (j == i + 1 || (double)(rnd(&seed) % 10000) < p * 10000) {
				ev[n].src = ext(i);
				ev[n].dst = ext(j);
				ev[n].ts = 1000000 + (uint32_t)(rnd(&seed) % 5000000);
				ev[n].op = GRAPH_ADD;
				n++;
				adj[i * NV + j] = adj[j * NV + i] = 1;
			}
	for (i = 0; i < pad; i++) {
		ev[n].src = ext(NV + i);
		ev[n].dst = ext(NV + i + 1);
		ev[n].ts = 1000000 + i;
		ev[n].op = GRAPH_ADD;
		n++;
	}
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	for (i = 0; i < NV; i++)
		vid[i] = graph_lookup(&v, ext(i));
	graph_view_end(&v);
	free(ev);
	return g;
}

static struct graph *random_graph(uint64_t seed, double p, uint8_t *adj,
				  uint32_t *vid)
{
	return random_graph_pad(seed, p, adj, vid, 0);
}

static uint32_t idx_of(const uint32_t *vid, uint32_t v)
{
	for (uint32_t i = 0; i < NV; i++)
		if (vid[i] == v)
			return i;
	return UINT32_MAX;
}

/* From the adjacency matrix: u and x's mutual connections, their
 * Adamic-Adar and resource-allocation sums, as doubles (the textbook
 * formulas) and in fixed point (cand_fx_aa / cand_fx_ra per term). */
struct pair_ref {
	uint32_t m;
	double aa, ra;
	uint64_t aa_fx, ra_fx;
};

static struct pair_ref pair_ref(const uint8_t *adj, uint32_t u, uint32_t x)
{
	struct pair_ref r = { 0, 0, 0, 0, 0 };

	for (uint32_t w = 0; w < NV; w++)
		if (adj[u * NV + w] && adj[w * NV + x]) {
			uint32_t dw = 0;

			for (uint32_t y = 0; y < NV; y++)
				dw += adj[w * NV + y];
			r.m++;
			r.aa += 1 / log((double)dw);
			r.ra += 1 / (double)dw;
			r.aa_fx += cand_fx_aa(dw);
			r.ra_fx += cand_fx_ra(dw);
		}
	return r;
}

START_TEST(fof_matches_brute_force)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV];
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params p;
	struct graph_view v;
	struct cand_run run;

	fof_params_default(&p);
	for (uint64_t seed = 1; seed <= 8; seed++) {
		/* odd seeds: fof's loop for a map in cache; even: the
		 * prefetched one, for a map of over 65,536 members */
		struct graph *g = random_graph_pad(seed * 7919, 0.02 + 0.02 * (double)seed,
						   adj, vid, seed % 2 ? 0 : 70000);

		graph_view_begin(g, &v);
		for (uint32_t u = 0; u < NV; u++) {
			uint32_t found = 0, expect = 0;

			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(fof_run(c, &v, &p, 0, &run, NULL), 0);
			ck_assert_int_eq(run.cut, 0);
			/* nothing is capped on these small graphs */
			ck_assert_int_eq(c->fof_exact, 1);
			for (uint32_t x = 0; x < NV; x++) {
				uint32_t fm = 0;
				uint64_t faa = 0, fra = 0;
				int got = cand_fof(c, vid[x], &fm, &faa, &fra);
				struct pair_ref ref = pair_ref(adj, u, x);
				uint32_t m = ref.m;
				double aa = ref.aa, ra = ref.ra;
				struct cand *s;

				if (x == u || adj[u * NV + x]) {
					/* excluded, never a candidate */
					ck_assert(cand_is_excluded(c, vid[x]));
					ck_assert(!got);
					ck_assert_ptr_nonnull(s = cand_touch(c, vid[x]));
					ck_assert(s->flags & CAND_EXCL);
					ck_assert(!(s->flags & CAND_FOF));
					continue;
				}
				if (m) {
					expect++;
					ck_assert(got);
					ck_assert_uint_eq(fm, m);
					ck_assert_msg(fabs(cand_fx_value(faa) - aa) < 1e-9 * (1 + aa),
						      "aa %g, reference %g", cand_fx_value(faa), aa);
					ck_assert_msg(fabs(cand_fx_value(fra) - ra) < 1e-9 * (1 + ra),
						      "ra %g, reference %g", cand_fx_value(fra), ra);
					/* a slot made later carries the counts */
					ck_assert_ptr_nonnull(s = cand_touch(c, vid[x]));
					ck_assert(s->flags & CAND_FOF);
					ck_assert(!(s->flags & CAND_EXCL));
					ck_assert_uint_eq(s->mutual, m);
					ck_assert(s->aa_fx == faa && s->ra_fx == fra);
				} else {
					ck_assert(!got);
				}
				ck_assert(x == u || adj[u * NV + x] || !cand_is_excluded(c, vid[x]));
			}
			found = (uint32_t)c->nreached;
			ck_assert_uint_eq(found, expect);
		}
		graph_view_end(&v);
		graph_free(g);
	}
	cand_ctx_free(c);
}
END_TEST

/*
 * fof_recount after a capped fof_run (3 of u's neighbours expanded): every
 * slot marked CAND_KEEP (here: every vertex but u and its neighbours,
 * reached or not) gets the exact mutual count and the fixed-point sums of
 * cand_fx_aa / cand_fx_ra over its mutual connections, from the adjacency
 * matrix; slots not marked keep what they had; the bitmap is left clear.
 */
START_TEST(recount_matches_brute_force)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV], capped = 0;
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params p;
	struct graph_view v;

	fof_params_default(&p);
	p.max_expand = 3;
	for (uint64_t seed = 1; seed <= 6; seed++) {
		struct graph *g = random_graph_pad(seed * 104729, 0.03 + 0.02 * (double)seed,
						   adj, vid, seed % 2 ? 0 : 70000);

		graph_view_begin(g, &v);
		for (uint32_t u = 0; u < NV; u++) {
			struct cand *s;

			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(fof_run(c, &v, &p, 0, NULL, NULL), 0);
			capped += !c->fof_exact;
			for (uint32_t x = 0; x < NV; x++) {
				ck_assert_ptr_nonnull(s = cand_touch(c, vid[x]));
				if (x % 7 == 3 && !(s->flags & CAND_EXCL)) {
					s->mutual = 12345; /* not kept: left alone */
					continue;
				}
				if (!(s->flags & CAND_EXCL))
					s->flags |= CAND_KEEP;
			}
			ck_assert_int_eq(fof_recount(c, &v, 1, 0, NULL), 1);
			for (uint32_t x = 0; x < NV; x++) {
				struct pair_ref ref;

				s = cand_find(c, vid[x]);
				ck_assert_ptr_nonnull(s);
				if (s->flags & CAND_EXCL)
					continue;
				if (!(s->flags & CAND_KEEP)) {
					ck_assert_uint_eq(s->mutual, 12345);
					continue;
				}
				ref = pair_ref(adj, u, x);
				ck_assert_uint_eq(s->mutual, ref.m);
				ck_assert(s->aa_fx == ref.aa_fx && s->ra_fx == ref.ra_fx);
				s->flags &= ~CAND_KEEP;
			}
			for (size_t k = 0; k < c->keepcap; k++)
				ck_assert(c->keepbits[k] == 0);
		}
		graph_view_end(&v);
		graph_free(g);
	}
	ck_assert_uint_gt(capped, NV); /* the caps did bind */
	cand_ctx_free(c);
}
END_TEST

START_TEST(ppr_matches_power_iteration)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV];
	double ref[NV];
	struct cand_ctx *c = cand_ctx_new();
	struct ppr_params p = { 0.15f, 1e-7f, 1000000, 0 };
	struct graph_view v;
	struct graph *g = random_graph(4242, 0.06, adj, vid);

	graph_view_begin(g, &v);
	for (uint32_t u = 0; u < NV; u += 7) {
		p.with_residual = (u / 7) & 1; /* both scores converge alike */
		ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
		ck_assert_int_eq(ppr_run(c, &v, &p, 0, NULL, NULL), 0);
		testutil_ppr_power(adj, NV, u, 0.15, 400, ref);
		for (uint32_t x = 0; x < NV; x++) {
			struct cand *s = cand_find(c, vid[x]);
			double got = s ? s->ppr : 0;

			ck_assert_msg(fabs(got - ref[x]) < 2e-4,
				      "member %u: ppr %g, reference %g", x, got, ref[x]);
			if (s && (s->flags & CAND_PPR))
				ck_assert(x != u && !adj[u * NV + x]);
		}
	}
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
}
END_TEST

/*
 * With a coarse eps most vertices are never pushed. p + alpha r must still
 * be a lower bound of the true PPR (power iteration), never below p, and
 * closer to the truth in total; it scores every vertex p does and more.
 */
START_TEST(ppr_residual_tightens_the_estimate)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV], plain_n = 0, res_n = 0;
	double ref[NV], plain[NV], err_plain = 0, err_res = 0;
	struct cand_ctx *c = cand_ctx_new();
	struct ppr_params p = { 0.15f, 2e-3f, 1000000, 0 };
	struct graph_view v;
	struct graph *g = random_graph(777, 0.2, adj, vid);

	graph_view_begin(g, &v);
	for (uint32_t u = 0; u < NV; u += 5) {
		testutil_ppr_power(adj, NV, u, 0.15, 400, ref);
		for (int wr = 0; wr < 2; wr++) {
			p.with_residual = wr;
			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(ppr_run(c, &v, &p, 0, NULL, NULL), 0);
			for (uint32_t x = 0; x < NV; x++) {
				struct cand *s = cand_find(c, vid[x]);
				double got = s ? s->ppr : 0;
				int flagged = s && (s->flags & CAND_PPR);

				ck_assert_msg(got <= ref[x] + 1e-6,
					      "member %u from %u: estimate %g above the "
					      "reference %g", x, u, got, ref[x]);
				if (flagged)
					ck_assert(x != u && !adj[u * NV + x]);
				if (!wr) {
					plain[x] = got;
					err_plain += ref[x] - got;
					plain_n += flagged;
				} else {
					ck_assert_msg(got >= plain[x] - 1e-7,
						      "member %u: %g below p %g", x,
						      got, plain[x]);
					ck_assert(!(plain[x] > 0 && x != u &&
						    !adj[u * NV + x]) || flagged);
					err_res += ref[x] - got;
					res_n += flagged;
				}
			}
		}
	}
	/* measured: total error 11.3 -> 9.6 (the residual's mass counts at
	 * alpha); p alone scores nobody outside u's neighbours here, p +
	 * alpha r 964 second-hop candidates over the 16 members */
	ck_assert_msg(err_res < 0.9 * err_plain, "error %g with r, %g without",
		      err_res, err_plain);
	ck_assert_uint_gt(res_n, 2 * plain_n + 100);
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
}
END_TEST

/*
 * The walk's early stop, against a count of the visits it leaves: it ends
 * before its budget exactly when settle_np candidates have been visited
 * settle_nv times each, so then exactly settle_np have (the landing that
 * settles the last one ends it), and fewer when it used every step.
 */
START_TEST(walk_settles_as_stated)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV], early = 0, full = 0;
	struct cand_ctx *c = cand_ctx_new();
	struct walk_params p;
	struct graph_view v;
	struct cand_run r;

	walk_params_default(&p);
	for (uint64_t seed = 1; seed <= 3; seed++) {
		struct graph *g = random_graph(seed * 31, 0.04 + 0.04 * (double)seed, adj, vid);

		graph_view_begin(g, &v);
		for (uint32_t u = 0; u < NV; u++) {
			uint32_t settled = 0;

			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(walk_run(c, &v, &p, 0, &r, NULL), 0);
			for (size_t k = 0; k < c->n; k++)
				settled += !(c->c[k].flags & CAND_EXCL) &&
					   c->c[k].visits >= p.settle_nv;
			if (r.steps < p.steps) {
				ck_assert_uint_eq(settled, p.settle_np);
				early++;
			} else {
				ck_assert_uint_le(settled, p.settle_np);
				full++;
			}
		}
		graph_view_end(&v);
		graph_free(g);
	}
	ck_assert_uint_gt(early, 0);
	cand_ctx_free(c);
	fprintf(stderr, "walk: %u stopped early, %u used every step\n", early, full);
}
END_TEST

START_TEST(walk_exclusions_and_determinism)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV], *visits = calloc(NV, sizeof(uint32_t));
	struct cand_ctx *c = cand_ctx_new(), *c2 = cand_ctx_new();
	struct walk_params p;
	struct graph_view v;
	struct graph *g = random_graph(99, 0.05, adj, vid);
	struct cand_run r1, r2;

	walk_params_default(&p);
	graph_view_begin(g, &v);
	for (uint32_t u = 0; u < NV; u++) {
		uint64_t total = 0;

		ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
		ck_assert_int_eq(walk_run(c, &v, &p, 0, &r1, NULL), 0);
		ck_assert_int_eq(r1.cut, 0);
		ck_assert_uint_le(r1.steps, p.steps);
		for (uint32_t x = 0; x < NV; x++) {
			struct cand *s = cand_find(c, vid[x]);

			visits[x] = s ? s->visits : 0;
			total += visits[x];
			if (x == u || adj[u * NV + x])
				ck_assert_uint_eq(visits[x], 0);
			/* a landing needs a path: walks only follow edges */
			if (visits[x])
				ck_assert(s->flags & CAND_WALK);
		}
		ck_assert_uint_gt(r1.steps, 0);
		ck_assert_uint_le(total, r1.steps);
		/* the same query on another context gives the same visits */
		ck_assert_int_eq(cand_begin(c2, &v, vid[u], NULL), 0);
		ck_assert_int_eq(walk_run(c2, &v, &p, 0, &r2, NULL), 0);
		ck_assert_uint_eq(r1.steps, r2.steps);
		for (uint32_t x = 0; x < NV; x++) {
			struct cand *s = cand_find(c2, vid[x]);

			ck_assert_uint_eq(s ? s->visits : 0, visits[x]);
		}
	}
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
	cand_ctx_free(c2);
	free(visits);
	(void)idx_of;
}
END_TEST

/*
 * The lockstep walkers land where one random walk with restart would: the
 * share of steps landing on x approaches L = pi P, where pi, the chain's
 * stationary distribution, solves pi = r e_u + (1 - r) pi P (P: uniform
 * step to a neighbour, r: restart), computed here by power iteration.
 */
/* The worst gap between the walk's visit shares (restart rate `restart`)
 * and power iteration's landing probabilities, members 0, 16, 32, ... */
static double walk_worst_gap(float restart)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV], deg[NV], k;
	double pi[NV], nx[NV], land[NV], worst = 0;
	struct cand_ctx *c = cand_ctx_new();
	struct walk_params p;
	struct graph_view v;
	struct graph *g = random_graph(2024, 0.08, adj, vid);
	struct cand_run r;

	walk_params_default(&p);
	p.restart = restart;
	p.steps = 400000;
	p.settle_nv = 0; /* no early stop: count every step */
	graph_view_begin(g, &v);
	for (uint32_t x = 0; x < NV; x++) {
		deg[x] = 0;
		for (uint32_t y = 0; y < NV; y++)
			deg[x] += adj[x * NV + y];
	}
	for (uint32_t u = 0; u < NV; u += 16) {
		if (!deg[u])
			continue;
		for (uint32_t x = 0; x < NV; x++)
			pi[x] = x == u;
		for (k = 0; k < 500; k++) {
			for (uint32_t x = 0; x < NV; x++)
				nx[x] = x == u ? p.restart : 0;
			for (uint32_t x = 0; x < NV; x++)
				for (uint32_t y = 0; y < NV; y++)
					if (adj[x * NV + y])
						nx[y] += (1 - p.restart) * pi[x] / deg[x];
			memcpy(pi, nx, sizeof(pi));
		}
		for (uint32_t y = 0; y < NV; y++) {
			land[y] = 0;
			for (uint32_t x = 0; x < NV; x++)
				if (adj[x * NV + y])
					land[y] += pi[x] / deg[x];
		}
		ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
		ck_assert_int_eq(walk_run(c, &v, &p, 0, &r, NULL), 0);
		ck_assert_uint_eq(r.steps, p.steps);
		for (uint32_t x = 0; x < NV; x++) {
			struct cand *s = cand_find(c, vid[x]);
			double got;

			if (x == u || adj[u * NV + x])
				continue; /* excluded: not counted */
			got = (s ? s->visits : 0) / (double)p.steps;
			if (fabs(got - land[x]) > worst)
				worst = fabs(got - land[x]);
		}
	}
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
	return worst;
}

START_TEST(walk_lands_like_a_random_walk_with_restart)
{
	/* measured worst 0.0008; halving the restart rate gives 0.006 */
	ck_assert_double_lt(walk_worst_gap(0.5f), 0.003);
	/* a rate other than one half: a restart test that took the
	 * complement of the rate would pass at 0.5 alone */
	ck_assert_double_lt(walk_worst_gap(0.2f), 0.003);
}
END_TEST

START_TEST(deadline_stops_generators)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV];
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params fp;
	struct walk_params wp;
	struct ppr_params pp;
	struct cand_run r;
	struct graph_view v;
	struct graph *g = random_graph(5, 0.2, adj, vid);
	uint64_t past = 1; /* a monotonic time long gone */

	fof_params_default(&fp);
	walk_params_default(&wp);
	ppr_params_default(&pp);
	graph_view_begin(g, &v);
	ck_assert_int_eq(cand_begin(c, &v, vid[3], NULL), 0);
	ck_assert_int_eq(fof_run(c, &v, &fp, past, &r, NULL), 0);
	ck_assert_int_eq(r.cut, 1);
	ck_assert_uint_eq(r.steps, 0);
	ck_assert_int_eq(walk_run(c, &v, &wp, past, &r, NULL), 0);
	ck_assert_int_eq(r.cut, 1);
	ck_assert_uint_eq(r.steps, 0);
	ck_assert_int_eq(ppr_run(c, &v, &pp, past, &r, NULL), 0);
	ck_assert_int_eq(r.cut, 1);
	ck_assert_uint_eq(r.steps, 0);
	/* the recount too: it says it made no exact counts (0), and leaves
	 * its bitmap clear; with no deadline it makes them (1) */
	for (uint32_t x = 0; x < NV; x++) {
		struct cand *s = cand_touch(c, vid[x]);

		ck_assert_ptr_nonnull(s);
		if (!(s->flags & CAND_EXCL))
			s->flags |= CAND_KEEP;
	}
	ck_assert_int_eq(fof_recount(c, &v, 1, past, NULL), 0);
	for (size_t k = 0; k < c->keepcap; k++)
		ck_assert(c->keepbits[k] == 0);
	ck_assert_int_eq(fof_recount(c, &v, 1, 0, NULL), 1);
	/* a deadline far ahead cuts nothing */
	ck_assert_int_eq(cand_begin(c, &v, vid[3], NULL), 0);
	ck_assert_int_eq(fof_run(c, &v, &fp, mono_ns() + 60000000000ull, &r, NULL), 0);
	ck_assert_int_eq(r.cut, 0);
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
}
END_TEST

#define HUB_LEAVES 200000u

START_TEST(bounded_work_on_a_huge_hub)
{
	struct graph_event *ev = malloc((HUB_LEAVES + 64) * sizeof(*ev));
	struct graph *g = graph_new(0);
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params fp;
	struct walk_params wp;
	struct ppr_params pp;
	struct cand_run r;
	struct graph_view v;
	size_t n = 0;
	uint32_t i, hub, leaf, bound;

	/* a star: member 1 with 200k leaves, plus a small clique among
	 * leaves 2..33 so some leaves have real friends of friends */
	for (i = 0; i < HUB_LEAVES; i++)
		ev[n++] = (struct graph_event){ 1, 100 + i, 1000000 + i * GRAPH_TS_RES, GRAPH_ADD };
	for (i = 0; i < 32; i++)
		ev[n++] = (struct graph_event){ 100 + i, 100 + (i + 1) % 32, 5000000, GRAPH_ADD };
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	fof_params_default(&fp);
	walk_params_default(&wp);
	ppr_params_default(&pp);
	bound = fp.max_total + fp.max_read + fp.max_expand * fp.hub_read +
		fp.max_expand;
	graph_view_begin(g, &v);
	hub = graph_lookup(&v, 1);
	leaf = graph_lookup(&v, 100 + 5);
	/* a leaf: the hub is its intermediate and gives only its newest */
	ck_assert_int_eq(cand_begin(c, &v, leaf, NULL), 0);
	ck_assert_int_eq(fof_run(c, &v, &fp, 0, &r, NULL), 0);
	ck_assert_uint_le(r.edges_read, bound);
	ck_assert_uint_le(r.edges_read, 3 + 2 * (fp.hub_read + 2));
	/* the newest leaves (the highest numbered) are among the candidates */
	{
		uint32_t m = 0;
		uint64_t aa = 0, ra = 0;

		ck_assert(cand_fof(c, graph_lookup(&v, 100 + HUB_LEAVES - 1), &m, &aa, &ra));
	}
	ck_assert_int_eq(walk_run(c, &v, &wp, 0, &r, NULL), 0);
	ck_assert_uint_le(r.steps, wp.steps);
	ck_assert_int_eq(ppr_run(c, &v, &pp, 0, &r, NULL), 0);
	ck_assert_uint_le(r.edges_read, (uint64_t)(1.0 / (pp.alpha * pp.eps)) + 1);
	/* the hub: expansion capped at max_expand intermediates */
	ck_assert_int_eq(cand_begin(c, &v, hub, NULL), 0);
	/* past CAND_LAZY_DEG: no pass over the hub's list */
	ck_assert(c->lazy);
	ck_assert_uint_eq(c->excl_read, 0);
	ck_assert_int_eq(fof_run(c, &v, &fp, 0, &r, NULL), 0);
	ck_assert_uint_le(r.steps, fp.hub_read);
	ck_assert_uint_le(r.edges_read, bound + fp.hub_read);
	/* exclusions still hold, found on demand */
	for (i = 0; i < HUB_LEAVES; i += 997)
		ck_assert(cand_is_excluded(c, graph_lookup(&v, 100 + i)));
	ck_assert(cand_is_excluded(c, hub));
	/* and a walk from the hub lands only on its neighbours: nothing it
	 * reaches may become a candidate */
	ck_assert_int_eq(walk_run(c, &v, &wp, 0, &r, NULL), 0);
	ck_assert_uint_gt(r.steps, 0);
	for (size_t k = 0; k < c->n; k++)
		ck_assert(c->c[k].flags & CAND_EXCL);
	for (size_t k = 0; k < c->n; k++)
		ck_assert(!(c->c[k].flags & CAND_FOF)); /* all are neighbours */
	ck_assert_uint_eq(c->nreached, 0);
	ck_assert_int_eq(ppr_run(c, &v, &pp, 0, &r, NULL), 0);
	ck_assert_uint_le(r.edges_read, (uint64_t)(1.0 / (pp.alpha * pp.eps)) + 1);
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
	free(ev);
}
END_TEST

/*
 * fof's read cap at its boundary, against brute force: with max_read set
 * to the largest degree among u's neighbours every list is read whole
 * (fof_exact, every count exact) even with hub_read 1; one below it, that
 * neighbour's list is cut to its newest entry, and fof must say its
 * counts are not exact.
 */
START_TEST(fof_read_cap_boundary)
{
	static uint8_t adj[NV * NV];
	uint32_t vid[NV], deg[NV], cut = 0;
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params p;
	struct graph_view v;
	struct cand_run run;

	for (uint64_t seed = 1; seed <= 4; seed++) {
		struct graph *g = random_graph(seed * 6151, 0.05 + 0.03 * (double)seed,
					       adj, vid);

		for (uint32_t x = 0; x < NV; x++) {
			deg[x] = 0;
			for (uint32_t y = 0; y < NV; y++)
				deg[x] += adj[x * NV + y];
		}
		graph_view_begin(g, &v);
		for (uint32_t u = 0; u < NV; u++) {
			uint32_t top = 0;

			for (uint32_t w = 0; w < NV; w++)
				if (adj[u * NV + w] && deg[w] > top)
					top = deg[w];
			fof_params_default(&p);
			p.max_read = top;
			p.hub_read = 1;
			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(fof_run(c, &v, &p, 0, &run, NULL), 0);
			ck_assert_int_eq(c->fof_exact, 1);
			for (uint32_t x = 0; x < NV; x++) {
				struct pair_ref ref = pair_ref(adj, u, x);
				uint32_t fm = 0;
				uint64_t faa = 0, fra = 0;
				int got = cand_fof(c, vid[x], &fm, &faa, &fra);

				if (x == u || adj[u * NV + x] || !ref.m) {
					ck_assert(!got);
					continue;
				}
				ck_assert(got);
				ck_assert_uint_eq(fm, ref.m);
				ck_assert(faa == ref.aa_fx && fra == ref.ra_fx);
			}
			if (top < 2)
				continue; /* a list of one is whole either way */
			p.max_read = top - 1;
			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(fof_run(c, &v, &p, 0, &run, NULL), 0);
			ck_assert_int_eq(c->fof_exact, 0);
			cut++;
		}
		graph_view_end(&v);
		graph_free(g);
	}
	ck_assert_uint_gt(cut, NV);
	cand_ctx_free(c);
}
END_TEST

/*
 * A lazy member (past CAND_LAZY_DEG neighbours) expands the newest
 * min(max_expand, hub_read) of them, taken from the newest index: with
 * max_expand below hub_read, exactly max_expand, and the friends of
 * friends reached are the leaves behind those, counted from the events.
 */
START_TEST(lazy_member_expands_at_most_max_expand)
{
	enum { D = 70000, CAP = 5 };
	struct graph_event *ev = malloc(2 * D * sizeof(*ev));
	struct graph *g = graph_new(0);
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params fp;
	struct cand_run r;
	struct graph_view v;
	uint32_t i, found = 0;

	ck_assert_ptr_nonnull(ev);
	/* member 1's friend 100000 + i at time i hours: the newest are the
	 * highest i; each friend has one friend of its own, 300000 + i */
	for (i = 0; i < D; i++) {
		ev[2 * i] = (struct graph_event){ 1, 100000 + i, 1000000 + i * GRAPH_TS_RES, GRAPH_ADD };
		ev[2 * i + 1] = (struct graph_event){ 100000 + i, 300000 + i, 1000, GRAPH_ADD };
	}
	ck_assert_int_eq(graph_build(g, ev, 2 * D, 0, NULL, NULL), 0);
	fof_params_default(&fp);
	ck_assert_uint_lt(CAP, fp.hub_read);
	fp.max_expand = CAP;
	graph_view_begin(g, &v);
	ck_assert_int_eq(cand_begin(c, &v, graph_lookup(&v, 1), NULL), 0);
	ck_assert(c->lazy);
	ck_assert_int_eq(fof_run(c, &v, &fp, 0, &r, NULL), 0);
	ck_assert_uint_eq(r.steps, CAP);
	for (i = 0; i < D; i++) {
		uint32_t m = 0;
		uint64_t aa = 0, ra = 0;
		int reached = cand_fof(c, graph_lookup(&v, 300000 + i), &m, &aa, &ra);

		ck_assert_int_eq(reached, i >= D - CAP);
		found += reached;
	}
	ck_assert_uint_eq(found, CAP);
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
	free(ev);
}
END_TEST

START_TEST(capped_expansion_takes_the_newest)
{
	enum { D = 600, CAP = 50 };
	struct graph_event ev[2 * D];
	struct graph *g = graph_new(0);
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params fp;
	struct cand_run r;
	struct graph_view v;
	uint32_t ts[D], sorted[D], i, cut, found = 0;
	uint64_t s = 4711;

	/* member 1 has D friends 1000+i with shuffled times; each friend
	 * has one friend of its own, 5000+i: the capped run must reach
	 * exactly the leaves behind the CAP newest friends */
	for (i = 0; i < D; i++) {
		ts[i] = 1000000 + (uint32_t)(rnd(&s) % 100000) * GRAPH_TS_RES;
		ev[2 * i] = (struct graph_event){ 1, 1000 + i, ts[i], GRAPH_ADD };
		ev[2 * i + 1] = (struct graph_event){ 1000 + i, 5000 + i, 1000, GRAPH_ADD };
		sorted[i] = ts[i];
	}
	ck_assert_int_eq(graph_build(g, ev, 2 * D, 0, NULL, NULL), 0);
	for (i = 1; i < D; i++) /* insertion sort, descending */
		for (uint32_t j = i; j > 0 && sorted[j - 1] < sorted[j]; j--) {
			uint32_t t = sorted[j];

			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	cut = sorted[CAP - 1];
	ck_assert_uint_gt(cut, sorted[CAP]); /* distinct with this seed */
	fof_params_default(&fp);
	fp.max_expand = CAP;
	graph_view_begin(g, &v);
	ck_assert_int_eq(cand_begin(c, &v, graph_lookup(&v, 1), NULL), 0);
	ck_assert_int_eq(fof_run(c, &v, &fp, 0, &r, NULL), 0);
	ck_assert_uint_eq(r.steps, CAP);
	for (i = 0; i < D; i++) {
		uint32_t m = 0;
		uint64_t aa = 0, ra = 0;
		int reached = cand_fof(c, graph_lookup(&v, 5000 + i), &m, &aa, &ra);

		ck_assert_int_eq(reached, ts[i] >= cut);
		found += reached;
	}
	ck_assert_uint_eq(found, CAP);
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
}
END_TEST

/* Members the writer creates while a query runs can turn up in the lists
 * it reads, with vertex ids past the query's table (sized when it began):
 * the generators pass them over, neither writing past the table nor
 * failing as if out of memory. 4,000 members leave the vertex table room
 * up to 4,564 while the query's table has 4,096 places, so some of the
 * 300 new ids fall inside the table and some past it. */
START_TEST(members_created_mid_query)
{
	enum { N = 4000, NEW = 300 };
	struct graph_event *ev = malloc(N * sizeof(*ev));
	struct graph *g = graph_new(0);
	struct cand_ctx *c = cand_ctx_new();
	struct fof_params fp;
	struct walk_params wp;
	struct ppr_params pp;
	struct cand_run r;
	struct graph_view v;
	uint32_t u, i, beyond = 0, reached_new = 0;

	REQ(ev != NULL && g != NULL && c != NULL);
	for (i = 0; i < N; i++) /* a ring */
		ev[i] = (struct graph_event){ ext(i), ext((i + 1) % N), 1000000,
					       GRAPH_ADD };
	REQ_EQ(graph_build(g, ev, N, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	u = graph_lookup(&v, ext(0));
	REQ_EQ(cand_begin(c, &v, u, NULL), 0);
	graph_view_end(&v);
	/* meanwhile member 1, u's neighbour, gains NEW friends who are new */
	for (i = 0; i < NEW; i++)
		ev[i] = (struct graph_event){ ext(1), ext(N + i), 2000000,
					       GRAPH_ADD };
	REQ_EQ(graph_apply(g, ev, NEW, NULL, NULL), 0);
	graph_view_begin(g, &v);
	for (i = 0; i < NEW; i++) {
		uint32_t x = graph_lookup(&v, ext(N + i));

		REQ_GE(x, N);
		beyond += x >= 4096;
		REQ(!cand_in_table(c, x));
	}
	REQ_GT(beyond, 0);
	REQ_LT(beyond, NEW);
	fof_params_default(&fp);
	walk_params_default(&wp);
	ppr_params_default(&pp);
	REQ_EQ(fof_run(c, &v, &fp, 0, &r, NULL), 0);
	REQ_EQ(walk_run(c, &v, &wp, 0, &r, NULL), 0);
	REQ_EQ(ppr_run(c, &v, &pp, 0, &r, NULL), 0);
	for (size_t k = 0; k < c->nreached; k++)
		REQ(cand_in_table(c, c->reached[k]));
	for (i = 0; i < NEW; i++) {
		uint32_t x = graph_lookup(&v, ext(N + i)), m = 0;
		uint64_t aa = 0, ra = 0;

		reached_new += cand_fof(c, x, &m, &aa, &ra);
		REQ(cand_find(c, x) == NULL);
	}
	REQ_EQ(reached_new, 0); /* they joined after the query began */
	/* and the next query, begun after they joined, reaches them all */
	REQ_EQ(cand_begin(c, &v, u, NULL), 0);
	REQ_EQ(fof_run(c, &v, &fp, 0, &r, NULL), 0);
	for (i = 0; i < NEW; i++) {
		uint32_t x = graph_lookup(&v, ext(N + i)), m = 0;
		uint64_t aa = 0, ra = 0;

		REQ(cand_fof(c, x, &m, &aa, &ra));
		REQ_EQ(m, 1);
	}
	graph_view_end(&v);
	graph_free(g);
	cand_ctx_free(c);
	free(ev);
}
END_TEST

/* The trend table against a brute-force count from the events: activity
 * per window, the window rule, the order (activity, then member id), and
 * lookups of every vertex. Paces from hours to years, so that each window
 * gets chosen; repeated pairs keep their newest time. The last five
 * rounds stamp most events alike (a bulk: more than half of the edges, or
 * for one round just under half), whose edges count as activity only when
 * they are not the majority. */
static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

START_TEST(trend_matches_brute_force)
{
	static const uint32_t win[TREND_NWINDOWS] = { 1, 3, 7, 14, 30, 90, 365 };
	static const uint32_t span_h[] = { 30, 200, 2000, 9000, 40000 };
	enum { NE = 900 };
	static uint32_t ts[NV][NV];
	struct graph_event ev[NE];
	uint64_t seed = 99;
	uint32_t seen = 0; /* windows chosen, a bit each */

	for (uint32_t sc = 0; sc < 5 * 3 + 5; sc++) {
		uint32_t span = span_h[sc < 15 ? sc / 3 : sc - 15] * 3600u;
		uint32_t t0 = 1500000000u, now, bulk = t0 + span / 2 / 3600u * 3600u;
		/* events of 1000 stamped `bulk` (0: none) */
		uint32_t nbulk = sc < 15 ? 0 : sc == 17 ? 420 : 700;
		uint32_t pairs = 0, at_bulk = 0;
		uint32_t k = sc % 3 == 0 ? TREND_K : sc % 3 == 1 ? 5 : 60;
		uint32_t act[NV], busy, w, n = 0, order[NV], no = 0, i, j;
		struct graph *g = graph_new(0);
		struct graph_view v;
		struct trend t;

		memset(ts, 0, sizeof(ts));
		/* a few very active members, many quiet ones */
		for (i = 0; i < NE; i++) {
			uint32_t a = (uint32_t)(rnd(&seed) % (rnd(&seed) % 3 ? NV : 8));
			uint32_t b = (uint32_t)(rnd(&seed) % NV);
			uint32_t x = t0 + (uint32_t)(rnd(&seed) % span) / 3600u * 3600u;

			if (rnd(&seed) % 1000 < nbulk)
				x = bulk;
			if (a == b)
				continue;
			ev[n++] = (struct graph_event){ ext(a), ext(b), x, GRAPH_ADD };
			if (x > ts[a][b])
				ts[a][b] = ts[b][a] = x;
		}
		ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
		/* now: the end of the stream, or inside it (later edges ignored) */
		now = t0 + (sc % 2 ? span : span / 2);
		graph_view_begin(g, &v);
		trend_build(&t, &v, now, k);
		for (i = 0; i < NV; i++) /* is `bulk` the stamp of most edges? */
			for (j = 0; j < NV; j++) {
				pairs += ts[i][j] != 0;
				at_bulk += ts[i][j] == bulk;
			}
		if (nbulk)
			ck_assert_int_eq(2 * at_bulk > pairs, nbulk > 500);
		{ /* t.bulk: does any stamp hold more than half of the edges? */
			static uint32_t all[NV * NV];
			uint32_t na = 0, run = 0, most = 0;

			for (i = 0; i < NV; i++)
				for (j = 0; j < NV; j++)
					if (ts[i][j])
						all[na++] = ts[i][j];
			qsort(all, na, sizeof(*all), u32_cmp);
			for (i = 0; i < na; i++) {
				run = i && all[i] == all[i - 1] ? run + 1 : 1;
				most = run > most ? run : most;
			}
			ck_assert_uint_eq(t.bulk, 2 * most > na);
		}
		for (w = 0; w < TREND_NWINDOWS; w++) {
			for (i = 0, busy = 0; i < NV; i++) {
				act[i] = 0;
				for (j = 0; j < NV; j++)
					act[i] += ts[i][j] && ts[i][j] <= now &&
						  now - ts[i][j] < win[w] * 86400u &&
						  (ts[i][j] != bulk || 2 * at_bulk <= pairs);
				busy += act[i] >= 2;
			}
			if (busy >= (k < TREND_K ? k : TREND_K) || w + 1 == TREND_NWINDOWS)
				break;
		}
		ck_assert_uint_eq(t.window, win[w] * 86400u);
		ck_assert_uint_eq(t.now, now);
		seen |= 1u << w;
		for (i = 0; i < NV; i++)
			if (act[i])
				order[no++] = i;
		for (i = 1; i < no; i++) /* activity descending, then member id */
			for (j = i; j > 0 && (act[order[j]] > act[order[j - 1]] ||
					      (act[order[j]] == act[order[j - 1]] &&
					       order[j] < order[j - 1])); j--) {
				uint32_t x = order[j];

				order[j] = order[j - 1];
				order[j - 1] = x;
			}
		if (no > k)
			no = k;
		if (no > TREND_K)
			no = TREND_K;
		ck_assert_uint_eq(t.n, no);
		for (i = 0; i < no; i++) {
			ck_assert_uint_eq(graph_member(&v, t.v[i]), ext(order[i]));
			ck_assert_uint_eq(t.act[i], act[order[i]]);
		}
		for (i = 0; i < NV; i++) {
			uint32_t x = graph_lookup(&v, ext(i)), in = 0;

			if (x == GRAPH_NONE)
				continue;
			for (j = 0; j < no; j++)
				in |= order[j] == i;
			ck_assert_uint_eq(trend_activity(&t, x), in ? act[i] : 0);
		}
		graph_view_end(&v);
		graph_free(g);
	}
	ck_assert_msg(__builtin_popcount(seen) >= 4, "windows chosen: %#x", seen);
}
END_TEST

/* A graph without edges, or whose edges all carry one timestamp, has an
 * empty table, window 0 (its "most active" would be the highest-degree
 * members). When that stamp holds most edges but not all (a file loaded
 * without times, then a few events), its edges still count for nothing
 * and the others make the table; once it holds no more than half, every
 * edge counts again. */
START_TEST(trend_empty_without_times)
{
	struct graph_event ev[40];
	struct graph *g = graph_new(0);
	struct graph_view v;
	struct trend t;
	uint32_t n = 0, i, now = 1500000000u;

	/* no edges at all: no "lately" either */
	graph_view_begin(g, &v);
	trend_build(&t, &v, now, TREND_K);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_uint_eq(t.window, 0);
	ck_assert_uint_eq(t.bulk, 0);
	graph_view_end(&v);

	for (i = 1; i < 20; i++) /* a star around 0 and a path */
		ev[n++] = (struct graph_event){ ext(0), ext(i), now, GRAPH_ADD };
	for (i = 1; i < 19; i++)
		ev[n++] = (struct graph_event){ ext(i), ext(i + 1), now, GRAPH_ADD };
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	trend_build(&t, &v, now, TREND_K);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_uint_eq(t.window, 0);
	ck_assert_uint_eq(t.bulk, 1);
	for (i = 0; i < 20; i++)
		ck_assert_uint_eq(trend_activity(&t, graph_lookup(&v, ext(i))), 0);
	graph_view_end(&v);
	graph_free(g);

	/* the path's last two edges an hour older: 35 of 37 edges share a
	 * stamp, so only those two count (18 twice, 17 and 19 once) */
	g = graph_new(0);
	ev[n - 1].ts = ev[n - 2].ts = now - 3600u;
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	trend_build(&t, &v, now, 5);
	ck_assert_uint_eq(t.window, 365u * 86400u); /* nobody busy: the widest */
	ck_assert_uint_eq(t.bulk, 1);
	ck_assert_uint_eq(t.n, 3);
	ck_assert_uint_eq(graph_member(&v, t.v[0]), ext(18));
	ck_assert_uint_eq(t.act[0], 2);
	ck_assert_uint_eq(graph_member(&v, t.v[1]), ext(17));
	ck_assert_uint_eq(graph_member(&v, t.v[2]), ext(19));
	ck_assert_uint_eq(trend_activity(&t, graph_lookup(&v, ext(0))), 0);
	graph_view_end(&v);
	graph_free(g);

	/* the path an hour older and one star edge two: 18, 18 and 1 of 37
	 * edges, no stamp holds most, so all count again and the star's
	 * centre (degree 19) leads */
	g = graph_new(0);
	for (i = 19; i < n; i++)
		ev[i].ts = now - 3600u;
	ev[18].ts = now - 7200u;
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	trend_build(&t, &v, now, 5); /* 5 members with two edges in a day */
	ck_assert_uint_eq(t.window, 86400u);
	ck_assert_uint_eq(t.bulk, 0);
	ck_assert_uint_eq(t.n, 5);
	ck_assert_uint_eq(graph_member(&v, t.v[0]), ext(0));
	ck_assert_uint_eq(t.act[0], 19);
	graph_view_end(&v);
	graph_free(g);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("candidates");
	TCase *t = tcase_create("core");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, fof_matches_brute_force);
	tcase_add_test(t, recount_matches_brute_force);
	tcase_add_test(t, ppr_matches_power_iteration);
	tcase_add_test(t, ppr_residual_tightens_the_estimate);
	tcase_add_test(t, walk_exclusions_and_determinism);
	tcase_add_test(t, walk_settles_as_stated);
	tcase_add_test(t, walk_lands_like_a_random_walk_with_restart);
	tcase_add_test(t, deadline_stops_generators);
	tcase_add_test(t, bounded_work_on_a_huge_hub);
	tcase_add_test(t, capped_expansion_takes_the_newest);
	tcase_add_test(t, fof_read_cap_boundary);
	tcase_add_test(t, lazy_member_expands_at_most_max_expand);
	tcase_add_test(t, members_created_mid_query);
	tcase_add_test(t, trend_matches_brute_force);
	tcase_add_test(t, trend_empty_without_times);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return testutil_main(suite());
}
