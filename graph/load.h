/*
 * load.h - reading edge and event files of every format into events.
 *
 * What always holds:
 * - A file becomes a list of struct graph_event in file order. Formats:
 *     edges   SNAP/KONECT text: "src dst [ts]" per line, separated by
 *             spaces or tabs; "#" and "%" start comment lines; blank lines
 *             and CRLF endings are fine. A fourth column is KONECT's
 *             "src dst weight ts": the weight is ignored, and the ts may
 *             carry a fraction of a second, cut off (not in a third
 *             column, which may be a weight).
 *     csv     "src,dst[,ts]" or "src,dst,weight,ts" (as edges); a first
 *             line whose first field is not a number is a header and
 *             skipped.
 *     ndjson  one event object per line (graph/event.h); may hold removes.
 *     graphml, gml, pajek, ncol, lgl  through igraph (graph/import.h).
 *   The format is guessed from the extension (".gz" stripped first) unless
 *   given. ".gz" files are decompressed on the fly; a ".gz" that is not
 *   gzip data is refused (zlib would read it as plain text). Gzip data
 *   under another name is decompressed too.
 * - Member ids are unsigned 64-bit decimals, any value up to UINT64_MAX;
 *   ts is an integer 0..UINT32_MAX (seconds since the epoch; a fourth
 *   column's fraction is cut off). A missing ts
 *   is the time load_events() started.
 * - Self-loops are dropped and counted, never stored. Repeated pairs stay
 *   in the list; graph_build keeps one edge with the newest ts.
 * - A malformed line is an error "PATH:LINE: reason" quoting the bad
 *   token, or, with skip_bad, counted in bad_skipped and skipped.
 *
 * Workload: SNAP dumps of 10^7..10^8 edges. A plain regular file ending in
 * a newline is mapped read-only and parsed in place by a hand-written
 * scanner, split at newlines into one piece per core (two passes: count
 * lines so each piece writes into an exact slice of the output, then
 * parse); about 15-35M edges/s on two cores. gzip input, pipes and files
 * without a final newline are streamed through zlib on one thread. The
 * file must not be truncated while it is read (the mapping would fault).
 */
#ifndef TRIAD_LOAD_H
#define TRIAD_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"
#include "graph.h"

struct load_opts {
	const char *format; /* NULL: guess from the extension */
	int skip_bad;       /* count and skip malformed lines */
	int directed;       /* igraph readers: read edges as directed */
	int quiet;          /* unused by the library (no progress output) */
};

/* A growable array of events. Zero-initialise it ({0}) before first use. */
struct event_list {
	struct graph_event *ev; /* n used, cap allocated; owned */
	size_t n, cap;
	uint64_t bad_skipped;   /* malformed lines skipped (skip_bad) */
	uint64_t self_loops;    /* src == dst events dropped */
	uint64_t renumbered;    /* igraph-format files whose node ids were not
				 * all usable member ids, so their members were
				 * numbered in file order instead */
};

/*
 * The format name for path from its extension ("edges", "csv", "ndjson",
 * "graphml", "gml", "pajek", "ncol", "lgl"), ".gz" stripped first; NULL
 * when the extension is unknown. O(length of path).
 */
const char *load_format_guess(const char *path);

/* 1 when name is one of the format names above, else 0. */
int load_format_valid(const char *name);

/*
 * Append every event of `path` to out, in file order. o may be NULL
 * (defaults). Returns 0, or -1 with e filled as "PATH:LINE: reason" for a
 * bad line, or "PATH: reason" for an unreadable file, unknown format or
 * out of memory. On error, events appended before it stay in out (the
 * caller normally releases the list). O(file size) time; two threads or
 * more on plain edges/csv files of a few MB and up.
 */
int load_events(const char *path, const struct load_opts *o,
		struct event_list *out, struct err *e);

/* Free the events and reset l to empty. NULL does nothing. */
void event_list_release(struct event_list *l);

/* Append one event. 0, or -1 when out of memory (l unchanged). */
int event_list_push(struct event_list *l, const struct graph_event *ev);

/* Make room for `more` events beyond l->n. 0, or -1 (l unchanged). */
int event_list_reserve(struct event_list *l, size_t more);

/*
 * Build g (new and empty) from l, which may contain removes, so that the
 * result has the same edges and timestamps as applying l in order with
 * graph_apply. Without removes this is graph_build(g, l->ev, l->n, flags).
 * With removes, pairs are first resolved (sort by pair, keep the adds after
 * the pair's last remove): O(n log n) time and O(n) extra memory. Members
 * that end with no edge are not created (graph_apply would keep them as
 * degree-0 vertices). Returns 0, or -1 with e filled.
 */
int load_build(struct graph *g, const struct event_list *l,
	       unsigned build_flags, struct err *e);

/* load_build, using l's memory as scratch (graph_build_consume): release l
 * afterwards, without reading its events. */
int load_build_consume(struct graph *g, struct event_list *l,
		       unsigned build_flags, struct err *e);

/*
 * A file's bytes, gzip decompressed, for every reader of input (the text
 * formats here, igraph's in import.c). Gzip data, from a regular file or
 * a pipe (whose first two bytes tell), goes through zlib's inflate member
 * after member, and bytes after the last member that are not another are
 * refused ("PATH: data after the end of the gzip stream, at byte N, is
 * not gzip ..."; zlib's gzread ignores them, so a plain file appended to
 * a gzip one was dropped silently); plain data is read as it is.
 * load_in_open owns fd from its call (closed on failure too); NULL with e
 * filled. load_in_read: up to n bytes into buf, 0 at the end, -1 with e
 * filled (a read error, damaged data, a stream cut short: "PATH:
 * truncated gzip input ..."). A pipe whose name ends in ".gz" and whose
 * data is not gzip is refused by load_in_open.
 */
enum load_kind { LOAD_PLAIN, LOAD_GZIP, LOAD_PIPE };
/*
 * Open path for reading: 0 with *fd open, *st filled and *kind: LOAD_PLAIN
 * a regular file without a gzip header (read it as it is), LOAD_GZIP a
 * regular gzip file, LOAD_PIPE anything else (both for load_in_open).
 * -1 with e filled: it cannot be opened, is a directory, or its name ends
 * in ".gz" and it is a regular file without a gzip header.
 */
int load_open(const char *path, int *fd, struct stat *st,
	      enum load_kind *kind, struct err *e);
struct load_in;
struct load_in *load_in_open(int fd, const char *path, enum load_kind kind,
			     struct err *e);
ssize_t load_in_read(struct load_in *in, void *buf, size_t n, struct err *e);
void load_in_close(struct load_in *in);


#endif
