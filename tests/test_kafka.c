/*
 * test_kafka.c - Kafka ingest end to end: `triad kafka-mock`, `triad
 * replay` and `triad serve --brokers`. Exactly-once across kill -9
 * (reference: a plain adjacency matrix fed the produced events in order),
 * malformed messages counted by reason and skipped, a dead broker never
 * stops serving. Helpers in e2e.h.
 */
#include "e2e.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h */
#include <poll.h>
#include <pty.h>

#include "kafka.h"
#include "store.h"
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

/* The mock with `parts` partitions of topic "ev" (its pid in *mock, its
 * address in boot) and a server on port over the small graph consuming
 * it; returns the server's pid. */
static pid_t serve_with_mock(unsigned port, unsigned parts, char *boot,
			     size_t bn, pid_t *mock)
{
	char *args[] = { "--events", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };

	*mock = mock_start("ev", parts, boot, bn);
	write_file(tpath("g.txt"), small_graph);
	args[1] = (char *)tpath("g.txt");
	return serve_start(port, args);
}

/* SIGTERM to the server, then the mock: both exit 0. */
static void stop_with_mock(pid_t pid, pid_t mock)
{
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
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
	stop_with_mock(pid, mock);
}
END_TEST

START_TEST(kafka_malformed_counted_and_skipped)
{
	unsigned port = free_port();
	char boot[256];
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

	pid = serve_with_mock(port, 3, boot, sizeof(boot), &mock);
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
	stop_with_mock(pid, mock);
}
END_TEST

/*
 * A message stamped a year ahead (a producer with its clock set wrong) on
 * one partition, the other partition idle: it and the messages after it
 * are applied within seconds (the merge used to hold the partition until
 * the stamp's time came).
 */
START_TEST(kafka_future_timestamp_does_not_stall)
{
	unsigned port = free_port();
	char boot[256], es[512];
	static const char *msgs[] = {
		"{\"src\":71,\"dst\":72}", "{\"src\":71,\"dst\":73}",
		"{\"src\":71,\"dst\":74}", "{\"src\":71,\"dst\":75}",
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	uint64_t nb[8];
	int64_t now = (int64_t)time(NULL) * 1000;
	pid_t mock, pid;
	size_t i;

	pid = serve_with_mock(port, 2, boot, sizeof(boot), &mock);
	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", boot, es,
					   sizeof(es)), RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
	ck_assert_msg(rk != NULL, "%s", es);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("ev"),
				RD_KAFKA_V_PARTITION(0),
				RD_KAFKA_V_VALUE((void *)msgs[i], strlen(msgs[i])),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_TIMESTAMP(i ? now
						     : now + 365LL * 86400000LL),
				RD_KAFKA_V_END), RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(rk);
	ck_assert_int_eq(wait_applied(port, 4, 20), 4);
	ck_assert_int_eq(neighbors_of(port, 71, nb, 8), 4);
	stop_with_mock(pid, mock);
}
END_TEST

START_TEST(kafka_down_keeps_serving)
{
	unsigned port = free_port();
	char boot[64];
	char *args[] = { "--events", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	uint64_t rec[16];
	double end;
	pid_t pid;

	snprintf(boot, sizeof(boot), "127.0.0.1:%u", free_port());
	write_file(tpath("g.txt"), small_graph);
	args[1] = (char *)tpath("g.txt");
	pid = serve_start(port, args);
	ck_assert_int_ge(recommend(port, 1, 5, rec), 1);
	ck_assert_int_eq(stat_of(port, "kafka_lag"), -1);
	nap_ms(500);
	ck_assert_int_ge(recommend(port, 1, 5, rec), 1);
	/* the log and the count say why nothing is consumed */
	end = mono() + 15 * e2e_scale();
	while (mono() < end && !log_has("triad serve: kafka: ", boot))
		nap_ms(100);
	ck_assert_msg(log_has("triad serve: kafka: ", boot),
		      "no log line naming the unreachable brokers");
	ck_assert_int_ge(metric_of(port, "triad_kafka_errors_total"), 1);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
}
END_TEST

/*
 * The broker goes down while serving: kafka_lag (and
 * triad_kafka_consumer_lag) turn -1, unknown, as before the brokers first
 * answered, within a few seconds; up again, a message is consumed and the
 * lag is 0 again. The lag came from the high watermarks the last fetch
 * brought, so it stayed at its last figure (0) for the whole outage:
 * "nothing behind" while nothing could be read, and a backlog that grew
 * meanwhile (brokers that producers reach and triad does not) was never
 * seen.
 */
static void produce_to(const char *boot, int32_t part, const char *value,
		       size_t len);

START_TEST(kafka_lag_unknown_while_brokers_down)
{
	unsigned port = free_port();
	static const char ev1[] = "{\"src\":91,\"dst\":92}";
	static const char ev2[] = "{\"src\":91,\"dst\":93}";
	char boot[256];
	int64_t lag = 0;
	double end;
	pid_t mock, pid;

	pid = serve_with_mock(port, 1, boot, sizeof(boot), &mock);
	produce_to(boot, 0, ev1, strlen(ev1));
	ck_assert_int_eq(wait_applied(port, 1, 20), 1);
	end = mono() + 10 * e2e_scale();
	while (mono() < end && (lag = stat_of(port, "kafka_lag")) != 0)
		nap_ms(100);
	ck_assert_int_eq(lag, 0);

	ck_assert_int_eq(kill(mock, SIGUSR1), 0);
	end = mono() + 15 * e2e_scale();
	while (mono() < end && (lag = stat_of(port, "kafka_lag")) != -1)
		nap_ms(100);
	ck_assert_msg(lag == -1, "kafka_lag %lld with the broker down",
		      (long long)lag);
	ck_assert_int_eq(metric_of(port, "triad_kafka_consumer_lag"), -1);

	ck_assert_int_eq(kill(mock, SIGUSR2), 0);
	produce_to(boot, 0, ev2, strlen(ev2));
	ck_assert_int_eq(wait_applied(port, 2, 30), 2);
	end = mono() + 15 * e2e_scale();
	while (mono() < end && (lag = stat_of(port, "kafka_lag")) != 0)
		nap_ms(100);
	ck_assert_msg(lag == 0, "kafka_lag %lld with the broker up again",
		      (long long)lag);
	stop_with_mock(pid, mock);
}
END_TEST

/* ---- the topic as Kafka holds it ---------------------------------------- */

/* A plain librdkafka consumer of boot. The tests assign partitions with
 * explicit offsets and never subscribe, so the group is never joined (nor
 * committed to); librdkafka wants a group.id for rd_kafka_assign all the
 * same. */
static rd_kafka_t *raw_consumer(const char *boot)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char es[256];
	rd_kafka_t *rk;

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(rd_kafka_conf_set(c, "bootstrap.servers", boot, es,
					sizeof(es)) == RD_KAFKA_CONF_OK &&
		      rd_kafka_conf_set(c, "group.id", "triad-test-reader", es,
					sizeof(es)) == RD_KAFKA_CONF_OK &&
		      rd_kafka_conf_set(c, "enable.auto.commit", "false", es,
					sizeof(es)) == RD_KAFKA_CONF_OK &&
		      rd_kafka_conf_set(c, "enable.partition.eof", "true", es,
					sizeof(es)) == RD_KAFKA_CONF_OK,
		      "%s", es);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, es, sizeof(es));
	ck_assert_msg(rk != NULL, "%s", es);
	return rk;
}

/* raw_consumer with partition 0 of "ev" assigned from its start. */
static rd_kafka_t *ev_reader(const char *boot)
{
	rd_kafka_t *rk = raw_consumer(boot);
	rd_kafka_topic_partition_list_t *tl =
		rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(tl, "ev", 0)->offset =
		RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(rk, tl), 0);
	rd_kafka_topic_partition_list_destroy(tl);
	return rk;
}

/* The high watermark (next offset to be written) of topic/part. */
static int64_t high_of(rd_kafka_t *rk, const char *topic, int32_t part)
{
	int64_t lo, hi;
	rd_kafka_resp_err_t err;
	double end = mono() + 20 * e2e_scale();

	/* the mock may still be electing leaders right after start-up */
	while ((err = rd_kafka_query_watermark_offsets(rk, topic, part, &lo,
						       &hi, 2000)) &&
	       mono() < end)
		nap_ms(100);
	ck_assert_msg(!err, "watermarks of %s/%d: %s", topic, (int)part,
		      rd_kafka_err2str(err));
	return hi;
}

/*
 * POST /admin/checkpoint with Kafka: "topic" is the topic consumed and
 * "offsets" has, for every partition that holds messages, the next offset
 * to consume, which after everything was applied is the partition's high
 * watermark; members and edges are /stats's.
 */
/* The producer (triad replay) tells why it cannot deliver: librdkafka's
 * error events reach its log with their reason (a replay to a dead broker
 * said nothing for 30 s, then only "Message timed out"). */
struct seen {
	int n;
	char first[512];
};

/*
 * A state's offsets are positions in the cluster they were consumed from:
 * restarted against another cluster under the same --brokers role and
 * topic (here a new mock, and the stored id made another's: two mocks
 * may share one), the server says so and consumes nothing, the
 * state as it was (before, it resumed at the stored offsets in the other
 * cluster's partitions: skipped its first messages or read them twice,
 * silently); a new --state consumes that cluster.
 */
START_TEST(kafka_other_cluster_refused)
{
	unsigned port = free_port();
	char boot[256], state[256], *args[] = { "--state", state, "--brokers",
						boot, "--topic", "ev", NULL };
	pid_t mock, pid;
	double end;

	snprintf(state, sizeof(state), "%s", tpath("state"));
	write_file(tpath("a.ndjson"), "{\"src\":1,\"dst\":2,\"ts\":1600000000}\n"
		   "{\"src\":1,\"dst\":3,\"ts\":1600000001}\n"
		   "{\"src\":2,\"dst\":3,\"ts\":1600000002}\n");
	write_file(tpath("b.ndjson"), "{\"src\":7,\"dst\":8,\"ts\":1600000003}\n"
		   "{\"src\":7,\"dst\":9,\"ts\":1600000004}\n");
	mock = mock_start("ev", 1, boot, sizeof(boot));
	pid = serve_start(port, args);
	replay(boot, tpath("a.ndjson"));
	ck_assert_int_eq(wait_applied(port, 3, 20), 3);
	stop_with_mock(pid, mock);
	{
		/* the state names the cluster; another one's name in its
		 * place, whatever the next mock calls itself (librdkafka
		 * names a mock after its address, which under ASan comes
		 * out the same in two processes) */
		struct err e = { "" };
		struct store *st = store_open(state, &e);
		char id[256], other[300];

		ck_assert_msg(st != NULL, "%s", e.msg);
		ck_assert_int_eq(store_cluster_get(st, "ev", id, sizeof(id), &e),
				 1);
		ck_assert_msg(!strncmp(id, "mockCluster", 11), "%s", id);
		snprintf(other, sizeof(other), "other-%s", id);
		ck_assert_int_eq(store_cluster_put(st, "ev", other, &e), 0);
		store_close(st);
	}

	mock = mock_start("ev", 1, boot, sizeof(boot));
	replay(boot, tpath("b.ndjson"));
	unlink(tpath("stderr.log"));
	pid = serve_start(port, args);
	end = mono() + 20 * e2e_scale();
	while (mono() < end && !log_has("answers as cluster", "not consuming"))
		nap_ms(50);
	ck_assert_msg(log_has("were consumed from Kafka cluster \"other-mockCluster",
			      "give the brokers of"), "no refusal logged");
	nap_ms(500);
	ck_assert_int_eq(stat_of(port, "events_applied"), 0);
	ck_assert_int_eq(stat_of(port, "edges"), 3);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);

	snprintf(state, sizeof(state), "%s", tpath("state2"));
	pid = serve_start(port, args);
	ck_assert_int_eq(wait_applied(port, 2, 20), 2);
	ck_assert_int_eq(stat_of(port, "edges"), 2);
	stop_with_mock(pid, mock);
}
END_TEST

/*
 * Kafka events logged but not applied (TRIAD_FAULT_APPLY_AT standing in
 * for out of memory) are taken as consumed: the checkpoints are held, the
 * consumer goes on (its lag drains) and a restart applies the log. The
 * knob answered as if nothing had been logged: the consumer offered the
 * batch again every 200 ms, logging it again each time, and its lag never
 * drained.
 */
START_TEST(kafka_unapplied_events_consumed_once)
{
	unsigned port = free_port();
	char boot[256], state[256], *args[] = { "--state", state, "--brokers",
						boot, "--topic", "ev", NULL };
	pid_t mock, pid;
	double end;
	int64_t lag = -2;

	snprintf(state, sizeof(state), "%s", tpath("state"));
	write_file(tpath("a.ndjson"), "{\"src\":1,\"dst\":2,\"ts\":1600000000}\n"
		   "{\"src\":1,\"dst\":3,\"ts\":1600000001}\n"
		   "{\"src\":2,\"dst\":3,\"ts\":1600000002}\n"
		   "{\"src\":3,\"dst\":4,\"ts\":1600000003}\n");
	mock = mock_start("ev", 1, boot, sizeof(boot));
	replay(boot, tpath("a.ndjson"));
	unlink(tpath("stderr.log"));
	setenv("TRIAD_FAULT_APPLY_AT", "2", 1);
	pid = serve_start(port, args);
	unsetenv("TRIAD_FAULT_APPLY_AT");
	end = mono() + 20 * e2e_scale();
	while (mono() < end && !log_has("checkpoints are held", ""))
		nap_ms(50);
	ck_assert(log_has("checkpoints are held", ""));
	end = mono() + 10 * e2e_scale();
	while (mono() < end && (lag = stat_of(port, "kafka_lag")) != 0)
		nap_ms(100);
	ck_assert_msg(lag == 0, "kafka_lag %lld: the batch is offered again",
		      (long long)lag);
	ck_assert_int_eq(stat_of(port, "edges"), 1);
	kill9(pid);
	pid = serve_start(port, args);
	ck_assert_int_eq(stat_of(port, "edges"), 4);
	ck_assert_int_eq(stat_of(port, "kafka_lag") <= 0, 1);
	stop_with_mock(pid, mock);
}
END_TEST

static void seen_log(void *ctx, const char *why)
{
	struct seen *s = ctx;

	if (!s->n++)
		snprintf(s->first, sizeof(s->first), "%s", why);
}

START_TEST(producer_logs_dead_broker)
{
	struct seen s = { 0, "" };
	struct kafka_producer *kp;
	struct err e = { "" };
	double end = mono() + 10;

	kp = kafka_producer_new("127.0.0.1:1", "ev", &e);
	ck_assert_msg(kp != NULL, "%s", e.msg);
	kafka_producer_set_log(kp, seen_log, &s);
	ck_assert_int_eq(kafka_produce(kp, "1", 1, "{}", 2, &e), 0);
	while (!s.n && mono() < end) /* serves the callbacks, fails */
		ck_assert_int_eq(kafka_producer_flush(kp, 200, &e), -1);
	ck_assert_int_ge(s.n, 1);
	ck_assert_msg(strstr(s.first, "127.0.0.1:1") &&
		      strstr(s.first, "_TRANSPORT"), "%s", s.first);
	kafka_producer_free(kp);
}
END_TEST

/* Produce n values (n edges src -> base + i when value is NULL) to
 * partition part of topic "ev" at boot (flushed). */
static void produce_n(const char *boot, int32_t part, const char *value,
		      size_t len, int n, unsigned base)
{
	char es[512], ev[64];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	int i;

	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", boot, es,
					   sizeof(es)), RD_KAFKA_CONF_OK);
	ck_assert_int_eq(rd_kafka_conf_set(conf, "message.max.bytes",
					   "4000000", es, sizeof(es)),
			 RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
	ck_assert_msg(rk != NULL, "%s", es);
	for (i = 0; i < n; i++) {
		const char *v = value;
		size_t l = len;

		if (!v) {
			l = (size_t)snprintf(ev, sizeof(ev),
					     "{\"src\":81,\"dst\":%u}",
					     base + (unsigned)i);
			v = ev;
		}
		while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("ev"),
				RD_KAFKA_V_PARTITION(part),
				RD_KAFKA_V_VALUE((void *)v, l),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
	}
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(rk);
}

static void produce_to(const char *boot, int32_t part, const char *value,
		       size_t len)
{
	produce_n(boot, part, value, len, 1, 0);
}

/*
 * A partition with no leader brings neither a message nor its end: the
 * merge held every other partition back for as long, silently (the Kafka
 * review: nothing applied in 30 s, no error counted, no line). Now the
 * others go on after 5 s, and the partition is named in the log; and not
 * at one 2,048-message buffer per 5 s, as at first (10,000 took 25 s).
 */
START_TEST(kafka_stalled_partition_goes_on)
{
	unsigned port = free_port();
	char es[512], boot[256];
	char *args[] = { "--events", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	static const char ev[] = "{\"src\":81,\"dst\":82}";
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_t *rk;
	pid_t pid;

	/* the mock's host client has no brokers of its own: no warning */
	ck_assert_int_eq(rd_kafka_conf_set(conf, "log_level", "3", es,
					   sizeof(es)), RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
	ck_assert_msg(rk != NULL, "%s", es);
	mc = rd_kafka_mock_cluster_new(rk, 1);
	ck_assert_ptr_nonnull(mc);
	snprintf(boot, sizeof(boot), "%s", rd_kafka_mock_cluster_bootstraps(mc));
	ck_assert_int_eq(rd_kafka_mock_topic_create(mc, "ev", 2, 1), 0);
	ck_assert_int_eq(rd_kafka_mock_partition_set_leader(mc, "ev", 1, -1), 0);
	write_file(tpath("g.txt"), small_graph);
	args[1] = (char *)tpath("g.txt");
	pid = serve_start(port, args);
	produce_to(boot, 0, ev, strlen(ev));
	ck_assert_int_eq(wait_applied(port, 1, 20), 1);
	ck_assert(log_has("kafka: partition 1", "brought nothing"));
	produce_n(boot, 0, NULL, 0, 10000, 1000);
	ck_assert_int_eq(wait_applied(port, 10001, 12), 10001);
	ck_assert_int_ge(metric_of(port, "triad_kafka_errors_total"), 1);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
}
END_TEST

/*
 * Messages deleted by retention while the server was down (the mock keeps
 * about 5 MiB a partition): the consumer resumes at the earliest kept, as
 * it must, and says which offsets it never read (they went unreported).
 */
START_TEST(kafka_offsets_never_read_reported)
{
	enum { BIG = 2000000 };
	unsigned port = free_port();
	char boot[256], *big = malloc(BIG + 64);
	char *args[] = { "--state", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	static const char first[] = "{\"src\":91,\"dst\":92}";
	static const char last[] = "{\"src\":93,\"dst\":94}";
	pid_t mock, pid;
	int i, n;

	ck_assert_ptr_nonnull(big);
	mock = mock_start("ev", 1, boot, sizeof(boot));
	args[1] = (char *)tpath("state");
	produce_to(boot, 0, first, strlen(first));
	pid = serve_start(port, args);
	ck_assert_int_eq(wait_applied(port, 1, 20), 1);
	kill(pid, SIGTERM);
	ck_assert_int_eq(wait_exit(pid, 20), 0);
	for (i = 0; i < 5; i++) { /* 10 MB: the oldest are trimmed */
		n = snprintf(big, 64, "{\"src\":%d,\"dst\":%d,\"pad\":\"",
			     200 + i, 300 + i);
		memset(big + n, 'x', BIG);
		memcpy(big + n + BIG, "\"}", 2);
		produce_to(boot, 0, big, (size_t)n + BIG + 2);
	}
	produce_to(boot, 0, last, strlen(last));
	pid = serve_start(port, args);
	ck_assert_int_ge(wait_applied(port, 1, 20), 1);
	ck_assert_int_ge(metric_of(port, "triad_kafka_skipped_offsets_total"), 1);
	ck_assert(log_has("kafka: partition 0: offsets 1 to", "never read"));
	stop_with_mock(pid, mock);
	free(big);
}
END_TEST

/*
 * A checkpoint that fails (a full map) is tried again after 1 s, doubling
 * up to --checkpoint-secs: it was tried every 20 ms, each time writing the
 * whole graph under the writer's lock (the Kafka review: 194 failures in
 * 10 s). Kafka ingest meanwhile stops short of what the state cannot hold.
 */
START_TEST(checkpoint_failures_back_off)
{
	enum { N = 100000 };
	unsigned port = free_port();
	char boot[256];
	char *args[] = { "--state", NULL, "--brokers", boot, "--topic", "ev",
			 "--checkpoint-secs", "2", NULL };
	int64_t f0, f1;
	pid_t mock, pid;
	FILE *f;
	size_t i;

	mock = mock_start("ev", 1, boot, sizeof(boot));
	f = fopen(tpath("ev.ndjson"), "w");
	ck_assert_ptr_nonnull(f);
	for (i = 0; i < N; i++)
		fprintf(f, "{\"src\":%zu,\"dst\":%zu,\"ts\":%zu}\n",
			1 + i % 997, 5000 + i, 1600000000 + i);
	fclose(f);
	args[1] = (char *)tpath("state");
	setenv("TRIAD_STATE_MAP_BYTES", "1048576", 1);
	pid = serve_start(port, args);
	unsetenv("TRIAD_STATE_MAP_BYTES");
	replay(boot, tpath("ev.ndjson"));
	for (i = 0; i < 100 && metric_of(port, "triad_checkpoint_failures_total") < 1; i++)
		nap_ms(100);
	f0 = metric_of(port, "triad_checkpoint_failures_total");
	ck_assert_int_ge(f0, 1);
	nap_ms(6000);
	f1 = metric_of(port, "triad_checkpoint_failures_total");
	ck_assert_msg(f1 - f0 <= 6, "%lld failed checkpoints in 6 s",
		      (long long)(f1 - f0));
	kill9(pid); /* a stop would fail its final checkpoint: exit 1 */
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

START_TEST(kafka_checkpoint_reports_offsets)
{
	enum { N = 600, PARTS = 3 };
	unsigned port = free_port();
	char boot[256];
	char *args[] = { "--state", NULL, "--brokers", boot, "--topic", "ev",
			 NULL };
	int64_t high[PARTS], next[PARTS];
	struct resp r;
	json_object *o, *v, *offs;
	rd_kafka_t *rk;
	pid_t mock, pid;
	FILE *f;
	size_t i, n;
	int p;

	mock = mock_start("ev", PARTS, boot, sizeof(boot));
	f = fopen(tpath("ev.ndjson"), "w");
	ck_assert_ptr_nonnull(f);
	for (i = 0; i < N; i++)
		fprintf(f, "{\"src\":%zu,\"dst\":%zu,\"ts\":%zu}\n", 1 + i % 41,
			100 + i, 1600000000 + i);
	fclose(f);
	args[1] = (char *)tpath("state");
	pid = serve_start(port, args);
	replay(boot, tpath("ev.ndjson"));
	ck_assert_int_eq(wait_applied(port, N, 20), N);

	r = must(port, "POST", "/admin/checkpoint", NULL);
	ck_assert_int_eq(r.status, 200);
	o = parse_json(&r);
	ck_assert_int_eq(jint(o, "members"), stat_of(port, "members"));
	ck_assert_int_eq(jint(o, "edges"), stat_of(port, "edges"));
	ck_assert_int_eq(jint(o, "edges"), N);
	ck_assert_int_ge(jint(o, "chunks_written"), 1);
	ck_assert_int_gt(jint(o, "bytes_written"), 0);
	ck_assert_int_ge(jint(o, "log_batches_dropped"), 0);
	ck_assert_int_ge(jint(o, "took_us"), 0);
	ck_assert(json_object_object_get_ex(o, "topic", &v));
	ck_assert(json_object_is_type(v, json_type_string));
	ck_assert_str_eq(json_object_get_string(v), "ev");
	ck_assert(json_object_object_get_ex(o, "offsets", &offs));
	ck_assert(json_object_is_type(offs, json_type_array));
	for (p = 0; p < PARTS; p++)
		next[p] = -1;
	n = json_object_array_length(offs);
	ck_assert_uint_le(n, PARTS);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(offs, i);
		int64_t part = jint(e, "partition");

		ck_assert_int_ge(part, 0);
		ck_assert_int_lt(part, PARTS);
		ck_assert_msg(next[part] < 0, "partition %d listed twice",
			      (int)part);
		next[part] = jint(e, "next");
	}
	json_object_put(o);
	resp_free(&r);

	rk = raw_consumer(boot);
	for (p = 0; p < PARTS; p++) {
		high[p] = high_of(rk, "ev", p);
		if (high[p] > 0 || next[p] >= 0)
			ck_assert_msg(next[p] == high[p], "partition %d: next "
				      "%lld, high watermark %lld", p,
				      (long long)next[p], (long long)high[p]);
	}
	ck_assert_int_eq(high[0] + high[1] + high[2], N);
	rd_kafka_destroy(rk);

	/* after kill -9 and a restart that has consumed nothing yet (the
	 * brokers unreachable), a checkpoint saves and reports the offsets
	 * the state holds (it reported none) */
	kill(pid, SIGKILL);
	ck_assert_int_ge(wait_exit(pid, 20), 0);
	{
		char dead[64];

		snprintf(dead, sizeof(dead), "127.0.0.1:%u", free_port());
		args[3] = dead;
		pid = serve_start(port, args);
		args[3] = boot;
	}
	r = must(port, "POST", "/admin/checkpoint", NULL);
	ck_assert_int_eq(r.status, 200);
	o = parse_json(&r);
	ck_assert(json_object_object_get_ex(o, "offsets", &offs));
	n = json_object_array_length(offs);
	for (i = 0, p = 0; p < PARTS; p++)
		i += high[p] > 0;
	ck_assert_uint_eq(n, i);
	for (i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(offs, i);
		int64_t part = jint(e, "partition");

		ck_assert(part >= 0 && part < PARTS);
		ck_assert_int_eq(jint(e, "next"), high[part]);
	}
	json_object_put(o);
	resp_free(&r);

	stop_with_mock(pid, mock);
}
END_TEST

/* ---- triad replay: keys, order, --rate -------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * `triad replay --rate 1000` of 2,000 events whose file order is not
 * their time order: read back from the mock's partitions (assigned from
 * the beginning), every event is there once, its message key is the
 * decimal src (so one src always lands in one partition), each partition
 * is in ts order, and the rate holds: the run takes at least ~2 s (1.5 s
 * asserted) and no second of produce timestamps holds more than 1,000
 * events plus slack for one pacing step (loose bounds: a slow machine
 * only makes it slower).
 */
START_TEST(replay_keys_by_src_and_bounds_rate)
{
	enum { N = 2000, PARTS = 3, SRCS = 97 };
	static const uint64_t big[2] = { 18446744073709551615ull,
					 12345678901234567890ull };
	char boot[256];
	char *args[] = { "replay", NULL, "--brokers", boot, "--topic", "ev",
			 "--rate", "1000", "--quiet", NULL };
	static unsigned char seen[N];
	static int64_t stamp[N];
	int src_part[SRCS + 2];
	int64_t last_ts[PARTS];
	rd_kafka_topic_partition_list_t *tl;
	rd_kafka_t *rk;
	double t0, took, end;
	int got = 0, stamps = 0, eofs = 0, eof[PARTS] = { 0 }, i, j, p;
	pid_t mock, pid;
	FILE *f;

	mock = mock_start("ev", PARTS, boot, sizeof(boot));
	f = fopen(tpath("ev.ndjson"), "w");
	ck_assert_ptr_nonnull(f);
	/* event i: dst names it; ts a permutation of i (7919 is prime to
	 * 2000), so replay must sort; src small ids and two beyond 2^63 */
	for (i = 0; i < N; i++) {
		uint64_t src = i % 50 == 7 ? big[(i / 50) & 1] :
					     (uint64_t)(1 + i % SRCS);

		fprintf(f, "{\"op\":\"%s\",\"src\":%llu,\"dst\":%d,"
			"\"ts\":%d}\n", i % 10 == 3 ? "remove" : "add",
			(unsigned long long)src, 500000 + i,
			1600000000 + ((i * 7919) % N) * 10);
	}
	fclose(f);
	args[1] = (char *)tpath("ev.ndjson");
	t0 = mono();
	pid = spawn(NULL, args);
	ck_assert_int_eq(wait_exit(pid, 60), 0);
	took = mono() - t0;
	ck_assert_msg(took >= 1.5, "2000 events at --rate 1000 took %.2f s",
		      took);

	rk = raw_consumer(boot);
	tl = rd_kafka_topic_partition_list_new(PARTS);
	for (p = 0; p < PARTS; p++) {
		/* the replay flushed before it exited: all is written, and
		 * an empty partition sends no EOF to wait for */
		rd_kafka_topic_partition_list_add(tl, "ev", p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
		last_ts[p] = -1;
		if (high_of(rk, "ev", p) == 0) {
			eof[p] = 1;
			eofs++;
		}
	}
	ck_assert_int_eq(rd_kafka_assign(rk, tl), 0);
	rd_kafka_topic_partition_list_destroy(tl);
	for (i = 0; i < SRCS + 2; i++)
		src_part[i] = -1;
	end = mono() + 30 * e2e_scale();
	while ((got < N || eofs < PARTS) && mono() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		rd_kafka_timestamp_type_t tt;
		json_tokener *tok;
		json_object *o, *v;
		uint64_t src;
		int64_t ts, dst;
		char key[32];
		int si;

		if (!m)
			continue;
		p = m->partition;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (p >= 0 && p < PARTS && !eof[p]) {
				eof[p] = 1;
				eofs++;
			}
			rd_kafka_message_destroy(m);
			continue;
		}
		ck_assert_msg(!m->err, "consume: %s",
			      rd_kafka_message_errstr(m));
		ck_assert_int_ge(p, 0);
		ck_assert_int_lt(p, PARTS);
		ck_assert_ptr_nonnull(tok = json_tokener_new());
		o = json_tokener_parse_ex(tok, m->payload, (int)m->len);
		json_tokener_free(tok);
		ck_assert_msg(o != NULL, "value not JSON: %.*s", (int)m->len,
			      (const char *)m->payload);
		ck_assert(json_object_object_get_ex(o, "src", &v));
		src = json_object_get_uint64(v);
		dst = jint(o, "dst") - 500000;
		ts = jint(o, "ts");
		json_object_put(o);
		ck_assert_int_ge(dst, 0);
		ck_assert_int_lt(dst, N);
		ck_assert_msg(!seen[dst], "event %lld twice", (long long)dst);
		seen[dst] = 1;
		ck_assert_int_eq(ts, 1600000000 + ((dst * 7919) % N) * 10);
		/* the key is the decimal src, nothing more */
		snprintf(key, sizeof(key), "%llu", (unsigned long long)src);
		ck_assert_msg(m->key && m->key_len == strlen(key) &&
			      !memcmp(m->key, key, m->key_len),
			      "event %lld: key \"%.*s\", src %s", (long long)dst,
			      (int)m->key_len, m->key ? (const char *)m->key : "",
			      key);
		si = src == big[0] ? SRCS : src == big[1] ? SRCS + 1 :
							    (int)src - 1;
		ck_assert_int_ge(si, 0);
		ck_assert_int_lt(si, SRCS + 2);
		ck_assert_msg(src_part[si] < 0 || src_part[si] == p,
			      "src %s in partitions %d and %d", key,
			      src_part[si], p);
		src_part[si] = p;
		ck_assert_msg(ts >= last_ts[p], "partition %d: ts %lld after "
			      "%lld", p, (long long)ts, (long long)last_ts[p]);
		last_ts[p] = ts;
		ts = rd_kafka_message_timestamp(m, &tt);
		if (tt != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
			stamp[stamps++] = ts;
		got++;
		rd_kafka_message_destroy(m);
	}
	rd_kafka_destroy(rk);
	ck_assert_int_eq(got, N);
	/* the rate, from the messages' own produce times (ms): 2000 events
	 * span ~2 s, and a sliding second holds at most 1000 + one pacing
	 * step of 64, with 20% slack */
	if (stamps == N) {
		qsort(stamp, N, sizeof(stamp[0]), cmp_i64);
		ck_assert_msg(stamp[N - 1] - stamp[0] >= 1400,
			      "produce times span %lld ms",
			      (long long)(stamp[N - 1] - stamp[0]));
		for (i = 0, j = 0; i < N; i++) {
			while (stamp[i] - stamp[j] >= 1000)
				j++;
			ck_assert_msg(i - j + 1 <= 1300, "%d events within "
				      "one second", i - j + 1);
		}
	}
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

/*
 * CONTRACT: long work, replay among it, shows progress on stderr when
 * stderr is a terminal, and --quiet silences it. replay said "N/total"
 * once every 100,000 events, so a rate-limited one was silent for as long
 * as those took (--rate 1000: 100 s; a smaller file: its whole run). On a
 * terminal (a pty here) it now says so once a second: 600 events at
 * --rate 300 take 2 s, so at least one progress line comes before the
 * closing one. With --quiet a terminal gets nothing at all.
 */
static size_t run_on_pty(char *const *args, char *out, size_t cap, int *rc)
{
	char *argv[32];
	double end = mono() + 60 * e2e_scale();
	size_t n = 0;
	int master, i, st;
	pid_t pid;

	argv[0] = (char *)triad_bin;
	for (i = 0; args[i] && i < 30; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = forkpty(&master, NULL, NULL, NULL);
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		struct pollfd pf = { master, POLLIN, 0 };
		ssize_t r;

		if (mono() > end) {
			kill9(pid);
			ck_abort_msg("%s on a pty ran past 60 s", args[0]);
		}
		if (poll(&pf, 1, 200) <= 0)
			continue;
		/* EIO once the child has exited and the pty is closed */
		r = read(master, out + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap - 1)
			break;
	}
	out[n] = '\0';
	close(master);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return n;
}

START_TEST(replay_progress_on_a_terminal)
{
	char boot[256], out[8192];
	char *args[] = { "replay", NULL, "--brokers", boot, "--topic", "ev",
			 "--rate", "300", NULL, NULL };
	const char *done;
	pid_t mock;
	FILE *f;
	int i, rc;

	mock = mock_start("ev", 1, boot, sizeof(boot));
	f = fopen(tpath("ev.txt"), "w");
	ck_assert_ptr_nonnull(f);
	for (i = 0; i < 600; i++)
		fprintf(f, "%d %d %d\n", 1 + i % 50, 1000 + i, 1600000000 + i);
	fclose(f);
	args[1] = (char *)tpath("ev.txt");

	run_on_pty(args, out, sizeof(out), &rc);
	ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
	done = strstr(out, "triad replay: 600 events to \"ev\"");
	ck_assert_msg(done != NULL, "no closing line: %s", out);
	ck_assert_msg(strstr(out, "/600") && strstr(out, "/600") < done,
		      "no progress before the closing line: %s", out);

	/* --quiet: nothing, not even the closing line */
	args[6] = "--quiet";
	args[7] = NULL;
	run_on_pty(args, out, sizeof(out), &rc);
	ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
	ck_assert_msg(out[0] == '\0', "--quiet wrote: %s", out);

	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

/*
 * Ctrl-C (or SIGTERM) stops a replay cleanly: what was sent is delivered,
 * the one line it leaves says how many of how many events went, and the
 * process then dies of the signal as the caller expects. It died at once,
 * saying nothing, so a rate-limited replay could not be resumed where it
 * stopped. The self-loop a file holds is named too (it was dropped
 * silently, so the file's lines and the count said differed).
 */
START_TEST(replay_stopped_says_how_far)
{
	char boot[256], line[512];
	char *args[] = { "replay", NULL, "--brokers", boot, "--topic", "ev",
			 "--rate", "100", NULL };
	rd_kafka_t *rk;
	size_t sent = 0, total = 0;
	double end;
	int got = 0, i;
	pid_t mock, pid;
	FILE *f;

	mock = mock_start("ev", 1, boot, sizeof(boot));
	f = fopen(tpath("ev.txt"), "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "7 7 1600000000\n");
	for (i = 0; i < 500; i++)
		fprintf(f, "%d %d %d\n", 1 + i, 1000 + i, 1600000000 + i);
	fclose(f);
	args[1] = (char *)tpath("ev.txt");
	pid = spawn(NULL, args);
	nap_ms(1500);
	kill(pid, SIGINT);
	ck_assert_int_eq(wait_exit(pid, 30), 128 + SIGINT);
	f = fopen(tpath("stderr.log"), "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		const char *q = strstr(line, "stopped by Interrupt: ");

		if (q)
			ck_assert_int_eq(sscanf(q, "stopped by Interrupt: %zu of "
						"%zu events", &sent, &total), 2);
	}
	fclose(f);
	ck_assert_uint_eq(total, 500);
	ck_assert_msg(sent > 0 && sent < 500, "%zu sent", sent);
	ck_assert(log_has("triad replay: ", "1 self-loop in the file dropped"));

	/* exactly those were delivered */
	rk = ev_reader(boot);
	end = mono() + 10 * e2e_scale();
	while (mono() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

		if (!m)
			continue;
		if (!m->err)
			got++;
		rd_kafka_message_destroy(m);
		if ((size_t)got > sent)
			break;
	}
	rd_kafka_destroy(rk);
	ck_assert_int_eq(got, (int)sent);
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

/* CPU seconds (user + system) pid has used so far, from /proc; -1. */
static double cpu_s(pid_t pid)
{
	char path[64], buf[1024], *q;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* after "(comm)": state and 10 fields, then utime and stime */
	if (!(q = strrchr(buf, ')')) ||
	    sscanf(q + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
		   "%llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * A low --rate is a rate too: 40 events at --rate 20 take about 2 s, and
 * no second of produce times holds more than 20 (+2). Pacing looked at the
 * clock every 64 events, so all 40 went at once (and --rate 1 sent 64 in
 * a burst, then waited 64 s). And a rate so low that the wait for the next
 * event passes INT_MAX ms (--rate 1e-5: 6.4e9 ms) waits asleep: the wait
 * in ms overflowed its int, went negative, and the loop spun a core.
 */
START_TEST(replay_low_rate_paces_each_event)
{
	enum { N = 40 };
	char boot[256];
	char *args[] = { "replay", NULL, "--brokers", boot, "--topic", "ev",
			 "--rate", "20", "--quiet", NULL };
	static int64_t stamp[N];
	rd_kafka_t *rk;
	double t0, took, end, cpu;
	int got = 0, i, j;
	pid_t mock, pid;
	FILE *f;

	mock = mock_start("ev", 1, boot, sizeof(boot));
	f = fopen(tpath("ev.txt"), "w");
	ck_assert_ptr_nonnull(f);
	for (i = 0; i < N; i++)
		fprintf(f, "%d %d %d\n", 1 + i, 1000 + i, 1600000000 + i);
	fclose(f);
	args[1] = (char *)tpath("ev.txt");
	t0 = mono();
	pid = spawn(NULL, args);
	ck_assert_int_eq(wait_exit(pid, 60), 0);
	took = mono() - t0;
	ck_assert_msg(took >= 1.7, "%d events at --rate 20 took %.2f s", N,
		      took);

	rk = ev_reader(boot);
	end = mono() + 30 * e2e_scale();
	while (got < N && mono() < end) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		rd_kafka_timestamp_type_t tt;

		if (!m)
			continue;
		if (!m->err) {
			stamp[got] = rd_kafka_message_timestamp(m, &tt);
			ck_assert(tt != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE);
			got++;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_destroy(rk);
	ck_assert_int_eq(got, N);
	qsort(stamp, N, sizeof(stamp[0]), cmp_i64);
	for (i = 0, j = 0; i < N; i++) {
		while (stamp[i] - stamp[j] >= 1000)
			j++;
		ck_assert_msg(i - j + 1 <= 22, "%d events within one second "
			      "at --rate 20", i - j + 1);
	}

	/* --rate 1e-5: the first event, then a wait of 10^5 s, asleep. The
	 * CPU is measured over 1.5 s after start-up (which, under valgrind,
	 * takes seconds of CPU of its own) */
	args[7] = "1e-5";
	pid = spawn(NULL, args);
	nap_ms(e2e_scale() > 1 ? 6000 : 1500);
	took = cpu_s(pid);
	nap_ms(1500);
	cpu = cpu_s(pid);
	kill9(pid);
	ck_assert_msg(took >= 0 && cpu >= 0 && cpu - took < 0.5, "--rate 1e-5 "
		      "used %.2f s of CPU in 1.5 s", cpu - took);
	kill(mock, SIGTERM);
	ck_assert_int_eq(wait_exit(mock, 20), 0);
}
END_TEST

static Suite *kafka_suite(void)
{
	Suite *s = suite_create("kafka");
	TCase *t = tcase_create("e2e");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, kafka_exactly_once_across_kill9);
	tcase_add_test(t, kafka_other_cluster_refused);
	tcase_add_test(t, kafka_unapplied_events_consumed_once);
	tcase_add_test(t, kafka_malformed_counted_and_skipped);
	tcase_add_test(t, kafka_future_timestamp_does_not_stall);
	tcase_add_test(t, kafka_down_keeps_serving);
	tcase_add_test(t, kafka_lag_unknown_while_brokers_down);
	tcase_add_test(t, kafka_checkpoint_reports_offsets);
	tcase_add_test(t, kafka_stalled_partition_goes_on);
	tcase_add_test(t, kafka_offsets_never_read_reported);
	tcase_add_test(t, checkpoint_failures_back_off);
	tcase_add_test(t, producer_logs_dead_broker);
	tcase_add_test(t, replay_keys_by_src_and_bounds_rate);
	tcase_add_test(t, replay_progress_on_a_terminal);
	tcase_add_test(t, replay_low_rate_paces_each_event);
	tcase_add_test(t, replay_stopped_says_how_far);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return testutil_main(kafka_suite());
}
