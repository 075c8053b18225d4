/* query.c - see query.h. */
#include "query.h"

#include <stdio.h>
#include <string.h>

int query_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	/* no cap on the digits: leading zeros add nothing, and the overflow
	 * check ends a long number at its 21st significant digit (a cap of 20
	 * digits made 21 zeros "too large") */
	if (!n)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';

		if (d > 9)
			return -1;
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int query_parse(const char *qs, struct query_param *params, size_t n,
		char *msg, size_t msz)
{
	const char *p = qs ? qs : "";
	size_t i;

	while (*p) {
		const char *amp = strchr(p, '&'), *eq;
		size_t len = amp ? (size_t)(amp - p) : strlen(p), klen;

		if (!len) {
			p += 1;
			continue;
		}
		eq = memchr(p, '=', len);
		klen = eq ? (size_t)(eq - p) : len;
		for (i = 0; i < n; i++)
			if (strlen(params[i].name) == klen &&
			    !memcmp(params[i].name, p, klen))
				break;
		if (i == n) {
			snprintf(msg, msz, "unknown parameter \"%.*s\"",
				 (int)(klen > 40 ? 40 : klen), p);
			return -1;
		}
		if (params[i].seen++) {
			snprintf(msg, msz, "parameter \"%s\" given twice",
				 params[i].name);
			return -1;
		}
		if (!eq || eq + 1 == p + len) {
			snprintf(msg, msz, "parameter \"%s\" has no value",
				 params[i].name);
			return -1;
		}
		{
			const char *v = eq + 1;
			size_t vlen = len - klen - 1;

			if (query_u64(v, vlen, &params[i].val)) {
				if (*v == '-')
					snprintf(msg, msz, "\"%s\" must not be "
						 "negative", params[i].name);
				else if (vlen && strspn(v, "0123456789") >=
							 vlen)
					snprintf(msg, msz, "\"%s\" is too "
						 "large", params[i].name);
				else
					snprintf(msg, msz, "\"%s\" \"%.*s\" is "
						 "not a decimal integer",
						 params[i].name,
						 (int)(vlen > 40 ? 40 : vlen),
						 v);
				return -1;
			}
			if (params[i].val < params[i].min ||
			    params[i].val > params[i].max) {
				snprintf(msg, msz, "\"%s\" must be from %llu "
					 "to %llu", params[i].name,
					 (unsigned long long)params[i].min,
					 (unsigned long long)params[i].max);
				return -1;
			}
		}
		p += len;
		if (*p == '&')
			p++;
	}
	for (i = 0; i < n; i++)
		if (params[i].required && !params[i].seen) {
			snprintf(msg, msz, "missing parameter \"%s\"",
				 params[i].name);
			return -1;
		}
	return 0;
}

