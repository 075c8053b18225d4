/* cmd_load.c - `triad load`: graph files in, snapshot out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "graph.h"
#include "load.h"
#include "mem.h"
#include "mono.h"
#include "store.h"

static const char load_usage[] =
	"usage: triad load INPUT... -o SNAP [--format F] [--directed]\n"
	"                  [--skip-bad] [--quiet] [--reorder]\n"
	"\n"
	"Read graph files and write a snapshot (an LMDB directory) that\n"
	"`triad serve --snapshot` and `triad stats` open.\n"
	"\n"
	"  -o, --output SNAP  snapshot directory to write (replaced atomically)\n"
	"  --format F         edges | csv | ndjson | graphml | gml | pajek |\n"
	"                     ncol | lgl (default: from each file's extension:\n"
	"                     .txt .edges .el .tsv .csv .ndjson .jsonl .graphml\n"
	"                     .gml .net .pajek .ncol .lgl, each also as .gz)\n"
	"  --directed         keep edges one-way (default: undirected)\n"
	"  --skip-bad         count and skip malformed lines instead of failing\n"
	"  --reorder          renumber members by degree (default: order of\n"
	"                     first appearance, which measured smaller)\n"
	"  -q, --quiet        no progress on stderr\n"
	"\n"
	"Lines: edges \"src dst [ts]\" or \"src dst weight ts\" (# and % comments),\n"
	"csv \"src,dst[,ts]\" or \"src,dst,weight,ts\" (optional header), ndjson\n"
	"{\"op\":\"add\",\"src\":1,\"dst\":2,\"ts\":T}. Ids are unsigned 64-bit; ts is\n"
	"seconds since the epoch (default: now; after a weight, a fraction of a\n"
	"second is cut off). Weights are ignored.\n"
	"Self-loops are dropped; repeated pairs keep the newest ts.\n";

/* Value of an option given as "--opt V" or "--opt=V"; NULL when absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name,
			     const char *alias, int *bad)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (!strncmp(a, name, n) && a[n] == '=')
		return a + n + 1;
	if (strcmp(a, name) && !(alias && !strcmp(a, alias)))
		return NULL;
	if (*i + 1 >= argc) {
		cmd_usage("load", "option %s needs a value", a);
		*bad = 1;
		return NULL;
	}
	return argv[++*i];
}

int cmd_load(int argc, char **argv)
{
	static const char *const once[] = { "-o", "--format", NULL };
	struct load_opts o = { 0 };
	struct event_list l = { 0 };
	struct graph_stats st;
	struct graph *g = NULL;
	struct err e = { "" };
	const char *out = NULL, *v, **inputs = NULL;
	size_t nin = 0, i;
	uint64_t loops, skipped;
	int reorder = 0, bad = 0, rc = 1, progress;
	unsigned seen = 0;
	double t0 = mono_s(), t1, t2, t3;
	int k;

	inputs = mem_alloc((size_t)argc, sizeof(*inputs));
	if (!inputs) {
		fprintf(stderr, "triad load: out of memory\n");
		return 1;
	}
	for (k = 1; k < argc; k++) {
		const char *a = argv[k];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(load_usage, stdout);
			rc = 0;
			goto out;
		} else if ((v = opt_value(argc, argv, &k, "--output", "-o",
					  &bad))) {
			if (cmd_once("load", "-o", once, &seen)) {
				rc = 2;
				goto out;
			}
			out = v;
		} else if ((v = opt_value(argc, argv, &k, "--format", NULL,
					  &bad))) {
			if (cmd_once("load", "--format", once, &seen)) {
				rc = 2;
				goto out;
			}
			if (!load_format_valid(v)) {
				rc = cmd_usage("load", "unknown format "
					"\"%s\"", v);
				goto out;
			}
			o.format = v;
		} else if (bad) {
			rc = 2;
			goto out;
		} else if (!strcmp(a, "--directed")) {
			o.directed = 1;
		} else if (!strcmp(a, "--skip-bad")) {
			o.skip_bad = 1;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			o.quiet = 1;
		} else if (!strcmp(a, "--reorder")) {
			reorder = 1;
		} else if (a[0] == '-' && a[1] != '\0') {
			rc = cmd_usage("load", "unknown option \"%s\"", a);
			goto out;
		} else {
			inputs[nin++] = a;
		}
	}
	if (bad) {
		rc = 2;
		goto out;
	}
	if (nin == 0 || !out || !*out) {
		rc = cmd_usage("load", "%s", nin == 0 ? "no input file"
			: !out ? "missing -o SNAP" : "-o SNAP is empty");
		goto out;
	}
	/* a file that is there but has no known extension is a usage
	 * error (2); one that is not there fails below, as any unreadable
	 * input does (1) */
	for (i = 0; i < nin; i++)
		if (cmd_format_known("load", inputs[i], o.format)) {
			rc = 2;
			goto out;
		}
	progress = !o.quiet && isatty(2);

	for (i = 0; i < nin; i++) {
		size_t before = l.n;
		uint64_t renum = l.renumbered;

		if (progress)
			fprintf(stderr, "reading %s ...", inputs[i]);
		if (load_events(inputs[i], &o, &l, &e) < 0) {
			if (progress)
				fputc('\n', stderr);
			fprintf(stderr, "triad load: %s\n", e.msg);
			goto out;
		}
		if (progress)
			fprintf(stderr, " %zu events (%.2f s)\n", l.n - before,
				mono_s() - t0);
		if (l.renumbered > renum)
			fprintf(stderr, "triad load: warning: %s: not every node "
				"id is a member id (a decimal number), so its "
				"members are numbered in file order%s\n",
				inputs[i], nin > 1 ? "; the numbers of several "
				"such files overlap" : "");
	}
	t1 = mono_s();
	if (progress)
		fprintf(stderr, "building the graph from %zu events ...\n",
			l.n);
	g = graph_new(o.directed);
	if (!g) {
		fprintf(stderr, "triad load: out of memory\n");
		goto out;
	}
	if (load_build_consume(g, &l, reorder ? GRAPH_BUILD_REORDER : 0, &e) < 0) {
		fprintf(stderr, "triad load: %s\n", e.msg);
		goto out;
	}
	loops = l.self_loops;
	skipped = l.bad_skipped;
	event_list_release(&l); /* before writing: give the memory back */
	t2 = mono_s();
	if (progress)
		fprintf(stderr, "writing %s ...\n", out);
	if (store_snapshot_write(out, g, &e) < 0) {
		fprintf(stderr, "triad load: %s\n", e.msg);
		goto out;
	}
	t3 = mono_s();
	graph_stats(g, &st);
	printf("members         %llu\n", (unsigned long long)st.members);
	printf("edges           %llu%s\n", (unsigned long long)st.edges,
	       o.directed ? " (directed)" : "");
	printf("bytes           %llu\n", (unsigned long long)st.bytes);
	printf("bytes_per_edge  %.2f\n",
	       st.edges ? (double)st.bytes / (double)st.edges : 0.0);
	printf("self_loops      %llu dropped\n",
	       (unsigned long long)loops);
	printf("bad_lines       %llu skipped\n",
	       (unsigned long long)skipped);
	printf("seconds         %.2f (read %.2f, build %.2f, write %.2f)\n",
	       t3 - t0, t1 - t0, t2 - t1, t3 - t2);
	printf("snapshot        %s\n", out);
	rc = 0;
out:
	event_list_release(&l);
	graph_free(g);
	free(inputs);
	return rc;
}
