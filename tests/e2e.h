/*
 * e2e.h - helpers of the end-to-end suites (test_server.c, test_kafka.c):
 * spawn $TRIAD_BIN, talk HTTP over plain sockets on a free 127.0.0.1 port,
 * parse answers with json-c. Every wait is bounded in count and time; every
 * child dies with the test process (PR_SET_PDEATHSIG).
 *
 * Header-only: functions are static inline so a suite that does not use
 * one gets no warning.
 *
 * Under valgrind (`make valgrind`): when TRIAD_VALGRIND is set and not
 * empty, it is a command prefix (words separated by spaces, e.g.
 * "valgrind --leak-check=full --error-exitcode=99") that spawn() puts in
 * front of $TRIAD_BIN, so a leak or memory error turns the server's exit
 * status into valgrind's error exit code, which the suites already check.
 * TRIAD_TIME_SCALE (a number, default 1) multiplies every wait of these
 * helpers, since a program under valgrind runs 10-50 times slower.
 */
#ifndef TRIAD_TEST_E2E_H
#define TRIAD_TEST_E2E_H

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "port.h"

/* ---- helpers ----------------------------------------------------------- */

static char tmpdir[128];
static const char *triad_bin;

static inline void setup(void)
{
	triad_bin = getenv("TRIAD_BIN");
	ck_assert_msg(triad_bin != NULL, "TRIAD_BIN is not set (run make test)");
	strcpy(tmpdir, "/tmp/test_server.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	signal(SIGPIPE, SIG_IGN);
}

static inline void teardown(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

static inline const char *tpath(const char *name)
{
	static char buf[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

/* TRIAD_TIME_SCALE, or 1 when unset or not a number >= 1. */
static inline double e2e_scale(void)
{
	const char *v = getenv("TRIAD_TIME_SCALE");
	double x = v ? atof(v) : 1;

	return x >= 1 ? x : 1;
}

static inline double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A port nobody listens on right now (port.h). */
static inline unsigned free_port(void)
{
	unsigned port = port_unclaimed();

	ck_assert_uint_ne(port, 0);
	return port;
}

static inline void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Start triad with argv (NULL-terminated, without the binary). The child
 * dies with the test process. stdout goes to `out` when not NULL. */
static inline pid_t spawn(const char *out, char *const *args)
{
	char *argv[64], vg[1024], *w, *sp;
	const char *pre = getenv("TRIAD_VALGRIND");
	pid_t pid;
	int i, j = 0;

	if (pre && *pre) {
		/* the prefix words, then the binary and its arguments */
		snprintf(vg, sizeof(vg), "%s", pre);
		for (w = strtok_r(vg, " ", &sp); w && j < 30;
		     w = strtok_r(NULL, " ", &sp))
			argv[j++] = w;
	}
	argv[j] = (char *)triad_bin;
	for (i = 0; args[i] && i < 30; i++)
		argv[j + i + 1] = args[i];
	argv[j + i + 1] = NULL;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		const char *fs = getenv("E2E_FSIZE_BYTES");
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fs) {
			/* no file may grow past this (RLIMIT_FSIZE; SIGXFSZ
			 * ignored, so such a write fails with EFBIG): a file
			 * system that refuses to grow the state, as a full
			 * disk does */
			struct rlimit rl;

			rl.rlim_cur = rl.rlim_max = strtoull(fs, NULL, 10);
			signal(SIGXFSZ, SIG_IGN);
			setrlimit(RLIMIT_FSIZE, &rl);
		}
		if (out) {
			fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd >= 0)
				dup2(fd, 1);
		}
		fd = open(tpath("stderr.log"), O_WRONLY | O_CREAT | O_APPEND,
			  0644);
		if (fd >= 0)
			dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Wait for pid to exit within secs; its exit status, or -1 on timeout. */
static inline int wait_exit(pid_t pid, double secs)
{
	double end = mono() + secs * e2e_scale();
	int st;

	while (mono() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nap_ms(20);
	}
	return -1;
}

static inline void kill9(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

struct resp {
	int status;
	char *body;
	size_t len;
	char *raw;
};

static inline void resp_free(struct resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

static inline int connect_port(unsigned port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static inline int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Read a whole answer until the server closes (10 s at most). */
static inline int read_resp(int fd, struct resp *r)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *sep;
	double end = mono() + 10 * e2e_scale();

	memset(r, 0, sizeof(*r));
	if (!buf)
		return -1;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t k;

		if (mono() > end || poll(&pfd, 1, 200) < 0) {
			free(buf);
			return -1;
		}
		if (!pfd.revents)
			continue;
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -1;
			}
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
	if (len < 12 || strncmp(buf, "HTTP/1.", 7)) {
		free(buf);
		return -1;
	}
	r->raw = buf;
	r->status = atoi(buf + 9);
	sep = strstr(buf, "\r\n\r\n");
	r->body = sep ? sep + 4 : buf + len;
	r->len = (size_t)(buf + len - r->body);
	return 0;
}

/* One request on a fresh connection. 0 with r filled, -1 on failure. */
static inline int req(unsigned port, const char *method, const char *path,
	       const char *body, size_t blen, struct resp *r)
{
	char head[1024];
	int fd = connect_port(port), n, rc;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return -1;
	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
		     method, path, body ? blen : 0);
	if (send_all(fd, head, (size_t)n) ||
	    (body && blen && send_all(fd, body, blen))) {
		close(fd);
		return -1;
	}
	rc = read_resp(fd, r);
	close(fd);
	return rc;
}

static inline struct resp must(unsigned port, const char *method,
			       const char *path,
			const char *body)
{
	struct resp r;

	ck_assert_msg(req(port, method, path, body, body ? strlen(body) : 0,
			  &r) == 0, "%s %s: no answer", method, path);
	return r;
}

/* 1 when the server's stderr.log has a line holding both a and b. */
static inline int log_has(const char *a, const char *b)
{
	char line[2048];
	FILE *f = fopen(tpath("stderr.log"), "r");
	int found = 0;

	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, a) && strstr(line, b);
	if (f)
		fclose(f);
	return found;
}

/* Start serve with args, wait until /healthz says ok (30 s at most). */
static inline pid_t serve_start(unsigned port, char *const *extra)
{
	char *args[32], listen[64];
	pid_t pid;
	double end;
	int i = 0, j, st;

	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	args[i++] = "serve";
	args[i++] = "--listen";
	args[i++] = listen;
	for (j = 0; extra && extra[j] && strcmp(extra[j], "--threads"); j++)
		;
	if (!extra || !extra[j]) { /* two unless the test says */
		args[i++] = "--threads";
		args[i++] = "2";
	}
	for (j = 0; extra && extra[j] && i < 30; j++)
		args[i++] = extra[j];
	args[i] = NULL;
	pid = spawn(NULL, args);
	end = mono() + 30 * e2e_scale();
	while (mono() < end) {
		struct resp r;

		if (!req(port, "GET", "/healthz", NULL, 0, &r)) {
			int ok = r.status == 200;

			resp_free(&r);
			if (ok)
				return pid;
		}
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0,
			      "server exited during start-up");
		nap_ms(30);
	}
	kill9(pid);
	ck_abort_msg("server did not become healthy");
	return -1;
}

static inline json_object *parse_json(const struct resp *r)
{
	json_object *o = json_tokener_parse(r->body);

	ck_assert_msg(o != NULL, "not JSON: %.200s", r->body);
	return o;
}

static inline int64_t jint(json_object *o, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\"", key);
	ck_assert_msg(json_object_is_type(v, json_type_int), "\"%s\" not int",
		      key);
	return json_object_get_int64(v);
}

static inline int64_t stat_of(unsigned port, const char *key)
{
	struct resp r = must(port, "GET", "/stats", NULL);
	json_object *o;
	int64_t v;

	ck_assert_int_eq(r.status, 200);
	o = parse_json(&r);
	v = jint(o, key);
	json_object_put(o);
	resp_free(&r);
	return v;
}

/* The neighbour list of member m, or -1 when unknown. */
/* Start `triad kafka-mock --partitions parts --topic topic`; its bootstrap
 * address (first stdout line) into boot. Aborts the test after 20 s. */
static inline pid_t mock_start(const char *topic, unsigned parts, char *boot,
			       size_t n)
{
	char ps[16];
	char *args[] = { "kafka-mock", "--partitions", ps, "--topic",
			 (char *)topic, NULL };
	double end = mono() + 20 * e2e_scale();
	pid_t pid;

	snprintf(ps, sizeof(ps), "%u", parts);
	/* an earlier mock's address must not be read before the child
	 * truncates the file */
	unlink(tpath("mock.out"));
	pid = spawn(tpath("mock.out"), args);
	while (mono() < end) {
		FILE *f = fopen(tpath("mock.out"), "r");

		if (f) {
			if (fgets(boot, (int)n, f) && strchr(boot, '\n')) {
				*strchr(boot, '\n') = 0;
				fclose(f);
				return pid;
			}
			fclose(f);
		}
		nap_ms(30);
	}
	kill9(pid);
	ck_abort_msg("kafka-mock printed no address");
	return -1;
}

/* Wait until GET /stats events_applied reaches want (secs at most);
 * returns the last value read. */
static inline int64_t wait_applied(unsigned port, int64_t want, double secs)
{
	double end = mono() + secs * e2e_scale();
	int64_t v = 0;

	while (mono() < end) {
		v = stat_of(port, "events_applied");
		if (v >= want)
			break;
		nap_ms(50);
	}
	return v;
}

/* Wait until the server's trend table (GET /stats "trend") was built
 * after at least `want` events were applied (secs at most); returns the
 * last count read. Answers name the trend members as candidates, so two
 * servers agree once both tables cover the same events. */
static inline int64_t wait_trend(unsigned port, int64_t want, double secs)
{
	double end = mono() + secs * e2e_scale();
	int64_t v = -1;

	while (mono() < end) {
		struct resp r = must(port, "GET", "/stats", NULL);
		json_object *o = parse_json(&r), *t;

		ck_assert_msg(json_object_object_get_ex(o, "trend", &t), "no \"trend\"");
		v = jint(t, "events_applied");
		json_object_put(o);
		resp_free(&r);
		if (v >= want)
			break;
		nap_ms(50);
	}
	return v;
}

static inline int neighbors_of(unsigned port, uint64_t m, uint64_t *out,
			       int max)
{
	char path[64];
	struct resp r;
	json_object *o, *a;
	int n, i;

	snprintf(path, sizeof(path), "/members/%llu", (unsigned long long)m);
	r = must(port, "GET", path, NULL);
	if (r.status == 404) {
		resp_free(&r);
		return -1;
	}
	ck_assert_int_eq(r.status, 200);
	o = parse_json(&r);
	ck_assert(json_object_object_get_ex(o, "neighbors", &a));
	n = (int)json_object_array_length(a);
	ck_assert_int_eq(n, jint(o, "degree") < 1000 ? jint(o, "degree") : 1000);
	for (i = 0; i < n && i < max; i++)
		out[i] = (uint64_t)json_object_get_int64(
			json_object_array_get_idx(a, (size_t)i));
	json_object_put(o);
	resp_free(&r);
	return n;
}

/* Recommended member ids for m (k of them at most); -status on error. */
static inline int recommend(unsigned port, uint64_t m, unsigned k,
			    uint64_t *out)
{
	char path[96];
	struct resp r;
	json_object *o, *a;
	int n, i;

	snprintf(path, sizeof(path), "/recommend?member=%llu&k=%u",
		 (unsigned long long)m, k);
	r = must(port, "GET", path, NULL);
	if (r.status != 200) {
		n = -r.status;
		resp_free(&r);
		return n;
	}
	o = parse_json(&r);
	ck_assert_int_eq(jint(o, "member"), (int64_t)m);
	ck_assert_int_eq(jint(o, "k"), k);
	ck_assert(json_object_object_get_ex(o, "model", &a));
	ck_assert(json_object_is_type(a, json_type_string));
	ck_assert(json_object_object_get_ex(o, "degraded", &a));
	ck_assert(json_object_is_type(a, json_type_boolean));
	ck_assert(json_object_object_get_ex(o, "recommendations", &a));
	n = (int)json_object_array_length(a);
	ck_assert_int_le(n, (int)k);
	for (i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(a, (size_t)i);

		out[i] = (uint64_t)jint(it, "member");
		ck_assert_int_ge(jint(it, "mutual"), 0);
	}
	json_object_put(o);
	resp_free(&r);
	return n;
}

static inline int contains(const uint64_t *a, int n, uint64_t x)
{
	int i;

	for (i = 0; i < n; i++)
		if (a[i] == x)
			return 1;
	return 0;
}

/*
 * The small graph of most tests:
 *   1-2 1-3 2-4 3-4 2-5 4-6 5-6 7-8
 * Friends of friends of 1: 4 (via 2 and 3), 5 (via 2). Timestamps are
 * further apart than the graph's ts resolution so "newest first" is
 * well defined.
 */
static const char *small_graph =
	"# test graph\n1 2 1700000000\n1 3 1700010000\n2 4 1700020000\n"
	"3 4 1700030000\n2 5 1700040000\n4 6 1700050000\n5 6 1700060000\n"
	"7 8 1700070000\n";


/* The value of one series of GET /metrics, or -1 when it is absent. Only
 * a sample line counts: the name at the start of a line followed by a
 * space (not "# HELP triad_x ...", not a longer name or labelled series). */
static inline int64_t metric_of(unsigned port, const char *series)
{
	struct resp r = must(port, "GET", "/metrics", NULL);
	size_t n = strlen(series);
	const char *p;
	int64_t v = -1;

	ck_assert_int_eq(r.status, 200);
	for (p = strstr(r.body, series); p; p = strstr(p + 1, series))
		if ((p == r.body || p[-1] == '\n') && p[n] == ' ') {
			v = atoll(p + n + 1);
			break;
		}
	resp_free(&r);
	return v;
}

#endif
