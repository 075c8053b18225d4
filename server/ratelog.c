/* ratelog.c - rate-limited failure lines (ratelog.h). */
#include "ratelog.h"

#include <stdio.h>
#include <string.h>

void ratelog_init(struct ratelog *r, const char *who)
{
	memset(r, 0, sizeof(*r));
	r->who = who;
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->failing, 0);
}

void ratelog_destroy(struct ratelog *r)
{
	pthread_mutex_destroy(&r->mu);
}

void ratelog_report(struct ratelog *r, const char *fail, const char *ok)
{
	if (!fail && !atomic_load_explicit(&r->failing, memory_order_relaxed))
		return; /* the common case: nothing to end */
	pthread_mutex_lock(&r->mu);
	if (fail) {
		time_t now = time(NULL);

		atomic_store(&r->failing, 1);
		if (!r->last || now - r->last >= RATELOG_EVERY_S) {
			if (r->unlogged)
				fprintf(stderr, "%s: %s (and %llu more since the "
					"last such line)\n", r->who, fail,
					(unsigned long long)r->unlogged);
			else
				fprintf(stderr, "%s: %s\n", r->who, fail);
			r->last = now;
			r->unlogged = 0;
			r->logged = 1;
		} else {
			r->unlogged++;
		}
	} else if (atomic_load(&r->failing)) {
		atomic_store(&r->failing, 0);
		if (r->logged)
			fprintf(stderr, "%s: %s\n", r->who, ok);
		r->logged = 0;
	}
	pthread_mutex_unlock(&r->mu);
}
