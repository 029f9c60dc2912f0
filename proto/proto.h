// SPDX-License-Identifier: MIT
//
// proto: the messages dtx daemons exchange, their strict msgpack encoding,
// and the nng request/reply helpers (a server with worker contexts, a client
// with per-call timeouts and retries) that carry them.

#ifndef DTX_PROTO_H
#define DTX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "clock.h"
#include "common.h"

// ================================================================ wire format
//
// One nng message body holds exactly one msgpack map; nothing may follow it.
// Every message map holds the six header keys and the body keys of its type:
//
//   "v"    uint   protocol version, must be PROTO_VERSION (1)
//   "t"    str    message type name, see proto_type below ("ping", ...)
//   "id"   uint   request id (uint64); a reply carries its request's id
//   "from" uint   sender's node id (uint32)
//   "hlc"  array  [l, c]: the sender's HLC at send time, two uints
//                 (clk_ts_pack / clk_ts_unpack)
//   "vc"   map    {node uint: counter uint, ...}: the sender's vector clock;
//                 node ids must be < the decoder's vc_nodes
//                 (clk_vc_pack / clk_vc_unpack)
//
// Body keys are short strings listed with each body struct below. In the
// lists "uint" is any msgpack unsigned integer encoding (fixint, uint8..64)
// of a value in the C field's range, "int" also allows negative encodings,
// "bool" is msgpack true/false, "str" is a msgpack str (UTF-8 is not
// checked, but a NUL byte inside is an error), "bin" is msgpack bin, "ts"
// is a timestamp as [l, c] like "hlc". Nil, floats and ext are never valid.
// Fields marked "optional" may be absent; every other listed field is
// required, and a key that is not listed for the message's type is an
// error. Map keys are str. The encoder emits the header keys first, in the
// order above, then the body keys in the order listed; the decoder accepts
// any order.
//
// Example, byte by byte: ACK{tx 9} with id 7 from node 2, hlc [l
// 1700000000000, c 3], vc {2: 5} is 45 bytes:
//   87                      map of 7 entries (6 header keys + "tx")
//   a1 76 01                "v": 1
//   a1 74 a3 61 63 6b       "t": "ack"
//   a2 69 64 07             "id": 7
//   a4 66 72 6f 6d 02       "from": 2
//   a3 68 6c 63 92          "hlc": array of 2:
//      cf 00 00 01 8b cf e5 68 00   l (uint64)
//      03                           c
//   a2 76 63 81 02 05       "vc": map of 1: node 2 -> 5
//   a2 74 78 09             "tx": 9
// Integers use msgpack's shortest encoding when sent; any width is read.
//
// Strict decoding: proto_decode returns DTX_EPROTO, with a reason naming
// the problem, for: a body over the size limit, bytes after the map, a
// truncated value, a wrong version, an unknown type name, a missing,
// unknown, duplicate or mistyped key, a value outside its range or enum, a
// count over its limit (below), nesting deeper than PROTO_MAX_DEPTH, a
// BATCH inside a BATCH. It never reads past the buffer and allocates only
// after checking a count against the limits and against the bytes left.

#define PROTO_VERSION 1

// Limits. A decoder rejects anything larger with DTX_EPROTO; the encoder
// rejects it with DTX_EINVAL so that a sender finds its own bug first.
#define PROTO_MAX_MSG_DEFAULT (1u << 20) // whole body, bytes (configurable)
#define PROTO_MAX_KEY 256 // a record key (bin), bytes; at least 1
#define PROTO_MAX_STR 256 // any str field (reason, gid, role...), bytes
#define PROTO_MAX_VALUE 65536 // a PUT value or read entry bytes value
#define PROTO_MAX_OPS 64 // ops per TXN / PREPARE / STEP, results per reply
#define PROTO_MAX_BATCH 1024 // messages per BATCH
#define PROTO_MAX_STEPS 64 // steps per saga
#define PROTO_MAX_PEERS CLK_VC_MAX // participant ids in a PREPARE
#define PROTO_MAX_KEYS 65536 // keys in a READ, entries in a READ_REPLY
#define PROTO_MAX_BLOCKED 1024 // blocked txids in a HEALTH_REPLY
#define PROTO_MAX_COUNTERS 256 // counters in a HEALTH_REPLY
#define PROTO_MAX_FAULT_ARGS 8 // int args of a FAULT
#define PROTO_MAX_FIELDS 16 // keys in any one map
#define PROTO_MAX_DEPTH 8 // nesting of arrays/maps (a batched saga: 6)

// Message types; the wire name of each is given ("t").
typedef enum proto_type {
	PROTO_NONE = 0, // not a message (a zeroed proto_msg)
	PROTO_ERROR, // "error"            proto_error
	PROTO_BATCH, // "batch"            proto_batch
	PROTO_PING, // "ping"              (no body)
	PROTO_PONG, // "pong"              (no body)
	PROTO_HEALTH, // "health"          (no body)
	PROTO_HEALTH_REPLY, // "health_reply" proto_health_reply
	PROTO_FAULT, // "fault"            proto_fault
	PROTO_TXN, // "txn"                proto_txn
	PROTO_TXN_REPLY, // "txn_reply"    proto_txn_reply
	PROTO_PREPARE, // "prepare"        proto_prepare (2PC vote request)
	PROTO_CAN_COMMIT, // "can_commit"  proto_prepare (3PC vote request)
	PROTO_VOTE, // "vote"              proto_vote
	PROTO_COMMIT, // "commit"          proto_txid {tx, cts}
	PROTO_ABORT, // "abort"            proto_txid {tx}
	PROTO_PRE_COMMIT, // "pre_commit"  proto_txid {tx, cts}
	PROTO_DO_COMMIT, // "do_commit"    proto_txid {tx}
	PROTO_ACK, // "ack"                proto_txid {tx} (0 when no txn)
	PROTO_STATUS, // "status"          proto_txid {tx}
	PROTO_STATUS_REPLY, // "status_reply" proto_status_reply
	PROTO_READ, // "read"              proto_read
	PROTO_READ_REPLY, // "read_reply"  proto_read_reply
	PROTO_SAGA_SUBMIT, // "saga_submit" proto_saga_submit
	PROTO_SAGA_REPLY, // "saga_reply"  proto_saga_reply
	PROTO_STEP, // "step"              proto_step
	PROTO_STEP_REPLY, // "step_reply"  proto_step_reply
	PROTO_SAGA_STATUS, // "saga_status" proto_gid
	PROTO_SAGA_STATUS_REPLY, // "saga_status_reply" proto_saga_status_reply
	PROTO_SAGA_FORGET, // "saga_forget" proto_gid (answered with ACK)
	PROTO_TYPE_COUNT
} proto_type;

// Returns the wire name of type ("prepare"), or "?" when out of range.
const char *proto_type_name(proto_type type);

// ================================================================ bodies
//
// Byte strings and C strings in a message are owned by the message when it
// came from proto_decode or when it is a reply a handler built (allocate
// them with dtx_alloc: proto_msg_free releases them). A message a caller
// only encodes (a request passed to proto_client_call) may borrow them.

// A byte string ("bin" on the wire).
typedef struct proto_bytes {
	uint8_t *p;
	uint32_t n;
} proto_bytes;

typedef enum proto_op_kind {
	PROTO_OP_ADD = 0, // value += delta; the result must stay >= min
	PROTO_OP_PUT = 1, // value = bytes
	PROTO_OP_GET = 2, // read the value
} proto_op_kind;

// One per-key operation. Wire: a map
//   "o" uint  kind (proto_op_kind)
//   "k" bin   key, 1..PROTO_MAX_KEY bytes
//   "d" int   delta           (ADD only, required there)
//   "m" int   minimum result  (ADD only, required there)
//   "b" bin   value, 0..PROTO_MAX_VALUE bytes (PUT only, required there)
typedef struct proto_op {
	proto_op_kind kind;
	proto_bytes key;
	int64_t delta;
	int64_t min;
	proto_bytes value;
} proto_op;

typedef enum proto_mode {
	PROTO_MODE_2PC = 0,
	PROTO_MODE_3PC = 1,
} proto_mode;

typedef enum proto_outcome {
	PROTO_COMMITTED = 0,
	PROTO_ABORTED = 1,
	PROTO_UNKNOWN = 2, // the coordinator/orchestrator cannot tell yet
} proto_outcome;

// TXN (client -> coordinator):
//   "m"   uint        mode (proto_mode)
//   "ops" array of op 1..PROTO_MAX_OPS operations
typedef struct proto_txn {
	proto_mode mode;
	uint32_t n_ops;
	proto_op *ops;
} proto_txn;

// TXN_REPLY (coordinator -> client):
//   "out" uint        outcome (proto_outcome)
//   "why" str         reason (optional; NULL when absent)
//   "tx"  uint        transaction id the coordinator assigned (0: none)
//   "cts" ts          commit timestamp (0 unless committed)
//   "res" array int   0..PROTO_MAX_OPS per-op results: the new value of an
//                     ADD, the value read by a GET, 0 for a PUT
typedef struct proto_txn_reply {
	proto_outcome outcome;
	char *reason;
	uint64_t txid;
	clk_ts commit_ts;
	uint32_t n_results;
	int64_t *results;
} proto_txn_reply;

// PREPARE (2PC) and CAN_COMMIT (3PC), coordinator -> participant:
//   "tx"    uint        transaction id
//   "m"     uint        mode (proto_mode)
//   "co"    uint        coordinator's node id
//   "peers" array uint  0..PROTO_MAX_PEERS node ids of all participants of
//                       the transaction (for cooperative termination)
//   "ops"   array op    1..PROTO_MAX_OPS operations for this participant
typedef struct proto_prepare {
	uint64_t txid;
	proto_mode mode;
	uint32_t coord;
	uint32_t n_peers;
	uint32_t *peers;
	uint32_t n_ops;
	proto_op *ops;
} proto_prepare;

// VOTE (participant -> coordinator):
//   "tx"  uint  transaction id
//   "yes" bool  the vote
//   "why" str   reason for a NO (optional)
//   "pts" ts    prepare timestamp (0 for a NO)
typedef struct proto_vote {
	uint64_t txid;
	bool yes;
	char *reason;
	clk_ts prepare_ts;
} proto_vote;

// COMMIT and PRE_COMMIT: "tx" uint, "cts" ts (commit timestamp).
// ABORT, DO_COMMIT, ACK, STATUS: "tx" uint only (commit_ts stays 0 and
// is not sent).
typedef struct proto_txid {
	uint64_t txid;
	clk_ts commit_ts;
} proto_txid;

typedef enum proto_txn_state {
	PROTO_TS_UNKNOWN = 0, // no record
	PROTO_TS_PREPARED = 1,
	PROTO_TS_PRECOMMITTED = 2,
	PROTO_TS_COMMITTED = 3,
	PROTO_TS_ABORTED = 4,
	PROTO_TS_NEVER_VOTED = 5, // a participant that never voted (aborts)
} proto_txn_state;

// STATUS_REPLY:
//   "tx"  uint  transaction id
//   "st"  uint  state (proto_txn_state)
//   "cts" ts    commit timestamp (0 unless committed or precommitted)
typedef struct proto_status_reply {
	uint64_t txid;
	proto_txn_state state;
	clk_ts commit_ts;
} proto_status_reply;

// READ (snapshot read on one participant):
//   "ts"   ts         snapshot timestamp; 0 means "now"
//   "keys" array bin  0..PROTO_MAX_KEYS keys; empty means all keys
typedef struct proto_read {
	clk_ts ts;
	uint32_t n_keys;
	proto_bytes *keys;
} proto_read;

typedef enum proto_read_status {
	PROTO_READ_OK = 0,
	PROTO_READ_RETRY = 1, // blocked by a prepared intent at ts <= T
} proto_read_status;

// One READ_REPLY entry. Wire: a map
//   "k" bin   key
//   "f" bool  found
//   "i" int   integer value (found and !is_bytes)
//   "b" bin   bytes value (found and is_bytes)
// Exactly one of "i"/"b" when found, neither when not found.
typedef struct proto_entry {
	proto_bytes key;
	bool found;
	bool is_bytes;
	int64_t ival;
	proto_bytes bval;
} proto_entry;

// READ_REPLY:
//   "ts"   ts            the timestamp the snapshot was read at
//   "st"   uint          status (proto_read_status)
//   "btx"  uint          txid that blocked the read (0 unless RETRY)
//   "ents" array entry   0..PROTO_MAX_KEYS entries
typedef struct proto_read_reply {
	clk_ts ts;
	proto_read_status status;
	uint64_t blocked_txid;
	uint32_t n_entries;
	proto_entry *entries;
} proto_read_reply;

// One saga step. Wire: a map
//   "p" uint  participant node id
//   "a" op    the action
//   "c" op    the compensation
typedef struct proto_saga_step {
	uint32_t participant;
	proto_op action;
	proto_op compensate;
} proto_saga_step;

// SAGA_SUBMIT (client -> saga orchestrator):
//   "gid"   str              global id chosen by the client, 1..PROTO_MAX_STR
//   "steps" array of step    1..PROTO_MAX_STEPS steps, run in order
typedef struct proto_saga_submit {
	char *gid;
	uint32_t n_steps;
	proto_saga_step *steps;
} proto_saga_submit;

// SAGA_REPLY:
//   "gid" str   global id
//   "out" uint  outcome (proto_outcome)
//   "fs"  int   index of the step that failed, -1 when none
//   "why" str   reason (optional)
typedef struct proto_saga_reply {
	char *gid;
	proto_outcome outcome;
	int32_t failed_step;
	char *reason;
} proto_saga_reply;

typedef enum proto_phase {
	PROTO_PHASE_ACTION = 0,
	PROTO_PHASE_COMPENSATE = 1,
} proto_phase;

// STEP (orchestrator -> participant):
//   "gid" str       global id
//   "br"  uint      branch (step index, uint32)
//   "ph"  uint      phase (proto_phase)
//   "ops" array op  1..PROTO_MAX_OPS operations
typedef struct proto_step {
	char *gid;
	uint32_t branch;
	proto_phase phase;
	uint32_t n_ops;
	proto_op *ops;
} proto_step;

typedef enum proto_step_result {
	PROTO_STEP_OK = 0,
	PROTO_STEP_REFUSED = 1, // barrier refused it (action after compensate)
	PROTO_STEP_FAILED = 2, // business failure (e.g. balance below min)
} proto_step_result;

// STEP_REPLY:
//   "gid" str   global id
//   "br"  uint  branch
//   "ph"  uint  phase
//   "res" uint  result (proto_step_result)
//   "dup" bool  the barrier already held this (gid, branch, phase)
//   "why" str   reason (optional)
typedef struct proto_step_reply {
	char *gid;
	uint32_t branch;
	proto_phase phase;
	proto_step_result result;
	bool duplicate;
	char *reason;
} proto_step_reply;

// SAGA_STATUS and SAGA_FORGET: "gid" str.
typedef struct proto_gid {
	char *gid;
} proto_gid;

typedef enum proto_saga_state {
	PROTO_SAGA_UNKNOWN = 0,
	PROTO_SAGA_RUNNING = 1,
	PROTO_SAGA_COMPENSATING = 2,
	PROTO_SAGA_COMMITTED = 3,
	PROTO_SAGA_ABORTED = 4, // compensated completely
} proto_saga_state;

typedef enum proto_step_state {
	PROTO_SS_PENDING = 0,
	PROTO_SS_RUNNING = 1,
	PROTO_SS_DONE = 2,
	PROTO_SS_FAILED = 3,
	PROTO_SS_COMPENSATING = 4,
	PROTO_SS_COMPENSATED = 5,
} proto_step_state;

// SAGA_STATUS_REPLY:
//   "gid"   str         global id
//   "st"    uint        state (proto_saga_state)
//   "steps" array uint  0..PROTO_MAX_STEPS step states (proto_step_state)
//   "age"   uint        milliseconds since the saga was submitted
//   "err"   str         last error (optional)
typedef struct proto_saga_status_reply {
	char *gid;
	proto_saga_state state;
	uint32_t n_steps;
	uint8_t *step_states; // proto_step_state values
	uint64_t age_ms;
	char *last_error;
} proto_saga_status_reply;

// A named counter in a HEALTH_REPLY.
typedef struct proto_counter {
	char *name; // 1..PROTO_MAX_STR bytes
	int64_t value;
} proto_counter;

// HEALTH_REPLY:
//   "role"    str         "coordinator", "participant", "saga", ...
//   "node"    uint        node id
//   "st"      str         state ("ok", "recovering", "blocked", "failed")
//   "indoubt" uint        number of in-doubt transactions
//   "blocked" array uint  0..PROTO_MAX_BLOCKED txids blocked in doubt
//   "ctr"     map         0..PROTO_MAX_COUNTERS entries {str: int};
//                         names unique
typedef struct proto_health_reply {
	char *role;
	uint32_t node;
	char *state;
	uint64_t in_doubt;
	uint32_t n_blocked;
	uint64_t *blocked;
	uint32_t n_counters;
	proto_counter *counters;
} proto_health_reply;

// FAULT (test hook, answered with ACK or ERROR):
//   "kind" str        "clock", "crash_at", "wal_sync", ... (1..PROTO_MAX_STR)
//   "args" array int  0..PROTO_MAX_FAULT_ARGS integer arguments
//   "s"    str        string argument (optional)
typedef struct proto_fault {
	char *kind;
	uint32_t n_args;
	int64_t args[PROTO_MAX_FAULT_ARGS];
	char *arg;
} proto_fault;

// ERROR (a definite refusal):
//   "code" uint  a dtx_err, 1 .. DTX_ERR_COUNT-1
//   "why"  str   reason (optional)
typedef struct proto_error {
	dtx_err code;
	char *reason;
} proto_error;

typedef struct proto_msg proto_msg;

// BATCH: "msgs" array, 1..PROTO_MAX_BATCH complete messages (each a map
// with its own header and body, as above; no BATCH inside a BATCH). A
// reply BATCH holds one reply per request, in request order.
typedef struct proto_batch {
	uint32_t n;
	proto_msg *msgs;
} proto_batch;

// ================================================================ messages

// The header every message carries. All fields are decoded, so a daemon
// can merge hlc and vc into its own clocks on receipt.
typedef struct proto_hdr {
	uint32_t version; // PROTO_VERSION on the wire
	proto_type type;
	uint64_t id; // request id; replies echo it
	uint32_t from; // sender's node id
	clk_ts hlc;
	clk_vc vc;
} proto_hdr;

// A message: the header and the body selected by hdr.type. Bodies without
// fields (PING, PONG, HEALTH) use none of the union.
struct proto_msg {
	proto_hdr hdr;
	union {
		proto_error error;
		proto_batch batch;
		proto_health_reply health_reply;
		proto_fault fault;
		proto_txn txn;
		proto_txn_reply txn_reply;
		proto_prepare prepare; // PREPARE, CAN_COMMIT
		proto_vote vote;
		proto_txid txid; // COMMIT, ABORT, PRE_COMMIT, DO_COMMIT,
		                 // ACK, STATUS
		proto_status_reply status_reply;
		proto_read read;
		proto_read_reply read_reply;
		proto_saga_submit saga_submit;
		proto_saga_reply saga_reply;
		proto_step step;
		proto_step_reply step_reply;
		proto_gid gid; // SAGA_STATUS, SAGA_FORGET
		proto_saga_status_reply saga_status_reply;
	} u;
};

// Zeroes m and sets its type and version. Never fails.
void proto_msg_init(proto_msg *m, proto_type type);

// Makes m a FAULT request for kind with the nargs integers at args and
// the string argument s (NULL: none). m borrows kind and s: encode or
// send it, never proto_msg_free it. DTX_EINVAL when nargs is over
// PROTO_MAX_FAULT_ARGS (m is then an empty FAULT).
dtx_err proto_fault_init(proto_msg *m, const char *kind, const int64_t *args,
    uint32_t nargs, const char *s);

// Frees everything m owns (strings, byte strings, arrays, batch elements,
// recursively) with dtx_free and zeroes m. Does not free m itself.
// proto_msg_free(NULL) does nothing.
void proto_msg_free(proto_msg *m);

// Sets an owned reason/string field: *dst = a dtx_alloc'd copy of s
// (freeing the previous one). DTX_ENOMEM, or DTX_EINVAL when s is longer
// than PROTO_MAX_STR.
dtx_err proto_str_set(char **dst, const char *s);

// Sets an owned byte string: dst = a dtx_alloc'd copy of p[0..n).
dtx_err proto_bytes_set(proto_bytes *dst, const void *p, size_t n);

// Builds an owned ERROR message with code and a formatted reason
// (truncated to PROTO_MAX_STR bytes); keeps m->hdr.id. DTX_ENOMEM.
dtx_err proto_msg_set_error(proto_msg *m, dtx_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// ================================================================ codec

// What a decoder accepts.
typedef struct proto_limits {
	size_t max_msg; // body bytes; 0 means PROTO_MAX_MSG_DEFAULT
	uint32_t vc_nodes; // vc node ids must be < this; 0 means CLK_VC_MAX
} proto_limits;

// Encodes m and appends it to the body of out (which may already hold
// bytes: pass an empty message). m is borrowed. Returns DTX_EINVAL when m
// breaks a limit or holds an out-of-range enum (out's body is then
// restored to its old length), DTX_ENOMEM. Thread-safe for distinct out.
dtx_err proto_encode(const proto_msg *m, nng_msg *out);

// Encodes m into a new buffer: *buf returns owned (free with dtx_free),
// *len its length. Errors as proto_encode.
dtx_err proto_encode_buf(const proto_msg *m, uint8_t **buf, size_t *len);

// Decodes exactly one message from buf[0..len) (borrowed) into *out,
// whose previous contents are ignored. On success *out owns its memory
// (free with proto_msg_free). Errors: DTX_EPROTO with a one-line reason in
// why (may be NULL; why_len bytes, NUL-terminated) naming the problem and
// the field; DTX_ENOMEM. On error *out is zeroed and nothing leaks.
// lim may be NULL for the defaults. Thread-safe.
dtx_err proto_decode(const void *buf, size_t len, const proto_limits *lim,
    proto_msg *out, char *why, size_t why_len);

// proto_decode on the body of msg (borrowed; not modified).
dtx_err proto_decode_nng(const nng_msg *msg, const proto_limits *lim,
    proto_msg *out, char *why, size_t why_len);

// Translates an nng error code into a dtx_err (NNG_ETIMEDOUT ->
// DTX_ETIMEDOUT, NNG_ECONNREFUSED -> DTX_EUNREACH, NNG_ECLOSED ->
// DTX_ECLOSED, NNG_ENOMEM -> DTX_ENOMEM, address errors -> DTX_EINVAL...).
dtx_err proto_from_nng(int rv);

// ================================================================ RPC
//
// Both ends use nng REQ/REP (protocol version 0) with contexts. Every
// socket has NNG_OPT_RECVMAXSZ set to its max_msg, so nng drops a
// connection that sends more (the peer sees the connection lost; the
// server keeps serving). The client disables nng's timed request resend:
// our protocols retry at their own layer, where idempotence is known.

// Stamps an outgoing message's clock fields (hdr->hlc, hdr->vc): called
// once per message the server or client encodes (each BATCH element too),
// from the calling thread. Must be thread-safe.
typedef void (*proto_stamp_fn)(void *arg, proto_hdr *hdr);

// Observes an incoming message's header (to merge its clocks): called once
// per decoded message (each BATCH element too). Must be thread-safe.
typedef void (*proto_observe_fn)(void *arg, const proto_hdr *hdr);

// The request a handler is serving, as the server passes it (the way nng
// passes an aio): the handler may take the request over with
// proto_server_defer(call). Borrowed, valid only during the handler's
// call. NULL where the request cannot be deferred (on a proto_pool
// thread, or when a handler is called directly).
typedef struct proto_call proto_call;

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
	void *arg; // passed to handler, stamp, observe
} proto_server_cfg;

typedef struct proto_server proto_server;

// Counters of a server (monotonic since open).
typedef struct proto_server_stats {
	uint64_t requests; // messages received (a BATCH counts once)
	uint64_t replies; // replies sent
	uint64_t decode_errors; // requests answered with ERROR DTX_EPROTO
	uint64_t handler_errors; // handler returned an error
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
// answers as usual.
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

// ================================================================ daemons
//
// The runtime every dtx daemon shares (proto/daemon.c), so that a daemon's
// main() reads as: open the runtime, open its own state, serve, wait for
// a signal, close. It owns:
// - the configuration: the common flags below (also read from DTX_<NAME>
//   environment variables), plus the daemon's own table;
// - the topology (--topology) and this node's place in it (--node-id);
// - the node's clocks: a clk_source (DTX_CLOCK_OFFSET_MS/DTX_CLOCK_RATE at
//   start, the "clock" FAULT at run time) and a clk_node whose persisted
//   bound lives in <data>/clock.bound; every message in and out goes
//   through it (an incoming message more than --max-offset-ms ahead is
//   answered with ERROR DTX_ECLOCK and counted);
// - the server on --listen (default: this node's url in the topology);
// - PING (answered here), HEALTH (role, node and counters filled here, the
//   rest by the daemon's health hook) and the generic FAULT kinds:
//     "clock"     args [offset_ms, rate_permille]: skew this node's clock
//                 (rate 1000 = real speed; [0, 1000] resets);
//     "partition" args [id...]: calls from this node to those ids fail
//                 as lost packets would (after the call's timeout, with
//                 DTX_ETIMEDOUT; DTX_EUNREACH if never connected); no
//                 args heals;
//     "delay"     args [id, ms]: calls to id wait ms first (ms 0 clears);
//     "crash_at"  s NAME, args [nth]: arm crash point NAME (dtx_crashpoint);
//   other kinds go to the daemon's fault hook;
// - clients to every peer, created on first use and shared by all threads;
// - SIGTERM/SIGINT (a clean stop) and SIGPIPE (ignored).

typedef struct proto_daemon proto_daemon;

// The common flags. Strings are owned by the runtime.
typedef struct proto_daemon_cfg {
	int64_t node_id; // --node-id (required)
	char *topology; // --topology FILE (required)
	char *data; // --data DIR (required; created if missing)
	char *listen; // --listen URL (default: from the topology)
	int64_t workers; // --workers: server worker threads (64)
	char *log_level; // --log-level debug|info|warn|error (info)
	int64_t max_offset_ms; // --max-offset-ms: HLC max_offset (500)
	int64_t timeout_ms; // --timeout-ms: default peer call timeout (1000)
} proto_daemon_cfg;

// What a daemon plugs into the runtime. All hooks run on server worker
// threads and must be thread-safe; arg is passed to each.
typedef struct proto_daemon_hooks {
	dtx_role role; // the role this daemon must have in the topology
	// Serves every request the runtime does not (see above). With
	// whole_batches a BATCH arrives whole (its elements' clocks already
	// observed) and must be answered with a BATCH of replies in order.
	proto_handler_fn handler;
	bool whole_batches;
	// Fills the daemon's part of a HEALTH reply: state, in_doubt,
	// blocked, and any counters it adds with proto_health_counter.
	// Optional.
	dtx_err (*health)(void *arg, proto_health_reply *rep);
	// FAULT kinds the runtime does not know; DTX_ENOENT for an unknown
	// kind (answered as an ERROR). Optional.
	dtx_err (*fault)(void *arg, const proto_fault *f);
	void *arg;
} proto_daemon_hooks;

// Blocks SIGTERM/SIGINT in the calling thread (call it first in main,
// before any thread starts), parses argv[1..argc) against the common
// flags and the daemon's own table extra[0..nextra) into extra_cfg (may
// be NULL when nextra is 0; its strings are freed by proto_daemon_close),
// sets up logging as "<role>-<id>", loads the topology and opens the
// clocks. On a bad flag or file prints one line saying what is wrong and
// returns DTX_EINVAL. *out returns owned (close with proto_daemon_close).
// On --help (or -h) prints the usage and returns DTX_OK with *out NULL:
// main() then has nothing to run and ends with success. Never exits.
dtx_err proto_daemon_open(const char *prog, dtx_role role, int argc,
    char **argv, const dtx_cfg_opt *extra, size_t nextra, void *extra_cfg,
    proto_daemon **out);

// Starts the server with hooks (copied). DTX_EEXIST when the address is in
// use, DTX_EINVAL for a bad URL.
dtx_err proto_daemon_serve(proto_daemon *d, const proto_daemon_hooks *hooks);

// Waits for SIGTERM or SIGINT (or proto_daemon_stop), then returns.
void proto_daemon_wait(proto_daemon *d);

// Makes proto_daemon_wait return (e.g. from a daemon's own thread after
// a fatal error). Thread-safe.
void proto_daemon_stop(proto_daemon *d);

// True once a stop was asked for. Thread-safe.
bool proto_daemon_stopping(proto_daemon *d);

// True once a crash point was armed in this process (DTX_CRASH_AT at
// start, or a "crash_at" FAULT since; it stays true). A daemon may then
// keep an order of events that a crash point's test relies on but that
// costs time otherwise. Thread-safe.
bool proto_daemon_crash_armed(proto_daemon *d);

// Stops the server (handlers in progress finish), closes the peer clients
// and the clocks, frees d and extra_cfg's strings. NULL does nothing. The
// daemon closes its own state after this.
void proto_daemon_close(proto_daemon *d);

// Accessors (borrowed, valid until close; thread-safe).
const proto_daemon_cfg *proto_daemon_config(const proto_daemon *d);
const dtx_topo *proto_daemon_topo(const proto_daemon *d);
clk_node *proto_daemon_clock(proto_daemon *d);
uint32_t proto_daemon_id(const proto_daemon *d);

// Calls peer (a node id in the topology) through the shared client,
// applying the partition and delay faults. Same contract as
// proto_client_call (opts may be NULL: the --timeout-ms default, not
// idempotent). DTX_EINVAL for an unknown peer. Thread-safe.
dtx_err proto_daemon_call(proto_daemon *d, uint32_t peer, proto_msg *req,
    proto_msg *rep, const proto_call_opts *opts);

// The asynchronous twin of proto_daemon_call: the contract of
// proto_client_call_async, with the partition and delay faults applied
// (a delayed call waits on an nng timer, not on a thread). req and what
// it points to are borrowed until done is called (a delayed call encodes
// it only after its delay). DTX_EINVAL for an unknown peer. Every started
// call must have completed before proto_daemon_close. Thread-safe.
dtx_err proto_daemon_call_async(proto_daemon *d, uint32_t peer, proto_msg *req,
    const proto_call_opts *opts, proto_done_fn done, void *arg);

// Appends a counter to a HEALTH reply being built (name copied).
// DTX_ENOMEM, DTX_EINVAL when the reply already holds PROTO_MAX_COUNTERS.
dtx_err proto_health_counter(
    proto_health_reply *rep, const char *name, int64_t value);

// A counter's name (borrowed) and value, for proto_health_counters.
typedef struct proto_named_value {
	const char *name;
	int64_t value;
} proto_named_value;

// Appends the n counters of c (names copied) to a HEALTH reply being
// built, in order, stopping at the first error of proto_health_counter.
dtx_err proto_health_counters(
    proto_health_reply *rep, const proto_named_value *c, size_t n);

// Appends one counter per name, names[i] (copied) with the value of
// ctr[i], as proto_health_counters does. Thread-safe against concurrent
// increments of ctr.
dtx_err proto_health_counter_array(proto_health_reply *rep,
    const char *const *names, _Atomic uint64_t *ctr, size_t n);

// The "wal_sync" FAULT of a daemon with a log on disk: args [n] make the
// next n fsyncs of that log fail (default 1; 0 disarms), as a failing
// disk would. Stores n in *left and logs it, calling the log what
// (borrowed). DTX_ENOENT for any other kind of FAULT, DTX_EINVAL for n
// outside 0..1000000. Thread-safe.
dtx_err proto_fault_wal_sync(
    const proto_fault *f, _Atomic int64_t *left, const char *what);

// For the log's fsync hook: true when a "wal_sync" FAULT still asks for
// a failed fsync, taking one from *left. Thread-safe.
bool proto_fault_sync_due(_Atomic int64_t *left);

#endif // DTX_PROTO_H
