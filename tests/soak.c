/*
 * soak.c - `make soak`: the whole service under steady query and ingest
 * load for a bounded time (default 420 s, at most 450 s, plus set-up and
 * a drain of at most 120 s: under 10 minutes), on loopback.
 *
 * Set-up: the synthetic Holme-Kim graph of the server benchmark
 * (benchutil.h: 200,000 members, 1,113,722 edges) as a snapshot;
 * `triad kafka-mock` with SOAK_PARTITIONS partitions; `triad serve
 * --snapshot --state --brokers --topic` with its state in a scratch
 * directory.
 *
 * Load, for the whole run:
 *  - `triad replay` of an NDJSON stream at SOAK_RATE events/s, started
 *    again each time it reaches the end of the file. The stream is a
 *    sliding window: event 2i adds pair i, event 2i+1 removes pair
 *    i - SOAK_LIVE (cyclically, so the file repeats seamlessly). The pairs
 *    are SOAK_STREAMS further Holme-Kim streams over the same members,
 *    minus any pair that is an edge of the served graph. So after the first
 *    SOAK_LIVE pairs the graph holds a steady number of edges (its memory
 *    must stay flat), and every member keeps its own edges (GET /recommend
 *    must answer 200 for every member: 404 is for members without edges).
 *  - wrk on GET /recommend (tests/soak_recommend.lua: tests/recommend.lua
 *    with a pause of SOAK_DELAY_MS after each answer, so SOAK_CONNS
 *    connections offer a steady rate rather than saturating the server;
 *    SOAK_DELAY_MS=0 saturates), members uniform over the graph, in
 *    consecutive windows of SOAK_WINDOW seconds.
 *
 * librdkafka's mock cluster keeps only the newest 5 MiB of each partition:
 * a consumer that falls further behind loses messages (the drain check
 * below catches any loss). 16 partitions keep about 1M messages, 9 s of
 * this stream. More partitions keep more but cost the mock broker itself
 * CPU on this 2-core machine: measured with replay at 110k/s and nothing
 * else running, the service kept up with 16 partitions (mock 40% of a
 * core), fell 4% behind with 32 and 30% behind with 64 (mock 93%).
 *
 * Per window: wrk's req/s, p50, p99, non-2xx and socket errors; events the
 * server applied from Kafka (triad_ingest_events_total{source="kafka",
 * result="accepted"} from /metrics) per second; consumer lag at the end and
 * the largest seen (sampled every second); the longest time the applied
 * count stood still while messages were waiting; edges and graph bytes
 * (/metrics); the server's VmRSS and RssAnon and the mock's VmRSS
 * (/proc/PID/status); the size of the state's data.mdb.
 *
 * Verdict (exit 1 when a check fails). The first third of the windows is
 * warm-up and only reported; the windows after it split into an earlier
 * half E and a later half L.
 *  - errors: no non-2xx answer, no wrk socket error (timeout 10 s), no
 *    replay that failed, the server alive throughout and exiting 0 on
 *    SIGTERM;
 *  - memory: median over L of (VmRSS - graph bytes) minus the median over
 *    E is at most max(5% of E's median VmRSS, 16 MiB). Graph bytes are
 *    subtracted because new edges legitimately cost memory; medians
 *    because librdkafka's prefetch queue (up to 64 MiB) moves RSS with the
 *    lag from one window to the next;
 *  - latency: median p99 of L at most 1.5 times that of E, and no window
 *    of L above 3 times it;
 *  - ingest stalls: the applied count never stands still for more than
 *    10 s while messages are waiting;
 *  - exactly once: after the last window, replay stopped, the server
 *    drains (lag 0, 120 s at most) and the Kafka events it consumed
 *    (applied + rejected, /metrics) equal the messages produced (the sum
 *    of the topic's high watermarks, asked from the broker).
 * The ingest rate (target 100,000 events/s) and whether the server keeps
 * up (lag) are reported, with a warning when they fall short: they measure
 * capacity, not stability.
 *
 * Environment: TRIAD_BIN, SOAK_LUA, RECOMMEND_LUA (make sets them),
 * SOAK_SECONDS (420, at most 450), SOAK_WINDOW (30), SOAK_RATE (110000;
 * 0: no ingest), SOAK_CONNS (8), SOAK_DELAY_MS (100), SOAK_THREADS (server
 * HTTP threads, 2), SOAK_MEMBERS (200000), SOAK_LIVE (500000),
 * SOAK_STREAMS (3), SOAK_PARTITIONS (16). Every child process is stopped
 * on every exit path, SIGINT and SIGTERM included (and gets SIGKILL from
 * the kernel should this process die). The scratch directory is removed,
 * or on failure kept without its big files, for the logs.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "benchutil.h"

enum {
	MAXWIN = 64,
	MAX_SECONDS = 450, /* + set-up + drain (DRAIN_MAX): under 10 minutes */
	DRAIN_MAX = 120,
	MEMBER_IDS = 20000,
	STALL_MAX = 10,
};

struct win {
	double secs;
	struct bench_wrk w;
	long long rss_kb, anon_kb, mock_kb;
	long long applied;          /* Kafka events applied in the window */
	long long lag_end, lag_max; /* consumer lag, messages */
	double stall;               /* longest time without an applied event
				     * while the lag was > 0, s */
	long long edges, graph_bytes, state_bytes;
};

static const char *bin;
static pid_t pid_mock = -1, pid_srv = -1, pid_rep = -1, pid_wrk = -1;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* SIGKILL and reap every child still running. */
static void kill_all(void)
{
	pid_t *p[] = { &pid_wrk, &pid_rep, &pid_srv, &pid_mock };
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		if (*p[i] > 0) {
			kill(*p[i], SIGKILL);
			waitpid(*p[i], NULL, 0);
			*p[i] = -1;
		}
}

/* SIGTERM pid and wait up to secs: its exit status, 128 + signal, or -1
 * after a timeout (then it is killed). */
static int stop(pid_t *pid, double secs)
{
	double end = bench_mono() + secs;
	int st;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGTERM);
	while (bench_mono() < end) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = -1;
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 128 + WTERMSIG(st);
		}
		usleep(50000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = -1;
	return -1;
}

/* Remove the scratch directory, or only its big files when keep_logs. */
static void clean_dir(int keep_logs)
{
	char cmd[512];

	if (keep_logs)
		snprintf(cmd, sizeof(cmd), "cd '%s' && rm -rf snap state "
			 "stream.ndjson", bench_dir());
	else
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bench_dir());
	if (system(cmd))
		fprintf(stderr, "soak: could not clean %s\n", bench_dir());
}

/* "Key:   N kB" of /proc/PID/status, in kB; -1 when absent. */
static long long proc_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = atoll(line + kl + 1);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_size;
}

/* The pair a, b as one key, smaller id first. */
static uint64_t pair_key(uint64_t a, uint64_t b)
{
	return a < b ? a << 32 | b : b << 32 | a;
}

/*
 * Drop from pairs[0..*np) every pair that is also an edge of base[0..nb)
 * (order kept; *np updated). The stream then never removes a base edge,
 * so every member keeps at least its base edges and GET /recommend must
 * answer 200 for every member (404 is for a member without edges,
 * CONTRACT.md). 0, or -1 when out of memory.
 */
static int drop_base_pairs(const struct graph_event *base, size_t nb,
			   struct graph_event *pairs, size_t *np)
{
	size_t cap = 1, i, w = 0, mask;
	uint64_t *set;

	while (cap < 2 * nb)
		cap *= 2;
	mask = cap - 1;
	set = mem_calloc(cap, sizeof(*set));
	if (!set)
		return -1;
	/* open addressing; 0 is never a key (ids start at 1) */
	for (i = 0; i < nb; i++) {
		uint64_t k = pair_key(base[i].src, base[i].dst), c = k, h;

		for (h = synth_rand(&c) & mask; set[h] && set[h] != k;
		     h = (h + 1) & mask)
			;
		set[h] = k;
	}
	for (i = 0; i < *np; i++) {
		uint64_t k = pair_key(pairs[i].src, pairs[i].dst), c = k, h;

		for (h = synth_rand(&c) & mask; set[h] && set[h] != k;
		     h = (h + 1) & mask)
			;
		if (set[h] != k)
			pairs[w++] = pairs[i];
	}
	*np = w;
	free(set);
	return 0;
}

/* The stream pairs: SOAK_STREAMS Holme-Kim streams over the members of
 * base (seeds 43, 44, ...); malloc'd, their count into *np. */
static struct graph_event *stream_pairs(const struct synth_opts *base,
					unsigned long streams, size_t *np)
{
	struct graph_event *pairs;
	size_t per = synth_count(base), i;

	*np = per * streams;
	pairs = mem_alloc(*np, sizeof(*pairs));
	for (i = 0; pairs && i < streams; i++) {
		struct synth_opts so = *base;

		so.seed = 43 + i;
		if (synth_generate(&so, pairs + i * per) != per) {
			free(pairs);
			return NULL;
		}
	}
	return pairs;
}

/* The stream: each pair added and removed again `live` pairs later
 * (cyclically), as NDJSON. 0, or -1. */
static int write_stream(const char *path, const struct synth_opts *base,
			const struct graph_event *pairs, size_t np,
			size_t live, size_t *nev)
{
	size_t i;
	uint32_t ts0 = base->t0 + base->span;
	FILE *f;

	if (live >= np)
		live = np / 2;
	f = fopen(path, "w");
	for (i = 0; f && i < np; i++) {
		const struct graph_event *a = &pairs[i],
					 *r = &pairs[(i + np - live) % np];
		uint32_t ts = ts0 + (uint32_t)(i / 1000);

		fprintf(f, "{\"op\":\"add\",\"src\":%llu,\"dst\":%llu,"
			"\"ts\":%u}\n{\"op\":\"remove\",\"src\":%llu,"
			"\"dst\":%llu,\"ts\":%u}\n",
			(unsigned long long)a->src, (unsigned long long)a->dst,
			ts, (unsigned long long)r->src,
			(unsigned long long)r->dst, ts);
	}
	*nev = 2 * np;
	return f && !fclose(f) ? 0 : -1;
}

/* The bootstrap address kafka-mock prints first (20 s at most). */
static int mock_boot(char *boot, size_t n)
{
	double end = bench_mono() + 20;

	while (bench_mono() < end && !interrupted) {
		FILE *f = fopen(bench_in("mock.out"), "r");

		if (f) {
			int ok = fgets(boot, (int)n, f) && strchr(boot, '\n');

			fclose(f);
			if (ok) {
				*strchr(boot, '\n') = 0;
				return 0;
			}
		}
		usleep(50000);
	}
	return -1;
}

/* Messages ever produced to topic (the sum of its partitions' high
 * watermarks), -1 when the broker does not answer. */
static long long produced_total(const char *boot, const char *topic,
				unsigned long parts)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_t *rk;
	char es[256];
	long long sum = 0;
	unsigned long p;

	if (rd_kafka_conf_set(c, "bootstrap.servers", boot, es, sizeof(es)) !=
	    RD_KAFKA_CONF_OK || !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, es,
						    sizeof(es)))) {
		rd_kafka_conf_destroy(c);
		return -1;
	}
	for (p = 0; p < parts && sum >= 0; p++) {
		int64_t lo, hi;

		if (rd_kafka_query_watermark_offsets(rk, topic, (int32_t)p, &lo,
						     &hi, 5000))
			sum = -1;
		else
			sum += hi;
	}
	rd_kafka_destroy(rk);
	return sum;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of v[0..n) (n >= 1; v is reordered). */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double mib(long long bytes)
{
	return (double)bytes / (1 << 20);
}

int main(void)
{
	static struct win win[MAXWIN];
	unsigned long seconds = bench_envnum("SOAK_SECONDS", 420),
		      wsecs = bench_envnum("SOAK_WINDOW", 30),
		      rate = bench_envnum("SOAK_RATE", 110000),
		      conns = bench_envnum("SOAK_CONNS", 8),
		      threads = bench_envnum("SOAK_THREADS", 2),
		      members = bench_envnum("SOAK_MEMBERS", 200000),
		      live = bench_envnum("SOAK_LIVE", 500000),
		      streams = bench_envnum("SOAK_STREAMS", 3),
		      parts = bench_envnum("SOAK_PARTITIONS", 16),
		      delay = bench_envnum("SOAK_DELAY_MS", 100);
	const char *lua = getenv("SOAK_LUA"),
		   *rlua = getenv("RECOMMEND_LUA");
	const char *kacc = "triad_ingest_events_total{source=\"kafka\","
			   "result=\"accepted\"}",
		   *krej = "triad_ingest_events_total{source=\"kafka\","
			   "result=\"rejected\"}";
	long long produced = -1, consumed = -1;
	int drained = 0;
	double drain_s = 0;
	static char mtext[1 << 16];
	struct synth_opts so;
	struct graph_event *ev = NULL, *pairs = NULL;
	struct sigaction sa;
	size_t n, np, nev = 0, nw = 0, i, warm;
	uint64_t seed = 7;
	unsigned port = port_unclaimed();
	char boot[256] = "", listen[64], rate_s[32], thr_s[16], url[64],
	     parts_s[16];
	unsigned long replays = 0, replay_fail = 0;
	int srv_died = 0, srv_exit = -1, fail = 0, rc = 1;
	double t_start, t_run, elapsed = 0, moved = 0;
	long long last_acc = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bin = getenv("TRIAD_BIN");
	if (!bin || !lua || !rlua) {
		fprintf(stderr, "soak: TRIAD_BIN, SOAK_LUA and RECOMMEND_LUA "
			"must be set (run make soak)\n");
		return 2;
	}
	if (system("command -v wrk >/dev/null")) {
		fprintf(stderr, "soak: wrk not installed\n");
		return 2;
	}
	if (seconds > MAX_SECONDS) {
		printf("soak: SOAK_SECONDS=%lu capped at %d\n", seconds,
		       MAX_SECONDS);
		seconds = MAX_SECONDS;
	}
	if (seconds < 10)
		seconds = 10;
	if (wsecs < 5)
		wsecs = 5;
	if (seconds / wsecs + 1 >= MAXWIN)
		wsecs = seconds / (MAXWIN - 2) + 1;
	printf("soak: SOAK_SECONDS=%lu SOAK_WINDOW=%lu SOAK_RATE=%lu "
	       "SOAK_CONNS=%lu SOAK_THREADS=%lu SOAK_MEMBERS=%lu SOAK_LIVE=%lu "
	       "SOAK_STREAMS=%lu SOAK_PARTITIONS=%lu SOAK_DELAY_MS=%lu make soak\n",
	       seconds, wsecs, rate, conns, threads, members, live, streams,
	       parts, delay);
	bench_machine();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	t_start = bench_mono();
	if (bench_mkdtemp("soak")) {
		fprintf(stderr, "soak: cannot create a directory in /tmp\n");
		return 1;
	}

	/* the served graph, the member file, the stream */
	so = bench_served_opts(members);
	if (bench_served_snapshot("soak", &so, bench_in("snap"), &ev, &n))
		goto out;
	pairs = stream_pairs(&so, streams, &np);
	if (!pairs || drop_base_pairs(ev, n, pairs, &np) ||
	    bench_member_file(bench_in("members.txt"), 0, members, ev, n,
			      MEMBER_IDS, &seed) ||
	    write_stream(bench_in("stream.ndjson"), &so, pairs, np, live,
			 &nev)) {
		fprintf(stderr, "soak: cannot write the member or stream file "
			"in %s\n", bench_dir());
		goto out;
	}
	free(ev);
	free(pairs);
	ev = pairs = NULL;
	printf("soak: stream %zu events (%lu pairs live), %.0f MiB, replayed "
	       "in a loop at --rate %lu into %lu partitions; queries for %d "
	       "members drawn uniformly; set-up took %.1f s\n", nev, live,
	       mib(file_size(bench_in("stream.ndjson"))), rate, parts,
	       MEMBER_IDS, bench_mono() - t_start);

	/* the service */
	{
		char *a[] = { (char *)bin, "kafka-mock", "--partitions",
			      parts_s, "--topic", "soak", NULL };

		snprintf(parts_s, sizeof(parts_s), "%lu", parts);
		pid_mock = bench_spawn(bench_in("mock.out"),
				       bench_in("mock.log"), a);
	}
	if (mock_boot(boot, sizeof(boot))) {
		fprintf(stderr, "soak: kafka-mock printed no address (see "
			"%s)\n", bench_in("mock.log"));
		goto out;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(thr_s, sizeof(thr_s), "%lu", threads);
	snprintf(rate_s, sizeof(rate_s), "%lu", rate);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
	{
		char *a[] = { (char *)bin, "serve", "--snapshot",
			      (char *)bench_in("snap"), "--state",
			      (char *)bench_in("state"), "--listen", listen,
			      "--threads", thr_s, "--brokers", boot, "--topic",
			      "soak", NULL };

		pid_srv = bench_spawn(NULL, bench_in("serve.log"), a);
	}
	if (bench_wait_healthy(port, 120)) {
		fprintf(stderr, "soak: the service did not start (see %s)\n",
			bench_in("serve.log"));
		goto out;
	}
	{
		char ds[32];

		snprintf(ds, sizeof(ds), "%lu", delay);
		setenv("SOAK_DELAY_MS", ds, 1);
		setenv("MEMBERS", bench_in("members.txt"), 1);
	}

	/* the windows */
	t_run = bench_mono();
	while (!interrupted && nw < MAXWIN &&
	       (elapsed = bench_mono() - t_run) + 5 < (double)seconds) {
		struct win *w = &win[nw];
		unsigned long d = wsecs;
		char dur[32], conn_s[32], out[32];
		long long a0, a1, v;
		double t0, limit;
		int st;

		if ((double)d > (double)seconds - elapsed)
			d = (unsigned long)((double)seconds - elapsed);
		snprintf(dur, sizeof(dur), "%lus", d);
		snprintf(conn_s, sizeof(conn_s), "%lu", conns);
		snprintf(out, sizeof(out), "wrk.%zu.out", nw);
		a0 = bench_get(port, "/metrics", mtext, sizeof(mtext)) == 200
			     ? bench_metric_in(mtext, kacc)
			     : -1;
		w->lag_max = -1;
		t0 = bench_mono();
		if (!nw) {
			moved = t0;
			last_acc = a0;
		}
		limit = t0 + (double)d + 60;
		{
			char *a[] = { "wrk", "-t1", "-c", conn_s, "-d", dur,
				      "--latency", "--timeout", "10s", "-s",
				      (char *)lua, url, NULL };

			pid_wrk = bench_spawn(bench_in(out), bench_in("wrk.log"),
					      a);
		}
		while (!interrupted) {
			if (waitpid(pid_wrk, &st, WNOHANG) == pid_wrk) {
				pid_wrk = -1;
				break;
			}
			if (bench_mono() > limit) {
				fprintf(stderr, "soak: wrk did not finish\n");
				fail = 1;
				break;
			}
			/* keep the stream running */
			if (pid_rep > 0 &&
			    waitpid(pid_rep, &st, WNOHANG) == pid_rep) {
				pid_rep = -1;
				if (!WIFEXITED(st) || WEXITSTATUS(st)) {
					replay_fail++;
					fprintf(stderr, "soak: replay failed "
						"(see %s)\n",
						bench_in("replay.log"));
				}
			}
			if (pid_rep <= 0 && rate) {
				char *a[] = { (char *)bin, "replay",
					      (char *)bench_in("stream.ndjson"),
					      "--brokers", boot, "--topic",
					      "soak", "--rate", rate_s,
					      "--format", "ndjson", NULL };

				pid_rep = bench_spawn(NULL,
						      bench_in("replay.log"), a);
				replays++;
			}
			if (waitpid(pid_srv, &st, WNOHANG) == pid_srv) {
				pid_srv = -1;
				srv_died = 1;
				fprintf(stderr, "soak: the server died (see "
					"%s)\n", bench_in("serve.log"));
				break;
			}
			/* lag, and how long the applied count stood still
			 * while there was something to apply */
			if (bench_get(port, "/metrics", mtext,
				      sizeof(mtext)) == 200) {
				double now = bench_mono();

				v = bench_metric_in(mtext,
					"triad_kafka_consumer_lag");
				a1 = bench_metric_in(mtext, kacc);
				if (v > w->lag_max)
					w->lag_max = v;
				if (a1 != last_acc || v <= 0) {
					last_acc = a1;
					moved = now;
				} else if (now - moved > w->stall) {
					w->stall = now - moved;
				}
			}
			usleep(1000000);
		}
		if (interrupted || srv_died || pid_wrk > 0)
			break;
		w->secs = bench_mono() - t0;
		if (bench_get(port, "/metrics", mtext, sizeof(mtext)) != 200) {
			fprintf(stderr, "soak: /metrics did not answer\n");
			fail = 1;
			break;
		}
		a1 = bench_metric_in(mtext, kacc);
		w->applied = a0 >= 0 && a1 >= 0 ? a1 - a0 : -1;
		w->lag_end = bench_metric_in(mtext, "triad_kafka_consumer_lag");
		w->edges = bench_metric_in(mtext, "triad_edges");
		w->graph_bytes = bench_metric_in(mtext, "triad_graph_bytes");
		w->rss_kb = proc_kb(pid_srv, "VmRSS");
		w->anon_kb = proc_kb(pid_srv, "RssAnon");
		w->mock_kb = proc_kb(pid_mock, "VmRSS");
		w->state_bytes = file_size(bench_in("state/data.mdb"));
		{
			static char txt[1 << 14];
			FILE *f = fopen(bench_in(out), "r");
			size_t k = f ? fread(txt, 1, sizeof(txt) - 1, f) : 0;

			txt[k] = 0;
			if (f)
				fclose(f);
			bench_parse_wrk(txt, &w->w);
		}
		printf("soak: window %2zu: %5.1f s, %7.1f req/s, p50 %7.2f ms, "
		       "p99 %7.2f ms, %lld errors, %8.0f events/s applied, "
		       "lag %lld, VmRSS %.1f MiB\n", nw + 1, w->secs, w->w.rps,
		       w->w.p50, w->w.p99, w->w.non2xx + w->w.sock_err,
		       (double)w->applied / w->secs, w->lag_end,
		       (double)w->rss_kb / 1024);
		nw++;
	}
	if (interrupted) {
		fprintf(stderr, "soak: interrupted (signal %d)\n",
			(int)interrupted);
		goto out;
	}
	stop(&pid_wrk, 5);
	stop(&pid_rep, 10);
	/* drain: every message produced must be applied exactly once */
	if (!srv_died && !fail) {
		double t0 = bench_mono(), still = t0;
		long long lag = -1, acc = -1, rej = -1, a;

		while (!interrupted && bench_mono() - t0 < DRAIN_MAX &&
		       bench_get(port, "/metrics", mtext, sizeof(mtext)) ==
			       200) {
			lag = bench_metric_in(mtext,
					      "triad_kafka_consumer_lag");
			a = bench_metric_in(mtext, kacc);
			rej = bench_metric_in(mtext, krej);
			if (a != acc)
				still = bench_mono();
			acc = a;
			if (!lag && bench_mono() - still > 2)
				break;
			usleep(500000);
		}
		produced = produced_total(boot, "soak", parts);
		consumed = acc >= 0 && rej >= 0 ? acc + rej : -1;
		drained = !lag;
		drain_s = bench_mono() - t0;
	}
	if (!srv_died)
		srv_exit = stop(&pid_srv, 60);
	stop(&pid_mock, 20);
	if (fail || srv_died || nw < 3) {
		fprintf(stderr, "soak: the run did not complete (%zu windows)"
			"\n", nw);
		fail = 1;
	}

	/* the table */
	printf("\n| window | s | req/s | p50 ms | p99 ms | non-2xx | socket "
	       "errors | Kafka events applied/s | lag end | lag max | stall s | "
	       "edges | graph MiB | VmRSS MiB | RssAnon MiB | mock VmRSS MiB "
	       "| state MiB |\n|---|---|---|---|---|---|---|---|---|---|---|"
	       "---|---|---|---|---|---|\n");
	for (i = 0; i < nw; i++) {
		const struct win *w = &win[i];

		printf("| %zu | %.1f | %.1f | %.2f | %.2f | %lld | %lld | %.0f | "
		       "%lld | %lld | %.0f | %lld | %.1f | %.1f | %.1f | %.1f | "
		       "%.1f |\n",
		       i + 1, w->secs, w->w.rps, w->w.p50, w->w.p99,
		       w->w.non2xx, w->w.sock_err,
		       (double)w->applied / w->secs, w->lag_end, w->lag_max,
		       w->stall, w->edges, mib(w->graph_bytes), (double)w->rss_kb / 1024,
		       (double)w->anon_kb / 1024, (double)w->mock_kb / 1024,
		       mib(w->state_bytes));
	}

	/* the verdict */
	warm = nw / 3 ? nw / 3 : 1;
	printf("\nsoak: %zu windows in %.0f s, the first %zu warm-up; replay "
	       "started %lu times\n", nw, bench_mono() - t_run, warm, replays);
	if (nw >= 3) {
		long long errs = 0, applied = 0;
		double secs = 0, slack, e1[MAXWIN], e2[MAXWIN], l1[MAXWIN],
		       me, ml, lmax = 0;
		size_t r = warm, ne, nl, j;
		const struct win *R = &win[r];
		int ok;

		for (i = 0; i < nw; i++) {
			errs += win[i].w.non2xx + win[i].w.sock_err;
			if (win[i].applied > 0)
				applied += win[i].applied;
			secs += win[i].secs;
		}
		ok = !errs && !replay_fail && !srv_died && srv_exit == 0;
		printf("soak: errors: %lld non-2xx or socket errors, %lu failed "
		       "replays, server %s -> %s\n", errs, replay_fail,
		       srv_died ? "died" : "stayed up",
		       ok ? "PASS" : "FAIL");
		if (!srv_died && srv_exit)
			printf("soak: the server exited %d on SIGTERM (see %s)"
			       "\n", srv_exit, bench_in("serve.log"));
		fail |= !ok;

		/* memory: the later half's median of VmRSS minus graph bytes
		 * against the earlier half's (medians: Kafka prefetch
		 * buffers move RSS up and down with the lag) */
		ne = (nw - r) / 2;
		nl = nw - r - ne;
		for (j = 0; j < ne; j++) {
			e1[j] = (double)win[r + j].rss_kb * 1024 -
				(double)win[r + j].graph_bytes;
			e2[j] = (double)win[r + j].rss_kb * 1024;
		}
		for (j = 0; j < nl; j++)
			l1[j] = (double)win[r + ne + j].rss_kb * 1024 -
				(double)win[r + ne + j].graph_bytes;
		me = ne ? median(e1, ne) : l1[0];
		ml = median(l1, nl);
		slack = ne ? median(e2, ne) * 0.05 : 0;
		if (slack < 16.0 * (1 << 20))
			slack = 16.0 * (1 << 20);
		ok = R->rss_kb > 0 && ml - me <= slack;
		printf("soak: memory: VmRSS %.1f -> %.1f MiB from window %zu to "
		       "%zu, graph %.1f -> %.1f MiB; median VmRSS beyond the "
		       "graph %.1f MiB in windows %zu..%zu, %.1f MiB in windows "
		       "%zu..%zu: growth %.1f MiB (bound %.1f MiB) -> %s\n",
		       (double)R->rss_kb / 1024,
		       (double)win[nw - 1].rss_kb / 1024, r + 1, nw,
		       mib(R->graph_bytes), mib(win[nw - 1].graph_bytes),
		       me / (1 << 20), r + 1, r + ne, ml / (1 << 20),
		       r + ne + 1, nw, (ml - me) / (1 << 20),
		       slack / (1 << 20), ok ? "PASS" : "FAIL");
		fail |= !ok;

		/* latency: later half against earlier half after warm-up */
		for (j = 0; j < ne; j++)
			e1[j] = win[r + j].w.p99;
		for (j = 0; j < nl; j++) {
			l1[j] = win[r + ne + j].w.p99;
			if (l1[j] > lmax)
				lmax = l1[j];
		}
		me = ne ? median(e1, ne) : l1[0];
		ml = median(l1, nl);
		ok = me > 0 && ml <= 1.5 * me && lmax <= 3 * me;
		printf("soak: p99: median %.2f ms in windows %zu..%zu, %.2f ms "
		       "in windows %zu..%zu (bound %.2f), worst later %.2f ms "
		       "(bound %.2f) -> %s\n", me, r + 1, r + ne, ml,
		       r + ne + 1, nw, 1.5 * me, lmax, 3 * me,
		       ok ? "PASS" : "FAIL");
		fail |= !ok;

		/* ingest never stands still for long */
		for (i = 0, lmax = 0; i < nw; i++)
			if (win[i].stall > lmax)
				lmax = win[i].stall;
		ok = lmax <= STALL_MAX;
		printf("soak: ingest stalls: longest %.0f s with messages "
		       "waiting and none applied (bound %d s) -> %s\n", lmax,
		       STALL_MAX, ok ? "PASS" : "FAIL");
		fail |= !ok;

		/* nothing lost, nothing doubled */
		ok = drained && produced >= 0 && consumed == produced;
		printf("soak: exactly once: %lld messages produced, %lld "
		       "consumed (applied + rejected) after a drain of %.0f s "
		       "(%s) -> %s\n", produced, consumed, drain_s,
		       drained ? "lag 0" : "lag not 0",
		       ok ? "PASS" : "FAIL");
		if (!ok && consumed >= 0 && produced > consumed)
			printf("soak: %lld messages missing: the mock cluster "
			       "keeps only 5 MiB per partition, so a consumer "
			       "further behind than that loses messages (lag "
			       "max above); more SOAK_PARTITIONS or a lower "
			       "SOAK_RATE\n", produced - consumed);
		fail |= !ok;

		/* capacity, reported */
		printf("soak: ingest: %.0f Kafka events applied/s over the run "
		       "(replay --rate %lu; target 100000)%s; lag at the end "
		       "%lld messages%s\n", secs > 0 ? (double)applied / secs
						      : 0.0, rate,
		       (double)applied / secs < 100000
			       ? " - WARNING: below the 100k/s target"
			       : "",
		       win[nw - 1].lag_end,
		       win[nw - 1].lag_end > (long long)rate * 10
			       ? " - WARNING: the server does not keep up"
			       : "");
	}
	printf("soak: %s (wall %.0f s)\n", fail ? "FAIL" : "PASS",
	       bench_mono() - t_start);
	rc = fail;
out:
	free(ev);
	free(pairs);
	kill_all();
	clean_dir(rc != 0 && !interrupted);
	if (rc && !interrupted)
		fprintf(stderr, "soak: logs kept in %s\n", bench_dir());
	return interrupted ? 130 : rc;
}
