/*
 * slab.c - size-class allocator for the graph writer (see slab.h).
 *
 * Classes: 16-byte steps up to 512 bytes, 64-byte steps up to 2 KiB,
 * 256-byte steps up to SLAB_MAX: at most 16, 63 or 255 bytes of a block go
 * unused, about what malloc's header and rounding cost.
 */
#include "slab.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

/*
 * Under AddressSanitizer a free block and the unused rest of a chunk are
 * poisoned (all of a free block but its free-list link), so a reader that
 * touched a block after its grace period, or a write past a block, is
 * reported as it would be with malloc.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define poison(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define poison(p, n) ((void)(p), (void)(n))
#define unpoison(p, n) ((void)(p), (void)(n))
#endif

static unsigned slab_class(size_t n)
{
	if (n <= 512)
		return n ? (unsigned)((n - 1) / 16) : 0;        /* 0..31 */
	if (n <= 2048)
		return 32 + (unsigned)((n - 513) / 64);         /* 32..55 */
	return 56 + (unsigned)((n - 2049) / 256);               /* 56..79 */
}

static size_t class_size(unsigned c)
{
	if (c < 32)
		return (size_t)(c + 1) * 16;
	if (c < 56)
		return 512 + (size_t)(c - 31) * 64;
	return 2048 + (size_t)(c - 55) * 256;
}

_Static_assert(SLAB_CLASSES == 80, "classes cover 1..SLAB_MAX");

void slab_init(struct slab *s)
{
	memset(s, 0, sizeof(*s));
	atomic_init(&s->used, 0);
	atomic_init(&s->held, 0);
}

void slab_release(struct slab *s)
{
	for (size_t i = 0; i < s->nchunks; i++) {
		unpoison(s->chunks[i], SLAB_CHUNK);
		free(s->chunks[i]);
	}
	free(s->chunks);
	slab_init(s);
}

size_t slab_block_size(size_t n)
{
	return n > SLAB_MAX ? n : class_size(slab_class(n));
}

/* Only the owner thread writes the counters: a load and a store, no
 * read-modify-write. */
static void count(_Atomic uint64_t *c, int64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) +
				      (uint64_t)d,
			      memory_order_relaxed);
}

static int slab_grow(struct slab *s)
{
	void *np = s->chunks, *c;

	if (mem_grow(&np, &s->chunks_cap, s->nchunks + 1, sizeof(void *)))
		return -1;
	s->chunks = np;
	c = mem_alloc(1, SLAB_CHUNK);
	if (!c)
		return -1;
	mem_hint_huge(c, SLAB_CHUNK);
	s->chunks[s->nchunks++] = c;
	poison(c, SLAB_CHUNK);
	s->cur = c;
	s->end = s->cur + SLAB_CHUNK;
	count(&s->held, SLAB_CHUNK);
	return 0;
}

void *slab_alloc(struct slab *s, size_t n)
{
	unsigned c;
	size_t sz;
	void *p;

	if (n > SLAB_MAX) {
		p = mem_alloc(1, n);
		if (p) {
			count(&s->used, (int64_t)n);
			count(&s->held, (int64_t)n);
		}
		return p;
	}
	c = slab_class(n);
	sz = class_size(c);
	p = s->free[c];
	if (p) {
		unpoison(p, sz);
		memcpy(&s->free[c], p, sizeof(void *));
		/* a freed block is cold: bring in the next one's link now,
		 * not when the next allocation of this class waits for it */
		if (s->free[c])
			__builtin_prefetch(s->free[c]);
	} else {
		if ((size_t)(s->end - s->cur) < sz && slab_grow(s))
			return NULL;
		p = s->cur;
		s->cur += sz;
		unpoison(p, sz);
	}
	count(&s->used, (int64_t)sz);
	return p;
}

void slab_free(struct slab *s, void *p, size_t n)
{
	unsigned c;

	if (!p)
		return;
	if (n > SLAB_MAX) {
		free(p);
		count(&s->used, -(int64_t)n);
		count(&s->held, -(int64_t)n);
		return;
	}
	c = slab_class(n);
	memcpy(p, &s->free[c], sizeof(void *));
	s->free[c] = p;
	poison((uint8_t *)p + sizeof(void *), class_size(c) - sizeof(void *));
	count(&s->used, -(int64_t)class_size(c));
}
