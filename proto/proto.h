// SPDX-License-Identifier: MIT
//
// proto: the messages dtx daemons exchange, their strict msgpack encoding,
// the nng request/reply helpers that carry them and the runtime the daemons
// share. One header per layer; this one includes all three:
//   wire.h    message structs, bodies, the codec (pure, fuzzable);
//   rpc.h     nng client and server, defer tokens, batcher, pool;
//   daemon.h  the daemon runtime (depends on both).

#ifndef DTX_PROTO_H
#define DTX_PROTO_H

#include "daemon.h"
#include "rpc.h"
#include "wire.h"

#endif // DTX_PROTO_H
