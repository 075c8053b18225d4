/*
 * train.h - fitting a ranking model on the training period of an event
 * file, never looking past the split time.
 *
 * How (all deterministic):
 * 1. Split the events as eval does (split time T); keep events ts <= T.
 *    (With EVAL_SPLIT_RANDOM, for a graph without times, eval first puts
 *    them in a random order; the levels below then split in that order,
 *    without the trend table, and no feature set has a time feature.)
 * 2. Split that period again with the same fraction (T2), and once more
 *    (T3 within ts <= T2). Each level gives a graph and the pairs that
 *    appear after it: level 3 (graph at T3, pairs in (T3, T2]) and level 2
 *    (graph at T2, pairs in (T2, T]).
 * 3. For each judged member of a level, the serving pipeline (rec_gather
 *    with the serving defaults, now = that level's split time) gives the
 *    candidates a served answer would rank, with their features; a
 *    candidate is positive when it is one of the member's new pairs.
 * 4. Each configuration of a small grid (model kind, feature set, the
 *    kind's settings, negatives per member) is judged by recall@k in two
 *    windows: fitted on level 3 and judged on level 2, and fitted on level
 *    4 (the events up to T3, split once more) and judged on level 3; the
 *    mean decides. Too little data for level 4 leaves the first window
 *    alone. The best configuration is refitted on level 2 and returned.
 * Logistic regression by Newton's method with L2 on the weights (not the
 * bias), features standardised by the fitting data's mean and deviation;
 * or boosted oblivious trees (train_gbdt). Examples are gathered and the
 * grid fitted on several threads (par.h), with the same result on any
 * number of them.
 */
#ifndef TRIAD_TRAIN_H
#define TRIAD_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "eval.h"
#include "graph.h"
#include "model.h"

struct train_opts {
	double split;          /* fraction, as eval --split */
	enum eval_split_how how; /* as eval: FRACTION (split), TIME (split_time)
				  * or RANDOM (split, in a random order of the
				  * pairs; the trend table and the time
				  * features are then left out) */
	uint32_t split_time;
	uint32_t k;            /* recall@k used to choose the configuration */
	uint32_t max_members;  /* judged members sampled per level (0: all) */
	const char *name;      /* model name (NULL: "lr" or "gbdt", by kind) */
	const char *version;   /* model version (NULL: model_digest of the fit,
				* as 8 hex digits) */
	unsigned sets;         /* feature sets the grid may choose (TRAIN_SET_*
				* bits; 0: all of them) */
	unsigned kinds;        /* model kinds the grid may choose (TRAIN_KIND_*
				* bits; 0: both) */
	unsigned threads;      /* threads fitting the grid (0: one per online
				* core, at most 8); the model does not depend
				* on it */
};

enum { TRAIN_KIND_LOGISTIC = 1u, TRAIN_KIND_GBDT = 2u };

/* The grid's feature sets: every feature, all but the time features (a
 * served answer then needs no list merge per candidate: about a third of
 * the cost, see README), all but the walk and PPR scores. */
enum { TRAIN_SET_ALL = 1u, TRAIN_SET_NO_TIME = 2u, TRAIN_SET_NO_WALK = 4u };

/* Bits of a comma-separated list of set names ("all", "no-time",
 * "no-walk") into *sets; -1 with e naming the unknown one. */
int train_sets_parse(const char *list, unsigned *sets, struct err *e);

/* split 0.8, k 10, max_members 4000, name NULL (by the kind chosen: "lr"
 * or "gbdt"), version NULL (the fit's digest). */
void train_opts_default(struct train_opts *o);

/* What train_fit did, for the report and the model's "info". */
struct train_info {
	uint32_t split_time, t2, t3;
	uint64_t rows2, pos2, members2; /* level 2 examples, positives, members */
	uint64_t targets2;              /* level 2 new pairs of those members (pos2 of
					 * them among the candidates) */
	uint64_t rows3, pos3, members3;
	uint32_t t4;                    /* level 4's split time (0: none) */
	uint32_t windows;               /* validation windows used (1 or 2) */
	double val_recall;              /* chosen configuration's recall@k, mean over the windows */
	double val_recall_aa;           /* Adamic-Adar on the same candidates, same mean */
	double val_recall2, val_recall3;       /* chosen: level 2 (fit on 3), level 3 (fit on 4) */
	double val_recall_aa2, val_recall_aa3; /* Adamic-Adar on each window */
	double l2;                      /* chosen L2 strength */
	uint32_t negs;                  /* chosen negatives per member */
	const char *feature_set;        /* chosen feature set's name */
	enum model_kind kind;           /* chosen model kind */
	uint32_t depth, trees;          /* gbdt: chosen shape */
};

/*
 * Boosted oblivious trees (model.h kind "gbdt") fitted to nu rows of nf
 * features (x, row-major; NaN allowed) with 0/1 labels y, into m's trees
 * and bias (m->feat is the caller's to fill). Logistic loss, ntrees trees
 * of depth `depth`, L2 l2 on the leaves, shrinkage 0.1, cut points at up to
 * 32 quantiles per feature. O(ntrees * depth * nu * nf). Deterministic.
 * Every number it fits is finite, so model_save writes a file model_load
 * takes (a level with no feature of two values asks x > DBL_MAX).
 * 0, or -1 with e filled (one class only, bad shape, out of memory).
 */
int train_gbdt(const float *x, const uint8_t *y, size_t nu, uint32_t nf,
	       uint32_t ntrees, uint32_t depth, double l2, struct model *m,
	       struct err *e);

/* Called now and then with a phase name (may be NULL). */
typedef void (*train_progress_fn)(void *ctx, const char *phase);

/*
 * Fit a model on events ev[0..n) into *out (builtin = 0). Returns 0, or -1
 * with e filled (too little data before the split, out of memory).
 */
int train_fit(const struct graph_event *ev, size_t n,
	      const struct train_opts *o, train_progress_fn progress,
	      void *pctx, struct model *out, struct train_info *info,
	      struct err *e);

/* The model's "info" JSON object text for info (into buf, NUL-ended). */
void train_info_json(const struct train_info *info, char *buf, size_t len);

#endif
