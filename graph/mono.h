/*
 * mono.h - the monotonic clock (CLOCK_MONOTONIC), in the unit each caller
 * counts in: deadlines in ns, intervals in us or ms, progress in seconds.
 * One definition for every module, rather than one helper in each.
 */
#ifndef TRIAD_MONO_H
#define TRIAD_MONO_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline uint64_t mono_us(void)
{
	return mono_ns() / 1000u;
}

static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000u;
}

static inline double mono_s(void)
{
	return (double)mono_ns() / 1e9;
}

#endif
