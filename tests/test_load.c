/*
 * test_load.c - reading edge/event files (graph/load.h, graph/import.h)
 * and the `triad load` / `triad stats` commands.
 *
 * References: the events each test wrote into its own input (literal
 * tables or a seeded generator), the same input through another code path
 * (gzip streaming vs the threaded in-place parser), a plain pair table for
 * removes (and graph_apply on a fresh graph), igraph's own edgelist reader
 * for degrees of data/facebook_combined.txt, and the counts published in
 * data/SOURCES.md.
 */
#include <check.h>
#include <fcntl.h>
#include <igraph.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <zlib.h>

#include "graph.h"
#include "load.h"
#include "mem.h"
#include "recommend.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static char tmpdir[256];

static void setup(void)
{
	strcpy(tmpdir, "/tmp/test_load.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *path_in(const char *name)
{
	static char buf[4][512];
	static unsigned k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

static const char *write_file(const char *name, const char *s, size_t n)
{
	const char *p = path_in(name);
	FILE *f = fopen(p, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(s, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
	return p;
}

static const char *write_str(const char *name, const char *s)
{
	return write_file(name, s, strlen(s));
}

static const char *write_gz(const char *name, const char *s, size_t n)
{
	const char *p = path_in(name);
	gzFile gz = gzopen(p, "wb");

	ck_assert_ptr_nonnull(gz);
	ck_assert_int_eq(gzwrite(gz, s, (unsigned)n), (int)n);
	ck_assert_int_eq(gzclose(gz), Z_OK);
	return p;
}

/* A file's bytes (malloc'd) and their count. */
static char *slurp_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	char *b = malloc(1 << 16);

	ck_assert(f && b);
	*n = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

static int load(const char *path, const char *fmt, int skip_bad,
		struct event_list *l, struct err *e)
{
	struct load_opts o = { 0 };

	o.format = fmt;
	o.skip_bad = skip_bad;
	err_clear(e);
	return load_events(path, &o, l, e);
}

struct want {
	uint64_t src, dst;
	int64_t ts; /* -1: "now" (load time) */
	uint8_t op;
};

static void check_events(const struct event_list *l, const struct want *w,
			 size_t n, uint32_t t0, uint32_t t1)
{
	size_t i;

	ck_assert_uint_eq(l->n, n);
	for (i = 0; i < n; i++) {
		ck_assert_msg(l->ev[i].src == w[i].src &&
			      l->ev[i].dst == w[i].dst &&
			      l->ev[i].op == w[i].op,
			      "event %zu: got %" PRIu64 " %" PRIu64 " op %u", i,
			      l->ev[i].src, l->ev[i].dst, l->ev[i].op);
		if (w[i].ts < 0) {
			ck_assert_uint_ge(l->ev[i].ts, t0);
			ck_assert_uint_le(l->ev[i].ts, t1);
		} else {
			ck_assert_uint_eq(l->ev[i].ts, (uint64_t)w[i].ts);
		}
	}
}

static uint32_t now32(void)
{
	return (uint32_t)time(NULL);
}

/* ---- text formats --------------------------------------------------------- */

START_TEST(test_edges_quirks)
{
	static const char in[] =
		"\xEF\xBB\xBF# SNAP comment\n"
		"% KONECT header\n"
		"\n"
		"1 2 100\r\n"
		"3\t4\t200\n"
		"   \t\n"
		"  5   6  \n"
		"7 7 50\n"
		"18446744073709551615 0 4294967295\n"
		"8 9 -1 300\n"          /* KONECT: src dst weight ts */
		"12 13 0.5 4294967295.999\n" /* a fourth column's fraction: cut */
		"2 1 50\n"              /* repeated pair, older ts: kept */
		"10 11 300";            /* no final newline */
	static const struct want w[] = {
		{ 1, 2, 100, 0 },  { 3, 4, 200, 0 }, { 5, 6, -1, 0 },
		{ UINT64_MAX, 0, UINT32_MAX, 0 }, { 8, 9, 300, 0 },
		{ 12, 13, UINT32_MAX, 0 },
		{ 2, 1, 50, 0 },   { 10, 11, 300, 0 },
	};
	struct event_list l = { 0 };
	struct err e;
	uint32_t t0 = now32(), t1;
	const char *p = write_str("a.txt", in);

	ck_assert_msg(load(p, NULL, 0, &l, &e) == 0, "%s", e.msg);
	t1 = now32();
	check_events(&l, w, sizeof(w) / sizeof(w[0]), t0, t1);
	ck_assert_uint_eq(l.self_loops, 1);
	ck_assert_uint_eq(l.bad_skipped, 0);
	event_list_release(&l);
	ck_assert_ptr_null(l.ev);
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

START_TEST(test_csv)
{
	static const char hdr[] = "src,dst,ts\n1,2,10\n 3 , 4 , 20 \r\n5,6\n"
				  "\n# c\n7,7,1\n";
	/* SNAP's Bitcoin trust files: SOURCE,TARGET,RATING,TIME, the time
	 * with a fraction of a second (cut off) */
	static const char nohdr[] = "1,2\n3,4,5\n6,2,4,1289241911.72836\n"
				    "7 , 5 , -10 , 1289241942.0 \n";
	static const struct want w1[] = {
		{ 1, 2, 10, 0 }, { 3, 4, 20, 0 }, { 5, 6, -1, 0 } };
	static const struct want w2[] = { { 1, 2, -1, 0 }, { 3, 4, 5, 0 },
		{ 6, 2, 1289241911, 0 }, { 7, 5, 1289241942, 0 } };
	struct event_list l = { 0 };
	struct err e;
	uint32_t t0 = now32();

	ck_assert_msg(load(write_str("h.csv", hdr), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	check_events(&l, w1, 3, t0, now32());
	ck_assert_uint_eq(l.self_loops, 1);
	event_list_release(&l);
	ck_assert_msg(load(write_str("n.csv", nohdr), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	check_events(&l, w2, 4, t0, now32());
	event_list_release(&l);
}
END_TEST

START_TEST(test_ndjson)
{
	static const char in[] =
		"{\"op\":\"add\",\"src\":1,\"dst\":2,\"ts\":10}\n"
		"\n"
		"{\"src\":\"3\",\"dst\":4}\r\n"
		"  {\"op\":\"remove\",\"src\":2,\"dst\":1,\"ts\":11}  \n"
		"{\"src\":9,\"dst\":9,\"ts\":1}\n"
		"{\"src\":18446744073709551615,\"dst\":5,\"ts\":12,\"x\":1}";
	static const struct want w[] = {
		{ 1, 2, 10, GRAPH_ADD }, { 3, 4, -1, GRAPH_ADD },
		{ 2, 1, 11, GRAPH_REMOVE }, { UINT64_MAX, 5, 12, GRAPH_ADD } };
	struct event_list l = { 0 };
	struct err e;
	uint32_t t0 = now32();

	ck_assert_msg(load(write_str("e.ndjson", in), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	check_events(&l, w, 4, t0, now32());
	ck_assert_uint_eq(l.self_loops, 1);
	event_list_release(&l);
	ck_assert_msg(load(write_str("e.jsonl", in), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	ck_assert_uint_eq(l.n, 4);
	event_list_release(&l);
}
END_TEST

/* Several files append to one list, in order. */
START_TEST(test_append)
{
	struct event_list l = { 0 };
	struct err e;

	ck_assert_int_eq(load(write_str("1.txt", "1 2 5\n"), NULL, 0, &l, &e),
			 0);
	ck_assert_int_eq(load(write_str("2.csv", "3,4,6\n"), NULL, 0, &l, &e),
			 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.ev[0].src, 1);
	ck_assert_uint_eq(l.ev[1].src, 3);
	ck_assert_uint_eq(l.ev[1].ts, 6);
	event_list_release(&l);
}
END_TEST

static const struct {
	const char *fmt, *name, *in;
	unsigned line;
	const char *msg; /* what follows "PATH:LINE: " */
	size_t good;     /* events loaded with skip_bad */
} bad_cases[] = {
	{ "edges", "b.txt", "1 2\n3 x\n", 2, "\"x\" is not a member id", 1 },
	{ "edges", "b.txt", "1 2\n\n# c\n-3 4\n5 6\n", 4,
	  "\"-3\" is not a member id", 2 },
	{ "edges", "b.txt", "12a 4\n", 1, "\"12a\" is not a member id", 0 },
	{ "edges", "b.txt", "1 18446744073709551616\n", 1,
	  "\"18446744073709551616\" is above 18446744073709551615", 0 },
	{ "edges", "b.txt", "1 2\n1\n", 2, "missing the destination member id",
	  1 },
	{ "edges", "b.txt", "1 2 -5\n", 1,
	  "\"-5\" is not a timestamp (an integer 0..4294967295)", 0 },
	{ "edges", "b.txt", "1 2 4294967296\n", 1,
	  "\"4294967296\" is not a timestamp (an integer 0..4294967295)", 0 },
	{ "edges", "b.txt", "1 2 1.5\n3 4\n", 1,
	  "\"1.5\" is not a timestamp (an integer 0..4294967295)", 1 },
	{ "edges", "b.txt", "1 2 3 4 5\n", 1, "\"5\" is one field too many",
	  0 },
	{ "edges", "b.txt", "1 2\r\n3 4 x\r\n", 2,
	  "\"x\" is not a timestamp (an integer 0..4294967295)", 1 },
	{ "edges", "b.txt",
	  "1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 1,
	  "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" is not a member id",
	  0 },
	/* bytes a terminal acts on are quoted as \xNN (the raw escape
	 * sequence went to the terminal) */
	{ "edges", "b.txt", "1 2\n3 \x01\xff\x1b[31m\\ 4\n", 2,
	  "\"\\x01\\xff\\x1b[31m\\x5c\" is not a member id", 1 },
	/* CR-only line endings: refused, not read as blanks that run two
	 * lines together (3 4 was lost, and 1 2\r5 gave ts 5) */
	{ "edges", "b.txt", "1 2\r3 4\r\n5 6\n", 1,
	  "a carriage return without a newline after it", 1 },
	{ "edges", "b.txt", "5 6\n1 2\r5\r\n", 2,
	  "a carriage return without a newline after it", 1 },
	{ "edges", "b.txt", "\r1 2\n5 6\n", 1,
	  "a carriage return without a newline after it", 1 },
	{ "csv", "b.csv", "1,2\r3,4\r\n", 1,
	  "a carriage return without a newline after it", 0 },
	{ "csv", "b.csv", "1,2\n1;2\n", 2, "\"1;2\" is not a member id", 1 },
	/* a first line that does not start like a name is no header */
	{ "csv", "b.csv", "-1,2\n3,4\n", 1, "\"-1\" is not a member id", 1 },
	{ "csv", "b.csv", "1,2,3,4,5\n", 1, "\"5\" is one field too many", 0 },
	/* nothing to quote: the empty field said so; a tab-separated file
	 * named .csv told what it is */
	{ "csv", "b.csv", "1,2,\n", 1, "an empty field is not a timestamp", 0 },
	{ "csv", "b.csv", "3,4\n1,,2\n", 2, "an empty field is not a member id", 1 },
	{ "csv", "b.csv", "1\t2\n", 1, "no comma after the source member id", 0 },
	/* a fraction only where the column is a time (the fourth), and
	 * digits on both sides of the point */
	{ "csv", "b.csv", "1,2,3\n1,2,3.5\n", 2,
	  "\"3.5\" is not a timestamp (an integer 0..4294967295)", 1 },
	{ "csv", "b.csv", "1,2,3,1.2e9\n", 1, "\"1.2e9\" is not a timestamp "
	  "(seconds 0..4294967295, a fraction allowed)", 0 },
	{ "edges", "b.txt", "1 2 1 5.\n", 1, "\"5.\" is not a timestamp "
	  "(seconds 0..4294967295, a fraction allowed)", 0 },
	{ "edges", "b.txt", "1 2 1 .5\n", 1, "\".5\" is not a timestamp "
	  "(seconds 0..4294967295, a fraction allowed)", 0 },
	{ "edges", "b.txt", "1 2 1 4294967296.0\n", 1, "\"4294967296.0\" is "
	  "not a timestamp (seconds 0..4294967295, a fraction allowed)", 0 },
	{ "edges", "b.txt", "1 2 1 7.5.5\n", 1, "\"7.5.5\" is not a timestamp "
	  "(seconds 0..4294967295, a fraction allowed)", 0 },
	{ "csv", "b.csv", "1\n", 1, "missing the destination member id", 0 },
	{ "csv", "b.csv", "a,b\n1,2\nx,3\n", 3, "\"x\" is not a member id",
	  1 },
	{ "ndjson", "b.ndjson", "{\"src\":1,\"dst\":2}\n{\"src\":1}\n", 2,
	  "\"dst\" is missing", 1 },
	{ "ndjson", "b.ndjson", "\n\nnot json\n{\"src\":1,\"dst\":2}\n", 3,
	  "not json", 1 },
	{ "ndjson", "b.ndjson", "{\"src\":1,\"dst\":2,\"ts\":-1}", 1,
	  "\"ts\" must be", 0 },
	{ "ndjson", "b.ndjson", "{\"src\":1,\"dst\":2}\n# no comments\n", 2,
	  "not json", 1 },
};

START_TEST(test_bad_lines)
{
	struct event_list l = { 0 };
	struct err e;
	char want[600];
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const char *p = write_str(bad_cases[i].name, bad_cases[i].in);

		snprintf(want, sizeof(want), "%s:%u: %s", p, bad_cases[i].line,
			 bad_cases[i].msg);
		ck_assert_int_eq(load(p, bad_cases[i].fmt, 0, &l, &e), -1);
		ck_assert_msg(!strncmp(e.msg, want, strlen(want)),
			      "case %zu: got '%s', want '%s'", i, e.msg, want);
		event_list_release(&l);

		ck_assert_msg(load(p, bad_cases[i].fmt, 1, &l, &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(l.bad_skipped, 1);
		ck_assert_uint_eq(l.n, bad_cases[i].good);
		event_list_release(&l);

		/* the same through gzip streaming */
		p = write_gz("b.gz", bad_cases[i].in, strlen(bad_cases[i].in));
		snprintf(want, sizeof(want), "%s:%u: %s", p, bad_cases[i].line,
			 bad_cases[i].msg);
		ck_assert_int_eq(load(p, bad_cases[i].fmt, 0, &l, &e), -1);
		ck_assert_msg(!strncmp(e.msg, want, strlen(want)),
			      "gz case %zu: got '%s', want '%s'", i, e.msg,
			      want);
		event_list_release(&l);
	}
}
END_TEST

START_TEST(test_gz_same)
{
	static const char *const in[] = {
		"# c\n1 2 3\n4 5 6\r\n7 8\n9 9 1\n",
		"src,dst\n1,2,3\n4,5,6\n",
		"{\"src\":1,\"dst\":2,\"ts\":3}\n{\"op\":\"remove\",\"src\":2,"
		"\"dst\":1,\"ts\":4}\n",
	};
	static const char *const fmt[] = { "edges", "csv", "ndjson" };
	struct event_list a = { 0 }, b = { 0 };
	struct err e;
	size_t i;

	for (i = 0; i < 3; i++) {
		const char *p = write_str("p", in[i]);
		const char *q = write_gz("q.gz", in[i], strlen(in[i]));

		ck_assert_msg(load(p, fmt[i], 0, &a, &e) == 0, "%s", e.msg);
		ck_assert_msg(load(q, fmt[i], 0, &b, &e) == 0, "%s", e.msg);
		ck_assert_uint_gt(a.n, 0);
		ck_assert_uint_eq(a.n, b.n);
		ck_assert_uint_eq(a.self_loops, b.self_loops);
		for (size_t k = 0; k < a.n; k++) {
			ck_assert_uint_eq(a.ev[k].src, b.ev[k].src);
			ck_assert_uint_eq(a.ev[k].dst, b.ev[k].dst);
			ck_assert_uint_eq(a.ev[k].op, b.ev[k].op);
			if (i != 0 || k != 2) /* line 3 has no ts */
				ck_assert_uint_eq(a.ev[k].ts, b.ev[k].ts);
		}
		event_list_release(&a);
		event_list_release(&b);
	}
	/* a gzip file named .txt.gz guesses "edges" */
	ck_assert_int_eq(load(write_gz("x.txt.gz", in[0], strlen(in[0])), NULL,
			      0, &a, &e), 0);
	ck_assert_uint_eq(a.n, 3);
	event_list_release(&a);
}
END_TEST

/* A .gz that is not gzip data (a damaged or misnamed download) is
 * refused, in the text formats and in igraph's: zlib read it as plain
 * text and it loaded as if it were the data. Gzip data under another
 * name still loads. */
START_TEST(test_gz_not_gzip)
{
	static const char *const fmt[] = { "edges", "csv", "ndjson", "ncol",
					   "gml" };
	static const char *const in[] = {
		"1 2\n", "1,2\n", "{\"src\":1,\"dst\":2}\n", "1 2\n",
		"graph [ node [ id 1 ] node [ id 2 ] edge [ source 1 target 2 ] ]\n",
	};
	struct event_list l = { 0 };
	struct err e;

	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		const char *body[] = { in[i], "", "1" };

		for (size_t k = 0; k < 3; k++) {
			const char *p = write_str("plain.gz", body[k]);

			ck_assert_msg(load(p, fmt[i], 0, &l, &e) == -1,
				      "%s \"%s\" loaded", fmt[i], body[k]);
			ck_assert_msg(strstr(e.msg, "plain.gz: not gzip data"),
				      "%s: %s", fmt[i], e.msg);
			event_list_release(&l);
		}
		ck_assert_msg(load(write_gz("z.bin", in[i], strlen(in[i])),
				   fmt[i], 0, &l, &e) == 0, "%s: %s", fmt[i],
			      e.msg);
		ck_assert_uint_eq(l.n, 1);
		event_list_release(&l);
	}
}
END_TEST

/* Bytes after a regular file's last gzip member that are not another
 * member are refused, naming their offset: zlib's gzread ignored them, so
 * a plain file appended to a gzip one (cat a.gz b.txt > c.gz) lost its
 * edges silently. Several members still load whole. */
START_TEST(test_gz_trailing_data)
{
	static const char *const fmt[] = { "edges", "ncol" };
	struct event_list l = { 0 };
	struct err e;

	for (size_t i = 0; i < 2; i++) {
		static const char *const tail[] = { "5 6\n", "\0", "\x1f" };
		const char *p = write_gz("a.gz", "1 2\n2 3\n", 8);
		size_t n, k;
		char *a = slurp_file(p, &n), *b;
		FILE *f;

		/* two members: every edge */
		write_gz("b.gz", "3 4\n", 4);
		b = slurp_file(path_in("b.gz"), &k);
		f = fopen(path_in("two.gz"), "wb");
		ck_assert(f && fwrite(a, 1, n, f) == n && fwrite(b, 1, k, f) == k);
		fclose(f);
		ck_assert_msg(load(path_in("two.gz"), fmt[i], 0, &l, &e) == 0,
			      "%s: %s", fmt[i], e.msg);
		ck_assert_uint_eq(l.n, 3);
		event_list_release(&l);
		for (k = 0; k < 3; k++) {
			char want[64];

			f = fopen(path_in("tail.gz"), "wb");
			ck_assert(f && fwrite(a, 1, n, f) == n &&
				  fwrite(tail[k], 1, k == 0 ? 4 : 1, f) ==
					  (k == 0 ? 4u : 1u));
			fclose(f);
			ck_assert_msg(load(path_in("tail.gz"), fmt[i], 0, &l,
					   &e) == -1, "%s tail %zu loaded",
				      fmt[i], k);
			snprintf(want, sizeof(want), "stream, at byte %zu, is "
				 "not gzip", n);
			ck_assert_msg(strstr(e.msg, "tail.gz: data after the end "
					     "of the gzip") && strstr(e.msg, want),
				      "%s: %s", fmt[i], e.msg);
			event_list_release(&l);
		}
		free(a);
		free(b);
	}
}
END_TEST

/* A gzip file cut short anywhere (in the data, or only its 8-byte
 * trailer) is refused whole, in the text formats and in igraph's: zlib
 * ends such a stream as if it were complete, and the cut line could read
 * as another edge ("2268 24" of "2268 2451"). */
START_TEST(test_gz_truncated)
{
	static const char *const fmt[] = { "edges", "ncol" };
	char text[64 * 1024], *whole;
	size_t n = 0, len, cut;
	FILE *f;
	struct event_list l = { 0 };
	struct err e;
	uint64_t s = 77;

	for (int i = 0; n + 32 < sizeof(text); i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%u %u\n",
				      (unsigned)(s >> 40) % 5000,
				      (unsigned)(s >> 20) % 5000 + 5000);
	}
	write_gz("w.gz", text, n);
	f = fopen(path_in("w.gz"), "rb");
	ck_assert_ptr_nonnull(f);
	whole = malloc(sizeof(text));
	ck_assert_ptr_nonnull(whole);
	len = fread(whole, 1, sizeof(text), f);
	fclose(f);
	ck_assert_uint_gt(len, 100);
	for (int k = 0; k < 2; k++) {
		ck_assert_msg(load(path_in("w.gz"), fmt[k], 0, &l, &e) == 0,
			      "%s", e.msg);
		event_list_release(&l);
		for (cut = len / 3; cut < len; cut += cut + 8 < len ? len / 3 : 1) {
			f = fopen(path_in("t.gz"), "wb");
			ck_assert_ptr_nonnull(f);
			ck_assert_uint_eq(fwrite(whole, 1, cut, f), cut);
			fclose(f);
			ck_assert_msg(load(path_in("t.gz"), fmt[k], 0, &l, &e) == -1,
				      "%s cut at %zu of %zu loaded", fmt[k], cut, len);
			ck_assert_msg(strstr(e.msg, "t.gz: truncated gzip input"),
				      "%s", e.msg);
			event_list_release(&l);
		}
		/* a damaged CRC: zlib's reason once, after the path once
		 * (it said "<fd:3>: incorrect data check" for the text
		 * formats, the path twice for igraph's) */
		memcpy(text, whole, len);
		text[len - 6] ^= 0x55;
		f = fopen(path_in("c.gz"), "wb");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(text, 1, len, f), len);
		fclose(f);
		ck_assert_int_eq(load(path_in("c.gz"), fmt[k], 0, &l, &e), -1);
		ck_assert_msg(!strncmp(e.msg, path_in("c.gz"),
				       strlen(path_in("c.gz"))) &&
			      !strcmp(e.msg + strlen(path_in("c.gz")),
				      ": incorrect data check"), "%s", e.msg);
		event_list_release(&l);
	}
	free(whole);
}
END_TEST

/* ---- big inputs: threads, buffer boundaries ------------------------------ */

#define BIG_LINES 400000u /* ~10 MB: several threads, > one stream buffer */

static uint64_t gen_id(uint64_t i, int which)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + (uint64_t)which * 77;

	x ^= x >> 29;
	return which ? x : x % 100000; /* dst spans the whole u64 range */
}

/* The generated file; line `bad` (1-based, 0 none) is malformed; every
 * 1000th line is a self-loop. */
static char *gen_big(size_t *len, unsigned bad_line)
{
	size_t cap = (size_t)BIG_LINES * 48, n = 0;
	char *s = malloc(cap);
	uint32_t i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < BIG_LINES; i++) {
		uint64_t a = gen_id(i, 0), b = i % 1000 == 999 ? a : gen_id(i, 1);

		if (i + 1 == bad_line)
			n += (size_t)snprintf(s + n, cap - n, "%" PRIu64 " 0x1 %u\n",
					      a, i);
		else
			n += (size_t)snprintf(s + n, cap - n,
					      "%" PRIu64 "%s%" PRIu64 " %u\n", a,
					      i % 7 ? " " : "\t", b, i);
	}
	*len = n;
	return s;
}

static void check_big(const struct event_list *l)
{
	uint32_t i;
	size_t k = 0, wrong = 0, first = SIZE_MAX;

	ck_assert_uint_eq(l->self_loops, BIG_LINES / 1000);
	ck_assert_uint_eq(l->n, BIG_LINES - BIG_LINES / 1000);
	/* plain compares: a Check assertion per element is a syscall */
	for (i = 0; i < BIG_LINES; i++) {
		if (i % 1000 == 999)
			continue;
		if (l->ev[k].src != gen_id(i, 0) ||
		    l->ev[k].dst != gen_id(i, 1) || l->ev[k].ts != i ||
		    l->ev[k].op != GRAPH_ADD) {
			wrong++;
			if (first == SIZE_MAX)
				first = k;
		}
		k++;
	}
	ck_assert_msg(wrong == 0, "%zu events differ, first at %zu", wrong,
		      first);
}

START_TEST(test_big_paths)
{
	struct event_list l = { 0 };
	struct err e;
	size_t len;
	char *s = gen_big(&len, 0), want[600];
	const char *p;

	p = write_file("big.txt", s, len);
	ck_assert_msg(load(p, NULL, 0, &l, &e) == 0, "%s", e.msg);
	check_big(&l);
	event_list_release(&l);

	p = write_gz("big.txt.gz", s, len);
	ck_assert_msg(load(p, NULL, 0, &l, &e) == 0, "%s", e.msg);
	check_big(&l);
	event_list_release(&l);

	/* no final newline: the streamed fallback */
	p = write_file("big2.txt", s, len - 1);
	ck_assert_msg(load(p, NULL, 0, &l, &e) == 0, "%s", e.msg);
	check_big(&l);
	event_list_release(&l);
	free(s);

	/* a bad line late in the file: found by a later thread, numbered
	 * from the start of the file */
	s = gen_big(&len, 350001);
	p = write_file("bad.txt", s, len);
	snprintf(want, sizeof(want), "%s:350001: \"0x1\" is not a member id",
		 p);
	ck_assert_int_eq(load(p, NULL, 0, &l, &e), -1);
	ck_assert_str_eq(e.msg, want);
	event_list_release(&l);
	ck_assert_int_eq(load(p, NULL, 1, &l, &e), 0);
	ck_assert_uint_eq(l.bad_skipped, 1);
	ck_assert_uint_eq(l.n, BIG_LINES - BIG_LINES / 1000 - 1);
	event_list_release(&l);

	p = write_gz("bad.txt.gz", s, len);
	snprintf(want, sizeof(want), "%s:350001: \"0x1\" is not a member id",
		 p);
	ck_assert_int_eq(load(p, NULL, 0, &l, &e), -1);
	ck_assert_str_eq(e.msg, want);
	event_list_release(&l);
	free(s);
}
END_TEST

/* Big NDJSON: the threaded in-place parser (one json-c parser per thread)
 * and gzip streaming both give back exactly the generated events. */
#define BIG_JSON 150000u

START_TEST(test_big_ndjson)
{
	size_t cap = (size_t)BIG_JSON * 100, n = 0, wrong = 0, k;
	char *s = malloc(cap);
	struct event_list a = { 0 }, b = { 0 };
	struct err e;
	uint32_t i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < BIG_JSON; i++)
		n += (size_t)snprintf(s + n, cap - n,
				      i % 3 ? "{\"src\":%" PRIu64 ",\"dst\":\"%"
					      PRIu64 "\",\"ts\":%u}\n" :
					      "{\"op\":\"remove\",\"src\":%" PRIu64
					      ",\"dst\":\"%" PRIu64 "\",\"ts\":%u}\n",
				      gen_id(i, 0), gen_id(i, 1), i);
	ck_assert_uint_gt(n, 4u << 20);
	ck_assert_msg(load(write_file("big.ndjson", s, n), NULL, 0, &a, &e) ==
		      0, "%s", e.msg);
	ck_assert_msg(load(write_gz("big.ndjson.gz", s, n), NULL, 0, &b, &e) ==
		      0, "%s", e.msg);
	free(s);
	ck_assert_uint_eq(a.n, BIG_JSON);
	ck_assert_uint_eq(b.n, BIG_JSON);
	for (k = 0; k < BIG_JSON; k++) {
		uint8_t op = k % 3 ? GRAPH_ADD : GRAPH_REMOVE;

		wrong += a.ev[k].src != gen_id((uint32_t)k, 0) ||
			 a.ev[k].dst != gen_id((uint32_t)k, 1) ||
			 a.ev[k].ts != k || a.ev[k].op != op ||
			 b.ev[k].src != a.ev[k].src ||
			 b.ev[k].dst != a.ev[k].dst ||
			 b.ev[k].ts != a.ev[k].ts || b.ev[k].op != op;
	}
	ck_assert_uint_eq(wrong, 0);
	event_list_release(&a);
	event_list_release(&b);
}
END_TEST

/* ---- format names, files that cannot be read ------------------------------ */

START_TEST(test_format_guess)
{
	static const struct {
		const char *path, *fmt;
	} t[] = {
		{ "a.txt", "edges" },     { "a.edges", "edges" },
		{ "x/a.el", "edges" },    { "a.tsv", "edges" },
		{ "a.csv", "csv" },       { "a.CSV.gz", "csv" },
		{ "a.ndjson", "ndjson" }, { "a.jsonl.gz", "ndjson" },
		{ "a.graphml", "graphml" }, { "a.gml", "gml" },
		{ "a.net", "pajek" },     { "a.pajek", "pajek" },
		{ "a.ncol", "ncol" },     { "a.lgl.gz", "lgl" },
		{ "a.txt.gz", "edges" },  { "a.dat", NULL },
		{ "a.gz", NULL },         { "out.konect", NULL },
		{ "txt", NULL },
	};
	struct event_list l = { 0 };
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *g = load_format_guess(t[i].path);

		if (!t[i].fmt)
			ck_assert_msg(g == NULL, "%s: %s", t[i].path, g);
		else
			ck_assert_msg(g && !strcmp(g, t[i].fmt), "%s: %s",
				      t[i].path, g ? g : "NULL");
		if (g)
			ck_assert_int_eq(load_format_valid(g), 1);
	}
	ck_assert_int_eq(load_format_valid("json"), 0);
	ck_assert_int_eq(load(write_str("a.dat", "1 2\n"), NULL, 0, &l, &e),
			 -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "a.dat: unknown file format"));
	/* with --format it loads */
	ck_assert_int_eq(load(path_in("a.dat"), "edges", 0, &l, &e), 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_int_eq(load(path_in("a.dat"), "bogus", 0, &l, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "unknown format \"bogus\""));
	ck_assert_int_eq(load(path_in("missing.txt"), NULL, 0, &l, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "missing.txt: cannot open"));
	/* an empty file is no events, not an error */
	ck_assert_int_eq(load(write_str("empty.txt", ""), NULL, 0, &l, &e), 0);
	ck_assert_uint_eq(l.n, 1);
	event_list_release(&l);
}
END_TEST

/* ---- igraph formats --------------------------------------------------------- */

/* Undirected pairs compare without orientation. */
static int has_pair(const struct event_list *l, uint64_t a, uint64_t b,
		    int64_t ts)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (((l->ev[i].src == a && l->ev[i].dst == b) ||
		     (l->ev[i].src == b && l->ev[i].dst == a)) &&
		    (ts < 0 || l->ev[i].ts == (uint64_t)ts))
			return 1;
	return 0;
}

START_TEST(test_gml)
{
	static const char in[] =
		"graph [\n  directed 0\n"
		"  node [ id 10 ]\n  node [ id 20 ]\n  node [ id 30 ]\n"
		"  edge [ source 10 target 20 ts 100 ]\n"
		"  edge [ source 20 target 30 ts 200 ]\n"
		"  edge [ source 30 target 30 ts 5 ]\n]\n";
	struct event_list l = { 0 };
	struct err e;

	ck_assert_msg(load(write_str("g.gml", in), NULL, 0, &l, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.self_loops, 1);
	ck_assert(has_pair(&l, 10, 20, 100));
	ck_assert(has_pair(&l, 20, 30, 200));
	ck_assert_uint_eq(l.renumbered, 0);
	event_list_release(&l);
	/* a node id that is no member id (negative): every member is
	 * numbered in file order, and the list says so (triad load warns) */
	ck_assert_msg(load(write_str("n.gml", "graph [ node [ id -5 ] node [ id 2 ]"
				     " edge [ source -5 target 2 ] ]\n"),
			   NULL, 0, &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(l.renumbered, 1);
	ck_assert(has_pair(&l, 0, 1, -1));
	event_list_release(&l);
	/* gzip: the same */
	ck_assert_msg(load(write_gz("g.gml.gz", in, strlen(in)), NULL, 0, &l,
			   &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(has_pair(&l, 20, 30, 200));
	event_list_release(&l);
	/* broken: an error naming the file, no abort */
	ck_assert_int_eq(load(write_str("bad.gml", "graph [ node [ id 1 "),
			      NULL, 0, &l, &e), -1);
	ck_assert_msg(!strncmp(e.msg, path_in("bad.gml"),
			       strlen(path_in("bad.gml"))), "%s", e.msg);
	event_list_release(&l);
	/* ts out of range */
	ck_assert_int_eq(load(write_str("ts.gml", "graph [ node [ id 1 ] node "
					"[ id 2 ] edge [ source 1 target 2 ts "
					"-4 ] ]"), NULL, 0, &l, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "is not a timestamp"));
	event_list_release(&l);
}
END_TEST

START_TEST(test_graphml)
{
	static const char head[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n"
		"<key id=\"t\" for=\"edge\" attr.name=\"time\" "
		"attr.type=\"double\"/>\n"
		"<graph id=\"G\" edgedefault=\"undirected\">\n";
	char in[2048];
	struct event_list l = { 0 };
	struct err e;
	uint32_t t0 = now32();

	snprintf(in, sizeof(in), "%s"
		 "<node id=\"5\"/><node id=\"18446744073709551615\"/>"
		 "<node id=\"7\"/>\n"
		 "<edge source=\"5\" target=\"18446744073709551615\">"
		 "<data key=\"t\">1234</data></edge>\n"
		 "<edge source=\"7\" target=\"5\"><data key=\"t\">99</data>"
		 "</edge>\n</graph>\n</graphml>\n", head);
	ck_assert_msg(load(write_str("g.graphml", in), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(has_pair(&l, 5, UINT64_MAX, 1234));
	ck_assert(has_pair(&l, 7, 5, 99));
	event_list_release(&l);

	/* an edge without the ts attribute (igraph reads NaN): load time */
	snprintf(in, sizeof(in), "%s"
		 "<node id=\"1\"/><node id=\"2\"/><node id=\"3\"/>\n"
		 "<edge source=\"1\" target=\"2\"><data key=\"t\">77</data>"
		 "</edge>\n<edge source=\"2\" target=\"3\"/>\n"
		 "</graph>\n</graphml>\n", head);
	ck_assert_msg(load(write_str("p.graphml", in), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(has_pair(&l, 1, 2, 77));
	ck_assert_uint_eq(l.ev[1].src, 2);
	ck_assert_uint_eq(l.ev[1].dst, 3);
	ck_assert_uint_ge(l.ev[1].ts, t0);
	ck_assert_uint_le(l.ev[1].ts, now32());
	event_list_release(&l);

	/* a ts that is there but not a timestamp still stops the load */
	snprintf(in, sizeof(in), "%s"
		 "<node id=\"1\"/><node id=\"2\"/>\n"
		 "<edge source=\"1\" target=\"2\"><data key=\"t\">-5</data>"
		 "</edge>\n</graph>\n</graphml>\n", head);
	ck_assert_int_eq(load(write_str("q.graphml", in), NULL, 0, &l, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "q.graphml: edge 0 (1-2): \"time\" -5 is not a timestamp"));
	event_list_release(&l);
	/* the value as given, not rounded by %g into a valid-looking one */
	snprintf(in, sizeof(in), "%s"
		 "<node id=\"1\"/><node id=\"2\"/>\n"
		 "<edge source=\"1\" target=\"2\"><data key=\"t\">1600000000.5"
		 "</data></edge>\n</graph>\n</graphml>\n", head);
	ck_assert_int_eq(load(write_str("q.graphml", in), NULL, 0, &l, &e), -1);
	ck_assert_msg(strstr(e.msg, "\"time\" 1600000000.5 is not"), "%s", e.msg);
	event_list_release(&l);

	/* a node attribute named "id" would overwrite the node ids (igraph
	 * keeps both under that name): two nodes with equal data were one */
	snprintf(in, sizeof(in),
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n"
		 "<key id=\"d0\" for=\"node\" attr.name=\"id\" attr.type=\"int\"/>\n"
		 "<graph edgedefault=\"undirected\">\n"
		 "<node id=\"n0\"><data key=\"d0\">7</data></node>"
		 "<node id=\"n1\"><data key=\"d0\">7</data></node>"
		 "<edge source=\"n0\" target=\"n1\"/>\n</graph>\n</graphml>\n");
	ck_assert_int_eq(load(write_str("id.graphml", in), NULL, 0, &l, &e), -1);
	ck_assert_msg(strstr(e.msg, "id.graphml: a node attribute named \"id\""),
		      "%s", e.msg);
	event_list_release(&l);
	/* told by igraph's own warning, so written any way GraphML allows
	 * (blanks around "="), and not when igraph ignores the key (for
	 * "all", which igraph 0.10 does not handle) */
	{
		static const char *const key[] = {
			"<key id=\"d0\" for = \"node\" attr.name = \"id\" attr.type=\"int\"/>",
			"<key id=\"d0\" for=\"all\" attr.name=\"id\" attr.type=\"int\"/>",
		};

		for (int k = 0; k < 2; k++) {
			snprintf(in, sizeof(in),
				 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				 "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n"
				 "%s\n<graph edgedefault=\"undirected\">\n"
				 "<node id=\"10\"><data key=\"d0\">5</data></node>"
				 "<node id=\"11\"><data key=\"d0\">5</data></node>"
				 "<node id=\"12\"/><edge source=\"10\" target=\"12\"/>"
				 "<edge source=\"11\" target=\"12\"/>\n</graph>\n"
				 "</graphml>\n", key[k]);
			if (!k) {
				ck_assert_int_eq(load(write_str("k.graphml", in),
						      NULL, 0, &l, &e), -1);
				ck_assert_ptr_nonnull(strstr(e.msg, "named \"id\""));
			} else {
				ck_assert_msg(load(write_str("k.graphml", in), NULL,
						   0, &l, &e) == 0, "%s", e.msg);
				ck_assert_uint_eq(l.n, 2);
				ck_assert(has_pair(&l, 10, 12, -1) &&
					  has_pair(&l, 11, 12, -1));
			}
			event_list_release(&l);
		}
	}

	/* non-numeric node ids: igraph vertex indices; no ts: load time */
	snprintf(in, sizeof(in),
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n"
		 "<graph id=\"G\" edgedefault=\"directed\">\n"
		 "<node id=\"n0\"/><node id=\"n1\"/><node id=\"n2\"/>\n"
		 "<edge source=\"n2\" target=\"n0\"/>\n"
		 "</graph>\n</graphml>\n");
	ck_assert_msg(load(write_str("h.graphml", in), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(l.ev[0].src, 2);
	ck_assert_uint_eq(l.ev[0].dst, 0);
	ck_assert_uint_ge(l.ev[0].ts, t0);
	event_list_release(&l);

	ck_assert_int_eq(load(write_str("bad.graphml", "<graphml><graph>"),
			      NULL, 0, &l, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "bad.graphml: "));
	event_list_release(&l);
}
END_TEST

/* 1 when l holds the arc a -> b (in that direction). */
static int has_arc(const struct event_list *l, uint64_t a, uint64_t b)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->ev[i].src == a && l->ev[i].dst == b)
			return 1;
	return 0;
}

START_TEST(test_pajek_ncol_lgl)
{
	struct event_list l = { 0 };
	struct err e;

	ck_assert_msg(load(write_str("p.net", "*Vertices 3\n1 \"a\"\n2 \"b\"\n"
				     "3 \"c\"\n*Edges\n1 2\n2 3\n"), NULL, 0,
			   &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(has_pair(&l, 1, 2, -1));
	ck_assert(has_pair(&l, 2, 3, -1));
	/* its vertex numbers are the member ids: no renumbering warning */
	ck_assert_uint_eq(l.renumbered, 0);
	event_list_release(&l);

	/* loaded --directed, an undirected file's edges go both ways (each
	 * came out smaller vertex first, a direction the file never gave);
	 * a directed file's arcs keep theirs */
	{
		struct load_opts o = { NULL, 0, 1, 0 };

		ck_assert_msg(load_events(write_str("u.net", "*Vertices 3\n*Edges\n"
						    "3 1\n2 3\n"), &o, &l, &e) == 0,
			      "%s", e.msg);
		ck_assert_uint_eq(l.n, 4);
		ck_assert(has_arc(&l, 3, 1) && has_arc(&l, 1, 3) &&
			  has_arc(&l, 2, 3) && has_arc(&l, 3, 2));
		event_list_release(&l);
		ck_assert_msg(load_events(write_str("d.net", "*Vertices 3\n*Arcs\n"
						    "3 1\n2 3\n"), &o, &l, &e) == 0,
			      "%s", e.msg);
		ck_assert_uint_eq(l.n, 2);
		ck_assert(has_arc(&l, 3, 1) && has_arc(&l, 2, 3));
		event_list_release(&l);
	}
	/* a vertex past *Vertices: igraph's reason, not an empty one */
	ck_assert_int_eq(load(write_str("o.net", "*Vertices 3\n*Edges\n1 2\n2 9\n"),
			      NULL, 0, &l, &e), -1);
	ck_assert_msg(strstr(e.msg, "o.net: ") && !strstr(e.msg, ":  ("), "%s",
		      e.msg);
	event_list_release(&l);
	/* GML ids past igraph's 2^31 - 1: said so, with what to do */
	ck_assert_int_eq(load(write_str("big.gml", "graph [ node [ id 4294967296 ] "
					"node [ id 1 ] edge [ source 4294967296 "
					"target 1 ] ]\n"), NULL, 0, &l, &e), -1);
	ck_assert_msg(strstr(e.msg, "takes node ids up to 2147483647 only"), "%s",
		      e.msg);
	event_list_release(&l);

	ck_assert_msg(load(write_str("a.ncol", "100 200 1.5\n200 300\n"
				     "300 300\n"), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.self_loops, 1);
	ck_assert(has_pair(&l, 100, 200, -1));
	ck_assert(has_pair(&l, 200, 300, -1));
	event_list_release(&l);

	/* names that are not ids: vertex indices in order of appearance */
	ck_assert_msg(load(write_str("b.ncol", "alice bob\nbob carol\n"), NULL,
			   0, &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(has_pair(&l, 0, 1, -1));
	ck_assert(has_pair(&l, 1, 2, -1));
	event_list_release(&l);

	ck_assert_msg(load(write_str("a.lgl", "# 100\n200\n300\n# 200\n300\n"),
			   NULL, 0, &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 3);
	ck_assert(has_pair(&l, 100, 200, -1));
	ck_assert(has_pair(&l, 100, 300, -1));
	ck_assert(has_pair(&l, 200, 300, -1));
	event_list_release(&l);
}
END_TEST

/* A directory or a FIFO given for an igraph format: igraph's lexers abort
 * the process on a read error (a directory killed `triad load` with
 * SIGABRT), and a FIFO opened a second time after zlib had looked at its
 * first bytes waited for another writer for ever. */
START_TEST(test_igraph_dir_fifo)
{
	static const char *const fmt[] = { "gml", "pajek", "ncol", "lgl",
					   "graphml" };
	struct event_list l = { 0 };
	struct err e;
	char fifo[600];
	pid_t pid;
	int st;

	snprintf(fifo, sizeof(fifo), "%s", path_in("f.ncol"));

	ck_assert_int_eq(mkdir(path_in("dir"), 0755), 0);
	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		ck_assert_int_eq(load(path_in("dir"), fmt[i], 0, &l, &e), -1);
		ck_assert_msg(strstr(e.msg, "dir: is a directory"), "%s: %s",
			      fmt[i], e.msg);
		event_list_release(&l);
	}
	for (int gz = 0; gz < 2; gz++) {
		ck_assert_int_eq(mkfifo(fifo, 0600), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) { /* the writer: two edges, then gone */
			gzFile w = gzopen(fifo, gz ? "wb" : "wbT");

			gzputs(w, "1 2\n3 4\n");
			_exit(gzclose(w) == Z_OK ? 0 : 1);
		}
		ck_assert_msg(load(fifo, "ncol", 0, &l, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		ck_assert_uint_eq(l.n, 2);
		ck_assert(has_pair(&l, 1, 2, -1) && has_pair(&l, 3, 4, -1));
		event_list_release(&l);
		ck_assert_int_eq(unlink(fifo), 0);
	}
}
END_TEST

/* Feed bytes into a FIFO from a child, the first 8 one at a time (a
 * pipe hands a reader what has been written so far) and the rest whole,
 * then load it. The child ignores a reader that stops early. */
static int load_fifo(const char *name, const char *bytes, size_t n,
		     const char *fmt, struct event_list *l, struct err *e)
{
	char fifo[600];
	pid_t pid;
	int st, rc;

	snprintf(fifo, sizeof(fifo), "%s", path_in(name));
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd;
		size_t off = 0;

		signal(SIGPIPE, SIG_IGN);
		fd = open(fifo, O_WRONLY);
		if (fd < 0)
			_exit(1);
		for (; off < n && off < 8; off++) {
			if (write(fd, bytes + off, 1) != 1)
				_exit(0);
			usleep(2000);
		}
		while (off < n) {
			ssize_t w = write(fd, bytes + off, n - off);

			if (w <= 0)
				_exit(0);
			off += (size_t)w;
		}
		_exit(close(fd) ? 1 : 0);
	}
	rc = load(fifo, fmt, 0, l, e);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(unlink(fifo), 0);
	return rc;
}

/* Gzip data from a pipe is read as from a file: several members load
 * whole, and bytes after the last member that are not another member, a
 * stream cut short or plain data under a .gz name are refused (through
 * zlib's gzread, a pipe's trailing bytes were dropped silently). */
START_TEST(test_gz_pipe)
{
	static const char *const fmt[] = { "edges", "ncol" };
	struct event_list l = { 0 };
	struct err e;

	for (size_t i = 0; i < 2; i++) {
		size_t n, k;
		char *a = slurp_file(write_gz("a.gz", "1 2\n2 3\n", 8), &n);
		char *b = slurp_file(write_gz("b.gz", "3 4\n", 4), &k);
		char *two = malloc(n + k + 4), want[64];

		ck_assert_ptr_nonnull(two);
		memcpy(two, a, n);
		memcpy(two + n, b, k);
		ck_assert_msg(load_fifo("two.gz", two, n + k, fmt[i], &l, &e) == 0,
			      "%s: %s", fmt[i], e.msg);
		ck_assert_uint_eq(l.n, 3);
		ck_assert(has_pair(&l, 1, 2, -1) && has_pair(&l, 3, 4, -1));
		event_list_release(&l);

		memcpy(two + n, "5 6\n", 4);
		ck_assert_int_eq(load_fifo("tail.gz", two, n + 4, fmt[i], &l, &e),
				 -1);
		snprintf(want, sizeof(want), "stream, at byte %zu, is not gzip", n);
		ck_assert_msg(strstr(e.msg, "tail.gz: data after the end of the "
				     "gzip") && strstr(e.msg, want), "%s: %s",
			      fmt[i], e.msg);
		event_list_release(&l);

		ck_assert_int_eq(load_fifo("cut.gz", a, n - 3, fmt[i], &l, &e), -1);
		ck_assert_msg(strstr(e.msg, "cut.gz: truncated gzip input"),
			      "%s: %s", fmt[i], e.msg);
		event_list_release(&l);

		ck_assert_int_eq(load_fifo("p.gz", "1 2\n", 4, fmt[i], &l, &e), -1);
		ck_assert_msg(strstr(e.msg, "p.gz: not gzip data"), "%s: %s",
			      fmt[i], e.msg);
		event_list_release(&l);

		/* plain data under a plain name: as it is, one byte too */
		ck_assert_msg(load_fifo("p.txt", "1 2\n7 8\n", 8, fmt[i], &l,
					&e) == 0, "%s: %s", fmt[i], e.msg);
		ck_assert_uint_eq(l.n, 2);
		ck_assert(has_pair(&l, 7, 8, -1));
		event_list_release(&l);
		ck_assert_msg(load_fifo("one.txt", "1 2", 3, fmt[i], &l, &e) == 0,
			      "%s: %s", fmt[i], e.msg);
		ck_assert_uint_eq(l.n, 1);
		event_list_release(&l);
		free(a);
		free(b);
		free(two);
	}
}
END_TEST

/* A line that ends too early in a line-based igraph format is named by
 * its own number: igraph's lexers count it when they read the newline
 * (and Pajek's the blank lines after it), so they named a later line. */
START_TEST(test_igraph_eol_line)
{
	static const struct {
		const char *name, *text, *want;
	} c[] = {
		{ "e1.ncol", "1 2\n3\n", "line 2 (" },
		{ "e2.ncol", "1 2\n3", "line 2 (" },
		{ "e3.ncol", "1 2\n3\n\n\n", "line 2 (" },
		{ "e4.ncol", "1 2\n\n3\n4 5\n", "line 3 (" },
		{ "e5.ncol", "1 2\n3 4 5 6\n7 8\n", "line 2 (" },
		{ "e6.net", "*Vertices 3\n*Edges\n1 2\n3\n\n\n", "line 4 (" },
		{ "e7.net", "*Vertices 3\n*Edges\n1 2\n3", "line 4 (" },
		{ "e8.net", "*Vertices 3\n*Edges\n1 2\n3 \r\n  \n", "line 4 (" },
		{ "e9.net", "*Vertices 3\n*Edges\n1 2\n3 x\n", "line 4 (" },
		{ "e10.lgl", "# 1\n2 3 4\n", "line 2 (" },
		/* a lone \r ends "3" for the lexer, which counts \n only: the
		 * number it gives is right (it was turned into line 2) */
		{ "e11.ncol", "1 2\n5 6\n3\r4 5\n", "line 3 (" },
		{ "e12.net", "*Vertices 5\n*Edges\n1 2\n3\r4 5\n", "line 4 (" },
		{ "e13.ncol", "1 2\n5 6\n3\n\r4 5\n", "line 3 (" },
	};
	struct event_list l = { 0 };
	struct err e;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ck_assert_int_eq(load(write_str(c[i].name, c[i].text), NULL, 0,
				      &l, &e), -1);
		ck_assert_msg(strstr(e.msg, c[i].want), "%s: want \"%s\": %s",
			      c[i].name, c[i].want, e.msg);
		event_list_release(&l);
	}
}
END_TEST

/* A Pajek file mixing *Arcs and *Edges, loaded --directed: igraph 0.10
 * gave its arcs both ways (arcs first, 4 arcs for 1->2 and 2-3) or its
 * edges one way (edges first, 2), so it is refused naming the line;
 * undirected every pair is right, and it loads. */
START_TEST(test_pajek_mixed)
{
	static const char *const text[] = {
		"*Vertices 3\n*Arcs\n1 2\n*Edges\n2 3\n",
		"*Vertices 3\n*edges\n2 3\n*arcslist\n1 2\n",
		/* igraph's lexer takes a section after blanks, on lines
		 * ended by a lone \r, and *Matrix as arcs: these loaded
		 * --directed with the arcs both ways */
		"*Vertices 3\n*Arcs\n1 2\n  *Edges\n2 3\n",
		"*Vertices 3\n*Arcs\n1 2\n\t*Edges\n2 3\n",
		"*Vertices 3\r*Arcs\r1 2\r*Edges\r2 3\r",
		"*Vertices 3\n*Edges\n1 2\n*Matrix\n0 0 0\n0 0 1\n0 0 0\n",
	};
	struct load_opts od = { NULL, 0, 1, 0 };
	struct event_list l = { 0 };
	struct err e;

	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		const char *p = write_str("mix.net", text[i]);

		err_clear(&e);
		ck_assert_msg(load_events(p, &od, &l, &e) == -1, "case %zu", i);
		ck_assert_msg(strstr(e.msg, "mix.net: line 4: an ") &&
			      strstr(e.msg, " section (*") &&
			      strstr(e.msg, ") after an "), "case %zu: %s", i,
			      e.msg);
		event_list_release(&l);
		ck_assert_msg(load(p, NULL, 0, &l, &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(l.n, 2);
		ck_assert(has_pair(&l, 1, 2, -1) && has_pair(&l, 2, 3, -1));
		event_list_release(&l);
	}
	/* a *Matrix of a two-mode network is of the edge kind; a *Edges
	 * inside a comment is no section */
	ck_assert_msg(load_events(write_str("two.net", "*Vertices 4 2\n"
					    "*Edges\n1 3\n*Matrix\n0 1\n"
					    "1 0\n"), &od, &l, &e) == 0,
		      "%s", e.msg);
	event_list_release(&l);
	ck_assert_msg(load_events(write_str("com.net", "*Vertices 3\n*Arcs\n"
					    "1 2\n% *Edges\n2 3\n"), &od,
				  &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	event_list_release(&l);
	/* one kind in several sections still loads --directed */
	ck_assert_msg(load_events(write_str("arcs.net", "*Vertices 3\n*Arcs\n"
					    "1 2\n*Arcslist\n3 1\n"), &od,
				  &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(has_arc(&l, 1, 2) && has_arc(&l, 3, 1));
	event_list_release(&l);
}
END_TEST

/* ---- load_build with removes ------------------------------------------------- */

struct triple {
	uint64_t a, b;
	uint32_t ts;
};

static int triple_cmp(const void *x, const void *y)
{
	const struct triple *p = x, *q = y;

	if (p->a != q->a)
		return p->a < q->a ? -1 : 1;
	if (p->b != q->b)
		return p->b < q->b ? -1 : 1;
	return p->ts < q->ts ? -1 : p->ts > q->ts;
}

/* Every stored half-edge as (member, member, ts), sorted. */
static struct triple *edge_set(const struct graph *g, size_t *n)
{
	struct graph_view v;
	struct graph_iter it;
	struct triple *t = NULL;
	size_t cap = 0;
	uint32_t u, w, ts;
	void *p;

	*n = 0;
	graph_view_begin(g, &v);
	for (u = 0; u < graph_nvertices(&v); u++) {
		graph_iter_init(&it, &v, u);
		while (graph_iter_next(&it, &w, &ts)) {
			if (*n == cap) {
				p = t;
				ck_assert_int_eq(mem_grow(&p, &cap, *n + 1,
							  sizeof(*t)), 0);
				t = p;
			}
			t[*n].a = graph_member(&v, u);
			t[*n].b = graph_member(&v, w);
			t[*n].ts = ts;
			(*n)++;
		}
	}
	graph_view_end(&v);
	if (*n)
		qsort(t, *n, sizeof(*t), triple_cmp);
	return t;
}

#define RM_MEMBERS 24u

static void build_vs_apply(int directed)
{
	struct event_list l = { 0 };
	struct graph *g1 = graph_new(directed), *g2 = graph_new(directed);
	/* the plain reference: present flag and ts per ordered pair */
	static uint8_t present[RM_MEMBERS][RM_MEMBERS];
	static uint32_t rts[RM_MEMBERS][RM_MEMBERS];
	struct triple *t1, *t2, *tr;
	size_t n1, n2, nr = 0, i;
	struct err e;
	uint64_t seed = 12345 + (uint64_t)directed;

	memset(present, 0, sizeof(present));
	ck_assert_ptr_nonnull(g1);
	ck_assert_ptr_nonnull(g2);
	for (i = 0; i < 4000; i++) {
		struct graph_event ev;
		uint64_t a, b;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		a = (seed >> 33) % RM_MEMBERS;
		b = (seed >> 45) % RM_MEMBERS;
		if (a == b)
			continue;
		ev.src = a * 1000003 + 7; /* sparse ids */
		ev.dst = b * 1000003 + 7;
		ev.ts = (uint32_t)((seed >> 13) % 100000000);
		ev.op = (seed >> 20) % 3 == 0 ? GRAPH_REMOVE : GRAPH_ADD;
		ck_assert_int_eq(event_list_push(&l, &ev), 0);
		if (!directed && a > b) {
			uint64_t x = a;

			a = b;
			b = x;
		}
		if (ev.op == GRAPH_REMOVE) {
			present[a][b] = 0;
		} else {
			uint32_t r = ev.ts / GRAPH_TS_RES * GRAPH_TS_RES;

			if (!present[a][b] || rts[a][b] < r)
				rts[a][b] = r;
			present[a][b] = 1;
		}
	}
	ck_assert_msg(load_build(g1, &l, GRAPH_BUILD_REORDER, &e) == 0, "%s",
		      e.msg);
	ck_assert_msg(graph_apply(g2, l.ev, l.n, NULL, &e) == 0, "%s", e.msg);
	/* load_build_consume (the list's memory as scratch) builds the same */
	{
		struct event_list lc = l;
		struct graph *g3 = graph_new(directed);
		struct triple *t3;
		size_t n3;

		lc.ev = mem_alloc(l.cap, sizeof(*l.ev));
		ck_assert_ptr_nonnull(lc.ev);
		memcpy(lc.ev, l.ev, l.n * sizeof(*l.ev));
		ck_assert_msg(load_build_consume(g3, &lc, 0, &e) == 0, "%s", e.msg);
		event_list_release(&lc);
		t1 = edge_set(g1, &n1);
		t3 = edge_set(g3, &n3);
		ck_assert_uint_eq(n1, n3);
		for (i = 0; i < n1; i++)
			ck_assert_int_eq(triple_cmp(&t1[i], &t3[i]), 0);
		free(t1);
		free(t3);
		graph_free(g3);
	}
	t1 = edge_set(g1, &n1);
	t2 = edge_set(g2, &n2);
	tr = mem_alloc(2 * RM_MEMBERS * RM_MEMBERS, sizeof(*tr));
	ck_assert_ptr_nonnull(tr);
	for (uint64_t a = 0; a < RM_MEMBERS; a++)
		for (uint64_t b = 0; b < RM_MEMBERS; b++) {
			if (!present[a][b])
				continue;
			tr[nr++] = (struct triple){ a * 1000003 + 7,
						    b * 1000003 + 7, rts[a][b] };
			if (!directed)
				tr[nr++] = (struct triple){ b * 1000003 + 7,
							    a * 1000003 + 7,
							    rts[a][b] };
		}
	qsort(tr, nr, sizeof(*tr), triple_cmp);
	ck_assert_uint_gt(nr, 0);
	ck_assert_uint_eq(n1, nr);
	ck_assert_uint_eq(n2, nr);
	for (i = 0; i < nr; i++) {
		ck_assert_int_eq(triple_cmp(&t1[i], &tr[i]), 0);
		ck_assert_int_eq(triple_cmp(&t2[i], &tr[i]), 0);
	}
	free(t1);
	free(t2);
	free(tr);
	graph_free(g1);
	graph_free(g2);
	event_list_release(&l);
}

START_TEST(test_build_removes_undirected)
{
	build_vs_apply(0);
}
END_TEST

START_TEST(test_build_removes_directed)
{
	build_vs_apply(1);
}
END_TEST

/* An ndjson file with removes, end to end through load_build. */
START_TEST(test_build_ndjson)
{
	static const char in[] =
		"{\"src\":1,\"dst\":2,\"ts\":7200}\n"
		"{\"src\":2,\"dst\":3,\"ts\":7200}\n"
		"{\"op\":\"remove\",\"src\":2,\"dst\":1}\n"
		"{\"op\":\"remove\",\"src\":8,\"dst\":9}\n"
		"{\"src\":3,\"dst\":2,\"ts\":36000}\n"
		"{\"src\":3,\"dst\":2,\"ts\":3600}\n";
	struct event_list l = { 0 };
	struct graph *g = graph_new(0);
	struct triple *t;
	size_t n;
	struct err e;

	ck_assert_int_eq(load(write_str("r.ndjson", in), NULL, 0, &l, &e), 0);
	ck_assert_int_eq(load_build(g, &l, 0, &e), 0);
	t = edge_set(g, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert(t[0].a == 2 && t[0].b == 3 && t[0].ts == 36000);
	ck_assert(t[1].a == 3 && t[1].b == 2 && t[1].ts == 36000);
	free(t);
	graph_free(g);
	event_list_release(&l);
}
END_TEST

/* ---- real data ------------------------------------------------------------- */

static const char *data_path(const char *name)
{
	static char buf[1024];
	const char *d = getenv("TRIAD_DATA");

	snprintf(buf, sizeof(buf), "%s/%s", d ? d : "data", name);
	return buf;
}

START_TEST(test_facebook_vs_igraph)
{
	struct event_list l = { 0 };
	struct graph *g = graph_new(0);
	struct graph_view v;
	igraph_t ig;
	igraph_vector_int_t deg;
	igraph_integer_t i;
	struct err e;
	FILE *f;

	ck_assert_msg(load(data_path("facebook_combined.txt"), NULL, 0, &l,
			   &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 88234);
	ck_assert_msg(load_build(g, &l, GRAPH_BUILD_REORDER, &e) == 0, "%s",
		      e.msg);
	f = fopen(data_path("facebook_combined.txt"), "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(igraph_read_graph_edgelist(&ig, f, 0, 0),
			 IGRAPH_SUCCESS);
	fclose(f);
	ck_assert_int_eq(igraph_vector_int_init(&deg, 0), IGRAPH_SUCCESS);
	ck_assert_int_eq(igraph_degree(&ig, &deg, igraph_vss_all(), IGRAPH_ALL,
				       IGRAPH_LOOPS), IGRAPH_SUCCESS);
	graph_view_begin(g, &v);
	ck_assert_uint_eq(graph_nvertices(&v), (uint64_t)igraph_vcount(&ig));
	for (i = 0; i < igraph_vcount(&ig); i++) {
		uint32_t id = graph_lookup(&v, (uint64_t)i);

		ck_assert_uint_ne(id, GRAPH_NONE);
		ck_assert_uint_eq(graph_degree(&v, id),
				  (uint64_t)VECTOR(deg)[i]);
	}
	graph_view_end(&v);
	igraph_vector_int_destroy(&deg);
	igraph_destroy(&ig);
	graph_free(g);
	event_list_release(&l);
}
END_TEST

/* Counts published in data/SOURCES.md. */
START_TEST(test_collegemsg_counts)
{
	struct event_list l = { 0 };
	struct graph *gd = graph_new(1), *gu = graph_new(0);
	struct graph_stats st;
	struct err e;

	ck_assert_msg(load(data_path("CollegeMsg.txt"), NULL, 0, &l, &e) == 0,
		      "%s", e.msg);
	ck_assert_uint_eq(l.n, 59835);
	ck_assert_uint_eq(l.self_loops, 0);
	ck_assert_uint_eq(l.ev[0].ts, 1082040961u);
	ck_assert_uint_eq(l.ev[l.n - 1].ts, 1098777142u);
	ck_assert_int_eq(load_build(gd, &l, 0, &e), 0);
	ck_assert_int_eq(load_build(gu, &l, GRAPH_BUILD_REORDER, &e), 0);
	graph_stats(gd, &st);
	ck_assert_uint_eq(st.members, 1899);
	ck_assert_uint_eq(st.edges, 20296);
	graph_stats(gu, &st);
	ck_assert_uint_eq(st.members, 1899);
	ck_assert_uint_eq(st.edges, 13838);
	graph_free(gd);
	graph_free(gu);
	event_list_release(&l);
}
END_TEST

/* ---- the commands ------------------------------------------------------------ */

/* Run "$TRIAD_BIN args" with stdout/stderr into files; exit status. */
static int run(const char *args)
{
	const char *bin = getenv("TRIAD_BIN"), *vg = getenv("TRIAD_VALGRIND");
	char cmd[4096];
	int st;

	if (!bin)
		bin = "bin/triad";
	/* make valgrind: TRIAD_VALGRIND is the command prefix (see e2e.h) */
	snprintf(cmd, sizeof(cmd), "%s %s %s >'%s/out' 2>'%s/err' </dev/null",
		 vg ? vg : "", bin, args, tmpdir, tmpdir);
	st = system(cmd);
	ck_assert_msg(st != -1 && WIFEXITED(st), "%s did not exit", cmd);
	return WEXITSTATUS(st);
}

static char *slurp(const char *name)
{
	static char buf[1 << 16];
	FILE *f = fopen(path_in(name), "r");
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(test_cli_load_exit_codes)
{
	char args[2048];
	const char *bad;

	ck_assert_int_eq(run("load --help"), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"), "usage: triad load"));
	ck_assert_int_eq(run("stats --help"), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"), "usage: triad stats"));

	ck_assert_int_eq(run("load"), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "no input file"));
	snprintf(args, sizeof(args), "load '%s'",
		 write_str("a.txt", "1 2\n"));
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "missing -o"));
	snprintf(args, sizeof(args), "load '%s' -o '%s/s' --bogus",
		 path_in("a.txt"), tmpdir);
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "\"--bogus\""));
	snprintf(args, sizeof(args), "load '%s' -o '%s/s' --format nope",
		 path_in("a.txt"), tmpdir);
	ck_assert_int_eq(run(args), 2);
	snprintf(args, sizeof(args), "load '%s' -o '%s/s'",
		 write_str("a.xyz", "1 2\n"), tmpdir);
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "unknown file format"));
	snprintf(args, sizeof(args), "load '%s/missing.txt' -o '%s/s'",
		 tmpdir, tmpdir);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "missing.txt: cannot open"));
	/* a missing file without an extension: missing, not a usage error */
	snprintf(args, sizeof(args), "load '%s/missing' -o '%s/s'",
		 tmpdir, tmpdir);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "missing: cannot open"));

	bad = write_str("bad.txt", "1 2 10\n3 x 11\n4 5 12\n");
	snprintf(args, sizeof(args), "load '%s' -o '%s/s'", bad, tmpdir);
	ck_assert_int_eq(run(args), 1);
	{
		char want[600];

		snprintf(want, sizeof(want),
			 "triad load: %s:2: \"x\" is not a member id\n", bad);
		ck_assert_str_eq(slurp("err"), want);
	}
	snprintf(args, sizeof(args), "load '%s' -o '%s/s' --skip-bad --quiet",
		 bad, tmpdir);
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"), "bad_lines       1 skipped"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "edges           2"));
	ck_assert_str_eq(slurp("err"), "");

	ck_assert_int_eq(run("stats"), 2);
	snprintf(args, sizeof(args), "stats --snapshot '%s/nothing'", tmpdir);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "nothing"));
}
END_TEST

/* train -o: the model is written beside the path and renamed over it,
 * so -o naming the EVENTS file replaced the events with the model, and
 * a FIFO or a device (-o /dev/null as root) was replaced by a regular
 * file. Both are refused, before the fit. */
START_TEST(test_cli_train_output)
{
	static const char ev[] = "1 2 10\n2 3 20\n3 4 30\n";
	char args[2048], fifo[600];
	struct err e;
	struct stat st;

	snprintf(args, sizeof(args), "train -q '%s' -o '%s'",
		 write_str("e.txt", ev), path_in("e.txt"));
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "is the EVENTS file"));
	ck_assert_str_eq(slurp("e.txt"), ev);

	snprintf(fifo, sizeof(fifo), "%s", path_in("m.fifo"));
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	snprintf(args, sizeof(args), "train -q '%s' -o '%s'",
		 path_in("e.txt"), fifo);
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "is not a regular file"));
	ck_assert_int_eq(model_save(model_default(), fifo, NULL, &e), -1);
	ck_assert_msg(strstr(e.msg, "m.fifo: not a regular file"), "%s", e.msg);
	ck_assert_int_eq(stat(fifo, &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
}
END_TEST

/* A value option given twice is bad usage: the last one silently won
 * (`load -o a.snap -o b.snap` wrote b.snap alone). In the commands, @E
 * is the event file, @S the snapshot, @T a path nothing may create. */
START_TEST(test_cli_option_twice)
{
	static const char *const twice[][2] = {
		{ "load @E -o @S -o @T", "option -o given twice" },
		{ "load @E --output @S -o @T", "option -o given twice" },
		{ "load @E -o @T --format edges --format=csv",
		  "option --format given twice" },
		{ "stats --snapshot @S --snapshot=@S",
		  "option --snapshot given twice" },
		{ "recommend --snapshot @S --member 1 -k 1 -k 2",
		  "option -k given twice" },
		{ "train @E -o @T --split 0.5 --split 0.9",
		  "option --split given twice" },
		{ "eval @E --methods cn --methods aa",
		  "option --methods given twice" },
		{ "replay @E --brokers 127.0.0.1:1 --topic t --topic u",
		  "option --topic given twice" },
	};
	char args[2048], path[3][600];
	size_t i, n;

	snprintf(path[0], sizeof(path[0]), "%s",
		 write_str("e.txt", "1 2 10\n2 3 20\n"));
	snprintf(path[1], sizeof(path[1]), "%s/s", tmpdir);
	snprintf(path[2], sizeof(path[2]), "%s/t", tmpdir);
	snprintf(args, sizeof(args), "load -q '%s' -o '%s'", path[0], path[1]);
	ck_assert_int_eq(run(args), 0);
	for (i = 0; i < sizeof(twice) / sizeof(twice[0]); i++) {
		const char *p;

		for (p = twice[i][0], n = 0; *p && n < sizeof(args) - 700; p++)
			if (*p != '@')
				args[n++] = *p;
			else
				n += (size_t)snprintf(args + n, sizeof(args) - n,
						      "'%s'", path[*++p == 'E' ? 0 :
						      *p == 'S' ? 1 : 2]);
		args[n] = '\0';
		ck_assert_msg(run(args) == 2, "%s", twice[i][0]);
		ck_assert_msg(strstr(slurp("err"), twice[i][1]) != NULL,
			      "%s: %s", twice[i][0], slurp("err"));
		ck_assert_msg(access(path[2], F_OK) != 0, "%s wrote %s",
			      twice[i][0], path[2]);
	}
	/* an unknown short option is bad usage, not a file to read (replay
	 * took "-x" for EVENTS and failed with 1: cannot open) */
	ck_assert_int_eq(run("replay -x --brokers 127.0.0.1:1 --topic t"), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "unknown option \"-x\""));
}
END_TEST

/* Bad usage has one shape in every command: exit 2 and exactly one line
 * on stderr, "triad CMD: REASON (try 'triad CMD --help')", the same words
 * for the same fault (commands said "(try --help)", "(try 'triad serve
 * --help')" or nothing, "unknown argument" or "unknown option", "-o needs
 * a value" or "option \"--threads\" needs a value"). */
START_TEST(test_cli_usage_shape)
{
	static const char *const cases[][3] = {
		{ "load", "", "no input file" },
		{ "load", "--bogus", "unknown option \"--bogus\"" },
		{ "load", "x -o", "option -o needs a value" },
		{ "stats", "", "missing --snapshot SNAP" },
		{ "stats", "--bogus", "unknown option \"--bogus\"" },
		{ "stats", "x", "unexpected argument \"x\"" },
		{ "stats", "--snapshot", "option --snapshot needs a value" },
		{ "recommend", "--member 1", "missing --snapshot SNAP" },
		{ "recommend", "--bogus", "unknown option \"--bogus\"" },
		{ "recommend", "x", "unexpected argument \"x\"" },
		{ "recommend", "--member", "option --member needs a value" },
		{ "train", "", "missing EVENTS file" },
		{ "train", "--bogus", "unknown option \"--bogus\"" },
		{ "train", "e.txt --split", "option --split needs a value" },
		{ "eval", "", "missing EVENTS file" },
		{ "eval", "--bogus", "unknown option \"--bogus\"" },
		{ "eval", "e.txt -k", "option -k needs a value" },
		{ "replay", "", "needs EVENTS, --brokers and --topic" },
		{ "replay", "--bogus x", "unknown option \"--bogus\"" },
		{ "replay", "e.txt --rate", "option --rate needs a value" },
		{ "serve", "--bogus", "unknown option \"--bogus\"" },
		{ "serve", "x", "unexpected argument \"x\"" },
		{ "serve", "--threads", "option --threads needs a value" },
		{ "serve", "--threads 0", "--threads \"0\" is not 1..1024" },
		{ "kafka-mock", "--bogus x", "unknown option \"--bogus\"" },
		{ "kafka-mock", "x y", "unexpected argument \"x\"" },
		{ "kafka-mock", "--partitions", "option --partitions needs a value" },
	};
	char args[512], want[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *err, *nl;

		snprintf(args, sizeof(args), "%s %s", cases[i][0], cases[i][1]);
		ck_assert_msg(run(args) == 2, "%s", args);
		err = slurp("err");
		snprintf(want, sizeof(want), "triad %s: %s (try 'triad %s --help')\n",
			 cases[i][0], cases[i][2], cases[i][0]);
		nl = strchr(err, '\n');
		ck_assert_msg(nl && !nl[1] && !strcmp(err, want),
			      "%s:\n got: %s want: %s", args, err, want);
		ck_assert_msg(!*slurp("out"), "%s wrote stdout", args);
	}
}
END_TEST

/* An empty -o is bad usage (2), not a failed write (1); a hexadecimal
 * --split ("0x1p-1", which strtod reads as 0.5) is no fraction; eval of a
 * file without an edge says so in one line (it said it twice, once for
 * the model's fit and once for the run). */
START_TEST(test_cli_odd_values)
{
	char args[1024], e[600];
	const char *err;

	snprintf(e, sizeof(e), "%s", write_str("e.txt", "1 2 10\n2 3 20\n"));
	snprintf(args, sizeof(args), "load -q '%s' -o ''", e);
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "-o SNAP is empty"));
	snprintf(args, sizeof(args), "train -q '%s' -o ''", e);
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "-o MODEL is empty"));
	snprintf(args, sizeof(args), "eval -q '%s' --split 0x1p-1", e);
	ck_assert_int_eq(run(args), 2);
	snprintf(args, sizeof(args), "train -q '%s' -o m --split 0X.8p0", e);
	ck_assert_int_eq(run(args), 2);
	snprintf(args, sizeof(args), "eval -q '%s'",
		 write_str("none.txt", "# no edge\n5 5\n"));
	ck_assert_int_eq(run(args), 1);
	err = slurp("err");
	ck_assert_msg(strstr(err, "no edge events to split") &&
		      strchr(err, '\n') == err + strlen(err) - 1, "%s", err);
}
END_TEST

/* Bad usage is 2 in every command, not only in load:
 * - an input that is there but whose format neither --format nor its
 *   extension names (load said 2; eval, train, replay and serve --events
 *   failed with 1, serve after it had started listening);
 * - a --brokers or --topic naming nothing (serve ran on without ingest,
 *   logging "No brokers configured" or consuming a topic ""; replay
 *   retried for 30 s, or "sent" its events to a topic "" of the mock).
 * --state naming a regular file, a serve that got past its usage checks
 * exits 1 at once ("not a directory"), before it listens; replay of a
 * missing file fails with 1 before any broker is dialled. */
START_TEST(test_cli_usage_unknown_format_empty_kafka)
{
	static const char *const bad[][2] = {
		{ "eval -q @X", "\"@X\": unknown file format" },
		{ "train -q @X -o @M", "\"@X\": unknown file format" },
		{ "replay -q @X --brokers 127.0.0.1:1 --topic t",
		  "\"@X\": unknown file format" },
		{ "serve --events @X --state @X",
		  "\"@X\": unknown file format" },
		{ "serve --brokers '' --topic t --state @X",
		  "triad serve: empty --brokers" },
		{ "serve --brokers ' , ' --state @X",
		  "triad serve: empty --brokers" },
		{ "serve --brokers 127.0.0.1:1 --topic '' --state @X",
		  "triad serve: empty --topic" },
		{ "serve --brokers 127.0.0.1:1 --topic t --group '' --state @X",
		  "triad serve: empty --group" },
		{ "replay -q @N --brokers '' --topic t",
		  "triad replay: empty --brokers" },
		{ "replay -q @N --brokers 127.0.0.1:1 --topic ''",
		  "triad replay: empty --topic" },
	};
	char args[2048], want[800], x[600], n[600], m[600];
	size_t i, k;

	snprintf(x, sizeof(x), "%s", write_str("e.dat", "1 2 10\n2 3 20\n"));
	snprintf(n, sizeof(n), "%s/missing.txt", tmpdir);
	snprintf(m, sizeof(m), "%s/m.json", tmpdir);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p;

		/* @X, @N, @M: the paths, quoted in the command */
		for (k = 0; k < 2; k++) {
			char *o = k ? want : args;
			size_t cap = k ? sizeof(want) : sizeof(args), len = 0;

			for (p = bad[i][k]; *p && len + 620 < cap; p++)
				if (*p != '@')
					o[len++] = *p;
				else
					len += (size_t)snprintf(o + len, cap - len,
						k ? "%s" : "'%s'",
						*++p == 'X' ? x : *p == 'N' ? n : m);
			o[len] = '\0';
		}
		ck_assert_msg(run(args) == 2, "%s", args);
		p = slurp("err");
		ck_assert_msg(strstr(p, want) != NULL, "%s: %s", args, p);
		ck_assert_msg(strchr(p, '\n') == p + strlen(p) - 1,
			      "%s: not one line: %s", args, p);
		ck_assert_msg(access(m, F_OK) != 0, "%s wrote %s", args, m);
	}
	/* with --format the same file is read */
	snprintf(args, sizeof(args), "eval -q '%s' --format edges --json", x);
	ck_assert_int_eq(run(args), 0);
}
END_TEST

/* Number options take digits only: no sign, no blanks, no wrap-around
 * (strtoull took " -1" and 99999999999999999999999 for member
 * 18446744073709551615, and answered for a member nobody named). */
START_TEST(test_cli_numbers_strict)
{
	/* command, then the snapshot or the event file, then the rest */
	static const char *const bad[][3] = {
		{ "recommend --snapshot", "--member 99999999999999999999999",
		  "--member \"99999999999999999999999\" is not a member id" },
		{ "recommend --snapshot", "--member 18446744073709551616",
		  "--member \"18446744073709551616\" is not a member id" },
		{ "recommend --snapshot", "--member ' -1'",
		  "--member \" -1\" is not a member id" },
		{ "recommend --snapshot", "--member ' 1'",
		  "--member \" 1\" is not a member id" },
		{ "recommend --snapshot", "--member +1",
		  "--member \"+1\" is not a member id" },
		{ "recommend --snapshot", "--member 1 -k ' 3'",
		  "-k \" 3\" is not a number from 1 to 1000" },
		{ "eval", "-k +3", "-k \"+3\" is not a number from 1 to 1000" },
		{ "train", "-o m.json --split-time ' 5'",
		  "--split-time \" 5\" is not a timestamp" },
		/* fractions: no sign, blank, inf or nan either (strtod
		 * takes them all) */
		{ "eval", "--split ' 0.5'", "--split \" 0.5\" is not a fraction" },
		{ "eval", "--split +0.5", "--split \"+0.5\" is not a fraction" },
		{ "train", "-o m.json --split nan", "--split \"nan\" is not a fraction" },
		{ "replay", "--brokers 127.0.0.1:1 --topic t --rate ' 5'",
		  "--rate \" 5\" is not a rate" },
		{ "replay", "--brokers 127.0.0.1:1 --topic t --rate inf",
		  "--rate \"inf\" is not a rate" },
	};
	char args[2048], snap[600], ev[600];
	size_t i;

	snprintf(ev, sizeof(ev), "%s",
		 write_str("e.txt", "1 2 10\n2 3 20\n18446744073709551615 1 30\n"));
	snprintf(snap, sizeof(snap), "%s/s", tmpdir);
	snprintf(args, sizeof(args), "load -q '%s' -o '%s'", ev, snap);
	ck_assert_int_eq(run(args), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(args, sizeof(args), "%s '%s' %s", bad[i][0],
			 bad[i][0][0] == 'r' ? snap : ev, bad[i][1]);
		ck_assert_msg(run(args) == 2, "%s", args);
		ck_assert_msg(strstr(slurp("err"), bad[i][2]) != NULL,
			      "%s: %s", args, slurp("err"));
		ck_assert_str_eq(slurp("out"), "");
	}
	ck_assert_int_eq(run("kafka-mock --partitions ' 4'"), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"),
				     "--partitions \" 4\" is not 1..1000"));
	/* the largest id is a member id like any other */
	snprintf(args, sizeof(args),
		 "recommend --snapshot '%s' --member 18446744073709551615 -k 1",
		 snap);
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"),
				     "{\"member\":18446744073709551615,"));
}
END_TEST

/* train and eval: the split options are alternatives, and eval --json
 * has the CONTRACT's shape */
START_TEST(test_cli_train_eval_split)
{
	char args[2048], cm[1024];
	const char *data = getenv("TRIAD_DATA");
	struct json_object *j, *ms, *x;

	snprintf(cm, sizeof(cm), "%s/CollegeMsg.txt", data ? data : "data");
	for (int t = 0; t < 2; t++) {
		snprintf(args, sizeof(args), t ? "train '%s' -o '%s/m.json' %s"
					       : "eval '%s' %.0s%s",
			 cm, tmpdir, "--split 0.5 --split-time 5");
		ck_assert_int_eq(run(args), 2);
		ck_assert_ptr_nonnull(strstr(slurp("err"), "alternatives"));
	}
	snprintf(args, sizeof(args), "eval '%s' --split 0.9 -k 5 --methods cn,ra --json --quiet",
		 cm);
	ck_assert_int_eq(run(args), 0);
	j = json_tokener_parse(slurp("out"));
	ck_assert_ptr_nonnull(j);
	ck_assert(json_object_object_get_ex(j, "split_time", &x));
	ck_assert(json_object_object_get_ex(j, "k", &x));
	ck_assert_int_eq(json_object_get_int(x), 5);
	ck_assert(json_object_object_get_ex(j, "methods", &ms));
	ck_assert(json_object_object_get_ex(ms, "cn", &x));
	ck_assert(json_object_object_get_ex(x, "recall", &x));
	ck_assert(json_object_object_get_ex(ms, "ra", &x));
	ck_assert(!json_object_object_get_ex(ms, "aa", &x));
	json_object_put(j);

	/* the text report's quality line: the model's recall over the better
	 * of aa and ra, as the --json figures of the same run give it */
	snprintf(args, sizeof(args), "eval '%s' --split 0.9 --methods aa,ra,model --model builtin --json --quiet", cm);
	ck_assert_int_eq(run(args), 0);
	j = json_tokener_parse(slurp("out"));
	ck_assert_ptr_nonnull(j);
	ck_assert(json_object_object_get_ex(j, "methods", &ms));
	{
		double rec[3], want, got;
		const char *name[3] = { "aa", "ra", "model" }, *line;
		char best[8];

		for (int i = 0; i < 3; i++) {
			ck_assert(json_object_object_get_ex(ms, name[i], &x));
			ck_assert(json_object_object_get_ex(x, "recall", &x));
			rec[i] = json_object_get_double(x);
		}
		json_object_put(j);
		ck_assert(rec[0] > 0 && rec[1] > 0);
		want = rec[2] / (rec[1] > rec[0] ? rec[1] : rec[0]);
		snprintf(args, sizeof(args), "eval '%s' --split 0.9 --methods aa,ra,model --model builtin --quiet", cm);
		ck_assert_int_eq(run(args), 0);
		line = strstr(slurp("out"), "model recall@k / ");
		ck_assert_ptr_nonnull(line);
		ck_assert_int_eq(sscanf(line, "model recall@k / %7s recall@k (the better of aa and ra run): %lfx",
					best, &got), 2);
		ck_assert_str_eq(best, rec[1] > rec[0] ? "ra" : "aa");
		ck_assert_msg(fabs(got - want) < 0.006, "line says %.2f, json gives %.4f", got, want);
	}
	/* a file without times has nothing to judge: figures of 0 (exit 0)
	 * and a warning saying why */
	snprintf(args, sizeof(args), "eval '%s' --methods cn --quiet", data_path("facebook_combined.txt"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "no test pairs"));
	ck_assert_ptr_nonnull(strstr(slurp("err"), "same timestamp"));
	ck_assert_ptr_null(strstr(slurp("out"), "model recall@k /"));
	/* train says the same, and what a split time before every event
	 * leaves (-q as well as --quiet, as load takes) */
	snprintf(args, sizeof(args), "train '%s' -o '%s/m.json' -q",
		 data_path("facebook_combined.txt"), tmpdir);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "same timestamp"));
	ck_assert_ptr_nonnull(strstr(slurp("err"), "--random-order"));
	snprintf(args, sizeof(args), "train '%s' -o '%s/m.json' --split-time 1 -q",
		 cm, tmpdir);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "no event at or before the "
				     "split time 1 (the first is at 1082040961)"));
}
END_TEST

/* eval without --model fits one on the training period: the same model
 * (version included) as `triad train` writes for that split, and the same
 * figures as `eval --model` with that file; --model builtin is the
 * built-in one; a file too short to fit on gets no model row figure */
START_TEST(test_cli_eval_fits_model)
{
	char args[2048], cm[1024], line[256], ver[128], *out;
	static char js_fit[4096];
	const char *data = getenv("TRIAD_DATA"), *p;
	FILE *in, *o;
	int n = 0;

	/* the first 30,000 events of CollegeMsg: enough to fit, quick */
	snprintf(cm, sizeof(cm), "%s/CollegeMsg.txt", data ? data : "data");
	in = fopen(cm, "r");
	ck_assert_ptr_nonnull(in);
	o = fopen(path_in("cm30.txt"), "w");
	ck_assert_ptr_nonnull(o);
	while (n < 30000 && fgets(line, sizeof(line), in))
		fputs(line, o), n++;
	fclose(in);
	ck_assert_int_eq(fclose(o), 0);
	ck_assert_int_eq(n, 30000);

	snprintf(args, sizeof(args), "eval '%s' --split 0.85 --methods ra,model --json --quiet",
		 path_in("cm30.txt"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_int_lt(snprintf(js_fit, sizeof(js_fit), "%s", slurp("out")),
			 (int)sizeof(js_fit));
	ck_assert_ptr_nonnull(strstr(js_fit, "\"model\":{\"recall\":"));
	snprintf(args, sizeof(args), "eval '%s' --split 0.85 --methods ra,model --quiet",
		 path_in("cm30.txt"));
	ck_assert_int_eq(run(args), 0);
	out = slurp("out");
	p = strstr(out, "\nmodel ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "\nmodel %127s", ver), 1);
	ck_assert_ptr_nonnull(strstr(p, "(fitted on the training period"));

	snprintf(args, sizeof(args), "train '%s' --split 0.85 -o '%s' --quiet",
		 path_in("cm30.txt"), path_in("cm30.json"));
	ck_assert_int_eq(run(args), 0);
	out = slurp("out");
	ck_assert_msg(!strncmp(out, "model ", 6) && !strncmp(out + 6, ver, strlen(ver)) &&
		      out[6 + strlen(ver)] == ' ',
		      "eval fitted %s, train printed: %s", ver, out);
	snprintf(args, sizeof(args), "eval '%s' --split 0.85 --methods ra,model --json --quiet --model '%s'",
		 path_in("cm30.txt"), path_in("cm30.json"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_str_eq(slurp("out"), js_fit);

	snprintf(args, sizeof(args), "eval '%s' --split 0.85 --methods ra,model --quiet --model builtin",
		 path_in("cm30.txt"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"), "\nmodel collegemsg-lr@"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "(built-in)"));

	/* six events: nothing to fit on; no built-in figure passes for a
	 * held-out one, the model row says so */
	write_str("six.txt", "1 2 10\n2 3 20\n3 4 30\n1 3 40\n4 5 50\n2 4 60\n");
	snprintf(args, sizeof(args), "eval '%s' --methods ra,model --quiet", path_in("six.txt"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "could not fit a model on the training period"));
	ck_assert_ptr_null(strstr(slurp("out"), "(built-in)"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "\nmodel    not fitted"));
}
END_TEST

/*
 * A file without times (communities of 20, "a b" lines): eval by time
 * judges nothing and says what to do; with --random-order it holds out a
 * random part of the pairs and the built-in model for graphs without
 * times answers; train --random-order fits a model without time features
 * or the trend. --split-time does not go with --random-order.
 */
START_TEST(test_cli_random_order)
{
	static char text[1 << 16];
	char args[8192], *out, *p;
	size_t len = 0;
	uint64_t s = 3, members = 0;

	for (unsigned x = 0; x < 200; x++)
		for (unsigned y = x + 1; y < 200; y++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			if (s % 1000 < (x / 20 == y / 20 ? 350u : 5u))
				len += (size_t)snprintf(text + len, sizeof(text) - len,
							"%u %u\n", x, y);
		}
	ck_assert_uint_lt(len, sizeof(text) - 16);
	write_str("static.txt", text);
	snprintf(args, sizeof(args), "eval '%s' --methods aa,model --model builtin --quiet",
		 path_in("static.txt"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "--random-order holds out a random part"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "judged 0 members"));

	snprintf(args, sizeof(args), "eval '%s' --random-order --methods aa,model --model builtin --quiet",
		 path_in("static.txt"));
	ck_assert_int_eq(run(args), 0);
	out = slurp("out");
	ck_assert_ptr_nonnull(strstr(out, "(of the random order)"));
	ck_assert_ptr_nonnull(strstr(out, "\nmodel facebook-lr@"));
	p = strstr(out, "judged ");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "judged %" SCNu64, &members), 1);
	ck_assert_uint_gt(members, 50);

	snprintf(args, sizeof(args), "train '%s' --random-order -o '%s' --quiet",
		 path_in("static.txt"), path_in("static.json"));
	ck_assert_int_eq(run(args), 0);
	out = slurp("static.json");
	p = strstr(out, "\"features\"");
	ck_assert_ptr_nonnull(p);
	*strchr(p, ']') = '\0'; /* the features list alone */
	ck_assert_ptr_null(strstr(p, "\"trend\""));
	ck_assert_ptr_null(strstr(p, "\"recent_mutual\""));
	ck_assert_ptr_null(strstr(p, "\"cand_age\""));
	ck_assert_ptr_nonnull(strstr(p, "\"adamic_adar\""));

	snprintf(args, sizeof(args), "eval '%s' --random-order --split-time 5", path_in("static.txt"));
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "--split-time does not go with --random-order"));
	snprintf(args, sizeof(args), "train '%s' --random-order --split-time 5 -o '%s'",
		 path_in("static.txt"), path_in("x.json"));
	ck_assert_int_eq(run(args), 2);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "--split-time does not go with --random-order"));
}
END_TEST

START_TEST(test_cli_load_stats_facebook)
{
	static uint32_t deg[4039];
	char args[2048];
	struct json_object *j, *d, *x;
	uint64_t a, b, zero = 0, sum = 0;
	uint32_t mn = UINT32_MAX, mx = 0, i;
	FILE *f;

	/* the reference degree summary, counted straight from the file */
	f = fopen(data_path("facebook_combined.txt"), "r");
	ck_assert_ptr_nonnull(f);
	while (fscanf(f, "%" SCNu64 " %" SCNu64, &a, &b) == 2) {
		ck_assert_uint_lt(a, 4039);
		ck_assert_uint_lt(b, 4039);
		deg[a]++;
		deg[b]++;
	}
	fclose(f);
	for (i = 0; i < 4039; i++) {
		mn = deg[i] < mn ? deg[i] : mn;
		mx = deg[i] > mx ? deg[i] : mx;
		zero += deg[i] == 0;
		sum += deg[i];
	}

	snprintf(args, sizeof(args), "load '%s' -o '%s/fb'",
		 data_path("facebook_combined.txt"), tmpdir);
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"), "members         4039\n"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "edges           88234\n"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "bytes_per_edge"));
	ck_assert_ptr_nonnull(strstr(slurp("out"), "seconds"));

	snprintf(args, sizeof(args), "stats --snapshot '%s/fb' --json", tmpdir);
	ck_assert_int_eq(run(args), 0);
	j = json_tokener_parse(slurp("out"));
	ck_assert_ptr_nonnull(j);
	ck_assert(json_object_object_get_ex(j, "members", &x));
	ck_assert_int_eq(json_object_get_int64(x), 4039);
	ck_assert(json_object_object_get_ex(j, "edges", &x));
	ck_assert_int_eq(json_object_get_int64(x), 88234);
	ck_assert(json_object_object_get_ex(j, "bytes", &x));
	ck_assert_int_gt(json_object_get_int64(x), 0);
	ck_assert(json_object_object_get_ex(j, "bytes_per_edge", &x));
	ck_assert(json_object_get_double(x) > 0);
	ck_assert(json_object_object_get_ex(j, "degree", &d));
	ck_assert(json_object_object_get_ex(d, "min", &x));
	ck_assert_int_eq(json_object_get_int64(x), mn);
	ck_assert(json_object_object_get_ex(d, "max", &x));
	ck_assert_int_eq(json_object_get_int64(x), mx);
	ck_assert(json_object_object_get_ex(d, "zero", &x));
	ck_assert_int_eq(json_object_get_int64(x), (int64_t)zero);
	ck_assert(json_object_object_get_ex(d, "mean", &x));
	ck_assert(fabs(json_object_get_double(x) - (double)sum / 4039) < 0.01);
	json_object_put(j);

	snprintf(args, sizeof(args), "stats --snapshot '%s/fb'", tmpdir);
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("out"), "members         4039\n"));
}
END_TEST

/*
 * A model file says which candidate generation its features came from
 * (info.generation, written by triad train): recommend and eval warn when
 * it is another than this build's, or missing (files from before 7 Dec
 * 2026), and answer the same; a malformed one is refused, naming the field.
 */
static const char *model_variant(const char *name, json_object *base,
				 json_object *gen)
{
	json_object *m = NULL, *info;
	const char *path = path_in(name);

	ck_assert_int_eq(json_object_deep_copy(base, &m, NULL), 0);
	ck_assert(json_object_object_get_ex(m, "info", &info));
	if (gen)
		json_object_object_add(info, "generation", gen);
	else
		json_object_object_del(info, "generation");
	ck_assert_int_eq(json_object_to_file(path, m), 0);
	json_object_put(m);
	return path;
}

START_TEST(test_cli_model_generation)
{
	static char answer[4096];
	char args[4096], now[MODEL_GEN_MAX], other[MODEL_GEN_MAX + 16], *p;
	char snap[1024];
	struct rec_params rp;
	json_object *base, *x;
	const char *mp;

	snprintf(snap, sizeof(snap), "%s", path_in("g.snap")); /* path_in's buffer is reused */
	rec_params_default(&rp);
	rec_params_describe(&rp, now, sizeof(now));
	/* the shipped model records this build's generation */
	base = json_object_from_file(data_path("model.json"));
	ck_assert_ptr_nonnull(base);
	ck_assert(json_object_object_get_ex(base, "info", &x) &&
		  json_object_object_get_ex(x, "generation", &x));
	ck_assert_str_eq(json_object_get_string(x), now);

	write_str("g.txt", "1 2 100\n1 3 100\n2 4 200\n3 4 300\n2 5 300\n5 6 400\n4 6 500\n");
	snprintf(args, sizeof(args), "load '%s' -o '%s' --quiet", path_in("g.txt"), snap);
	ck_assert_int_eq(run(args), 0);
	snprintf(args, sizeof(args), "recommend --snapshot '%s' --member 1 -k 3 --model '%s'",
		 snap, data_path("model.json"));
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_null(strstr(slurp("err"), "warning"));
	p = slurp("out");
	ck_assert_ptr_nonnull(strstr(p, "\"member\":4"));
	/* took_us differs from run to run: compare from the recommendations on */
	ck_assert_ptr_nonnull(strstr(p, "\"recommendations\""));
	snprintf(answer, sizeof(answer), "%s", strstr(p, "\"recommendations\""));

	/* another generation: a warning naming the file and both, same answer */
	snprintf(other, sizeof(other), "%s", now);
	p = strstr(other, "walk ");
	ck_assert_ptr_nonnull(p);
	memcpy(p, "walk 9", 6);
	mp = model_variant("other.json", base, json_object_new_string(other));
	snprintf(args, sizeof(args), "recommend --snapshot '%s' --member 1 -k 3 --model '%s'",
		 snap, mp);
	ck_assert_int_eq(run(args), 0);
	p = slurp("err");
	ck_assert_ptr_nonnull(strstr(p, "triad recommend: warning: "));
	ck_assert_ptr_nonnull(strstr(p, mp));
	ck_assert_ptr_nonnull(strstr(p, other));
	ck_assert_ptr_nonnull(strstr(p, now));
	ck_assert_str_eq(strstr(slurp("out"), "\"recommendations\""), answer);
	snprintf(args, sizeof(args), "eval '%s' --model '%s' --quiet", path_in("g.txt"), mp);
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "triad eval: warning: "));

	/* none recorded: a warning that says so */
	mp = model_variant("none.json", base, NULL);
	snprintf(args, sizeof(args), "recommend --snapshot '%s' --member 1 -k 3 --model '%s'",
		 snap, mp);
	ck_assert_int_eq(run(args), 0);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "does not say which candidate generation"));
	ck_assert_str_eq(strstr(slurp("out"), "\"recommendations\""), answer);

	/* malformed: refused with the field named, exit 1 */
	mp = model_variant("bad.json", base, json_object_new_int(5));
	snprintf(args, sizeof(args), "recommend --snapshot '%s' --member 1 --model '%s'",
		 snap, mp);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "field \"info.generation\""));
	mp = model_variant("bad2.json", base, json_object_new_string("walk\n1000"));
	snprintf(args, sizeof(args), "recommend --snapshot '%s' --member 1 --model '%s'",
		 snap, mp);
	ck_assert_int_eq(run(args), 1);
	ck_assert_ptr_nonnull(strstr(slurp("err"), "field \"info.generation\""));
	json_object_put(base);
}
END_TEST

static Suite *load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *text = tcase_create("text"), *ig = tcase_create("igraph"),
	      *build = tcase_create("build"), *data = tcase_create("data"),
	      *cli = tcase_create("cli");

	tcase_add_checked_fixture(text, setup, teardown);
	tcase_add_test(text, test_edges_quirks);
	tcase_add_test(text, test_csv);
	tcase_add_test(text, test_ndjson);
	tcase_add_test(text, test_append);
	tcase_add_test(text, test_bad_lines);
	tcase_add_test(text, test_gz_same);
	tcase_add_test(text, test_gz_truncated);
	tcase_add_test(text, test_gz_not_gzip);
	tcase_add_test(text, test_gz_pipe);
	tcase_add_test(text, test_gz_trailing_data);
	tcase_add_test(text, test_big_paths);
	tcase_add_test(text, test_big_ndjson);
	tcase_add_test(text, test_format_guess);
	tcase_set_timeout(text, 120);
	suite_add_tcase(s, text);

	tcase_add_checked_fixture(ig, setup, teardown);
	tcase_add_test(ig, test_gml);
	tcase_add_test(ig, test_graphml);
	tcase_add_test(ig, test_pajek_ncol_lgl);
	tcase_add_test(ig, test_igraph_dir_fifo);
	tcase_add_test(ig, test_igraph_eol_line);
	tcase_add_test(ig, test_pajek_mixed);
	suite_add_tcase(s, ig);

	tcase_add_checked_fixture(build, setup, teardown);
	tcase_add_test(build, test_build_removes_undirected);
	tcase_add_test(build, test_build_removes_directed);
	tcase_add_test(build, test_build_ndjson);
	tcase_set_timeout(build, 60);
	suite_add_tcase(s, build);

	/* test_cli_random_order writes files: without the fixture its
	 * tmpdir was "" (files at /) or, with CK_FORK=no under make valgrind,
	 * a directory an earlier test had removed */
	tcase_add_checked_fixture(data, setup, teardown);
	tcase_add_test(data, test_facebook_vs_igraph);
	tcase_add_test(data, test_collegemsg_counts);
	tcase_add_test(data, test_cli_random_order);
	tcase_set_timeout(data, 60);
	suite_add_tcase(s, data);

	tcase_add_checked_fixture(cli, setup, teardown);
	tcase_add_test(cli, test_cli_load_exit_codes);
	tcase_add_test(cli, test_cli_numbers_strict);
	tcase_add_test(cli, test_cli_option_twice);
	tcase_add_test(cli, test_cli_usage_shape);
	tcase_add_test(cli, test_cli_odd_values);
	tcase_add_test(cli, test_cli_usage_unknown_format_empty_kafka);
	tcase_add_test(cli, test_cli_train_output);
	tcase_add_test(cli, test_cli_load_stats_facebook);
	tcase_add_test(cli, test_cli_train_eval_split);
	tcase_add_test(cli, test_cli_eval_fits_model);
	tcase_add_test(cli, test_cli_model_generation);
	tcase_set_timeout(cli, 120);
	suite_add_tcase(s, cli);
	return s;
}

int main(void)
{
	return testutil_main(load_suite());
}
