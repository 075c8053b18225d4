/* cmd_train.c - `triad train`: fit the ranking model on an event file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "load.h"
#include "model.h"
#include "train.h"

static const char train_usage[] =
	"usage: triad train EVENTS -o MODEL [--split FRACTION | --split-time T]\n"
	"                   [--random-order] [--format F] [--name NAME] [--version V]\n"
	"                   [--features SETS] [--kind K] [--threads N] [-q|--quiet]\n"
	"\n"
	"Fit the ranking model (logistic regression or boosted trees over the\n"
	"serving features) on the events up to the split time, exactly as\n"
	"`triad eval` splits them (default --split 0.8), so `train` then\n"
	"`eval --model` on the same file and split never sees the test period.\n"
	"The training period is split again inside to pick the model kind,\n"
	"features and regularisation. Writes MODEL (JSON).\n"
	"--random-order is for a graph without times (such as a file without a\n"
	"ts column): the pairs are put in a fixed random order first, as\n"
	"`triad eval --random-order` does, so the split holds out a random\n"
	"part of the pairs; the time features and the trend are left out.\n"
	"--kind logistic|gbdt|auto limits the model kinds (default auto: the\n"
	"inner validation chooses). Trees make a served answer slower (about\n"
	"0.08 ms more on CollegeMsg than logistic regression on a CPU with\n"
	"AVX2, 0.16-0.36 ms without). The grid is\n"
	"fitted on --threads threads (default: one per core, 1..8); the model\n"
	"does not depend on it.\n"
	"--name defaults to the model's kind (lr or gbdt), --version to a hash\n"
	"of the fitted numbers. --features limits the feature sets the inner\n"
	"validation may choose from (comma list of all, no-time, no-walk;\n"
	"default all three): no-time models serve about three times faster (no\n"
	"list merge per candidate).\n"
	"--format F reads EVENTS as F (edges, csv, ndjson, graphml, gml, pajek,\n"
	"ncol, lgl; default: from the extension, as `triad load` does).\n";

static void progress(void *ctx, const char *phase)
{
	(void)ctx;
	fprintf(stderr, "triad train: %s\n", phase);
}

static int parse_frac(const char *s, double *out)
{
	return cmd_real(s, out) || !(*out > 0 && *out <= 1) ? -1 : 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (cmd_uint(s, UINT32_MAX, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int cmd_train(int argc, char **argv)
{
	static const char *const once[] = { "-o", "--split", "--split-time",
					    "--format", "--name", "--version",
					    "--features", "--kind",
					    "--threads", NULL };
	const char *in = NULL, *outp = NULL, *fmt = NULL;
	struct train_opts o;
	struct train_info info;
	struct load_opts lo = { 0 };
	struct event_list l = { 0 };
	struct model m;
	struct stat si, so;
	struct err e = { "" };
	char infojson[1024];
	uint32_t f;
	int quiet = !isatty(2), i, rc = 1, have_frac = 0, random = 0;
	unsigned seen = 0;

	memset(&m, 0, sizeof(m));
	train_opts_default(&o);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(train_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			quiet = 1;
		} else if (!strcmp(a, "--random-order")) {
			random = 1;
		} else if (!strcmp(a, "-o") || !strcmp(a, "--split") ||
			   !strcmp(a, "--split-time") || !strcmp(a, "--format") ||
			   !strcmp(a, "--name") || !strcmp(a, "--version") ||
			   !strcmp(a, "--features") || !strcmp(a, "--kind") ||
			   !strcmp(a, "--threads")) {
			if (!next) {
				return cmd_usage("train", "option %s needs a value",
					a);
			}
			if (cmd_once("train", a, once, &seen))
				return 2;
			i++;
			if (!strcmp(a, "-o")) {
				outp = next;
			} else if (!strcmp(a, "--split")) {
				have_frac = 1;
				if (parse_frac(next, &o.split)) {
					return cmd_usage("train", "--split "
						"\"%s\" is not a fraction "
						"in (0, 1]", next);
				}
			} else if (!strcmp(a, "--split-time")) {
				if (parse_u32(next, &o.split_time)) {
					return cmd_usage("train", "--split-time "
						"\"%s\" is not a timestamp",
						next);
				}
				o.how = EVAL_SPLIT_TIME;
			} else if (!strcmp(a, "--format")) {
				fmt = next;
			} else if (!strcmp(a, "--threads")) {
				if (parse_u32(next, &f) || f < 1 || f > 8) {
					return cmd_usage("train", "--threads "
						"\"%s\" is not a number "
						"from 1 to 8", next);
				}
				o.threads = f;
			} else if (!strcmp(a, "--kind")) {
				if (!strcmp(next, "logistic"))
					o.kinds = TRAIN_KIND_LOGISTIC;
				else if (!strcmp(next, "gbdt"))
					o.kinds = TRAIN_KIND_GBDT;
				else if (!strcmp(next, "auto"))
					o.kinds = 0;
				else {
					return cmd_usage("train", "--kind "
						"\"%s\" is not logistic, "
						"gbdt or auto", next);
				}
			} else if (!strcmp(a, "--features")) {
				if (train_sets_parse(next, &o.sets, &e)) {
					return cmd_usage("train", "--features: "
						"%s", e.msg);
				}
			} else if (!strcmp(a, "--name")) {
				if (!model_label_ok(next, 1)) {
					return cmd_usage("train", "--name "
						"\"%s\" must be 1..%d "
						"printable ASCII characters "
						"without '@', '\"' or '\\'",
						next, MODEL_NAME_MAX - 1);
				}
				o.name = next;
			} else {
				if (!model_label_ok(next, 0)) {
					return cmd_usage("train", "--version "
						"\"%s\" must be 1..%d "
						"printable ASCII characters "
						"without '\"' or '\\'", next,
						MODEL_NAME_MAX - 1);
				}
				o.version = next;
			}
		} else if (a[0] == '-' && a[1]) {
			return cmd_usage("train", "unknown option \"%s\"", a);
		} else if (!in) {
			in = a;
		} else {
			return cmd_usage("train", "one EVENTS file only "
				"(\"%s\")", a);
		}
	}
	if (have_frac && o.how == EVAL_SPLIT_TIME) {
		return cmd_usage("train", "--split and --split-time are "
			"alternatives; give one");
	}
	if (random && o.how == EVAL_SPLIT_TIME) {
		return cmd_usage("train", "--split-time does not go with "
			"--random-order (its times are the order's); give "
			"--split");
	}
	if (random)
		o.how = EVAL_SPLIT_RANDOM;
	if (!in || !outp || !*outp) {
		return cmd_usage("train", "%s", !in ? "missing EVENTS file"
			: !outp ? "missing -o MODEL" : "-o MODEL is empty");
	}
	if (fmt && !load_format_valid(fmt)) {
		return cmd_usage("train", "unknown format \"%s\"", fmt);
	}
	if (cmd_format_known("train", in, fmt))
		return 2;
	/* before the fit, which may take minutes: the model would be
	 * renamed over the events (or over a device, as model_save says) */
	if (!stat(outp, &so) &&
	    (!S_ISREG(so.st_mode) || (!stat(in, &si) &&
				      si.st_dev == so.st_dev &&
				      si.st_ino == so.st_ino))) {
		return cmd_usage("train", "-o \"%s\" %s", outp,
			S_ISREG(so.st_mode) ? "is the EVENTS file"
			: "is not a regular file (the model is written beside "
			  "it and renamed over it)");
	}
	lo.format = fmt;
	lo.quiet = quiet;
	if (!quiet)
		fprintf(stderr, "triad train: reading %s\n", in);
	if (load_events(in, &lo, &l, &e)) {
		fprintf(stderr, "triad train: %s\n", e.msg);
		goto out;
	}
	if (train_fit(l.ev, l.n, &o, quiet ? NULL : progress, NULL, &m, &info, &e)) {
		fprintf(stderr, "triad train: %s: %s\n", in, e.msg);
		goto out;
	}
	train_info_json(&info, infojson, sizeof(infojson));
	if (model_save(&m, outp, infojson, &e)) {
		fprintf(stderr, "triad train: %s\n", e.msg);
		goto out;
	}
	printf("model %s -> %s\n", model_name(&m), outp);
	printf("split time %u%s; inner splits %u, %u", info.split_time,
	       random ? " (of the random order)" : "", info.t2, info.t3);
	if (info.windows == 2)
		printf(" and %u", info.t4);
	printf("\n");
	printf("fitted on %" PRIu64 " candidates of %" PRIu64 " members (%" PRIu64 " positive: the candidates held %.1f%% of the %" PRIu64 " new pairs)\n",
	       info.rows2, info.members2, info.pos2,
	       info.targets2 ? 100.0 * (double)info.pos2 / (double)info.targets2 : 0.0,
	       info.targets2);
	if (info.kind == MODEL_GBDT)
		printf("chosen: boosted trees (%u of depth %u), features %s, %u negatives per member; validation recall@%u %.4f (adamic-adar %.4f)",
		       info.trees, info.depth, info.feature_set, info.negs, o.k,
		       info.val_recall, info.val_recall_aa);
	else
		printf("chosen: logistic regression, features %s, l2 %g, %u negatives per member; validation recall@%u %.4f (adamic-adar %.4f)",
		       info.feature_set, info.l2, info.negs, o.k, info.val_recall,
		       info.val_recall_aa);
	if (info.windows == 2)
		printf(", mean of two windows: %.4f (%.4f) and %.4f (%.4f)",
		       info.val_recall2, info.val_recall_aa2, info.val_recall3,
		       info.val_recall_aa3);
	printf("\n");
	if (model_features(&m) & FEAT_TIME)
		printf("note: the model uses time features, so a served answer reads one list per candidate (about three times the cost of a no-time model on a large graph; --features no-time fits one)\n");
	rc = 0;
out:
	model_release(&m);
	event_list_release(&l);
	return rc;
}
