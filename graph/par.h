/*
 * par.h - one function on several threads, for work split into
 * independent pieces (eval's members, train's grid).
 *
 * The workers share nothing par_run knows about: each takes its pieces
 * from a counter in ctx (par_next), so that any number of workers
 * finishes the job (par_run starts fewer when a thread cannot be created),
 * and stops early once another failed.
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

/* A worker's next piece: 1 with *i in [0, n) taken from the shared
 * counter *next, or 0 once every piece is taken or a worker has failed. */
static inline int par_next(atomic_size_t *next, atomic_int *stop, size_t n,
			   size_t *i)
{
	if (atomic_load(stop))
		return 0;
	*i = atomic_fetch_add(next, 1);
	return *i < n;
}

#endif
