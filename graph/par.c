/* par.c - one function on several threads (par.h). */
#include "par.h"

#include <pthread.h>
#include <unistd.h>

#define PAR_MAX 64u

struct par {
	par_fn fn;
	void *ctx;
	atomic_int *stop;
	pthread_mutex_t lock; /* guards e and failed */
	int failed;
	struct err e;         /* the first failure */
};

struct par_worker {
	struct par *p;
	unsigned id;
	pthread_t tid;
};

unsigned par_threads(unsigned asked, unsigned cap, size_t pieces)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = asked ? asked : cores > 0 ? (unsigned)cores : 1;

	if (n > cap)
		n = cap;
	if (n > pieces)
		n = (unsigned)pieces;
	return n ? n : 1;
}

static void *par_main(void *arg)
{
	struct par_worker *w = arg;
	struct par *p = w->p;
	struct err e = { "" };

	if (p->fn(p->ctx, w->id, &e)) {
		pthread_mutex_lock(&p->lock);
		if (!p->failed)
			p->e = e;
		p->failed = 1;
		atomic_store(p->stop, 1);
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

int par_run(unsigned n, par_fn fn, void *ctx, atomic_int *stop,
	    struct err *e)
{
	struct par p = { .fn = fn, .ctx = ctx, .stop = stop };
	struct par_worker w[PAR_MAX];
	unsigned t, started = 0;

	if (n < 1)
		n = 1;
	if (n > PAR_MAX)
		n = PAR_MAX;
	if (pthread_mutex_init(&p.lock, NULL))
		return err_set(e, "cannot create a mutex");
	for (t = 0; t < n; t++) {
		w[t].p = &p;
		w[t].id = t;
	}
	for (t = 1; t < n; t++) {
		if (pthread_create(&w[t].tid, NULL, par_main, &w[t]))
			break; /* fewer workers: the others take their pieces */
		started = t;
	}
	par_main(&w[0]);
	for (t = 1; t <= started; t++)
		pthread_join(w[t].tid, NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.failed) {
		if (e)
			*e = p.e;
		return -1;
	}
	return 0;
}
