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
	if (b.n)
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
	if (g->used_rcu)
		urcu_bp_barrier(); /* every mark_safe has run */
	reclaim(g, 1);
	vt = atomic_load(&g->vt);
	n = atomic_load(&vt->n);
	for (i = 0; i < n; i++)
		free_version(g, atomic_load(&vt->v[i].slot));
	vtab_free(vt);
	idmap_free(atomic_load(&g->im));
	free(g->arena);
	free(g->queued);
	free(g->queue);
	free(g->dirty);
	for (i = 0; i < g->ngarbage; i++)
		free_block(g, g->garbage[i]);
	free(g->garbage);
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

int gc_retire_version(struct graph *g, uint64_t s, int with_base)
{
	struct adj *a;

	if (!s || (s & SLOT_ARENA))
		return 0;
	if (s & SLOT_BASE) {
		uint8_t *b = (uint8_t *)(uintptr_t)(s & SLOT_PTR);

		return with_base ? gc_retire(g, b, adj_size(b)) : 0;
	}
	a = (struct adj *)(uintptr_t)s;
	if (with_base && a->base && !in_arena(g, a->base) &&
	    gc_retire(g, (void *)(uintptr_t)a->base, adj_size(a->base)))
		return -1;
	return gc_retire(g, a, adj_bytes(a));
}

static void mark_safe(struct rcu_head *h)
{
	struct retired *r = caa_container_of(h, struct retired, head);

	atomic_store_explicit(&r->safe, 1, memory_order_release);
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

	if (!g->ngarbage)
		return;
	r = g->ngarbage > (SIZE_MAX - sizeof(*r)) / sizeof(struct gblock)
		    ? NULL
		    : malloc(sizeof(*r) + g->ngarbage * sizeof(struct gblock));
	if (!r) {
		urcu_bp_synchronize_rcu();
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
		urcu_bp_synchronize_rcu();
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
		urcu_bp_synchronize_rcu();
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

/* Writer: the vertex of `member`, created when new. GRAPH_NONE on OOM. */
uint32_t graph_vertex_get(struct graph *g, uint64_t member)
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
				if (s[j] & SLOT_ARENA)
					__builtin_prefetch(v->g->arena + (s[j] & ~SLOT_ARENA));
				else if (s[j])
					__builtin_prefetch(
						(const void *)(uintptr_t)(s[j] & SLOT_PTR));
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
	it->d = it->dend = NULL;
	it->ti = it->tn = 0;
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
		it->dend = r->a->d + r->nd;
		if (r->nt)
			it->tn = tail_resolve(r->a->d + r->nd, r->nt, it->t);
	}
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

/* Skip over an entry's gap and ts code: ids only, no ts decoding. */
static const uint8_t *skip_gap(const uint8_t *p, uint32_t *gap)
{
	p = varint_get(p, gap);
	while (*p++ >= 0x80)
		;
	return p;
}

/* How a delta entry moves the positions of the base entries after it:
 * +1 an add, -1 a removal of a base entry, 0 a refresh or a removal of
 * what only the delta held. */
static int dent_shift(uint32_t ts)
{
	if (ts == DEL)
		return -1;
	return ts != GONE && (ts & DENT_NEW) ? 1 : 0;
}

/*
 * Entry i of a list read through its delta, in id order as an iteration
 * gives it, without decoding the base up to it: the block index's first
 * ids and the delta's entries (each knows whether its id is in the base,
 * DENT_NEW) give every block's first position, O(nblk + m) for m delta
 * entries; then one block is merged with the delta entries in its range,
 * ids only, O(B + m). Lists without an index are merged from the start.
 */
static int nth_merged(const struct vref *r, uint32_t i, uint32_t *nbr)
{
	struct graph_iter c; /* its delta cursor only: d, ti, xid, xts */
	const struct graph_dent *sd;
	struct base_hdr h = { 0 };
	const uint8_t *p = NULL;
	uint32_t left = 0, b = GRAPH_NONE, gap, pos = 0, k, sti, sid, sts;
	int64_t s = 0;

	c.d = c.dend = NULL;
	c.ti = c.tn = 0;
	if (r->a) {
		c.d = r->a->d;
		c.dend = r->a->d + r->nd;
		if (r->nt)
			c.tn = tail_resolve(r->a->d + r->nd, r->nt, c.t);
	}
	it_delta_step(&c);
	sd = c.d, sti = c.ti, sid = c.xid, sts = c.xts; /* where merging starts */
	if (r->base) {
		base_parse(r->base, &h);
		p = h.data;
		left = h.deg;
		/* the last block that starts at or before position i */
		for (k = 0; k < h.nblk; k++) {
			uint32_t f = ld32(h.blk + (size_t)k * 8);
			int64_t at;

			while (c.xid < f) {
				s += dent_shift(c.xts);
				it_delta_step(&c);
			}
			at = (int64_t)k * GRAPH_BLOCK + s;
			if (at > (int64_t)i)
				break;
			pos = (uint32_t)at;
			sd = c.d, sti = c.ti, sid = c.xid, sts = c.xts;
			b = f;
			p = h.data + ld32(h.blk + (size_t)k * 8 + 4);
			p = skip_gap(p, &gap); /* its id is f */
			left = h.deg - k * GRAPH_BLOCK - 1;
		}
		if (b == GRAPH_NONE && left) { /* from the list's first entry */
			p = skip_gap(p, &b);
			left--;
		}
	}
	/* back to the first delta entry at or after b */
	c.d = sd, c.ti = sti, c.xid = sid, c.xts = sts;
	/* merge base entries from b and delta entries from c.xid */
	for (;;) {
		uint32_t x;
		int live;

		if (b == GRAPH_NONE && c.xid == GRAPH_NONE)
			return 0; /* not reached: i < deg */
		if (b < c.xid) {
			x = b;
			live = 1;
		} else {
			x = c.xid;
			live = !ts_dead(c.xts);
		}
		if (live && pos++ == i) {
			*nbr = x;
			return 1;
		}
		if (x == b) {
			if (left) {
				p = skip_gap(p, &gap);
				b += gap + 1;
				left--;
			} else {
				b = GRAPH_NONE;
			}
		}
		if (x == c.xid)
			it_delta_step(&c);
	}
}

/* graph_nth in one published state. */
static int vref_nth(const struct vref *r, uint32_t i, uint32_t *nbr)
{
	struct base_hdr h;
	uint32_t t;

	if (i >= r->deg)
		return 0;
	if (r->base && !r->nd && !r->nt) {
		base_parse(r->base, &h);
		if (h.blk) {
			base_nth(&h, i, nbr, &t);
			return 1;
		}
	}
	return nth_merged(r, i, nbr);
}

int graph_nth(const struct graph_view *v, uint32_t u, uint32_t i,
	      uint32_t *nbr)
{
	struct vref r;

	vref_get(v, u, &r);
	return vref_nth(&r, i, nbr);
}

/* Advance over k entries from p (the list's data ends at end), adding
 * gap + 1 of each to *id. */
static inline const uint8_t *skip_entries(const uint8_t *p,
					  const uint8_t *end, uint32_t k,
					  uint32_t *id)
{
	const uint8_t *q;
	uint32_t gap, x = *id;
	uint64_t w;

	for (; k >= 4 && end - p >= 8 && varint_four_small(p, &w); k -= 4) {
		p += 8;
		x += 4 + varint_four_gap(w, 0) + varint_four_gap(w, 1) +
		     varint_four_gap(w, 2) + varint_four_gap(w, 3);
	}
	for (; k && end - p >= 8 && (q = varint_get_skip8(p, &gap)); k--) {
		p = q;
		x += gap + 1;
	}
	for (; k; k--) {
		p = skip_gap(p, &gap);
		x += gap + 1;
	}
	*id = x;
	return p;
}

/* Four entries of one-byte gaps and ts codes (the load w) after id into
 * o[0..4); returns the last id. */
static inline uint32_t put_four_small(uint64_t w, uint32_t id, uint32_t *o)
{
	o[0] = id += varint_four_gap(w, 0) + 1;
	o[1] = id += varint_four_gap(w, 1) + 1;
	o[2] = id += varint_four_gap(w, 2) + 1;
	o[3] = id += varint_four_gap(w, 3) + 1;
	return id;
}

/* One step of a block's ids-only decode: four entries when their bytes
 * are all small (and four are left before `lim`), else one. Advances *p
 * and *j, returns the last id. */
static inline uint32_t ids_step(const uint8_t **p, const uint8_t *end,
				uint32_t *j, uint32_t lim, uint32_t id,
				uint32_t *o)
{
	const uint8_t *q;
	uint32_t g, s;
	uint64_t w;

	if (end - *p >= 8) {
		if (*j + 4 <= lim && varint_four_small(*p, &w)) {
			*p += 8;
			id = put_four_small(w, id, o + *j);
			*j += 4;
			return id;
		}
		if ((q = varint_get2_8(*p, &g, &s))) {
			*p = q;
			o[(*j)++] = id += g + 1;
			return id;
		}
	}
	*p = skip_gap(*p, &g);
	o[(*j)++] = id += g + 1;
	return id;
}

/*
 * The ids of two whole blocks at once: each block's entries after its
 * first (whose id the index gives), from p0 and p1, 63 each (the list's
 * data ends at end). Decoding one entry waits for the one before it (its
 * length says where the next starts), so two blocks decoded side by side
 * run two such chains at once.
 */
static void ids_two_blocks(const uint8_t *p0, const uint8_t *p1,
			   const uint8_t *end, uint32_t id0, uint32_t id1,
			   uint32_t *o0, uint32_t *o1)
{
	uint32_t g0, g1, j0 = 1, j1 = 1;

	p0 = skip_gap(p0, &g0);
	p1 = skip_gap(p1, &g1);
	while (j0 < GRAPH_BLOCK && j1 < GRAPH_BLOCK) {
		id0 = ids_step(&p0, end, &j0, GRAPH_BLOCK, id0, o0);
		id1 = ids_step(&p1, end, &j1, GRAPH_BLOCK, id1, o1);
	}
	while (j0 < GRAPH_BLOCK)
		id0 = ids_step(&p0, end, &j0, GRAPH_BLOCK, id0, o0);
	while (j1 < GRAPH_BLOCK)
		id1 = ids_step(&p1, end, &j1, GRAPH_BLOCK, id1, o1);
}

uint32_t graph_ids(const struct graph_view *v, uint32_t u, uint32_t *out,
		   uint32_t max)
{
	struct graph_iter it;
	struct base_hdr h;
	struct vref r;
	const uint8_t *p, *end;
	uint32_t n = 0, id, gap, t, k, lim;

	vref_get(v, u, &r);
	lim = r.deg < max ? r.deg : max;
	if (!lim)
		return 0;
	if (r.nd || r.nt) {
		iter_init_ref(&it, &r);
		while (n < lim && it_next_raw(&it, &id, &t))
			out[n++] = id;
		return n;
	}
	base_parse(r.base, &h);
	end = h.data + h.dlen;
	/* all blocks but the last, two at a time */
	for (k = 0; k + 2 < h.nblk && n + 2 * GRAPH_BLOCK <= lim; k += 2) {
		const uint8_t *b = h.blk + (size_t)k * 8;

		out[n] = ld32(b);
		out[n + GRAPH_BLOCK] = ld32(b + 8);
		ids_two_blocks(h.data + ld32(b + 4), h.data + ld32(b + 12), end,
			       out[n], out[n + GRAPH_BLOCK], out + n,
			       out + n + GRAPH_BLOCK);
		n += 2 * GRAPH_BLOCK;
	}
	if (n == lim)
		return n;
	if (n) { /* the rest from the next block's start */
		const uint8_t *b = h.blk + (size_t)k * 8;

		id = ld32(b);
		p = skip_gap(h.data + ld32(b + 4), &gap);
	} else {
		p = varint_get(h.data, &id);
		while (*p++ >= 0x80) /* its ts code */
			;
	}
	out[n++] = id;
	while (n < lim)
		id = ids_step(&p, end, &n, lim, id, out);
	return n;
}

void graph_prefetch(const struct graph_view *v, uint32_t id)
{
	if (id < atomic_load_explicit(&v->vt->n, memory_order_relaxed))
		__builtin_prefetch(&v->vt->v[id].slot);
}

void graph_nth_batch(const struct graph_view *v, uint32_t n,
		     const uint32_t *u, const uint32_t *r, uint32_t *nbr,
		     uint32_t *deg)
{
	uint64_t s[GRAPH_BATCH_MAX];
	const uint8_t *p[GRAPH_BATCH_MAX], *dat[GRAPH_BATCH_MAX];
	const uint8_t *end[GRAPH_BATCH_MAX];
	uint32_t x[GRAPH_BATCH_MAX], k[GRAPH_BATCH_MAX];
	struct vref dref[GRAPH_BATCH_MAX]; /* lists read through a delta */
	uint8_t viad[GRAPH_BATCH_MAX];
	uint32_t j, nv = atomic_load_explicit(&v->vt->n, memory_order_acquire);
	struct base_hdr h;
	struct vref ref;

	if (n > GRAPH_BATCH_MAX)
		n = GRAPH_BATCH_MAX;
	for (j = 0; j < n; j++)
		if (u[j] < nv)
			__builtin_prefetch(&v->vt->v[u[j]].slot);
	/* stage 1: the slot; prefetch what it points at */
	for (j = 0; j < n; j++) {
		s[j] = u[j] < nv ? atomic_load_explicit(&v->vt->v[u[j]].slot,
							memory_order_acquire)
				 : 0;
		if (s[j] & SLOT_ARENA)
			__builtin_prefetch(v->g->arena + (s[j] & ~SLOT_ARENA));
		else if (s[j])
			__builtin_prefetch(
				(const void *)(uintptr_t)(s[j] & SLOT_PTR));
	}
	/* stage 2: the header; pick the position, prefetch its index entry
	 * (long lists) or the list's first bytes (short ones). p[j] == NULL
	 * marks the slow path (pending delta), nbr[j] already set marks done */
	for (j = 0; j < n; j++) {
		slot_read(v->g, s[j], &ref);
		p[j] = NULL;
		viad[j] = 0;
		if (deg)
			deg[j] = ref.deg;
		if (!ref.deg) {
			nbr[j] = GRAPH_NONE;
			continue;
		}
		k[j] = (uint32_t)(((uint64_t)r[j] * ref.deg) >> 32);
		if (ref.nd || ref.nt) {
			/* the state whose degree picked k[j] (a graph_nth
			 * would read the slot again, maybe a newer state),
			 * read in stage 4, its base's first bytes prefetched:
			 * while a stream flows most lists have a delta, and
			 * reading them here made the batch's misses on their
			 * bases follow one another */
			dref[j] = ref;
			viad[j] = 1;
			if (ref.base)
				__builtin_prefetch(ref.base);
			continue;
		}
		base_parse(ref.base, &h);
		dat[j] = h.data;
		end[j] = h.data + h.dlen;
		if (h.blk) {
			p[j] = h.blk + (size_t)(k[j] / GRAPH_BLOCK) * 8;
			x[j] = 1; /* p[j] is an index entry */
		} else {
			p[j] = h.data;
			x[j] = 0;
		}
		__builtin_prefetch(p[j]);
		nbr[j] = 0;
	}
	/* stage 3: the index entry -> the block's bytes */
	for (j = 0; j < n; j++) {
		if (!p[j] || !x[j])
			continue;
		x[j] = ld32(p[j]);
		p[j] = dat[j] + ld32(p[j] + 4);
		__builtin_prefetch(p[j]);
		k[j] %= GRAPH_BLOCK;
		nbr[j] = 1; /* x[j] holds the block's first id */
	}
	/* stage 4: decode up to the position, ids only */
	for (j = 0; j < n; j++) {
		const uint8_t *q = p[j];
		uint32_t id, gap;

		if (!q) {
			if (viad[j])
				vref_nth(&dref[j], k[j], &nbr[j]);
			continue;
		}
		if (nbr[j]) { /* a block: its first id is in the index */
			q = skip_gap(q, &gap);
			id = x[j];
		} else {
			q = skip_gap(q, &id);
		}
		skip_entries(q, end[j], k[j], &id);
		nbr[j] = id;
	}
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

				if (delta_find(r, id))
					continue;
				x.id = id;
				x.ts = ld32(h.newest + (size_t)i * 8 + 4);
				top_push(top, &n, k, x);
				valid++;
			}
			if (valid >= k) {
				/* and the delta's live entries: an iterator
				 * over the delta alone */
				struct vref dr = *r;

				dr.base = NULL;
				dr.bdeg = 0;
				iter_init_ref(&it, &dr);
				while (it_next_raw(&it, &x.id, &x.ts))
					top_push(top, &n, k, x);
				goto out;
			}
			n = 0;
		}
	}
	/* full scan; k may exceed NEWEST_N here, so use the outputs as the
	 * sorted buffer */
	iter_init_ref(&it, r);
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
		iter_init_ref(&it, r);
		while (it_next_raw(&it, &id, &t)) {
			nbr[n] = id;
			ts[n++] = t;
		}
		return n;
	}
	if (r->base && r->bdeg > GRAPH_BLOCK && r->deg >= 2 * k) {
		uint32_t nd = r->nd, tries = 0;
		uint64_t range = (uint64_t)r->bdeg + nd + r->nt;

		/* a position in base, sorted part or tail; each live
		 * neighbour is drawn through exactly one of them, its newest
		 * entry, so the draw stays uniform */
		base_parse(r->base, &h);
		while (n < k && tries++ < 16 * k + 64) {
			uint64_t x = rng_next(&s) % range;
			uint32_t j;

			if (x < r->bdeg) {
				base_nth(&h, (uint32_t)x, &id, &t);
				if (delta_find(r, id))
					continue; /* counted in delta */
			} else {
				const struct graph_dent *e =
					&r->a->d[x - r->bdeg];

				if (ts_dead(e->ts))
					continue;
				/* the sorted part's entry counts unless the
				 * tail has one; a tail entry unless a later
				 * one has its id */
				if (x < (uint64_t)r->bdeg + nd
					    ? tail_find(r, e->nbr) != NULL
					    : tail_find(r, e->nbr) != e)
					continue;
				id = e->nbr;
				t = dent_ts(e->ts);
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
	iter_init_ref(&it, r);
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

