// SPDX-License-Identifier: MIT
//
// Shared between proto's own files: the wire layer's internals and the
// socket set-up both RPC ends use.

#ifndef PROTO_INT_H
#define PROTO_INT_H

#include "proto.h"
#include "wire_int.h"

// Sets NNG_OPT_RECVMAXSZ on sock. Returns a dtx_err.
dtx_err proto__sock_limits(nng_socket sock, size_t max_msg);

#endif // PROTO_INT_H
