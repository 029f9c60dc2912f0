// SPDX-License-Identifier: MIT
//
// Saga steps (STEP, SAGA_FORGET: rules 12-13). Each STEP runs as one local
// transaction whose barrier record (gid, branch, phase) is written in the
// same commit as the balance change, so that a duplicate is a no-op that
// answers the first result, a compensation whose action never ran (or
// failed) is a recorded null compensation, and an action arriving after
// its compensation is refused instead of left hanging. SAGA_FORGET drops a
// finished saga's barriers.

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

typedef struct step_out {
	proto_step_result res;
	bool dup;
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
	bool a = false, c = false, f = false;
	dtx_err rv;

	if ((rv = stor_txn_begin(p->kv, CLK_TS_MAX, &t)) != DTX_OK)
		return rv;
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

dtx_err
part_saga_step(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend)
{
	const proto_step *st = &req->u.step;
	step_out o = { .res = PROTO_STEP_OK };
	dtx_err rv;

	for (uint32_t i = 0; i < st->n_ops; i++)
		if (st->ops[i].kind == PROTO_OP_GET)
			return proto_msg_set_error(rep, DTX_EINVAL,
			    "step %s/%u: a step's ops must be add or put",
			    st->gid, st->branch);
	size_t aged = 0;
	if (stor_kv_barrier_gc_every(p->kv, BARRIER_MAX_AGE_MS,
	        BARRIER_GC_EVERY_MS, &aged) == DTX_OK &&
	    aged > 0)
		DTX_LOG(DTX_LOG_INFO, "SAGA_BARRIER_GC",
		    "%zu barriers older than %u ms dropped (their forget was "
		    "lost)",
		    aged, BARRIER_MAX_AGE_MS);
	rv = run_step(p, st, false, &o);
	if (rv == DTX_ECANCELED) {
		// The action failed on business grounds: record that it
		// ran and failed (and nothing else) so that duplicates and
		// its compensation agree.
		char why[sizeof(o.why)];
		memcpy(why, o.why, sizeof(why));
		rv = run_step(p, st, true, &o);
		if (rv == DTX_OK && !o.dup)
			memcpy(o.why, why, sizeof(why));
	}
	if (rv == DTX_EAGAIN)
		return proto_msg_set_error(rep, DTX_EAGAIN,
		    "step %s/%u: a key or barrier is busy; retry", st->gid,
		    st->branch);
	if (rv != DTX_OK)
		return rv;
	DTX_LOG(DTX_LOG_DEBUG, "SAGA_STEP", "%s/%u %s: %s%s%s%s", st->gid,
	    st->branch,
	    st->phase == PROTO_PHASE_ACTION ? "action" : "compensation",
	    o.res == PROTO_STEP_OK           ? "ok"
	        : o.res == PROTO_STEP_FAILED ? "failed"
	                                     : "refused",
	    o.dup ? " (duplicate)" : "", o.why[0] ? ": " : "", o.why);
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

dtx_err
part_saga_forget(part *p, const proto_msg *req, proto_msg *rep)
{
	size_t n = 0;
	dtx_err rv = stor_kv_barrier_gc(p->kv, req->u.gid.gid, 0, &n);
	if (rv != DTX_OK)
		return rv;
	DTX_LOG(DTX_LOG_DEBUG, "SAGA_FORGET", "%s: %zu barriers dropped",
	    req->u.gid.gid, n);
	rep->hdr.type = PROTO_ACK;
	rep->u.txid.txid = 0;
	return DTX_OK;
}
