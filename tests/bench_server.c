/*
 * bench_server.c - GET /recommend under load while Kafka ingest runs.
 *
 * Builds a synthetic Holme-Kim graph (tests/synth.h) of about 1.2M edges,
 * writes it as a snapshot, starts `triad kafka-mock` and `triad serve
 * --snapshot ... --brokers ...`, then for each member distribution
 * (uniform over members, and degree-weighted: an endpoint of a random
 * edge) runs wrk against /recommend with a Lua script drawing members from
 * a file, while `triad replay` streams a second synthetic event file into
 * Kafka at --rate. Prints wrk's req/s, p50 and p99 and the ingest rate the
 * server actually applied (events_applied before/after, from /stats).
 *
 * Needs $TRIAD_BIN (make bench sets it) and wrk on PATH. Environment knobs:
 * BENCH_MEMBERS (default 200000), BENCH_SECS (10), BENCH_RATE (120000),
 * BENCH_CONNS (32), BENCH_THREADS (server HTTP threads, 2). BENCH_RATE=0
 * measures queries without ingest. BENCH_STREAM_KIND: "new" (default: a
 * second Holme-Kim stream of new edges among the same members, which
 * about doubles the graph during the first run) or "repeat" (the served
 * graph's own pairs again, shuffled, stamped after it: contacts meeting
 * again, as most events of a message network are; the graph keeps its
 * size and every list it touches gets a delta).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"

static const char *bin;

/* CPU seconds (user + system) where the run's cycles went: the server's
 * threads by their names (triad-http*, triad-ingest and librdkafka's
 * rdk:*, triad-maintain, the rest), the mock broker, the replay, and the
 * whole machine (/proc/stat) for everything else (wrk above all). */
enum { CPU_HTTP, CPU_INGEST, CPU_MAINTAIN, CPU_SERVER_REST, CPU_MOCK,
       CPU_REPLAY, CPU_MACHINE, CPU_N };

/* utime + stime of a /proc stat line, in seconds; comm into name. */
static double stat_secs(const char *path, char *name, size_t len)
{
	char line[1024], *l, *r;
	unsigned long long ut = 0, st = 0;
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return 0;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = 0;
	l = strchr(line, '(');
	r = strrchr(line, ')');
	if (!l || !r || r < l)
		return 0;
	if (name) {
		n = (size_t)(r - l - 1) < len - 1 ? (size_t)(r - l - 1) : len - 1;
		memcpy(name, l + 1, n);
		name[n] = 0;
	}
	/* after ") ": state, then 10 fields, then utime and stime */
	if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void cpu_sample(pid_t srv, pid_t mock, pid_t rep, double *t)
{
	char path[128], name[64];
	unsigned long long v[8] = { 0 };
	struct dirent *d;
	DIR *dir;
	FILE *f;

	memset(t, 0, CPU_N * sizeof(*t));
	snprintf(path, sizeof(path), "/proc/%d/task", (int)srv);
	if ((dir = opendir(path))) {
		while ((d = readdir(dir))) {
			double s;

			if (d->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.20s/stat",
				 (int)srv, d->d_name);
			s = stat_secs(path, name, sizeof(name));
			if (!strncmp(name, "triad-http", 10))
				t[CPU_HTTP] += s;
			else if (!strcmp(name, "triad-ingest") || !strncmp(name, "rdk:", 4))
				t[CPU_INGEST] += s;
			else if (!strcmp(name, "triad-maintain"))
				t[CPU_MAINTAIN] += s;
			else
				t[CPU_SERVER_REST] += s;
		}
		closedir(dir);
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)mock);
	t[CPU_MOCK] = stat_secs(path, NULL, 0);
	if (rep) {
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)rep);
		t[CPU_REPLAY] = stat_secs(path, NULL, 0);
	}
	/* cpu  user nice system idle iowait irq softirq steal */
	if ((f = fopen("/proc/stat", "r"))) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
			   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
			t[CPU_MACHINE] = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) /
					 (double)sysconf(_SC_CLK_TCK);
		fclose(f);
	}
}

int main(void)
{
	struct synth_opts so, so2;
	struct graph_event *ev = NULL, *ev2 = NULL;
	size_t n, n2, i;
	uint64_t seed = 7;
	unsigned long members = bench_envnum("BENCH_MEMBERS", 200000),
		      secs = bench_envnum("BENCH_SECS", 10),
		      rate = bench_envnum("BENCH_RATE", 120000),
		      conns = bench_envnum("BENCH_CONNS", 32),
		      threads = bench_envnum("BENCH_THREADS", 2);
	unsigned port = port_unclaimed();
	char boot[256] = "", listen[64], rate_s[32], thr_s[16], cmd[1024];
	const char *kind;
	FILE *f;
	pid_t mock, srv;
	int d;

	bin = getenv("TRIAD_BIN");
	if (!bin) {
		fprintf(stderr, "bench_server: TRIAD_BIN not set\n");
		return 1;
	}
	if (system("command -v wrk >/dev/null")) {
		fprintf(stderr, "bench_server: wrk not installed\n");
		return 1;
	}
	if (bench_mkdtemp("bench_server"))
		return 1;

	/* the served graph */
	so = bench_served_opts(members);
	if (bench_served_snapshot("bench_server", &so, bench_in("snap"), &ev, &n))
		return 1;

	/* member files: uniform and degree-weighted */
	if (bench_member_file(bench_in("uniform.txt"), 0, members, ev, n, 20000,
			      &seed) ||
	    bench_member_file(bench_in("weighted.txt"), 1, members, ev, n, 20000,
			      &seed))
		return 1;

	/* the ingest stream: new edges among the same members, later ts;
	 * or the same pairs again */
	so2 = bench_stream_opts(&so);
	n2 = synth_count(&so2);
	ev2 = mem_alloc(n2, sizeof(*ev2));
	if (!ev2 || synth_generate(&so2, ev2) != n2)
		return 1;
	kind = getenv("BENCH_STREAM_KIND");
	if (kind && !strcmp(kind, "repeat")) {
		n2 = bench_repeat_stream(ev, n, n2, so2.t0, &seed, ev2);
	} else if (kind && strcmp(kind, "new")) {
		fprintf(stderr, "bench_server: BENCH_STREAM_KIND \"%s\" is not new or repeat\n", kind);
		return 1;
	}
	f = fopen(bench_in("stream.txt"), "w");
	for (i = 0; f && i < n2; i++)
		fprintf(f, "%llu %llu %u\n", (unsigned long long)ev2[i].src,
			(unsigned long long)ev2[i].dst, ev2[i].ts);
	if (f)
		fclose(f);
	free(ev2);
	free(ev);

	/* the Lua script: one member file per run */
	for (d = 0; d < 2; d++) {
		f = fopen(bench_in(d ? "weighted.lua" : "uniform.lua"), "w");
		if (!f)
			return 1;
		/* each request formatted once, at start: wrk shares the two
		 * cores with the server */
		fprintf(f,
			"local reqs = {}\n"
			"for l in io.lines(\"%s\") do\n"
			"  reqs[#reqs + 1] = wrk.format(\"GET\", \"/recommend?member=\" .. l .. \"&k=10\")\n"
			"end\n"
			"math.randomseed(os.time() + math.floor(os.clock() * 1e6))\n"
			"request = function()\n"
			"  return reqs[math.random(#reqs)]\n"
			"end\n", bench_in(d ? "weighted.txt" : "uniform.txt"));
		fclose(f);
	}

	{
		char *margs[] = { (char *)bin, "kafka-mock", "--partitions",
				  "4", "--topic", "bench", NULL };

		mock = bench_spawn(bench_in("mock.out"), bench_in("stderr.log"), margs);
	}
	for (i = 0; i < 100 && !boot[0]; i++) {
		usleep(100000);
		f = fopen(bench_in("mock.out"), "r");
		if (f) {
			if (fgets(boot, sizeof(boot), f) && strchr(boot, '\n'))
				*strchr(boot, '\n') = 0;
			else
				boot[0] = 0;
			fclose(f);
		}
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(thr_s, sizeof(thr_s), "%lu", threads);
	{
		char *sargs[] = { (char *)bin, "serve", "--snapshot",
				  (char *)bench_in("snap"), "--listen", listen,
				  "--threads", thr_s, "--brokers", boot,
				  "--topic", "bench", NULL };

		srv = bench_spawn(NULL, bench_in("stderr.log"), sargs);
	}
	if (!boot[0] || bench_wait_healthy(port, 120)) {
		fprintf(stderr, "bench_server: service did not start (see %s)\n",
			bench_in("stderr.log"));
		kill(srv, SIGKILL);
		kill(mock, SIGKILL);
		return 1;
	}
	snprintf(rate_s, sizeof(rate_s), "%lu", rate);
	for (d = 0; d < 2; d++) {
		char *rargs[] = { (char *)bin, "replay", (char *)bench_in("stream.txt"),
				  "--brokers", boot, "--topic", "bench",
				  "--rate", rate_s, "--quiet", NULL };
		char out[8192];
		long long a0, a1;
		struct bench_wrk w;
		double t1, t2, c0[CPU_N], c1[CPU_N], c[CPU_N], rest;
		pid_t rep;
		int k;

		a0 = bench_stat(port, "events_applied");
		t1 = bench_mono();
		rep = rate ? bench_spawn(NULL, bench_in("stderr.log"), rargs) : 0;
		usleep(500000); /* let the stream get going */
		cpu_sample(srv, mock, rep, c0);
		snprintf(cmd, sizeof(cmd),
			 "wrk -t1 -c%lu -d%lus --latency -s %s "
			 "http://127.0.0.1:%u 2>&1", conns, secs,
			 bench_in(d ? "weighted.lua" : "uniform.lua"), port);
		bench_capture(cmd, out, sizeof(out));
		cpu_sample(srv, mock, rep, c1);
		t2 = bench_mono();
		a1 = bench_stat(port, "events_applied");
		if (rep) {
			kill(rep, SIGTERM);
			waitpid(rep, NULL, 0);
		}
		bench_parse_wrk(out, &w);
		printf("bench_server: %s members, %lu conns, %lu s: "
		       "%.0f req/s, p50 %.2f ms, p99 %.2f ms; kafka ingest "
		       "applied %.0f events/s (replay --rate %lu)\n",
		       d ? "degree-weighted" : "uniform", conns, secs, w.rps,
		       w.p50, w.p99, (double)(a1 - a0) / (t2 - t1), rate);
		/* the share of one core each took while wrk ran */
		for (k = 0; k < CPU_N; k++)
			c[k] = 100 * (c1[k] - c0[k]) / (double)secs;
		for (k = 0, rest = c[CPU_MACHINE]; k < CPU_MACHINE; k++)
			rest -= c[k];
		printf("bench_server:   cpu, %% of one core: server %.0f (http workers "
		       "%.0f, kafka consumer %.0f, maintenance %.0f, other %.0f), "
		       "kafka-mock %.0f, replay %.0f, the rest (wrk...) %.0f; "
		       "machine %.0f of %ld\n",
		       c[CPU_HTTP] + c[CPU_INGEST] + c[CPU_MAINTAIN] + c[CPU_SERVER_REST],
		       c[CPU_HTTP], c[CPU_INGEST], c[CPU_MAINTAIN], c[CPU_SERVER_REST],
		       c[CPU_MOCK], c[CPU_REPLAY], rest, c[CPU_MACHINE],
		       100 * sysconf(_SC_NPROCESSORS_ONLN));
		if (getenv("BENCH_VERBOSE"))
			fputs(out, stdout);
	}
	printf("bench_server: kafka lag at the end %lld, edges %lld\n",
	       bench_stat(port, "kafka_lag"), bench_stat(port, "edges"));
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	kill(mock, SIGTERM);
	waitpid(mock, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bench_dir());
	if (system(cmd))
		return 1;
	return 0;
}
