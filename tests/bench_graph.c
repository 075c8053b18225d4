/*
 * bench_graph.c - the graph layer's figures, side by side with igraph.
 *
 * bytes per edge, ingest rate (alone and with a reader scanning), load time
 * of a 10M-edge text file and snapshot reopen time, on the bundled sample
 * and on a synthetic power-law graph (tests/synth.h). Run by `make bench`;
 * BENCH_EDGES overrides the synthetic size (default 10M edges);
 * BENCH_ONLY=ingest runs the ingest figures alone (no sizes, no igraph, no
 * load), for iterating on the writer.
 */
#include <igraph.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graph.h"
#include "load.h"
#include "store.h"
#include "synth.h"
#include "benchutil.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Resident set of this process, bytes (0 when unknown). */
static double rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (double)res * (double)sysconf(_SC_PAGESIZE);
}

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* igraph's memory for the same (deduplicated) undirected graph. */
static double igraph_bytes_per_edge(struct graph *g)
{
	struct graph_view v;
	igraph_vector_int_t el;
	igraph_t ig;
	uint64_t m = 0;
	size_t before, after;
	double r;

	graph_view_begin(g, &v);
	igraph_vector_int_init(&el, 0);
	for (uint32_t u = 0; u < graph_nvertices(&v); u++) {
		struct graph_iter it;
		uint32_t w, t;

		graph_iter_init(&it, &v, u);
		while (graph_iter_next(&it, &w, &t))
			if (u < w) {
				igraph_vector_int_push_back(&el, u);
				igraph_vector_int_push_back(&el, w);
				m++;
			}
	}
	before = heap_in_use();
	igraph_create(&ig, &el, graph_nvertices(&v), IGRAPH_UNDIRECTED);
	after = heap_in_use();
	graph_view_end(&v);
	r = (double)(after - before) / (double)m;
	igraph_destroy(&ig);
	igraph_vector_int_destroy(&el);
	return r;
}

static void size_report(const char *name, const struct graph_event *ev,
			size_t n)
{
	for (int reorder = 0; reorder < 2; reorder++) {
		struct graph *g = graph_new(0);
		struct graph_stats st;
		struct err e;
		double t0 = now_s(), dt;

		if (graph_build(g, ev, n, reorder ? GRAPH_BUILD_REORDER : 0,
				NULL, &e)) {
			fprintf(stderr, "bench: %s\n", e.msg);
			exit(1);
		}
		dt = now_s() - t0;
		graph_stats(g, &st);
		printf("%-10s %-12s members %9llu  edges %10llu  build %6.2f s"
		       "  triad %5.2f B/edge (lists %4.2f)",
		       name, reorder ? "by-degree" : "first-seen",
		       (unsigned long long)st.members,
		       (unsigned long long)st.edges, dt,
		       (double)st.bytes / (double)st.edges,
		       (double)st.base_bytes / (double)st.edges);
		if (reorder)
			printf("  igraph %5.2f B/edge\n",
			       igraph_bytes_per_edge(g));
		else /* what no code of these ids can beat, for comparison */
			printf("  ids alone >= %4.2f B/edge\n",
			       bench_id_floor_bpe(g));
		graph_free(g);
	}
}

struct scan {
	struct graph *g;
	atomic_int stop;
	uint64_t lists, entries;
};

static void *scanner(void *arg)
{
	struct scan *s = arg;
	uint64_t r = 12345;

	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		struct graph_view v;
		struct graph_iter it;
		uint32_t w, t, n;

		graph_view_begin(s->g, &v);
		n = graph_nvertices(&v);
		for (int i = 0; i < 64 && n; i++) {
			r = r * 6364136223846793005u + 1442695040888963407u;
			graph_iter_init(&it, &v, (uint32_t)((r >> 33) % n));
			while (graph_iter_next(&it, &w, &t))
				s->entries++;
			s->lists++;
		}
		graph_view_end(&v);
	}
	return NULL;
}

static void ingest_report(const struct graph_event *base, size_t nb,
			  uint64_t members, int with_igraph)
{
	size_t n = 4000000, batch = 1024;
	struct graph_event *ev = malloc(n * sizeof(*ev));
	uint64_t s = 777;

	for (size_t i = 0; i < n; i++) {
		ev[i].src = 1 + synth_rand(&s) % members;
		ev[i].dst = 1 + synth_rand(&s) % members;
		/* a quarter removes of edges that exist */
		if (i % 4 == 3) {
			const struct graph_event *x = &base[synth_rand(&s) % nb];

			ev[i].src = x->src;
			ev[i].dst = x->dst;
			ev[i].op = GRAPH_REMOVE;
		} else {
			ev[i].op = GRAPH_ADD;
		}
		ev[i].ts = 1700000000u + (uint32_t)(i / 100);
	}
	for (int with_reader = 0; with_reader < 2; with_reader++) {
		struct graph *g = graph_new(0);
		struct scan sc = { g, 0, 0, 0 };
		struct graph_stats st;
		pthread_t th;
		struct err e;
		double t0, dt, rss0;

		graph_build(g, base, nb, GRAPH_BUILD_REORDER, NULL, &e);
		rss0 = rss_bytes();
		if (with_reader)
			pthread_create(&th, NULL, scanner, &sc);
		t0 = now_s();
		for (size_t i = 0; i < n; i += batch) {
			size_t k = n - i < batch ? n - i : batch;

			graph_apply(g, ev + i, k, NULL, &e);
			graph_maintain(g, 50);
		}
		dt = now_s() - t0;
		if (with_reader) {
			atomic_store(&sc.stop, 1);
			pthread_join(th, NULL);
		}
		graph_stats(g, &st);
		printf("ingest     %-22s %8.0f events/s  (%zu events, batches of"
		       " %zu; merges %llu; after: %.2f B/edge, process RSS "
		       "%+.0f MB)",
		       with_reader ? "with a reader scanning" : "writer alone",
		       (double)n / dt, n, batch,
		       (unsigned long long)st.merges,
		       (double)st.bytes / (double)st.edges,
		       (rss_bytes() - rss0) / 1e6);
		if (with_reader)
			printf("  reader: %.1fM lists/s",
			       (double)sc.lists / dt / 1e6);
		printf("\n");
		if (!with_reader) {
			/* what the server does once the stream pauses: fold
			 * every delta left, small ones included */
			uint64_t d0 = st.delta_entries;

			t0 = now_s();
			while (graph_compact(g, 10000))
				;
			dt = now_s() - t0;
			graph_stats(g, &st);
			printf("compact    graph_compact after it  %8.2f s       "
			       "(entries in deltas %llu -> %llu; after: %.2f "
			       "B/edge, %.0f MB of arena pages handed back, "
			       "process RSS %+.0f MB)\n", dt,
			       (unsigned long long)d0,
			       (unsigned long long)st.delta_entries,
			       (double)st.bytes / (double)st.edges,
			       (double)st.arena_freed / 1e6,
			       (rss_bytes() - rss0) / 1e6);
		}
		graph_free(g);
	}
	/* igraph: the per-edge add on a graph of the same size */
	if (with_igraph) {
		igraph_vector_int_t el;
		igraph_t ig;
		double t0, dt;
		int k = 200;

		igraph_vector_int_init(&el, 0);
		for (size_t i = 0; i < nb; i++) {
			igraph_vector_int_push_back(&el, (igraph_integer_t)base[i].src - 1);
			igraph_vector_int_push_back(&el, (igraph_integer_t)base[i].dst - 1);
		}
		igraph_create(&ig, &el, (igraph_integer_t)members,
			      IGRAPH_UNDIRECTED);
		/* each add rebuilds igraph's indexes: bound the run by time */
		t0 = now_s();
		for (int i = 0; i < k; i++) {
			igraph_add_edge(&ig, i, i + 7);
			if (now_s() - t0 > 3.0) {
				k = i + 1;
				break;
			}
		}
		dt = now_s() - t0;
		printf("ingest     igraph_add_edge        %8.2f events/s  (%d "
		       "single adds, %.2f ms each)\n",
		       k / dt, k, dt / k * 1e3);
		igraph_destroy(&ig);
		igraph_vector_int_destroy(&el);
	}
	free(ev);
}

/*
 * The synthetic graph streamed into an empty graph in time order, as a
 * server consuming its topic from the start builds it (batches of 1,024,
 * graph_maintain(50 us) between them), then compacted as the server does
 * once the stream pauses: bytes per edge against the bulk build's.
 */
static void stream_report(const struct graph_event *ev, size_t n)
{
	struct graph *g = graph_new(0);
	struct graph_stats st;
	struct err e;
	double t0, dt, ts;

	t0 = now_s();
	for (size_t i = 0; i < n; i += 1024)
		graph_apply(g, ev + i, n - i < 1024 ? n - i : 1024, NULL, &e),
			graph_maintain(g, 50);
	dt = now_s() - t0;
	graph_stats(g, &st);
	printf("stream     into an empty graph     %8.0f events/s  (%zu "
	       "events; after: %.2f B/edge, %llu entries in deltas)\n",
	       (double)n / dt, n, (double)st.bytes / (double)st.edges,
	       (unsigned long long)st.delta_entries);
	t0 = now_s();
	while (graph_compact(g, 10000))
		;
	ts = now_s() - t0;
	graph_stats(g, &st);
	printf("compact    graph_compact after it  %8.2f s       (after: "
	       "%.2f B/edge, %llu entries in deltas)\n", ts,
	       (double)st.bytes / (double)st.edges,
	       (unsigned long long)st.delta_entries);
	graph_free(g);
}

static void load_report(const struct graph_event *ev, size_t n,
			const char *triad_bin)
{
	const char *dir = "/tmp/triad-bench";
	char txt[256], el[256], snap[256], cmd[1024];
	struct graph *g;
	struct err e;
	double t0, dt;
	FILE *f;

	snprintf(txt, sizeof(txt), "%s/synth.txt", dir);
	snprintf(el, sizeof(el), "%s/synth-igraph.el", dir);
	snprintf(snap, sizeof(snap), "%s/synth.snap", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && rm -rf %s", dir, snap);
	if (system(cmd))
		return;
	f = fopen(txt, "w");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%llu %llu %u\n", (unsigned long long)ev[i].src,
			(unsigned long long)ev[i].dst, ev[i].ts);
	fclose(f);
	f = fopen(el, "w");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%llu %llu\n", (unsigned long long)ev[i].src - 1,
			(unsigned long long)ev[i].dst - 1);
	fclose(f);

	/* the two files just written are still dirty in the page cache:
	 * flush them first, or their writeback runs during the timed load */
	if (system("sync"))
		printf("load       (sync failed; the figure may include writeback)\n");
	snprintf(cmd, sizeof(cmd), "%s load %s -o %s --quiet > /dev/null",
		 triad_bin, txt, snap);
	t0 = now_s();
	if (system(cmd)) {
		printf("load       FAILED: %s\n", cmd);
		return;
	}
	dt = now_s() - t0;
	printf("load       triad load (text, %zu lines) %6.2f s   "
	       "[%s]\n", n, dt, cmd);
	{
		igraph_t ig;
		FILE *in = fopen(el, "r");

		t0 = now_s();
		igraph_read_graph_edgelist(&ig, in, 0, IGRAPH_UNDIRECTED);
		dt = now_s() - t0;
		fclose(in);
		printf("load       igraph_read_graph_edgelist     %6.2f s   "
		       "(same edges, no timestamps)\n", dt);
		igraph_destroy(&ig);
	}
	t0 = now_s();
	g = store_snapshot_open(snap, &e);
	dt = now_s() - t0;
	if (!g) {
		printf("reopen     FAILED: %s\n", e.msg);
		return;
	}
	printf("reopen     store_snapshot_open            %6.2f s\n", dt);
	graph_free(g);
	unlink(txt);
	unlink(el);
}

int main(void)
{
	const char *data = getenv("TRIAD_DATA"), *bin = getenv("TRIAD_BIN");
	const char *sz = getenv("BENCH_EDGES"), *only = getenv("BENCH_ONLY");
	struct load_opts lo = { .format = "edges", .quiet = 1 };
	struct event_list l = { 0 };
	struct synth_opts so = { 0, 10, 0.5, 1600000000u, 365u * 86400u, 42 };
	uint64_t want = sz ? strtoull(sz, NULL, 10) : 10000000u;
	int all = !only || strcmp(only, "ingest");
	struct graph_event *ev;
	char path[512];
	struct err e;
	size_t n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("== bench_graph: make bench (tests/bench_graph.c); "
	       "BENCH_EDGES=%llu%s\n", (unsigned long long)want,
	       all ? "" : " BENCH_ONLY=ingest");
	bench_machine();
	igraph_set_error_handler(igraph_error_handler_printignore);

	snprintf(path, sizeof(path), "%s/facebook_combined.txt",
		 data ? data : "data");
	if (load_events(path, &lo, &l, &e)) {
		fprintf(stderr, "bench: %s\n", e.msg);
		return 1;
	}
	if (all)
		size_report("facebook", l.ev, l.n);
	event_list_release(&l);

	/* about 14% of generated pairs repeat: generate enough for `want`
	 * distinct edges */
	so.members = want * 117 / 100 / so.m + so.m + 1;
	n = synth_count(&so);
	ev = malloc(n * sizeof(*ev));
	if (!ev || synth_generate(&so, ev) != n) {
		fprintf(stderr, "bench: out of memory\n");
		return 1;
	}
	printf("synthetic: Holme-Kim growth, %llu members, m=%u, triad p=%.1f,"
	       " %zu events over 365 days\n",
	       (unsigned long long)so.members, so.m, so.triad_p, n);
	if (all)
		size_report("synthetic", ev, n);
	ingest_report(ev, n, so.members, all);
	stream_report(ev, n);
	if (bin && all)
		load_report(ev, n, bin);
	free(ev);
	return 0;
}
