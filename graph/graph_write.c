/*
 * graph_write.c - the single writer: streaming updates into per-vertex
 * deltas, merges into new bases, and the bulk build. See graph.c for the
 * layout and graph.h for the contract.
 */
#include "graph_int.h"

#include <pthread.h>
#include <sys/mman.h>

/* ---- writer: bookkeeping ---------------------------------------------- */




int dirty_mark(struct graph *g, uint32_t u)
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


int graph_scratch_reserve(struct graph *g, size_t n)
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

/*
 * Counters a writer call changes, kept here and added to the shared
 * atomics once per chunk of events (graph_apply) or per merge: one relaxed
 * read-modify-write per counter instead of several per event.
 */
struct wsum {
	int64_t edges, delta, base;
	uint64_t merges;
	uint32_t newest;  /* the newest added, up to horizon */
	uint32_t horizon; /* ts_horizon() of the call; kept by flushes */
};

static void wsum_flush(struct graph *g, struct wsum *w)
{
	uint32_t horizon;

	if (w->edges)
		atomic_fetch_add_explicit(&g->edges, (uint64_t)w->edges,
					  memory_order_relaxed);
	if (w->delta)
		atomic_fetch_add_explicit(&g->delta_entries,
					  (uint64_t)w->delta,
					  memory_order_relaxed);
	if (w->base)
		atomic_fetch_add_explicit(&g->base_bytes, (uint64_t)w->base,
					  memory_order_relaxed);
	if (w->merges)
		atomic_fetch_add_explicit(&g->merges, w->merges,
					  memory_order_relaxed);
	if (w->newest > atomic_load_explicit(&g->newest, memory_order_relaxed))
		atomic_store_explicit(&g->newest, w->newest,
				      memory_order_relaxed);
	horizon = w->horizon;
	memset(w, 0, sizeof(*w));
	w->horizon = horizon;
}

/* The slot of a base list with no delta (0 for none). */
static uint64_t base_slot(const struct graph *g, const uint8_t *base)
{
	if (!base)
		return 0;
	if (in_arena(g, base))
		return SLOT_ARENA | (uint64_t)(base - g->arena);
	return SLOT_BASE | (uint64_t)(uintptr_t)base;
}

/* Fold u's delta into a new base of its own (slot SLOT_BASE). O(d). */
static int merge_vertex(struct graph *g, uint32_t u, struct wsum *ws)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t s = atomic_load_explicit(&vt->v[u].slot, memory_order_relaxed);
	uint64_t ns = 0;
	struct graph_iter it;
	struct vref r;
	uint8_t *nb = NULL;
	uint32_t n = 0;

	slot_read(g, s, &r);
	if (!r.a)
		return 0;
	if (graph_scratch_reserve(g, r.deg ? r.deg : 1))
		return -1;
	iter_init_ref(&it, &r);
	/* a list yields deg entries; the bound holds even if counts were
	 * ever wrong (a damaged import), so the scratch cannot overflow */
	for (;;) {
		if (n >= g->scap && graph_scratch_reserve(g, (size_t)n * 2 + 16))
			return -1;
		if (!it_next_raw(&it, &g->sid[n], &g->sts[n]))
			break;
		n++;
	}
	if (n) {
		g->enc.len = 0;
		if (adj_encode(g->sid, g->sts, n, &g->enc))
			return -1;
		nb = slab_alloc(&g->slab, g->enc.len);
		if (!nb)
			return -1;
		memcpy(nb, g->enc.p, g->enc.len);
		ns = SLOT_BASE | (uint64_t)(uintptr_t)nb;
	}
	if (gc_retire_version(g, s, 1)) {
		slab_free(&g->slab, nb, g->enc.len);
		return -1;
	}
	atomic_store_explicit(&vt->v[u].slot, ns, memory_order_release);
	ws->delta -= (int64_t)(r.nd + r.nt);
	if (nb)
		ws->base += (int64_t)slab_block_size(g->enc.len);
	if (r.base && !in_arena(g, r.base))
		ws->base -= (int64_t)slab_block_size(adj_size(r.base));
	ws->merges++;
	return 0;
}

size_t graph_maintain(struct graph *g, uint64_t budget_us)
{
	uint64_t t0 = mono_us();
	struct wsum ws = { 0 };

	while (g->qhead < g->qlen) {
		uint32_t u = g->queue[g->qhead++];

		g->queued[u] = 0;
		atomic_fetch_sub_explicit(&g->pending, 1,
					  memory_order_relaxed);
		if (merge_vertex(g, u, &ws)) {
			queue_push(g, u); /* out of memory: try later */
			break;
		}
		if (mono_us() - t0 >= budget_us)
			break;
	}
	wsum_flush(g, &ws);
	gc_flush(g);
	return g->qlen - g->qhead;
}

#define COMPACT_MAX_DEG 4096u /* bases graph_compact merges at most */

int graph_compact(struct graph *g, uint64_t budget_us)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint32_t n = atomic_load_explicit(&vt->n, memory_order_relaxed);
	uint64_t t0 = mono_us();
	struct wsum ws = { 0 };
	int more = 1;

	for (uint32_t k = 1;; k++) {
		const struct adj *a;
		uint32_t u;
		uint64_t sl;

		if (g->cround_seen >= n) { /* a round of the vertices done */
			more = g->cround_merged != 0;
			g->cround_seen = g->cround_merged = 0;
			if (!more)
				break;
		}
		u = g->compact_next < n ? g->compact_next : 0;
		sl = atomic_load_explicit(&vt->v[u].slot, memory_order_relaxed);
		a = sl & (SLOT_ARENA | SLOT_BASE)
			    ? NULL : (const struct adj *)(uintptr_t)sl;
		/* a delta (a) is left when its base is over COMPACT_MAX_DEG
		 * entries (the merge would cost O(d) for a few entries, each
		 * time a hub is updated; graph_maintain merges it at its soft
		 * limit), or in the arena while the arena's dead pages are
		 * not handed back (arena_count; the list's old bytes would
		 * stay: 18.1 -> 19.4 bytes an edge after bench_graph's
		 * stream) */
		if (a && a->bdeg <= COMPACT_MAX_DEG &&
		    (g->apage || !a->base || !in_arena(g, a->base))) {
			if (merge_vertex(g, u, &ws))
				break; /* out of memory: this one later */
			g->cround_merged++;
		}
		g->compact_next = u + 1;
		g->cround_seen++;
		/* the clock every 64 vertices: a small merge takes about a
		 * microsecond, passing a vertex a few nanoseconds */
		if (k % 64 == 0 && mono_us() - t0 >= budget_us)
			break;
	}
	wsum_flush(g, &ws);
	gc_flush(g);
	return more;
}

/* ---- writer: one half-edge -------------------------------------------- */

enum { UPD_NOOP, UPD_ADDED, UPD_REFRESHED, UPD_REMOVED };

/*
 * A new delta buffer for u: the old one's sorted part with its tail and
 * `ent` folded in (tombstones of entries the base never had dropped), and
 * room for a tail after it of a quarter of the sorted part (at least
 * TAIL_MIN, at most GRAPH_TAIL_MAX; the size class may add a little), so a
 * delta grows by about a quarter at a time and a large one is rebuilt
 * every GRAPH_TAIL_MAX updates. (Room for as many again measured no
 * faster and cost 1.2 bytes an edge more after the bench's ingest.) When
 * the changes cancel out the slot goes back to the bare base. Publishes
 * with one release store. O(nd + nt^2). 0 or -1 (out of memory, nothing
 * changed).
 */
static int delta_rebuild(struct graph *g, uint32_t u, uint64_t s,
			 const struct vref *r, struct graph_dent ent,
			 uint32_t deg, struct wsum *ws)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	struct graph_dent tail[GRAPH_TAIL_MAX + 1];
	uint64_t rt[GRAPH_TAIL_MAX + 1], ns;
	const struct graph_dent *d = r->a ? r->a->d : NULL, *dend;
	uint32_t m, i = 0, nd = 0, room, need, moved;
	size_t hdr = offsetof(struct adj, d), bytes;
	struct adj *na;

	if (r->nt)
		memcpy(tail, d + r->nd, (size_t)r->nt * sizeof(*tail));
	tail[r->nt] = ent;
	m = tail_resolve(tail, r->nt + 1, rt);
	need = r->nd + m;
	room = need / 4;
	room = room < TAIL_MIN ? TAIL_MIN
	       : room > GRAPH_TAIL_MAX ? GRAPH_TAIL_MAX : room;
	if (need + room + 32 > ADJ_MAX)
		return -1; /* cannot happen while merges succeed */
	bytes = slab_block_size(hdr + ((size_t)need + room) * sizeof(*d));
	na = slab_alloc(&g->slab, bytes);
	if (!na)
		return -1;
	dend = d ? d + r->nd : NULL;
	moved = 0;
	while (d != dend || i < m) {
		struct graph_dent x;

		if (i < m && (d == dend || (uint32_t)(rt[i] >> 32) <= d->nbr)) {
			if (d != dend && (uint32_t)(rt[i] >> 32) == d->nbr)
				d++;
			x.nbr = (uint32_t)(rt[i] >> 32);
			x.ts = (uint32_t)rt[i++];
			if (x.ts == GONE)
				continue;
		} else {
			x = *d++;
		}
		na->d[nd++] = x;
		moved += dent_moves(x.ts);
	}
	/* the block's whole room (its size class) is the buffer's */
	na->cap = (uint16_t)((bytes - hdr) / sizeof(*d));
	if (!nd) {
		slab_free(&g->slab, na, bytes);
		na = NULL;
		ns = base_slot(g, r->base);
	} else {
		na->base = r->base;
		na->bdeg = r->bdeg;
		na->nd = (uint16_t)nd;
		atomic_init(&na->pub, pub_make(deg, 0, moved));
		ns = (uint64_t)(uintptr_t)na;
	}
	if (gc_retire_version(g, s, 0)) {
		slab_free(&g->slab, na, bytes);
		return -1;
	}
	atomic_store_explicit(&vt->v[u].slot, ns, memory_order_release);
	ws->delta += (int64_t)nd - (int64_t)(r->nd + r->nt);
	return 0;
}

/* What one list says about a neighbour w before an update. */
struct hstate {
	int present;  /* w is a neighbour now */
	int in_base;  /* w is in the base */
	uint32_t cur; /* its ts when present, stored units */
};

/* The state of w in one published version. O(log(d/B) + B + nt + log nd). */
static void half_lookup(const struct vref *r, uint32_t w, struct hstate *h)
{
	const struct graph_dent *x = r->a ? delta_find(r, w) : NULL;

	if (x) {
		h->present = !ts_dead(x->ts);
		h->cur = h->present ? dent_ts(x->ts) : 0;
		h->in_base = dent_in_base(x->ts);
	} else {
		h->present = adj_find(r->base, w, &h->cur);
		h->in_base = h->present;
	}
}

/*
 * Whether w is in the base of a list that was not looked up (the longer
 * half of an undirected event), given whether it is a neighbour now: its
 * delta's entry says so, and with none the list is its base. O(nt + log nd).
 */
static int half_in_base(const struct vref *r, uint32_t w, int present)
{
	const struct graph_dent *x = r->a ? delta_find(r, w) : NULL;

	return x ? dent_in_base(x->ts) : present;
}

/* The delta ts that records an add or refresh at t (stored units), or a
 * removal, of an id in the base or not. */
static uint32_t half_ets(int removed, int in_base, uint32_t t)
{
	if (removed)
		return in_base ? DEL : GONE;
	return in_base ? t : t | DENT_NEW;
}

/* What an event does to a list in state h: UPD_*. */
static int half_decide(const struct hstate *h, uint32_t t, int op)
{
	if (op == GRAPH_ADD) {
		if (h->present && h->cur >= t)
			return UPD_NOOP;
		return h->present ? UPD_REFRESHED : UPD_ADDED;
	}
	return h->present ? UPD_REMOVED : UPD_NOOP;
}

/*
 * Write the decided change u->w into u's delta: entry ts `ets` (stored
 * units, DEL or GONE), degree `deg` after it. The common case appends to
 * the tail in place and publishes it with one release store: no
 * allocation, no copy, nothing retired. A full tail goes through
 * delta_rebuild; a delta past its soft limit is queued for a merge, one at
 * twice the limit is merged now. O(1) plus those. 0 or -1 (out of memory).
 */
static int half_write(struct graph *g, uint32_t u, uint64_t s,
		      const struct vref *r, uint32_t w, uint32_t ets,
		      uint32_t deg, struct wsum *ws)
{
	struct graph_dent ent = { w, ets };
	uint32_t soft, total;

	if (r->a && r->nt < GRAPH_TAIL_MAX && r->nd + r->nt < r->a->cap) {
		struct adj *a = (struct adj *)(uintptr_t)s;

		a->d[r->nd + r->nt] = ent;
		atomic_store_explicit(&a->pub,
				      pub_make(deg, r->nt + 1,
					       r->moved + (uint32_t)dent_moves(ets)),
				      memory_order_release);
		ws->delta++;
		total = r->nd + r->nt + 1;
	} else {
		struct graph_vtab *vt = atomic_load_explicit(
			&g->vt, memory_order_relaxed);
		struct vref nr;

		if (delta_rebuild(g, u, s, r, ent, deg, ws))
			return -1;
		slot_read(g, atomic_load_explicit(&vt->v[u].slot,
						  memory_order_relaxed), &nr);
		total = nr.nd + nr.nt;
	}
	if (dirty_mark(g, u))
		return -1;
	/* a write adds at most one entry, so the delta crosses its soft
	 * limit on exactly one write: queue it then (not on every write
	 * after, each a miss on the queued flags) */
	soft = delta_soft(r->bdeg);
	if (total >= 2 * soft)
		return merge_vertex(g, u, ws);
	if (total > soft && r->nd + r->nt <= soft)
		return queue_push(g, u);
	return 0;
}

/*
 * Apply one event between vertices u and w (t in stored units): UPD_* or
 * -1 when out of memory. An undirected graph holds both half-edges with the
 * same ts (the build, every update and a checked import keep it so), so
 * the state is looked up once, in the shorter of the two lists, and the
 * other half is written without a base search (only its delta is searched,
 * for whether the id is in its base: DENT_NEW). O(log(d/B) + B + nt +
 * log nd) for the shorter list, O(nt + log nd) for the other, plus
 * half_write for each side.
 */
static int event_update(struct graph *g, uint32_t u, uint32_t w, uint32_t t,
			int op, struct wsum *ws)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint64_t su = atomic_load_explicit(&vt->v[u].slot, memory_order_relaxed);
	uint64_t sw = 0;
	struct vref ru, rw;
	struct hstate h;
	int res, swap = 0, dd, ib_u, ib_w;

	slot_read(g, su, &ru);
	if (!g->directed) {
		sw = atomic_load_explicit(&vt->v[w].slot, memory_order_relaxed);
		slot_read(g, sw, &rw);
		swap = rw.deg < ru.deg;
	}
	if (swap)
		half_lookup(&rw, u, &h);
	else
		half_lookup(&ru, w, &h);
	res = half_decide(&h, t, op);
	if (res == UPD_NOOP)
		return res;
	dd = res == UPD_ADDED ? 1 : res == UPD_REMOVED ? -1 : 0;
	/* each side records whether the id is in its own base (a removal of
	 * what only a delta held leaves GONE, which its next rebuild drops;
	 * one of what the base holds masks it, DEL) */
	if (swap) {
		ib_w = h.in_base;
		ib_u = half_in_base(&ru, w, h.present);
	} else {
		ib_u = h.in_base;
		ib_w = g->directed ? 0 : half_in_base(&rw, u, h.present);
	}
	if (half_write(g, u, su, &ru, w, half_ets(dd < 0, ib_u, t),
		       ru.deg + (uint32_t)dd, ws))
		return -1;
	if (!g->directed &&
	    half_write(g, w, sw, &rw, u, half_ets(dd < 0, ib_w, t),
		       rw.deg + (uint32_t)dd, ws))
		return -1;
	return res;
}

/*
 * What to prefetch for a slot: the list header it points at (NULL for
 * none). It returns the address instead of prefetching itself: GCC 12
 * takes a function that only prefetches an address computed from its
 * arguments for one without effects and drops the call (prefetch and
 * all).
 */
static inline const void *slot_target(const struct graph *g, uint64_t s)
{
	if (s & SLOT_ARENA)
		return g->arena + (s & ~SLOT_ARENA);
	return (const void *)(uintptr_t)(s & SLOT_PTR);
}

/* Count one event's result. */
static void apply_count(struct graph_apply_stats *st, struct wsum *ws, int r,
			uint32_t t)
{
	if ((r == UPD_ADDED || r == UPD_REFRESHED) && t > ws->newest &&
	    t <= ws->horizon)
		ws->newest = t;
	switch (r) {
	case UPD_ADDED:
		st->added++;
		ws->edges++;
		break;
	case UPD_REFRESHED:
		st->refreshed++;
		break;
	case UPD_REMOVED:
		st->removed++;
		ws->edges--;
		break;
	default:
		st->noops++;
	}
}

/*
 * On a large graph an event is a chain of dependent cache misses per
 * member (id map entry, vertex entry, list header, delta tail and the base
 * to search) and little else. So the events go through a software
 * pipeline: while event i is applied, the stages ahead of it prefetch for
 * the events APPLY_D, 2 APPLY_D, ... later what their next stage reads, and
 * the misses of a few dozen events overlap each other and the work of
 * applying. Stage 3 resolves members (creating new ones, in event order);
 * the other stages are hints that may go stale without harm. Per-event
 * state lives in rings of APPLY_RING entries.
 */
int graph_apply(struct graph *g, const struct graph_event *ev, size_t n,
		struct graph_apply_stats *st, struct err *e)
{
	struct graph_apply_stats dummy;
	struct wsum ws = { 0 };
	size_t lim = n; /* events resolved so far may go up to here */
	ptrdiff_t i;
	int rc = 0;

	if (!st) {
		memset(&dummy, 0, sizeof(dummy));
		st = &dummy;
	}
	ws.horizon = ts_horizon();
	for (i = -4 * (ptrdiff_t)APPLY_D; i < (ptrdiff_t)lim; i++) {
		const struct idmap *im = atomic_load_explicit(
			&g->im, memory_order_relaxed);
		struct graph_vtab *vt = atomic_load_explicit(
			&g->vt, memory_order_relaxed);
		uint32_t nv = atomic_load_explicit(&vt->n,
						   memory_order_relaxed);
		ptrdiff_t j;
		size_t q;

		/* 1: the id map entries of both members */
		j = i + 4 * (ptrdiff_t)APPLY_D;
		if (j >= 0 && (size_t)j < lim) {
			q = (size_t)j % APPLY_RING;
			g->hs[q] = idmap_hash(ev[j].src);
			g->hw[q] = idmap_hash(ev[j].dst);
			__builtin_prefetch(&im->slot[g->hs[q] & im->mask]);
			__builtin_prefetch(&im->slot[g->hw[q] & im->mask]);
		}
		/* 2: the vertex entries their fingerprints name */
		j = i + 3 * (ptrdiff_t)APPLY_D;
		if (j >= 0 && (size_t)j < lim) {
			uint32_t a, b;

			q = (size_t)j % APPLY_RING;
			a = idmap_peek(im, g->hs[q]);
			b = idmap_peek(im, g->hw[q]);
			if (a < nv)
				__builtin_prefetch(&vt->v[a]);
			if (b < nv)
				__builtin_prefetch(&vt->v[b]);
		}
		/* 3: resolve (creating new members); the slots came in with
		 * the member ids: prefetch the list headers they point at */
		j = i + 2 * (ptrdiff_t)APPLY_D;
		if (j >= 0 && (size_t)j < lim) {
			const void *p, *pw;

			q = (size_t)j % APPLY_RING;
			g->su[q] = g->sw[q] = GRAPH_NONE;
			/* a self-loop keeps su = sw = GRAPH_NONE; a remove
			 * creates no member, and one naming an unknown
			 * member is a no-op: su = GRAPH_NONE, sw = 0 */
			if (ev[j].src != ev[j].dst && ev[j].op == GRAPH_REMOVE) {
				g->su[q] = graph_vertex_find(g, ev[j].src);
				g->sw[q] = graph_vertex_find(g, ev[j].dst);
				if (g->su[q] == GRAPH_NONE ||
				    g->sw[q] == GRAPH_NONE)
					g->su[q] = GRAPH_NONE, g->sw[q] = 0;
			} else if (ev[j].src != ev[j].dst) {
				g->su[q] = graph_vertex_get(g, ev[j].src);
				if (g->su[q] != GRAPH_NONE)
					g->sw[q] = graph_vertex_get(g,
								    ev[j].dst);
			}
			if (ev[j].src != ev[j].dst && g->sw[q] == GRAPH_NONE) {
				rc = err_set(e, "out of memory adding member");
				lim = (size_t)j; /* apply the ones before */
			} else if (g->su[q] != GRAPH_NONE) {
				vt = atomic_load_explicit(&g->vt,
							  memory_order_relaxed);
				p = slot_target(g, atomic_load_explicit(
					&vt->v[g->su[q]].slot,
					memory_order_relaxed));
				pw = g->directed ? NULL
					: slot_target(g, atomic_load_explicit(
						&vt->v[g->sw[q]].slot,
						memory_order_relaxed));
				if (p)
					__builtin_prefetch(p);
				if (pw)
					__builtin_prefetch(pw);
			}
		}
		/* 4: with the headers in cache, the end of each delta tail
		 * (where the write goes) and the base event_update will
		 * search: the shorter list's */
		j = i + (ptrdiff_t)APPLY_D;
		if (j >= 0 && (size_t)j < lim) {
			struct vref ru, rw;
			const struct vref *o;
			const void *p, *pw;
			const uint8_t *b;

			q = (size_t)j % APPLY_RING;
			g->sb[q] = NULL;
			if (g->su[q] != GRAPH_NONE) {
				slot_read(g, atomic_load_explicit(
						  &vt->v[g->su[q]].slot,
						  memory_order_relaxed),
					  &ru);
				rw.a = NULL;
				rw.base = NULL;
				rw.deg = UINT32_MAX;
				if (!g->directed)
					slot_read(g, atomic_load_explicit(
							  &vt->v[g->sw[q]].slot,
							  memory_order_relaxed),
						  &rw);
				p = ru.a ? &ru.a->d[ru.nd + ru.nt] : NULL;
				pw = rw.a ? &rw.a->d[rw.nd + rw.nt] : NULL;
				b = rw.deg < ru.deg ? rw.base : ru.base;
				g->sb[q] = b;
				g->sx[q] = rw.deg < ru.deg ? g->su[q]
							   : g->sw[q];
				if (p)
					__builtin_prefetch(p);
				if (pw)
					__builtin_prefetch(pw);
				if (b) {
					__builtin_prefetch(b);
					__builtin_prefetch(b + 64);
				}
				/* and where half_in_base's search of the
				 * other list's sorted part starts */
				o = rw.deg < ru.deg ? &ru : &rw;
				if (o->a && o->nd > 8)
					__builtin_prefetch(&o->a->d[o->nd / 2]);
			}
		}
		/* 4b: in a long searched base, the block the search reads */
		j = i + (ptrdiff_t)APPLY_D / 2;
		if (j >= 0 && (size_t)j < lim) {
			const uint8_t *b;

			q = (size_t)j % APPLY_RING;
			b = g->sb[q];
			if (b && base_deg(b) > GRAPH_BLOCK) {
				b = base_block_of(b, g->sx[q]);
				__builtin_prefetch(b);
				__builtin_prefetch(b + 64);
			}
		}
		/* 5: apply event i */
		if (i >= 0) {
			uint32_t t = ts_units(ev[i].ts);
			int r;

			q = (size_t)i % APPLY_RING;
			if (g->su[q] == GRAPH_NONE) {
				if (g->sw[q] == GRAPH_NONE)
					st->rejected++; /* a self-loop */
				else
					st->noops++; /* removes no edge */
				continue;
			}
			r = event_update(g, g->su[q], g->sw[q], t, ev[i].op,
					 &ws);
			if (r < 0) {
				rc = err_set(e, "out of memory applying event "
					     "%zu", (size_t)i);
				break;
			}
			apply_count(st, &ws, r, t);
			if ((size_t)i % APPLY_CHUNK == APPLY_CHUNK - 1)
				wsum_flush(g, &ws);
		}
	}
	wsum_flush(g, &ws);
	/* one grace period per batch of garbage, not per call: a call_rcu
	 * per single-event apply would cost more than the apply */
	if (g->ngarbage >= RETIRE_BATCH)
		gc_flush(g);
	return rc;
}

void graph_stats(const struct graph *g, struct graph_stats *st)
{
	struct graph *m = (struct graph *)g;
	struct graph_vtab *vt;
	struct idmap *im;
	uint64_t arena; /* the arena's bytes still in use */

	rcu_lock();
	vt = atomic_load_explicit(&m->vt, memory_order_acquire);
	im = atomic_load_explicit(&m->im, memory_order_acquire);
	st->members = atomic_load_explicit(&vt->n, memory_order_relaxed);
	st->bytes = (uint64_t)vt->cap * 16 + (im->mask + 1) * 4 +
		    sizeof(*g);
	rcu_unlock();
	st->edges = atomic_load_explicit(&m->edges, memory_order_relaxed);
	st->arena_freed = atomic_load_explicit(&m->arena_freed,
					       memory_order_relaxed);
	arena = g->arena_len - st->arena_freed;
	st->base_bytes = arena + atomic_load_explicit(&m->base_bytes,
						      memory_order_relaxed);
	st->bytes += arena + atomic_load_explicit(&m->slab.used,
						  memory_order_relaxed);
	st->delta_entries = atomic_load_explicit(&m->delta_entries,
						 memory_order_relaxed);
	st->pending_merges = atomic_load_explicit(&m->pending,
						  memory_order_relaxed);
	st->merges = atomic_load_explicit(&m->merges, memory_order_relaxed);
}

/*
 * Dead arena pages. The arena is one block, so a list merged out of it
 * (graph_maintain, graph_compact) or emptied left its bytes there for
 * good. apage[i] counts the lists that overlap page i of the arena; once
 * a retired list's grace period has ended (free_block), its pages are
 * counted down, and a page that no list uses any more is handed back to
 * the kernel (MADV_DONTNEED: it reads as zeros from then on, which only
 * a reader's over-read of a few bytes past its own list could meet) and
 * leaves the graph's byte count. Only pages wholly inside the arena are
 * handed back: the first and last may hold malloc's own bytes.
 */
#define APAGE 4096u

void arena_count(struct graph *g, const uint8_t *b, size_t len, int d)
{
	uintptr_t lo = g->apage_lo, end = (uintptr_t)g->arena + g->arena_len;
	size_t p, first = ((uintptr_t)b - lo) / APAGE,
		  last = ((uintptr_t)b + len - 1 - lo) / APAGE; /* len > 0 */

	for (p = first; p <= last; p++) {
		uintptr_t at = lo + p * APAGE;

		g->apage[p] = (uint16_t)(g->apage[p] + d);
		if (d > 0 || g->apage[p] || at < (uintptr_t)g->arena ||
		    at + APAGE > end)
			continue;
		if (!g->arena_nohuge) {
			/* khugepaged would fill a huge page's handed-back
			 * pages again: no huge pages here from now on (one
			 * call for the arena's whole interior) */
			uintptr_t a = ((uintptr_t)g->arena + APAGE - 1) &
				      ~(uintptr_t)(APAGE - 1);

			if (end > a)
				madvise((void *)a, (end - a) & ~(uintptr_t)
						(APAGE - 1), MADV_NOHUGEPAGE);
			g->arena_nohuge = 1;
		}
		if (!madvise((void *)at, APAGE, MADV_DONTNEED))
			atomic_fetch_add_explicit(&g->arena_freed, APAGE,
						  memory_order_relaxed);
	}
}

/* The list of slot s that lives in the arena, or NULL. */
static const uint8_t *arena_list(const struct graph *g, uint64_t s)
{
	const struct adj *a;

	if (!s || (s & SLOT_BASE))
		return NULL;
	if (s & SLOT_ARENA)
		return g->arena + (s & ~SLOT_ARENA);
	a = (const struct adj *)(uintptr_t)(s & SLOT_PTR);
	return a->base && in_arena(g, a->base) ? a->base : NULL;
}

/* Count every arena list's pages (after the arena is adopted). Without
 * memory for the counts, no page is handed back. */
static void arena_pages_init(struct graph *g)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint32_t n = atomic_load_explicit(&vt->n, memory_order_relaxed), u;
	uintptr_t lo = (uintptr_t)g->arena & ~(uintptr_t)(APAGE - 1);

	free(g->apage);
	g->apage = NULL;
	atomic_store_explicit(&g->arena_freed, 0, memory_order_relaxed);
	g->arena_nohuge = 0;
	if (!g->arena_len)
		return;
	g->apage_lo = lo;
	g->apage = calloc(((uintptr_t)g->arena + g->arena_len - lo) / APAGE + 1,
			  sizeof(*g->apage));
	for (u = 0; g->apage && u < n; u++) {
		const uint8_t *b = arena_list(g, atomic_load_explicit(
				&vt->v[u].slot, memory_order_relaxed));

		if (b)
			arena_count(g, b, adj_size(b), +1);
	}
}

/* Take b's bytes as the arena, trimmed to size. */
void graph_arena_adopt(struct graph *g, struct graph_buf *b)
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
	arena_pages_init(g);
}

/* ---- bulk build ------------------------------------------------------- */


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
		ext[i] = vt->v[old].ext;
	}
	for (i = 0; i < n; i++)
		vt->v[i].ext = ext[i];
	memset(im->slot, 0, (im->mask + 1) * sizeof(*im->slot));
	for (i = 0; i < n; i++)
		idmap_put(im, vt->v[i].ext, i);
	free(ext);
	free(key);
	return 0;
}

#define BUILD_AHEAD 16u

/*
 * The last step of a bulk build, sorting, deduplicating and encoding every
 * vertex's half-edges, runs on two threads once there are this many: each
 * takes a vertex range holding about half of them and encodes it into an
 * arena of its own; the second arena is then appended to the first and
 * its slots moved by the first's length. The bytes are the same as one
 * thread's (tests/test_graph.c compares them).
 */
#define BUILD_PAR_MIN 32768u

struct build_part {
	struct graph_vtab *vt;
	uint64_t *half;
	const uint64_t *off;
	uint32_t lo, hi;        /* vertices [lo, hi) */
	struct graph_buf arena; /* their lists; slots hold offsets into it */
	uint64_t total;         /* entries after deduplication */
	int rc;
};

/* Sort, deduplicate and encode the half-edges of vertices [lo, hi). */
static void *build_part_run(void *arg)
{
	struct build_part *p = arg;
	uint32_t *sid = NULL, *sts = NULL, u;
	size_t cap = 0, cap2 = 0;

	p->rc = -1;
	p->total = 0;
	/* the lists take about 4-5 bytes an entry: reserve it up front */
	if (gbuf_reserve(&p->arena, (p->off[p->hi] - p->off[p->lo]) * 4 + 64))
		goto out;
	mem_hint_huge(p->arena.p, p->arena.cap);
	for (u = p->lo; u < p->hi; u++) {
		uint64_t *h = p->half + p->off[u];
		size_t k = (size_t)(p->off[u + 1] - p->off[u]), j, q = 0;

		if (!k)
			continue;
		sort_u64(h, k);
		if (mem_grow((void **)&sid, &cap, k, sizeof(*sid)) ||
		    mem_grow((void **)&sts, &cap2, k, sizeof(*sts)))
			goto out;
		/* dedup: sorted by (id, ts), so the last of a run is newest */
		for (j = 0; j < k; j++) {
			if (j + 1 < k && (h[j + 1] >> 32) == (h[j] >> 32))
				continue;
			sid[q] = (uint32_t)(h[j] >> 32);
			sts[q++] = (uint32_t)h[j];
		}
		p->total += q;
		atomic_store_explicit(&p->vt->v[u].slot,
				      SLOT_ARENA | p->arena.len,
				      memory_order_relaxed);
		if (adj_encode(sid, sts, (uint32_t)q, &p->arena))
			goto out;
	}
	p->rc = 0;
out:
	free(sid);
	free(sts);
	return NULL;
}

/*
 * Every vertex's list from its half-edges half[off[u] .. off[u + 1]) into
 * *arena (empty on entry), the slots set; *total gets the entries kept.
 * Two threads unless GRAPH_BUILD_SERIAL or fewer than BUILD_PAR_MIN
 * half-edges (or the thread cannot start). Returns 0 or -1 (out of memory).
 */
static int build_lists(struct graph_vtab *vt, uint64_t *half,
		       const uint64_t *off, uint32_t nv, unsigned flags,
		       struct graph_buf *arena, uint64_t *total)
{
	struct build_part p[2];
	pthread_t th;
	uint32_t mid = nv, u;
	int two = 0;

	memset(p, 0, sizeof(p));
	if (!(flags & GRAPH_BUILD_SERIAL) && off[nv] >= BUILD_PAR_MIN) {
		/* the first vertex past half of the half-edges */
		uint32_t lo = 0, hi = nv;

		while (lo < hi) {
			uint32_t m = lo + (hi - lo) / 2;

			if (off[m] < off[nv] / 2)
				lo = m + 1;
			else
				hi = m;
		}
		mid = lo;
	}
	for (int i = 0; i < 2; i++) {
		p[i].vt = vt;
		p[i].half = half;
		p[i].off = off;
	}
	p[0].lo = 0, p[0].hi = mid;
	p[1].lo = mid, p[1].hi = nv;
	if (mid < nv)
		two = pthread_create(&th, NULL, build_part_run, &p[1]) == 0;
	if (!two) { /* one thread for everything */
		p[0].hi = nv;
		p[1].lo = nv;
	}
	build_part_run(&p[0]);
	if (two)
		pthread_join(th, NULL);
	*arena = p[0].arena;
	*total = p[0].total + p[1].total;
	if (p[0].rc || (two && p[1].rc) ||
	    (two && gbuf_reserve(arena, p[1].arena.len))) {
		graph_buf_release(&p[1].arena);
		return -1;
	}
	if (two && p[1].arena.len) {
		size_t base = arena->len;

		mem_hint_huge(arena->p, arena->cap);
		memcpy(arena->p + base, p[1].arena.p, p[1].arena.len);
		arena->len += p[1].arena.len;
		for (u = mid; u < nv; u++) {
			uint64_t s = atomic_load_explicit(&vt->v[u].slot,
							  memory_order_relaxed);

			if (s)
				atomic_store_explicit(&vt->v[u].slot, s + base,
						      memory_order_relaxed);
		}
	}
	graph_buf_release(&p[1].arena);
	return 0;
}

static inline void build_prefetch_slots(const struct graph *g,
					const struct graph_event *x)
{
	const struct idmap *m = atomic_load_explicit(&g->im, memory_order_relaxed);

	__builtin_prefetch(&m->slot[idmap_hash(x->src) & m->mask]);
	__builtin_prefetch(&m->slot[idmap_hash(x->dst) & m->mask]);
}

static inline void build_prefetch_entries(const struct graph *g,
					  const struct graph_event *x)
{
	const struct idmap *m = atomic_load_explicit(&g->im, memory_order_relaxed);
	const struct graph_vtab *vt = atomic_load_explicit(&g->vt,
							   memory_order_relaxed);
	uint32_t a = idmap_peek(m, idmap_hash(x->src));
	uint32_t b = idmap_peek(m, idmap_hash(x->dst));

	if (a < vt->cap)
		__builtin_prefetch(&vt->v[a]);
	if (b < vt->cap)
		__builtin_prefetch(&vt->v[b]);
}

/* graph_build; scratch (may be NULL), `sbytes` long, is memory the events
 * were in that may hold the half-edges once the events are read. */
#define BUILD_PREFAULT_MIN ((size_t)4 << 20) /* events */

static int build(struct graph *g, const struct graph_event *ev, size_t n,
		 void *scratch, size_t sbytes, unsigned flags,
		 uint64_t *dropped, struct err *e)
{
	struct graph_vtab *vt = atomic_load_explicit(&g->vt,
						     memory_order_relaxed);
	uint32_t *src = NULL, *dst = NULL, *tsv = NULL, *perm = NULL, nv, u;
	uint64_t *deg = NULL, *off = NULL, *half = NULL, loops = 0, total = 0;
	uint32_t newest = 0, horizon = ts_horizon();
	size_t i, m = 0;
	struct graph_buf arena = { 0 };
	struct mem_prefault pf = { 0 };
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
	/* the id-map loop below runs on one core: the other zeroes these
	 * arrays' fresh pages ahead of it (worth a thread from 16 MiB on) */
	if (n >= BUILD_PREFAULT_MIN) {
		void *const blk[3] = { src, dst, tsv };
		const size_t len[3] = { n * sizeof(uint32_t),
					n * sizeof(uint32_t),
					n * sizeof(uint32_t) };

		mem_prefault_start(&pf, blk, len, 3);
	}
	for (i = 0; i < n; i++) {
		/* the id-map slots 16 events ahead, the vertex entries they
		 * name 8 ahead: a lookup then finds both in cache (a bulk load
		 * spent a quarter of its time waiting on them) */
		if (i + BUILD_AHEAD < n)
			build_prefetch_slots(g, &ev[i + BUILD_AHEAD]);
		if (i + BUILD_AHEAD / 2 < n)
			build_prefetch_entries(g, &ev[i + BUILD_AHEAD / 2]);
		if (ev[i].src == ev[i].dst) {
			loops++;
			continue;
		}
		src[m] = graph_vertex_get(g, ev[i].src);
		dst[m] = graph_vertex_get(g, ev[i].dst);
		if (src[m] == GRAPH_NONE || dst[m] == GRAPH_NONE)
			goto oom;
		tsv[m] = ts_units(ev[i].ts);
		if (tsv[m] > newest && tsv[m] <= horizon)
			newest = tsv[m];
		m++;
	}
	mem_prefault_wait(&pf);
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
	if (scratch && off[nv] <= sbytes / sizeof(uint64_t)) {
		half = scratch; /* the events were all read above */
	} else {
		if (!(half = mem_alloc(off[nv] ? off[nv] : 1, sizeof(uint64_t))))
			goto oom;
		mem_hint_huge(half, off[nv] * sizeof(uint64_t));
	}
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
	if (build_lists(vt, half, off, nv, flags, &arena, &total))
		goto oom;
	graph_arena_adopt(g, &arena);
	vtab_fit(g);
	atomic_store(&g->newest, newest);
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
	mem_prefault_wait(&pf);
	free(src);
	free(dst);
	free(tsv);
	free(perm);
	free(deg);
	free(off);
	if ((void *)half != scratch)
		free(half);
	graph_buf_release(&arena);
	return rc;
}

int graph_build(struct graph *g, const struct graph_event *ev, size_t n,
		unsigned flags, uint64_t *dropped, struct err *e)
{
	return build(g, ev, n, NULL, 0, flags, dropped, e);
}

int graph_build_consume(struct graph *g, struct graph_event *ev, size_t n,
			size_t cap, unsigned flags, uint64_t *dropped,
			struct err *e)
{
	return build(g, ev, n, ev, (cap > n ? cap : n) * sizeof(*ev), flags,
		     dropped, e);
}


uint32_t graph_newest_ts(const struct graph *g)
{
	return ts_secs(atomic_load_explicit(&((struct graph *)g)->newest,
					    memory_order_relaxed));
}
