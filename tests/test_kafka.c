/*
 * test_kafka.c - Kafka ingest end to end: `triad kafka-mock`, `triad
 * replay` and `triad serve --brokers`. Exactly-once across kill -9
 * (reference: a plain adjacency matrix fed the produced events in order),
 * malformed messages counted by reason and skipped, a dead broker never
 * stops serving. Helpers in e2e.h.
 */
#include "e2e.h"

#include "kafka.h"
#include "testutil.h"

/* the series of malformed messages counted for one reason */
#define BAD(reason) "triad_kafka_malformed_total{reason=\"" reason "\"}"

static void replay(const char *boot, const char *file)
{
	char *args[] = { "replay", (char *)file, "--brokers", (char *)boot,
			 "--topic", "ev", "--quiet", NULL };
	pid_t pid = spawn(NULL, args);

	ck_assert_int_eq(wait_exit(pid, 60), 0);
}

/*
 * Kafka ingest, kill -9, restart, more Kafka: every produced event applied
 * exactly once (events_applied after the restart counts only the new
 * ones; the edge set equals a plain replay of both files).
 */
START_TEST(kafka_exactly_once_across_kill9)
{
	enum { N1 = 3000, N2 = 1000, IDS = 300 };
	unsigned port = free_port();
	char boot[256];
	char *args[] = { "--state", NULL, "--brokers", boot, "--topic", "ev",
			 "--checkpoint-secs", "1", NULL };
	static unsigned char adj[IDS][IDS];
	FILE *f1, *f2;
	pid_t mock, pid;
	uint64_t seed = 12345, nb[IDS];
	int i, u, want_edges = 0;

	mock = mock_start("ev", 3, boot, sizeof(boot));
	f1 = fopen(tpath("ev1.ndjson"), "w");
	f2 = fopen(tpath("ev2.ndjson"), "w");
	ck_assert(f1 && f2);
	memset(adj, 0, sizeof(adj));
	/* adds and removes over a small id space so that order matters;
	 * ts increase so the replay keeps file order */
	for (i = 0; i < N1 + N2; i++) {
		int a, b, rm;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		a = (int)((seed >> 33) % IDS);
		b = (int)((seed >> 13) % IDS);
		rm = ((seed >> 5) % 4) == 0;
		if (a == b)
			b = (b + 1) % IDS;
		if (a > b) {
			/* messages are keyed by src: one orientation per
			 * pair keeps a pair's events in one partition, in
			 * order */
			int t = a;

			a = b;
			b = t;
		}
		fprintf(i < N1 ? f1 : f2,
			"{\"op\":\"%s\",\"src\":%d,\"dst\":%d,\"ts\":%d}\n",
			rm ? "remove" : "add", a + 1, b + 1, 1600000000 + i);
		adj[a][b] = adj[b][a] = (unsigned char)!rm;
	}
	fclose(f1);
	fclose(f2);
	for (u = 0; u < IDS; u++)
		for (i = u + 1; i < IDS; i++)
			want_edges += adj[u][i];

	args[1] = (char *)tpath("state");
	pid = serve_start(port, args);
	replay(boot, tpath("ev1.ndjson"));
	ck_assert_int_eq(wait_applied(port, N1, 20), N1);
	kill9(pid);

	pid = serve_start(port, args);
	replay(boot, tpath("ev2.ndjson"));
	ck_assert_int_eq(wait_applied(port, N2, 20), N2);
	nap_ms(300); /* nothing more may arrive */
	ck_assert_int_eq(stat_of(port, "events_applied"), N2);
	ck_assert_int_eq(stat_of(port, "edges"), want_edges);
	for (u = 0; u < IDS; u++) {
		int n = neighbors_of(port, (uint64_t)u + 1, nb, IDS), deg = 0,
		    k;

		for (k = 0; k < IDS; k++)
			deg += adj[u][k];
		if (n < 0) {
			ck_assert_int_eq(deg, 0);
			continue;
		}
		ck_assert_int_eq(n, deg);
		for (k = 0; k < n; k++)
			ck_assert(adj[u][nb[k] - 1]);
	}
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

START_TEST(kafka_malformed_counted_and_skipped)
{
	unsigned port = free_port();
	char boot[256];
	char *args[] = { "--events", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	static const char *msgs[] = {
		"not json", "", "{\"src\":3,\"dst\":3}", "{\"src\":\"x\",\"dst\":2}",
		"{\"op\":\"add\",\"src\":1,\"dst\":8,\"ts\":1800000000}",
		"[1,2]", "{\"src\":1,\"dst\":7,\"op\":\"bogus\"}",
	};
	struct kafka_producer *kp;
	struct err e = { "" };
	uint64_t nb[8];
	pid_t mock, pid;
	double end;
	size_t i;

	mock = mock_start("ev", 3, boot, sizeof(boot));
	write_file(tpath("g.txt"), small_graph);
	args[1] = (char *)tpath("g.txt");
	pid = serve_start(port, args);
	kp = kafka_producer_new(boot, "ev", &e);
	ck_assert_msg(kp != NULL, "%s", e.msg);
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		ck_assert_int_eq(kafka_produce(kp, "1", 1, msgs[i],
					       strlen(msgs[i]), &e), 0);
	ck_assert_msg(kafka_producer_flush(kp, 10000, &e) == 0, "%s", e.msg);
	kafka_producer_free(kp);
	end = mono() + 20;
	while (mono() < end && stat_of(port, "events_rejected") < 6)
		nap_ms(50);
	ck_assert_int_eq(stat_of(port, "events_rejected"), 6);
	ck_assert_int_eq(stat_of(port, "events_applied"), 1);
	ck_assert_int_eq(metric_of(port, BAD("not_json")), 2);
	ck_assert_int_eq(metric_of(port, BAD("empty")), 1);
	ck_assert_int_eq(metric_of(port, BAD("self_loop")), 1);
	ck_assert_int_eq(metric_of(port, BAD("bad_field")), 2);
	ck_assert_int_eq(metric_of(port, "triad_kafka_consumer_lag"), 0);
	ck_assert_int_eq(neighbors_of(port, 8, nb, 8), 2);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

START_TEST(kafka_down_keeps_serving)
{
	unsigned port = free_port();
	char boot[64];
	char *args[] = { "--events", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	uint64_t rec[16];
	pid_t pid;

	snprintf(boot, sizeof(boot), "127.0.0.1:%u", free_port());
	write_file(tpath("g.txt"), small_graph);
	args[1] = (char *)tpath("g.txt");
	pid = serve_start(port, args);
	ck_assert_int_ge(recommend(port, 1, 5, rec), 1);
	ck_assert_int_eq(stat_of(port, "kafka_lag"), -1);
	nap_ms(500);
	ck_assert_int_ge(recommend(port, 1, 5, rec), 1);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
}
END_TEST

static Suite *kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *t = tcase_create("e2e");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, kafka_exactly_once_across_kill9);
	tcase_add_test(t, kafka_malformed_counted_and_skipped);
	tcase_add_test(t, kafka_down_keeps_serving);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return testutil_main(kafka_suite());
}
