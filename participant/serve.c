// SPDX-License-Identifier: MIT
//
// Request dispatch. A BATCH (from the coordinator, or the saga
// orchestrator's STEPs) is served whole so that its PREPAREs, COMMITs and
// STEPs share one fsync: every element's in-memory part
// runs first, then one stor_kv_sync up to the highest LSN, then every
// reply is built (rule 4 on the participant's side). A single message goes
// the same way with a batch of one.

#include "participant_int.h"

// Runs the first stage of one request. Errors are returned for the caller
// to turn into an ERROR reply.
static dtx_err
start_one(part *p, const proto_msg *req, proto_msg *rep, part__pending *pend,
    part__wait *w)
{
	dtx_err rv;
	if (!part__guard(p, req, rep, &rv))
		return rv;
	if ((req->hdr.type == PROTO_COMMIT ||
	        req->hdr.type == PROTO_DO_COMMIT ||
	        req->hdr.type == PROTO_ABORT) &&
	    part__heur_decision(p, req, rep, &rv))
		return rv;
	switch (req->hdr.type) {
	case PROTO_PREPARE:
	case PROTO_CAN_COMMIT:
		return part__prepare_start(p, req, rep, pend, w);
	case PROTO_COMMIT:
	case PROTO_DO_COMMIT:
		return part__commit_start(p, req, rep, pend);
	case PROTO_ABORT:
		return part__abort(p, req, rep);
	case PROTO_PRE_COMMIT:
		return part__precommit_start(p, req, rep, pend);
	case PROTO_STATUS:
		return part__status(p, req, rep);
	case PROTO_READ:
		return part__read(p, req, rep);
	case PROTO_STEP:
		return part_saga_step(p, req, rep, pend);
	case PROTO_SAGA_FORGET:
		return part_saga_forget(p, req, rep, pend);
	case PROTO_PING:
		rep->hdr.type = PROTO_PONG;
		return DTX_OK;
	case PROTO_TXN_LIST:
		return part__txn_list(p, req, rep);
	case PROTO_TXN_RESOLVE:
		return part__txn_resolve(p, req, rep);
	default:
		return proto_msg_set_error(rep, DTX_EINVAL,
		    "a participant does not serve %s%s",
		    proto_type_name(req->hdr.type),
		    req->hdr.type == PROTO_HEALTH ||
		            req->hdr.type == PROTO_FAULT
		        ? " inside a batch"
		        : " messages");
	}
}

static dtx_err
finish_one(part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep)
{
	switch (pend->kind) {
	case PART__PEND_VOTE:
		return part__prepare_finish(p, pend, sync_err, rep);
	case PART__PEND_COMMIT:
		return part__commit_finish(p, pend, sync_err, rep);
	case PART__PEND_STEP:
		return part_saga_step_finish(p, sync_err, rep);
	case PART__PEND_PRECOMMIT:
		return part__precommit_finish(p, pend, sync_err, rep);
	default:
		return DTX_OK;
	}
}

// Turns a failed stage into an ERROR reply; DTX_ENOMEM when even that
// cannot be built.
static dtx_err
as_error(const proto_msg *req, proto_msg *rep, dtx_err err)
{
	if (err == DTX_OK)
		return DTX_OK;
	return proto_msg_set_error(rep, err, "%s failed: %s",
	    proto_type_name(req->hdr.type), dtx_strerror(err));
}

// COMMIT, DO_COMMIT and ABORT: they release locks.
static bool
is_outcome(const proto_msg *m)
{
	return m->hdr.type == PROTO_COMMIT || m->hdr.type == PROTO_DO_COMMIT ||
	    m->hdr.type == PROTO_ABORT;
}

dtx_err
part__start_one(part *p, const proto_msg *req, proto_msg *rep,
    part__pending *pend, part__wait *w)
{
	return as_error(req, rep, start_one(p, req, rep, pend, w));
}

dtx_err
part__finish_one(part *p, const proto_msg *req, const part__pending *pend,
    dtx_err sync_err, proto_msg *rep)
{
	return as_error(req, rep, finish_one(p, pend, sync_err, rep));
}

// A fresh request may wait for a lock (lockwait.c) when waiting is on.
static part__wait
fresh_wait(const part *p)
{
	return (part__wait) { .allow = p->cfg->lock_wait_ms > 0,
		.seq = UINT64_MAX };
}

static bool
is_vote(const proto_msg *m)
{
	return m->hdr.type == PROTO_PREPARE ||
	    m->hdr.type == PROTO_CAN_COMMIT || m->hdr.type == PROTO_PRE_COMMIT;
}

static dtx_err
serve_batch(part *p, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	const proto_batch *b = &req->u.batch;
	part__pending *pend = dtx_calloc(b->n, sizeof(*pend));
	dtx_err rv = DTX_ENOMEM;
	uint32_t nwait = 0, nvotes = 0;
	// A held reply holds every vote of its batch, and the coordinator
	// sends the next votes for this participant only once it is back:
	// a PREPARE waits only when it is the batch's one vote. Otherwise
	// the waits of two participants' batches could each hold the vote
	// the other's holder needs (a cycle through the channels, broken
	// only by the deadline), and every vote behind them would wait.
	for (uint32_t i = 0; i < b->n; i++)
		nvotes += is_vote(&b->msgs[i]);

	rep->hdr.type = PROTO_BATCH;
	rep->u.batch.msgs = dtx_calloc(b->n, sizeof(proto_msg));
	if (pend == NULL || rep->u.batch.msgs == NULL)
		goto done;
	rep->u.batch.n = b->n;
	uint64_t max_lsn = 0;
	// Outcomes first, then everything else: a PREPARE in the same batch
	// as the COMMIT or ABORT of the transaction holding its key then
	// finds the key free instead of voting NO (or waits for its commit
	// to be durable). The coordinator sends an outcome only after the
	// votes of its transaction, so no element's answer depends on an
	// element of the same batch behind it.
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < b->n; i++) {
			if (is_outcome(&b->msgs[i]) != (pass == 0))
				continue;
			proto_msg *r = &rep->u.batch.msgs[i];
			proto_msg_init(r, PROTO_NONE);
			r->hdr.id = b->msgs[i].hdr.id;
			part__wait w = fresh_wait(p);
			w.allow = w.allow && nvotes == 1;
			rv = part__start_one(p, &b->msgs[i], r, &pend[i], &w);
			if (rv != DTX_OK)
				goto done;
			nwait += pend[i].kind == PART__PEND_WAIT;
			if (pend[i].kind != PART__PEND_NONE &&
			    pend[i].lsn > max_lsn)
				max_lsn = pend[i].lsn;
		}
	}
	// One fsync for the whole batch; if it fails, every element that
	// waited for it fails (rule 18).
	dtx_err sync_err = stor_kv_sync(p->kv, max_lsn);
	for (uint32_t i = 0; i < b->n; i++) {
		proto_msg *r = &rep->u.batch.msgs[i];
		if (pend[i].kind == PART__PEND_WAIT)
			continue;
		rv = part__finish_one(p, &b->msgs[i], &pend[i], sync_err, r);
		if (rv != DTX_OK)
			goto done;
		part__stamp(p, r);
	}
	rv = nwait > 0 ? part__lw_hold(p, call, req, rep, pend) : DTX_OK;
done:
	dtx_free(pend);
	return rv;
}

void
part__stamp(part *p, proto_msg *r)
{
	r->hdr.version = PROTO_VERSION;
	r->hdr.from = p->self;
	// The server stamps only the outer reply; each element carries its
	// own send event.
	clk_node_send(p->clock, &r->hdr.hlc, &r->hdr.vc);
}

dtx_err
part__handle(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	part *p = arg;
	part__pending pend = { 0 };

	if (req->hdr.type == PROTO_BATCH)
		return serve_batch(p, req, rep, call);
	part__wait w = fresh_wait(p);
	dtx_err rv = part__start_one(p, req, rep, &pend, &w);
	if (rv != DTX_OK || pend.kind == PART__PEND_NONE)
		return rv;
	if (pend.kind == PART__PEND_WAIT)
		return part__lw_hold(p, call, req, rep, &pend);
	dtx_err sync_err = stor_kv_sync(p->kv, pend.lsn);
	return part__finish_one(p, req, &pend, sync_err, rep);
}
