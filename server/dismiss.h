/*
 * dismiss.h - the in-memory set of dismissed (member, candidate) pairs that
 * GET /recommend filters against (durability is store.h's job).
 *
 * What always holds: lookups from any number of threads run beside rare
 * inserts (a reader-writer lock; a set that never had an insert answers
 * without taking it). Open addressing, load factor <= 1/2.
 */
#ifndef TRIAD_DISMISS_H
#define TRIAD_DISMISS_H

#include <stdint.h>

struct dismiss_set;

/* A new empty set; NULL when out of memory. */
struct dismiss_set *dismiss_new(void);
void dismiss_free(struct dismiss_set *d); /* NULL ok */

/* Add a pair (no-op when present). 0 or -1 (out of memory). O(1) amortised. */
int dismiss_add(struct dismiss_set *d, uint64_t member, uint64_t candidate);

/* 1 when the pair was added, else 0. O(1) expected. */
int dismiss_has(struct dismiss_set *d, uint64_t member, uint64_t candidate);

/* Pairs held. */
uint64_t dismiss_count(struct dismiss_set *d);

#endif
