/*
 * graph.h - the in-memory compressed adjacency graph.
 *
 * What always holds:
 * - Members arrive as sparse uint64_t ids; inside they are dense uint32_t
 *   vertex ids handed out by the id map in this module (and only here).
 *   A vertex, once created, is never renumbered or forgotten (its degree
 *   may drop to 0).
 * - Undirected unless created directed: adding {a,b} stores b in a's list
 *   and a in b's. Directed graphs store out-lists only.
 * - Every edge carries a timestamp. The API speaks seconds since the
 *   epoch (uint32_t, 1970..2106); the graph stores them at a resolution of
 *   GRAPH_TS_RES seconds, so a read returns ts rounded down to that.
 * - A neighbour list is sorted by vertex id with no duplicates. The bulk of
 *   it is an immutable "base": gap-coded ids and timestamp offsets in
 *   variable-length bytes, with a block index (first id, byte offset every
 *   GRAPH_BLOCK entries) in front of long lists so readers can seek and
 *   intersect without decoding everything. Recent changes live in a small
 *   per-vertex "delta" that is folded into a new base by merges: a sorted
 *   part and a short tail of changes in arrival order (at most
 *   GRAPH_TAIL_MAX) that the writer appends to in place; readers resolve
 *   the tail (an id's last entry is its state) as they read.
 *
 * Concurrency - one writer, any number of readers:
 * - Writer functions (graph_build, graph_apply, graph_maintain,
 *   graph_import_*, graph_dirty_take) must be called by one thread at a time
 *   (the caller serialises them; a mutex on the writer side is fine).
 * - Readers never block and never wait for the writer. A reader pins a
 *   version with graph_view_begin() and releases it with graph_view_end();
 *   in between it sees, for every member, a list the writer really
 *   published (sorted, duplicate-free): the writer stores a tail entry,
 *   then publishes the degree and tail length in one release store, and
 *   a published entry never changes. One call reads one state of a list;
 *   two calls may see two (later ones). Keep views short (one request):
 *   memory the writer retires is freed only after every view that could
 *   see it has ended (userspace RCU, liburcu-bp: no thread registration
 *   needed). A list read in a view may name a member created after the
 *   view began (ids >= the graph_nvertices the view began with): a
 *   vertex id the view's vertex table does not hold has degree 0, no
 *   neighbours and member id 0 in that view, so callers that size tables
 *   by graph_nvertices pass such ids over.
 *
 * Workload it is tuned for: social graphs of 10^6..10^8 edges with skewed
 * (power-law) degrees, read-mostly (walks and intersections per request)
 * with a steady stream of single-edge adds and removes.
 */
#ifndef TRIAD_GRAPH_H
#define TRIAD_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define GRAPH_TS_RES 3600u   /* stored timestamp resolution, seconds */
#define GRAPH_BLOCK 64u      /* entries per block of the base block index */
#define GRAPH_NONE UINT32_MAX /* "no vertex" */
#define GRAPH_TAIL_MAX 16u   /* most unsorted changes a delta holds */

struct graph;      /* opaque */
struct graph_vtab; /* opaque: one published vertex table */

enum graph_op { GRAPH_ADD = 0, GRAPH_REMOVE = 1 };

/* One edge event, by external member ids. */
struct graph_event {
	uint64_t src, dst; /* member ids; src != dst */
	uint32_t ts;       /* seconds since epoch */
	uint8_t op;        /* enum graph_op */
};

/* Counters of one graph_apply call (added to, not reset). */
struct graph_apply_stats {
	uint64_t added;     /* new edges */
	uint64_t refreshed; /* re-add of an existing edge with a newer ts */
	uint64_t removed;   /* existing edges removed */
	uint64_t noops;     /* re-adds with an older ts, removes of missing edges
			       (unknown members included) */
	uint64_t rejected;  /* self-loops */
};

struct graph_stats {
	uint64_t members;        /* vertices ever seen */
	uint64_t edges;          /* undirected: pairs; directed: arcs */
	uint64_t bytes;          /* memory in use for the graph's data (live
				    blocks; the writer's allocator may hold
				    free blocks besides) */
	uint64_t base_bytes;     /* of which encoded base lists */
	uint64_t delta_entries;  /* entries waiting in deltas */
	uint64_t pending_merges; /* vertices queued for a merge */
	uint64_t merges;         /* merges done since creation */
	uint64_t arena_freed;    /* bytes of the bulk-built arena handed back
				    to the kernel (pages no list uses since
				    merges; not in bytes any more) */
};

/* ---- lifetime --------------------------------------------------------- */

/* A new empty graph. NULL when out of memory. */
struct graph *graph_new(int directed);

/* Free everything. Waits for retired memory's grace period. NULL is fine.
 * No view may be open and no writer call in progress. */
void graph_free(struct graph *g);

int graph_is_directed(const struct graph *g);

/* ---- writer ----------------------------------------------------------- */

/* Bulk flags for graph_build. */
#define GRAPH_BUILD_REORDER 1u /* renumber vertices for smaller gaps */
#define GRAPH_BUILD_SERIAL 2u  /* encode the lists on the calling thread only */

/*
 * Build an empty graph from n add events at once (ops are ignored: all are
 * adds). Self-loops are dropped, repeated pairs keep the newest ts.
 * Vertex ids follow first appearance, or a locality order with
 * GRAPH_BUILD_REORDER. O(n log d) expected time (each list is sorted by a
 * quicksort), O(n) extra memory. From 32,768 half-edges on, the lists are
 * sorted and encoded on two threads (the calling one and one it starts and
 * joins) unless GRAPH_BUILD_SERIAL; the result is the same byte for byte.
 * Returns 0, or -1 with e filled (out of memory, graph not empty).
 * `dropped` (may be NULL) receives the number of self-loops dropped.
 */
int graph_build(struct graph *g, const struct graph_event *ev, size_t n,
		unsigned flags, uint64_t *dropped, struct err *e);

/*
 * graph_build, using the memory of ev (cap >= n events allocated) as its
 * scratch once it has read the events: afterwards ev's contents are
 * unspecified (free it, do not read it). A bulk load then touches a
 * quarter less fresh memory, which on a VM is much of its time.
 */
int graph_build_consume(struct graph *g, struct graph_event *ev, size_t n,
			size_t cap, unsigned flags, uint64_t *dropped,
			struct err *e);

/*
 * Apply n events in order. An add of an existing edge keeps the newer ts; a
 * remove of a missing edge does nothing (and creates no member: a remove
 * naming an unknown member is a no-op); self-loops are counted as
 * rejected. An add's unknown members are created. An undirected event is looked up
 * once, in the shorter of its two lists (both hold the edge with the same
 * ts): O(log(d/B) + B + T + log D) for that list, d its degree, D its delta
 * and T <= GRAPH_TAIL_MAX its tail; then each half-edge appends one entry
 * to its delta's tail, O(1) with no allocation, except every few updates
 * of a vertex when the tail is full and the delta is rebuilt, O(D) with
 * D <= 2 * 4096 (so an update to a vertex of degree 10^6 never costs
 * O(degree) here). Deltas past a soft limit are queued for
 * graph_maintain(); one at twice the limit is merged inline (O(d)).
 * Events are pipelined: while one is applied, the memory of the next few
 * is prefetched. Readers see each event's effect on a member's list
 * atomically. Returns 0, or -1 when out of memory (events before the
 * failing one are applied; the failing one may have reached one of its
 * two lists). st may be NULL.
 */
int graph_apply(struct graph *g, const struct graph_event *ev, size_t n,
		struct graph_apply_stats *st, struct err *e);

/*
 * Do queued merges for about budget_us microseconds (at least one merge
 * when any is queued), and hand memory retired so far to RCU (graph_apply
 * does that only every few thousand retired blocks, since a grace period
 * costs more than an apply). Call it whenever the writer is idle, and at
 * least every few milliseconds under load. Returns the number still queued.
 */
size_t graph_maintain(struct graph *g, uint64_t budget_us);

/*
 * Fold small deltas too: merge each vertex's delta into a new base, going
 * round the vertices from where the last call stopped, for about
 * budget_us microseconds. graph_maintain only merges deltas past their
 * soft limit, so after a stream most members keep a few entries in deltas
 * for good (a small delta buffer costs several times the bytes of the
 * same entries in a base, and every read merges it). Deltas over bases
 * of more than 4,096 entries are left to graph_maintain (it merges them
 * at their soft limit), so a merge here costs O(4,096 + delta) at most,
 * and a hub updated now and then is not re-encoded each time; so are
 * deltas over arena bases when the arena's pages are not counted (no
 * memory for the counts). For when the writer is idle. O(1) a vertex
 * passed. Returns 1 while there may be more to merge, 0 once a whole
 * round of the vertices has found none (events applied since make more).
 */
int graph_compact(struct graph *g, uint64_t budget_us);

/*
 * The newest timestamp of any edge added or loaded so far, in seconds (at
 * GRAPH_TS_RES); 0 when there is none. Removes do not lower it, nor do
 * timestamps more than a day ahead of the wall clock raise it (the edge is
 * kept with its timestamp). Any thread, O(1). The reference "now" for
 * recency features when serving.
 */
uint32_t graph_newest_ts(const struct graph *g);

/* Counters; safe from any thread (values may be a moment old). */
void graph_stats(const struct graph *g, struct graph_stats *st);

/* ---- readers ---------------------------------------------------------- */

struct graph_view {
	const struct graph *g;
	const struct graph_vtab *vt; /* private */
};

/* Pin the current version. Cheap (no lock, no allocation). Views may nest
 * on one thread. Pair with graph_view_end on the same thread. */
void graph_view_begin(const struct graph *g, struct graph_view *v);
void graph_view_end(struct graph_view *v);

/* Number of vertices in this view; valid ids are 0..n-1. O(1). */
uint32_t graph_nvertices(const struct graph_view *v);

/* External id -> vertex id. GRAPH_NONE when unknown. O(1) expected. */
uint32_t graph_lookup(const struct graph_view *v, uint64_t member);

/* Vertex id -> external id; 0 for an id the view's vertex table does not
 * hold (see above). O(1). */
uint64_t graph_member(const struct graph_view *v, uint32_t id);

/* Degree (out-degree when directed). O(1). */
uint32_t graph_degree(const struct graph_view *v, uint32_t id);

/*
 * graph_degree and graph_member of n vertices ids[0..n) into deg[] and
 * member[] (either may be NULL), with the memory reads of the whole batch
 * overlapped (a degree costs two dependent cache misses, a member one).
 * Same values as one call per vertex. O(n).
 */
void graph_degree_member_batch(const struct graph_view *v, uint32_t n,
			       const uint32_t *ids, uint32_t *deg,
			       uint64_t *member);

/* 1 with *ts (may be NULL) filled when the edge u->w exists, else 0.
 * O(log(d/B) + B + log D). */
int graph_edge_ts(const struct graph_view *v, uint32_t u, uint32_t w,
		  uint32_t *ts);

/*
 * Neighbour iterator: ascending ids, with timestamps, merging base and
 * delta on the fly. Stop whenever you like; nothing to release.
 * init O(1); next O(1) amortised; seek O(log(d/B) + B + log D).
 */
struct graph_iter {
	/* private */
	const uint8_t *p, *end; /* base cursor */
	const uint8_t *blk;     /* block index or NULL */
	const uint8_t *data;    /* first byte of base entries */
	uint32_t left;          /* base entries not yet decoded */
	uint32_t nblk, bdeg;
	uint32_t prev;          /* last base id decoded */
	uint32_t tsmin;         /* base ts offset origin, stored units */
	uint32_t tsmode;        /* base ts code: 0 offset, 1 delta */
	uint32_t bid, bts;      /* base head; bid == GRAPH_NONE: exhausted */
	const void *d, *dend;   /* delta's sorted part (struct graph_dent *) */
	uint32_t xid, xts;      /* delta head; xid == GRAPH_NONE: exhausted */
	uint32_t ti, tn;        /* cursor in t[] */
	uint64_t t[GRAPH_TAIL_MAX]; /* the delta's tail, resolved: id<<32|ts */
};

void graph_iter_init(struct graph_iter *it, const struct graph_view *v,
		     uint32_t id);
/* Next neighbour: 1 with *nbr and *ts (may be NULL) set, 0 at the end. */
int graph_iter_next(struct graph_iter *it, uint32_t *nbr, uint32_t *ts);
/* Skip to the first neighbour >= target (the next call to next returns
 * it). Only moves forward. */
void graph_iter_seek(struct graph_iter *it, uint32_t target);

/*
 * Common neighbours of a and b: calls fn(ctx, w, ts_aw, ts_bw) for each w
 * adjacent to both, ascending; fn returning non-zero stops the walk.
 * Returns the number of calls made. Merges the two lists, jumping over
 * blocks of the longer one with seek, so O(min(da,db) * (log + B)) when
 * the degrees differ a lot and O(da + db) otherwise. fn may be NULL to
 * just count.
 */
typedef int (*graph_common_fn)(void *ctx, uint32_t w, uint32_t ts_aw,
			       uint32_t ts_bw);
uint32_t graph_common(const struct graph_view *v, uint32_t a, uint32_t b,
		      graph_common_fn fn, void *ctx);

/*
 * The i-th neighbour (0-based, in id order) of u into *nbr; 1, or 0 when
 * i >= degree. O(log(d/B) + B) through the block index when u has no
 * pending delta; through one of m entries, O(log m + m + B): every delta
 * entry records whether its id is in the base, so the block index still
 * gives each block's position, and the delta moves positions by at most
 * m, so the read starts at block (i - m) / B; O(i + m) for a list of at
 * most B entries.
 * Lets a random walk pick "neighbour number r" with or without a decoded
 * copy of the list and land on the same one.
 */
int graph_nth(const struct graph_view *v, uint32_t u, uint32_t i,
	      uint32_t *nbr);

/*
 * The neighbour ids of u, ascending, into out[0 .. n), n = min(degree,
 * max); returns n. out holds max entries: the degree a caller read before
 * may be stale by the time the list is read (the writer runs alongside),
 * so the bound is the caller's buffer, not the degree. No timestamps: the
 * ids-only fast path for callers that read whole lists (friends of
 * friends, PPR). O(d + m) for m pending changes. On a list without pending
 * changes its blocks are decoded two at a time (two independent chains of
 * varint reads): measured 2.4-3.0 ns an entry on lists of 64 entries or
 * more, 3.3-3.6 before (3 Dec, EPYC VM); with pending changes the base is
 * decoded a block at a time the same way and merged with the delta.
 */
uint32_t graph_ids(const struct graph_view *v, uint32_t u, uint32_t *out,
		   uint32_t max);

/*
 * The neighbours of u, ascending, with their timestamps (seconds) into
 * id[0 .. n) and ts[0 .. n), n = min(degree, max); returns n. The same
 * entries as graph_iter, in one call: on a list without pending changes a
 * single decoding loop (no per-entry merge with a delta); with pending
 * changes, the merging iterator. O(d + m) for m pending changes.
 */
uint32_t graph_list(const struct graph_view *v, uint32_t u, uint32_t *id,
		    uint32_t *ts, uint32_t max);

/*
 * graph_nth for n vertices at once, each at a position given as a fraction:
 * nbr[j] = neighbour number (r[j] * d) >> 32 of u[j] (d its degree), or
 * GRAPH_NONE when u[j] has none; deg[j] (deg may be NULL) gets u[j]'s
 * degree. Same answers as n graph_nth calls, but the
 * n lookups go through memory in stages (slot, list header, block index,
 * block), prefetching each stage for all of them before reading it, so a
 * random walk with several walkers waits for one miss per stage instead of
 * one per list read. n <= GRAPH_BATCH_MAX. n times graph_nth's bound.
 */
#define GRAPH_BATCH_MAX 64u
void graph_nth_batch(const struct graph_view *v, uint32_t n,
		     const uint32_t *u, const uint32_t *r, uint32_t *nbr,
		     uint32_t *deg);

/* A hint that vertex id's slot is read soon (see graph_nth_batch). No
 * effect on any answer. O(1). */
void graph_prefetch(const struct graph_view *v, uint32_t id);

enum graph_sample_mode {
	GRAPH_SAMPLE_UNIFORM, /* k distinct neighbours, uniformly */
	GRAPH_SAMPLE_NEWEST   /* the k newest (ties: smaller id first) */
};

/*
 * Up to k neighbours of u into nbr[] (and ts[] when not NULL); returns how
 * many (min(k, degree)). Deterministic for the same graph, arguments and
 * seed. UNIFORM: O(k * (log + B)) on long lists (random block access),
 * O(d) on short ones; output order is unspecified. NEWEST: newest first,
 * O(min(k, 32) + D) for lists that keep a newest-index (degree >= 1024) and
 * k <= 32, refreshes of the newest edges included; else, or while the
 * delta removes enough of the 32 newest base edges to leave fewer than k
 * of them, O(d log k).
 */
uint32_t graph_sample(const struct graph_view *v, uint32_t u, uint32_t k,
		      enum graph_sample_mode mode, uint64_t seed,
		      uint32_t *nbr, uint32_t *ts);

/*
 * Reorder (nbr, ts)[0..n) so that its k newest (ties: smaller id first)
 * come first, in no particular order: quickselect with a median-of-three
 * pivot, O(n) expected, deterministic, whatever order the timestamps
 * follow (ids often grow with time, which defeats a bounded heap).
 */
void graph_select_newest(uint32_t *nbr, uint32_t *ts, uint32_t n, uint32_t k);

/* ---- persistence: chunks of vertices as self-contained bytes ----------- */

/*
 * The store module persists the graph as chunks of GRAPH_CHUNK vertices
 * (vertex ids [c*GRAPH_CHUNK, (c+1)*GRAPH_CHUNK)). A chunk's bytes hold the
 * members' external ids and fully merged base lists, i.e. exactly the
 * in-memory encoded form, so reopening is a copy plus a bounds check.
 */
#define GRAPH_CHUNK 256u

struct graph_buf {
	uint8_t *p;
	size_t len, cap;
};
void graph_buf_release(struct graph_buf *b);

/* Number of chunks covering the view's vertices. */
uint32_t graph_nchunks(const struct graph_view *v);

/* Append chunk c's bytes to out (reader side: any thread). 0 or -1. */
int graph_chunk_encode(const struct graph_view *v, uint32_t c,
		       struct graph_buf *out, struct err *e);

/*
 * Rebuild from chunks (writer side, on an empty graph): begin with the
 * total vertex and edge counts, then give every chunk 0..nchunks-1 exactly
 * once (any order), then end. The bytes are untrusted: every varint,
 * bound, ordering and id is checked; a bad chunk is refused with a message
 * naming it and leaves the graph unusable (free it). end checks that all
 * chunks arrived, that member ids are unique, that the edge count
 * matches and (undirected) that the lists are symmetric (a keyed hash of
 * both directions of every edge).
 */
int graph_import_begin(struct graph *g, uint64_t nvertices, uint64_t nedges,
		       struct err *e);
int graph_import_chunk(struct graph *g, uint32_t c, const void *p,
		       size_t len, struct err *e);
int graph_import_end(struct graph *g, struct err *e);

/*
 * Writer side: the chunks changed since the last call (ascending), for
 * incremental checkpoints. *out is malloc'd, the caller frees it. 0 or -1.
 */
int graph_dirty_take(struct graph *g, uint32_t **out, size_t *n,
		     struct err *e);

#endif
