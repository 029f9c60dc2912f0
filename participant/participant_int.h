// SPDX-License-Identifier: MIT
//
// Shared between participant/'s own files: the participant's state (the
// store, the daemon runtime, counters, the in-doubt resolver's table) and
// the per-message functions the dispatcher in serve.c calls.

#ifndef PARTICIPANT_INT_H
#define PARTICIPANT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "common.h"
#include "participant.h"
#include "proto.h"
#include "storage.h"

// Counters reported by HEALTH, in the order of part__ctr_names.
typedef enum part_ctr {
	PART_CTR_PREPARED, // YES votes made durable
	PART_CTR_VOTES_NO,
	PART_CTR_CONFLICTS, // NO votes because a key was locked
	PART_CTR_COMMITTED,
	PART_CTR_ABORTED,
	PART_CTR_PRECOMMITTED,
	PART_CTR_STATUS_NEVER_VOTED, // STATUS of a txid we never saw
	PART_CTR_READS,
	PART_CTR_READ_RETRIES, // reads answered RETRY
	PART_CTR_READ_WAITS, // reads that waited for an intent
	PART_CTR_RESOLVED_BY_COORDINATOR,
	PART_CTR_RESOLVED_BY_PEERS,
	PART_CTR_RESOLVED_BY_TERMINATION, // 3PC termination protocol
	PART_CTR_RESOLVE_ATTEMPTS,
	PART_CTR_SYNC_FAULTS, // fsyncs failed on purpose (FAULT wal_sync)
	PART_CTR_REFUSED_PREPARE, // guard.c: a PREPARE against the rules
	PART_CTR_REFUSED_DECISION, // guard.c: a decision from the wrong node
	PART_CTR_COMMIT_UNKNOWN, // COMMITs of a txid with no record here
	PART_CTR_REFUSED_STATUS, // STATUS from a node its record does not name
	PART_CTR_REFUSED_STALE_STEP, // STEP of a forgotten or too old saga
	PART_CTR_LOCK_WAITS, // PREPAREs that waited for a prepared holder
	PART_CTR_LOCK_WAIT_TIMEOUTS, // ... until --lock-wait-ms ran out
	PART_CTR_COUNT
} part_ctr;

extern const char *const part__ctr_names[PART_CTR_COUNT];

// One in-doubt transaction the resolver tracks.
typedef struct part__doubt {
	uint64_t txid;
	uint64_t seen_ns; // first seen in doubt (monotonic)
	uint64_t next_ns; // next attempt not before this
	uint64_t backoff_ms;
	uint64_t fail_since_ns; // first failed attempt, 0 while none
	uint64_t logged_ns; // last INDOUBT log line
	uint32_t attempts;
	bool recovered; // reloaded from the WAL at start
	bool blocked; // unresolved for longer than cfg->blocked_ms
	stor_tx_state state; // as last seen
} part__doubt;

// guard.c: what the participant keeps of a transaction in doubt here to
// check who may decide it (a plain value type).
typedef struct part__txmeta {
	uint64_t txid; // 0: a free slot
	uint32_t digest; // of its PREPARE (part__prepare_digest)
	bool have_digest; // false for one reloaded from the WAL
	stor_prep_meta meta; // coordinator, mode, peers
} part__txmeta;

// The largest amount an ADD may move, and the lowest floor a PREPARE may
// set: far above any balance, far from overflow.
#define PART_MAX_AMOUNT 1000000000000000LL

// The most elements an APPEND lets a list hold (4 + 8 * 4096 bytes, well
// under PROTO_MAX_VALUE so that a READ can return the whole list): an
// APPEND to a full list votes NO, naming the key.
#define PART_MAX_LIST 4096u

// lockwait.c: PREPAREs waiting for the decision of the prepared
// transaction that holds one of their keys, their replies deferred.
typedef struct part__waiter part__waiter;
typedef struct part__lw {
	pthread_mutex_t mu;
	pthread_cond_t cv; // CLOCK_MONOTONIC
	pthread_t th;
	bool init, started, stop, kick;
	part__waiter *head, *tail; // in arrival order
	uint64_t seq; // the next waiter's arrival number
	_Atomic uint32_t n; // waiters in the list
} part__lw;

// txid -> part__txmeta, thread-safe.
typedef struct part__txtab part__txtab;
dtx_err part__txtab_new(part__txtab **out);
void part__txtab_free(part__txtab *t);
dtx_err part__txtab_put(part__txtab *t, const part__txmeta *m);
bool part__txtab_get(part__txtab *t, uint64_t txid, part__txmeta *out);
void part__txtab_del(part__txtab *t, uint64_t txid);

struct part {
	proto_daemon *d; // borrowed
	const part_cfg *cfg; // borrowed
	clk_node *clock; // borrowed from d
	uint32_t self;
	stor_kv *kv; // owned; saga_step.c may run stor_txn on it

	// Prepares take it shared around "take the prepare timestamp,
	// install the intents"; a snapshot read takes it exclusively while it
	// advances the HLC past T. Once a read holds T, every prepare with a
	// timestamp <= T has its intents installed, so the read sees them
	// (rule 10). A local commit that stamps versions with the HLC must
	// take it shared the same way.
	pthread_rwlock_t ts_lock;

	// Broadcast whenever an outcome is applied, so waiting reads retry.
	pthread_mutex_t out_mu;
	pthread_cond_t out_cv;

	// FAULT "wal_sync": number of coming fsyncs to fail.
	_Atomic int64_t sync_fail;

	_Atomic uint64_t ctr[PART_CTR_COUNT];

	part__txtab *txtab; // the transactions in doubt here (guard.c)

	// The resolver (resolve.c).
	pthread_mutex_t res_mu;
	pthread_cond_t res_cv; // CLOCK_MONOTONIC
	pthread_t res_th;
	bool res_started;
	bool res_stop;
	bool res_first_pass; // the first pass over reloaded txns is done
	part__doubt *doubts;
	size_t ndoubts;
	uint64_t *recovered; // txids in doubt when the store was opened
	size_t nrecovered;
	uint64_t heur_next_ns; // heuristic.c: next look for verdicts

	part__lw lw; // lockwait.c
};

static inline void
part__count(part *p, part_ctr c)
{
	atomic_fetch_add(&p->ctr[c], 1);
}

// Wakes reads waiting for an outcome.
void part__outcome_signal(part *p);

// Waits for an outcome broadcast or until deadline_ns (monotonic).
void part__outcome_wait(part *p, uint64_t deadline_ns);

// Formats key (borrowed) for messages: printable bytes as they are, the
// others as \xNN, truncated with "..." to fit out (size n).
void part__key_fmt(const void *key, size_t klen, char *out, size_t n);

// Two-stage handling so that a BATCH shares one fsync: the _start step
// does the in-memory part and leaves in *pend the LSN that must be
// durable before the reply; the _finish step builds the reply once
// stor_kv_sync returned sync_err. A _start that can answer at once fills
// rep and leaves pend->kind PART__PEND_NONE.
typedef enum part__pend_kind {
	PART__PEND_NONE = 0,
	PART__PEND_VOTE,
	PART__PEND_COMMIT,
	PART__PEND_STEP,
	PART__PEND_PRECOMMIT,
	PART__PEND_WAIT, // a PREPARE that waits for a lock (lockwait.c)
} part__pend_kind;

typedef struct part__pending {
	part__pend_kind kind;
	uint64_t lsn;
	uint64_t txid;
	clk_ts ts; // prepare ts (vote; 0: a pc NO) or commit ts
	bool fresh; // this message made the record (crash points apply)
} part__pending;

// Whether and how a PREPARE may wait for a key's lock instead of voting
// NO (lockwait.c): allow, and its place in the queue (seq, UINT64_MAX
// for one not queued yet). A PREPARE that would wait leaves pend->kind
// PART__PEND_WAIT, rep untouched and nothing recorded, and blocker the
// txid it waits for (0: behind an earlier waiter for the same key).
typedef struct part__wait {
	bool allow;
	uint64_t seq;
	uint64_t blocker;
} part__wait;

// prepare.c: PREPARE and CAN_COMMIT (rule 6); w may be NULL (no wait).
dtx_err part__prepare_start(part *p, const proto_msg *req, proto_msg *rep,
    part__pending *pend, part__wait *w);
dtx_err part__prepare_finish(
    part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep);

// outcome.c: COMMIT and DO_COMMIT (rule 7) in two stages, the rest at once.
dtx_err part__commit_start(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend);
dtx_err part__commit_finish(
    part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep);
dtx_err part__abort(part *p, const proto_msg *req, proto_msg *rep);
dtx_err part__precommit_start(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend);
dtx_err part__precommit_finish(
    part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep);
dtx_err part__status(part *p, const proto_msg *req, proto_msg *rep);

// read.c: READ (rule 10).
dtx_err part__read(part *p, const proto_msg *req, proto_msg *rep);

// health.c: the HEALTH and FAULT hooks and the WAL's fsync hook.
dtx_err part__health(void *arg, proto_health_reply *rep);
dtx_err part__fault(void *arg, const proto_fault *f);
int part__sync_hook(void *arg, int fd);

// resolve.c: the in-doubt resolver thread (rules 8, 9, 11).
dtx_err part__resolver_start(part *p);
void part__resolver_stop(part *p);
// Copies the blocked txids (at most max) into out; returns how many are
// blocked in all. *recovering is set while reloaded transactions are
// still being resolved for the first time.
size_t part__resolver_blocked(
    part *p, uint64_t *out, size_t max, bool *recovering);

// resolve.c: one attempt to learn x's outcome as the resolver makes it
// (the coordinator, then the peers; a pc transaction from its peers).
// Returns 0 when an outcome was applied, 1 when nobody reachable knows,
// 2 when someone reachable is still deciding.
int part__resolve_once(part *p, const stor_indoubt *x);
// resolve.c: applies the outcome its coordinator (who, in words) told
// (counted as resolved by the coordinator). False when the store refused.
bool part__decide(
    part *p, uint64_t txid, bool commit, clk_ts cts, const char *who);
// resolve.c: what x waits for, as the resolver sees it, in words (out
// of n bytes).
void part__resolver_describe(
    part *p, const stor_indoubt *x, char *out, size_t n);

// heuristic.c: TXN_LIST and TXN_RESOLVE (the operator's view and hand),
// the hazard check of a decision that arrives for a transaction decided
// heuristically here (true when it handled req: *rv and rep are then the
// answer), and the resolver's periodic look for the coordinator's
// decision of each heuristic decision not yet confirmed.
dtx_err part__txn_list(part *p, const proto_msg *req, proto_msg *rep);
dtx_err part__txn_resolve(part *p, const proto_msg *req, proto_msg *rep);
bool part__heur_decision(
    part *p, const proto_msg *req, proto_msg *rep, dtx_err *rv);
// heuristic.c: what STATUS tells a coordinator or participant (from)
// about txid when it was decided by hand here (*ws, *cts: the answer so
// far, changed only then): a decision by hand is this node's alone, so
// the protocol is told "prepared" (no decision known) until the
// coordinator's own is learned, and an abort once it is that.
void part__heur_status(
    part *p, uint64_t txid, uint32_t from, proto_txn_state *ws, clk_ts *cts);
void part__heur_check(part *p);

// resolve.c: *pts gets txid's prepare ts when it is a pc transaction
// prepared here, once its PREPARED record is durable (a YES a peer may
// count, rule 26); 0 otherwise. An error when the record cannot be made
// durable.
dtx_err part__pc_vote(part *p, uint64_t txid, clk_ts *pts);

// guard.c: the per-transaction rules. True when req may go on; false
// when it is refused: *rv is then an error for the caller to return, or
// DTX_OK with rep filled as an ERROR.
bool part__guard(part *p, const proto_msg *req, proto_msg *rep, dtx_err *rv);

// A digest of a PREPARE's coordinator, mode and ops.
uint32_t part__prepare_digest(const proto_msg *req);

// serve.c: the first stage of one request (w as for prepare), and its
// second stage once the sync returned sync_err; both turn a failure into
// an ERROR reply and return an error only when not even that was built.
dtx_err part__start_one(part *p, const proto_msg *req, proto_msg *rep,
    part__pending *pend, part__wait *w);
dtx_err part__finish_one(part *p, const proto_msg *req,
    const part__pending *pend, dtx_err sync_err, proto_msg *rep);

// serve.c: fills the header of a BATCH element's reply.
void part__stamp(part *p, proto_msg *r);

// lockwait.c: the waiting PREPAREs. start before serving, stop before
// the server closes (every waiter is answered: they vote as if they had
// not waited), fini in part_close. kick after a transaction's intents
// were released (waiters retry at once; otherwise within 5 ms). hold
// takes over a request whose elements pend[i] PART__PEND_WAIT wait (rep,
// a BATCH reply for a BATCH, holds the others' answers): the reply is
// deferred on call, or, when it cannot be, they are settled now, without
// waiting, into rep.
dtx_err part__lw_start(part *p);
void part__lw_stop(part *p);
void part__lw_fini(part *p);
void part__lw_kick(part *p);
dtx_err part__lw_hold(part *p, proto_call *call, const proto_msg *req,
    proto_msg *rep, const part__pending *pend);
// Whether a PREPARE (its request) must queue behind a waiter that came
// before seq and wants one of the same keys.
bool part__lw_queued(part *p, const proto_prepare *pr, uint64_t seq);

// serve.c: the request handler given to the daemon runtime.
dtx_err part__handle(
    void *arg, const proto_msg *req, proto_msg *rep, proto_call *call);

// saga_step.c: saga STEP and SAGA_FORGET (rules 12-13).
dtx_err part_saga_step(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend);
// Finishes a STEP or a SAGA_FORGET once its record's sync returned
// sync_err.
dtx_err part_saga_step_finish(part *p, dtx_err sync_err, proto_msg *rep);
// SAGA_FORGET: a tombstone, then the saga's barriers dropped; answered
// once the tombstone is durable (pend, as a STEP's commit).
dtx_err part_saga_forget(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend);

// The wire name of a stored transaction state (outcome.c).
proto_txn_state part__wire_state(stor_tx_state st);

#endif // PARTICIPANT_INT_H
