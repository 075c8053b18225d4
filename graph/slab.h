/*
 * slab.h - the graph writer's allocator for delta buffers and merged base
 * lists: size classes carved from 2 MiB chunks (from malloc, hinted for
 * huge pages), with a free list per class.
 *
 * What always holds:
 * - One owner thread (the graph's writer) calls everything here; nothing
 *   is locked. Readers only read blocks, and the writer frees a block only
 *   after RCU says no reader can see it, so frees stay on the owner thread.
 * - A block is freed with the size it was allocated with; its real size is
 *   slab_block_size(n) (what a caller may use, and what it costs).
 * - Blocks above SLAB_MAX bytes come from malloc (few: long lists).
 *
 * Why not malloc for each block: an ingest stream allocates and frees
 * blocks of a few dozen bytes at millions a second; malloc and free were a
 * fifth of the writer's time. Here a block carries no header, costs a
 * pointer pop or push, and sits with the others in 2 MiB chunks.
 * (Chunks from malloc rather than fresh 2 MiB-aligned mappings: the heap
 * hands back memory it already has, and first touches of fresh pages cost
 * more on this VM than the TLB misses they save.)
 *
 * Free blocks stay in their class: after a burst in which every vertex's
 * delta grew through the small classes, those classes hold free blocks
 * until deltas start small again (after merges).
 */
#ifndef TRIAD_SLAB_H
#define TRIAD_SLAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SLAB_MAX 8192u          /* largest block from a size class */
#define SLAB_CHUNK (2u << 20)   /* bytes per chunk */
#define SLAB_CLASSES 80u

struct slab {
	void *free[SLAB_CLASSES]; /* per class: freed blocks, linked */
	uint8_t *cur, *end;       /* bump region of the newest chunk */
	void **chunks;            /* every chunk, for slab_release */
	size_t nchunks, chunks_cap;
	_Atomic uint64_t used;    /* bytes in live blocks (any thread) */
	_Atomic uint64_t held;    /* bytes of chunks and large blocks */
};

/* An empty allocator (no memory yet). O(1). */
void slab_init(struct slab *s);

/* Free every chunk. Large blocks still live are the caller's to free
 * first (slab_free); small ones go with their chunks. O(chunks). */
void slab_release(struct slab *s);

/* The size of the block that an n-byte request gets: n rounded up to its
 * class, or n itself above SLAB_MAX. O(1). */
size_t slab_block_size(size_t n);

/* A block of at least n bytes (slab_block_size(n) usable), 16-byte
 * aligned, not zeroed; NULL when out of memory. O(1). */
void *slab_alloc(struct slab *s, size_t n);

/* Give back a block of slab_alloc(s, n). NULL is fine. O(1). */
void slab_free(struct slab *s, void *p, size_t n);

#endif
