// SPDX-License-Identifier: MIT
//
// Submitted sagas run without holding a thread: each is a job that moves
// on from completions. A forced record goes to the forcer, whose thread
// sends the next STEP once the record is durable (many sagas' records
// share one fsync); a STEP's answer, on an nng thread, logs the outcome
// and starts what comes next; the last record answers the client. The
// records, their order and their forcing are exactly run.c's (rule 12).
// Anything off the straight path (a transient error that wants retries
// with backoff, a compensation that failed, a saga log error) hands the
// saga to a submitter thread, where saga__drive goes on from its state.

#include <stdio.h>
#include <string.h>

#include "saga_int.h"

typedef struct job job;
struct job {
	saga *s;
	saga__rec *r; // owned by the job (r->owned) until it ends
	proto_defer *tok; // the client's SAGA_SUBMIT
	stor_force force; // the record being forced
	void (*then)(job *j); // what follows once it is durable
	uint32_t step; // the step in flight, in phase ph
	proto_phase ph;
	proto_msg req; // its STEP (borrows r's gid and ops)
};

static void advance(job *j);
static void send_step(job *j);
static void action_started(job *j);

// Answers the client with r's state (unknown when unfinished) and frees j.
static void
finish(job *j)
{
	saga *s = j->s;
	proto_msg rep;
	proto_msg_init(&rep, PROTO_SAGA_REPLY);
	pthread_mutex_lock(&s->mu);
	j->r->owned = false;
	dtx_err rv = saga__reply_of(s, j->r, &rep);
	pthread_mutex_unlock(&s->mu);
	proto_defer_reply(j->tok, rv, &rep);
	dtx_free(j);
}

// Hands the saga to a submitter thread, which drives it on (blocking,
// with retries) until the client's deadline and answers.
static void
to_thread(saga *s, saga__rec *r, proto_defer *tok)
{
	saga__count(s, SAGA_CTR_TO_THREAD);
	pthread_mutex_lock(&s->mu);
	r->handoff = true;
	pthread_mutex_unlock(&s->mu);
	proto_pool_run(s->submitters, tok);
}

static void
hand_off(job *j)
{
	to_thread(j->s, j->r, j->tok);
	dtx_free(j);
}

static void
log_failed(job *j, dtx_err rv)
{
	saga__set_log_error(j->s, j->r, rv);
	hand_off(j);
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

static void
step_done(void *arg, dtx_err err, proto_msg *rep)
{
	job *j = arg;
	saga *s = j->s;
	saga__rec *r = j->r;
	uint32_t i = j->step;
	proto_step_result res = PROTO_STEP_OK;
	char why[PROTO_MAX_STR + 1], text[sizeof(r->last_error)];
	dtx_err rv;

	if (!saga__step_judge(r, i, j->ph, err, rep, &res, why, sizeof(why),
	        text, sizeof(text))) {
		saga__set_error(s, r, text);
		hand_off(j); // retried there, with backoff
		return;
	}
	if (j->ph == PROTO_PHASE_COMPENSATE) {
		if (res != PROTO_STEP_OK) {
			saga__comp_failed(s, r, i, res, why);
			hand_off(j);
			return;
		}
		if ((rv = saga__comp_done(s, r, i)) != DTX_OK) {
			log_failed(j, rv);
			return;
		}
		advance(j);
		return;
	}
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
			finish(j);
		} else {
			j->step = i + 1;
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

// Sends j's step in its phase.
static void
send_step(job *j)
{
	saga *s = j->s;
	saga__rec *r = j->r;
	uint32_t node = r->steps[j->step].participant;
	proto_batcher *b = node < DTX_TOPO_MAX ? s->steps[node] : NULL;
	if (b == NULL) {
		hand_off(j); // not a peer with a batcher: called there
		return;
	}
	if (j->ph == PROTO_PHASE_ACTION && r->action_since_ns == 0)
		r->action_since_ns = dtx_mono_ns();
	saga__step_req(r, j->step, j->ph, &j->req);
	saga__count(s, SAGA_CTR_STEP_CALLS);
	dtx_err rv = proto_batcher_call_async(
	    b, &j->req, (uint32_t)s->cfg->step_timeout_ms, step_done, j);
	if (rv != DTX_OK) {
		char err[96];
		snprintf(err, sizeof(err), "step %u on node %u: %s", j->step,
		    node, dtx_strerror(rv));
		saga__set_error(s, r, err);
		hand_off(j);
	}
}

// An action's start is durable: a crash here leaves it started but not
// sent.
static void
action_started(job *j)
{
	dtx_crashpoint("saga.after_step_start_log");
	send_step(j);
}

// Starts step i in phase ph: logs its start (forced) unless it is
// started already, then sends it.
static void
start_step(job *j, uint32_t i, proto_phase ph, bool started)
{
	j->step = i;
	j->ph = ph;
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

// Moves the saga on from its state, as saga__drive would.
static void
advance(job *j)
{
	saga *s = j->s;
	saga__rec *r = j->r;
	dtx_err rv;

	if (saga__stopping(s)) {
		finish(j); // unknown: it resumes from the log
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
		// The last started step not compensated yet.
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
		finish(j);
}

static void
begun(job *j)
{
	dtx_crashpoint("saga.after_begin_log");
	advance(j);
}

void
saga__run_async(saga *s, saga__rec *r, proto_defer *tok, uint64_t begin_lsn)
{
	job *j = dtx_calloc(1, sizeof(*j));
	if (j == NULL) {
		// Nothing was sent yet: a submitter drives it instead.
		to_thread(s, r, tok);
		return;
	}
	j->s = s;
	j->r = r;
	j->tok = tok;
	// The saga is durable before its first step runs (rule 12).
	j->force.lsn = begin_lsn;
	force_then(j, begun);
}
