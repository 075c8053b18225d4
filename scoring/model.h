/*
 * model.h - ranking models over feat.h features: logistic regression with
 * the feature normalisation stored inside, or gradient-boosted oblivious
 * trees.
 *
 * What always holds:
 * - A model names its features (by feat_name), so a file never depends on
 *   the order of enum feat_id; a file naming a feature this build does not
 *   know is refused.
 * - "logistic": score = sigmoid(bias + sum_i w_i (x_f(i) - mean_i) / scale_i);
 *   "gbdt": score = sigmoid(bias + sum over trees t of leaf_t[index_t(x)]),
 *   where an oblivious tree of depth D asks one question per level, the
 *   same for every node of the level: bit j of the index (level 0 the top
 *   bit) is x_f(split_t[j]) > threshold_t[j] (a NaN feature answers no).
 *   Either way in (0,1): always positive, so every candidate a model sees
 *   is ranked.
 * - A loaded model is immutable: any number of threads may score with it.
 *
 * File (JSON, json-c):
 *   {"format":"triad-model","format_version":1,"name":"...","version":"...",
 *    "kind":"logistic","features":["mutual",...],"mean":[...],
 *    "scale":[...],"weights":[...],"bias":B, "info":{...anything...}}
 * mean/scale/weights have one finite number per feature, scale > 0.
 *   {..., "kind":"gbdt","features":[...],"depth":D,"bias":B,
 *    "trees":[{"split":[D feature indices],"threshold":[D numbers],
 *              "leaf":[2^D numbers]}, ...], "info":{...}}
 * split_t[j] indexes "features"; every number finite; 1 <= D <= 8,
 * 1..MODEL_TREES_MAX trees.
 */
#ifndef TRIAD_MODEL_H
#define TRIAD_MODEL_H

#include <stdint.h>

#include "err.h"
#include "feat.h"

#define MODEL_FORMAT_VERSION 1
#define MODEL_NAME_MAX 64
#define MODEL_GEN_MAX 192 /* room for info.generation, with its '\0' */

/* 1 when s can be a model's name (is_name) or version: 1 to
 * MODEL_NAME_MAX - 1 printable ASCII characters (space to '~') other than
 * '"' and '\\', and for a name not '@' ("NAME@VERSION" names a model in
 * answers, logs and metric labels, which print it as it is). */
int model_label_ok(const char *s, int is_name);
#define MODEL_DEPTH_MAX 8u
#define MODEL_TREES_MAX 1000u

enum model_kind { MODEL_LOGISTIC, MODEL_GBDT };

struct model {
	enum model_kind kind;
	char name[MODEL_NAME_MAX];
	char version[MODEL_NAME_MAX];
	char full[2 * MODEL_NAME_MAX + 2]; /* "name@version" */
	uint32_t nf;                       /* features used, 1..FEAT_N */
	uint8_t feat[FEAT_N];              /* enum feat_id of each */
	double mean[FEAT_N], scale[FEAT_N], w[FEAT_N], bias; /* logistic (bias: both) */
	/* gbdt: ntrees trees of depth `depth`; tree t's levels are
	 * split[t * depth + j] (an index into feat) and thr[t * depth + j],
	 * its leaves leaf[t << depth ...]. One allocation at split, owned by
	 * the model (model_release). */
	uint32_t ntrees, depth;
	uint8_t *split;
	double *thr, *leaf;
	int builtin;                       /* 1: model_default(), never freed */
	/* the candidate generation its features were computed with, as
	 * rec_params_describe (recommend.h) words it: the file's
	 * info.generation, "" when the file does not say (files from before
	 * 7 Dec 2026, or written by hand) */
	char gen[MODEL_GEN_MAX];
};

/* Room for ntrees trees of depth depth in m (kind set to MODEL_GBDT, the
 * arrays zeroed). 0, or -1 when out of memory. */
int model_trees_alloc(struct model *m, uint32_t ntrees, uint32_t depth);

/* Free what m owns (its trees), leaving m itself: for models the caller
 * holds by value. model_free calls it. */
void model_release(struct model *m);

/* A 32-bit digest of m's fitted numbers (features, weights or trees): a
 * retrained model gets a new version, the same fit the same one. */
uint32_t model_digest(const struct model *m);

/* Read and check a model file. NULL with e = "PATH: field \"F\": reason"
 * (or "PATH: reason") on any error, among them a NUL byte anywhere in the
 * file ("PATH: NUL byte at byte N", counted from 1). Caller model_free()s
 * it. */
struct model *model_load(const char *path, struct err *e);

/* The built-in models. model_default: for graphs whose edges carry times
 * (messages, interactions), fitted on data/CollegeMsg.txt. Its mutual
 * connection weights are negative: in a message network the new contact
 * is more often a busy member than a friend's friend. So a graph without
 * times (a friendship graph loaded from a file without a ts column) gets
 * model_default_static, fitted on data/facebook_combined.txt with its
 * pairs in a random order (eval.h, EVAL_SPLIT_RANDOM), which ranks by
 * shared friends. rec_builtin_model (recommend.h) chooses between them. */
const struct model *model_default(void);
const struct model *model_default_static(void);

/* Free a loaded model and its trees. NULL and model_default() are ignored. */
void model_free(struct model *m);

/* The FEAT_BIT()s of the features m reads. O(nf). */
uint32_t model_features(const struct model *m);

/* "NAME@VERSION"; valid while m is. */
const char *model_name(const struct model *m);

/* The model's score of features x[FEAT_N], in (0, 1). O(nf) for a
 * logistic model, O(ntrees * depth) for trees. */
double model_score(const struct model *m, const double *x);

/*
 * model_score of n feature vectors at once: the vector of item i starts
 * xstride bytes after item i - 1's (x: the first), and its score goes to
 * out, ostride bytes apart likewise. Bit for bit model_score's numbers.
 * Trees are walked for four vectors at a time on CPUs with AVX2 (checked
 * at run time; elsewhere one at a time).
 */
void model_score_n(const struct model *m, size_t n, const double *x,
		   size_t xstride, double *out, size_t ostride);

/* 0 to make model_score_n walk trees one vector at a time even where
 * AVX2 is there (for tests and measurement), 1 for the default. */
void model_simd(int on);

/* Fill m->full from name and version (after setting them by hand). */
void model_set_name(struct model *m, const char *name, const char *version);

/* Write m as a model file (atomically: temp file then rename).
 * info_json (may be NULL) is a JSON object text stored under "info".
 * 0, or -1 with e naming the path; an existing path that is not a
 * regular file (a device such as /dev/null, a FIFO) is refused, as the
 * rename would replace it. */
int model_save(const struct model *m, const char *path, const char *info_json,
	       struct err *e);

#endif
