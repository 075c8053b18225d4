/*
 * ratelog.h - a log line for a failure that can repeat fast (a full disk,
 * a broker down), at most once per RATELOG_EVERY_S.
 *
 * The next line says how many were not logged; the first success after
 * failures of which one was logged is logged too, so the log's last word
 * is true. Lines go to stderr as "WHO: text". Any thread.
 */
#ifndef TRIAD_RATELOG_H
#define TRIAD_RATELOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define RATELOG_EVERY_S 10

struct ratelog {
	const char *who;   /* the line's prefix: "triad serve" */
	pthread_mutex_t mu;
	time_t last;       /* when a failure was last logged */
	uint64_t unlogged; /* failures since, not logged */
	int logged;        /* a failure since the last success was logged */
	atomic_int failing; /* the latest report was a failure (set under mu;
			     * read without it: a success's fast path) */
};

void ratelog_init(struct ratelog *r, const char *who);
void ratelog_destroy(struct ratelog *r);

/* Report a failure (fail: its line) or a success (fail NULL; ok: the line
 * said when it ends a logged failure). A success costs one atomic load
 * unless it ends a failure. */
void ratelog_report(struct ratelog *r, const char *fail, const char *ok);

#endif
