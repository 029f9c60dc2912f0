// SPDX-License-Identifier: MIT
//
// Shared between saga/'s own files: the orchestrator's state (the saga
// table, the saga log, the queues of the background threads, counters),
// the saga log's record formats, the engine's jobs, and the functions each
// file offers the others.

#ifndef SAGA_INT_H
#define SAGA_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "common.h"
#include "proto.h"
#include "saga.h"
#include "storage.h"

// ---------------------------------------------------------------- saga log
//
// The saga log is a stor_wal in <data>/log. Record payloads, integers
// little-endian, gid = u16 length then its bytes, reason = u16 length then
// its bytes (0: none):
//
//   SAGA__REC_BEGIN (1)  gid, u64 submit wall ms, u32 n, n bytes: the
//                        SAGA_SUBMIT message as proto_encode writes it,
//                        then the barrier id (str, see saga__bid_new;
//                        a record written before barrier ids existed
//                        ends after the message: its barrier id is its
//                        gid). Step 0 counts as started once BEGIN is
//                        durable.
//   SAGA__REC_STEP  (2)  gid, u32 step, u8 phase (proto_phase), u8 what
//                        (0 started, 1 finished), u8 result
//                        (proto_step_result, for finished), reason
//   SAGA__REC_COMP  (3)  gid, i32 failed step (-1: none), reason: the saga
//                        turns to compensation
//   SAGA__REC_END   (4)  gid, u8 state (proto_saga_state: COMMITTED or
//                        ABORTED), i32 failed step, u64 submit wall ms,
//                        reason
//
// Forcing: BEGIN, every STEP start and END are forced (made durable before
// the step is sent or the client is answered); STEP outcomes and COMP are
// appended without forcing and become durable with the next forced record,
// which the WAL writes after them. An action's outcome is appended
// together with the next step's start (or with END after the last step),
// so each of those pairs costs one wait for the disk. A checkpoint's blob is a
// sequence of records in the same formats, each as u8 type, u32 length,
// payload: for an unfinished saga its BEGIN, one STEP record per step state and
// COMP when compensating; for a finished saga its END only.

enum {
	SAGA__REC_BEGIN = 1,
	SAGA__REC_STEP = 2,
	SAGA__REC_COMP = 3,
	SAGA__REC_END = 4,
};

// ---------------------------------------------------------------- barrier ids
//
// The client names a saga (its gid, for resubmission and SAGA_STATUS);
// the orchestrator names it to the participants with a barrier id of its
// own, minted at submission and kept in the BEGIN record: "s", the
// saga's begin HLC timestamp (clk_ts, 16 lower-case hex digits), "-" and
// 64 bits from the CSPRNG (16 hex digits). STEP and SAGA_FORGET carry it
// as their "gid". Nobody can guess it, two sagas never share it (even
// when a client reuses a gid after the orchestrator forgot the first
// saga), and a participant reads the saga's age from it
// (participant/saga_step.c refuses the STEPs of sagas older than its
// barrier horizon).
#define SAGA_BID_LEN 34

// ---------------------------------------------------------------- counters

typedef enum saga_ctr {
	SAGA_CTR_SUBMITTED, // new sagas accepted
	SAGA_CTR_RESUBMITTED, // SAGA_SUBMIT of a gid already known
	SAGA_CTR_COMMITTED,
	SAGA_CTR_ABORTED, // compensated completely
	SAGA_CTR_REPLIED_UNKNOWN, // SAGA_REPLY with outcome unknown
	SAGA_CTR_STEP_CALLS, // STEP requests sent
	SAGA_CTR_STEP_RETRIES, // STEP requests repeated after an error
	SAGA_CTR_STEP_FAILED, // actions that failed definitely
	SAGA_CTR_GAVE_UP, // actions whose retry budget ran out
	SAGA_CTR_COMPENSATIONS, // compensations applied (incl. null ones)
	SAGA_CTR_RECOVERED, // unfinished sagas loaded from the log
	SAGA_CTR_HANDED_OFF, // answered unknown while the saga goes on
	SAGA_CTR_TO_THREAD, // jobs that left the straight path (a pause)
	SAGA_CTR_FORGETS_SENT, // SAGA_FORGET messages acknowledged
	SAGA_CTR_FORGET_ERRORS,
	SAGA_CTR_CHECKPOINTS,
	SAGA_CTR_EVICTED, // finished sagas forgotten by the table
	SAGA_CTR_COUNT
} saga_ctr;

extern const char *const saga__ctr_names[SAGA_CTR_COUNT];

// ---------------------------------------------------------------- state

// One saga. The immutable part (gid, steps) is set at creation; the rest
// changes only through saga__apply under saga->mu, by the one job that
// owns the saga (runs it) or by replay.
typedef struct saga__rec saga__rec;
struct saga__rec {
	char *gid; // owned
	char bid[PROTO_MAX_STR + 1]; // barrier id (see SAGA_BID_LEN)
	uint32_t n_steps;
	proto_saga_step *steps; // owned (keys, values): from the BEGIN record
	uint8_t *st; // n_steps proto_step_state values
	proto_saga_state state;
	int32_t failed_step; // -1 when none
	char *reason; // owned, failure reason (NULL: none)
	char last_error[200]; // last error met while retrying ("" none)
	// NULL, or n_steps entries: the HLC stamped on the answer that
	// completed each step's compensation (0: not known). Kept in memory
	// only, for SAGA_STATUS: a checker orders the compensations by it.
	clk_ts *comp_ts;
	uint64_t submit_wall_ms; // wall clock at submission (survives restart)
	uint64_t comp_since_ns; // monotonic: compensation began (0: never)
	uint64_t end_ns; // monotonic: finished (0: not yet)
	uint64_t action_since_ns; // first attempt of the current action
	uint64_t reply_by_ns; // monotonic: the submitter's answer is due
	bool owned; // a job (engine.c) is running it
	bool recovered; // loaded unfinished from the log
	uint32_t waiters; // resubmissions waiting for its outcome
	saga__rec *hnext; // hash chain
	saga__rec *fnext; // finished list (oldest first), or resume queue
};

// A saga being run by the engine (engine.c): it moves on from
// completions (a forced record, a STEP's answer) and from the resumers
// (recover.c) after a pause. Exactly one of those holds it at a time.
typedef struct saga__job saga__job;
struct saga__job {
	saga *s;
	saga__rec *r; // owned by the job (r->owned) until it ends
	proto_defer *tok; // the client's SAGA_SUBMIT (NULL: none, answered)
	stor_force force; // the record being forced
	void (*then)(saga__job *j); // what follows the force or the pause
	uint32_t step; // the step in flight, in phase ph
	proto_phase ph;
	uint32_t attempt; // calls of the step so far (backoff)
	uint64_t seed; // backoff jitter
	uint64_t due_ns; // parked: when then runs (monotonic)
	bool paused; // parked once (SAGA_CTR_TO_THREAD)
	proto_msg req; // its STEP (borrows r's gid and ops)
	saga__job *next; // the parked list
};

// A SAGA_FORGET due to be sent to the participants of a finished saga.
typedef struct saga__forget {
	char *gid; // owned
	uint32_t parts; // bit i: participant node id i
	uint32_t attempts;
	uint64_t due_ns;
} saga__forget;

struct saga {
	proto_daemon *d; // borrowed
	const saga_cfg *cfg; // borrowed
	uint32_t self;
	stor_wal *wal; // owned
	stor_sync sync;

	// Guards the table, every saga__rec's mutable fields, the queues
	// and the log appends (so a checkpoint sees exactly the state of
	// the records up to the last LSN). Never held across a network
	// call or an fsync.
	pthread_mutex_t mu;
	pthread_cond_t done_cv; // a saga or a job finished (CLOCK_MONOTONIC)
	pthread_cond_t q_cv; // parked list or stop (CLOCK_MONOTONIC)
	saga__rec **buckets;
	size_t nbuckets, count;
	saga__rec *fin_head, *fin_tail; // finished sagas, oldest first
	size_t nfinished;
	saga__rec *q_head, *q_tail; // recovered sagas saga_start resumes
	saga__job *parked; // jobs waiting out a pause, for the resumers
	size_t jobs; // jobs alive (saga_stop waits for none)
	size_t unfinished; // running or compensating
	size_t recovering; // recovered sagas not finished yet
	saga__forget *fq; // ring of pending forgets
	size_t fq_head, fq_len, fq_cap;
	uint64_t ckpt_bytes; // WAL bytes at the last checkpoint
	_Atomic bool stop;
	bool replaying; // inside saga_open's replay

	proto_pool *submitters; // resubmissions waiting for an outcome
	stor_forcer *forcer; // forces the records of asynchronous sagas
	// STEPs to each participant share BATCH messages (and so one
	// participant fsync), through the daemon's peer calls.
	proto_batcher *steps[DTX_TOPO_MAX];
	struct saga__peer {
		saga *s;
		uint32_t id;
	} peers[DTX_TOPO_MAX];
	pthread_t *resumers;
	size_t nresumers;
	pthread_t bg;
	bool bg_started;

	_Atomic uint64_t ctr[SAGA_CTR_COUNT];
};

static inline void
saga__count(saga *s, saga_ctr c)
{
	atomic_fetch_add(&s->ctr[c], 1);
}

// ---------------------------------------------------------------- log.c

// Record payloads are built in a dtx_buf (common.h). Appends s (NULL:
// empty), cut to PROTO_MAX_STR bytes, as a u16 length and its bytes.
void saga__buf_str(dtx_buf *b, const char *s);

// Builds record payloads (into b, which the caller finalises).
void saga__enc_step(dtx_buf *b, const char *gid, uint32_t step, proto_phase ph,
    bool finished, proto_step_result res, const char *why);
void saga__enc_comp(
    dtx_buf *b, const char *gid, int32_t failed, const char *why);
void saga__enc_end(dtx_buf *b, const char *gid, proto_saga_state st,
    int32_t failed, uint64_t submit_wall_ms, const char *why);
// Encodes the BEGIN payload of a SAGA_SUBMIT (borrowed) whose barrier id
// is bid (borrowed). DTX_EINVAL when the message cannot be encoded,
// DTX_ENOMEM.
dtx_err saga__enc_begin(dtx_buf *b, const proto_saga_submit *sub,
    uint64_t submit_wall_ms, const char *bid);

// Mints a barrier id (SAGA_BID_LEN characters and a NUL into
// out[SAGA_BID_LEN + 1]) at the orchestrator's HLC now. Errors of the
// clock and of the CSPRNG (dtx_random_u64). Thread-safe.
dtx_err saga__bid_new(saga *s, char *out);

// Applies one record to the in-memory state (replay and live appends
// alike). saga->mu held. *rec (may be NULL) gets the saga it touched.
// DTX_ECORRUPT for a payload that does not parse, DTX_ENOMEM.
dtx_err saga__apply(
    saga *s, uint8_t type, const void *payload, size_t len, saga__rec **rec);

// Applies the BEGIN record just appended for sub (borrowed; the request
// the record encodes) with barrier id bid (borrowed) as saga__apply
// would, copying the steps from sub instead of decoding them from the
// record again. saga->mu held. DTX_ENOMEM.
dtx_err saga__apply_begin_live(saga *s, const proto_saga_submit *sub,
    uint64_t submit_wall_ms, const char *bid, saga__rec **rec);

// Appends a record (payload borrowed) and applies it, under saga->mu
// (taken here). With force, returns once it is durable, or, when lsn is
// not NULL, returns at once with the record's LSN in *lsn: the caller
// makes it durable (stor_forcer) before acting on it. Errors of
// stor_wal_append / stor_wal_sync, saga__apply.
dtx_err saga__log(
    saga *s, uint8_t type, const dtx_buf *b, bool force, uint64_t *lsn);

// One record for saga__log_n: its type and payload (borrowed).
typedef struct saga__logrec {
	uint8_t type;
	const dtx_buf *b;
} saga__logrec;

// saga__log for n records appended and applied in order under one hold of
// saga->mu; with force, one wait makes them all durable (a step's outcome
// and the next step's start, or the last outcome and END, share it), or
// *lsn gets the last one's LSN as in saga__log.
dtx_err saga__log_n(
    saga *s, const saga__logrec *recs, size_t n, bool force, uint64_t *lsn);

// Opens <data>/log and replays it into the table.
dtx_err saga__log_open(saga *s);

// Writes a checkpoint of the table when the log grew by
// cfg->checkpoint_bytes since the last one (always when force).
dtx_err saga__log_checkpoint(saga *s, bool force);

// ---------------------------------------------------------------- table.c

// Finds gid's saga. saga->mu held. NULL when unknown.
saga__rec *saga__find(saga *s, const char *gid);
// Inserts r (gid not present). saga->mu held. DTX_ENOMEM.
dtx_err saga__insert(saga *s, saga__rec *r);
// Frees r and everything it owns (not linked anywhere any more).
void saga__rec_free(saga__rec *r);
// Marks r finished: moves it to the finished list, wakes waiters and
// queues its SAGA_FORGET (not during replay). saga->mu held.
void saga__finished(saga *s, saga__rec *r);
// Forgets finished sagas beyond cfg->retain_max or older than
// cfg->retain_ms. saga->mu held.
void saga__evict(saga *s);
// Queues r (recovered, not owned) for saga_start. saga->mu held.
void saga__enqueue(saga *s, saga__rec *r);

// ---------------------------------------------------------------- step.c

// True once the daemon or the orchestrator is stopping.
bool saga__stopping(saga *s);

// Keeps err as r's last error (SAGA_STATUS, HEALTH).
void saga__set_error(saga *s, saga__rec *r, const char *err);
// Keeps "saga log: <rv>" as r's last error: its state could not be logged.
void saga__set_log_error(saga *s, saga__rec *r, dtx_err rv);

// Builds step i's STEP request for phase ph into *req (initialised here;
// it borrows r's gid and ops).
void saga__step_req(
    const saga__rec *r, uint32_t i, proto_phase ph, proto_msg *req);

// Judges the answer to step i's STEP call: rv, and *rep (rep NULL unless
// rv is DTX_OK or DTX_EREFUSED; freed here). True when it is definite:
// *res and why hold the participant's result and reason (a definite
// refusal of an action counts as failed). False when the call should be
// retried: err says why. *hlc gets the HLC the participant stamped on a
// definite answer (0 otherwise).
bool saga__step_judge(const saga__rec *r, uint32_t i, proto_phase ph,
    dtx_err rv, proto_msg *rep, proto_step_result *res, char *why, size_t wlen,
    char *err, size_t elen, clk_ts *hlc);

// The saga's log records, appended and applied (saga__log). A forced one
// is made durable here when lsn is NULL, or else its LSN is returned in
// *lsn for the caller to force.
// Step i's start (fin false) or outcome res (fin true) in phase ph.
dtx_err saga__log_step(saga *s, saga__rec *r, uint32_t i, proto_phase ph,
    bool fin, proto_step_result res, const char *why, bool force,
    uint64_t *lsn);
// The turn to compensation (unforced).
dtx_err saga__log_comp(saga *s, saga__rec *r, int32_t failed, const char *why);
// END in state st after the records in pre (may be NULL: none), unforced.
dtx_err saga__log_end(
    saga *s, saga__rec *r, proto_saga_state st, const dtx_buf *pre);
// Action i's success together with, forced, the start of step i + 1 or,
// after the last step, END (committed; unforced, *lsn untouched).
dtx_err saga__log_done_then(saga *s, saga__rec *r, uint32_t i, uint64_t *lsn);
// Action i's definite outcome res (unforced); when it failed, also the
// turn to compensation, with the reason why.
dtx_err saga__action_outcome(
    saga *s, saga__rec *r, uint32_t i, proto_step_result res, const char *why);
// Compensation i was answered res (not OK): keeps and logs the error.
void saga__comp_failed(
    saga *s, saga__rec *r, uint32_t i, proto_step_result res, const char *why);
// Compensation i succeeded, answered with the participant's HLC hlc:
// logs it (unforced), counts it and keeps hlc for SAGA_STATUS.
dtx_err saga__comp_done(saga *s, saga__rec *r, uint32_t i, clk_ts hlc);

// ---------------------------------------------------------------- recover.c

// Resumes every saga the log left unfinished, starts the resumer threads
// (which continue parked jobs) and the background thread (SAGA_FORGET
// batches, checkpoints, eviction). DTX_ENOMEM.
dtx_err saga__threads_start(saga *s);
// Stops the threads, ends every parked job and waits until no job is
// left (a job in flight ends at its next completion).
void saga__threads_stop(saga *s);

// Parks j for ms, then a resumer calls then(j); meanwhile a client still
// waiting is answered (unknown) once its reply is due. Once the
// orchestrator stops, ends j instead (its saga resumes from the log).
void saga__park(saga__job *j, uint64_t ms, void (*then)(saga__job *j));

// ---------------------------------------------------------------- serve.c

dtx_err saga__handle(
    void *arg, const proto_msg *req, proto_msg *rep, proto_call *call);
// Builds the SAGA_REPLY for r's current state. saga->mu held.
dtx_err saga__reply_of(saga *s, saga__rec *r, proto_msg *rep);

// ---------------------------------------------------------------- engine.c

// A job for a saga, counted in s->jobs. saga->mu held. DTX_ECLOSED once
// the orchestrator stops, DTX_ENOMEM. Returns owned: give it to saga__run
// or saga__resume, or free it unused with saga__job_drop (saga->mu held).
dtx_err saga__job_new(saga *s, saga__job **out);
void saga__job_drop(saga__job *j);

// Runs r (new, r->owned set by the caller, its BEGIN record appended at
// begin_lsn but not yet durable) with j (taken), answering tok (the
// client's SAGA_SUBMIT; NULL: none) when the saga ends, or with unknown
// when its reply is due first. Returns at once.
void saga__run(
    saga__job *j, saga__rec *r, proto_defer *tok, uint64_t begin_lsn);

// Resumes r (recovered, r->owned set by the caller) with j (taken), in the
// direction its log says. Returns at once.
void saga__resume(saga__job *j, saga__rec *r);

// Ends j: gives its saga back (r->owned false), answers its client with
// the saga's state (unknown when unfinished) and frees j.
void saga__job_end(saga__job *j);

// Answers j's client (j->tok) now with unknown; the saga goes on.
void saga__job_answer(saga__job *j);

dtx_err saga__health(void *arg, proto_health_reply *rep);

#endif // SAGA_INT_H
