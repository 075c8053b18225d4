/*
 * varint.h - LEB128-style variable-length unsigned integers (7 bits a byte,
 * high bit = more follows), the byte code of every gap and timestamp in the
 * compressed adjacency.
 *
 * Two decoders: varint_get() trusts its input and is only ever used on
 * bytes that passed varint_get_checked() once (when built in memory or when
 * a snapshot chunk was imported).
 */
#ifndef TRIAD_VARINT_H
#define TRIAD_VARINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define VARINT_MAX32 5 /* bytes of the longest uint32_t */

/* Write v at p; returns bytes written (1..5). p needs VARINT_MAX32 bytes. */
static inline size_t varint_put(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Bytes varint_put would write for v. */
static inline size_t varint_len(uint32_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Unchecked decode: only for bytes already validated. */
static inline const uint8_t *varint_get(const uint8_t *p, uint32_t *v)
{
	uint32_t x = *p++;

	if (x < 0x80) {
		*v = x;
		return p;
	}
	x &= 0x7f;
	for (unsigned shift = 7;; shift += 7) {
		uint32_t b = *p++;

		x |= (b & 0x7f) << shift;
		if (b < 0x80)
			break;
	}
	*v = x;
	return p;
}

/*
 * The value of a varint of at most 5 bytes held in the low bytes of x
 * (little-endian load, bytes above it zero): its 7-bit groups packed.
 */
static inline uint32_t varint_pack(uint64_t x)
{
	return (uint32_t)((x & 0x7f) | ((x >> 1) & 0x3f80) |
			  ((x >> 2) & 0x1fc000) | ((x >> 3) & 0xfe00000) |
			  ((x >> 4) & 0xf0000000));
}

/*
 * Two varints at p from one 8-byte load, without a branch per byte (the
 * bytes with the high bit clear end a varint): their values into *first
 * and *second. p..p+8 must be readable (the caller checks against the
 * list's end). Returns the byte after the second, or NULL when the two do
 * not fit in 8 bytes (decode them one at a time). The ids-only reads of a
 * list use it for an entry's gap and ts code, or a ts code and the next
 * gap; inlined, the value not wanted is never computed.
 */
static inline const uint8_t *varint_get2_8(const uint8_t *p, uint32_t *first,
					   uint32_t *second)
{
	uint64_t x, t, t2;
	unsigned a, b;

	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		return NULL;
	memcpy(&x, p, 8);
	t = ~x & UINT64_C(0x8080808080808080); /* last byte of each */
	t2 = t & (t - 1);
	if (!t2)
		return NULL;
	a = (unsigned)__builtin_ctzll(t) / 8 + 1;  /* bytes of the first, <= 7 */
	b = (unsigned)__builtin_ctzll(t2) / 8 + 1; /* through the second */
	*first = varint_pack(x & ((UINT64_C(1) << (8 * a)) - 1));
	*second = varint_pack((x >> (8 * a)) &
			      ((UINT64_C(1) << (8 * (b - a))) - 1));
	return p + b;
}

/*
 * Four list entries whose gap and ts code are one byte each (gap < 128, ts
 * code < 128: the common case on graphs with locality and few distinct
 * times), from one 8-byte load at p (p..p+8 readable): 1 with the load in
 * *x (gap j is byte 2j), else 0. No branch per entry: the ids-only reads
 * take four entries a step while this holds.
 */
static inline int varint_four_small(const uint8_t *p, uint64_t *x)
{
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__)
		return 0;
	memcpy(x, p, 8);
	return !(*x & UINT64_C(0x8080808080808080));
}

/* Gap j (0..3) of a load varint_four_small accepted. */
static inline uint32_t varint_four_gap(uint64_t x, unsigned j)
{
	return (uint32_t)(x >> (16 * j)) & 0xff;
}

/* The first of two varints (an entry's gap; its ts code skipped). */
static inline const uint8_t *varint_get_skip8(const uint8_t *p, uint32_t *v)
{
	uint32_t skip;

	return varint_get2_8(p, v, &skip);
}

/* The second of two varints (a ts code skipped, then the next gap). */
static inline const uint8_t *varint_skip_get8(const uint8_t *p, uint32_t *v)
{
	uint32_t skip;

	return varint_get2_8(p, &skip, v);
}

/*
 * Checked decode from [p, end): NULL when the bytes run out, the value
 * needs more than 32 bits, or the encoding is not minimal-length-bounded.
 */
static inline const uint8_t *varint_get_checked(const uint8_t *p,
						const uint8_t *end,
						uint32_t *v)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < VARINT_MAX32; i++) {
		if (p >= end)
			return NULL;
		uint64_t b = *p++;
		x |= (b & 0x7f) << (7 * i);
		if (b < 0x80) {
			if (x > UINT32_MAX)
				return NULL;
			*v = (uint32_t)x;
			return p;
		}
	}
	return NULL;
}

#endif
