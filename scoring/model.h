/*
 * model.h - ranking models: logistic regression over feat.h features, with
 * the feature normalisation stored inside the model.
 *
 * What always holds:
 * - A model names its features (by feat_name), so a file never depends on
 *   the order of enum feat_id; a file naming a feature this build does not
 *   know is refused.
 * - score = sigmoid(bias + sum_i w_i (x_f(i) - mean_i) / scale_i), in (0,1);
 *   always positive, so every candidate a model sees is ranked.
 * - A loaded model is immutable: any number of threads may score with it.
 *
 * File (JSON, json-c):
 *   {"format":"triad-model","format_version":1,"name":"...","version":"...",
 *    "kind":"logistic","features":["mutual",...],"mean":[...],
 *    "scale":[...],"weights":[...],"bias":B, "info":{...anything...}}
 * mean/scale/weights have one finite number per feature, scale > 0.
 */
#ifndef TRIAD_MODEL_H
#define TRIAD_MODEL_H

#include <stdint.h>

#include "err.h"
#include "feat.h"

#define MODEL_FORMAT_VERSION 1
#define MODEL_NAME_MAX 64

struct model {
	char name[MODEL_NAME_MAX];
	char version[MODEL_NAME_MAX];
	char full[2 * MODEL_NAME_MAX + 2]; /* "name@version" */
	uint32_t nf;                       /* features used, 1..FEAT_N */
	uint8_t feat[FEAT_N];              /* enum feat_id of each */
	double mean[FEAT_N], scale[FEAT_N], w[FEAT_N], bias;
	int builtin;                       /* 1: model_default(), never freed */
};

/* Read and check a model file. NULL with e = "PATH: field \"F\": reason"
 * (or "PATH: reason") on any error. Caller model_free()s it. */
struct model *model_load(const char *path, struct err *e);

/* The built-in default (a model trained on data/CollegeMsg.txt). */
const struct model *model_default(void);

/* Free a loaded model. NULL and model_default() are ignored. */
void model_free(struct model *m);

/* The FEAT_BIT()s of the features m reads. O(nf). */
uint32_t model_features(const struct model *m);

/* "NAME@VERSION"; valid while m is. */
const char *model_name(const struct model *m);

/* The model's score of features x[FEAT_N], in (0, 1). O(nf). */
double model_score(const struct model *m, const double *x);

/* Fill m->full from name and version (after setting them by hand). */
void model_set_name(struct model *m, const char *name, const char *version);

/* Write m as a model file (atomically: temp file then rename).
 * info_json (may be NULL) is a JSON object text stored under "info".
 * 0, or -1 with e naming the path. */
int model_save(const struct model *m, const char *path, const char *info_json,
	       struct err *e);

#endif
