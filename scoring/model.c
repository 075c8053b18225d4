/* model.c - ranking models (logistic regression, boosted trees) and their
 * files (model.h). */
#include "model.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MODEL_X86 1
#endif
#include <json.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

/*
 * The built-in models. Their numbers are copied from data/model.json and
 * data/model-static.json, made by `make model` (see the README); the test
 * suite checks that they agree.
 */
#include "model_default.inc"

#define MODEL_FILE_MAX (16u << 20)

int model_label_ok(const char *s, int is_name)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (*s < ' ' || *s > '~' || *s == '"' || *s == '\\' ||
		    (is_name && *s == '@'))
			return 0;
	return n >= 1 && n < MODEL_NAME_MAX;
}

void model_set_name(struct model *m, const char *name, const char *version)
{
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->version, sizeof(m->version), "%s", version);
	snprintf(m->full, sizeof(m->full), "%s@%s", m->name, m->version);
}

const struct model *model_default(void)
{
	return &default_model;
}

const struct model *model_default_static(void)
{
	return &static_model;
}

int model_trees_alloc(struct model *m, uint32_t ntrees, uint32_t depth)
{
	size_t levels = (size_t)ntrees * depth, leaves = (size_t)ntrees << depth;
	char *p;

	model_release(m);
	m->kind = MODEL_GBDT;
	/* doubles first, then the split bytes: every array aligned */
	p = mem_calloc(1, (levels + leaves) * sizeof(double) + levels + 1);
	if (!p)
		return -1;
	m->thr = (double *)(void *)p;
	m->leaf = m->thr + levels;
	m->split = (uint8_t *)(m->leaf + leaves);
	m->ntrees = ntrees;
	m->depth = depth;
	return 0;
}

void model_release(struct model *m)
{
	if (!m || m->builtin)
		return;
	free(m->thr); /* the one allocation */
	m->thr = m->leaf = NULL;
	m->split = NULL;
	m->ntrees = m->depth = 0;
}

void model_free(struct model *m)
{
	if (m && !m->builtin) {
		model_release(m);
		free(m);
	}
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		h = (h ^ *b++) * 1099511628211ull;
	return h;
}

uint32_t model_digest(const struct model *m)
{
	uint64_t h = 1469598103934665603ull;
	const double *parts[3] = { m->w, m->mean, m->scale };
	uint32_t f, j;

	for (f = 0; f < m->nf; f++) {
		h = fnv(h, &m->feat[f], 1);
		if (m->kind == MODEL_LOGISTIC)
			for (j = 0; j < 3; j++)
				h = fnv(h, &parts[j][f], sizeof(double));
	}
	if (m->kind == MODEL_GBDT) {
		h = fnv(h, &m->bias, sizeof(m->bias));
		h = fnv(h, m->split, (size_t)m->ntrees * m->depth);
		h = fnv(h, m->thr, (size_t)m->ntrees * m->depth * sizeof(double));
		h = fnv(h, m->leaf, ((size_t)m->ntrees << m->depth) * sizeof(double));
	}
	return (uint32_t)h;
}

uint32_t model_features(const struct model *m)
{
	uint32_t i, mask = 0;

	for (i = 0; i < m->nf; i++)
		mask |= FEAT_BIT(m->feat[i]);
	return mask;
}

const char *model_name(const struct model *m)
{
	return m->full;
}

/* sum of the trees' leaves for x */
static double trees_sum(const struct model *m, const double *x)
{
	const uint8_t *sp = m->split;
	const double *th = m->thr, *leaf = m->leaf;
	uint32_t t, j, idx, D = m->depth;
	double z = 0, f[FEAT_N];

	for (j = 0; j < m->nf; j++)
		f[j] = x[m->feat[j]];
	for (t = 0; t < m->ntrees; t++, sp += D, th += D, leaf += 1u << D) {
		for (idx = 0, j = 0; j < D; j++)
			idx = (idx << 1) | (f[sp[j]] > th[j]);
		z += leaf[idx];
	}
	return z;
}

/* bias + the trees' sum as a probability, as model_score finishes it */
static double squash(double z)
{
	if (z > 40)
		z = 40;
	if (z < -40)
		z = -40;
	return 1.0 / (1.0 + exp(-z));
}

/*
 * trees_sum for four vectors, one per lane: each lane's index is built by
 * the same "f > threshold" tests (ordered compare: NaN goes left) and its
 * leaves added in tree order from 0, so every lane's sum is trees_sum's
 * bit for bit. The index is kept in doubles (idx + idx + bit: exact for
 * the at most 8 bits of a leaf index) and converted for the gather.
 */
#ifdef MODEL_X86
__attribute__((target("avx2"))) static void
trees_sum4(const struct model *m, const double *const x[4], double out[4])
{
	const uint8_t *sp = m->split;
	const double *th = m->thr, *leaf = m->leaf;
	uint32_t t, j, D = m->depth;
	double f[FEAT_N][4] __attribute__((aligned(32)));
	const __m256d one = _mm256_set1_pd(1.0);
	__m256d z = _mm256_setzero_pd();

	for (j = 0; j < m->nf; j++)
		for (t = 0; t < 4; t++)
			f[j][t] = x[t][m->feat[j]];
	for (t = 0; t < m->ntrees; t++, sp += D, th += D, leaf += 1u << D) {
		__m256d idx = _mm256_setzero_pd();

		for (j = 0; j < D; j++) {
			__m256d yes = _mm256_cmp_pd(_mm256_load_pd(f[sp[j]]),
						    _mm256_set1_pd(th[j]),
						    _CMP_GT_OQ);

			idx = _mm256_add_pd(_mm256_add_pd(idx, idx),
					    _mm256_and_pd(yes, one));
		}
		z = _mm256_add_pd(z, _mm256_i32gather_pd(
					     leaf, _mm256_cvtpd_epi32(idx), 8));
	}
	_mm256_storeu_pd(out, z);
}
#endif

static _Atomic int simd_on = 1;

void model_simd(int on)
{
	atomic_store_explicit(&simd_on, on, memory_order_relaxed);
}

void model_score_n(const struct model *m, size_t n, const double *x,
		   size_t xstride, double *out, size_t ostride)
{
	const char *xp = (const char *)x;
	char *op = (char *)out;
	size_t i = 0;

#ifdef MODEL_X86
	if (m->kind == MODEL_GBDT &&
	    atomic_load_explicit(&simd_on, memory_order_relaxed) &&
	    __builtin_cpu_supports("avx2")) {
		for (; i + 4 <= n; i += 4) {
			const double *v[4];
			double z[4];

			for (int l = 0; l < 4; l++)
				v[l] = (const double *)(xp + (i + l) * xstride);
			trees_sum4(m, v, z);
			for (int l = 0; l < 4; l++)
				*(double *)(op + (i + l) * ostride) =
					squash(m->bias + z[l]);
		}
	}
#endif
	for (; i < n; i++)
		*(double *)(op + i * ostride) =
			model_score(m, (const double *)(xp + i * xstride));
}

double model_score(const struct model *m, const double *x)
{
	double z = m->bias;
	uint32_t i;

	if (m->kind == MODEL_GBDT)
		/* leaves within +-1e6 (model_load checks), at most
		 * MODEL_TREES_MAX of them: the sum stays finite; a NaN
		 * feature takes the "no" branch */
		z += trees_sum(m, x);
	else for (i = 0; i < m->nf; i++) {
		double t = m->w[i] * (x[m->feat[i]] - m->mean[i]) / m->scale[i];

		/* finite parameters can still overflow (a tiny scale, a huge
		 * weight); two opposite infinities would sum to NaN, which
		 * no ranking can sort. Clamp each term so the sum of at most
		 * FEAT_N stays finite; a NaN feature counts as no evidence. */
		if (t != t)
			t = 0;
		else if (t > 1e300)
			t = 1e300;
		else if (t < -1e300)
			t = -1e300;
		z += t;
	}
	return squash(z);
}

static json_object *field(json_object *o, const char *path, const char *name,
			  json_type t, struct err *e)
{
	json_object *f;

	if (!json_object_object_get_ex(o, name, &f)) {
		err_set(e, "%s: field \"%s\": missing", path, name);
		return NULL;
	}
	if (!json_object_is_type(f, t) &&
	    !(t == json_type_double && json_object_is_type(f, json_type_int))) {
		err_set(e, "%s: field \"%s\": expected %s", path, name,
			json_type_to_name(t));
		return NULL;
	}
	return f;
}

/* What each number of an array must be. */
enum num_rule {
	NUM_FINITE,
	NUM_POSITIVE,   /* finite and > 0 */
	NUM_LEAF,       /* finite, within +-1e6 */
	NUM_INDEX,      /* an integer in [0, nidx): an index into "features" */
};

/* o's member name, or NULL when o has none. */
static json_object *member(json_object *o, const char *name)
{
	json_object *x;

	return json_object_object_get_ex(o, name, &x) ? x : NULL;
}

/* The n numbers of array a (the field called label; NULL: missing) into
 * out, each checked by rule. count says what n counts, for the message. */
static int num_array(json_object *a, const char *path, const char *label,
		     const char *count, size_t n, double *out,
		     enum num_rule rule, uint32_t nidx, struct err *e)
{
	static const char *const must[] = {
		"must be finite", "must be a finite number > 0",
		"must be finite, within +-1e6",
	};
	json_object *x;
	size_t i;

	if (!a || !json_object_is_type(a, json_type_array))
		return err_set(e, "%s: field \"%s\": %s", path, label,
			       a ? "expected array" : "missing");
	if (json_object_array_length(a) != n)
		return err_set(e, "%s: field \"%s\": expected %zu %s, found %zu",
			       path, label, n, count, json_object_array_length(a));
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(a, i);
		if (rule == NUM_INDEX) {
			if (!json_object_is_type(x, json_type_int) ||
			    json_object_get_int64(x) < 0 || json_object_get_int64(x) >= (int64_t)nidx)
				return err_set(e, "%s: field \"%s[%zu]\": must be an index into \"features\" (0..%u)",
					       path, label, i, nidx - 1);
			out[i] = (double)json_object_get_int64(x);
			continue;
		}
		if (!json_object_is_type(x, json_type_double) &&
		    !json_object_is_type(x, json_type_int))
			return err_set(e, "%s: field \"%s[%zu]\": not a number",
				       path, label, i);
		out[i] = json_object_get_double(x);
		if (!isfinite(out[i]) || (rule == NUM_POSITIVE && !(out[i] > 0)) ||
		    (rule == NUM_LEAF && fabs(out[i]) > 1e6))
			return err_set(e, "%s: field \"%s[%zu]\": %s", path, label, i,
				       must[rule]);
	}
	return 0;
}

static int parse_trees(json_object *o, const char *path, struct model *m,
		       struct err *e)
{
	json_object *f, *tr;
	int64_t depth;
	size_t n, t, D;

	if (!(f = field(o, path, "depth", json_type_int, e)))
		return -1;
	depth = json_object_get_int64(f);
	if (depth < 1 || depth > MODEL_DEPTH_MAX)
		return err_set(e, "%s: field \"depth\": %lld is not in 1..%u", path,
			       (long long)depth, MODEL_DEPTH_MAX);
	D = (size_t)depth;
	if (!(f = field(o, path, "trees", json_type_array, e)))
		return -1;
	n = json_object_array_length(f);
	if (n < 1 || n > MODEL_TREES_MAX)
		return err_set(e, "%s: field \"trees\": expected 1..%u trees, found %zu",
			       path, MODEL_TREES_MAX, n);
	if (model_trees_alloc(m, (uint32_t)n, (uint32_t)D))
		return err_set(e, "%s: out of memory", path);
	for (t = 0; t < n; t++) {
		double sp[MODEL_DEPTH_MAX];
		char label[48];

		tr = json_object_array_get_idx(f, t);
		if (!json_object_is_type(tr, json_type_object))
			return err_set(e, "%s: field \"trees[%zu]\": expected object", path, t);
		snprintf(label, sizeof(label), "trees[%zu].split", t);
		if (num_array(member(tr, "split"), path, label, "feature indices (one per level)",
			      D, sp, NUM_INDEX, m->nf, e))
			return -1;
		for (size_t l = 0; l < D; l++)
			m->split[t * D + l] = (uint8_t)sp[l];
		snprintf(label, sizeof(label), "trees[%zu].threshold", t);
		if (num_array(member(tr, "threshold"), path, label, "numbers (one per level)",
			      D, m->thr + t * D, NUM_FINITE, 0, e))
			return -1;
		snprintf(label, sizeof(label), "trees[%zu].leaf", t);
		if (num_array(member(tr, "leaf"), path, label, "numbers (2^depth)",
			      (size_t)1 << D, m->leaf + (t << D), NUM_LEAF, 0, e))
			return -1;
	}
	return 0;
}

static int parse(json_object *o, const char *path, struct model *m,
		 struct err *e)
{
	json_object *f, *x;
	const char *s;
	size_t n, i, j;
	int id;

	if (!json_object_is_type(o, json_type_object))
		return err_set(e, "%s: not a JSON object", path);
	if (!(f = field(o, path, "format", json_type_string, e)))
		return -1;
	if (strcmp(json_object_get_string(f), "triad-model"))
		return err_set(e, "%s: field \"format\": \"%s\" is not \"triad-model\"",
			       path, json_object_get_string(f));
	if (!(f = field(o, path, "format_version", json_type_int, e)))
		return -1;
	if (json_object_get_int64(f) != MODEL_FORMAT_VERSION)
		return err_set(e, "%s: field \"format_version\": %lld is not supported (this build reads %d)",
			       path, (long long)json_object_get_int64(f),
			       MODEL_FORMAT_VERSION);
	if (!(f = field(o, path, "kind", json_type_string, e)))
		return -1;
	if (!strcmp(json_object_get_string(f), "logistic"))
		m->kind = MODEL_LOGISTIC;
	else if (!strcmp(json_object_get_string(f), "gbdt"))
		m->kind = MODEL_GBDT;
	else
		return err_set(e, "%s: field \"kind\": unknown model kind \"%s\" (logistic, gbdt)",
			       path, json_object_get_string(f));
	if (!(f = field(o, path, "name", json_type_string, e)))
		return -1;
	s = json_object_get_string(f);
	if (!model_label_ok(s, 1))
		return err_set(e, "%s: field \"name\": must be 1..%d printable ASCII characters without '@', '\"' or '\\'",
			       path, MODEL_NAME_MAX - 1);
	if (!(x = field(o, path, "version", json_type_string, e)))
		return -1;
	if (!model_label_ok(json_object_get_string(x), 0))
		return err_set(e, "%s: field \"version\": must be 1..%d printable ASCII characters without '\"' or '\\'",
			       path, MODEL_NAME_MAX - 1);
	model_set_name(m, s, json_object_get_string(x));
	if (!(f = field(o, path, "features", json_type_array, e)))
		return -1;
	n = json_object_array_length(f);
	if (n == 0 || n > FEAT_N)
		return err_set(e, "%s: field \"features\": expected 1..%d names, found %zu",
			       path, FEAT_N, n);
	m->nf = (uint32_t)n;
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(f, i);
		if (!json_object_is_type(x, json_type_string))
			return err_set(e, "%s: field \"features[%zu]\": not a string",
				       path, i);
		id = feat_lookup(json_object_get_string(x));
		if (id < 0)
			return err_set(e, "%s: field \"features[%zu]\": unknown feature \"%s\"",
				       path, i, json_object_get_string(x));
		for (j = 0; j < i; j++)
			if (m->feat[j] == id)
				return err_set(e, "%s: field \"features[%zu]\": \"%s\" listed twice",
					       path, i, json_object_get_string(x));
		m->feat[i] = (uint8_t)id;
	}
	if (m->kind == MODEL_GBDT) {
		if (parse_trees(o, path, m, e))
			return -1;
	} else if (num_array(member(o, "mean"), path, "mean", "numbers (one per feature)",
			     m->nf, m->mean, NUM_FINITE, 0, e) ||
		   num_array(member(o, "scale"), path, "scale", "numbers (one per feature)",
			     m->nf, m->scale, NUM_POSITIVE, 0, e) ||
		   num_array(member(o, "weights"), path, "weights", "numbers (one per feature)",
			     m->nf, m->w, NUM_FINITE, 0, e)) {
		return -1;
	}
	if (!(f = field(o, path, "bias", json_type_double, e)))
		return -1;
	m->bias = json_object_get_double(f);
	if (!isfinite(m->bias))
		return err_set(e, "%s: field \"bias\": must be finite", path);
	/* info is free-form training detail; only its "generation" is read */
	f = member(o, "info");
	if (f && json_object_is_type(f, json_type_object) &&
	    (x = member(f, "generation"))) {
		s = json_object_is_type(x, json_type_string) ? json_object_get_string(x) : NULL;
		for (n = 0; s && s[n] >= ' ' && s[n] <= '~'; n++)
			;
		if (!s || s[n] || !n || n >= MODEL_GEN_MAX)
			return err_set(e, "%s: field \"info.generation\": must be 1..%d printable ASCII characters",
				       path, MODEL_GEN_MAX - 1);
		memcpy(m->gen, s, n + 1);
	}
	return 0;
}

struct model *model_load(const char *path, struct err *e)
{
	struct model *m = NULL;
	json_object *o = NULL;
	FILE *f = NULL;
	char *text = NULL;
	const char *nul;
	size_t len = 0, cap = 0, got;
	struct json_tokener *tok = NULL;
	enum json_tokener_error jerr;

	if (!(f = fopen(path, "rb"))) {
		err_set(e, "%s: cannot open: %m", path);
		goto fail;
	}
	for (;;) {
		if (mem_grow((void **)&text, &cap, len + 4097, 1)) {
			err_set(e, "%s: out of memory", path);
			goto fail;
		}
		got = fread(text + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
		if (len > MODEL_FILE_MAX) {
			err_set(e, "%s: larger than 16 MiB, not a model file", path);
			goto fail;
		}
	}
	if (ferror(f)) {
		err_set(e, "%s: read error: %m", path); /* EISDIR for a directory */
		goto fail;
	}
	text[len] = '\0';
	/* json-c stops at a NUL as at the end of its input, and the trailing
	 * text check below reads a C string: whatever follows a NUL would
	 * pass unseen. A model file is text; say where (1-based, as event
	 * parse errors count bytes) */
	if ((nul = memchr(text, '\0', len))) {
		err_set(e, "%s: NUL byte at byte %zu, not a model file", path,
			(size_t)(nul - text) + 1);
		goto fail;
	}
	if (!(tok = json_tokener_new())) {
		err_set(e, "%s: out of memory", path);
		goto fail;
	}
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		err_set(e, "%s: not valid JSON (%s)", path,
			jerr == json_tokener_continue ? "unexpected end of file"
						      : json_tokener_error_desc(jerr));
		goto fail;
	}
	if ((size_t)json_tokener_get_parse_end(tok) < len &&
	    text[json_tokener_get_parse_end(tok) + strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")]) {
		err_set(e, "%s: trailing text after the JSON object", path);
		goto fail;
	}
	if (!(m = mem_calloc(1, sizeof(*m)))) {
		err_set(e, "%s: out of memory", path);
		goto fail;
	}
	if (parse(o, path, m, e))
		goto fail;
	goto done;
fail:
	model_free(m);
	m = NULL;
done:
	json_object_put(o);
	if (tok)
		json_tokener_free(tok);
	if (f)
		fclose(f);
	free(text);
	return m;
}

static json_object *darray(const double *x, uint32_t n)
{
	json_object *a = json_object_new_array();
	uint32_t i;

	for (i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_double(x[i]));
	return a;
}

int model_save(const struct model *m, const char *path, const char *info_json,
	       struct err *e)
{
	json_object *o = json_object_new_object(), *a, *info = NULL;
	char tmp[4096];
	const char *s;
	FILE *f = NULL;
	struct stat st;
	uint32_t i;
	int rc = -1;

	/* rename(2) would put a regular file in the place of a device
	 * (-o /dev/null as root) or a FIFO */
	if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
		json_object_put(o);
		return err_set(e, "%s: not a regular file (a model is written "
			       "beside it and renamed over it)", path);
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		json_object_put(o);
		return err_set(e, "%.200s...: path too long", path);
	}
	if (!o)
		goto oom;
	json_object_object_add(o, "format", json_object_new_string("triad-model"));
	json_object_object_add(o, "format_version", json_object_new_int(MODEL_FORMAT_VERSION));
	json_object_object_add(o, "name", json_object_new_string(m->name));
	json_object_object_add(o, "version", json_object_new_string(m->version));
	json_object_object_add(o, "kind", json_object_new_string(
				       m->kind == MODEL_GBDT ? "gbdt" : "logistic"));
	if (!(a = json_object_new_array()))
		goto oom;
	for (i = 0; i < m->nf; i++)
		json_object_array_add(a, json_object_new_string(feat_name(m->feat[i])));
	json_object_object_add(o, "features", a);
	if (m->kind == MODEL_GBDT) {
		json_object_object_add(o, "depth", json_object_new_int((int)m->depth));
		if (!(a = json_object_new_array()))
			goto oom;
		json_object_object_add(o, "trees", a);
		for (i = 0; i < m->ntrees; i++) {
			json_object *t = json_object_new_object(), *sp = json_object_new_array();
			size_t D = m->depth;

			if (!t || !sp) {
				json_object_put(t);
				json_object_put(sp);
				goto oom;
			}
			for (size_t j = 0; j < D; j++)
				json_object_array_add(sp, json_object_new_int(m->split[i * D + j]));
			json_object_object_add(t, "split", sp);
			json_object_object_add(t, "threshold", darray(m->thr + i * D, (uint32_t)D));
			json_object_object_add(t, "leaf", darray(m->leaf + ((size_t)i << D), 1u << D));
			json_object_array_add(a, t);
		}
	} else {
		json_object_object_add(o, "mean", darray(m->mean, m->nf));
		json_object_object_add(o, "scale", darray(m->scale, m->nf));
		json_object_object_add(o, "weights", darray(m->w, m->nf));
	}
	json_object_object_add(o, "bias", json_object_new_double(m->bias));
	if (info_json && (info = json_tokener_parse(info_json)))
		json_object_object_add(o, "info", info);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_SPACED |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!(f = fopen(tmp, "w"))) {
		err_set(e, "%s: cannot write: %m", tmp);
		goto out;
	}
	if (fputs(s, f) < 0 || fputc('\n', f) < 0 || fclose(f)) {
		f = NULL;
		err_set(e, "%s: write failed: %m", tmp);
		unlink(tmp);
		goto out;
	}
	f = NULL;
	if (rename(tmp, path)) {
		err_set(e, "%s: cannot rename into place: %m", path);
		unlink(tmp);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	err_set(e, "%s: out of memory", path);
out:
	json_object_put(o);
	return rc;
}
