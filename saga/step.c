// SPDX-License-Identifier: MIT
//
// What the engine (engine.c) does to one step, apart from when: the STEP
// request of an action or compensation, the judging of its answer
// (definite, or to be retried), and the saga log records of its start,
// its outcome, the turn to compensation and the end (DESIGN rule 12).

#include <stdio.h>
#include <string.h>

#include "saga_int.h"

bool
saga__stopping(saga *s)
{
	return atomic_load(&s->stop) || proto_daemon_stopping(s->d);
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
		.gid = (char *)r->bid,
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
    size_t elen, clk_ts *hlc)
{
	uint32_t node = r->steps[i].participant;
	bool definite = false;
	*hlc = 0;
	if (rv == DTX_OK) {
		const proto_step_reply *sr = &rep->u.step_reply;
		if (rep->hdr.type == PROTO_STEP_REPLY && sr->branch == i &&
		    sr->phase == ph && sr->gid != NULL &&
		    strcmp(sr->gid, r->bid) == 0) {
			*res = sr->result;
			snprintf(why, wlen, "%s",
			    sr->reason != NULL ? sr->reason : "");
			*hlc = rep->hdr.hlc;
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
		proto_daemon_trace_saga(s->d, PROTO_EV_DECIDE, 0, r->gid,
		    r->bid,
		    st == PROTO_SAGA_COMMITTED ? "SAGA_COMMITTED"
		                               : "SAGA_ABORTED",
		    0);
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
	DTX_LOGF(DTX_LOG_WARN, "SAGA_COMP_FAILED",
	    DTX_FIELDS(DTX_LF_GID(r->gid), DTX_LF_U("step", i)), "%s", err);
}

dtx_err
saga__comp_done(saga *s, saga__rec *r, uint32_t i, clk_ts hlc)
{
	pthread_mutex_lock(&s->mu);
	if (r->comp_ts == NULL)
		r->comp_ts = dtx_calloc(r->n_steps, sizeof(*r->comp_ts));
	if (r->comp_ts != NULL) // without memory the order is only unknown
		r->comp_ts[i] = hlc;
	pthread_mutex_unlock(&s->mu);
	dtx_crashpoint("saga.during_compensation");
	dtx_err rv = saga__log_step(s, r, i, PROTO_PHASE_COMPENSATE, true,
	    PROTO_STEP_OK, NULL, false, NULL);
	if (rv == DTX_OK)
		saga__count(s, SAGA_CTR_COMPENSATIONS);
	return rv;
}
