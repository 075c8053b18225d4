/* event.c - JSON edge events through a reused json-c tokener. */
#include "event.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct event_parser {
	struct json_tokener *tok;
};

static const char u64_max_dec[] = "18446744073709551615";

struct event_parser *event_parser_new(void)
{
	struct event_parser *p = mem_calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->tok = json_tokener_new();
	if (!p->tok) {
		free(p);
		return NULL;
	}
	json_tokener_set_flags(p->tok, JSON_TOKENER_STRICT);
	return p;
}

void event_parser_free(struct event_parser *p)
{
	if (!p)
		return;
	json_tokener_free(p->tok);
	free(p);
}

/* 1 when the digit run d[0..len) is above UINT64_MAX. */
static int dec_overflows(const char *d, size_t len)
{
	while (len > 1 && *d == '0') {
		d++;
		len--;
	}
	if (len != sizeof(u64_max_dec) - 1)
		return len > sizeof(u64_max_dec) - 1;
	return memcmp(d, u64_max_dec, len) > 0;
}

/* Value of hex digit c, or -1. */
static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * 1 when the raw JSON string body r[0..n) (between the quotes) decodes to
 * the ASCII key. Escapes are decoded because json-c decodes them: a key
 * written "\u0073rc" is "src" to it, so it must be to us.
 */
static int raw_key_eq(const char *r, size_t n, const char *key)
{
	size_t i = 0;

	for (; *key; key++) {
		char c;

		if (i >= n)
			return 0;
		c = r[i++];
		if (c == '\\') {
			if (i >= n)
				return 0;
			c = r[i++];
			if (c == 'u') {
				int k, h, cp = 0;

				if (n - i < 4)
					return 0;
				for (k = 0; k < 4; k++) {
					if ((h = hex_val(r[i + (size_t)k])) < 0)
						return 0;
					cp = cp * 16 + h;
				}
				i += 4;
				if (cp != (unsigned char)*key)
					return 0;
				continue;
			}
			/* \", \\, \/ stand for themselves; keys are letters,
			 * so \b \f \n \r \t never match */
			if (c != '"' && c != '\\' && c != '/')
				return 0;
		}
		if (c != *key)
			return 0;
	}
	return i == n;
}

/*
 * json-c saturates integers above UINT64_MAX to UINT64_MAX, so a value of
 * exactly UINT64_MAX is ambiguous. Look at the raw literal of `key` at the
 * top level of the (already validated) object to tell the two apart.
 * 1 when that literal overflows.
 */
static int raw_key_overflows(const char *s, size_t n, const char *key)
{
	size_t i = 0, st, k;
	int depth = 0, want_key = 0, match = 0, hit = 0;

	while (i < n) {
		char c = s[i];

		if (c == '"') {
			st = ++i;
			while (i < n && s[i] != '"')
				i += s[i] == '\\' ? 2 : 1;
			if (depth == 1 && want_key)
				match = i <= n && raw_key_eq(s + st, i - st, key);
			i++;
			continue;
		}
		if (c == '{' || c == '[') {
			depth++;
			want_key = depth == 1 && c == '{';
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (depth == 1 && c == ',') {
			want_key = 1;
			match = 0;
		} else if (depth == 1 && c == ':') {
			want_key = 0;
		} else if (depth == 1 && match && c >= '0' && c <= '9') {
			for (k = i; k < n && s[k] >= '0' && s[k] <= '9'; k++)
				;
			hit |= dec_overflows(s + i, k - i);
			i = k;
			continue;
		}
		i++;
	}
	return hit;
}

/* Strict decimal: 1..20 digits, nothing else, <= UINT64_MAX. */
static int parse_dec_u64(const char *d, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned c = (unsigned char)d[i] - '0';

		if (c > 9)
			return -1;
		if (v > (UINT64_MAX - c) / 10)
			return -1;
		v = v * 10 + c;
	}
	*out = v;
	return 0;
}

static int get_id(const char *s, size_t n, struct json_object *obj,
		  const char *key, uint64_t *out, struct err *e)
{
	struct json_object *v;
	const char *str;
	size_t len;

	if (!json_object_object_get_ex(obj, key, &v))
		return err_set(e, "\"%s\" is missing", key);
	switch (json_object_get_type(v)) {
	case json_type_int:
		if (json_object_get_int64(v) < 0)
			return err_set(e, "\"%s\" is negative", key);
		*out = json_object_get_uint64(v);
		if (*out == UINT64_MAX && raw_key_overflows(s, n, key))
			return err_set(e, "\"%s\" is above %s", key,
				       u64_max_dec);
		return 0;
	case json_type_string:
		str = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (parse_dec_u64(str, len, out) < 0)
			return err_set(e, "\"%s\" \"%.40s\" is not a decimal "
				       "member id", key, str);
		return 0;
	default:
		return err_set(e, "\"%s\" must be an unsigned integer or a "
			       "decimal string", key);
	}
}

/* ---- fast path ----------------------------------------------------------
 * json-c costs about a microsecond per event, much of it a locale
 * switch per call that takes a process-wide lock. The common event is a
 * flat object of plain keys, integers and plain strings; this scanner
 * accepts exactly such objects when every field is valid, and answers
 * "not sure" for anything else (escapes, nesting, floats, literals, any
 * error), which then goes through json-c. So it never rejects and never
 * changes what json-c would have answered.
 */

enum { FAST_OK = 0, FAST_UNSURE = 1 };

static inline int fast_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A plain string at s[*i] ('"' already seen at s[*i - 1]): printable ASCII
 * without '"' or '\\'. Sets [*b, *len). */
static int fast_str(const char *s, size_t n, size_t *i, size_t *b,
		    size_t *len)
{
	size_t k = *i;

	while (k < n && s[k] != '"') {
		unsigned char c = (unsigned char)s[k];

		if (c < 0x20 || c > 0x7e || c == '\\')
			return FAST_UNSURE;
		k++;
	}
	if (k >= n)
		return FAST_UNSURE;
	*b = *i;
	*len = k - *i;
	*i = k + 1;
	return FAST_OK;
}

static int fast_parse(const char *s, size_t n, uint32_t now, unsigned flags,
		      struct graph_event *ev)
{
	size_t i = 0, kb, kl, vb, vl;
	int have_src = 0, have_dst = 0, is_num;
	uint64_t v;

	ev->op = GRAPH_ADD;
	ev->ts = now;
	while (i < n && fast_ws(s[i]))
		i++;
	if (i >= n || s[i++] != '{')
		return FAST_UNSURE;
	while (i < n && fast_ws(s[i]))
		i++;
	if (i < n && s[i] == '}')
		return FAST_UNSURE; /* {}: missing fields, json-c says so */
	for (;;) {
		if (i >= n || s[i++] != '"' || fast_str(s, n, &i, &kb, &kl))
			return FAST_UNSURE;
		while (i < n && fast_ws(s[i]))
			i++;
		if (i >= n || s[i++] != ':')
			return FAST_UNSURE;
		while (i < n && fast_ws(s[i]))
			i++;
		if (i >= n)
			return FAST_UNSURE;
		if (s[i] == '"') {
			i++;
			if (fast_str(s, n, &i, &vb, &vl))
				return FAST_UNSURE;
			is_num = 0;
		} else {
			vb = i;
			if (s[i] == '-')
				i++;
			if (i >= n || s[i] < '0' || s[i] > '9')
				return FAST_UNSURE;
			if (s[i] == '0' && i + 1 < n && s[i + 1] >= '0' &&
			    s[i + 1] <= '9')
				return FAST_UNSURE; /* leading zero */
			while (i < n && s[i] >= '0' && s[i] <= '9')
				i++;
			if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
				return FAST_UNSURE;
			vl = i - vb;
			is_num = 1;
		}
		if (kl == 3 && (!memcmp(s + kb, "src", 3) ||
				!memcmp(s + kb, "dst", 3))) {
			/* digits only, both as number and as string */
			if (parse_dec_u64(s + vb, vl, &v) < 0 ||
			    (is_num && vl > 1 && s[vb] == '0'))
				return FAST_UNSURE;
			if (s[kb] == 's') {
				ev->src = v;
				have_src = 1;
			} else {
				ev->dst = v;
				have_dst = 1;
			}
		} else if (kl == 2 && !memcmp(s + kb, "ts", 2)) {
			if (!is_num || parse_dec_u64(s + vb, vl, &v) < 0 ||
			    v > UINT32_MAX)
				return FAST_UNSURE;
			ev->ts = (uint32_t)v;
		} else if (kl == 2 && !memcmp(s + kb, "op", 2)) {
			if (is_num)
				return FAST_UNSURE;
			if (vl == 3 && !memcmp(s + vb, "add", 3))
				ev->op = GRAPH_ADD;
			else if (vl == 6 && !memcmp(s + vb, "remove", 6))
				ev->op = GRAPH_REMOVE;
			else
				return FAST_UNSURE;
		}
		while (i < n && fast_ws(s[i]))
			i++;
		if (i >= n)
			return FAST_UNSURE;
		if (s[i] == '}')
			break;
		if (s[i++] != ',')
			return FAST_UNSURE;
		while (i < n && fast_ws(s[i]))
			i++;
	}
	for (i++; i < n; i++)
		if (!fast_ws(s[i]))
			return FAST_UNSURE;
	if (!have_src || !have_dst ||
	    (ev->src == ev->dst && !(flags & EVENT_ALLOW_SELF)))
		return FAST_UNSURE;
	return FAST_OK;
}

int event_parse_flags(struct event_parser *p, const char *s, size_t n,
		      uint32_t now, unsigned flags, struct graph_event *ev,
		      struct err *e)
{
	struct json_object *obj = NULL, *v;
	enum json_tokener_error jerr;
	size_t end;
	int64_t ts;
	int rc = -1;

	if (n > INT32_MAX)
		return err_set(e, "event is too long");
	if (memchr(s, '\0', n))
		return err_set(e, "nul byte in event");
	if (!(flags & EVENT_SLOW_PATH) &&
	    fast_parse(s, n, now, flags, ev) == FAST_OK)
		return 0;
	json_tokener_reset(p->tok);
	obj = json_tokener_parse_ex(p->tok, s, (int)n);
	jerr = json_tokener_get_error(p->tok);
	if (!obj && jerr == json_tokener_continue) {
		/* a bare number waits for its end: give it one */
		obj = json_tokener_parse_ex(p->tok, " ", 1);
		jerr = json_tokener_get_error(p->tok);
		if (obj && jerr == json_tokener_success &&
		    !json_object_is_type(obj, json_type_object)) {
			err_set(e, "event is not a json object");
			goto out;
		}
		json_object_put(obj);
		obj = NULL;
		jerr = json_tokener_continue;
	}
	if (!obj || jerr != json_tokener_success) {
		size_t at = json_tokener_get_parse_end(p->tok);

		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			err_set(e, "not json: truncated");
		else if (at < n && s[at] > ' ' && s[at] < 127)
			err_set(e, "not json: \"%c\" at byte %zu (%s)", s[at],
				at + 1, json_tokener_error_desc(jerr));
		else if (at < n)
			err_set(e, "not json: byte 0x%02x at byte %zu (%s)",
				(unsigned char)s[at], at + 1,
				json_tokener_error_desc(jerr));
		else
			err_set(e, "not json: %s", json_tokener_error_desc(jerr));
		goto out;
	}
	for (end = json_tokener_get_parse_end(p->tok); end < n; end++)
		if (s[end] != ' ' && s[end] != '\t' && s[end] != '\r' &&
		    s[end] != '\n') {
			err_set(e, "trailing bytes after the event");
			goto out;
		}
	if (!json_object_is_type(obj, json_type_object)) {
		err_set(e, "event is not a json object");
		goto out;
	}
	ev->op = GRAPH_ADD;
	if (json_object_object_get_ex(obj, "op", &v)) {
		const char *op = json_object_is_type(v, json_type_string) ?
			json_object_get_string(v) : NULL;

		if (op && !strcmp(op, "add"))
			ev->op = GRAPH_ADD;
		else if (op && !strcmp(op, "remove"))
			ev->op = GRAPH_REMOVE;
		else {
			if (op)
				err_set(e, "\"op\" \"%.40s\" is not add or "
					"remove", op);
			else
				err_set(e, "\"op\" must be a string");
			goto out;
		}
	}
	if (get_id(s, n, obj, "src", &ev->src, e) < 0 ||
	    get_id(s, n, obj, "dst", &ev->dst, e) < 0)
		goto out;
	ev->ts = now;
	if (json_object_object_get_ex(obj, "ts", &v)) {
		if (!json_object_is_type(v, json_type_int) ||
		    (ts = json_object_get_int64(v)) < 0 || ts > UINT32_MAX) {
			err_set(e, "\"ts\" must be an integer 0..%u",
				(unsigned)UINT32_MAX);
			goto out;
		}
		ev->ts = (uint32_t)ts;
	}
	if (ev->src == ev->dst && !(flags & EVENT_ALLOW_SELF)) {
		err_set(e, "\"src\" and \"dst\" are the same member");
		goto out;
	}
	rc = 0;
out:
	json_object_put(obj);
	return rc;
}

int event_parse(struct event_parser *p, const char *s, size_t n, uint32_t now,
		struct graph_event *ev, struct err *e)
{
	return event_parse_flags(p, s, n, now, 0, ev, e);
}
