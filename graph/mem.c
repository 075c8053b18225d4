#include "mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *mem_alloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return malloc(n && size ? n * size : 1);
}

void *mem_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

int mem_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t ncap = *cap ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	if (size && ncap > SIZE_MAX / size)
		return -1;
	np = realloc(*p, ncap * size);
	if (!np)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

void *mem_dup(const void *src, size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p && n)
		memcpy(p, src, n);
	return p;
}

void mem_hint_huge(void *p, size_t bytes)
{
	const uintptr_t huge = (uintptr_t)2 << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
	uintptr_t b = ((uintptr_t)p + bytes) & ~(huge - 1);

	if (p && b > a)
		madvise((void *)a, b - a, MADV_HUGEPAGE);
}

static void *prefault_run(void *arg)
{
	const size_t step = (size_t)2 << 20;
	struct mem_prefault *f = arg;
	size_t at = 0, left = 1;
	unsigned i;

	while (left) {
		left = 0;
		for (i = 0; i < f->nb; i++) {
			size_t n;

			if (at >= f->n[i])
				continue;
			n = f->n[i] - at < step ? f->n[i] - at : step;
			if (madvise((char *)f->p[i] + at, n, MADV_POPULATE_WRITE))
				f->n[i] = 0; /* unsupported: stop on this one */
			left = 1;
		}
		at += step;
	}
	return NULL;
}

void mem_prefault_start(struct mem_prefault *f, void *const *p,
			const size_t *bytes, unsigned nb)
{
	const uintptr_t page = 4096;
	unsigned i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < nb && f->nb < MEM_PREFAULT_MAX; i++) {
		/* madvise wants a page-aligned start: the whole pages inside */
		uintptr_t a = ((uintptr_t)p[i] + page - 1) & ~(page - 1);
		uintptr_t b = ((uintptr_t)p[i] + bytes[i]) & ~(page - 1);

		if (p[i] && b > a) {
			f->p[f->nb] = (void *)a;
			f->n[f->nb++] = b - a;
		}
	}
	if (f->nb && !pthread_create(&f->thread, NULL, prefault_run, f))
		f->started = 1;
}

void mem_prefault_wait(struct mem_prefault *f)
{
	if (f->started)
		pthread_join(f->thread, NULL);
	f->started = 0;
}
