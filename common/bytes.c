// SPDX-License-Identifier: MIT
//
// The growable encoding buffer and the bounds-checked reader that the
// storage and saga logs build their little-endian records with.

#include <string.h>

#include "common.h"

void
dtx_buf_put(dtx_buf *b, const void *p, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->cap - b->len < n) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc - b->len < n)
			nc *= 2;
		uint8_t *q = dtx_realloc(b->p, nc);
		if (q == NULL) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
dtx_buf_u8(dtx_buf *b, uint8_t v)
{
	dtx_buf_put(b, &v, 1);
}

// Appends the low n bytes of v, least significant first.
static void
buf_le(dtx_buf *b, uint64_t v, size_t n)
{
	uint8_t x[8];
	dtx_put_le(x, v, n);
	dtx_buf_put(b, x, n);
}

void
dtx_buf_u16(dtx_buf *b, uint16_t v)
{
	buf_le(b, v, 2);
}

void
dtx_buf_u32(dtx_buf *b, uint32_t v)
{
	buf_le(b, v, 4);
}

void
dtx_buf_u64(dtx_buf *b, uint64_t v)
{
	buf_le(b, v, 8);
}

void
dtx_buf_fini(dtx_buf *b)
{
	dtx_free(b->p);
	memset(b, 0, sizeof(*b));
}

const uint8_t *
dtx_rd_bytes(dtx_rd *r, size_t n)
{
	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t
dtx_rd_u8(dtx_rd *r)
{
	const uint8_t *p = dtx_rd_bytes(r, 1);
	return p ? p[0] : 0;
}

// The next n-byte little-endian integer, or 0 past the end.
static uint64_t
rd_le(dtx_rd *r, size_t n)
{
	const uint8_t *p = dtx_rd_bytes(r, n);
	return p ? dtx_get_le(p, n) : 0;
}

uint16_t
dtx_rd_u16(dtx_rd *r)
{
	return (uint16_t)rd_le(r, 2);
}

uint32_t
dtx_rd_u32(dtx_rd *r)
{
	return (uint32_t)rd_le(r, 4);
}

uint64_t
dtx_rd_u64(dtx_rd *r)
{
	return rd_le(r, 8);
}

const uint8_t *
dtx_rd_blob(dtx_rd *r, uint32_t max, uint32_t *len)
{
	uint32_t n = dtx_rd_u32(r);
	if (n > max)
		r->bad = true;
	*len = n;
	return dtx_rd_bytes(r, n);
}
