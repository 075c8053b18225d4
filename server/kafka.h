/*
 * kafka.h - everything triad does with Kafka (the only module that
 * includes librdkafka): the service's consumer, the replay producer and
 * the mock cluster.
 *
 * Consumer - what always holds:
 * - Partitions are assigned explicitly (no group join, no broker-side
 *   offset commits): each partition starts at the offset the owner's
 *   `stored` callback returns (the one saved with the graph), or at the
 *   beginning when none is stored. So exactly-once rests on the owner
 *   saving offsets atomically with the effects of the messages before them.
 * - Messages are parsed (graph/event.h) on the consumer thread and handed
 *   over in micro-batches, with the next offset of every partition the
 *   batch covers. The order across partitions is a merge by message
 *   timestamp (ties: lower partition) that every consumer of the topic
 *   reproduces, whatever order the partitions arrive in (kafka.c says when
 *   a message is released); within a partition, offset order. An event
 *   without "ts" takes its message's timestamp. A malformed message is
 *   counted by reason, skipped, and still advances its partition's offset.
 * - If `apply` fails, the same batch is offered again (after a pause)
 *   until it succeeds or the consumer stops: nothing is skipped.
 * - A broker that is down or a topic that does not exist yet is retried
 *   quietly; the owner keeps serving meanwhile.
 * - Shutdown: stop polling, close, destroy (no offsets are committed to
 *   Kafka; they live in the owner's store).
 */
#ifndef TRIAD_KAFKA_H
#define TRIAD_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "graph.h"
#include "metrics.h"
#include "store.h"

struct kafka_consumer;

struct kafka_consumer_opts {
	const char *brokers; /* bootstrap list "host:port,..." */
	const char *topic;
	const char *group;   /* group.id (only a label: no join); NULL "triad" */
	size_t batch_max;    /* events per micro-batch; 0 = 10000 */
	/* 1 with *next set when an offset is stored for partition p, 0 when
	 * none, -1 on error (retried later). */
	int (*stored)(void *ctx, int32_t p, int64_t *next);
	/* Apply a batch: n parsed events (may be 0), nbad malformed ones
	 * skipped, off[0..noff) the next offset of each partition seen so
	 * far. 0 on success; non-zero to have the batch offered again. */
	int (*apply)(void *ctx, const struct graph_event *ev, size_t n,
		     size_t nbad, const struct store_offset *off, size_t noff);
	void *ctx;
	struct metrics *metrics; /* malformed messages and errors; may be NULL */
	/* The reason of each consumer error (the brokers unreachable, the
	 * topic missing...), and NULL once consuming works again after one
	 * (partitions assigned, or a message fetched): for the service's log.
	 * Called from the consumer's thread. May be NULL. */
	void (*log)(void *ctx, const char *why);
	/* Once the brokers answer, before any partition is assigned: the
	 * cluster's id (NULL when they give none). 0 to go on; 1 to refuse
	 * the cluster, with why[0..n) saying so: logged, and nothing is
	 * consumed until a restart; -1 on error (asked again later). May be
	 * NULL. */
	int (*cluster)(void *ctx, const char *id, char *why, size_t n);
};

/* Create the consumer and start its thread. NULL with e filled. */
struct kafka_consumer *kafka_consumer_start(const struct kafka_consumer_opts *o,
					    struct err *e);

/* Stop the thread (finishing the batch in hand), close and free. NULL ok. */
void kafka_consumer_stop(struct kafka_consumer *k);

/* Messages behind the partitions' high watermarks; -1 while unknown. */
int64_t kafka_consumer_lag(const struct kafka_consumer *k);

/* 1 once partitions are assigned. */
int kafka_consumer_assigned(const struct kafka_consumer *k);

/* ---- producer (triad replay) -------------------------------------------- */

struct kafka_producer;

/* A producer for `topic`. NULL with e filled. */
struct kafka_producer *kafka_producer_new(const char *brokers,
					  const char *topic, struct err *e);

/* Hand librdkafka's error events (the brokers unreachable...) to log with
 * their reason, from the thread calling kafka_produce and
 * kafka_producer_flush. Messages are retried meanwhile until they time
 * out (30 s). */
void kafka_producer_set_log(struct kafka_producer *p,
			    void (*log)(void *ctx, const char *why), void *ctx);

/* Queue one message (key and value copied). Waits while the local queue
 * is full. 0 or -1 with e filled (a delivery error seen so far). */
int kafka_produce(struct kafka_producer *p, const void *key, size_t klen,
		  const void *val, size_t vlen, struct err *e);

/* Serve the producer's callbacks (delivery reports, error events to the
 * log) for up to ms milliseconds: a pacing producer's sleep. */
void kafka_producer_poll(struct kafka_producer *p, int ms);

/* Wait up to timeout_ms for every queued message to be delivered. 0 when
 * all were delivered, -1 with e filled (timeout or delivery errors). */
int kafka_producer_flush(struct kafka_producer *p, unsigned timeout_ms,
			 struct err *e);

/* Messages whose delivery failed so far. */
uint64_t kafka_producer_failed(const struct kafka_producer *p);

void kafka_producer_free(struct kafka_producer *p); /* NULL ok */

/* ---- mock cluster (triad kafka-mock, tests) ----------------------------- */

struct kafka_mock;

/* Start librdkafka's mock cluster (one broker on loopback) with `topic`
 * created with `partitions` partitions. NULL with e filled. */
struct kafka_mock *kafka_mock_start(const char *topic, unsigned partitions,
				    struct err *e);

/* The bootstrap address ("127.0.0.1:PORT"), valid until kafka_mock_stop. */
const char *kafka_mock_bootstraps(const struct kafka_mock *m);

/* Take the mock's broker down (down = 1: it closes its connections and
 * refuses new ones, keeping its address and its messages) or bring it up
 * again (down = 0). A broker outage for fault tests. 0 or -1 with e
 * filled. */
int kafka_mock_set_down(struct kafka_mock *m, int down, struct err *e);

void kafka_mock_stop(struct kafka_mock *m); /* NULL ok */

#endif
