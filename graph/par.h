/*
 * par.h - one function on several threads, for work split into
 * independent pieces (eval's members, train's grid).
 *
 * The workers share nothing par_run knows about: each takes its pieces
 * from a counter in ctx, so that any number of workers finishes the job
 * (par_run starts fewer when a thread cannot be created), and stops early
 * once par_stopped(stop) says another failed.
 */
#ifndef TRIAD_PAR_H
#define TRIAD_PAR_H

#include <stdatomic.h>
#include <stddef.h>

#include "err.h"

/* One worker: 0, or -1 with e filled. worker is 0..n-1; 0 runs on the
 * thread that called par_run. */
typedef int (*par_fn)(void *ctx, unsigned worker, struct err *e);

/* How many workers to run for `pieces` pieces of work: `asked` (0: one
 * per online core), at most cap and at most pieces, at least 1. */
unsigned par_threads(unsigned asked, unsigned cap, size_t pieces);

/* Run fn on n workers (n >= 1) and wait for them all. *stop is set once a
 * worker fails. Returns 0, or -1 with e = the first failure's message. */
int par_run(unsigned n, par_fn fn, void *ctx, atomic_int *stop,
	    struct err *e);

/* Whether a worker has failed (workers poll it between pieces). */
static inline int par_stopped(atomic_int *stop)
{
	return atomic_load(stop) != 0;
}

#endif
