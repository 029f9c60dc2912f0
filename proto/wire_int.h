// SPDX-License-Identifier: MIT
//
// Shared between the wire layer's own files (and the RPC layer, which puts
// encoded messages into nng messages): the table of message bodies, the
// encoder's and the decoder's primitives the bodies are written with, the
// limits the decoder applies, and encoding into a caller's scratch buffer.

#ifndef PROTO_WIRE_INT_H
#define PROTO_WIRE_INT_H

#include <msgpack.h>

#include "wire.h"

// Returns from the calling function with x's dtx_err unless it is DTX_OK.
#define PROTO__TRY(x)                                                          \
	do {                                                                   \
		dtx_err e_ = (x);                                              \
		if (e_ != DTX_OK)                                              \
			return e_;                                             \
	} while (0)

// Resolves a wire type name; PROTO_NONE when unknown.
proto_type proto__type_lookup(const char *name, size_t len);

// Fills in the defaults of a limits struct (NULL: all defaults).
void proto__limits(const proto_limits *in, proto_limits *out);

// Encodes m (borrowed) into scratch (cap bytes, the caller's) or, when it
// outgrows that, into a dtx_alloc'd buffer. On success *out points at the
// bytes, *len is their count, and *out != scratch means the caller frees
// *out with dtx_free. Errors as proto_encode_buf (nothing to free).
dtx_err proto__encode_scratch(const proto_msg *m, uint8_t *scratch, size_t cap,
    uint8_t **out, size_t *len);

// ---------------------------------------------------------------- encoder
// (encode.c) Each returns DTX_OK, DTX_ENOMEM (the packer's writer failed)
// or DTX_EINVAL (a value breaks a limit).

// Returns from the calling function with DTX_ENOMEM when a msgpack_pack_*
// call x fails.
#define PROTO__PACK(x)                                                         \
	do {                                                                   \
		if ((x) != 0)                                                  \
			return DTX_ENOMEM;                                     \
	} while (0)

// A map key k (a str).
dtx_err proto__key(msgpack_packer *pk, const char *k);
// A key k and its value, in msgpack's shortest encoding.
dtx_err proto__kv_uint(msgpack_packer *pk, const char *k, uint64_t v);
dtx_err proto__kv_int(msgpack_packer *pk, const char *k, int64_t v);
dtx_err proto__kv_bool(msgpack_packer *pk, const char *k, bool v);
dtx_err proto__kv_ts(msgpack_packer *pk, const char *k, clk_ts ts);
dtx_err proto__kv_str(msgpack_packer *pk, const char *k, const char *s);
// Checks a str field: present, min (0 or 1) .. PROTO_MAX_STR bytes.
dtx_err proto__check_str(const char *s, size_t min);
// A bin value; DTX_EINVAL for bytes missing behind a count.
dtx_err proto__pack_bin(msgpack_packer *pk, const proto_bytes *b);
// Checks a record key: 1..PROTO_MAX_KEY bytes.
dtx_err proto__check_key(const proto_bytes *k);
// A whole message (header and body); nested: inside a BATCH.
dtx_err proto__enc_msg(msgpack_packer *pk, const proto_msg *m, bool nested);

// ---------------------------------------------------------------- decoder
// (decode.c) A cursor over [p, end) of the bytes being decoded. why and
// why_len receive the first error's reason; ctx names the map being
// decoded ("prepare", "op") for messages.
typedef struct proto__rd {
	const uint8_t *p, *end;
	char *why;
	size_t why_len;
	const char *ctx;
	uint32_t vc_nodes;
} proto__rd;

// One key of a map being decoded: where its value starts, and whether a
// body took it (any key left untaken is unknown: an error).
typedef struct proto__fld {
	const uint8_t *k;
	uint32_t kn;
	const uint8_t *v;
	bool used;
} proto__fld;

typedef struct proto__flds {
	proto__fld f[PROTO_MAX_FIELDS];
	uint32_t n;
} proto__flds;

// Records the reason of the first error in r->why.
__attribute__((format(printf, 2, 3))) void proto__note(
    proto__rd *r, const char *fmt, ...);

// Every error path of the decoder returns through these two, which note
// the reason and evaluate to their code where they return, so that the
// compiler sees that a failed read never wrote its outputs (a helper that
// returned the code from elsewhere left a release build unsure of it).
#define PROTO__BAD(r, ...) (proto__note((r), __VA_ARGS__), DTX_EPROTO)
#define PROTO__OOM(r) (proto__note((r), "out of memory"), DTX_ENOMEM)

// Values at the cursor, k naming the key for error messages. Outputs are
// written only on success; errors are DTX_EPROTO (with the reason noted)
// and DTX_ENOMEM.
dtx_err proto__rd_uint(
    proto__rd *r, const char *k, uint64_t max, uint64_t *out);
dtx_err proto__rd_int(
    proto__rd *r, const char *k, int64_t min, int64_t max, int64_t *out);
dtx_err proto__rd_bool(proto__rd *r, const char *k, bool *out);
// An array (want_map false) or map header: *n elements or entries.
dtx_err proto__rd_container(
    proto__rd *r, const char *k, bool want_map, uint32_t *n);
// A str into an owned C string of min..PROTO_MAX_STR bytes.
dtx_err proto__rd_cstr(proto__rd *r, const char *k, uint32_t min, char **out);
// A bin into owned bytes of min..max bytes.
dtx_err proto__rd_bytes(
    proto__rd *r, const char *k, uint32_t min, uint32_t max, proto_bytes *out);

// A map of str keys into fs (values skipped and recorded), at depth.
dtx_err proto__rd_fields(
    proto__rd *r, const char *k, int depth, proto__flds *fs);
// Positions s at the value of key k and marks it taken; false if absent.
bool proto__take(
    const proto__rd *r, proto__flds *fs, const char *k, proto__rd *s);
// proto__take, with a missing key an error.
dtx_err proto__need(proto__rd *r, proto__flds *fs, const char *k, proto__rd *s);
// Every key of fs must have been taken: anything left is unknown.
dtx_err proto__done(proto__rd *r, const proto__flds *fs);

// The value of a required key k of fs (f_str: required or optional; an
// absent optional one leaves *out alone).
dtx_err proto__f_uint(
    proto__rd *r, proto__flds *fs, const char *k, uint64_t max, uint64_t *out);
dtx_err proto__f_u32(
    proto__rd *r, proto__flds *fs, const char *k, uint32_t max, uint32_t *out);
dtx_err proto__f_int(
    proto__rd *r, proto__flds *fs, const char *k, int64_t *out);
dtx_err proto__f_bool(proto__rd *r, proto__flds *fs, const char *k, bool *out);
dtx_err proto__f_ts(proto__rd *r, proto__flds *fs, const char *k, clk_ts *out);
// The next element of an array as a timestamp [l, c] (k names it in errors).
dtx_err proto__rd_ts(proto__rd *r, const char *k, clk_ts *out);
dtx_err proto__f_str(proto__rd *r, proto__flds *fs, const char *k,
    bool required, uint32_t min, char **out);
dtx_err proto__f_bytes(proto__rd *r, proto__flds *fs, const char *k,
    uint32_t min, uint32_t max, proto_bytes *out);
// Positions s on the array under key k and checks its count.
dtx_err proto__f_array(proto__rd *r, proto__flds *fs, const char *k,
    uint32_t min, uint32_t max, proto__rd *s, uint32_t *n);
// proto__f_array, then allocates the zeroed array for its elements: *arrp
// (a T ** passed as void *, T of size bytes) gets it and *count its number
// of elements, both only on success, so that a message freed after an
// error never holds a count without its array. The caller decodes the
// elements from s. PROTO__F_ARRAY_NEW takes the array and count by name.
dtx_err proto__f_array_new(proto__rd *r, proto__flds *fs, const char *k,
    uint32_t min, uint32_t max, proto__rd *s, void *arrp, size_t size,
    uint32_t *count);
#define PROTO__F_ARRAY_NEW(r, fs, k, min, max, s, arr, count)                  \
	proto__f_array_new((r), (fs), (k), (min), (max), (s), &(arr),          \
	    sizeof(*(arr)), &(count))

// Decodes one message map at r into m (zeroed by the caller); nested:
// inside a BATCH. On error m may hold partly decoded, owned members: the
// caller frees it.
dtx_err proto__dec_msg(proto__rd *r, int depth, bool nested, proto_msg *m);

// ---------------------------------------------------------------- bodies
// (bodies.c) One descriptor per message type: a new type is one row of
// the table in bodies.c plus its body functions.
typedef struct proto__body {
	const char *name; // the wire name ("t")
	// The number of body keys m is encoded with, after checking its
	// counts, strings and enums; -1 when m cannot be encoded.
	int (*keys)(const proto_msg *m);
	// Writes the body keys, in the order wire.h lists them. NULL: no
	// body.
	dtx_err (*enc)(msgpack_packer *pk, const proto_msg *m);
	// Reads the body from the fields of the message map (fs), at depth.
	// NULL: no body.
	dtx_err (*dec)(proto__rd *r, proto__flds *fs, int depth, proto_msg *m);
	// Frees what the body owns (not m). NULL: nothing.
	void (*free)(proto_msg *m);
} proto__body;

// The body functions of TRACE and TRACE_REPLY (trace_wire.c).
int proto__keys_trace(const proto_msg *m);
dtx_err proto__enc_trace(msgpack_packer *pk, const proto_msg *m);
dtx_err proto__dec_trace(
    proto__rd *r, proto__flds *fs, int depth, proto_msg *m);
void proto__free_trace(proto_msg *m);
int proto__keys_trace_reply(const proto_msg *m);
dtx_err proto__enc_trace_reply(msgpack_packer *pk, const proto_msg *m);
dtx_err proto__dec_trace_reply(
    proto__rd *r, proto__flds *fs, int depth, proto_msg *m);
void proto__free_trace_reply(proto_msg *m);
// A vector clock map (the header's "vc") at the cursor.
dtx_err proto__rd_vc(proto__rd *r, clk_vc *out);
// Whether fs holds key k, not yet taken (an optional key).
bool proto__has(const proto__flds *fs, const char *k);

// The descriptor of type; NULL for PROTO_NONE and out of range.
const proto__body *proto__body_of(proto_type type);

// The operator's bodies (bodies_txn.c), as the table in bodies.c names
// them: see proto__body for what each does.
int proto__keys_txn_list_reply(const proto_msg *m);
dtx_err proto__enc_txn_list_reply(msgpack_packer *pk, const proto_msg *m);
dtx_err proto__dec_txn_list_reply(
    proto__rd *r, proto__flds *fs, int depth, proto_msg *m);
void proto__free_txn_list_reply(proto_msg *m);
int proto__keys_txn_resolve(const proto_msg *m);
dtx_err proto__enc_txn_resolve(msgpack_packer *pk, const proto_msg *m);
dtx_err proto__dec_txn_resolve(
    proto__rd *r, proto__flds *fs, int depth, proto_msg *m);
void proto__free_txn_resolve(proto_msg *m);
int proto__keys_txn_resolve_reply(const proto_msg *m);
dtx_err proto__enc_txn_resolve_reply(msgpack_packer *pk, const proto_msg *m);
dtx_err proto__dec_txn_resolve_reply(
    proto__rd *r, proto__flds *fs, int depth, proto_msg *m);
void proto__free_txn_resolve_reply(proto_msg *m);

#endif // PROTO_WIRE_INT_H
