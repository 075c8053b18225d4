/* cmd_stats.c - `triad stats`: size and degree summary of a snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "graph.h"
#include "mem.h"
#include "store.h"

static const char stats_usage[] =
	"usage: triad stats --snapshot SNAP [--json]\n"
	"\n"
	"Open a snapshot and print members, edges, bytes of the in-memory\n"
	"graph, bytes per edge and the degree summary (min, median, mean, p99,\n"
	"max, members with degree 0; out-degree when directed). Percentiles\n"
	"are nearest-rank. --json prints one JSON object.\n";

struct deg_summary {
	uint32_t min, median, p99, max;
	uint64_t zero;
	double mean;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0 < p <= 100) of sorted d[0..n), n > 0. */
static uint32_t rank(const uint32_t *d, size_t n, unsigned p)
{
	size_t r = (n * p + 99) / 100; /* ceil(n * p / 100) */

	return d[r ? r - 1 : 0];
}

static int degree_summary(const struct graph *g, struct deg_summary *s)
{
	struct graph_view v;
	uint32_t *d = NULL, n, i;
	uint64_t sum = 0;

	memset(s, 0, sizeof(*s));
	graph_view_begin(g, &v);
	n = graph_nvertices(&v);
	d = mem_alloc(n, sizeof(*d));
	if (!d) {
		graph_view_end(&v);
		return -1;
	}
	for (i = 0; i < n; i++) {
		d[i] = graph_degree(&v, i);
		sum += d[i];
		s->zero += d[i] == 0;
	}
	graph_view_end(&v);
	if (n) {
		qsort(d, n, sizeof(*d), cmp_u32);
		s->min = d[0];
		s->max = d[n - 1];
		s->median = rank(d, n, 50);
		s->p99 = rank(d, n, 99);
		s->mean = (double)sum / n;
	}
	free(d);
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	static const char *const once[] = { "--snapshot", NULL };
	const char *snap = NULL;
	struct graph *g = NULL;
	struct graph_stats st;
	struct deg_summary ds;
	struct err e = { "" };
	int json = 0, k, rc = 1;
	unsigned seen = 0;
	double bpe;

	for (k = 1; k < argc; k++) {
		const char *a = argv[k];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(stats_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strncmp(a, "--snapshot=", 11)) {
			if (cmd_once("stats", "--snapshot", once, &seen))
				return 2;
			snap = a + 11;
		} else if (!strcmp(a, "--snapshot")) {
			if (k + 1 >= argc) {
				return cmd_usage("stats", "option --snapshot "
					"needs a value");
			}
			if (cmd_once("stats", "--snapshot", once, &seen))
				return 2;
			snap = argv[++k];
		} else {
			return cmd_usage("stats", "%s \"%s\"",
				a[0] == '-' ? "unknown option"
				: "unexpected argument", a);
		}
	}
	if (!snap) {
		return cmd_usage("stats", "missing --snapshot SNAP");
	}
	g = store_snapshot_open(snap, &e);
	if (!g) {
		fprintf(stderr, "triad stats: %s\n", e.msg);
		return 1;
	}
	if (degree_summary(g, &ds) < 0) {
		fprintf(stderr, "triad stats: out of memory\n");
		goto out;
	}
	graph_stats(g, &st);
	bpe = st.edges ? (double)st.bytes / (double)st.edges : 0.0;
	if (json) {
		printf("{\"members\":%llu,\"edges\":%llu,\"bytes\":%llu,"
		       "\"bytes_per_edge\":%.3f,\"directed\":%s,"
		       "\"degree\":{\"min\":%u,\"median\":%u,\"mean\":%.3f,"
		       "\"p99\":%u,\"max\":%u,\"zero\":%llu}}\n",
		       (unsigned long long)st.members,
		       (unsigned long long)st.edges,
		       (unsigned long long)st.bytes, bpe,
		       graph_is_directed(g) ? "true" : "false", ds.min,
		       ds.median, ds.mean, ds.p99, ds.max,
		       (unsigned long long)ds.zero);
	} else {
		printf("members         %llu\n", (unsigned long long)st.members);
		printf("edges           %llu%s\n", (unsigned long long)st.edges,
		       graph_is_directed(g) ? " (directed)" : "");
		printf("bytes           %llu\n", (unsigned long long)st.bytes);
		printf("bytes_per_edge  %.2f\n", bpe);
		printf("degree          min %u  median %u  mean %.2f  p99 %u  "
		       "max %u  zero %llu\n", ds.min, ds.median, ds.mean,
		       ds.p99, ds.max, (unsigned long long)ds.zero);
	}
	rc = 0;
out:
	graph_free(g);
	return rc;
}
