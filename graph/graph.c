/*
 * graph.c - compressed adjacency with a per-vertex delta, single writer,
 * lock-free readers (userspace RCU for reclamation).
 *
 * Layout of one encoded base list (all varints unless noted):
 *
 *   deg  tsw  dlen                        header, tsw = tsmin * 2 + tsmode
 *   [nblk x (u32 first_id, u32 off)]      block index, when deg > GRAPH_BLOCK
 *   [NEWEST_N x (u32 id, u32 ts)]         newest index, when deg >= NEWEST_MIN
 *   dlen bytes of entries                 per entry: id gap, ts code
 *
 * The first entry's gap is its id; later gaps are id - previous id - 1. A
 * block starts every GRAPH_BLOCK entries; its index entry holds its first
 * id and the offset of its first entry, so a reader that jumps there skips
 * that entry's gap and takes the id from the index.
 *
 * Timestamps (stored units) have two codes, chosen per list by size: mode
 * 0 stores ts - tsmin; mode 1 stores ts - tsmin at each block start and
 * zigzag(ts - previous ts) elsewhere, which wins when time follows id
 * order (ids handed out at sign-up, edges made soon after).
 *
 * A vertex slot (u64) is 0 (no edges), SLOT_ARENA|offset (a base list in
 * the arena, no delta) or a pointer to an immutable struct adj (base +
 * sorted delta). The writer replaces a slot with a new version and retires
 * the old one through call_rcu once per apply/maintain call.
 */
#include "graph.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu/urcu-bp.h>

#include "mem.h"
#include "varint.h"

#define SLOT_ARENA (UINT64_C(1) << 63)
#define DEL UINT32_MAX       /* delta ts of a removed neighbour */
#define NEWEST_MIN 1024u     /* lists this long keep a newest index */
#define NEWEST_N 32u
#define DELTA_SOFT_MIN 8u
#define DELTA_SOFT_MAX 4096u /* hard cap is twice this */
#define RETIRE_BATCH 4096u   /* retired blocks handed to RCU at once */

struct graph_dent {
	uint32_t nbr; /* vertex id */
	uint32_t ts;  /* stored units, or DEL */
};

struct adj {
	const uint8_t *base; /* encoded base or NULL */
	uint32_t deg;        /* merged degree */
	uint32_t nd;         /* delta entries */
	uint32_t bdeg;       /* entries in base */
	uint8_t base_heap;   /* base is malloc'd (retired with the version
				that drops it) */
	struct graph_dent d[];
};

struct graph_vtab {
	_Atomic uint32_t n; /* vertices visible */
	uint32_t cap;
	_Atomic uint64_t *slot;
	uint64_t *ext;
};

struct idmap {
	uint64_t mask; /* slots - 1 */
	_Atomic uint32_t *slot; /* vertex id + 1; 0 = empty */
};

/*
 * Memory the writer replaced, waiting for a grace period. The RCU callback
 * only marks a batch safe; the writer itself frees it on its next call, so
 * every malloc and free of graph memory happens on the writer thread
 * (cross-thread frees made glibc's allocator the bottleneck of ingest).
 */
struct retired {
	struct rcu_head head;
	_Atomic int safe;      /* set by RCU once no reader can see p[] */
	struct retired *next;  /* writer's FIFO, oldest first */
	size_t n;
	void *p[];
};

#define APPLY_CHUNK 256u /* events resolved to vertex ids at once */

struct graph {
	int directed;
	_Atomic(struct graph_vtab *) vt;
	_Atomic(struct idmap *) im;
	uint8_t *arena; /* immutable once the graph is published */
	size_t arena_len, arena_cap;

	/* writer-only state */
	uint32_t im_used;
	uint8_t *queued;    /* per vertex: 1 when in queue */
	size_t queued_cap;
	uint32_t *queue;
	size_t qhead, qlen, qcap;
	uint64_t *dirty; /* bitmap of chunks */
	size_t dirty_cap; /* words */
	void **garbage;
	size_t ngarbage, garbage_cap;
	struct retired *rhead, *rtail; /* batches handed to RCU */
	uint32_t su[APPLY_CHUNK], sw[APPLY_CHUNK]; /* graph_apply scratch */
	uint32_t *sid, *sts; /* merge scratch */
	size_t scap;
	struct graph_buf enc;
	int used_rcu;              /* call_rcu was called: barrier at free */
	uint64_t imp_n, imp_edges; /* import in progress */
	uint8_t *imp_seen;

	/* counters, relaxed atomics: read by any thread */
	_Atomic uint64_t edges, heap_bytes, base_bytes, delta_entries, merges,
		pending;
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

static inline uint32_t ts_units(uint32_t ts)
{
	return ts / GRAPH_TS_RES;
}

static inline uint32_t ts_secs(uint32_t u)
{
	return u * GRAPH_TS_RES;
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

void graph_buf_release(struct graph_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static int buf_reserve(struct graph_buf *b, size_t more)
{
	void *p = b->p;

	if (b->len + more < b->len)
		return -1;
	if (mem_grow(&p, &b->cap, b->len + more, 1))
		return -1;
	b->p = p;
	return 0;
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

/* Total encoded bytes of a base list. */
static size_t base_size(const uint8_t *p)
{
	struct base_hdr h;

	base_parse(p, &h);
	return (size_t)(h.data - p) + h.dlen;
}

static inline uint32_t base_deg(const uint8_t *p)
{
	uint32_t d;

	varint_get(p, &d);
	return d;
}

/* Find w in a base list: 1 with *ts (stored units) when present. */
static int base_find(const uint8_t *b, uint32_t w, uint32_t *ts)
{
	struct base_hdr h;
	const uint8_t *p;
	uint32_t id, gap, t, code, left;

	if (!b)
		return 0;
	base_parse(b, &h);
	if (!h.deg)
		return 0;
	p = h.data;
	left = h.deg;
	if (h.blk) {
		uint32_t lo = 0, hi = h.nblk; /* last block with first <= w */

		if (ld32(h.blk) > w)
			return 0;
		while (hi - lo > 1) {
			uint32_t mid = (lo + hi) / 2;

			if (ld32(h.blk + (size_t)mid * 8) <= w)
				lo = mid;
			else
				hi = mid;
		}
		p = h.data + ld32(h.blk + (size_t)lo * 8 + 4);
		p = varint_get(p, &gap);
		p = varint_get(p, &t);
		id = ld32(h.blk + (size_t)lo * 8);
		left = h.deg - lo * GRAPH_BLOCK - 1;
	} else {
		p = varint_get(p, &id);
		p = varint_get(p, &t);
		left = h.deg - 1;
	}
	t += h.tsmin; /* a block start */
	for (;;) {
		if (id == w) {
			if (ts)
				*ts = t;
			return 1;
		}
		if (id > w || !left)
			return 0;
		p = varint_get(p, &gap);
		p = varint_get(p, &code);
		t = ts_dec(code, h.deg - left, t, h.tsmin, h.tsmode);
		id += gap + 1;
		left--;
	}
}

/* ---- base list: encoder ----------------------------------------------- */

/*
 * Encode n (id, ts) pairs (ids strictly ascending, ts in stored units) as
 * a base list appended to out. O(n) (O(n log 32) for the newest index).
 */
static int base_encode(const uint32_t *id, const uint32_t *ts, uint32_t n,
		       struct graph_buf *out)
{
	uint32_t tsmin = UINT32_MAX, nblk = 0, dlen = 0, d1 = 0, i, prev = 0;
	uint32_t mode;
	size_t hdr, start;
	uint8_t *p;

	for (i = 0; i < n; i++)
		if (ts[i] < tsmin)
			tsmin = ts[i];
	if (!n)
		tsmin = 0;
	for (i = 0; i < n; i++) {
		uint32_t gap = i ? id[i] - prev - 1 : id[i];

		dlen += (uint32_t)(varint_len(gap) + varint_len(ts[i] - tsmin));
		d1 += (uint32_t)(varint_len(gap) +
				 varint_len(ts_enc(ts, i, tsmin, 1)));
		prev = id[i];
	}
	mode = d1 < dlen;
	if (mode)
		dlen = d1;
	if (n > GRAPH_BLOCK)
		nblk = (n + GRAPH_BLOCK - 1) / GRAPH_BLOCK;
	hdr = varint_len(n) + varint_len(tsmin * 2 + mode) + varint_len(dlen) +
	      (size_t)nblk * 8 + (n >= NEWEST_MIN ? NEWEST_N * 8 : 0);
	if (buf_reserve(out, hdr + dlen))
		return -1;
	start = out->len;
	p = out->p + start;
	p += varint_put(p, n);
	p += varint_put(p, tsmin * 2 + mode);
	p += varint_put(p, dlen);
	if (nblk) {
		uint8_t *blk = p, *q = p + (size_t)nblk * 8 +
				       (n >= NEWEST_MIN ? NEWEST_N * 8 : 0);
		const uint8_t *data = q;

		for (i = 0; i < n; i++) {
			if (i % GRAPH_BLOCK == 0) {
				st32(blk + (size_t)(i / GRAPH_BLOCK) * 8, id[i]);
				st32(blk + (size_t)(i / GRAPH_BLOCK) * 8 + 4,
				     (uint32_t)(q - data));
			}
			q += varint_put(q, i ? id[i] - id[i - 1] - 1 : id[i]);
			q += varint_put(q, ts_enc(ts, i, tsmin, mode));
		}
		p += (size_t)nblk * 8;
	}
	if (n >= NEWEST_MIN) {
		/* the NEWEST_N entries by (ts desc, id asc), by insertion */
		uint32_t top[NEWEST_N], k = 0;

		for (i = 0; i < n; i++) {
			uint32_t j;

			if (k == NEWEST_N && ts[i] <= ts[top[k - 1]])
				continue; /* ties keep the smaller id */
			j = k < NEWEST_N ? k++ : k - 1;
			while (j > 0 && ts[top[j - 1]] < ts[i]) {
				top[j] = top[j - 1];
				j--;
			}
			top[j] = i;
		}
		for (i = 0; i < NEWEST_N; i++) {
			st32(p + (size_t)i * 8, id[top[i]]);
			st32(p + (size_t)i * 8 + 4, ts[top[i]]);
		}
		p += NEWEST_N * 8;
	}
	if (!nblk) {
		for (i = 0; i < n; i++) {
			p += varint_put(p, i ? id[i] - id[i - 1] - 1 : id[i]);
			p += varint_put(p, ts_enc(ts, i, tsmin, mode));
		}
	} else {
		p += dlen;
	}
	out->len = (size_t)(p - out->p);
	return 0;
}

/* ---- slots ------------------------------------------------------------ */

struct vref {
	const uint8_t *base;
	const struct adj *a; /* NULL: base only */
	uint32_t deg, bdeg;
};

static inline void slot_read(const struct graph *g, uint64_t s,
			     struct vref *r)
{
	if (!s) {
		r->base = NULL;
		r->a = NULL;
		r->deg = r->bdeg = 0;
	} else if (s & SLOT_ARENA) {
		r->base = g->arena + (s & ~SLOT_ARENA);
		r->a = NULL;
		r->deg = r->bdeg = base_deg(r->base);
	} else {
		r->a = (const struct adj *)(uintptr_t)s;
		r->base = r->a->base;
		r->deg = r->a->deg;
		r->bdeg = r->a->bdeg;
	}
}

static inline void vref_get(const struct graph_view *v, uint32_t id,
			    struct vref *r)
{
	uint64_t s = atomic_load_explicit(&v->vt->slot[id],
					  memory_order_acquire);
	slot_read(v->g, s, r);
}

/* ---- lifetime --------------------------------------------------------- */

static struct graph_vtab *vtab_new(uint32_t cap)
{
	struct graph_vtab *vt = calloc(1, sizeof(*vt));

	if (!vt)
		return NULL;
	vt->cap = cap;
	vt->slot = mem_calloc(cap, sizeof(*vt->slot));
	vt->ext = mem_calloc(cap, sizeof(*vt->ext));
	if (!vt->slot || !vt->ext) {
		free(vt->slot);
		free(vt->ext);
		free(vt);
		return NULL;
	}
	mem_hint_huge(vt->slot, (size_t)cap * sizeof(*vt->slot));
	mem_hint_huge(vt->ext, (size_t)cap * sizeof(*vt->ext));
	return vt;
}

static void vtab_free(struct graph_vtab *vt)
{
	if (!vt)
		return;
	free(vt->slot);
	free(vt->ext);
	free(vt);
}

static struct idmap *idmap_new(uint64_t slots)
{
	struct idmap *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	m->mask = slots - 1;
	m->slot = mem_calloc(slots, sizeof(*m->slot));
	if (!m->slot) {
		free(m);
		return NULL;
	}
	mem_hint_huge(m->slot, slots * sizeof(*m->slot));
	return m;
}

static void idmap_free(struct idmap *m)
{
	if (!m)
		return;
	free(m->slot);
	free(m);
}

struct graph *graph_new(int directed)
{
	struct graph *g = calloc(1, sizeof(*g));
	struct graph_vtab *vt;
	struct idmap *im;

	if (!g)
		return NULL;
	g->directed = directed != 0;
	vt = vtab_new(1024);
	im = idmap_new(2048);
	if (!vt || !im) {
		vtab_free(vt);
		idmap_free(im);
		free(g);
		return NULL;
	}
	atomic_init(&g->vt, vt);
	atomic_init(&g->im, im);
	return g;
}

static void reclaim(struct graph *g, int all);

static void free_version(uint64_t s)
{
	struct adj *a;

	if (!s || (s & SLOT_ARENA))
		return;
	a = (struct adj *)(uintptr_t)s;
	if (a->base_heap)
		free((void *)(uintptr_t)a->base);
	free(a);
}

void graph_free(struct graph *g)
{
	struct graph_vtab *vt;
	uint32_t i, n;

	if (!g)
		return;
	if (g->used_rcu)
		urcu_bp_barrier(); /* every mark_safe has run */
	reclaim(g, 1);
	vt = atomic_load(&g->vt);
	n = atomic_load(&vt->n);
	for (i = 0; i < n; i++)
		free_version(atomic_load(&vt->slot[i]));
	vtab_free(vt);
	idmap_free(atomic_load(&g->im));
	free(g->arena);
	free(g->queued);
	free(g->queue);
	free(g->dirty);
	for (i = 0; i < g->ngarbage; i++)
		free(g->garbage[i]);
	free(g->garbage);
	free(g->sid);
	free(g->sts);
	graph_buf_release(&g->enc);
	free(g->imp_seen);
	free(g);
}

int graph_is_directed(const struct graph *g)
{
	return g->directed;
}

/* ---- retirement ------------------------------------------------------- */

static int retire(struct graph *g, void *p)
{
	void *np = g->garbage;

	if (!p)
		return 0;
	if (mem_grow(&np, &g->garbage_cap, g->ngarbage + 1, sizeof(void *)))
		return -1;
	g->garbage = np;
	g->garbage[g->ngarbage++] = p;
	return 0;
}

static int retire_version(struct graph *g, uint64_t s, int with_base)
{
	struct adj *a;

	if (!s || (s & SLOT_ARENA))
		return 0;
	a = (struct adj *)(uintptr_t)s;
	if (with_base && a->base_heap &&
	    retire(g, (void *)(uintptr_t)a->base))
		return -1;
	return retire(g, a);
}

static void mark_safe(struct rcu_head *h)
{
	struct retired *r = caa_container_of(h, struct retired, head);

	atomic_store_explicit(&r->safe, 1, memory_order_release);
}

/* Writer: free every batch whose grace period has ended. With `all`, the
 * caller has waited for every callback (rcu_barrier) first. */
static void reclaim(struct graph *g, int all)
{
	while (g->rhead && (all || atomic_load_explicit(&g->rhead->safe,
							memory_order_acquire))) {
		struct retired *r = g->rhead;

		g->rhead = r->next;
		if (!g->rhead)
			g->rtail = NULL;
		for (size_t i = 0; i < r->n; i++)
			free(r->p[i]);
		free(r);
	}
}

/* Hand the garbage of this writer call to RCU. On allocation failure,
 * wait for a grace period and free it directly. */
static void retire_flush(struct graph *g)
{
	struct retired *r;
	size_t i;

	if (!g->ngarbage)
		return;
	r = malloc(sizeof(*r) + g->ngarbage * sizeof(void *));
	if (!r) {
		urcu_bp_synchronize_rcu();
		for (i = 0; i < g->ngarbage; i++)
			free(g->garbage[i]);
	} else {
		r->n = g->ngarbage;
		r->next = NULL;
		atomic_init(&r->safe, 0);
		memcpy(r->p, g->garbage, g->ngarbage * sizeof(void *));
		if (g->rtail)
			g->rtail->next = r;
		else
			g->rhead = r;
		g->rtail = r;
		urcu_bp_call_rcu(&r->head, mark_safe);
		g->used_rcu = 1;
	}
	g->ngarbage = 0;
	reclaim(g, 0);
}

/* ---- id map ----------------------------------------------------------- */

static uint32_t idmap_find(const struct idmap *m, const struct graph_vtab *vt,
			   uint32_t n, uint64_t key)
{
	uint64_t i = mix64(key) & m->mask;

	for (;; i = (i + 1) & m->mask) {
		uint32_t s = atomic_load_explicit(&m->slot[i],
						  memory_order_acquire);

		if (!s)
			return GRAPH_NONE;
		if (s - 1 < n && vt->ext[s - 1] == key)
			return s - 1;
	}
}

static void idmap_put(struct idmap *m, uint64_t key, uint32_t id)
{
	uint64_t i = mix64(key) & m->mask;

	while (atomic_load_explicit(&m->slot[i], memory_order_relaxed))
		i = (i + 1) & m->mask;
	atomic_store_explicit(&m->slot[i], id + 1, memory_order_release);
}

/* Writer: grow the id map when it is 70% full. */
static int idmap_reserve(struct graph *g, uint64_t more)
{
	struct idmap *m = atomic_load_explicit(&g->im, memory_order_relaxed);
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t slots = m->mask + 1, need = g->im_used + more;
	struct idmap *nm;
	uint32_t i, n;

	if (need * 10 <= slots * 7)
		return 0;
	while (need * 10 > slots * 7)
		slots *= 2;
	nm = idmap_new(slots);
	if (!nm)
		return -1;
	n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	for (i = 0; i < n; i++)
		idmap_put(nm, vt->ext[i], i);
	atomic_store_explicit(&g->im, nm, memory_order_release);
	if (retire(g, m->slot) || retire(g, m)) {
		/* cannot defer: wait for readers, then free */
		urcu_bp_synchronize_rcu();
		free(m->slot);
		free(m);
	}
	return 0;
}

/* Writer: publish a copy of the vertex table with room for cap vertices. */
static int vtab_resize(struct graph *g, uint64_t cap)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint32_t n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	struct graph_vtab *nv;
	uint32_t i;

	if (cap < n || cap > GRAPH_NONE)
		return -1;
	nv = vtab_new((uint32_t)cap);
	if (!nv)
		return -1;
	for (i = 0; i < n; i++)
		atomic_init(&nv->slot[i], atomic_load_explicit(
			&vt->slot[i], memory_order_relaxed));
	memcpy(nv->ext, vt->ext, (size_t)n * sizeof(uint64_t));
	atomic_init(&nv->n, n);
	atomic_store_explicit(&g->vt, nv, memory_order_release);
	if (retire(g, vt->slot) || retire(g, vt->ext) || retire(g, vt)) {
		urcu_bp_synchronize_rcu();
		vtab_free(vt);
	}
	return 0;
}

/* Writer: make room for `more` new vertices (doubling). */
static int vtab_reserve(struct graph *g, uint64_t more)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t cap = vt->cap, need = (uint64_t)atomic_load_explicit(
		&vt->n, memory_order_relaxed) + more;

	if (need <= cap)
		return 0;
	if (need > GRAPH_NONE)
		return -1;
	while (cap < need)
		cap *= 2;
	return vtab_resize(g, cap > GRAPH_NONE ? GRAPH_NONE : cap);
}

/* Writer: trim the vertex table to its vertices plus an eighth, after a
 * bulk build or import (doubling may have left it half empty). */
static void vtab_fit(struct graph *g)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	uint64_t cap = n + n / 8 + 64;

	if (cap < vt->cap)
		vtab_resize(g, cap); /* on failure the larger one stays */
}

/* Writer: the vertex of `member`, created when new. GRAPH_NONE on OOM. */
static uint32_t vertex_get(struct graph *g, uint64_t member)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	struct idmap *m = atomic_load_explicit(&g->im, memory_order_relaxed);
	uint32_t n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	uint32_t id = idmap_find(m, vt, n, member);

	if (id != GRAPH_NONE)
		return id;
	if (vtab_reserve(g, 1) || idmap_reserve(g, 1))
		return GRAPH_NONE;
	vt = atomic_load_explicit(&g->vt, memory_order_relaxed);
	m = atomic_load_explicit(&g->im, memory_order_relaxed);
	id = n;
	vt->ext[id] = member;
	atomic_store_explicit(&vt->slot[id], 0, memory_order_relaxed);
	atomic_store_explicit(&vt->n, n + 1, memory_order_release);
	idmap_put(m, member, id);
	g->im_used++;
	return id;
}

/* ---- readers ---------------------------------------------------------- */

void graph_view_begin(const struct graph *g, struct graph_view *v)
{
	urcu_bp_read_lock();
	v->g = g;
	v->vt = atomic_load_explicit(&((struct graph *)g)->vt,
				     memory_order_acquire);
}

void graph_view_end(struct graph_view *v)
{
	v->vt = NULL;
	urcu_bp_read_unlock();
}

uint32_t graph_nvertices(const struct graph_view *v)
{
	return atomic_load_explicit(&((struct graph_vtab *)v->vt)->n,
				    memory_order_acquire);
}

uint32_t graph_lookup(const struct graph_view *v, uint64_t member)
{
	const struct idmap *m = atomic_load_explicit(
		&((struct graph *)v->g)->im, memory_order_acquire);

	return idmap_find(m, v->vt, graph_nvertices(v), member);
}

uint64_t graph_member(const struct graph_view *v, uint32_t id)
{
	return v->vt->ext[id];
}

uint32_t graph_degree(const struct graph_view *v, uint32_t id)
{
	struct vref r;

	vref_get(v, id, &r);
	return r.deg;
}

static const struct graph_dent *dent_lower(const struct graph_dent *d,
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

/* Current state of w in a version: 1 present (ts set), 0 absent. */
static int vref_find(const struct vref *r, uint32_t w, uint32_t *ts)
{
	if (r->a && r->a->nd) {
		const struct graph_dent *e = r->a->d + r->a->nd;
		const struct graph_dent *x = dent_lower(r->a->d, e, w);

		if (x < e && x->nbr == w) {
			if (x->ts == DEL)
				return 0;
			if (ts)
				*ts = x->ts;
			return 1;
		}
	}
	return base_find(r->base, w, ts);
}

int graph_edge_ts(const struct graph_view *v, uint32_t u, uint32_t w,
		  uint32_t *ts)
{
	struct vref r;
	uint32_t t;

	vref_get(v, u, &r);
	if (!vref_find(&r, w, &t))
		return 0;
	if (ts)
		*ts = ts_secs(t);
	return 1;
}

/* ---- iterator --------------------------------------------------------- */

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

static void it_init_ref(struct graph_iter *it, const struct vref *r)
{
	struct base_hdr h;
	uint32_t id, t;

	memset(it, 0, sizeof(*it));
	it->bid = GRAPH_NONE;
	if (r->base) {
		base_parse(r->base, &h);
		it->blk = h.blk;
		it->nblk = h.nblk;
		it->bdeg = h.deg;
		it->tsmin = h.tsmin;
		it->tsmode = h.tsmode;
		it->data = h.data;
		it->p = h.data;
		it->end = h.data + h.dlen;
		if (h.deg) {
			it->p = varint_get(it->p, &id);
			it->p = varint_get(it->p, &t);
			it->bid = it->prev = id;
			it->bts = h.tsmin + t;
			it->left = h.deg - 1;
		}
	}
	if (r->a) {
		it->d = r->a->d;
		it->dend = r->a->d + r->a->nd;
	}
}

void graph_iter_init(struct graph_iter *it, const struct graph_view *v,
		     uint32_t id)
{
	struct vref r;

	vref_get(v, id, &r);
	it_init_ref(it, &r);
}

/* next, in stored units */
static inline int it_next_raw(struct graph_iter *it, uint32_t *nbr,
			      uint32_t *ts)
{
	for (;;) {
		const struct graph_dent *d = it->d;

		if (d == it->dend) {
			if (it->bid == GRAPH_NONE)
				return 0;
			*nbr = it->bid;
			*ts = it->bts;
			it_base_step(it);
			return 1;
		}
		if (it->bid < d->nbr) {
			*nbr = it->bid;
			*ts = it->bts;
			it_base_step(it);
			return 1;
		}
		if (it->bid == d->nbr)
			it_base_step(it);
		it->d = d + 1;
		if (d->ts == DEL)
			continue;
		*nbr = d->nbr;
		*ts = d->ts;
		return 1;
	}
}

int graph_iter_next(struct graph_iter *it, uint32_t *nbr, uint32_t *ts)
{
	uint32_t n, t;

	if (!it_next_raw(it, &n, &t))
		return 0;
	*nbr = n;
	if (ts)
		*ts = ts_secs(t);
	return 1;
}

void graph_iter_seek(struct graph_iter *it, uint32_t target)
{
	if (it->bid != GRAPH_NONE && it->bid < target) {
		if (it->blk) {
			uint32_t head = it->bdeg - it->left - 1;
			uint32_t cb = head / GRAPH_BLOCK;

			if (cb + 1 < it->nblk &&
			    ld32(it->blk + (size_t)(cb + 1) * 8) <= target) {
				uint32_t lo = cb + 1, hi = it->nblk, gap, t;

				while (hi - lo > 1) {
					uint32_t mid = (lo + hi) / 2;

					if (ld32(it->blk + (size_t)mid * 8) <=
					    target)
						lo = mid;
					else
						hi = mid;
				}
				it->p = it->data +
					ld32(it->blk + (size_t)lo * 8 + 4);
				it->p = varint_get(it->p, &gap);
				it->p = varint_get(it->p, &t);
				it->bid = it->prev =
					ld32(it->blk + (size_t)lo * 8);
				it->bts = it->tsmin + t;
				it->left = it->bdeg - lo * GRAPH_BLOCK - 1;
			}
		}
		while (it->bid != GRAPH_NONE && it->bid < target)
			it_base_step(it);
	}
	if (it->d != it->dend)
		it->d = dent_lower(it->d, it->dend, target);
}

uint32_t graph_common(const struct graph_view *v, uint32_t a, uint32_t b,
		      graph_common_fn fn, void *ctx)
{
	struct graph_iter ia, ib;
	uint32_t x, y, tx, ty, n = 0;
	int oa, ob;

	graph_iter_init(&ia, v, a);
	graph_iter_init(&ib, v, b);
	oa = it_next_raw(&ia, &x, &tx);
	ob = it_next_raw(&ib, &y, &ty);
	while (oa && ob) {
		if (x == y) {
			n++;
			if (fn && fn(ctx, x, ts_secs(tx), ts_secs(ty)))
				break;
			oa = it_next_raw(&ia, &x, &tx);
			ob = it_next_raw(&ib, &y, &ty);
		} else if (x < y) {
			graph_iter_seek(&ia, y);
			oa = it_next_raw(&ia, &x, &tx);
		} else {
			graph_iter_seek(&ib, x);
			ob = it_next_raw(&ib, &y, &ty);
		}
	}
	return n;
}

/* ---- sampling --------------------------------------------------------- */

/* The i-th entry (0-based) of a base list with a block index. */
static void base_nth(const struct base_hdr *h, uint32_t i, uint32_t *id,
		     uint32_t *ts)
{
	uint32_t b = i / GRAPH_BLOCK, k, gap, t, x, code;
	const uint8_t *p = h->data + ld32(h->blk + (size_t)b * 8 + 4);

	x = ld32(h->blk + (size_t)b * 8);
	p = varint_get(p, &gap);
	p = varint_get(p, &t);
	t += h->tsmin;
	for (k = b * GRAPH_BLOCK + 1; k <= i; k++) {
		p = varint_get(p, &gap);
		p = varint_get(p, &code);
		t = ts_dec(code, k, t, h->tsmin, h->tsmode);
		x += gap + 1;
	}
	*id = x;
	*ts = t;
}

struct pick {
	uint32_t id, ts;
};

static int pick_newer(const struct pick *a, const struct pick *b)
{
	return a->ts > b->ts || (a->ts == b->ts && a->id < b->id);
}

/* Keep the k newest of a stream in top[] (sorted newest first). */
static void top_push(struct pick *top, uint32_t *n, uint32_t k,
		     struct pick x)
{
	uint32_t j;

	if (*n == k && !pick_newer(&x, &top[k - 1]))
		return;
	j = *n < k ? (*n)++ : k - 1;
	while (j > 0 && pick_newer(&x, &top[j - 1])) {
		top[j] = top[j - 1];
		j--;
	}
	top[j] = x;
}

static uint32_t sample_newest(const struct vref *r, uint32_t k,
			      uint32_t *nbr, uint32_t *ts)
{
	struct pick top[NEWEST_N], x;
	struct graph_iter it;
	struct base_hdr h;
	uint32_t n = 0, i, valid = 0;

	if (r->base && k <= NEWEST_N) {
		base_parse(r->base, &h);
		if (h.newest) {
			/* newest-index entries not overridden by the delta */
			for (i = 0; i < NEWEST_N; i++) {
				uint32_t id = ld32(h.newest + (size_t)i * 8);
				const struct graph_dent *e;

				if (r->a && r->a->nd) {
					e = dent_lower(r->a->d,
						       r->a->d + r->a->nd, id);
					if (e < r->a->d + r->a->nd &&
					    e->nbr == id)
						continue;
				}
				x.id = id;
				x.ts = ld32(h.newest + (size_t)i * 8 + 4);
				top_push(top, &n, k, x);
				valid++;
			}
			if (valid >= k) {
				for (i = 0; r->a && i < r->a->nd; i++) {
					if (r->a->d[i].ts == DEL)
						continue;
					x.id = r->a->d[i].nbr;
					x.ts = r->a->d[i].ts;
					top_push(top, &n, k, x);
				}
				goto out;
			}
			n = 0;
		}
	}
	/* full scan; k may exceed NEWEST_N here, so use the outputs as the
	 * sorted buffer */
	it_init_ref(&it, r);
	while (it_next_raw(&it, &x.id, &x.ts)) {
		uint32_t j;

		if (n == k && !(x.ts > ts[k - 1] ||
				(x.ts == ts[k - 1] && x.id < nbr[k - 1])))
			continue;
		j = n < k ? n++ : k - 1;
		while (j > 0 && (x.ts > ts[j - 1] ||
				 (x.ts == ts[j - 1] && x.id < nbr[j - 1]))) {
			nbr[j] = nbr[j - 1];
			ts[j] = ts[j - 1];
			j--;
		}
		nbr[j] = x.id;
		ts[j] = x.ts;
	}
	return n;
out:
	for (i = 0; i < n; i++) {
		nbr[i] = top[i].id;
		ts[i] = top[i].ts;
	}
	return n;
}

static uint32_t sample_uniform(const struct vref *r, uint32_t k,
			       uint64_t seed, uint32_t *nbr, uint32_t *ts)
{
	uint64_t s = mix64(seed ^ UINT64_C(0x5851f42d4c957f2d));
	struct graph_iter it;
	struct base_hdr h;
	uint32_t n = 0, id, t;
	uint64_t seen = 0;

	if (r->deg <= k) {
		it_init_ref(&it, r);
		while (it_next_raw(&it, &id, &t)) {
			nbr[n] = id;
			ts[n++] = t;
		}
		return n;
	}
	if (r->base && r->bdeg > 4 * GRAPH_BLOCK && r->deg >= 8 * k) {
		uint32_t nd = r->a ? r->a->nd : 0, tries = 0;
		uint64_t range = (uint64_t)r->bdeg + nd;

		base_parse(r->base, &h);
		while (n < k && tries++ < 16 * k + 64) {
			uint64_t x = rng_next(&s) % range;
			uint32_t j;

			if (x < r->bdeg) {
				base_nth(&h, (uint32_t)x, &id, &t);
				if (nd) {
					const struct graph_dent *e = dent_lower(
						r->a->d, r->a->d + nd, id);
					if (e < r->a->d + nd && e->nbr == id)
						continue; /* counted in delta */
				}
			} else {
				const struct graph_dent *e =
					&r->a->d[x - r->bdeg];

				if (e->ts == DEL)
					continue;
				id = e->nbr;
				t = e->ts;
			}
			for (j = 0; j < n && nbr[j] != id; j++)
				;
			if (j < n)
				continue;
			nbr[n] = id;
			ts[n++] = t;
		}
		if (n == k)
			return n;
		n = 0; /* unlucky (many tombstones): reservoir below */
	}
	it_init_ref(&it, r);
	while (it_next_raw(&it, &id, &t)) {
		seen++;
		if (n < k) {
			nbr[n] = id;
			ts[n++] = t;
		} else {
			uint64_t j = rng_next(&s) % seen;

			if (j < k) {
				nbr[j] = id;
				ts[j] = t;
			}
		}
	}
	return n;
}

uint32_t graph_sample(const struct graph_view *v, uint32_t u, uint32_t k,
		      enum graph_sample_mode mode, uint64_t seed,
		      uint32_t *nbr, uint32_t *ts)
{
	uint32_t tmp_ts[64], *tsv = ts, n, i;
	uint32_t *heap_ts = NULL;
	struct vref r;

	if (!k)
		return 0;
	vref_get(v, u, &r);
	if (!tsv) {
		if (k <= 64) {
			tsv = tmp_ts;
		} else {
			heap_ts = mem_alloc(k, sizeof(uint32_t));
			if (!heap_ts)
				return 0;
			tsv = heap_ts;
		}
	}
	if (mode == GRAPH_SAMPLE_NEWEST)
		n = sample_newest(&r, k, nbr, tsv);
	else
		n = sample_uniform(&r, k, seed ^ u, nbr, tsv);
	if (ts)
		for (i = 0; i < n; i++)
			ts[i] = ts_secs(ts[i]);
	free(heap_ts);
	return n;
}

/* ---- writer: bookkeeping ---------------------------------------------- */

static inline uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* What a heap block really costs: usable size plus the allocator's word. */
static inline uint64_t heap_cost(const void *p)
{
	return p ? malloc_usable_size((void *)(uintptr_t)p) + 8 : 0;
}

static inline uint64_t version_cost(uint64_t s, int with_base)
{
	const struct adj *a;

	if (!s || (s & SLOT_ARENA))
		return 0;
	a = (const struct adj *)(uintptr_t)s;
	return heap_cost(a) + (with_base && a->base_heap ? heap_cost(a->base)
							  : 0);
}

static int dirty_mark(struct graph *g, uint32_t u)
{
	size_t w = (u / GRAPH_CHUNK) / 64;

	if (w >= g->dirty_cap) {
		void *p = g->dirty;
		size_t old = g->dirty_cap;

		if (mem_grow(&p, &g->dirty_cap, w + 1, sizeof(uint64_t)))
			return -1;
		g->dirty = p;
		memset(g->dirty + old, 0, (g->dirty_cap - old) * 8);
	}
	g->dirty[w] |= UINT64_C(1) << ((u / GRAPH_CHUNK) % 64);
	return 0;
}

static int queue_push(struct graph *g, uint32_t u)
{
	void *p;

	if (u >= g->queued_cap) {
		size_t old = g->queued_cap;

		p = g->queued;
		if (mem_grow(&p, &g->queued_cap, (size_t)u + 1, 1))
			return -1;
		g->queued = p;
		memset(g->queued + old, 0, g->queued_cap - old);
	}
	if (g->queued[u])
		return 0;
	if (g->qhead && g->qhead >= g->qlen / 2) {
		memmove(g->queue, g->queue + g->qhead,
			(g->qlen - g->qhead) * sizeof(uint32_t));
		g->qlen -= g->qhead;
		g->qhead = 0;
	}
	p = g->queue;
	if (mem_grow(&p, &g->qcap, g->qlen + 1, sizeof(uint32_t)))
		return -1;
	g->queue = p;
	g->queue[g->qlen++] = u;
	g->queued[u] = 1;
	atomic_fetch_add_explicit(&g->pending, 1, memory_order_relaxed);
	return 0;
}

static inline uint32_t delta_soft(uint32_t bdeg)
{
	uint32_t s = DELTA_SOFT_MIN + bdeg / 64;

	return s > DELTA_SOFT_MAX ? DELTA_SOFT_MAX : s;
}

static int scratch_reserve(struct graph *g, size_t n)
{
	void *a = g->sid, *b = g->sts;
	size_t ca = g->scap, cb = g->scap;

	if (n <= g->scap)
		return 0;
	if (mem_grow(&a, &ca, n, sizeof(uint32_t)))
		return -1;
	g->sid = a;
	if (mem_grow(&b, &cb, n, sizeof(uint32_t)))
		return -1;
	g->sts = b;
	g->scap = ca < cb ? ca : cb;
	return 0;
}

/* ---- writer: merge ---------------------------------------------------- */

/* Fold u's delta into a new base. O(d). */
static int merge_vertex(struct graph *g, uint32_t u)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t s = atomic_load_explicit(&vt->slot[u], memory_order_relaxed);
	uint64_t ns = 0, oldcost = version_cost(s, 1);
	struct graph_iter it;
	struct vref r;
	struct adj *na;
	uint8_t *nb = NULL;
	uint32_t n = 0;

	slot_read(g, s, &r);
	if (!r.a || !r.a->nd)
		return 0;
	if (scratch_reserve(g, r.deg ? r.deg : 1))
		return -1;
	it_init_ref(&it, &r);
	while (it_next_raw(&it, &g->sid[n], &g->sts[n]))
		n++;
	if (n) {
		g->enc.len = 0;
		if (base_encode(g->sid, g->sts, n, &g->enc))
			return -1;
		nb = mem_dup(g->enc.p, g->enc.len);
		na = malloc(sizeof(*na));
		if (!nb || !na) {
			free(nb);
			free(na);
			return -1;
		}
		na->base = nb;
		na->base_heap = 1;
		na->deg = na->bdeg = n;
		na->nd = 0;
		ns = (uint64_t)(uintptr_t)na;
	}
	if (retire_version(g, s, 1))
		return -1;
	atomic_store_explicit(&vt->slot[u], ns, memory_order_release);
	atomic_fetch_sub_explicit(&g->delta_entries, r.a->nd,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&g->heap_bytes, version_cost(ns, 1),
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&g->heap_bytes, oldcost,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&g->base_bytes, ns ? heap_cost(nb) : 0,
				  memory_order_relaxed);
	if (r.a->base_heap)
		atomic_fetch_sub_explicit(&g->base_bytes, heap_cost(r.base),
					  memory_order_relaxed);
	atomic_fetch_add_explicit(&g->merges, 1, memory_order_relaxed);
	return 0;
}

size_t graph_maintain(struct graph *g, uint64_t budget_us)
{
	uint64_t t0 = now_us();

	while (g->qhead < g->qlen) {
		uint32_t u = g->queue[g->qhead++];

		g->queued[u] = 0;
		atomic_fetch_sub_explicit(&g->pending, 1,
					  memory_order_relaxed);
		if (merge_vertex(g, u)) {
			queue_push(g, u); /* out of memory: try later */
			break;
		}
		if (now_us() - t0 >= budget_us)
			break;
	}
	retire_flush(g);
	return g->qlen - g->qhead;
}

/* ---- writer: one half-edge -------------------------------------------- */

enum { UPD_NOOP, UPD_ADDED, UPD_REFRESHED, UPD_REMOVED };

/* Apply u->w (t in stored units). Returns UPD_* or -1 when out of memory. */
static int half_update(struct graph *g, uint32_t u, uint32_t w, uint32_t t,
		       int op)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t s = atomic_load_explicit(&vt->slot[u], memory_order_relaxed);
	const struct graph_dent *d;
	uint32_t nd, pos, ndn, deg, cur = 0, soft;
	int in_delta, present, res, drop = 0;
	struct graph_dent ent = { w, t };
	struct vref r;
	struct adj *na;

	slot_read(g, s, &r);
	d = r.a ? r.a->d : NULL;
	nd = r.a ? r.a->nd : 0;
	pos = nd ? (uint32_t)(dent_lower(d, d + nd, w) - d) : 0;
	in_delta = pos < nd && d[pos].nbr == w;
	if (in_delta) {
		present = d[pos].ts != DEL;
		cur = d[pos].ts;
	} else {
		present = base_find(r.base, w, &cur);
	}
	deg = r.deg;
	if (op == GRAPH_ADD) {
		if (present && cur >= t)
			return UPD_NOOP;
		res = present ? UPD_REFRESHED : UPD_ADDED;
		deg += !present;
	} else {
		if (!present)
			return UPD_NOOP;
		res = UPD_REMOVED;
		deg--;
		if (in_delta && !base_find(r.base, w, NULL))
			drop = 1; /* only ever in the delta: forget it */
		else
			ent.ts = DEL;
	}
	ndn = drop ? nd - 1 : nd + !in_delta;
	na = malloc(sizeof(*na) + (size_t)ndn * sizeof(struct graph_dent));
	if (!na)
		return -1;
	na->base = r.base;
	na->base_heap = r.a ? r.a->base_heap : 0;
	na->bdeg = r.bdeg;
	na->deg = deg;
	na->nd = ndn;
	if (pos)
		memcpy(na->d, d, (size_t)pos * sizeof(*d));
	if (!drop)
		na->d[pos] = ent;
	if (nd > pos + (uint32_t)in_delta)
		memcpy(na->d + pos + !drop, d + pos + in_delta,
		       (size_t)(nd - pos - (uint32_t)in_delta) * sizeof(*d));
	if (retire_version(g, s, 0)) {
		free(na);
		return -1;
	}
	atomic_store_explicit(&vt->slot[u], (uint64_t)(uintptr_t)na,
			      memory_order_release);
	atomic_fetch_add_explicit(&g->heap_bytes, heap_cost(na),
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&g->heap_bytes, version_cost(s, 0),
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&g->delta_entries, (uint64_t)ndn - nd,
				  memory_order_relaxed);
	if (dirty_mark(g, u))
		return -1;
	soft = delta_soft(r.bdeg);
	if (ndn >= 2 * soft) {
		if (merge_vertex(g, u))
			return -1;
	} else if (ndn > soft && queue_push(g, u)) {
		return -1;
	}
	return res;
}

/* Writer: prefetch what applying u's half-edge will touch. */
static inline void prefetch_vertex(const struct graph *g,
				   const struct graph_vtab *vt, uint32_t u)
{
	uint64_t s = atomic_load_explicit(&vt->slot[u], memory_order_relaxed);

	if (s & SLOT_ARENA)
		__builtin_prefetch(g->arena + (s & ~SLOT_ARENA));
	else if (s)
		__builtin_prefetch((const void *)(uintptr_t)s);
}

static inline void prefetch_member(const struct graph *g, uint64_t member)
{
	const struct idmap *m = atomic_load_explicit(
		&((struct graph *)g)->im, memory_order_relaxed);

	__builtin_prefetch(&m->slot[mix64(member) & m->mask]);
}

/*
 * Events go in chunks: first every member is resolved to a vertex (and
 * created), then the half-edges are applied; both loops prefetch a few
 * events ahead, since on a large graph each event is a handful of cache
 * misses (id map, slot, list header) and little else.
 */
int graph_apply(struct graph *g, const struct graph_event *ev, size_t n,
		struct graph_apply_stats *st, struct err *e)
{
	struct graph_apply_stats dummy;
	size_t at, i;
	int rc = 0;

	if (!st) {
		memset(&dummy, 0, sizeof(dummy));
		st = &dummy;
	}
	for (at = 0; at < n && !rc; at += APPLY_CHUNK) {
		const struct graph_event *x = ev + at;
		size_t k = n - at < APPLY_CHUNK ? n - at : APPLY_CHUNK;
		struct graph_vtab *vt;

		for (i = 0; i < k; i++) {
			if (i + 8 < k) {
				prefetch_member(g, x[i + 8].src);
				prefetch_member(g, x[i + 8].dst);
			}
			if (x[i].src == x[i].dst) {
				g->su[i] = GRAPH_NONE;
				continue;
			}
			g->su[i] = vertex_get(g, x[i].src);
			g->sw[i] = g->su[i] == GRAPH_NONE
					   ? GRAPH_NONE
					   : vertex_get(g, x[i].dst);
			if (g->sw[i] == GRAPH_NONE) {
				rc = err_set(e, "out of memory adding member");
				k = i; /* apply what came before */
				break;
			}
		}
		vt = atomic_load_explicit(&g->vt, memory_order_relaxed);
		for (i = 0; i < k; i++) {
			uint32_t u = g->su[i], w = g->sw[i];
			uint32_t t = ts_units(x[i].ts);
			int r;

			if (i + 4 < k && g->su[i + 4] != GRAPH_NONE) {
				prefetch_vertex(g, vt, g->su[i + 4]);
				prefetch_vertex(g, vt, g->sw[i + 4]);
			}
			if (u == GRAPH_NONE) {
				st->rejected++;
				continue;
			}
			r = half_update(g, u, w, t, x[i].op);
			if (r > 0 && !g->directed &&
			    half_update(g, w, u, t, x[i].op) < 0)
				r = -1;
			if (r < 0) {
				rc = err_set(e, "out of memory applying event "
					     "%zu", at + i);
				break;
			}
			switch (r) {
			case UPD_ADDED:
				st->added++;
				atomic_fetch_add_explicit(&g->edges, 1,
							  memory_order_relaxed);
				break;
			case UPD_REFRESHED:
				st->refreshed++;
				break;
			case UPD_REMOVED:
				st->removed++;
				atomic_fetch_sub_explicit(&g->edges, 1,
							  memory_order_relaxed);
				break;
			default:
				st->noops++;
			}
		}
	}
	/* one grace period per batch of garbage, not per call: a call_rcu
	 * per single-event apply would cost more than the apply */
	if (g->ngarbage >= RETIRE_BATCH)
		retire_flush(g);
	return rc;
}

void graph_stats(const struct graph *g, struct graph_stats *st)
{
	struct graph *m = (struct graph *)g;
	struct graph_vtab *vt;
	struct idmap *im;

	urcu_bp_read_lock();
	vt = atomic_load_explicit(&m->vt, memory_order_acquire);
	im = atomic_load_explicit(&m->im, memory_order_acquire);
	st->members = atomic_load_explicit(&vt->n, memory_order_relaxed);
	st->bytes = (uint64_t)vt->cap * 16 + (im->mask + 1) * 4 +
		    sizeof(*g);
	urcu_bp_read_unlock();
	st->edges = atomic_load_explicit(&m->edges, memory_order_relaxed);
	st->base_bytes = g->arena_len +
			 atomic_load_explicit(&m->base_bytes,
					      memory_order_relaxed);
	st->bytes += g->arena_len +
		     atomic_load_explicit(&m->heap_bytes, memory_order_relaxed);
	st->delta_entries = atomic_load_explicit(&m->delta_entries,
						 memory_order_relaxed);
	st->pending_merges = atomic_load_explicit(&m->pending,
						  memory_order_relaxed);
	st->merges = atomic_load_explicit(&m->merges, memory_order_relaxed);
}

/* ---- bulk build ------------------------------------------------------- */

/* Take b's bytes as the arena, trimmed to size. */
static void arena_adopt(struct graph *g, struct graph_buf *b)
{
	uint8_t *p = b->len ? realloc(b->p, b->len) : NULL;

	if (b->len && !p)
		p = b->p; /* keep the larger block */
	else if (!b->len)
		free(b->p);
	g->arena = p;
	g->arena_len = b->len;
	g->arena_cap = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
}

static void sort_u64(uint64_t *a, size_t n)
{
	while (n > 24) {
		uint64_t x = a[0], y = a[n / 2], z = a[n - 1], piv, tmp;
		size_t i = 0, j = n - 1;

		piv = x < y ? (y < z ? y : (x < z ? z : x))
			    : (x < z ? x : (y < z ? z : y));
		for (;;) {
			while (a[i] < piv)
				i++;
			while (a[j] > piv)
				j--;
			if (i >= j)
				break;
			tmp = a[i];
			a[i] = a[j];
			a[j] = tmp;
			i++;
			j--;
		}
		/* recurse on the smaller side, loop on the larger */
		if (j + 1 < n - j - 1) {
			sort_u64(a, j + 1);
			a += j + 1;
			n -= j + 1;
		} else {
			sort_u64(a + j + 1, n - j - 1);
			n = j + 1;
		}
	}
	for (size_t i = 1; i < n; i++) {
		uint64_t x = a[i];
		size_t j = i;

		while (j > 0 && a[j - 1] > x) {
			a[j] = a[j - 1];
			j--;
		}
		a[j] = x;
	}
}

/*
 * Renumber vertices by decreasing degree (ties: first appearance). Hubs
 * get small ids, and since most edges touch a hub, most gaps shrink.
 * Rewrites ext[] and the id map. perm[old] = new.
 */
static int reorder_by_degree(struct graph *g, const uint64_t *deg, uint32_t n,
			     uint32_t *perm)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	struct idmap *im = atomic_load_explicit(&g->im, memory_order_relaxed);
	uint64_t *ext = mem_alloc(n ? n : 1, sizeof(uint64_t));
	uint64_t *key = mem_alloc(n ? n : 1, sizeof(uint64_t));
	uint32_t i;

	if (!ext || !key) {
		free(ext);
		free(key);
		return -1;
	}
	/* sort (degree desc, id asc) packed in one u64 */
	for (i = 0; i < n; i++) {
		uint64_t dd = deg[i] > UINT32_MAX ? UINT32_MAX : deg[i];

		key[i] = ((uint64_t)(UINT32_MAX - (uint32_t)dd) << 32) | i;
	}
	sort_u64(key, n);
	for (i = 0; i < n; i++) {
		uint32_t old = (uint32_t)key[i];

		perm[old] = i;
		ext[i] = vt->ext[old];
	}
	memcpy(vt->ext, ext, (size_t)n * sizeof(uint64_t));
	memset(im->slot, 0, (im->mask + 1) * sizeof(*im->slot));
	for (i = 0; i < n; i++)
		idmap_put(im, vt->ext[i], i);
	free(ext);
	free(key);
	return 0;
}

int graph_build(struct graph *g, const struct graph_event *ev, size_t n,
		unsigned flags, uint64_t *dropped, struct err *e)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint32_t *src = NULL, *dst = NULL, *tsv = NULL, *perm = NULL, nv, u;
	uint64_t *deg = NULL, *off = NULL, *half = NULL, loops = 0, total = 0;
	size_t i, m = 0;
	struct graph_buf arena = { 0 };
	int rc = -1;

	if (atomic_load(&vt->n) || g->arena)
		return err_set(e, "graph_build needs an empty graph");
	src = mem_alloc(n, sizeof(uint32_t));
	dst = mem_alloc(n, sizeof(uint32_t));
	tsv = mem_alloc(n, sizeof(uint32_t));
	if (!src || !dst || !tsv)
		goto oom;
	mem_hint_huge(src, n * sizeof(uint32_t));
	mem_hint_huge(dst, n * sizeof(uint32_t));
	mem_hint_huge(tsv, n * sizeof(uint32_t));
	for (i = 0; i < n; i++) {
		if (ev[i].src == ev[i].dst) {
			loops++;
			continue;
		}
		src[m] = vertex_get(g, ev[i].src);
		dst[m] = vertex_get(g, ev[i].dst);
		if (src[m] == GRAPH_NONE || dst[m] == GRAPH_NONE)
			goto oom;
		tsv[m++] = ts_units(ev[i].ts);
	}
	vt = atomic_load_explicit(&g->vt, memory_order_relaxed);
	nv = atomic_load_explicit(&vt->n, memory_order_relaxed);
	deg = mem_calloc((size_t)nv + 1, sizeof(uint64_t));
	off = mem_calloc((size_t)nv + 1, sizeof(uint64_t));
	if (!deg || !off)
		goto oom;
	for (i = 0; i < m; i++) {
		deg[src[i]]++;
		if (!g->directed)
			deg[dst[i]]++;
	}
	if (flags & GRAPH_BUILD_REORDER) {
		perm = mem_alloc(nv ? nv : 1, sizeof(uint32_t));
		if (!perm || reorder_by_degree(g, deg, nv, perm))
			goto oom;
		for (i = 0; i < m; i++) {
			src[i] = perm[src[i]];
			dst[i] = perm[dst[i]];
		}
		memset(deg, 0, ((size_t)nv + 1) * sizeof(uint64_t));
		for (i = 0; i < m; i++) {
			deg[src[i]]++;
			if (!g->directed)
				deg[dst[i]]++;
		}
	}
	for (u = 0; u < nv; u++)
		off[u + 1] = off[u] + deg[u];
	half = mem_alloc(off[nv] ? off[nv] : 1, sizeof(uint64_t));
	if (!half)
		goto oom;
	mem_hint_huge(half, off[nv] * sizeof(uint64_t));
	/* the arena will take about 4 bytes an entry: reserve it up front */
	if (buf_reserve(&arena, off[nv] * 4 + 64))
		goto oom;
	mem_hint_huge(arena.p, arena.cap);
	memcpy(deg, off, (size_t)nv * sizeof(uint64_t)); /* fill cursors */
	for (i = 0; i < m; i++) {
		half[deg[src[i]]++] = ((uint64_t)dst[i] << 32) | tsv[i];
		if (!g->directed)
			half[deg[dst[i]]++] = ((uint64_t)src[i] << 32) | tsv[i];
	}
	free(src);
	free(dst);
	free(tsv);
	src = dst = tsv = NULL;
	for (u = 0; u < nv; u++) {
		uint64_t *h = half + off[u];
		size_t k = (size_t)(off[u + 1] - off[u]), j, q = 0;

		if (!k)
			continue;
		sort_u64(h, k);
		/* dedup: sorted by (id, ts), so the last of a run is newest */
		if (scratch_reserve(g, k))
			goto oom;
		for (j = 0; j < k; j++) {
			if (j + 1 < k && (h[j + 1] >> 32) == (h[j] >> 32))
				continue;
			g->sid[q] = (uint32_t)(h[j] >> 32);
			g->sts[q++] = (uint32_t)h[j];
		}
		total += q;
		atomic_store_explicit(&vt->slot[u], SLOT_ARENA | arena.len,
				      memory_order_relaxed);
		if (base_encode(g->sid, g->sts, (uint32_t)q, &arena))
			goto oom;
	}
	arena_adopt(g, &arena);
	vtab_fit(g);
	atomic_store(&g->edges, g->directed ? total : total / 2);
	for (u = 0; u < nv; u += GRAPH_CHUNK)
		if (dirty_mark(g, u))
			goto oom;
	if (dropped)
		*dropped = loops;
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory building the graph");
out:
	free(src);
	free(dst);
	free(tsv);
	free(perm);
	free(deg);
	free(off);
	free(half);
	graph_buf_release(&arena);
	return rc;
}

/* ---- persistence ------------------------------------------------------ */

uint32_t graph_nchunks(const struct graph_view *v)
{
	return (graph_nvertices(v) + GRAPH_CHUNK - 1) / GRAPH_CHUNK;
}

int graph_chunk_encode(const struct graph_view *v, uint32_t c,
		       struct graph_buf *out, struct err *e)
{
	uint32_t n = graph_nvertices(v), lo, hi, u, *id = NULL, *ts = NULL;
	struct graph_buf tmp = { 0 };
	size_t cap = 0;
	int rc = -1;

	if ((uint64_t)c * GRAPH_CHUNK >= n)
		return err_set(e, "chunk %u is out of range", c);
	lo = c * GRAPH_CHUNK;
	hi = n - lo < GRAPH_CHUNK ? n : lo + GRAPH_CHUNK;
	if (buf_reserve(out, VARINT_MAX32))
		goto oom;
	out->len += varint_put(out->p + out->len, hi - lo);
	for (u = lo; u < hi; u++) {
		const uint8_t *src;
		struct vref r;
		size_t len;

		vref_get(v, u, &r);
		if (!r.a || !r.a->nd) {
			src = r.base;
			len = r.base ? base_size(r.base) : 0;
		} else {
			struct graph_iter it;
			uint32_t k = 0;

			if (r.deg > cap) {
				free(id);
				free(ts);
				cap = r.deg;
				id = mem_alloc(cap, sizeof(uint32_t));
				ts = mem_alloc(cap, sizeof(uint32_t));
				if (!id || !ts)
					goto oom;
			}
			it_init_ref(&it, &r);
			while (k < r.deg && it_next_raw(&it, &id[k], &ts[k]))
				k++;
			tmp.len = 0;
			if (k && base_encode(id, ts, k, &tmp))
				goto oom;
			src = tmp.p;
			len = tmp.len;
		}
		if (len > UINT32_MAX)
			goto oom;
		if (buf_reserve(out, 8 + VARINT_MAX32 + len))
			goto oom;
		memcpy(out->p + out->len, &v->vt->ext[u], 8);
		out->len += 8;
		out->len += varint_put(out->p + out->len, (uint32_t)len);
		if (len)
			memcpy(out->p + out->len, src, len);
		out->len += len;
	}
	rc = 0;
	goto out;
oom:
	err_set(e, "out of memory encoding chunk %u", c);
out:
	free(id);
	free(ts);
	graph_buf_release(&tmp);
	return rc;
}

int graph_import_begin(struct graph *g, uint64_t nvertices, uint64_t nedges,
		       struct err *e)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t nch = (nvertices + GRAPH_CHUNK - 1) / GRAPH_CHUNK;

	if (atomic_load(&vt->n) || g->arena || g->imp_seen)
		return err_set(e, "import needs an empty graph");
	if (nvertices >= GRAPH_NONE)
		return err_set(e, "member count %llu is too large",
			       (unsigned long long)nvertices);
	if (nvertices > 1024 && vtab_resize(g, nvertices))
		return err_set(e, "out of memory for %llu members",
			       (unsigned long long)nvertices);
	g->imp_seen = mem_calloc(nch ? nch : 1, 1);
	if (!g->imp_seen)
		return err_set(e, "out of memory");
	vt = atomic_load_explicit(&g->vt, memory_order_relaxed);
	atomic_store(&vt->n, (uint32_t)nvertices);
	g->imp_n = nvertices;
	g->imp_edges = nedges;
	g->arena_len = 0;
	return 0;
}

/* Check one untrusted base list of vertex u: 0 with *deg, or -1. */
static int base_check(struct graph *g, uint32_t u, const uint8_t *p,
		      size_t len, uint32_t *deg, struct err *e)
{
	const uint8_t *q = p, *end = p + len, *blk = NULL, *newest = NULL;
	uint32_t d, tsmin, dlen, nblk = 0, i, gap, t, mode, cur = 0;
	uint64_t id = 0;
	const uint8_t *data, *dend;

	if (!(q = varint_get_checked(q, end, &d)) ||
	    !(q = varint_get_checked(q, end, &tsmin)) ||
	    !(q = varint_get_checked(q, end, &dlen)))
		return err_set(e, "member %u: list header is truncated", u);
	if (!d)
		return err_set(e, "member %u: empty list stored", u);
	mode = tsmin & 1;
	tsmin >>= 1;
	if (d > GRAPH_BLOCK) {
		nblk = (d + GRAPH_BLOCK - 1) / GRAPH_BLOCK;
		if ((size_t)(end - q) < (size_t)nblk * 8)
			return err_set(e, "member %u: block index is "
				       "truncated", u);
		blk = q;
		q += (size_t)nblk * 8;
	}
	if (d >= NEWEST_MIN) {
		if ((size_t)(end - q) < NEWEST_N * 8)
			return err_set(e, "member %u: newest index is "
				       "truncated", u);
		newest = q;
		q += NEWEST_N * 8;
	}
	if ((size_t)(end - q) != dlen)
		return err_set(e, "member %u: list length %zu does not match "
			       "header %u", u, (size_t)(end - q), dlen);
	data = q;
	dend = end;
	if (scratch_reserve(g, d))
		return err_set(e, "out of memory");
	for (i = 0; i < d; i++) {
		const uint8_t *at = q;

		if (!(q = varint_get_checked(q, dend, &gap)) ||
		    !(q = varint_get_checked(q, dend, &t)))
			return err_set(e, "member %u: entry %u is truncated",
				       u, i);
		id = i ? id + gap + 1 : gap;
		if (id >= g->imp_n || id == u)
			return err_set(e, "member %u: neighbour %llu is out of "
				       "range", u, (unsigned long long)id);
		if (!mode || i % GRAPH_BLOCK == 0) {
			if ((uint64_t)tsmin + t >= DEL)
				return err_set(e, "member %u: timestamp "
					       "overflows", u);
			cur = tsmin + t;
		} else {
			int64_t nx = (int64_t)cur + (int32_t)((t >> 1) ^
					(uint32_t)-(int32_t)(t & 1));

			if (nx < tsmin || nx >= DEL)
				return err_set(e, "member %u: timestamp %u is "
					       "out of range", u, i);
			cur = (uint32_t)nx;
		}
		if (blk && i % GRAPH_BLOCK == 0 &&
		    (ld32(blk + (size_t)(i / GRAPH_BLOCK) * 8) != id ||
		     ld32(blk + (size_t)(i / GRAPH_BLOCK) * 8 + 4) !=
			     (uint32_t)(at - data)))
			return err_set(e, "member %u: block index entry %u is "
				       "wrong", u, i / GRAPH_BLOCK);
		g->sid[i] = (uint32_t)id;
		g->sts[i] = cur;
	}
	if (q != dend)
		return err_set(e, "member %u: %zu stray bytes after the list",
			       u, (size_t)(dend - q));
	if (newest) {
		/* re-derive the newest index and compare */
		struct graph_buf tmp = { 0 };
		struct base_hdr h;
		int same;

		if (base_encode(g->sid, g->sts, d, &tmp))
			return err_set(e, "out of memory");
		base_parse(tmp.p, &h);
		same = !memcmp(h.newest, newest, NEWEST_N * 8);
		graph_buf_release(&tmp);
		if (!same)
			return err_set(e, "member %u: newest index is wrong",
				       u);
	}
	*deg = d;
	return 0;
}

int graph_import_chunk(struct graph *g, uint32_t c, const void *bytes,
		       size_t len, struct err *e)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	const uint8_t *p = bytes, *end = p + len;
	uint64_t nch = (g->imp_n + GRAPH_CHUNK - 1) / GRAPH_CHUNK;
	uint32_t cnt, want, k;
	struct graph_buf arena = { g->arena, g->arena_len, g->arena_cap };

	if (!g->imp_seen)
		return err_set(e, "chunk %u: no import in progress", c);
	if (c >= nch)
		return err_set(e, "chunk %u: out of range (%llu chunks)", c,
			       (unsigned long long)nch);
	if (g->imp_seen[c])
		return err_set(e, "chunk %u: given twice", c);
	want = (uint32_t)(g->imp_n - (uint64_t)c * GRAPH_CHUNK < GRAPH_CHUNK
				  ? g->imp_n - (uint64_t)c * GRAPH_CHUNK
				  : GRAPH_CHUNK);
	if (!(p = varint_get_checked(p, end, &cnt)) || cnt != want)
		return err_set(e, "chunk %u: bad member count", c);
	for (k = 0; k < cnt; k++) {
		uint32_t u = c * GRAPH_CHUNK + k, l, d;
		uint64_t ext;

		if ((size_t)(end - p) < 8)
			return err_set(e, "chunk %u: truncated at member %u",
				       c, k);
		memcpy(&ext, p, 8);
		p += 8;
		if (!(p = varint_get_checked(p, end, &l)) ||
		    (size_t)(end - p) < l)
			return err_set(e, "chunk %u: truncated list of member "
				       "%u", c, k);
		vt->ext[u] = ext;
		if (!l) {
			atomic_store_explicit(&vt->slot[u], 0,
					      memory_order_relaxed);
			continue;
		}
		if (base_check(g, u, p, l, &d, e)) {
			err_prefix(e, "chunk %u", c);
			return -1;
		}
		if (buf_reserve(&arena, l))
			return err_set(e, "out of memory");
		g->arena = arena.p;
		g->arena_cap = arena.cap;
		memcpy(arena.p + arena.len, p, l);
		atomic_store_explicit(&vt->slot[u], SLOT_ARENA | arena.len,
				      memory_order_relaxed);
		arena.len += l;
		g->arena = arena.p;
		g->arena_len = arena.len;
		atomic_fetch_add(&g->edges, d);
		p += l;
	}
	if (p != end)
		return err_set(e, "chunk %u: %zu stray bytes at the end", c,
			       (size_t)(end - p));
	g->imp_seen[c] = 1;
	return 0;
}

int graph_import_end(struct graph *g, struct err *e)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t nch = (g->imp_n + GRAPH_CHUNK - 1) / GRAPH_CHUNK, c, half;
	struct idmap *im;
	uint32_t u;

	if (!g->imp_seen)
		return err_set(e, "no import in progress");
	for (c = 0; c < nch; c++)
		if (!g->imp_seen[c])
			return err_set(e, "chunk %llu is missing",
				       (unsigned long long)c);
	half = atomic_load(&g->edges);
	if (!g->directed && half % 2)
		return err_set(e, "undirected lists are not symmetric "
			       "(odd count %llu)", (unsigned long long)half);
	if ((g->directed ? half : half / 2) != g->imp_edges)
		return err_set(e, "edge count %llu does not match the lists "
			       "(%llu)", (unsigned long long)g->imp_edges,
			       (unsigned long long)(g->directed ? half
								: half / 2));
	/* a fresh id map sized for every member, checked for duplicates */
	{
		struct idmap *old = atomic_load_explicit(&g->im,
							 memory_order_relaxed);
		uint64_t slots = 2048;

		while (g->imp_n * 10 > slots * 7)
			slots *= 2;
		im = idmap_new(slots);
		if (!im)
			return err_set(e, "out of memory");
		for (u = 0; u < g->imp_n; u++) {
			if (idmap_find(im, vt, u, vt->ext[u]) != GRAPH_NONE) {
				idmap_free(im);
				return err_set(e, "member %llu appears twice",
					       (unsigned long long)vt->ext[u]);
			}
			idmap_put(im, vt->ext[u], u);
		}
		atomic_store_explicit(&g->im, im, memory_order_release);
		idmap_free(old); /* never published to readers */
		g->im_used = (uint32_t)g->imp_n;
	}
	atomic_store(&g->edges, g->directed ? half : half / 2);
	{
		struct graph_buf b = { g->arena, g->arena_len, g->arena_cap };

		arena_adopt(g, &b);
	}
	free(g->imp_seen);
	g->imp_seen = NULL;
	retire_flush(g);
	return 0;
}

int graph_dirty_take(struct graph *g, uint32_t **out, size_t *n,
		     struct err *e)
{
	size_t cnt = 0, w, k = 0;
	uint32_t *list;

	for (w = 0; w < g->dirty_cap; w++)
		cnt += (size_t)__builtin_popcountll(g->dirty[w]);
	list = mem_alloc(cnt ? cnt : 1, sizeof(uint32_t));
	if (!list)
		return err_set(e, "out of memory");
	for (w = 0; w < g->dirty_cap; w++) {
		uint64_t b = g->dirty[w];

		while (b) {
			list[k++] = (uint32_t)(w * 64 +
					       (size_t)__builtin_ctzll(b));
			b &= b - 1;
		}
		g->dirty[w] = 0;
	}
	*out = list;
	*n = cnt;
	return 0;
}
