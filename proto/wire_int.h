// SPDX-License-Identifier: MIT
//
// Shared between the wire layer's own files (and the RPC layer, which puts
// encoded messages into nng messages): the wire names of types, the limits
// the decoder applies, and encoding into a caller's scratch buffer.

#ifndef PROTO_WIRE_INT_H
#define PROTO_WIRE_INT_H

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

#endif // PROTO_WIRE_INT_H
