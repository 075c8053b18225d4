/*
 * test_replicas.c - two `triad serve` replicas (separate --state, separate
 * ports) consuming the same mock Kafka topic end up with the same graph and
 * give the same answers: GET /members/ID byte for byte for every member,
 * GET /recommend for a sample with "took_us" removed. The reference is the
 * other replica plus a plain adjacency matrix of the produced events.
 * Helpers in e2e.h.
 *
 * Run with one partition and with four (the mock's default). The first
 * replica consumes while the events are produced, the second starts only
 * once all of them are in the topic and reads the backlog, so the two see
 * the partitions interleave differently; they must still apply the events
 * in the same order (the consumer merges partitions by message timestamp,
 * server/kafka.c) and so number members alike, which the random walk's
 * candidates depend on. One event in seven has no "ts": both replicas must
 * give it the same one (the message's timestamp, not their own clocks).
 */
#include "e2e.h"

#include "graph.h"
#include "kafka.h"
#include "testutil.h"

enum { IDS = 300, N = 3000, SAMPLE = 60 };

/* The body of GET path, with "took_us" removed when it is JSON. */
static char *answer(unsigned port, const char *path, int *status)
{
	struct resp r = must(port, "GET", path, NULL);
	json_object *o = json_tokener_parse(r.body);
	char *s;

	*status = r.status;
	if (o) {
		json_object_object_del(o, "took_us");
		s = strdup(json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		s = strdup(r.body);
	}
	ck_assert_ptr_nonnull(s);
	resp_free(&r);
	return s;
}

START_TEST(replicas_agree)
{
	static unsigned char adj[IDS][IDS];
	unsigned port[2] = { free_port(), 0 };
	char boot[256], st0[256], st1[256];
	char *args[] = { "--state", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	struct kafka_producer *kp;
	struct err e = { "" };
	uint64_t seed = 4242;
	int64_t want_edges = 0;
	pid_t mock, pid[2];
	int i, u, k, diff_rec = 0, nonempty = 0;

	snprintf(st0, sizeof(st0), "%s", tpath("state0"));
	snprintf(st1, sizeof(st1), "%s", tpath("state1"));
	mock = mock_start("ev", _i ? 4 : 1, boot, sizeof(boot));
	args[1] = st0;
	pid[0] = serve_start(port[0], args);

	kp = kafka_producer_new(boot, "ev", &e);
	ck_assert_msg(kp != NULL, "%s", e.msg);
	memset(adj, 0, sizeof(adj));
	for (i = 0; i < N; i++) {
		char key[24], val[128];
		int a, b, rm, kl, vl;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		a = (int)((seed >> 33) % IDS);
		b = (int)((seed >> 13) % IDS);
		rm = ((seed >> 5) % 5) == 0;
		if (a == b)
			b = (b + 1) % IDS;
		if (a > b) { /* one orientation per pair: one partition */
			int t = a;

			a = b;
			b = t;
		}
		adj[a][b] = adj[b][a] = (unsigned char)!rm;
		kl = snprintf(key, sizeof(key), "%d", a + 1);
		if (i % 7 == 3)
			vl = snprintf(val, sizeof(val),
				      "{\"op\":\"%s\",\"src\":%d,\"dst\":%d}",
				      rm ? "remove" : "add", a + 1, b + 1);
		else
			vl = snprintf(val, sizeof(val),
				      "{\"op\":\"%s\",\"src\":%d,\"dst\":%d,\"ts\":%d}",
				      rm ? "remove" : "add", a + 1, b + 1,
				      1600000000 + i * (int)GRAPH_TS_RES);
		ck_assert_int_eq(kafka_produce(kp, key, (size_t)kl, val,
					       (size_t)vl, &e), 0);
	}
	ck_assert_msg(kafka_producer_flush(kp, 20000, &e) == 0, "%s", e.msg);
	kafka_producer_free(kp);
	/* the second replica reads the whole backlog at once */
	do
		port[1] = free_port();
	while (port[1] == port[0]);
	args[1] = st1;
	pid[1] = serve_start(port[1], args);
	for (u = 0; u < IDS; u++)
		for (k = u + 1; k < IDS; k++)
			want_edges += adj[u][k];

	ck_assert_int_eq(wait_applied(port[0], N, 30), N);
	ck_assert_int_eq(wait_applied(port[1], N, 30), N);
	ck_assert_int_eq(stat_of(port[0], "edges"), want_edges);
	ck_assert_int_eq(stat_of(port[1], "edges"), want_edges);
	/* the trend tables follow within a second of the last event */
	ck_assert_int_eq(wait_trend(port[0], N, 30), N);
	ck_assert_int_eq(wait_trend(port[1], N, 30), N);

	for (u = 1; u <= IDS; u++) {
		char path[64];
		char *x, *y;
		int sx, sy;

		snprintf(path, sizeof(path), "/members/%d", u);
		x = answer(port[0], path, &sx);
		y = answer(port[1], path, &sy);
		ck_assert_int_eq(sx, sy);
		ck_assert_msg(!strcmp(x, y), "member %d: %s vs %s", u, x, y);
		free(x);
		free(y);
	}
	for (u = 1; u <= IDS; u += IDS / SAMPLE) {
		char path[64];
		char *x, *y;
		int sx, sy;

		/* under valgrind (make valgrind) the default latency budget
		 * would cut answers short on one replica and not the other */
		snprintf(path, sizeof(path), "/recommend?member=%d&k=10%s", u,
			 e2e_scale() > 1 ? "&budget_ms=60000" : "");
		x = answer(port[0], path, &sx);
		y = answer(port[1], path, &sy);
		ck_assert_int_eq(sx, sy);
		nonempty += sx == 200 && !strstr(x, "\"recommendations\":[]");
		if (strcmp(x, y) && !diff_rec++)
			fprintf(stderr, "recommend %d differs:\n  %s\n  %s\n",
				u, x, y);
		free(x);
		free(y);
	}
	ck_assert_msg(diff_rec == 0, "%d partition(s): %d of %d /recommend "
		      "answers differ", _i ? 4 : 1, diff_rec, SAMPLE);
	ck_assert_int_ge(nonempty, SAMPLE / 2);
	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGTERM);
		ck_assert_int_eq(wait_exit(pid[i], 20), 0);
	}
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

static Suite *replicas_suite(void)
{
	Suite *s = suite_create("replicas");
	TCase *t = tcase_create("e2e");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_loop_test(t, replicas_agree, 0, 2);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	(void)small_graph;
	return testutil_main(replicas_suite());
}
