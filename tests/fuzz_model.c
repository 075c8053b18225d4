/*
 * fuzz_model.c - model_load (scoring/model.h) on an arbitrary file.
 * Checks: never crashes; a refused file has a message; an accepted model
 * has 1..FEAT_N distinct known features, finite parameters, scale > 0
 * (logistic) or 1..MODEL_TREES_MAX trees of depth 1..MODEL_DEPTH_MAX whose
 * questions name its features and whose leaves are within +-1e6 (trees),
 * a NUL-terminated name, and scores every input in (0, 1).
 */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "model.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	char path[256];
	struct err e = { "" };
	struct model *m;
	double x[FEAT_N];
	uint32_t i, j;

	if (!fuzz_file("model", data, size, path, sizeof(path)))
		return 0;
	m = model_load(path, &e);
	unlink(path);
	if (!m) {
		FUZZ_REQUIRE(e.msg[0] != '\0');
		return 0;
	}
	FUZZ_REQUIRE(m->nf >= 1 && m->nf <= FEAT_N);
	FUZZ_REQUIRE(memchr(m->name, '\0', sizeof(m->name)));
	FUZZ_REQUIRE(memchr(m->version, '\0', sizeof(m->version)));
	FUZZ_REQUIRE(memchr(model_name(m), '\0', sizeof(m->full)));
	for (i = 0; i < m->nf; i++) {
		FUZZ_REQUIRE(m->feat[i] < FEAT_N);
		for (j = 0; j < i; j++)
			FUZZ_REQUIRE(m->feat[i] != m->feat[j]);
		if (m->kind == MODEL_LOGISTIC) {
			FUZZ_REQUIRE(isfinite(m->mean[i]) && isfinite(m->w[i]));
			FUZZ_REQUIRE(isfinite(m->scale[i]) && m->scale[i] > 0);
		}
	}
	if (m->kind == MODEL_GBDT) {
		FUZZ_REQUIRE(m->ntrees >= 1 && m->ntrees <= MODEL_TREES_MAX);
		FUZZ_REQUIRE(m->depth >= 1 && m->depth <= MODEL_DEPTH_MAX);
		for (i = 0; i < m->ntrees * m->depth; i++)
			FUZZ_REQUIRE(m->split[i] < m->nf && isfinite(m->thr[i]));
		for (i = 0; i < m->ntrees << m->depth; i++)
			FUZZ_REQUIRE(isfinite(m->leaf[i]) && fabs(m->leaf[i]) <= 1e6);
	} else {
		FUZZ_REQUIRE(m->kind == MODEL_LOGISTIC && m->ntrees == 0);
	}
	FUZZ_REQUIRE(isfinite(m->bias));
	for (i = 0; i < FEAT_N; i++)
		x[i] = (double)i;
	{
		double s = model_score(m, x), xs[5][FEAT_N], sn[5];

		FUZZ_REQUIRE(s >= 0.0 && s <= 1.0);
		/* the batch path (four at once with AVX2) gives the same bits,
		 * here on five copies with one NaN feature in two of them */
		for (j = 0; j < 5; j++)
			memcpy(xs[j], x, sizeof(x));
		xs[1][FEAT_MUTUAL] = xs[4][FEAT_TREND] = NAN;
		model_score_n(m, 5, xs[0], sizeof(xs[0]), sn, sizeof(sn[0]));
		for (j = 0; j < 5; j++) {
			double want = model_score(m, xs[j]);

			FUZZ_REQUIRE(memcmp(&want, &sn[j], sizeof(want)) == 0);
		}
	}
	model_free(m);
	return 0;
}
