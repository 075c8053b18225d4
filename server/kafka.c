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
#include <time.h>

#include "event.h"
#include "mem.h"

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

struct kafka_consumer {
	struct kafka_consumer_opts o;
	char *brokers, *topic, *group;
	rd_kafka_t *rk;
	pthread_t tid;
	atomic_int stop;
	atomic_int assigned;
	_Atomic int64_t lag;
	struct event_parser *parser;
	int64_t *next; /* per partition; -1 unknown */
	int32_t nparts;
	struct graph_event *ev;
	size_t nev, evcap;
	struct store_offset *off;
};

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason,
			      void *opaque)
{
	struct kafka_consumer *k = opaque;

	(void)rk;
	(void)err;
	(void)reason;
	if (k->o.metrics)
		atomic_fetch_add_explicit(&k->o.metrics->kafka_errors, 1,
					  memory_order_relaxed);
}

/* Learn the partitions and assign them at the stored offsets. 0 or -1. */
static int try_assign(struct kafka_consumer *k)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_topic_partition_list_t *l = NULL;
	int32_t i, np = 0;
	int ret = -1;

	rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
	if (!rkt)
		return -1;
	if (rd_kafka_metadata(k->rk, 0, rkt, &md, 2000) ||
	    md->topic_cnt != 1 || md->topics[0].err ||
	    md->topics[0].partition_cnt <= 0)
		goto out;
	np = md->topics[0].partition_cnt;
	k->next = mem_alloc((size_t)np, sizeof(*k->next));
	k->off = mem_alloc((size_t)np, sizeof(*k->off));
	l = rd_kafka_topic_partition_list_new(np);
	if (!k->next || !k->off || !l)
		goto out;
	for (i = 0; i < np; i++) {
		int64_t nx = -1;
		int r = k->o.stored ? k->o.stored(k->o.ctx, i, &nx) : 0;

		if (r < 0)
			goto out;
		k->next[i] = r == 1 ? nx : -1;
		rd_kafka_topic_partition_list_add(l, k->topic, i)->offset =
			r == 1 ? nx : RD_KAFKA_OFFSET_BEGINNING;
	}
	if (rd_kafka_assign(k->rk, l))
		goto out;
	k->nparts = np;
	ret = 0;
out:
	if (ret) {
		free(k->next);
		free(k->off);
		k->next = NULL;
		k->off = NULL;
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

/* One message: 1 when it moved an offset (consumed), 0 otherwise. */
static int take(struct kafka_consumer *k, rd_kafka_message_t *m, size_t *nbad)
{
	struct graph_event ev;
	struct err e = { "" };

	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF &&
		    k->o.metrics)
			atomic_fetch_add_explicit(&k->o.metrics->kafka_errors,
						  1, memory_order_relaxed);
		return 0;
	}
	if (m->partition < 0 || m->partition >= k->nparts)
		return 0;
	k->next[m->partition] = m->offset + 1;
	if (!m->len) {
		if (k->o.metrics)
			metrics_kafka_bad(k->o.metrics, MK_EMPTY);
		(*nbad)++;
		return 1;
	}
	if (event_parse(k->parser, m->payload, m->len, (uint32_t)time(NULL),
			&ev, &e)) {
		if (k->o.metrics)
			metrics_kafka_bad(k->o.metrics, classify(e.msg));
		(*nbad)++;
		return 1;
	}
	k->ev[k->nev++] = ev;
	return 1;
}

static void update_lag(struct kafka_consumer *k)
{
	int64_t lag = 0;
	int32_t i;

	for (i = 0; i < k->nparts; i++) {
		int64_t lo = -1, hi = -1, pos;

		if (rd_kafka_get_watermark_offsets(k->rk, k->topic, i, &lo,
						   &hi) || hi < 0) {
			if (k->next[i] < 0)
				continue;
			hi = k->next[i];
		}
		pos = k->next[i] >= 0 ? k->next[i] : (lo >= 0 ? lo : hi);
		if (hi > pos)
			lag += hi - pos;
	}
	atomic_store(&k->lag, lag);
}

static void *consumer_main(void *arg)
{
	struct kafka_consumer *k = arg;

	while (!atomic_load(&k->stop) && !atomic_load(&k->assigned)) {
		unsigned i;

		if (!try_assign(k)) {
			atomic_store(&k->assigned, 1);
			break;
		}
		for (i = 0; i < 10 && !atomic_load(&k->stop); i++)
			sleep_ms(50);
	}
	while (!atomic_load(&k->stop)) {
		rd_kafka_message_t *m;
		size_t nbad = 0, noff = 0;
		int moved = 0;
		int32_t i;

		k->nev = 0;
		m = rd_kafka_consumer_poll(k->rk, 100);
		while (m) {
			moved |= take(k, m, &nbad);
			rd_kafka_message_destroy(m);
			if (k->nev >= k->evcap)
				break;
			m = rd_kafka_consumer_poll(k->rk, 0);
		}
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
					break;
				sleep_ms(200);
			}
		}
		update_lag(k);
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
	    conf_set(conf, "fetch.wait.max.ms", "50", e))
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
	rd_kafka_consumer_close(k->rk);
	rd_kafka_destroy(k->rk);
	event_parser_free(k->parser);
	free(k->ev);
	free(k->next);
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
};

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
