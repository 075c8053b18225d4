/*
 * bench_query.c - per-query latency of candidate generation + scoring, in
 * process, side by side with the same Adamic-Adar top-10 computed over
 * igraph's adjacency list (igraph_adjlist) in the same run.
 *
 * Graphs: data/facebook_combined.txt and a synthetic power-law graph of
 * >= 10M edges (tests/synth.h; BENCH_EDGES overrides the size). Members
 * are drawn uniformly and in proportion to degree (BENCH_QUERIES each,
 * default 2000). For each query:
 *   triad AA   cand_begin + fof_run (default caps) + top 10 by Adamic-Adar
 *   triad AA exact  the same with every cap lifted (the exact ranking)
 *   igraph AA  the textbook loop over igraph_adjlist with a dense score
 *              array and touched list (exact, uncapped) + top 10
 *   triad full the served answer: rec_answer_json with the built-in model
 *              serve picks for the graph (rec_builtin_model: facebook-lr
 *              on the sample, whose edges carry one stamp, collegemsg-lr
 *              on the synthetic graphs) and the default budget (fof,
 *              walk, ppr, features, model,
 *              top 10, the JSON): what GET /recommend does minus HTTP
 * and how often the two AA top-10 sets agree (they differ only where the
 * caps bind).
 *
 * Then the read path under a stream: the graph bench_server serves (200k
 * members, 1.1M edges) takes BENCH_STREAM (default 1.1M; 0 skips this
 * part) events of its ingest stream in batches of 1,024 with
 * graph_maintain(100 us) between them, the pace of ten seconds of 110k
 * events/s, and "triad full" is timed before, after (changes partly in
 * deltas) and on a graph built from the same edges (all in base lists):
 * what the stream costs reads, growth and pending deltas apart. Before
 * the stream also with members drawn by degree, and on a copy of the
 * graph after bench_server's repeat stream (its own pairs again,
 * shuffled, stamped later: deltas of refreshed timestamps, the same
 * edges), uniform and by degree; and by degree after the stream.
 * BENCH_ONLY=served runs this part alone (for profiling the served answer).
 */
#include <igraph.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <math.h>

#include "cand.h"
#include "fof.h"
#include "graph.h"
#include "load.h"
#include "mem.h"
#include "model.h"
#include "recommend.h"
#include "synth.h"
#include "benchutil.h"

#define TOPK 10

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

struct top {
	uint32_t n;
	uint32_t v[TOPK];
	double s[TOPK];
	uint64_t m[TOPK];
};

/* Offer (score, member) to a top-10 kept best first (ties: smaller member). */
static void top_offer(struct top *t, uint32_t v, double s, uint64_t m)
{
	uint32_t i;

	if (t->n == TOPK && (s < t->s[TOPK - 1] ||
			     (s == t->s[TOPK - 1] && m > t->m[TOPK - 1])))
		return;
	i = t->n < TOPK ? t->n++ : TOPK - 1;
	while (i > 0 && (t->s[i - 1] < s || (t->s[i - 1] == s && t->m[i - 1] > m))) {
		t->v[i] = t->v[i - 1];
		t->s[i] = t->s[i - 1];
		t->m[i] = t->m[i - 1];
		i--;
	}
	t->v[i] = v;
	t->s[i] = s;
	t->m[i] = m;
}

static void triad_aa(struct cand_ctx *c, const struct graph_view *v,
		     const struct fof_params *p, uint32_t u, struct top *t)
{
	size_t i;

	t->n = 0;
	if (cand_begin(c, v, u, NULL) || fof_run(c, v, p, 0, NULL, NULL))
		return;
	for (i = 0; i < c->nreached; i++) {
		uint32_t x = c->reached[i], m = 0;
		uint64_t aa = 0, ra = 0;

		cand_fof(c, x, &m, &aa, &ra);
		top_offer(t, x, cand_fx_value(aa), graph_member(v, x));
	}
}

struct ig {
	igraph_t g;
	igraph_adjlist_t al;
	double *score;  /* dense, per vertex */
	uint32_t *mark; /* epoch per vertex: excluded or touched */
	uint8_t *excl;
	uint32_t *touched;
	uint32_t epoch;
	const uint64_t *member; /* external ids, for tie-breaks */
};

static void igraph_aa(struct ig *x, uint32_t u, struct top *t)
{
	igraph_vector_int_t *nu = igraph_adjlist_get(&x->al, u), *nw;
	igraph_integer_t i, j, du = igraph_vector_int_size(nu), dw;
	uint32_t nt = 0, w, y;
	double inc;

	t->n = 0;
	x->epoch++;
	x->mark[u] = x->epoch;
	x->excl[u] = 1;
	for (i = 0; i < du; i++) {
		w = (uint32_t)VECTOR(*nu)[i];
		x->mark[w] = x->epoch;
		x->excl[w] = 1;
	}
	for (i = 0; i < du; i++) {
		w = (uint32_t)VECTOR(*nu)[i];
		nw = igraph_adjlist_get(&x->al, w);
		dw = igraph_vector_int_size(nw);
		inc = dw >= 2 ? 1.0 / log((double)dw) : 0;
		for (j = 0; j < dw; j++) {
			y = (uint32_t)VECTOR(*nw)[j];
			if (x->mark[y] != x->epoch) {
				x->mark[y] = x->epoch;
				x->excl[y] = 0;
				x->score[y] = 0;
				x->touched[nt++] = y;
			}
			if (!x->excl[y])
				x->score[y] += inc;
		}
	}
	for (i = 0; i < nt; i++)
		top_offer(t, x->touched[i], x->score[x->touched[i]], x->member[x->touched[i]]);
}

/* Members per run of one method when two methods take turns (see run). */
#define BENCH_RUN 500u

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	size_t r = (size_t)((double)n * p / 100.0 + 0.999999);

	return v[r ? r - 1 : 0];
}

/* Time "triad full" (rec_answer_json, the built-in model serve would pick
 * for the graph, rec_builtin_model; default budget)
 * for each of mem[0..nq) into lf[]; returns the sum in us. */
static double time_full(struct rec_ctx *rc, const struct graph_view *v,
			const uint64_t *mem, uint32_t nq, struct graph_buf *out,
			double *lf)
{
	double sum = 0, t0;
	struct trend t;

	/* the most active members, as the server keeps them (built outside
	 * the timing: the server rebuilds it in the background) */
	trend_build(&t, v, graph_newest_ts(v->g), TREND_K);
	rec_ctx_set_trend(rc, &t);
	for (uint32_t i = 0; i < nq; i++) {
		struct rec_request rq = { mem[i], 10, 0, 0 };

		out->len = 0;
		t0 = now_us();
		rec_answer_json(rc, v, rec_builtin_model(&t), &rq, NULL, NULL, out,
				NULL);
		lf[i] = now_us() - t0;
		sum += lf[i];
	}
	rec_ctx_set_trend(rc, NULL);
	return sum;
}

static void run(const char *name, struct graph *g, uint32_t nq)
{
	struct graph_view v;
	struct ig x;
	igraph_vector_int_t edges;
	struct cand_ctx *c = cand_ctx_new();
	struct rec_ctx *rc = rec_ctx_new();
	struct graph_buf out = { 0 };
	struct fof_params fp, fx;
	struct top a, b, ex;
	uint32_t n, i, u, w, *q = mem_alloc(2 * nq, sizeof(uint32_t));
	uint64_t s = 12345, same = 0, total_deg = 0, k;
	double *lt = mem_alloc(nq, sizeof(double)), *li = mem_alloc(nq, sizeof(double));
	double *lf = mem_alloc(nq, sizeof(double)), t0;
	double *lx = mem_alloc(nq, sizeof(double));
	uint64_t *qm = mem_alloc(nq, sizeof(uint64_t));
	struct graph_iter it;
	int mode;

	fof_params_default(&fp);
	fx = fp;
	fx.max_expand = fx.max_read = fx.max_total = FOF_UNCAPPED;
	graph_view_begin(g, &v);
	n = graph_nvertices(&v);
	/* the same graph for igraph, vertex i = triad vertex i */
	igraph_vector_int_init(&edges, 0);
	x.member = mem_alloc(n, sizeof(uint64_t));
	for (i = 0; i < n; i++) {
		((uint64_t *)x.member)[i] = graph_member(&v, i);
		total_deg += graph_degree(&v, i);
		graph_iter_init(&it, &v, i);
		while (graph_iter_next(&it, &w, NULL))
			if (w > i) {
				igraph_vector_int_push_back(&edges, i);
				igraph_vector_int_push_back(&edges, w);
			}
	}
	igraph_create(&x.g, &edges, n, IGRAPH_UNDIRECTED);
	igraph_vector_int_destroy(&edges);
	igraph_adjlist_init(&x.g, &x.al, IGRAPH_ALL, IGRAPH_NO_LOOPS, IGRAPH_NO_MULTIPLE);
	x.score = mem_calloc(n, sizeof(double));
	x.mark = mem_calloc(n, sizeof(uint32_t));
	x.excl = mem_calloc(n, 1);
	x.touched = mem_alloc(n, sizeof(uint32_t));
	x.epoch = 0;
	printf("\n%s: %u members, %llu edges\n", name, n, (unsigned long long)total_deg / 2);
	printf("%-16s %-10s %10s %10s %12s\n", "members", "method", "p50 us", "p99 us", "mean us");
	for (mode = 0; mode < 2; mode++) {
		double sum_t = 0, sum_i = 0, sum_f = 0, sum_x = 0;
		uint64_t same_x = 0;

		same = 0;
		for (i = 0; mode == 0 && i < nq; i++) {
			do
				u = (uint32_t)(synth_rand(&s) % n);
			while (graph_degree(&v, u) == 0);
			q[i] = u;
		}
		if (mode == 1) {
			/* exact degree-proportional draw: pick edge ends */
			uint64_t *cum = mem_alloc(n, sizeof(uint64_t)), acc = 0;

			for (i = 0; i < n; i++)
				cum[i] = (acc += graph_degree(&v, i));
			for (i = 0; i < nq; i++)
				q[i] = bench_by_degree(cum, n, &s);
			free(cum);
		}
		/* triad AA and igraph AA in alternating runs of BENCH_RUN
		 * members each: a run is long enough that each method works
		 * mostly from caches holding its own data (as it would
		 * serving alone; taking turns member by member made both
		 * slower, triad's 32-byte table more), and short enough
		 * (tens of ms) that this VM's drift in speed over seconds (up
		 * to 30%) falls on both alike. Methods reading triad's lists
		 * (AA exact, full) get passes of their own, so none finds a
		 * list warmed by another on the same member. */
		for (uint32_t r0 = 0; r0 < nq; r0 += BENCH_RUN) {
			uint32_t r1 = r0 + BENCH_RUN < nq ? r0 + BENCH_RUN : nq;

			for (i = r0; i < r1; i++) {
				t0 = now_us();
				triad_aa(c, &v, &fp, q[i], &a);
				lt[i] = now_us() - t0;
				sum_t += lt[i];
			}
			for (i = r0; i < r1; i++) {
				t0 = now_us();
				igraph_aa(&x, q[i], &b);
				li[i] = now_us() - t0;
				sum_i += li[i];
			}
		}
		for (i = 0; i < nq; i++) {
			t0 = now_us();
			triad_aa(c, &v, &fx, q[i], &ex);
			lx[i] = now_us() - t0;
			sum_x += lx[i];
		}
		for (i = 0; i < nq; i++)
			qm[i] = graph_member(&v, q[i]);
		sum_f = time_full(rc, &v, qm, nq, &out, lf);
		/* agreement, untimed */
		for (i = 0; i < nq; i++) {
			triad_aa(c, &v, &fp, q[i], &a);
			triad_aa(c, &v, &fx, q[i], &ex);
			igraph_aa(&x, q[i], &b);
			for (k = 0; k < a.n && a.n == b.n; k++)
				if (a.m[k] != b.m[k])
					break;
			same += a.n == b.n && k == a.n;
			for (k = 0; k < ex.n && ex.n == b.n; k++)
				if (ex.m[k] != b.m[k])
					break;
			same_x += ex.n == b.n && k == ex.n;
		}
		qsort(lt, nq, sizeof(double), cmp_d);
		qsort(li, nq, sizeof(double), cmp_d);
		qsort(lf, nq, sizeof(double), cmp_d);
		qsort(lx, nq, sizeof(double), cmp_d);
		const char *who = mode ? "by degree" : "uniform";
		printf("%-16s %-10s %10.1f %10.1f %12.1f\n", who, "triad AA", pct(lt, nq, 50), pct(lt, nq, 99), sum_t / nq);
		printf("%-16s %-10s %10.1f %10.1f %12.1f\n", who, "AA exact", pct(lx, nq, 50), pct(lx, nq, 99), sum_x / nq);
		printf("%-16s %-10s %10.1f %10.1f %12.1f\n", who, "igraph AA", pct(li, nq, 50), pct(li, nq, 99), sum_i / nq);
		printf("%-16s %-10s %10.1f %10.1f %12.1f\n", who, "triad full", pct(lf, nq, 50), pct(lf, nq, 99), sum_f / nq);
		printf("%-16s speed-up of triad AA over igraph AA: p50 %.2fx, p99 %.2fx, mean %.2fx; identical top-10 in %.1f%% of queries\n",
		       who, pct(li, nq, 50) / pct(lt, nq, 50), pct(li, nq, 99) / pct(lt, nq, 99),
		       sum_i / sum_t, 100.0 * (double)same / nq);
		printf("%-16s speed-up of triad AA exact over igraph AA: p50 %.2fx, p99 %.2fx, mean %.2fx; identical top-10 in %.1f%% of queries\n",
		       who, pct(li, nq, 50) / pct(lx, nq, 50), pct(li, nq, 99) / pct(lx, nq, 99),
		       sum_i / sum_x, 100.0 * (double)same_x / nq);
	}
	graph_view_end(&v);
	igraph_adjlist_destroy(&x.al);
	igraph_destroy(&x.g);
	free(x.score);
	free(x.mark);
	free(x.excl);
	free(x.touched);
	free((void *)x.member);
	free(q);
	free(qm);
	free(lt);
	free(li);
	free(lf);
	free(lx);
	cand_ctx_free(c);
	graph_buf_release(&out);
	rec_ctx_free(rc);
}

/* "triad full" over uniformly drawn members 1..members of g, or (ev
 * given) in proportion to degree: an endpoint of a random one of ev[0..n). */
static void full_lat(struct graph *g, uint64_t members,
		     const struct graph_event *ev, size_t n, uint32_t nq,
		     const char *what)
{
	struct rec_ctx *rc = rec_ctx_new();
	struct graph_buf out = { 0 };
	struct graph_stats st;
	struct graph_view v;
	double *lf = mem_alloc(nq, sizeof(double)), sum;
	uint64_t *mem = mem_alloc(nq, sizeof(uint64_t)), s = 9;
	uint32_t i;

	if (!rc || !lf || !mem) {
		fprintf(stderr, "bench_query: out of memory\n");
		exit(1);
	}
	for (i = 0; i < nq; i++)
		mem[i] = bench_draw_member(ev != NULL, members, ev, n, &s);
	graph_view_begin(g, &v);
	sum = time_full(rc, &v, mem, nq, &out, lf);
	graph_view_end(&v);
	free(mem);
	graph_stats(g, &st);
	qsort(lf, nq, sizeof(double), cmp_d);
	printf("%-34s %10.1f %10.1f %12.1f   %llu edges, %llu in deltas\n", what,
	       pct(lf, nq, 50), pct(lf, nq, 99), sum / nq,
	       (unsigned long long)st.edges,
	       (unsigned long long)st.delta_entries / 2);
	free(lf);
	graph_buf_release(&out);
	rec_ctx_free(rc);
}

/* ev[0..n) into g as the server takes a stream: batches of 1,024 with
 * graph_maintain(100 us) between them. */
static void apply_paced(struct graph *g, const struct graph_event *ev,
			size_t n)
{
	struct graph_apply_stats as = { 0 };
	struct err e = { "" };
	size_t i;

	for (i = 0; i < n; i += 1024) {
		if (graph_apply(g, ev + i, n - i < 1024 ? n - i : 1024, &as, &e)) {
			fprintf(stderr, "bench_query: %s\n", e.msg);
			exit(1);
		}
		graph_maintain(g, 100);
	}
}

static void run_stream(uint32_t nq, size_t nstream)
{
	struct synth_opts so = bench_served_opts(200000), so2;
	struct graph_event *ev, *ev2;
	struct err e = { "" };
	struct graph *g, *g2;
	size_t n, n2;

	so2 = bench_stream_opts(&so);
	n = synth_count(&so);
	n2 = synth_count(&so2);
	if (nstream > n2)
		nstream = n2;
	ev = mem_alloc(n + nstream, sizeof(*ev));
	ev2 = mem_alloc(n2, sizeof(*ev2));
	if (!ev || !ev2 || synth_generate(&so, ev) != n ||
	    synth_generate(&so2, ev2) != n2) {
		fprintf(stderr, "bench_query: out of memory\n");
		exit(1);
	}
	g = graph_new(0);
	if (!g || graph_build(g, ev, n, 0, NULL, &e)) {
		fprintf(stderr, "bench_query: %s\n", e.msg);
		exit(1);
	}
	printf("\nserved graph under a stream (bench_server's: 200000 members, "
	       "then %zu events of its stream)\n", nstream);
	printf("%-34s %10s %10s %12s\n", "triad full on", "p50 us", "p99 us",
	       "mean us");
	full_lat(g, so.members, NULL, 0, nq, "the graph before the stream");
	full_lat(g, so.members, ev, n, nq, "  the same, members by degree");
	/* bench_server's BENCH_STREAM_KIND=repeat stream on a copy */
	{
		struct graph_event *rep = mem_alloc(nstream < n ? nstream : n,
						    sizeof(*rep));
		uint64_t s = 7;
		size_t nr;
		struct graph *g3 = graph_new(0);

		if (!rep || !g3 || graph_build(g3, ev, n, 0, NULL, &e)) {
			fprintf(stderr, "bench_query: out of memory\n");
			exit(1);
		}
		nr = bench_repeat_stream(ev, n, nstream, so2.t0, &s, rep);
		apply_paced(g3, rep, nr);
		full_lat(g3, so.members, NULL, 0, nq, "after the repeat stream, in deltas");
		full_lat(g3, so.members, ev, n, nq, "  the same, members by degree");
		graph_free(g3);
		free(rep);
	}
	apply_paced(g, ev2, nstream);
	full_lat(g, so.members, NULL, 0, nq, "after it, changes in deltas");
	full_lat(g, so.members, ev, n, nq, "  the same, members by degree");
	/* what the server does once the stream pauses for a second */
	while (graph_compact(g, 10000))
		;
	full_lat(g, so.members, NULL, 0, nq, "after it, then compacted");
	memcpy(ev + n, ev2, nstream * sizeof(*ev));
	free(ev2);
	g2 = graph_new(0);
	if (!g2 || graph_build_consume(g2, ev, n + nstream, n + nstream, 0, NULL,
					   &e)) {
		fprintf(stderr, "bench_query: %s\n", e.msg);
		exit(1);
	}
	free(ev);
	full_lat(g2, so.members, NULL, 0, nq, "the same edges built, no deltas");
	graph_free(g2);
	graph_free(g);
}

int main(void)
{
	const char *data = getenv("TRIAD_DATA"), *env, *only = getenv("BENCH_ONLY");
	char path[4096];
	struct load_opts lo = { 0 };
	struct event_list l = { 0 };
	struct err e = { "" };
	struct graph *g;
	uint32_t nq = 2000;
	uint64_t edges = 10000000, stream = 1100000;
	struct synth_opts so = { 0, 10, 0.5, 1600000000u, 365u * 86400u, 7 };
	struct graph_event *ev;
	size_t n;

	if ((env = getenv("BENCH_QUERIES")))
		nq = (uint32_t)strtoul(env, NULL, 10);
	if ((env = getenv("BENCH_EDGES")))
		edges = strtoull(env, NULL, 10);
	if ((env = getenv("BENCH_STREAM")))
		stream = strtoull(env, NULL, 10);
	printf("bench_query: command: TRIAD_DATA=%s %s (BENCH_QUERIES=%u BENCH_EDGES=%llu BENCH_STREAM=%llu%s)\n",
	       data ? data : "data", "build/tests/bench_query", nq,
	       (unsigned long long)edges, (unsigned long long)stream,
	       only && !strcmp(only, "served") ? " BENCH_ONLY=served" : "");
	bench_machine();
	if (only && !strcmp(only, "served")) {
		run_stream(nq, stream);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/facebook_combined.txt", data ? data : "data");
	if (load_events(path, &lo, &l, &e)) {
		fprintf(stderr, "bench_query: %s\n", e.msg);
		return 1;
	}
	g = graph_new(0);
	if (!g || graph_build(g, l.ev, l.n, 0, NULL, &e)) {
		fprintf(stderr, "bench_query: %s\n", e.msg);
		return 1;
	}
	event_list_release(&l);
	run("facebook_combined", g, nq);
	graph_free(g);

	/* repeated pairs collapse: about 13% of Holme-Kim events repeat one,
	 * so generate 1.2x the events to keep >= `edges` distinct edges */
	so.members = edges * 6 / 5 / so.m + so.m + 1;
	n = synth_count(&so);
	ev = mem_alloc(n, sizeof(*ev));
	if (!ev || synth_generate(&so, ev) != n) {
		fprintf(stderr, "bench_query: out of memory for %zu synthetic events\n", n);
		return 1;
	}
	g = graph_new(0);
	if (!g || graph_build(g, ev, n, 0, NULL, &e)) {
		fprintf(stderr, "bench_query: %s\n", e.msg);
		return 1;
	}
	free(ev);
	snprintf(path, sizeof(path), "synthetic Holme-Kim (m=%u, triad_p=%.1f)", so.m, so.triad_p);
	run(path, g, nq);
	graph_free(g);

	if (stream)
		run_stream(nq, stream);
	return 0;
}
