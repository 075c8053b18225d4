/*
 * kafka.c - consumer, producer and mock cluster on librdkafka (kafka.h).
 */
#include "kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "event.h"
#include "mem.h"
#include "mono.h"

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac,
		      const char *buf)
{
	/* library code never prints; errors surface through counters */
	(void)rk;
	(void)level;
	(void)fac;
	(void)buf;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v,
		    struct err *e)
{
	char es[256];

	if (rd_kafka_conf_set(c, k, v, es, sizeof(es)) != RD_KAFKA_CONF_OK)
		return err_set(e, "kafka setting \"%s\": %s", k, es);
	return 0;
}

/* ---- consumer ---------------------------------------------------------- */

/*
 * Partitions are applied in one order every replica agrees on: merged by
 * the messages' Kafka timestamps (ties: lower partition first), offset
 * order within a partition. The graph numbers members in the order events
 * first mention them, and the random walk steps through neighbour lists in
 * that numbering, so two replicas give the same answers only if they
 * applied the same events in the same order; arrival order across
 * partitions depends on timing, a timestamp merge does not.
 *
 * Each partition's messages are pulled from its own queue into a small
 * buffer (so one busy partition never hides another's messages) and the
 * buffered head with the smallest key is released when no other partition
 * can still bring a smaller one: every other partition has a buffered head
 * (necessarily not smaller), or has been read to its end (partition EOF)
 * and the head is at least KAFKA_MERGE_SKEW_MS old, so a message produced
 * to that partition from now on carries a later timestamp. A stream that
 * keeps every partition busy is applied at once; an idle partition delays
 * the others by KAFKA_MERGE_SKEW_MS at most.
 *
 * A head whose timestamp is ahead of this clock (a producer's clock set
 * wrong) would never get old enough, and would hold its partition until
 * that date: a head is also released once it has waited
 * KAFKA_MERGE_WAIT_MS here. So is one held back by a partition that has
 * brought neither a message nor its end for that long (no leader, its
 * broker down: it held every other partition for as long, silently);
 * that partition is reported (kafka_errors_total and the log). Only then
 * can replicas disagree on the order, and only if such a partition later
 * brings an earlier timestamp.
 *
 * Offsets are consecutive within a partition, so a message past the one
 * expected means messages were never read: deleted by retention while
 * triad was behind or stopped (librdkafka then resumes at the earliest
 * kept), or transaction markers. Such gaps are logged and the offsets
 * skipped counted (kafka_skipped_offsets_total): the data is gone, and the
 * operator should know.
 */
#define KAFKA_MERGE_SKEW_MS 1000
#define KAFKA_MERGE_WAIT_MS 5000
#define KAFKA_PART_BUF 2048u /* messages fetched ahead per partition */

/*
 * The lag's high watermarks: librdkafka keeps those the last fetch
 * brought, so with the brokers gone they stay as they were and the lag
 * said "nothing behind" (0) for the whole outage, however much producers
 * that still reached the brokers added. A thread of its own asks the
 * brokers for the partitions' ends every KAFKA_WM_EVERY_MS (one
 * ListOffsets request a leader, never in the way of the fetches); two
 * asks in a row that get no answer make the lag -1, unknown, as before
 * the brokers first answered, until one is answered again.
 */
#define KAFKA_WM_EVERY_MS 1000u
#define KAFKA_WM_TIMEOUT_MS 500

struct pend {
	struct graph_event ev;
	int64_t ts_ms;  /* Kafka message timestamp, -1 when none */
	int64_t got_ms; /* when it was fetched (mono_ms) */
	int64_t offset;
	int bad;        /* malformed: counted, skipped, still moves the offset */
};

struct part {
	rd_kafka_queue_t *q;
	struct pend *buf; /* buf[head .. head + len) are waiting */
	size_t head, len, cap;
	int eof;          /* read to its end: nothing fetched since */
	int stalled;      /* reported as holding the others back (release) */
	int64_t expect;   /* the offset the next message should have; -1 */
};

struct kafka_consumer {
	struct kafka_consumer_opts o;
	char *brokers, *topic, *group;
	rd_kafka_t *rk;
	pthread_t tid;
	atomic_int stop;
	atomic_int assigned;
	int cluster_ok; /* o.cluster accepted the brokers' cluster */
	int cluster_asked; /* times the brokers gave no cluster id */
	int refused;    /* o.cluster refused it: nothing is consumed */
	_Atomic int64_t lag;
	atomic_int err_seen; /* an error was reported, no message since */
	struct event_parser *parser;
	int64_t *next; /* per partition, after the last message released into
			* a batch; -1 unknown */
	int64_t *done; /* the same for the batches applied (the lag's base:
			* a batch the state refuses is retried, not done) */
	int32_t nparts;
	struct part *parts;
	pthread_t wm_tid;       /* wm_main, once the partitions are assigned */
	int wm_started;
	_Atomic int64_t *wm_hi; /* per partition: its end as last asked, -1 */
	atomic_int wm_down;     /* the last two asks went unanswered */
	struct graph_event *ev;
	size_t nev, evcap;
	struct store_offset *off;
};

/* One problem: counted in kafka_errors_total, its line handed to the
 * service's log as it is. consumer_error (librdkafka's errors) also marks
 * the consumer in error, so "consuming again" follows; a stalled
 * partition (part_stalled) does not: the other partitions go on, and that
 * line would come at once. */
static void consumer_note(struct kafka_consumer *k, const char *what)
{
	if (k->o.metrics)
		atomic_fetch_add_explicit(&k->o.metrics->kafka_errors, 1,
					  memory_order_relaxed);
	if (k->o.log)
		k->o.log(k->o.ctx, what);
}

/* One consumer error: counted (kafka_errors_total) and handed to the
 * service's log with its reason. */
static void consumer_error(struct kafka_consumer *k, rd_kafka_resp_err_t err,
			   const char *reason)
{
	char why[512];

	snprintf(why, sizeof(why), "%s (%s); serving goes on, ingest resumes "
		 "when the brokers answer", reason, rd_kafka_err2name(err));
	if (k->o.log)
		atomic_store(&k->err_seen, 1);
	consumer_note(k, why);
}

/* librdkafka's error events (a broker down, all brokers down...), served
 * by rd_kafka_poll in fill(). */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason,
			      void *opaque)
{
	(void)rk;
	consumer_error(opaque, (rd_kafka_resp_err_t)err, reason);
}

static void parts_free(struct kafka_consumer *k)
{
	int32_t i;

	for (i = 0; k->parts && i < k->nparts; i++) {
		if (k->parts[i].q)
			rd_kafka_queue_destroy(k->parts[i].q);
		free(k->parts[i].buf);
	}
	free(k->parts);
	k->parts = NULL;
}

/* Learn the partitions, take their queues and assign them at the stored
 * offsets. 0, or -1 with *err and why (for the log) set. */
static int try_assign(struct kafka_consumer *k, rd_kafka_resp_err_t *err,
		      char *why, size_t len)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_topic_partition_list_t *l = NULL;
	int32_t i, np = 0;
	int ret = -1;

	*err = RD_KAFKA_RESP_ERR__FAIL;
	snprintf(why, len, "topic \"%s\": cannot assign its partitions",
		 k->topic);
	rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
	if (!rkt)
		return -1;
	if ((*err = rd_kafka_metadata(k->rk, 0, rkt, &md, 2000))) {
		snprintf(why, len, "topic \"%s\": no metadata from %s: %s",
			 k->topic, k->brokers, rd_kafka_err2str(*err));
		goto out;
	}
	if (md->topic_cnt != 1 || md->topics[0].err ||
	    md->topics[0].partition_cnt <= 0) {
		*err = md->topic_cnt == 1 ? md->topics[0].err
					  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
		snprintf(why, len, "topic \"%s\": %s", k->topic,
			 *err ? rd_kafka_err2str(*err) : "no partitions");
		goto out;
	}
	if (k->o.cluster && !k->cluster_ok) {
		char *id = rd_kafka_clusterid(k->rk, 2000);
		int r;

		/* no id yet may be a slow answer, not brokers without one:
		 * asked again before it is taken for the latter (the check
		 * would be skipped for good) */
		if (!id && ++k->cluster_asked < 3) {
			*err = RD_KAFKA_RESP_ERR__TIMED_OUT;
			snprintf(why, len, "topic \"%s\": no cluster id from %s "
				 "yet", k->topic, k->brokers);
			goto out;
		}
		r = k->o.cluster(k->o.ctx, id, why, len);
		if (id)
			rd_kafka_mem_free(k->rk, id);
		if (r) {
			k->refused = r > 0;
			*err = RD_KAFKA_RESP_ERR__FAIL;
			goto out;
		}
		k->cluster_ok = 1;
	}
	np = md->topics[0].partition_cnt;
	k->next = mem_alloc((size_t)np, sizeof(*k->next));
	k->done = mem_alloc((size_t)np, sizeof(*k->done));
	k->off = mem_alloc((size_t)np, sizeof(*k->off));
	k->parts = mem_calloc((size_t)np, sizeof(*k->parts));
	l = rd_kafka_topic_partition_list_new(np);
	if (!k->next || !k->done || !k->off || !k->parts || !l)
		goto out;
	k->nparts = np;
	for (i = 0; i < np; i++) {
		int64_t nx = -1;
		int r = k->o.stored ? k->o.stored(k->o.ctx, i, &nx) : 0;

		if (r < 0)
			goto out;
		k->next[i] = k->done[i] = r == 1 ? nx : -1;
		k->parts[i].expect = k->next[i];
		rd_kafka_topic_partition_list_add(l, k->topic, i)->offset =
			r == 1 ? nx : RD_KAFKA_OFFSET_BEGINNING;
		k->parts[i].q = rd_kafka_queue_get_partition(k->rk, k->topic, i);
		if (!k->parts[i].q)
			goto out;
		/* keep this partition's messages on its own queue */
		rd_kafka_queue_forward(k->parts[i].q, NULL);
	}
	if ((*err = rd_kafka_assign(k->rk, l))) {
		snprintf(why, len, "topic \"%s\": cannot assign its "
			 "partitions: %s", k->topic, rd_kafka_err2str(*err));
		goto out;
	}
	ret = 0;
out:
	if (ret) {
		parts_free(k);
		free(k->next);
		free(k->done);
		free(k->off);
		k->next = NULL;
		k->done = NULL;
		k->off = NULL;
		k->nparts = 0;
	}
	if (l)
		rd_kafka_topic_partition_list_destroy(l);
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return ret;
}

static enum metrics_kafka_bad classify(const char *msg)
{
	if (strstr(msg, "same member"))
		return MK_SELF_LOOP;
	if (strstr(msg, "too long"))
		return MK_TOO_LONG;
	if (!strncmp(msg, "not json", 8) || strstr(msg, "not a json") ||
	    strstr(msg, "trailing") || strstr(msg, "nul byte"))
		return MK_NOT_JSON;
	return MK_BAD_FIELD;
}

/* Room for one more pending message in pt (compacting or growing its
 * buffer). NULL when out of memory. */
static struct pend *pend_slot(struct part *pt)
{
	if (pt->head && pt->head + pt->len == pt->cap) {
		memmove(pt->buf, pt->buf + pt->head, pt->len * sizeof(*pt->buf));
		pt->head = 0;
	}
	if (pt->head + pt->len == pt->cap &&
	    mem_grow((void **)&pt->buf, &pt->cap, pt->len + 1, sizeof(*pt->buf)))
		return NULL;
	return &pt->buf[pt->head + pt->len];
}

/* Wall-clock ms, the scale of Kafka message timestamps. */
static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Offsets [from, to) of partition p were never read (see above). */
static void offsets_gone(struct kafka_consumer *k, int32_t p, int64_t from,
			 int64_t to)
{
	char why[256];

	if (k->o.metrics)
		atomic_fetch_add_explicit(&k->o.metrics->kafka_skipped,
					  (uint64_t)(to - from),
					  memory_order_relaxed);
	snprintf(why, sizeof(why), "partition %d: offsets %lld to %lld were "
		 "never read (deleted by retention before triad read them, or "
		 "transaction markers); counted in "
		 "triad_kafka_skipped_offsets_total", (int)p, (long long)from,
		 (long long)(to - 1));
	/* not an error (transactions and compaction leave gaps too), and
	 * ingest goes on: no "consuming again" after it */
	if (k->o.log)
		k->o.log(k->o.ctx, why);
}

/*
 * One fetched message or event into its partition's buffer (parsed, bad
 * ones counted). An event without "ts" takes the message's timestamp, so
 * every replica gives it the same one. -1 when out of memory (the message
 * is not taken: the consumer starts over from the offsets applied).
 */
static int take(struct kafka_consumer *k, rd_kafka_message_t *m)
{
	struct err e = { "" };
	struct part *pt;
	struct pend *x;
	rd_kafka_timestamp_type_t tt;
	int64_t ts;

	if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		consumer_error(k, m->err, rd_kafka_message_errstr(m));
		return 0;
	}
	if (m->partition < 0 || m->partition >= k->nparts)
		return 0;
	pt = &k->parts[m->partition];
	pt->stalled = 0;
	if (m->err) { /* the end of the partition, for now */
		pt->eof = 1;
		return 0;
	}
	if (!(x = pend_slot(pt)))
		return -1;
	if (pt->expect >= 0 && m->offset > pt->expect)
		offsets_gone(k, m->partition, pt->expect, m->offset);
	pt->expect = m->offset + 1;
	pt->len++;
	pt->eof = 0;
	ts = rd_kafka_message_timestamp(m, &tt);
	/* a timestamp past 2106 (the events' seconds are 32-bit) is none */
	x->ts_ms = tt == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ts < 0 ||
			   ts / 1000 > UINT32_MAX ? -1 : ts;
	x->got_ms = (int64_t)mono_ms();
	x->offset = m->offset;
	x->bad = 0;
	if (!m->len) {
		if (k->o.metrics)
			metrics_kafka_bad(k->o.metrics, MK_EMPTY);
		x->bad = 1;
		return 0;
	}
	if (event_parse(k->parser, m->payload, m->len,
			x->ts_ms >= 0 ? (uint32_t)(x->ts_ms / 1000)
				      : (uint32_t)time(NULL),
			&x->ev, &e)) {
		if (k->o.metrics)
			metrics_kafka_bad(k->o.metrics, classify(e.msg));
		x->bad = 1;
	}
	return 0;
}

/*
 * Pull what each partition queue holds into the buffers (up to
 * KAFKA_PART_BUF waiting each), and serve the consumer queue (errors; a
 * message only if one got there before its partition queue was split
 * off). Returns messages pulled, or -1 when out of memory.
 */
static ssize_t fill(struct kafka_consumer *k)
{
	rd_kafka_message_t *msgs[256], *m;
	ssize_t got = 0, n, j;
	int32_t i;
	int oom = 0;

	for (i = 0; i < k->nparts; i++) {
		struct part *pt = &k->parts[i];
		size_t room = pt->len < KAFKA_PART_BUF ? KAFKA_PART_BUF - pt->len : 0;

		if (!room || oom)
			continue;
		n = rd_kafka_consume_batch_queue(pt->q, 0, msgs,
						 room < 256 ? room : 256);
		for (j = 0; j < n; j++) {
			oom |= !oom && take(k, msgs[j]);
			rd_kafka_message_destroy(msgs[j]);
		}
		if (n > 0)
			got += n;
	}
	while ((m = rd_kafka_consumer_poll(k->rk, 0))) {
		oom |= !oom && take(k, m);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_poll(k->rk, 0); /* error events: consumer_error_cb */
	return oom ? -1 : got;
}

/* Partition i has brought neither a message nor its end while a head
 * waited KAFKA_MERGE_WAIT_MS: report it; release() goes on without it,
 * until it brings something (take clears the mark). Waiting again for
 * every head let a healthy partition through at one 2,048-message buffer
 * refill per 5 s (a review: 10,000 messages in 25.5 s). */
static void part_stalled(struct kafka_consumer *k, int32_t i)
{
	char why[160];

	k->parts[i].stalled = 1;
	snprintf(why, sizeof(why), "partition %d has brought nothing for %d s "
		 "(no leader? its broker down?): the others go on without it",
		 (int)i, KAFKA_MERGE_WAIT_MS / 1000);
	consumer_note(k, why);
}

/* Release buffered messages in merge order into k->ev (up to evcap events);
 * *nbad counts the malformed ones released. Returns messages released. */
static size_t release(struct kafka_consumer *k, size_t *nbad)
{
	int64_t now = now_ms(), mono = (int64_t)mono_ms();
	size_t done = 0;
	int32_t i, best;

	for (;;) {
		const struct pend *h = NULL, *x;
		struct part *pt;

		if (k->nev >= k->evcap)
			break;
		best = -1;
		for (i = 0; i < k->nparts; i++) {
			pt = &k->parts[i];
			if (!pt->len)
				continue;
			x = &pt->buf[pt->head];
			if (!h || x->ts_ms < h->ts_ms) {
				h = x;
				best = i;
			}
		}
		if (best < 0)
			break;
		/* an empty partition could still bring an earlier message
		 * unless it is at its end and the head is old enough (or
		 * has waited long enough: a timestamp from the future) */
		for (i = 0; i < k->nparts; i++) {
			int waited = h->got_ms + KAFKA_MERGE_WAIT_MS <= mono;

			pt = &k->parts[i];
			if (i == best || pt->len ||
			    (pt->eof && (h->ts_ms + KAFKA_MERGE_SKEW_MS <= now ||
					 waited)))
				continue;
			if (pt->stalled) /* reported: not waited for again */
				continue;
			if (!waited)
				break;
			part_stalled(k, i);
		}
		if (i < k->nparts)
			break;
		pt = &k->parts[best];
		if (h->bad)
			(*nbad)++;
		else
			k->ev[k->nev++] = h->ev;
		k->next[best] = h->offset + 1;
		pt->head++;
		pt->len--;
		done++;
	}
	return done;
}

/* Drop every buffered message and seek each partition back to the offset
 * after the last one applied (or the stored start), so the buffered ones
 * are fetched again: nothing is lost, nothing applied twice. */
static void restart(struct kafka_consumer *k)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(k->nparts);
	int32_t i;

	for (i = 0; i < k->nparts; i++) {
		k->parts[i].head = k->parts[i].len = 0;
		k->parts[i].eof = 0;
		k->parts[i].expect = k->next[i];
		if (l)
			rd_kafka_topic_partition_list_add(l, k->topic, i)->offset =
				k->next[i] >= 0 ? k->next[i] : RD_KAFKA_OFFSET_BEGINNING;
	}
	if (l) {
		rd_kafka_error_t *err = rd_kafka_seek_partitions(k->rk, l, 2000);

		if (err)
			rd_kafka_error_destroy(err);
		rd_kafka_topic_partition_list_destroy(l);
	}
	if (k->o.metrics)
		atomic_fetch_add_explicit(&k->o.metrics->kafka_errors, 1,
					  memory_order_relaxed);
	sleep_ms(200);
}

/* Sleep about ms in 50 ms steps, waking early once the consumer stops. */
static void nap(struct kafka_consumer *k, unsigned ms)
{
	unsigned w;

	for (w = 0; w < ms / 50 && !atomic_load(&k->stop); w++)
		sleep_ms(50);
}

/* Ask the brokers for every partition's end (see KAFKA_WM_EVERY_MS). */
static void *wm_main(void *arg)
{
	struct kafka_consumer *k = arg;
	int fails = 0;

	prctl(PR_SET_NAME, "triad-lag", 0, 0, 0);
	while (!atomic_load(&k->stop)) {
		rd_kafka_topic_partition_list_t *l =
			rd_kafka_topic_partition_list_new(k->nparts);
		int32_t i;
		int ok = 0;

		if (l) {
			for (i = 0; i < k->nparts; i++)
				rd_kafka_topic_partition_list_add(l, k->topic, i)
					->offset = RD_KAFKA_OFFSET_END;
			/* a timestamp of OFFSET_END asks for the latest */
			if (!rd_kafka_offsets_for_times(k->rk, l,
							KAFKA_WM_TIMEOUT_MS)) {
				ok = 1;
				for (i = 0; i < l->cnt; i++) {
					const rd_kafka_topic_partition_t *t =
						&l->elems[i];

					if (t->err || t->offset < 0 ||
					    t->partition < 0 ||
					    t->partition >= k->nparts) {
						ok = 0;
						continue;
					}
					atomic_store(&k->wm_hi[t->partition],
						     t->offset);
				}
			}
			rd_kafka_topic_partition_list_destroy(l);
		}
		fails = ok ? 0 : fails + 1;
		atomic_store(&k->wm_down, fails >= 2);
		nap(k, KAFKA_WM_EVERY_MS);
	}
	return NULL;
}

/* Start wm_main once the partitions are known; without it (no memory, no
 * thread) the lag rests on the fetched watermarks alone, as it did. */
static void wm_start(struct kafka_consumer *k)
{
	int32_t i;

	k->wm_hi = mem_alloc((size_t)k->nparts, sizeof(*k->wm_hi));
	if (!k->wm_hi)
		return;
	for (i = 0; i < k->nparts; i++)
		atomic_store(&k->wm_hi[i], -1);
	if (!pthread_create(&k->wm_tid, NULL, wm_main, k))
		k->wm_started = 1;
}

static void update_lag(struct kafka_consumer *k)
{
	int64_t lag = 0;
	int32_t i;

	if (atomic_load(&k->wm_down)) {
		atomic_store(&k->lag, -1);
		return;
	}
	for (i = 0; i < k->nparts; i++) {
		int64_t lo = -1, hi = -1, pos,
			asked = k->wm_hi ? atomic_load(&k->wm_hi[i]) : -1;

		if (rd_kafka_get_watermark_offsets(k->rk, k->topic, i, &lo,
						   &hi))
			lo = hi = -1;
		if (asked > hi)
			hi = asked;
		if (hi < 0) {
			if (k->next[i] < 0)
				continue;
			hi = k->next[i];
		}
		pos = k->done[i] >= 0 ? k->done[i] : (lo >= 0 ? lo : hi);
		if (hi > pos)
			lag += hi - pos;
	}
	atomic_store(&k->lag, lag);
}

static void *consumer_main(void *arg)
{
	struct kafka_consumer *k = arg;

	prctl(PR_SET_NAME, "triad-ingest", 0, 0, 0);
	while (!atomic_load(&k->stop) && !atomic_load(&k->assigned)) {
		rd_kafka_resp_err_t err;
		char why[512];

		if (!try_assign(k, &err, why, sizeof(why))) {
			atomic_store(&k->assigned, 1);
			if (k->o.log && atomic_exchange(&k->err_seen, 0))
				k->o.log(k->o.ctx, NULL); /* assigned after all */
			break;
		}
		if (k->refused) { /* said once; nothing to try again */
			consumer_note(k, why);
			while (!atomic_load(&k->stop))
				sleep_ms(50);
			break;
		}
		/* the brokers unreachable, the topic missing: say so (the
		 * error events first, which may say why) and try again */
		rd_kafka_poll(k->rk, 0);
		consumer_error(k, err, why);
		nap(k, 500);
	}
	if (atomic_load(&k->assigned))
		wm_start(k);
	while (!atomic_load(&k->stop)) {
		size_t nbad = 0, noff = 0, moved;
		ssize_t got;
		int32_t i;

		k->nev = 0;
		if ((got = fill(k)) < 0) {
			/* out of memory: forget what is buffered and fetch it
			 * again from the offsets applied */
			restart(k);
			continue;
		}
		if (got > 0 && k->o.log && atomic_exchange(&k->err_seen, 0))
			k->o.log(k->o.ctx, NULL); /* consuming again */
		moved = release(k, &nbad);
		if (moved) {
			for (i = 0; i < k->nparts; i++)
				if (k->next[i] >= 0) {
					k->off[noff].partition = i;
					k->off[noff].next = k->next[i];
					noff++;
				}
			while (k->o.apply(k->o.ctx, k->ev, k->nev, nbad, k->off,
					  noff)) {
				if (atomic_load(&k->stop))
					return NULL; /* not applied */
				update_lag(k); /* the batch in hand counts */
				sleep_ms(200);
			}
			memcpy(k->done, k->next, (size_t)k->nparts *
			       sizeof(*k->done));
		}
		update_lag(k);
		if (!got && !moved)
			sleep_ms(5); /* nothing new: the partition queues cannot wake us */
	}
	return NULL;
}

struct kafka_consumer *kafka_consumer_start(const struct kafka_consumer_opts *o,
					    struct err *e)
{
	struct kafka_consumer *k = mem_calloc(1, sizeof(*k));
	rd_kafka_conf_t *conf = NULL;
	char es[256];

	if (!k) {
		err_set(e, "out of memory");
		return NULL;
	}
	k->o = *o;
	atomic_store(&k->lag, -1);
	k->brokers = strdup(o->brokers);
	k->topic = strdup(o->topic);
	k->group = strdup(o->group ? o->group : "triad");
	k->evcap = o->batch_max ? o->batch_max : 10000;
	k->ev = mem_alloc(k->evcap, sizeof(*k->ev));
	k->parser = event_parser_new();
	conf = rd_kafka_conf_new();
	if (!k->brokers || !k->topic || !k->group || !k->ev || !k->parser ||
	    !conf) {
		err_set(e, "out of memory");
		goto fail;
	}
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
	rd_kafka_conf_set_opaque(conf, k);
	if (conf_set(conf, "bootstrap.servers", k->brokers, e) ||
	    conf_set(conf, "group.id", k->group, e) ||
	    conf_set(conf, "enable.auto.commit", "false", e) ||
	    conf_set(conf, "enable.auto.offset.store", "false", e) ||
	    conf_set(conf, "auto.offset.reset", "earliest", e) ||
	    conf_set(conf, "fetch.wait.max.ms", "50", e) ||
	    conf_set(conf, "enable.partition.eof", "true", e))
		goto fail;
	k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, es, sizeof(es));
	if (!k->rk) {
		err_set(e, "kafka consumer: %s", es);
		goto fail;
	}
	conf = NULL; /* owned by rk now */
	if (pthread_create(&k->tid, NULL, consumer_main, k)) {
		err_set(e, "cannot start the kafka consumer thread");
		goto fail;
	}
	return k;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	if (k->rk)
		rd_kafka_destroy(k->rk);
	k->rk = NULL;
	event_parser_free(k->parser);
	free(k->ev);
	free(k->brokers);
	free(k->topic);
	free(k->group);
	free(k);
	return NULL;
}

void kafka_consumer_stop(struct kafka_consumer *k)
{
	if (!k)
		return;
	atomic_store(&k->stop, 1);
	pthread_join(k->tid, NULL);
	if (k->wm_started)
		pthread_join(k->wm_tid, NULL);
	free((void *)k->wm_hi);
	parts_free(k); /* queue references go before close */
	rd_kafka_consumer_close(k->rk);
	rd_kafka_destroy(k->rk);
	event_parser_free(k->parser);
	free(k->ev);
	free(k->next);
	free(k->done);
	free(k->off);
	free(k->brokers);
	free(k->topic);
	free(k->group);
	free(k);
}

int64_t kafka_consumer_lag(const struct kafka_consumer *k)
{
	return k ? atomic_load(&((struct kafka_consumer *)k)->lag) : -1;
}

int kafka_consumer_assigned(const struct kafka_consumer *k)
{
	return k ? atomic_load(&((struct kafka_consumer *)k)->assigned) : 0;
}

/* ---- producer ---------------------------------------------------------- */

struct kafka_producer {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	_Atomic uint64_t failed;
	char first_err[200];
	void (*log)(void *ctx, const char *why); /* error events, or NULL */
	void *log_ctx;
};

/* Error events (a broker unreachable...), served by the poll and flush
 * calls of the thread that produces: handed to the caller's log. */
static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason,
			      void *opaque)
{
	struct kafka_producer *p = opaque;
	char why[512];

	(void)rk;
	if (p->log) {
		snprintf(why, sizeof(why), "%s (%s)", reason,
			 rd_kafka_err2name((rd_kafka_resp_err_t)err));
		p->log(p->log_ctx, why);
	}
}

void kafka_producer_set_log(struct kafka_producer *p,
			    void (*log)(void *ctx, const char *why), void *ctx)
{
	p->log = log;
	p->log_ctx = ctx;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka_producer *p = opaque;

	(void)rk;
	if (m->err) {
		if (!atomic_fetch_add(&p->failed, 1))
			snprintf(p->first_err, sizeof(p->first_err), "%s",
				 rd_kafka_err2str(m->err));
	}
}

struct kafka_producer *kafka_producer_new(const char *brokers,
					  const char *topic, struct err *e)
{
	struct kafka_producer *p = mem_calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char es[256];

	if (!p || !conf) {
		err_set(e, "out of memory");
		goto fail;
	}
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, producer_error_cb);
	rd_kafka_conf_set_opaque(conf, p);
	if (conf_set(conf, "bootstrap.servers", brokers, e) ||
	    conf_set(conf, "linger.ms", "5", e) ||
	    conf_set(conf, "queue.buffering.max.messages", "1000000", e) ||
	    conf_set(conf, "message.timeout.ms", "30000", e))
		goto fail;
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
	if (!p->rk) {
		err_set(e, "kafka producer: %s", es);
		goto fail;
	}
	conf = NULL;
	p->rkt = rd_kafka_topic_new(p->rk, topic, NULL);
	if (!p->rkt) {
		err_set(e, "kafka topic \"%s\": %s", topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	return p;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	kafka_producer_free(p);
	return NULL;
}

int kafka_produce(struct kafka_producer *p, const void *key, size_t klen,
		  const void *val, size_t vlen, struct err *e)
{
	for (;;) {
		if (!rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA,
				      RD_KAFKA_MSG_F_COPY, (void *)val, vlen,
				      key, klen, NULL))
			break;
		if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return err_set(e, "produce: %s",
				       rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_poll(p->rk, 10);
	}
	rd_kafka_poll(p->rk, 0);
	if (atomic_load(&p->failed))
		return err_set(e, "delivery failed: %s", p->first_err);
	return 0;
}

void kafka_producer_poll(struct kafka_producer *p, int ms)
{
	rd_kafka_poll(p->rk, ms);
}

int kafka_producer_flush(struct kafka_producer *p, unsigned timeout_ms,
			 struct err *e)
{
	rd_kafka_resp_err_t rc = rd_kafka_flush(p->rk, (int)timeout_ms);

	if (rc)
		return err_set(e, "flush: %s (%d messages not delivered)",
			       rd_kafka_err2str(rc), rd_kafka_outq_len(p->rk));
	if (atomic_load(&p->failed))
		return err_set(e, "%llu messages not delivered: %s",
			       (unsigned long long)atomic_load(&p->failed),
			       p->first_err);
	return 0;
}

uint64_t kafka_producer_failed(const struct kafka_producer *p)
{
	return atomic_load(&((struct kafka_producer *)p)->failed);
}

void kafka_producer_free(struct kafka_producer *p)
{
	if (!p)
		return;
	if (p->rkt)
		rd_kafka_topic_destroy(p->rkt);
	if (p->rk)
		rd_kafka_destroy(p->rk);
	free(p);
}

/* ---- mock cluster ------------------------------------------------------ */

struct kafka_mock {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
};

struct kafka_mock *kafka_mock_start(const char *topic, unsigned partitions,
				    struct err *e)
{
	struct kafka_mock *m = mem_calloc(1, sizeof(*m));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_resp_err_t rc;
	char es[256];

	if (!m || !conf) {
		err_set(e, "out of memory");
		goto fail;
	}
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
	if (!m->rk) {
		err_set(e, "kafka: %s", es);
		goto fail;
	}
	conf = NULL;
	m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
	if (!m->mc) {
		err_set(e, "cannot start the mock cluster");
		goto fail;
	}
	rc = rd_kafka_mock_topic_create(m->mc, topic, (int)partitions, 1);
	if (rc) {
		err_set(e, "mock topic \"%s\": %s", topic, rd_kafka_err2str(rc));
		goto fail;
	}
	return m;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	kafka_mock_stop(m);
	return NULL;
}

const char *kafka_mock_bootstraps(const struct kafka_mock *m)
{
	return rd_kafka_mock_cluster_bootstraps(m->mc);
}

int kafka_mock_set_down(struct kafka_mock *m, int down, struct err *e)
{
	/* the mock cluster numbers its brokers from 1 */
	rd_kafka_resp_err_t rc = down ? rd_kafka_mock_broker_set_down(m->mc, 1)
				      : rd_kafka_mock_broker_set_up(m->mc, 1);

	if (rc)
		return err_set(e, "mock broker %s: %s", down ? "down" : "up",
			       rd_kafka_err2str(rc));
	return 0;
}

void kafka_mock_stop(struct kafka_mock *m)
{
	if (!m)
		return;
	if (m->mc)
		rd_kafka_mock_cluster_destroy(m->mc);
	if (m->rk)
		rd_kafka_destroy(m->rk);
	free(m);
}
