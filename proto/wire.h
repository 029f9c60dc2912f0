// SPDX-License-Identifier: MIT
//
// proto's wire layer: the messages dtx daemons exchange and their strict
// msgpack encoding. Pure (no sockets, no threads of its own): the fuzz
// target links this layer alone.

#ifndef DTX_PROTO_WIRE_H
#define DTX_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

// Message types; the wire name of each is given ("t"). A new type is a
// value here, its body struct below, and one row (name and body functions)
// in the descriptor table of bodies.c.
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
	PROTO_HELLO, // "hello"            (no body): asks for a CHALLENGE
	PROTO_CHALLENGE, // "challenge"    proto_auth {nonce}
	PROTO_AUTH, // "auth"              proto_auth {cert, sig} (ACK)
	PROTO_TXN_LIST, // "txn_list"      proto_txid {tx} (admin, harness)
	PROTO_TXN_LIST_REPLY, // "txn_list_reply" proto_txn_list_reply
	PROTO_TXN_RESOLVE, // "txn_resolve" proto_txn_resolve (admin)
	PROTO_TXN_RESOLVE_REPLY, // "txn_resolve_reply" proto_txn_resolve_reply
	PROTO_TRACE, // "trace"            proto_trace (admin, harness)
	PROTO_TRACE_REPLY, // "trace_reply" proto_trace_reply
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
	// Append the element delta to the key's list (created when the key
	// is missing). A list is stored as a byte value: the 4 bytes "DTXL"
	// then each element as 8 bytes little-endian, oldest first
	// (PROTO_LIST_MAGIC); a key holding anything else refuses it.
	PROTO_OP_APPEND = 3,
} proto_op_kind;

#define PROTO_LIST_MAGIC "DTXL" // first 4 bytes of a list value
#define PROTO_LIST_HDR 4u // bytes before the first element

// One per-key operation. Wire: a map
//   "o" uint  kind (proto_op_kind)
//   "k" bin   key, 1..PROTO_MAX_KEY bytes
//   "d" int   delta           (ADD only, required there), or the element
//             (APPEND only, required there)
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
	// Parallel commit: committed iff every participant durably voted
	// YES, at the largest prepare ts; no coordinator record (rule 25).
	PROTO_MODE_PC = 2,
} proto_mode;

typedef enum proto_outcome {
	PROTO_COMMITTED = 0,
	PROTO_ABORTED = 1,
	PROTO_UNKNOWN = 2, // the coordinator/orchestrator cannot tell yet
} proto_outcome;

// TXN (client -> coordinator):
//   "m"   uint        mode (proto_mode)
//   "ops" array of op 1..PROTO_MAX_OPS operations
//   "tx"  uint        transaction id the client chose (optional, non-zero;
//                     absent: the coordinator draws one), so that a client
//                     that times out still knows what to ask about
typedef struct proto_txn {
	proto_mode mode;
	uint32_t n_ops;
	proto_op *ops;
	uint64_t txid; // 0: not sent
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
//   "pts" ts    prepare ts of a parallel-commit (pc) transaction PREPARED
//               at the sender, its YES vote durable (optional; 0: absent)
typedef struct proto_status_reply {
	uint64_t txid;
	proto_txn_state state;
	clk_ts commit_ts;
	clk_ts prepare_ts;
} proto_status_reply;

// READ (snapshot read on one participant):
//   "ts"   ts         snapshot timestamp; 0 means "now"
//   "keys" array bin  0..PROTO_MAX_KEYS keys; empty means all keys
//   "pg"   uint       optional (0: absent): ask for one page of at most
//                     this many bytes of entries (uint32; the participant
//                     lowers it to PROTO_READ_PAGE_MAX). A page holds at
//                     least one entry when any is left, whatever its size.
//   "aft"  bin        optional (empty: absent), only with "pg" and no
//                     "keys": the cursor, the "nxt" of the previous page
//                     (1..PROTO_MAX_KEY bytes)
//
// Paging (added compatibly: a READ without "pg" is answered as before,
// in one reply, which fails with an ERROR once it cannot be encoded
// within the body limit). With "pg" a read of all keys returns the
// visible keys in key order (bytewise, a prefix first), starting after
// "aft" when it is given, and as many as the page holds; when keys are
// left the reply names the last one in "nxt". The client sends the next
// READ with the same "pg", "aft" = that "nxt" and "ts" = the first
// reply's "ts", so every page is read at one timestamp and the pages
// together are one consistent snapshot (versions at a timestamp the HLC
// has passed never change; a page whose snapshot was garbage-collected
// in between is an ERROR DTX_ERANGE, and the client starts over). A
// paged read of listed keys answers them in order, as many as the page
// holds; the client asks again for the keys after the answered prefix.
// "aft" with "keys" is refused with an ERROR DTX_EINVAL.
typedef struct proto_read {
	clk_ts ts;
	uint32_t n_keys;
	proto_bytes *keys;
	uint32_t page; // "pg"
	proto_bytes after; // "aft"
} proto_read;

// The largest page a participant returns (bytes of entries), leaving
// room under the default body limit for the header and one entry past
// the bound; and the page the project's own readers ask for.
#define PROTO_READ_PAGE_MAX (PROTO_MAX_MSG_DEFAULT / 2u)
#define PROTO_READ_PAGE_DEFAULT (256u * 1024u)

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
//   "nxt"  bin           optional (empty: absent), only in a reply to a
//                        paged read of all keys with keys left: the
//                        cursor for the next page (see READ)
typedef struct proto_read_reply {
	clk_ts ts;
	proto_read_status status;
	uint64_t blocked_txid;
	uint32_t n_entries;
	proto_entry *entries;
	proto_bytes next; // "nxt"
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
//   "cts"   array ts    (optional) n_steps entries: the HLC stamped on the
//                       answer that completed each step's compensation,
//                       [0, 0] when not known (not compensated, or
//                       compensated before the orchestrator last started)
typedef struct proto_saga_status_reply {
	char *gid;
	proto_saga_state state;
	uint32_t n_steps;
	uint8_t *step_states; // proto_step_state values
	uint64_t age_ms;
	char *last_error;
	clk_ts *comp_ts; // NULL, or n_steps entries (0: not known)
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

// CHALLENGE: "n" bin, PROTO_NONCE_LEN bytes: the nonce a server gives a
// connection (the reply to HELLO). AUTH: "c" bin, 1..PROTO_MAX_CERT
// bytes: the sender's certificate in PEM; "s" bin, 1..PROTO_MAX_SIG
// bytes: its signature over the signed hello (proto_hello_digest in
// rpc.h). CHALLENGE uses nonce only, AUTH cert and sig only.
#define PROTO_NONCE_LEN 32
#define PROTO_MAX_CERT 16384
#define PROTO_MAX_SIG 1024
typedef struct proto_auth {
	proto_bytes nonce;
	proto_bytes cert;
	proto_bytes sig;
} proto_auth;

// ---------------------------------------------------------------- operator
// messages: transactions in doubt, and heuristic decisions
//
// TXN_LIST (admin or harness -> participant): "tx" uint, one transaction
// id, or 0 for all of them (proto_txid {tx}). Answered with
// TXN_LIST_REPLY: what the participant holds in doubt, and every
// heuristic decision it ever made.

#define PROTO_MAX_LIST 256 // entries of each list in a TXN_LIST_REPLY
#define PROTO_MAX_LIST_KEYS 8 // keys shown per transaction in doubt

// One transaction in doubt at the sender. Wire: a map
//   "tx"    uint        transaction id
//   "st"    uint        state (proto_txn_state: PREPARED or PRECOMMITTED)
//   "m"     uint        mode (proto_mode)
//   "co"    uint        the coordinator's node id
//   "peers" array uint  0..PROTO_MAX_PEERS other participants' node ids
//   "age"   uint        ms from its prepare ts to the sender's clock now
//   "pts"   ts          prepare timestamp
//   "cts"   ts          commit timestamp when PRECOMMITTED, else 0
//   "keys"  array bin   0..PROTO_MAX_LIST_KEYS of the keys it locks
//   "nk"    uint        how many keys it locks in all
//   "wait"  str         what it waits for, in words (1..PROTO_MAX_STR)
typedef struct proto_indoubt {
	uint64_t txid;
	proto_txn_state state;
	proto_mode mode;
	uint32_t coord;
	uint32_t n_peers;
	uint32_t peers[PROTO_MAX_PEERS];
	uint64_t age_ms;
	clk_ts prepare_ts;
	clk_ts commit_ts;
	uint32_t n_keys;
	proto_bytes keys[PROTO_MAX_LIST_KEYS];
	uint64_t keys_total;
	char *wait;
} proto_indoubt;

typedef enum proto_heur_verdict {
	PROTO_HEUR_UNCONFIRMED = 0, // the coordinator's decision not known
	PROTO_HEUR_AGREED = 1, // the coordinator decided the same
	PROTO_HEUR_HAZARD = 2, // it decided the other way: a heuristic hazard
} proto_heur_verdict;

// One heuristic decision at the sender. Wire: a map
//   "tx"   uint  transaction id
//   "out"  uint  what was done (proto_txn_state COMMITTED or ABORTED)
//   "cts"  ts    commit timestamp when COMMITTED, else 0
//   "at"   uint  when: ms since the Unix epoch
//   "by"   uint  the node id that asked for it
//   "who"  str   who asked, as recorded ("admin 7"), 1..PROTO_MAX_STR
//   "why"  str   the reason given, 0..PROTO_MAX_STR bytes
//   "co"   uint  the transaction's coordinator
//   "m"    uint  mode (proto_mode)
//   "v"    uint  verdict (proto_heur_verdict)
//   "cout" uint  the coordinator's decision once known (proto_txn_state
//                COMMITTED or ABORTED; UNKNOWN while unconfirmed)
//   "vat"  uint  when the verdict was learned, ms since the epoch (0: not)
typedef struct proto_heur {
	uint64_t txid;
	proto_txn_state outcome;
	clk_ts commit_ts;
	uint64_t at_ms;
	uint32_t by;
	char *who;
	char *why;
	uint32_t coord;
	proto_mode mode;
	proto_heur_verdict verdict;
	proto_txn_state coord_outcome;
	uint64_t verdict_ms;
} proto_heur;

// TXN_LIST_REPLY:
//   "txs"  array  0..PROTO_MAX_LIST transactions in doubt (proto_indoubt)
//   "heur" array  0..PROTO_MAX_LIST heuristic decisions (proto_heur),
//                 oldest first
//   "more" uint   entries left out of the two lists for their limit
//   "st"   uint   for one asked txid: its state at the sender
//                 (proto_txn_state; UNKNOWN: no record), read without
//                 recording anything (unlike STATUS, whose NEVER_VOTED
//                 fences the txid); UNKNOWN when all were asked for
//   "cts"  ts     its commit ts when COMMITTED or PRECOMMITTED, else 0
typedef struct proto_txn_list_reply {
	uint32_t n_txs;
	proto_indoubt *txs;
	uint32_t n_heur;
	proto_heur *heur;
	uint64_t more;
	proto_txn_state state;
	clk_ts commit_ts;
} proto_txn_list_reply;

// TXN_RESOLVE (admin -> participant): decide a transaction in doubt by
// hand, applied only when its coordinator (a pc transaction: its peers)
// cannot be reached; see participant/heuristic.c (rule 27).
//   "tx"  uint  transaction id (non-zero)
//   "c"   bool  commit (true) or abort (false)
//   "why" str   the operator's reason (optional)
typedef struct proto_txn_resolve {
	uint64_t txid;
	bool commit;
	char *reason;
} proto_txn_resolve;

// TXN_RESOLVE_REPLY:
//   "tx"  uint  transaction id
//   "out" uint  its outcome here now (proto_txn_state COMMITTED or
//               ABORTED)
//   "cts" ts    commit timestamp when COMMITTED, else 0
//   "h"   bool  true: decided heuristically, as asked; false: the
//               protocol decided it (the coordinator or the peers
//               answered) and the request was not applied
//   "why" str   who decided, in words (1..PROTO_MAX_STR bytes)
typedef struct proto_txn_resolve_reply {
	uint64_t txid;
	proto_txn_state outcome;
	clk_ts commit_ts;
	bool heuristic;
	char *reason;
} proto_txn_resolve_reply;
// ---------------------------------------------------------------- trace
// A daemon keeps the last events of its transactions and sagas in a
// bounded ring (proto/daemon.h, proto_daemon_trace): each message it
// sends or receives that names a transaction or saga, and each state
// change its engine records, stamped with the node's HLC and vector
// clock. TRACE asks for them; `dtx trace` orders them by happened-before.

#define PROTO_MAX_TRACE 4096 // events in a TRACE_REPLY

typedef enum proto_ev_kind {
	PROTO_EV_SEND = 0, // a message left (ty: its type)
	PROTO_EV_RECV = 1, // a message arrived (ty, p and pc: its send)
	PROTO_EV_BEGIN = 2, // a transaction or saga started here
	PROTO_EV_FORCE = 3, // a record was forced to the log
	PROTO_EV_DECIDE = 4, // the outcome was decided
	PROTO_EV_APPLY = 5, // the outcome (or a step) was applied
	PROTO_EV_RETRY = 6, // something is tried again
	PROTO_EV_RECOVER = 7, // recovery found or resolved it
	PROTO_EV_COUNT
} proto_ev_kind;

// "send", "recv", ...; "?" out of range.
const char *proto_ev_name(proto_ev_kind k);

// TRACE: "tx" uint the transaction id (0: any), "gid" str a saga's global
// id (optional). With tx 0 and no gid: every event the ring holds.
typedef struct proto_trace {
	uint64_t txid;
	char *gid; // NULL: not sent
} proto_trace;

// One event. Wire: a map
//   "seq" uint  the daemon's event number (1, 2, ... since it started)
//   "k"   uint  kind (proto_ev_kind)
//   "ty"  uint  the message's type (proto_type) for send/recv, else 0
//   "p"   uint  recv: the sender's node id, else 0
//   "pc"  uint  recv: the sender's own vector clock entry in the message
//               (which names the sender's send event), else 0
//   "tx"  uint  transaction id (0: a saga's event)
//   "gid" str   saga global id (optional)
//   "hlc" ts    the node's HLC at the event
//   "vc"  map   the node's vector clock at the event (as the header's)
//   "w"   str   what happened, a message id such as "PREPARED" (optional)
//   "al"  str   another name of the same saga (optional): the barrier id
//               the orchestrator gives the participants for gid
typedef struct proto_trace_ev {
	uint64_t seq;
	proto_ev_kind kind;
	proto_type type;
	uint32_t peer;
	uint64_t peer_c;
	uint64_t txid;
	char *gid;
	clk_ts hlc;
	clk_vc vc;
	char *what;
	char *alias;
} proto_trace_ev;

// TRACE_REPLY:
//   "node" uint        the daemon's node id
//   "boot" uint        when the daemon started (HLC l, ms): tells its
//                      incarnations apart
//   "lost" uint        events the ring no longer holds (overwritten), or
//                      that did not fit this reply
//   "evs"  array event 0..PROTO_MAX_TRACE events, oldest first
typedef struct proto_trace_reply {
	uint32_t node;
	uint64_t boot;
	uint64_t lost;
	uint32_t n_events;
	proto_trace_ev *events;
} proto_trace_reply;

// The transaction id (0: none) and saga gid (NULL: none, borrowed from m)
// a message names: the id of PREPARE, VOTE, COMMIT, ..., TXN_REPLY, the
// gid of STEP, SAGA_SUBMIT, .... False when it names neither.
bool proto_msg_ref(const proto_msg *m, uint64_t *txid, const char **gid);

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
// fields (PING, PONG, HEALTH, HELLO) use none of the union.
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
		proto_auth auth; // CHALLENGE, AUTH
		proto_txn_list_reply txn_list_reply;
		proto_txn_resolve txn_resolve;
		proto_txn_resolve_reply txn_resolve_reply;
		proto_trace trace;
		proto_trace_reply trace_reply;
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

// Encodes m into a new buffer: *buf returns owned (free with dtx_free),
// *len its length. m is borrowed. Returns DTX_EINVAL when m breaks a
// limit or holds an out-of-range enum, DTX_ENOMEM. Thread-safe.
dtx_err proto_encode_buf(const proto_msg *m, uint8_t **buf, size_t *len);

// Decodes exactly one message from buf[0..len) (borrowed) into *out,
// whose previous contents are ignored. On success *out owns its memory
// (free with proto_msg_free). Errors: DTX_EPROTO with a one-line reason in
// why (may be NULL; why_len bytes, NUL-terminated) naming the problem and
// the field; DTX_ENOMEM. On error *out is zeroed and nothing leaks.
// lim may be NULL for the defaults. Thread-safe.
dtx_err proto_decode(const void *buf, size_t len, const proto_limits *lim,
    proto_msg *out, char *why, size_t why_len);

#endif // DTX_PROTO_WIRE_H
