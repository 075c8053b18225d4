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

/* Copy n bytes into a new block; NULL on failure. */
void *mem_dup(const void *src, size_t n);

#endif
