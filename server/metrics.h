/*
 * metrics.h - request counters, the latency histogram and the Prometheus
 * text rendering of GET /metrics.
 *
 * What always holds: every counter is a relaxed atomic, so any worker may
 * count without a lock and a scrape sees values at most a moment old.
 * Names are prefixed "triad_". Request paths are a fixed set of routes
 * (unknown paths count as "other") so the label set stays bounded whatever
 * clients send.
 */
#ifndef TRIAD_METRICS_H
#define TRIAD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "graph.h"

enum metrics_route {
	MR_RECOMMEND, MR_EDGES, MR_DISMISS, MR_MEMBERS, MR_STATS, MR_HEALTHZ,
	MR_METRICS, MR_CHECKPOINT, MR_OTHER, MR_N
};

#define METRICS_NSTATUS 11 /* 200 204 400 403 404 405 409 413 500 503 other */
#define METRICS_NBUCKETS 14

enum metrics_kafka_bad {
	MK_EMPTY, MK_NOT_JSON, MK_BAD_FIELD, MK_SELF_LOOP, MK_TOO_LONG, MK_N
};

/* What wrote to the --state directory when a write failed. */
enum metrics_state_op { MS_LOG, MS_CHECKPOINT, MS_DISMISSAL, MS_N };

struct metrics {
	_Atomic uint64_t req[MR_N][METRICS_NSTATUS];
	_Atomic uint64_t lat[MR_N][METRICS_NBUCKETS]; /* not cumulative */
	_Atomic uint64_t lat_sum_us[MR_N];
	_Atomic uint64_t kafka_bad[MK_N];
	_Atomic uint64_t kafka_errors; /* consumer errors reported */
	_Atomic uint64_t kafka_skipped; /* offsets never read (kafka.c) */
	_Atomic uint64_t state_fail[MS_N]; /* failed state writes, by op */
};

/* Point-in-time values the service hands to the renderer. */
struct metrics_gauges {
	uint64_t members, edges, bytes, delta_entries, pending_merges;
	uint64_t arena_freed;  /* bytes of arena pages handed back */
	uint64_t http_accepted, http_rejected;   /* events via POST /edges */
	uint64_t kafka_accepted, kafka_rejected; /* events via Kafka */
	uint64_t graph_added, graph_refreshed, graph_removed, graph_noops;
	int64_t ingest_lag_s;  /* now - ts of the last applied event; -1 none */
	int64_t kafka_lag;     /* messages behind the high watermark; -1 none */
	uint64_t checkpoints;
	int state_writable;    /* 0 from a failed state write until one succeeds */
	uint64_t dismissals;
	int ready;
	const char *model;     /* "NAME@VERSION" */
	unsigned workers;      /* HTTP workers, and the connections each */
	const uint64_t *conns; /* accepted (workers entries) */
	const uint64_t *accept_errors; /* accept() failures (workers entries) */
	const uint64_t *req_timeouts;  /* requests cut at the deadline (same) */
	const uint64_t *budget_cuts;   /* requests cut over the budget (same) */
	const uint64_t *idle_closed;   /* idle connections closed (same) */
	uint64_t http_held;    /* bytes held by requests still arriving */
};

/* Zero every counter. */
void metrics_init(struct metrics *m);

/* Count one answered request of `route` with `status`, taking `us`. */
void metrics_request(struct metrics *m, enum metrics_route route,
		     int status, uint64_t us);

/* Count one malformed Kafka message. */
void metrics_kafka_bad(struct metrics *m, enum metrics_kafka_bad why);

/* Count one failed state write; its label ("log", "checkpoint",
 * "dismissal"), also the words of the service's log line. */
void metrics_state_fail(struct metrics *m, enum metrics_state_op op);
const char *metrics_state_op_name(enum metrics_state_op op);

/* Append the Prometheus text exposition. 0 or -1 (out of memory). */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g,
		   struct graph_buf *out);

#endif
