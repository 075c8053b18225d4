/* cmd_eval.c - `triad eval`: the temporal hold-out evaluation. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "eval.h"
#include "load.h"
#include "model.h"
#include "recommend.h"
#include "train.h"

static const char eval_usage[] =
	"usage: triad eval EVENTS [--model MODEL] [--split FRACTION | --split-time T]\n"
	"                  [--random-order] [-k N] [--methods LIST] [--json] [--format F]\n"
	"                  [--threads N] [-q|--quiet]\n"
	"\n"
	"Temporal hold-out evaluation: the graph of the pairs first\n"
	"seen up to the split time (default: the ts of event floor(0.8 n)) ranks\n"
	"for every member who gains edges after it. Methods (default all):\n"
	"cn, aa, jaccard, ra, ppr, model. Without --model, the model is fitted\n"
	"first on the same training period, as `triad train` with the same\n"
	"split would fit it (the test period unseen); when it cannot be (too\n"
	"little data before the split), the model row says \"not fitted\" (--json\n"
	"leaves it out), stderr says why and the exit status is still 0.\n"
	"--model builtin uses the built-in model (fitted on CollegeMsg at split\n"
	"0.8; with --random-order the one fitted on facebook's sample;\n"
	"./builtin names a file of that name).\n"
	"--random-order is for a graph without times (such as a file without a\n"
	"ts column, whose edges all get the time of loading): the pairs are put\n"
	"in a fixed random order first and stamped 1 s apart in it, so the split\n"
	"holds out a random part (1 - FRACTION) of the pairs instead of the\n"
	"latest; the trend table and the time features are left out.\n"
	"Prints recall@k, precision@k, MRR and NDCG@k per method (k default 10).\n"
	"Members are ranked on --threads threads (default: one per core, 1..16);\n"
	"the figures do not depend on how many.\n"
	"--format F reads EVENTS as F (edges, csv, ndjson, graphml, gml, pajek,\n"
	"ncol, lgl; default: from the extension, as `triad load` does).\n";

static void progress(void *ctx, uint64_t done, uint64_t total)
{
	(void)ctx;
	fprintf(stderr, "\rtriad eval: %" PRIu64 "/%" PRIu64 " members", done, total);
}

static void train_progress(void *ctx, const char *phase)
{
	(void)ctx;
	fprintf(stderr, "triad eval: fitting the model: %s\n", phase);
}

/*
 * No --model: fit one on the training period of these events, as `triad
 * train` with the same split and k would (the same model, version
 * included), into *fit. 0, or -1 with e filled; *fit is then untouched.
 */
static int fit_model(const struct event_list *l, double split,
		     enum eval_split_how how,
		     uint32_t split_time, uint32_t k, unsigned threads, int quiet,
		     struct model *fit, struct err *e)
{
	struct train_opts o;
	struct train_info info;
	struct model m;

	train_opts_default(&o);
	o.split = split;
	o.how = how;
	o.split_time = split_time;
	o.k = k;
	o.threads = threads > 8 ? 8 : threads;
	if (train_fit(l->ev, l->n, &o, quiet ? NULL : train_progress, NULL, &m,
		      &info, e)) {
		model_release(&m);
		return -1;
	}
	*fit = m;
	return 0;
}

int cmd_eval(int argc, char **argv)
{
	static const char *const once[] = { "--model", "--split",
					    "--split-time", "-k", "--methods",
					    "--format", "--threads", NULL };
	const char *in = NULL, *mpath = NULL, *fmt = NULL;
	char warn[640];
	struct load_opts lo = { 0 };
	struct event_list l = { 0 };
	struct eval_report r;
	struct model *loaded = NULL, fit;
	const struct model *m = model_default();
	struct err e = { "" };
	double split = 0.8;
	unsigned threads = 0;
	uint32_t split_time = 0, k = 10;
	unsigned methods = (1u << EVAL_NMETHODS) - 1, h;
	enum eval_split_how how = EVAL_SPLIT_FRACTION;
	int json = 0, quiet = !isatty(2), i, rc = 1, random = 0;
	int have_frac = 0, fitted = 0, unfitted = 0;
	unsigned seen = 0;
	uint64_t v;
	size_t at;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(eval_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			quiet = 1;
		} else if (!strcmp(a, "--random-order")) {
			random = 1;
		} else if (!strcmp(a, "--model") || !strcmp(a, "--split") ||
			   !strcmp(a, "--split-time") || !strcmp(a, "-k") ||
			   !strcmp(a, "--methods") || !strcmp(a, "--format") ||
			   !strcmp(a, "--threads")) {
			if (!next) {
				return cmd_usage("eval", "option %s needs a value", a);
			}
			if (cmd_once("eval", a, once, &seen))
				return 2;
			i++;
			if (!strcmp(a, "--model")) {
				mpath = next;
			} else if (!strcmp(a, "--split")) {
				if (cmd_real(next, &split) ||
				    !(split > 0 && split <= 1)) {
					return cmd_usage("eval", "--split "
						"\"%s\" is not a fraction "
						"in (0, 1]", next);
				}
				have_frac = 1;
			} else if (!strcmp(a, "--threads")) {
				if (cmd_uint(next, 16, &v) || v < 1) {
					return cmd_usage("eval", "--threads "
						"\"%s\" is not a number "
						"from 1 to 16", next);
				}
				threads = (unsigned)v;
			} else if (!strcmp(a, "--split-time") || !strcmp(a, "-k")) {
				if (cmd_uint(next, UINT32_MAX, &v) ||
				    (a[1] == 'k' && (v < 1 || v > 1000))) {
					return cmd_usage("eval", "%s \"%s\" "
						"is not %s", a, next,
						a[1] == 'k' ? "a number from 1 to 1000" : "a timestamp");
				}
				if (a[1] == 'k') {
					k = (uint32_t)v;
				} else {
					split_time = (uint32_t)v;
					how = EVAL_SPLIT_TIME;
				}
			} else if (!strcmp(a, "--methods")) {
				if (eval_methods_parse(next, &methods, &e)) {
					return cmd_usage("eval", "--methods: "
						"%s", e.msg);
				}
			} else {
				fmt = next;
			}
		} else if (a[0] == '-' && a[1]) {
			return cmd_usage("eval", "unknown option \"%s\"", a);
		} else if (!in) {
			in = a;
		} else {
			return cmd_usage("eval", "one EVENTS file only "
				"(\"%s\")", a);
		}
	}
	if (have_frac && how == EVAL_SPLIT_TIME) {
		return cmd_usage("eval", "--split and --split-time are "
			"alternatives; give one");
	}
	if (random && how == EVAL_SPLIT_TIME) {
		return cmd_usage("eval", "--split-time does not go with "
			"--random-order (its times are the order's); give "
			"--split");
	}
	if (random) {
		how = EVAL_SPLIT_RANDOM;
		m = model_default_static();
	}
	if (!in) {
		return cmd_usage("eval", "missing EVENTS file");
	}
	if (fmt && !load_format_valid(fmt)) {
		return cmd_usage("eval", "unknown format \"%s\"", fmt);
	}
	if (cmd_format_known("eval", in, fmt))
		return 2;
	memset(&fit, 0, sizeof(fit));
	if (mpath && strcmp(mpath, "builtin")) {
		if (!(loaded = model_load(mpath, &e))) {
			fprintf(stderr, "triad eval: %s\n", e.msg);
			return 1;
		}
		m = loaded;
		if (rec_model_generation(m, mpath, warn, sizeof(warn)))
			fprintf(stderr, "triad eval: warning: %s\n", warn);
	}
	lo.format = fmt;
	lo.quiet = quiet;
	if (load_events(in, &lo, &l, &e)) {
		fprintf(stderr, "triad eval: %s\n", e.msg);
		goto out;
	}
	for (at = 0; at < l.n; at++) /* what eval_run splits */
		if (l.ev[at].src != l.ev[at].dst && l.ev[at].op == GRAPH_ADD)
			break;
	if (at == l.n) { /* one line, not the fit's and then the run's */
		fprintf(stderr, "triad eval: %s: no edge events to split\n", in);
		goto out;
	}
	if (!mpath && (methods & (1u << EVAL_MODEL))) {
		if (!fit_model(&l, split, how, split_time, k, threads, quiet,
			       &fit, &e)) {
			m = &fit;
			fitted = 1;
		} else {
			/* e.g. too little data before the split. Not the
			 * built-in model instead: it was fitted on CollegeMsg
			 * up to split 0.8 and may have seen this test period,
			 * so its figure would pass for a held-out one */
			fprintf(stderr, "triad eval: %s: could not fit a model on the training period (%s); the model row is left out (--model builtin or --model FILE evaluates a given model)\n",
				in, e.msg);
			methods &= ~(1u << EVAL_MODEL);
			unfitted = 1;
		}
	}
	if (eval_run_threads(l.ev, l.n, split, how, split_time, k, methods, m,
			     threads, quiet ? NULL : progress, NULL, &r, &e)) {
		fprintf(stderr, "%striad eval: %s: %s\n", quiet ? "" : "\n", in, e.msg);
		goto out;
	}
	if (!quiet)
		fprintf(stderr, "\n");
	if (!r.test_pairs) { /* not an error, but every figure below is 0 */
		size_t same = 0;

		while (same < l.n && l.ev[same].ts == l.ev[0].ts)
			same++;
		fprintf(stderr, "triad eval: %s: warning: no test pairs (no pair is first seen after the split time %u between members already in the training graph), so nothing was judged%s\n",
			in, r.split_time,
			l.n && same == l.n
				? "; every event has the same timestamp (a file without times gets the time of loading): --random-order holds out a random part of the pairs instead"
				: "");
	}
	if (json) {
		printf("{\"split_time\":%u,\"members\":%" PRIu64 ",\"test_pairs\":%" PRIu64
		       ",\"k\":%u,\"methods\":{", r.split_time, r.members, r.test_pairs, r.k);
		for (h = 0, i = 0; h < EVAL_NMETHODS; h++) {
			if (!(methods & (1u << h)))
				continue;
			printf("%s\"%s\":{\"recall\":%.6f,\"precision\":%.6f,\"mrr\":%.6f,\"ndcg\":%.6f}",
			       i++ ? "," : "", eval_method_name(h), r.m[h].recall,
			       r.m[h].precision, r.m[h].mrr, r.m[h].ndcg);
		}
		printf("}}\n");
	} else {
		printf("split time %u%s; training graph %" PRIu64 " edges; judged %" PRIu64
		       " members, %" PRIu64 " test pairs (each from both ends); k = %u\n",
		       r.split_time, random ? " (of the random order)" : "",
		       r.train_edges, r.members, r.test_pairs, r.k);
		if (methods & (1u << EVAL_MODEL))
			printf("model %s (%s)\n", model_name(m),
			       fitted ? "fitted on the training period, as triad train would"
			       : loaded ? mpath : "built-in");
		printf("%-8s %10s %13s %8s %9s\n", "method", "recall@k",
		       "precision@k", "MRR", "NDCG@k");
		for (h = 0; h < EVAL_NMETHODS; h++)
			if (methods & (1u << h))
				printf("%-8s %10.4f %13.4f %8.4f %9.4f\n",
				       eval_method_name(h), r.m[h].recall,
				       r.m[h].precision, r.m[h].mrr, r.m[h].ndcg);
		if (unfitted) /* --json leaves it out */
			printf("%-8s %s\n", eval_method_name(EVAL_MODEL),
			       "not fitted on the training period (see stderr)");
		/* the quality bar: the model against the better of the two
		 * classic heuristics (Adamic-Adar, resource allocation) */
		if ((methods & (1u << EVAL_MODEL)) &&
		    (methods & ((1u << EVAL_AA) | (1u << EVAL_RA)))) {
			enum eval_method b = !(methods & (1u << EVAL_RA)) ? EVAL_AA
					     : !(methods & (1u << EVAL_AA)) ? EVAL_RA
					     : r.m[EVAL_RA].recall > r.m[EVAL_AA].recall ? EVAL_RA : EVAL_AA;

			if (r.m[b].recall > 0)
				printf("model recall@k / %s recall@k (the better of aa and ra run): %.2fx\n",
				       eval_method_name(b), r.m[EVAL_MODEL].recall / r.m[b].recall);
		}
	}
	rc = 0;
out:
	event_list_release(&l);
	model_free(loaded);
	model_release(&fit);
	return rc;
}
