// SPDX-License-Identifier: MIT
//
// Saga steps (STEP, SAGA_FORGET: rules 12-13). Each STEP runs as one local
// transaction whose barrier record (gid, branch, phase) is written in the
// same commit as the balance change, so that a duplicate is a no-op that
// answers the first result, a compensation whose action never ran (or
// failed) is a recorded null compensation, and an action arriving after
// its compensation is refused instead of left hanging. SAGA_FORGET drops a
// finished saga's barriers and leaves a tombstone, so that a STEP of a
// forgotten saga is refused rather than applied a second time.

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "participant_int.h"

// A failed action is remembered by a second barrier beside its own, on
// branch -1 - branch (real branches are uint32, so these never collide):
// a duplicate of a failed action then answers FAILED again, and its
// compensation knows it must change nothing. Both go with the saga's other
// barriers when it is forgotten.
static int64_t
failed_branch(uint32_t branch)
{
	return -1 - (int64_t)branch;
}

// Barriers are dropped by SAGA_FORGET shortly after their saga ends. A
// forget can be lost (the orchestrator gives up after a few attempts or
// crashes before sending it), so the STEP path also collects, at most once
// a minute, barriers older than a week: far beyond the orchestrator's
// forget delay (seconds; a day at most) and the time a stuck saga is
// reported in HEALTH before anyone would let it run on.
#define BARRIER_MAX_AGE_MS (7u * 24u * 3600u * 1000u)
#define BARRIER_GC_EVERY_MS (60u * 1000u)

// The barrier horizon: a STEP is refused (answered REFUSED, nothing
// changed) instead of run when its saga is past what the barriers here
// can still tell, which is exactly when a duplicate could otherwise be
// applied twice:
//  1. its saga was forgotten here: SAGA_FORGET writes a tombstone
//     barrier (tomb_gid(gid), TOMB_BRANCH, action) in a local commit
//     before it drops the saga's barriers, so a STEP of that gid meets
//     the tombstone (WAL order: any crash that keeps the drop keeps the
//     tombstone; the forget is answered once the tombstone is durable);
//  2. its saga began more than BARRIER_MAX_AGE_MS ago by its barrier id
//     ("s<begin HLC, 16 hex>-<random, 16 hex>", minted by the
//     orchestrator, saga/saga_int.h): its barriers, and its tombstone,
//     which is never older than the saga, may have been collected by
//     age. The begin timestamp is the orchestrator's HLC, which is
//     within max_offset of this node's clock, far below a week.
// Tombstones go with the age collection, a week after the forget: by
// then rule 2 covers the saga. A gid not in the orchestrator's form
// (written by hand, or a saga logged before barrier ids) has no age:
// only rule 1 applies to it. Only the orchestrator may send STEP and
// SAGA_FORGET (proto/authz.c).
#define TOMB_BRANCH INT64_MIN

// The tombstone's gid: "~" and gid (a gid of STOR_GID_MAX bytes loses its
// last byte). TOMB_BRANCH keeps it apart from any real barrier.
static void
tomb_gid(const char *gid, char out[STOR_GID_MAX + 1])
{
	snprintf(out, STOR_GID_MAX + 1, "~%s", gid);
}

// The begin timestamp of an orchestrator's barrier id; false for a gid
// in another form.
static bool
bid_ts(const char *gid, clk_ts *ts)
{
	if (strlen(gid) != 34 || gid[0] != 's' || gid[17] != '-')
		return false;
	uint64_t v = 0;
	for (int i = 1; i < 17; i++) {
		char ch = gid[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0'
		    : ch >= 'a' && ch <= 'f'   ? ch - 'a' + 10
		                               : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*ts = (clk_ts)v;
	return true;
}

// Rule 2 of the horizon: true when gid's saga began more than
// BARRIER_MAX_AGE_MS before this node's clock.
static bool
too_old(part *p, const char *gid)
{
	clk_ts ts;
	if (!bid_ts(gid, &ts))
		return false;
	uint64_t now = clk_ts_l(clk_node_now(p->clock));
	return clk_ts_l(ts) + BARRIER_MAX_AGE_MS < now;
}

typedef struct step_out {
	proto_step_result res;
	bool dup;
	bool stale; // refused by the barrier horizon
	uint64_t lsn; // of the step's commit (0: nothing committed)
	char why[PROTO_MAX_STR + 1];
} step_out;

// Applies one op to t. DTX_OK with *failed set (and why) for a business
// failure; DTX_EAGAIN when the key is held by another transaction's intent
// (transient); other errors from the store.
static dtx_err
apply_op(stor_txn *t, const proto_op *op, bool *failed, char *why, size_t n)
{
	char k[64];
	dtx_err rv;

	part__key_fmt(op->key.p, op->key.n, k, sizeof(k));
	if (op->kind == PROTO_OP_PUT)
		return stor_txn_put(
		    t, op->key.p, op->key.n, op->value.p, op->value.n);
	int64_t old, sum;
	rv = stor_txn_get_i64(t, op->key.p, op->key.n, &old, NULL);
	if (rv == DTX_ENOENT || rv == DTX_EINVAL) {
		*failed = true;
		snprintf(why, n, "%s %s",
		    rv == DTX_ENOENT ? "no such key" : "not an integer:", k);
		return DTX_OK;
	}
	if (rv != DTX_OK)
		return rv; // DTX_EAGAIN: a prepared intent holds the key
	if (__builtin_add_overflow(old, op->delta, &sum)) {
		*failed = true;
		snprintf(why, n,
		    "overflow: %s has %" PRId64 ", cannot add %" PRId64, k, old,
		    op->delta);
		return DTX_OK;
	}
	if (sum < op->min) {
		*failed = true;
		snprintf(why, n,
		    "insufficient funds: %s has %" PRId64 ", needs >= %" PRId64
		    " after %" PRId64,
		    k, old, op->min, op->delta);
		return DTX_OK;
	}
	return stor_txn_put_i64(t, op->key.p, op->key.n, sum);
}

// Commits t at a fresh HLC timestamp; *lsn gets the commit's LSN, which
// must be durable before the step is answered (part_saga_step_finish).
// The timestamp is taken and the writes installed as intents under
// ts_lock (shared), so a snapshot read that has advanced the clock past T
// meets every local commit at or below T (as a version, or as an intent
// it waits for). The fsync comes after the lock is released: reads that
// take it exclusively never wait for a disk, and one fsync covers the
// commits of every step in a BATCH and of concurrent ones.
static dtx_err
commit(part *p, stor_txn *t, uint64_t *lsn)
{
	clk_ts ts;
	pthread_rwlock_rdlock(&p->ts_lock);
	dtx_err rv = clk_node_local(p->clock, &ts);
	if (rv == DTX_OK)
		rv = stor_txn_commit_async(t, ts, lsn);
	else
		stor_txn_abort(t);
	pthread_rwlock_unlock(&p->ts_lock);
	return rv;
}

dtx_err
part_saga_step_finish(part *p, dtx_err sync_err, proto_msg *rep)
{
	// The step is answered only once its commit (business change and
	// barrier together) is durable (rule 13).
	if (sync_err != DTX_OK) {
		proto_msg_free(rep);
		proto_msg_init(rep, PROTO_NONE);
		return sync_err;
	}
	if (rep->hdr.type != PROTO_STEP_REPLY)
		return DTX_OK; // a SAGA_FORGET's tombstone
	part__outcome_signal(p);
	// Durable but not yet answered: the orchestrator must retry and
	// meet the barrier.
	dtx_crashpoint("part.saga_step_after_commit");
	return DTX_OK;
}

// One attempt at a step. With barrier_only the business ops are skipped:
// the action failed in an earlier attempt and only its barriers are
// written. DTX_OK with *o filled, or an error (DTX_EAGAIN: transient).
static dtx_err
run_step(part *p, const proto_step *st, bool barrier_only, step_out *o)
{
	stor_txn *t = NULL;
	bool a = false, c = false, f = false, gone = false;
	char tomb[STOR_GID_MAX + 1];
	dtx_err rv;

	tomb_gid(st->gid, tomb);
	if ((rv = stor_txn_begin(p->kv, CLK_TS_MAX, &t)) != DTX_OK)
		return rv;
	if ((rv = stor_txn_barrier_get(
	         t, tomb, TOMB_BRANCH, STOR_BARRIER_ACTION, &gone)) != DTX_OK)
		goto fail;
	if (gone) {
		// Horizon rule 1: the saga was forgotten here.
		o->res = PROTO_STEP_REFUSED;
		o->stale = true;
		snprintf(o->why, sizeof(o->why),
		    "saga %s was forgotten here: a late or replayed step",
		    st->gid);
		stor_txn_abort(t);
		return DTX_OK;
	}
	if ((rv = stor_txn_barrier_get(
	         t, st->gid, st->branch, STOR_BARRIER_ACTION, &a)) != DTX_OK ||
	    (rv = stor_txn_barrier_get(t, st->gid, st->branch,
	         STOR_BARRIER_COMPENSATE, &c)) != DTX_OK ||
	    (rv = stor_txn_barrier_get(t, st->gid, failed_branch(st->branch),
	         STOR_BARRIER_ACTION, &f)) != DTX_OK)
		goto fail;

	if (st->phase == PROTO_PHASE_ACTION) {
		if (a || c) {
			// A duplicate answers the first result; an action
			// after its compensation must not run (no hanging).
			o->dup = a;
			o->res = a ? (f ? PROTO_STEP_FAILED : PROTO_STEP_OK)
			           : PROTO_STEP_REFUSED;
			snprintf(o->why, sizeof(o->why), "%s",
			    !a      ? "compensated before the action arrived"
			        : f ? "the action failed earlier"
			            : "");
			stor_txn_abort(t);
			return DTX_OK;
		}
		bool failed = false;
		for (uint32_t i = 0; i < st->n_ops && !barrier_only && !failed;
		     i++)
			if ((rv = apply_op(t, &st->ops[i], &failed, o->why,
			         sizeof(o->why))) != DTX_OK)
				goto fail;
		if (failed) {
			stor_txn_abort(t);
			return DTX_ECANCELED; // again, barriers only
		}
		if ((rv = stor_txn_barrier_put(t, st->gid, st->branch,
		         STOR_BARRIER_ACTION)) != DTX_OK)
			goto fail;
		if (barrier_only &&
		    (rv = stor_txn_barrier_put(t, st->gid,
		         failed_branch(st->branch), STOR_BARRIER_ACTION)) !=
		        DTX_OK)
			goto fail;
		o->res = barrier_only ? PROTO_STEP_FAILED : PROTO_STEP_OK;
	} else {
		if (c) {
			o->dup = true;
			o->res = PROTO_STEP_OK;
			stor_txn_abort(t);
			return DTX_OK;
		}
		// Null compensation: the action never ran here, or failed
		// and changed nothing. Recording it still refuses a late
		// action.
		bool null = !a || f;
		bool failed = false;
		for (uint32_t i = 0; i < st->n_ops && !null && !failed; i++)
			if ((rv = apply_op(t, &st->ops[i], &failed, o->why,
			         sizeof(o->why))) != DTX_OK)
				goto fail;
		if (failed) {
			// A compensation must not fail: answer FAILED,
			// record nothing; the orchestrator keeps trying.
			stor_txn_abort(t);
			o->res = PROTO_STEP_FAILED;
			return DTX_OK;
		}
		if ((rv = stor_txn_barrier_put(t, st->gid, st->branch,
		         STOR_BARRIER_COMPENSATE)) != DTX_OK)
			goto fail;
		o->res = PROTO_STEP_OK;
		if (null)
			snprintf(o->why, sizeof(o->why), "null compensation");
	}
	rv = commit(p, t, &o->lsn);
	// A barrier that appeared meanwhile, or a key another transaction
	// changed or locked: the next attempt sees it.
	if (rv == DTX_ECONFLICT)
		rv = DTX_EAGAIN;
	return rv;
fail:
	stor_txn_abort(t);
	return rv == DTX_EEXIST ? DTX_EAGAIN : rv;
}

// Runs st (ops checked) into *o: the age collection that is due, then
// the step, and for an action that failed on business grounds, its
// barriers alone. Errors of run_step.
static dtx_err
step_once(part *p, const proto_step *st, step_out *o)
{
	size_t aged = 0;
	if (stor_kv_barrier_gc_every(p->kv, BARRIER_MAX_AGE_MS,
	        BARRIER_GC_EVERY_MS, &aged) == DTX_OK &&
	    aged > 0)
		DTX_LOG(DTX_LOG_INFO, "SAGA_BARRIER_GC",
		    "%zu barriers older than %u ms dropped (their forget was "
		    "lost)",
		    aged, BARRIER_MAX_AGE_MS);
	dtx_err rv = run_step(p, st, false, o);
	if (rv == DTX_ECANCELED) {
		// The action failed on business grounds: record that it
		// ran and failed (and nothing else) so that duplicates and
		// its compensation agree.
		char why[sizeof(o->why)];
		memcpy(why, o->why, sizeof(why));
		rv = run_step(p, st, true, o);
		if (rv == DTX_OK && !o->dup)
			memcpy(o->why, why, sizeof(why));
	}
	return rv;
}

dtx_err
part_saga_step(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend)
{
	const proto_step *st = &req->u.step;
	step_out o = { .res = PROTO_STEP_OK };
	dtx_err rv = DTX_OK;

	for (uint32_t i = 0; i < st->n_ops; i++)
		if (st->ops[i].kind != PROTO_OP_ADD &&
		    st->ops[i].kind != PROTO_OP_PUT)
			return proto_msg_set_error(rep, DTX_EINVAL,
			    "step %s/%u: a step's ops must be add or put",
			    st->gid, st->branch);
	if (too_old(p, st->gid)) {
		// Horizon rule 2: its barriers may be gone.
		o.res = PROTO_STEP_REFUSED;
		o.stale = true;
		snprintf(o.why, sizeof(o.why),
		    "saga %s began more than %u ms ago: past the barrier "
		    "horizon",
		    st->gid, BARRIER_MAX_AGE_MS);
	} else {
		rv = step_once(p, st, &o);
	}
	if (rv == DTX_EAGAIN)
		return proto_msg_set_error(rep, DTX_EAGAIN,
		    "step %s/%u: a key or barrier is busy; retry", st->gid,
		    st->branch);
	if (rv != DTX_OK)
		return rv;
	if (o.stale) {
		part__count(p, PART_CTR_REFUSED_STALE_STEP);
		DTX_LOGF_RL(DTX_LOG_WARN, "REFUSED",
		    dtx_log_rl_key(req->hdr.from, "STALE_STEP"),
		    DTX_FIELDS(DTX_LF_GID(st->gid),
		        DTX_LF_U("branch", st->branch),
		        DTX_LF_PEER(req->hdr.from), DTX_LF_S("type", "step"),
		        DTX_LF_S("why", o.why)),
		    "stale STEP refused");
	}
	proto_daemon_trace(p->d, PROTO_EV_APPLY, 0, st->gid,
	    st->phase == PROTO_PHASE_ACTION ? "STEP_APPLIED" : "COMP_APPLIED",
	    0);
	DTX_LOGF(DTX_LOG_DEBUG, "SAGA_STEP",
	    DTX_FIELDS(DTX_LF_GID(st->gid), DTX_LF_U("branch", st->branch),
	        DTX_LF_S("phase",
	            st->phase == PROTO_PHASE_ACTION ? "action"
	                                            : "compensation"),
	        DTX_LF_S("state",
	            o.res == PROTO_STEP_OK           ? "ok"
	                : o.res == PROTO_STEP_FAILED ? "failed"
	                                             : "refused"),
	        DTX_LF_U("dup", o.dup),
	        DTX_LF_S("why", o.why[0] ? o.why : NULL)),
	    NULL);
	rep->hdr.type = PROTO_STEP_REPLY;
	proto_step_reply *sr = &rep->u.step_reply;
	sr->branch = st->branch;
	sr->phase = st->phase;
	sr->result = o.res;
	sr->duplicate = o.dup;
	if ((rv = proto_str_set(&sr->gid, st->gid)) != DTX_OK)
		return rv;
	if (o.why[0] != '\0' &&
	    (rv = proto_str_set(&sr->reason, o.why)) != DTX_OK)
		return rv;
	if (o.lsn != 0) {
		pend->kind = PART__PEND_STEP;
		pend->lsn = o.lsn;
	}
	return DTX_OK;
}

// Writes gid's tombstone (horizon rule 1) as a local commit, appended to
// the WAL before the caller drops the saga's barriers; *lsn gets its LSN
// (0: there already, from a repeated forget).
static dtx_err
put_tombstone(part *p, const char *gid, uint64_t *lsn)
{
	char tomb[STOR_GID_MAX + 1];
	stor_txn *t = NULL;
	bool there = false;
	*lsn = 0;
	tomb_gid(gid, tomb);
	dtx_err rv = stor_txn_begin(p->kv, CLK_TS_MAX, &t);
	if (rv != DTX_OK)
		return rv;
	rv = stor_txn_barrier_get(
	    t, tomb, TOMB_BRANCH, STOR_BARRIER_ACTION, &there);
	if (rv == DTX_OK && !there)
		rv = stor_txn_barrier_put(
		    t, tomb, TOMB_BRANCH, STOR_BARRIER_ACTION);
	if (rv != DTX_OK || there) {
		stor_txn_abort(t);
		// Being made durable by an earlier forget: it is there.
		return rv == DTX_EAGAIN || rv == DTX_EEXIST ? DTX_OK : rv;
	}
	rv = commit(p, t, lsn);
	return rv == DTX_ECONFLICT ? DTX_OK : rv; // a concurrent forget
}

dtx_err
part_saga_forget(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend)
{
	size_t n = 0;
	uint64_t lsn = 0;
	const char *gid = req->u.gid.gid;
	if (gid == NULL || gid[0] == '\0' || strlen(gid) > STOR_GID_MAX)
		return DTX_EINVAL;
	// The forget is answered once the tombstone is durable (one fsync
	// for a whole BATCH of forgets, as for STEPs); the drop needs no
	// wait of its own, being appended after it.
	dtx_err rv = put_tombstone(p, gid, &lsn);
	if (rv == DTX_OK)
		rv = stor_kv_barrier_gc(p->kv, gid, 0, &n);
	if (rv != DTX_OK)
		return rv;
	DTX_LOGF(DTX_LOG_DEBUG, "SAGA_FORGET",
	    DTX_FIELDS(DTX_LF_GID(req->u.gid.gid), DTX_LF_U("barriers", n)),
	    "barriers dropped");
	rep->hdr.type = PROTO_ACK;
	rep->u.txid.txid = 0;
	if (lsn != 0) {
		pend->kind = PART__PEND_STEP;
		pend->lsn = lsn;
	}
	return DTX_OK;
}
