/*
 * benchutil.h - what every benchmark prints about the machine it ran on,
 * so a figure always comes with its context; and the plumbing of the
 * benchmarks that drive the real service (bench_server.c, soak.c): child
 * processes, a plain HTTP GET on loopback, wrk's output, the synthetic
 * served graph.
 *
 * Header-only: functions are static inline so a benchmark that does not use
 * one gets no warning. Nothing here uses Check (these programs are not
 * Check suites).
 */
#ifndef TRIAD_BENCHUTIL_H
#define TRIAD_BENCHUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "graph.h"
#include "port.h"
#include "mem.h"
#include "store.h"
#include "synth.h"

/* "machine: N cores, CPU model, R GiB RAM" on stdout. */
static inline void bench_machine(void)
{
	char line[256], model[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10)) {
			char *c = strchr(line, ':');

			snprintf(model, sizeof(model), "%s", c ? c + 2 : line);
			model[strcspn(model, "\n")] = 0;
			break;
		}
	if (f)
		fclose(f);
	printf("machine: %ld cores, %s, %.1f GiB RAM\n",
	       sysconf(_SC_NPROCESSORS_ONLN), model,
	       (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) /
		       (1 << 30));
}

/*
 * A floor under any encoding of the graph's neighbour ids that keeps this
 * numbering: each list is one subset of d of the other n - 1 vertices, so
 * telling it apart from the others takes log2 C(n - 1, d) bits whatever the
 * code (Elias-Fano and friends come within about 2 bits a neighbour of it).
 * Summed over vertices, in bytes per edge (undirected edges are stored
 * twice, as here). Timestamps, headers and indexes come on top.
 */
static inline double bench_id_floor_bpe(const struct graph *g)
{
	struct graph_view v;
	struct graph_stats st;
	double bits = 0, n;
	uint32_t i, nv;

	graph_view_begin(g, &v);
	nv = graph_nvertices(&v);
	n = nv > 1 ? (double)(nv - 1) : 1;
	for (i = 0; i < nv; i++) {
		double d = graph_degree(&v, i);

		bits += (lgamma(n + 1) - lgamma(d + 1) - lgamma(n - d + 1)) /
			log(2.0);
	}
	graph_view_end(&v);
	graph_stats(g, &st);
	return st.edges ? bits / 8 / (double)st.edges : 0;
}

/* Vertex with probability proportional to degree: cum[] holds prefix sums. */
static inline uint32_t bench_by_degree(const uint64_t *cum, uint32_t n, uint64_t *s)
{
	uint64_t r = synth_rand(s) % cum[n - 1];
	uint32_t lo = 0, hi = n - 1;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (cum[mid] > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The scratch directory of this run (see bench_mkdtemp). */
static inline char *bench_dir(void)
{
	static char d[128];

	return d;
}

/* Create /tmp/PREFIX.XXXXXX as the scratch directory: 0, or -1. */
static inline int bench_mkdtemp(const char *prefix)
{
	snprintf(bench_dir(), 128, "/tmp/%s.XXXXXX", prefix);
	return mkdtemp(bench_dir()) ? 0 : -1;
}

/* "DIR/name" in the scratch directory; the last 8 results stay valid. */
static inline const char *bench_in(const char *name)
{
	static char buf[8][256];
	static unsigned k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", bench_dir(), name);
	return buf[k];
}

static inline double bench_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The decimal value of environment variable name, or dflt. */
static inline unsigned long bench_envnum(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 10) : dflt;
}

/*
 * Start argv (argv[0] looked up on PATH) with stdout into `out` and stderr
 * appended to `errlog` (either may be NULL: inherited). The child gets
 * SIGKILL when this process dies. Returns its pid, -1 when fork failed.
 */
static inline pid_t bench_spawn(const char *out, const char *errlog,
				char **argv)
{
	pid_t pid = fork();

	if (!pid) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC,
				      0644)) >= 0)
			dup2(fd, 1);
		if (errlog && (fd = open(errlog, O_WRONLY | O_CREAT | O_APPEND,
					 0644)) >= 0)
			dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Run a shell command, its stdout (up to n - 1 bytes) into out;
 * pclose's status, -1 when it could not start. */
static inline int bench_capture(const char *cmd, char *out, size_t n)
{
	FILE *f = popen(cmd, "r");
	size_t len;

	if (!f)
		return -1;
	len = fread(out, 1, n - 1, f);
	out[len] = 0;
	return pclose(f);
}

/*
 * GET path from 127.0.0.1:port (Connection: close, 10 s at most). The
 * body (up to n - 1 bytes, NUL-terminated) into body; returns the HTTP
 * status, or -1 when there was no complete answer.
 */
static inline int bench_get(unsigned port, const char *path, char *body,
			    size_t n)
{
	struct sockaddr_in a;
	char *buf, *sep;
	size_t cap = 1 << 16, len = 0;
	double end = bench_mono() + 10;
	int fd, hl, status = -1;
	char head[512];

	buf = malloc(cap);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	hl = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: "
		      "127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, head, (size_t)hl) != hl)
		goto out;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t k;

		if (bench_mono() > end || poll(&pfd, 1, 200) < 0)
			goto out;
		if (!pfd.revents)
			continue;
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				goto out;
			buf = nb;
			cap *= 2;
		}
		k = read(fd, buf + len, cap - len - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
	}
	buf[len] = 0;
	sep = strstr(buf, "\r\n\r\n");
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) || !sep)
		goto out;
	status = atoi(buf + 9);
	snprintf(body, n, "%s", sep + 4);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return status;
}

/* Integer "key" of GET /stats, -1 when unavailable. */
static inline long long bench_stat(unsigned port, const char *key)
{
	static char out[1 << 14];
	char pat[64], *p;

	if (bench_get(port, "/stats", out, sizeof(out)) != 200)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(out, pat);
	return p ? atoll(p + strlen(pat)) : -1;
}

/* The value of one series in a /metrics text, given with its labels
 * exactly as the server prints them (`triad_edges`,
 * `triad_ingest_events_total{source="kafka",result="accepted"}`); -1 when
 * absent. */
static inline long long bench_metric_in(const char *text, const char *series)
{
	size_t sl = strlen(series);
	const char *p;

	for (p = text; (p = strstr(p, series)); p += sl)
		if ((p == text || p[-1] == '\n') && p[sl] == ' ')
			return atoll(p + sl + 1);
	return -1;
}

/* bench_metric_in on a fresh GET /metrics; -1 when unavailable. */
static inline long long bench_metric(unsigned port, const char *series)
{
	static char out[1 << 16];

	if (bench_get(port, "/metrics", out, sizeof(out)) != 200)
		return -1;
	return bench_metric_in(out, series);
}

/* Wait until GET /healthz answers 200 (secs at most): 0, or -1. */
static inline int bench_wait_healthy(unsigned port, double secs)
{
	char out[256];
	double end = bench_mono() + secs;

	while (bench_mono() < end) {
		if (bench_get(port, "/healthz", out, sizeof(out)) == 200)
			return 0;
		usleep(100000);
	}
	return -1;
}

/* What one wrk run reports (-1 where the output lacks it). */
struct bench_wrk {
	double rps;        /* Requests/sec */
	double p50, p99;   /* --latency percentiles, ms */
	long long requests;  /* "N requests in" */
	long long non2xx;    /* "Non-2xx or 3xx responses" (0 when absent) */
	long long sock_err;  /* connect + read + write + timeout (0 when
			      * absent) */
};

static inline void bench_parse_wrk(const char *txt, struct bench_wrk *w)
{
	const char *p;

	w->rps = w->p50 = w->p99 = -1;
	w->requests = -1;
	w->non2xx = w->sock_err = 0;
	if ((p = strstr(txt, "Requests/sec:")))
		w->rps = atof(p + 13);
	if ((p = strstr(txt, " requests in "))) {
		while (p > txt && p[-1] != '\n')
			p--;
		w->requests = atoll(p);
	}
	if ((p = strstr(txt, "Non-2xx or 3xx responses:")))
		w->non2xx = atoll(p + 25);
	if ((p = strstr(txt, "Socket errors:"))) {
		long long c = 0, r = 0, wr = 0, t = 0;

		if (sscanf(p, "Socket errors: connect %lld, read %lld, write "
			   "%lld, timeout %lld", &c, &r, &wr, &t) == 4)
			w->sock_err = c + r + wr + t;
	}
	for (p = txt; (p = strstr(p, "%")); p++) {
		const char *ls = p;
		double q, v;
		char unit[8] = "";

		while (ls > txt && ls[-1] != '\n')
			ls--;
		if (sscanf(ls, " %lf%% %lf%7s", &q, &v, unit) != 3)
			continue;
		if (!strcmp(unit, "us"))
			v /= 1000;
		else if (!strcmp(unit, "s"))
			v *= 1000;
		if (q == 50)
			w->p50 = v;
		else if (q == 99)
			w->p99 = v;
	}
}

/* The synthetic graph the server benchmarks serve: Holme-Kim
 * (tests/synth.h), `members` members joining with 6 edges each over 300
 * days from 2020-09-13, seed 42 (200,000 members give 1,113,722 edges). */
static inline struct synth_opts bench_served_opts(uint64_t members)
{
	struct synth_opts so = { 0 };

	so.members = members;
	so.m = 6;
	so.triad_p = 0.5;
	so.t0 = 1600000000u;
	so.span = 300u * 86400u;
	so.seed = 42;
	return so;
}

/* The ingest stream replayed into the served graph so: new edges among
 * the same members (seed 43), timestamps after so's. */
static inline struct synth_opts bench_stream_opts(const struct synth_opts *so)
{
	struct synth_opts s = *so;

	s.seed = 43;
	s.t0 = so->t0 + so->span;
	return s;
}

/*
 * Generate the events of so, build the graph and write it as a snapshot
 * at snap; print one line "NAME: graph M members, E edges (...)". The
 * events (malloc'd, the caller frees them) into *ev and their count into
 * *n. 0, or -1 with a message on stderr.
 */
static inline int bench_served_snapshot(const char *name,
					const struct synth_opts *so,
					const char *snap,
					struct graph_event **ev, size_t *n)
{
	struct graph_stats st;
	struct graph *g;
	struct err e = { "" };
	double t0 = bench_mono();

	*n = synth_count(so);
	*ev = mem_alloc(*n, sizeof(**ev));
	if (!*ev || synth_generate(so, *ev) != *n) {
		fprintf(stderr, "%s: out of memory\n", name);
		free(*ev);
		*ev = NULL;
		return -1;
	}
	g = graph_new(0);
	if (!g || graph_build(g, *ev, *n, 0, NULL, &e) ||
	    store_snapshot_write(snap, g, &e)) {
		fprintf(stderr, "%s: %s\n", name, g ? e.msg : "out of memory");
		graph_free(g);
		free(*ev);
		*ev = NULL;
		return -1;
	}
	graph_stats(g, &st);
	printf("%s: graph %llu members, %llu edges (built + snapshot in "
	       "%.1f s)\n", name, (unsigned long long)st.members,
	       (unsigned long long)st.edges, bench_mono() - t0);
	graph_free(g);
	return 0;
}

/*
 * Write `count` member ids, one a line, to path: uniform over 1..members,
 * or (weighted) an endpoint of a random event of ev[0..n), i.e. in
 * proportion to degree. 0, or -1 when the file could not be written.
 */
/* One member: uniform over 1..members, or (weighted) in proportion to
 * degree, an endpoint of a random one of ev[0..n). */
static inline uint64_t bench_draw_member(int weighted, uint64_t members,
					 const struct graph_event *ev, size_t n,
					 uint64_t *seed)
{
	if (weighted) {
		const struct graph_event *x = &ev[synth_rand(seed) % n];

		return synth_rand(seed) & 1 ? x->src : x->dst;
	}
	return synth_rand(seed) % members + 1;
}

static inline int bench_member_file(const char *path, int weighted,
				    uint64_t members,
				    const struct graph_event *ev, size_t n,
				    size_t count, uint64_t *seed)
{
	FILE *f = fopen(path, "w");
	size_t i;

	for (i = 0; f && i < count; i++)
		fprintf(f, "%llu\n", (unsigned long long)bench_draw_member(
					  weighted, members, ev, n, seed));
	return f && !fclose(f) ? 0 : -1;
}

/*
 * bench_server's BENCH_STREAM_KIND=repeat stream into out[]: the first
 * min(want, n) of the graph's events ev[0..n), shuffled (seed), stamped
 * t0 + i / 1000 (a thousand a second, after the graph): contacts meeting
 * again, every list the stream touches gets a delta of refreshed
 * timestamps and the edges stay the same. Returns the count.
 */
static inline size_t bench_repeat_stream(const struct graph_event *ev,
					 size_t n, size_t want, uint32_t t0,
					 uint64_t *seed, struct graph_event *out)
{
	size_t i, m = want < n ? want : n;

	for (i = 0; i < m; i++)
		out[i] = ev[i];
	for (i = m; i > 1; i--) {
		size_t j;
		struct graph_event t;

		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		j = (size_t)(*seed >> 33) % i;
		t = out[i - 1], out[i - 1] = out[j], out[j] = t;
	}
	for (i = 0; i < m; i++)
		out[i].ts = t0 + (uint32_t)(i / 1000);
	return m;
}

#endif
