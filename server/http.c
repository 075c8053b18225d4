/*
 * http.c - N evhttp workers sharing one listening socket (see http.h).
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/queue.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "mono.h"

struct http_req {
	struct evhttp_request *req;
	struct worker *w;
	const char *path;
	const char *query;
	int answered;
	int too_large; /* a body above max_body: the handler answers 413 */
};

/* A connection this worker accepted, watched for slow requests and
 * answers and for read-ahead (see conn_sweep, HTTP_READ_AHEAD). It holds
 * a reference on its bufferevent, so the pointer stays valid after evhttp
 * frees the connection; the next sweep then lets go. */
struct conn {
	struct worker *w;
	struct bufferevent *bev;
	struct evbuffer_cb_entry *in_cb, *out_cb;
	size_t held;       /* bytes of the request now arriving, counted in
			    * the server's budget (see HTTP_BUDGET_MIN) */
	uint64_t since_ms; /* when the request now arriving began */
	uint64_t out_ms;   /* when the answer now being sent began */
	int busy;          /* a request has begun arriving, not yet answered */
	int capped;        /* input capped at HTTP_READ_AHEAD (an answer is
			    * being sent) */
	int cut;           /* its socket was shut down by conn_cut */
	uint64_t idle_ms;  /* idle since: accepted, or its last answer sent */
};

struct worker {
	struct http_server *s;
	unsigned idx;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evbuffer *out; /* reused for every answer */
	struct event *gate;   /* re-enables accepting after a pause */
	struct event *sweep;  /* closes requests past the deadline, 1/s */
	struct conn **conns;  /* connections watched (request deadline) */
	size_t nconns, capconns;
	size_t reap_at;       /* drop closed ones when nconns reaches this */
	_Atomic uint64_t accepted; /* connections accepted so far */
	_Atomic uint64_t accept_errors; /* accept() failures (out of fds) */
	_Atomic uint64_t req_timeouts; /* requests cut at the deadline */
	_Atomic uint64_t budget_cuts;  /* requests cut over the budget */
	_Atomic uint64_t idle_closed;  /* idle ones closed to free fds */
	_Atomic int paused;   /* listener disabled until gate fires */
	_Atomic uint64_t handler_ms; /* mono_ms() + 1 when its handler began;
				      * 0 while it runs none (on_accept) */
	uint64_t stop_by_ms;  /* stopping: when to exit even if not drained */
	int stopping;         /* answers say Connection: close (own thread) */
	bufferevent_event_cb evhttp_event_cb; /* evhttp's (see eof_held) */
	time_t err_logged;    /* when an accept error was last logged */
	pthread_t tid;
	int started;
};

struct http_server {
	int fd;
	unsigned n;
	size_t max_body;
	unsigned grace_ms;
	unsigned req_timeout_ms; /* 0: no deadline */
	size_t budget;           /* bytes all requests arriving may hold; 0 */
	_Atomic size_t held;     /* what they hold now (sum of conn.held) */
	http_handler_fn fn;
	void *ctx;
	struct worker *w;
};

static void reply_closes(struct evhttp_request *req);

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_rc;

static void evthread_init(void)
{
	evthread_rc = evthread_use_pthreads();
}

/*
 * The request's framing, checked before anything runs it. libevent reads
 * a body by the first Content-Length, taking a sign or blanks in it
 * (strtoll), so with two that differ, or "+18", the bytes after what it
 * read as the body were run as a second request, one a proxy in front
 * reading the other length never saw (request smuggling: review's
 * dup_cl.py had an edge applied that way). Every Content-Length must be
 * digits alone and all of them the same, and HEAD and TRACE carry none
 * but 0. NULL when so, else the body of
 * the 400 answer; the connection then closes after it, so nothing behind
 * the request is read as one.
 */
static const char *framing_error(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *len = NULL;
	struct evkeyval *kv;

	/* libevent reads no body for HEAD or TRACE, whatever the headers
	 * say: one announced would be run as the next request */
	if ((cmd == EVHTTP_REQ_HEAD || cmd == EVHTTP_REQ_TRACE) &&
	    (evhttp_find_header(h, "Transfer-Encoding") ||
	     ((len = evhttp_find_header(h, "Content-Length")) &&
	      len[strspn(len, "0")])))
		return "{\"error\":\"a body (Content-Length or "
		       "Transfer-Encoding) with HEAD or TRACE\"}";
	len = NULL;
	TAILQ_FOREACH(kv, h, next) {
		if (evutil_ascii_strcasecmp(kv->key, "Content-Length"))
			continue;
		if (!*kv->value || kv->value[strspn(kv->value, "0123456789")])
			return "{\"error\":\"malformed Content-Length header\"}";
		if (len && strcmp(len, kv->value))
			return "{\"error\":\"conflicting Content-Length "
			       "headers\"}";
		len = kv->value;
	}
	return NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct evhttp_uri *own = NULL;
	struct http_req r;
	struct evbuffer *in;
	const char *bad;

	/* libevent reads a CONNECT target as host:port and leaves no path:
	 * routed by the target as written, CONNECT /stats is refused like
	 * PUT /stats (405, Allow: GET) rather than as no such path */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT)
		u = own = evhttp_uri_parse_with_flags(evhttp_request_get_uri(req),
						      EVHTTP_URI_NONCONFORMANT);
	r.req = req;
	r.w = w;
	r.path = u ? evhttp_uri_get_path(u) : NULL;
	if (!r.path || !*r.path)
		r.path = "/";
	r.query = u ? evhttp_uri_get_query(u) : NULL;
	r.answered = 0;
	in = evhttp_request_get_input_buffer(req);
	r.too_large = in && evbuffer_get_length(in) > w->s->max_body;
	bad = framing_error(req);
	if (bad) {
		reply_closes(req);
		http_reply(&r, 400, NULL, bad, strlen(bad), NULL);
	} else {
		atomic_store_explicit(&w->handler_ms, mono_ms() + 1,
				      memory_order_relaxed);
		w->s->fn(w->s->ctx, &r, w->idx);
		atomic_store_explicit(&w->handler_ms, 0, memory_order_relaxed);
	}
	if (!r.answered)
		http_reply(&r, 500, NULL, "{\"error\":\"no answer\"}", 21,
			   NULL);
	if (own)
		evhttp_uri_free(own);
}

/*
 * What a connection may read ahead while an answer is being sent. A
 * client that pipelines requests without reading the answers made the
 * server buffer every one of them (3M requests: 195 MB of RSS after 2 s,
 * growing for as long as the client kept sending). So from the first
 * byte of an answer until it has all gone to the kernel, the connection's
 * input is capped at this (libevent stops reading the socket above it;
 * the kernel's buffers then push back on the client); then the cap is
 * lifted, since libevent keeps a body with a Content-Length in that input
 * until all of it has arrived, and its own limits bound a request.
 */
#define HTTP_READ_AHEAD (128 * 1024)

/*
 * The most a request's headers may take (evhttp refuses more, 400). No
 * request here needs more than a few hundred bytes; every connection may
 * hold this much outside the budget below, and at 64 KiB a review's 8,000
 * connections each sending 62.7 KB of headers and never finishing took
 * the server to 566 MB against the default 128 MiB budget.
 */
#define HTTP_HEADERS_MAX (16 * 1024)

/*
 * The request deadline. evhttp's own timeout (60 s) counts from the last
 * byte read, so a client that sends one byte of its headers every few
 * seconds holds a connection, and up to 16 KiB of buffered headers, for
 * as long as it likes; enough such clients use up the descriptors and
 * block everyone else. So every connection is watched: the clock starts
 * at the first byte of a request (its input grows while no request is
 * being received) and stops at the first byte of the answer (its output
 * grows). Once a second each worker shuts down the connections whose
 * request has been arriving for longer than req_timeout_ms, headers and
 * body together; evhttp then reads end of file and frees the connection
 * as if the client had gone. The same holds for the answer, from its
 * first byte until all of it has gone to the kernel: a client reading a
 * byte every few seconds held its connection and an answer (370 KB for
 * k=1000 with explain=1 on the sample's largest hub) for ever.
 *
 * The budget of requests in flight. evhttp holds a request, headers and
 * body, in memory until all of it has arrived (up to HTTP_BODY_HARD_MAX
 * bytes each), so the limit on one request did not bound the sum: 48
 * clients sending 16 MiB bodies at once took the server to 832 MB, and
 * more connections would take it further. So every byte read for a
 * request is counted, in its connection and in one sum for the server,
 * until its answer begins or the connection goes; a connection whose
 * bytes take the sum past the budget is reset (as at the deadline) when it
 * holds HTTP_BUDGET_MIN bytes or more itself: a request without a body
 * is never cut. Below that a request cannot be more than its headers,
 * which evhttp caps at HTTP_HEADERS_MAX (with a larger exemption, say
 * 1 MiB, many connections each sending just under it would escape the
 * budget). Nothing of a cut request was applied, so a client may send it
 * again; triad_http_budget_cuts_total counts them.
 */
#define HTTP_BUDGET_MIN ((size_t)HTTP_HEADERS_MAX)

static void conn_sweep(struct worker *w, uint64_t now);

/* Hand c's bytes back to the budget. */
static void conn_unhold(struct conn *c)
{
	if (c->held) {
		atomic_fetch_sub(&c->w->s->held, c->held);
		c->held = 0;
	}
}

/* Close c's socket with a reset (the kernel drops what it still holds for
 * the client); evhttp then reads end of file and frees the connection, on
 * this thread, as if the client had gone. */
static void conn_cut(struct conn *c)
{
	struct linger lg = { 1, 0 };
	evutil_socket_t sfd = bufferevent_getfd(c->bev);

	setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	shutdown(sfd, SHUT_RDWR);
	c->busy = c->capped = 0;
	c->cut = 1;
	conn_unhold(c);
}

static void conn_in_cb(struct evbuffer *b, const struct evbuffer_cb_info *i,
		       void *arg)
{
	struct conn *c = arg;
	struct http_server *s = c->w->s;
	int over;

	(void)b;
	if (!i->n_added || c->cut)
		return;
	if (!c->busy) {
		c->busy = 1;
		c->since_ms = mono_ms();
	}
	c->held += i->n_added;
	over = atomic_fetch_add(&s->held, i->n_added) + i->n_added > s->budget;
	if (over && s->budget && c->held >= HTTP_BUDGET_MIN) {
		/* closed connections hold bytes until a sweep lets go of
		 * them (within a second): this worker's first */
		conn_sweep(c->w, 0);
		if (atomic_load(&s->held) > s->budget) {
			conn_cut(c);
			atomic_fetch_add(&c->w->budget_cuts, 1);
		}
	}
}

static void conn_out_cb(struct evbuffer *b, const struct evbuffer_cb_info *i,
			void *arg)
{
	struct conn *c = arg;

	if (i->n_added) {
		/* evhttp's own "HTTP/1.1 100 Continue" to a client that sent
		 * Expect: is no answer: the body is still to come (taken for
		 * one, a stop let such a POST go unanswered) */
		const unsigned char *h = !i->orig_size &&
			evbuffer_get_length(b) >= 12 ? evbuffer_pullup(b, 12) : NULL;

		if (h && !memcmp(h, "HTTP/1.", 7) && !memcmp(h + 8, " 1", 2))
			return;
		c->busy = 0;
		conn_unhold(c);
		if (!c->capped) {
			bufferevent_setwatermark(c->bev, EV_READ, 0,
						 HTTP_READ_AHEAD);
			c->capped = 1;
			c->out_ms = mono_ms();
		}
	} else if (c->capped && !evbuffer_get_length(b)) {
		bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
		c->capped = 0;
		c->idle_ms = mono_ms();
		/* a pipelined request already read in: evhttp parses it from
		 * the buffer, with no new input to mark it arriving. It does
		 * so before it reads the socket again: a read already due in
		 * this pass of the loop could be end of file from a client
		 * that half-closed after sending it, which evhttp took for
		 * the client gone (and dropped the request). Dropped here;
		 * evhttp enables reading again as soon as the answer is done */
		if (evbuffer_get_length(bufferevent_get_input(c->bev))) {
			if (!c->busy) {
				c->busy = 1;
				c->since_ms = mono_ms();
			}
			bufferevent_disable(c->bev, EV_READ);
		}
	}
}

/* Start watching bev (a reference is taken). -1 when out of memory: the
 * connection is then served unwatched. */
static int conn_watch(struct worker *w, struct bufferevent *bev)
{
	struct conn *c;

	if (mem_grow((void **)&w->conns, &w->capconns, w->nconns + 1,
		     sizeof(*w->conns)) ||
	    !(c = mem_calloc(1, sizeof(*c))))
		return -1;
	c->w = w;
	c->bev = bev;
	c->idle_ms = mono_ms();
	c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), conn_in_cb, c);
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), conn_out_cb, c);
	if (!c->in_cb || !c->out_cb) {
		if (c->in_cb)
			evbuffer_remove_cb_entry(bufferevent_get_input(bev),
						 c->in_cb);
		if (c->out_cb)
			evbuffer_remove_cb_entry(bufferevent_get_output(bev),
						 c->out_cb);
		free(c);
		return -1;
	}
	bufferevent_incref(bev);
	w->conns[w->nconns++] = c;
	return 0;
}

/* evhttp has freed the connection: bufferevent_free clears the callbacks
 * (evhttp keeps its event callback set while the connection lives) and
 * closes the socket. */
static int conn_gone(const struct conn *c)
{
	bufferevent_data_cb rd, wr;
	bufferevent_event_cb ev;
	void *arg;

	bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
	return !ev || bufferevent_getfd(c->bev) < 0;
}

static void conn_release(struct conn *c)
{
	conn_unhold(c);
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	bufferevent_decref(c->bev);
	free(c);
}

/*
 * Let go of the connections evhttp has closed and, when `now` is given,
 * shut down those whose request is past the deadline. Runs on the
 * worker's own thread: once a second, and from on_accept whenever the
 * list has doubled since the last pass, so that closed connections are
 * not held for long when many come and go (amortised O(1) an accept).
 */
static void conn_sweep(struct worker *w, uint64_t now)
{
	size_t i, keep = 0;

	for (i = 0; i < w->nconns; i++) {
		struct conn *c = w->conns[i];

		if (conn_gone(c)) {
			conn_release(c);
			continue;
		}
		if (now && w->s->req_timeout_ms &&
		    ((c->busy && now - c->since_ms > w->s->req_timeout_ms) ||
		     (c->capped && now - c->out_ms > w->s->req_timeout_ms))) {
			/* the socket is the bufferevent's until evhttp frees
			 * it, which happens on this thread only; closed with a
			 * reset, so the kernel drops what it still holds for
			 * the client rather than keep it for a slow reader */
			conn_cut(c);
			atomic_fetch_add(&w->req_timeouts, 1);
		}
		w->conns[keep++] = c;
	}
	w->nconns = keep;
	w->reap_at = keep < 32 ? 64 : 2 * keep;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_sweep(arg, mono_ms());
}

/*
 * Connections are spread evenly over the workers. The kernel wakes every
 * worker for a new connection on the shared socket and the first to look
 * accepts all that are waiting, so a burst (a load balancer or a client
 * opening its pool) would land on one worker and leave the others idle
 * for the life of those keep-alive connections. So a worker that has
 * accepted more than one connection beyond the worker with the fewest
 * pauses accepting (libevent stops its accept loop as soon as the listener
 * is disabled) and lets the others take the next, until one of them has
 * caught up with it (it then resumes it) or ACCEPT_PAUSE_US have passed.
 * A worker that has been in one handler for ACCEPT_STUCK_MS or more (a
 * 16 MiB POST takes 0.16 s) cannot accept meanwhile and is left out of the
 * count: the one that can took new connections at 4.8k/s against 23.6k
 * with both free, pausing after each to wait for a worker that could not
 * catch up (the HTTP review).
 * Called by evhttp for every accepted connection, to make its bufferevent
 * (as evhttp would: the socket is set afterwards), which is then watched
 * for the request deadline.
 */
#define ACCEPT_PAUSE_US 1000
#define ACCEPT_STUCK_MS 5

static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct http_server *s = w->s;
	uint64_t mine = atomic_fetch_add(&w->accepted, 1) + 1, least = mine;
	uint64_t now = mono_ms();
	struct timeval tv = { 0, ACCEPT_PAUSE_US };
	struct bufferevent *bev;
	unsigned i;

	for (i = 0; i < s->n; i++) {
		struct worker *o = &s->w[i];
		uint64_t a = atomic_load(&o->accepted);
		uint64_t h = atomic_load_explicit(&o->handler_ms,
						  memory_order_relaxed);

		if (o != w && h && now + 1 >= h + ACCEPT_STUCK_MS)
			continue; /* stuck in a handler: cannot accept */
		if (a < least)
			least = a;
		/* a worker paused for being ahead is no longer ahead of this
		 * one: resume it now rather than when its timer fires (with
		 * connections that carry one request each, both workers
		 * paused in turn and new connections waited on the timer:
		 * 1.7k connections/s with two workers against 14.5k with
		 * one) */
		if (o != w && atomic_load(&o->paused) && a <= mine)
			event_active(o->gate, EV_TIMEOUT, 0);
	}
	if (s->n > 1 && mine > least + 1 && !w->paused && w->bound) {
		evconnlistener_disable(evhttp_bound_socket_get_listener(w->bound));
		w->paused = 1;
		evtimer_add(w->gate, &tv);
	}
	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev) {
		if (w->nconns >= w->reap_at)
			conn_sweep(w, 0);
		(void)conn_watch(w, bev); /* unwatched if out of memory */
	}
	return bev;
}

/*
 * accept() failed for a reason retrying at once cannot cure: out of file
 * descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM). The listening
 * socket stays readable, so libevent would call accept again at once,
 * spinning a core and logging a line each time: pause this worker's
 * accepting for ACCEPT_ERR_PAUSE_US instead (open connections are served
 * meanwhile; waiting clients stay in the kernel's backlog), count it, and
 * log at most once per ACCEPT_ERR_LOG_S per worker. Out of descriptors,
 * this worker's connections idle for HTTP_IDLE_RECLAIM_MS or more (no
 * request arriving, no answer being sent) are closed too, as a server may
 * close an idle connection at any time: clients that open connections and
 * send nothing held every descriptor until libevent's 60 s idle timeout,
 * and everyone else waited in the backlog all that while (a review's
 * 400 such connections against a limit of 256). Other failures (a network
 * error on one connection) pass.
 */
#define ACCEPT_ERR_PAUSE_US 100000
#define ACCEPT_ERR_LOG_S 10
/* Out of descriptors, connections idle this long are closed to free some
 * (see on_accept_error). */
#define HTTP_IDLE_RECLAIM_MS 1000

static size_t close_idle(struct worker *w, uint64_t idle_before);

static _Thread_local struct worker *tl_worker; /* the worker of this thread */

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	/* arg is evhttp's (its struct evhttp); the callback runs on the
	 * listener's worker thread */
	struct worker *w = tl_worker;
	struct timeval tv = { 0, ACCEPT_ERR_PAUSE_US };
	int err = EVUTIL_SOCKET_ERROR();
	time_t now = time(NULL);
	size_t closed = 0;

	(void)arg;
	if (!w)
		return;
	/* only running out of something is worth a pause; other failures
	 * (a network error on one connection) are that connection's */
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	atomic_fetch_add(&w->accept_errors, 1);
	if (err == EMFILE || err == ENFILE) {
		uint64_t ms = mono_ms();

		closed = close_idle(w, ms > HTTP_IDLE_RECLAIM_MS
					       ? ms - HTTP_IDLE_RECLAIM_MS : 0);
		atomic_fetch_add(&w->idle_closed, closed);
		if (closed) /* the sockets close with their last reference:
			     * the watch's, let go by a sweep */
			conn_sweep(w, 0);
	}
	if (now >= w->err_logged + ACCEPT_ERR_LOG_S) {
		w->err_logged = now;
		fprintf(stderr, "triad serve: accept: %s (worker %u: pausing "
			"new connections for %d ms, closed %zu idle for %d ms "
			"or more; counted in triad_http_accept_errors_total "
			"and triad_http_idle_closed_total)\n",
			evutil_socket_error_to_string(err), w->idx,
			ACCEPT_ERR_PAUSE_US / 1000, closed,
			HTTP_IDLE_RECLAIM_MS);
	}
	evconnlistener_disable(l);
	w->paused = 1;
	evtimer_add(w->gate, &tv);
}

/* Runs on the worker's own thread: accept again after a pause. */
static void gate_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	if (w->paused && w->bound)
		evconnlistener_enable(evhttp_bound_socket_get_listener(w->bound));
	w->paused = 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	/* named for top -H, perf and gdb */
	snprintf(name, sizeof(name), "triad-http%u", w->idx);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	tl_worker = w;
	event_base_dispatch(w->base);
	return NULL;
}

static void worker_release(struct worker *w)
{
	size_t i;

	if (w->gate)
		event_free(w->gate);
	if (w->sweep)
		event_free(w->sweep);
	if (w->http)
		evhttp_free(w->http);
	/* evhttp_free has freed every connection; let go of ours */
	for (i = 0; i < w->nconns; i++)
		conn_release(w->conns[i]);
	free(w->conns);
	w->conns = NULL;
	w->nconns = w->capconns = 0;
	if (w->out)
		evbuffer_free(w->out);
	if (w->base)
		event_base_free(w->base);
	w->gate = NULL;
	w->sweep = NULL;
	w->http = NULL;
	w->out = NULL;
	w->base = NULL;
}

struct http_server *http_server_new(const char *host, uint16_t port,
				    unsigned nthreads, size_t max_body,
				    http_handler_fn fn, void *ctx,
				    struct err *e)
{
	struct http_server *s = NULL;
	struct addrinfo hints, *ai = NULL;
	char portstr[8];
	int one = 1, rc, fd;
	unsigned i;

	pthread_once(&evthread_once, evthread_init);
	if (evthread_rc) {
		err_set(e, "libevent threading unavailable");
		return NULL;
	}
	if (!nthreads)
		nthreads = 1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc) {
		err_set(e, "\"%s\": %s", host, gai_strerror(rc));
		return NULL;
	}
	s = mem_calloc(1, sizeof(*s));
	if (s)
		s->fd = -1;
	if (!s || !(s->w = mem_calloc(nthreads, sizeof(*s->w)))) {
		err_set(e, "out of memory");
		goto fail;
	}
	s->n = nthreads;
	s->max_body = max_body;
	s->req_timeout_ms = HTTP_REQUEST_TIMEOUT_MS;
	s->budget = HTTP_BUDGET_DEFAULT;
	s->fn = fn;
	s->ctx = ctx;
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		err_set(e, "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* answers leave as soon as they are written: with Nagle's algorithm
	 * the tail of an answer libevent writes in more than one piece (above
	 * 16 KiB) waited for the client's delayed ACK of the first, ~43 ms for
	 * every such answer on a kept-alive connection. Set here, every
	 * accepted socket inherits it (Linux), with nothing per connection */
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(s->fd, ai->ai_addr, ai->ai_addrlen)) {
		err_set(e, "\"%s:%u\": cannot listen: %s", host,
			(unsigned)port, strerror(errno));
		goto fail;
	}
	if (listen(s->fd, 1024)) {
		err_set(e, "\"%s:%u\": listen: %s", host, (unsigned)port,
			strerror(errno));
		goto fail;
	}
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &s->w[i];

		w->s = s;
		w->idx = i;
		w->base = event_base_new();
		w->http = w->base ? evhttp_new(w->base) : NULL;
		w->out = evbuffer_new();
		w->gate = w->base ? evtimer_new(w->base, gate_cb, w) : NULL;
		w->sweep = w->base ? event_new(w->base, -1, EV_PERSIST,
					       sweep_cb, w) : NULL;
		if (!w->http || !w->out || !w->gate || !w->sweep) {
			err_set(e, "out of memory");
			goto fail;
		}
		evhttp_set_max_body_size(w->http,
					 (ev_ssize_t)HTTP_BODY_HARD_MAX(max_body));
		evhttp_set_max_headers_size(w->http, HTTP_HEADERS_MAX);
		evhttp_set_timeout(w->http, 60);
		evhttp_set_allowed_methods(w->http,
			EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
			EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
			EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
			EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
		evhttp_set_gencb(w->http, on_request, w);
		evhttp_set_bevcb(w->http, on_accept, w);
		/* each worker's listener its own descriptor of the one
		 * socket: a listener closes its descriptor when freed, and
		 * with a shared one each worker closed it again, possibly
		 * under whatever had taken its number meanwhile */
		fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
		w->bound = fd < 0 ? NULL
				  : evhttp_accept_socket_with_handle(w->http, fd);
		if (!w->bound) {
			if (fd >= 0)
				close(fd);
			err_set(e, "cannot accept on the listening socket");
			goto fail;
		}
		evconnlistener_set_error_cb(
			evhttp_bound_socket_get_listener(w->bound),
			on_accept_error);
	}
	freeaddrinfo(ai);
	return s;
fail:
	if (ai)
		freeaddrinfo(ai);
	http_server_free(s);
	return NULL;
}

int http_server_start(struct http_server *s, struct err *e)
{
	unsigned i;

	for (i = 0; i < s->n; i++) {
		struct timeval sec = { 1, 0 };

		if (evtimer_add(s->w[i].sweep, &sec))
			return err_set(e, "cannot start http worker %u", i);
		if (pthread_create(&s->w[i].tid, NULL, worker_main, &s->w[i]))
			return err_set(e, "cannot start http worker %u", i);
		s->w[i].started = 1;
	}
	return 0;
}

/* Stopping, every HTTP_DRAIN_MS (on the worker's own thread): exit once
 * no request is arriving or being answered on this worker (idle
 * keep-alive connections do not count), or at the grace deadline. */
#define HTTP_DRAIN_MS 10

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval again = { 0, HTTP_DRAIN_MS * 1000 };
	struct worker *w = arg;
	uint64_t now = mono_ms();
	size_t i;

	(void)fd;
	(void)what;
	conn_sweep(w, now); /* lets go of closed ones; the deadline holds */
	for (i = 0; i < w->nconns; i++)
		if (w->conns[i]->busy || w->conns[i]->capped)
			break;
	if (i == w->nconns || now >= w->stop_by_ms ||
	    event_base_once(w->base, -1, EV_TIMEOUT, drain_cb, w, &again)) {
		struct timeval left = { 0, 0 };

		/* done, out of time, or no way to look again: at the
		 * deadline at the latest */
		if (i < w->nconns && now < w->stop_by_ms) {
			left.tv_sec = (time_t)((w->stop_by_ms - now) / 1000);
			left.tv_usec = (long)((w->stop_by_ms - now) % 1000) * 1000;
		}
		event_base_loopexit(w->base, &left);
	}
}

/*
 * Close the connections with nothing in flight that have been idle since
 * idle_before (mono_ms) or earlier; returns how many. Stopping closes all
 * of them, so their clients send the next request elsewhere; out of
 * descriptors, the long idle (on_accept_error). A request already in the
 * kernel but not yet read is in flight: it is read and answered (while
 * stopping, Connection: close). The others are freed through evhttp, so
 * nothing is read or run on them after (a socket only shut down was still
 * read: a POST came in, was applied and could not be answered).
 */
static size_t close_idle(struct worker *w, uint64_t idle_before)
{
	size_t i, closed = 0;

	for (i = 0; i < w->nconns; i++) {
		struct conn *c = w->conns[i];
		bufferevent_data_cb rd, wr;
		bufferevent_event_cb ev;
		void *evcon;
		int unread = 0;

		if (c->busy || c->capped || c->cut || conn_gone(c) ||
		    c->idle_ms > idle_before)
			continue;
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) ||
		    ioctl(bufferevent_getfd(c->bev), FIONREAD, &unread) ||
		    unread > 0) {
			c->busy = 1;
			c->since_ms = mono_ms();
			continue;
		}
		/* evhttp's callbacks on the bufferevent carry its connection */
		bufferevent_getcb(c->bev, &rd, &wr, &ev, &evcon);
		if (ev && evcon) {
			evhttp_connection_free(evcon);
			closed++;
		}
	}
	return closed;
}

/* On the worker's own thread: stop accepting, close what is idle, drain. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	evtimer_del(w->gate);
	evtimer_del(w->sweep);
	if (w->bound)
		evhttp_del_accept_socket(w->http, w->bound);
	w->bound = NULL;
	w->stopping = 1;
	w->stop_by_ms = mono_ms() + w->s->grace_ms;
	close_idle(w, UINT64_MAX);
	drain_cb(fd, what, w);
}

void http_server_stop(struct http_server *s, unsigned grace_ms)
{
	struct timeval zero = { 0, 0 };
	unsigned i;

	if (!s)
		return;
	s->grace_ms = grace_ms;
	for (i = 0; i < s->n; i++)
		if (s->w[i].started &&
		    event_base_once(s->w[i].base, -1, EV_TIMEOUT, stop_cb,
				    &s->w[i], &zero))
			event_base_loopexit(s->w[i].base, NULL); /* no drain */
	/* the workers accept on copies; with this one closed too the
	 * socket goes once they have stopped accepting */
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	for (i = 0; i < s->n; i++)
		if (s->w[i].started) {
			pthread_join(s->w[i].tid, NULL);
			s->w[i].started = 0;
		}
}

void http_server_free(struct http_server *s)
{
	unsigned i;

	if (!s)
		return;
	if (s->w)
		for (i = 0; i < s->n; i++)
			worker_release(&s->w[i]);
	if (s->fd >= 0)
		close(s->fd);
	free(s->w);
	free(s);
}

unsigned http_server_workers(const struct http_server *s)
{
	return s->n;
}

void http_server_worker_counts(const struct http_server *s, unsigned worker,
			       struct http_worker_counts *out)
{
	const struct worker *w = worker < s->n ? &s->w[worker] : NULL;

	memset(out, 0, sizeof(*out));
	if (!w)
		return;
	out->accepted = atomic_load(&w->accepted);
	out->accept_errors = atomic_load(&w->accept_errors);
	out->req_timeouts = atomic_load(&w->req_timeouts);
	out->budget_cuts = atomic_load(&w->budget_cuts);
	out->idle_closed = atomic_load(&w->idle_closed);
}

size_t http_server_held(const struct http_server *s)
{
	return atomic_load(&s->held);
}

void http_server_set_request_timeout(struct http_server *s, unsigned ms)
{
	s->req_timeout_ms = ms;
}

void http_server_set_budget(struct http_server *s, size_t bytes)
{
	s->budget = bytes;
}

enum http_method http_req_method(const struct http_req *r)
{
	switch (evhttp_request_get_command(r->req)) {
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		return HTTP_GET;
	case EVHTTP_REQ_POST:
		return HTTP_POST;
	default:
		return HTTP_OTHER;
	}
}

const char *http_req_path(const struct http_req *r)
{
	return r->path;
}

const char *http_req_query(const struct http_req *r)
{
	return r->query;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req),
				  name);
}

int http_req_too_large(const struct http_req *r, size_t *limit)
{
	*limit = r->w->s->max_body;
	return r->too_large;
}

const char *http_req_body(struct http_req *r, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);

	*len = in && !r->too_large ? evbuffer_get_length(in) : 0;
	if (!*len)
		return NULL;
	return (const char *)evbuffer_pullup(in, -1);
}

int http_req_is_loopback(const struct http_req *r)
{
	struct evhttp_connection *c = evhttp_request_get_connection(r->req);
	const struct sockaddr *sa = c ? evhttp_connection_get_addr(c) : NULL;

	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		static const uint8_t v4pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0,
						   0, 0xff, 0xff };

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return !memcmp(in6->sin6_addr.s6_addr, v4pfx, 12) &&
		       in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 503: return "Service Unavailable";
	default: return status >= 500 ? "Internal Server Error" : "Error";
	}
}

/* The connection closes once req's answer has gone. Said in the request's
 * headers too: evhttp then closes after the answer and adds no
 * "keep-alive" of its own (an HTTP/1.0 keep-alive request got both). */
static void reply_closes(struct evhttp_request *req)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_remove_header(in, "Connection");
	evhttp_add_header(in, "Connection", "close");
	evhttp_remove_header(h, "Connection");
	evhttp_add_header(h, "Connection", "close");
}

/*
 * A client may half-close its connection (shutdown(SHUT_WR)) once it has
 * sent its requests. evhttp reads on while it sends an answer, to notice
 * a client that has gone, and took end of file for that: it freed the
 * connection with the rest of the answer unsent (an answer above 16 KiB
 * came cut). So while an answer is being sent, end of file is held back:
 * the bufferevent has stopped reading at it, and once the answer has gone
 * evhttp reads again (its own callbacks back), answers what was pipelined
 * and sees end of file again, when it closes. A client that is gone makes
 * the writes fail, which still ends the connection at once, and one that
 * does not take its answer is cut at the deadline (conn_sweep).
 */
static void eof_held(struct bufferevent *bev, short what, void *evcon)
{
	if (what == (BEV_EVENT_READING | BEV_EVENT_EOF))
		return;
	tl_worker->evhttp_event_cb(bev, what, evcon);
}

/* Hold end of file back on evcon while its answer is sent (eof_held). */
static void hold_eof(struct worker *w, struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	bufferevent_data_cb rd, wr;
	bufferevent_event_cb ev;
	void *arg;

	bufferevent_getcb(bev, &rd, &wr, &ev, &arg);
	if (!ev || ev == eof_held)
		return;
	w->evhttp_event_cb = ev;
	bufferevent_setcb(bev, rd, wr, eof_held, arg);
}

void http_reply(struct http_req *r, int status, const char *ctype,
		const void *body, size_t len, const char *allow)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
	struct evbuffer *out = r->w->out;

	if (r->answered)
		return;
	r->answered = 1;
	if (status != 204)
		evhttp_add_header(h, "Content-Type",
				  ctype ? ctype : "application/json");
	if (allow)
		evhttp_add_header(h, "Allow", allow);
	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_CONNECT) {
		/* libevent takes any answer to CONNECT for the opening of a
		 * tunnel: it sends it without Content-Length and keeps the
		 * connection whatever Connection says, so a client could not
		 * tell where the answer ended, and a request pipelined behind
		 * it was run. Nothing is tunnelled here: the answer goes out
		 * as one to GET (its length added) and the connection closes
		 * after it. */
		r->req->type = EVHTTP_REQ_GET;
		reply_closes(r->req);
	}
	if (r->w->stopping) /* the client goes elsewhere for its next one */
		reply_closes(r->req);
	evbuffer_drain(out, evbuffer_get_length(out));
	if (evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD) {
		/* the GET answer's headers without its body: evhttp would send
		 * the body and leave out the length, so a kept-alive client
		 * read the body as the start of its next answer */
		char n[24];

		if (status != 204) {
			snprintf(n, sizeof(n), "%zu", len);
			evhttp_add_header(h, "Content-Length", n);
		}
		len = 0;
	}
	if (len && status != 204)
		evbuffer_add(out, body, len);
	evhttp_send_reply(r->req, status, reason_of(status),
			  status == 204 ? NULL : out);
	if (evcon) /* evhttp sends it from the loop: evcon is still there */
		hold_eof(r->w, evcon);
}
