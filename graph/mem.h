/*
 * mem.h - the one allocation wrapper.
 *
 * Every array allocation in triad goes through these so that `n * size`
 * is checked for overflow before it reaches malloc (git's st_mult habit).
 * They never abort and never print: a NULL return means out of memory or
 * overflow and the caller reports it.
 */
#ifndef TRIAD_MEM_H
#define TRIAD_MEM_H

#include <pthread.h>
#include <stddef.h>

/* Allocate n * size bytes. NULL on overflow or when malloc fails. */
void *mem_alloc(size_t n, size_t size);

/* Same, zero-filled. */
void *mem_calloc(size_t n, size_t size);

/*
 * Make room for at least `need` elements of `size` bytes in *p, whose
 * capacity is *cap elements. Grows geometrically. On success *p and *cap
 * are updated and 0 is returned; on failure both are left unchanged (the
 * old block is still valid and owned by the caller) and -1 is returned.
 */
int mem_grow(void **p, size_t *cap, size_t need, size_t size);

/*
 * Ask the kernel to back the 2 MiB-aligned part of a large block with huge
 * pages (a hint; ignored where unsupported). Page faults on fresh memory
 * dominate bulk loads on virtual machines: one fault per 2 MiB instead of
 * per 4 KiB.
 */
void mem_hint_huge(void *p, size_t bytes);

/*
 * Fault in up to MEM_PREFAULT_MAX blocks of fresh memory on a helper
 * thread while the caller goes on (MADV_POPULATE_WRITE: the kernel maps
 * and zeroes the pages, no byte of them changes, so the caller may write
 * the blocks meanwhile). The blocks are taken 2 MiB at a time in turn,
 * front first, so a caller filling all of them from the start finds its
 * pages ready. On a VM the zeroing of fresh pages is a third of a bulk
 * load; this moves it to the other core. A hint: without the thread or
 * the madvise nothing happens. Call mem_prefault_wait before freeing.
 */
#define MEM_PREFAULT_MAX 4
struct mem_prefault {
	void *p[MEM_PREFAULT_MAX];
	size_t n[MEM_PREFAULT_MAX];
	unsigned nb;
	int started;
	pthread_t thread;
};
void mem_prefault_start(struct mem_prefault *f, void *const *p,
			const size_t *bytes, unsigned nb);
void mem_prefault_wait(struct mem_prefault *f);

/* Copy n bytes into a new block; NULL on failure. */
void *mem_dup(const void *src, size_t n);

#endif
