/*
 * http.c - N evhttp workers sharing one listening socket (see http.h).
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"

struct http_req {
	struct evhttp_request *req;
	struct worker *w;
	const char *path;
	const char *query;
	int answered;
};

struct worker {
	struct http_server *s;
	unsigned idx;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct evbuffer *out; /* reused for every answer */
	struct event *gate;   /* re-enables accepting after a pause */
	_Atomic uint64_t accepted; /* connections accepted so far */
	_Atomic uint64_t accept_errors; /* accept() failures (out of fds) */
	int paused;           /* listener disabled until gate fires */
	time_t err_logged;    /* when an accept error was last logged */
	pthread_t tid;
	int started;
};

struct http_server {
	int fd;
	unsigned n;
	size_t max_body;
	unsigned grace_ms;
	http_handler_fn fn;
	void *ctx;
	struct worker *w;
};

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_rc;

static void evthread_init(void)
{
	evthread_rc = evthread_use_pthreads();
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct worker *w = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct http_req r;
	struct evbuffer *in;

	r.req = req;
	r.w = w;
	r.path = u ? evhttp_uri_get_path(u) : NULL;
	if (!r.path || !*r.path)
		r.path = "/";
	r.query = u ? evhttp_uri_get_query(u) : NULL;
	r.answered = 0;
	in = evhttp_request_get_input_buffer(req);
	if (in && evbuffer_get_length(in) > w->s->max_body) {
		char msg[96];
		int n = snprintf(msg, sizeof(msg),
				 "{\"error\":\"body larger than %zu bytes\"}",
				 w->s->max_body);

		http_reply(&r, 413, NULL, msg, (size_t)n, NULL);
		return;
	}
	w->s->fn(w->s->ctx, &r, w->idx);
	if (!r.answered)
		http_reply(&r, 500, NULL, "{\"error\":\"no answer\"}", 21,
			   NULL);
}

/*
 * Connections are spread evenly over the workers. The kernel wakes every
 * worker for a new connection on the shared socket and the first to look
 * accepts all that are waiting, so a burst (a load balancer or a client
 * opening its pool) would land on one worker and leave the others idle
 * for the life of those keep-alive connections. So a worker that has
 * accepted more than one connection beyond the worker with the fewest
 * pauses accepting for ACCEPT_PAUSE_US (libevent stops its accept loop as
 * soon as the listener is disabled) and lets the others take the next.
 * Called by evhttp for every accepted connection; returning NULL lets
 * evhttp make the connection's bufferevent as usual.
 */
#define ACCEPT_PAUSE_US 1000

static struct bufferevent *on_accept(struct event_base *base, void *arg)
{
	struct worker *w = arg;
	struct http_server *s = w->s;
	uint64_t mine = atomic_fetch_add(&w->accepted, 1) + 1, least = mine;
	struct timeval tv = { 0, ACCEPT_PAUSE_US };
	unsigned i;

	(void)base;
	for (i = 0; i < s->n; i++) {
		uint64_t a = atomic_load(&s->w[i].accepted);

		if (a < least)
			least = a;
	}
	if (s->n > 1 && mine > least + 1 && !w->paused && w->bound) {
		evconnlistener_disable(evhttp_bound_socket_get_listener(w->bound));
		w->paused = 1;
		evtimer_add(w->gate, &tv);
	}
	return NULL;
}

/*
 * accept() failed for a reason retrying at once cannot cure: out of file
 * descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM). The listening
 * socket stays readable, so libevent would call accept again at once,
 * spinning a core and logging a line each time: pause this worker's
 * accepting for ACCEPT_ERR_PAUSE_US instead (open connections are served
 * meanwhile; waiting clients stay in the kernel's backlog), count it, and
 * log at most once per ACCEPT_ERR_LOG_S per worker. Other failures (a
 * network error on one connection) pass.
 */
#define ACCEPT_ERR_PAUSE_US 100000
#define ACCEPT_ERR_LOG_S 10

static _Thread_local struct worker *tl_worker; /* the worker of this thread */

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	/* arg is evhttp's (its struct evhttp); the callback runs on the
	 * listener's worker thread */
	struct worker *w = tl_worker;
	struct timeval tv = { 0, ACCEPT_ERR_PAUSE_US };
	int err = EVUTIL_SOCKET_ERROR();
	time_t now = time(NULL);

	(void)arg;
	if (!w)
		return;
	/* only running out of something is worth a pause; other failures
	 * (a network error on one connection) are that connection's */
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	atomic_fetch_add(&w->accept_errors, 1);
	if (now >= w->err_logged + ACCEPT_ERR_LOG_S) {
		w->err_logged = now;
		fprintf(stderr, "triad serve: accept: %s (worker %u: pausing "
			"new connections for %d ms; counted in "
			"triad_http_accept_errors_total)\n",
			evutil_socket_error_to_string(err), w->idx,
			ACCEPT_ERR_PAUSE_US / 1000);
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

	tl_worker = w;
	event_base_dispatch(w->base);
	return NULL;
}

static void worker_release(struct worker *w)
{
	if (w->gate)
		event_free(w->gate);
	if (w->http)
		evhttp_free(w->http);
	if (w->out)
		evbuffer_free(w->out);
	if (w->base)
		event_base_free(w->base);
	w->gate = NULL;
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
	int one = 1, rc;
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
	s->fn = fn;
	s->ctx = ctx;
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		err_set(e, "socket: %s", strerror(errno));
		goto fail;
	}
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
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
		if (!w->http || !w->out || !w->gate) {
			err_set(e, "out of memory");
			goto fail;
		}
		evhttp_set_max_body_size(w->http,
					 (ev_ssize_t)HTTP_BODY_HARD_MAX(max_body));
		evhttp_set_max_headers_size(w->http, 64 * 1024);
		evhttp_set_timeout(w->http, 60);
		evhttp_set_allowed_methods(w->http,
			EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
			EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
			EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
			EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
		evhttp_set_gencb(w->http, on_request, w);
		evhttp_set_bevcb(w->http, on_accept, w);
		w->bound = evhttp_accept_socket_with_handle(w->http, s->fd);
		if (!w->bound) {
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
		if (pthread_create(&s->w[i].tid, NULL, worker_main, &s->w[i]))
			return err_set(e, "cannot start http worker %u", i);
		s->w[i].started = 1;
	}
	return 0;
}

/* Runs on the worker's own thread. */
static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	evtimer_del(w->gate);
	if (w->bound)
		evhttp_del_accept_socket(w->http, w->bound);
	w->bound = NULL;
	tv.tv_sec = w->s->grace_ms / 1000;
	tv.tv_usec = (long)(w->s->grace_ms % 1000) * 1000;
	event_base_loopexit(w->base, &tv);
}

void http_server_stop(struct http_server *s, unsigned grace_ms)
{
	struct timeval zero = { 0, 0 };
	unsigned i;

	if (!s)
		return;
	s->grace_ms = grace_ms;
	for (i = 0; i < s->n; i++)
		if (s->w[i].started)
			event_base_once(s->w[i].base, -1, EV_TIMEOUT, stop_cb,
					&s->w[i], &zero);
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

uint64_t http_server_accept_errors(const struct http_server *s,
				   unsigned worker)
{
	return worker < s->n ? atomic_load(&s->w[worker].accept_errors) : 0;
}

uint64_t http_server_accepted(const struct http_server *s, unsigned worker)
{
	return worker < s->n ? atomic_load(&s->w[worker].accepted) : 0;
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

const char *http_req_body(struct http_req *r, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);

	*len = in ? evbuffer_get_length(in) : 0;
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

void http_reply(struct http_req *r, int status, const char *ctype,
		const void *body, size_t len, const char *allow)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *out = r->w->out;

	if (r->answered)
		return;
	r->answered = 1;
	if (status != 204)
		evhttp_add_header(h, "Content-Type",
				  ctype ? ctype : "application/json");
	if (allow)
		evhttp_add_header(h, "Allow", allow);
	evbuffer_drain(out, evbuffer_get_length(out));
	if (len && status != 204)
		evbuffer_add(out, body, len);
	evhttp_send_reply(r->req, status, reason_of(status),
			  status == 204 ? NULL : out);
}
