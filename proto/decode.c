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

// A cursor over [p, end). why/why_len receive the first error's reason;
// ctx names the map being decoded ("prepare", "op") for messages.
typedef struct rd {
	const uint8_t *p, *end;
	char *why;
	size_t why_len;
	const char *ctx;
	uint32_t vc_nodes;
} rd;

// Records the reason of the first error in r->why. The error paths return
// through BAD and OOM below, whose values the compiler sees at every
// return: from a helper that returned the code itself it could not tell
// that a failed read never wrote its outputs, and a release build warned
// of outputs that might be used uninitialised.
__attribute__((format(printf, 2, 3))) static void
note(rd *r, const char *fmt, ...)
{
	if (r->why != NULL && r->why_len > 0 && r->why[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->why, r->why_len, fmt, ap);
		va_end(ap);
	}
}

// Notes the reason and evaluates to DTX_EPROTO / DTX_ENOMEM.
#define BAD(r, ...) (note((r), __VA_ARGS__), DTX_EPROTO)
#define OOM(r) (note((r), "out of memory"), DTX_ENOMEM)
#define TRUNCATED(r) BAD((r), "%s: truncated", (r)->ctx)

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
	return BAD(
	    r, "%s: key '%s': expected int, got %s", r->ctx, k, kind_name(b));
}

static dtx_err
rd_uint(rd *r, const char *k, uint64_t max, uint64_t *out)
{
	bool neg;
	uint64_t u = 0;
	int64_t s = 0;
	PROTO__TRY(rd_integer(r, k, &neg, &u, &s));
	if (neg)
		return BAD(r, "%s: key '%s': value %" PRId64 " is negative",
		    r->ctx, k, s);
	if (u > max)
		return BAD(r,
		    "%s: key '%s': value %" PRIu64 " out of range (max %" PRIu64
		    ")",
		    r->ctx, k, u, max);
	*out = u;
	return DTX_OK;
}

static dtx_err
rd_int(rd *r, const char *k, int64_t min, int64_t max, int64_t *out)
{
	bool neg;
	uint64_t u = 0;
	int64_t s = 0;
	PROTO__TRY(rd_integer(r, k, &neg, &u, &s));
	if (!neg) {
		if (u > (uint64_t)INT64_MAX)
			return BAD(r,
			    "%s: key '%s': value %" PRIu64 " out of range",
			    r->ctx, k, u);
		s = (int64_t)u;
	}
	if (s < min || s > max)
		return BAD(r,
		    "%s: key '%s': value %" PRId64 " out of range [%" PRId64
		    ", %" PRId64 "]",
		    r->ctx, k, s, min, max);
	*out = s;
	return DTX_OK;
}

static dtx_err
rd_bool(rd *r, const char *k, bool *out)
{
	if (left(r) < 1)
		return TRUNCATED(r);
	uint8_t b = *r->p;
	if (b != 0xc2 && b != 0xc3)
		return BAD(r, "%s: key '%s': expected bool, got %s", r->ctx, k,
		    kind_name(b));
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
		return BAD(r, "%s: key '%s': expected %s, got %s", r->ctx, k,
		    want_str ? "str" : "bin", kind_name(b));
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
static dtx_err
rd_container(rd *r, const char *k, bool want_map, uint32_t *n)
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
		return BAD(r, "%s: key '%s': expected %s, got %s", r->ctx, k,
		    want_map ? "map" : "array", kind_name(b));
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
		return BAD(
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
		PROTO__TRY(rd_container(r, "?", map, &c));
		uint64_t items = (uint64_t)c * (map ? 2 : 1);
		for (uint64_t i = 0; i < items; i++)
			PROTO__TRY(rd_skip(r, depth + 1));
		return DTX_OK;
	}
	if (b <= 0xbf) {
		r->p++;
		n = b & 0x1f;
	} else if (b == 0xc1) {
		return BAD(r, "%s: reserved byte 0xc1", r->ctx);
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

typedef struct fld {
	const uint8_t *k;
	uint32_t kn;
	const uint8_t *v;
	bool used;
} fld;

typedef struct flds {
	fld f[PROTO_MAX_FIELDS];
	uint32_t n;
} flds;

// Reads a map of str keys, recording where each value starts and
// skipping it: rejects duplicate keys and more than PROTO_MAX_FIELDS.
static dtx_err
rd_fields(rd *r, const char *k, int depth, flds *fs)
{
	uint32_t n;
	PROTO__TRY(rd_container(r, k, true, &n));
	if (n > PROTO_MAX_FIELDS)
		return BAD(r, "%s: %u keys, more than the limit of %d", r->ctx,
		    n, PROTO_MAX_FIELDS);
	fs->n = 0;
	for (uint32_t i = 0; i < n; i++) {
		fld *f = &fs->f[i];
		if (left(r) < 1)
			return TRUNCATED(r);
		uint8_t b = *r->p;
		if (!((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)))
			return BAD(r, "%s: map key is %s, not str", r->ctx,
			    kind_name(b));
		PROTO__TRY(rd_raw(r, "?", true, &f->k, &f->kn));
		if (f->kn > PROTO_MAX_KEY)
			return BAD(r, "%s: map key longer than %d bytes",
			    r->ctx, PROTO_MAX_KEY);
		for (uint32_t j = 0; j < i; j++)
			if (fs->f[j].kn == f->kn &&
			    memcmp(fs->f[j].k, f->k, f->kn) == 0)
				return BAD(r, "%s: duplicate key '%.*s'",
				    r->ctx, (int)f->kn, (const char *)f->k);
		f->v = r->p;
		f->used = false;
		fs->n = i + 1;
		PROTO__TRY(rd_skip(r, depth + 1));
	}
	return DTX_OK;
}

// Positions s at the value of key k, or returns false when absent.
static bool
take(const rd *r, flds *fs, const char *k, rd *s)
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

static dtx_err
need(rd *r, flds *fs, const char *k, rd *s)
{
	if (!take(r, fs, k, s))
		return BAD(r, "%s: missing key '%s'", r->ctx, k);
	return DTX_OK;
}

// Every key must have been taken: anything left is unknown.
static dtx_err
done(rd *r, const flds *fs)
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
			return BAD(r, "%s: unknown key '%s'", r->ctx, safe);
		}
	}
	return DTX_OK;
}

static dtx_err
f_uint(rd *r, flds *fs, const char *k, uint64_t max, uint64_t *out)
{
	rd s;
	PROTO__TRY(need(r, fs, k, &s));
	return rd_uint(&s, k, max, out);
}

static dtx_err
f_u32(rd *r, flds *fs, const char *k, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	PROTO__TRY(f_uint(r, fs, k, max, &v));
	*out = (uint32_t)v;
	return DTX_OK;
}

static dtx_err
f_int(rd *r, flds *fs, const char *k, int64_t *out)
{
	rd s;
	PROTO__TRY(need(r, fs, k, &s));
	return rd_int(&s, k, INT64_MIN, INT64_MAX, out);
}

static dtx_err
f_bool(rd *r, flds *fs, const char *k, bool *out)
{
	rd s;
	PROTO__TRY(need(r, fs, k, &s));
	return rd_bool(&s, k, out);
}

static dtx_err
rd_ts(rd *r, const char *k, clk_ts *out)
{
	uint32_t n;
	PROTO__TRY(rd_container(r, k, false, &n));
	if (n != 2)
		return BAD(r,
		    "%s: key '%s': timestamp must be [l, c], got %u "
		    "elements",
		    r->ctx, k, n);
	msgpack_object el[2];
	for (int i = 0; i < 2; i++) {
		uint64_t v;
		PROTO__TRY(rd_uint(r, k, UINT64_MAX, &v));
		el[i].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
		el[i].via.u64 = v;
	}
	msgpack_object o;
	o.type = MSGPACK_OBJECT_ARRAY;
	o.via.array.size = 2;
	o.via.array.ptr = el;
	if (clk_ts_unpack(&o, out) != DTX_OK)
		return BAD(
		    r, "%s: key '%s': timestamp out of range", r->ctx, k);
	return DTX_OK;
}

static dtx_err
f_ts(rd *r, flds *fs, const char *k, clk_ts *out)
{
	rd s;
	PROTO__TRY(need(r, fs, k, &s));
	return rd_ts(&s, k, out);
}

static dtx_err
rd_vc(rd *r, clk_vc *out)
{
	uint32_t n;
	PROTO__TRY(rd_container(r, "vc", true, &n));
	if (n > r->vc_nodes)
		return BAD(r, "%s: key 'vc': %u entries for %u nodes", r->ctx,
		    n, r->vc_nodes);
	msgpack_object_kv kv[CLK_VC_MAX];
	for (uint32_t i = 0; i < n; i++) {
		uint64_t node, c;
		PROTO__TRY(rd_uint(r, "vc", UINT64_MAX, &node));
		PROTO__TRY(rd_uint(r, "vc", UINT64_MAX, &c));
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
		return BAD(r,
		    "%s: key 'vc': node id not below %u or given twice", r->ctx,
		    r->vc_nodes);
	return DTX_OK;
}

// A str into an owned C string (min..PROTO_MAX_STR bytes, no NUL inside).
static dtx_err
rd_cstr(rd *r, const char *k, uint32_t min, char **out)
{
	const uint8_t *p;
	uint32_t n;
	PROTO__TRY(rd_raw(r, k, true, &p, &n));
	if (n < min || n > PROTO_MAX_STR)
		return BAD(r, "%s: key '%s': str of %u bytes, allowed %u..%d",
		    r->ctx, k, n, min, PROTO_MAX_STR);
	if (memchr(p, 0, n) != NULL)
		return BAD(r, "%s: key '%s': str holds a NUL byte", r->ctx, k);
	char *c = dtx_alloc((size_t)n + 1);
	if (c == NULL)
		return OOM(r);
	memcpy(c, p, n);
	c[n] = '\0';
	*out = c;
	return DTX_OK;
}

static dtx_err
f_str(rd *r, flds *fs, const char *k, bool required, uint32_t min, char **out)
{
	rd s;
	if (!take(r, fs, k, &s)) {
		if (required)
			return BAD(r, "%s: missing key '%s'", r->ctx, k);
		return DTX_OK;
	}
	return rd_cstr(&s, k, min, out);
}

static dtx_err
rd_bytes(rd *r, const char *k, uint32_t min, uint32_t max, proto_bytes *out)
{
	const uint8_t *p;
	uint32_t n;
	PROTO__TRY(rd_raw(r, k, false, &p, &n));
	if (n < min || n > max)
		return BAD(r, "%s: key '%s': bin of %u bytes, allowed %u..%u",
		    r->ctx, k, n, min, max);
	uint8_t *c = dtx_alloc(n);
	if (c == NULL)
		return OOM(r);
	if (n > 0)
		memcpy(c, p, n);
	out->p = c;
	out->n = n;
	return DTX_OK;
}

static dtx_err
f_bytes(rd *r, flds *fs, const char *k, uint32_t min, uint32_t max,
    proto_bytes *out)
{
	rd s;
	PROTO__TRY(need(r, fs, k, &s));
	return rd_bytes(&s, k, min, max, out);
}

// Positions s on the array under key k and checks its count.
static dtx_err
f_array(rd *r, flds *fs, const char *k, uint32_t min, uint32_t max, rd *s,
    uint32_t *n)
{
	PROTO__TRY(need(r, fs, k, s));
	PROTO__TRY(rd_container(s, k, false, n));
	if (*n < min || *n > max)
		return BAD(r, "%s: key '%s': %u elements, allowed %u..%u",
		    r->ctx, k, *n, min, max);
	return DTX_OK;
}

// f_array, then allocates the zeroed array for its elements: *arrp (a
// T ** passed as void *, T of size bytes) gets it and *count its number
// of elements, both only on success, so that a message freed after an
// error never holds a count without its array. The caller decodes the
// elements from s. F_ARRAY_NEW takes the array and count by name.
static dtx_err
f_array_new(rd *r, flds *fs, const char *k, uint32_t min, uint32_t max, rd *s,
    void *arrp, size_t size, uint32_t *count)
{
	uint32_t n;
	PROTO__TRY(f_array(r, fs, k, min, max, s, &n));
	void *a = dtx_calloc(n, size);
	if (a == NULL)
		return OOM(r);
	memcpy(arrp, &a, sizeof(a));
	*count = n;
	return DTX_OK;
}
#define F_ARRAY_NEW(r, fs, k, min, max, s, arr, count)                         \
	f_array_new((r), (fs), (k), (min), (max), (s), &(arr), sizeof(*(arr)), \
	    &(count))

// ---------------------------------------------------------------- bodies

static dtx_err
rd_op(rd *r, const char *k, int depth, proto_op *op)
{
	flds fs;
	const char *ctx = r->ctx;
	r->ctx = "op";
	PROTO__TRY(rd_fields(r, k, depth, &fs));
	uint64_t kind;
	PROTO__TRY(f_uint(r, &fs, "o", PROTO_OP_GET, &kind));
	op->kind = (proto_op_kind)kind;
	PROTO__TRY(f_bytes(r, &fs, "k", 1, PROTO_MAX_KEY, &op->key));
	if (op->kind == PROTO_OP_ADD) {
		PROTO__TRY(f_int(r, &fs, "d", &op->delta));
		PROTO__TRY(f_int(r, &fs, "m", &op->min));
	} else if (op->kind == PROTO_OP_PUT) {
		PROTO__TRY(
		    f_bytes(r, &fs, "b", 0, PROTO_MAX_VALUE, &op->value));
	}
	PROTO__TRY(done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

static dtx_err
f_ops(rd *r, flds *fs, int depth, uint32_t *n_out, proto_op **out)
{
	rd s;
	PROTO__TRY(
	    F_ARRAY_NEW(r, fs, "ops", 1, PROTO_MAX_OPS, &s, *out, *n_out));
	for (uint32_t i = 0; i < *n_out; i++)
		PROTO__TRY(rd_op(&s, "ops", depth + 2, &(*out)[i]));
	return DTX_OK;
}

static dtx_err
rd_u64_array(rd *r, flds *fs, const char *k, uint32_t max, uint64_t vmax,
    uint32_t *n_out, uint64_t **out)
{
	rd s;
	PROTO__TRY(F_ARRAY_NEW(r, fs, k, 0, max, &s, *out, *n_out));
	for (uint32_t i = 0; i < *n_out; i++)
		PROTO__TRY(rd_uint(&s, k, vmax, &(*out)[i]));
	return DTX_OK;
}

static dtx_err dec_msg(rd *r, int depth, bool nested, proto_msg *m);

static dtx_err
dec_health_reply(rd *r, flds *fs, proto_health_reply *h)
{
	PROTO__TRY(f_str(r, fs, "role", true, 0, &h->role));
	PROTO__TRY(f_u32(r, fs, "node", UINT32_MAX, &h->node));
	PROTO__TRY(f_str(r, fs, "st", true, 0, &h->state));
	PROTO__TRY(f_uint(r, fs, "indoubt", UINT64_MAX, &h->in_doubt));
	PROTO__TRY(rd_u64_array(r, fs, "blocked", PROTO_MAX_BLOCKED, UINT64_MAX,
	    &h->n_blocked, &h->blocked));
	rd s;
	uint32_t n;
	PROTO__TRY(need(r, fs, "ctr", &s));
	PROTO__TRY(rd_container(&s, "ctr", true, &n));
	if (n > PROTO_MAX_COUNTERS)
		return BAD(r, "%s: key 'ctr': %u counters, more than %d",
		    r->ctx, n, PROTO_MAX_COUNTERS);
	h->counters = dtx_calloc(n, sizeof(*h->counters));
	if (h->counters == NULL)
		return OOM(r);
	h->n_counters = n;
	for (uint32_t i = 0; i < n; i++) {
		proto_counter *c = &h->counters[i];
		PROTO__TRY(rd_cstr(&s, "ctr", 1, &c->name));
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(h->counters[j].name, c->name) == 0)
				return BAD(r,
				    "%s: key 'ctr': duplicate "
				    "counter '%s'",
				    r->ctx, c->name);
		PROTO__TRY(rd_int(&s, "ctr", INT64_MIN, INT64_MAX, &c->value));
	}
	return DTX_OK;
}

static dtx_err
dec_fault(rd *r, flds *fs, proto_fault *f)
{
	PROTO__TRY(f_str(r, fs, "kind", true, 1, &f->kind));
	rd s;
	uint32_t n;
	PROTO__TRY(f_array(r, fs, "args", 0, PROTO_MAX_FAULT_ARGS, &s, &n));
	f->n_args = n;
	for (uint32_t i = 0; i < n; i++)
		PROTO__TRY(
		    rd_int(&s, "args", INT64_MIN, INT64_MAX, &f->args[i]));
	return f_str(r, fs, "s", false, 0, &f->arg);
}

static dtx_err
dec_txn_reply(rd *r, flds *fs, proto_txn_reply *t)
{
	uint64_t v = 0;
	PROTO__TRY(f_uint(r, fs, "out", PROTO_UNKNOWN, &v));
	t->outcome = (proto_outcome)v;
	PROTO__TRY(f_str(r, fs, "why", false, 0, &t->reason));
	PROTO__TRY(f_uint(r, fs, "tx", UINT64_MAX, &t->txid));
	PROTO__TRY(f_ts(r, fs, "cts", &t->commit_ts));
	rd s;
	PROTO__TRY(F_ARRAY_NEW(
	    r, fs, "res", 0, PROTO_MAX_OPS, &s, t->results, t->n_results));
	for (uint32_t i = 0; i < t->n_results; i++)
		PROTO__TRY(
		    rd_int(&s, "res", INT64_MIN, INT64_MAX, &t->results[i]));
	return DTX_OK;
}

static dtx_err
dec_prepare(rd *r, flds *fs, int depth, proto_prepare *p)
{
	uint64_t v = 0;
	PROTO__TRY(f_uint(r, fs, "tx", UINT64_MAX, &p->txid));
	PROTO__TRY(f_uint(r, fs, "m", PROTO_MODE_3PC, &v));
	p->mode = (proto_mode)v;
	PROTO__TRY(f_u32(r, fs, "co", UINT32_MAX, &p->coord));
	rd s;
	PROTO__TRY(F_ARRAY_NEW(
	    r, fs, "peers", 0, PROTO_MAX_PEERS, &s, p->peers, p->n_peers));
	for (uint32_t i = 0; i < p->n_peers; i++) {
		PROTO__TRY(rd_uint(&s, "peers", UINT32_MAX, &v));
		p->peers[i] = (uint32_t)v;
	}
	return f_ops(r, fs, depth, &p->n_ops, &p->ops);
}

static dtx_err
dec_read(rd *r, flds *fs, proto_read *q)
{
	PROTO__TRY(f_ts(r, fs, "ts", &q->ts));
	rd s;
	PROTO__TRY(F_ARRAY_NEW(
	    r, fs, "keys", 0, PROTO_MAX_KEYS, &s, q->keys, q->n_keys));
	for (uint32_t i = 0; i < q->n_keys; i++)
		PROTO__TRY(rd_bytes(&s, "keys", 1, PROTO_MAX_KEY, &q->keys[i]));
	return DTX_OK;
}

static dtx_err
rd_entry(rd *r, int depth, proto_entry *e)
{
	flds fs;
	const char *ctx = r->ctx;
	r->ctx = "entry";
	PROTO__TRY(rd_fields(r, "ents", depth, &fs));
	PROTO__TRY(f_bytes(r, &fs, "k", 1, PROTO_MAX_KEY, &e->key));
	PROTO__TRY(f_bool(r, &fs, "f", &e->found));
	if (e->found) {
		rd s;
		if (take(r, &fs, "i", &s)) {
			PROTO__TRY(
			    rd_int(&s, "i", INT64_MIN, INT64_MAX, &e->ival));
		} else if (take(r, &fs, "b", &s)) {
			e->is_bytes = true;
			PROTO__TRY(
			    rd_bytes(&s, "b", 0, PROTO_MAX_VALUE, &e->bval));
		} else {
			return BAD(r, "entry: found but neither 'i' nor 'b'");
		}
	}
	PROTO__TRY(done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

static dtx_err
dec_read_reply(rd *r, flds *fs, int depth, proto_read_reply *q)
{
	uint64_t v = 0;
	PROTO__TRY(f_ts(r, fs, "ts", &q->ts));
	PROTO__TRY(f_uint(r, fs, "st", PROTO_READ_RETRY, &v));
	q->status = (proto_read_status)v;
	PROTO__TRY(f_uint(r, fs, "btx", UINT64_MAX, &q->blocked_txid));
	rd s;
	PROTO__TRY(F_ARRAY_NEW(
	    r, fs, "ents", 0, PROTO_MAX_KEYS, &s, q->entries, q->n_entries));
	for (uint32_t i = 0; i < q->n_entries; i++)
		PROTO__TRY(rd_entry(&s, depth + 2, &q->entries[i]));
	return DTX_OK;
}

static dtx_err
dec_saga_submit(rd *r, flds *fs, int depth, proto_saga_submit *q)
{
	PROTO__TRY(f_str(r, fs, "gid", true, 1, &q->gid));
	rd s;
	PROTO__TRY(F_ARRAY_NEW(
	    r, fs, "steps", 1, PROTO_MAX_STEPS, &s, q->steps, q->n_steps));
	for (uint32_t i = 0; i < q->n_steps; i++) {
		proto_saga_step *st = &q->steps[i];
		flds sf;
		const char *ctx = s.ctx;
		s.ctx = "step";
		PROTO__TRY(rd_fields(&s, "steps", depth + 2, &sf));
		PROTO__TRY(f_u32(&s, &sf, "p", UINT32_MAX, &st->participant));
		rd o;
		PROTO__TRY(need(&s, &sf, "a", &o));
		PROTO__TRY(rd_op(&o, "a", depth + 3, &st->action));
		PROTO__TRY(need(&s, &sf, "c", &o));
		PROTO__TRY(rd_op(&o, "c", depth + 3, &st->compensate));
		PROTO__TRY(done(&s, &sf));
		s.ctx = ctx;
	}
	return DTX_OK;
}

static dtx_err
dec_body(rd *r, flds *fs, int depth, proto_msg *m)
{
	uint64_t v = 0;
	switch (m->hdr.type) {
	case PROTO_PING:
	case PROTO_PONG:
	case PROTO_HEALTH:
		return DTX_OK;
	case PROTO_ERROR:
		PROTO__TRY(f_uint(r, fs, "code", DTX_ERR_COUNT - 1, &v));
		if (v == DTX_OK)
			return BAD(r, "error: key 'code': 0 is not an error");
		m->u.error.code = (dtx_err)v;
		return f_str(r, fs, "why", false, 0, &m->u.error.reason);
	case PROTO_BATCH: {
		rd s;
		proto_batch *b = &m->u.batch;
		PROTO__TRY(F_ARRAY_NEW(
		    r, fs, "msgs", 1, PROTO_MAX_BATCH, &s, b->msgs, b->n));
		for (uint32_t i = 0; i < b->n; i++)
			PROTO__TRY(dec_msg(&s, depth + 2, true, &b->msgs[i]));
		return DTX_OK;
	}
	case PROTO_HEALTH_REPLY:
		return dec_health_reply(r, fs, &m->u.health_reply);
	case PROTO_FAULT:
		return dec_fault(r, fs, &m->u.fault);
	case PROTO_TXN:
		PROTO__TRY(f_uint(r, fs, "m", PROTO_MODE_3PC, &v));
		m->u.txn.mode = (proto_mode)v;
		return f_ops(r, fs, depth, &m->u.txn.n_ops, &m->u.txn.ops);
	case PROTO_TXN_REPLY:
		return dec_txn_reply(r, fs, &m->u.txn_reply);
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT:
		return dec_prepare(r, fs, depth, &m->u.prepare);
	case PROTO_VOTE:
		PROTO__TRY(f_uint(r, fs, "tx", UINT64_MAX, &m->u.vote.txid));
		PROTO__TRY(f_bool(r, fs, "yes", &m->u.vote.yes));
		PROTO__TRY(f_str(r, fs, "why", false, 0, &m->u.vote.reason));
		return f_ts(r, fs, "pts", &m->u.vote.prepare_ts);
	case PROTO_COMMIT:
	case PROTO_PRE_COMMIT:
		PROTO__TRY(f_uint(r, fs, "tx", UINT64_MAX, &m->u.txid.txid));
		return f_ts(r, fs, "cts", &m->u.txid.commit_ts);
	case PROTO_ABORT:
	case PROTO_DO_COMMIT:
	case PROTO_ACK:
	case PROTO_STATUS:
		return f_uint(r, fs, "tx", UINT64_MAX, &m->u.txid.txid);
	case PROTO_STATUS_REPLY:
		PROTO__TRY(
		    f_uint(r, fs, "tx", UINT64_MAX, &m->u.status_reply.txid));
		PROTO__TRY(f_uint(r, fs, "st", PROTO_TS_NEVER_VOTED, &v));
		m->u.status_reply.state = (proto_txn_state)v;
		return f_ts(r, fs, "cts", &m->u.status_reply.commit_ts);
	case PROTO_READ:
		return dec_read(r, fs, &m->u.read);
	case PROTO_READ_REPLY:
		return dec_read_reply(r, fs, depth, &m->u.read_reply);
	case PROTO_SAGA_SUBMIT:
		return dec_saga_submit(r, fs, depth, &m->u.saga_submit);
	case PROTO_SAGA_REPLY: {
		proto_saga_reply *q = &m->u.saga_reply;
		int64_t fsx;
		PROTO__TRY(f_str(r, fs, "gid", true, 1, &q->gid));
		PROTO__TRY(f_uint(r, fs, "out", PROTO_UNKNOWN, &v));
		q->outcome = (proto_outcome)v;
		rd s;
		PROTO__TRY(need(r, fs, "fs", &s));
		PROTO__TRY(rd_int(&s, "fs", -1, INT32_MAX, &fsx));
		q->failed_step = (int32_t)fsx;
		return f_str(r, fs, "why", false, 0, &q->reason);
	}
	case PROTO_STEP: {
		proto_step *q = &m->u.step;
		PROTO__TRY(f_str(r, fs, "gid", true, 1, &q->gid));
		PROTO__TRY(f_u32(r, fs, "br", UINT32_MAX, &q->branch));
		PROTO__TRY(f_uint(r, fs, "ph", PROTO_PHASE_COMPENSATE, &v));
		q->phase = (proto_phase)v;
		return f_ops(r, fs, depth, &q->n_ops, &q->ops);
	}
	case PROTO_STEP_REPLY: {
		proto_step_reply *q = &m->u.step_reply;
		PROTO__TRY(f_str(r, fs, "gid", true, 1, &q->gid));
		PROTO__TRY(f_u32(r, fs, "br", UINT32_MAX, &q->branch));
		PROTO__TRY(f_uint(r, fs, "ph", PROTO_PHASE_COMPENSATE, &v));
		q->phase = (proto_phase)v;
		PROTO__TRY(f_uint(r, fs, "res", PROTO_STEP_FAILED, &v));
		q->result = (proto_step_result)v;
		PROTO__TRY(f_bool(r, fs, "dup", &q->duplicate));
		return f_str(r, fs, "why", false, 0, &q->reason);
	}
	case PROTO_SAGA_STATUS:
	case PROTO_SAGA_FORGET:
		return f_str(r, fs, "gid", true, 1, &m->u.gid.gid);
	case PROTO_SAGA_STATUS_REPLY: {
		proto_saga_status_reply *q = &m->u.saga_status_reply;
		PROTO__TRY(f_str(r, fs, "gid", true, 1, &q->gid));
		PROTO__TRY(f_uint(r, fs, "st", PROTO_SAGA_ABORTED, &v));
		q->state = (proto_saga_state)v;
		rd s;
		uint32_t n;
		PROTO__TRY(f_array(r, fs, "steps", 0, PROTO_MAX_STEPS, &s, &n));
		q->step_states = dtx_calloc(n, 1);
		if (q->step_states == NULL)
			return OOM(r);
		q->n_steps = n;
		for (uint32_t i = 0; i < n; i++) {
			PROTO__TRY(
			    rd_uint(&s, "steps", PROTO_SS_COMPENSATED, &v));
			q->step_states[i] = (uint8_t)v;
		}
		PROTO__TRY(f_uint(r, fs, "age", UINT64_MAX, &q->age_ms));
		return f_str(r, fs, "err", false, 0, &q->last_error);
	}
	default:
		return BAD(r, "unknown type");
	}
}

// Decodes one message map at r into m (zeroed by the caller). On error m
// may hold partly decoded, owned members: the caller frees it.
static dtx_err
dec_msg(rd *r, int depth, bool nested, proto_msg *m)
{
	flds fs;
	rd s;
	uint64_t v = 0;
	r->ctx = "message";
	PROTO__TRY(rd_fields(r, nested ? "msgs" : "message", depth, &fs));
	PROTO__TRY(f_uint(r, &fs, "v", UINT32_MAX, &v));
	if (v != PROTO_VERSION)
		return BAD(r,
		    "message: unsupported version %" PRIu64
		    " (this side speaks %d)",
		    v, PROTO_VERSION);
	m->hdr.version = (uint32_t)v;
	const uint8_t *tp;
	uint32_t tn;
	PROTO__TRY(need(r, &fs, "t", &s));
	PROTO__TRY(rd_raw(&s, "t", true, &tp, &tn));
	proto_type t = proto__type_lookup((const char *)tp, tn);
	if (t == PROTO_NONE) {
		int n = tn > 32 ? 32 : (int)tn;
		char safe[33];
		for (int j = 0; j < n; j++)
			safe[j] =
			    (tp[j] >= 0x20 && tp[j] < 0x7f) ? (char)tp[j] : '?';
		safe[n] = '\0';
		return BAD(r, "message: unknown type '%s'", safe);
	}
	if (nested && t == PROTO_BATCH)
		return BAD(r, "batch: a batch inside a batch");
	m->hdr.type = t;
	PROTO__TRY(f_uint(r, &fs, "id", UINT64_MAX, &m->hdr.id));
	PROTO__TRY(f_u32(r, &fs, "from", UINT32_MAX, &m->hdr.from));
	PROTO__TRY(f_ts(r, &fs, "hlc", &m->hdr.hlc));
	PROTO__TRY(need(r, &fs, "vc", &s));
	PROTO__TRY(rd_vc(&s, &m->hdr.vc));
	r->ctx = proto_type_name(t);
	const uint8_t *after = r->p;
	PROTO__TRY(dec_body(r, &fs, depth, m));
	PROTO__TRY(done(r, &fs));
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
		return BAD(&r, "message of %zu bytes over the limit of %zu",
		    len, l.max_msg);
	if (len == 0)
		return BAD(&r, "empty message");
	proto_msg m;
	memset(&m, 0, sizeof(m));
	dtx_err err = dec_msg(&r, 1, false, &m);
	if (err == DTX_OK && r.p != r.end)
		err = BAD(&r, "%zu trailing bytes after the message",
		    (size_t)(r.end - r.p));
	if (err != DTX_OK) {
		proto_msg_free(&m);
		memset(out, 0, sizeof(*out));
		return err;
	}
	*out = m;
	return DTX_OK;
}
