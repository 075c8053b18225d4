/*
 * fuzz_snapshot.c - the snapshot chunk decoder: graph_import_begin /
 * graph_import_chunk / graph_import_end (graph/graph.h) on arbitrary bytes.
 *
 * Input layout (so seeds can be real encoded chunks):
 *   u16le nvertices (taken mod 1025), u16le nedges, u8 flags
 *   (bit 0: directed, bit 1: give chunks in reverse order), then per chunk
 *   u16le length and that many bytes (cut short at the end of input).
 * Checks: never crashes; when the import succeeds, every list walked with
 * graph_iter has ascending ids < nvertices and as many entries as
 * graph_degree, member ids map back to their vertex, and the edge count
 * is the one announced; an undirected graph is symmetric (w lists u
 * with the same timestamp whenever u lists w).
 */
#include <string.h>

#include "fuzz.h"
#include "graph.h"

#ifndef FUZZ_ONE
#define FUZZ_ONE LLVMFuzzerTestOneInput
#endif

/* 1 when the last input imported (the replay test checks that the
 * committed seeds are real snapshots, not just bytes that get refused) */
static int fz_snapshot_ok;

static void fz_snapshot_check(struct graph *g, uint32_t nv, uint64_t ne,
			      int directed)
{
	struct graph_view v;
	struct graph_stats st;
	uint64_t sum = 0;
	uint32_t u;

	graph_view_begin(g, &v);
	FUZZ_REQUIRE(graph_nvertices(&v) == nv);
	for (u = 0; u < nv; u++) {
		struct graph_iter it;
		uint32_t w, ts, count = 0, prev = 0;

		FUZZ_REQUIRE(graph_lookup(&v, graph_member(&v, u)) == u);
		graph_iter_init(&it, &v, u);
		while (graph_iter_next(&it, &w, &ts)) {
			FUZZ_REQUIRE(w < nv);
			FUZZ_REQUIRE(!count || w > prev);
			FUZZ_REQUIRE(count < UINT32_MAX);
			if (!directed) {
				uint32_t back;

				/* undirected: w lists u with the same ts */
				FUZZ_REQUIRE(graph_edge_ts(&v, w, u, &back));
				FUZZ_REQUIRE(back == ts);
			}
			prev = w;
			count++;
		}
		FUZZ_REQUIRE(count == graph_degree(&v, u));
		sum += count;
	}
	graph_view_end(&v);
	graph_stats(g, &st);
	FUZZ_REQUIRE(st.edges == ne);
	FUZZ_REQUIRE(sum == (directed ? ne : 2 * ne));
}

int FUZZ_ONE(const uint8_t *data, size_t size);
int FUZZ_ONE(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	uint32_t nv, nchunks, i;
	uint64_t ne;
	struct err e = { "" };
	struct graph *g;
	int directed, reverse, ok = 0;

	fz_snapshot_ok = 0;
	if (size < 5)
		return 0;
	nv = (uint32_t)(p[0] | p[1] << 8) % 1025u;
	ne = (uint64_t)(p[2] | p[3] << 8);
	directed = p[4] & 1;
	reverse = (p[4] >> 1) & 1;
	p += 5;
	nchunks = (nv + GRAPH_CHUNK - 1) / GRAPH_CHUNK;
	g = graph_new(directed);
	if (!g)
		return 0;
	if (graph_import_begin(g, nv, ne, &e))
		goto done;
	for (i = 0; i < nchunks; i++) {
		uint32_t c = reverse ? nchunks - 1 - i : i;
		size_t len = 0;

		if (end - p >= 2) {
			len = (size_t)(p[0] | p[1] << 8);
			p += 2;
		} else {
			p = end;
		}
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		if (graph_import_chunk(g, c, p, len, &e))
			goto done;
		p += len;
	}
	if (graph_import_end(g, &e))
		goto done;
	ok = 1;
	fz_snapshot_check(g, nv, ne, directed);
done:
	fz_snapshot_ok = ok;
	if (!ok)
		FUZZ_REQUIRE(e.msg[0] != '\0');
	graph_free(g);
	return 0;
}
