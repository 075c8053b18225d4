/*
 * test_fuzz_regress.c - replays every file under tests/corpus/NAME/ (the
 * seeds of `make fuzz` and every input a fuzzer ever crashed on, named
 * regress-*) through the same entry points as tests/fuzz_NAME.c, without
 * libFuzzer: the targets are included here under their own names and
 * their checks become Check assertions.
 *
 * The corpus is found at $TRIAD_CORPUS, else $TRIAD_DATA/../tests/corpus
 * (make test sets TRIAD_DATA), else tests/corpus.
 */
#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#define FUZZ_REQUIRE(c) REQ(c)

#define FUZZ_ONE fuzz_event_one
#include "fuzz_event.c"
#undef FUZZ_ONE
#define FUZZ_ONE fuzz_body_one
#include "fuzz_body.c"
#undef FUZZ_ONE
#define FUZZ_ONE fuzz_query_one
#include "fuzz_query.c"
#undef FUZZ_ONE
#define FUZZ_ONE fuzz_load_one
#include "fuzz_load.c"
#undef FUZZ_ONE
#define FUZZ_ONE fuzz_model_one
#include "fuzz_model.c"
#undef FUZZ_ONE
#define FUZZ_ONE fuzz_snapshot_one
#include "fuzz_snapshot.c"
#undef FUZZ_ONE
#define FUZZ_ONE fuzz_import_one
#include "fuzz_import.c"
#undef FUZZ_ONE

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

static void corpus_dir(const char *name, char *out, size_t n)
{
	const char *c = getenv("TRIAD_CORPUS"), *d = getenv("TRIAD_DATA");

	if (c && *c)
		snprintf(out, n, "%s/%s", c, name);
	else if (d && *d)
		snprintf(out, n, "%s/../tests/corpus/%s", d, name);
	else
		snprintf(out, n, "tests/corpus/%s", name);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long sz;

	ck_assert_msg(f != NULL, "cannot open \"%s\"", path);
	REQ(fseek(f, 0, SEEK_END) == 0);
	sz = ftell(f);
	REQ(sz >= 0);
	REQ(fseek(f, 0, SEEK_SET) == 0);
	/* an exact-size heap copy, so ASan sees any read past the input */
	buf = malloc(sz ? (size_t)sz : 1);
	REQ(buf != NULL);
	REQ(fread(buf, 1, (size_t)sz, f) == (size_t)sz);
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

/* Feed every file of corpus NAME to fn; returns how many. check (may be
 * NULL) runs after each file with its name. */
static size_t replay(const char *name, fuzz_fn fn,
		     void (*check)(const char *file))
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	size_t files = 0;
	DIR *d;

	corpus_dir(name, dir, sizeof(dir));
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open corpus \"%s\"", dir);
	while ((de = readdir(d))) {
		struct stat st;
		uint8_t *buf;
		size_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		buf = read_all(path, &len);
		REQ_EQ(fn(buf, len), 0);
		free(buf);
		if (check)
			check(de->d_name);
		files++;
	}
	closedir(d);
	return files;
}

START_TEST(t_event) { REQ_GE(replay("event", fuzz_event_one, NULL), 4); }
END_TEST
START_TEST(t_body) { REQ_GE(replay("body", fuzz_body_one, NULL), 2); }
END_TEST
START_TEST(t_query) { REQ_GE(replay("query", fuzz_query_one, NULL), 4); }
END_TEST
START_TEST(t_load) { REQ_GE(replay("load", fuzz_load_one, NULL), 4); }
END_TEST
START_TEST(t_model) { REQ_GE(replay("model", fuzz_model_one, NULL), 2); }
END_TEST
START_TEST(t_import) { REQ_GE(replay("import", fuzz_import_one, NULL), 10); }
END_TEST

/* Seeds (not regress-*) are snapshots encoded by graph_chunk_encode: they
 * must import, so the fuzzer starts from the decoder's accepting paths. */
static void snapshot_seed_ok(const char *file)
{
	if (strncmp(file, "regress-", 8))
		ck_assert_msg(fz_snapshot_ok, "seed \"%s\" did not import", file);
}

START_TEST(t_snapshot)
{
	REQ_GE(replay("snapshot", fuzz_snapshot_one, snapshot_seed_ok), 4);
}
END_TEST

/*
 * Findings the differential targets cannot see (both parse paths agreed),
 * pinned down by value. The inputs are also in tests/corpus/event/regress-*.
 */
START_TEST(t_event_escaped_key_overflow)
{
	/* json-c decodes the key to "src" and saturates the id to UINT64_MAX;
	 * the overflow check used to compare raw key bytes and missed it */
	static const char *bad[] = {
		"{\"\\u0073rc\":18446744073709551616,\"dst\":1}",
		"{\"src\":1,\"d\\u0073t\":99999999999999999999999}",
	};
	static const char *good[] = {
		"{\"\\u0073rc\":18446744073709551615,\"dst\":1}",
	};
	struct event_parser *p = event_parser_new();
	struct graph_event ev;
	struct err e = { "" };
	size_t i;
	unsigned f;

	REQ(p != NULL);
	for (f = 0; f <= EVENT_SLOW_PATH; f += EVENT_SLOW_PATH) {
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			REQ_EQ(event_parse_flags(p, bad[i], strlen(bad[i]), 1,
						 f, &ev, &e), -1);
			REQ(strstr(e.msg, "is above") != NULL);
		}
		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			REQ_EQ(event_parse_flags(p, good[i], strlen(good[i]),
						 1, f, &ev, &e), 0);
			REQ_EQ(ev.src, UINT64_MAX);
			REQ_EQ(ev.dst, 1);
		}
	}
	event_parser_free(p);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fuzz_regress");
	TCase *tc = tcase_create("replay");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_event);
	tcase_add_test(tc, t_body);
	tcase_add_test(tc, t_query);
	tcase_add_test(tc, t_load);
	tcase_add_test(tc, t_model);
	tcase_add_test(tc, t_import);
	tcase_add_test(tc, t_snapshot);
	tcase_add_test(tc, t_event_escaped_key_overflow);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_main(suite());
}
