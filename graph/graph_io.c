/*
 * graph_io.c - chunks of vertices as bytes (the stored form is the
 * in-memory encoding) and their checked import.
 */
#include "graph_int.h"
#include "par.h"

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
	if (gbuf_reserve(out, VARINT_MAX32))
		goto oom;
	out->len += varint_put(out->p + out->len, hi - lo);
	for (u = lo; u < hi; u++) {
		const uint8_t *src;
		struct vref r;
		size_t len;

		vref_get(v, u, &r);
		if (!r.nd && !r.nt) {
			src = r.base;
			len = r.base ? adj_size(r.base) : 0;
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
			iter_init_ref(&it, &r);
			while (k < r.deg && it_next_raw(&it, &id[k], &ts[k]))
				k++;
			tmp.len = 0;
			if (k && adj_encode(id, ts, k, &tmp))
				goto oom;
			src = tmp.p;
			len = tmp.len;
		}
		if (len > UINT32_MAX)
			goto oom;
		if (gbuf_reserve(out, 8 + VARINT_MAX32 + len))
			goto oom;
		memcpy(out->p + out->len, &v->vt->v[u].ext, 8);
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
	g->imp_horizon = ts_horizon();
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
	if (graph_scratch_reserve(g, d))
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
			if ((uint64_t)tsmin + t >= TS_DEAD)
				return err_set(e, "member %u: timestamp "
					       "overflows", u);
			cur = tsmin + t;
		} else {
			int64_t nx = (int64_t)cur + (int32_t)((t >> 1) ^
					(uint32_t)-(int32_t)(t & 1));

			if (nx < tsmin || nx >= TS_DEAD)
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
		if (cur > atomic_load_explicit(&g->newest, memory_order_relaxed) &&
		    cur <= g->imp_horizon)
			atomic_store_explicit(&g->newest, cur,
					      memory_order_relaxed);
	}
	if (q != dend)
		return err_set(e, "member %u: %zu stray bytes after the list",
			       u, (size_t)(dend - q));
	if (newest) {
		/* re-derive the newest index and compare */
		struct graph_buf tmp = { 0 };
		struct base_hdr h;
		int same;

		if (adj_encode(g->sid, g->sts, d, &tmp))
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
		vt->v[u].ext = ext;
		if (!l) {
			atomic_store_explicit(&vt->v[u].slot, 0,
					      memory_order_relaxed);
			continue;
		}
		if (base_check(g, u, p, l, &d, e)) {
			err_prefix(e, "chunk %u", c);
			return -1;
		}
		if (gbuf_reserve(&arena, l))
			return err_set(e, "out of memory");
		g->arena = arena.p;
		g->arena_cap = arena.cap;
		memcpy(arena.p + arena.len, p, l);
		atomic_store_explicit(&vt->v[u].slot, SLOT_ARENA | arena.len,
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

/* splitmix64's finaliser: a bijection on 64 bits that mixes well. */
static uint64_t sym_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t sym_hash(uint64_t key, uint32_t a, uint32_t b, uint32_t ts)
{
	return sym_mix(sym_mix(key ^ ((uint64_t)a << 32 | b)) ^ ts);
}

/* The pass over the lists, split into pieces of SYM_PIECE vertices taken
 * by the workers of par_run: the sums commute, so each worker keeps its
 * own and they are added at the end. */
#define SYM_PIECE 4096u
#define SYM_WORKERS 8u

struct sym_sums {
	uint64_t up, down, nup, ndown; /* hash sums and counts, w > u / w < u */
};

struct sym_ctx {
	struct graph *g;
	uint64_t key;
	uint32_t n;
	atomic_size_t next;
	atomic_int stop;
	struct sym_sums part[SYM_WORKERS];
};

static int sym_worker(void *arg, unsigned worker, struct err *e)
{
	struct sym_ctx *c = arg;
	struct sym_sums x = { 0, 0, 0, 0 };
	struct graph_view v;
	size_t piece;
	uint32_t w, ts;

	(void)e;
	graph_view_begin(c->g, &v);
	while (par_next(&c->next, &c->stop,
			(c->n + (size_t)SYM_PIECE - 1) / SYM_PIECE, &piece)) {
		uint32_t u = (uint32_t)(piece * SYM_PIECE);
		uint32_t end = c->n - u < SYM_PIECE ? c->n : u + SYM_PIECE;

		for (; u < end; u++) {
			struct graph_iter it;

			graph_iter_init(&it, &v, u);
			while (graph_iter_next(&it, &w, &ts)) {
				if (w > u) {
					x.up += sym_hash(c->key, u, w, ts);
					x.nup++;
				} else {
					x.down += sym_hash(c->key, w, u, ts);
					x.ndown++;
				}
			}
		}
	}
	graph_view_end(&v);
	c->part[worker] = x;
	return 0;
}

/*
 * An undirected graph stores each edge twice; the bytes are untrusted, so
 * check that whenever u lists w, w lists u with the same timestamp (an
 * even half-edge count alone lets one-sided lists through, and then a
 * remove or a count disagrees between the two ends). Lists are sets, so
 * this holds iff the half-edges above the diagonal, mirrored, are the
 * half-edges below it: compared as multiset hashes (a sum of a keyed
 * 64-bit hash per edge, key fresh per import) and counts, which one pass
 * over the lists computes. A damaged file passes with probability about
 * 2^-64. O(E) time, no extra memory; an edge lookup per half-edge instead
 * made opening a 4M-edge snapshot 6x slower. It is 36% of a reopen (perf,
 * one core), so it runs on all cores (sym_worker).
 */
static int import_check_symmetric(struct graph *g, struct err *e)
{
	struct sym_ctx *c = calloc(1, sizeof(*c));
	struct graph_view v;
	struct timespec now;
	struct sym_sums t = { 0, 0, 0, 0 };
	unsigned nw, i;
	int rc;

	if (!c)
		return err_set(e, "out of memory");
	clock_gettime(CLOCK_MONOTONIC, &now);
	c->g = g;
	c->key = sym_mix((uint64_t)now.tv_nsec ^ (uint64_t)now.tv_sec << 30 ^
			 (uint64_t)(uintptr_t)g);
	graph_view_begin(g, &v);
	c->n = graph_nvertices(&v);
	graph_view_end(&v);
	atomic_init(&c->next, 0);
	atomic_init(&c->stop, 0);
	nw = par_threads(0, SYM_WORKERS,
			 (c->n + (size_t)SYM_PIECE - 1) / SYM_PIECE);
	rc = par_run(nw, sym_worker, c, &c->stop, e);
	for (i = 0; i < nw; i++) {
		t.up += c->part[i].up;
		t.down += c->part[i].down;
		t.nup += c->part[i].nup;
		t.ndown += c->part[i].ndown;
	}
	free(c);
	if (rc)
		return -1;
	if (t.nup != t.ndown || t.up != t.down)
		return err_set(e, "undirected lists are not symmetric");
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
			if (idmap_find(im, vt, u, vt->v[u].ext) != GRAPH_NONE) {
				idmap_free(im);
				return err_set(e, "member %llu appears twice",
					       (unsigned long long)vt->v[u].ext);
			}
			idmap_put(im, vt->v[u].ext, u);
		}
		atomic_store_explicit(&g->im, im, memory_order_release);
		idmap_free(old); /* never published to readers */
		g->im_used = (uint32_t)g->imp_n;
	}
	atomic_store(&g->edges, g->directed ? half : half / 2);
	{
		struct graph_buf b = { g->arena, g->arena_len, g->arena_cap };

		graph_arena_adopt(g, &b);
	}
	free(g->imp_seen);
	g->imp_seen = NULL;
	gc_flush(g);
	if (!g->directed && import_check_symmetric(g, e))
		return -1; /* the caller frees g, as after any refusal */
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

