// SPDX-License-Identifier: MIT
//
// The encoder: writes a proto_msg as one msgpack map into a growing buffer
// (proto_encode in rpc.c appends it to an nng message), checking every
// limit the decoder will apply so that a sender sees its own mistakes as
// DTX_EINVAL.

#include <string.h>

#include <msgpack.h>

#include "wire_int.h"

dtx_err
proto__key(msgpack_packer *pk, const char *k)
{
	PROTO__PACK(msgpack_pack_str_with_body(pk, k, strlen(k)));
	return DTX_OK;
}

dtx_err
proto__kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	PROTO__TRY(proto__key(pk, k));
	PROTO__PACK(msgpack_pack_uint64(pk, v));
	return DTX_OK;
}

dtx_err
proto__kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	PROTO__TRY(proto__key(pk, k));
	PROTO__PACK(msgpack_pack_int64(pk, v));
	return DTX_OK;
}

dtx_err
proto__kv_bool(msgpack_packer *pk, const char *k, bool v)
{
	PROTO__TRY(proto__key(pk, k));
	PROTO__PACK(v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	return DTX_OK;
}

dtx_err
proto__kv_ts(msgpack_packer *pk, const char *k, clk_ts ts)
{
	PROTO__TRY(proto__key(pk, k));
	return clk_ts_pack(pk, ts);
}

// A string field; min is 0 or 1 (gid, kind and names may not be empty).
dtx_err
proto__check_str(const char *s, size_t min)
{
	if (s == NULL)
		return DTX_EINVAL;
	size_t n = strlen(s);
	return n < min || n > PROTO_MAX_STR ? DTX_EINVAL : DTX_OK;
}

dtx_err
proto__kv_str(msgpack_packer *pk, const char *k, const char *s)
{
	PROTO__TRY(proto__key(pk, k));
	PROTO__PACK(msgpack_pack_str_with_body(pk, s, strlen(s)));
	return DTX_OK;
}

dtx_err
proto__pack_bin(msgpack_packer *pk, const proto_bytes *b)
{
	if (b->n > 0 && b->p == NULL)
		return DTX_EINVAL;
	PROTO__PACK(msgpack_pack_bin_with_body(pk, b->p, b->n));
	return DTX_OK;
}

dtx_err
proto__check_key(const proto_bytes *k)
{
	return k->n < 1 || k->n > PROTO_MAX_KEY || k->p == NULL ? DTX_EINVAL
	                                                        : DTX_OK;
}

dtx_err
proto__enc_msg(msgpack_packer *pk, const proto_msg *m, bool nested)
{
	if (nested && m->hdr.type == PROTO_BATCH)
		return DTX_EINVAL;
	if (m->hdr.vc.n > CLK_VC_MAX)
		return DTX_EINVAL;
	const proto__body *b = proto__body_of(m->hdr.type);
	int nb = b != NULL ? b->keys(m) : -1;
	if (nb < 0)
		return DTX_EINVAL;
	PROTO__PACK(msgpack_pack_map(pk, 6 + (size_t)nb));
	PROTO__TRY(proto__kv_uint(pk, "v", PROTO_VERSION));
	PROTO__TRY(proto__kv_str(pk, "t", proto_type_name(m->hdr.type)));
	PROTO__TRY(proto__kv_uint(pk, "id", m->hdr.id));
	PROTO__TRY(proto__kv_uint(pk, "from", m->hdr.from));
	PROTO__TRY(proto__kv_ts(pk, "hlc", m->hdr.hlc));
	PROTO__TRY(proto__key(pk, "vc"));
	PROTO__TRY(clk_vc_pack(pk, &m->hdr.vc));
	return b->enc != NULL ? b->enc(pk, m) : DTX_OK;
}

// A growing byte buffer. With own set, p starts as the caller's storage
// (of cap bytes) and moves to the heap only when it outgrows it.
typedef struct buf {
	uint8_t *p;
	size_t len, cap;
	bool own;
} buf;

static int
write_buf(void *data, const char *src, size_t len)
{
	buf *b = data;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *p;
		if (b->own) {
			if ((p = dtx_alloc(cap)) == NULL)
				return -1;
			memcpy(p, b->p, b->len);
			b->own = false;
		} else if ((p = dtx_realloc(b->p, cap)) == NULL) {
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, len);
	b->len += len;
	return 0;
}

dtx_err
proto__encode_scratch(const proto_msg *m, uint8_t *scratch, size_t cap,
    uint8_t **out, size_t *len)
{
	buf b = { scratch, 0, cap, true };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, write_buf);
	dtx_err err = proto__enc_msg(&pk, m, false);
	if (err != DTX_OK) {
		if (!b.own)
			dtx_free(b.p);
		return err;
	}
	*out = b.p;
	*len = b.len;
	return DTX_OK;
}

dtx_err
proto_encode_buf(const proto_msg *m, uint8_t **out, size_t *len)
{
	if (m == NULL || out == NULL || len == NULL)
		return DTX_EINVAL;
	buf b = { NULL, 0, 0, false };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, write_buf);
	dtx_err err = proto__enc_msg(&pk, m, false);
	if (err != DTX_OK) {
		dtx_free(b.p);
		return err;
	}
	if (b.p == NULL && (b.p = dtx_alloc(1)) == NULL)
		return DTX_ENOMEM;
	*out = b.p;
	*len = b.len;
	return DTX_OK;
}
