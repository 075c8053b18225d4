/* cmd_recommend.c - `triad recommend`: one answer, offline. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "graph.h"
#include "model.h"
#include "recommend.h"
#include "store.h"

static const char recommend_usage[] =
	"usage: triad recommend --snapshot SNAP --member ID [-k N] [--explain]\n"
	"                       [--model MODEL] [--now T]\n"
	"\n"
	"Print the answer GET /recommend would give for member ID (the same\n"
	"JSON), from a snapshot written by `triad load`. k from 1 to 1000\n"
	"(default 10). Ages are measured from --now (default: the newest edge\n"
	"timestamp in the snapshot). --model defaults to a built-in model:\n"
	"facebook-lr when most of the graph's edges carry one timestamp (a file\n"
	"loaded without times), else collegemsg-lr (as `triad serve` chooses).\n";

static int parse_u64(const char *s, uint64_t *out)
{
	return cmd_uint(s, UINT64_MAX, out);
}

int cmd_recommend(int argc, char **argv)
{
	static const char *const once[] = { "--snapshot", "--member", "-k",
					    "--model", "--now", NULL };
	const char *snap = NULL, *mpath = NULL;
	char warn[640];
	struct rec_request r = { 0, 10, 0, 0 };
	struct graph_buf out = { NULL, 0, 0 };
	struct model *loaded = NULL;
	const struct model *m = model_default();
	struct rec_ctx *c = NULL;
	struct graph *g = NULL;
	struct graph_view v;
	struct trend tr;
	struct err e = { "" };
	uint64_t x, now = 0;
	uint32_t at;
	int have_member = 0, have_now = 0, i, rc = 1, st;
	unsigned seen = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(recommend_usage, stdout);
			return 0;
		} else if (!strcmp(a, "--explain")) {
			r.explain = 1;
		} else if (!strcmp(a, "--snapshot") || !strcmp(a, "--member") ||
			   !strcmp(a, "-k") || !strcmp(a, "--model") ||
			   !strcmp(a, "--now")) {
			if (!next) {
				return cmd_usage("recommend", "option %s "
					"needs a value", a);
			}
			if (cmd_once("recommend", a, once, &seen))
				return 2;
			i++;
			if (!strcmp(a, "--snapshot")) {
				snap = next;
			} else if (!strcmp(a, "--model")) {
				mpath = next;
			} else if (parse_u64(next, &x) ||
				   (!strcmp(a, "-k") && (x < 1 || x > REC_K_MAX)) ||
				   (!strcmp(a, "--now") && x > UINT32_MAX)) {
				return cmd_usage("recommend", "%s \"%s\" is "
					"not %s", a, next,
					!strcmp(a, "-k") ? "a number from 1 to 1000"
					: !strcmp(a, "--now") ? "a timestamp"
					: "a member id");
			} else if (!strcmp(a, "-k")) {
				r.k = (uint32_t)x;
			} else if (!strcmp(a, "--now")) {
				now = x;
				have_now = 1;
			} else {
				r.member = x;
				have_member = 1;
			}
		} else {
			return cmd_usage("recommend", "%s \"%s\"",
				a[0] == '-' ? "unknown option"
				: "unexpected argument", a);
		}
	}
	if (!snap || !have_member) {
		return cmd_usage("recommend", "%s", !snap ?
			"missing --snapshot SNAP" : "missing --member ID");
	}
	if (mpath) {
		if (!(loaded = model_load(mpath, &e))) {
			fprintf(stderr, "triad recommend: %s\n", e.msg);
			return 1;
		}
		m = loaded;
		if (rec_model_generation(m, mpath, warn, sizeof(warn)))
			fprintf(stderr, "triad recommend: warning: %s\n", warn);
	}
	if (!(g = store_snapshot_open(snap, &e))) {
		fprintf(stderr, "triad recommend: %s\n", e.msg);
		goto out;
	}
	if (!(c = rec_ctx_new())) {
		fprintf(stderr, "triad recommend: out of memory\n");
		goto out;
	}
	graph_view_begin(g, &v);
	at = have_now ? (uint32_t)now : graph_newest_ts(g);
	rec_ctx_set_now(c, at);
	/* the most active members as of that time, as the server has them */
	trend_build(&tr, &v, at, TREND_K);
	rec_ctx_set_trend(c, &tr);
	if (!loaded)
		m = rec_builtin_model(&tr);
	st = rec_answer_json(c, &v, m, &r, NULL, NULL, &out, &e);
	graph_view_end(&v);
	if (st == REC_UNKNOWN) {
		fprintf(stderr, "triad recommend: member %" PRIu64 " is unknown or has no edges in \"%s\"\n",
			r.member, snap);
		goto out;
	}
	if (st) {
		fprintf(stderr, "triad recommend: member %" PRIu64 ": %s\n", r.member, e.msg);
		goto out;
	}
	fwrite(out.p, 1, out.len, stdout);
	putchar('\n');
	rc = 0;
out:
	free(out.p);
	rec_ctx_free(c);
	graph_free(g);
	model_free(loaded);
	return rc;
}
