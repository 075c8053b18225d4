/*
 * serve.c - the online service (see serve.h): request routing and
 * validation, ingest, checkpoints, model swaps.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np: writer-preferring */
#include "serve.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dismiss.h"
#include "event.h"
#include "graph.h"
#include "http.h"
#include "jbuf.h"
#include "kafka.h"
#include "load.h"
#include "mem.h"
#include "mono.h"
#include "metrics.h"
#include "model.h"
#include "ratelog.h"
#include "ndjson.h"
#include "query.h"
#include "recommend.h"
#include "store.h"
#include "trend.h"

#define MAX_BODY ((size_t)16 << 20)
#define MAX_ERRORS 10
#define MEMBERS_MAX 1000u
#define MAINTAIN_US 1000u
/* After COMPACT_IDLE_US without an event applied, the maintenance thread
 * folds the small deltas graph_maintain leaves (graph_compact), for
 * COMPACT_US at a time every COMPACT_SLEEP_MS, until none is left: about a
 * fifth of one core while it lasts, and never while events flow. */
#define COMPACT_IDLE_US 1000000u
#define COMPACT_US 2000u
#define COMPACT_SLEEP_MS 10
#define TREND_REFRESH_US 1000000u /* the trend table is rebuilt at most this often */
/* ... and at most 1/TREND_DUTY of the time: one pass over the lists costs
 * about 85 ms a million edges (7 Dec, EPYC), and its windows are a day
 * or more, so a rebuild every few seconds on a large graph loses nothing */
#define TREND_DUTY 20u
#define SAMPLE_DATA "facebook_combined.txt"

/* Per-HTTP-worker scratch: touched by that worker only. */
struct wctx {
	struct rec_ctx *rc;
	struct event_parser *ep;
	struct graph_buf out;
	struct graph_event *ev;
	size_t evcap;
	uint32_t nbr[MEMBERS_MAX];
};

/* One POST /edges waiting for a group commit (lives on its handler's stack). */
struct gc_req {
	const struct graph_event *ev;
	size_t n;
	int done, rc;
	struct err e;
	struct gc_req *next;
};

struct serve {
	struct serve_opts o;
	unsigned nthreads;
	struct graph *g;
	atomic_int ready;
	pthread_mutex_t wmu; /* the graph's writer side, and the fields below */
	struct store_offset *koff; /* Kafka positions applied so far */
	size_t nkoff, koffcap;
	uint64_t since_ckpt;       /* events applied since the last checkpoint */
	int log_held;  /* events (or Kafka positions) logged but not applied:
			* a checkpoint would empty the log of them, so none is
			* taken until a restart applies the log */
	uint64_t logged; /* events ingested (logged) since start */
	uint64_t fault_apply_at; /* TRIAD_FAULT_APPLY_AT (tests): 0 none */
	time_t last_ckpt;

	struct store *store;
	struct dismiss_set *dis;
	struct metrics m;
	struct http_server *http;
	struct kafka_consumer *_Atomic kc; /* set once HTTP workers already run */
	struct wctx *w;

	/* group commit of concurrent POST /edges: one leader logs and applies
	 * everything queued in one transaction (one fsync) */
	pthread_mutex_t gmu;
	pthread_cond_t gcv;
	struct gc_req *gq_head, **gq_tail;
	int gc_leader;

	pthread_rwlock_t model_lock; /* also guards trend (swapped under it) */
	const struct model *model; /* in use */
	struct model *owned;       /* == model when loaded from a file */
	int builtin_kept;          /* built-in, as the state recorded it */
	struct trend *trend;       /* the most active members (trend.h) */
	_Atomic uint64_t trend_events; /* events applied when it was built */
	uint64_t trend_us;         /* when (mono_us) it was last built */
	uint64_t trend_cost_us;    /* how long that build took */
	_Atomic uint64_t trend_builds;

	pthread_t mt;
	int mt_started;
	atomic_int mt_stop;

	_Atomic uint64_t http_acc, http_rej, kafka_acc, kafka_rej;
	_Atomic uint64_t added, refreshed, removed, noops;
	_Atomic int64_t last_ts; /* ts of the last applied event; -1 none */
	_Atomic uint64_t ckpts;
	/* state writes (swlog.failing: the last one failed; counts in
	 * m.state_fail) and Kafka consumer errors, for the log */
	struct ratelog swlog, klog;
	time_t started;
};

/*
 * Record how a state write went (disk full, map full, an I/O error: the
 * store's message names the directory): a failure is counted by what
 * wrote (/metrics) and logged with its reason (ratelog_report). Reads
 * never depend on state writes.
 */
static void state_write_done(struct serve *s, enum metrics_state_op op,
			     int failed, const char *why)
{
	char line[ERR_MSG_MAX + 256];

	if (!failed) {
		ratelog_report(&s->swlog, NULL, "state writes succeed again");
		return;
	}
	metrics_state_fail(&s->m, op);
	snprintf(line, sizeof(line), "state %s write failed: %s; reads are "
		 "served, POST /edges and /dismiss answer 500, Kafka batches "
		 "wait and are retried", metrics_state_op_name(op), why);
	ratelog_report(&s->swlog, line, NULL);
}

/* The Kafka consumer's errors (why), or NULL once it consumes again after
 * one: the log's lines (the counts are kafka_errors_total). */
static void kafka_log(void *ctx, const char *why)
{
	struct serve *s = ctx;
	char line[512];

	if (!why) {
		ratelog_report(&s->klog, NULL, "kafka: consuming again");
		return;
	}
	snprintf(line, sizeof(line), "kafka: %s", why);
	ratelog_report(&s->klog, line, NULL);
}

/* ---- life cycle ---------------------------------------------------------- */

struct serve *serve_new(const struct serve_opts *o, struct err *e)
{
	struct serve *s = mem_calloc(1, sizeof(*s));
	const char *env;
	pthread_rwlockattr_t ra;
	long ncpu;
	unsigned i;

	if (!s) {
		err_set(e, "out of memory");
		return NULL;
	}
	s->o = *o;
	if ((env = getenv("TRIAD_FAULT_APPLY_AT")))
		s->fault_apply_at = strtoull(env, NULL, 10);
	if (!s->o.host)
		s->o.host = "127.0.0.1";
	if (!s->o.topic)
		s->o.topic = "triad-events";
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s->nthreads = o->threads ? o->threads : (ncpu > 0 ? (unsigned)ncpu : 1);
	pthread_mutex_init(&s->wmu, NULL);
	pthread_mutex_init(&s->gmu, NULL);
	ratelog_init(&s->swlog, "triad serve");
	ratelog_init(&s->klog, "triad serve");
	pthread_cond_init(&s->gcv, NULL);
	s->gq_tail = &s->gq_head;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->model_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	atomic_store(&s->last_ts, -1);
	s->started = time(NULL);
	metrics_init(&s->m);
	s->dis = dismiss_new();
	s->w = mem_calloc(s->nthreads, sizeof(*s->w));
	if (!s->dis || !s->w) {
		err_set(e, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->nthreads; i++) {
		s->w[i].rc = rec_ctx_new();
		s->w[i].ep = event_parser_new();
		if (!s->w[i].rc || !s->w[i].ep) {
			err_set(e, "out of memory");
			goto fail;
		}
	}
	if (o->model) {
		s->owned = model_load(o->model, e);
		if (!s->owned)
			goto fail;
		s->model = s->owned;
	} else {
		s->model = model_default();
	}
	if (o->state) {
		s->store = store_open(o->state, e);
		if (!s->store)
			goto fail;
		/* the positions the state holds: what a checkpoint saves (and
		 * /admin/checkpoint reports) before the first batch applied */
		if (o->brokers && store_offsets_all(s->store, s->o.topic, &s->koff,
						    &s->nkoff, e))
			goto fail;
		s->koffcap = s->nkoff;
	}
	return s;
fail:
	serve_free(s);
	return NULL;
}

void serve_free(struct serve *s)
{
	unsigned i;

	if (!s)
		return;
	http_server_free(s->http);
	if (s->w)
		for (i = 0; i < s->nthreads; i++) {
			rec_ctx_free(s->w[i].rc);
			event_parser_free(s->w[i].ep);
			graph_buf_release(&s->w[i].out);
			free(s->w[i].ev);
		}
	free(s->w);
	dismiss_free(s->dis);
	store_close(s->store);
	model_free(s->owned);
	free(s->trend);
	graph_free(s->g);
	free(s->koff);
	pthread_rwlock_destroy(&s->model_lock);
	pthread_cond_destroy(&s->gcv);
	ratelog_destroy(&s->klog);
	ratelog_destroy(&s->swlog);
	pthread_mutex_destroy(&s->gmu);
	pthread_mutex_destroy(&s->wmu);
	free(s);
}

void serve_counts(struct serve *s, uint64_t *members, uint64_t *edges)
{
	struct graph_stats st;

	graph_stats(s->g, &st);
	*members = st.members;
	*edges = st.edges;
}

/* ---- ingest (writer side) ------------------------------------------------ */

/* Remember Kafka positions (caller holds wmu). */
static int koff_update(struct serve *s, const struct store_offset *off,
		       size_t noff)
{
	size_t i, j;

	for (i = 0; i < noff; i++) {
		for (j = 0; j < s->nkoff; j++)
			if (s->koff[j].partition == off[i].partition)
				break;
		if (j == s->nkoff) {
			if (mem_grow((void **)&s->koff, &s->koffcap, j + 1,
				     sizeof(*s->koff)))
				return -1;
			s->nkoff++;
		}
		s->koff[j] = off[i];
	}
	return 0;
}

/*
 * Log (with state) then apply n events, and record Kafka positions off.
 * 0; -1 + e when the log write failed (nothing logged or applied: the
 * caller may retry); 1 + e when the events were logged but applying them
 * failed (out of memory: retrying would log them twice; recovery applies
 * them).
 */
static int ingest(struct serve *s, const struct graph_event *ev, size_t n,
		  const struct store_offset *off, size_t noff, struct err *e)
{
	struct graph_apply_stats st = { 0 };
	size_t na = n;
	int rc = 0, held;

	pthread_mutex_lock(&s->wmu);
	if (s->store && store_log_append(s->store, ev, n,
					 noff ? s->o.topic : NULL, off, noff,
					 e)) {
		pthread_mutex_unlock(&s->wmu);
		state_write_done(s, MS_LOG, 1, e->msg);
		return -1;
	}
	/* the fault tests' stand-in for running out of memory mid-batch */
	if (s->fault_apply_at && s->logged + n >= s->fault_apply_at)
		na = s->fault_apply_at > s->logged
			     ? (size_t)(s->fault_apply_at - s->logged - 1) : 0;
	s->logged += n;
	if (na && graph_apply(s->g, ev, na, &st, e))
		rc = 1;
	else if (na < n) {
		/* logged, not applied: 1 as above (-1 told the Kafka consumer
		 * that nothing was logged, and it logged the batch again
		 * every 200 ms) */
		err_set(e, "out of memory adding member "
			"(TRIAD_FAULT_APPLY_AT)");
		rc = 1;
	}
	held = rc || (noff && koff_update(s, off, noff));
	/* without a state nothing was logged, and no checkpoint is taken */
	if (held && s->store && !s->log_held) {
		s->log_held = 1;
		fprintf(stderr, "triad serve: events in the state's log could "
			"not be applied (%s): checkpoints are held so that the "
			"log keeps them; restart to apply them\n",
			rc ? e->msg : "out of memory for Kafka positions");
	}
	s->since_ckpt += n + noff;
	pthread_mutex_unlock(&s->wmu);
	if (s->store)
		state_write_done(s, MS_LOG, 0, NULL);
	atomic_fetch_add(&s->added, st.added);
	atomic_fetch_add(&s->refreshed, st.refreshed);
	atomic_fetch_add(&s->removed, st.removed);
	atomic_fetch_add(&s->noops, st.noops + st.rejected);
	if (n)
		atomic_store(&s->last_ts, (int64_t)ev[n - 1].ts);
	return rc;
}

/*
 * POST /edges ingest with group commit: requests arriving while a commit
 * is under way queue up; the next leader logs and applies all of them in
 * one transaction, in queue order, and wakes them. Same return codes as
 * ingest(). A request returns only after its events are durable.
 */
static int ingest_http(struct serve *s, const struct graph_event *ev,
		       size_t n, struct err *e)
{
	struct gc_req me, *list, *r;
	struct graph_event *all = NULL;
	size_t total = 0, at = 0;
	int rc;

	memset(&me, 0, sizeof(me));
	me.ev = ev;
	me.n = n;
	pthread_mutex_lock(&s->gmu);
	*s->gq_tail = &me;
	s->gq_tail = &me.next;
	while (!me.done && s->gc_leader)
		pthread_cond_wait(&s->gcv, &s->gmu);
	if (me.done) {
		pthread_mutex_unlock(&s->gmu);
		if (me.rc)
			err_set(e, "%s", me.e.msg);
		return me.rc;
	}
	s->gc_leader = 1;
	list = s->gq_head;
	s->gq_head = NULL;
	s->gq_tail = &s->gq_head;
	pthread_mutex_unlock(&s->gmu);

	for (r = list; r; r = r->next)
		total += r->n;
	if (list->next) {
		all = mem_alloc(total, sizeof(*all));
		if (all)
			for (r = list; r; r = r->next) {
				memcpy(all + at, r->ev, r->n * sizeof(*all));
				at += r->n;
			}
	}
	if (list->next && !all)
		rc = err_set(e, "out of memory");
	else
		rc = ingest(s, all ? all : list->ev, total, NULL, 0, e);
	free(all);

	pthread_mutex_lock(&s->gmu);
	for (r = list; r; r = r->next) {
		r->done = 1;
		r->rc = rc;
		if (rc)
			err_set(&r->e, "%s", e->msg);
	}
	s->gc_leader = 0;
	pthread_cond_broadcast(&s->gcv);
	pthread_mutex_unlock(&s->gmu);
	return rc;
}

/* Checkpoint now (takes wmu). */
static int checkpoint(struct serve *s, int full, struct store_ckpt_stats *st,
		      struct store_offset **offs, size_t *noffs, struct err *e)
{
	int rc;

	if (!s->store)
		return err_set(e, "no --state directory to checkpoint to");
	pthread_mutex_lock(&s->wmu);
	if (s->log_held)
		rc = err_set(e, "checkpoints are held: events in the state's "
			     "log could not be applied (out of memory), and a "
			     "checkpoint would drop them from the log; restart "
			     "to apply them");
	else
		rc = store_checkpoint(s->store, s->g, full,
				      s->nkoff ? s->o.topic : NULL, s->koff,
				      s->nkoff, st, e);
	if (!rc) {
		s->since_ckpt = 0;
		s->last_ckpt = time(NULL);
		if (offs) {
			*offs = s->nkoff ? mem_dup(s->koff, s->nkoff *
						   sizeof(*s->koff)) : NULL;
			*noffs = *offs ? s->nkoff : 0;
		}
	}
	pthread_mutex_unlock(&s->wmu);
	if (!rc)
		atomic_fetch_add(&s->ckpts, 1);
	state_write_done(s, MS_CHECKPOINT, rc != 0, e->msg);
	return rc;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Events applied so far, from HTTP and Kafka. */
static uint64_t events_applied(struct serve *s)
{
	return atomic_load(&s->http_acc) + atomic_load(&s->kafka_acc);
}

/*
 * Rebuild the trend table from the graph as it is now and swap it in:
 * built outside every lock (one pass over the lists, a reader like any
 * other), swapped under the model lock, which waits for the requests
 * using the old one. 0, or -1 when out of memory (the old table stays).
 */
static int trend_refresh(struct serve *s)
{
	struct trend *t = malloc(sizeof(*t)), *old;
	uint64_t applied, t0;

	if (!t)
		return -1;
	/* read first: the view below holds at least these events */
	applied = events_applied(s);
	t0 = mono_us();
	trend_build_graph(t, s->g, graph_newest_ts(s->g));
	pthread_rwlock_wrlock(&s->model_lock);
	old = s->trend;
	s->trend = t;
	pthread_rwlock_unlock(&s->model_lock);
	free(old);
	atomic_store(&s->trend_events, applied);
	atomic_fetch_add(&s->trend_builds, 1);
	s->trend_us = mono_us();
	s->trend_cost_us = s->trend_us - t0;
	return 0;
}

static void *maintain_main(void *arg)
{
	struct serve *s = arg;
	uint64_t seen = events_applied(s), quiet_since = mono_us();
	int compacted = 0; /* nothing to fold since `seen` changed */
	/* after a failed checkpoint, the next try waits `backoff` seconds,
	 * doubling up to --checkpoint-secs: it was tried again every 20 ms
	 * (the last success is what `due` measures from), each time writing
	 * the whole graph under the writer's lock, 50 failures a second */
	uint64_t retry_at = 0, backoff = 1; /* mono_us(); seconds */

	prctl(PR_SET_NAME, "triad-maintain", 0, 0, 0);
	while (!atomic_load(&s->mt_stop)) {
		uint64_t applied = events_applied(s), now = mono_us();
		uint64_t trend_gap = TREND_DUTY * s->trend_cost_us;
		size_t left;
		int due, idle, more = 0;

		/* the trend table follows the graph, at most once a second
		 * and at most 1/TREND_DUTY of the time */
		if (trend_gap < TREND_REFRESH_US)
			trend_gap = TREND_REFRESH_US;
		if (applied != atomic_load(&s->trend_events) &&
		    now - s->trend_us >= trend_gap) {
			trend_refresh(s);
			now = mono_us();
		}

		if (applied != seen) {
			seen = applied;
			quiet_since = now;
			compacted = 0;
		}
		idle = !compacted && now - quiet_since >= COMPACT_IDLE_US;
		pthread_mutex_lock(&s->wmu);
		left = graph_maintain(s->g, MAINTAIN_US);
		if (!left && idle) {
			more = graph_compact(s->g, COMPACT_US);
			compacted = !more;
		}
		due = s->store && s->o.checkpoint_secs && s->since_ckpt &&
		      time(NULL) - s->last_ckpt >= (time_t)s->o.checkpoint_secs &&
		      now >= retry_at;
		pthread_mutex_unlock(&s->wmu);
		if (due) {
			struct err e = { "" };

			if (checkpoint(s, 0, NULL, NULL, NULL, &e)) {
				retry_at = mono_us() + backoff * 1000000u;
				backoff = 2 * backoff < s->o.checkpoint_secs
						  ? 2 * backoff
						  : s->o.checkpoint_secs;
			} else {
				backoff = 1;
			}
		}
		sleep_ms(left ? 1 : more ? COMPACT_SLEEP_MS : 20);
	}
	return NULL;
}

static int kafka_stored(void *ctx, int32_t p, int64_t *next)
{
	struct serve *s = ctx;
	struct err e = { "" };

	if (!s->store)
		return 0;
	return store_offset_get(s->store, s->o.topic, p, next, &e);
}

/*
 * The state's offsets are positions in one Kafka cluster's partitions: the
 * first cluster consumed is recorded, and another one answering at the
 * same --brokers and --topic (a new cluster, a mock restarted) is refused,
 * as its offsets mean other messages (the stored ones would skip some or
 * consume others twice, silently).
 */
static int kafka_cluster(void *ctx, const char *id, char *why, size_t n)
{
	struct serve *s = ctx;
	struct err e = { "" };
	char had[256];
	int r;

	if (!s->store || !id)
		return 0;
	r = store_cluster_get(s->store, s->o.topic, had, sizeof(had), &e);
	if (r == 1 && strcmp(had, id)) {
		snprintf(why, n, "the state's offsets of topic \"%s\" were "
			 "consumed from Kafka cluster \"%s\", but %s answers "
			 "as cluster \"%s\": not consuming (give the brokers "
			 "of \"%s\", or a new --state)", s->o.topic, had,
			 s->o.brokers, id, had);
		return 1;
	}
	if (!r)
		r = store_cluster_put(s->store, s->o.topic, id, &e) ? -1 : 1;
	if (r < 0) {
		snprintf(why, n, "%s", e.msg);
		return -1;
	}
	return 0;
}

static int kafka_apply(void *ctx, const struct graph_event *ev, size_t n,
		       size_t nbad, const struct store_offset *off,
		       size_t noff)
{
	struct serve *s = ctx;
	struct err e = { "" };

	if (ingest(s, ev, n, off, noff, &e) < 0)
		return -1; /* offered again: nothing of it was logged */
	atomic_fetch_add(&s->kafka_acc, n);
	atomic_fetch_add(&s->kafka_rej, nbad);
	return 0;
}

/* ---- loading ---------------------------------------------------------- */

static int file_exists(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* The bundled sample: ./data, $TRIAD_DATA, then next to the binary. */
static const char *sample_path(char *buf, size_t n)
{
	const char *env = getenv("TRIAD_DATA");
	char exe[PATH_MAX];
	ssize_t k;

	snprintf(buf, n, "data/%s", SAMPLE_DATA);
	if (file_exists(buf))
		return buf;
	if (env) {
		snprintf(buf, n, "%s/%s", env, SAMPLE_DATA);
		if (file_exists(buf))
			return buf;
	}
	k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k > 0) {
		char *slash;

		exe[k] = 0;
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			snprintf(buf, n, "%s/../data/%s", exe, SAMPLE_DATA);
			if (file_exists(buf))
				return buf;
		}
	}
	snprintf(buf, n, "data/%s", SAMPLE_DATA);
	return buf;
}

static struct graph *graph_from_events(const char *path, const char *format,
					struct err *e)
{
	struct load_opts lo = { format, 0, 0, 1 };
	struct event_list l = { 0 };
	struct graph *g = graph_new(0);

	if (!g) {
		err_set(e, "out of memory");
		return NULL;
	}
	if (load_events(path, &lo, &l, e) || load_build_consume(g, &l, 0, e)) {
		graph_free(g);
		g = NULL;
	}
	event_list_release(&l);
	return g;
}

static void dis_load_cb(void *ctx, uint64_t m, uint64_t c)
{
	dismiss_add(ctx, m, c);
}

/*
 * No --model: the built-in model for this graph (rec_builtin_model: by
 * whether most edges carry one timestamp), chosen at a state's first
 * start and kept in it. Chosen again at every start, a restart could
 * change model under the same graph: fed from empty (the model for
 * graphs with times) and restarted with mostly one-timestamp edges, it
 * answered with the other (a review's 66k-edge state), so answers changed
 * and a replica started from the backlog ranked differently.
 */
static int builtin_choose(struct serve *s, struct err *e)
{
	const struct model *m = NULL;
	char kind[16];
	int r = 0;

	if (s->store) {
		r = store_builtin_get(s->store, kind, sizeof(kind), e);
		if (r < 0)
			return -1;
		if (r == 1 && !strcmp(kind, "static"))
			m = model_default_static();
		else if (r == 1 && !strcmp(kind, "times"))
			m = model_default();
		else if (r == 1)
			return err_set(e, "\"%s\": built-in model record \"%s\" "
				       "names no built-in model (a newer "
				       "triad's state?); nothing written",
				       s->o.state, kind);
	}
	if (!m) {
		m = rec_builtin_model(s->trend);
		if (s->store &&
		    store_builtin_put(s->store, m == model_default_static() ?
				      "static" : "times", e))
			return -1;
	}
	pthread_rwlock_wrlock(&s->model_lock);
	s->model = m;
	s->builtin_kept = r == 1;
	pthread_rwlock_unlock(&s->model_lock);
	return 0;
}

int serve_load(struct serve *s, const char **what, struct err *e)
{
	struct graph *g = NULL;
	const char *src = "empty graph";
	char buf[PATH_MAX + 64];
	int has = 0;

	if (s->store) {
		has = store_has_checkpoint(s->store, e);
		if (has < 0)
			return -1;
		if (store_dismiss_each(s->store, dis_load_cb, s->dis, e))
			return -1;
	}
	if (has) {
		src = "state checkpoint";
		/* documented (the checkpoint wins), but an operator who gave
		 * --snapshot to bootstrap should not get the old state unsaid */
		if (s->o.snapshot || s->o.events)
			fprintf(stderr, "triad serve: warning: %s \"%s\" not "
				"used: \"%s\" already holds a checkpoint, which "
				"wins (to bootstrap from it again, give --state "
				"a new directory)\n", s->o.snapshot ? "--snapshot"
				: "--events", s->o.snapshot ? s->o.snapshot
				: s->o.events, s->o.state);
	} else if (s->o.snapshot) {
		g = store_snapshot_open(s->o.snapshot, e);
		src = "snapshot";
	} else if (s->o.events) {
		g = graph_from_events(s->o.events, s->o.format, e);
		src = "event file";
	} else if (!s->store && !s->o.brokers) {
		g = graph_from_events(sample_path(buf, sizeof(buf)), NULL, e);
		src = "sample data";
		if (!g && !file_exists(buf))
			err_set(e, "the sample data (%s) is in none of ./data, "
				"$TRIAD_DATA and ../data next to the binary: run "
				"from the repository, set TRIAD_DATA, or give "
				"--snapshot or --events", SAMPLE_DATA);
	} else {
		g = graph_new(0);
		if (!g)
			err_set(e, "out of memory");
	}
	if (!has && !g)
		return -1;
	if (s->store) {
		/* checkpoint + log, or the bootstrap graph + a log left by a
		 * crash before the first checkpoint */
		if (store_state_load(s->store, &g, NULL, NULL, e)) {
			graph_free(g);
			return -1;
		}
	}
	s->g = g;
	if (s->store) {
		struct store_ckpt_stats st;

		if (checkpoint(s, !has, &st, NULL, NULL, e))
			return -1;
	}
	if (what)
		*what = src;
	if (trend_refresh(s))
		return err_set(e, "out of memory for the trend table");
	if (!s->owned && builtin_choose(s, e)) /* no --model */
		return -1;
	atomic_store(&s->ready, 1);
	return 0;
}

int serve_start_ingest(struct serve *s, struct err *e)
{
	if (pthread_create(&s->mt, NULL, maintain_main, s))
		return err_set(e, "cannot start the maintenance thread");
	s->mt_started = 1;
	if (s->o.brokers) {
		struct kafka_consumer_opts ko;

		memset(&ko, 0, sizeof(ko));
		ko.brokers = s->o.brokers;
		ko.topic = s->o.topic;
		ko.group = s->o.group;
		ko.stored = kafka_stored;
		ko.apply = kafka_apply;
		ko.ctx = s;
		ko.metrics = &s->m;
		ko.log = kafka_log;
		ko.cluster = kafka_cluster;
		s->kc = kafka_consumer_start(&ko, e);
		if (!s->kc)
			return -1;
	}
	return 0;
}

int serve_reload_model(struct serve *s, struct err *e)
{
	struct model *m, *old;

	if (!s->o.model)
		return err_set(e, "no --model file to reload");
	m = model_load(s->o.model, e);
	if (!m)
		return -1;
	pthread_rwlock_wrlock(&s->model_lock); /* waits for requests in flight */
	old = s->owned;
	s->owned = m;
	s->model = m;
	pthread_rwlock_unlock(&s->model_lock);
	model_free(old);
	return 0;
}

int serve_model_name(struct serve *s, char *buf, size_t n)
{
	int builtin;

	pthread_rwlock_rdlock(&s->model_lock);
	snprintf(buf, n, "%s", model_name(s->model));
	builtin = s->model == model_default_static() ? 2 : s->model->builtin;
	if (builtin && s->builtin_kept)
		builtin |= 4;
	pthread_rwlock_unlock(&s->model_lock);
	return builtin;
}

int serve_model_check(struct serve *s, char *msg, size_t n)
{
	int rc;

	pthread_rwlock_rdlock(&s->model_lock);
	rc = rec_model_generation(s->model, s->o.model ? s->o.model : "the model",
				  msg, n) != 0;
	pthread_rwlock_unlock(&s->model_lock);
	return rc;
}

int serve_stop(struct serve *s, struct err *e)
{
	int rc = 0;

	/* requests still arriving or being sent get up to 10 s; it returns
	 * as soon as none is left (it waited 300 ms whatever was in flight,
	 * and cut a POST whose body was still arriving) */
	http_server_stop(s->http, 10000);
	kafka_consumer_stop(s->kc);
	s->kc = NULL;
	if (s->mt_started) {
		atomic_store(&s->mt_stop, 1);
		pthread_join(s->mt, NULL);
		s->mt_started = 0;
	}
	if (s->store && atomic_load(&s->ready))
		rc = checkpoint(s, 0, NULL, NULL, NULL, e);
	return rc;
}

/* ---- request helpers -------------------------------------------------- */

struct reqctx {
	struct serve *s;
	struct http_req *r;
	struct wctx *w;
	int status;
};

static void reply_buf(struct reqctx *q, int status, const char *ctype)
{
	q->status = status;
	http_reply(q->r, status, ctype, q->w->out.p, q->w->out.len, NULL);
}

static void reply_error(struct reqctx *q, int status, const char *msg)
{
	q->w->out.len = 0;
	if (jbuf_add(&q->w->out, "{\"error\":", 9) ||
	    jbuf_str(&q->w->out, msg) || jbuf_add(&q->w->out, "}", 1)) {
		q->status = 500;
		http_reply(q->r, 500, NULL, "{\"error\":\"out of memory\"}", 25,
			   NULL);
		return;
	}
	reply_buf(q, status, NULL);
}

/* Answer an error and leave the handler. */
#define FAIL(q, status, msg)                                                 \
	do {                                                                 \
		reply_error(q, status, msg);                                 \
		return;                                                      \
	} while (0)

static void reply_405(struct reqctx *q, const char *allow)
{
	static const char b[] = "{\"error\":\"method not allowed\"}";

	q->status = 405;
	http_reply(q->r, 405, NULL, b, sizeof(b) - 1, allow);
}

/* ---- handlers --------------------------------------------------------- */

static int dismissed_cb(void *ctx, uint64_t member, uint64_t candidate)
{
	return dismiss_has(ctx, member, candidate);
}

static void h_recommend(struct reqctx *q)
{
	struct query_param p[4] = {
		{ "member", 1, 0, UINT64_MAX, 0, 0 },
		{ "k", 0, 1, REC_K_MAX, 10, 0 },
		{ "explain", 0, 0, 1, 0, 0 },
		{ "budget_ms", 0, 1, 60000, 0, 0 },
	};
	struct rec_request rq;
	struct graph_view v;
	struct err e = { "" };
	char msg[160];
	int rc;

	if (query_parse(http_req_query(q->r), p, 4, msg, sizeof(msg)))
		FAIL(q, 400, msg);
	rq.member = p[0].val;
	rq.k = (uint32_t)p[1].val;
	rq.explain = (int)p[2].val;
	rq.budget_us = (uint32_t)(p[3].val * 1000u);
	q->w->out.len = 0;
	pthread_rwlock_rdlock(&q->s->model_lock);
	graph_view_begin(q->s->g, &v);
	/* ages are measured from the newest edge the service has seen, as
	 * training measured them from the split time */
	rec_ctx_set_now(q->w->rc, graph_newest_ts(q->s->g));
	rec_ctx_set_trend(q->w->rc, q->s->trend);
	rc = rec_answer_json(q->w->rc, &v, q->s->model, &rq, dismissed_cb,
			     q->s->dis, &q->w->out, &e);
	graph_view_end(&v);
	pthread_rwlock_unlock(&q->s->model_lock);
	if (rc == REC_UNKNOWN)
		FAIL(q, 404, "unknown member");
	if (rc)
		FAIL(q, 500, e.msg);
	reply_buf(q, 200, NULL);
}

static void h_members(struct reqctx *q, const char *idstr)
{
	struct graph_buf *o = &q->w->out;
	struct graph_view v;
	uint64_t id;
	uint32_t u, d, n, i;
	int bad = 0;

	if (query_u64(idstr, strlen(idstr), &id))
		FAIL(q, 400, "member id must be an unsigned "
				   "64-bit decimal");
	graph_view_begin(q->s->g, &v);
	u = graph_lookup(&v, id);
	if (u == GRAPH_NONE) {
		graph_view_end(&v);
		FAIL(q, 404, "unknown member");
	}
	d = graph_degree(&v, u);
	n = graph_sample(&v, u, d < MEMBERS_MAX ? d : MEMBERS_MAX,
			 GRAPH_SAMPLE_NEWEST, 0, q->w->nbr, NULL);
	o->len = 0;
	bad |= jbuf_printf(o, "{\"member\":%llu,\"degree\":%u,\"neighbors\":[",
			   (unsigned long long)id, d);
	for (i = 0; i < n; i++)
		bad |= jbuf_printf(o, i ? ",%llu" : "%llu",
				   (unsigned long long)graph_member(
					   &v, q->w->nbr[i]));
	graph_view_end(&v);
	bad |= jbuf_add(o, "]}", 2);
	if (bad)
		FAIL(q, 500, "out of memory");
	reply_buf(q, 200, NULL);
}

static void h_edges(struct reqctx *q)
{
	struct wctx *w = q->w;
	struct graph_buf *o = &w->out;
	size_t len, n = 0, nerr = 0, sl;
	const char *body = http_req_body(q->r, &len), *s;
	struct ndjson_cursor cur;
	uint32_t now = (uint32_t)time(NULL);
	uint64_t rejected = 0;
	struct err e = { "" };
	int bad = 0;

	/* errors collect in out; the head is put in front at the end */
	o->len = 0;
	ndjson_init(&cur, body, len);
	while (ndjson_next(&cur, &s, &sl)) {
		struct graph_event ev;

		if (!sl)
			continue;
		if (event_parse(w->ep, s, sl, now, &ev, &e)) {
			rejected++;
			if (nerr++ < MAX_ERRORS) {
				bad |= jbuf_printf(o, "%s{\"line\":%zu,"
						   "\"error\":",
						   nerr > 1 ? "," : "", cur.line);
				bad |= jbuf_str(o, e.msg);
				bad |= jbuf_add(o, "}", 1);
			}
			continue;
		}
		if (mem_grow((void **)&w->ev, &w->evcap, n + 1,
			     sizeof(*w->ev))) {
			bad = 1;
			break;
		}
		w->ev[n++] = ev;
	}
	if (bad)
		FAIL(q, 500, "out of memory");
	if (n && ingest_http(q->s, w->ev, n, &e))
		FAIL(q, 500, e.msg);
	atomic_fetch_add(&q->s->http_acc, n);
	atomic_fetch_add(&q->s->http_rej, rejected);
	{
		/* prepend the head now that the counts are known */
		char head[96];
		int hl = snprintf(head, sizeof(head), "{\"accepted\":%zu,"
				  "\"rejected\":%llu,\"errors\":[", n,
				  (unsigned long long)rejected);
		struct graph_buf tmp = { 0 };

		if (jbuf_add(&tmp, head, (size_t)hl) ||
		    jbuf_add(&tmp, o->p, o->len) || jbuf_add(&tmp, "]}", 2)) {
			graph_buf_release(&tmp);
			FAIL(q, 500, "out of memory");
		}
		graph_buf_release(o);
		*o = tmp;
	}
	reply_buf(q, 200, NULL);
}

static void h_dismiss(struct reqctx *q)
{
	struct query_param p[2] = {
		{ "member", 1, 0, UINT64_MAX, 0, 0 },
		{ "candidate", 1, 0, UINT64_MAX, 0, 0 },
	};
	struct err e = { "" };
	char msg[160];

	if (query_parse(http_req_query(q->r), p, 2, msg, sizeof(msg)))
		FAIL(q, 400, msg);
	if (p[0].val == p[1].val)
		FAIL(q, 400, "member and candidate are the same");
	if (q->s->store) {
		int rc = store_dismiss_add(q->s->store, p[0].val, p[1].val, &e);

		state_write_done(q->s, MS_DISMISSAL, rc != 0, e.msg);
		if (rc)
			FAIL(q, 500, e.msg);
	}
	if (dismiss_add(q->s->dis, p[0].val, p[1].val))
		FAIL(q, 500, "out of memory");
	q->status = 204;
	http_reply(q->r, 204, NULL, NULL, 0, NULL);
}

static void h_stats(struct reqctx *q)
{
	struct serve *s = q->s;
	struct graph_buf *o = &q->w->out;
	struct graph_stats st;
	int bad = 0;

	graph_stats(s->g, &st);
	o->len = 0;
	bad |= jbuf_printf(o, "{\"members\":%llu,\"edges\":%llu,\"bytes\":%llu,"
			   "\"bytes_per_edge\":%.2f,",
			   (unsigned long long)st.members,
			   (unsigned long long)st.edges,
			   (unsigned long long)st.bytes,
			   st.edges ? (double)st.bytes / (double)st.edges : 0.0);
	bad |= jbuf_printf(o, "\"events_applied\":%llu,\"events_rejected\":%llu,"
			   "\"kafka_lag\":%lld,\"model\":",
			   (unsigned long long)(atomic_load(&s->http_acc) +
						atomic_load(&s->kafka_acc)),
			   (unsigned long long)(atomic_load(&s->http_rej) +
						atomic_load(&s->kafka_rej)),
			   (long long)kafka_consumer_lag(s->kc));
	pthread_rwlock_rdlock(&s->model_lock);
	bad |= jbuf_str(o, model_name(s->model));
	pthread_rwlock_unlock(&s->model_lock);
	bad |= jbuf_printf(o, ",\"directed\":%s,\"delta_entries\":%llu,"
			   "\"pending_merges\":%llu,\"merges\":%llu,"
			   "\"arena_freed\":%llu,"
			   "\"dismissals\":%llu,\"checkpoints\":%llu,"
			   "\"uptime_s\":%lld,\"threads\":%u,"
			   "\"state\":%s,\"kafka\":%s,",
			   graph_is_directed(s->g) ? "true" : "false",
			   (unsigned long long)st.delta_entries,
			   (unsigned long long)st.pending_merges,
			   (unsigned long long)st.merges,
			   (unsigned long long)st.arena_freed,
			   (unsigned long long)dismiss_count(s->dis),
			   (unsigned long long)atomic_load(&s->ckpts),
			   (long long)(time(NULL) - s->started), s->nthreads,
			   s->store ? "true" : "false",
			   s->kc ? "true" : "false");
	pthread_rwlock_rdlock(&s->model_lock);
	bad |= jbuf_printf(o, "\"trend\":{\"members\":%u,\"window_s\":%u,"
			   "\"as_of\":%u,\"events_applied\":%llu,\"builds\":%llu}}",
			   s->trend ? s->trend->n : 0u,
			   s->trend ? s->trend->window : 0u,
			   s->trend ? s->trend->now : 0u,
			   (unsigned long long)atomic_load(&s->trend_events),
			   (unsigned long long)atomic_load(&s->trend_builds));
	pthread_rwlock_unlock(&s->model_lock);
	if (bad)
		FAIL(q, 500, "out of memory");
	reply_buf(q, 200, NULL);
}

static void h_metrics(struct reqctx *q)
{
	struct serve *s = q->s;
	struct metrics_gauges g;
	struct graph_stats st;
	int64_t last = atomic_load(&s->last_ts);
	uint64_t *conns;
	unsigned i;

	memset(&g, 0, sizeof(g));
	g.workers = http_server_workers(s->http);
	/* per worker: connections accepted, accept() failures, requests
	 * cut at the deadline, requests cut over the budget, idle
	 * connections closed out of descriptors */
	if (!(conns = mem_alloc(5 * (size_t)g.workers, sizeof(*conns))))
		FAIL(q, 500, "out of memory");
	for (i = 0; i < g.workers; i++) {
		struct http_worker_counts wc;

		http_server_worker_counts(s->http, i, &wc);
		conns[i] = wc.accepted;
		conns[g.workers + i] = wc.accept_errors;
		conns[2 * g.workers + i] = wc.req_timeouts;
		conns[3 * g.workers + i] = wc.budget_cuts;
		conns[4 * g.workers + i] = wc.idle_closed;
	}
	g.conns = conns;
	g.accept_errors = conns + g.workers;
	g.req_timeouts = conns + 2 * g.workers;
	g.budget_cuts = conns + 3 * g.workers;
	g.idle_closed = conns + 4 * g.workers;
	g.http_held = http_server_held(s->http);
	g.ready = atomic_load(&s->ready);
	if (g.ready) {
		graph_stats(s->g, &st);
		g.members = st.members;
		g.edges = st.edges;
		g.bytes = st.bytes;
		g.delta_entries = st.delta_entries;
		g.pending_merges = st.pending_merges;
		g.arena_freed = st.arena_freed;
	}
	g.http_accepted = atomic_load(&s->http_acc);
	g.http_rejected = atomic_load(&s->http_rej);
	g.kafka_accepted = atomic_load(&s->kafka_acc);
	g.kafka_rejected = atomic_load(&s->kafka_rej);
	g.graph_added = atomic_load(&s->added);
	g.graph_refreshed = atomic_load(&s->refreshed);
	g.graph_removed = atomic_load(&s->removed);
	g.graph_noops = atomic_load(&s->noops);
	g.ingest_lag_s = last < 0 ? -1 : (int64_t)time(NULL) - last;
	if (last >= 0 && g.ingest_lag_s < 0) /* stamped in the future */
		g.ingest_lag_s = 0;
	g.kafka_lag = kafka_consumer_lag(s->kc);
	g.checkpoints = atomic_load(&s->ckpts);
	g.state_writable = !atomic_load(&s->swlog.failing);
	g.dismissals = dismiss_count(s->dis);
	q->w->out.len = 0;
	pthread_rwlock_rdlock(&s->model_lock);
	g.model = model_name(s->model);
	if (metrics_render(&s->m, &g, &q->w->out)) {
		pthread_rwlock_unlock(&s->model_lock);
		free(conns);
		FAIL(q, 500, "out of memory");
	}
	pthread_rwlock_unlock(&s->model_lock);
	free(conns);
	reply_buf(q, 200, "text/plain; version=0.0.4");
}

/* a == b, in a time that does not depend on where they first differ. */
static int token_eq(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b), i;
	unsigned char d = na != nb;

	for (i = 0; i < na && i < nb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return !d;
}

static int admin_allowed(struct reqctx *q)
{
	const char *tok = q->s->o.admin_token, *h;

	if (http_req_is_loopback(q->r))
		return 1;
	if (!tok || !*tok)
		return 0;
	h = http_req_header(q->r, "X-Admin-Token");
	if (h && token_eq(h, tok))
		return 1;
	/* RFC 7235: the scheme's name is case-insensitive */
	h = http_req_header(q->r, "Authorization");
	return h && !strncasecmp(h, "Bearer ", 7) && token_eq(h + 7, tok);
}

static void h_checkpoint(struct reqctx *q)
{
	struct graph_buf *o = &q->w->out;
	struct store_ckpt_stats st;
	struct store_offset *offs = NULL;
	size_t noffs = 0, i;
	struct err e = { "" };
	uint64_t t0 = mono_us();
	int bad = 0;

	if (!admin_allowed(q))
		FAIL(q, 403, "admin requests need loopback or "
				   "the admin token");
	if (!q->s->store)
		FAIL(q, 409, "no --state directory to "
				   "checkpoint to");
	if (checkpoint(q->s, 0, &st, &offs, &noffs, &e))
		FAIL(q, 500, e.msg);
	o->len = 0;
	bad |= jbuf_printf(o, "{\"members\":%llu,\"edges\":%llu,"
			   "\"chunks_written\":%llu,\"bytes_written\":%llu,"
			   "\"log_batches_dropped\":%llu,\"took_us\":%llu,"
			   "\"topic\":",
			   (unsigned long long)st.members,
			   (unsigned long long)st.edges,
			   (unsigned long long)st.chunks,
			   (unsigned long long)st.bytes,
			   (unsigned long long)st.log_dropped,
			   (unsigned long long)(mono_us() - t0));
	if (q->s->o.brokers)
		bad |= jbuf_str(o, q->s->o.topic);
	else
		bad |= jbuf_add(o, "null", 4);
	bad |= jbuf_add(o, ",\"offsets\":[", 12);
	for (i = 0; i < noffs; i++)
		bad |= jbuf_printf(o, "%s{\"partition\":%d,\"next\":%lld}",
				   i ? "," : "", (int)offs[i].partition,
				   (long long)offs[i].next);
	bad |= jbuf_add(o, "]}", 2);
	free(offs);
	if (bad)
		FAIL(q, 500, "out of memory");
	reply_buf(q, 200, NULL);
}

/* The paths served, with their method. */
static const struct route {
	const char *path;
	int prefix; /* path is a prefix: /members/ID */
	enum http_method m;
	const char *allow;
	enum metrics_route route;
} routes[] = {
	{ "/recommend", 0, HTTP_GET, "GET, HEAD", MR_RECOMMEND },
	{ "/edges", 0, HTTP_POST, "POST", MR_EDGES },
	{ "/dismiss", 0, HTTP_POST, "POST", MR_DISMISS },
	{ "/members/", 1, HTTP_GET, "GET, HEAD", MR_MEMBERS },
	{ "/stats", 0, HTTP_GET, "GET, HEAD", MR_STATS },
	{ "/healthz", 0, HTTP_GET, "GET, HEAD", MR_HEALTHZ },
	{ "/metrics", 0, HTTP_GET, "GET, HEAD", MR_METRICS },
	{ "/admin/checkpoint", 0, HTTP_POST, "POST", MR_CHECKPOINT },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static void on_request(void *ctx, struct http_req *r, unsigned worker)
{
	struct serve *s = ctx;
	struct reqctx q = { s, r, &s->w[worker], 0 };
	const char *path = http_req_path(r);
	enum http_method m = http_req_method(r);
	enum metrics_route route = MR_OTHER;
	uint64_t t0 = mono_us();
	int ready = atomic_load(&s->ready);
	size_t limit;
	int too_large = http_req_too_large(r, &limit);
	/* only /recommend and /dismiss take parameters; the others refuse
	 * any, as /members/ID always did */
	const char *qs = http_req_query(r);
	int params = qs && *qs;
	size_t i;

	for (i = 0; i < NROUTES; i++)
		if (routes[i].prefix ? !strncmp(path, routes[i].path,
						strlen(routes[i].path))
				     : !strcmp(path, routes[i].path))
			break;
	if (i < NROUTES)
		route = routes[i].route;
	if (too_large) {
		char msg[64];

		snprintf(msg, sizeof(msg), "body larger than %zu bytes",
			 limit);
		reply_error(&q, 413, msg);
	} else if (i == NROUTES) {
		reply_error(&q, 404, "no such path");
	} else if (m != routes[i].m) {
		reply_405(&q, routes[i].allow);
	} else if (params && route != MR_RECOMMEND && route != MR_DISMISS) {
		reply_error(&q, 400, "no parameters expected");
	} else if (route == MR_HEALTHZ) {
		q.status = ready ? 200 : 503;
		if (ready)
			http_reply(r, 200, "text/plain", "ok\n", 3, NULL);
		else
			http_reply(r, 503, "text/plain", "loading\n", 8, NULL);
	} else if (route == MR_METRICS) {
		h_metrics(&q); /* while loading too */
	} else if (!ready) {
		reply_error(&q, 503, "loading");
	} else if (route == MR_RECOMMEND) {
		h_recommend(&q);
	} else if (route == MR_EDGES) {
		h_edges(&q);
	} else if (route == MR_DISMISS) {
		h_dismiss(&q);
	} else if (route == MR_MEMBERS) {
		h_members(&q, path + strlen(routes[i].path));
	} else if (route == MR_STATS) {
		h_stats(&q);
	} else {
		h_checkpoint(&q);
	}
	metrics_request(&s->m, route, q.status, mono_us() - t0);
}

int serve_listen(struct serve *s, struct err *e)
{
	s->http = http_server_new(s->o.host, s->o.port, s->nthreads, MAX_BODY,
				  on_request, s, e);
	if (!s->http)
		return -1;
	http_server_set_request_timeout(s->http,
					s->o.request_timeout_secs * 1000u);
	http_server_set_budget(s->http, (size_t)s->o.body_budget_mb << 20);
	return http_server_start(s->http, e);
}
