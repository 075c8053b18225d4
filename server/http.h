/*
 * http.h - a multi-threaded HTTP/1.1 server on libevent's evhttp.
 *
 * What always holds:
 * - One listening socket, bound before any worker starts, shared by N
 *   worker threads; each worker runs its own event_base and evhttp and
 *   accepts from the shared socket (the kernel hands each connection to
 *   one of them). Connections are spread evenly: a worker that has taken
 *   more than its share pauses accepting for a millisecond. A request is
 *   handled start to finish on one worker, so per-worker scratch needs no
 *   locking.
 * - The handler runs synchronously inside the worker's loop and must
 *   answer every request exactly once with http_reply().
 * - A request whose body is above max_body bytes reaches the handler with
 *   http_req_too_large() set and no body; the handler answers it (413),
 *   so it is counted like any other. libevent itself stops reading at
 *   HTTP_BODY_HARD_MAX(max_body) (Content-Length checked up front, chunked
 *   bodies as they grow) and answers those with its own 413 page: it has
 *   no hook for the body of the errors it sends, so the handler's answer
 *   covers bodies up to four times the limit, and memory stays bounded
 *   beyond.
 * - HEAD is answered as GET (http_req_method says HTTP_GET) with the same
 *   status and headers, Content-Length included, and no body.
 * - CONNECT opens no tunnel: the handler sees it with the target as its
 *   path (HTTP_OTHER) and its answer goes out with a Content-Length, as
 *   any other, after which the connection is closed (libevent sends
 *   answers to CONNECT without a length and keeps the connection).
 * - A request whose Content-Length headers are not all the same digits
 *   (two that differ, a sign) is answered 400 here, before the handler,
 *   and the connection closed: libevent would read the body by the first
 *   and run what follows as a second request (request smuggling). It is
 *   not counted in the handler's figures.
 * - A request must arrive whole (headers and body) within the request
 *   timeout (default HTTP_REQUEST_TIMEOUT_MS), counted from its first
 *   byte: once a second each worker shuts down connections whose request
 *   is still arriving past it (libevent's own timeout, 60 s, restarts at
 *   every byte, so a client trickling its headers held a connection for
 *   ever). An answer must likewise be taken by the client within it,
 *   from its first byte until all of it is in the kernel's buffers.
 *   Idle keep-alive connections are libevent's: closed after 60 s.
 * - The requests arriving at once hold at most the budget (default
 *   HTTP_BUDGET_DEFAULT) between them, headers and bodies counted as they
 *   are read: a connection whose bytes would take the sum past it is
 *   reset, unless it holds less than 16 KiB itself (the most headers
 *   may take).
 * - Out of file descriptors, connections idle for a second or more are
 *   closed to make room (triad_http_idle_closed_total).
 * - While an answer is being sent, a connection reads ahead at most
 *   HTTP_READ_AHEAD bytes of further (pipelined) requests; a client that
 *   sends requests without reading the answers is pushed back by the
 *   kernel instead of being buffered without bound.
 * - Answers are not held back by Nagle's algorithm: every connection
 *   inherits TCP_NODELAY from the listening socket (a kept-alive answer
 *   above 16 KiB waited ~43 ms for the client's delayed ACK).
 * - A client that half-closes (shutdown(SHUT_WR)) after sending its
 *   requests gets every one of them answered in full, then the
 *   connection is closed: end of file is held back while an answer is
 *   being sent, and requests already read are answered before the socket
 *   is read again.
 * - Stopping: stop accepting, let requests already received finish and
 *   their answers flush, then the workers exit.
 *
 * This is the only module besides the Kafka one that sees libevent types;
 * handlers see struct http_req only.
 */
#ifndef TRIAD_HTTP_H
#define TRIAD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The default request deadline (see above). */
#define HTTP_REQUEST_TIMEOUT_MS 60000

/* What libevent buffers of a body at most (see above). */
#define HTTP_BODY_HARD_MAX(max_body) (4 * (size_t)(max_body))
/* What the requests arriving at once may hold, headers and bodies, by
 * default (see http_server_set_budget). */
#define HTTP_BUDGET_DEFAULT ((size_t)128 << 20)

enum http_method { HTTP_GET, HTTP_POST, HTTP_OTHER };

struct http_req; /* one request, valid during the handler call only */

/* Called on worker `worker` (0..nthreads-1) for each request. */
typedef void (*http_handler_fn)(void *ctx, struct http_req *r,
				unsigned worker);

struct http_server;

/*
 * Bind host:port (IPv4 address or name; port 1..65535) and listen.
 * Nothing runs yet. NULL with e filled (e.g. address in use).
 */
struct http_server *http_server_new(const char *host, uint16_t port,
				    unsigned nthreads, size_t max_body,
				    http_handler_fn fn, void *ctx,
				    struct err *e);

/* Start the worker threads. 0 or -1 with e filled. */
int http_server_start(struct http_server *s, struct err *e);

/*
 * Stop accepting, let the requests in flight (arriving or being answered)
 * finish for up to `grace_ms`, returning as soon as none is left (idle
 * keep-alive connections are closed), join the workers. Safe to call once
 * from any thread other than a worker.
 */
void http_server_stop(struct http_server *s, unsigned grace_ms);

/* Set the request deadline in ms (0: none) before http_server_start. */
void http_server_set_request_timeout(struct http_server *s, unsigned ms);
/* Set the budget in bytes (0: none) before http_server_start: the most
 * that the requests still arriving may hold together. */
void http_server_set_budget(struct http_server *s, size_t bytes);

/* What one worker has counted so far. */
struct http_worker_counts {
	uint64_t accepted;      /* connections accepted */
	uint64_t accept_errors; /* accept() failures (out of file
				 * descriptors): each pauses its accepting
				 * for 100 ms */
	uint64_t req_timeouts;  /* requests cut at the deadline */
	uint64_t budget_cuts;   /* requests cut over the budget */
	uint64_t idle_closed;   /* idle connections closed, out of file
				 * descriptors */
};

/* The number of workers; worker `worker`'s counts (zeros for a worker
 * that does not exist); the bytes the requests arriving hold now. Any
 * thread. */
unsigned http_server_workers(const struct http_server *s);
void http_server_worker_counts(const struct http_server *s, unsigned worker,
			       struct http_worker_counts *out);
size_t http_server_held(const struct http_server *s);

/* Free (after stop, or when never started). NULL is fine. */
void http_server_free(struct http_server *s);

/* ---- inside a handler ---------------------------------------------- */

enum http_method http_req_method(const struct http_req *r);
/* The path as sent, without the query and not percent-decoded
 * ("/recommend"); never NULL. */
const char *http_req_path(const struct http_req *r);
/* Raw query string after '?', or NULL when there is none. */
const char *http_req_query(const struct http_req *r);
/* Request header value or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
/* 1 when the request's body is above max_body (*limit: answer 413). */
int http_req_too_large(const struct http_req *r, size_t *limit);
/* The whole body as one contiguous block (*len bytes; may be NULL when
 * empty or too large). Valid until http_reply. */
const char *http_req_body(struct http_req *r, size_t *len);
/* 1 when the peer address is loopback (127.0.0.0/8 or ::1). */
int http_req_is_loopback(const struct http_req *r);

/*
 * Answer: status code, content type (NULL: application/json), body bytes
 * (copied). `allow` (may be NULL) becomes an Allow header (for 405).
 */
void http_reply(struct http_req *r, int status, const char *ctype,
		const void *body, size_t len, const char *allow);

#endif
