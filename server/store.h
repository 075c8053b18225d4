/*
 * store.h - snapshots and the service's durable state, on LMDB.
 *
 * This is the only module that includes lmdb.h. Everything it writes is an
 * LMDB environment (a directory holding data.mdb and lock.mdb) with named
 * databases:
 *
 *   "meta"    one record "graph": magic, format version, directed flag,
 *             member (vertex) count, edge count, chunk count, CRC32.
 *   "chunks"  key: chunk number, 4 bytes big-endian; value: CRC32 (4 bytes
 *             little-endian, over the key and the bytes) then the bytes of
 *             graph_chunk_encode for that chunk.
 *   "log"     (state only) key: sequence, 8 bytes big-endian; value: a batch
 *             of events applied to the graph after the checkpoint, in the
 *             order they were applied (HTTP and Kafka alike), CRC32-checked.
 *   "offsets" (state only) key: topic, NUL, partition (4 bytes big-endian);
 *             value: the next Kafka offset to consume (8 bytes big-endian).
 *   "dismiss" (state only) key: member, candidate (8+8 bytes big-endian).
 *   In a state, "meta" also holds "kafka-cluster", NUL, topic: the id of
 *   the Kafka cluster the topic's offsets were consumed from.
 *
 * What always holds:
 * - A snapshot is written in one transaction: a reader sees the old one or
 *   the new one, never a mix.
 * - In a state directory, the checkpoint (chunks + meta), the offsets and
 *   the log always describe one consistent point: checkpoint + the log
 *   replayed in key order = everything acknowledged, and the offsets are
 *   where Kafka consumption resumes. Every function that changes the state
 *   does it in one transaction committed with LMDB's default durable sync,
 *   so when it returns 0 the change survives kill -9 and power loss.
 * - Everything read back is untrusted: sizes, CRCs and the chunk set are
 *   checked before the graph sees a byte, and a bad record is refused with
 *   a message naming the path and the record. (LMDB trusts its own B-tree
 *   pages; a file truncated below its last page is refused before it is
 *   mapped, but bytes scribbled over B-tree page headers may go unnoticed
 *   by LMDB itself. CRCs cover every record value we store; a snapshot's
 *   whole data.mdb has a checksum, and store_open first reads a state
 *   whole in a child process, refusing it if the child faults.)
 *
 * Workload: a checkpoint every few seconds costing O(changed chunks + log
 * entries since the last one), a log append per HTTP request or Kafka
 * micro-batch, rare dismissals.
 *
 * Threads: a struct store may be used from any thread; its writing calls
 * serialise on an internal mutex. The caller must hold the graph's writer
 * side (see graph.h) around store_checkpoint and store_state_load, which
 * call writer functions of the graph.
 */
#ifndef TRIAD_STORE_H
#define TRIAD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "graph.h"

#define STORE_FORMAT 1u /* meta format version written and accepted */

/* ---- offline snapshots ------------------------------------------------ */

/*
 * Write g as a snapshot at `path` (a directory, created when missing; an
 * existing snapshot there is replaced atomically). Reads g through a view,
 * so it may run beside readers but not beside the writer. The map size is
 * computed from the graph's size and doubled when LMDB reports it full.
 * O(graph bytes). 0 or -1 with e filled.
 */
int store_snapshot_write(const char *path, const struct graph *g,
			 struct err *e);

/*
 * Open a snapshot (or a state directory's checkpoint) into a new graph.
 * Refuses, naming the path and the record at fault: a missing directory or
 * data file, a file that is not LMDB or is shorter than its last page, a
 * missing/garbled/foreign meta record, a wrong format version, a missing,
 * extra, truncated or CRC-failing chunk, and whatever graph_import_* finds
 * wrong inside the bytes. NULL on error; the caller graph_free()s the
 * result. O(graph bytes).
 */
struct graph *store_snapshot_open(const char *path, struct err *e);

/*
 * For tests of the refusal paths only: damage the snapshot at `path` in
 * one of the ways below, through LMDB, so the file stays valid LMDB and the
 * damage is in our records. 0 or -1 with e filled.
 */
enum store_tamper {
	STORE_TAMPER_FLIP_BYTE, /* flip one bit in the middle of chunk c */
	STORE_TAMPER_TRUNCATE,  /* cut chunk c's record to half its length */
	STORE_TAMPER_DROP,      /* delete chunk c's record */
	STORE_TAMPER_VERSION,   /* rewrite meta with format version + 1 */
	STORE_TAMPER_EXTRA      /* add a chunk record past the last chunk */
};
int store_snapshot_tamper(const char *path, enum store_tamper what,
			  uint32_t c, struct err *e);

/* ---- durable state (serve --state DIR) -------------------------------- */

struct store; /* an open state environment */

/* A Kafka partition position: the next offset to consume. */
struct store_offset {
	int32_t partition;
	int64_t next; /* >= 0 */
};

/*
 * Open (creating the directory and the environment when missing) the state
 * at `dir`. NULL with e filled on error. The caller store_close()s it.
 * An environment that holds anything but lacks one of the databases above
 * (every state has all of them from its first transaction) is refused as
 * damaged or foreign, and nothing is written to it.
 * The map starts at 1 GiB and doubles whenever a write finds it full. For
 * fault tests only, the environment variable TRIAD_STATE_MAP_BYTES=N (a
 * decimal byte count, at least 65536) fixes the map at N bytes (or the
 * file's size when larger) and never grows it: a write that does not fit
 * then fails with "state map full" and changes nothing.
 */
struct store *store_open(const char *dir, struct err *e);

/* Close. NULL is fine. No call may be in progress. */
void store_close(struct store *s);

/* 1 when the state holds a checkpoint, 0 when empty, -1 on error. */
int store_has_checkpoint(struct store *s, struct err *e);

/*
 * Recovery: open the checkpoint into a new graph, then apply every logged
 * batch in order (counting into st, which may be NULL). *g_out receives
 * the graph (caller frees). When the state has no checkpoint, *g_out is
 * left alone and the log is applied to the graph already there (it must
 * be non-NULL then). *replayed (may be NULL) receives the number of events
 * replayed. 0 or -1 with e filled. O(checkpoint + log).
 */
int store_state_load(struct store *s, struct graph **g_out,
		     struct graph_apply_stats *st, uint64_t *replayed,
		     struct err *e);

/*
 * Durably append a batch of n events (about to be applied to the graph, in
 * this order) to the log, and in the same transaction set the offsets of
 * `topic` given in off[0..noff) (noff may be 0, topic NULL then). Returns
 * only after the commit is on disk. O(n + noff). 0 or -1 with e filled
 * (nothing written then).
 */
int store_log_append(struct store *s, const struct graph_event *ev, size_t n,
		     const char *topic, const struct store_offset *off,
		     size_t noff, struct err *e);

/*
 * The stored offset of (topic, partition): 1 with *next set, 0 when none
 * is stored, -1 on error.
 */
int store_offset_get(struct store *s, const char *topic, int32_t partition,
		     int64_t *next, struct err *e);

/*
 * Every stored offset of topic, by partition, into *out (n of them; the
 * caller frees; NULL when none). 0, or -1 with e filled.
 */
int store_offsets_all(struct store *s, const char *topic,
		      struct store_offset **out, size_t *n, struct err *e);

/*
 * The id of the Kafka cluster the offsets of topic were consumed from
 * (store_cluster_put): 1 with it in id[0..n) (NUL-terminated), 0 when
 * none is stored, -1 with e filled.
 */
int store_cluster_get(struct store *s, const char *topic, char *id, size_t n,
		      struct err *e);

/* Durably record id (at most 255 bytes) as topic's cluster. 0 or -1. */
int store_cluster_put(struct store *s, const char *topic, const char *id,
		      struct err *e);

/*
 * Which built-in model serve chose for this state at its first start
 * without --model ("times" or "static", see serve.c): kept, so that a
 * restart ranks with the model it ranked with before. get: 1 with it in
 * kind[0..n), 0 when none is stored, -1 with e. put: 0 or -1.
 */
int store_builtin_get(struct store *s, char *kind, size_t n, struct err *e);
int store_builtin_put(struct store *s, const char *kind, struct err *e);

/* What one checkpoint did. */
struct store_ckpt_stats {
	uint64_t chunks;      /* chunk records written */
	uint64_t bytes;       /* bytes of chunk records written */
	uint64_t log_dropped; /* log batches removed */
	uint64_t members, edges;
};

/*
 * Checkpoint g: write the chunks changed since the last checkpoint
 * (graph_dirty_take; all chunks when `full` or after a failed
 * checkpoint), the meta record and the offsets of `topic` in off[0..noff),
 * and empty the log - all in one transaction. The caller holds the graph's
 * writer side for the whole call, and every event of the log must already
 * be applied to g. O(changed chunks + log). 0 or -1 with e filled (the
 * state is then as before the call).
 */
int store_checkpoint(struct store *s, struct graph *g, int full,
		     const char *topic, const struct store_offset *off,
		     size_t noff, struct store_ckpt_stats *st, struct err *e);

/* Durably record that `member` dismissed `candidate`. 0 or -1. */
int store_dismiss_add(struct store *s, uint64_t member, uint64_t candidate,
		      struct err *e);

/* Call fn for every stored dismissal (ascending). 0 or -1. */
int store_dismiss_each(struct store *s,
		       void (*fn)(void *ctx, uint64_t member,
				  uint64_t candidate),
		       void *ctx, struct err *e);

#endif
