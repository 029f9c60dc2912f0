// SPDX-License-Identifier: MIT
//
// Shared between proto's own files: the wire names of types and keys, the
// limits the decoder applies, and the socket set-up both RPC ends use.

#ifndef PROTO_INT_H
#define PROTO_INT_H

#include "proto.h"

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

// Sets NNG_OPT_RECVMAXSZ on sock. Returns a dtx_err.
dtx_err proto__sock_limits(nng_socket sock, size_t max_msg);

#endif // PROTO_INT_H
