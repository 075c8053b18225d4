/*
 * graph_int.h - the graph module's private layout, shared by graph.c
 * (readers, lifetime, id map, memory reclamation), graph_write.c (updates,
 * merges, bulk build) and graph_io.c (chunk export and checked import).
 * Nothing outside graph/graph*.c includes it.
 */
#ifndef TRIAD_GRAPH_INT_H
#define TRIAD_GRAPH_INT_H

#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu/urcu-bp.h>

#include "graph.h"
#include "mem.h"
#include "mono.h"
#include "slab.h"
#include "varint.h"

/*
 * RCU, as the graph module uses it. ThreadSanitizer cannot see what orders
 * liburcu-bp's threads (its own barriers, futexes and lock-free queues), so
 * under -fsanitize=thread the graph tells it, with one token: a reader's
 * unlock, a retirement handed to call_rcu and a finished callback release
 * it; the end of a grace period (rcu_wait, the callback, urcu_bp_barrier)
 * acquires it. What readers did then happens before what the writer does
 * with the memory afterwards. One token for all is stronger than RCU: a
 * grace period also orders after read sections that began after it did
 * and ended before it, so a reader that kept a pointer from one section
 * for use in a later one could pass unseen. Elsewhere these are
 * liburcu-bp's calls alone.
 */
#if defined(__SANITIZE_THREAD__)
#define GRAPH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GRAPH_TSAN 1
#endif
#endif
#ifdef GRAPH_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char graph_rcu_token;
#define RCU_TSAN_ACQUIRE() __tsan_acquire(&graph_rcu_token)
#define RCU_TSAN_RELEASE() __tsan_release(&graph_rcu_token)
#else
#define RCU_TSAN_ACQUIRE() ((void)0)
#define RCU_TSAN_RELEASE() ((void)0)
#endif

static inline void rcu_lock(void)
{
	urcu_bp_read_lock();
}

static inline void rcu_unlock(void)
{
	RCU_TSAN_RELEASE();
	urcu_bp_read_unlock();
}

/* Wait until no reader can hold what was unpublished before the call. */
static inline void rcu_wait(void)
{
	urcu_bp_synchronize_rcu();
	RCU_TSAN_ACQUIRE();
}

/*
 * A vertex slot (u64): 0 (no edges); SLOT_ARENA | offset (a base list in
 * the arena, no delta); SLOT_BASE | pointer (a base list of its own on the
 * heap, no delta: what a merge leaves); else a pointer to a struct adj.
 */
#define SLOT_ARENA (UINT64_C(1) << 63)
#define SLOT_BASE (UINT64_C(1) << 62)
#define SLOT_PTR (~(SLOT_ARENA | SLOT_BASE))
#define DEL UINT32_MAX          /* delta ts: removed, masks a base entry */
#define GONE (UINT32_MAX - 1)   /* delta ts: removed, nothing in the base */
#define TS_DEAD GONE            /* a delta ts >= this is a removal */
/* A live delta entry's ts carries this bit when its id is not in the base
 * (an add) and not when it is (a refresh); stored units stay far below it
 * (UINT32_MAX / GRAPH_TS_RES). With DEL and GONE exact too (DEL: in the
 * base, GONE: not), every delta entry says how it moves the positions of
 * the base's entries, which graph_nth reads through a delta by. */
#define DENT_NEW (UINT32_C(1) << 31)
#define NEWEST_MIN 1024u     /* lists this long keep a newest index */
#define NEWEST_N 32u
#define DELTA_SOFT_MIN 8u
#define DELTA_SOFT_MAX 4096u /* hard cap is twice this */
#define TAIL_MIN 2u          /* tail room of a new delta buffer */
#define RETIRE_BATCH 4096u   /* retired blocks handed to RCU at once */

struct graph_dent {
	uint32_t nbr; /* vertex id */
	uint32_t ts;  /* stored units (| DENT_NEW), or DEL / GONE */
};

/*
 * A vertex's delta: changes not yet merged into its base, in one buffer
 * that the writer appends to in place.
 *
 * d[0 .. nd) is sorted by id, duplicate-free and fixed for the buffer's
 * life. d[nd .. nd + nt) is the tail: changes in arrival order, one entry
 * per half-edge update (an add, a refresh with a newer ts, or a removal),
 * so an id may appear several times and the last one is its state. The
 * writer stores the entry at d[nd + nt] (no reader reads past nt) and then
 * publishes `pub` with a release store; a reader loads `pub` once (acquire)
 * and reads d[0 .. nd + nt) of it, entries that never change once
 * published. A tail entry overrides the sorted part, which overrides the
 * base. When the tail is full (cap, or GRAPH_TAIL_MAX entries) the writer
 * builds a new buffer whose sorted part is the old one with the tail folded
 * in, and retires the old buffer through RCU: one allocation every few
 * updates instead of one per update.
 */
struct adj {
	const uint8_t *base;  /* encoded base or NULL; fixed */
	/* what readers see: deg | nt << 32 | moved << PUB_MOVED_SHIFT, where
	 * moved counts the entries of d[0..nd + nt) that add an id to the
	 * base or remove one of its (dent_moves). 0 tells a reader the live
	 * ids are the base's, in order: a delta of refreshed timestamps
	 * alone (as most of a message stream's events are: contacts meeting
	 * again) then costs a read by id or position nothing
	 * (vref_ids_are_base) */
	_Atomic uint64_t pub;
	uint32_t bdeg;        /* entries in base; fixed */
	uint16_t nd;          /* sorted entries; fixed */
	uint16_t cap;         /* entries d[] has room for; fixed */
	struct graph_dent d[];
};

/* pub's fields: nt (<= GRAPH_TAIL_MAX) in bits 32..39, moved (<= ADJ_MAX)
 * from bit 40 */
#define PUB_NT_MASK 0xffu
#define PUB_MOVED_SHIFT 40
static inline uint64_t pub_make(uint32_t deg, uint32_t nt, uint32_t moved)
{
	return deg | (uint64_t)nt << 32 | (uint64_t)moved << PUB_MOVED_SHIFT;
}

#define ADJ_MAX UINT16_MAX /* most entries a delta buffer holds */

_Static_assert(GRAPH_TAIL_MAX >= TAIL_MIN && GRAPH_TAIL_MAX <= 255,
	       "tail bounds");
_Static_assert(2 * DELTA_SOFT_MAX + 2 * GRAPH_TAIL_MAX < ADJ_MAX,
	       "a delta is merged long before its buffer's counts overflow");
_Static_assert(GRAPH_TAIL_MAX <= PUB_NT_MASK &&
		       (uint64_t)ADJ_MAX < (uint64_t)1 << (64 - PUB_MOVED_SHIFT),
	       "pub holds nt and moved");

/* One vertex: its slot and its member id side by side, so the id map's
 * check of the member id brings the slot into cache with it. */
struct vent {
	_Atomic uint64_t slot; /* see SLOT_* */
	uint64_t ext;          /* member id */
};

struct graph_vtab {
	_Atomic uint32_t n; /* vertices visible */
	uint32_t cap;
	struct vent *v;     /* cap entries, n in use */
};

/*
 * Open addressing, linear probing, at most 70% full. An entry holds
 * vertex id + 1 in its low bits (idmask: as many bits as the slot count
 * has, which the ids never outgrow at that fill) and the top bits of the
 * key's hash above them, so a probe that meets another key's entry is
 * told so without reading that key from the vertex table (a cache miss).
 */
struct idmap {
	uint64_t mask;          /* slots - 1 */
	uint32_t idmask;        /* low bits of an entry: id + 1 */
	_Atomic uint32_t *slot; /* (id + 1) | hash bits; 0 = empty */
};


/*
 * Memory the writer replaced, waiting for a grace period. The RCU callback
 * only marks a batch safe; the writer itself frees it on its next call, so
 * every malloc and free of graph memory happens on the writer thread
 * (cross-thread frees made glibc's allocator the bottleneck of ingest).
 */
struct gblock {
	void *p;
	size_t n; /* bytes of a slab block, or 0 for a malloc'd one */
};

struct retired {
	struct rcu_head head;
	_Atomic int safe;      /* set by RCU once no reader can see p[] */
	struct retired *next;  /* writer's FIFO, oldest first */
	size_t n;
	struct gblock p[];
};

#define APPLY_CHUNK 256u /* events between counter updates */
#define APPLY_D 4u        /* events between graph_apply's pipeline stages */
#define APPLY_RING 32u    /* > 4 APPLY_D: per-event pipeline state */
_Static_assert(APPLY_RING > 4 * APPLY_D, "the pipeline's ring holds it");

struct graph {
	int directed;
	_Atomic(struct graph_vtab *) vt;
	_Atomic(struct idmap *) im;
	uint8_t *arena; /* immutable once the graph is published */
	size_t arena_len, arena_cap;
	/* lists overlapping each page of the arena, from the page holding
	 * its first byte (apage_lo); NULL: dead pages are not handed back */
	uint16_t *apage;
	uintptr_t apage_lo;
	_Atomic uint64_t arena_freed; /* bytes of arena pages handed back */
	int arena_nohuge;             /* MADV_NOHUGEPAGE done */

	/* writer-only state */
	uint32_t im_used;
	uint8_t *queued;    /* per vertex: 1 when in queue */
	size_t queued_cap;
	uint32_t *queue;
	size_t qhead, qlen, qcap;
	uint32_t compact_next; /* graph_compact's cursor over the vertices */
	uint32_t cround_seen, cround_merged; /* its round so far */
	uint64_t *dirty; /* bitmap of chunks */
	size_t dirty_cap; /* words */
	struct gblock *garbage;
	size_t ngarbage, garbage_cap;
	struct slab slab; /* delta buffers and merged bases */
	struct retired *rhead, *rtail; /* batches handed to RCU */
	/* graph_apply's pipeline, per event (ring of APPLY_RING) */
	uint32_t su[APPLY_RING], sw[APPLY_RING]; /* its vertices */
	uint64_t hs[APPLY_RING], hw[APPLY_RING]; /* their id hashes */
	const uint8_t *sb[APPLY_RING];           /* the base to search, */
	uint32_t sx[APPLY_RING];                 /* for this id */
	uint32_t *sid, *sts; /* merge scratch */
	size_t scap;
	struct graph_buf enc;
	int used_rcu;              /* call_rcu was called: barrier at free */
	uint64_t imp_n, imp_edges; /* import in progress */
	uint32_t imp_horizon;      /* its ts_horizon() */
	uint8_t *imp_seen;

	/* counters, relaxed atomics: read by any thread */
	_Atomic uint32_t newest; /* newest ts added or loaded, stored units */
	_Atomic uint64_t edges, base_bytes, delta_entries, merges, pending;
};

/* ---- small helpers ---------------------------------------------------- */

static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline void st32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* The key's hash, its first slot and its entry bits above idmask. */
static inline uint64_t idmap_hash(uint64_t key)
{
	return mix64(key);
}

static inline uint32_t idmap_fp(const struct idmap *m, uint64_t h)
{
	return (uint32_t)(h >> 32) & ~m->idmask;
}

/* Writer's hint: the vertex id the probe for hash h would check first
 * against the vertex table, or GRAPH_NONE. Reads the id map only. */
static inline uint32_t idmap_peek(const struct idmap *m, uint64_t h)
{
	uint32_t fp = idmap_fp(m, h);

	for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
		uint32_t s = atomic_load_explicit(&m->slot[i],
						  memory_order_relaxed);

		if (!s)
			return GRAPH_NONE;
		if ((s & ~m->idmask) == fp)
			return (s & m->idmask) - 1;
	}
}

static inline uint32_t ts_units(uint32_t ts)
{
	return ts / GRAPH_TS_RES;
}

static inline uint32_t ts_secs(uint32_t u)
{
	return u * GRAPH_TS_RES;
}

/*
 * The newest timestamp (graph_newest_ts) is the service's "now" for
 * recency; timestamps more than FUTURE_SLACK_S ahead of the wall clock
 * when they are applied, built or loaded do not move it, or one event
 * stamped in the far future (a typo, a producer's clock gone wrong) would
 * age every edge at once and for good. The edges themselves keep their
 * timestamps. Stored units. The wall clock decides, so a server that
 * reloads such an edge more than a day later counts it where the one that
 * applied it did not: the two then disagree on "now" until a newer edge.
 */
#define FUTURE_SLACK_S 86400u
static inline uint32_t ts_horizon(void)
{
	uint64_t t = ((uint64_t)time(NULL) + FUTURE_SLACK_S) / GRAPH_TS_RES;

	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

_Static_assert(GRAPH_TS_RES >= 2, "stored units must fit 31 bits");

static inline uint32_t zigzag(uint32_t d)
{
	return (d << 1) ^ (uint32_t)-(int32_t)(d >> 31);
}

/* Decode one ts code: entry `idx` of a list, previous ts `prev`. */
static inline uint32_t ts_dec(uint32_t v, uint32_t idx, uint32_t prev,
			      uint32_t tsmin, uint32_t mode)
{
	if (!mode || idx % GRAPH_BLOCK == 0)
		return tsmin + v;
	return prev + ((v >> 1) ^ (uint32_t)-(int32_t)(v & 1));
}

static inline uint32_t ts_enc(const uint32_t *ts, uint32_t i, uint32_t tsmin,
			      uint32_t mode)
{
	if (!mode || i % GRAPH_BLOCK == 0)
		return ts[i] - tsmin;
	return zigzag(ts[i] - ts[i - 1]);
}

/* ---- base list: header parse ------------------------------------------ */

struct base_hdr {
	uint32_t deg, tsmin, dlen, nblk, tsmode;
	const uint8_t *blk;    /* block index or NULL */
	const uint8_t *newest; /* newest index or NULL */
	const uint8_t *data;
};

static inline void base_parse(const uint8_t *p, struct base_hdr *h)
{
	p = varint_get(p, &h->deg);
	p = varint_get(p, &h->tsmin);
	h->tsmode = h->tsmin & 1;
	h->tsmin >>= 1;
	p = varint_get(p, &h->dlen);
	h->blk = NULL;
	h->newest = NULL;
	h->nblk = 0;
	if (h->deg > GRAPH_BLOCK) {
		h->nblk = (h->deg + GRAPH_BLOCK - 1) / GRAPH_BLOCK;
		h->blk = p;
		p += (size_t)h->nblk * 8;
	}
	if (h->deg >= NEWEST_MIN) {
		h->newest = p;
		p += NEWEST_N * 8;
	}
	h->data = p;
}


/* In a block index blk (8 bytes an entry: first id, offset), the last
 * block of [lo, hi) whose first id is <= w; the caller knows block lo's
 * is. O(log(hi - lo)). */
static inline uint32_t blk_last_le(const uint8_t *blk, uint32_t lo,
				   uint32_t hi, uint32_t w)
{
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;

		if (ld32(blk + (size_t)mid * 8) <= w)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Where a search for w in base list b starts reading entries: the block
 * whose first id is the last <= w (through the block index), or the
 * entries' start. O(log(d/B)). */
static inline const uint8_t *base_block_of(const uint8_t *b, uint32_t w)
{
	struct base_hdr h;
	uint32_t lo;

	base_parse(b, &h);
	if (!h.blk)
		return h.data;
	lo = blk_last_le(h.blk, 0, h.nblk, w);
	return h.data + ld32(h.blk + (size_t)lo * 8 + 4);
}

static inline uint32_t base_deg(const uint8_t *p)
{
	uint32_t d;

	varint_get(p, &d);
	return d;
}


/* ---- slots ------------------------------------------------------------ */

struct vref {
	const uint8_t *base;
	const struct adj *a; /* NULL: base only */
	uint32_t deg, bdeg;
	uint32_t nd, nt;     /* a's sorted and tail entries (0 without a) */
	uint32_t moved;      /* a's moved (pub; 0 without a) */
};

static inline int ts_dead(uint32_t ts)
{
	return ts >= TS_DEAD;
}

/* A live delta entry's ts in stored units (DENT_NEW cleared). */
static inline uint32_t dent_ts(uint32_t ts)
{
	return ts & ~DENT_NEW;
}

/* 1 when a delta entry changes which ids the list holds against its
 * base: an id the base does not have, live (DENT_NEW), or a base entry
 * removed (DEL). A refresh of a base entry's ts does not, nor does a
 * removal of an id the base never had (GONE: its add counted). */
static inline int dent_moves(uint32_t ts)
{
	return ts == DEL || (ts != GONE && (ts & DENT_NEW));
}

/* 1 when a delta entry's id is in the base the delta sits on. */
static inline int dent_in_base(uint32_t ts)
{
	return ts == DEL || (ts != GONE && !(ts & DENT_NEW));
}

/* One published state of a slot. The one acquire load of a->pub gives the
 * degree and the tail length together. */
static inline void slot_read(const struct graph *g, uint64_t s,
			     struct vref *r)
{
	r->a = NULL;
	r->nd = r->nt = r->moved = 0;
	if (!s) {
		r->base = NULL;
		r->deg = r->bdeg = 0;
	} else if (s & SLOT_ARENA) {
		r->base = g->arena + (s & ~SLOT_ARENA);
		r->deg = r->bdeg = base_deg(r->base);
	} else if (s & SLOT_BASE) {
		r->base = (const uint8_t *)(uintptr_t)(s & SLOT_PTR);
		r->deg = r->bdeg = base_deg(r->base);
	} else {
		const struct adj *a = (const struct adj *)(uintptr_t)s;
		uint64_t pub = atomic_load_explicit(
			&((struct adj *)(uintptr_t)a)->pub,
			memory_order_acquire);

		r->a = a;
		r->base = a->base;
		r->bdeg = a->bdeg;
		r->nd = a->nd;
		r->deg = (uint32_t)pub;
		r->nt = (uint32_t)(pub >> 32) & PUB_NT_MASK;
		r->moved = (uint32_t)(pub >> PUB_MOVED_SHIFT);
	}
}

/* 1 when r's live ids are its base's, in the same order (so deg ==
 * bdeg): no delta, or one that moves none (struct adj, moved). Reads by
 * id or by position may then decode the base alone. */
static inline int vref_ids_are_base(const struct vref *r)
{
	return r->base && (!(r->nd | r->nt) || !r->moved);
}

/*
 * 1 when the view's vertex table holds id. A view that began before the
 * table was regrown keeps the old table, yet reads the delta buffers it
 * shares with the new one, whose tails the writer appends to in place, so
 * a list can name a member created since (see graph.h, "views"): such an
 * id has no edges and member id 0 in the view.
 */
static inline int view_holds(const struct graph_view *v, uint32_t id)
{
	return id < v->vt->cap;
}

/* A hint that slot value s's list (arena base, heap base or delta
 * buffer) is read soon. No effect on results. */
static inline void slot_prefetch(const struct graph *g, uint64_t s)
{
	if (s & SLOT_ARENA)
		__builtin_prefetch(g->arena + (s & ~SLOT_ARENA));
	else if (s)
		__builtin_prefetch((const void *)(uintptr_t)(s & SLOT_PTR));
}

/* The state of vertex id as the view sees it (no edges unless
 * view_holds). */
static inline void vref_get(const struct graph_view *v, uint32_t id,
			    struct vref *r)
{
	uint64_t s = view_holds(v, id)
		     ? atomic_load_explicit(&v->vt->v[id].slot,
					    memory_order_acquire)
		     : 0;
	slot_read(v->g, s, r);
}

/*
 * Resolve n tail entries (arrival order) into out[], ascending by id and
 * packed id << 32 | ts, keeping the last entry of each id (its state).
 * Returns the count. O(n^2) for n <= GRAPH_TAIL_MAX + 1: tails are short.
 */
static inline uint32_t tail_resolve(const struct graph_dent *t, uint32_t n,
				    uint64_t *out)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t x = (uint64_t)t[i].nbr << 32 | t[i].ts;
		uint32_t j = k;

		while (j > 0 && (uint32_t)(out[j - 1] >> 32) > t[i].nbr)
			j--;
		if (j > 0 && (uint32_t)(out[j - 1] >> 32) == t[i].nbr) {
			out[j - 1] = x;
			continue;
		}
		memmove(out + j + 1, out + j, (size_t)(k - j) * sizeof(*out));
		out[j] = x;
		k++;
	}
	return k;
}

/* Set an iterator's delta cursor (d, dend, t[], ti, tn) on r's delta,
 * before its first step (it_delta_step); no delta: an empty cursor. */
static inline void it_delta_init(struct graph_iter *it, const struct vref *r)
{
	it->d = it->dend = NULL;
	it->ti = it->tn = 0;
	if (r->a) {
		it->d = r->a->d;
		it->dend = r->a->d + r->nd;
		if (r->nt)
			it->tn = tail_resolve(r->a->d + r->nd, r->nt, it->t);
	}
}

/* The state of w in a vref's tail: its last entry, or NULL. O(nt). */
static inline const struct graph_dent *tail_find(const struct vref *r,
						 uint32_t w)
{
	const struct graph_dent *t = r->a ? r->a->d + r->nd : NULL;

	for (uint32_t i = r->nt; i-- > 0;)
		if (t[i].nbr == w)
			return &t[i];
	return NULL;
}

static inline const struct graph_dent *dent_lower(const struct graph_dent *d,
					   const struct graph_dent *end,
					   uint32_t w)
{
	size_t lo = 0, hi = (size_t)(end - d);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d[mid].nbr < w)
			lo = mid + 1;
		else
			hi = mid;
	}
	return d + lo;
}

/* The delta's entry for w (tail first, then the sorted part), or NULL
 * when the delta does not mention w. O(nt + log nd). */
static inline const struct graph_dent *delta_find(const struct vref *r,
						  uint32_t w)
{
	const struct graph_dent *x = tail_find(r, w), *e;

	if (x || !r->nd)
		return x;
	e = r->a->d + r->nd;
	x = dent_lower(r->a->d, e, w);
	return x < e && x->nbr == w ? x : NULL;
}

static inline void it_base_step(struct graph_iter *it)
{
	uint32_t gap, t;

	if (!it->left) {
		it->bid = GRAPH_NONE;
		return;
	}
	it->p = varint_get(it->p, &gap);
	it->p = varint_get(it->p, &t);
	it->bts = ts_dec(t, it->bdeg - it->left, it->bts, it->tsmin,
			 it->tsmode);
	it->left--;
	it->bid = it->prev = it->prev + gap + 1;
}

/* The next delta entry (sorted part and resolved tail merged, the tail
 * winning a tie) into xid/xts; xid == GRAPH_NONE when none is left. */
static inline void it_delta_step(struct graph_iter *it)
{
	const struct graph_dent *d = it->d;

	if (it->ti < it->tn) {
		uint64_t t = it->t[it->ti];
		uint32_t tid = (uint32_t)(t >> 32);

		if (d == it->dend || tid <= d->nbr) {
			if (d != it->dend && tid == d->nbr)
				it->d = d + 1;
			it->ti++;
			it->xid = tid;
			it->xts = (uint32_t)t;
			return;
		}
	}
	if (d == it->dend) {
		it->xid = GRAPH_NONE;
		return;
	}
	it->xid = d->nbr;
	it->xts = d->ts;
	it->d = d + 1;
}

/* next, in stored units */
static inline int it_next_raw(struct graph_iter *it, uint32_t *nbr,
			      uint32_t *ts)
{
	for (;;) {
		uint32_t x = it->xid, t;

		if (it->bid < x) {
			*nbr = it->bid;
			*ts = it->bts;
			it_base_step(it);
			return 1;
		}
		if (x == GRAPH_NONE)
			return 0; /* and so is bid */
		if (it->bid == x)
			it_base_step(it);
		t = it->xts;
		it_delta_step(it);
		if (ts_dead(t))
			continue;
		*nbr = x;
		*ts = dent_ts(t);
		return 1;
	}
}

/* 1 when p is a base list in the arena (not a heap block of its own). */
static inline int in_arena(const struct graph *g, const uint8_t *p)
{
	return g->arena && (uintptr_t)p >= (uintptr_t)g->arena &&
	       (uintptr_t)p < (uintptr_t)g->arena + g->arena_len;
}

/* Bytes of a delta buffer's block (slab_alloc'd with this size). */
static inline size_t adj_bytes(const struct adj *a)
{
	return offsetof(struct adj, d) + (size_t)a->cap * sizeof(a->d[0]);
}

/* ---- shared between the graph's files --------------------------------- */

/* Bytes for `more` more in b (growing). 0 or -1. */
int gbuf_reserve(struct graph_buf *b, size_t more);
/* Total bytes of an encoded list. O(1). */
size_t adj_size(const uint8_t *p);
/* Count the arena pages of list b up (+1) or down (-1, handing back pages
 * no list uses any more). Writer only. */
void arena_count(struct graph *g, const uint8_t *b, size_t len, int d);
/* 1 with *ts (stored units) when w is in the encoded list b. */
int adj_find(const uint8_t *b, uint32_t w, uint32_t *ts);
/* Append the encoding of n ascending (id, ts) pairs to out. 0 or -1. */
int adj_encode(const uint32_t *id, const uint32_t *ts, uint32_t n,
	       struct graph_buf *out);
void iter_init_ref(struct graph_iter *it, const struct vref *r);

struct idmap *idmap_new(uint64_t slots);
void idmap_free(struct idmap *m);
uint32_t idmap_find(const struct idmap *m, const struct graph_vtab *vt,
		    uint32_t n, uint64_t key);
void idmap_put(struct idmap *m, uint64_t key, uint32_t id);
int idmap_reserve(struct graph *g, uint64_t more);
int vtab_resize(struct graph *g, uint64_t cap);
int vtab_reserve(struct graph *g, uint64_t more);
void vtab_fit(struct graph *g);
uint32_t graph_vertex_find(struct graph *g, uint64_t member);
uint32_t graph_vertex_get(struct graph *g, uint64_t member);

/* Retire p (n bytes from g->slab, or 0: malloc'd) / a slot's version
 * (and its heap base with with_base); hand retired memory to RCU
 * (gc_flush); free what is past its grace period (reclaim). Writer only. */
int gc_retire(struct graph *g, void *p, size_t n);
int gc_retire_version(struct graph *g, uint64_t s, int with_base);
void gc_flush(struct graph *g);
void reclaim(struct graph *g, int all);

int dirty_mark(struct graph *g, uint32_t u);
int graph_scratch_reserve(struct graph *g, size_t n);
void graph_arena_adopt(struct graph *g, struct graph_buf *b);

#endif
