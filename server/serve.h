/*
 * serve.h - the online service: wires the graph, the store, the HTTP
 * workers, the Kafka consumer, dismissals, the model and the metrics
 * together (CONTRACT.md "HTTP API", "State and durability").
 *
 * What always holds:
 * - One writer at a time: every graph_apply / graph_maintain /
 *   graph_dirty_take / checkpoint runs under the service's writer mutex,
 *   from HTTP workers (POST /edges), the Kafka thread and the maintenance
 *   thread. Readers (GET /recommend, /members) pin a graph view per request
 *   and never take that mutex.
 * - With a state directory, an event is applied only after it is in the
 *   store's log (HTTP: before the 200; Kafka: in the same transaction as
 *   the offsets that cover it), and the log is replayed at start, so every
 *   acknowledged or consumed event is applied exactly once, in order.
 *   Concurrent POST /edges share one transaction (group commit).
 * - The model in use is swapped under a writer-preferring rwlock: a reload
 *   waits for requests in flight, the old model is freed after them, no
 *   request is refused.
 *
 * Life cycle (the caller owns signals): serve_new -> serve_listen (binds,
 * answers 503 except /healthz and /metrics while loading) -> serve_load ->
 * serve_start_ingest -> ... serve_reload_model on SIGHUP ... -> serve_stop
 * -> serve_free.
 */
#ifndef TRIAD_SERVE_H
#define TRIAD_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct serve_opts {
	const char *snapshot;    /* --snapshot: bootstrap graph */
	const char *state;       /* --state DIR or NULL */
	const char *events;      /* --events FILE: bootstrap from an event file */
	const char *format;      /* --format F of --events (NULL: its extension) */
	const char *host;        /* listen address */
	uint16_t port;
	unsigned threads;        /* HTTP workers; 0 = number of CPUs */
	const char *brokers, *topic, *group; /* Kafka ingest when brokers */
	const char *model;       /* --model path or NULL (built-in default) */
	const char *admin_token; /* lets non-loopback clients checkpoint */
	unsigned checkpoint_secs; /* periodic checkpoint; 0 = only on demand/exit */
	unsigned request_timeout_secs; /* a request must arrive within; 0 = none */
	unsigned body_budget_mb; /* requests arriving hold at most; 0 = none */
};

struct serve;

/* Check options, open the state directory and the model. NULL + e. */
struct serve *serve_new(const struct serve_opts *o, struct err *e);

/* Bind and start the HTTP workers. 0 or -1 + e (e.g. port in use). */
int serve_listen(struct serve *s, struct err *e);

/*
 * Build the graph: the state's checkpoint, else --snapshot, else --events,
 * else (no state, no Kafka) the bundled sample data, else empty; then
 * replay the state's log and (state) write a checkpoint. *what (may be
 * NULL) receives a static description of the source. Sets ready.
 * 0 or -1 + e.
 */
int serve_load(struct serve *s, const char **what, struct err *e);

/* Start the maintenance thread and, with brokers, the Kafka consumer. */
int serve_start_ingest(struct serve *s, struct err *e);

/* Reload the --model file. 0 or -1 + e (the old model stays). */
int serve_reload_model(struct serve *s, struct err *e);

/* The name@version of the model in use into buf (NUL-ended, truncated to
 * n); 0 for a --model file, 1 for the built-in model for graphs with times,
 * 2 for the one for graphs without (rec_builtin_model chose it at load),
 * either with 4 added when the choice was the one the state recorded at
 * its first start. */
int serve_model_name(struct serve *s, char *buf, size_t n);

/* When the model in use was trained with another candidate generation than
 * this build's, or does not say (rec_model_generation): 1 with a line for
 * a warning in msg; else 0. */
int serve_model_check(struct serve *s, char *msg, size_t n);

/* Stop accepting, finish requests in flight, stop ingest, write a final
 * checkpoint. 0, or -1 + e when that checkpoint failed. */
int serve_stop(struct serve *s, struct err *e);

void serve_free(struct serve *s); /* NULL ok */

/* Graph counts for the start-up message. */
void serve_counts(struct serve *s, uint64_t *members, uint64_t *edges);

#endif
