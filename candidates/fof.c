/* fof.c - friends-of-friends candidates with capped expansion (fof.h). */
#include "fof.h"

#include <string.h>

#include "mem.h"

void fof_params_default(struct fof_params *p)
{
	p->max_expand = FOF_MAX_EXPAND;
	p->max_read = FOF_MAX_READ;
	p->hub_read = FOF_HUB_READ;
	p->max_total = FOF_MAX_TOTAL;
}

/*
 * The neighbours of u to expand, into c->queue; returns how many or -1.
 * Over the cap: the newest `cap`, by one pass over u's list into scratch
 * and a linear-time selection (O(d_u) expected).
 */
static int64_t expand_set(struct cand_ctx *c, const struct graph_view *v,
			  uint32_t cap, uint64_t *read)
{
	uint32_t u = c->member, d = c->member_deg, n = 0, w, ts;
	struct graph_iter it;

	if (mem_grow((void **)&c->queue, &c->qcap, (size_t)d + 1,
		     sizeof(*c->queue)) ||
	    cand_reserve_buf(c, (size_t)d + 1))
		return -1;
	if (d <= cap) { /* all of them: ids only, in list order */
		n = graph_ids(v, u, c->queue, d + 1);
		*read += n;
		return n;
	}
	if (c->lazy) { /* a scan would be O(d_u): the index's newest */
		n = graph_sample(v, u, cap < FOF_HUB_READ ? cap : FOF_HUB_READ,
				 GRAPH_SAMPLE_NEWEST, 0, c->queue, NULL);
		*read += n;
		return n;
	}
	graph_iter_init(&it, v, u);
	while (n < d && graph_iter_next(&it, &w, &ts)) {
		c->queue[n] = w;
		c->tsbuf[n++] = ts;
	}
	*read += n;
	if (n > cap) {
		graph_select_newest(c->queue, c->tsbuf, n, cap);
		n = cap;
	}
	return n;
}

/* Vertices above which the scatter prefetches (32-byte entries: 2 MiB). */
#define FOF_PREFETCH_MIN 65536u

/*
 * Count one intermediate's list buf[0..got) into the map when every
 * excluded vertex is marked (not lazy) and the map is small enough to stay
 * in cache (no prefetch); returns the new count of reached[]. No branch on
 * an entry's state: in cache, the branch (a first landing or not) is what
 * costs, as it is unpredictable. An excluded entry keeps its mark and
 * takes sums nobody reads (they count only under CAND_MARK_FOF); a first
 * landing starts the sums from zero and is appended to reached[] (the
 * store is unconditional, the count is not).
 *
 * Only in cache: with the map out of cache (the prefetched loop in
 * fof_run), the same code was slower, as every store into reached[] waits
 * for the miss that decides its place. Measured with bench_query
 * (alternating builds, 7 Dec, EPYC): facebook (4,039 members) triad AA
 * p50 by degree 36.9-38.7 -> 25.9-26.8 us; the 1.2M-member synthetic
 * graph 5-15% slower, hence the old loop there.
 */
static size_t scatter(struct cand_map *map, uint32_t nv, uint32_t fofm,
		      const uint32_t *buf, uint32_t got, uint64_t inc_aa,
		      uint64_t inc_ra, uint32_t *reached, size_t nr)
{
	for (uint32_t j = 0; j < got; j++) {
		uint32_t x = buf[j], mk, keep, first;
		uint64_t km;
		struct cand_map *m;

		if (x >= nv) /* cand_in_table: joined during the query */
			continue;
		m = &map[x];
		mk = m->mark;
		keep = mk == fofm;                /* sums already this query's */
		first = (mk | 1u) != (fofm | 1u); /* neither fof nor excluded */
		km = (uint64_t)0 - keep;
		m->mark = mk == (fofm | 1u) ? mk : fofm;
		m->mutual = (m->mutual & (uint32_t)km) + 1;
		m->aa_fx = (m->aa_fx & km) + inc_aa;
		m->ra_fx = (m->ra_fx & km) + inc_ra;
		reached[nr] = x;
		nr += first;
	}
	return nr;
}

/* Set (on) or clear the kept slots' bits in c->keepbits. */
static void keep_bits(struct cand_ctx *c, int on)
{
	size_t k;

	for (k = 0; k < c->n; k++) {
		uint32_t x = c->c[k].v;

		if (!(c->c[k].flags & CAND_KEEP))
			continue;
		if (on)
			c->keepbits[x >> 6] |= (uint64_t)1 << (x & 63);
		else
			c->keepbits[x >> 6] = 0;
	}
}

int fof_recount(struct cand_ctx *c, const struct graph_view *v, int force,
		uint64_t deadline_ns, struct err *e)
{
	const uint32_t du = c->member_deg, nv = c->nv;
	uint64_t scan = 0, pairs = 0, inc_aa, inc_ra;
	uint32_t n, i, j, dw, got;
	size_t k, words = ((size_t)nv + 63) / 64, cap = c->keepcap;
	int rc = 0;

	if (c->lazy || !du)
		return 0;
	/* what merging pair by pair would read (feat_pair: a list under
	 * 1,024 entries whole, a longer one a block per probe) */
	for (k = 0; k < c->n; k++) {
		uint32_t dc;

		if (!(c->c[k].flags & CAND_KEEP))
			continue;
		dc = graph_degree(v, c->c[k].v);
		pairs += dc < 1024 ? dc : (uint64_t)(GRAPH_BLOCK / 2) * (du < dc ? du : dc);
	}
	if (mem_grow((void **)&c->queue, &c->qcap, du, sizeof(*c->queue)) ||
	    cand_reserve_buf(c, du))
		return err_set(e, "out of memory for friends of friends");
	n = graph_ids(v, c->member, c->queue, du);
	graph_degree_member_batch(v, n, c->queue, c->tsbuf, NULL);
	for (i = 0; i < n; i++)
		scan += c->tsbuf[i];
	if (!force && scan * FOF_RECOUNT_WEIGHT > pairs)
		return 0;
	if (words > cap) { /* new words clear, as the invariant wants */
		if (mem_grow((void **)&c->keepbits, &cap, words, sizeof(*c->keepbits)))
			return err_set(e, "out of memory for friends of friends");
		memset(c->keepbits + c->keepcap, 0,
		       (cap - c->keepcap) * sizeof(*c->keepbits));
		c->keepcap = cap;
	}
	for (k = 0; k < c->n; k++)
		if (c->c[k].flags & CAND_KEEP) {
			c->c[k].mutual = 0;
			c->c[k].aa_fx = 0;
			c->c[k].ra_fx = 0;
		}
	/* the kept ones in a bitmap (a few KB: in cache, where the query's
	 * table is megabytes); an entry touches the table only on a hit */
	keep_bits(c, 1);
	for (i = 0; i < n; i++) {
		const uint64_t *bits = c->keepbits;
		const uint32_t *buf;

		if (!(i & 15) && cand_past(deadline_ns))
			goto out;
		dw = c->tsbuf[i];
		if (dw < 2) /* u is its only neighbour */
			continue;
		inc_aa = cand_fx_aa(dw);
		inc_ra = cand_fx_ra(dw);
		if (cand_reserve_buf(c, dw)) {
			rc = err_set(e, "out of memory for friends of friends");
			goto out;
		}
		got = graph_ids(v, c->queue[i], c->buf, dw);
		buf = c->buf;
		for (j = 0; j < got; j++) {
			uint32_t x = buf[j];
			struct cand *s;

			if (x >= nv || !(bits[x >> 6] >> (x & 63) & 1))
				continue;
			s = &c->c[c->map[x].slot];
			s->mutual++;
			s->aa_fx += inc_aa;
			s->ra_fx += inc_ra;
		}
	}
	rc = 1;
out:
	keep_bits(c, 0);
	return rc;
}

int fof_run(struct cand_ctx *c, const struct graph_view *v,
	    const struct fof_params *p, uint64_t deadline_ns,
	    struct cand_run *run, struct err *e)
{
	struct cand_run r = { 0, 0, 0 };
	uint32_t i, j, w, dw, got, *buf, *reached;
	const uint32_t fofm = CAND_MARK_FOF(c->epoch), exclm = CAND_MARK_EXCL(c->epoch);
	const int lazy = c->lazy;
	const uint32_t nv = c->nv;
	/* prefetch the map entries ahead when the map is larger than a
	 * core's L2: measured 15% faster on a 300k-member graph, 11% slower
	 * on facebook's 4,039 members (the table is in cache there) */
	const int pf = nv > FOF_PREFETCH_MIN;
	struct cand_map *map;
	uint64_t inc_aa, inc_ra, own;
	size_t nr = 0;
	int64_t ne;
	int rc = -1, exact;

	c->fof_exact = 0;
	ne = expand_set(c, v, p->max_expand, &r.edges_read);
	own = r.edges_read; /* u's own list: not part of the budget */
	if (ne < 0) {
		err_set(e, "out of memory for friends of friends");
		goto out;
	}
	if (cand_reserve_buf(c, p->hub_read ? p->hub_read : 1)) {
		err_set(e, "out of memory for friends of friends");
		goto out;
	}
	exact = !lazy && (uint32_t)ne == c->member_deg;
	/* the intermediates' degrees in one batch (misses overlapped), in
	 * tsbuf: the loop below reads lists into buf only */
	graph_degree_member_batch(v, (uint32_t)ne, c->queue, c->tsbuf, NULL);
	for (i = 0; i < (uint32_t)ne; i++) {
		if (cand_past(deadline_ns)) {
			r.cut = 1;
			exact = 0;
			break;
		}
		w = c->queue[i];
		dw = c->tsbuf[i];
		r.steps++;
		inc_aa = cand_fx_aa(dw);
		inc_ra = cand_fx_ra(dw);
		if (dw <= p->max_read && r.edges_read - own < p->max_total) {
			/* the whole list, ids only */
			if (cand_reserve_buf(c, dw)) {
				err_set(e, "out of memory for friends of friends");
				goto out;
			}
			got = graph_ids(v, w, c->buf, dw);
		} else {
			got = graph_sample(v, w, p->hub_read, GRAPH_SAMPLE_NEWEST,
					   0, c->buf, NULL);
			exact &= got == dw;
		}
		r.edges_read += got;
		if (mem_grow((void **)&c->reached, &c->rcap, nr + got,
			     sizeof(*c->reached))) {
			err_set(e, "out of memory for friends of friends");
			goto out;
		}
		/* in locals: the map's stores could alias the context, and the
		 * compiler would reload these for every entry */
		buf = c->buf;
		map = c->map;
		reached = c->reached;
		if (!lazy && !pf) {
			nr = scatter(map, nv, fofm, buf, got, inc_aa, inc_ra,
				     reached, nr);
			continue;
		}
		for (j = 0; j < got; j++) {
			uint32_t x = buf[j], xp;
			struct cand_map *m;

			if (pf) { /* the entry 16 ahead: a random read */
				xp = buf[j + 16 < got ? j + 16 : j];
				__builtin_prefetch(&map[xp < nv ? xp : 0]);
			}
			if (x >= nv) /* cand_in_table: joined during the query */
				continue;
			m = &map[x];
			if (m->mark == exclm)
				continue;
			if (m->mark != fofm) {
				if (lazy && cand_is_excluded(c, x)) {
					m->mark = exclm;
					continue;
				}
				m->mark = fofm;
				m->mutual = 0;
				m->aa_fx = 0;
				m->ra_fx = 0;
				reached[nr++] = x;
			}
			m->mutual++;
			m->aa_fx += inc_aa;
			m->ra_fx += inc_ra;
		}
	}
	/* no slots: cand_touch makes one, with these counts, for the few
	 * that are kept or that another generator reaches */
	c->nreached = nr;
	c->fof_exact = exact;
	rc = 0;
out:
	if (run)
		*run = r;
	return rc;
}
