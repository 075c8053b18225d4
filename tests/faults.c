/*
 * faults.c - fault injection against `triad serve` (run by `make faults`).
 *
 * Trials (FAULT_TRIALS, default 20; FAULT_SEED, default the clock, printed):
 * a one-partition `triad kafka-mock`, `triad serve --state` fed at once by
 * an in-process Kafka producer (member ids 1..KIDS) and by sequential
 * POST /edges (member ids HBASE+1..HBASE+HIDS), SIGKILL at a seeded
 * random moment. Then, with the server dead:
 *   1. the stored Kafka offset is read from the state directory;
 *   2. the server restarts on the state with an unreachable broker, so it
 *      serves checkpoint + log only: its edge set must equal the first
 *      `offset` Kafka events plus every POST answered 200, plus or minus
 *      the one POST that was in flight at the kill (no answer: either
 *      applied whole or not at all - one log transaction);
 *   3. it restarts with the real broker: it must apply exactly the
 *      remaining produced - offset events (none twice), and the edge set
 *      must equal every produced event plus the same POSTs.
 * The id spaces are small and the streams add and remove, so a lost,
 * doubled or reordered event changes the edge set.
 *
 * Single checks: a broker outage (the mock's broker set down and up on
 * the same address with SIGUSR1/SIGUSR2: librdkafka's mock cluster cannot
 * be restarted on a fixed port), a damaged state directory (bytes flipped,
 * truncated) refused with exit 1, and a full LMDB map
 * (TRIAD_STATE_MAP_BYTES) refused without losing anything acknowledged.
 *
 * Every trial and check is a Check test in its own process; the last line
 * is "N passed, N failed". Every wait is bounded in count and time.
 */
#include "e2e.h"

#include <pthread.h>

#include "kafka.h"
#include "store.h"
#include "testutil.h"

enum {
	KIDS = 120,       /* Kafka stream member ids 1..KIDS */
	HBASE = 100000,   /* HTTP stream member ids HBASE+1..HBASE+HIDS */
	HIDS = 60,
	NK = 6000,        /* Kafka events per trial */
	KCHUNK = 150,     /* produced per step, then a nap */
	HBATCH = 16,      /* events per POST */
	HMAX = 1000,      /* POSTs per trial at most (2 ms apart) */
};

static uint64_t base_seed;

static uint64_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 17;
}

/* splitmix64: unrelated streams for neighbouring seeds */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

struct ev {
	uint32_t a, b; /* a < b, local ids */
	int rm;
};

static void gen(uint64_t *s, struct ev *out, size_t n, uint32_t ids)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t a = (uint32_t)(rnd(s) % ids), b = (uint32_t)(rnd(s) % ids);

		if (a == b)
			b = (b + 1) % ids;
		out[i].a = a < b ? a : b;
		out[i].b = a < b ? b : a;
		out[i].rm = rnd(s) % 3 == 0;
	}
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 30), 0);
}

/*
 * POST body; 0 answered (status in *status), -1 not connected (certainly
 * not applied), -2 sent but no complete answer (outcome unknown).
 */
static int post_edges_body(unsigned port, const char *body, int *status,
			   int64_t *accepted, char *ans, size_t cap)
{
	char head[256];
	struct resp r;
	int fd = connect_port(port), n;
	json_object *o, *v;

	if (fd < 0)
		return -1;
	n = snprintf(head, sizeof(head),
		     "POST /edges HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
		     strlen(body));
	if (send_all(fd, head, (size_t)n) ||
	    send_all(fd, body, strlen(body)) || read_resp(fd, &r)) {
		close(fd);
		return -2;
	}
	close(fd);
	*status = r.status;
	*accepted = -1;
	if (cap)
		snprintf(ans, cap, "%.*s", (int)r.len, r.body);
	if (r.status == 200 && (o = json_tokener_parse(r.body))) {
		if (json_object_object_get_ex(o, "accepted", &v))
			*accepted = json_object_get_int64(v);
		json_object_put(o);
	}
	resp_free(&r);
	return 0;
}

static int post_edges(unsigned port, const char *body, int *status,
		      int64_t *accepted)
{
	return post_edges_body(port, body, status, accepted, NULL, 0);
}

static void batch_body(const struct ev *e, size_t n, uint32_t ts0, char *buf,
		       size_t cap)
{
	size_t i, len = 0;

	buf[0] = 0;
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
			"{\"op\":\"%s\",\"src\":%u,\"dst\":%u,\"ts\":%u}\n",
			e[i].rm ? "remove" : "add", HBASE + 1 + e[i].a,
			HBASE + 1 + e[i].b, ts0 + (uint32_t)i);
}

/* ---- reference ---------------------------------------------------------- */

static void apply(unsigned char *adj, uint32_t ids, const struct ev *e,
		  size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		adj[e[i].a * ids + e[i].b] = (unsigned char)!e[i].rm;
}

/* Does the server's edge set over ids (offset base) equal adj? Returns the
 * number of mismatching members (0 = equal). */
static size_t diff_members(unsigned port, const unsigned char *adj,
			   uint32_t ids, uint64_t base)
{
	uint64_t nb[1024];
	size_t bad = 0;
	uint32_t u, k;

	for (u = 0; u < ids; u++) {
		int n = neighbors_of(port, base + 1 + u, nb, 1024), deg = 0,
		    hit = 0, i;

		for (k = 0; k < ids; k++)
			if (k != u)
				deg += u < k ? adj[u * ids + k]
					     : adj[k * ids + u];
		if (n < 0) {
			bad += deg != 0;
			continue;
		}
		for (i = 0; i < n; i++) {
			uint64_t v = nb[i];

			if (v > base && v <= base + ids && v - base - 1 != u) {
				uint32_t w = (uint32_t)(v - base - 1);

				hit += u < w ? adj[u * ids + w]
					     : adj[w * ids + u];
			}
		}
		bad += !(n == deg && hit == deg);
	}
	return bad;
}

static int64_t count_edges(const unsigned char *adj, uint32_t ids)
{
	int64_t n = 0;
	size_t i;

	for (i = 0; i < (size_t)ids * ids; i++)
		n += adj[i];
	return n;
}

/* ---- producer and killer threads ---------------------------------------- */

struct producer {
	const char *boot, *topic;
	const struct ev *ev;
	size_t n;
	int ok;
	char err[256];
};

static void *produce_main(void *arg)
{
	struct producer *p = arg;
	struct kafka_producer *kp;
	struct err e = { "" };
	char key[32], val[128];
	size_t i;

	kp = kafka_producer_new(p->boot, p->topic, &e);
	if (!kp) {
		snprintf(p->err, sizeof(p->err), "%s", e.msg);
		return NULL;
	}
	for (i = 0; i < p->n; i++) {
		int kl = snprintf(key, sizeof(key), "%u", p->ev[i].a + 1);
		int vl = snprintf(val, sizeof(val),
			"{\"op\":\"%s\",\"src\":%u,\"dst\":%u,\"ts\":%u}",
			p->ev[i].rm ? "remove" : "add", p->ev[i].a + 1,
			p->ev[i].b + 1, 1600000000u + (uint32_t)i);

		if (kafka_produce(kp, key, (size_t)kl, val, (size_t)vl, &e))
			goto out;
		if (i % KCHUNK == KCHUNK - 1)
			nap_ms(25);
	}
	if (kafka_producer_flush(kp, 20000, &e))
		goto out;
	p->ok = kafka_producer_failed(kp) == 0;
out:
	if (!p->ok)
		snprintf(p->err, sizeof(p->err), "%s", e.msg);
	kafka_producer_free(kp);
	return NULL;
}

struct killer {
	pid_t pid;
	long after_ms;
	volatile int done;
};

static void *kill_main(void *arg)
{
	struct killer *k = arg;

	nap_ms(k->after_ms);
	kill(k->pid, SIGKILL);
	k->done = 1;
	return NULL;
}

/* ---- the kill -9 trial -------------------------------------------------- */

static int64_t wait_stat_ge(unsigned port, const char *key, int64_t want,
			    double secs)
{
	double end = mono() + secs;
	int64_t v = 0;

	while (mono() < end) {
		v = stat_of(port, key);
		if (v >= want)
			break;
		nap_ms(50);
	}
	return v;
}

START_TEST(kill9_trial)
{
	static struct ev kev[NK], hev[HMAX * HBATCH];
	static unsigned char kref[KIDS * KIDS], href[HIDS * HIDS],
		halt[HIDS * HIDS];
	static char body[HBATCH * 96];
	uint64_t seed = base_seed + (uint64_t)_i, s = mix(seed);
	unsigned port = free_port();
	char boot[256], dead[64], *args[] = { "--state", NULL, "--brokers", boot,
		"--topic", "ev", "--checkpoint-secs", "1", NULL };
	struct producer prod = { 0 };
	struct killer kil;
	pthread_t pt, kt;
	struct store *st;
	struct err e = { "" };
	int64_t next = 0, applied;
	size_t nposts = 0, acked = 0, uncertain = 0, bad;
	int got, status, unc_applied = -1;
	pid_t mock, pid;
	char state[256];
	double t0;

	snprintf(state, sizeof(state), "%s", tpath("state"));
	args[1] = state;
	gen(&s, kev, NK, KIDS);
	gen(&s, hev, HMAX * HBATCH, HIDS);
	kil.after_ms = 50 + (long)(rnd(&s) % 1250);
	kil.done = 0;
	mock = mock_start("ev", 1, boot, sizeof(boot));
	pid = serve_start(port, args);
	kil.pid = pid;

	prod.boot = boot;
	prod.topic = "ev";
	prod.ev = kev;
	prod.n = NK;
	ck_assert_int_eq(pthread_create(&pt, NULL, produce_main, &prod), 0);
	ck_assert_int_eq(pthread_create(&kt, NULL, kill_main, &kil), 0);

	/* POST sequentially until the server is gone */
	memset(href, 0, sizeof(href));
	t0 = mono();
	for (nposts = 0; nposts < HMAX && mono() < t0 + 20; nposts++) {
		int64_t acc;

		batch_body(hev + nposts * HBATCH, HBATCH,
			   1600000000u + (uint32_t)(nposts * HBATCH), body,
			   sizeof(body));
		got = post_edges(port, body, &status, &acc);
		if (got == -1)
			break; /* never reached the server */
		if (got == -2) {
			uncertain = 1;
			nposts++;
			break;
		}
		ck_assert_msg(status == 200 && acc == HBATCH,
			      "POST %zu: status %d accepted %lld", nposts,
			      status, (long long)acc);
		apply(href, HIDS, hev + nposts * HBATCH, HBATCH);
		acked++;
		nap_ms(2);
		if (kil.done) {
			nposts++;
			break;
		}
	}
	pthread_join(kt, NULL);
	waitpid(pid, NULL, 0);
	pthread_join(pt, NULL);
	ck_assert_msg(prod.ok, "producer: %s", prod.err);

	/* 1: the stored offset */
	st = store_open(state, &e);
	ck_assert_msg(st != NULL, "%s", e.msg);
	ck_assert_int_ge(store_offset_get(st, "ev", 0, &next, &e), 0);
	store_close(st);
	ck_assert_int_le(next, NK);

	/* 2: checkpoint + log only (the broker address is dead) */
	memset(kref, 0, sizeof(kref));
	apply(kref, KIDS, kev, (size_t)next);
	memcpy(halt, href, sizeof(halt));
	if (uncertain)
		apply(halt, HIDS, hev + (nposts - 1) * HBATCH, HBATCH);
	snprintf(dead, sizeof(dead), "127.0.0.1:%u", free_port());
	args[3] = dead;
	pid = serve_start(port, args);
	bad = diff_members(port, kref, KIDS, 0);
	ck_assert_msg(bad == 0, "seed %llu: after restart %zu Kafka members "
		      "differ from the first %lld events",
		      (unsigned long long)seed, bad, (long long)next);
	if (!diff_members(port, href, HIDS, HBASE))
		unc_applied = 0;
	else if (uncertain && !diff_members(port, halt, HIDS, HBASE))
		unc_applied = 1;
	ck_assert_msg(unc_applied >= 0, "seed %llu: HTTP edge set is neither "
		      "the %zu acknowledged POSTs nor those plus the one in "
		      "flight", (unsigned long long)seed, acked);
	if (unc_applied)
		memcpy(href, halt, sizeof(href));
	ck_assert_int_eq(stat_of(port, "edges"),
			 count_edges(kref, KIDS) + count_edges(href, HIDS));
	stop(pid);

	/* 3: the real broker again: exactly the rest, once */
	args[3] = boot;
	pid = serve_start(port, args);
	applied = wait_stat_ge(port, "events_applied", NK - next, 30);
	nap_ms(400); /* nothing more may arrive */
	applied = stat_of(port, "events_applied");
	ck_assert_msg(applied == NK - next, "seed %llu: %lld events applied "
		      "after restart, want %lld (offset %lld of %d)",
		      (unsigned long long)seed, (long long)applied,
		      (long long)(NK - next), (long long)next, NK);
	memset(kref, 0, sizeof(kref));
	apply(kref, KIDS, kev, NK);
	bad = diff_members(port, kref, KIDS, 0);
	ck_assert_msg(bad == 0, "seed %llu: %zu Kafka members differ after "
		      "catch-up", (unsigned long long)seed, bad);
	ck_assert_int_eq(diff_members(port, href, HIDS, HBASE), 0);
	ck_assert_int_eq(stat_of(port, "edges"),
			 count_edges(kref, KIDS) + count_edges(href, HIDS));
	stop(pid);
	stop(mock);
	printf("trial %d seed %llu kill_at %ld ms: kafka offset %lld/%d "
		       "at kill, http %zu acked, %zu in flight (%s): ok\n",
	       _i, (unsigned long long)seed, kil.after_ms, (long long)next,
	       NK, acked, uncertain,
	       uncertain ? (unc_applied ? "applied" : "not applied") : "-");
	fflush(stdout);
}
END_TEST


/* ---- broker outage ------------------------------------------------------ */

/* /healthz and /recommend answer 200 (graph: small_graph). */
static void serving(unsigned port)
{
	uint64_t rec[16];
	struct resp r = must(port, "GET", "/healthz", NULL);

	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ck_assert_int_ge(recommend(port, 1, 5, rec), 1);
}

static void produce_n(const char *boot, uint32_t first, size_t n)
{
	static struct ev ev[2000];
	struct producer p = { 0 };
	size_t i;

	ck_assert_uint_le(n, 2000);
	for (i = 0; i < n; i++) {
		/* fresh pairs among members 1000.. (the graph uses 1..8) */
		ev[i].a = 999 + first + (uint32_t)i;
		ev[i].b = ev[i].a + 100000;
		ev[i].rm = 0;
	}
	p.boot = boot;
	p.topic = "ev";
	p.ev = ev;
	p.n = n;
	produce_main(&p);
	ck_assert_msg(p.ok, "producer: %s", p.err);
}

START_TEST(broker_outage)
{
	unsigned port = free_port();
	char boot[256], *args[] = { "--events", NULL, "--brokers", boot,
		"--topic", "ev", "--state", NULL, NULL };
	char g[256], state[256];
	pid_t mock, pid;
	int64_t lag = 0, base;
	double end;
	int i;

	snprintf(g, sizeof(g), "%s", tpath("g.txt"));
	snprintf(state, sizeof(state), "%s", tpath("state"));
	write_file(g, small_graph);
	args[1] = g;
	args[7] = state;
	mock = mock_start("ev", 1, boot, sizeof(boot));
	pid = serve_start(port, args);
	base = stat_of(port, "edges");
	produce_n(boot, 0, 500);
	ck_assert_int_eq(wait_stat_ge(port, "events_applied", 500, 30), 500);

	/* the broker goes down: the service keeps answering */
	ck_assert_int_eq(kill(mock, SIGUSR1), 0);
	for (i = 0; i < 20; i++) {
		serving(port);
		nap_ms(100);
	}
	lag = stat_of(port, "kafka_lag");
	/* the log says why ingest stopped (librdkafka's reason) */
	end = mono() + 10 * e2e_scale();
	while (mono() < end && !log_has("kafka: ", "serving goes on"))
		nap_ms(100);
	ck_assert_msg(log_has("kafka: ", "serving goes on"),
		      "no log line for the broker down");
	/* up again, with more messages: consumed, lag back to 0 */
	ck_assert_int_eq(kill(mock, SIGUSR2), 0);
	produce_n(boot, 500, 700);
	ck_assert_int_eq(wait_stat_ge(port, "events_applied", 1200, 30), 1200);
	end = mono() + 20;
	while (mono() < end && stat_of(port, "kafka_lag") != 0)
		nap_ms(100);
	ck_assert_int_eq(stat_of(port, "kafka_lag"), 0);
	ck_assert_int_eq(stat_of(port, "edges"), base + 1200);
	ck_assert_msg(log_has("kafka: consuming again", ""),
		      "no log line for the broker back");
	serving(port);
	printf("broker outage: served /healthz and /recommend for 2 s with "
	       "the broker down (kafka_lag %lld then), 1200/1200 events "
	       "applied after it came back, lag 0: ok\n", (long long)lag);

	/* the broker process killed for good: still serving */
	kill9(mock);
	for (i = 0; i < 20; i++) {
		serving(port);
		nap_ms(100);
	}
	printf("broker killed: served for 2 s, kafka_lag %lld: ok\n",
	       (long long)stat_of(port, "kafka_lag"));
	fflush(stdout);
	stop(pid);
}
END_TEST

/* ---- damaged state ------------------------------------------------------ */

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long)st.st_size;
}

/* XOR 0xff into every `step`-th byte of [from, to). */
static void flip(const char *path, long from, long to, long step)
{
	FILE *f = fopen(path, "r+b");
	long p;

	ck_assert_ptr_nonnull(f);
	for (p = from; p < to; p += step) {
		int c;

		fseek(f, p, SEEK_SET);
		c = fgetc(f);
		ck_assert_int_ne(c, EOF);
		fseek(f, p, SEEK_SET);
		fputc(c ^ 0xff, f);
	}
	fclose(f);
}

START_TEST(damaged_state_refused)
{
	static const char *what[] = { "data pages flipped",
		"both meta pages flipped", "truncated to half",
		"truncated to two pages", "truncated to 0 bytes" };
	unsigned port = free_port();
	char state[256], copy[256], db[300], cmd[700];
	char *args[] = { "--state", state, NULL };
	char body[64 * 64];
	size_t len = 0, v;
	struct resp r;
	pid_t pid;
	long size;
	int i;

	snprintf(state, sizeof(state), "%s", tpath("state"));
	pid = serve_start(port, args);
	for (i = 0; i < 60; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len,
			"{\"src\":%d,\"dst\":%d,\"ts\":%d}\n", i + 1,
			(i * 7) % 60 + 100, 1600000000 + i);
	r = must(port, "POST", "/edges", body);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	stop(pid); /* final checkpoint */

	for (v = 0; v < sizeof(what) / sizeof(what[0]); v++) {
		double end;
		int st = -1, served = 0;
		FILE *f;
		char line[512] = "";

		snprintf(copy, sizeof(copy), "%s/copy%zu", tmpdir, v);
		snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", state, copy);
		ck_assert_int_eq(system(cmd), 0);
		snprintf(db, sizeof(db), "%s/data.mdb", copy);
		size = file_size(db);
		ck_assert_int_gt(size, 3 * 4096);
		switch (v) {
		case 0: flip(db, 2 * 4096, size, 61); break;
		case 1: flip(db, 0, 2 * 4096, 7); break;
		case 2: ck_assert_int_eq(truncate(db, size / 2), 0); break;
		case 3: ck_assert_int_eq(truncate(db, 2 * 4096), 0); break;
		default: ck_assert_int_eq(truncate(db, 0), 0); break;
		}
		ck_assert_int_eq(truncate(tpath("stderr.log"), 0), 0);
		args[1] = copy;
		{
			char listen[64], *a[] = { "serve", "--listen", listen,
				"--state", copy, NULL };

			snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
			pid = spawn(NULL, a);
		}
		end = mono() + 20;
		while (mono() < end) {
			pid_t w = waitpid(pid, &st, WNOHANG);

			if (w == pid)
				break;
			if (!req(port, "GET", "/recommend?member=1", NULL, 0,
				 &r)) {
				served |= r.status == 200 || r.status == 404;
				resp_free(&r);
			}
			nap_ms(20);
		}
		if (waitpid(pid, &st, WNOHANG) == 0 && mono() >= end) {
			kill9(pid);
			ck_abort_msg("%s: server still running", what[v]);
		}
		f = fopen(tpath("stderr.log"), "r");
		if (f) {
			while (fgets(line, sizeof(line), f) &&
			       !strstr(line, copy))
				;
			fclose(f);
		}
		if (strchr(line, '\n'))
			*strchr(line, '\n') = 0;
		printf("damaged state, %s: exit %d, %s: \"%s\"\n", what[v],
		       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
		       served ? "SERVED" : "never served", line);
		fflush(stdout);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1,
			      "%s: exit status %d", what[v], st);
		ck_assert_msg(!served, "%s: answered /recommend", what[v]);
		ck_assert_msg(strstr(line, copy) != NULL,
			      "%s: no message naming the state", what[v]);
	}
}
END_TEST

/* ---- full map, full disk ----------------------------------------------- */

enum { FULL_B = 400, FULL_MAXPOSTS = 2000 }; /* events a POST, POSTs at most */

/*
 * POST batches of FULL_B edges of a perfect matching (edge k joins 2k+1
 * and 2k+2, each once) until one is refused; its status and body into
 * *status and fail. Returns the batches acknowledged before it.
 */
static int64_t post_until_refused(unsigned port, int *status, char *fail,
				  size_t flen)
{
	static char body[FULL_B * 80];
	int64_t acked = 0, acc;
	size_t j, i, len;

	for (j = 0; j < FULL_MAXPOSTS; j++) {
		len = 0;
		for (i = 0; i < FULL_B; i++) {
			uint64_t k = j * FULL_B + i;

			len += (size_t)snprintf(body + len, sizeof(body) - len,
				"{\"src\":%llu,\"dst\":%llu,\"ts\":1600000000}\n",
				(unsigned long long)(2 * k + 1),
				(unsigned long long)(2 * k + 2));
		}
		ck_assert_int_eq(post_edges_body(port, body, status, &acc, fail,
						 flen), 0);
		if (*status != 200)
			break;
		ck_assert_int_eq(acc, FULL_B);
		acked++;
	}
	ck_assert_msg(*status != 200, "the state never filled in %d POSTs",
		      FULL_MAXPOSTS);
	return acked;
}

/* After a refused write: a log line (with log_word) and the failure count
 * say so, reads keep serving, and nothing refused was applied. */
static void refused_write_seen(unsigned port, int64_t acked,
			       const char *log_word)
{
	uint64_t nb[4], rec[16];
	struct resp r;

	/* the log's line may be a checkpoint's, which can fail first */
	ck_assert_msg(log_has("write failed", log_word),
		      "no log line with \"%s\" for the failed state write",
		      log_word);
	ck_assert_int_ge(metric_of(port,
		"triad_state_write_failures_total{op=\"log\"}"), 1);
	ck_assert_int_eq(stat_of(port, "edges"), acked * FULL_B);
	ck_assert_int_eq(neighbors_of(port, 2 * (uint64_t)acked * FULL_B + 1,
				      nb, 4), -1);
	ck_assert_int_eq(neighbors_of(port, 1, nb, 4), 1);
	ck_assert_int_ge(recommend(port, 1, 5, rec), 0);
	r = must(port, "GET", "/healthz", NULL);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}

/* After a restart with room: every acknowledged edge, none refused. */
static void acked_edges_only(unsigned port, int64_t acked)
{
	uint64_t nb[4];

	ck_assert_int_eq(stat_of(port, "edges"), acked * FULL_B);
	ck_assert_int_eq(neighbors_of(port, 2 * (uint64_t)acked * FULL_B - 1,
				      nb, 4), 1);
	ck_assert_int_eq(neighbors_of(port, 2 * (uint64_t)acked * FULL_B + 1,
				      nb, 4), -1);
}

/*
 * Two ways the state stops taking writes:
 *  - the LMDB map fixed at 2 MiB (TRIAD_STATE_MAP_BYTES), with a
 *    checkpoint every second;
 *  - no file may grow past 1 MiB (E2E_FSIZE_BYTES: a write across the
 *    limit stops there, one past it fails with EFBIG, as writes do on a
 *    full disk; a real full file system needs a mount, which the tests
 *    cannot count on), with no periodic checkpoint, so the log's appends
 *    fill the file and nothing frees room behind the test's back (which
 *    also keeps triad_state_writable at 0 once a write failed).
 * Either way: POST /edges answers 500 naming the state and the reason and
 * applies nothing, a log line says so, /metrics counts it, reads keep
 * serving, and a restart with room has every acknowledged event and none
 * of the refused ones.
 */
static const struct full_case {
	const char *what, *env, *bytes, *ckpt_secs, *answer;
} full_cases[] = {
	{ "map full (2 MiB)", "TRIAD_STATE_MAP_BYTES", "2097152", "1",
	  "state map full" },
	/* LMDB reports a short write as EIO ("commit: Input/output error"),
	 * a refused one as EFBIG */
	{ "state file at 1 MiB", "E2E_FSIZE_BYTES", "1048576", "0",
	  "\": commit: " },
};

START_TEST(state_full)
{
	const struct full_case *fc = &full_cases[_i];
	unsigned port = free_port();
	char state[256], *args[] = { "--state", state, "--checkpoint-secs",
		(char *)fc->ckpt_secs, NULL };
	char fail_body[512] = "";
	int64_t acked;
	pid_t pid;
	int status = 0;

	snprintf(state, sizeof(state), "%s", tpath("state"));
	setenv(fc->env, fc->bytes, 1);
	pid = serve_start(port, args);
	unsetenv(fc->env); /* the server has it; the restart below must not */
	ck_assert_int_eq(metric_of(port, "triad_state_writable"), 1);
	acked = post_until_refused(port, &status, fail_body, sizeof(fail_body));
	printf("%s after %lld POSTs of %d events: answer %d %s\n", fc->what,
	       (long long)acked, FULL_B, status, fail_body);
	fflush(stdout);
	ck_assert_int_eq(status, 500);
	ck_assert_ptr_nonnull(strstr(fail_body, state));
	ck_assert_ptr_nonnull(strstr(fail_body, fc->answer));
	refused_write_seen(port, acked, state);
	if (!strcmp(fc->ckpt_secs, "0")) /* nothing else writes */
		ck_assert_int_eq(metric_of(port, "triad_state_writable"), 0);
	kill9(pid);
	pid = serve_start(port, args);
	ck_assert_int_eq(metric_of(port, "triad_state_writable"), 1);
	acked_edges_only(port, acked);
	printf("%s: logged, counted, reads kept serving, %lld acknowledged "
	       "events all there after a restart with room: ok\n", fc->what,
	       (long long)(acked * FULL_B));
	fflush(stdout);
	stop(pid);
}
END_TEST

/*
 * Kafka ingest while the state cannot grow: the server may not grow a
 * file past 128 KiB (E2E_FSIZE_BYTES; its state starts near 28 KiB and a
 * logged event takes about 26 bytes) and 10,000 new edges arrive through
 * Kafka. The batches that do not fit are neither logged nor applied and
 * wait (kafka_lag stays up), the log line and the count appear, reads keep
 * serving; after kill -9 a restart with room resumes from the stored
 * offsets and has every one of the 10,000 edges.
 */
START_TEST(kafka_state_full)
{
	unsigned port = free_port();
	char boot[256], g[256], state[256];
	char *args[] = { "--events", g, "--brokers", boot, "--topic", "ev",
		"--state", state, "--checkpoint-secs", "0", NULL };
	int64_t base, failed = 0;
	pid_t mock, pid;
	double end;
	int i;

	snprintf(g, sizeof(g), "%s", tpath("g.txt"));
	snprintf(state, sizeof(state), "%s", tpath("state"));
	write_file(g, small_graph);
	mock = mock_start("ev", 1, boot, sizeof(boot));
	setenv("E2E_FSIZE_BYTES", "131072", 1);
	pid = serve_start(port, args);
	unsetenv("E2E_FSIZE_BYTES");
	base = stat_of(port, "edges");
	for (i = 0; i < 5; i++)
		produce_n(boot, (uint32_t)i * 2000, 2000);
	end = mono() + 30 * e2e_scale();
	while (mono() < end && (failed = metric_of(port,
			"triad_state_write_failures_total{op=\"log\"}")) < 1)
		nap_ms(100);
	ck_assert_msg(failed >= 1, "no state write failed in 30 s");
	nap_ms(500); /* a retry or two */
	/* the lag counts what is neither applied nor logged, the batch
	 * held for retrying included (once the watermark is known) */
	end = mono() + 10 * e2e_scale();
	while (mono() < end && stat_of(port, "kafka_lag") !=
	       base + 10000 - stat_of(port, "edges"))
		nap_ms(100);
	ck_assert_int_eq(stat_of(port, "kafka_lag"),
			 base + 10000 - stat_of(port, "edges"));
	ck_assert_int_eq(metric_of(port, "triad_state_writable"), 0);
	ck_assert_msg(log_has("state log write failed", state),
		      "no log line naming the failed state write");
	serving(port);
	printf("kafka, state file at 128 KiB: %lld of 10000 edges applied, "
	       "lag %lld, %lld failed log writes, still serving\n",
	       (long long)(stat_of(port, "edges") - base),
	       (long long)stat_of(port, "kafka_lag"), (long long)failed);
	fflush(stdout);
	kill9(pid);
	pid = serve_start(port, args);
	ck_assert_int_eq(wait_stat_ge(port, "edges", base + 10000,
				      30 * e2e_scale()), base + 10000);
	end = mono() + 20 * e2e_scale();
	while (mono() < end && stat_of(port, "kafka_lag") != 0)
		nap_ms(100);
	ck_assert_int_eq(stat_of(port, "kafka_lag"), 0);
	ck_assert_int_eq(stat_of(port, "edges"), base + 10000);
	printf("kafka, state full: all 10000 edges there after a restart "
	       "with room, lag 0: ok\n");
	fflush(stdout);
	stop(pid);
	kill(mock, SIGTERM);
	waitpid(mock, NULL, 0);
}
END_TEST

/* ---- main --------------------------------------------------------------- */

static Suite *faults_suite(int trials)
{
	Suite *s = suite_create("faults");
	TCase *t = tcase_create("kill9");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 180);
	tcase_add_loop_test(t, kill9_trial, 0, trials);
	suite_add_tcase(s, t);
	t = tcase_create("single");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 180);
	tcase_add_test(t, broker_outage);
	tcase_add_test(t, damaged_state_refused);
	tcase_add_loop_test(t, state_full, 0,
			    (int)(sizeof(full_cases) / sizeof(full_cases[0])));
	tcase_add_test(t, kafka_state_full);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	const char *v = getenv("FAULT_TRIALS"), *sd = getenv("FAULT_SEED");
	int trials = v ? atoi(v) : 20, failed, run;
	SRunner *r;

	if (trials < 1 || trials > 10000)
		trials = 20;
	base_seed = sd ? strtoull(sd, NULL, 10) : (uint64_t)time(NULL);
	printf("faults: %d trials, FAULT_SEED=%llu\n", trials,
	       (unsigned long long)base_seed);
	fflush(stdout);
	r = srunner_create(faults_suite(trials));
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	run = srunner_ntests_run(r);
	srunner_free(r);
	printf("%d passed, %d failed\n", run - failed, failed);
	return failed ? 1 : 0;
}
