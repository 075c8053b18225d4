/* load.c - edge and event files into event lists; removes resolved. */
#include "load.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "event.h"
#include "import.h"
#include "mem.h"

enum fmt { FMT_EDGES, FMT_CSV, FMT_NDJSON, FMT_IGRAPH };

static const struct {
	const char *ext, *format;
} exts[] = {
	{ ".txt", "edges" },       { ".edges", "edges" }, { ".el", "edges" },
	{ ".tsv", "edges" },       { ".csv", "csv" },     { ".ndjson", "ndjson" },
	{ ".jsonl", "ndjson" },    { ".graphml", "graphml" },
	{ ".gml", "gml" },         { ".net", "pajek" },   { ".pajek", "pajek" },
	{ ".ncol", "ncol" },       { ".lgl", "lgl" },
};

static const char *const formats[] = { "edges", "csv", "ndjson", "graphml",
				       "gml", "pajek", "ncol", "lgl" };

#define STREAM_BUF (8u << 20)     /* gzip/pipe read buffer */
#define LINE_MAX_BYTES (64u << 20) /* longest line we accept */
#define SPLIT_MIN (4u << 20)      /* plain files this big get threads */
#define MAX_THREADS 8
#define TOKEN_QUOTE 40            /* bytes of a bad token we quote */

static int suffix_is(const char *s, size_t len, const char *suf)
{
	size_t n = strlen(suf);

	return len >= n && !strncasecmp(s + len - n, suf, n);
}

const char *load_format_guess(const char *path)
{
	size_t len = strlen(path), i;

	if (suffix_is(path, len, ".gz"))
		len -= 3;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (suffix_is(path, len, exts[i].ext))
			return exts[i].format;
	return NULL;
}

int load_format_valid(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (!strcmp(name, formats[i]))
			return 1;
	return 0;
}

void event_list_release(struct event_list *l)
{
	if (!l)
		return;
	free(l->ev);
	memset(l, 0, sizeof(*l));
}

static int list_grow(struct event_list *l, size_t need)
{
	void *p = l->ev;
	size_t cap = l->cap;

	if (mem_grow(&p, &cap, need, sizeof(*l->ev)) < 0)
		return -1;
	l->ev = p;
	l->cap = cap;
	return 0;
}

int event_list_reserve(struct event_list *l, size_t more)
{
	if (more > SIZE_MAX - l->n)
		return -1;
	return list_grow(l, l->n + more);
}

int event_list_push(struct event_list *l, const struct graph_event *ev)
{
	if (l->n == l->cap && list_grow(l, l->n + 1) < 0)
		return -1;
	l->ev[l->n++] = *ev;
	return 0;
}

/* ---- the line scanner --------------------------------------------------- */

/*
 * One run of parsing over complete lines [p, end): end[-1] is '\n', so the
 * scanner stops at newlines without bound checks. One per thread.
 */
struct chunk {
	const char *p, *end;
	enum fmt fmt;
	int skip_bad;
	int first;  /* this chunk starts the file: BOM, csv header */
	uint32_t now;
	struct event_parser *jp; /* ndjson only */
	struct event_list *out;
	uint64_t lines;    /* lines consumed so far */
	uint64_t bad;      /* malformed lines skipped */
	uint64_t loops;    /* self-loops dropped */
	uint64_t bad_line; /* 1-based line (within the chunk) of the error */
	int fixed;  /* out is a slice sized in advance: never grows */
	int oom;
	char why[ERR_MSG_MAX];
};

static inline int is_sp(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Past blanks, and past a '\r' only when a '\n' follows it: a lone '\r'
 * (a file with CR-only line endings) stops here and is refused where a
 * field was expected (bad_token), instead of passing for a blank and
 * running two lines together ("1 2\r3 4" read as 1 2 with ts 4). Every
 * buffer parsed ends with '\n', so p[1] is there. */
static inline const char *skip_sp(const char *p)
{
	while (is_sp((unsigned char)*p) && (*p != '\r' || p[1] == '\n'))
		p++;
	return p;
}

/* End of a token: the next separator or newline. */
static const char *token_end(const char *p, int csv)
{
	while (*p != '\n' && !is_sp((unsigned char)*p) && !(csv && *p == ','))
		p++;
	return p;
}

/*
 * Digits at *pp into *v. 0 ok (*pp after the digits), -1 no digit, -2 above
 * UINT64_MAX.
 */
static inline int scan_u64(const char **pp, uint64_t *v)
{
	const unsigned char *p = (const unsigned char *)*pp;
	unsigned d = (unsigned)*p - '0';
	uint64_t x;

	if (d > 9)
		return -1;
	x = d;
	p++;
	while ((d = (unsigned)*p - '0') <= 9) {
		if (x >= UINT64_MAX / 10 &&
		    (x > UINT64_MAX / 10 || d > UINT64_MAX % 10))
			return -2;
		x = x * 10 + d;
		p++;
	}
	*v = x;
	*pp = (const char *)p;
	return 0;
}

/* t[0..len) into q (4 * len + 1 bytes), the bytes a terminal would act
 * on (control, escape, binary) and backslashes written as \xNN. */
static void quote_bytes(char *q, const char *t, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char b = (unsigned char)t[i];

		if (b >= 0x20 && b < 0x7f && b != '\\')
			q[n++] = (char)b;
		else
			n += (size_t)sprintf(q + n, "\\x%02x", b);
	}
	q[n] = '\0';
}

static int bad_token(struct chunk *c, const char *t, const char *what)
{
	char q[4 * TOKEN_QUOTE + 1];
	const char *te = token_end(t, c->fmt == FMT_CSV);
	size_t len = (size_t)(te - t);

	if (*t == '\r') {
		snprintf(c->why, sizeof(c->why), "a carriage return without a "
			 "newline after it (CR-only line endings? convert them "
			 "with tr '\\r' '\\n')");
		return -1;
	}
	if (!len && *what) { /* "1,2," or "1,,2": nothing to quote */
		snprintf(c->why, sizeof(c->why), "an empty field %s (two "
			 "commas in a row, or one at the end?)", what);
		return -1;
	}
	quote_bytes(q, t, len < TOKEN_QUOTE ? len : TOKEN_QUOTE);
	snprintf(c->why, sizeof(c->why), "\"%s%s\" %s", q,
		 len > TOKEN_QUOTE ? "..." : "", what);
	return -1;
}

/* A member id field at *pp; 0 or -1 with c->why set. */
static int field_id(struct chunk *c, const char **pp, uint64_t *v)
{
	const char *t = *pp;
	int r = scan_u64(pp, v);
	unsigned char nx = (unsigned char)**pp;

	if (r == -2)
		return bad_token(c, t, "is above " "18446744073709551615");
	if (r < 0 || !(nx == '\n' || is_sp(nx) ||
		       (c->fmt == FMT_CSV && nx == ',')))
		return bad_token(c, t, "is not a member id");
	return 0;
}

/*
 * A ts field at t. frac: a fraction of a second ("1289241911.72836", as
 * SNAP's Bitcoin trust files give their times) is accepted and cut off:
 * only where the column can be nothing but a time (the fourth of a
 * "src dst weight ts" line). A third column with a fraction is refused, as
 * it is as likely a weight ("1 2 0.5") as a time.
 */
static int field_ts(struct chunk *c, const char *t, int frac, uint32_t *ts)
{
	const char *p = t, *te = token_end(t, c->fmt == FMT_CSV);
	uint64_t v = 0;
	int r = scan_u64(&p, &v);

	if (frac && r == 0 && *p == '.' && (unsigned)p[1] - '0' <= 9) {
		p++;
		while ((unsigned)*p - '0' <= 9)
			p++;
	}
	if (r < 0 || p != te || v > UINT32_MAX)
		return bad_token(c, t, frac ? "is not a timestamp (seconds "
				 "0..4294967295, a fraction allowed)"
				 : "is not a timestamp (an integer "
				 "0..4294967295)");
	*ts = (uint32_t)v;
	return 0;
}

/*
 * One edges/csv line starting at p (not blank, not a comment). 0 with ev
 * filled and *nl at the line's '\n', -1 with c->why set.
 */
static int text_line(struct chunk *c, const char *p, struct graph_event *ev,
		     const char **nl)
{
	const char *extra[3], *q;
	size_t nextra = 0;
	int csv = c->fmt == FMT_CSV;
	uint64_t v;

	if (field_id(c, &p, &ev->src) < 0)
		return -1;
	p = skip_sp(p);
	if (csv) {
		if (*p != ',') {
			snprintf(c->why, sizeof(c->why), *p == '\n' ?
				 "missing the destination member id" :
				 "no comma after the source member id (a file "
				 "separated by tabs or spaces? give --format "
				 "edges)");
			return -1;
		}
		p = skip_sp(p + 1);
	}
	if (*p == '\n') {
		snprintf(c->why, sizeof(c->why),
			 "missing the destination member id");
		return -1;
	}
	if (field_id(c, &p, &ev->dst) < 0)
		return -1;
	ev->op = GRAPH_ADD;
	p = skip_sp(p);
	if (*p == '\n') {
		ev->ts = c->now;
		*nl = p;
		return 0;
	}
	/* the common third column, a plain ts, without tokenising */
	q = csv && *p == ',' ? skip_sp(p + 1) : p;
	if (scan_u64(&q, &v) == 0 && v <= UINT32_MAX &&
	    *(q = skip_sp(q)) == '\n') {
		ev->ts = (uint32_t)v;
		*nl = q;
		return 0;
	}
	while (*p != '\n') {
		if (*p == '\r')
			return bad_token(c, p, "");
		if (csv) {
			if (*p != ',')
				return bad_token(c, p, "is not a field");
			p = skip_sp(p + 1);
		}
		if (nextra == 3)
			return bad_token(c, p, "is one field too many");
		extra[nextra++] = p;
		p = skip_sp(token_end(p, csv));
	}
	*nl = p;
	ev->ts = c->now;
	switch (nextra) {
	case 1:
		return field_ts(c, extra[0], 0, &ev->ts);
	case 2: /* KONECT "src dst weight ts", SNAP's "SOURCE,TARGET,RATING,TIME" */
		return field_ts(c, extra[1], 1, &ev->ts);
	default:
		return bad_token(c, extra[2], "is one field too many");
	}
}

static int ndjson_line(struct chunk *c, const char *p, const char *nl,
		       struct graph_event *ev)
{
	struct err e;

	if (event_parse_flags(c->jp, p, (size_t)(nl - p), c->now,
			      EVENT_ALLOW_SELF, ev, &e) < 0) {
		memcpy(c->why, e.msg, sizeof(c->why));
		return -1;
	}
	return 0;
}

/* Parse c->p..c->end. 0, or -1 at the first bad line (not skip_bad) or OOM. */
static int chunk_run(struct chunk *c)
{
	const char *p = c->p, *end = c->end, *nl;
	struct event_list *out = c->out;
	struct graph_event ev;
	int r;

	if (c->first && end - p >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	while (p < end) {
		const char *s = skip_sp(p);

		int comment = (*s == '#' || *s == '%') &&
			      c->fmt != FMT_NDJSON;

		/* a csv header starts like a name ("src,dst", "\"From\",..."),
		 * so a first line such as "-1,2" is a bad line, not skipped */
		if (*s == '\n' || comment ||
		    (c->first && c->fmt == FMT_CSV &&
		     ((unsigned)(*s | 0x20) - 'a' < 26 || *s == '"' ||
		      *s == '_'))) {
			if (*s != '\n' && !comment)
				c->first = 0; /* the csv header line */
			nl = *s == '\n' ? s : memchr(s, '\n', (size_t)(end - s));
			c->lines++;
			p = nl + 1;
			continue;
		}
		c->first = 0;
		if (c->fmt == FMT_NDJSON) {
			nl = memchr(s, '\n', (size_t)(end - s));
			r = ndjson_line(c, s, nl, &ev);
		} else {
			nl = NULL;
			r = text_line(c, s, &ev, &nl);
			if (r < 0)
				nl = NULL;
		}
		c->lines++;
		if (r < 0) {
			if (!c->skip_bad) {
				c->bad_line = c->lines;
				return -1;
			}
			c->bad++;
		} else if (ev.src == ev.dst) {
			c->loops++;
		} else {
			if (out->n == out->cap &&
			    (c->fixed || list_grow(out, out->n + 1) < 0)) {
				c->oom = 1;
				return -1;
			}
			out->ev[out->n++] = ev;
		}
		if (!nl)
			nl = memchr(s, '\n', (size_t)(end - s));
		p = nl + 1;
	}
	return 0;
}

/* Fold a finished chunk into the caller's state; -1 with e on error. */
static int chunk_report(struct chunk *c, const char *path, uint64_t line0,
			struct event_list *out, struct err *e)
{
	out->bad_skipped += c->bad;
	out->self_loops += c->loops;
	if (c->oom)
		return err_set(e, "%s: out of memory after %zu events", path,
			       out->n);
	if (c->bad_line)
		return err_set(e, "%s:%llu: %s", path,
			       (unsigned long long)(line0 + c->bad_line),
			       c->why);
	return 0;
}

/* ---- whole plain files, split across threads ---------------------------- */

static void *chunk_thread(void *arg)
{
	chunk_run(arg);
	return NULL;
}

/* Ask for transparent huge pages on a big fresh block: page faults are
 * most of the cost of filling hundreds of MB on some VMs. Advice only. */
static void advise_huge(void *p, size_t bytes)
{
	uintptr_t a = ((uintptr_t)p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
	uintptr_t z = ((uintptr_t)p + bytes) & ~(uintptr_t)((2u << 20) - 1);

	if (z > a)
		madvise((void *)a, z - a, MADV_HUGEPAGE);
}

/* Newlines in [p, end), eight bytes at a time. */
static size_t count_lines(const char *p, const char *end)
{
	const uint64_t ones = 0x0101010101010101ull, low7 = 0x7f7f7f7f7f7f7f7full;
	size_t n = 0;

	for (; p + 8 <= end; p += 8) {
		uint64_t w, x, t;

		memcpy(&w, p, 8);
		x = w ^ (ones * '\n');              /* zero bytes where '\n' */
		t = ~(((x & low7) + low7) | x | low7); /* 0x80 there, else 0 */
		n += (size_t)(((t >> 7) * ones) >> 56);
	}
	for (; p < end; p++)
		n += *p == '\n';
	return n;
}

struct count_job {
	struct chunk *c;
	size_t lines;
};

static void *count_thread(void *arg)
{
	struct count_job *j = arg;

	j->lines = count_lines(j->c->p, j->c->end);
	return NULL;
}

/*
 * buf[0..len) ends with '\n'. Split at newlines into one chunk per thread;
 * each writes into its own slice of out (sized by its line count, so it
 * never grows), and the slices are closed up afterwards.
 */
static int parse_buffer(const char *path, const char *buf, size_t len,
			const struct chunk *tmpl, struct event_list *out,
			struct err *e)
{
	struct chunk c[MAX_THREADS];
	struct event_list slice[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	int started[MAX_THREADS] = { 0 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t nt = 1, i, at = 0, total = 0, fresh, base = out->n;
	uint64_t line0 = 0;
	int rc = -1;

	if (len >= SPLIT_MIN && ncpu > 1)
		nt = ncpu > MAX_THREADS ? MAX_THREADS : (size_t)ncpu;
	memset(slice, 0, sizeof(slice));
	for (i = 0; i < nt; i++) {
		size_t cut = i + 1 == nt ? len : len / nt * (i + 1);
		const char *nl;

		if (cut < at)
			cut = at;
		if (cut < len) {
			nl = memchr(buf + cut, '\n', len - cut);
			cut = (size_t)(nl - buf) + 1;
		}
		c[i] = *tmpl;
		c[i].p = buf + at;
		c[i].end = buf + cut;
		c[i].first = tmpl->first && i == 0;
		c[i].jp = NULL;
		c[i].fixed = 1;
		at = cut;
	}
	/* pass 1: count lines per chunk, so every chunk gets an exact slice */
	{
		struct count_job job[MAX_THREADS];

		for (i = 0; i < nt; i++) {
			job[i].c = &c[i];
			started[i] = i > 0 && pthread_create(&th[i], NULL,
						count_thread, &job[i]) == 0;
			if (!started[i] && i > 0)
				count_thread(&job[i]);
		}
		count_thread(&job[0]);
		for (i = 0; i < nt; i++) {
			if (started[i])
				pthread_join(th[i], NULL);
			started[i] = 0;
			slice[i].cap = job[i].lines;
			total += job[i].lines;
		}
	}
	fresh = out->cap == 0;
	if (event_list_reserve(out, total) < 0) {
		err_set(e, "%s: out of memory for %zu events", path, total);
		goto out;
	}
	if (fresh)
		advise_huge(out->ev, out->cap * sizeof(*out->ev));
	for (i = 0, at = base; i < nt; i++) {
		slice[i].ev = out->ev + at;
		at += slice[i].cap;
		c[i].out = &slice[i];
	}
	for (i = 0; i < nt; i++)
		if (c[i].fmt == FMT_NDJSON && !(c[i].jp = event_parser_new())) {
			err_set(e, "%s: out of memory", path);
			goto out;
		}
	for (i = 1; i < nt; i++) {
		if (pthread_create(&th[i], NULL, chunk_thread, &c[i]) != 0)
			break;
		started[i] = 1;
	}
	for (; i < nt; i++) /* no thread: parse on this one */
		chunk_run(&c[i]);
	chunk_run(&c[0]);
	for (i = 1; i < nt; i++)
		if (started[i])
			pthread_join(th[i], NULL);
	for (i = 0; i < nt; i++) {
		if (chunk_report(&c[i], path, line0, out, e) < 0)
			goto out;
		line0 += c[i].lines;
		if (slice[i].n && slice[i].ev != out->ev + out->n)
			memmove(out->ev + out->n, slice[i].ev,
				slice[i].n * sizeof(*out->ev));
		out->n += slice[i].n;
	}
	rc = 0;
out:
	for (i = 0; i < nt; i++)
		event_parser_free(c[i].jp);
	return rc;
}

/*
 * A plain regular file ending in '\n', mapped and parsed in place. 1 when
 * it cannot be mapped (the caller streams it instead).
 */
static int read_mapped(int fd, const char *path, size_t size,
		       const struct chunk *tmpl, struct event_list *out,
		       struct err *e)
{
	char *map;
	int rc;

	if (size == 0)
		return 1;
	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED)
		return 1;
	if (map[size - 1] != '\n') {
		munmap(map, size);
		return 1;
	}
	rc = parse_buffer(path, map, size, tmpl, out, e);
	munmap(map, size);
	return rc;
}

/* ---- readers ------------------------------------------------------------ */

/* Call when path's data turned out not to be gzip (no gzip header, or
 * shorter than one): -1 with e = "PATH: not gzip data ..." when the name
 * ends in ".gz" (zlib would read it as plain text, a damaged or misnamed
 * download passing for data); else 0. */
static int gz_not_gzip(const char *path, struct err *e)
{
	if (!suffix_is(path, strlen(path), ".gz"))
		return 0;
	return err_set(e, "%s: not gzip data (the name ends in .gz)", path);
}

int load_open(const char *path, int *fd, struct stat *st,
	      enum load_kind *kind, struct err *e)
{
	unsigned char magic[2];

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(e, "%s: cannot open: %m", path);
	if (fstat(*fd, st)) {
		err_set(e, "%s: cannot open: %m", path);
		goto fail;
	}
	/* (igraph's lexers abort the process on the read error) */
	if (S_ISDIR(st->st_mode)) {
		err_set(e, "%s: is a directory", path);
		goto fail;
	}
	if (!S_ISREG(st->st_mode))
		*kind = LOAD_PIPE;
	else if (pread(*fd, magic, 2, 0) == 2 && magic[0] == 0x1f &&
		 magic[1] == 0x8b)
		*kind = LOAD_GZIP;
	else if (gz_not_gzip(path, e)) /* shorter than a header, or none */
		goto fail;
	else
		*kind = LOAD_PLAIN;
	return 0;
fail:
	close(*fd);
	*fd = -1;
	return -1;
}

#define GZ_IN_BUF (1u << 20)

/*
 * One reader for every kind of input: zlib's inflate over read(2), member
 * by member, for gzip data (a regular file or a pipe alike); read(2)
 * itself for plain data. A pipe's first bytes say which it is.
 */
struct load_in {
	const char *path;
	int fd;
	int gzip;           /* inflate; else plain bytes */
	z_stream z;         /* next_in/avail_in: read ahead, both kinds */
	unsigned char *in;
	uint64_t off;       /* input offset of in[0] */
	int eof;            /* read(2) said end of file */
	int between;        /* at the end of a member: another or the end */
	int done;
};

/* Refill the input (keeping what is left of it). 0, or -1 with e. */
static int in_fill(struct load_in *r, struct err *e)
{
	size_t have = r->z.avail_in;
	ssize_t got;

	r->off += (uint64_t)(r->z.next_in - r->in);
	memmove(r->in, r->z.next_in, have);
	r->z.next_in = r->in;
	do
		got = read(r->fd, r->in + have, GZ_IN_BUF - have);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return err_set(e, "%s: read error: %m", r->path);
	r->eof = got == 0;
	r->z.avail_in = (uInt)(have + (size_t)got);
	return 0;
}

struct load_in *load_in_open(int fd, const char *path, enum load_kind kind,
			     struct err *e)
{
	struct load_in *r = mem_calloc(1, sizeof(*r));

	if (!r) {
		close(fd);
		err_set(e, "%s: out of memory", path);
		return NULL;
	}
	r->path = path;
	r->fd = fd; /* owned from here */
	r->in = mem_alloc(GZ_IN_BUF, 1);
	if (!r->in) {
		load_in_close(r);
		err_set(e, "%s: out of memory", path);
		return NULL;
	}
	r->z.next_in = r->in;
	if (kind == LOAD_PIPE) {
		/* a pipe may hand over its first bytes one at a time */
		while (r->z.avail_in < 2 && !r->eof)
			if (in_fill(r, e)) {
				load_in_close(r);
				return NULL;
			}
		if (r->z.avail_in >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b)
			kind = LOAD_GZIP;
		else if (gz_not_gzip(path, e)) {
			load_in_close(r);
			return NULL;
		}
	}
	if (kind != LOAD_GZIP)
		return r;
	r->gzip = 1;
	/* 15 + 16: gzip only, with its header and trailer checked */
	if (inflateInit2(&r->z, 15 + 16) != Z_OK) {
		r->gzip = 0;
		load_in_close(r);
		err_set(e, "%s: out of memory", path);
		return NULL;
	}
	return r;
}

/* Plain data: what is read ahead first, then read(2) straight into buf. */
static ssize_t plain_read(struct load_in *r, void *buf, size_t n,
			  struct err *e)
{
	ssize_t got;

	if (r->z.avail_in) {
		size_t k = n < r->z.avail_in ? n : r->z.avail_in;

		memcpy(buf, r->z.next_in, k);
		r->z.next_in += k;
		r->z.avail_in -= (uInt)k;
		return (ssize_t)k;
	}
	if (r->eof)
		return 0;
	do
		got = read(r->fd, buf, n > SSIZE_MAX ? SSIZE_MAX : n);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return err_set(e, "%s: read error: %m", r->path);
	r->eof = got == 0;
	return got;
}

ssize_t load_in_read(struct load_in *r, void *buf, size_t n, struct err *e)
{
	int zr;

	if (!r->gzip)
		return plain_read(r, buf, n, e);
	r->z.next_out = buf;
	r->z.avail_out = n > UINT_MAX ? UINT_MAX : (uInt)n;
	while (r->z.avail_out && !r->done) {
		if (r->z.avail_in < 2 && !r->eof && in_fill(r, e))
			return -1;
		if (r->between) {
			/* another member, or the end; anything else (zlib's
			 * gzread ignores it) is refused. A pipe may hand
			 * over a header's two bytes one at a time. */
			while (r->z.avail_in < 2 && !r->eof)
				if (in_fill(r, e))
					return -1;
			if (!r->z.avail_in) {
				r->done = 1;
				break;
			}
			if (r->z.avail_in < 2 || r->z.next_in[0] != 0x1f ||
			    r->z.next_in[1] != 0x8b)
				return err_set(e, "%s: data after the end of the "
					       "gzip stream, at byte %llu, is not "
					       "gzip (a plain file appended to a "
					       "gzip one?)", r->path,
					       (unsigned long long)(r->off +
						(uint64_t)(r->z.next_in - r->in)));
			if (inflateReset(&r->z) != Z_OK)
				return err_set(e, "%s: gzip reset failed", r->path);
			r->between = 0;
		}
		zr = inflate(&r->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			r->between = 1;
		} else if (zr == Z_OK || zr == Z_BUF_ERROR) {
			/* stopped for want of input, with none to come */
			if (r->eof && !r->z.avail_in && r->z.avail_out)
				return err_set(e, "%s: truncated gzip input "
					       "(unexpected end of file)", r->path);
		} else {
			return err_set(e, "%s: %s", r->path,
				       r->z.msg ? r->z.msg : "gzip data error");
		}
	}
	return (ssize_t)(n > UINT_MAX ? UINT_MAX : n) - (ssize_t)r->z.avail_out;
}

void load_in_close(struct load_in *r)
{
	if (!r)
		return;
	if (r->gzip)
		inflateEnd(&r->z);
	if (r->fd >= 0)
		close(r->fd);
	free(r->in);
	free(r);
}


/* Any file (gzip, pipes): streamed in STREAM_BUF pieces on one thread. */
static int read_stream(struct load_in *in, const char *path,
		       const struct chunk *tmpl, struct event_list *out,
		       struct err *e)
{
	size_t cap = STREAM_BUF, keep = 0, len, used;
	char *buf = mem_alloc(cap + 1, 1), *nbuf;
	struct chunk c = *tmpl;
	uint64_t line0 = 0;
	ssize_t r;
	int eof = 0, rc = -1;

	c.out = out;
	c.jp = NULL;
	if (!buf || (c.fmt == FMT_NDJSON && !(c.jp = event_parser_new()))) {
		err_set(e, "%s: out of memory", path);
		goto out;
	}
	while (!eof) {
		/* a cut stream fails here: nothing of its last line counts */
		r = load_in_read(in, buf + keep, cap - keep, e);
		if (r < 0)
			goto out;
		len = keep + (size_t)r;
		if (r == 0) {
			eof = 1;
			if (len == 0)
				break;
			if (buf[len - 1] != '\n')
				buf[len++] = '\n'; /* cap + 1 bytes allocated */
			used = len;
		} else {
			const char *nl = NULL;
			size_t k = len;

			while (k > keep && !(nl = memchr(buf + k - 1, '\n', 1)))
				k--;
			if (!nl) { /* no newline yet: the line is long */
				if (len < cap) {
					keep = len;
					continue;
				}
				if (cap >= LINE_MAX_BYTES) {
					err_set(e, "%s:%llu: line longer than "
						"%u bytes", path,
						(unsigned long long)(line0 +
								     c.lines + 1),
						LINE_MAX_BYTES);
					goto out;
				}
				nbuf = mem_alloc(cap * 2 + 1, 1);
				if (!nbuf) {
					err_set(e, "%s: out of memory", path);
					goto out;
				}
				memcpy(nbuf, buf, len);
				free(buf);
				buf = nbuf;
				cap *= 2;
				keep = len;
				continue;
			}
			used = k;
		}
		c.p = buf;
		c.end = buf + used;
		chunk_run(&c);
		c.first = 0;
		if (c.oom || c.bad_line) {
			chunk_report(&c, path, line0, out, e);
			goto out;
		}
		memmove(buf, buf + used, len - used);
		keep = len - used;
	}
	c.first = 0;
	rc = chunk_report(&c, path, line0, out, e);
out:
	event_parser_free(c.jp);
	free(buf);
	return rc;
}

int load_events(const char *path, const struct load_opts *o,
		struct event_list *out, struct err *e)
{
	const char *format = o && o->format ? o->format : load_format_guess(path);
	struct chunk tmpl;
	struct stat st;
	struct load_in *in;
	time_t now = time(NULL);
	enum load_kind kind;
	int fd, rc;

	if (!format)
		return stat(path, &st)
		       ? err_set(e, "%s: cannot open: %m", path)
		       : err_set(e, "%s: unknown file format (name it with "
				 "--format)", path);
	if (!load_format_valid(format))
		return err_set(e, "%s: unknown format \"%s\"", path, format);
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.now = now < 0 ? 0 : now > (time_t)UINT32_MAX ? UINT32_MAX :
		(uint32_t)now;
	tmpl.skip_bad = o ? o->skip_bad : 0;
	tmpl.first = 1;
	if (!strcmp(format, "edges"))
		tmpl.fmt = FMT_EDGES;
	else if (!strcmp(format, "csv"))
		tmpl.fmt = FMT_CSV;
	else if (!strcmp(format, "ndjson"))
		tmpl.fmt = FMT_NDJSON;
	else
		return import_read(path, format, o ? o->directed : 0, tmpl.now,
				   out, e);

	if (load_open(path, &fd, &st, &kind, e))
		return -1;
	if (kind == LOAD_PLAIN && (uint64_t)st.st_size < SIZE_MAX / 2) {
		rc = read_mapped(fd, path, (size_t)st.st_size, &tmpl, out, e);
		if (rc != 1) {
			close(fd);
			return rc;
		}
	}
	in = load_in_open(fd, path, kind, e); /* owns fd */
	if (!in)
		return -1;
	rc = read_stream(in, path, &tmpl, out, e);
	load_in_close(in);
	return rc;
}

/* ---- building with removes ---------------------------------------------- */

struct pair_ref {
	uint64_t a, b; /* the pair's key: undirected {min, max} */
	size_t i;      /* index of the event in the list */
};

static int pair_cmp(const void *x, const void *y)
{
	const struct pair_ref *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return p->i < q->i ? -1 : p->i > q->i;
}

/* load_build; `own` (l->ev, or NULL) may be used as scratch, as may the
 * copy of the kept events. */
static int build_list(struct graph *g, const struct event_list *l,
		      struct graph_event *own, unsigned build_flags,
		      struct err *e)
{
	struct pair_ref *ref = NULL;
	struct graph_event *keep = NULL;
	uint8_t *live = NULL;
	int directed = graph_is_directed(g), rc = -1;
	size_t i, j, k, nkeep = 0, nrem = 0;

	for (i = 0; i < l->n; i++)
		nrem += l->ev[i].op == GRAPH_REMOVE;
	if (nrem == 0)
		return own ? graph_build_consume(g, own, l->n, l->cap,
						 build_flags, NULL, e)
			   : graph_build(g, l->ev, l->n, build_flags, NULL, e);

	ref = mem_alloc(l->n, sizeof(*ref));
	live = mem_calloc(l->n, 1);
	if (!ref || !live) {
		err_set(e, "out of memory resolving %zu events", l->n);
		goto out;
	}
	for (i = 0; i < l->n; i++) {
		const struct graph_event *ev = &l->ev[i];
		int swap = !directed && ev->src > ev->dst;

		ref[i].a = swap ? ev->dst : ev->src;
		ref[i].b = swap ? ev->src : ev->dst;
		ref[i].i = i;
	}
	qsort(ref, l->n, sizeof(*ref), pair_cmp);
	for (i = 0; i < l->n; i = j) {
		size_t last_rm = SIZE_MAX; /* position in ref of the last remove */

		for (j = i; j < l->n && ref[j].a == ref[i].a &&
			    ref[j].b == ref[i].b; j++)
			if (l->ev[ref[j].i].op == GRAPH_REMOVE)
				last_rm = j;
		/* graph_build keeps the newest ts of the surviving adds */
		for (k = last_rm == SIZE_MAX ? i : last_rm + 1; k < j; k++)
			if (l->ev[ref[k].i].op == GRAPH_ADD) {
				live[ref[k].i] = 1;
				nkeep++;
			}
	}
	free(ref);
	ref = NULL;
	keep = mem_alloc(nkeep, sizeof(*keep));
	if (!keep) {
		err_set(e, "out of memory resolving %zu events", l->n);
		goto out;
	}
	for (i = 0, k = 0; i < l->n; i++)
		if (live[i])
			keep[k++] = l->ev[i];
	free(live);
	live = NULL;
	rc = graph_build_consume(g, keep, nkeep, nkeep, build_flags, NULL, e);
out:
	free(ref);
	free(live);
	free(keep);
	return rc;
}

int load_build(struct graph *g, const struct event_list *l,
	       unsigned build_flags, struct err *e)
{
	return build_list(g, l, NULL, build_flags, e);
}

int load_build_consume(struct graph *g, struct event_list *l,
		       unsigned build_flags, struct err *e)
{
	return build_list(g, l, l->ev, build_flags, e);
}
