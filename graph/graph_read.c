/*
 * graph_read.c - reads by position and ids-only reads of the compressed
 * lists (graph.h): graph_nth and its batch (the random walk's step),
 * graph_ids (friends-of-friends' scan) and graph_sample. The list layout
 * is described at the top of graph.c; these readers decode only ids where
 * they can, and read a list with a pending delta by merging it with the
 * base as an iteration would, without decoding timestamps.
 */
#include "graph_int.h"

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
 * Put the delta cursor c (set up by it_delta_init, before its first step)
 * at its first entry with id >= f, and return how those before
 * it move base positions (the sum of their dent_shift). O(log m) to find
 * the place in the sorted part, then a plain pass over the entries before
 * it and the resolved tail's (at most GRAPH_TAIL_MAX).
 */
static int64_t delta_skip_below(struct graph_iter *c, uint32_t f)
{
	const struct graph_dent *d0 = c->d, *de = c->dend, *dl, *x;
	int64_t s = 0;
	uint32_t t;

	dl = d0 == de ? d0 : dent_lower(d0, de, f);
	for (x = d0; x < dl; x++)
		s += dent_shift(x->ts);
	/* a tail entry overrides the sorted part's entry for its id */
	for (t = 0; t < c->tn && (uint32_t)(c->t[t] >> 32) < f; t++) {
		uint32_t id = (uint32_t)(c->t[t] >> 32);

		s += dent_shift((uint32_t)c->t[t]);
		x = dent_lower(d0, dl, id);
		if (x < dl && x->nbr == id)
			s -= dent_shift(x->ts);
	}
	c->d = dl;
	c->ti = t;
	it_delta_step(c);
	return s;
}

/* The next base id after *b (GRAPH_NONE when none is left): its gap from
 * one 8-byte load without a branch per byte where the list's bytes allow
 * (the in-block walk below spends most of its time here, and the
 * byte-at-a-time loop mispredicts on multi-byte gaps). */
static inline void base_next(const uint8_t **p, const uint8_t *end,
			     uint32_t *b, uint32_t *left)
{
	const uint8_t *q;
	uint32_t gap;

	if (!*left) {
		*b = GRAPH_NONE;
		return;
	}
	if (end - *p >= 8 && (q = varint_get_skip8(*p, &gap)))
		*p = q;
	else
		*p = skip_gap(*p, &gap);
	*b += gap + 1;
	(*left)--;
}

/*
 * Entry i of a list read through its delta, in id order as an iteration
 * gives it, without decoding the base up to it. Every delta entry knows
 * whether its id is in the base (DENT_NEW), so the block index's first ids
 * and the delta give every block's first position in the merged list:
 * block k starts at k * B + (the shifts of the delta entries below its
 * first id). Those shifts add up to at most m = the delta's entries in
 * size, so blocks up to (i - m) / B surely start at or before i: the scan
 * begins there (one pass over the delta entries below it), not at block 0,
 * and looks at most 2m / B + 2 blocks. Then one block is merged with the
 * delta entries in its range, ids only (base_next).
 * O(log m + m + m / B + B); lists without an index are merged from the start.
 */
static int nth_merged(const struct vref *r, uint32_t i, uint32_t *nbr)
{
	struct graph_iter c; /* its delta cursor only: d, ti, xid, xts */
	const struct graph_dent *sd;
	struct base_hdr h = { 0 };
	const uint8_t *p = NULL, *end = NULL;
	uint32_t left = 0, b = GRAPH_NONE, gap, pos = 0, k = 0, m, sti, sid, sts;
	int64_t s = 0;

	it_delta_init(&c, r);
	m = r->nd + c.tn;
	if (r->base) {
		base_parse(r->base, &h);
		p = h.data;
		end = h.data + h.dlen;
		left = h.deg;
		if (h.nblk && i >= m + GRAPH_BLOCK) {
			/* blocks before this one start before i whatever the
			 * delta holds: step over them and the delta below */
			k = (i - m) / GRAPH_BLOCK;
			if (k >= h.nblk)
				k = h.nblk - 1;
			s = delta_skip_below(&c, ld32(h.blk + (size_t)k * 8));
		} else {
			it_delta_step(&c);
		}
	} else {
		it_delta_step(&c);
	}
	sd = c.d, sti = c.ti, sid = c.xid, sts = c.xts; /* where merging starts */
	/* the last block that starts at or before position i */
	for (; k < h.nblk; k++) {
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
	/* back to the first delta entry at or after b */
	c.d = sd, c.ti = sti, c.xid = sid, c.xts = sts;
	/* merge base entries from b and delta entries from c.xid */
	for (;;) {
		uint32_t x;
		int live;

		if (b == GRAPH_NONE && c.xid == GRAPH_NONE)
			return 0; /* not reached: i < deg */
		if (b < c.xid) {
			if (pos == i) {
				*nbr = b;
				return 1;
			}
			pos++;
			base_next(&p, end, &b, &left);
			continue;
		}
		x = c.xid;
		live = !ts_dead(c.xts);
		if (live && pos++ == i) {
			*nbr = x;
			return 1;
		}
		if (x == b)
			base_next(&p, end, &b, &left);
		it_delta_step(&c);
	}
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

/* The id k entries after the entry at p (data ends at end), ids only:
 * that entry's id is first when known (a block's first, named by the
 * index), else its gap is the id (a list's first entry). */
static inline uint32_t id_after(const uint8_t *p, const uint8_t *end,
				int known, uint32_t first, uint32_t k)
{
	uint32_t id = first, gap;

	p = known ? skip_gap(p, &gap) : skip_gap(p, &id);
	skip_entries(p, end, k, &id);
	return id;
}

/* graph_nth in one published state. */
static int vref_nth(const struct vref *r, uint32_t i, uint32_t *nbr)
{
	struct base_hdr h;

	if (i >= r->deg)
		return 0;
	if (vref_ids_are_base(r)) { /* ids only, as graph_nth_batch */
		base_parse(r->base, &h);
		if (h.blk) { /* from its block's first entry */
			const uint8_t *b = h.blk + (size_t)(i / GRAPH_BLOCK) * 8;

			*nbr = id_after(h.data + ld32(b + 4), h.data + h.dlen, 1,
					ld32(b), i % GRAPH_BLOCK);
		} else { /* a short list: from its first entry */
			*nbr = id_after(h.data, h.data + h.dlen, 0, 0, i);
		}
		return 1;
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

/*
 * graph_ids of a list with a pending delta: the base decoded ids-only a
 * block at a time into chunk[] (as the base-only path decodes it) and
 * merged with the delta's entries (sorted part and resolved tail) as an
 * iteration would: a delta entry overrides the base entry of its id, dead
 * ones drop out. O(d + m); no timestamp is decoded.
 */
static uint32_t ids_merged(const struct vref *r, uint32_t *out, uint32_t lim)
{
	struct graph_iter c; /* its delta cursor only: d, ti, xid, xts */
	uint32_t chunk[GRAPH_BLOCK], n = 0, k = 0, nb, j, id, gap, left = 0;
	struct base_hdr h = { 0 };
	const uint8_t *p = NULL, *end = NULL;

	it_delta_init(&c, r);
	it_delta_step(&c);
	if (r->base) {
		base_parse(r->base, &h);
		p = h.data;
		end = h.data + h.dlen;
		left = h.deg;
	}
	while (left) {
		/* the next chunk of base ids: a block, or a short list whole */
		nb = left < GRAPH_BLOCK ? left : GRAPH_BLOCK;
		if (h.blk) {
			const uint8_t *b = h.blk + (size_t)k++ * 8;

			id = ld32(b);
			p = skip_gap(h.data + ld32(b + 4), &gap);
		} else {
			p = varint_get(p, &id);
			while (*p++ >= 0x80) /* its ts code */
				;
		}
		chunk[0] = id;
		for (j = 1; j < nb;)
			id = ids_step(&p, end, &j, nb, id, chunk);
		left -= nb;
		for (j = 0; j < nb; j++) {
			uint32_t x = chunk[j];

			while (c.xid < x) {
				if (!ts_dead(c.xts)) {
					out[n++] = c.xid;
					if (n == lim)
						return n;
				}
				it_delta_step(&c);
			}
			if (c.xid == x) {
				int live = !ts_dead(c.xts);

				it_delta_step(&c);
				if (!live)
					continue;
			}
			out[n++] = x;
			if (n == lim)
				return n;
		}
	}
	for (; c.xid != GRAPH_NONE && n < lim; it_delta_step(&c))
		if (!ts_dead(c.xts))
			out[n++] = c.xid;
	return n;
}

uint32_t graph_ids(const struct graph_view *v, uint32_t u, uint32_t *out,
		   uint32_t max)
{
	struct base_hdr h;
	struct vref r;
	const uint8_t *p, *end;
	uint32_t n = 0, id, gap, k, lim;

	vref_get(v, u, &r);
	lim = r.deg < max ? r.deg : max;
	if (!lim)
		return 0;
	if (!vref_ids_are_base(&r))
		return ids_merged(&r, out, lim);
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

uint32_t graph_list(const struct graph_view *v, uint32_t u, uint32_t *id,
		    uint32_t *ts, uint32_t max)
{
	struct base_hdr h;
	struct vref r;
	const uint8_t *p;
	uint32_t n, lim, x, t, gap, code;

	vref_get(v, u, &r);
	lim = r.deg < max ? r.deg : max;
	if (!lim)
		return 0;
	if (r.nd || r.nt) { /* pending changes: the merging iterator */
		struct graph_iter it;

		iter_init_ref(&it, &r);
		for (n = 0; n < lim && it_next_raw(&it, &id[n], &t); n++)
			ts[n] = ts_secs(t);
		return n;
	}
	/* the base alone: its entries in one loop, as it_base_step decodes
	 * them (gaps from the previous id, ts codes by ts_dec). Byte by byte:
	 * reading an entry's two varints from one 8-byte load (varint_get2_8)
	 * took 2.8 times the instructions on these mostly one-byte codes */
	base_parse(r.base, &h);
	p = varint_get(h.data, &x);
	p = varint_get(p, &code);
	t = h.tsmin + code;
	id[0] = x;
	ts[0] = ts_secs(t);
	for (n = 1; n < lim; n++) {
		p = varint_get(p, &gap);
		p = varint_get(p, &code);
		t = ts_dec(code, n, t, h.tsmin, h.tsmode);
		id[n] = x += gap + 1;
		ts[n] = ts_secs(t);
	}
	return n;
}

void graph_prefetch(const struct graph_view *v, uint32_t id)
{
	if (id < atomic_load_explicit(&v->vt->n, memory_order_relaxed))
		__builtin_prefetch(&v->vt->v[id].slot);
}

/*
 * Prefetch the cache lines of p[0 .. len) (at most four): the bytes a read
 * by position decodes, from a list's or block's start to about where entry
 * `pos` lies (pos + 1 entries at the list's mean bytes an entry, + 8).
 * One prefetch of the first line left the later ones to miss in turn.
 */
static inline void prefetch_upto(const uint8_t *p, const uint8_t *lim,
				 uint32_t pos, uint32_t dlen, uint32_t deg)
{
	size_t want = (size_t)((uint64_t)dlen * (pos + 1) / deg) + 8;
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, e;
	unsigned i;

	e = (uintptr_t)p + ((size_t)(lim - p) < want ? (size_t)(lim - p) : want);
	for (i = 0; i < 4 && a < e; i++, a += 64)
		__builtin_prefetch((const void *)a);
}

void graph_nth_batch(const struct graph_view *v, uint32_t n,
		     const uint32_t *u, const uint32_t *r, uint32_t *nbr,
		     uint32_t *deg)
{
	uint64_t s[GRAPH_BATCH_MAX];
	const uint8_t *p[GRAPH_BATCH_MAX], *dat[GRAPH_BATCH_MAX];
	const uint8_t *end[GRAPH_BATCH_MAX];
	const uint8_t *ix[GRAPH_BATCH_MAX]; /* a delta list's guessed index entry */
	uint32_t x[GRAPH_BATCH_MAX], k[GRAPH_BATCH_MAX];
	uint32_t dg[GRAPH_BATCH_MAX]; /* the base's entries (its bytes: end - dat) */
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
		slot_prefetch(v->g, s[j]);
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
			 * bases follow one another. A delta that moves no id
			 * (vref_ids_are_base) goes this way too: its base is
			 * one more miss away, and vref_nth then decodes the
			 * block stage 3 prefetched, ids only */
			dref[j] = ref;
			viad[j] = 1;
			if (ref.base)
				__builtin_prefetch(ref.base);
			continue;
		}
		base_parse(ref.base, &h);
		dat[j] = h.data;
		end[j] = h.data + h.dlen;
		dg[j] = h.deg;
		if (h.blk) {
			p[j] = h.blk + (size_t)(k[j] / GRAPH_BLOCK) * 8;
			x[j] = 1; /* p[j] is an index entry */
			__builtin_prefetch(p[j]);
		} else {
			p[j] = h.data;
			x[j] = 0;
			prefetch_upto(h.data, end[j], k[j], h.dlen, h.deg);
		}
		nbr[j] = 0;
	}
	/* stage 3: the index entry -> the block's bytes. A list read through
	 * its delta (its base header is in cache by now): its tail, which
	 * nth_merged reads first, and the index entry of the block position
	 * k falls in when the delta moves nothing (nth_merged's block is
	 * within m / B of it) */
	for (j = 0; j < n; j++) {
		if (viad[j]) {
			ix[j] = NULL;
			if (dref[j].nt)
				__builtin_prefetch(dref[j].a->d + dref[j].nd);
			if (!dref[j].base)
				continue;
			base_parse(dref[j].base, &h);
			dat[j] = h.data;
			end[j] = h.data + h.dlen;
			dg[j] = h.deg;
			if (h.blk) {
				uint32_t kb = k[j] / GRAPH_BLOCK;

				ix[j] = h.blk + (size_t)(kb < h.nblk ? kb : h.nblk - 1) * 8;
				__builtin_prefetch(ix[j]);
			} else if (h.deg) {
				prefetch_upto(h.data, end[j], k[j], h.dlen,
					      h.deg);
			}
			continue;
		}
		if (!p[j] || !x[j])
			continue;
		x[j] = ld32(p[j]);
		p[j] = dat[j] + ld32(p[j] + 4);
		prefetch_upto(p[j], end[j], k[j] % GRAPH_BLOCK,
			      (uint32_t)(end[j] - dat[j]), dg[j]);
		k[j] %= GRAPH_BLOCK;
		nbr[j] = 1; /* x[j] holds the block's first id */
	}
	/* stage 3b: a delta list's index entry -> its block's bytes */
	for (j = 0; j < n; j++)
		if (viad[j] && ix[j])
			prefetch_upto(dat[j] + ld32(ix[j] + 4), end[j],
				      k[j] % GRAPH_BLOCK,
				      (uint32_t)(end[j] - dat[j]), dg[j]);
	/* stage 4: decode up to the position, ids only */
	for (j = 0; j < n; j++) {
		if (!p[j]) {
			if (viad[j])
				vref_nth(&dref[j], k[j], &nbr[j]);
			continue;
		}
		/* nbr[j] set: a block, its first id x[j] from the index */
		nbr[j] = id_after(p[j], end[j], (int)nbr[j], x[j], k[j]);
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

/* (nbr, ts)[a] is older than [b]: the reverse of pick_newer */
static int slot_older(const uint32_t *nbr, const uint32_t *ts, uint32_t a,
		      uint32_t b)
{
	return ts[a] < ts[b] || (ts[a] == ts[b] && nbr[a] > nbr[b]);
}

static void slot_swap(uint32_t *nbr, uint32_t *ts, uint32_t a, uint32_t b)
{
	uint32_t t;

	t = nbr[a], nbr[a] = nbr[b], nbr[b] = t;
	t = ts[a], ts[a] = ts[b], ts[b] = t;
}

/* Sift slot i down the heap of n whose root is the oldest kept. */
static void heap_down(uint32_t *nbr, uint32_t *ts, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;

		if (l < n && slot_older(nbr, ts, l, m))
			m = l;
		if (l + 1 < n && slot_older(nbr, ts, l + 1, m))
			m = l + 1;
		if (m == i)
			return;
		slot_swap(nbr, ts, i, m);
		i = m;
	}
}

void graph_select_newest(uint32_t *nbr, uint32_t *ts, uint32_t n, uint32_t k)
{
	uint32_t lo = 0, hi = n, i, store, mid;

	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (slot_older(nbr, ts, lo, mid))
			slot_swap(nbr, ts, mid, lo);
		if (slot_older(nbr, ts, lo, hi - 1))
			slot_swap(nbr, ts, hi - 1, lo);
		if (slot_older(nbr, ts, hi - 1, mid))
			slot_swap(nbr, ts, mid, hi - 1);
		/* the pivot, at hi - 1, is the median of the three */
		for (store = lo, i = lo; i < hi - 1; i++)
			if (slot_older(nbr, ts, hi - 1, i))
				slot_swap(nbr, ts, i, store++);
		slot_swap(nbr, ts, store, hi - 1);
		if (store == k || store + 1 == k)
			return;
		if (store > k)
			hi = store;
		else
			lo = store + 1;
	}
}

#define SCAN_K 64u /* k up to this: a stack buffer of 2k */

/*
 * The k newest of the whole list into nbr/ts, newest first, in O(d)
 * expected whatever order the timestamps follow. For k <= SCAN_K: entries
 * go into a buffer of 2k, cut back to its k newest by a selection whenever
 * it fills; a heap of k or an insertion into a sorted k costs O(log k) or
 * O(k) an entry when timestamps grow with the ids (members who joined over
 * time), and a hub's intermediates were measured at 3.4 ms a query that
 * way. Larger k: a heap of k in nbr/ts, O(d log k).
 */
static uint32_t newest_scan(const struct vref *r, uint32_t k, uint32_t *nbr,
			    uint32_t *ts)
{
	uint32_t bid[2 * SCAN_K], bts[2 * SCAN_K];
	struct graph_iter it;
	uint32_t n = 0, id, t, i, j;

	iter_init_ref(&it, r);
	if (k <= SCAN_K) {
		while (it_next_raw(&it, &id, &t)) {
			if (n == 2 * k) {
				graph_select_newest(bid, bts, n, k);
				n = k;
			}
			bid[n] = id;
			bts[n++] = t;
		}
		if (n > k) {
			graph_select_newest(bid, bts, n, k);
			n = k;
		}
		for (i = 0; i < n; i++) { /* sort the k, newest first */
			for (j = i; j > 0 && slot_older(bid, bts, j - 1, j); j--)
				slot_swap(bid, bts, j, j - 1);
		}
		memcpy(nbr, bid, n * sizeof(*nbr));
		memcpy(ts, bts, n * sizeof(*ts));
		return n;
	}
	while (it_next_raw(&it, &id, &t)) {
		if (n < k) {
			nbr[n] = id;
			ts[n] = t;
			for (i = n++; i > 0 &&
			     slot_older(nbr, ts, i, (i - 1) / 2); i = (i - 1) / 2)
				slot_swap(nbr, ts, i, (i - 1) / 2);
			continue;
		}
		if (!(t > ts[0] || (t == ts[0] && id < nbr[0])))
			continue; /* not newer than the oldest kept */
		nbr[0] = id;
		ts[0] = t;
		heap_down(nbr, ts, n, 0);
	}
	for (i = n; i > 1; i--) { /* heapsort: the oldest goes last */
		slot_swap(nbr, ts, 0, i - 1);
		heap_down(nbr, ts, i - 1, 0);
	}
	return n;
}

/*
 * The k newest. A list with a newest index holds its NEWEST_N newest base
 * entries there; every other base entry is older than the index's oldest,
 * m. So the live entries newer than m are the index entries the delta
 * does not override plus the delta's own entries newer than m, and when
 * they number at least k the answer is among them, exactly. The delta's
 * refreshes of the index's entries (a repeated pair) count on the delta's
 * side, so only removals of the newest edges can send a hub to the full
 * scan, until its next merge.
 */
static uint32_t sample_newest(const struct vref *r, uint32_t k,
			      uint32_t *nbr, uint32_t *ts)
{
	struct pick top[NEWEST_N], x, m;
	struct graph_iter it;
	struct base_hdr h;
	uint32_t n = 0, i, newer = 0;

	if (r->base && k <= NEWEST_N) {
		base_parse(r->base, &h);
		if (h.newest) {
			struct vref dr = *r;

			m.id = ld32(h.newest + (size_t)(NEWEST_N - 1) * 8);
			m.ts = ld32(h.newest + (size_t)(NEWEST_N - 1) * 8 + 4);
			/* index entries not overridden by the delta */
			for (i = 0; i < NEWEST_N; i++) {
				x.id = ld32(h.newest + (size_t)i * 8);
				if (delta_find(r, x.id))
					continue;
				x.ts = ld32(h.newest + (size_t)i * 8 + 4);
				top_push(top, &n, k, x);
				newer++;
			}
			/* the delta's live entries: an iterator over the
			 * delta alone */
			dr.base = NULL;
			dr.bdeg = 0;
			iter_init_ref(&it, &dr);
			while (it_next_raw(&it, &x.id, &x.ts)) {
				newer += pick_newer(&x, &m);
				top_push(top, &n, k, x);
			}
			if (newer >= k)
				goto out;
			n = 0;
		}
	}
	return newest_scan(r, k, nbr, ts);
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

