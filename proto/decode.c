// SPDX-License-Identifier: MIT
//
// The strict decoder: reads msgpack bytes with a bounds-checked cursor (no
// intermediate object tree, so a hostile count cannot make it allocate
// more than the bytes present justify), checks every key, type, range and
// count, and builds a proto_msg that owns its memory.

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include "wire_int.h"

typedef proto__rd rd;
typedef proto__flds flds;

// Records the reason of the first error in r->why (see PROTO__BAD).
__attribute__((format(printf, 2, 3))) void
proto__note(rd *r, const char *fmt, ...)
{
	if (r->why != NULL && r->why_len > 0 && r->why[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->why, r->why_len, fmt, ap);
		va_end(ap);
	}
}

#define TRUNCATED(r) PROTO__BAD((r), "%s: truncated", (r)->ctx)

static size_t
left(const rd *r)
{
	return (size_t)(r->end - r->p);
}

// A name for the msgpack type starting with byte b, for error messages.
static const char *
kind_name(uint8_t b)
{
	if (b <= 0x7f || (b >= 0xcc && b <= 0xd3) || b >= 0xe0)
		return "int";
	if (b <= 0x8f || b == 0xde || b == 0xdf)
		return "map";
	if (b <= 0x9f || b == 0xdc || b == 0xdd)
		return "array";
	if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb))
		return "str";
	switch (b) {
	case 0xc0:
		return "nil";
	case 0xc2:
	case 0xc3:
		return "bool";
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return "bin";
	case 0xca:
	case 0xcb:
		return "float";
	case 0xc1:
		return "reserved byte 0xc1";
	default:
		return "ext";
	}
}

// Reads an n-byte big-endian integer.
static dtx_err
be(rd *r, size_t n, uint64_t *out)
{
	if (left(r) < n)
		return TRUNCATED(r);
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | r->p[i];
	r->p += n;
	*out = v;
	return DTX_OK;
}

// An integer of any msgpack encoding; *neg tells whether it is negative
// (then *s holds it), otherwise *u does.
static dtx_err
rd_integer(rd *r, const char *k, bool *neg, uint64_t *u, int64_t *s)
{
	if (left(r) < 1)
		return TRUNCATED(r);
	uint8_t b = *r->p;
	uint64_t v = 0;
	if (b <= 0x7f) {
		r->p++;
		*neg = false;
		*u = b;
		return DTX_OK;
	}
	if (b >= 0xe0) {
		r->p++;
		*neg = true;
		*s = (int8_t)b;
		return DTX_OK;
	}
	if (b >= 0xcc && b <= 0xcf) {
		r->p++;
		PROTO__TRY(be(r, (size_t)1 << (b - 0xcc), &v));
		*neg = false;
		*u = v;
		return DTX_OK;
	}
	if (b >= 0xd0 && b <= 0xd3) {
		r->p++;
		size_t n = (size_t)1 << (b - 0xd0);
		PROTO__TRY(be(r, n, &v));
		int64_t x;
		if (n == 8) {
			memcpy(&x, &v, sizeof(x));
		} else {
			// Sign-extend from n bytes.
			uint64_t sign = UINT64_C(1) << (n * 8 - 1);
			x = (int64_t)((v ^ sign) - sign);
		}
		*neg = x < 0;
		if (x < 0)
			*s = x;
		else
			*u = (uint64_t)x;
		return DTX_OK;
	}
	return PROTO__BAD(
	    r, "%s: key '%s': expected int, got %s", r->ctx, k, kind_name(b));
}

dtx_err
proto__rd_uint(rd *r, const char *k, uint64_t max, uint64_t *out)
{
	bool neg;
	uint64_t u = 0;
	int64_t s = 0;
	PROTO__TRY(rd_integer(r, k, &neg, &u, &s));
	if (neg)
		return PROTO__BAD(r,
		    "%s: key '%s': value %" PRId64 " is negative", r->ctx, k,
		    s);
	if (u > max)
		return PROTO__BAD(r,
		    "%s: key '%s': value %" PRIu64 " out of range (max %" PRIu64
		    ")",
		    r->ctx, k, u, max);
	*out = u;
	return DTX_OK;
}

dtx_err
proto__rd_int(rd *r, const char *k, int64_t min, int64_t max, int64_t *out)
{
	bool neg;
	uint64_t u = 0;
	int64_t s = 0;
	PROTO__TRY(rd_integer(r, k, &neg, &u, &s));
	if (!neg) {
		if (u > (uint64_t)INT64_MAX)
			return PROTO__BAD(r,
			    "%s: key '%s': value %" PRIu64 " out of range",
			    r->ctx, k, u);
		s = (int64_t)u;
	}
	if (s < min || s > max)
		return PROTO__BAD(r,
		    "%s: key '%s': value %" PRId64 " out of range [%" PRId64
		    ", %" PRId64 "]",
		    r->ctx, k, s, min, max);
	*out = s;
	return DTX_OK;
}

dtx_err
proto__rd_bool(rd *r, const char *k, bool *out)
{
	if (left(r) < 1)
		return TRUNCATED(r);
	uint8_t b = *r->p;
	if (b != 0xc2 && b != 0xc3)
		return PROTO__BAD(r, "%s: key '%s': expected bool, got %s",
		    r->ctx, k, kind_name(b));
	r->p++;
	*out = b == 0xc3;
	return DTX_OK;
}

// A str or bin header; the payload is checked to be present.
static dtx_err
rd_raw(rd *r, const char *k, bool want_str, const uint8_t **p, uint32_t *n)
{
	if (left(r) < 1)
		return TRUNCATED(r);
	uint8_t b = *r->p;
	uint64_t len = 0;
	if (want_str && b >= 0xa0 && b <= 0xbf) {
		r->p++;
		len = b & 0x1f;
	} else if (want_str && b >= 0xd9 && b <= 0xdb) {
		r->p++;
		PROTO__TRY(be(r, (size_t)1 << (b - 0xd9), &len));
	} else if (!want_str && b >= 0xc4 && b <= 0xc6) {
		r->p++;
		PROTO__TRY(be(r, (size_t)1 << (b - 0xc4), &len));
	} else {
		return PROTO__BAD(r, "%s: key '%s': expected %s, got %s",
		    r->ctx, k, want_str ? "str" : "bin", kind_name(b));
	}
	if (len > left(r))
		return TRUNCATED(r);
	*p = r->p;
	*n = (uint32_t)len;
	r->p += len;
	return DTX_OK;
}

// An array or map header; the count is checked against the bytes left
// (every element takes at least one byte, every map entry two).
dtx_err
proto__rd_container(rd *r, const char *k, bool want_map, uint32_t *n)
{
	if (left(r) < 1)
		return TRUNCATED(r);
	uint8_t b = *r->p;
	uint64_t c = 0;
	if (want_map && b >= 0x80 && b <= 0x8f) {
		r->p++;
		c = b & 0x0f;
	} else if (!want_map && b >= 0x90 && b <= 0x9f) {
		r->p++;
		c = b & 0x0f;
	} else if ((want_map && (b == 0xde || b == 0xdf)) ||
	    (!want_map && (b == 0xdc || b == 0xdd))) {
		r->p++;
		PROTO__TRY(be(r, (b & 1) ? 4 : 2, &c));
	} else {
		return PROTO__BAD(r, "%s: key '%s': expected %s, got %s",
		    r->ctx, k, want_map ? "map" : "array", kind_name(b));
	}
	if (c * (want_map ? 2 : 1) > left(r))
		return TRUNCATED(r);
	*n = (uint32_t)c;
	return DTX_OK;
}

// Skips one value of any type, nested at most PROTO_MAX_DEPTH deep.
static dtx_err
rd_skip(rd *r, int depth)
{
	if (depth > PROTO_MAX_DEPTH)
		return PROTO__BAD(
		    r, "%s: nested deeper than %d", r->ctx, PROTO_MAX_DEPTH);
	if (left(r) < 1)
		return TRUNCATED(r);
	uint8_t b = *r->p;
	uint64_t n = 0;
	if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
		r->p++;
		return DTX_OK;
	}
	if (b <= 0x9f || (b >= 0xdc && b <= 0xdf)) {
		bool map = b <= 0x8f || b == 0xde || b == 0xdf;
		uint32_t c;
		PROTO__TRY(proto__rd_container(r, "?", map, &c));
		uint64_t items = (uint64_t)c * (map ? 2 : 1);
		for (uint64_t i = 0; i < items; i++)
			PROTO__TRY(rd_skip(r, depth + 1));
		return DTX_OK;
	}
	if (b <= 0xbf) {
		r->p++;
		n = b & 0x1f;
	} else if (b == 0xc1) {
		return PROTO__BAD(r, "%s: reserved byte 0xc1", r->ctx);
	} else if (b >= 0xc4 && b <= 0xc6) {
		r->p++;
		PROTO__TRY(be(r, (size_t)1 << (b - 0xc4), &n));
	} else if (b >= 0xc7 && b <= 0xc9) { // ext 8/16/32: len, type, data
		r->p++;
		PROTO__TRY(be(r, (size_t)1 << (b - 0xc7), &n));
		n += 1;
	} else if (b == 0xca || b == 0xcb) {
		r->p++;
		n = b == 0xca ? 4 : 8;
	} else if (b >= 0xcc && b <= 0xd3) {
		r->p++;
		n = (size_t)1 << ((b - 0xcc) & 3);
	} else if (b >= 0xd4 && b <= 0xd8) { // fixext: type + 1..16 bytes
		r->p++;
		n = 1 + ((size_t)1 << (b - 0xd4));
	} else { // str 8/16/32
		r->p++;
		PROTO__TRY(be(r, (size_t)1 << (b - 0xd9), &n));
	}
	if (n > left(r))
		return TRUNCATED(r);
	r->p += n;
	return DTX_OK;
}

// ---------------------------------------------------------------- fields

typedef proto__fld fld;

// Reads a map of str keys, recording where each value starts and
// skipping it: rejects duplicate keys and more than PROTO_MAX_FIELDS.
dtx_err
proto__rd_fields(rd *r, const char *k, int depth, flds *fs)
{
	uint32_t n;
	PROTO__TRY(proto__rd_container(r, k, true, &n));
	if (n > PROTO_MAX_FIELDS)
		return PROTO__BAD(r, "%s: %u keys, more than the limit of %d",
		    r->ctx, n, PROTO_MAX_FIELDS);
	fs->n = 0;
	for (uint32_t i = 0; i < n; i++) {
		fld *f = &fs->f[i];
		if (left(r) < 1)
			return TRUNCATED(r);
		uint8_t b = *r->p;
		if (!((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)))
			return PROTO__BAD(r, "%s: map key is %s, not str",
			    r->ctx, kind_name(b));
		PROTO__TRY(rd_raw(r, "?", true, &f->k, &f->kn));
		if (f->kn > PROTO_MAX_KEY)
			return PROTO__BAD(r, "%s: map key longer than %d bytes",
			    r->ctx, PROTO_MAX_KEY);
		for (uint32_t j = 0; j < i; j++)
			if (fs->f[j].kn == f->kn &&
			    memcmp(fs->f[j].k, f->k, f->kn) == 0)
				return PROTO__BAD(r, "%s: duplicate key '%.*s'",
				    r->ctx, (int)f->kn, (const char *)f->k);
		f->v = r->p;
		f->used = false;
		fs->n = i + 1;
		PROTO__TRY(rd_skip(r, depth + 1));
	}
	return DTX_OK;
}

// Positions s at the value of key k, or returns false when absent.
bool
proto__take(const rd *r, flds *fs, const char *k, rd *s)
{
	size_t kn = strlen(k);
	for (uint32_t i = 0; i < fs->n; i++) {
		fld *f = &fs->f[i];
		if (f->kn == kn && memcmp(f->k, k, kn) == 0) {
			f->used = true;
			*s = *r;
			s->p = f->v;
			return true;
		}
	}
	return false;
}

dtx_err
proto__need(rd *r, flds *fs, const char *k, rd *s)
{
	if (!proto__take(r, fs, k, s))
		return PROTO__BAD(r, "%s: missing key '%s'", r->ctx, k);
	return DTX_OK;
}

// Every key must have been taken: anything left is unknown.
dtx_err
proto__done(rd *r, const flds *fs)
{
	for (uint32_t i = 0; i < fs->n; i++) {
		const fld *f = &fs->f[i];
		if (!f->used) {
			int n = f->kn > 32 ? 32 : (int)f->kn;
			char safe[33];
			for (int j = 0; j < n; j++)
				safe[j] = (f->k[j] >= 0x20 && f->k[j] < 0x7f)
				    ? (char)f->k[j]
				    : '?';
			safe[n] = '\0';
			return PROTO__BAD(
			    r, "%s: unknown key '%s'", r->ctx, safe);
		}
	}
	return DTX_OK;
}

dtx_err
proto__f_uint(rd *r, flds *fs, const char *k, uint64_t max, uint64_t *out)
{
	rd s;
	PROTO__TRY(proto__need(r, fs, k, &s));
	return proto__rd_uint(&s, k, max, out);
}

dtx_err
proto__f_u32(rd *r, flds *fs, const char *k, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	PROTO__TRY(proto__f_uint(r, fs, k, max, &v));
	*out = (uint32_t)v;
	return DTX_OK;
}

dtx_err
proto__f_int(rd *r, flds *fs, const char *k, int64_t *out)
{
	rd s;
	PROTO__TRY(proto__need(r, fs, k, &s));
	return proto__rd_int(&s, k, INT64_MIN, INT64_MAX, out);
}

dtx_err
proto__f_bool(rd *r, flds *fs, const char *k, bool *out)
{
	rd s;
	PROTO__TRY(proto__need(r, fs, k, &s));
	return proto__rd_bool(&s, k, out);
}

dtx_err
proto__rd_ts(rd *r, const char *k, clk_ts *out)
{
	uint32_t n;
	PROTO__TRY(proto__rd_container(r, k, false, &n));
	if (n != 2)
		return PROTO__BAD(r,
		    "%s: key '%s': timestamp must be [l, c], got %u "
		    "elements",
		    r->ctx, k, n);
	msgpack_object el[2];
	for (int i = 0; i < 2; i++) {
		uint64_t v;
		PROTO__TRY(proto__rd_uint(r, k, UINT64_MAX, &v));
		el[i].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		el[i].via.u64 = v;
	}
	msgpack_object o;
	o.type = MSGPACK_OBJECT_ARRAY;
	o.via.array.size = 2;
	o.via.array.ptr = el;
	if (clk_ts_unpack(&o, out) != DTX_OK)
		return PROTO__BAD(
		    r, "%s: key '%s': timestamp out of range", r->ctx, k);
	return DTX_OK;
}

dtx_err
proto__f_ts(rd *r, flds *fs, const char *k, clk_ts *out)
{
	rd s;
	PROTO__TRY(proto__need(r, fs, k, &s));
	return proto__rd_ts(&s, k, out);
}

static dtx_err
rd_vc(rd *r, clk_vc *out)
{
	uint32_t n;
	PROTO__TRY(proto__rd_container(r, "vc", true, &n));
	if (n > r->vc_nodes)
		return PROTO__BAD(r, "%s: key 'vc': %u entries for %u nodes",
		    r->ctx, n, r->vc_nodes);
	msgpack_object_kv kv[CLK_VC_MAX];
	for (uint32_t i = 0; i < n; i++) {
		uint64_t node, c;
		PROTO__TRY(proto__rd_uint(r, "vc", UINT64_MAX, &node));
		PROTO__TRY(proto__rd_uint(r, "vc", UINT64_MAX, &c));
		kv[i].key.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		kv[i].key.via.u64 = node;
		kv[i].val.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		kv[i].val.via.u64 = c;
	}
	msgpack_object o;
	o.type = MSGPACK_OBJECT_MAP;
	o.via.map.size = n;
	o.via.map.ptr = kv;
	if (clk_vc_unpack(&o, r->vc_nodes, out) != DTX_OK)
		return PROTO__BAD(r,
		    "%s: key 'vc': node id not below %u or given twice", r->ctx,
		    r->vc_nodes);
	return DTX_OK;
}

dtx_err
proto__rd_vc(proto__rd *r, clk_vc *out)
{
	return rd_vc(r, out);
}

bool
proto__has(const proto__flds *fs, const char *k)
{
	size_t kn = strlen(k);
	for (uint32_t i = 0; i < fs->n; i++)
		if (!fs->f[i].used && fs->f[i].kn == kn &&
		    memcmp(fs->f[i].k, k, kn) == 0)
			return true;
	return false;
}

// A str into an owned C string (min..PROTO_MAX_STR bytes, no NUL inside).
dtx_err
proto__rd_cstr(rd *r, const char *k, uint32_t min, char **out)
{
	const uint8_t *p;
	uint32_t n;
	PROTO__TRY(rd_raw(r, k, true, &p, &n));
	if (n < min || n > PROTO_MAX_STR)
		return PROTO__BAD(r,
		    "%s: key '%s': str of %u bytes, allowed %u..%d", r->ctx, k,
		    n, min, PROTO_MAX_STR);
	if (memchr(p, 0, n) != NULL)
		return PROTO__BAD(
		    r, "%s: key '%s': str holds a NUL byte", r->ctx, k);
	char *c = dtx_alloc((size_t)n + 1);
	if (c == NULL)
		return PROTO__OOM(r);
	memcpy(c, p, n);
	c[n] = '\0';
	*out = c;
	return DTX_OK;
}

dtx_err
proto__f_str(
    rd *r, flds *fs, const char *k, bool required, uint32_t min, char **out)
{
	rd s;
	if (!proto__take(r, fs, k, &s)) {
		if (required)
			return PROTO__BAD(r, "%s: missing key '%s'", r->ctx, k);
		return DTX_OK;
	}
	return proto__rd_cstr(&s, k, min, out);
}

dtx_err
proto__rd_bytes(
    rd *r, const char *k, uint32_t min, uint32_t max, proto_bytes *out)
{
	const uint8_t *p;
	uint32_t n;
	PROTO__TRY(rd_raw(r, k, false, &p, &n));
	if (n < min || n > max)
		return PROTO__BAD(r,
		    "%s: key '%s': bin of %u bytes, allowed %u..%u", r->ctx, k,
		    n, min, max);
	uint8_t *c = dtx_alloc(n);
	if (c == NULL)
		return PROTO__OOM(r);
	if (n > 0)
		memcpy(c, p, n);
	out->p = c;
	out->n = n;
	return DTX_OK;
}

dtx_err
proto__f_bytes(rd *r, flds *fs, const char *k, uint32_t min, uint32_t max,
    proto_bytes *out)
{
	rd s;
	PROTO__TRY(proto__need(r, fs, k, &s));
	return proto__rd_bytes(&s, k, min, max, out);
}

// Positions s on the array under key k and checks its count.
dtx_err
proto__f_array(rd *r, flds *fs, const char *k, uint32_t min, uint32_t max,
    rd *s, uint32_t *n)
{
	PROTO__TRY(proto__need(r, fs, k, s));
	PROTO__TRY(proto__rd_container(s, k, false, n));
	if (*n < min || *n > max)
		return PROTO__BAD(r,
		    "%s: key '%s': %u elements, allowed %u..%u", r->ctx, k, *n,
		    min, max);
	return DTX_OK;
}

// f_array, then allocates the zeroed array for its elements: *arrp (a
// T ** passed as void *, T of size bytes) gets it and *count its number
// of elements, both only on success, so that a message freed after an
// error never holds a count without its array. The caller decodes the
// elements from s. F_ARRAY_NEW takes the array and count by name.
dtx_err
proto__f_array_new(rd *r, flds *fs, const char *k, uint32_t min, uint32_t max,
    rd *s, void *arrp, size_t size, uint32_t *count)
{
	uint32_t n;
	PROTO__TRY(proto__f_array(r, fs, k, min, max, s, &n));
	void *a = dtx_calloc(n, size);
	if (a == NULL)
		return PROTO__OOM(r);
	memcpy(arrp, &a, sizeof(a));
	*count = n;
	return DTX_OK;
}

dtx_err
proto__dec_msg(rd *r, int depth, bool nested, proto_msg *m)
{
	flds fs;
	rd s;
	uint64_t v = 0;
	r->ctx = "message";
	PROTO__TRY(
	    proto__rd_fields(r, nested ? "msgs" : "message", depth, &fs));
	PROTO__TRY(proto__f_uint(r, &fs, "v", UINT32_MAX, &v));
	if (v != PROTO_VERSION)
		return PROTO__BAD(r,
		    "message: unsupported version %" PRIu64
		    " (this side speaks %d)",
		    v, PROTO_VERSION);
	m->hdr.version = (uint32_t)v;
	const uint8_t *tp;
	uint32_t tn;
	PROTO__TRY(proto__need(r, &fs, "t", &s));
	PROTO__TRY(rd_raw(&s, "t", true, &tp, &tn));
	proto_type t = proto__type_lookup((const char *)tp, tn);
	if (t == PROTO_NONE) {
		int n = tn > 32 ? 32 : (int)tn;
		char safe[33];
		for (int j = 0; j < n; j++)
			safe[j] =
			    (tp[j] >= 0x20 && tp[j] < 0x7f) ? (char)tp[j] : '?';
		safe[n] = '\0';
		return PROTO__BAD(r, "message: unknown type '%s'", safe);
	}
	if (nested && t == PROTO_BATCH)
		return PROTO__BAD(r, "batch: a batch inside a batch");
	m->hdr.type = t;
	PROTO__TRY(proto__f_uint(r, &fs, "id", UINT64_MAX, &m->hdr.id));
	PROTO__TRY(proto__f_u32(r, &fs, "from", UINT32_MAX, &m->hdr.from));
	PROTO__TRY(proto__f_ts(r, &fs, "hlc", &m->hdr.hlc));
	PROTO__TRY(proto__need(r, &fs, "vc", &s));
	PROTO__TRY(rd_vc(&s, &m->hdr.vc));
	r->ctx = proto_type_name(t);
	const uint8_t *after = r->p;
	const proto__body *b = proto__body_of(t);
	if (b->dec != NULL)
		PROTO__TRY(b->dec(r, &fs, depth, m));
	PROTO__TRY(proto__done(r, &fs));
	r->p = after;
	return DTX_OK;
}

dtx_err
proto_decode(const void *buf, size_t len, const proto_limits *lim,
    proto_msg *out, char *why, size_t why_len)
{
	proto_limits l;
	proto__limits(lim, &l);
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	rd r = { .p = buf,
		.end = (const uint8_t *)buf + len,
		.why = why,
		.why_len = why_len,
		.ctx = "message",
		.vc_nodes = l.vc_nodes };
	if (buf == NULL && len > 0)
		return DTX_EINVAL;
	if (len > l.max_msg)
		return PROTO__BAD(&r,
		    "message of %zu bytes over the limit of %zu", len,
		    l.max_msg);
	if (len == 0)
		return PROTO__BAD(&r, "empty message");
	proto_msg m;
	memset(&m, 0, sizeof(m));
	dtx_err err = proto__dec_msg(&r, 1, false, &m);
	if (err == DTX_OK && r.p != r.end)
		err = PROTO__BAD(&r, "%zu trailing bytes after the message",
		    (size_t)(r.end - r.p));
	if (err != DTX_OK) {
		proto_msg_free(&m);
		memset(out, 0, sizeof(*out));
		return err;
	}
	*out = m;
	return DTX_OK;
}
