/* dismiss.c - see dismiss.h. */
#include "dismiss.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mem.h"

struct slot {
	uint64_t m, c;
	int used;
};

struct dismiss_set {
	pthread_rwlock_t lock;
	struct slot *t;
	size_t cap; /* power of two */
	_Atomic uint64_t n;
};

static uint64_t mix(uint64_t m, uint64_t c)
{
	uint64_t x = m * 0x9e3779b97f4a7c15ull ^ (c + 0x632be59bd9b4e019ull);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return x;
}

struct dismiss_set *dismiss_new(void)
{
	struct dismiss_set *d = mem_calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->cap = 64;
	d->t = mem_calloc(d->cap, sizeof(*d->t));
	if (!d->t) {
		free(d);
		return NULL;
	}
	pthread_rwlock_init(&d->lock, NULL);
	return d;
}

void dismiss_free(struct dismiss_set *d)
{
	if (!d)
		return;
	pthread_rwlock_destroy(&d->lock);
	free(d->t);
	free(d);
}

static struct slot *find(struct slot *t, size_t cap, uint64_t m, uint64_t c)
{
	size_t i = mix(m, c) & (cap - 1);

	while (t[i].used && (t[i].m != m || t[i].c != c))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

int dismiss_add(struct dismiss_set *d, uint64_t member, uint64_t candidate)
{
	struct slot *s;
	int rc = 0;

	pthread_rwlock_wrlock(&d->lock);
	if ((atomic_load(&d->n) + 1) * 2 > d->cap) {
		size_t ncap = d->cap * 2, i;
		struct slot *nt = mem_calloc(ncap, sizeof(*nt));

		if (!nt) {
			rc = -1;
			goto out;
		}
		for (i = 0; i < d->cap; i++)
			if (d->t[i].used)
				*find(nt, ncap, d->t[i].m, d->t[i].c) = d->t[i];
		free(d->t);
		d->t = nt;
		d->cap = ncap;
	}
	s = find(d->t, d->cap, member, candidate);
	if (!s->used) {
		s->used = 1;
		s->m = member;
		s->c = candidate;
		atomic_fetch_add(&d->n, 1);
	}
out:
	pthread_rwlock_unlock(&d->lock);
	return rc;
}

int dismiss_has(struct dismiss_set *d, uint64_t member, uint64_t candidate)
{
	int r;

	if (!atomic_load_explicit(&d->n, memory_order_acquire))
		return 0;
	pthread_rwlock_rdlock(&d->lock);
	r = find(d->t, d->cap, member, candidate)->used;
	pthread_rwlock_unlock(&d->lock);
	return r;
}

uint64_t dismiss_count(struct dismiss_set *d)
{
	return atomic_load(&d->n);
}
