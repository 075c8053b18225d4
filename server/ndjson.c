/* ndjson.c - see ndjson.h. */
#include "ndjson.h"

#include <string.h>

void ndjson_init(struct ndjson_cursor *c, const char *buf, size_t len)
{
	c->p = buf;
	c->end = buf ? buf + len : NULL;
	c->line = 0;
}

int ndjson_next(struct ndjson_cursor *c, const char **s, size_t *n)
{
	const char *nl, *le, *b;

	if (!c->p || c->p >= c->end)
		return 0;
	nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	le = nl ? nl : c->end;
	b = c->p;
	c->p = nl ? nl + 1 : c->end;
	c->line++;
	while (b < le && (*b == ' ' || *b == '\t'))
		b++;
	while (le > b && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
		le--;
	*s = b;
	*n = (size_t)(le - b);
	return 1;
}
