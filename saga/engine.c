// SPDX-License-Identifier: MIT
//
// The saga engine, the only one: every saga (a client's, a recovered one)
// runs as a job that moves on from completions and never holds a thread
// while it waits (DESIGN rule 12). A forced record goes to the forcer,
// whose thread sends the next STEP once the record is durable (many sagas'
// records share one fsync); a STEP's answer, on an nng thread, logs the
// outcome and starts what comes next; the last record answers the client.
// A call without a definite answer is sent again after a pause (capped
// exponential backoff with jitter, recover.c's resumers wake the job), an
// action until its retry budget is spent, a compensation until it
// succeeds. STEP is idempotent at the participant (the barrier, rule 13),
// so every call is retried freely. The job keeps all its progress in the
// saga's record, so a saga reloaded after a crash goes on where its log
// says it stopped.

#include <stdio.h>
#include <string.h>

#include "saga_int.h"

typedef saga__job job;

static void advance(job *j);
static void send_step(job *j);
static void action_started(job *j);

dtx_err
saga__job_new(saga *s, saga__job **out)
{
	if (saga__stopping(s))
		return DTX_ECLOSED;
	job *j = dtx_calloc(1, sizeof(*j));
	if (j == NULL)
		return DTX_ENOMEM;
	j->s = s;
	s->jobs++;
	*out = j;
	return DTX_OK;
}

void
saga__job_drop(saga__job *j)
{
	saga *s = j->s;
	s->jobs--;
	pthread_cond_broadcast(&s->done_cv);
	dtx_free(j);
}

void
saga__job_end(saga__job *j)
{
	saga *s = j->s;
	proto_defer *tok = j->tok;
	proto_msg rep;
	dtx_err rv = DTX_OK;

	proto_msg_init(&rep, PROTO_SAGA_REPLY);
	pthread_mutex_lock(&s->mu);
	j->r->owned = false;
	if (tok != NULL)
		rv = saga__reply_of(s, j->r, &rep);
	saga__job_drop(j);
	pthread_mutex_unlock(&s->mu);
	if (tok != NULL)
		proto_defer_reply(tok, rv, &rep);
	else
		proto_msg_free(&rep);
}

void
saga__job_answer(saga__job *j)
{
	saga *s = j->s;
	proto_msg rep;
	proto_msg_init(&rep, PROTO_SAGA_REPLY);
	pthread_mutex_lock(&s->mu);
	dtx_err rv = saga__reply_of(s, j->r, &rep);
	pthread_mutex_unlock(&s->mu);
	saga__count(s, SAGA_CTR_HANDED_OFF);
	proto_defer_reply(j->tok, rv, &rep);
	j->tok = NULL;
}

// The saga log failed: the saga cannot move on (its state must be logged
// first). It tries again from its state after a pause.
static void
log_failed(job *j, dtx_err rv)
{
	saga__set_log_error(j->s, j->r, rv);
	saga__park(j, 100, advance);
}

static void
forced(stor_force *f, dtx_err rv)
{
	job *j = (job *)((char *)f - offsetof(job, force));
	if (rv != DTX_OK) {
		log_failed(j, rv);
		return;
	}
	j->then(j);
}

// Queues the record at j->force.lsn for the forcer; then(j) follows.
static void
force_then(job *j, void (*then)(job *j))
{
	j->then = then;
	j->force.done = forced;
	stor_forcer_force(j->s->forcer, &j->force);
}

// The pause before j's step is called again: none after the first call
// (a lock held a moment ago is often free by now, and a whole BATCH of
// sagas waits for its slowest), then capped exponential backoff in the
// number of calls so far, with jitter.
static uint64_t
backoff_ms(job *j)
{
	const saga_cfg *cfg = j->s->cfg;
	if (j->attempt == 0)
		return 0;
	uint32_t a = j->attempt - 1;
	uint64_t d = (uint64_t)cfg->backoff_base_ms << (a < 20 ? a : 20);
	if (d > (uint64_t)cfg->backoff_max_ms)
		d = (uint64_t)cfg->backoff_max_ms;
	return d / 2 + dtx_rand_below(&j->seed, d / 2 + 1);
}

// An action's retry budget is spent (err: its last error): the saga turns
// to compensation.
static void
give_up(job *j, const char *err)
{
	saga *s = j->s;
	saga__rec *r = j->r;
	char text[PROTO_MAX_STR + 1];

	saga__count(s, SAGA_CTR_GAVE_UP);
	snprintf(
	    text, sizeof(text), "step %u: retries exhausted: %s", j->step, err);
	DTX_LOGF(DTX_LOG_WARN, "SAGA_GIVE_UP",
	    DTX_FIELDS(DTX_LF_GID(r->gid), DTX_LF_U("step", j->step)), "%s",
	    text);
	dtx_err rv = saga__log_comp(s, r, (int32_t)j->step, text);
	if (rv != DTX_OK)
		log_failed(j, rv);
	else
		advance(j);
}

// A call of j's step got no definite answer (err, kept as the saga's last
// error): it is sent again after a pause, an action only until its retry
// budget is spent.
static void
retry(job *j, const char *err)
{
	saga *s = j->s;
	saga__rec *r = j->r;

	saga__set_error(s, r, err);
	proto_daemon_trace_saga(s->d, PROTO_EV_RETRY, 0, r->gid, r->bid,
	    j->ph == PROTO_PHASE_ACTION ? "STEP_RETRY" : "COMP_RETRY", 0);
	uint64_t d = backoff_ms(j);
	j->attempt++;
	if (j->ph == PROTO_PHASE_ACTION) {
		uint64_t now = dtx_mono_ns();
		uint64_t end = r->action_since_ns +
		    (uint64_t)s->cfg->action_budget_ms * 1000000u;
		if (now >= end) {
			give_up(j, err);
			return;
		}
		uint64_t left = (end - now) / 1000000u;
		if (d > left)
			d = left + 1;
	}
	if (d == 0)
		send_step(j);
	else
		saga__park(j, d, send_step);
}

// Compensation j->step was answered res (why): done, or, when it failed
// (a compensation must not), tried again after the longest pause, the
// failure shown (SAGA_STATUS, HEALTH) until someone fixes it.
static void
compensation_answered(
    job *j, proto_step_result res, const char *why, clk_ts hlc)
{
	dtx_err rv;

	if (res != PROTO_STEP_OK) {
		saga__comp_failed(j->s, j->r, j->step, res, why);
		j->attempt = 0;
		saga__park(j, (uint64_t)j->s->cfg->backoff_max_ms, send_step);
		return;
	}
	if ((rv = saga__comp_done(j->s, j->r, j->step, hlc)) != DTX_OK) {
		log_failed(j, rv);
		return;
	}
	advance(j);
}

// Action j->step was answered res (why).
static void
action_answered(job *j, proto_step_result res, const char *why)
{
	saga *s = j->s;
	saga__rec *r = j->r;
	uint32_t i = j->step;
	dtx_err rv;

	// The participant applied (or refused) it; a crash here leaves the
	// step started but without an outcome.
	dtx_crashpoint("saga.after_step_applied");
	if (res == PROTO_STEP_OK &&
	    (i + 1 == r->n_steps || r->st[i + 1] == PROTO_SS_PENDING)) {
		// The outcome goes with what must be durable next anyway:
		// the next step's start (rule 12), or END.
		rv = saga__log_done_then(s, r, i, &j->force.lsn);
		if (rv != DTX_OK) {
			log_failed(j, rv);
		} else if (i + 1 == r->n_steps) {
			saga__job_end(j);
		} else {
			j->step = i + 1;
			j->attempt = 0;
			force_then(j, action_started);
		}
		return;
	}
	if ((rv = saga__action_outcome(s, r, i, res, why)) != DTX_OK) {
		log_failed(j, rv);
		return;
	}
	advance(j);
}

static void
step_done(void *arg, dtx_err err, proto_msg *rep)
{
	job *j = arg;
	proto_step_result res = PROTO_STEP_OK;
	char why[PROTO_MAX_STR + 1], text[sizeof(j->r->last_error)];
	clk_ts hlc;

	if (!saga__step_judge(j->r, j->step, j->ph, err, rep, &res, why,
	        sizeof(why), text, sizeof(text), &hlc))
		retry(j, text);
	else if (j->ph == PROTO_PHASE_COMPENSATE)
		compensation_answered(j, res, why, hlc);
	else
		action_answered(j, res, why);
}

// Sends j's step in its phase: through the participant's STEP batcher, or
// as a call of its own to a node without one.
static void
send_step(job *j)
{
	saga *s = j->s;
	saga__rec *r = j->r;
	uint32_t node = r->steps[j->step].participant;
	proto_batcher *b = node < DTX_TOPO_MAX ? s->steps[node] : NULL;
	uint32_t timeout = (uint32_t)s->cfg->step_timeout_ms;
	proto_retry once = { .attempts = 1 };
	proto_call_opts o = {
		.timeout_ms = timeout,
		.idempotent = true,
		.retry = &once,
	};
	dtx_err rv;

	if (j->ph == PROTO_PHASE_ACTION && r->action_since_ns == 0)
		r->action_since_ns = dtx_mono_ns();
	saga__step_req(r, j->step, j->ph, &j->req);
	saga__count(
	    s, j->attempt == 0 ? SAGA_CTR_STEP_CALLS : SAGA_CTR_STEP_RETRIES);
	if (b != NULL)
		rv =
		    proto_batcher_call_async(b, &j->req, timeout, step_done, j);
	else
		rv = proto_daemon_call_async(
		    s->d, node, &j->req, &o, step_done, j);
	if (rv != DTX_OK) {
		char err[96];
		snprintf(err, sizeof(err), "step %u on node %u: %s", j->step,
		    node, dtx_strerror(rv));
		retry(j, err);
	}
}

// An action's start is durable: a crash here leaves it started but not
// sent.
static void
action_started(job *j)
{
	proto_daemon_trace_saga(
	    j->s->d, PROTO_EV_FORCE, 0, j->r->gid, j->r->bid, "STEP_START", 0);
	dtx_crashpoint("saga.after_step_start_log");
	send_step(j);
}

// Starts step i in phase ph: logs its start (forced) unless it is
// started already (rule 12: recovery then knows which steps to
// compensate), then sends it.
static void
start_step(job *j, uint32_t i, proto_phase ph, bool started)
{
	j->step = i;
	j->ph = ph;
	j->attempt = 0;
	j->seed = dtx_mono_ns() ^ ((uint64_t)(uintptr_t)j->r << 7) ^ i;
	if (started) {
		send_step(j);
		return;
	}
	dtx_err rv = saga__log_step(
	    j->s, j->r, i, ph, false, PROTO_STEP_OK, NULL, true, &j->force.lsn);
	if (rv != DTX_OK)
		log_failed(j, rv);
	else
		force_then(
		    j, ph == PROTO_PHASE_ACTION ? action_started : send_step);
}

// Moves the saga on from its state: forward, the first action not done;
// compensating, the last started step not compensated yet (reverse
// order); then END.
static void
advance(job *j)
{
	saga *s = j->s;
	saga__rec *r = j->r;
	dtx_err rv;

	if (saga__stopping(s)) {
		saga__job_end(j); // unknown: it resumes from the log
		return;
	}
	if (r->state == PROTO_SAGA_RUNNING) {
		uint32_t i = 0;
		while (i < r->n_steps && r->st[i] == PROTO_SS_DONE)
			i++;
		if (i < r->n_steps) {
			start_step(j, i, PROTO_PHASE_ACTION,
			    r->st[i] != PROTO_SS_PENDING);
			return;
		}
		rv = saga__log_end(s, r, PROTO_SAGA_COMMITTED, NULL);
	} else if (r->state == PROTO_SAGA_COMPENSATING) {
		int64_t k = (int64_t)r->n_steps - 1;
		while (k >= 0 &&
		    (r->st[k] == PROTO_SS_PENDING ||
		        r->st[k] == PROTO_SS_COMPENSATED))
			k--;
		if (k >= 0) {
			start_step(j, (uint32_t)k, PROTO_PHASE_COMPENSATE,
			    r->st[k] == PROTO_SS_COMPENSATING);
			return;
		}
		rv = saga__log_end(s, r, PROTO_SAGA_ABORTED, NULL);
	} else {
		rv = DTX_OK;
	}
	if (rv != DTX_OK)
		log_failed(j, rv);
	else
		saga__job_end(j);
}

static void
begun(job *j)
{
	proto_daemon_trace_saga(
	    j->s->d, PROTO_EV_FORCE, 0, j->r->gid, j->r->bid, "SAGA_BEGIN", 0);
	dtx_crashpoint("saga.after_begin_log");
	advance(j);
}

void
saga__run(saga__job *j, saga__rec *r, proto_defer *tok, uint64_t begin_lsn)
{
	j->r = r;
	j->tok = tok;
	// The saga is durable before its first step runs (rule 12).
	j->force.lsn = begin_lsn;
	force_then(j, begun);
}

void
saga__resume(saga__job *j, saga__rec *r)
{
	j->r = r;
	proto_daemon_trace_saga(j->s->d, PROTO_EV_RECOVER, 0, r->gid, r->bid,
	    r->state == PROTO_SAGA_RUNNING ? "SAGA_RESUME" : "SAGA_RESUME_COMP",
	    0);
	advance(j);
}
