/*
 * scale.c - how triad's figures grow with the graph: `make scale`.
 *
 * For each size in SCALE_EDGES (default 1M, 10M and 100M distinct edges) it
 * generates the synthetic Holme-Kim graph of tests/synth.h (the parameters
 * of bench_graph: m = 10, triad p = 0.5, a year of timestamps, seed 42) and
 * measures what a user of that size sees:
 *
 *   load     `triad load` of the events as a `src dst ts` text file, run as
 *            the real binary (TRIAD_BIN) and timed end to end; its own
 *            read/build/write split; its peak RSS (wait4). Writing the text
 *            file is not counted; the file is deleted right after.
 *   bytes    bytes per edge of the loaded graph in memory (graph_stats) and
 *            of the snapshot on disk (data.mdb).
 *   reopen   store_snapshot_open in this process after the load process
 *            exited: "cold" after posix_fadvise(DONTNEED) dropped the
 *            snapshot file from the page cache, then "warm".
 *   query    rec_answer_json (default model, k = 10, the server's default
 *            budget; what GET /recommend runs minus HTTP) for SCALE_QUERIES
 *            members drawn uniformly and as many drawn in proportion to
 *            degree: p50, p99 and mean of wall time, p50 and p99 of the
 *            thread's CPU time (robust to other load on the machine), and
 *            how many answers were degraded.
 *   ingest   twice SCALE_INGEST fresh events (default 2M each, at most
 *            half the size's edges) applied to the reopened graph with
 *            graph_apply in batches of 1,024 and graph_maintain(50 us)
 *            after each (as bench_graph), 1/4 removes of existing edges
 *            and 3/4 adds: first bench_graph's mix (both ends uniform
 *            among members), then a growth mix (source uniform or, for
 *            1 in 10, one of ingest/20 new members; target drawn by
 *            degree). events/s, the slowest batch, then the time to
 *            finish queued merges.
 *
 * A size is skipped, saying why, when MemAvailable is below 64 bytes per
 * generated event (triad load's measured peak is 55-59) or when the time
 * of the size before, scaled by size, would overrun SCALE_BUDGET seconds
 * (default 600) of the whole run.
 *
 * Then it prints a Markdown table and writes a log-log SVG plot of the
 * figures against edges (SCALE_SVG, default tests/results/scale.svg; "-" for none).
 * Not part of `make bench`: at 100M edges it takes several minutes and a
 * few GB of disk in SCALE_DIR (default /tmp/triad-scale).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "graph.h"
#include "mem.h"
#include "model.h"
#include "recommend.h"
#include "store.h"
#include "synth.h"
#include "benchutil.h"

#define MAX_SIZES 8
#define BATCH 1024u

struct row {
	uint64_t want;          /* requested distinct edges */
	uint64_t events;        /* generated add events (lines of the file) */
	uint64_t members, edges;
	uint32_t max_degree;
	double gen_s, write_s;  /* not counted: generating, writing text */
	uint64_t text_bytes;
	double load_s;          /* triad load, end to end (fork to exit) */
	double read_s, build_s, swrite_s; /* as triad load reports them */
	uint64_t load_rss;      /* peak RSS of triad load, bytes */
	double mem_bpe;         /* graph_stats bytes / edges */
	double disk_bpe;        /* data.mdb bytes / edges */
	double reopen_cold_s, reopen_warm_s;
	double q_p50[2], q_p99[2], q_mean[2]; /* [0] uniform, [1] by degree; ms */
	double q_cpu_p50[2], q_cpu_p99[2]; /* the same in thread CPU time, ms */
	uint64_t q_degraded[2], q_n[2];
	uint64_t ingest_n;
	double ingest_eps[2];   /* events/s; [0] uniform mix, [1] growth mix */
	double ingest_worst_ms[2]; /* slowest batch (apply + maintain) */
	size_t ingest_worst_at[2]; /* its number, from 0 */
	double drain_s[2];      /* graph_maintain until nothing is queued */
	double ingest_bpe;      /* bytes per edge after both mixes, drained */
	uint64_t ingest_delta;  /* entries still in deltas then */
	double total_s;         /* wall time of this size, everything */
	int ok;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of this thread: what a query costs whatever else runs */
static double cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "scale: %s: %s\n", what, msg);
	exit(1);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted v[0..n) */
static double pct(const double *v, size_t n, double p)
{
	size_t r = (size_t)((double)n * p / 100.0 + 0.999999);

	return n ? v[r ? r - 1 : 0] : 0;
}

static char *put_u64(char *p, uint64_t x)
{
	char tmp[24];
	size_t k = 0;

	do
		tmp[k++] = (char)('0' + x % 10);
	while ((x /= 10));
	while (k)
		*p++ = tmp[--k];
	return p;
}

/* The events as "src dst ts" lines; returns bytes written. */
static uint64_t write_text(const char *path, const struct graph_event *ev,
			  size_t n)
{
	size_t cap = 1u << 20, len = 0;
	char *buf = mem_alloc(cap, 1);
	uint64_t total = 0;
	FILE *f = fopen(path, "w");

	if (!buf || !f)
		die(path, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		char *p = buf + len;

		p = put_u64(p, ev[i].src);
		*p++ = ' ';
		p = put_u64(p, ev[i].dst);
		*p++ = ' ';
		p = put_u64(p, ev[i].ts);
		*p++ = '\n';
		len = (size_t)(p - buf);
		if (len > cap - 80) {
			if (fwrite(buf, 1, len, f) != len)
				die(path, strerror(errno));
			total += len;
			len = 0;
		}
	}
	if (fwrite(buf, 1, len, f) != len || fclose(f))
		die(path, strerror(errno));
	free(buf);
	return total + len;
}

/* Run `bin load txt -o snap --quiet`, stdout to out; fill the row. */
static void run_load(const char *bin, const char *txt, const char *snap,
		     const char *out, struct row *r)
{
	struct rusage ru;
	int status = 0, fd;
	double t0 = now_s();
	pid_t pid = fork();
	char line[256];
	FILE *f;

	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		execl(bin, bin, "load", txt, "-o", snap, "--quiet", (char *)NULL);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		die("wait4", strerror(errno));
	r->load_s = now_s() - t0;
	r->load_rss = (uint64_t)ru.ru_maxrss * 1024u;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "scale: %s load %s -o %s failed (status %d)\n",
			bin, txt, snap, status);
		exit(1);
	}
	f = fopen(out, "r");
	while (f && fgets(line, sizeof(line), f))
		sscanf(line, "seconds %*f (read %lf, build %lf, write %lf)",
		       &r->read_s, &r->build_s, &r->swrite_s);
	if (f)
		fclose(f);
}

static struct graph *reopen(const char *snap, double *dt)
{
	struct err e = { "" };
	double t0 = now_s();
	struct graph *g = store_snapshot_open(snap, &e);

	*dt = now_s() - t0;
	if (!g)
		die(snap, e.msg);
	return g;
}

/* Drop a file's clean pages from the page cache (no root needed). */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die(path, strerror(errno));
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}


static uint32_t uniform_nonzero(const struct graph_view *v, uint32_t n,
				uint64_t *s)
{
	uint32_t u;

	do
		u = (uint32_t)(synth_rand(s) % n);
	while (graph_degree(v, u) == 0);
	return u;
}

static void queries(struct graph *g, const uint64_t *cum, uint32_t nq,
		    struct row *r)
{
	struct rec_ctx *rc = rec_ctx_new();
	struct graph_buf out = { 0 };
	struct graph_view v;
	struct trend tr;
	double *lat = mem_alloc(nq ? nq : 1, sizeof(double));
	double *cpu = mem_alloc(nq ? nq : 1, sizeof(double));
	uint64_t s = 12345;
	struct err e = { "" };

	if (!rc || !lat || !cpu)
		die("queries", "out of memory");
	rec_ctx_set_now(rc, graph_newest_ts(g));
	graph_view_begin(g, &v);
	trend_build(&tr, &v, graph_newest_ts(g), TREND_K); /* as the server */
	rec_ctx_set_trend(rc, &tr);
	for (int mode = 0; mode < 2; mode++) {
		uint32_t n = graph_nvertices(&v);
		double sum = 0;

		r->q_degraded[mode] = 0;
		/* one query not counted: the context grows to the graph */
		for (uint32_t i = 0; i <= nq; i++) {
			uint32_t u = mode ? bench_by_degree(cum, n, &s)
					  : uniform_nonzero(&v, n, &s);
			struct rec_request rq = { graph_member(&v, u), 10, 0, 0 };
			double t0, c0;
			int st;

			out.len = 0;
			c0 = cpu_s();
			t0 = now_s();
			st = rec_answer_json(rc, &v, rec_builtin_model(&tr), &rq, NULL,
					     NULL, &out, &e);
			t0 = now_s() - t0;
			c0 = cpu_s() - c0;
			if (st)
				die("rec_answer_json", st == REC_UNKNOWN
					? "member unknown" : e.msg);
			if (i == 0)
				continue;
			lat[i - 1] = t0 * 1e3;
			cpu[i - 1] = c0 * 1e3;
			sum += t0 * 1e3;
			r->q_degraded[mode] += rc->degraded != 0;
		}
		qsort(lat, nq, sizeof(double), cmp_d);
		qsort(cpu, nq, sizeof(double), cmp_d);
		r->q_cpu_p50[mode] = pct(cpu, nq, 50);
		r->q_cpu_p99[mode] = pct(cpu, nq, 99);
		r->q_n[mode] = nq;
		r->q_p50[mode] = pct(lat, nq, 50);
		r->q_p99[mode] = pct(lat, nq, 99);
		r->q_mean[mode] = nq ? sum / nq : 0;
	}
	graph_view_end(&v);
	graph_buf_release(&out);
	rec_ctx_free(rc);
	free(lat);
	free(cpu);
}

/*
 * Apply n fresh events in batches of BATCH with graph_maintain(50 us) after
 * each. mix 0 is bench_graph's: adds between members drawn uniformly. mix 1
 * is growth-like: the source is an existing member drawn uniformly or, for
 * 1 in 10, one of n/20 new members; the target is drawn by degree. In both
 * every 4th event removes an existing edge.
 */
static void ingest(struct graph *g, const uint64_t *cum, uint64_t max_member,
		   size_t n, int mix, struct row *r)
{
	struct graph_event *ev = mem_alloc(n ? n : 1, sizeof(*ev));
	uint64_t s = 777 + (uint64_t)mix, fresh = n / 20 ? n / 20 : 1;
	struct graph_stats st;
	struct graph_view v;
	struct err e = { "" };
	uint32_t nv, ts0 = graph_newest_ts(g);
	double t0, worst = 0;
	size_t worst_at = 0;

	if (!ev)
		die("ingest", "out of memory");
	graph_view_begin(g, &v);
	nv = graph_nvertices(&v);
	for (size_t i = 0; i < n; i++) {
		uint32_t u, w;

		if (i % 4 == 3) {
			u = uniform_nonzero(&v, nv, &s);
			graph_nth(&v, u, (uint32_t)(synth_rand(&s) %
						    graph_degree(&v, u)), &w);
			ev[i].src = graph_member(&v, u);
			ev[i].dst = graph_member(&v, w);
			ev[i].op = GRAPH_REMOVE;
		} else {
			do {
				ev[i].src = mix && synth_rand(&s) % 10 == 0
					? max_member + 1 + synth_rand(&s) % fresh
					: graph_member(&v, (uint32_t)(synth_rand(&s) % nv));
				ev[i].dst = graph_member(&v, mix
					? bench_by_degree(cum, nv, &s)
					: (uint32_t)(synth_rand(&s) % nv));
			} while (ev[i].dst == ev[i].src);
			ev[i].op = GRAPH_ADD;
		}
		ev[i].ts = ts0 + (uint32_t)(i / 100);
	}
	graph_view_end(&v);
	t0 = now_s();
	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH;
		double tb = now_s();

		if (graph_apply(g, ev + i, k, NULL, &e))
			die("graph_apply", e.msg);
		graph_maintain(g, 50);
		tb = now_s() - tb;
		if (tb > worst) {
			worst = tb;
			worst_at = i / BATCH;
		}
	}
	r->ingest_n = n;
	r->ingest_eps[mix] = (double)n / (now_s() - t0);
	r->ingest_worst_ms[mix] = worst * 1e3;
	r->ingest_worst_at[mix] = worst_at;
	t0 = now_s();
	while (graph_maintain(g, 10000))
		;
	r->drain_s[mix] = now_s() - t0;
	graph_stats(g, &st);
	r->ingest_bpe = (double)st.bytes / (double)st.edges;
	r->ingest_delta = st.delta_entries;
	free(ev);
}

static void run_size(const char *bin, const char *dir, uint32_t nq,
		     size_t ningest, struct row *r)
{
	struct synth_opts so = { 0, 10, 0.5, 1600000000u, 365u * 86400u, 42 };
	char txt[512], snap[512], out[512], mdb[600], cmd[1200];
	struct graph_event *ev;
	struct graph_stats st;
	struct graph_view v;
	struct graph *g;
	struct stat sb;
	uint64_t *cum, acc = 0;
	uint32_t n;
	double t0 = now_s(), t;

	/* about 14% of generated pairs repeat (bench_graph) */
	so.members = r->want * 117 / 100 / so.m + so.m + 1;
	r->events = synth_count(&so);
	snprintf(txt, sizeof(txt), "%s/synth-%" PRIu64 ".txt", dir, r->want);
	snprintf(snap, sizeof(snap), "%s/synth-%" PRIu64 ".snap", dir, r->want);
	snprintf(out, sizeof(out), "%s/load-%" PRIu64 ".out", dir, r->want);
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", snap);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snap);
	if (system(cmd))
		die(snap, "cannot remove the old snapshot");

	t = now_s();
	ev = mem_alloc(r->events, sizeof(*ev));
	if (!ev || synth_generate(&so, ev) != r->events)
		die("synth_generate", "out of memory");
	r->gen_s = now_s() - t;
	t = now_s();
	r->text_bytes = write_text(txt, ev, r->events);
	r->write_s = now_s() - t;
	free(ev); /* the load process gets the memory */
	printf("  %" PRIu64 ": generated %" PRIu64 " events (%.1f s), wrote "
	       "%s, %.2f GB (%.1f s)\n", r->want, r->events, r->gen_s, txt,
	       (double)r->text_bytes / 1e9, r->write_s);

	run_load(bin, txt, snap, out, r);
	unlink(txt);
	printf("  %" PRIu64 ": %s load %s -o %s --quiet: %.2f s (read %.2f, "
	       "build %.2f, write %.2f), peak RSS %.2f GiB\n", r->want, bin,
	       txt, snap, r->load_s, r->read_s, r->build_s, r->swrite_s,
	       (double)r->load_rss / (1u << 30));

	drop_cache(mdb);
	g = reopen(snap, &r->reopen_cold_s);
	graph_free(g);
	g = reopen(snap, &r->reopen_warm_s);
	graph_stats(g, &st);
	r->members = st.members;
	r->edges = st.edges;
	r->mem_bpe = (double)st.bytes / (double)st.edges;
	r->disk_bpe = stat(mdb, &sb) ? 0 : (double)sb.st_size / (double)st.edges;
	printf("  %" PRIu64 ": %" PRIu64 " members, %" PRIu64 " edges, %.2f "
	       "B/edge in memory, %.2f on disk; reopen cold %.2f s, warm "
	       "%.2f s\n", r->want, r->members, r->edges, r->mem_bpe,
	       r->disk_bpe, r->reopen_cold_s, r->reopen_warm_s);

	graph_view_begin(g, &v);
	n = graph_nvertices(&v);
	cum = mem_alloc(n, sizeof(uint64_t));
	if (!cum)
		die("scale", "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		uint32_t d = graph_degree(&v, i);

		cum[i] = (acc += d);
		r->max_degree = d > r->max_degree ? d : r->max_degree;
	}
	graph_view_end(&v);
	printf("  %" PRIu64 ": mean degree %.1f, max degree %u\n", r->want,
	       n ? (double)acc / n : 0.0, r->max_degree);

	queries(g, cum, nq, r);
	for (int mode = 0; mode < 2; mode++)
		printf("  %" PRIu64 ": %u queries %s: p50 %.2f ms, p99 %.2f ms, "
		       "mean %.2f ms (CPU p50 %.2f ms, p99 %.2f ms), %" PRIu64
		       " degraded\n", r->want, nq, mode ? "by degree" : "uniform",
		       r->q_p50[mode], r->q_p99[mode], r->q_mean[mode],
		       r->q_cpu_p50[mode], r->q_cpu_p99[mode],
		       r->q_degraded[mode]);

	/* at most half the graph again, so the small graphs stay the size
	 * they are named by while they ingest */
	if (ningest > r->want / 2)
		ningest = (size_t)(r->want / 2);
	for (int mix = 0; mix < 2; mix++) {
		ingest(g, cum, so.members, ningest, mix, r);
		printf("  %" PRIu64 ": ingest %zu events (%s): %.0f events/s, "
		       "slowest batch %.1f ms (#%zu), merges drained in %.2f "
		       "s, %.2f B/edge after (%" PRIu64 " entries in deltas)\n",
		       r->want, ningest,
		       mix ? "growth mix" : "uniform mix", r->ingest_eps[mix],
		       r->ingest_worst_ms[mix], r->ingest_worst_at[mix],
		       r->drain_s[mix], r->ingest_bpe, r->ingest_delta);
	}
	free(cum);
	graph_free(g);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", snap, out);
	if (system(cmd))
		fprintf(stderr, "scale: could not remove %s\n", snap);
	r->total_s = now_s() - t0;
	r->ok = 1;
}

/* MemAvailable from /proc/meminfo, bytes; 0 when unknown. */
static uint64_t mem_available(void)
{
	char line[128];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024u;
}

/* ---- the plot ----------------------------------------------------------- */

struct series {
	const char *name, *color, *dash;
	double y[MAX_SIZES];
};

static const char *fmt_time(double s, char *buf, size_t len)
{
	if (s >= 1)
		snprintf(buf, len, "%g s", s);
	else if (s >= 1e-3)
		snprintf(buf, len, "%g ms", s * 1e3);
	else
		snprintf(buf, len, "%g µs", s * 1e6);
	return buf;
}

static const char *fmt_num(double x, char *buf, size_t len)
{
	if (x >= 1e6)
		snprintf(buf, len, "%gM", x / 1e6);
	else if (x >= 1e3)
		snprintf(buf, len, "%gk", x / 1e3);
	else
		snprintf(buf, len, "%g", x);
	return buf;
}

/* decade bounds covering every positive value (at least one decade) */
static void decades(const struct series *s, size_t ns, size_t n, double *lo,
		    double *hi)
{
	double mn = 1e300, mx = 0;

	for (size_t i = 0; i < ns; i++)
		for (size_t j = 0; j < n; j++)
			if (s[i].y[j] > 0) {
				mn = s[i].y[j] < mn ? s[i].y[j] : mn;
				mx = s[i].y[j] > mx ? s[i].y[j] : mx;
			}
	if (mx <= 0)
		mn = mx = 1;
	/* a point a hair past a decade (101.8M edges) stays on the frame */
	*lo = floor(log10(mn) + 0.02);
	*hi = ceil(log10(mx) - 0.02);
	if (*hi <= *lo)
		*hi = *lo + 1;
}

/* One log-log panel at (px, py) of w x h pixels. */
static void panel(FILE *f, double px, double py, double w, double h,
		  const char *title, const double *xs, size_t n,
		  const struct series *s, size_t ns,
		  const char *(*fmt)(double, char *, size_t))
{
	double xlo, xhi, ylo, yhi, l = px + 56, r = px + w - 22, t = py + 28,
	       b = py + h - 34;
	struct series xser = { "", "", "", { 0 } };
	char lab[32];

	memcpy(xser.y, xs, n * sizeof(double));
	decades(&xser, 1, n, &xlo, &xhi);
	decades(s, ns, n, &ylo, &yhi);
#define X(v) (l + (log10(v) - xlo) / (xhi - xlo) * (r - l))
#define Y(v) (b - (log10(v) - ylo) / (yhi - ylo) * (b - t))
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n",
		l, py + 16, title);
	fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		"fill=\"none\" stroke=\"#888\"/>\n", l, t, r - l, b - t);
	for (double d = xlo; d <= xhi + 1e-9; d++) {
		double x = l + (d - xlo) / (xhi - xlo) * (r - l);

		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\""
			" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"middle\">%s</text>\n", x, t, x, b, x,
			b + 14, fmt_num(pow(10, d), lab, sizeof(lab)));
	}
	for (double d = ylo; d < yhi; d++)
		for (int m = 2; m < 10; m++) {
			double y = b - (d + log10(m) - ylo) / (yhi - ylo) * (b - t);

			fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				"y2=\"%.1f\" stroke=\"#f2f2f2\"/>\n", l, y, r, y);
		}
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">edges"
		"</text>\n", (l + r) / 2, b + 28);
	for (double d = ylo; d <= yhi + 1e-9; d++) {
		double y = b - (d - ylo) / (yhi - ylo) * (b - t);

		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\""
			" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"end\">%s</text>\n", l, y, r, y, l - 4,
			y + 4, fmt(pow(10, d), lab, sizeof(lab)));
	}
	for (size_t i = 0; i < ns; i++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
			"stroke-width=\"2\" stroke-dasharray=\"%s\" points=\"",
			s[i].color, s[i].dash);
		for (size_t j = 0; j < n; j++)
			if (s[i].y[j] > 0)
				fprintf(f, "%.1f,%.1f ", X(xs[j]), Y(s[i].y[j]));
		fprintf(f, "\"/>\n");
		for (size_t j = 0; j < n; j++)
			if (s[i].y[j] > 0)
				fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" "
					"fill=\"%s\"><title>%s: %s</title>"
					"</circle>\n", X(xs[j]), Y(s[i].y[j]),
					s[i].color, s[i].name,
					fmt(s[i].y[j], lab, sizeof(lab)));
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\""
			" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray="
			"\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
			px + 66, py + h + 4 + 16.0 * (double)i, px + 90,
			py + h + 4 + 16.0 * (double)i, s[i].color, s[i].dash,
			px + 96, py + h + 8 + 16.0 * (double)i, s[i].name);
	}
#undef X
#undef Y
}

static void write_svg(const char *path, const struct row *rows, size_t n,
		      const char *note)
{
	struct series tm[7] = {
		{ "triad load (end to end)", "#1f77b4", "none", { 0 } },
		{ "reopen, cold cache", "#2ca02c", "none", { 0 } },
		{ "reopen, warm cache", "#2ca02c", "4 3", { 0 } },
		{ "query p99, by degree", "#d62728", "none", { 0 } },
		{ "query p50, by degree", "#d62728", "4 3", { 0 } },
		{ "query p99, uniform", "#ff7f0e", "none", { 0 } },
		{ "query p50, uniform", "#ff7f0e", "4 3", { 0 } },
	};
	struct series by[3] = {
		{ "load peak RSS", "#9467bd", "4 3", { 0 } },
		{ "snapshot on disk", "#8c564b", "none", { 0 } },
		{ "graph in memory", "#1f77b4", "none", { 0 } },
	};
	struct series ing[2] = {
		{ "uniform mix", "#17becf", "none", { 0 } },
		{ "growth mix", "#17becf", "4 3", { 0 } },
	};
	double xs[MAX_SIZES];
	size_t k = 0;
	FILE *f;

	for (size_t i = 0; i < n; i++) {
		if (!rows[i].ok)
			continue;
		xs[k] = (double)rows[i].edges;
		tm[0].y[k] = rows[i].load_s;
		tm[1].y[k] = rows[i].reopen_cold_s;
		tm[2].y[k] = rows[i].reopen_warm_s;
		tm[3].y[k] = rows[i].q_p99[1] / 1e3;
		tm[4].y[k] = rows[i].q_p50[1] / 1e3;
		tm[5].y[k] = rows[i].q_p99[0] / 1e3;
		tm[6].y[k] = rows[i].q_p50[0] / 1e3;
		by[0].y[k] = (double)rows[i].load_rss / (double)rows[i].edges;
		by[1].y[k] = rows[i].disk_bpe;
		by[2].y[k] = rows[i].mem_bpe;
		ing[0].y[k] = rows[i].ingest_eps[0];
		ing[1].y[k] = rows[i].ingest_eps[1];
		k++;
	}
	if (!k)
		return;
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "scale: %s: %s\n", path, strerror(errno));
		return;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" "
		"height=\"420\" viewBox=\"0 0 960 420\" font-family=\"sans-serif\""
		" font-size=\"11\">\n<!-- generated by tests/scale.c (make "
		"scale) from the figures it measured; do not edit -->\n"
		"<rect width=\"960\" height=\"420\" fill=\"white\"/>\n"
		"<text x=\"10\" y=\"16\" font-size=\"13\">triad on synthetic "
		"Holme-Kim graphs: %s</text>\n", note);
	panel(f, 0, 24, 340, 270, "time (log-log)", xs, k, tm, 7, fmt_time);
	panel(f, 340, 24, 320, 270, "bytes per edge (log-log)", xs, k, by, 3,
	      fmt_num);
	panel(f, 660, 24, 300, 270, "ingest, events/s (log-log)", xs, k, ing,
	      2, fmt_num);
	fprintf(f, "</svg>\n");
	if (fclose(f))
		fprintf(stderr, "scale: %s: %s\n", path, strerror(errno));
}

/* ---- main --------------------------------------------------------------- */

static void table(const struct row *rows, size_t n)
{
	printf("\n| edges | members | `triad load` | read / build / write | "
	       "load peak RSS | B/edge memory | B/edge disk | reopen cold / "
	       "warm | ingest events/s uniform / growth | query p50 / p99 uniform | query p50 / "
	       "p99 by degree | query CPU p50 / p99 by degree |\n"
	       "|---:|---:|---:|---|---:|---:|---:|---|---|---|---|---|\n");
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		if (!r->ok)
			continue;
		printf("| %" PRIu64 " | %" PRIu64 " | %.2f s | %.2f / %.2f / "
		       "%.2f s | %.2f GiB | %.2f | %.2f | %.2f / %.2f s | "
		       "%.0f / %.0f | %.2f / %.2f ms | %.2f / %.2f ms | %.2f / %.2f ms |\n", r->edges,
		       r->members, r->load_s, r->read_s, r->build_s,
		       r->swrite_s, (double)r->load_rss / (1u << 30),
		       r->mem_bpe, r->disk_bpe, r->reopen_cold_s,
		       r->reopen_warm_s, r->ingest_eps[0], r->ingest_eps[1], r->q_p50[0],
		       r->q_p99[0], r->q_p50[1], r->q_p99[1], r->q_cpu_p50[1],
		       r->q_cpu_p99[1]);
	}
}

int main(void)
{
	const char *bin = getenv("TRIAD_BIN"), *env;
	const char *dir = getenv("SCALE_DIR"), *svg = getenv("SCALE_SVG");
	const char *sizes = getenv("SCALE_EDGES");
	struct row rows[MAX_SIZES];
	uint32_t nq = 1000;
	size_t ningest = 2000000, n = 0;
	double budget = 600;
	char note[160], cmd[600];
	double t0 = now_s();
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!bin)
		bin = "bin/triad";
	if (!dir)
		dir = "/tmp/triad-scale";
	if (!svg)
		svg = "tests/results/scale.svg";
	if (!sizes)
		sizes = "1000000,10000000,100000000";
	if ((env = getenv("SCALE_QUERIES")))
		nq = (uint32_t)strtoul(env, NULL, 10);
	if ((env = getenv("SCALE_BUDGET")))
		budget = strtod(env, NULL);
	if ((env = getenv("SCALE_INGEST")))
		ningest = (size_t)strtoull(env, NULL, 10);
	memset(rows, 0, sizeof(rows));
	for (const char *p = sizes; *p && n < MAX_SIZES;) {
		char *end;
		uint64_t x = strtoull(p, &end, 10);

		if (end == p || x < 1000)
			die("SCALE_EDGES", "want a comma-separated list of edge "
			    "counts >= 1000");
		rows[n++].want = x;
		p = *end == ',' ? end + 1 : end;
	}
	printf("== scale: make scale (tests/scale.c): TRIAD_BIN=%s SCALE_EDGES=%s"
	       " SCALE_QUERIES=%u SCALE_INGEST=%zu SCALE_BUDGET=%.0f SCALE_DIR=%s"
	       " SCALE_SVG=%s\n", bin, sizes, nq, ningest, budget, dir, svg);
	bench_machine();
	printf("synthetic: Holme-Kim growth, m=10, triad p=0.5, 365 days, seed "
	       "42 (as bench_graph)\n");
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	if (system(cmd))
		die(dir, "cannot create");
	for (size_t i = 0; i < n; i++) {
		/* triad load peaked at 55-59 bytes per generated event at
		 * 1M-100M edges; the generator needs 32 */
		uint64_t events = rows[i].want * 117 / 100, need = events * 64;
		uint64_t avail = mem_available();
		double left = budget - (now_s() - t0), guess = 0;

		for (size_t j = i; j-- > 0;)
			if (rows[j].ok) {
				guess = rows[j].total_s * 1.1 *
					(double)rows[i].want / (double)rows[j].want;
				break;
			}
		if (avail && need > avail) {
			printf("  %" PRIu64 ": skipped, memory: needs about %.1f "
			       "GiB (64 B per event), %.1f GiB available\n",
			       rows[i].want, (double)need / (1u << 30),
			       (double)avail / (1u << 30));
			continue;
		}
		if (guess > left) {
			printf("  %" PRIu64 ": skipped, time: would take about "
			       "%.0f s (scaled from the size before), %.0f s "
			       "left of SCALE_BUDGET=%.0f s\n", rows[i].want,
			       guess, left, budget);
			continue;
		}
		run_size(bin, dir, nq, ningest, &rows[i]);
		printf("  %" PRIu64 ": done in %.1f s (wall, everything)\n",
		       rows[i].want, rows[i].total_s);
	}
	table(rows, n);
	printf("\nwall time, all sizes: %.1f s\n", now_s() - t0);
	if (strcmp(svg, "-")) {
		snprintf(note, sizeof(note), "%ld cores, %.0f GiB RAM; %u queries"
			 " of each kind; up to %zu ingest events", cores,
			 (double)sysconf(_SC_PHYS_PAGES) *
				 (double)sysconf(_SC_PAGESIZE) / (1 << 30),
			 nq, ningest);
		write_svg(svg, rows, n, note);
		printf("plot: %s\n", svg);
	}
	return 0;
}
