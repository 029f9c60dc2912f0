// SPDX-License-Identifier: MIT
//
// Running one saga (DESIGN rule 12): each action in order, its start
// logged and durable before it is sent; on a definite failure, or when an
// action's retry budget runs out, every started step is compensated in
// reverse order, compensations being retried until they succeed. STEP is
// idempotent at the participant (the barrier, rule 13), so every call is
// retried freely with capped exponential backoff and jitter. The driver
// keeps all its progress in the saga's record, so a saga handed from a
// worker to a resumer, or reloaded after a crash, continues where the log
// says it stopped.

#include <stdio.h>
#include <string.h>

#include "saga_int.h"

bool
saga__stopping(saga *s)
{
	return atomic_load(&s->stop) || proto_daemon_stopping(s->d);
}

static bool
stopping(void *s)
{
	return saga__stopping(s);
}

// Sleeps ms, waking early when the daemon stops.
static void
nap(saga *s, uint64_t ms)
{
	dtx_nap_ms(ms, stopping, s);
}

void
saga__set_log_error(saga *s, saga__rec *r, dtx_err rv)
{
	char err[96];
	snprintf(err, sizeof(err), "saga log: %s", dtx_strerror(rv));
	saga__set_error(s, r, err);
}

void
saga__set_error(saga *s, saga__rec *r, const char *err)
{
	pthread_mutex_lock(&s->mu);
	snprintf(r->last_error, sizeof(r->last_error), "%s", err);
	pthread_mutex_unlock(&s->mu);
}

// ERROR codes after which a retry can succeed: the participant was busy,
// a key was locked, its disk or clock misbehaved, or it is restarting.
static bool
transient(dtx_err code)
{
	switch (code) {
	case DTX_EAGAIN:
	case DTX_ECONFLICT:
	case DTX_EBUSY:
	case DTX_EIO:
	case DTX_ENOSPC:
	case DTX_EFAILED:
	case DTX_ECLOCK:
	case DTX_ECLOSED:
	case DTX_ETIMEDOUT:
	case DTX_EUNREACH:
	case DTX_ENOMEM:
		return true;
	default:
		return false;
	}
}

void
saga__step_req(const saga__rec *r, uint32_t i, proto_phase ph, proto_msg *req)
{
	const proto_saga_step *st = &r->steps[i];
	proto_msg_init(req, PROTO_STEP);
	req->u.step = (proto_step) {
		.gid = r->gid,
		.branch = i,
		.phase = ph,
		.n_ops = 1,
		.ops = (proto_op *)(ph == PROTO_PHASE_ACTION ? &st->action
		                                             : &st->compensate),
	};
}

bool
saga__step_judge(const saga__rec *r, uint32_t i, proto_phase ph, dtx_err rv,
    proto_msg *rep, proto_step_result *res, char *why, size_t wlen, char *err,
    size_t elen)
{
	uint32_t node = r->steps[i].participant;
	bool definite = false;
	if (rv == DTX_OK) {
		const proto_step_reply *sr = &rep->u.step_reply;
		if (rep->hdr.type == PROTO_STEP_REPLY && sr->branch == i &&
		    sr->phase == ph && sr->gid != NULL &&
		    strcmp(sr->gid, r->gid) == 0) {
			*res = sr->result;
			snprintf(why, wlen, "%s",
			    sr->reason != NULL ? sr->reason : "");
			definite = true;
		} else {
			snprintf(err, elen,
			    "step %u on node %u: unexpected %s reply", i, node,
			    proto_type_name(rep->hdr.type));
		}
	} else if (rv == DTX_EREFUSED) {
		dtx_err code = rep->u.error.code;
		snprintf(err, elen, "step %u on node %u: %s (%s)", i, node,
		    dtx_errname(code),
		    rep->u.error.reason ? rep->u.error.reason : "");
		if (!transient(code) && ph == PROTO_PHASE_ACTION) {
			// A definite refusal: the action did not run and
			// will not.
			*res = PROTO_STEP_FAILED;
			snprintf(why, wlen, "%s", err);
			definite = true;
		}
	} else {
		snprintf(err, elen, "step %u on node %u: %s", i, node,
		    dtx_strerror(rv));
	}
	if (rep != NULL)
		proto_msg_free(rep);
	return definite;
}

typedef enum call_rc {
	CALL_DONE, // *res holds a definite answer
	CALL_GAVE_UP, // deadline passed or stopping; why says the last error
} call_rc;

// Sends step i's action or compensation until a definite answer or until
// deadline_ns. Transient errors are retried with capped exponential
// backoff and jitter; each is kept as the saga's last error.
static call_rc
call_step(saga *s, saga__rec *r, uint32_t i, proto_phase ph,
    uint64_t deadline_ns, proto_step_result *res, char *why, size_t wlen)
{
	const saga_cfg *cfg = s->cfg;
	const proto_saga_step *st = &r->steps[i];
	uint64_t seed = dtx_mono_ns() ^ ((uint64_t)(uintptr_t)r << 7) ^ i;
	proto_retry once = { .attempts = 1 };
	proto_call_opts o = {
		.timeout_ms = (uint32_t)cfg->step_timeout_ms,
		.idempotent = true,
		.retry = &once,
	};
	char err[sizeof(r->last_error)];

	for (uint32_t attempt = 0;; attempt++) {
		if (saga__stopping(s)) {
			snprintf(why, wlen, "orchestrator stopping");
			return CALL_GAVE_UP;
		}
		proto_msg req, rep;
		saga__step_req(r, i, ph, &req);
		proto_msg_init(&rep, PROTO_NONE);
		saga__count(s,
		    attempt == 0 ? SAGA_CTR_STEP_CALLS : SAGA_CTR_STEP_RETRIES);
		proto_batcher *b = st->participant < DTX_TOPO_MAX
		    ? s->steps[st->participant]
		    : NULL;
		dtx_err rv = b != NULL
		    ? proto_batcher_call(b, &req, &rep, o.timeout_ms)
		    : proto_daemon_call(s->d, st->participant, &req, &rep, &o);
		if (saga__step_judge(r, i, ph, rv,
		        rv == DTX_OK || rv == DTX_EREFUSED ? &rep : NULL, res,
		        why, wlen, err, sizeof(err)))
			return CALL_DONE;
		saga__set_error(s, r, err);
		uint64_t now = dtx_mono_ns();
		if (now >= deadline_ns) {
			snprintf(why, wlen, "%s", err);
			return CALL_GAVE_UP;
		}
		uint64_t d = (uint64_t)cfg->backoff_base_ms
		    << (attempt < 20 ? attempt : 20);
		if (d > (uint64_t)cfg->backoff_max_ms)
			d = (uint64_t)cfg->backoff_max_ms;
		d = d / 2 + dtx_rand_below(&seed, d / 2 + 1);
		uint64_t left = (deadline_ns - now) / 1000000u;
		nap(s, d < left ? d : left + 1);
	}
}

dtx_err
saga__log_step(saga *s, saga__rec *r, uint32_t i, proto_phase ph, bool fin,
    proto_step_result res, const char *why, bool force, uint64_t *lsn)
{
	dtx_buf b = { 0 };
	saga__enc_step(&b, r->gid, i, ph, fin, res, why);
	dtx_err rv = saga__log(s, SAGA__REC_STEP, &b, force, lsn);
	dtx_buf_fini(&b);
	return rv;
}

dtx_err
saga__log_comp(saga *s, saga__rec *r, int32_t failed, const char *why)
{
	dtx_buf b = { 0 };
	saga__enc_comp(&b, r->gid, failed, why);
	dtx_err rv = saga__log(s, SAGA__REC_COMP, &b, false, NULL);
	dtx_buf_fini(&b);
	return rv;
}

// END is appended unforced: the client may hear the outcome before END is
// durable. A crash that loses END (and pre) leaves the last step (or
// compensation) logged as started, and recovery runs it again: its
// barrier answers the first result, so the saga ends as the client was
// told. The barriers stay until END is durable (send_forgets syncs the
// log first).
dtx_err
saga__log_end(saga *s, saga__rec *r, proto_saga_state st, const dtx_buf *pre)
{
	dtx_buf b = { 0 };
	saga__enc_end(
	    &b, r->gid, st, r->failed_step, r->submit_wall_ms, r->reason);
	saga__logrec recs[2] = {
		{ .type = SAGA__REC_STEP, .b = pre },
		{ .type = SAGA__REC_END, .b = &b },
	};
	dtx_err rv = pre != NULL ? saga__log_n(s, recs, 2, false, NULL)
	                         : saga__log_n(s, recs + 1, 1, false, NULL);
	dtx_buf_fini(&b);
	if (rv == DTX_OK) {
		saga__count(s,
		    st == PROTO_SAGA_COMMITTED ? SAGA_CTR_COMMITTED
		                               : SAGA_CTR_ABORTED);
		DTX_LOG(DTX_LOG_DEBUG, "SAGA_END", "saga %s %s", r->gid,
		    st == PROTO_SAGA_COMMITTED ? "committed" : "aborted");
	}
	return rv;
}

dtx_err
saga__log_done_then(saga *s, saga__rec *r, uint32_t i, uint64_t *lsn)
{
	dtx_buf done = { 0 }, next = { 0 };
	saga__enc_step(
	    &done, r->gid, i, PROTO_PHASE_ACTION, true, PROTO_STEP_OK, NULL);
	dtx_err rv;
	if (i + 1 == r->n_steps) {
		rv = saga__log_end(s, r, PROTO_SAGA_COMMITTED, &done);
	} else {
		saga__enc_step(&next, r->gid, i + 1, PROTO_PHASE_ACTION, false,
		    PROTO_STEP_OK, NULL);
		saga__logrec recs[2] = {
			{ .type = SAGA__REC_STEP, .b = &done },
			{ .type = SAGA__REC_STEP, .b = &next },
		};
		rv = saga__log_n(s, recs, 2, true, lsn);
	}
	dtx_buf_fini(&done);
	dtx_buf_fini(&next);
	return rv;
}

dtx_err
saga__action_outcome(
    saga *s, saga__rec *r, uint32_t i, proto_step_result res, const char *why)
{
	char text[PROTO_MAX_STR + 1];
	dtx_err rv = saga__log_step(s, r, i, PROTO_PHASE_ACTION, true, res,
	    res == PROTO_STEP_OK ? NULL : why, false, NULL);
	if (rv != DTX_OK || res == PROTO_STEP_OK)
		return rv;
	saga__count(s, SAGA_CTR_STEP_FAILED);
	snprintf(text, sizeof(text), "step %u %s: %s", i,
	    res == PROTO_STEP_REFUSED ? "refused" : "failed", why);
	return saga__log_comp(s, r, (int32_t)i, text);
}

void
saga__comp_failed(
    saga *s, saga__rec *r, uint32_t i, proto_step_result res, const char *why)
{
	char err[sizeof(r->last_error)];
	snprintf(err, sizeof(err), "compensation of step %u %s: %s", i,
	    res == PROTO_STEP_REFUSED ? "refused" : "failed", why);
	saga__set_error(s, r, err);
	DTX_LOG(DTX_LOG_WARN, "SAGA_COMP_FAILED", "saga %s: %s", r->gid, err);
}

dtx_err
saga__comp_done(saga *s, saga__rec *r, uint32_t i)
{
	dtx_crashpoint("saga.during_compensation");
	dtx_err rv = saga__log_step(s, r, i, PROTO_PHASE_COMPENSATE, true,
	    PROTO_STEP_OK, NULL, false, NULL);
	if (rv == DTX_OK)
		saga__count(s, SAGA_CTR_COMPENSATIONS);
	return rv;
}

// The saga log failed: the saga cannot move on (its state must be logged
// first). It stays unfinished; the caller answers unknown.
static bool
log_failed(saga *s, saga__rec *r, dtx_err rv)
{
	saga__set_log_error(s, r, rv);
	nap(s, 100);
	return false;
}

// Forward: runs every action not yet done, in order. Returns true when the
// saga committed or turned to compensation (r->state says which).
static bool
forward(saga *s, saga__rec *r, uint64_t deadline_ns)
{
	char why[PROTO_MAX_STR + 1], text[PROTO_MAX_STR + 1];
	dtx_err rv;

	for (;;) {
		uint32_t i = 0;
		while (i < r->n_steps && r->st[i] == PROTO_SS_DONE)
			i++;
		if (i == r->n_steps) {
			if ((rv = saga__log_end(
			         s, r, PROTO_SAGA_COMMITTED, NULL)) != DTX_OK)
				return log_failed(s, r, rv);
			return true;
		}
		if (r->st[i] == PROTO_SS_PENDING) {
			// Rule 12: the step's start is durable before it
			// runs, so recovery knows which steps to compensate.
			rv = saga__log_step(s, r, i, PROTO_PHASE_ACTION, false,
			    PROTO_STEP_OK, NULL, true, NULL);
			if (rv != DTX_OK)
				return log_failed(s, r, rv);
			dtx_crashpoint("saga.after_step_start_log");
		}
		uint64_t now = dtx_mono_ns();
		if (r->action_since_ns == 0)
			r->action_since_ns = now;
		uint64_t budget_end = r->action_since_ns +
		    (uint64_t)s->cfg->action_budget_ms * 1000000u;
		proto_step_result res = PROTO_STEP_OK;
		call_rc rc = call_step(s, r, i, PROTO_PHASE_ACTION,
		    budget_end < deadline_ns ? budget_end : deadline_ns, &res,
		    why, sizeof(why));
		if (rc == CALL_GAVE_UP) {
			if (saga__stopping(s) || dtx_mono_ns() < budget_end)
				return false; // our turn ended, not the budget
			saga__count(s, SAGA_CTR_GAVE_UP);
			snprintf(text, sizeof(text),
			    "step %u: retries exhausted: %s", i, why);
			DTX_LOG(DTX_LOG_WARN, "SAGA_GIVE_UP", "saga %s %s",
			    r->gid, text);
			if ((rv = saga__log_comp(s, r, (int32_t)i, text)) !=
			    DTX_OK)
				return log_failed(s, r, rv);
			return true;
		}
		// The participant applied (or refused) it; a crash here
		// leaves the step started but without an outcome.
		dtx_crashpoint("saga.after_step_applied");
		if (res == PROTO_STEP_OK &&
		    (i + 1 == r->n_steps || r->st[i + 1] == PROTO_SS_PENDING)) {
			// The outcome goes with what must be durable next
			// anyway: the next step's start (rule 12), or END.
			rv = saga__log_done_then(s, r, i, NULL);
			if (rv != DTX_OK)
				return log_failed(s, r, rv);
			if (i + 1 == r->n_steps)
				return true;
			dtx_crashpoint("saga.after_step_start_log");
			continue;
		}
		if ((rv = saga__action_outcome(s, r, i, res, why)) != DTX_OK)
			return log_failed(s, r, rv);
		if (res != PROTO_STEP_OK)
			return true;
	}
}

// Backward: compensates every started step, last first, each until it
// succeeds. Returns true once the saga is aborted (fully compensated).
static bool
backward(saga *s, saga__rec *r, uint64_t deadline_ns)
{
	char why[PROTO_MAX_STR + 1];
	dtx_err rv;

	int64_t hi = -1;
	for (uint32_t i = 0; i < r->n_steps; i++)
		if (r->st[i] != PROTO_SS_PENDING)
			hi = i;
	for (int64_t k = hi; k >= 0; k--) {
		uint32_t i = (uint32_t)k;
		if (r->st[i] == PROTO_SS_COMPENSATED)
			continue;
		if (r->st[i] != PROTO_SS_COMPENSATING) {
			rv = saga__log_step(s, r, i, PROTO_PHASE_COMPENSATE,
			    false, PROTO_STEP_OK, NULL, true, NULL);
			if (rv != DTX_OK)
				return log_failed(s, r, rv);
		}
		for (;;) {
			proto_step_result res = PROTO_STEP_OK;
			if (call_step(s, r, i, PROTO_PHASE_COMPENSATE,
			        deadline_ns, &res, why,
			        sizeof(why)) == CALL_GAVE_UP)
				return false;
			if (res == PROTO_STEP_OK)
				break;
			// A compensation must not fail; keep trying and show
			// it (SAGA_STATUS, HEALTH) until someone fixes it.
			saga__comp_failed(s, r, i, res, why);
			if (dtx_mono_ns() >= deadline_ns)
				return false;
			nap(s, (uint64_t)s->cfg->backoff_max_ms);
		}
		if ((rv = saga__comp_done(s, r, i)) != DTX_OK)
			return log_failed(s, r, rv);
	}
	if ((rv = saga__log_end(s, r, PROTO_SAGA_ABORTED, NULL)) != DTX_OK)
		return log_failed(s, r, rv);
	return true;
}

bool
saga__drive(saga *s, saga__rec *r, uint64_t deadline_ns)
{
	if (r->state == PROTO_SAGA_RUNNING && !forward(s, r, deadline_ns))
		return false;
	if (r->state == PROTO_SAGA_COMPENSATING)
		return backward(s, r, deadline_ns);
	return r->state == PROTO_SAGA_COMMITTED ||
	    r->state == PROTO_SAGA_ABORTED;
}
