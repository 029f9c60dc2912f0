// SPDX-License-Identifier: MIT
//
// Shared between the coordinator's own files: the transaction table, the
// per-participant batching channels, the decision log records and the
// re-drive machinery.

#ifndef DTX_COORDINATOR_INT_H
#define DTX_COORDINATOR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "common.h"
#include "coordinator.h"
#include "proto.h"
#include "storage.h"

#define COORD_MAX_PARTS PROTO_MAX_PEERS
#define COORD_MAX_SENDERS 8
#define COORD_HASH_BUCKETS 65536u
// How long a lazy item waits on an idle channel for a batch to ride.
#define COORD_LINGER_MS 1

// ---------------------------------------------------------------- table

// Where a transaction stands in the coordinator's memory.
typedef enum coord_state {
	COORD_VOTING = 0, // collecting votes; no record
	COORD_DECIDING = 1, // COMMIT record being forced: outcome not yet told
	COORD_PRECOMMITTED = 2, // 3PC: PRECOMMIT record durable
	COORD_COMMITTED = 3, // COMMIT durable, not every participant acked
	COORD_ENDED = 4, // every participant acked; END written
} coord_state;

// One transaction the coordinator remembers. Entries in VOTING, DECIDING,
// PRECOMMITTED and COMMITTED are on the pending list (the last three are
// what a checkpoint keeps); ENDED ones stay for STATUS until the ended
// ring pushes them out. Guarded by coord.mu.
typedef struct coord_tx {
	uint64_t txid;
	coord_state state;
	bool doomed; // a STATUS query answered ABORTED while voting
	bool recovered; // came from the log at open
	bool resolve; // 3PC PRECOMMIT without a decision found at open
	proto_mode mode;
	clk_ts cts;
	uint32_t nparts;
	uint32_t parts[COORD_MAX_PARTS];
	uint32_t acked; // bit i: parts[i] acknowledged the COMMIT
	uint32_t pre_acked; // 3PC: bit i: parts[i] acknowledged PRE_COMMIT
	uint32_t inflight; // COMMITs queued or on the wire
	uint32_t attempts; // re-drive rounds so far
	uint64_t next_try_ns; // dtx_mono_ns() of the next re-drive round
	bool redrive; // some COMMIT failed: the upkeep thread resends
	struct coord_tx *hnext; // hash chain
	struct coord_tx *pnext, *pprev; // pending list
} coord_tx;

// ---------------------------------------------------------------- channels

typedef struct coord_item coord_item;

// Completion of an asynchronous item, called with no lock held on the
// nng thread that received the reply (or on the sending thread when the
// send failed at once); it must not block for long. It owns it (free with
// coord__item_free).
typedef void (*coord_done_fn)(coord *c, coord_item *it);

// A thread waiting for the engine: coord__waiter_wait returns once
// pending is 0 (coord__waiter_done counts one down).
typedef struct coord_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t pending;
} coord_waiter;

// One message to one participant. req's body may borrow memory that must
// outlive the item's completion. rep is owned once done (free with
// proto_msg_free); err is the call's result (DTX_OK: rep is the element's
// reply, which may itself be an ERROR).
struct coord_item {
	proto_msg req;
	proto_msg rep;
	dtx_err err;
	uint32_t peer;
	uint32_t timeout_ms;
	coord_done_fn done; // completion, or NULL (the item is freed)
	uint64_t txid; // for done
	uint32_t idx; // for done: index of peer in the txn's parts
	bool chain; // first COMMIT of a commit phase: send the rest after
	// Rides the next batch to its participant instead of starting one
	// (3PC's DO_COMMIT): one that finds the channel idle waits for the
	// next item that starts a batch, or at most COORD_LINGER_MS.
	bool lazy;
	void *arg; // for done
	coord_item *next;
};

typedef struct coord_chan {
	coord *c;
	uint32_t peer;
	pthread_mutex_t mu;
	pthread_cond_t cv; // stop: the last batch on the wire came back
	coord_item *head, *tail; // queued, not yet sent
	uint32_t inflight; // batches on the wire
	// Of them, those that carry a message a client waits for (PREPARE,
	// CAN_COMMIT, PRE_COMMIT), and how many such messages are queued;
	// of those, how many may overtake decisions (is_fast in batch.c).
	uint32_t vote_inflight, queued_votes, queued_fast;
	uint32_t eager; // queued items that are not lazy
	bool stop;
} coord_chan;

// ---------------------------------------------------------------- the
// coordinator

struct coord {
	proto_daemon *d;
	coord_cfg cfg;
	uint32_t self;
	stor_wal *wal;

	pthread_mutex_t mu; // the table, the pending list, the ended ring
	coord_tx **buckets;
	coord_tx pending; // list head (sentinel)
	uint64_t *ended; // ring of ended txids, cfg.ended_keep slots
	size_t ended_head, ended_n;
	size_t npending_commits; // COMMITTED + PRECOMMITTED + DECIDING
	uint64_t ckpt_lsn;

	coord_chan chans[DTX_TOPO_MAX]; // by participant node id
	bool chan_open[DTX_TOPO_MAX];

	pthread_mutex_t up_mu; // upkeep thread wake-up
	pthread_cond_t up_cv;
	bool up_stop;
	bool up_started;
	pthread_t up_th;
	atomic_bool stopped;
	atomic_bool failed; // the log failed: no more decisions

	// Forces the decision records of running transactions (COMMIT, and
	// 3PC's PRECOMMIT), all that queued up meanwhile with one sync
	// (started after the channels, stopped after them, so that it
	// finishes every queued one).
	stor_forcer *forcer;
	// Threads between coord__plug and coord__unplug: while any is, a
	// queued item does not start a batch; each unplug sends what queued
	// up meanwhile, so the messages one group of completions produces
	// (a batch's replies, a group of forced records) leave together.
	atomic_uint plugs;
	// Lazy items wait on an idle channel: the linger thread sends them
	// at linger_ns (dtx_mono_ns), 0 when none waits (batch.c).
	_Atomic uint64_t linger_ns;
	pthread_mutex_t lg_mu;
	pthread_cond_t lg_cv;
	bool lg_stop;
	bool lg_init; // lg_mu and lg_cv initialised
	bool lg_started;
	pthread_t lg_th;

	_Atomic int64_t fail_syncs; // FAULT wal_sync: fsyncs left to fail

	// Counters (HEALTH).
	atomic_uint_fast64_t n_txns, n_committed, n_aborted, n_unknown;
	atomic_uint_fast64_t n_batches, n_batch_items, n_redriven;
	atomic_uint_fast64_t n_status, n_recovered, n_checkpoints;
	atomic_uint_fast64_t n_status_refused; // STATUS from a non-member
};

// table.c
dtx_err coord__table_init(coord *c);
void coord__table_fini(coord *c);
// A fresh transaction id: 64 bits from the kernel's CSPRNG, never 0 or
// UINT64_MAX (reserved). Not ordered, no time in it. DTX_EIO when the
// kernel has no random bytes to give. Thread-safe.
dtx_err coord__txid_draw(uint64_t *out);
// Lookups and changes; the caller holds c->mu.
coord_tx *coord__tx_find(coord *c, uint64_t txid);
dtx_err coord__tx_insert(coord *c, uint64_t txid, coord_tx **out);
void coord__tx_remove(coord *c, coord_tx *t);
// Marks t ENDED, takes it off the pending list and remembers it in the
// ended ring (pushing the oldest out). Caller holds c->mu.
void coord__tx_end(coord *c, coord_tx *t);
// Moves t to state s (not ENDED: use coord__tx_end), keeping the count of
// pending decisions. Caller holds c->mu.
void coord__tx_state(coord *c, coord_tx *t, coord_state s);

// batch.c
dtx_err coord__chans_open(coord *c);
void coord__chans_stop(coord *c);
void coord__chans_fini(coord *c);
// Queues it on peer's channel. DTX_ECLOSED when stopping (it not taken);
// on success the channel owns it until completion.
dtx_err coord__send(coord *c, coord_item *it);
// Holds back the batches that queued items would start, until the
// matching coord__unplug, which sends them (see coord.plugs).
void coord__plug(coord *c);
void coord__unplug(coord *c);
// Sends what is queued for the participants peers[0..n), plugged or not
// (lazy items still wait for a batch to ride).
void coord__send_queued(coord *c, const uint32_t *peers, uint32_t n);
// Allocates a zeroed item (DTX_ENOMEM: NULL).
coord_item *coord__item_new(void);
// Frees the item and its reply.
void coord__item_free(coord_item *it);
void coord__waiter_init(coord_waiter *w);
void coord__waiter_fini(coord_waiter *w);
// Waits until w's pending count is 0.
void coord__waiter_wait(coord_waiter *w);
// Counts one down and wakes the waiter at 0.
void coord__waiter_done(coord_waiter *w);

// log.c: decision log records. All appends happen with c->mu held, so a
// checkpoint taken under c->mu covers exactly the records below its LSN;
// forced appends wait for durability after the lock is dropped.
dtx_err coord__log_open(coord *c);
void coord__log_close(coord *c);
// Appends a COMMIT (or PRECOMMIT when pre) record for t; caller holds
// c->mu; *lsn gets its LSN to pass to stor_wal_sync without the lock.
dtx_err coord__log_decision(
    coord *c, const coord_tx *t, bool pre, uint64_t *lsn);
// Appends an ABORT or END record (unforced); caller holds c->mu.
dtx_err coord__log_abort(coord *c, uint64_t txid);
dtx_err coord__log_end(coord *c, uint64_t txid);
// Writes a checkpoint of the pending decisions if the log grew since the
// last one. Takes c->mu briefly.
dtx_err coord__log_checkpoint(coord *c);

// ---------------------------------------------------------------- the
// transaction engine

// A transaction's ops grouped by participant, in increasing id order.
typedef struct coord_plan {
	uint32_t nparts;
	uint32_t parts[COORD_MAX_PARTS];
	uint32_t first[COORD_MAX_PARTS];
	uint32_t count[COORD_MAX_PARTS];
	proto_op *ops; // grouped shallow copies (borrow the request)
} coord_plan;

// One client transaction (2PC or 3PC) in the engine. Nothing holds a
// thread while it waits: each phase's messages go out on the channels,
// and the last completion of a phase (on an nng thread), or the forcer
// once a decision record is durable, starts the next. The run ends in
// coord__run_done, which answers the client.
typedef struct coord_run {
	coord *c;
	proto_defer *tok; // the deferred TXN to answer, or NULL:
	coord_waiter *w; // the thread in coord__txn waiting for it, or NULL:
	coord_txn_done done; // an in-process caller (coord_txn_async)
	void *done_arg;
	uint64_t txid;
	proto_mode mode;
	coord_plan p; // p.ops owned
	clk_ts cts;
	stor_force force; // the decision record being forced
	// Items of the current phase not completed, plus one for the thread
	// that sends them: whoever takes it to 0 starts the next step.
	_Atomic uint32_t pending;
	_Atomic uint32_t pre_acked; // 3PC: bit i: parts[i] acked PRE_COMMIT
	bool pre_chain; // 3PC: the first PRE_COMMIT round went to parts[0]
	proto_msg rep; // the TXN_REPLY
	coord_item items[]; // p.nparts: the votes, then 3PC's PRE_COMMITs
} coord_run;

// engine.c: r's transaction, called with c->mu held. When it is gone or
// doomed (a participant asked for its outcome before the decision and
// presumed abort answered), releases c->mu, aborts it at the
// participants, fills r's reply and returns NULL; otherwise returns it
// with c->mu still held.
coord_tx *coord__run_tx_locked(coord_run *r);

// txn.c: TXN and STATUS requests.
dtx_err coord__txn(
    coord *c, const proto_msg *req, proto_msg *rep, proto_call *call);
// STATUS of the reserved txids 0 and UINT64_MAX is an ERROR DTX_EINVAL,
// as at the participants.
dtx_err coord__status(coord *c, const proto_msg *req, proto_msg *rep);
// The end of every run: sends r's reply (or wakes the thread waiting for
// it, which then frees r). Takes r.
void coord__run_done(coord_run *r);
// Frees r and what it owns (not its token). NULL does nothing.
void coord__run_free(coord_run *r);

// engine.c: the phases every transaction shares.
// Sends r's votes (PREPARE or CAN_COMMIT); the last one in decides: an
// abort, a 2PC commit (COMMIT forced, then the commit phase) or 3PC's
// pre-commit phase. Takes r: it ends in coord__run_done.
void coord__run_start(coord_run *r);
// Queues r's decision record (appended, *lsn in r->force.lsn) on the
// forcer; done runs on the forcer's thread once it is durable (or not).
void coord__run_force(coord_run *r, void (*done)(stor_force *, dtx_err));
// The run whose force is f.
coord_run *coord__run_of(stor_force *f);
// r's COMMIT record was forced with result rv: the commit phase (or
// unknown), then the reply (DESIGN rule 1). Takes r.
void coord__run_committed(coord_run *r, dtx_err rv);
// The forcer's hook for a COMMIT record: coord__run_committed.
void coord__run_commit_forced(stor_force *f, dtx_err rv);

// commit.c: the decision's messages and the COMMIT acknowledgements.
// Queues a COMMIT (DO_COMMIT for a 3PC participant that acknowledged
// PRE_COMMIT) to parts[idx] of txid as an asynchronous item tracked by the
// ack logic; chain: this is the first of a commit phase, the others are
// sent once it completes. Caller must not hold c->mu.
void coord__send_commit(coord *c, uint64_t txid, clk_ts cts, uint32_t peer,
    uint32_t idx, proto_type type, bool chain);
// Queues one COMMIT (at cts) or ABORT (cts unused) of txid to peer, fire
// and forget: a lost one is recovered by the participant (STATUS and
// presumed abort, or pc's resolver).
void coord__send_outcome(
    coord *c, uint64_t txid, uint32_t peer, proto_type type, clk_ts cts);
// Queues ABORT to peer (fire and forget; a lost ABORT is recovered by the
// participant asking STATUS: presumed abort).
void coord__send_abort(coord *c, uint64_t txid, uint32_t peer);
// engine.c: parts[i]'s VOTE for r's transaction, or NULL when item i holds
// no such vote (an error, another message, another txid). Borrowed from r.
const proto_vote *coord__vote_of(const coord_run *r, uint32_t i);
// Writes why v (a NO vote) said no into why[n].
void coord__no_reason(const proto_vote *v, char *why, size_t n);
// Starts the COMMIT phase of a durable commit: the first participant,
// then (once it answered) the crash point coord.after_some_commits, then
// the others. Caller must not hold c->mu.
void coord__commit_phase(coord *c, uint64_t txid);
// Finishes a commit (2PC or 3PC) whose COMMIT record's force returned rv:
// marks txid COMMITTED (if still tracked), counts it, starts the commit
// phase and fills r as committed at cts; or, when the force failed, marks
// the coordinator failed and fills r as unknown. Borrows r. Caller must
// not hold c->mu.
dtx_err coord__commit_forced(
    coord *c, uint64_t txid, clk_ts cts, dtx_err rv, proto_txn_reply *r);
// Aborts txid: forgets it, logs ABORT (unforced), sends ABORT to every
// participant not marked in skip (may be NULL) and fills rep. Caller must
// not hold c->mu.
void coord__abort(coord *c, uint64_t txid, const uint32_t *parts,
    uint32_t nparts, const bool *skip, const char *reason,
    proto_txn_reply *rep);
// Fills r's reply with a formatted reason.
dtx_err coord__reason(proto_txn_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// threepc.c: the 3PC phases after every CAN_COMMIT vote was YES, at
// commit timestamp r->cts: PRECOMMIT forced, PRE_COMMIT round(s), COMMIT
// forced, then as 2PC. Takes r.
void coord__3pc_precommit(coord_run *r);
// The type of the final message to parts[idx] of t (caller holds c->mu).
proto_type coord__3pc_commit_type(const coord_tx *t, uint32_t idx);

// pc.c: parallel commit (rule 25). Every vote is in: answers the client
// (committed at the largest prepare ts, aborted on a NO, unknown when a
// vote is missing), then queues COMMIT or ABORT without logging anything.
// Takes r.
void coord__pc_decide(coord_run *r);

// recover.c: the upkeep thread (re-drive, 3PC resolution, checkpoints).
dtx_err coord__upkeep_start(coord *c);
void coord__upkeep_stop(coord *c);
// Wakes the upkeep thread (a re-drive became due).
void coord__upkeep_kick(coord *c);
// Backoff for re-drive round n: capped exponential with jitter, in ns.
uint64_t coord__backoff_ns(coord *c, uint32_t n, uint64_t *rng);

#endif // DTX_COORDINATOR_INT_H
