/*
 * import.h - graph file formats read through igraph (the only module that
 * includes igraph).
 *
 * What always holds:
 * - Formats: "graphml", "gml", "pajek", "ncol", "lgl" (igraph 0.10's
 *   readers). The whole file is read by igraph, then every edge becomes one
 *   add event in igraph's edge order; two (both arcs) when the load is
 *   directed and the file undirected (GraphML edgedefault="undirected",
 *   GML directed 0, Pajek *Edges), whose edges igraph lists smaller
 *   vertex first, a direction the file never gave.
 * - Member ids: GML's numeric vertex "id" (igraph takes up to 2^31 - 1;
 *   a larger one is refused, saying so); GraphML's node id when every
 *   node id is a decimal number; NCOL/LGL vertex names when every name is
 *   a decimal number; Pajek's vertex number (1..n, as in the file).
 *   Otherwise the igraph vertex index (0..n-1). A GraphML file with a
 *   node attribute named "id" is refused: igraph stores it where it keeps
 *   the node ids (it warns so), and equal data merged distinct nodes.
 * - Edge ts: the first numeric edge attribute named "ts", "time" or
 *   "timestamp" (an integer 0..UINT32_MAX, else an error); without one,
 *   `now`. Isolated vertices (no edges) produce no event.
 * - igraph never aborts or prints: errors are caught and returned as
 *   "PATH: reason". ".gz" files are decompressed into a temporary file
 *   first (igraph's readers need a FILE *).
 * - Not thread-safe: igraph's error handler and attribute table are
 *   process-wide settings; call from one thread at a time.
 *
 * Workload: interchange files of up to a few million edges (igraph keeps
 * the whole graph and its attributes in memory while reading).
 */
#ifndef TRIAD_IMPORT_H
#define TRIAD_IMPORT_H

#include <stdint.h>

#include "err.h"
#include "load.h"

/*
 * Read path (format name as above; gz: 1 when the file is gzip-compressed)
 * and append its edges to out as add events. directed: read NCOL/LGL as
 * directed and give an undirected file's edges both ways (the other
 * formats say whether they are directed). Self-loops are counted in
 * out->self_loops and dropped. Returns 0 or -1 with e filled.
 */
int import_read(const char *path, const char *format, int directed,
		uint32_t now, struct event_list *out, struct err *e);

#endif
