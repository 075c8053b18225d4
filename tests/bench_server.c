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
 * measures queries without ingest.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "graph.h"
#include "mem.h"
#include "store.h"
#include "synth.h"

static char dir[128];
static const char *bin;

static const char *p_(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long envnum(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 10) : dflt;
}

static unsigned free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static pid_t spawn(const char *out, char **argv)
{
	pid_t pid = fork();

	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out) {
			int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			if (fd >= 0)
				dup2(fd, 1);
		}
		{
			int fd = open(p_("stderr.log"),
				      O_WRONLY | O_CREAT | O_APPEND, 0644);

			if (fd >= 0)
				dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Run a shell command and capture its first output line matching key. */
static int run_capture(const char *cmd, char *out, size_t n)
{
	FILE *f = popen(cmd, "r");
	size_t len;

	if (!f)
		return -1;
	len = fread(out, 1, n - 1, f);
	out[len] = 0;
	return pclose(f);
}

static long long stat_of(unsigned port, const char *key)
{
	char cmd[256], out[4096], *p;
	char pat[64];

	snprintf(cmd, sizeof(cmd), "curl -s http://127.0.0.1:%u/stats", port);
	if (run_capture(cmd, out, sizeof(out)))
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(out, pat);
	return p ? atoll(p + strlen(pat)) : -1;
}

static int wait_healthy(unsigned port, double secs)
{
	char cmd[256], out[64];
	double end = mono() + secs;

	snprintf(cmd, sizeof(cmd),
		 "curl -s -o /dev/null -w '%%{http_code}' "
		 "http://127.0.0.1:%u/healthz", port);
	while (mono() < end) {
		if (!run_capture(cmd, out, sizeof(out)) && !strcmp(out, "200"))
			return 0;
		usleep(100000);
	}
	return -1;
}

/* wrk's "Requests/sec" and the 50% / 99% latency lines, in ms. */
static void parse_wrk(const char *txt, double *rps, double *p50, double *p99)
{
	const char *p;

	*rps = *p50 = *p99 = -1;
	p = strstr(txt, "Requests/sec:");
	if (p)
		*rps = atof(p + 13);
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
			*p50 = v;
		else if (q == 99)
			*p99 = v;
	}
}

int main(void)
{
	struct synth_opts so = { 0 }, so2;
	struct graph_event *ev = NULL, *ev2 = NULL;
	struct graph *g;
	struct err e = { "" };
	size_t n, n2, i;
	uint64_t seed = 7;
	unsigned long members = envnum("BENCH_MEMBERS", 200000),
		      secs = envnum("BENCH_SECS", 10),
		      rate = envnum("BENCH_RATE", 120000),
		      conns = envnum("BENCH_CONNS", 32),
		      threads = envnum("BENCH_THREADS", 2);
	unsigned port = free_port();
	char boot[256] = "", listen[64], rate_s[32], thr_s[16], cmd[1024];
	FILE *f;
	pid_t mock, srv;
	int d;
	double t0;

	bin = getenv("TRIAD_BIN");
	if (!bin) {
		fprintf(stderr, "bench_server: TRIAD_BIN not set\n");
		return 1;
	}
	if (system("command -v wrk >/dev/null")) {
		fprintf(stderr, "bench_server: wrk not installed\n");
		return 1;
	}
	strcpy(dir, "/tmp/bench_server.XXXXXX");
	if (!mkdtemp(dir))
		return 1;

	/* the served graph */
	so.members = members;
	so.m = 6;
	so.triad_p = 0.5;
	so.t0 = 1600000000u;
	so.span = 300u * 86400u;
	so.seed = 42;
	n = synth_count(&so);
	ev = mem_alloc(n, sizeof(*ev));
	if (!ev || synth_generate(&so, ev) != n)
		return 1;
	g = graph_new(0);
	t0 = mono();
	if (!g || graph_build(g, ev, n, 0, NULL, &e) ||
	    store_snapshot_write(p_("snap"), g, &e)) {
		fprintf(stderr, "bench_server: %s\n", e.msg);
		return 1;
	}
	{
		struct graph_stats st;

		graph_stats(g, &st);
		printf("bench_server: graph %llu members, %llu edges "
		       "(built + snapshot in %.1f s)\n",
		       (unsigned long long)st.members,
		       (unsigned long long)st.edges, mono() - t0);
	}
	graph_free(g);

	/* member files: uniform and degree-weighted */
	f = fopen(p_("uniform.txt"), "w");
	for (i = 0; f && i < 20000; i++)
		fprintf(f, "%llu\n",
			(unsigned long long)(synth_rand(&seed) % members + 1));
	if (f)
		fclose(f);
	f = fopen(p_("weighted.txt"), "w");
	for (i = 0; f && i < 20000; i++) {
		const struct graph_event *x = &ev[synth_rand(&seed) % n];

		fprintf(f, "%llu\n", (unsigned long long)(synth_rand(&seed) & 1
							    ? x->src : x->dst));
	}
	if (f)
		fclose(f);

	/* the ingest stream: new edges among the same members, later ts */
	so2 = so;
	so2.seed = 43;
	so2.t0 = so.t0 + so.span;
	n2 = synth_count(&so2);
	ev2 = mem_alloc(n2, sizeof(*ev2));
	if (!ev2 || synth_generate(&so2, ev2) != n2)
		return 1;
	f = fopen(p_("stream.txt"), "w");
	for (i = 0; f && i < n2; i++)
		fprintf(f, "%llu %llu %u\n", (unsigned long long)ev2[i].src,
			(unsigned long long)ev2[i].dst, ev2[i].ts);
	if (f)
		fclose(f);
	free(ev2);
	free(ev);

	/* the Lua script: one member file per run */
	for (d = 0; d < 2; d++) {
		f = fopen(p_(d ? "weighted.lua" : "uniform.lua"), "w");
		if (!f)
			return 1;
		fprintf(f,
			"local ids = {}\n"
			"for l in io.lines(\"%s\") do ids[#ids + 1] = l end\n"
			"math.randomseed(os.time() + math.floor(os.clock() * 1e6))\n"
			"request = function()\n"
			"  return wrk.format(\"GET\", \"/recommend?member=\" .. "
			"ids[math.random(#ids)] .. \"&k=10\")\n"
			"end\n", p_(d ? "weighted.txt" : "uniform.txt"));
		fclose(f);
	}

	{
		char *margs[] = { (char *)bin, "kafka-mock", "--partitions",
				  "4", "--topic", "bench", NULL };

		mock = spawn(p_("mock.out"), margs);
	}
	for (i = 0; i < 100 && !boot[0]; i++) {
		usleep(100000);
		f = fopen(p_("mock.out"), "r");
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
				  (char *)p_("snap"), "--listen", listen,
				  "--threads", thr_s, "--brokers", boot,
				  "--topic", "bench", NULL };

		srv = spawn(NULL, sargs);
	}
	if (!boot[0] || wait_healthy(port, 120)) {
		fprintf(stderr, "bench_server: service did not start (see %s)\n",
			p_("stderr.log"));
		kill(srv, SIGKILL);
		kill(mock, SIGKILL);
		return 1;
	}
	snprintf(rate_s, sizeof(rate_s), "%lu", rate);
	for (d = 0; d < 2; d++) {
		char *rargs[] = { (char *)bin, "replay", (char *)p_("stream.txt"),
				  "--brokers", boot, "--topic", "bench",
				  "--rate", rate_s, "--quiet", NULL };
		char out[8192];
		long long a0, a1;
		double rps, p50, p99, t1, t2;
		pid_t rep;

		a0 = stat_of(port, "events_applied");
		t1 = mono();
		rep = rate ? spawn(NULL, rargs) : 0;
		usleep(500000); /* let the stream get going */
		snprintf(cmd, sizeof(cmd),
			 "wrk -t1 -c%lu -d%lus --latency -s %s "
			 "http://127.0.0.1:%u 2>&1", conns, secs,
			 p_(d ? "weighted.lua" : "uniform.lua"), port);
		run_capture(cmd, out, sizeof(out));
		t2 = mono();
		a1 = stat_of(port, "events_applied");
		if (rep) {
			kill(rep, SIGTERM);
			waitpid(rep, NULL, 0);
		}
		parse_wrk(out, &rps, &p50, &p99);
		printf("bench_server: %s members, %lu conns, %lu s: "
		       "%.0f req/s, p50 %.2f ms, p99 %.2f ms; kafka ingest "
		       "applied %.0f events/s (replay --rate %lu)\n",
		       d ? "degree-weighted" : "uniform", conns, secs, rps,
		       p50, p99, (double)(a1 - a0) / (t2 - t1), rate);
		if (getenv("BENCH_VERBOSE"))
			fputs(out, stdout);
	}
	printf("bench_server: kafka lag at the end %lld, edges %lld\n",
	       stat_of(port, "kafka_lag"), stat_of(port, "edges"));
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	kill(mock, SIGTERM);
	waitpid(mock, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		return 1;
	return 0;
}
