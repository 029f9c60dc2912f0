// SPDX-License-Identifier: MIT
//
// proto's RPC layer: the wire messages over nng request/reply (a server
// with worker contexts and explicit defer tokens, a client with per-call
// timeouts and retries, a batcher, a runner pool). Knows nothing of
// daemons.

#ifndef DTX_PROTO_RPC_H
#define DTX_PROTO_RPC_H

#include <nng/nng.h>

#include "wire.h"

// ================================================================ nng codec

// Encodes m and appends it to the body of out (which may already hold
// bytes: pass an empty message). m is borrowed. Returns DTX_EINVAL when m
// breaks a limit or holds an out-of-range enum (out's body is then
// restored to its old length), DTX_ENOMEM. Thread-safe for distinct out.
dtx_err proto_encode(const proto_msg *m, nng_msg *out);

// proto_decode on the body of msg (borrowed; not modified).
dtx_err proto_decode_nng(const nng_msg *msg, const proto_limits *lim,
    proto_msg *out, char *why, size_t why_len);

// Translates an nng error code into a dtx_err (NNG_ETIMEDOUT ->
// DTX_ETIMEDOUT, NNG_ECONNREFUSED -> DTX_EUNREACH, NNG_ECLOSED ->
// DTX_ECLOSED, NNG_ENOMEM -> DTX_ENOMEM, address errors -> DTX_EINVAL...).
dtx_err proto_from_nng(int rv);

// ================================================================ identity
//
// Every TCP link is mutual TLS (nng's tls+tcp transport, mbedTLS): both
// ends present a certificate signed by the cluster's one CA and verify the
// other's. nng 1.5.2 tells a connection ("pipe") whether its peer was
// verified but not who the peer is, so identity is bound by a hello on
// every new connection, before any other request:
//   client -> HELLO                     server: a fresh random nonce for
//   client <- CHALLENGE {nonce}         this connection
//   client -> AUTH {cert PEM, sig}      sig = the client's key over
//                                       proto_hello_digest(server id, nonce)
//   client <- ACK                       server: chain checked against the
//                                       CA, signature against the cert's
//                                       key, (node, role) read from its
//                                       subject and bound to the pipe
// The binding ends with the connection. A request on an unbound
// connection is refused (ERROR DTX_EPERM "unauthenticated"), as is one
// whose "from" is not the bound node id. A certificate's subject names
// the node: CN=<role>-<id> (CN=participant-3), or CN=<id> with OU=<role>.

typedef enum proto_role {
	PROTO_ROLE_NONE = 0, // unknown (plaintext, not in the topology)
	PROTO_ROLE_COORDINATOR,
	PROTO_ROLE_PARTICIPANT,
	PROTO_ROLE_SAGA,
	PROTO_ROLE_CLIENT,
	PROTO_ROLE_ADMIN,
	PROTO_ROLE_HARNESS,
	PROTO_ROLE_COUNT
} proto_role;

// "coordinator", ...; "?" out of range. Never NULL.
const char *proto_role_name(proto_role r);

// Parses the role named by s[0..n); DTX_EINVAL for anything else.
dtx_err proto_role_parse(const char *s, size_t n, proto_role *out);

// The identity a certificate subject's CN and OU (ou may be NULL) name:
// CN=<role>-<id> (an OU, if any, naming the same role), or CN=<id> and
// OU=<role>; id is 1..9 decimal digits. DTX_EINVAL otherwise.
dtx_err proto_subject_identity(
    const char *cn, const char *ou, uint32_t *node, proto_role *role);

// Who sent a request, as the server knows it. authenticated: bound by a
// hello over TLS; otherwise (plaintext, --insecure) node is the claimed
// "from" and role is PROTO_ROLE_NONE (the daemon looks it up).
typedef struct proto_peer {
	uint32_t node;
	proto_role role;
	bool authenticated;
} proto_peer;

// A node's TLS material: the cluster CA, its certificate and its key.
typedef struct proto_tls proto_tls;

// Loads the three PEM files and checks them against each other (the key
// is the certificate's, the CA signed it, its subject names a node).
// DTX_EINVAL with the reason in why; DTX_ENOMEM. *out returns owned
// (proto_tls_close). Thread-safe once open; shared by servers and
// clients, which borrow it.
dtx_err proto_tls_open(const char *ca_file, const char *cert_file,
    const char *key_file, char *why, size_t why_len, proto_tls **out);
void proto_tls_close(proto_tls *t);

// The node id and role our own certificate names.
void proto_tls_self(const proto_tls *t, uint32_t *node, proto_role *role);

// What a hello signs: SHA-256 of the server's node id (4 bytes, big
// endian), the nonce and the context string "dtx-hello-v1" with its NUL.
void proto_hello_digest(
    uint32_t server, const uint8_t nonce[PROTO_NONCE_LEN], uint8_t out[32]);

// Builds the AUTH message answering server's nonce (owned: free with
// proto_msg_free). DTX_EINVAL, DTX_ENOMEM.
dtx_err proto_tls_hello(proto_tls *t, uint32_t server,
    const uint8_t nonce[PROTO_NONCE_LEN], proto_msg *out);

// Checks an AUTH body against the CA and the nonce this server (node id
// server) gave: on DTX_OK *node and *role hold the identity. DTX_EPERM
// with the reason in why; DTX_ENOMEM.
dtx_err proto_tls_verify_hello(proto_tls *t, uint32_t server,
    const uint8_t nonce[PROTO_NONCE_LEN], const proto_auth *a, uint32_t *node,
    proto_role *role, char *why, size_t why_len);

// ================================================================ RPC
//
// Both ends use nng REQ/REP (protocol version 0) with contexts. Every
// socket has NNG_OPT_RECVMAXSZ set to its max_msg, so nng drops a
// connection that sends more (the peer sees the connection lost; the
// server keeps serving). The client disables nng's timed request resend:
// our protocols retry at their own layer, where idempotence is known.

// Stamps an outgoing message's clock fields (hdr->hlc, hdr->vc): called
// once per message the server or client encodes (each BATCH element too),
// from the calling thread. Must be thread-safe. hdr (here and in the
// observe hook) is always the header of a whole proto_msg, its first
// member, with the body filled: a hook may read the message through it.
typedef void (*proto_stamp_fn)(void *arg, proto_hdr *hdr);

// Observes an incoming message's header (to merge its clocks): called once
// per decoded message (each BATCH element too). Must be thread-safe. A
// client drops a reply for which it returns an error (a daemon's clock
// refuses a sender too far ahead: DTX_ECLOCK), and the call fails with
// that error as if the reply had been lost: its sender may have acted on
// the request, but nothing the reply says may be relied on, since
// whatever the caller does next would not be ordered after it.
typedef dtx_err (*proto_observe_fn)(void *arg, const proto_hdr *hdr);

// The request a handler is serving, as the server passes it (the way nng
// passes an aio): the handler may take the request over with
// proto_server_defer(call). Borrowed, valid only during the handler's
// call. NULL where the request cannot be deferred (on a proto_pool
// thread, or when a handler is called directly).
typedef struct proto_call proto_call;

// The sender of the request call is serving (see proto_peer). Borrowed,
// valid during the handler's call; NULL when call is NULL.
const proto_peer *proto_call_peer(const proto_call *call);

// Serves one request. req is borrowed for the call. rep arrives zeroed
// with rep->hdr.id set; the handler sets rep->hdr.type and the body (all
// memory owned, from dtx_alloc: the server frees it with proto_msg_free
// after encoding). Returning an error other than DTX_OK makes the server
// answer with an ERROR of that code (discarding rep). A handler may block
// (on an fsync, on RPCs to other daemons); it runs on one of the server's
// worker threads, so up to `workers` handlers run at once. call (may be
// NULL) is what the handler may defer the request through.
typedef dtx_err (*proto_handler_fn)(
    void *arg, const proto_msg *req, proto_msg *rep, proto_call *call);

// A request that cannot be decoded is answered by the server itself with
// an ERROR (code DTX_EPROTO or DTX_ENOMEM, reason from proto_decode, id 0
// since the request's id is unknown) and counted in decode_errors; the
// handler never sees it. Every reply gets version, id, from and the stamp
// hook's clocks from the server (for a BATCH reply, each element too).
typedef struct proto_server_cfg {
	const char *url; // "tcp://127.0.0.1:0", "ipc:///tmp/x.sock" (copied)
	uint32_t workers; // K worker contexts+threads; 0 means 8
	size_t max_msg; // 0 means PROTO_MAX_MSG_DEFAULT
	uint32_t vc_nodes; // 0 means CLK_VC_MAX
	uint32_t node_id; // "from" of every reply
	// false: a BATCH request is unpacked, the handler is called once
	// per element in order on the same worker, and the replies go back
	// in one BATCH. true: the handler gets the whole BATCH and must
	// answer with a BATCH (or an ERROR).
	bool whole_batches;
	proto_handler_fn handler; // required
	proto_stamp_fn stamp; // optional
	proto_observe_fn observe; // optional (called before the handler)
	// Optional: called once a request's reply is built (deferred or
	// not; a BATCH answered element by element is reported element by
	// element), with the nanoseconds since the request arrived. Borrows
	// both; runs on the thread that built the reply.
	void (*replied)(
	    void *arg, const proto_msg *req, const proto_msg *rep, uint64_t ns);
	// Optional, without whole_batches: called with true before the
	// handler calls for the elements of one BATCH and with false after
	// them, on the same worker thread, so that a handler can treat what
	// the elements start as one group.
	void (*batch)(void *arg, bool begin);
	void *arg; // passed to handler, stamp, observe, batch
	// Required for a tls+tcp:// url, refused for any other (borrowed,
	// must outlive the server): every connection must then say hello
	// (above) before anything else.
	proto_tls *tls;
	// Connections at once; a new one over it is closed at once and
	// counted in conns_refused. 0: no cap.
	uint32_t max_conns;
} proto_server_cfg;

typedef struct proto_server proto_server;

// Counters of a server (monotonic since open).
typedef struct proto_server_stats {
	uint64_t requests; // messages received (a BATCH counts once)
	uint64_t replies; // replies sent
	uint64_t decode_errors; // requests answered with ERROR DTX_EPROTO
	uint64_t handler_errors; // handler returned an error
	uint64_t conns; // connections open now
	uint64_t conns_refused; // closed at once: over max_conns
	uint64_t hellos; // connections bound to an identity
	uint64_t hello_failed; // HELLO/AUTH refused (bad cert, signature)
	uint64_t unauthenticated; // requests on an unbound connection
	uint64_t from_mismatch; // "from" other than the bound node id
} proto_server_stats;

// Listens on cfg->url and starts the workers. *out returns owned (close
// with proto_server_close). Errors: DTX_EINVAL (bad URL or cfg),
// DTX_EEXIST (address in use), DTX_ENOMEM, DTX_EIO.
dtx_err proto_server_open(const proto_server_cfg *cfg, proto_server **out);

// The URL the server is bound to, with a tcp port 0 replaced by the port
// the kernel picked. Borrowed; valid until close.
const char *proto_server_url(const proto_server *s);

// Copies the counters. Thread-safe.
void proto_server_stats_get(const proto_server *s, proto_server_stats *out);

// Stops accepting, waits for every worker (a handler in progress finishes
// first) and every deferred reply (below), frees everything.
// proto_server_close(NULL) does nothing.
void proto_server_close(proto_server *s);

// Deferred replies. A handler whose answer has to wait (for other
// daemons' replies, for an fsync) may take the request over instead of
// blocking its worker: proto_server_defer(call), called from the handler
// with the call it was given, returns a token that owns the request (see
// proto_defer_req) and its reply slot; the handler then returns DTX_OK
// leaving rep alone, and the worker goes back to receiving (or to the next
// element of an unpacked BATCH, whose reply goes out once every element
// has its answer). The reply is sent later, from any thread, with
// proto_defer_reply. NULL when the request cannot be deferred (call is
// NULL, the handler already deferred it, or out of memory): the handler
// answers as usual. call is borrowed; only the handler it was given to may
// use it, on its own thread, before it returns. The token is owned by the
// caller until proto_defer_reply (or proto_pool_run) consumes it.
typedef struct proto_defer proto_defer;
proto_defer *proto_server_defer(proto_call *call);

// The deferred request (owned by tok: valid until proto_defer_reply). A
// handler that deferred reads its request through this, not through its
// req argument, which is emptied by proto_server_defer.
const proto_msg *proto_defer_req(const proto_defer *tok);

// Runner threads for deferred requests whose handlers block: a handler
// that defers its request and passes the token to proto_pool_run frees
// its worker at once (and, for an element of a BATCH, lets the next
// element start); one of the pool's threads then calls fn (a blocking
// handler, same contract) for it and answers the token with the result.
typedef struct proto_pool proto_pool;

// Starts `threads` runner threads. *out returns owned (proto_pool_close).
// Errors: DTX_EINVAL, DTX_ENOMEM.
dtx_err proto_pool_open(
    uint32_t threads, proto_handler_fn fn, void *arg, proto_pool **out);

// Queues tok's request; never blocks. After close has begun tok is
// answered with DTX_ECLOSED at once.
void proto_pool_run(proto_pool *p, proto_defer *tok);

// Runs what is queued to its end, joins the threads, frees p. NULL does
// nothing.
void proto_pool_close(proto_pool *p);

// Sends the reply of tok's request and ends tok (the request is freed).
// err == DTX_OK sends *rep, which must then be set as a handler's rep
// would be; otherwise an ERROR of code err is sent. *rep is consumed
// either way (freed; may be NULL when err != DTX_OK). Never blocks.
void proto_defer_reply(proto_defer *tok, dtx_err err, proto_msg *rep);

// Retry policy for proto_client_call. A call is retried (up to attempts
// tries in all) after DTX_EUNREACH, which is always safe, and after
// DTX_ETIMEDOUT only when the call is marked idempotent. The n-th retry
// waits a random time in [d/2, d] where d = min(cap_ms, base_ms * 2^(n-1)).
typedef struct proto_retry {
	uint32_t attempts; // total tries; 0 or 1: no retry
	uint32_t base_ms; // 0 means 10
	uint32_t cap_ms; // 0 means 1000
} proto_retry;

typedef struct proto_client_cfg {
	const char *url; // copied
	size_t max_msg; // 0 means PROTO_MAX_MSG_DEFAULT
	uint32_t vc_nodes; // 0 means CLK_VC_MAX
	uint32_t node_id; // "from" of every request
	uint32_t timeout_ms; // default per-call timeout; 0 means 5000
	// How long a call waits for a connection before it gives up with
	// DTX_EUNREACH when there is none; 0 means 200 (capped by the call
	// timeout).
	uint32_t connect_wait_ms;
	proto_retry retry; // default policy
	uint64_t seed; // jitter PRNG seed; 0 picks one from the clock
	proto_stamp_fn stamp; // optional
	proto_observe_fn observe; // optional, for replies
	void *arg;
	// Required for a tls+tcp:// url, refused for any other (borrowed,
	// must outlive the client): on every new connection the client
	// says hello before any request goes out on it, and node_id is
	// replaced by the node id its certificate names.
	proto_tls *tls;
	// With check_server, the hello goes through only when the server
	// says it is node server_node (so that no other node of the
	// cluster can pass our hello on as its own).
	bool check_server;
	uint32_t server_node;
} proto_client_cfg;

typedef struct proto_client proto_client;

// Per-call options (NULL: the client's defaults, not idempotent).
typedef struct proto_call_opts {
	uint32_t timeout_ms; // per attempt; 0: the client's default
	bool idempotent; // safe to resend after a timeout
	const proto_retry *retry; // NULL: the client's default policy
	char *why; // optional: reason of a DTX_EPROTO (why_len bytes)
	size_t why_len;
} proto_call_opts;

// Creates a client and starts dialing cfg->url in the background (a dead
// peer is not an error here; nng reconnects automatically). *out returns
// owned (close with proto_client_close). Errors: DTX_EINVAL (bad URL),
// DTX_ENOMEM.
dtx_err proto_client_open(const proto_client_cfg *cfg, proto_client **out);

// Sends req and waits for its reply. Sets req->hdr.version, id (unique
// per client), from, and calls the stamp hook; the rest of req is
// borrowed. Thread-safe: any number of threads may call at once, each gets
// its own reply. Returns:
//   DTX_OK        *rep holds the reply (owned: free with proto_msg_free);
//   DTX_EREFUSED  the peer answered with an ERROR: *rep holds it (owned),
//                 rep->u.error.code and .reason say why (definite);
//   DTX_EUNREACH  no connection when the request was to be sent, or it
//                 was lost before the request was handed to it: the
//                 request certainly was not delivered;
//   DTX_ETIMEDOUT the request was sent but no reply came in time, or the
//                 connection broke while waiting: outcome unknown;
//   DTX_EPROTO    the reply was malformed or answered another request;
//   DTX_EINVAL    req cannot be encoded; DTX_ENOMEM; DTX_ECLOSED.
// *rep is untouched on the other errors.
dtx_err proto_client_call(proto_client *c, proto_msg *req, proto_msg *rep,
    const proto_call_opts *opts);

// Completion of an asynchronous call. err is one of the codes of
// proto_client_call. rep is non-NULL exactly when err is DTX_OK or
// DTX_EREFUSED: the callback owns its contents (copy the struct and free it
// later with proto_msg_free, or free it now); the pointer itself is valid
// only during the call. Runs on an nng thread: it must not block.
typedef void (*proto_done_fn)(void *arg, dtx_err err, proto_msg *rep);

// Starts the call proto_client_call would make (same header stamping,
// timeouts and retry policy; opts->why is not used, a malformed reply is
// logged) and returns at once. On DTX_OK done(arg, ...) is called exactly
// once, normally later from an nng thread (from the calling thread before
// this returns only when copying the request fails: DTX_ENOMEM). On an error
// return (DTX_EINVAL, DTX_ENOMEM) done is never called. req is borrowed only
// during this call. Thread-safe. Every started call must have completed before
// proto_client_close.
dtx_err proto_client_call_async(proto_client *c, proto_msg *req,
    const proto_call_opts *opts, proto_done_fn done, void *arg);

// Client-side batching over a proto_client: the requests of any number of
// calling threads share BATCH messages. While `inflight` batches are on
// the wire new requests queue; a batch's reply sends what queued up
// meanwhile (at most max_batch requests) as the next one. The server
// answers each element on its own, so each caller gets its own reply.
typedef struct proto_batcher proto_batcher;

// *out returns owned (proto_batcher_close); c is borrowed and must
// outlive it. Errors: DTX_EINVAL (max_batch 0 or above PROTO_MAX_BATCH,
// inflight 0), DTX_ENOMEM.
dtx_err proto_batcher_open(proto_client *c, uint32_t max_batch,
    uint32_t inflight, proto_batcher **out);

// How a batcher sends: the contract of proto_client_call_async.
typedef dtx_err (*proto_send_fn)(void *arg, proto_msg *req,
    const proto_call_opts *opts, proto_done_fn done, void *done_arg);

// The same over another way of sending (for instance a daemon's peer
// calls, which apply its partition and delay faults).
dtx_err proto_batcher_open_send(proto_send_fn send, void *arg,
    uint32_t max_batch, uint32_t inflight, proto_batcher **out);

// Waits until every call has its answer, then frees b. NULL does nothing.
void proto_batcher_close(proto_batcher *b);

// Sends req (borrowed until the call returns; not itself a BATCH) in the
// next batch and waits for its answer, with the return codes of
// proto_client_call (no retries). Thread-safe.
dtx_err proto_batcher_call(
    proto_batcher *b, proto_msg *req, proto_msg *rep, uint32_t timeout_ms);

// The same without waiting: done(arg, err, rep) runs once the answer is
// in (on an nng thread or, when it fails at once, on the caller's; it
// must not block), with the contract of proto_client_call_async. req (and
// what it points to) is borrowed until then. Errors (done never called):
// DTX_EINVAL, DTX_ENOMEM.
dtx_err proto_batcher_call_async(proto_batcher *b, proto_msg *req,
    uint32_t timeout_ms, proto_done_fn done, void *arg);

// Messages sent and requests they carried so far.
void proto_batcher_stats(
    const proto_batcher *b, uint64_t *batches, uint64_t *items);

// The URL the client dials. Borrowed; valid until close.
const char *proto_client_url(const proto_client *c);

// True while the client has at least one connection. Thread-safe.
bool proto_client_connected(const proto_client *c);

// Closes the socket and frees the client. No other thread may be inside
// proto_client_call (or call it later). proto_client_close(NULL) does
// nothing.
void proto_client_close(proto_client *c);

// How many clients of this process were left to the process because
// their socket's close did not end (PROTO_CLOSE_STUCK).
size_t proto_client_left_open(void);

#endif // DTX_PROTO_RPC_H
