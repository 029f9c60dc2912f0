// SPDX-License-Identifier: MIT
//
// What the orchestrator serves: SAGA_SUBMIT (log the saga, run it as a
// job of the engine, answer committed, aborted or unknown; a gid already
// known gets that saga's outcome instead, so resubmission is idempotent),
// SAGA_STATUS, and its part of HEALTH (sagas in flight, sagas stuck in
// compensation with their age and last error, counters).

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "saga_int.h"

static bool
finished(const saga__rec *r)
{
	return r->state == PROTO_SAGA_COMMITTED ||
	    r->state == PROTO_SAGA_ABORTED;
}

static const char *
state_name(proto_saga_state st)
{
	switch (st) {
	case PROTO_SAGA_RUNNING:
		return "running";
	case PROTO_SAGA_COMPENSATING:
		return "compensating";
	case PROTO_SAGA_COMMITTED:
		return "committed";
	case PROTO_SAGA_ABORTED:
		return "aborted";
	default:
		return "unknown";
	}
}

dtx_err
saga__reply_of(saga *s, saga__rec *r, proto_msg *rep)
{
	proto_saga_reply *sr = &rep->u.saga_reply;
	char why[PROTO_MAX_STR + 1];
	dtx_err rv;

	rep->hdr.type = PROTO_SAGA_REPLY;
	sr->failed_step = r->failed_step;
	if (r->state == PROTO_SAGA_COMMITTED) {
		sr->outcome = PROTO_COMMITTED;
		why[0] = '\0';
	} else if (r->state == PROTO_SAGA_ABORTED) {
		sr->outcome = PROTO_ABORTED;
		snprintf(why, sizeof(why), "compensated: %s",
		    r->reason != NULL ? r->reason : "");
	} else {
		sr->outcome = PROTO_UNKNOWN;
		saga__count(s, SAGA_CTR_REPLIED_UNKNOWN);
		snprintf(why, sizeof(why), "saga is %s%s%s",
		    state_name(r->state), r->last_error[0] ? ": " : "",
		    r->last_error);
	}
	if ((rv = proto_str_set(&sr->gid, r->gid)) != DTX_OK)
		return rv;
	if (why[0] != '\0' && (rv = proto_str_set(&sr->reason, why)) != DTX_OK)
		return rv;
	return DTX_OK;
}

static void
deadline_ts(struct timespec *ts, uint64_t deadline_ns)
{
	uint64_t now = dtx_mono_ns();
	uint64_t d = deadline_ns > now ? deadline_ns - now : 0;
	if (d > 100000000u)
		d = 100000000u; // wake at least every 100 ms to see a stop
	*ts = dtx_time_after(CLOCK_MONOTONIC, d);
}

// Waits (bounded by the client's wait) for r's outcome, as a waiter (the
// caller counted itself in r->waiters, so that r stays), then builds the
// reply with r's state. saga->mu held.
static dtx_err
wait_outcome(saga *s, saga__rec *r, proto_msg *rep)
{
	uint64_t end =
	    dtx_mono_ns() + (uint64_t)s->cfg->reply_wait_ms * 1000000u;
	while (!finished(r) && dtx_mono_ns() < end && !saga__stopping(s)) {
		struct timespec ts;
		deadline_ts(&ts, end);
		pthread_cond_timedwait(&s->done_cv, &s->mu, &ts);
	}
	r->waiters--;
	return saga__reply_of(s, r, rep);
}

// The largest amount one ADD moves (as the participants' PREPARE check).
#define SAGA_MAX_AMOUNT 1000000000000000LL

// Why step st's ops mean nothing a client may ask for, or NULL. An ADD
// moves 1..SAGA_MAX_AMOUNT; an action that debits keeps a floor a balance
// can have (no INT64_MIN that lets it overdraw); a compensation that is
// an ADD is the exact inverse of an ADD action (same key, opposite
// amount): its floor is ignored, since a compensation must apply, so it
// must not be free to debit anything else.
static const char *
step_ops_bad(const proto_saga_step *st)
{
	const proto_op *a = &st->action, *c = &st->compensate;
	if (a->kind == PROTO_OP_ADD &&
	    (a->delta == 0 || a->delta > SAGA_MAX_AMOUNT ||
	        a->delta < -SAGA_MAX_AMOUNT))
		return "the action's amount is 0 or too large";
	if (a->kind == PROTO_OP_ADD && a->delta < 0 &&
	    a->min < -SAGA_MAX_AMOUNT)
		return "the action debits with a floor no balance can have";
	if (c->kind != PROTO_OP_ADD)
		return NULL;
	if (a->kind != PROTO_OP_ADD || a->key.n != c->key.n ||
	    memcmp(a->key.p, c->key.p, a->key.n) != 0 || c->delta != -a->delta)
		return "an add compensation must undo its add action exactly "
		       "(same key, opposite amount)";
	return NULL;
}

// Checks what the participants could not: that every step names a
// participant of the topology and uses ops a step can carry, meaning what
// a saga can mean (step_ops_bad).
static dtx_err
check_submit(saga *s, const proto_saga_submit *sub, proto_msg *rep)
{
	const dtx_topo *topo = proto_daemon_topo(s->d);
	for (uint32_t i = 0; i < sub->n_steps; i++) {
		const proto_saga_step *st = &sub->steps[i];
		const dtx_node *nd = dtx_topo_find(topo, st->participant);
		if (nd == NULL || nd->role != DTX_ROLE_PARTICIPANT)
			return proto_msg_set_error(rep, DTX_EINVAL,
			    "step %u: node %u is not a participant", i,
			    st->participant);
		// An APPEND has no compensation (nothing removes an
		// element), so a saga cannot undo one.
		if ((st->action.kind != PROTO_OP_ADD &&
		        st->action.kind != PROTO_OP_PUT) ||
		    (st->compensate.kind != PROTO_OP_ADD &&
		        st->compensate.kind != PROTO_OP_PUT))
			return proto_msg_set_error(rep, DTX_EINVAL,
			    "step %u: a step's action and compensation must "
			    "be add or put",
			    i);
		const char *bad = step_ops_bad(st);
		if (bad != NULL)
			return proto_msg_set_error(
			    rep, DTX_EINVAL, "step %u: %s", i, bad);
	}
	return DTX_OK;
}

// Appends sub's BEGIN record (payload b) and applies it: *r is the new
// saga, owned by the caller, and *lsn the record's LSN (not yet durable).
// saga->mu held.
static dtx_err
append_begin(saga *s, const proto_saga_submit *sub, uint64_t wall,
    const char *bid, const dtx_buf *b, saga__rec **r, uint64_t *lsn)
{
	dtx_err rv =
	    stor_wal_append(s->wal, SAGA__REC_BEGIN, b->p, b->len, false, lsn);
	if (rv == DTX_OK)
		rv = saga__apply_begin_live(s, sub, wall, bid, r);
	if (rv != DTX_OK)
		return rv;
	(*r)->owned = true;
	(*r)->reply_by_ns =
	    dtx_mono_ns() + (uint64_t)s->cfg->reply_wait_ms * 1000000u;
	saga__count(s, SAGA_CTR_SUBMITTED);
	return DTX_OK;
}

// SAGA_SUBMIT. With tok (the request deferred) this returns at once: a
// new saga runs as a job of the engine, which answers tok; a gid already
// known waits for its outcome on a submitter thread. Without tok (on a
// submitter, or when the request could not be deferred) this waits: for
// the known saga's outcome, or for the new saga's job.
static dtx_err
submit(saga *s, const proto_msg *req, proto_msg *rep, proto_defer *tok)
{
	const proto_saga_submit *sub = &req->u.saga_submit;
	dtx_buf b = { 0 };
	saga__rec *r = NULL;
	saga__job *j = NULL;
	uint64_t lsn = 0;
	dtx_err rv;

	if (saga__stopping(s))
		return DTX_ECLOSED;
	if ((rv = check_submit(s, sub, rep)) != DTX_OK ||
	    rep->hdr.type == PROTO_ERROR)
		return rv;
	uint64_t wall = dtx_wall_ns() / 1000000u;
	char bid[SAGA_BID_LEN + 1];
	if ((rv = saga__bid_new(s, bid)) != DTX_OK)
		goto done;
	rv = saga__enc_begin(&b, sub, wall, bid);
	if (rv != DTX_OK)
		goto done;
	pthread_mutex_lock(&s->mu);
	if ((r = saga__find(s, sub->gid)) != NULL && tok != NULL) {
		// Waiting for its outcome holds a thread.
		pthread_mutex_unlock(&s->mu);
		proto_pool_run(s->submitters, tok);
		goto done;
	}
	if (r != NULL) {
		saga__count(s, SAGA_CTR_RESUBMITTED);
		r->waiters++;
		rv = wait_outcome(s, r, rep);
		pthread_mutex_unlock(&s->mu);
		goto done;
	}
	if ((rv = saga__job_new(s, &j)) == DTX_OK &&
	    (rv = append_begin(s, sub, wall, bid, &b, &r, &lsn)) != DTX_OK)
		saga__job_drop(j);
	if (rv == DTX_OK && tok == NULL)
		r->waiters++;
	pthread_mutex_unlock(&s->mu);
	if (rv != DTX_OK)
		goto done;
	saga__run(j, r, tok, lsn);
	if (tok == NULL) {
		pthread_mutex_lock(&s->mu);
		rv = wait_outcome(s, r, rep);
		if (!finished(r) && !saga__stopping(s))
			saga__count(s, SAGA_CTR_HANDED_OFF);
		pthread_mutex_unlock(&s->mu);
	}
done:
	dtx_buf_fini(&b);
	return rv;
}

static dtx_err
status(saga *s, const proto_msg *req, proto_msg *rep)
{
	proto_saga_status_reply *sr = &rep->u.saga_status_reply;
	dtx_err rv;

	rep->hdr.type = PROTO_SAGA_STATUS_REPLY;
	if ((rv = proto_str_set(&sr->gid, req->u.gid.gid)) != DTX_OK)
		return rv;
	pthread_mutex_lock(&s->mu);
	saga__rec *r = saga__find(s, req->u.gid.gid);
	if (r == NULL) {
		sr->state = PROTO_SAGA_UNKNOWN;
		goto unlock;
	}
	sr->state = r->state;
	if (r->n_steps > 0) {
		sr->step_states = dtx_alloc(r->n_steps);
		if (sr->step_states == NULL) {
			rv = DTX_ENOMEM;
			goto unlock;
		}
		memcpy(sr->step_states, r->st, r->n_steps);
		sr->n_steps = r->n_steps;
		if (r->comp_ts != NULL) {
			sr->comp_ts =
			    dtx_alloc(r->n_steps * sizeof(*sr->comp_ts));
			if (sr->comp_ts == NULL) {
				rv = DTX_ENOMEM;
				goto unlock;
			}
			memcpy(sr->comp_ts, r->comp_ts,
			    r->n_steps * sizeof(*sr->comp_ts));
		}
	}
	uint64_t now = dtx_wall_ns() / 1000000u;
	sr->age_ms = now > r->submit_wall_ms ? now - r->submit_wall_ms : 0;
	if (r->last_error[0] != '\0')
		rv = proto_str_set(&sr->last_error, r->last_error);
unlock:
	pthread_mutex_unlock(&s->mu);
	return rv;
}

dtx_err
saga__handle(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	saga *s = arg;
	proto_defer *tok;
	proto_msg trep;
	dtx_err rv;

	proto_msg_init(&trep, PROTO_NONE);
	switch (req->hdr.type) {
	case PROTO_SAGA_SUBMIT:
		// The one place that takes the request over: a saga runs
		// from completions, so that this worker (and the next element
		// of a BATCH) goes on. On a submitter no token is given, and
		// submit waits there.
		if ((tok = proto_server_defer(call)) == NULL)
			return submit(s, req, rep, NULL);
		rv = submit(s, proto_defer_req(tok), &trep, tok);
		if (rv != DTX_OK || trep.hdr.type != PROTO_NONE)
			proto_defer_reply(tok, rv, &trep);
		else
			proto_msg_free(&trep);
		return DTX_OK;
	case PROTO_SAGA_STATUS:
		return status(s, req, rep);
	default:
		return proto_msg_set_error(rep, DTX_EINVAL,
		    "a saga orchestrator does not serve %s messages",
		    proto_type_name(req->hdr.type));
	}
}

dtx_err
saga__health(void *arg, proto_health_reply *rep)
{
	saga *s = arg;
	char state[PROTO_MAX_STR + 1];
	dtx_err rv;
	size_t comp = 0, stuck = 0;
	uint64_t oldest = 0;
	const saga__rec *worst = NULL;

	pthread_mutex_lock(&s->mu);
	uint64_t now = dtx_mono_ns();
	for (size_t b = 0; b < s->nbuckets && s->unfinished > 0; b++)
		for (saga__rec *r = s->buckets[b]; r != NULL; r = r->hnext) {
			if (r->state != PROTO_SAGA_COMPENSATING)
				continue;
			comp++;
			uint64_t age = (now - r->comp_since_ns) / 1000000u;
			if (age >= (uint64_t)s->cfg->stuck_ms)
				stuck++;
			if (worst == NULL || age > oldest) {
				oldest = age;
				worst = r;
			}
		}
	if (stor_wal_status(s->wal) != DTX_OK)
		snprintf(state, sizeof(state), "failed");
	else if (stuck > 0)
		snprintf(state, sizeof(state),
		    "stuck: saga %s compensating for %llu ms: %s", worst->gid,
		    (unsigned long long)oldest,
		    worst->last_error[0] ? worst->last_error : "no error yet");
	else if (s->recovering > 0)
		snprintf(state, sizeof(state), "recovering");
	else
		snprintf(state, sizeof(state), "ok");
	int64_t inflight = (int64_t)s->unfinished;
	int64_t remembered = (int64_t)s->count;
	int64_t forgets = (int64_t)s->fq_len;
	pthread_mutex_unlock(&s->mu);
	stor_wal_stats ws;
	stor_wal_stats_get(s->wal, &ws);

	if ((rv = proto_str_set(&rep->state, state)) != DTX_OK)
		return rv;
	rep->in_doubt = comp;
	proto_named_value g[] = {
		{ "in_flight", inflight },
		{ "compensating", (int64_t)comp },
		{ "stuck", (int64_t)stuck },
		{ "oldest_compensating_ms", (int64_t)oldest },
		{ "remembered", remembered },
		{ "forgets_pending", forgets },
		{ "log_appends", (int64_t)ws.appends },
		{ "log_syncs", (int64_t)ws.syncs },
		{ "log_bytes", (int64_t)ws.bytes },
	};
	if ((rv = proto_health_counters(rep, g, sizeof(g) / sizeof(g[0]))) !=
	    DTX_OK)
		return rv;
	return proto_health_counter_array(
	    rep, saga__ctr_names, s->ctr, SAGA_CTR_COUNT);
}
