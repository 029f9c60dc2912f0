// SPDX-License-Identifier: MIT
//
// Shared between proto's own files: the wire layer's internals and the
// socket set-up both RPC ends use.

#ifndef PROTO_INT_H
#define PROTO_INT_H

#include "proto.h"
#include "wire_int.h"

// Bytes nng's REQ/REP adds to a body on the wire (the request id and
// its backtrace), allowed on top of max_msg so that a body of exactly
// max_msg arrives and one just over it is answered by the decoder with an
// ERROR instead of a dropped connection.
#define PROTO__NNG_SLACK 256

// Sets NNG_OPT_RECVMAXSZ on sock to max_msg plus PROTO__NNG_SLACK.
// Returns a dtx_err.
dtx_err proto__sock_limits(nng_socket sock, size_t max_msg);

// True for a tls+tcp:// URL.
bool proto__url_tls(const char *url);

// A URL's transport against the TLS material: a tls+tcp URL needs tls, any
// other refuses it. DTX_EINVAL when they disagree.
dtx_err proto__url_check(const char *url, const proto_tls *tls);

// nng's configuration for a listener (server) or dialer of t. Borrowed.
struct nng_tls_config;
struct nng_tls_config *proto__tls_nng(const proto_tls *t, bool server);

// True at most once a second per *last (a rate limit for log lines of
// one kind). Thread-safe.
bool proto__once_a_second(_Atomic uint64_t *last);

// n bytes from the kernel's CSPRNG. DTX_EIO.
dtx_err proto__random(void *buf, size_t n);

#endif // PROTO_INT_H
