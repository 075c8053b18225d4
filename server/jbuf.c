/* jbuf.c - see jbuf.h. */
#include "jbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

int jbuf_add(struct graph_buf *b, const void *p, size_t n)
{
	void *q = b->p;

	if (n > SIZE_MAX - b->len - 1)
		return -1;
	if (mem_grow(&q, &b->cap, b->len + n + 1, 1))
		return -1;
	b->p = q;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

int jbuf_printf(struct graph_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(tmp))
		return jbuf_add(b, tmp, (size_t)n);
	{
		void *q = b->p;

		if (mem_grow(&q, &b->cap, b->len + (size_t)n + 1, 1))
			return -1;
		b->p = q;
		va_start(ap, fmt);
		vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		b->len += (size_t)n;
	}
	return 0;
}

/* Bytes in the well-formed UTF-8 sequence at p (a lead byte >= 0x80), or
 * 0: no overlong forms, no surrogates, nothing past U+10FFFF (RFC 3629).
 * Reads no further than a NUL, which is no continuation byte. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	size_t n, i;
	unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

int jbuf_str(struct graph_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	if (jbuf_add(b, "\"", 1))
		return -1;
	for (; *p; p++) {
		char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

		if (*p >= 0x80) { /* whole UTF-8 characters, else U+FFFD */
			size_t n = utf8_len(p);

			if (n ? jbuf_add(b, p, n) : jbuf_add(b, "\\ufffd", 6))
				return -1;
			p += n ? n - 1 : 0;
		} else if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			if (jbuf_add(b, esc, 2))
				return -1;
		} else if (*p < 0x20 || *p == 0x7f) {
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			if (jbuf_add(b, esc, 6))
				return -1;
		} else if (jbuf_add(b, p, 1)) {
			return -1;
		}
	}
	return jbuf_add(b, "\"", 1);
}
