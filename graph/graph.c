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
 * the arena, no delta), SLOT_BASE|pointer (a merged base on the heap) or a
 * pointer to a struct adj (base + delta buffer, see graph_int.h): a sorted
 * part fixed for the buffer's life and a tail the writer appends to in
 * place behind a published length. The writer replaces a slot's buffer when
 * its tail fills or a merge folds it into a new base, and retires the old
 * one through call_rcu in batches.
 */
#include "graph_int.h"

void graph_buf_release(struct graph_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int gbuf_reserve(struct graph_buf *b, size_t more)
{
	void *p = b->p;

	if (b->len + more < b->len)
		return -1;
	if (mem_grow(&p, &b->cap, b->len + more, 1))
		return -1;
	b->p = p;
	return 0;
}

/* Total encoded bytes of a base list. */
size_t adj_size(const uint8_t *p)
{
	struct base_hdr h;

	base_parse(p, &h);
	return (size_t)(h.data - p) + h.dlen;
}

/*
 * Find w in a base list: 1 with *ts (stored units) when present. The scan
 * reads ids only (a ts code is skipped byte by byte, no decoding): the
 * writer asks this for every half-edge, and most answers are "absent"
 * after a walk over the block. The ts is decoded on a hit: in delta mode
 * by replaying the block's codes up to the hit.
 */
int adj_find(const uint8_t *b, uint32_t w, uint32_t *ts)
{
	struct base_hdr h;
	const uint8_t *p, *start, *end;
	uint32_t id, gap, t, k, first;

	if (!b)
		return 0;
	base_parse(b, &h);
	if (!h.deg)
		return 0;
	first = 0; /* index of the entry at `start` (a block start) */
	if (h.blk) {
		uint32_t lo;

		if (ld32(h.blk) > w)
			return 0;
		lo = blk_last_le(h.blk, 0, h.nblk, w);
		start = h.data + ld32(h.blk + (size_t)lo * 8 + 4);
		id = ld32(h.blk + (size_t)lo * 8);
		p = start;
		while (*p++ >= 0x80) /* its gap: the id is in the index */
			;
		first = lo * GRAPH_BLOCK;
	} else {
		start = h.data;
		p = varint_get(start, &id);
	}
	k = first; /* index of the entry whose id is `id` */
	end = h.data + h.dlen;
	while (id < w) {
		const uint8_t *q;

		if (++k == h.deg)
			return 0;
		/* entry k-1's ts code, then entry k's gap */
		if (end - p >= 8 && (q = varint_skip_get8(p, &gap))) {
			p = q;
		} else {
			while (*p++ >= 0x80)
				;
			p = varint_get(p, &gap);
		}
		id += gap + 1;
	}
	if (id != w)
		return 0;
	if (!ts)
		return 1;
	if (!h.tsmode || k == first) {
		varint_get(p, &t);
		*ts = h.tsmin + t;
		return 1;
	}
	/* delta code: replay from the block start */
	p = start;
	while (*p++ >= 0x80)
		;
	p = varint_get(p, &t);
	t += h.tsmin;
	for (uint32_t i = first + 1; i <= k; i++) {
		uint32_t code;

		while (*p++ >= 0x80)
			;
		p = varint_get(p, &code);
		t = ts_dec(code, i, t, h.tsmin, h.tsmode);
	}
	*ts = t;
	return 1;
}

/* ---- base list: encoder ----------------------------------------------- */

/*
 * Encode n (id, ts) pairs (ids strictly ascending, ts in stored units) as
 * a base list appended to out. O(n) (O(n log 32) for the newest index).
 */
int adj_encode(const uint32_t *id, const uint32_t *ts, uint32_t n,
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
	if (gbuf_reserve(out, hdr + dlen))
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

/* ---- lifetime --------------------------------------------------------- */

static struct graph_vtab *vtab_new(uint32_t cap)
{
	struct graph_vtab *vt = calloc(1, sizeof(*vt));

	if (!vt)
		return NULL;
	vt->cap = cap;
	vt->v = mem_calloc(cap, sizeof(*vt->v));
	if (!vt->v) {
		free(vt);
		return NULL;
	}
	mem_hint_huge(vt->v, (size_t)cap * sizeof(*vt->v));
	return vt;
}

static void vtab_free(struct graph_vtab *vt)
{
	if (!vt)
		return;
	free(vt->v);
	free(vt);
}

struct idmap *idmap_new(uint64_t slots)
{
	struct idmap *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	m->mask = slots - 1;
	/* slots is a power of two; ids + 1 stay below it (70% fill) */
	m->idmask = slots > UINT32_MAX ? UINT32_MAX : (uint32_t)(slots - 1);
	m->slot = mem_calloc(slots, sizeof(*m->slot));
	if (!m->slot) {
		free(m);
		return NULL;
	}
	mem_hint_huge(m->slot, slots * sizeof(*m->slot));
	return m;
}

void idmap_free(struct idmap *m)
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
	slab_init(&g->slab);
	return g;
}

static void free_block(struct graph *g, struct gblock b)
{
	if (in_arena(g, b.p))
		arena_count(g, b.p, b.n, -1); /* a list merged out of it */
	else if (b.n)
		slab_free(&g->slab, b.p, b.n);
	else
		free(b.p);
}

static void free_version(struct graph *g, uint64_t s)
{
	struct adj *a;

	if (!s || (s & SLOT_ARENA))
		return;
	if (s & SLOT_BASE) {
		uint8_t *b = (uint8_t *)(uintptr_t)(s & SLOT_PTR);

		slab_free(&g->slab, b, adj_size(b));
		return;
	}
	a = (struct adj *)(uintptr_t)s;
	if (a->base && !in_arena(g, a->base))
		slab_free(&g->slab, (void *)(uintptr_t)a->base,
			  adj_size(a->base));
	slab_free(&g->slab, a, adj_bytes(a));
}

void graph_free(struct graph *g)
{
	struct graph_vtab *vt;
	uint32_t i, n;

	if (!g)
		return;
	if (g->used_rcu) {
		urcu_bp_barrier(); /* every mark_safe has run */
		RCU_TSAN_ACQUIRE();
	}
	reclaim(g, 1);
	vt = atomic_load(&g->vt);
	n = atomic_load(&vt->n);
	for (i = 0; i < n; i++)
		free_version(g, atomic_load(&vt->v[i].slot));
	vtab_free(vt);
	idmap_free(atomic_load(&g->im));
	free(g->queued);
	free(g->queue);
	free(g->dirty);
	for (i = 0; i < g->ngarbage; i++)
		free_block(g, g->garbage[i]);
	free(g->garbage);
	free(g->arena); /* after the garbage, which may name its lists */
	free(g->apage);
	slab_release(&g->slab);
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

#ifdef GRAPH_TSAN
char graph_rcu_token; /* see rcu_wait in graph_int.h */
#endif

int gc_retire(struct graph *g, void *p, size_t n)
{
	void *np = g->garbage;

	if (!p)
		return 0;
	if (mem_grow(&np, &g->garbage_cap, g->ngarbage + 1,
		     sizeof(struct gblock)))
		return -1;
	g->garbage = np;
	g->garbage[g->ngarbage].p = p;
	g->garbage[g->ngarbage++].n = n;
	return 0;
}

/* Retire a list in the arena: its pages are counted down after the
 * grace period (free_block), when they are counted at all. */
static int gc_retire_arena(struct graph *g, const uint8_t *b)
{
	return g->apage ? gc_retire(g, (void *)(uintptr_t)b, adj_size(b)) : 0;
}

int gc_retire_version(struct graph *g, uint64_t s, int with_base)
{
	struct adj *a;

	if (!s)
		return 0;
	if (s & SLOT_ARENA)
		return with_base ? gc_retire_arena(g, g->arena +
						   (s & ~SLOT_ARENA)) : 0;
	if (s & SLOT_BASE) {
		uint8_t *b = (uint8_t *)(uintptr_t)(s & SLOT_PTR);

		return with_base ? gc_retire(g, b, adj_size(b)) : 0;
	}
	a = (struct adj *)(uintptr_t)s;
	if (with_base && a->base &&
	    (in_arena(g, a->base)
		     ? gc_retire_arena(g, a->base)
		     : gc_retire(g, (void *)(uintptr_t)a->base,
				 adj_size(a->base))))
		return -1;
	return gc_retire(g, a, adj_bytes(a));
}

static void mark_safe(struct rcu_head *h)
{
	struct retired *r = caa_container_of(h, struct retired, head);

	RCU_TSAN_ACQUIRE(); /* a grace period has ended (ThreadSanitizer) */
	atomic_store_explicit(&r->safe, 1, memory_order_release);
	RCU_TSAN_RELEASE(); /* for graph_free, after urcu_bp_barrier */
}

/* Writer: free every batch whose grace period has ended. With `all`, the
 * caller has waited for every callback (rcu_barrier) first. */
void reclaim(struct graph *g, int all)
{
	while (g->rhead && (all || atomic_load_explicit(&g->rhead->safe,
							memory_order_acquire))) {
		struct retired *r = g->rhead;

		g->rhead = r->next;
		if (!g->rhead)
			g->rtail = NULL;
		for (size_t i = 0; i < r->n; i++)
			free_block(g, r->p[i]);
		free(r);
	}
}

/* Hand the garbage of this writer call to RCU. On allocation failure,
 * wait for a grace period and free it directly. */
void gc_flush(struct graph *g)
{
	struct retired *r;
	size_t i;

	if (!g->ngarbage) {
		reclaim(g, 0); /* what earlier calls retired may be safe now */
		return;
	}
	r = g->ngarbage > (SIZE_MAX - sizeof(*r)) / sizeof(struct gblock)
		    ? NULL
		    : malloc(sizeof(*r) + g->ngarbage * sizeof(struct gblock));
	if (!r) {
		rcu_wait();
		for (i = 0; i < g->ngarbage; i++)
			free_block(g, g->garbage[i]);
	} else {
		r->n = g->ngarbage;
		r->next = NULL;
		atomic_init(&r->safe, 0);
		memcpy(r->p, g->garbage, g->ngarbage * sizeof(struct gblock));
		if (g->rtail)
			g->rtail->next = r;
		else
			g->rhead = r;
		g->rtail = r;
		RCU_TSAN_RELEASE(); /* r's contents, for mark_safe */
		urcu_bp_call_rcu(&r->head, mark_safe);
		g->used_rcu = 1;
	}
	g->ngarbage = 0;
	reclaim(g, 0);
}

/* ---- id map ----------------------------------------------------------- */

uint32_t idmap_find(const struct idmap *m, const struct graph_vtab *vt,
			   uint32_t n, uint64_t key)
{
	uint64_t h = idmap_hash(key), i = h & m->mask;
	uint32_t fp = idmap_fp(m, h);

	for (;; i = (i + 1) & m->mask) {
		uint32_t s = atomic_load_explicit(&m->slot[i],
						  memory_order_acquire);
		uint32_t id = (s & m->idmask) - 1;

		if (!s)
			return GRAPH_NONE;
		if ((s & ~m->idmask) == fp && id < n && vt->v[id].ext == key)
			return id;
	}
}

void idmap_put(struct idmap *m, uint64_t key, uint32_t id)
{
	uint64_t h = idmap_hash(key), i = h & m->mask;

	while (atomic_load_explicit(&m->slot[i], memory_order_relaxed))
		i = (i + 1) & m->mask;
	atomic_store_explicit(&m->slot[i], (id + 1) | idmap_fp(m, h),
			      memory_order_release);
}

/* Writer: grow the id map when it is 70% full. */
int idmap_reserve(struct graph *g, uint64_t more)
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
		idmap_put(nm, vt->v[i].ext, i);
	atomic_store_explicit(&g->im, nm, memory_order_release);
	if (gc_retire(g, m->slot, 0) || gc_retire(g, m, 0)) {
		/* cannot defer: wait for readers, then free */
		rcu_wait();
		free(m->slot);
		free(m);
	}
	return 0;
}

/* Writer: publish a copy of the vertex table with room for cap vertices. */
int vtab_resize(struct graph *g, uint64_t cap)
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
	for (i = 0; i < n; i++) {
		atomic_init(&nv->v[i].slot, atomic_load_explicit(
			&vt->v[i].slot, memory_order_relaxed));
		nv->v[i].ext = vt->v[i].ext;
	}
	atomic_init(&nv->n, n);
	atomic_store_explicit(&g->vt, nv, memory_order_release);
	if (gc_retire(g, vt->v, 0) || gc_retire(g, vt, 0)) {
		rcu_wait();
		vtab_free(vt);
	}
	return 0;
}

/* Writer: make room for `more` new vertices (doubling). */
int vtab_reserve(struct graph *g, uint64_t more)
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
void vtab_fit(struct graph *g)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	uint64_t cap = n + n / 8 + 64;

	if (cap < vt->cap)
		vtab_resize(g, cap); /* on failure the larger one stays */
}

/* Writer: the vertex of `member`, or GRAPH_NONE when it has none. */
uint32_t graph_vertex_find(struct graph *g, uint64_t member)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	struct idmap *m = atomic_load_explicit(&g->im, memory_order_relaxed);

	return idmap_find(m, vt, atomic_load_explicit(&vt->n,
						      memory_order_relaxed),
			  member);
}

/* Writer: the vertex of `member`, created when new. GRAPH_NONE on OOM. */
uint32_t graph_vertex_get(struct graph *g, uint64_t member)
{
	struct graph_vtab *vt;
	struct idmap *m;
	uint32_t n, id = graph_vertex_find(g, member);

	if (id != GRAPH_NONE)
		return id;
	if (vtab_reserve(g, 1) || idmap_reserve(g, 1))
		return GRAPH_NONE;
	vt = atomic_load_explicit(&g->vt, memory_order_relaxed);
	m = atomic_load_explicit(&g->im, memory_order_relaxed);
	n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	id = n;
	vt->v[id].ext = member;
	atomic_store_explicit(&vt->v[id].slot, 0, memory_order_relaxed);
	atomic_store_explicit(&vt->n, n + 1, memory_order_release);
	idmap_put(m, member, id);
	g->im_used++;
	return id;
}

/* ---- readers ---------------------------------------------------------- */

void graph_view_begin(const struct graph *g, struct graph_view *v)
{
	rcu_lock();
	v->g = g;
	v->vt = atomic_load_explicit(&((struct graph *)g)->vt,
				     memory_order_acquire);
}

void graph_view_end(struct graph_view *v)
{
	v->vt = NULL;
	rcu_unlock();
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
	return view_holds(v, id) ? v->vt->v[id].ext : 0;
}

uint32_t graph_degree(const struct graph_view *v, uint32_t id)
{
	struct vref r;

	vref_get(v, id, &r);
	return r.deg;
}

void graph_degree_member_batch(const struct graph_view *v, uint32_t n,
			       const uint32_t *ids, uint32_t *deg,
			       uint64_t *member)
{
	uint64_t s[32];
	struct vref r;
	uint32_t i, j, m;

	for (i = 0; i < n; i += m) {
		m = n - i < 32 ? n - i : 32;
		/* slot and member id share the vertex entry */
		for (j = 0; j < m; j++)
			if (view_holds(v, ids[i + j]))
				__builtin_prefetch(&v->vt->v[ids[i + j]]);
		if (deg) {
			/* the slots, then what they point at (an id past the
			 * view's table has none: see vref_get) */
			for (j = 0; j < m; j++) {
				s[j] = view_holds(v, ids[i + j])
				       ? atomic_load_explicit(&v->vt->v[ids[i + j]].slot,
							      memory_order_acquire)
				       : 0;
				slot_prefetch(v->g, s[j]);
			}
			for (j = 0; j < m; j++) {
				slot_read(v->g, s[j], &r);
				deg[i + j] = r.deg;
			}
		}
		if (member)
			for (j = 0; j < m; j++)
				member[i + j] = graph_member(v, ids[i + j]);
	}
}

/* Current state of w in a version: 1 present (ts set), 0 absent. */
static int vref_find(const struct vref *r, uint32_t w, uint32_t *ts)
{
	const struct graph_dent *x = delta_find(r, w);

	if (x) {
		if (ts_dead(x->ts))
			return 0;
		if (ts)
			*ts = dent_ts(x->ts);
		return 1;
	}
	return adj_find(r->base, w, ts);
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


void iter_init_ref(struct graph_iter *it, const struct vref *r)
{
	struct base_hdr h;
	uint32_t id, t;

	/* not memset: t[] is filled only as far as tn */
	it->p = it->end = it->blk = it->data = NULL;
	it->left = it->nblk = it->bdeg = it->prev = 0;
	it->tsmin = it->tsmode = it->bts = 0;
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
	it_delta_init(it, r);
	it_delta_step(it);
}

void graph_iter_init(struct graph_iter *it, const struct graph_view *v,
		     uint32_t id)
{
	struct vref r;

	vref_get(v, id, &r);
	iter_init_ref(it, &r);
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
				uint32_t gap, t, lo;

				lo = blk_last_le(it->blk, cb + 1, it->nblk, target);
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
	if (it->xid < target) {
		if (it->d != it->dend)
			it->d = dent_lower(it->d, it->dend, target);
		while (it->ti < it->tn &&
		       (uint32_t)(it->t[it->ti] >> 32) < target)
			it->ti++;
		it_delta_step(it);
	}
}

uint32_t graph_common(const struct graph_view *v, uint32_t a, uint32_t b,
		      graph_common_fn fn, void *ctx)
{
	struct graph_iter ia, ib;
	/* it_next_raw sets each before it is read (gcc -O3 cannot tell) */
	uint32_t x = 0, y = 0, tx = 0, ty = 0, n = 0;
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
