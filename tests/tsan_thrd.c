/*
 * tsan_thrd.c - linked into the ThreadSanitizer build only (make tsan).
 *
 * librdkafka uses C11 threads: thrd_create, thrd_join, mtx_*, cnd_*. glibc
 * implements them by calling its internal pthread functions directly, past
 * ThreadSanitizer's interceptors, so the sanitizer never sets librdkafka's
 * threads up (they crash on their first malloc), never sees them joined
 * (a "thread leak" at exit) and never sees its locks (false races on what
 * its queues hand over). Defining these functions in the executable takes
 * the place of glibc's for librdkafka too; these go through the pthread
 * calls the sanitizer intercepts. mtx_t and cnd_t have pthread_mutex_t's
 * and pthread_cond_t's size and layout in glibc.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

int thrd_create(thrd_t *t, thrd_start_t fn, void *arg);
int thrd_join(thrd_t t, int *res);
int mtx_init(mtx_t *m, int type);
int mtx_lock(mtx_t *m);
int mtx_trylock(mtx_t *m);
int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts);
int mtx_unlock(mtx_t *m);
void mtx_destroy(mtx_t *m);
int cnd_init(cnd_t *c);
int cnd_signal(cnd_t *c);
int cnd_broadcast(cnd_t *c);
int cnd_wait(cnd_t *c, mtx_t *m);
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
		  const struct timespec *restrict ts);
void cnd_destroy(cnd_t *c);

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t layout");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t layout");

static int thrd_rc(int rc)
{
	switch (rc) {
	case 0:
		return thrd_success;
	case ETIMEDOUT:
		return thrd_timedout;
	case EBUSY:
		return thrd_busy;
	case ENOMEM:
	case EAGAIN:
		return thrd_nomem;
	default:
		return thrd_error;
	}
}

struct start {
	thrd_start_t fn;
	void *arg;
};

static void *trampoline(void *p)
{
	struct start s = *(struct start *)p;

	free(p);
	return (void *)(intptr_t)s.fn(s.arg); /* thrd_join reads it back */
}

int thrd_create(thrd_t *t, thrd_start_t fn, void *arg)
{
	struct start *s = malloc(sizeof(*s));
	int rc;

	if (!s)
		return thrd_nomem;
	s->fn = fn;
	s->arg = arg;
	rc = pthread_create((pthread_t *)t, NULL, trampoline, s);
	if (rc)
		free(s);
	return thrd_rc(rc);
}

int thrd_join(thrd_t t, int *res)
{
	void *r;
	int rc = pthread_join((pthread_t)t, &r);

	if (!rc && res)
		*res = (int)(intptr_t)r;
	return thrd_rc(rc);
}

int mtx_init(mtx_t *m, int type)
{
	pthread_mutexattr_t a;
	int rc;

	if (pthread_mutexattr_init(&a))
		return thrd_error;
	if (type & mtx_recursive)
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
	pthread_mutexattr_destroy(&a);
	return thrd_rc(rc);
}

int mtx_lock(mtx_t *m)
{
	return thrd_rc(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
	return thrd_rc(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
	return thrd_rc(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m)
{
	return thrd_rc(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
	pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
	return thrd_rc(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
	return thrd_rc(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
	return thrd_rc(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
	return thrd_rc(pthread_cond_wait((pthread_cond_t *)c,
					 (pthread_mutex_t *)m));
}

/* C11 measures the deadline on CLOCK_REALTIME, as pthread's default does */
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m,
		  const struct timespec *restrict ts)
{
	return thrd_rc(pthread_cond_timedwait((pthread_cond_t *)c,
					      (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c)
{
	pthread_cond_destroy((pthread_cond_t *)c);
}
