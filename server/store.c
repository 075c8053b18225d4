/*
 * store.c - snapshots and durable state on LMDB (see store.h for the
 * layout and what always holds).
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "mem.h"

#define META_MAGIC "TRIADGPH"
#define META_LEN 40u
#define EV_LEN 21u             /* src 8, dst 8, ts 4, op 1 */
#define LOG_HDR 8u             /* crc 4, n 4 */
#define MAP_MIN ((size_t)64 << 20)
#define STATE_MAP ((size_t)1 << 30)
#define GROW_TRIES 12

struct store {
	MDB_env *env;
	MDB_dbi meta, chunks, log, offsets, dismiss;
	pthread_mutex_t mu;  /* serialises every transaction we start */
	uint64_t next_seq;   /* key of the next log record */
	int need_full;       /* a checkpoint failed after graph_dirty_take */
	size_t mapsize;
	int map_fixed;       /* TRIAD_STATE_MAP_BYTES set: never grow */
	int lockfd;          /* DIR/triad.lock, flock'd while open; -1 */
	char *dir;
};

/* ---- byte helpers ------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p + 4) << 32 | get_le32(p);
}

static uint32_t crc_of(const void *a, size_t na, const void *b, size_t nb)
{
	uLong c = crc32(0L, Z_NULL, 0);

	/* zlib takes uInt lengths; chunk records stay far below 4 GiB but
	 * feed in slices anyway so no length is ever cut. */
	while (na) {
		uInt k = na > 1u << 30 ? 1u << 30 : (uInt)na;
		c = crc32(c, a, k);
		a = (const uint8_t *)a + k;
		na -= k;
	}
	while (nb) {
		uInt k = nb > 1u << 30 ? 1u << 30 : (uInt)nb;
		c = crc32(c, b, k);
		b = (const uint8_t *)b + k;
		nb -= k;
	}
	return (uint32_t)c;
}

/* ---- meta record ------------------------------------------------------- */

struct meta {
	uint32_t version, directed, nchunks;
	uint64_t members, edges;
};

static void meta_encode(uint8_t out[META_LEN], const struct meta *m)
{
	memcpy(out, META_MAGIC, 8);
	put_le32(out + 8, m->version);
	put_le32(out + 12, m->directed);
	put_le64(out + 16, m->members);
	put_le64(out + 24, m->edges);
	put_le32(out + 32, m->nchunks);
	put_le32(out + 36, crc_of(out, 36, NULL, 0));
}

static int meta_decode(const MDB_val *v, struct meta *m, const char *path,
		       struct err *e)
{
	const uint8_t *p = v->mv_data;

	if (v->mv_size != META_LEN || memcmp(p, META_MAGIC, 8))
		return err_set(e, "\"%s\": meta record: not a triad graph "
			       "record", path);
	if (get_le32(p + 36) != crc_of(p, 36, NULL, 0))
		return err_set(e, "\"%s\": meta record: crc mismatch", path);
	m->version = get_le32(p + 8);
	m->directed = get_le32(p + 12);
	m->members = get_le64(p + 16);
	m->edges = get_le64(p + 24);
	m->nchunks = get_le32(p + 32);
	if (m->version != STORE_FORMAT)
		return err_set(e, "\"%s\": meta record: format version %u, "
			       "this triad reads %u", path, m->version,
			       STORE_FORMAT);
	if (m->directed > 1)
		return err_set(e, "\"%s\": meta record: bad directed flag",
			       path);
	if (m->members > UINT32_MAX ||
	    m->nchunks != (m->members + GRAPH_CHUNK - 1) / GRAPH_CHUNK)
		return err_set(e, "\"%s\": meta record: %llu members do not "
			       "fit %u chunks", path,
			       (unsigned long long)m->members, m->nchunks);
	return 0;
}

/* ---- environment ------------------------------------------------------- */

static int mdb_fail(struct err *e, int rc, const char *path, const char *what)
{
	return err_set(e, "\"%s\": %s: %s", path, what, mdb_strerror(rc));
}

/* mkdir -p: path and any missing parents. */
static int ensure_dir(const char *path, struct err *e)
{
	struct stat st;
	char tmp[4096];
	size_t n = strlen(path), i;

	if (n >= sizeof(tmp))
		return err_set(e, "\"%s\": path too long", path);
	memcpy(tmp, path, n + 1);
	for (i = 1; i < n; i++) {
		if (tmp[i] != '/')
			continue;
		tmp[i] = 0;
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return err_set(e, "\"%s\": cannot create directory: %s",
				       tmp, strerror(errno));
		tmp[i] = '/';
	}
	if (mkdir(path, 0755) && errno != EEXIST)
		return err_set(e, "\"%s\": cannot create directory: %s", path,
			       strerror(errno));
	if (stat(path, &st) || !S_ISDIR(st.st_mode))
		return err_set(e, "\"%s\": not a directory", path);
	return 0;
}

/*
 * LMDB maps data.mdb and trusts that every page up to the last one it
 * recorded is there; a file cut short would fault (SIGBUS) on first
 * touch. Refuse such a file before any transaction reads it.
 */
static int check_file_size(MDB_env *env, const char *path, struct err *e)
{
	char fn[4096];
	struct stat st;
	MDB_envinfo info;
	MDB_stat ms;

	if (snprintf(fn, sizeof(fn), "%s/data.mdb", path) >= (int)sizeof(fn))
		return err_set(e, "\"%s\": path too long", path);
	if (stat(fn, &st))
		return err_set(e, "\"%s\": %s", fn, strerror(errno));
	if (mdb_env_info(env, &info) || mdb_env_stat(env, &ms))
		return err_set(e, "\"%s\": cannot read environment info", fn);
	if (((uint64_t)info.me_last_pgno + 1) * ms.ms_psize >
	    (uint64_t)st.st_size)
		return err_set(e, "\"%s\": truncated (%lld bytes, last page "
			       "%zu needs %llu)", fn, (long long)st.st_size,
			       info.me_last_pgno,
			       ((unsigned long long)info.me_last_pgno + 1) *
				       ms.ms_psize);
	return 0;
}

/* ---- a snapshot's whole-file checksum ------------------------------------ */

/*
 * LMDB trusts its own pages: a damaged B-tree page or meta page makes a
 * read fault (SIGBUS, SIGSEGV) inside mdb_env_info, mdb_get or a cursor,
 * before any chunk's CRC is reached (a helper's 400 single-byte writes
 * into a small snapshot crashed `triad stats` 8 times). A snapshot never
 * changes once written, so it also keeps the CRC-32 of its whole data.mdb
 * in SNAP/triad.sum, checked with plain read()s before LMDB maps the file.
 * A snapshot without the file (written before 7 Dec, or by a load that
 * was interrupted after its transaction) opens without the check; a
 * server's --state changes all the time and has none.
 */
#define SUM_FILE "triad.sum"
#define SUM_BUF (4u << 20)

/* CRC-32 of bytes [off, off + len) of fd, read with pread. */
struct crc_part {
	int fd;
	uint64_t off, len;
	uint32_t crc;
	int err; /* errno, or 0 */
};

static void *crc_part_run(void *arg)
{
	struct crc_part *p = arg;
	uint8_t *buf = malloc(SUM_BUF);
	uLong c = crc32(0L, Z_NULL, 0);
	uint64_t done = 0;

	p->err = buf ? 0 : ENOMEM;
	while (!p->err && done < p->len) {
		size_t want = p->len - done < SUM_BUF ? (size_t)(p->len - done)
						      : SUM_BUF;
		ssize_t r = pread(p->fd, buf, want, (off_t)(p->off + done));

		if (r > 0) {
			c = crc32(c, buf, (uInt)r);
			done += (uint64_t)r;
		} else if (r == 0) {
			p->err = EIO; /* the file shrank under us */
		} else if (errno != EINTR) {
			p->err = errno;
		}
	}
	free(buf);
	p->crc = (uint32_t)c;
	return NULL;
}

/* CRC-32 and size of file fn; a large file is read in two halves on two
 * threads (crc32_combine joins them): the check is on the reopen path. */
static int file_crc(const char *fn, uint64_t *size, uint32_t *crc,
		    struct err *e)
{
	struct crc_part a, b;
	struct stat st;
	pthread_t t;
	/* O_NONBLOCK: a FIFO in its place must not hang the open */
	int fd = open(fn, O_RDONLY | O_CLOEXEC | O_NONBLOCK), two;

	if (fd < 0)
		return err_set(e, "\"%s\": %s", fn, strerror(errno));
	if (fstat(fd, &st)) {
		err_set(e, "\"%s\": %s", fn, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, "\"%s\": not a regular file", fn);
		close(fd);
		return -1;
	}
	a.fd = b.fd = fd;
	a.off = 0;
	a.len = (uint64_t)st.st_size;
	b.len = 0;
	two = a.len >= 4 * (uint64_t)SUM_BUF;
	if (two) {
		b.off = a.len / 2;
		b.len = a.len - b.off;
		a.len = b.off;
		two = !pthread_create(&t, NULL, crc_part_run, &b);
		if (!two) { /* no thread: one pass over the whole file */
			a.len += b.len;
			b.len = 0;
		}
	}
	crc_part_run(&a);
	if (two)
		pthread_join(t, NULL);
	close(fd);
	if (a.err || (two && b.err))
		return err_set(e, "\"%s\": read error: %s", fn,
			       strerror(a.err ? a.err : b.err));
	*size = a.len + b.len;
	*crc = two ? (uint32_t)crc32_combine(a.crc, b.crc, (z_off_t)b.len)
		   : a.crc;
	return 0;
}

/* fn = dir/name, or -1 with e filled when it does not fit. */
static int dir_file(char *fn, size_t n, const char *dir, const char *name,
		    struct err *e)
{
	if (snprintf(fn, n, "%s/%s", dir, name) >= (int)n)
		return err_set(e, "\"%s\": path too long", dir);
	return 0;
}

/* Write SNAP/triad.sum for SNAP/data.mdb as it is now (tmp, fsync, rename). */
static int sum_write(const char *path, struct err *e)
{
	char db[4096], fn[4096], tmp[4200];
	uint64_t size;
	uint32_t crc;
	FILE *f;
	int ok;

	if (dir_file(db, sizeof(db), path, "data.mdb", e) ||
	    dir_file(fn, sizeof(fn), path, SUM_FILE, e) ||
	    file_crc(db, &size, &crc, e))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp", fn);
	if (!(f = fopen(tmp, "w")))
		return err_set(e, "\"%s\": %s", tmp, strerror(errno));
	ok = fprintf(f, "triad-snapshot crc32 %llu %08x\n",
		     (unsigned long long)size, crc) > 0;
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) || !ok || rename(tmp, fn)) {
		err_set(e, "\"%s\": cannot write: %s", fn, strerror(errno));
		unlink(tmp);
		return -1;
	}
	{ /* the rename itself on disk */
		int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

/* 0 when data.mdb matches SNAP/triad.sum or SNAP has none; -1 with e
 * filled. */
static int sum_check(const char *path, struct err *e)
{
	char db[4096], fn[4096], line[128];
	unsigned long long want_size;
	unsigned want_crc;
	uint64_t size;
	uint32_t crc;
	FILE *f;
	int n;

	if (dir_file(db, sizeof(db), path, "data.mdb", e) ||
	    dir_file(fn, sizeof(fn), path, SUM_FILE, e))
		return -1;
	if (!(f = fopen(fn, "r")))
		return errno == ENOENT ? 0
				       : err_set(e, "\"%s\": %s", fn, strerror(errno));
	n = fgets(line, sizeof(line), f) &&
	    sscanf(line, "triad-snapshot crc32 %llu %x", &want_size,
		   &want_crc) == 2;
	fclose(f);
	if (!n)
		return err_set(e, "\"%s\": not a triad checksum file", fn);
	if (file_crc(db, &size, &crc, e))
		return -1;
	if (size != want_size || crc != want_crc)
		return err_set(e, "\"%s\": does not match its checksum in "
			       SUM_FILE " (%llu bytes, crc32 %08x; want %llu, "
			       "%08x): damaged, or its triad load was "
			       "interrupted: load it again", db,
			       (unsigned long long)size, crc, want_size,
			       want_crc);
	return 0;
}

/* Open an existing snapshot's environment read-only without a lock file:
 * path a directory holding a regular, non-empty data.mdb that matches its
 * checksum (sum_check), before LMDB maps it. */
static int env_open_ro(const char *path, MDB_env **out, struct err *e)
{
	char fn[4096];
	struct stat st;
	MDB_env *env = NULL;
	int rc;

	if (dir_file(fn, sizeof(fn), path, "data.mdb", e))
		return -1;
	if (stat(path, &st))
		return err_set(e, "\"%s\": %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(e, "\"%s\": not a snapshot directory", path);
	if (stat(fn, &st))
		return err_set(e, "\"%s\": %s", fn, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(e, "\"%s\": not a regular file", fn);
	if (!st.st_size)
		return err_set(e, "\"%s\": empty file", fn);
	if (sum_check(path, e))
		return -1;
	rc = mdb_env_create(&env);
	if (rc)
		return mdb_fail(e, rc, path, "cannot create environment");
	mdb_env_set_maxdbs(env, 8);
	mdb_env_set_mapsize(env, (size_t)st.st_size + MAP_MIN);
	rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
			  0644);
	if (rc) {
		mdb_env_close(env);
		return mdb_fail(e, rc, fn, "cannot open");
	}
	if (check_file_size(env, path, e)) {
		mdb_env_close(env);
		return -1;
	}
	*out = env;
	return 0;
}

/* ---- chunks ------------------------------------------------------------ */

/* Encode chunk c of v and put it into dbi (append when `append`). */
static int put_chunk(MDB_txn *txn, MDB_dbi dbi, const struct graph_view *v,
		     uint32_t c, struct graph_buf *buf, int append,
		     uint64_t *bytes, int *mrc, struct err *e)
{
	uint8_t kb[4];
	MDB_val k, d;
	int rc;

	buf->len = 0;
	if (graph_chunk_encode(v, c, buf, e))
		return -1;
	put_be32(kb, c);
	k.mv_size = 4;
	k.mv_data = kb;
	d.mv_size = buf->len + 4;
	d.mv_data = NULL;
	rc = mdb_put(txn, dbi, &k, &d, MDB_RESERVE | (append ? MDB_APPEND : 0));
	if (rc) {
		*mrc = rc;
		return err_set(e, "chunk %u: %s", c, mdb_strerror(rc));
	}
	put_le32(d.mv_data, crc_of(kb, 4, buf->p, buf->len));
	if (buf->len)
		memcpy((uint8_t *)d.mv_data + 4, buf->p, buf->len);
	*bytes += buf->len + 4;
	return 0;
}

/* Read meta + chunks of an open transaction into a new graph. */
static struct graph *load_graph(MDB_txn *txn, MDB_dbi mdbi, MDB_dbi cdbi,
				const char *path, struct err *e)
{
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	struct meta m = { 0 };
	struct graph *g = NULL;
	uint32_t next = 0;
	int rc;

	k.mv_data = "graph";
	k.mv_size = 5;
	rc = mdb_get(txn, mdbi, &k, &d);
	if (rc) {
		if (rc == MDB_NOTFOUND)
			err_set(e, "\"%s\": meta record missing", path);
		else
			mdb_fail(e, rc, path, "meta record");
		return NULL;
	}
	if (meta_decode(&d, &m, path, e))
		return NULL;
	g = graph_new((int)m.directed);
	if (!g) {
		err_set(e, "\"%s\": out of memory", path);
		return NULL;
	}
	if (graph_import_begin(g, m.members, m.edges, e)) {
		err_prefix(e, "\"%s\"", path);
		goto fail;
	}
	rc = mdb_cursor_open(txn, cdbi, &cur);
	if (rc) {
		mdb_fail(e, rc, path, "chunks");
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		const uint8_t *p = d.mv_data;
		uint32_t c;

		if (k.mv_size != 4) {
			err_set(e, "\"%s\": chunk record with a %zu-byte key",
				path, k.mv_size);
			goto fail;
		}
		c = get_be32(k.mv_data);
		if (c >= m.nchunks) {
			err_set(e, "\"%s\": chunk %u: beyond the %u chunks the "
				"meta record names", path, c, m.nchunks);
			goto fail;
		}
		if (c != next) {
			err_set(e, "\"%s\": chunk %u: missing", path, next);
			goto fail;
		}
		if (d.mv_size < 4) {
			err_set(e, "\"%s\": chunk %u: truncated record (%zu "
				"bytes)", path, c, d.mv_size);
			goto fail;
		}
		if (get_le32(p) != crc_of(k.mv_data, 4, p + 4, d.mv_size - 4)) {
			err_set(e, "\"%s\": chunk %u: crc mismatch (corrupted "
				"or truncated record)", path, c);
			goto fail;
		}
		if (graph_import_chunk(g, c, p + 4, d.mv_size - 4, e)) {
			err_prefix(e, "\"%s\": chunk %u", path, c);
			goto fail;
		}
		next++;
	}
	if (rc != MDB_NOTFOUND) {
		mdb_fail(e, rc, path, "chunks");
		goto fail;
	}
	if (next != m.nchunks) {
		err_set(e, "\"%s\": chunk %u: missing", path, next);
		goto fail;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (graph_import_end(g, e)) {
		err_prefix(e, "\"%s\"", path);
		goto fail;
	}
	return g;
fail:
	if (cur)
		mdb_cursor_close(cur);
	graph_free(g);
	return NULL;
}

/* ---- offline snapshots ------------------------------------------------- */

static int snapshot_txn(MDB_env *env, const char *path, const struct graph *g,
			int *mrc, struct err *e)
{
	char sum[4096];
	MDB_txn *txn = NULL;
	MDB_dbi mdbi, cdbi;
	struct graph_view v;
	struct graph_buf buf = { 0 };
	struct graph_stats gs;
	struct meta m = { 0 };
	uint8_t mb[META_LEN];
	MDB_val k, d;
	uint64_t bytes = 0;
	uint32_t c;
	int rc, ret = -1, viewing = 0;

	rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc)
		goto mdb_err;
	/* a server's --state holds a log of acknowledged events: replacing
	 * its chunks under it would leave that state unloadable */
	rc = mdb_dbi_open(txn, "log", 0, &mdbi);
	if (rc != MDB_NOTFOUND) {
		if (!rc)
			err_set(e, "is a server's --state directory, not a "
				"snapshot: nothing written (give -o another "
				"directory)");
		else
			err_set(e, "%s", mdb_strerror(rc));
		goto out;
	}
	/* writing now: until the new checksum is written, none (not a
	 * stale one, which would refuse the new file) */
	if (dir_file(sum, sizeof(sum), path, SUM_FILE, e))
		goto out;
	if (unlink(sum) && errno != ENOENT) {
		err_set(e, "\"%s\": %s", sum, strerror(errno));
		goto out;
	}
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &mdbi)) ||
	    (rc = mdb_dbi_open(txn, "chunks", MDB_CREATE, &cdbi)) ||
	    (rc = mdb_drop(txn, cdbi, 0)))
		goto mdb_err;
	graph_view_begin(g, &v);
	viewing = 1;
	graph_stats(g, &gs);
	m.version = STORE_FORMAT;
	m.directed = graph_is_directed(g) ? 1 : 0;
	m.members = graph_nvertices(&v);
	m.edges = gs.edges;
	m.nchunks = graph_nchunks(&v);
	for (c = 0; c < m.nchunks; c++)
		if (put_chunk(txn, cdbi, &v, c, &buf, 1, &bytes, mrc, e))
			goto out;
	graph_view_end(&v);
	viewing = 0;
	meta_encode(mb, &m);
	k.mv_data = "graph";
	k.mv_size = 5;
	d.mv_data = mb;
	d.mv_size = META_LEN;
	if ((rc = mdb_put(txn, mdbi, &k, &d, 0)))
		goto mdb_err;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto mdb_err;
	ret = 0;
	goto out;
mdb_err:
	*mrc = rc;
	err_set(e, "%s", mdb_strerror(rc));
out:
	if (viewing)
		graph_view_end(&v);
	if (txn)
		mdb_txn_abort(txn);
	graph_buf_release(&buf);
	return ret;
}

int store_snapshot_write(const char *path, const struct graph *g,
			 struct err *e)
{
	struct graph_stats gs;
	size_t mapsize;
	int tries;

	if (ensure_dir(path, e))
		return -1;
	graph_stats(g, &gs);
	/* encoded chunks are about the in-memory base size; leave room for
	 * B-tree pages and LMDB's copy-on-write of a replaced snapshot */
	mapsize = gs.bytes > SIZE_MAX / 4 ? SIZE_MAX / 2
					  : (size_t)gs.bytes * 3;
	if (mapsize < MAP_MIN)
		mapsize = MAP_MIN;
	for (tries = 0; tries < GROW_TRIES; tries++) {
		MDB_env *env = NULL;
		int rc, mrc = 0;

		rc = mdb_env_create(&env);
		if (rc)
			return mdb_fail(e, rc, path, "cannot create environment");
		mdb_env_set_maxdbs(env, 8);
		mdb_env_set_mapsize(env, mapsize);
		rc = mdb_env_open(env, path, MDB_NOTLS, 0644);
		if (rc) {
			mdb_env_close(env);
			return mdb_fail(e, rc, path, "cannot open");
		}
		rc = snapshot_txn(env, path, g, &mrc, e);
		mdb_env_close(env);
		if (!rc)
			return sum_write(path, e);
		if (mrc != MDB_MAP_FULL || mapsize > SIZE_MAX / 2) {
			err_prefix(e, "\"%s\"", path);
			return -1;
		}
		mapsize *= 2;
	}
	return err_set(e, "\"%s\": map still full after growing it", path);
}

struct graph *store_snapshot_open(const char *path, struct err *e)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi mdbi, cdbi;
	struct graph *g = NULL;
	int rc;

	if (env_open_ro(path, &env, e))
		return NULL;
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		mdb_fail(e, rc, path, "cannot read");
		goto out;
	}
	rc = mdb_dbi_open(txn, "meta", 0, &mdbi);
	if (!rc)
		rc = mdb_dbi_open(txn, "chunks", 0, &cdbi);
	if (rc) {
		if (rc == MDB_NOTFOUND)
			err_set(e, "\"%s\": not a triad snapshot (no meta or "
				"chunks database)", path);
		else
			mdb_fail(e, rc, path, "cannot read");
		goto out;
	}
	g = load_graph(txn, mdbi, cdbi, path, e);
out:
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return g;
}

int store_snapshot_tamper(const char *path, enum store_tamper what,
			  uint32_t c, struct err *e)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi mdbi, cdbi;
	MDB_val k, d, nd;
	uint8_t kb[4], *copy = NULL, mb[META_LEN];
	struct meta m = { 0 };
	int rc, ret = -1;

	if ((rc = mdb_env_create(&env)))
		return mdb_fail(e, rc, path, "cannot create environment");
	mdb_env_set_maxdbs(env, 8);
	if ((rc = mdb_env_open(env, path, MDB_NOTLS, 0644)) ||
	    (rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, "meta", 0, &mdbi)) ||
	    (rc = mdb_dbi_open(txn, "chunks", 0, &cdbi)))
		goto mdb_err;
	put_be32(kb, c);
	k.mv_data = kb;
	k.mv_size = 4;
	switch (what) {
	case STORE_TAMPER_FLIP_BYTE:
	case STORE_TAMPER_TRUNCATE:
		if ((rc = mdb_get(txn, cdbi, &k, &d)))
			goto mdb_err;
		copy = mem_dup(d.mv_data, d.mv_size);
		if (!copy) {
			err_set(e, "out of memory");
			goto out;
		}
		nd.mv_data = copy;
		nd.mv_size = d.mv_size;
		if (what == STORE_TAMPER_FLIP_BYTE)
			copy[4 + (d.mv_size - 4) / 2] ^= 0x10;
		else
			nd.mv_size = d.mv_size / 2;
		if ((rc = mdb_put(txn, cdbi, &k, &nd, 0)))
			goto mdb_err;
		break;
	case STORE_TAMPER_DROP:
		if ((rc = mdb_del(txn, cdbi, &k, NULL)))
			goto mdb_err;
		break;
	case STORE_TAMPER_VERSION:
	case STORE_TAMPER_EXTRA:
		k.mv_data = "graph";
		k.mv_size = 5;
		if ((rc = mdb_get(txn, mdbi, &k, &d)))
			goto mdb_err;
		if (d.mv_size != META_LEN) {
			err_set(e, "meta record has the wrong size");
			goto out;
		}
		memcpy(mb, d.mv_data, META_LEN);
		m.nchunks = get_le32(mb + 32);
		if (what == STORE_TAMPER_VERSION) {
			put_le32(mb + 8, get_le32(mb + 8) + 1);
			put_le32(mb + 36, crc_of(mb, 36, NULL, 0));
			d.mv_data = mb;
			if ((rc = mdb_put(txn, mdbi, &k, &d, 0)))
				goto mdb_err;
		} else {
			uint8_t rec[4];

			put_be32(kb, m.nchunks);
			k.mv_data = kb;
			k.mv_size = 4;
			put_le32(rec, crc_of(kb, 4, NULL, 0));
			d.mv_data = rec;
			d.mv_size = 4;
			if ((rc = mdb_put(txn, cdbi, &k, &d, 0)))
				goto mdb_err;
		}
		break;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto mdb_err;
	ret = 0;
	/* a damaged record, not a damaged file: keep the file's checksum
	 * true, so the record checks below it are what is tested */
	{
		char fn[4096];

		if (dir_file(fn, sizeof(fn), path, SUM_FILE, e))
			ret = -1;
		else if (!access(fn, F_OK))
			ret = sum_write(path, e); /* the commit is on disk */
	}
	goto out;
mdb_err:
	mdb_fail(e, rc, path, "tamper");
out:
	if (txn)
		mdb_txn_abort(txn);
	free(copy);
	mdb_env_close(env);
	return ret;
}

/* ---- durable state ----------------------------------------------------- */

/* Run one write transaction; fill() does the work. MDB_MAP_FULL (from
 * fill via *mrc or from the commit) grows the map and retries. */
typedef int (*txn_fill)(struct store *s, MDB_txn *txn, void *arg, int *mrc,
			struct err *e);

static int write_txn(struct store *s, txn_fill fill, void *arg, struct err *e)
{
	int tries;

	for (tries = 0; tries < GROW_TRIES; tries++) {
		MDB_txn *txn = NULL;
		int rc, mrc = 0;

		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
		if (rc)
			return mdb_fail(e, rc, s->dir, "begin");
		if (fill(s, txn, arg, &mrc, e)) {
			mdb_txn_abort(txn);
			if (mrc != MDB_MAP_FULL) {
				err_prefix(e, "\"%s\"", s->dir);
				return -1;
			}
		} else {
			rc = mdb_txn_commit(txn);
			if (!rc)
				return 0;
			if (rc != MDB_MAP_FULL)
				return mdb_fail(e, rc, s->dir, "commit");
		}
		if (s->map_fixed)
			return err_set(e, "\"%s\": state map full (%zu bytes, "
				       "fixed by TRIAD_STATE_MAP_BYTES)",
				       s->dir, s->mapsize);
		if (s->mapsize > SIZE_MAX / 2)
			break;
		rc = mdb_env_set_mapsize(s->env, s->mapsize * 2);
		if (rc)
			return mdb_fail(e, rc, s->dir, "grow map");
		s->mapsize *= 2;
	}
	return err_set(e, "\"%s\": map still full after growing it", s->dir);
}

/* What a snapshot given as --state is told. */
static const char not_state[] =
	"is a snapshot (made by triad load), not a --state directory: nothing "
	"written (serve it with --snapshot, and give --state a directory of "
	"its own)";

static int open_dbis(struct store *s, MDB_txn *txn, void *arg, int *mrc,
		     struct err *e)
{
	static const char *const names[] = { "meta", "chunks", "log",
					     "offsets", "dismiss" };
	MDB_dbi *dbis[] = { &s->meta, &s->chunks, &s->log, &s->offsets,
			    &s->dismiss }, main;
	MDB_cursor *cur;
	MDB_stat ms;
	MDB_val k, d;
	unsigned flags, i;
	int rc;

	(void)arg;
	/* an offline snapshot has chunks but no log and no offsets: taken
	 * for a state, its first checkpoint would replace its chunks under
	 * its checksum (a state whose log alone is missing is damaged,
	 * below) */
	if (mdb_dbi_open(txn, "log", 0, &s->log) == MDB_NOTFOUND &&
	    mdb_dbi_open(txn, "offsets", 0, &s->offsets) == MDB_NOTFOUND &&
	    !mdb_dbi_open(txn, "chunks", 0, &s->chunks))
		return err_set(e, "%s", not_state);
	/* a new state gets all five databases in one transaction; in any
	 * other a missing one is damage (one flipped bit in its name), and
	 * creating it empty silently dropped the checkpoint (which the next
	 * one overwrote), the offsets (Kafka consumed again from the start)
	 * or the dismissals */
	if ((rc = mdb_dbi_open(txn, NULL, 0, &main)) ||
	    (rc = mdb_stat(txn, main, &ms)))
		goto fail;
	flags = ms.ms_entries ? 0 : MDB_CREATE;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = mdb_dbi_open(txn, names[i], flags, dbis[i]);
		if (rc == MDB_NOTFOUND)
			return err_set(e, "database \"%s\" missing: a damaged "
				       "state, or not one triad wrote; nothing "
				       "written", names[i]);
		if (rc)
			goto fail;
	}
	if ((rc = mdb_cursor_open(txn, s->log, &cur)))
		goto fail;
	rc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
	mdb_cursor_close(cur);
	if (!rc && k.mv_size == 8)
		s->next_seq = get_be64(k.mv_data) + 1;
	else if (rc && rc != MDB_NOTFOUND)
		goto fail;
	return 0;
fail:
	*mrc = rc;
	return err_set(e, "open databases: %s", mdb_strerror(rc));
}

/*
 * TRIAD_STATE_MAP_BYTES=N (a testing knob, see store.h): a fixed map of N
 * bytes (at least 64 KiB) that is never grown, so that a full map can be
 * provoked. 1 with *bytes set when given and valid, else 0.
 */
static int fixed_map_bytes(size_t *bytes)
{
	const char *v = getenv("TRIAD_STATE_MAP_BYTES");
	unsigned long long n;
	char *end;

	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n < ((size_t)64 << 10) || n > SIZE_MAX / 2)
		return 0;
	*bytes = (size_t)n;
	return 1;
}

/*
 * One process per state directory. LMDB lets several processes share an
 * environment, and two servers on one --state each took the other's log
 * for its own: a checkpoint of one emptied the log of events the other
 * had acknowledged, and the chunks they both wrote no longer loaded. So
 * store_open holds an exclusive flock on DIR/triad.lock (released when
 * the process goes, however it goes) and names the holder's pid.
 */
static int lock_dir(struct store *s, struct err *e)
{
	char fn[4096], pid[32] = "";
	ssize_t n;

	if (dir_file(fn, sizeof(fn), s->dir, "triad.lock", e))
		return -1;
	/* never removed: a lock file unlinked while another process waits
	 * on it would let a third lock a new one beside it */
	s->lockfd = open(fn, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lockfd < 0)
		return err_set(e, "\"%s\": %s", fn, strerror(errno));
	if (flock(s->lockfd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK)
			return err_set(e, "\"%s\": lock: %s", fn,
				       strerror(errno));
		n = pread(s->lockfd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		return err_set(e, "\"%s\": in use by another process (pid %s): "
			       "a state directory is one server's; give each "
			       "replica its own", s->dir, *pid ? pid : "?");
	}
	if (ftruncate(s->lockfd, 0) == 0) {
		n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (pwrite(s->lockfd, pid, (size_t)n, 0) != n)
			(void)0; /* the pid is only for the message above */
	}
	return 0;
}

/* Read every page of every value of db: the first and last byte and one
 * in each 4 KiB between. */
static void probe_db(MDB_txn *txn, MDB_dbi db)
{
	MDB_cursor *cur;
	MDB_val k, d;
	volatile unsigned char sink = 0;
	int op = MDB_FIRST;

	if (mdb_cursor_open(txn, db, &cur))
		return;
	while (!mdb_cursor_get(cur, &k, &d, op)) {
		const unsigned char *p = d.mv_data;

		op = MDB_NEXT;
		if (k.mv_size)
			sink ^= ((const unsigned char *)k.mv_data)[k.mv_size - 1];
		for (size_t i = 0; i < d.mv_size; i += 4096)
			sink ^= p[i];
		if (d.mv_size)
			sink ^= p[d.mv_size - 1];
	}
	mdb_cursor_close(cur);
}

/* The probe's child: a read-only environment of its own (no lock file:
 * the parent holds triad.lock and has not opened the state yet), every
 * database walked, LMDB's free list (database 0) too. LMDB's own errors
 * are left to the parent, which names them. */
static void probe_child(const char *dir, size_t mapsize)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_dbi main, db;
	MDB_val k, d;
	char name[512];

	if (mdb_env_create(&env))
		return;
	mdb_env_set_maxdbs(env, 64);
	mdb_env_set_mapsize(env, mapsize);
	if (!mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS,
			  0644) &&
	    !mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) {
		probe_db(txn, 0);
		if (!mdb_dbi_open(txn, NULL, 0, &main)) {
			probe_db(txn, main);
			if (!mdb_cursor_open(txn, main, &cur)) {
				int op = MDB_FIRST;

				while (!mdb_cursor_get(cur, &k, &d, op)) {
					op = MDB_NEXT;
					if (!k.mv_size || k.mv_size >= sizeof(name))
						continue;
					memcpy(name, k.mv_data, k.mv_size);
					name[k.mv_size] = '\0';
					if (!mdb_dbi_open(txn, name, 0, &db))
						probe_db(txn, db);
				}
				mdb_cursor_close(cur);
			}
		}
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
}

/*
 * LMDB trusts its own pages, and a state changes all the time, so it has
 * no whole-file checksum as a snapshot has: a damaged B-tree page or a
 * node's size made the server die of SIGSEGV or SIGBUS while loading the
 * state (1 in about 950 random one-byte writes in a review), with no
 * word of why, and again at every restart. So before the state is opened
 * a child process reads all of it; when the child dies of a signal the
 * state is refused, named, and left as it was. Costs one more read of the
 * state's pages (warm in the page cache for the load that follows).
 * 0, or -1 with e set. A probe that cannot be run (fork fails) is
 * skipped. The child exits 0 unless a read faults, after freeing s (its
 * copy: under valgrind its exit is checked for leaks too).
 */
static int probe_state(struct store *s, const char *fn, struct err *e)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		/* a fault must kill the child, whatever handler the process
		 * has (AddressSanitizer's reports it and exits 1) */
		signal(SIGBUS, SIG_DFL);
		signal(SIGSEGV, SIG_DFL);
		probe_child(s->dir, s->mapsize);
		store_close(s);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	if (WIFSIGNALED(st))
		return err_set(e, "\"%s\": damaged: reading it made LMDB fault "
			       "(%s), so some of its pages are not what LMDB "
			       "wrote; nothing written (restore a copy of the "
			       "directory, or start an empty one from "
			       "--snapshot and Kafka)", fn,
			       strsignal(WTERMSIG(st)));
	return 0;
}

struct store *store_open(const char *dir, struct err *e)
{
	struct store *s;
	char fn[4096];
	struct stat st;
	int rc;

	if (ensure_dir(dir, e))
		return NULL;
	s = mem_calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		err_set(e, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->lockfd = -1;
	/* a snapshot says so by its checksum file (one from before those is
	 * told by its databases, in open_dbis) */
	if (snprintf(fn, sizeof(fn), "%s/%s", dir, SUM_FILE) < (int)sizeof(fn) &&
	    !stat(fn, &st)) {
		err_set(e, "\"%s\": %s", dir, not_state);
		goto fail;
	}
	if (lock_dir(s, e))
		goto fail;
	s->mapsize = STATE_MAP;
	if (snprintf(fn, sizeof(fn), "%s/data.mdb", dir) < (int)sizeof(fn) &&
	    !stat(fn, &st) && (size_t)st.st_size + MAP_MIN > s->mapsize)
		s->mapsize = (size_t)st.st_size * 2 + MAP_MIN;
	/* LMDB writes its meta pages when it creates data.mdb, so an empty
	 * one is a truncated state, not a new one: refuse it rather than
	 * start afresh and lose what it held */
	if (!stat(fn, &st) && st.st_size == 0) {
		err_set(e, "\"%s\": empty file (truncated state?); remove the "
			"directory to start with an empty state", fn);
		goto fail;
	}
	if (fixed_map_bytes(&s->mapsize)) {
		s->map_fixed = 1;
		if (!stat(fn, &st) && (size_t)st.st_size > s->mapsize)
			s->mapsize = (size_t)st.st_size;
	}
	if (!stat(fn, &st) && st.st_size > 0 &&
	    probe_state(s, fn, e))
		goto fail;
	rc = mdb_env_create(&s->env);
	if (rc) {
		mdb_fail(e, rc, dir, "cannot create environment");
		s->env = NULL;
		goto fail;
	}
	mdb_env_set_maxdbs(s->env, 8);
	mdb_env_set_mapsize(s->env, s->mapsize);
	rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0644);
	if (rc) {
		mdb_fail(e, rc, dir, "cannot open state");
		goto fail;
	}
	if (check_file_size(s->env, dir, e))
		goto fail;
	if (write_txn(s, open_dbis, NULL, e))
		goto fail;
	return s;
fail:
	store_close(s);
	return NULL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->env)
		mdb_env_close(s->env);
	if (s->lockfd >= 0)
		close(s->lockfd); /* after LMDB: the lock outlives its use */
	pthread_mutex_destroy(&s->mu);
	free(s->dir);
	free(s);
}

/*
 * One record of dbi in a read transaction of its own: 1 with its size in
 * *len and its first min(*len, cap) bytes in out (out may be NULL when cap
 * is 0), 0 when there is none, -1 with e naming `what`.
 */
static int read_value(struct store *s, MDB_dbi dbi, const void *key,
		      size_t klen, void *out, size_t cap, size_t *len,
		      const char *what, struct err *e)
{
	MDB_txn *txn;
	MDB_val k, d;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	pthread_mutex_lock(&s->mu);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return mdb_fail(e, rc, s->dir, "read");
	}
	rc = mdb_get(txn, dbi, &k, &d);
	if (!rc) {
		*len = d.mv_size;
		if (cap)
			memcpy(out, d.mv_data, d.mv_size < cap ? d.mv_size : cap);
	}
	mdb_txn_abort(txn);
	pthread_mutex_unlock(&s->mu);
	if (rc == MDB_NOTFOUND)
		return 0;
	return rc ? mdb_fail(e, rc, s->dir, what) : 1;
}

int store_has_checkpoint(struct store *s, struct err *e)
{
	size_t len;

	return read_value(s, s->meta, "graph", 5, NULL, 0, &len, "meta record",
			  e);
}

static void ev_encode(uint8_t *p, const struct graph_event *ev)
{
	put_le64(p, ev->src);
	put_le64(p + 8, ev->dst);
	put_le32(p + 16, ev->ts);
	p[20] = ev->op;
}

static void ev_decode(const uint8_t *p, struct graph_event *ev)
{
	ev->src = get_le64(p);
	ev->dst = get_le64(p + 8);
	ev->ts = get_le32(p + 16);
	ev->op = p[20];
}

int store_state_load(struct store *s, struct graph **g_out,
		     struct graph_apply_stats *st, uint64_t *replayed,
		     struct err *e)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d, mk, md;
	struct graph *g = NULL, *fresh = NULL;
	struct graph_event *ev = NULL;
	size_t evcap = 0;
	uint64_t count = 0;
	int rc, ret = -1;

	pthread_mutex_lock(&s->mu);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		mdb_fail(e, rc, s->dir, "read");
		goto out;
	}
	mk.mv_data = "graph";
	mk.mv_size = 5;
	rc = mdb_get(txn, s->meta, &mk, &md);
	if (!rc) {
		fresh = load_graph(txn, s->meta, s->chunks, s->dir, e);
		if (!fresh)
			goto out;
		g = fresh;
	} else if (rc == MDB_NOTFOUND) {
		g = *g_out;
		if (!g) {
			err_set(e, "\"%s\": no checkpoint and no graph", s->dir);
			goto out;
		}
	} else {
		mdb_fail(e, rc, s->dir, "meta record");
		goto out;
	}
	if ((rc = mdb_cursor_open(txn, s->log, &cur))) {
		mdb_fail(e, rc, s->dir, "log");
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		const uint8_t *p = d.mv_data;
		uint64_t seq;
		uint32_t n, i;

		if (k.mv_size != 8) {
			err_set(e, "\"%s\": log record with a %zu-byte key",
				s->dir, k.mv_size);
			goto out;
		}
		seq = get_be64(k.mv_data);
		if (d.mv_size < LOG_HDR) {
			err_set(e, "\"%s\": log record %llu: truncated", s->dir,
				(unsigned long long)seq);
			goto out;
		}
		n = get_le32(p + 4);
		if ((d.mv_size - LOG_HDR) / EV_LEN != n ||
		    (d.mv_size - LOG_HDR) % EV_LEN) {
			err_set(e, "\"%s\": log record %llu: truncated", s->dir,
				(unsigned long long)seq);
			goto out;
		}
		if (get_le32(p) != crc_of(k.mv_data, 8, p + 4, d.mv_size - 4)) {
			err_set(e, "\"%s\": log record %llu: crc mismatch",
				s->dir, (unsigned long long)seq);
			goto out;
		}
		if (mem_grow((void **)&ev, &evcap, n, sizeof(*ev))) {
			err_set(e, "out of memory");
			goto out;
		}
		for (i = 0; i < n; i++)
			ev_decode(p + LOG_HDR + (size_t)i * EV_LEN, &ev[i]);
		if (graph_apply(g, ev, n, st, e)) {
			err_prefix(e, "\"%s\": log record %llu", s->dir,
				   (unsigned long long)seq);
			goto out;
		}
		count += n;
	}
	if (rc != MDB_NOTFOUND) {
		mdb_fail(e, rc, s->dir, "log");
		goto out;
	}
	if (fresh)
		*g_out = fresh;
	fresh = NULL;
	if (replayed)
		*replayed = count;
	ret = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	pthread_mutex_unlock(&s->mu);
	graph_free(fresh);
	free(ev);
	return ret;
}

static int put_offsets(struct store *s, MDB_txn *txn, const char *topic,
		       const struct store_offset *off, size_t noff, int *mrc,
		       struct err *e)
{
	uint8_t kb[260], vb[8];
	size_t tl, i;
	MDB_val k, d;
	int rc;

	if (!noff)
		return 0;
	tl = strlen(topic);
	if (tl > 249)
		return err_set(e, "topic name too long");
	memcpy(kb, topic, tl);
	kb[tl] = 0;
	for (i = 0; i < noff; i++) {
		put_be32(kb + tl + 1, (uint32_t)off[i].partition);
		put_be64(vb, (uint64_t)off[i].next);
		k.mv_data = kb;
		k.mv_size = tl + 5;
		d.mv_data = vb;
		d.mv_size = 8;
		rc = mdb_put(txn, s->offsets, &k, &d, 0);
		if (rc) {
			*mrc = rc;
			return err_set(e, "offsets: %s", mdb_strerror(rc));
		}
	}
	return 0;
}

struct append_arg {
	const struct graph_event *ev;
	size_t n;
	const char *topic;
	const struct store_offset *off;
	size_t noff;
};

static int append_fill(struct store *s, MDB_txn *txn, void *argp, int *mrc,
		       struct err *e)
{
	struct append_arg *a = argp;
	uint8_t kb[8], *p;
	MDB_val k, d;
	size_t i;
	int rc;

	if (a->n) {
		if (a->n > (UINT32_MAX - LOG_HDR) / EV_LEN)
			return err_set(e, "log batch too large");
		put_be64(kb, s->next_seq);
		k.mv_data = kb;
		k.mv_size = 8;
		d.mv_size = LOG_HDR + a->n * EV_LEN;
		d.mv_data = NULL;
		rc = mdb_put(txn, s->log, &k, &d, MDB_RESERVE | MDB_APPEND);
		if (rc) {
			*mrc = rc;
			return err_set(e, "log: %s", mdb_strerror(rc));
		}
		p = d.mv_data;
		put_le32(p + 4, (uint32_t)a->n);
		for (i = 0; i < a->n; i++)
			ev_encode(p + LOG_HDR + i * EV_LEN, &a->ev[i]);
		put_le32(p, crc_of(kb, 8, p + 4, d.mv_size - 4));
	}
	return put_offsets(s, txn, a->topic, a->off, a->noff, mrc, e);
}

int store_log_append(struct store *s, const struct graph_event *ev, size_t n,
		     const char *topic, const struct store_offset *off,
		     size_t noff, struct err *e)
{
	struct append_arg a = { ev, n, topic, off, noff };
	int rc;

	if (!n && !noff)
		return 0;
	pthread_mutex_lock(&s->mu);
	rc = write_txn(s, append_fill, &a, e);
	if (!rc && n)
		s->next_seq++;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_offsets_all(struct store *s, const char *topic,
		      struct store_offset **out, size_t *n, struct err *e)
{
	uint8_t kb[260];
	size_t tl = strlen(topic), cap = 0;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	int rc, ret = 0;

	*out = NULL;
	*n = 0;
	if (tl > 249)
		return err_set(e, "topic name too long");
	memcpy(kb, topic, tl);
	kb[tl] = 0;
	k.mv_data = kb;
	k.mv_size = tl + 1;
	pthread_mutex_lock(&s->mu);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return mdb_fail(e, rc, s->dir, "read");
	}
	rc = mdb_cursor_open(txn, s->offsets, &cur);
	for (rc = rc ? rc : mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;

		if (k.mv_size != tl + 5 || memcmp(kp, topic, tl) || kp[tl])
			break; /* past the topic's keys */
		if (d.mv_size != 8 || (int64_t)get_be64(d.mv_data) < 0) {
			ret = err_set(e, "\"%s\": offset record of topic \"%s\": "
				      "bad size or value", s->dir, topic);
			break;
		}
		if (mem_grow((void **)out, &cap, *n + 1, sizeof(**out))) {
			ret = err_set(e, "out of memory");
			break;
		}
		(*out)[*n].partition = (int32_t)get_be32(kp + tl + 1);
		(*out)[(*n)++].next = (int64_t)get_be64(d.mv_data);
	}
	if (!ret && rc && rc != MDB_NOTFOUND)
		ret = mdb_fail(e, rc, s->dir, "offsets");
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	pthread_mutex_unlock(&s->mu);
	if (ret) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

int store_offset_get(struct store *s, const char *topic, int32_t partition,
		     int64_t *next, struct err *e)
{
	uint8_t kb[260], v[8];
	size_t tl = strlen(topic), len;
	int r;

	if (tl > 249)
		return err_set(e, "topic name too long");
	memcpy(kb, topic, tl);
	kb[tl] = 0;
	put_be32(kb + tl + 1, (uint32_t)partition);
	r = read_value(s, s->offsets, kb, tl + 5, v, sizeof(v), &len,
		       "offsets", e);
	if (r != 1)
		return r;
	if (len != 8)
		return err_set(e, "\"%s\": offset record of topic \"%s\" "
			       "partition %d: bad size", s->dir, topic,
			       (int)partition);
	*next = (int64_t)get_be64(v);
	return *next >= 0 ? 1 : err_set(e, "\"%s\": bad offset record", s->dir);
}

struct ckpt_arg {
	struct graph *g;
	int full;
	const uint32_t *dirty;
	size_t ndirty;
	const char *topic;
	const struct store_offset *off;
	size_t noff;
	struct store_ckpt_stats st;
};

static int ckpt_fill(struct store *s, MDB_txn *txn, void *argp, int *mrc,
		     struct err *e)
{
	struct ckpt_arg *a = argp;
	struct graph_view v;
	struct graph_buf buf = { 0 };
	struct graph_stats gs;
	struct meta m = { 0 };
	uint8_t mb[META_LEN];
	MDB_val k, d;
	MDB_stat ms;
	uint32_t c, prev = 0, grown;
	uint64_t prev_members = 0;
	size_t i;
	int rc, ret = -1;

	memset(&a->st, 0, sizeof(a->st));
	k.mv_data = "graph";
	k.mv_size = 5;
	rc = mdb_get(txn, s->meta, &k, &d);
	if (!rc && d.mv_size == META_LEN) {
		prev = get_le32((const uint8_t *)d.mv_data + 32);
		prev_members = get_le64((const uint8_t *)d.mv_data + 16);
	} else if (!rc || rc != MDB_NOTFOUND) {
		a->full = 1;
	}
	graph_view_begin(a->g, &v);
	m.nchunks = graph_nchunks(&v);
	m.members = graph_nvertices(&v);
	if (prev > m.nchunks || prev_members > m.members)
		a->full = 1; /* a foreign checkpoint: rewrite it all */
	/* the first chunk holding members the last checkpoint did not have:
	 * a member is created without a write to its own list (the target
	 * of a directed add), so its chunk need not be dirty */
	grown = prev_members < m.members
			? (uint32_t)(prev_members / GRAPH_CHUNK) : prev;
	if (grown > prev)
		grown = prev;
	if (a->full) {
		if ((rc = mdb_drop(txn, s->chunks, 0))) {
			graph_view_end(&v);
			goto mdb_err;
		}
		for (c = 0; c < m.nchunks; c++)
			if (put_chunk(txn, s->chunks, &v, c, &buf, 1,
				      &a->st.bytes, mrc, e))
				goto view_fail;
		a->st.chunks = m.nchunks;
	} else {
		/* dirty chunks, plus any chunk with members the last
		 * checkpoint did not have yet, each once */
		for (i = 0; i < a->ndirty; i++) {
			c = a->dirty[i];
			if (c >= grown || c >= m.nchunks)
				continue;
			if (put_chunk(txn, s->chunks, &v, c, &buf, 0,
				      &a->st.bytes, mrc, e))
				goto view_fail;
			a->st.chunks++;
		}
		for (c = grown; c < m.nchunks; c++) {
			if (put_chunk(txn, s->chunks, &v, c, &buf, 0,
				      &a->st.bytes, mrc, e))
				goto view_fail;
			a->st.chunks++;
		}
	}
	graph_view_end(&v);
	graph_stats(a->g, &gs);
	m.version = STORE_FORMAT;
	m.directed = graph_is_directed(a->g) ? 1 : 0;
	m.edges = gs.edges;
	meta_encode(mb, &m);
	k.mv_data = "graph";
	k.mv_size = 5;
	d.mv_data = mb;
	d.mv_size = META_LEN;
	if ((rc = mdb_put(txn, s->meta, &k, &d, 0)))
		goto mdb_err;
	if (put_offsets(s, txn, a->topic, a->off, a->noff, mrc, e))
		goto out;
	if ((rc = mdb_stat(txn, s->log, &ms)) ||
	    (rc = mdb_drop(txn, s->log, 0)))
		goto mdb_err;
	a->st.log_dropped = ms.ms_entries;
	a->st.members = m.members;
	a->st.edges = m.edges;
	ret = 0;
	goto out;
view_fail:
	graph_view_end(&v);
	goto out;
mdb_err:
	*mrc = rc;
	err_set(e, "checkpoint: %s", mdb_strerror(rc));
out:
	graph_buf_release(&buf);
	return ret;
}

int store_checkpoint(struct store *s, struct graph *g, int full,
		     const char *topic, const struct store_offset *off,
		     size_t noff, struct store_ckpt_stats *st, struct err *e)
{
	struct ckpt_arg a;
	uint32_t *dirty = NULL;
	size_t ndirty = 0;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (graph_dirty_take(g, &dirty, &ndirty, e)) {
		/* the dirty set may be lost: write everything next time */
		s->need_full = 1;
		pthread_mutex_unlock(&s->mu);
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.g = g;
	a.full = full || s->need_full;
	a.dirty = dirty;
	a.ndirty = ndirty;
	a.topic = topic;
	a.off = off;
	a.noff = noff;
	rc = write_txn(s, ckpt_fill, &a, e);
	if (rc)
		s->need_full = 1;
	else
		s->need_full = 0;
	pthread_mutex_unlock(&s->mu);
	free(dirty);
	if (!rc && st)
		*st = a.st;
	return rc;
}

/* The meta key of topic's Kafka cluster id: "kafka-cluster", NUL, topic.
 * Its length, or 0 when the topic is too long. */
static size_t cluster_key(uint8_t *kb, const char *topic)
{
	static const char pre[] = "kafka-cluster";
	size_t tl = strlen(topic);

	if (tl > 249)
		return 0;
	memcpy(kb, pre, sizeof(pre)); /* with its NUL */
	memcpy(kb + sizeof(pre), topic, tl);
	return sizeof(pre) + tl;
}

/* A short text record of meta (1..255 bytes, no NUL): 1 with it in
 * out[0..n) NUL-terminated, 0 when there is none, -1 with e naming
 * `what`. */
static int meta_text_get(struct store *s, const void *kb, size_t kl,
			 char *out, size_t n, const char *what, struct err *e)
{
	size_t len;
	int r = read_value(s, s->meta, kb, kl, out, n, &len, "meta", e);

	if (r != 1)
		return r;
	if (!len || len >= n || len >= 256 || memchr(out, 0, len))
		return err_set(e, "\"%s\": %s: bad size", s->dir, what);
	out[len] = 0;
	return 1;
}

struct text_arg {
	const void *kb;
	size_t kl;
	const char *val, *what;
};

static int text_fill(struct store *s, MDB_txn *txn, void *argp, int *mrc,
		     struct err *e)
{
	struct text_arg *a = argp;
	MDB_val k, d;
	int rc;

	k.mv_data = (void *)a->kb;
	k.mv_size = a->kl;
	d.mv_data = (void *)a->val;
	d.mv_size = strlen(a->val);
	rc = mdb_put(txn, s->meta, &k, &d, 0);
	if (rc) {
		*mrc = rc;
		return err_set(e, "%s: %s", a->what, mdb_strerror(rc));
	}
	return 0;
}

/* Durably store val (1..255 bytes) as the meta record kb. 0 or -1. */
static int meta_text_put(struct store *s, const void *kb, size_t kl,
			 const char *val, const char *what, struct err *e)
{
	struct text_arg a = { kb, kl, val, what };
	int rc;

	if (!*val || strlen(val) > 255)
		return err_set(e, "%s of %zu bytes", what, strlen(val));
	pthread_mutex_lock(&s->mu);
	rc = write_txn(s, text_fill, &a, e);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_cluster_get(struct store *s, const char *topic, char *id, size_t n,
		      struct err *e)
{
	uint8_t kb[272];
	size_t kl = cluster_key(kb, topic);
	char what[300];

	if (!kl)
		return err_set(e, "topic name too long");
	snprintf(what, sizeof(what), "Kafka cluster record of topic \"%s\"",
		 topic);
	return meta_text_get(s, kb, kl, id, n, what, e);
}

int store_cluster_put(struct store *s, const char *topic, const char *id,
		      struct err *e)
{
	uint8_t kb[272];
	size_t kl = cluster_key(kb, topic);

	if (!kl)
		return err_set(e, "topic name too long");
	return meta_text_put(s, kb, kl, id, "Kafka cluster id", e);
}

/* meta key of the built-in model choice (no NUL: apart from the cluster
 * keys, which have one) */
#define BUILTIN_KEY "builtin-model"

int store_builtin_get(struct store *s, char *kind, size_t n, struct err *e)
{
	return meta_text_get(s, BUILTIN_KEY, strlen(BUILTIN_KEY), kind, n,
			     "built-in model record", e);
}

int store_builtin_put(struct store *s, const char *kind, struct err *e)
{
	return meta_text_put(s, BUILTIN_KEY, strlen(BUILTIN_KEY), kind,
			     "built-in model record", e);
}

struct dismiss_arg {
	uint8_t kb[16];
};

static int dismiss_fill(struct store *s, MDB_txn *txn, void *argp, int *mrc,
			struct err *e)
{
	struct dismiss_arg *a = argp;
	MDB_val k, d;
	int rc;

	k.mv_data = a->kb;
	k.mv_size = 16;
	d.mv_data = "";
	d.mv_size = 0;
	rc = mdb_put(txn, s->dismiss, &k, &d, 0);
	if (rc) {
		*mrc = rc;
		return err_set(e, "dismiss: %s", mdb_strerror(rc));
	}
	return 0;
}

int store_dismiss_add(struct store *s, uint64_t member, uint64_t candidate,
		      struct err *e)
{
	struct dismiss_arg a;
	int rc;

	put_be64(a.kb, member);
	put_be64(a.kb + 8, candidate);
	pthread_mutex_lock(&s->mu);
	rc = write_txn(s, dismiss_fill, &a, e);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int store_dismiss_each(struct store *s,
		       void (*fn)(void *ctx, uint64_t member,
				  uint64_t candidate),
		       void *ctx, struct err *e)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	int rc, ret = -1;

	pthread_mutex_lock(&s->mu);
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) ||
	    (rc = mdb_cursor_open(txn, s->dismiss, &cur))) {
		mdb_fail(e, rc, s->dir, "dismissals");
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != 16) {
			err_set(e, "\"%s\": dismissal record with a %zu-byte "
				"key", s->dir, k.mv_size);
			goto out;
		}
		fn(ctx, get_be64(k.mv_data), get_be64((uint8_t *)k.mv_data + 8));
	}
	if (rc != MDB_NOTFOUND) {
		mdb_fail(e, rc, s->dir, "dismissals");
		goto out;
	}
	ret = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	pthread_mutex_unlock(&s->mu);
	return ret;
}
