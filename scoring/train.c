/* train.c - fitting the logistic-regression ranking model (train.h). */
#include "train.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "mem.h"
#include "par.h"
#include "recommend.h"

void train_opts_default(struct train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->split = 0.8;
	o->k = 10;
	o->max_members = 4000;
	o->name = NULL;
	o->version = NULL;
}

/* Examples of one level: per judged member a group of candidate rows. */
struct ds {
	float *x;        /* rows * FEAT_N */
	uint8_t *y;      /* 1: the pair appears after the level's split */
	uint64_t *cand;  /* candidate member id of each row */
	uint64_t *owner; /* member id of each row */
	size_t rows, cap;
	uint32_t *gstart; /* ngroups + 1 row offsets */
	uint32_t *gtargets; /* new pairs of the member (found or not) */
	size_t ngroups, gcap;
	uint32_t split_time;
	uint64_t pos;
};

static void ds_release(struct ds *d)
{
	free(d->x);
	free(d->y);
	free(d->cand);
	free(d->owner);
	free(d->gstart);
	free(d->gtargets);
	memset(d, 0, sizeof(*d));
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int ds_add_rows(struct ds *d, size_t need)
{
	size_t c1 = d->cap, c2 = d->cap, c3 = d->cap, c4 = d->cap;

	if (d->rows + need <= d->cap)
		return 0;
	if (mem_grow((void **)&d->x, &c1, (d->rows + need), FEAT_N * sizeof(float)) ||
	    mem_grow((void **)&d->y, &c2, d->rows + need, 1) ||
	    mem_grow((void **)&d->cand, &c3, d->rows + need, sizeof(uint64_t)) ||
	    mem_grow((void **)&d->owner, &c4, d->rows + need, sizeof(uint64_t)))
		return -1;
	d->cap = c1 < c2 ? c1 : c2;
	d->cap = d->cap < c3 ? d->cap : c3;
	d->cap = d->cap < c4 ? d->cap : c4;
	return 0;
}

/*
 * Gathering in parallel: the sampled members are cut into blocks of
 * TRAIN_BLOCK (in member order), each worker gathers whole blocks into
 * the block's own examples, and the blocks are joined in order, so the
 * examples are the same whatever the number of threads.
 */
#define TRAIN_BLOCK 16u
#define TRAIN_THREADS_MAX 8u

struct collect_job {
	const struct eval_split *s;
	const struct graph *g;
	const struct rec_params *p;
	const size_t *start;  /* eval_split_groups of s */
	const size_t *sel;    /* the sampled groups, nm of them */
	size_t nm, nblocks, maxgroup;
	struct ds *blk;       /* nblocks */
	atomic_size_t next;
	atomic_int stop;
};

/* The examples of sampled members [b * TRAIN_BLOCK, ...) into j->blk[b]. */
static int collect_block(struct collect_job *j, struct rec_ctx *c,
			 uint64_t *targets, size_t b, struct err *e)
{
	struct ds *d = &j->blk[b];
	size_t end = (b + 1) * TRAIN_BLOCK < j->nm ? (b + 1) * TRAIN_BLOCK : j->nm;
	size_t mi, k, r, nt;
	struct graph_view v;
	uint64_t member;
	int rc = 0;

	if (!(d->gstart = mem_alloc(TRAIN_BLOCK + 1, sizeof(uint32_t))) ||
	    !(d->gtargets = mem_alloc(TRAIN_BLOCK, sizeof(uint32_t))))
		return err_set(e, "out of memory for training examples");
	d->gstart[0] = 0;
	graph_view_begin(j->g, &v);
	for (mi = b * TRAIN_BLOCK; !rc && mi < end; mi++) {
		size_t g = j->sel[mi];
		const struct eval_pair *pr = j->s->judge + j->start[g];

		member = pr[0].member;
		nt = j->start[g + 1] - j->start[g];
		for (k = 0; k < nt; k++)
			targets[k] = pr[k].target;
		if (rec_gather(c, &v, graph_lookup(&v, member), j->s->split_time, j->p, 0, e)) {
			rc = -1;
			break;
		}
		/* by score 0: member order, so rows are deterministic */
		if (rec_sort(c) || ds_add_rows(d, c->n)) {
			rc = err_set(e, "out of memory for training examples");
			break;
		}
		for (r = 0; r < c->n; r++) {
			size_t row = d->rows++;

			for (uint32_t f = 0; f < FEAT_N; f++)
				d->x[row * FEAT_N + f] = (float)c->it[r].x[f];
			d->cand[row] = c->it[r].member;
			d->owner[row] = member;
			d->y[row] = bsearch(&c->it[r].member, targets, nt,
					    sizeof(*targets), u64_cmp) != NULL;
			d->pos += d->y[row];
		}
		d->gtargets[d->ngroups] = (uint32_t)nt;
		d->gstart[++d->ngroups] = (uint32_t)d->rows;
	}
	graph_view_end(&v);
	return rc;
}

static int collect_worker(void *ctx, unsigned worker, struct err *e)
{
	struct collect_job *j = ctx;
	struct rec_ctx *c = rec_ctx_new();
	uint64_t *targets = mem_alloc(j->maxgroup ? j->maxgroup : 1, sizeof(*targets));
	size_t b;
	int rc = 0;

	(void)worker;
	if (!c || !targets)
		rc = err_set(e, "out of memory");
	while (!rc && par_next(&j->next, &j->stop, j->nblocks, &b))
		rc = collect_block(j, c, targets, b, e);
	rec_ctx_free(c);
	free(targets);
	return rc;
}

/* Append the blocks' examples to d, in block order. */
static int join_blocks(struct ds *d, struct ds *blk, size_t nblocks,
		       struct err *e)
{
	size_t b, rows = 0, groups = 0, gcap = 0;

	for (b = 0; b < nblocks; b++) {
		rows += blk[b].rows;
		groups += blk[b].ngroups;
	}
	if (ds_add_rows(d, rows ? rows : 1) ||
	    mem_grow((void **)&d->gstart, &gcap, groups + 1, sizeof(uint32_t)) ||
	    !(d->gtargets = mem_alloc(groups ? groups : 1, sizeof(uint32_t))))
		return err_set(e, "out of memory for training examples");
	d->gstart[0] = 0;
	for (b = 0; b < nblocks; b++) {
		const struct ds *x = &blk[b];

		if (x->rows) {
			memcpy(d->x + d->rows * FEAT_N, x->x, x->rows * FEAT_N * sizeof(float));
			memcpy(d->y + d->rows, x->y, x->rows);
			memcpy(d->cand + d->rows, x->cand, x->rows * sizeof(uint64_t));
			memcpy(d->owner + d->rows, x->owner, x->rows * sizeof(uint64_t));
		}
		for (size_t g = 0; g < x->ngroups; g++) {
			d->gtargets[d->ngroups] = x->gtargets[g];
			d->gstart[++d->ngroups] = (uint32_t)(d->rows + x->gstart[g + 1]);
		}
		d->rows += x->rows;
		d->pos += x->pos;
	}
	return 0;
}

/* Gather the examples of one level: split ev (sorted, adds) at frac, on
 * `threads` threads (0: one per core); with the trend table when `trend`
 * (not for a graph whose times are a random order). */
static int collect(const struct graph_event *ev, size_t n, double frac,
		   uint32_t max_members, unsigned threads, int trend,
		   struct ds *d, struct err *e)
{
	struct eval_split s;
	struct rec_params p;
	struct trend tr;
	struct graph *g = NULL;
	struct collect_job j;
	size_t *start = NULL, *sel = NULL, gi, nm = 0, b;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	memset(&j, 0, sizeof(j));
	if (eval_split_make(ev, n, frac, 0, 0, &s, e))
		return -1;
	d->split_time = s.split_time;
	if (!s.members) {
		/* ev is the outer training period, sorted by ts */
		err_set(e, "no new pairs after the inner split time %u: too little data before the split%s",
			s.split_time, n && ev[0].ts == ev[n - 1].ts
			? " (every event has the same timestamp, as a file without "
			  "times gets the time of loading: --random-order holds out "
			  "a random part of the pairs instead)" : "");
		goto out;
	}
	if (!(g = graph_new(0)) || !(start = mem_alloc(s.members + 1, sizeof(*start))) ||
	    !(sel = mem_alloc(s.members, sizeof(*sel)))) {
		err_set(e, "out of memory");
		goto out;
	}
	j.maxgroup = eval_split_groups(&s, start);
	/* the members judged: an even sample when there are too many */
	for (gi = 0; gi < s.members; gi++)
		if (!max_members || s.members <= max_members ||
		    (gi * max_members) / s.members != ((gi + 1) * max_members) / s.members)
			sel[nm++] = gi;
	if (eval_build_graph(g, &s, e))
		goto out;
	rec_params_default(&p);
	if (trend) {
		trend_build_graph(&tr, g, s.split_time);
		p.trend = &tr;
	}
	j.s = &s;
	j.g = g;
	j.p = &p;
	j.start = start;
	j.sel = sel;
	j.nm = nm;
	j.nblocks = (nm + TRAIN_BLOCK - 1) / TRAIN_BLOCK;
	atomic_init(&j.next, 0);
	atomic_init(&j.stop, 0);
	if (!(j.blk = mem_calloc(j.nblocks ? j.nblocks : 1, sizeof(*j.blk)))) {
		err_set(e, "out of memory");
		goto out;
	}
	if (par_run(par_threads(threads, TRAIN_THREADS_MAX, j.nblocks), collect_worker,
		    &j, &j.stop, e) ||
	    join_blocks(d, j.blk, j.nblocks, e))
		goto out;
	rc = 0;
out:
	for (b = 0; j.blk && b < j.nblocks; b++)
		ds_release(&j.blk[b]);
	free(j.blk);
	graph_free(g);
	free(start);
	free(sel);
	eval_split_release(&s);
	if (rc)
		ds_release(d);
	return rc;
}

struct config {
	const char *set_name;
	uint32_t nf;
	uint8_t feat[FEAT_N];
	double l2;       /* logistic: L2 on the weights; trees: on the leaves */
	uint32_t negs;
	enum model_kind kind;
	uint32_t trees, depth; /* gbdt */
};

/* Row r is used for fitting under c: positives always, negatives with
 * probability negs / (negatives of its group). */
static int row_used(const struct ds *d, size_t r, uint32_t gneg,
		    uint32_t negs)
{
	if (d->y[r])
		return 1;
	if (gneg <= negs)
		return 1;
	return eval_pair_hash(d->owner[r], d->cand[r]) % gneg < negs;
}

/* The rows c uses (row_used), in order: their features (c's) into
 * columns first.. of x (stride floats a row), labels into y. Returns how
 * many. */
static size_t gather_rows(const struct ds *d, const struct config *c,
			  uint32_t stride, uint32_t first, float *x, uint8_t *y)
{
	size_t gi, r, nu = 0;
	uint32_t gneg, i;

	for (gi = 0; gi < d->ngroups; gi++) {
		for (gneg = 0, r = d->gstart[gi]; r < d->gstart[gi + 1]; r++)
			gneg += !d->y[r];
		for (r = d->gstart[gi]; r < d->gstart[gi + 1]; r++) {
			if (!row_used(d, r, gneg, c->negs))
				continue;
			for (i = 0; i < c->nf; i++)
				x[nu * stride + first + i] = d->x[r * FEAT_N + c->feat[i]];
			y[nu++] = d->y[r];
		}
	}
	return nu;
}

/* Solve a x = b (n x n, row-major) in place by Gaussian elimination with
 * partial pivoting; b becomes x. 0 or -1 when singular. */
static int solve(double *a, double *b, uint32_t n)
{
	uint32_t i, j, k, p;
	double t;

	for (i = 0; i < n; i++) {
		p = i;
		for (j = i + 1; j < n; j++)
			if (fabs(a[j * n + i]) > fabs(a[p * n + i]))
				p = j;
		if (fabs(a[p * n + i]) < 1e-12)
			return -1;
		if (p != i) {
			for (k = 0; k < n; k++) {
				t = a[i * n + k];
				a[i * n + k] = a[p * n + k];
				a[p * n + k] = t;
			}
			t = b[i];
			b[i] = b[p];
			b[p] = t;
		}
		for (j = i + 1; j < n; j++) {
			t = a[j * n + i] / a[i * n + i];
			for (k = i; k < n; k++)
				a[j * n + k] -= t * a[i * n + k];
			b[j] -= t * b[i];
		}
	}
	for (i = n; i-- > 0;) {
		for (k = i + 1; k < n; k++)
			b[i] -= a[i * n + k] * b[k];
		b[i] /= a[i * n + i];
	}
	return 0;
}

/* H[i][j] += (hw * z[i]) * z[j] for j >= i: a row's share of the upper
 * triangle of the Hessian (D x D, row-major), element by element. */
static void hess_add(double *H, uint32_t D, double hw, const float *z)
{
	uint32_t i, j;

	for (i = 0; i < D; i++) {
		double a = hw * z[i];

		for (j = i; j < D; j++)
			H[i * D + j] += a * z[j];
	}
}

#if defined(__x86_64__) || defined(__i386__)
/* The same, four j at a time with AVX2 (no FMA: a multiply then an add
 * per element, as above, so every H[i][j] gets the same bits). */
__attribute__((target("avx2"))) static void
hess_add4(double *H, uint32_t D, double hw, const float *z)
{
	uint32_t i, j;

	for (i = 0; i < D; i++) {
		double a = hw * z[i];
		__m256d va = _mm256_set1_pd(a);

		for (j = i; j + 4 <= D; j += 4) {
			__m256d zj = _mm256_cvtps_pd(_mm_loadu_ps(z + j));
			__m256d h = _mm256_loadu_pd(H + i * D + j);

			_mm256_storeu_pd(H + i * D + j,
					 _mm256_add_pd(h, _mm256_mul_pd(va, zj)));
		}
		for (; j < D; j++)
			H[i * D + j] += a * z[j];
	}
}
#endif

static int fit(const struct ds *d, const struct config *c, struct model *m,
	       struct err *e)
{
	uint32_t nf = c->nf, D = nf + 1, i, j, it;
	double H[(FEAT_N + 1) * (FEAT_N + 1)], g[FEAT_N + 1], w[FEAT_N + 1];
	double cnt = 0, pr, q, step, hw;
	size_t nu = 0, k;
	void (*hadd)(double *, uint32_t, double, const float *) = hess_add;
	float *z = NULL;
	uint8_t *y = NULL;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	m->nf = nf;
	memcpy(m->feat, c->feat, nf);
	/* the rows used, once: their standardised features in z */
	if (!(z = mem_alloc(d->rows ? d->rows : 1, D * sizeof(float))) ||
	    !(y = mem_alloc(d->rows ? d->rows : 1, 1))) {
		err_set(e, "out of memory for the fit");
		goto out;
	}
	nu = gather_rows(d, c, D, 1, z, y);
	for (k = 0; k < nu; k++) {
		z[k * D] = 1;
		for (i = 0; i < nf; i++) {
			double x = z[k * D + i + 1];

			m->mean[i] += x;
			m->scale[i] += x * x;
		}
	}
	cnt = (double)nu;
	if (cnt < 2) {
		err_set(e, "too few training examples (%zu)", nu);
		goto out;
	}
	for (i = 0; i < nf; i++) {
		m->mean[i] /= cnt;
		m->scale[i] = sqrt(fmax(m->scale[i] / cnt - m->mean[i] * m->mean[i], 0));
		if (!(m->scale[i] > 1e-9))
			m->scale[i] = 1; /* constant feature: its weight stays ~0 */
	}
	for (k = 0; k < nu; k++)
		for (i = 0; i < nf; i++)
			z[k * D + i + 1] = (float)((z[k * D + i + 1] - m->mean[i]) / m->scale[i]);
	memset(w, 0, sizeof(w));
#if defined(__x86_64__) || defined(__i386__)
	if (__builtin_cpu_supports("avx2"))
		hadd = hess_add4;
#endif
	for (it = 0; it < 30; it++) {
		memset(H, 0, sizeof(H));
		memset(g, 0, sizeof(g));
		for (k = 0; k < nu; k++) {
			const float *zk = &z[k * D];

			for (q = 0, i = 0; i < D; i++)
				q += w[i] * zk[i];
			pr = 1 / (1 + exp(-q));
			hw = pr * (1 - pr);
			for (i = 0; i < D; i++)
				g[i] += (pr - y[k]) * zk[i];
			hadd(H, D, hw, zk);
		}
		for (i = 0; i < D; i++) {
			for (j = 0; j < i; j++)
				H[i * D + j] = H[j * D + i];
			H[i * D + i] += i ? c->l2 : 1e-6;
			g[i] += (i ? c->l2 : 1e-6) * w[i];
		}
		if (solve(H, g, D)) {
			err_set(e, "training examples are degenerate (singular Hessian)");
			goto out;
		}
		for (step = 0, i = 0; i < D; i++) {
			w[i] -= g[i];
			step = fmax(step, fabs(g[i]));
		}
		if (step < 1e-6)
			break;
	}
	m->bias = w[0];
	for (i = 0; i < nf; i++)
		m->w[i] = w[i + 1];
	rc = 0;
out:
	free(z);
	free(y);
	return rc;
}

/*
 * Gradient-boosted oblivious trees (model.h) on the rows c uses: logistic
 * loss, Newton leaves -G / (H + l2) shrunk by TRAIN_GBDT_ETA, each level's
 * question the (feature, threshold) that most raises sum G^2 / (H + l2)
 * over the level's nodes. Thresholds are candidate cut points between
 * distinct values at up to TRAIN_GBDT_BINS quantiles of each feature, so a
 * level costs one pass over the rows (histograms) whatever the values.
 * Deterministic: ties go to the lower feature, then the lower threshold.
 */
#define TRAIN_GBDT_BINS 32u
#define TRAIN_GBDT_ETA 0.1

static int float_cmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/*
 * The cut point between two values a < b of a float feature: their
 * midpoint, but finite when either is infinite (a model file holds finite
 * numbers only and model_load refuses others). Every finite float lies
 * strictly within +-DBL_MAX, so "x > cut" parts the rows as the midpoint
 * would have.
 */
static double cut_between(float a, float b)
{
	if (a == -INFINITY)
		return -DBL_MAX;
	if (b == INFINITY)
		return DBL_MAX;
	return ((double)a + (double)b) / 2;
}

int train_gbdt(const float *x, const uint8_t *y, size_t nu, uint32_t nf,
	       uint32_t ntrees, uint32_t depth, double l2, struct model *m,
	       struct err *e)
{
	const uint32_t NB = TRAIN_GBDT_BINS + 1; /* bins per feature */
	double thr[FEAT_N][TRAIN_GBDT_BINS], gain[TRAIN_GBDT_BINS], pos = 0, best;
	double *F = NULL, *g = NULL, *h = NULL, *hist = NULL;
	uint32_t nthr[FEAT_N], f, b, t, l, leaf, nleaf, bf = 0, bb = 0;
	uint8_t *bin = NULL;
	uint32_t *idx = NULL, *right = NULL, nright = 0;
	float *col = NULL;
	size_t r, i;
	int rc = -1;

	if (nu < 2 || !nf || nf > FEAT_N || depth < 1 || depth > MODEL_DEPTH_MAX ||
	    ntrees < 1 || ntrees > MODEL_TREES_MAX)
		return err_set(e, "boosted trees: bad shape (%zu rows, %u features, depth %u, %u trees)",
			       nu, nf, depth, ntrees);
	if (model_trees_alloc(m, ntrees, depth) ||
	    !(F = mem_alloc(nu, sizeof(double))) || !(g = mem_alloc(nu, sizeof(double))) ||
	    !(h = mem_alloc(nu, sizeof(double))) || !(bin = mem_alloc(nu, nf)) ||
	    !(idx = mem_alloc(nu, sizeof(uint32_t))) || !(col = mem_alloc(nu, sizeof(float))) ||
	    !(right = mem_alloc(nu, sizeof(uint32_t))) ||
	    !(hist = mem_alloc((size_t)4 * NB * nf << depth, sizeof(double)))) {
		err_set(e, "out of memory for the fit");
		goto out;
	}
	/* cut points: between a quantile's value and the next larger one */
	for (f = 0; f < nf; f++) {
		size_t nn = 0;

		for (r = 0; r < nu; r++)
			if (x[r * nf + f] == x[r * nf + f])
				col[nn++] = x[r * nf + f];
		qsort(col, nn, sizeof(float), float_cmp);
		nthr[f] = 0;
		for (b = 1; b <= TRAIN_GBDT_BINS && nn; b++) {
			size_t q = (size_t)((double)b * (double)nn / (TRAIN_GBDT_BINS + 1));
			size_t j = q;
			double cut;

			while (j < nn && col[j] == col[q])
				j++;
			if (j == nn)
				break; /* nothing above this value */
			cut = cut_between(col[q], col[j]);
			if (!nthr[f] || cut > thr[f][nthr[f] - 1])
				thr[f][nthr[f]++] = cut;
		}
		for (r = 0; r < nu; r++) {
			double v = x[r * nf + f];

			for (b = 0; b < nthr[f] && v > thr[f][b]; b++)
				;
			bin[r * nf + f] = (uint8_t)b; /* NaN: 0, as in scoring */
		}
	}
	for (r = 0; r < nu; r++)
		pos += y[r];
	if (pos == 0 || pos == (double)nu) {
		err_set(e, "boosted trees: the examples are all %s", pos ? "positive" : "negative");
		goto out;
	}
	m->nf = nf;
	m->bias = log(pos / ((double)nu - pos));
	for (r = 0; r < nu; r++)
		F[r] = m->bias;
	for (t = 0; t < ntrees; t++) {
		uint8_t *sp = m->split + (size_t)t * depth;
		double *th = m->thr + (size_t)t * depth, *lv = m->leaf + ((size_t)t << depth);

		for (r = 0; r < nu; r++) {
			double p = 1 / (1 + exp(-F[r]));

			g[r] = p - y[r];
			h[r] = p * (1 - p);
			idx[r] = 0;
		}
		for (l = 0; l < depth; l++) {
			/* histograms of this level's 2^l nodes: level 0 from
			 * every row; below it from the rows the last question
			 * sent right (node 2p + 1), the left sibling by
			 * subtraction from the parent (half the rows read) */
			double *cur = hist + ((size_t)(l & 1) * NB * nf * 2 << depth);
			double *par = hist + ((size_t)(~l & 1) * NB * nf * 2 << depth);
			size_t nh = (size_t)NB * nf * 2, nr = l ? nright : nu;

			nleaf = 1u << l;
			memset(cur, 0, nh * nleaf * sizeof(double));
			for (i = 0; i < nr; i++) {
				size_t row = l ? right[i] : i;
				double *hl = cur + (size_t)idx[row] * nh, gr = g[row], hr = h[row];
				const uint8_t *br = bin + row * nf;

				for (f = 0; f < nf; f++) {
					double *c = hl + (f * NB + br[f]) * 2;

					c[0] += gr;
					c[1] += hr;
				}
			}
			if (l)
				for (leaf = 0; leaf < nleaf; leaf += 2)
					for (i = 0; i < nh; i++)
						cur[leaf * nh + i] = par[(leaf / 2) * nh + i] -
								     cur[(leaf + 1) * nh + i];
			best = -1;
			for (f = 0; f < nf; f++) {
				/* gain[b] of the split "bin > b" (left: bins
				 * 0..b), summed over the nodes in node order */
				for (b = 0; b < nthr[f]; b++)
					gain[b] = 0;
				for (leaf = 0; leaf < nleaf; leaf++) {
					const double *hl = cur + ((size_t)leaf * nf + f) * NB * 2;
					double GL = 0, HL = 0, GT = 0, HT = 0;

					for (i = 0; i < NB; i++) {
						GT += hl[i * 2];
						HT += hl[i * 2 + 1];
					}
					for (b = 0; b < nthr[f]; b++) {
						GL += hl[b * 2];
						HL += hl[b * 2 + 1];
						gain[b] += GL * GL / (HL + l2) +
							   (GT - GL) * (GT - GL) / (HT - HL + l2);
					}
				}
				for (b = 0; b < nthr[f]; b++)
					if (gain[b] > best) {
						best = gain[b];
						bf = f;
						bb = b;
					}
			}
			nright = 0;
			if (best < 0) { /* no feature has two values: a constant level */
				/* every row goes left: so does any finite value
				 * (and NaN) when scored. Not INFINITY, which a
				 * model file cannot hold (model.h) */
				sp[l] = 0;
				th[l] = DBL_MAX;
				for (r = 0; r < nu; r++)
					idx[r] <<= 1;
				continue;
			}
			sp[l] = (uint8_t)bf;
			th[l] = thr[bf][bb];
			for (r = 0; r < nu; r++) {
				uint32_t bit = bin[r * nf + bf] > bb;

				idx[r] = (idx[r] << 1) | bit;
				right[nright] = (uint32_t)r;
				nright += bit;
			}
		}
		/* leaves: Newton steps, shrunk */
		memset(hist, 0, ((size_t)2 << depth) * sizeof(double));
		for (r = 0; r < nu; r++) {
			hist[idx[r] * 2] += g[r];
			hist[idx[r] * 2 + 1] += h[r];
		}
		for (leaf = 0; leaf < 1u << depth; leaf++) {
			double v = -TRAIN_GBDT_ETA * hist[leaf * 2] / (hist[leaf * 2 + 1] + l2);

			lv[leaf] = fmax(-1e6, fmin(1e6, v));
		}
		for (r = 0; r < nu; r++)
			F[r] += lv[idx[r]];
	}
	rc = 0;
out:
	free(F);
	free(g);
	free(h);
	free(bin);
	free(idx);
	free(right);
	free(col);
	free(hist);
	if (rc)
		model_release(m);
	return rc;
}

/* Boosted trees on the rows c uses (their features in c's order). */
static int fit_trees(const struct ds *d, const struct config *c,
		     struct model *m, struct err *e)
{
	size_t nu = 0;
	float *x = NULL;
	uint8_t *y = NULL;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (!(x = mem_alloc(d->rows ? d->rows : 1, c->nf * sizeof(float))) ||
	    !(y = mem_alloc(d->rows ? d->rows : 1, 1))) {
		err_set(e, "out of memory for the fit");
		goto out;
	}
	nu = gather_rows(d, c, c->nf, 0, x, y);
	if (train_gbdt(x, y, nu, c->nf, c->trees, c->depth, c->l2, m, e))
		goto out;
	memcpy(m->feat, c->feat, c->nf);
	rc = 0;
out:
	free(x);
	free(y);
	return rc;
}

static int fit_any(const struct ds *d, const struct config *c,
		   struct model *m, struct err *e)
{
	model_release(m);
	return c->kind == MODEL_GBDT ? fit_trees(d, c, m, e) : fit(d, c, m, e);
}

struct scored {
	double s;
	uint64_t cand;
	uint8_t y;
};

static int scored_cmp(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return x->cand < y->cand ? -1 : x->cand > y->cand;
}

/*
 * How many of the first k of buf[0..n) in scored_cmp order (a total
 * order: candidates are distinct in a group) are positives. Moves the
 * first k to the front (in that order when k <= 64, by a bounded
 * insertion pass: O(n k) at worst, about O(n) as most rows fall below the
 * k-th; a sort otherwise), the same set as sorting all n.
 */
static uint64_t top_hits(struct scored *buf, size_t n, uint32_t k)
{
	size_t i, t = 0, j;
	uint64_t hits = 0;

	if (!k)
		return 0;
	if (k > 64) {
		qsort(buf, n, sizeof(*buf), scored_cmp);
		t = n < k ? n : k;
	} else {
		for (i = 0; i < n; i++) {
			struct scored x = buf[i];

			if (t == k && scored_cmp(&x, &buf[t - 1]) >= 0)
				continue;
			j = t < k ? t++ : t - 1; /* the last one falls out */
			while (j > 0 && scored_cmp(&x, &buf[j - 1]) < 0) {
				buf[j] = buf[j - 1];
				j--;
			}
			buf[j] = x;
		}
	}
	for (i = 0; i < t; i++)
		hits += buf[i].y;
	return hits;
}

/* recall@k of ranking each group by m (or by Adamic-Adar when m is NULL,
 * positive scores only). */
static double recall_at(const struct ds *d, const struct model *m,
			uint32_t k, struct scored *buf)
{
	uint64_t hits = 0, rel = 0;
	double x[64][FEAT_N], s[64];
	size_t gi, r, r0, n, i, j, nb;

	for (gi = 0; gi < d->ngroups; gi++) {
		n = 0;
		/* 64 rows at a time: model_score_n walks trees four at once */
		for (r0 = d->gstart[gi]; r0 < d->gstart[gi + 1]; r0 += nb) {
			nb = d->gstart[gi + 1] - r0 < 64 ? d->gstart[gi + 1] - r0 : 64;
			for (j = 0; j < nb; j++)
				for (i = 0; i < FEAT_N; i++)
					x[j][i] = d->x[(r0 + j) * FEAT_N + i];
			if (m)
				model_score_n(m, nb, x[0], sizeof(x[0]), s, sizeof(s[0]));
			for (j = 0; j < nb; j++) {
				r = r0 + j;
				buf[n].s = m ? s[j] : x[j][FEAT_ADAMIC_ADAR];
				buf[n].cand = d->cand[r];
				buf[n].y = d->y[r];
				if (buf[n].s > 0)
					n++;
			}
		}
		hits += top_hits(buf, n, k);
		rel += d->gtargets[gi];
	}
	return rel ? (double)hits / (double)rel : 0;
}

static uint32_t set_all(uint8_t *f)
{
	uint32_t i;

	for (i = 0; i < FEAT_N; i++)
		f[i] = (uint8_t)i;
	return FEAT_N;
}

static uint32_t set_without(uint8_t *f, const int *drop, size_t nd)
{
	uint32_t i, n = 0;
	size_t j;

	for (i = 0; i < FEAT_N; i++) {
		for (j = 0; j < nd && drop[j] != (int)i; j++)
			;
		if (j == nd)
			f[n++] = (uint8_t)i;
	}
	return n;
}

static const char *const set_names[] = { "all", "no-time", "no-walk" };

int train_sets_parse(const char *list, unsigned *sets, struct err *e)
{
	const char *p = list, *end;
	size_t len, i;

	*sets = 0;
	for (;;) {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < 3; i++)
			if (strlen(set_names[i]) == len && !strncmp(p, set_names[i], len))
				break;
		if (i == 3)
			return err_set(e, "unknown feature set \"%.*s\" (all, no-time, no-walk)",
				       (int)(len > 40 ? 40 : len), p);
		*sets |= 1u << i;
		if (!end)
			return 0;
		p = end + 1;
	}
}

/*
 * The grid, on threads: each configuration is fitted on level 3 and judged
 * on level 2 (rec2[i]), and when level 4 exists fitted there and judged on
 * level 3 (rec3[i]); rec2[i] = -1 marks one skipped (trees need both
 * classes). Configurations are independent and each result lands in its
 * own slot, so the choice made from them does not depend on the thread
 * count. threads of them (0: one per online core), at most
 * TRAIN_THREADS_MAX.
 */
struct grid_job {
	const struct ds *d2, *d3, *d4;
	const struct config *cfg;
	size_t nc, maxg;
	uint32_t k;
	double *rec2, *rec3;
	atomic_size_t next;
	atomic_int stop; /* a worker failed */
};

static int grid_worker(void *ctx, unsigned worker, struct err *e)
{
	struct grid_job *j = ctx;
	struct scored *buf = mem_alloc(j->maxg ? j->maxg : 1, sizeof(*buf));
	struct model m;
	size_t i;
	int rc = 0;

	(void)worker;
	memset(&m, 0, sizeof(m));
	if (!buf)
		rc = err_set(e, "out of memory");
	while (!rc && par_next(&j->next, &j->stop, j->nc, &i)) {
		const struct config *c = &j->cfg[i];

		j->rec2[i] = -1;
		j->rec3[i] = 0;
		/* trees need both classes in every fit; logistic regression
		 * copes without positives (all weights shrink to nothing) */
		if (c->kind == MODEL_GBDT && (!j->d2->pos || !j->d3->pos))
			continue;
		if ((rc = fit_any(j->d3, c, &m, e)))
			break;
		model_set_name(&m, "x", "x");
		j->rec2[i] = recall_at(j->d2, &m, j->k, buf);
		if (j->d4->rows) { /* the second window */
			if ((rc = fit_any(j->d4, c, &m, e)))
				break;
			j->rec3[i] = recall_at(j->d3, &m, j->k, buf);
		}
	}
	model_release(&m);
	free(buf);
	return rc;
}

static int grid_run(const struct ds *d2, const struct ds *d3,
		    const struct ds *d4, const struct config *cfg, size_t nc,
		    uint32_t k, size_t maxg, unsigned threads, double *rec2,
		    double *rec3, struct err *e)
{
	/* the counters start at zero, as the initializer leaves them */
	struct grid_job j = { .d2 = d2, .d3 = d3, .d4 = d4, .cfg = cfg, .nc = nc,
			      .maxg = maxg, .k = k, .rec2 = rec2, .rec3 = rec3 };

	return par_run(par_threads(threads, TRAIN_THREADS_MAX, nc), grid_worker, &j,
		       &j.stop, e);
}

int train_fit(const struct graph_event *ev, size_t n,
	      const struct train_opts *o, train_progress_fn progress,
	      void *pctx, struct model *out, struct train_info *info,
	      struct err *e)
{
	/* the features a set leaves out: no-time the four time features
	 * (drop + 2, 4 of them), no-walk the walk and PPR scores (drop, 2).
	 * With times in a random order every set also leaves out the time
	 * features and the trend: "all" becomes no-time (drop + 2, 5), and
	 * no-walk leaves out all seven */
	static const int drop[] = { FEAT_WALK, FEAT_PPR, FEAT_RECENT_MUTUAL,
				    FEAT_MUTUAL_AGE, FEAT_CAND_AGE,
				    FEAT_CAND_RECENT, FEAT_TREND };
	static const double l2s[] = { 0.1, 10 };
	static const uint32_t negs[] = { 30, 300 };
	/* the trees' grid: shapes of about equal cost */
	static const struct { uint32_t depth, trees, negs; } gb[] = {
		{ 3, 200, 30 }, { 5, 100, 30 },
	};
	unsigned kinds = o->kinds ? o->kinds : TRAIN_KIND_LOGISTIC | TRAIN_KIND_GBDT;
	struct config cfg[3 * (2 * 2 + sizeof(gb) / sizeof(gb[0]))], best;
	double rec2[sizeof(cfg) / sizeof(cfg[0])], rec3[sizeof(cfg) / sizeof(cfg[0])];
	struct eval_split outer;
	struct ds d2, d3, d4;
	struct scored *buf = NULL;
	struct err e4;
	char ver[16];
	size_t i, nc = 0, maxg = 0, gi;
	double rec, best_rec = -1, best_rec2 = 0, best_rec3 = 0;
	const int timed = o->how != EVAL_SPLIT_RANDOM;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	memset(out, 0, sizeof(*out));
	memset(&d2, 0, sizeof(d2));
	memset(&d3, 0, sizeof(d3));
	memset(&d4, 0, sizeof(d4));
	if (eval_split_make(ev, n, o->split, o->how, o->split_time, &outer, e))
		return -1;
	info->split_time = outer.split_time;
	if (!outer.ntrain) { /* --split-time before every event */
		uint32_t first = UINT32_MAX;

		for (i = 0; i < n; i++)
			if (ev[i].src != ev[i].dst && ev[i].op == GRAPH_ADD &&
			    ev[i].ts < first)
				first = ev[i].ts;
		err_set(e, "no event at or before the split time %u (the first "
			"is at %u): nothing to train on", outer.split_time, first);
		goto out;
	}
	if (progress)
		progress(pctx, "level 2 examples");
	if (collect(outer.train, outer.ntrain, o->split, o->max_members, o->threads, timed, &d2, e))
		goto out;
	if (progress)
		progress(pctx, "level 3 examples");
	/* level 3: the events up to T2, split again */
	for (i = 0; i < outer.ntrain && outer.train[i].ts <= d2.split_time; i++)
		;
	if (collect(outer.train, i, o->split, o->max_members, o->threads, timed, &d3, e))
		goto out;
	/* level 4 (the events up to T3, split again) makes a second window:
	 * fit on 4, judge on 3. Too little data there (no new pairs, no
	 * positives) leaves one window, as on a short file */
	if (progress)
		progress(pctx, "level 4 examples");
	for (i = 0; i < outer.ntrain && outer.train[i].ts <= d3.split_time; i++)
		;
	if (collect(outer.train, i, o->split, o->max_members, o->threads, timed, &d4, &e4) ||
	    !d4.pos || !d3.pos)
		ds_release(&d4);
	info->windows = d4.rows ? 2 : 1;
	info->t4 = d4.split_time;
	info->t2 = d2.split_time;
	info->t3 = d3.split_time;
	info->rows2 = d2.rows;
	info->pos2 = d2.pos;
	for (gi = 0; gi < d2.ngroups; gi++)
		info->targets2 += d2.gtargets[gi];
	info->members2 = d2.ngroups;
	info->rows3 = d3.rows;
	info->pos3 = d3.pos;
	info->members3 = d3.ngroups;
	for (gi = 0; gi < d2.ngroups; gi++)
		maxg = d2.gstart[gi + 1] - d2.gstart[gi] > maxg ? d2.gstart[gi + 1] - d2.gstart[gi] : maxg;
	for (gi = 0; gi < d3.ngroups; gi++)
		maxg = d3.gstart[gi + 1] - d3.gstart[gi] > maxg ? d3.gstart[gi + 1] - d3.gstart[gi] : maxg;
	if (!(buf = mem_alloc(maxg ? maxg : 1, sizeof(*buf)))) {
		err_set(e, "out of memory");
		goto out;
	}
	for (int s = 0; s < 3; s++) {
		/* without times "all" is "no-time": fitted once, by that name */
		int as = !timed && s == 0 ? 1 : s;
		struct config set = { .set_name = set_names[as] };

		if (o->sets && !(o->sets & (1u << s)))
			continue;
		if (as != s && (!o->sets || o->sets & TRAIN_SET_NO_TIME))
			continue;
		set.nf = as == 0 ? set_all(set.feat)
			: as == 2 ? set_without(set.feat, drop, timed ? 2 : 7)
				  : set_without(set.feat, drop + 2, timed ? 4 : 5);
		for (i = 0; i < 2 && kinds & TRAIN_KIND_LOGISTIC; i++)
			for (size_t j = 0; j < 2; j++, nc++) {
				cfg[nc] = set;
				cfg[nc].kind = MODEL_LOGISTIC;
				cfg[nc].l2 = l2s[i];
				cfg[nc].negs = negs[j];
			}
		for (i = 0; i < sizeof(gb) / sizeof(gb[0]) && kinds & TRAIN_KIND_GBDT; i++, nc++) {
			cfg[nc] = set;
			cfg[nc].kind = MODEL_GBDT;
			cfg[nc].depth = gb[i].depth;
			cfg[nc].trees = gb[i].trees;
			cfg[nc].negs = gb[i].negs;
			cfg[nc].l2 = 1;
		}
	}
	if (progress)
		progress(pctx, "choosing features and regularisation");
	if (grid_run(&d2, &d3, &d4, cfg, nc, o->k, maxg, o->threads, rec2, rec3, e))
		goto out;
	for (i = 0; i < nc; i++) {
		if (rec2[i] < 0) /* skipped */
			continue;
		rec = d4.rows ? (rec2[i] + rec3[i]) / 2 : rec2[i];
		if (rec > best_rec) { /* ties keep the earlier (simpler grid order) */
			best_rec = rec;
			best_rec2 = rec2[i];
			best_rec3 = rec3[i];
			best = cfg[i];
		}
	}
	if (best_rec < 0) { /* every configuration skipped: trees only, one class */
		err_set(e, "boosted trees need a new pair among the candidates of both inner windows, and there is none; try --kind logistic");
		goto out;
	}
	info->val_recall = best_rec;
	info->val_recall2 = best_rec2;
	info->val_recall3 = best_rec3;
	info->val_recall_aa2 = recall_at(&d2, NULL, o->k, buf);
	info->val_recall_aa3 = d4.rows ? recall_at(&d3, NULL, o->k, buf) : 0;
	info->val_recall_aa = d4.rows ? (info->val_recall_aa2 + info->val_recall_aa3) / 2
				      : info->val_recall_aa2;
	info->l2 = best.l2;
	info->negs = best.negs;
	info->feature_set = best.set_name;
	info->kind = best.kind;
	info->depth = best.depth;
	info->trees = best.trees;
	if (progress)
		progress(pctx, "final fit");
	if (fit_any(&d2, &best, out, e))
		goto out;
	/* a retrained model gets a new version, the same fit the same one */
	snprintf(ver, sizeof(ver), "%08" PRIx32, model_digest(out));
	model_set_name(out, o->name ? o->name : best.kind == MODEL_GBDT ? "gbdt" : "lr",
		       o->version ? o->version : ver);
	out->builtin = 0;
	{ /* the candidate generation the features came from */
		struct rec_params gp;

		rec_params_default(&gp);
		rec_params_describe(&gp, out->gen, sizeof(out->gen));
	}
	rc = 0;
out:
	free(buf);
	ds_release(&d2);
	ds_release(&d3);
	ds_release(&d4);
	eval_split_release(&outer);
	return rc;
}

void train_info_json(const struct train_info *info, char *buf, size_t len)
{
	char shape[96] = "", gen[MODEL_GEN_MAX];
	struct rec_params gp;

	rec_params_default(&gp);
	rec_params_describe(&gp, gen, sizeof(gen));

	if (info->kind == MODEL_GBDT)
		snprintf(shape, sizeof(shape), "\"trees\":%u,\"depth\":%u,", info->trees,
			 info->depth);
	snprintf(buf, len,
		 "{\"split_time\":%u,\"t2\":%u,\"t3\":%u,\"rows\":%llu,\"positives\":%llu,"
		 "\"members\":%llu,\"kind\":\"%s\",%s\"feature_set\":\"%s\",\"l2\":%g,"
		 "\"negatives_per_member\":%u,"
		 "\"windows\":%u,\"t4\":%u,\"validation_recall\":%.6f,\"validation_recall_aa\":%.6f,"
		 "\"generation\":\"%s\"}",
		 info->split_time, info->t2, info->t3,
		 (unsigned long long)info->rows2, (unsigned long long)info->pos2,
		 (unsigned long long)info->members2,
		 info->kind == MODEL_GBDT ? "gbdt" : "logistic", shape,
		 info->feature_set ? info->feature_set : "", info->l2, info->negs,
		 info->windows, info->t4, info->val_recall, info->val_recall_aa, gen);
}
