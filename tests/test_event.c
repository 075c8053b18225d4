/*
 * test_event.c - JSON edge events (graph/event.h).
 *
 * Reference: the values the test itself put into the text (ids drawn at
 * random over the whole u64 range, written as numbers or strings), and a
 * table of malformed events with the field each message must name.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "testutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int parse(const char *s, uint32_t now, struct graph_event *ev,
		 struct err *e)
{
	struct event_parser *p = event_parser_new();
	int rc;

	ck_assert_ptr_nonnull(p);
	err_clear(e);
	rc = event_parse(p, s, strlen(s), now, ev, e);
	event_parser_free(p);
	return rc;
}

START_TEST(test_valid_basic)
{
	struct graph_event ev;
	struct err e;

	ck_assert_int_eq(parse("{\"op\":\"add\",\"src\":1001,\"dst\":2002,"
			       "\"ts\":1700000000}", 5, &ev, &e), 0);
	ck_assert_uint_eq(ev.src, 1001);
	ck_assert_uint_eq(ev.dst, 2002);
	ck_assert_uint_eq(ev.ts, 1700000000u);
	ck_assert_uint_eq(ev.op, GRAPH_ADD);

	/* op defaults to add, ts to now, unknown fields ignored, strings */
	ck_assert_int_eq(parse("  {\"dst\":\"7\",\"src\":\"9\",\"x\":[1,{\"y\":"
			       "null}],\"w\":1.5}\r\n", 4242, &ev, &e), 0);
	ck_assert_uint_eq(ev.src, 9);
	ck_assert_uint_eq(ev.dst, 7);
	ck_assert_uint_eq(ev.ts, 4242);
	ck_assert_uint_eq(ev.op, GRAPH_ADD);

	ck_assert_int_eq(parse("{\"op\":\"remove\",\"src\":0,\"dst\":1,"
			       "\"ts\":0}", 9, &ev, &e), 0);
	ck_assert_uint_eq(ev.op, GRAPH_REMOVE);
	ck_assert_uint_eq(ev.src, 0);
	ck_assert_uint_eq(ev.ts, 0);

	ck_assert_int_eq(parse("{\"src\":1,\"dst\":2,\"ts\":4294967295}", 0,
			       &ev, &e), 0);
	ck_assert_uint_eq(ev.ts, UINT32_MAX);
}
END_TEST

START_TEST(test_extreme_ids)
{
	struct graph_event ev;
	struct err e;

	ck_assert_int_eq(parse("{\"src\":18446744073709551615,"
			       "\"dst\":9223372036854775808}", 0, &ev, &e), 0);
	ck_assert_uint_eq(ev.src, UINT64_MAX);
	ck_assert_uint_eq(ev.dst, (uint64_t)INT64_MAX + 1);
	ck_assert_int_eq(parse("{\"src\":\"18446744073709551615\","
			       "\"dst\":\"00000000000000000001\"}", 0, &ev, &e),
			 0);
	ck_assert_uint_eq(ev.src, UINT64_MAX);
	ck_assert_uint_eq(ev.dst, 1);
	/* an overflowing literal elsewhere must not taint a max id */
	ck_assert_int_eq(parse("{\"w\":99999999999999999999999,"
			       "\"src\":18446744073709551615,\"dst\":3}", 0,
			       &ev, &e), 0);
	ck_assert_uint_eq(ev.src, UINT64_MAX);
	/* the same through json-c: the fast path answers all of the above,
	 * and json-c's saturation (a max id and an overflow read alike) is
	 * only told apart there */
	{
		static const char *const ok[] = {
			"{\"src\":18446744073709551615,\"dst\":9223372036854775808}",
			"{\"w\":99999999999999999999999,\"src\":18446744073709551615,\"dst\":3}",
		};
		static const char over[] = "{\"src\":18446744073709551616,\"dst\":3}";
		struct event_parser *p = event_parser_new();

		ck_assert_ptr_nonnull(p);
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			int rc = event_parse_flags(p, ok[i], strlen(ok[i]), 0,
						   EVENT_SLOW_PATH, &ev, &e);

			ck_assert_msg(rc == 0, "%s: %s", ok[i], e.msg);
			ck_assert_uint_eq(ev.src, UINT64_MAX);
		}
		ck_assert_int_ne(event_parse_flags(p, over, strlen(over), 0,
						   EVENT_SLOW_PATH, &ev, &e), 0);
		ck_assert_msg(strstr(e.msg, "above 18446744073709551615") != NULL, "%s", e.msg);
		event_parser_free(p);
	}
}
END_TEST

/* Not NUL-terminated: only s[0..n) counts. */
START_TEST(test_length_bounded)
{
	const char buf[] = "{\"src\":1,\"dst\":2}{\"src\":3";
	struct event_parser *p = event_parser_new();
	struct graph_event ev;
	struct err e;

	ck_assert_int_eq(event_parse(p, buf, 17, 0, &ev, &e), 0);
	ck_assert_uint_eq(ev.src, 1);
	ck_assert_uint_eq(ev.dst, 2);
	ck_assert_int_eq(event_parse(p, buf, 16, 0, &ev, &e), -1);
	ck_assert_int_eq(event_parse(p, buf, sizeof(buf) - 1, 0, &ev, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "not json"));
	/* the parser is reusable after an error */
	ck_assert_int_eq(event_parse(p, buf, 17, 0, &ev, &e), 0);
	event_parser_free(p);
}
END_TEST

static const struct {
	const char *in;
	const char *msg; /* substring the message must contain */
} bad[] = {
	{ "", "not json" },
	{ "   ", "not json" },
	{ "nonsense", "not json: \"o\" at byte 2" }, /* where it went wrong */
	{ "{\"src\":1;\"dst\":2}", "not json: \";\" at byte 9" },
	{ "{\x01}", "not json: byte 0x01 at byte 2" },
	{ "{\"src\":1,\"dst\":2", "truncated" },
	{ "{\"src\":1,\"dst\":2} x", "not json" },
	{ "{\"src\":1,\"dst\":2}{}", "not json" },
	{ "[1,2]", "not a json object" },
	{ "42", "not a json object" },
	{ "{\"dst\":2}", "\"src\" is missing" },
	{ "{\"src\":1}", "\"dst\" is missing" },
	{ "{\"src\":-1,\"dst\":2}", "\"src\" is negative" },
	{ "{\"src\":1,\"dst\":-99999999999999999999}", "\"dst\" is negative" },
	{ "{\"src\":1.0,\"dst\":2}", "\"src\" must be" },
	{ "{\"src\":1e3,\"dst\":2}", "\"src\" must be" },
	{ "{\"src\":true,\"dst\":2}", "\"src\" must be" },
	{ "{\"src\":null,\"dst\":2}", "\"src\" must be" },
	{ "{\"src\":[1],\"dst\":2}", "\"src\" must be" },
	{ "{\"src\":1,\"dst\":{}}", "\"dst\" must be" },
	{ "{\"src\":\"-1\",\"dst\":2}", "\"src\" \"-1\" is not a decimal" },
	{ "{\"src\":\"+1\",\"dst\":2}", "\"src\" \"+1\" is not a decimal" },
	{ "{\"src\":\" 1\",\"dst\":2}", "\"src\" \" 1\" is not a decimal" },
	{ "{\"src\":\"1 \",\"dst\":2}", "\"src\" \"1 \" is not a decimal" },
	{ "{\"src\":\"\",\"dst\":2}", "\"src\" \"\" is not a decimal" },
	{ "{\"src\":\"0x10\",\"dst\":2}", "is not a decimal" },
	{ "{\"src\":\"1.0\",\"dst\":2}", "is not a decimal" },
	{ "{\"src\":\"18446744073709551616\",\"dst\":2}", "is not a decimal" },
	{ "{\"src\":\"123456789012345678901\",\"dst\":2}", "is not a decimal" },
	{ "{\"src\":18446744073709551616,\"dst\":2}", "\"src\" is above" },
	{ "{\"src\":1,\"dst\":99999999999999999999999}", "\"dst\" is above" },
	{ "{\"src\":1,\"dst\":2,\"ts\":-1}", "\"ts\" must be" },
	{ "{\"src\":1,\"dst\":2,\"ts\":4294967296}", "\"ts\" must be" },
	{ "{\"src\":1,\"dst\":2,\"ts\":1.5}", "\"ts\" must be" },
	{ "{\"src\":1,\"dst\":2,\"ts\":\"5\"}", "\"ts\" must be" },
	{ "{\"src\":1,\"dst\":2,\"ts\":null}", "\"ts\" must be" },
	{ "{\"op\":\"delete\",\"src\":1,\"dst\":2}", "\"op\" \"delete\"" },
	{ "{\"op\":\"ADD\",\"src\":1,\"dst\":2}", "\"op\" \"ADD\"" },
	{ "{\"op\":1,\"src\":1,\"dst\":2}", "\"op\" must be a string" },
	{ "{\"src\":5,\"dst\":\"5\"}", "same member" },
	{ "{\"src\":5,\"dst\":5}", "same member" },
};

START_TEST(test_rejects)
{
	struct graph_event ev;
	struct err e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(bad[i].in, 0, &ev, &e) == -1,
			      "accepted %s", bad[i].in);
		ck_assert_msg(strstr(e.msg, bad[i].msg) != NULL,
			      "%s: got \"%s\", want \"%s\"", bad[i].in, e.msg,
			      bad[i].msg);
		ck_assert_msg(e.msg[strlen(e.msg) - 1] != '.',
			      "message ends in a full stop: %s", e.msg);
	}
}
END_TEST

START_TEST(test_nul_byte)
{
	const char buf[] = "{\"src\":1,\"dst\":2}\0";
	const char mid[] = "{\"src\":1,\0\"dst\":2}";
	struct event_parser *p = event_parser_new();
	struct graph_event ev;
	struct err e;

	ck_assert_int_eq(event_parse(p, buf, sizeof(buf) - 1, 0, &ev, &e), -1);
	ck_assert_int_eq(event_parse(p, mid, sizeof(mid) - 1, 0, &ev, &e), -1);
	ck_assert_ptr_nonnull(strstr(e.msg, "nul"));
	event_parser_free(p);
}
END_TEST

START_TEST(test_allow_self)
{
	const char *s = "{\"src\":8,\"dst\":8,\"ts\":3}";
	struct event_parser *p = event_parser_new();
	struct graph_event ev;
	struct err e;

	ck_assert_int_eq(event_parse(p, s, strlen(s), 0, &ev, &e), -1);
	ck_assert_int_eq(event_parse_flags(p, s, strlen(s), 0,
					   EVENT_ALLOW_SELF, &ev, &e), 0);
	ck_assert_uint_eq(ev.src, 8);
	ck_assert_uint_eq(ev.dst, 8);
	ck_assert_uint_eq(ev.ts, 3);
	event_parser_free(p);
}
END_TEST

/* Random well-formed events round-trip exactly. */
START_TEST(test_random_roundtrip)
{
	struct event_parser *p = event_parser_new();
	struct graph_event ev;
	struct err e;
	char buf[256];
	size_t i;

	for (i = 0; i < 20000; i++) {
		uint64_t src = rnd() >> (rnd() % 64), dst = rnd() >> (rnd() % 64);
		uint32_t ts = (uint32_t)rnd();
		unsigned form = (unsigned)(rnd() % 8);
		int n;

		if (src == dst)
			dst = src + 1;
		n = snprintf(buf, sizeof(buf),
			     form & 1 ? "{\"src\":\"%" PRIu64 "\"," :
					"{\"src\":%" PRIu64 ",", src);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
			      form & 2 ? " \"dst\" : \"%" PRIu64 "\"" :
					 "\"dst\":%" PRIu64, dst);
		if (form & 4)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      ",\"op\":\"remove\",\"ts\":%u", ts);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "}\n");
		ck_assert_msg(event_parse(p, buf, (size_t)n, 77, &ev, &e) == 0,
			      "%s: %s", buf, e.msg);
		ck_assert_uint_eq(ev.src, src);
		ck_assert_uint_eq(ev.dst, dst);
		ck_assert_uint_eq(ev.ts, form & 4 ? ts : 77);
		ck_assert_uint_eq(ev.op, form & 4 ? GRAPH_REMOVE : GRAPH_ADD);
	}
	event_parser_free(p);
}
END_TEST

/* Mutated bytes: never a crash; success only with a checked event. */
START_TEST(test_mutations)
{
	const char *seed = "{\"op\":\"add\",\"src\":\"1001\",\"dst\":2002,"
			   "\"ts\":1700000000}";
	struct event_parser *p = event_parser_new();
	struct graph_event ev;
	struct err e;
	char buf[128];
	size_t i, k, len = strlen(seed), ok = 0;

	for (i = 0; i < 20000; i++) {
		size_t n = len;

		memcpy(buf, seed, len);
		for (k = 0; k < 1 + rnd() % 3; k++)
			buf[rnd() % len] = (char)(rnd() % 256);
		if (rnd() % 4 == 0)
			n = rnd() % len;
		err_clear(&e);
		if (event_parse(p, buf, n, 0, &ev, &e) == 0) {
			ck_assert_uint_ne(ev.src, ev.dst);
			ck_assert_uint_le(ev.op, GRAPH_REMOVE);
			ok++;
		} else {
			ck_assert_msg(e.msg[0] != '\0', "error without message");
		}
	}
	ck_assert_uint_gt(ok, 0);
	event_parser_free(p);
}
END_TEST

/*
 * The allocation-free fast path against json-c alone: the same answer
 * (rc, event, message) for well-formed events of every shape and for
 * mutations of them.
 */
static void same_both_ways(struct event_parser *p, const char *s, size_t n)
{
	struct graph_event a, b;
	struct err ea, eb;
	int ra, rb;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	err_clear(&ea);
	err_clear(&eb);
	ra = event_parse_flags(p, s, n, 31, 0, &a, &ea);
	rb = event_parse_flags(p, s, n, 31, EVENT_SLOW_PATH, &b, &eb);
	ck_assert_msg(ra == rb, "%.*s: fast %d, json-c %d (%s)", (int)n, s, ra,
		      rb, eb.msg);
	if (ra == 0)
		ck_assert_msg(a.src == b.src && a.dst == b.dst &&
			      a.ts == b.ts && a.op == b.op,
			      "%.*s: events differ", (int)n, s);
	else
		ck_assert_str_eq(ea.msg, eb.msg);
}

START_TEST(test_fast_path_same)
{
	static const char *const seeds[] = {
		"{\"op\":\"add\",\"src\":1001,\"dst\":2002,\"ts\":1700000000}",
		"{\"src\":\"18446744073709551615\",\"dst\":0}",
		" { \"dst\" : 5 , \"src\" : \"6\" , \"x\" : \"y\" } \r\n",
		"{\"src\":1,\"src\":2,\"dst\":1,\"op\":\"remove\"}",
		"{\"src\":01,\"dst\":2}",
		"{\"src\":-0,\"dst\":2}",
		"{\"src\":1,\"dst\":2,\"ts\":4294967295,\"w\":-12}",
		"{\"src\":1,\"dst\":2,\"ts\":4294967296}",
		"{\"src\":1,\"dst\":2,\"n\":123456789012345678901234567890}",
		"{\"src\":\"1\\u0030\",\"dst\":2}",
		"{\"op\":\"x\",\"op\":\"add\",\"src\":1,\"dst\":2}",
		"{\"src\":1,\"dst\":2}\f",
		"{}",
		"{\"src\":3,\"dst\":3}",
	};
	struct event_parser *p = event_parser_new();
	char buf[128];
	size_t i, k, m;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		same_both_ways(p, seeds[i], strlen(seeds[i]));
	for (i = 0; i < 30000; i++) {
		const char *seed = seeds[rnd() % (sizeof(seeds) /
						  sizeof(seeds[0]))];
		size_t len = strlen(seed), n = len;
		static const char alphabet[] = "{}[]\",:-0123456789 .eE\\ux\t";

		memcpy(buf, seed, len);
		for (k = 0, m = 1 + rnd() % 3; k < m; k++)
			buf[rnd() % len] = rnd() % 2 ?
				alphabet[rnd() % (sizeof(alphabet) - 1)] :
				(char)(1 + rnd() % 255);
		if (rnd() % 5 == 0)
			n = rnd() % (len + 1);
		same_both_ways(p, buf, n);
	}
	event_parser_free(p);
}
END_TEST

static Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_valid_basic);
	tcase_add_test(tc, test_extreme_ids);
	tcase_add_test(tc, test_length_bounded);
	tcase_add_test(tc, test_rejects);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_allow_self);
	tcase_add_test(tc, test_random_roundtrip);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_fast_path_same);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_main(event_suite());
}
