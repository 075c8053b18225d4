/*
 * test_scoring.c - features, model files and the JSON answer.
 *
 * Features are checked against slow textbook formulas over a plain
 * adjacency matrix (and Jaccard against igraph_similarity_jaccard); model
 * files round-trip and every malformed one is refused with a message
 * naming the file and the field; answers parse as JSON (json-c), never
 * hold the member, a neighbour or a dismissed candidate, and repeat.
 */
#include <check.h>
#include <igraph.h>
#include <json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cand.h"
#include "feat.h"
#include "fof.h"
#include "graph.h"
#include "model.h"
#include "recommend.h"
#include "testutil.h"

#define NV 60
#define NOW 9000000u

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t ext(uint32_t i)
{
	return 7777u * (uint64_t)i + 5u;
}

/* tsm[i*NV+j]: 0 no edge, else the stored (rounded) ts. */
static struct graph *random_graph(uint64_t seed, double p, uint32_t *tsm,
				  uint32_t *vid)
{
	struct graph_event *ev = malloc(NV * NV * sizeof(*ev));
	struct graph *g = graph_new(0);
	struct graph_view v;
	size_t n = 0;
	uint32_t i, j, ts;

	memset(tsm, 0, NV * NV * sizeof(*tsm));
	for (i = 0; i < NV; i++)
		for (j = i + 1; j < NV; j++)
			if (j == i + 1 || (double)(rnd(&seed) % 10000) < p * 10000) {
				ts = 1000000 + (uint32_t)(rnd(&seed) % 8000000);
				ev[n++] = (struct graph_event){ ext(i), ext(j), ts, GRAPH_ADD };
				ts = ts / GRAPH_TS_RES * GRAPH_TS_RES;
				tsm[i * NV + j] = tsm[j * NV + i] = ts;
			}
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	for (i = 0; i < NV; i++)
		vid[i] = graph_lookup(&v, ext(i));
	graph_view_end(&v);
	free(ev);
	return g;
}

static double age(uint32_t ts)
{
	return ts >= NOW ? 0 : (double)(NOW - ts);
}

static int desc_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x > y ? -1 : x < y;
}

static void close_to(double got, double want, const char *what)
{
	ck_assert_msg(fabs(got - want) <= 1e-9 * (1 + fabs(want)),
		      "%s: got %.12g, want %.12g", what, got, want);
}

START_TEST(features_match_textbook_formulas)
{
	static uint32_t tsm[NV * NV];
	uint32_t vid[NV], deg[NV], i, u, c, w;
	struct graph_view v;
	struct graph *g = random_graph(31337, 0.12, tsm, vid);
	struct feat_in in = { 7, 0.003f, 5 };
	struct feat_via via;
	double x[FEAT_N];

	for (i = 0; i < NV; i++) {
		deg[i] = 0;
		for (w = 0; w < NV; w++)
			deg[i] += tsm[i * NV + w] != 0;
	}
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++)
		for (c = 0; c < NV; c++) {
			double m = 0, aa = 0, ra = 0, rec = 0, newest = 0;
			uint32_t cts[NV], nc = 0, recent = 0, newest_w = 0, k;

			if (c == u)
				continue;
			for (w = 0; w < NV; w++) {
				uint32_t a = tsm[u * NV + w], b = tsm[c * NV + w];

				if (tsm[c * NV + w])
					cts[nc++] = tsm[c * NV + w];
				if (!a || !b)
					continue;
				m++;
				aa += 1 / log((double)deg[w]);
				ra += 1.0 / deg[w];
				rec += exp(-(age(a) + age(b)) / FEAT_TAU);
				if ((a > b ? a : b) > newest) {
					newest = a > b ? a : b;
					newest_w = w;
				}
			}
			qsort(cts, nc, sizeof(*cts), desc_u32);
			for (k = 0; k < nc && k < 32; k++)
				recent += age(cts[k]) < FEAT_TAU;
			feat_compute(&v, vid[u], vid[c], NOW, &in, x, &via);
			close_to(x[FEAT_MUTUAL], m, "mutual");
			close_to(x[FEAT_ADAMIC_ADAR], aa, "adamic_adar");
			close_to(x[FEAT_RESOURCE_ALLOC], ra, "resource_alloc");
			close_to(x[FEAT_JACCARD], m / (deg[u] + deg[c] - m), "jaccard");
			close_to(x[FEAT_COSINE], m / sqrt((double)deg[u] * deg[c]), "cosine");
			close_to(x[FEAT_PREF_ATTACH], log1p((double)deg[u] * deg[c]), "pref_attach");
			close_to(x[FEAT_DEG_MEMBER], log1p(deg[u]), "deg_member");
			close_to(x[FEAT_DEG_CAND], log1p(deg[c]), "deg_cand");
			close_to(x[FEAT_WALK], log(8), "walk");
			close_to(x[FEAT_TREND], log(6), "trend");
			close_to(x[FEAT_PPR], log1p(1e4 * (double)0.003f), "ppr");
			close_to(x[FEAT_RECENT_MUTUAL], rec, "recent_mutual");
			close_to(x[FEAT_MUTUAL_AGE],
				 log1p(m ? age((uint32_t)newest) / 3600 : FEAT_AGE_NONE), "mutual_age");
			close_to(x[FEAT_CAND_AGE], log1p(age(cts[0]) / 3600), "cand_age");
			close_to(x[FEAT_CAND_RECENT], log1p(recent), "cand_recent");
			close_to(x[FEAT_LOG_MUTUAL], log1p(m), "log_mutual");
			ck_assert_uint_eq(via.n, m < FEAT_VIA_MAX ? m : FEAT_VIA_MAX);
			if (m) {
				/* the first one shown is the newest mutual */
				ck_assert_uint_eq(via.ts[0], (uint32_t)newest);
				ck_assert(tsm[u * NV + newest_w] && tsm[c * NV + newest_w]);
				for (k = 0; k < via.n; k++) {
					uint32_t iw = 0;

					while (vid[iw] != via.v[k])
						iw++;
					ck_assert(tsm[u * NV + iw] && tsm[c * NV + iw]);
					if (k)
						ck_assert_uint_ge(via.ts[k - 1], via.ts[k]);
				}
			}
		}
	graph_view_end(&v);
	graph_free(g);
}
END_TEST

/*
 * feat_pair (the serving path) gives feat_compute's values bit for bit, on
 * a graph with pending changes (adds, re-adds and removes applied after the
 * build) and a hub candidate of degree >= 1024 (the graph_common path).
 */
START_TEST(feat_pair_equals_feat_compute)
{
	const uint32_t nm = 3000, hub = 0;
	struct graph *g = graph_new(0);
	struct graph_event *ev = malloc(40000 * sizeof(*ev));
	struct feat_member fm = { 0 };
	struct graph_view v;
	struct feat_via va, vb;
	struct feat_in in = { 3, 0.002f, 9 };
	double xa[FEAT_N], xb[FEAT_N];
	uint64_t seed = 4242;
	size_t n = 0, i;
	uint32_t u, c, f, k, checked = 0;

	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_nonnull(ev);
	/* a hub joined to 1500 members, plus a sparse random graph */
	for (i = 1; i <= 1500; i++)
		ev[n++] = (struct graph_event){ ext(hub), ext((uint32_t)i),
			NOW - (uint32_t)(rnd(&seed) % 5000000u), GRAPH_ADD };
	while (n < 20000) {
		uint32_t a = (uint32_t)(rnd(&seed) % nm), b = (uint32_t)(rnd(&seed) % 200);

		if (a != b)
			ev[n++] = (struct graph_event){ ext(a), ext(b),
				NOW - (uint32_t)(rnd(&seed) % 5000000u), GRAPH_ADD };
	}
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	/* pending deltas: removes and fresh adds, not merged */
	for (i = 0; i < 2000; i++) {
		uint32_t a = (uint32_t)(rnd(&seed) % 200), b = (uint32_t)(rnd(&seed) % nm);

		ev[i] = (struct graph_event){ ext(a), ext(b), NOW - (uint32_t)(rnd(&seed) % 100000u),
			(rnd(&seed) & 1) ? GRAPH_ADD : GRAPH_REMOVE };
		if (a == b)
			ev[i].dst = ext(nm + 1);
	}
	ck_assert_int_eq(graph_apply(g, ev, 2000, NULL, NULL), 0);
	graph_view_begin(g, &v);
	for (k = 0; k < 60; k++) {
		u = graph_lookup(&v, ext(k < 2 ? hub + k : (uint32_t)(rnd(&seed) % 200)));
		if (u == GRAPH_NONE || !graph_degree(&v, u))
			continue;
		ck_assert_int_eq(feat_member_set(&fm, &v, u, NOW), 0);
		for (f = 0; f < 150; f++) {
			c = f == 0 ? graph_lookup(&v, ext(hub))
				   : (uint32_t)(rnd(&seed) % graph_nvertices(&v));
			if (c == u || c == GRAPH_NONE)
				continue;
			feat_compute(&v, u, c, NOW, &in, xa, &va);
			feat_pair(&fm, c, &in, xb, &vb);
			REQ(memcmp(xa, xb, sizeof(xa)) == 0);
			REQ_EQ(va.n, vb.n);
			REQ(memcmp(va.v, vb.v, va.n * sizeof(*va.v)) == 0);
			REQ(memcmp(va.ts, vb.ts, va.n * sizeof(*va.ts)) == 0);
			checked++;
		}
	}
	ck_assert_uint_gt(checked, 5000);
	graph_view_end(&v);
	feat_member_release(&fm);
	graph_free(g);
	free(ev);
}
END_TEST

/*
 * The O(1) path of the serving pipeline: when friends-of-friends read every
 * path (fof_exact), feat_from_counts gives feat_compute's values bit for bit
 * for every feature outside FEAT_TIME, for candidates fof reached and (with
 * zero counts) for the ones it did not; rec_gather with a timeless `need`
 * takes that path and agrees with rec_gather asking for every feature.
 */
START_TEST(counts_equal_feat_compute)
{
	static uint32_t tsm[NV * NV];
	uint32_t vid[NV], u, x, f, exact = 0, reached = 0, other = 0, capped = 0;
	struct cand_ctx *c = cand_ctx_new();
	struct rec_ctx *rc = rec_ctx_new(), *rall = rec_ctx_new();
	struct fof_params fp;
	struct rec_params pt, pa, pcap[3];
	struct graph_view v;
	struct feat_in in = { 2, 0.003f, 0 };
	double xa[FEAT_N], xb[FEAT_N];
	struct trend t;
	uint32_t trend_seen = 0;

	fof_params_default(&fp);
	rec_params_default(&pt);
	rec_params_default(&pa);
	pt.need = FEAT_ALL & ~FEAT_TIME;
	/* fof capped (3 of u's neighbours expanded): the counts path recounts
	 * (always; by cost), the others merge pair by pair (never; all
	 * features); every feature the same */
	for (int k = 0; k < 3; k++) {
		rec_params_default(&pcap[k]);
		pcap[k].fof.max_expand = 3;
		pcap[k].need = k == 2 ? FEAT_ALL : FEAT_ALL & ~FEAT_TIME;
		pcap[k].recount = k == 0 ? REC_RECOUNT_ALWAYS : k == 1 ? REC_RECOUNT_AUTO
								   : REC_RECOUNT_NEVER;
	}
	for (uint64_t seed = 11; seed <= 14; seed++) {
		struct graph *g = random_graph(seed, 0.03 * (double)(seed - 9), tsm, vid);

		graph_view_begin(g, &v);
		/* the most active members are candidates of every query */
		trend_build(&t, &v, NOW, TREND_K);
		ck_assert_uint_gt(t.n, 0);
		pt.trend = pa.trend = &t;
		for (u = 0; u < NV; u++) {
			ck_assert_int_eq(cand_begin(c, &v, vid[u], NULL), 0);
			ck_assert_int_eq(fof_run(c, &v, &fp, 0, NULL, NULL), 0);
			ck_assert_int_eq(c->fof_exact, 1);
			exact++;
			for (x = 0; x < NV; x++) {
				uint32_t fm = 0;
				uint64_t faa = 0, fra = 0;

				if (x == u || tsm[u * NV + x])
					continue;
				in.trend = trend_activity(&t, vid[x]);
				feat_compute(&v, vid[u], vid[x], NOW, &in, xa, NULL);
				if (cand_fof(c, vid[x], &fm, &faa, &fra)) {
					feat_from_counts(graph_degree(&v, vid[u]),
							 graph_degree(&v, vid[x]), fm,
							 faa, fra, &in, FEAT_ALL, xb);
					reached++;
				} else {
					feat_from_counts(graph_degree(&v, vid[u]),
							 graph_degree(&v, vid[x]), 0, 0, 0,
							 &in, FEAT_ALL, xb);
					other++;
				}
				for (f = 0; f < FEAT_N; f++) {
					if (FEAT_BIT(f) & FEAT_TIME) {
						ck_assert(isnan(xb[f]));
						continue;
					}
					ck_assert_msg(memcmp(&xa[f], &xb[f], sizeof(double)) == 0,
						      "%s: %.17g vs %.17g", feat_name(f), xa[f], xb[f]);
				}
			}
			/* the same through the pipeline, both ways */
			ck_assert_int_eq(rec_gather(rc, &v, vid[u], NOW, &pt, 0, NULL), 0);
			ck_assert_int_eq(rec_gather(rall, &v, vid[u], NOW, &pa, 0, NULL), 0);
			ck_assert_uint_eq(rc->n, rall->n);
			/* every table member but u and its neighbours is there,
			 * marked, with its activity; nobody else is marked */
			for (uint32_t j = 0; j < t.n; j++) {
				size_t i;

				for (i = 0; i < rc->n && rc->it[i].v != t.v[j]; i++)
					;
				if (t.v[j] == vid[u] || graph_edge_ts(&v, vid[u], t.v[j], NULL)) {
					ck_assert_uint_eq(i, rc->n);
					continue;
				}
				ck_assert_uint_lt(i, rc->n);
				trend_seen++;
			}
			for (size_t i = 0; i < rc->n; i++) {
				uint32_t a = trend_activity(&t, rc->it[i].v);

				ck_assert_uint_ne(rc->it[i].v, vid[u]);
				ck_assert(!graph_edge_ts(&v, vid[u], rc->it[i].v, NULL));
				ck_assert_int_eq(!!(rc->it[i].flags & CAND_TREND), a > 0);
				ck_assert(rc->it[i].x[FEAT_TREND] == log1p((double)a));
			}
			for (size_t i = 0; i < rc->n; i++) {
				ck_assert_uint_eq(rc->it[i].v, rall->it[i].v);
				for (f = 0; f < FEAT_N; f++)
					if (!(FEAT_BIT(f) & FEAT_TIME))
						ck_assert(memcmp(&rc->it[i].x[f], &rall->it[i].x[f],
								 sizeof(double)) == 0);
			}
			ck_assert_int_eq(rec_gather(rall, &v, vid[u], NOW, &pcap[2], 0, NULL), 0);
			for (int k = 0; k < 2; k++) {
				ck_assert_int_eq(rec_gather(rc, &v, vid[u], NOW, &pcap[k], 0, NULL), 0);
				ck_assert_uint_eq(rc->n, rall->n);
				for (size_t i = 0; i < rc->n; i++) {
					ck_assert_uint_eq(rc->it[i].v, rall->it[i].v);
					for (f = 0; f < FEAT_N; f++)
						if (!(FEAT_BIT(f) & FEAT_TIME))
							ck_assert_msg(memcmp(&rc->it[i].x[f], &rall->it[i].x[f],
									     sizeof(double)) == 0,
								      "capped, %s: %.17g vs %.17g", feat_name(f),
								      rc->it[i].x[f], rall->it[i].x[f]);
				}
			}
			capped += !rc->cc->fof_exact;
		}
		graph_view_end(&v);
		graph_free(g);
	}
	ck_assert_uint_gt(reached, 1000);
	ck_assert_uint_gt(other, 1000);
	ck_assert_uint_eq(exact, 4 * NV);
	ck_assert_uint_gt(trend_seen, 4 * NV);
	ck_assert_uint_gt(capped, NV);
	cand_ctx_free(c);
	rec_ctx_free(rc);
	rec_ctx_free(rall);
}
END_TEST

START_TEST(jaccard_matches_igraph)
{
	static uint32_t tsm[NV * NV];
	uint32_t vid[NV], u, c;
	igraph_vector_int_t edges;
	igraph_matrix_t sim;
	igraph_t ig;
	struct graph_view v;
	struct graph *g = random_graph(777, 0.15, tsm, vid);
	double x[FEAT_N];

	igraph_vector_int_init(&edges, 0);
	for (u = 0; u < NV; u++)
		for (c = u + 1; c < NV; c++)
			if (tsm[u * NV + c]) {
				igraph_vector_int_push_back(&edges, u);
				igraph_vector_int_push_back(&edges, c);
			}
	ck_assert_int_eq(igraph_create(&ig, &edges, NV, IGRAPH_UNDIRECTED), IGRAPH_SUCCESS);
	igraph_matrix_init(&sim, 0, 0);
	ck_assert_int_eq(igraph_similarity_jaccard(&ig, &sim, igraph_vss_all(), IGRAPH_ALL, 0),
			 IGRAPH_SUCCESS);
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++)
		for (c = 0; c < NV; c++) {
			if (c == u || tsm[u * NV + c])
				continue; /* candidates are non-neighbours */
			feat_compute(&v, vid[u], vid[c], NOW, NULL, x, NULL);
			close_to(x[FEAT_JACCARD], MATRIX(sim, u, c), "jaccard vs igraph");
		}
	graph_view_end(&v);
	igraph_matrix_destroy(&sim);
	igraph_destroy(&ig);
	igraph_vector_int_destroy(&edges);
	graph_free(g);
}
END_TEST

static char tmpdir[64];

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Write n bytes (NULs included) into the test's directory. */
static const char *write_bytes(const char *name, const char *data, size_t n)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, n, f), n);
	fclose(f);
	return path;
}

#define GOOD_HEAD "{\"format\":\"triad-model\",\"format_version\":1,\"name\":\"t\",\"version\":\"3\",\"kind\":\"logistic\","

static void refused(const char *name, const char *text, const char *field)
{
	struct err e = { "" };
	const char *path = write_file(name, text);
	struct model *m = model_load(path, &e);

	ck_assert_msg(m == NULL, "%s was accepted", name);
	ck_assert_msg(strstr(e.msg, path) != NULL, "message \"%s\" lacks the path", e.msg);
	ck_assert_msg(strstr(e.msg, field) != NULL, "message \"%s\" lacks \"%s\"", e.msg, field);
	ck_assert(e.msg[strlen(e.msg) - 1] != '.');
}

START_TEST(model_files)
{
	struct err e = { "" };
	struct model *m, ref;
	double x[FEAT_N];
	const char *path;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_scoring.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	path = write_file("good.json", GOOD_HEAD
			  "\"features\":[\"adamic_adar\",\"mutual\"],\"mean\":[1,2],"
			  "\"scale\":[2,0.5],\"weights\":[3,-1],\"bias\":0.25,\"info\":{\"x\":1}}");
	m = model_load(path, &e);
	ck_assert_msg(m != NULL, "%s", e.msg);
	ck_assert_str_eq(model_name(m), "t@3");
	{ /* its info names no candidate generation: a warning, code 2 */
		char msg[640];

		ck_assert_str_eq(m->gen, "");
		ck_assert_int_eq(rec_model_generation(m, "good.json", msg, sizeof(msg)), 2);
		ck_assert_ptr_nonnull(strstr(msg, "good.json does not say"));
	}
	memset(x, 0, sizeof(x));
	x[FEAT_ADAMIC_ADAR] = 2;
	x[FEAT_MUTUAL] = 3;
	/* z = 0.25 + 3 (2-1)/2 - 1 (3-2)/0.5 = -0.25 */
	close_to(model_score(m, x), 1 / (1 + exp(0.25)), "score");
	/* save and load again: the same numbers */
	ck_assert_int_eq(model_save(m, write_file("saved.json", ""), "{\"a\":1}", &e), 0);
	ref = *m;
	model_free(m);
	m = model_load(write_file("saved.json", "") /* path only */, &e);
	ck_assert_msg(m == NULL, "an empty file must be refused");
	ck_assert_int_eq(model_save(&ref, path, NULL, &e), 0);
	m = model_load(path, &e);
	ck_assert_msg(m != NULL, "%s", e.msg);
	ck_assert_uint_eq(m->nf, 2);
	close_to(model_score(m, x), model_score(&ref, x), "round trip");
	model_free(m);

	refused("notjson.json", "{\"format\": tri", "not valid JSON");
	refused("array.json", "[1,2]", "not a JSON object");
	refused("format.json", "{\"format\":\"other\"}", "\"format\"");
	refused("version.json", "{\"format\":\"triad-model\",\"format_version\":2}", "\"format_version\"");
	refused("kind.json", "{\"format\":\"triad-model\",\"format_version\":1,\"kind\":\"gbt\"}", "\"kind\"");
	refused("lrtrees.json", GOOD_HEAD "\"features\":[\"mutual\"],\"depth\":1,\"trees\":[],\"bias\":0}", "\"mean\"");
	refused("nofeat.json", GOOD_HEAD "\"mean\":[1]}", "\"features\"");
	refused("unknown.json", GOOD_HEAD "\"features\":[\"mutual\",\"shoe_size\"]}", "\"features[1]\"");
	refused("twice.json", GOOD_HEAD "\"features\":[\"mutual\",\"mutual\"]}", "\"features[1]\"");
	refused("short.json", GOOD_HEAD "\"features\":[\"mutual\",\"ppr\"],\"mean\":[1],"
		"\"scale\":[1,1],\"weights\":[1,1],\"bias\":0}", "\"mean\"");
	refused("scale0.json", GOOD_HEAD "\"features\":[\"mutual\"],\"mean\":[1],"
		"\"scale\":[0],\"weights\":[1],\"bias\":0}", "\"scale[0]\"");
	refused("nobias.json", GOOD_HEAD "\"features\":[\"mutual\"],\"mean\":[1],"
		"\"scale\":[1],\"weights\":[1]}", "\"bias\"");
	refused("strw.json", GOOD_HEAD "\"features\":[\"mutual\"],\"mean\":[1],"
		"\"scale\":[1],\"weights\":[\"1\"],\"bias\":0}", "\"weights[0]\"");
	refused("trailing.json", GOOD_HEAD "\"features\":[\"mutual\"],\"mean\":[1],"
		"\"scale\":[1],\"weights\":[1],\"bias\":0} {}", "trailing");
	/* names and versions are printed as they are (answers, logs, metric
	 * labels): control characters and non-ASCII bytes are refused */
#define LR_BODY "\"kind\":\"logistic\",\"features\":[\"mutual\"],\"mean\":[1],\"scale\":[1],\"weights\":[1],\"bias\":0}"
	refused("nl.json", "{\"format\":\"triad-model\",\"format_version\":1,"
		"\"name\":\"evil\\nname\",\"version\":\"1\"," LR_BODY, "\"name\"");
	refused("tab.json", "{\"format\":\"triad-model\",\"format_version\":1,"
		"\"name\":\"t\",\"version\":\"v\\t1\"," LR_BODY, "\"version\"");
	refused("ff.json", "{\"format\":\"triad-model\",\"format_version\":1,"
		"\"name\":\"t\\u00ff\",\"version\":\"1\"," LR_BODY, "\"name\"");
	refused("at.json", "{\"format\":\"triad-model\",\"format_version\":1,"
		"\"name\":\"a@b\",\"version\":\"1\"," LR_BODY, "\"name\"");
#undef LR_BODY
	{ /* a NUL anywhere is refused, its place named: json-c stopped at
	   * one, and what followed it (garbage, a second object) loaded */
		static const char good[] = GOOD_HEAD "\"features\":[\"mutual\"],"
			"\"mean\":[1],\"scale\":[1],\"weights\":[1],\"bias\":0}";
		const size_t gl = sizeof(good) - 1;
		char buf[sizeof(good) + 32], want[64];
		const struct { size_t at; const char *tail; } nul[] = {
			{ gl, "garbage {{{" }, /* the review's file */
			{ gl, "" },            /* a NUL last */
			{ gl + 1, "" },        /* after the newline */
			{ 0, "" },             /* first */
			{ 30, "" },            /* inside a string */
		};

		m = model_load(write_bytes("nonul.json", good, gl), &e);
		ck_assert_msg(m != NULL, "%s", e.msg);
		model_free(m);
		for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++) {
			size_t n = gl + 1 + strlen(nul[i].tail);

			memcpy(buf, good, gl);
			buf[gl] = '\n';
			memcpy(buf + gl + 1, nul[i].tail, strlen(nul[i].tail));
			if (nul[i].at == gl + 1)
				n++;
			buf[nul[i].at] = '\0';
			e.msg[0] = '\0';
			path = write_bytes("nul.json", buf, n);
			ck_assert_msg(model_load(path, &e) == NULL, "NUL at %zu accepted", nul[i].at);
			snprintf(want, sizeof(want), "NUL byte at byte %zu", nul[i].at + 1);
			ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, want),
				      "NUL at %zu: \"%s\"", nul[i].at, e.msg);
		}
	}
	ck_assert_int_eq(model_label_ok("lr 2026-12", 1), 1);
	ck_assert_int_eq(model_label_ok("a@b", 0), 1);
	ck_assert_int_eq(model_label_ok("", 0), 0);
	/* a directory: the reason, not a bare "read error" */
	ck_assert_ptr_null(model_load(tmpdir, &e));
	ck_assert_msg(strstr(e.msg, "directory"), "%s", e.msg);
	e.msg[0] = '\0';
	ck_assert_ptr_null(model_load("/nonexistent/model.json", &e));
	ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/model.json"));
}
END_TEST

#define GBDT_HEAD "{\"format\":\"triad-model\",\"format_version\":1,\"name\":\"g\",\"version\":\"1\",\"kind\":\"gbdt\"," \
	"\"features\":[\"mutual\",\"trend\"],\"bias\":-1,"

/*
 * Trees, by hand: two trees of depth 2 over (mutual, trend). Tree 0 asks
 * mutual > 2.5, then trend > 0; tree 1 asks trend > 1.5 twice (a level may
 * repeat a question). Scores against the sums worked out below, a NaN
 * feature taking the "no" branch, a save and load giving the same scores,
 * and every malformed part refused with the place named.
 */
/* model_score_n: bit for bit model_score on random trees of every depth
 * (values on the thresholds, NaN, infinities, features the model does not
 * read) and on logistic models, in batches of every length around the
 * four-wide step, with the AVX2 walk on (where the CPU has it) and off */
START_TEST(score_n_equals_score)
{
	uint64_t r = 99;
	struct rec { double pad; double x[FEAT_N]; double s; } items[13];

	for (uint32_t round = 0; round < 200; round++) {
		struct model m;
		uint32_t depth = 1 + round % MODEL_DEPTH_MAX;
		uint32_t ntrees = 1 + (uint32_t)(rnd(&r) % 40);
		double thr[8];

		memset(&m, 0, sizeof(m));
		m.nf = 1 + (uint32_t)(rnd(&r) % FEAT_N);
		for (uint32_t f = 0; f < m.nf; f++)
			m.feat[f] = (uint8_t)((f * 7 + round) % FEAT_N);
		m.bias = (double)(rnd(&r) % 200) / 50.0 - 2.0;
		if (round % 5 == 4) { /* a logistic one now and then */
			m.kind = MODEL_LOGISTIC;
			for (uint32_t f = 0; f < m.nf; f++) {
				m.mean[f] = (double)(rnd(&r) % 100) / 10.0;
				m.scale[f] = 0.5 + (double)(rnd(&r) % 100) / 10.0;
				m.w[f] = (double)(rnd(&r) % 200) / 100.0 - 1.0;
			}
		} else {
			ck_assert_int_eq(model_trees_alloc(&m, ntrees, depth), 0);
			for (uint32_t i = 0; i < ntrees * depth; i++) {
				m.split[i] = (uint8_t)(rnd(&r) % m.nf);
				m.thr[i] = (double)(rnd(&r) % 8);
			}
			for (uint32_t i = 0; i < ntrees << depth; i++)
				m.leaf[i] = (double)(int64_t)(rnd(&r) % 2001 - 1000) / 997.0;
		}
		for (uint32_t i = 0; i < 8; i++)
			thr[i] = (double)i;
		for (size_t n = 0; n <= 13; n++) {
			for (size_t i = 0; i < n; i++)
				for (uint32_t f = 0; f < FEAT_N; f++) {
					uint64_t k = rnd(&r) % 12;

					items[i].x[f] = k < 8 ? thr[k] + (k & 1 ? 0.5 : 0)
						      : k == 8 ? NAN : k == 9 ? INFINITY
						      : k == 10 ? -INFINITY : -1;
				}
			for (int simd = 0; simd < 2; simd++) {
				model_simd(simd);
				for (size_t i = 0; i < n; i++)
					items[i].s = -7;
				model_score_n(&m, n, items[0].x, sizeof(items[0]),
					      &items[0].s, sizeof(items[0]));
				for (size_t i = 0; i < n; i++) {
					double want = model_score(&m, items[i].x);

					ck_assert_msg(memcmp(&want, &items[i].s, sizeof(want)) == 0,
						      "round %u n %zu item %zu simd %d: %.17g vs %.17g",
						      round, n, i, simd, items[i].s, want);
				}
			}
		}
		model_simd(1);
		model_release(&m);
	}
}
END_TEST

START_TEST(tree_model_files)
{
	struct err e = { "" };
	struct model *m, *m2;
	double x[FEAT_N];
	const char *path;
	static const struct { double mutual, trend, z; } cases[] = {
		/* tree 0 leaf (mutual>2.5, trend>0) + tree 1 leaf (t>1.5, t>1.5) */
		{ 1, 0, -1 + 0.1 + 1.0 },   /* leaf 0, leaf 0 */
		{ 1, 1, -1 + 0.2 + 1.0 },   /* leaf 1, leaf 0 */
		{ 3, 0, -1 + 0.3 + 1.0 },   /* leaf 2, leaf 0 */
		{ 3, 2, -1 + 0.4 + 4.0 },   /* leaf 3, leaf 3 */
		{ 2.5, 1.5, -1 + 0.2 + 1.0 }, /* "greater than" is strict */
	};
	size_t i;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_scoring.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	path = write_file("trees.json", GBDT_HEAD "\"depth\":2,\"trees\":["
			  "{\"split\":[0,1],\"threshold\":[2.5,0],\"leaf\":[0.1,0.2,0.3,0.4]},"
			  "{\"split\":[1,1],\"threshold\":[1.5,1.5],\"leaf\":[1,2,3,4]}]}");
	m = model_load(path, &e);
	ck_assert_msg(m != NULL, "%s", e.msg);
	ck_assert_int_eq(m->kind, MODEL_GBDT);
	ck_assert_uint_eq(model_features(m), FEAT_BIT(FEAT_MUTUAL) | FEAT_BIT(FEAT_TREND));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t f = 0; f < FEAT_N; f++)
			x[f] = NAN; /* features the model does not read */
		x[FEAT_MUTUAL] = cases[i].mutual;
		x[FEAT_TREND] = cases[i].trend;
		close_to(model_score(m, x), 1 / (1 + exp(-cases[i].z)), "tree score");
	}
	x[FEAT_MUTUAL] = NAN;
	x[FEAT_TREND] = 2;
	close_to(model_score(m, x), 1 / (1 + exp(-(-1 + 0.2 + 4.0))), "NaN goes left");
	ck_assert_int_eq(model_save(m, write_file("trees2.json", ""), NULL, &e), 0);
	m2 = model_load(write_file("trees2.json", "") /* path only */, &e);
	ck_assert_msg(m2 == NULL, "an empty file must be refused");
	ck_assert_int_eq(model_save(m, path, "{\"a\":1}", &e), 0);
	m2 = model_load(path, &e);
	ck_assert_msg(m2 != NULL, "%s", e.msg);
	ck_assert_uint_eq(model_digest(m2), model_digest(m));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		x[FEAT_MUTUAL] = cases[i].mutual;
		x[FEAT_TREND] = cases[i].trend;
		ck_assert(model_score(m2, x) == model_score(m, x));
	}
	model_free(m2);
	model_free(m);

#define TREE1 "{\"split\":[0],\"threshold\":[1],\"leaf\":[0,1]}"
	refused("nodepth.json", GBDT_HEAD "\"trees\":[" TREE1 "]}", "\"depth\"");
	refused("depth0.json", GBDT_HEAD "\"depth\":0,\"trees\":[" TREE1 "]}", "\"depth\"");
	refused("depth9.json", GBDT_HEAD "\"depth\":9,\"trees\":[" TREE1 "]}", "\"depth\"");
	refused("notrees.json", GBDT_HEAD "\"depth\":1}", "\"trees\"");
	refused("zerotrees.json", GBDT_HEAD "\"depth\":1,\"trees\":[]}", "\"trees\"");
	refused("treeobj.json", GBDT_HEAD "\"depth\":1,\"trees\":[" TREE1 ",7]}", "\"trees[1]\"");
	refused("nosplit.json", GBDT_HEAD "\"depth\":1,\"trees\":[{\"threshold\":[1],\"leaf\":[0,1]}]}",
		"\"trees[0].split\"");
	refused("split2.json", GBDT_HEAD "\"depth\":1,\"trees\":[{\"split\":[2],\"threshold\":[1],\"leaf\":[0,1]}]}",
		"\"trees[0].split[0]\"");
	refused("splitneg.json", GBDT_HEAD "\"depth\":1,\"trees\":[{\"split\":[-1],\"threshold\":[1],\"leaf\":[0,1]}]}",
		"\"trees[0].split[0]\"");
	refused("splitlen.json", GBDT_HEAD "\"depth\":2,\"trees\":[{\"split\":[0],\"threshold\":[1,1],\"leaf\":[0,1,2,3]}]}",
		"\"trees[0].split\"");
	refused("thrstr.json", GBDT_HEAD "\"depth\":1,\"trees\":[{\"split\":[0],\"threshold\":[\"1\"],\"leaf\":[0,1]}]}",
		"\"trees[0].threshold[0]\"");
	refused("leaves.json", GBDT_HEAD "\"depth\":1,\"trees\":[" TREE1 ",{\"split\":[1],\"threshold\":[1],\"leaf\":[0,1,2]}]}",
		"\"trees[1].leaf\"");
	refused("leafbig.json", GBDT_HEAD "\"depth\":1,\"trees\":[{\"split\":[0],\"threshold\":[1],\"leaf\":[0,1e7]}]}",
		"\"trees[0].leaf[1]\"");
	refused("treesbias.json", GBDT_HEAD "\"depth\":1,\"trees\":[" TREE1 "],\"bias\":\"x\"}", "\"bias\"");
	{ /* info.generation: read when it is printable text, else refused */
		char msg[640], now[MODEL_GEN_MAX], big[MODEL_GEN_MAX + 512];
		struct rec_params p;
		const char *lr = GOOD_HEAD "\"features\":[\"mutual\"],\"mean\":[1],"
				 "\"scale\":[1],\"weights\":[1],\"bias\":0,\"info\":";

		rec_params_default(&p);
		rec_params_describe(&p, now, sizeof(now));
		snprintf(big, sizeof(big), "%s{\"generation\":\"%s\"}}", lr, now);
		m = model_load(write_file("gen.json", big), &e);
		ck_assert_msg(m != NULL, "%s", e.msg);
		ck_assert_str_eq(m->gen, now);
		ck_assert_int_eq(rec_model_generation(m, "gen.json", msg, sizeof(msg)), 0);
		m->gen[0] = 'x'; /* another generation */
		ck_assert_int_eq(rec_model_generation(m, "gen.json", msg, sizeof(msg)), 1);
		ck_assert_ptr_nonnull(strstr(msg, now));
		model_free(m);
		snprintf(big, sizeof(big), "%s{\"generation\":\"\"}}", lr);
		refused("gen0.json", big, "\"info.generation\"");
		snprintf(big, sizeof(big), "%s{\"generation\":[1]}}", lr);
		refused("gen1.json", big, "\"info.generation\"");
		snprintf(big, sizeof(big), "%s{\"generation\":\"a\\tb\"}}", lr);
		refused("gen2.json", big, "\"info.generation\"");
		memset(now, 'a', sizeof(now) - 1); /* the longest allowed */
		now[sizeof(now) - 1] = '\0';
		snprintf(big, sizeof(big), "%s{\"generation\":\"%s\"}}", lr, now);
		m = model_load(write_file("gen3.json", big), &e);
		ck_assert_msg(m != NULL, "%s", e.msg);
		ck_assert_uint_eq(strlen(m->gen), MODEL_GEN_MAX - 1);
		model_free(m);
		snprintf(big, sizeof(big), "%s{\"generation\":\"a%s\"}}", lr, now);
		refused("gen4.json", big, "\"info.generation\""); /* one more */
	}
#undef TREE1
}
END_TEST

/* A built-in model against the model file it was copied from. */
static void builtin_is_file(const struct model *d, const char *file)
{
	const char *data = getenv("TRIAD_DATA");
	char path[4096];
	struct err e = { "" };
	struct model *m;

	ck_assert_uint_gt(d->nf, 0);
	if (!data)
		data = "data";
	snprintf(path, sizeof(path), "%s/%s", data, file);
	if (access(path, R_OK))
		return; /* no trained model shipped: nothing to compare */
	m = model_load(path, &e);
	ck_assert_msg(m != NULL, "%s", e.msg);
	ck_assert_str_eq(model_name(m), model_name(d));
	ck_assert_uint_eq(m->nf, d->nf);
	for (uint32_t i = 0; i < m->nf; i++) {
		ck_assert_uint_eq(m->feat[i], d->feat[i]);
		close_to(d->mean[i], m->mean[i], "mean");
		close_to(d->scale[i], m->scale[i], "scale");
		close_to(d->w[i], m->w[i], "weight");
	}
	close_to(d->bias, m->bias, "bias");
	ck_assert_str_eq(m->gen, d->gen);
	model_free(m);
}

START_TEST(default_model_is_data_model_json)
{
	struct trend t;

	builtin_is_file(model_default(), "model.json");
	builtin_is_file(model_default_static(), "model-static.json");
	{ /* both were fitted with this build's candidate generation: a
	   * change to it needs `make model` */
		char now[MODEL_GEN_MAX];
		struct rec_params p;

		rec_params_default(&p);
		rec_params_describe(&p, now, sizeof(now));
		ck_assert_str_eq(model_default()->gen, now);
		ck_assert_str_eq(model_default_static()->gen, now);
	}
	/* the model for graphs without times reads neither time nor trend */
	ck_assert_uint_eq(model_features(model_default_static()) &
			  (FEAT_TIME | FEAT_BIT(FEAT_TREND)), 0);
	memset(&t, 0, sizeof(t));
	ck_assert_ptr_eq(rec_builtin_model(NULL), model_default());
	ck_assert_ptr_eq(rec_builtin_model(&t), model_default());
	t.bulk = 1;
	ck_assert_ptr_eq(rec_builtin_model(&t), model_default_static());
}
END_TEST

struct dis {
	uint64_t member, cand;
};

static int dismissed(void *ctx, uint64_t member, uint64_t cand)
{
	const struct dis *d = ctx;

	return member == d->member && cand == d->cand;
}

/* Parse an answer; return its recommendations' member ids. */
static size_t parse_answer(const struct graph_buf *b, uint64_t member,
			   uint32_t k, int explain, uint64_t *ids, char *recs,
			   size_t recslen)
{
	json_object *o, *f, *arr, *it, *x;
	char *text = strndup((const char *)b->p, b->len);
	size_t i, n;

	o = json_tokener_parse(text);
	free(text);
	ck_assert_msg(o != NULL, "answer is not JSON: %.*s", (int)b->len, b->p);
	ck_assert(json_object_object_get_ex(o, "member", &f));
	ck_assert_uint_eq((uint64_t)json_object_get_uint64(f), member);
	ck_assert(json_object_object_get_ex(o, "k", &f) && json_object_get_int(f) == (int)k);
	ck_assert(json_object_object_get_ex(o, "model", &f));
	ck_assert_ptr_nonnull(strchr(json_object_get_string(f), '@'));
	ck_assert(json_object_object_get_ex(o, "took_us", &f));
	ck_assert(json_object_object_get_ex(o, "degraded", &f) &&
		  json_object_is_type(f, json_type_boolean));
	ck_assert(json_object_object_get_ex(o, "recommendations", &arr));
	n = json_object_array_length(arr);
	ck_assert_uint_le(n, k);
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(arr, i);
		ck_assert(json_object_object_get_ex(it, "member", &x));
		ids[i] = json_object_get_uint64(x);
		ck_assert(json_object_object_get_ex(it, "score", &x));
		ck_assert(json_object_object_get_ex(it, "mutual", &x));
		ck_assert(json_object_object_get_ex(it, "via", &x));
		ck_assert_uint_le(json_object_array_length(x), explain ? 5 : 3);
		ck_assert_int_eq(json_object_object_get_ex(it, "features", &x), explain);
		if (explain)
			ck_assert_int_eq(json_object_object_length(x), FEAT_N);
	}
	snprintf(recs, recslen, "%s", json_object_to_json_string(arr));
	json_object_put(o);
	return n;
}

START_TEST(answers_are_valid_safe_and_repeatable)
{
	static uint32_t tsm[NV * NV];
	static char recs1[1 << 16], recs2[1 << 16];
	uint32_t vid[NV], u, i, c;
	uint64_t ids[64];
	struct graph_view v;
	struct graph *g = random_graph(2024, 0.08, tsm, vid);
	struct rec_ctx *ctx = rec_ctx_new(), *ctx2 = rec_ctx_new();
	struct graph_buf b = { NULL, 0, 0 };
	struct rec_request r = { 0, 10, 0, 0 };
	struct err e = { "" };
	struct dis d;
	size_t n, n2;

	rec_ctx_set_now(ctx, NOW);
	rec_ctx_set_now(ctx2, NOW);
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++) {
		r.member = ext(u);
		r.k = 1 + u % 12;
		r.explain = u % 2;
		b.len = 0;
		ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, NULL, NULL, &b, &e), 0);
		n = parse_answer(&b, r.member, r.k, r.explain, ids, recs1, sizeof(recs1));
		for (i = 0; i < n; i++) {
			for (c = 0; c < NV && ext(c) != ids[i]; c++)
				;
			ck_assert_uint_lt(c, NV);
			ck_assert_uint_ne(c, u);
			ck_assert_msg(!tsm[u * NV + c], "neighbour recommended");
		}
		/* repeat on another context: the same recommendations */
		b.len = 0;
		ck_assert_int_eq(rec_answer_json(ctx2, &v, model_default(), &r, NULL, NULL, &b, &e), 0);
		n2 = parse_answer(&b, r.member, r.k, r.explain, ids + 32, recs2, sizeof(recs2));
		ck_assert_uint_eq(n, n2);
		ck_assert_str_eq(recs1, recs2);
		if (!n)
			continue;
		/* dismiss the first: it disappears, nothing else goes */
		d.member = r.member;
		d.cand = ids[0];
		b.len = 0;
		ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, dismissed, &d, &b, &e), 0);
		n2 = parse_answer(&b, r.member, r.k, r.explain, ids + 32, recs2, sizeof(recs2));
		for (i = 0; i < n2; i++)
			ck_assert(ids[32 + i] != d.cand);
		for (i = 1; i < n; i++)
			ck_assert_uint_eq(ids[32 + i - 1], ids[i]);
	}
	r.member = 424242; /* unknown */
	b.len = 0;
	ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, NULL, NULL, &b, &e), REC_UNKNOWN);
	ck_assert_uint_eq(b.len, 0);
	r.member = ext(1);
	r.k = 0;
	ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, NULL, NULL, &b, &e), -1);
	r.k = 1001;
	ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, NULL, NULL, &b, &e), -1);
	graph_view_end(&v);
	free(b.p);
	rec_ctx_free(ctx);
	rec_ctx_free(ctx2);
	graph_free(g);
}
END_TEST

/* Dismissed: the n candidates in ids[] (for member). */
struct dis_set {
	uint64_t member;
	const uint64_t *ids;
	size_t n;
};

static int dismissed_set(void *ctx, uint64_t member, uint64_t cand)
{
	const struct dis_set *d = ctx;

	for (size_t i = 0; member == d->member && i < d->n; i++)
		if (d->ids[i] == cand)
			return 1;
	return 0;
}

/*
 * Many dismissed at the top: the answer is the ranking without them, in
 * order. The first 20 of a member's 40 best (an answer at k = 40) are
 * dismissed and k = 10 asked: exactly the 21st to 30th come back, in
 * that order, whatever share of the top the dismissed take.
 */
START_TEST(many_dismissed_keep_the_order)
{
	static uint32_t tsm[NV * NV];
	static char recs[1 << 16];
	uint32_t vid[NV], u, checked = 0;
	uint64_t all[64], got[64];
	struct graph_view v;
	struct graph *g = random_graph(515, 0.25, tsm, vid);
	struct rec_ctx *ctx = rec_ctx_new();
	struct graph_buf b = { NULL, 0, 0 };
	struct rec_request r = { 0, 40, 0, 0 };
	struct err e = { "" };
	struct dis_set d;
	size_t n, n2, i;

	rec_ctx_set_now(ctx, NOW);
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++) {
		r.member = ext(u);
		r.k = 40;
		b.len = 0;
		ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, NULL, NULL, &b, &e), 0);
		n = parse_answer(&b, r.member, r.k, 0, all, recs, sizeof(recs));
		if (n < 30)
			continue;
		d = (struct dis_set){ r.member, all, 20 };
		r.k = 10;
		b.len = 0;
		ck_assert_int_eq(rec_answer_json(ctx, &v, model_default(), &r, dismissed_set, &d, &b, &e), 0);
		n2 = parse_answer(&b, r.member, r.k, 0, got, recs, sizeof(recs));
		ck_assert_uint_eq(n2, 10);
		for (i = 0; i < 10; i++)
			ck_assert_uint_eq(got[i], all[20 + i]);
		checked++;
	}
	ck_assert_uint_gt(checked, NV / 2);
	graph_view_end(&v);
	free(b.p);
	rec_ctx_free(ctx);
	graph_free(g);
}
END_TEST

/* A model that reads one feature (not "mutual"): the answer still reports
 * every item's mutual count (brute force over the adjacency matrix), and
 * its via are the 3 newest mutual connections (by the later of the two
 * edges, ties to the smaller vertex id), as a brute-force pass finds them. */
START_TEST(mutual_reported_whatever_the_model_reads)
{
	static uint32_t tsm[NV * NV];
	uint32_t vid[NV], u, c, w, checked = 0;
	struct graph_view v;
	struct graph *g = random_graph(77, 0.08, tsm, vid);
	struct rec_ctx *ctx = rec_ctx_new();
	struct graph_buf b = { NULL, 0, 0 };
	struct rec_request r = { 0, 10, 0, 0 };
	struct err e = { "" };
	struct model *m;
	json_object *o, *arr, *it, *x, *via;
	char *text;
	size_t i, j;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_scoring.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	m = model_load(write_file("aa.json", GOOD_HEAD
				  "\"features\":[\"adamic_adar\"],\"mean\":[0],"
				  "\"scale\":[1],\"weights\":[1],\"bias\":0}"), &e);
	ck_assert_msg(m != NULL, "%s", e.msg);
	rec_ctx_set_now(ctx, NOW);
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++) {
		r.member = ext(u);
		b.len = 0;
		if (rec_answer_json(ctx, &v, m, &r, NULL, NULL, &b, &e) == REC_UNKNOWN)
			continue;
		text = strndup((const char *)b.p, b.len);
		o = json_tokener_parse(text);
		free(text);
		ck_assert_ptr_nonnull(o);
		ck_assert(json_object_object_get_ex(o, "recommendations", &arr));
		for (i = 0; i < json_object_array_length(arr); i++) {
			uint32_t want = 0;

			it = json_object_array_get_idx(arr, i);
			ck_assert(json_object_object_get_ex(it, "member", &x));
			for (c = 0; c < NV && ext(c) != json_object_get_uint64(x); c++)
				;
			ck_assert_uint_lt(c, NV);
			for (w = 0; w < NV; w++)
				want += tsm[u * NV + w] && tsm[c * NV + w];
			ck_assert(json_object_object_get_ex(it, "mutual", &x));
			ck_assert_int_eq(json_object_get_int(x), (int)want);
			ck_assert(json_object_object_get_ex(it, "via", &via));
			ck_assert_uint_eq(json_object_array_length(via),
					  want < 3 ? want : 3);
			for (j = 0; j < json_object_array_length(via); j++) {
				uint32_t best = NV, bk = 0, key;

				/* the j-th newest: skip the j already listed */
				for (w = 0; w < NV; w++) {
					size_t q;
					int seen = 0;

					if (!tsm[u * NV + w] || !tsm[c * NV + w])
						continue;
					for (q = 0; q < j; q++)
						seen |= json_object_get_uint64(
							json_object_array_get_idx(via, q)) == ext(w);
					if (seen)
						continue;
					key = tsm[u * NV + w] > tsm[c * NV + w]
					      ? tsm[u * NV + w] : tsm[c * NV + w];
					if (best == NV || key > bk ||
					    (key == bk && vid[w] < vid[best]))
						best = w, bk = key;
				}
				ck_assert_uint_lt(best, NV);
				ck_assert_uint_eq(json_object_get_uint64(
					json_object_array_get_idx(via, j)), ext(best));
			}
			checked += want > 0;
		}
		json_object_put(o);
	}
	ck_assert_uint_gt(checked, 0);
	graph_view_end(&v);
	free(b.p);
	model_free(m);
	rec_ctx_free(ctx);
	graph_free(g);
}
END_TEST

/* On a directed graph an answer is the same with and without explain
 * (explain computes every feature by merges; without it the features
 * could come from fof's counts, which count paths, not shared
 * out-neighbours): same members, scores and mutual counts. */
START_TEST(directed_answer_same_with_explain)
{
	struct graph_event *ev = malloc(NV * NV * sizeof(*ev));
	struct graph *g = graph_new(1);
	struct rec_ctx *ctx = rec_ctx_new();
	struct graph_buf b = { NULL, 0, 0 };
	struct rec_request r = { 0, 8, 0, 0 };
	struct err e = { "" };
	struct graph_view v;
	uint64_t seed = 99;
	size_t n = 0, i, compared = 0;
	uint32_t u, w;

	for (u = 0; u < NV; u++)
		for (w = 0; w < NV; w++)
			if (u != w && rnd(&seed) % 100 < 8)
				ev[n++] = (struct graph_event){ ext(u), ext(w),
					1000000 + (uint32_t)(rnd(&seed) % 8000000), GRAPH_ADD };
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	free(ev);
	rec_ctx_set_now(ctx, NOW);
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++) {
		json_object *o[2], *a[2];
		char *text;
		int k;

		r.member = ext(u);
		for (k = 0; k < 2; k++) {
			r.explain = k;
			b.len = 0;
			o[k] = NULL;
			if (rec_answer_json(ctx, &v, model_default(), &r, NULL, NULL,
					    &b, &e) == REC_UNKNOWN)
				break;
			text = strndup((const char *)b.p, b.len);
			o[k] = json_tokener_parse(text);
			free(text);
			ck_assert_ptr_nonnull(o[k]);
			ck_assert(json_object_object_get_ex(o[k], "recommendations", &a[k]));
		}
		if (k < 2)
			continue;
		ck_assert_uint_eq(json_object_array_length(a[0]),
				  json_object_array_length(a[1]));
		for (i = 0; i < json_object_array_length(a[0]); i++) {
			static const char *const keys[] = { "member", "score", "mutual" };

			for (size_t q = 0; q < 3; q++) {
				json_object *x0, *x1;

				ck_assert(json_object_object_get_ex(
					json_object_array_get_idx(a[0], i), keys[q], &x0));
				ck_assert(json_object_object_get_ex(
					json_object_array_get_idx(a[1], i), keys[q], &x1));
				ck_assert_msg(json_object_get_double(x0) ==
					      json_object_get_double(x1),
					      "member %u item %zu: %s differs", u, i, keys[q]);
			}
			compared++;
		}
		json_object_put(o[0]);
		json_object_put(o[1]);
	}
	ck_assert_uint_gt(compared, 100);
	graph_view_end(&v);
	free(b.p);
	rec_ctx_free(ctx);
	graph_free(g);
}
END_TEST

/*
 * Resource allocation on a directed graph against brute force over the
 * arcs: the mutual connections of (u, c) are the w with u -> w and c -> w,
 * d_w is w's out-degree, and RA sums the textbook 1 / d_w for every
 * d_w >= 1 (0 when w has no arc out); Adamic-Adar sums 1 / ln d_w for
 * d_w >= 2 only (undefined at 1). Members 0..14 have a single arc out, so
 * many pairs share a w of out-degree 1: RA dropped those before.
 * feat_compute, feat_pair and rec_gather (which on a directed graph merges
 * pair by pair) must all give the brute-force sums.
 */
START_TEST(directed_ra_counts_out_degree_one)
{
	static uint8_t adj[NV * NV];
	struct graph_event *ev = malloc(NV * NV * sizeof(*ev));
	struct graph *g = graph_new(1);
	struct rec_ctx *ctx = rec_ctx_new();
	struct feat_member fm = { 0 };
	struct rec_params p;
	struct graph_view v;
	uint32_t vid[NV], deg[NV] = { 0 }, u, c, w, ones = 0;
	uint64_t seed = 2024;
	double x[FEAT_N], y[FEAT_N];
	size_t n = 0, i, ranked = 0;

	memset(adj, 0, sizeof(adj));
	for (u = 0; u < NV; u++)
		for (w = 0; w < NV; w++) {
			int arc = u < 15 ? w == (u * 7 + 20) % NV
					 : u != w && rnd(&seed) % 100 < 15;

			if (!arc)
				continue;
			adj[u * NV + w] = 1;
			deg[u]++;
			ev[n++] = (struct graph_event){ ext(u), ext(w),
				1000000 + (uint32_t)(rnd(&seed) % 8000000), GRAPH_ADD };
		}
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	free(ev);
	rec_params_default(&p);
	p.gens = CAND_FOF;
	p.keep_per_gen = 0;
	p.need = FEAT_BIT(FEAT_ADAMIC_ADAR) | FEAT_BIT(FEAT_RESOURCE_ALLOC);
	graph_view_begin(g, &v);
	for (u = 0; u < NV; u++)
		vid[u] = graph_lookup(&v, ext(u));
	for (u = 0; u < NV; u++) {
		if (vid[u] == GRAPH_NONE || !deg[u])
			continue;
		REQ_EQ(graph_degree(&v, vid[u]), deg[u]);
		ck_assert_int_eq(feat_member_set(&fm, &v, vid[u], NOW), 0);
		for (c = 0; c < NV; c++) {
			double aa = 0, ra = 0;

			if (c == u || vid[c] == GRAPH_NONE)
				continue;
			for (w = 0; w < NV; w++) {
				if (!adj[u * NV + w] || !adj[c * NV + w])
					continue;
				ra += deg[w] ? 1.0 / deg[w] : 0;
				aa += deg[w] >= 2 ? 1 / log((double)deg[w]) : 0;
				ones += deg[w] == 1;
			}
			feat_compute(&v, vid[u], vid[c], NOW, NULL, x, NULL);
			close_to(x[FEAT_RESOURCE_ALLOC], ra, "directed ra");
			close_to(x[FEAT_ADAMIC_ADAR], aa, "directed aa");
			feat_pair(&fm, vid[c], NULL, y, NULL);
			ck_assert(x[FEAT_RESOURCE_ALLOC] == y[FEAT_RESOURCE_ALLOC]);
			ck_assert(x[FEAT_ADAMIC_ADAR] == y[FEAT_ADAMIC_ADAR]);
		}
		/* the served pipeline's features, for what fof reaches */
		ck_assert_int_eq(rec_gather(ctx, &v, vid[u], NOW, &p, 0, NULL), 0);
		for (i = 0; i < ctx->n; i++) {
			feat_compute(&v, vid[u], ctx->it[i].v, NOW, NULL, x, NULL);
			ck_assert(ctx->it[i].x[FEAT_RESOURCE_ALLOC] == x[FEAT_RESOURCE_ALLOC]);
			ck_assert(ctx->it[i].x[FEAT_ADAMIC_ADAR] == x[FEAT_ADAMIC_ADAR]);
			ranked++;
		}
	}
	ck_assert_uint_gt(ones, 50); /* the case under test occurs */
	ck_assert_uint_gt(ranked, 100);
	graph_view_end(&v);
	feat_member_release(&fm);
	rec_ctx_free(ctx);
	graph_free(g);
}
END_TEST

/*
 * The fixed-point sums' overflow bound (cand.h): CAND_FX_TERMS_SAFE terms
 * of the largest term, cand_fx_aa(2), fit a uint64_t and one more does
 * not (the old comment claimed 2^32 terms fit: 2^72.5); resource
 * allocation's largest term fits at least as many. cand_fx_add, which the
 * uncapped merges sum with, saturates there, in any order of its terms,
 * and the saturated sum reads as 2^24.
 */
START_TEST(fixed_point_sums_saturate)
{
	const uint64_t big = cand_fx_aa(2);
	uint64_t sum = 0, t[5], a, b;
	uint32_t i, d;
	double x[FEAT_N];

	for (d = 3; d < 100000; d = d * 3 / 2 + 1) {
		REQ_LE(cand_fx_aa(d), big);
		REQ_LE(cand_fx_ra(d), cand_fx_ra(1));
	}
	ck_assert_uint_eq(CAND_FX_TERMS_SAFE, UINT64_MAX / big);
	ck_assert_uint_ge(UINT64_MAX / cand_fx_ra(1), CAND_FX_TERMS_SAFE);
	ck_assert_uint_eq(UINT64_MAX / cand_fx_ra(1), (1u << 24) - 1);
	ck_assert_uint_eq(UINT64_MAX / cand_fx_ra(2), (1u << 25) - 1);
	for (i = 0; i < CAND_FX_TERMS_SAFE; i++)
		sum = cand_fx_add(sum, big);
	ck_assert(sum == (uint64_t)CAND_FX_TERMS_SAFE * big); /* exact */
	ck_assert(cand_fx_add(sum, big) == UINT64_MAX);  /* one more */
	ck_assert(cand_fx_add(UINT64_MAX, 0) == UINT64_MAX);
	ck_assert(cand_fx_add(UINT64_MAX - 1, 1) == UINT64_MAX);
	ck_assert(cand_fx_add(1, UINT64_MAX - 1) == UINT64_MAX);
	/* every order of five terms gives one sum, saturated or not */
	for (int sat = 0; sat < 2; sat++) {
		uint64_t first = 0;

		t[0] = sat ? UINT64_MAX / 3 : big;
		t[1] = sat ? UINT64_MAX / 2 : 12345;
		t[2] = big;
		t[3] = 1;
		t[4] = sat ? UINT64_MAX / 4 : cand_fx_ra(7);
		for (uint32_t perm = 0; perm < 120; perm++) {
			uint64_t s2 = 0, idx[5] = { 0, 1, 2, 3, 4 }, p = perm;

			for (uint32_t k = 5; k > 1; k--) { /* the perm-th order */
				a = p % k;
				p /= k;
				b = idx[k - 1];
				idx[k - 1] = idx[a];
				idx[a] = b;
			}
			for (uint32_t k = 0; k < 5; k++)
				s2 = cand_fx_add(s2, t[idx[k]]);
			if (!perm)
				first = s2;
			REQ_EQ(s2, first);
		}
		ck_assert(sat ? first == UINT64_MAX
			      : first == 2 * big + 12345 + 1 + cand_fx_ra(7));
	}
	feat_from_counts(3, 3, 2, UINT64_MAX, UINT64_MAX, NULL, FEAT_ALL, x);
	ck_assert(x[FEAT_ADAMIC_ADAR] == 16777216.0);
	ck_assert(x[FEAT_RESOURCE_ALLOC] == 16777216.0);
}
END_TEST

/*
 * Boundaries the random graphs above never reach, against a plain edge
 * list: a hub candidate (degree >= 1024, read through the graph's newest
 * index) with edges exactly FEAT_TAU old, which are not "recent" (age <
 * FEAT_TAU, as on the short-list path), beside a short-list candidate with
 * the same; and mutual connections whose edges share one timestamp, where
 * `via` keeps the smallest vertex ids (the order graph_common gives them).
 * Both through feat_compute and feat_pair.
 */
struct bedge {
	uint64_t a, b;
	uint32_t ts;
};

static int bedge_newer(const void *x, const void *y)
{
	uint32_t a = ((const uint32_t *)x)[1], b = ((const uint32_t *)y)[1];

	return a > b ? -1 : a < b;
}

START_TEST(recency_and_via_at_their_boundaries)
{
	enum { NW = 6, NLEAF = 1100, NE = 2 * NW + NLEAF + NW + 3 };
	static struct bedge be[NE];
	struct graph_event ev[NE];
	struct graph *g = graph_new(0);
	struct feat_member fm = { 0 };
	struct graph_view v;
	struct feat_via via;
	const uint32_t old = NOW - 50 * 86400, t1 = NOW - 7 * 3600;
	uint32_t n = 0, i, j, u, pass;
	double x[FEAT_N];

	ck_assert_ptr_nonnull(g);
	/* u = ext(0); hub = ext(1); short candidate = ext(2); mutuals ext(10 + i) */
	for (i = 0; i < NW; i++) {
		be[n++] = (struct bedge){ ext(0), ext(10 + i), t1 };
		be[n++] = (struct bedge){ ext(1), ext(10 + i), old };
		be[n++] = (struct bedge){ ext(2), ext(10 + i), NOW - FEAT_TAU_S };
	}
	for (j = 0; j < NLEAF; j++) /* 20 young, 10 exactly tau old, the rest older */
		be[n++] = (struct bedge){ ext(1), ext(100 + j),
			j < 20 ? NOW - j * 3600 : j < 30 ? NOW - FEAT_TAU_S
			: NOW - FEAT_TAU_S - j * 3600 };
	for (j = 0; j < 3; j++)
		be[n++] = (struct bedge){ ext(2), ext(5000 + j), NOW - j * 3600 };
	ck_assert_uint_eq(n, NE);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(be[i].ts % GRAPH_TS_RES, 0); /* stored as given */
		ev[i] = (struct graph_event){ be[i].a, be[i].b, be[i].ts, GRAPH_ADD };
	}
	ck_assert_int_eq(graph_build(g, ev, n, 0, NULL, NULL), 0);
	graph_view_begin(g, &v);
	u = graph_lookup(&v, ext(0));
	ck_assert_int_eq(feat_member_set(&fm, &v, u, NOW), 0);
	for (uint32_t ci = 1; ci <= 2; ci++) {
		uint32_t c = graph_lookup(&v, ext(ci)), nc = 0, recent = 0, k;
		static uint32_t cl[NE][2]; /* c's (neighbour, ts) */
		uint32_t wv[NW], wk[NW], nw = 0;

		for (i = 0; i < n; i++)
			if (be[i].a == ext(ci)) {
				cl[nc][0] = graph_lookup(&v, be[i].b);
				cl[nc++][1] = be[i].ts;
			}
		qsort(cl, nc, sizeof(cl[0]), bedge_newer);
		for (k = 0; k < nc && k < 32; k++)
			recent += NOW - cl[k][1] < FEAT_TAU_S;
		/* mutuals: key = the later of the two edges; newest first, then
		 * the smaller vertex id */
		for (i = 0; i < n; i++)
			if (be[i].a == ext(0))
				for (j = 0; j < n; j++)
					if (be[j].a == ext(ci) && be[j].b == be[i].b) {
						wv[nw] = graph_lookup(&v, be[i].b);
						wk[nw++] = be[i].ts > be[j].ts ? be[i].ts : be[j].ts;
					}
		for (i = 0; i < nw; i++)
			for (j = i + 1; j < nw; j++)
				if (wk[j] > wk[i] || (wk[j] == wk[i] && wv[j] < wv[i])) {
					uint32_t t = wv[i];

					wv[i] = wv[j], wv[j] = t;
					t = wk[i], wk[i] = wk[j], wk[j] = t;
				}
		ck_assert_uint_eq(nw, NW);
		ck_assert_uint_eq(graph_degree(&v, c), nc);
		ck_assert(ci == 1 ? nc >= 1024 : nc < 1024);
		ck_assert_uint_eq(recent, ci == 1 ? 20 : 3);
		for (pass = 0; pass < 2; pass++) {
			if (pass)
				feat_pair(&fm, c, NULL, x, &via);
			else
				feat_compute(&v, u, c, NOW, NULL, x, &via);
			close_to(x[FEAT_CAND_RECENT], log1p(recent), "cand_recent");
			close_to(x[FEAT_CAND_AGE], log1p((double)(NOW - cl[0][1]) / 3600),
				 "cand_age");
			close_to(x[FEAT_MUTUAL], NW, "mutual");
			ck_assert_uint_eq(via.n, FEAT_VIA_MAX);
			for (k = 0; k < via.n; k++) {
				ck_assert_uint_eq(via.v[k], wv[k]);
				ck_assert_uint_eq(via.ts[k], wk[k]);
			}
		}
	}
	graph_view_end(&v);
	feat_member_release(&fm);
	graph_free(g);
}
END_TEST

/*
 * A logistic model scores 1 / (1 + e^-(bias + sum of w (x - mean) /
 * scale)), worked out here term by term, and a feature that is NaN adds
 * no term at all (no evidence either way), whichever feature it is.
 */
START_TEST(logistic_scores_by_the_formula)
{
	static const enum feat_id f[3] = { FEAT_MUTUAL, FEAT_JACCARD, FEAT_COSINE };
	static const double mean[3] = { 1, 0.2, 0 }, scale[3] = { 2, 0.5, 4 };
	static const double w[3] = { 0.7, -1.5, 3 }, bias = -0.25;
	static const double probe[4][3] = {
		{ 3, 0.1, 0.2 }, { 0, 0.9, 1 }, { 12, 0, 0.05 }, { 1, 0.2, 0 }
	};
	struct err e = { "" };
	struct model *m;
	double x[FEAT_N];
	const char *path;
	uint32_t i, j, nan;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_scoring.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	path = write_file("lr.json", GOOD_HEAD
			  "\"features\":[\"mutual\",\"jaccard\",\"cosine\"],"
			  "\"mean\":[1,0.2,0],\"scale\":[2,0.5,4],"
			  "\"weights\":[0.7,-1.5,3],\"bias\":-0.25}");
	m = model_load(path, &e);
	ck_assert_msg(m != NULL, "%s", e.msg);
	for (i = 0; i < 4; i++)
		for (nan = 0; nan <= 3; nan++) { /* nan == 3: none is NaN */
			double z = bias;

			for (j = 0; j < FEAT_N; j++)
				x[j] = 0.5;
			for (j = 0; j < 3; j++) {
				x[f[j]] = j == nan ? NAN : probe[i][j];
				if (j != nan)
					z += w[j] * (probe[i][j] - mean[j]) / scale[j];
			}
			close_to(model_score(m, x), 1 / (1 + exp(-z)), "logistic score");
		}
	model_free(m);
	unlink(path);
	rmdir(tmpdir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("scoring");
	TCase *t = tcase_create("core");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, features_match_textbook_formulas);
	tcase_add_test(t, feat_pair_equals_feat_compute);
	tcase_add_test(t, counts_equal_feat_compute);
	tcase_add_test(t, jaccard_matches_igraph);
	tcase_add_test(t, model_files);
	tcase_add_test(t, tree_model_files);
	tcase_add_test(t, logistic_scores_by_the_formula);
	tcase_add_test(t, score_n_equals_score);
	tcase_add_test(t, default_model_is_data_model_json);
	tcase_add_test(t, answers_are_valid_safe_and_repeatable);
	tcase_add_test(t, many_dismissed_keep_the_order);
	tcase_add_test(t, mutual_reported_whatever_the_model_reads);
	tcase_add_test(t, directed_answer_same_with_explain);
	tcase_add_test(t, directed_ra_counts_out_degree_one);
	tcase_add_test(t, fixed_point_sums_saturate);
	tcase_add_test(t, recency_and_via_at_their_boundaries);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	return testutil_main(suite());
}
