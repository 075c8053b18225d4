#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return -1;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void err_prefix(struct err *e, const char *fmt, ...)
{
	char pre[ERR_MSG_MAX], all[2 * ERR_MSG_MAX + 2];
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	snprintf(all, sizeof(all), "%s: %s", pre, e->msg);
	memcpy(e->msg, all, sizeof(e->msg) - 1);
	e->msg[sizeof(e->msg) - 1] = '\0';
}

void err_clear(struct err *e)
{
	if (e)
		e->msg[0] = '\0';
}
