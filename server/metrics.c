/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <string.h>

#include "jbuf.h"

static const char *const route_name[MR_N] = {
	"/recommend", "/edges", "/dismiss", "/members", "/stats", "/healthz",
	"/metrics", "/admin/checkpoint", "other"
};
static const int status_code[METRICS_NSTATUS] = {
	200, 204, 400, 403, 404, 405, 409, 413, 500, 503, 0
};
/* bucket upper bounds in microseconds; the last one is +Inf */
static const uint64_t bucket_us[METRICS_NBUCKETS - 1] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000
};
static const char *const bad_name[MK_N] = {
	"empty", "not_json", "bad_field", "self_loop", "too_long"
};
static const char *const state_op_name[MS_N] = {
	"log", "checkpoint", "dismissal"
};

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

void metrics_request(struct metrics *m, enum metrics_route route,
		     int status, uint64_t us)
{
	unsigned s, b;

	for (s = 0; s < METRICS_NSTATUS - 1; s++)
		if (status_code[s] == status)
			break;
	for (b = 0; b < METRICS_NBUCKETS - 1; b++)
		if (us <= bucket_us[b])
			break;
	atomic_fetch_add_explicit(&m->req[route][s], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat[route][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat_sum_us[route], us,
				  memory_order_relaxed);
}

void metrics_kafka_bad(struct metrics *m, enum metrics_kafka_bad why)
{
	atomic_fetch_add_explicit(&m->kafka_bad[why], 1, memory_order_relaxed);
}

void metrics_state_fail(struct metrics *m, enum metrics_state_op op)
{
	atomic_fetch_add_explicit(&m->state_fail[op], 1, memory_order_relaxed);
}

const char *metrics_state_op_name(enum metrics_state_op op)
{
	return state_op_name[op];
}

static uint64_t ld(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

#define P(...) do { if (jbuf_printf(out, __VA_ARGS__)) return -1; } while (0)

static int gauge(struct graph_buf *out, const char *name, const char *help,
		 const char *type, long long v)
{
	P("# HELP triad_%s %s\n# TYPE triad_%s %s\ntriad_%s %lld\n", name,
	  help, name, type, name, v);
	return 0;
}

/* A counter with one series per HTTP worker. */
static int per_worker(struct graph_buf *out, const char *name,
		      const char *help, const uint64_t *v, unsigned n)
{
	unsigned i;

	P("# HELP triad_%s %s\n# TYPE triad_%s counter\n", name, help, name);
	for (i = 0; i < n; i++)
		P("triad_%s{worker=\"%u\"} %llu\n", name, i,
		  (unsigned long long)v[i]);
	return 0;
}

/* A counter with one series per value of one label (names[i]: v[i]). */
static int labelled(struct graph_buf *out, const char *name, const char *help,
		    const char *label, const char *const *names,
		    const _Atomic uint64_t *v, unsigned n)
{
	unsigned i;

	P("# HELP triad_%s %s\n# TYPE triad_%s counter\n", name, help, name);
	for (i = 0; i < n; i++)
		P("triad_%s{%s=\"%s\"} %llu\n", name, label, names[i],
		  (unsigned long long)ld(&v[i]));
	return 0;
}

int metrics_render(const struct metrics *m, const struct metrics_gauges *g,
		   struct graph_buf *out)
{
	const char *mp;
	unsigned r, s, b;

	if (gauge(out, "up", "1 once the graph is loaded and serving",
		  "gauge", g->ready) ||
	    gauge(out, "members", "members (vertices) in the graph", "gauge",
		  (long long)g->members) ||
	    gauge(out, "edges", "edges in the graph (undirected pairs)",
		  "gauge", (long long)g->edges) ||
	    gauge(out, "graph_bytes", "memory held by the graph", "gauge",
		  (long long)g->bytes) ||
	    gauge(out, "graph_delta_entries", "adjacency entries waiting in "
		  "deltas", "gauge", (long long)g->delta_entries) ||
	    gauge(out, "graph_pending_merges", "vertices queued for a merge",
		  "gauge", (long long)g->pending_merges) ||
	    gauge(out, "graph_arena_freed_bytes", "bytes of the bulk-built "
		  "arena handed back to the kernel (pages whose lists were all "
		  "merged out)", "gauge", (long long)g->arena_freed) ||
	    gauge(out, "ingest_lag_seconds", "now minus the ts of the last "
		  "applied event (-1 before the first)", "gauge",
		  (long long)g->ingest_lag_s) ||
	    gauge(out, "kafka_consumer_lag", "messages between the consumed "
		  "offsets and the high watermarks (-1 without Kafka)",
		  "gauge", (long long)g->kafka_lag) ||
	    gauge(out, "checkpoints_total", "checkpoints written", "counter",
		  (long long)g->checkpoints) ||
	    gauge(out, "checkpoint_failures_total", "checkpoints that failed",
		  "counter", (long long)ld(&m->state_fail[MS_CHECKPOINT])) ||
	    gauge(out, "dismissals", "dismissed (member, candidate) pairs",
		  "gauge", (long long)g->dismissals))
		return -1;
	if (labelled(out, "state_write_failures_total", "writes to the --state "
		     "directory that failed (disk full, map full, I/O errors), "
		     "by what wrote", "op", state_op_name, m->state_fail, MS_N))
		return -1;
	P("# HELP triad_state_writable 0 from a failed write to the --state "
	  "directory until one succeeds, else 1 (also 1 without --state)\n"
	  "# TYPE triad_state_writable gauge\ntriad_state_writable %d\n",
	  g->state_writable);
	P("# HELP triad_ingest_events_total events received, by source and "
	  "result\n# TYPE triad_ingest_events_total counter\n");
	P("triad_ingest_events_total{source=\"http\",result=\"accepted\"} "
	  "%llu\n", (unsigned long long)g->http_accepted);
	P("triad_ingest_events_total{source=\"http\",result=\"rejected\"} "
	  "%llu\n", (unsigned long long)g->http_rejected);
	P("triad_ingest_events_total{source=\"kafka\",result=\"accepted\"} "
	  "%llu\n", (unsigned long long)g->kafka_accepted);
	P("triad_ingest_events_total{source=\"kafka\",result=\"rejected\"} "
	  "%llu\n", (unsigned long long)g->kafka_rejected);
	P("# HELP triad_graph_events_total accepted events by their effect "
	  "on the graph\n# TYPE triad_graph_events_total counter\n");
	P("triad_graph_events_total{effect=\"added\"} %llu\n",
	  (unsigned long long)g->graph_added);
	P("triad_graph_events_total{effect=\"refreshed\"} %llu\n",
	  (unsigned long long)g->graph_refreshed);
	P("triad_graph_events_total{effect=\"removed\"} %llu\n",
	  (unsigned long long)g->graph_removed);
	P("triad_graph_events_total{effect=\"noop\"} %llu\n",
	  (unsigned long long)g->graph_noops);
	if (labelled(out, "kafka_malformed_total", "malformed Kafka messages "
		     "skipped, by reason", "reason", bad_name, m->kafka_bad, MK_N))
		return -1;
	P("# HELP triad_kafka_errors_total consumer errors reported by "
	  "librdkafka\n# TYPE triad_kafka_errors_total counter\n"
	  "triad_kafka_errors_total %llu\n",
	  (unsigned long long)ld(&m->kafka_errors));
	P("# HELP triad_kafka_skipped_offsets_total Kafka offsets never read: "
	  "deleted by retention before triad read them, or transaction "
	  "markers\n# TYPE triad_kafka_skipped_offsets_total counter\n"
	  "triad_kafka_skipped_offsets_total %llu\n",
	  (unsigned long long)ld(&m->kafka_skipped));
	P("# HELP triad_model_info the model answering requests\n"
	  "# TYPE triad_model_info gauge\ntriad_model_info{model=\"");
	for (mp = g->model; mp && *mp; mp++) /* label-safe copy */
		if (*mp != '"' && *mp != '\\' && *mp != '\n' &&
		    jbuf_add(out, mp, 1))
			return -1;
	P("\"} 1\n");
	if (per_worker(out, "http_connections_total", "connections accepted, "
		       "by HTTP worker thread", g->conns, g->workers) ||
	    per_worker(out, "http_accept_errors_total", "accept() failures "
		       "(out of file descriptors), each pausing the worker's "
		       "accepting for 100 ms", g->accept_errors, g->workers) ||
	    per_worker(out, "http_request_timeouts_total", "connections shut "
		       "because a request took longer than --request-timeout "
		       "to arrive, or its answer to be taken", g->req_timeouts, g->workers) ||
	    per_worker(out, "http_budget_cuts_total", "connections reset "
		       "because their request would take the bytes held by "
		       "requests still arriving past --body-budget-mb",
		       g->budget_cuts, g->workers) ||
	    per_worker(out, "http_idle_closed_total", "idle connections "
		       "closed to free file descriptors when accept() ran "
		       "out of them", g->idle_closed, g->workers))
		return -1;
	P("# HELP triad_http_request_bytes_held bytes held by requests still "
	  "arriving (headers and bodies)\n"
	  "# TYPE triad_http_request_bytes_held gauge\n"
	  "triad_http_request_bytes_held %llu\n",
	  (unsigned long long)g->http_held);
	P("# HELP triad_http_requests_total answered requests by path and "
	  "status\n# TYPE triad_http_requests_total counter\n");
	for (r = 0; r < MR_N; r++)
		for (s = 0; s < METRICS_NSTATUS; s++) {
			uint64_t v = ld(&m->req[r][s]);

			if (!v)
				continue;
			if (status_code[s])
				P("triad_http_requests_total{path=\"%s\","
				  "status=\"%d\"} %llu\n", route_name[r],
				  status_code[s], (unsigned long long)v);
			else
				P("triad_http_requests_total{path=\"%s\","
				  "status=\"other\"} %llu\n", route_name[r],
				  (unsigned long long)v);
		}
	P("# HELP triad_http_request_duration_seconds request latency by "
	  "path\n# TYPE triad_http_request_duration_seconds histogram\n");
	for (r = 0; r < MR_N; r++) {
		uint64_t cum = 0;

		for (b = 0; b < METRICS_NBUCKETS; b++) {
			cum += ld(&m->lat[r][b]);
			if (b < METRICS_NBUCKETS - 1)
				P("triad_http_request_duration_seconds_bucket"
				  "{path=\"%s\",le=\"%g\"} %llu\n",
				  route_name[r], (double)bucket_us[b] / 1e6,
				  (unsigned long long)cum);
			else
				P("triad_http_request_duration_seconds_bucket"
				  "{path=\"%s\",le=\"+Inf\"} %llu\n",
				  route_name[r], (unsigned long long)cum);
		}
		P("triad_http_request_duration_seconds_sum{path=\"%s\"} %.6f\n",
		  route_name[r], (double)ld(&m->lat_sum_us[r]) / 1e6);
		P("triad_http_request_duration_seconds_count{path=\"%s\"} "
		  "%llu\n", route_name[r], (unsigned long long)cum);
	}
	return 0;
}
