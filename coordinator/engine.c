// SPDX-License-Identifier: MIT
//
// The transaction engine, one for 2PC and 3PC: votes go out on the
// per-participant channels, the last vote's completion (on an nng thread)
// decides, a commit's record is forced by the forcer thread together with
// every other one waiting at that moment, and the reply goes out from
// there. No thread waits for a transaction. The rules live here and in
// commit.c: the commit timestamp is above every prepare timestamp and the
// coordinator's clock (DESIGN rule 5); the COMMIT record is forced before
// any COMMIT is sent (rule 1); a transaction a participant asked about
// while it was voting is aborted (presumed abort, rule 2).

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "coordinator_int.h"

static void vote_done(coord *c, coord_item *it);

// Phase one: sends PREPARE / CAN_COMMIT for r's transaction to every
// participant of its plan, one item each in r->items; each completes
// through vote_done, a send that fails at once too.
static void
send_votes(coord_run *r)
{
	coord *c = r->c;
	const coord_plan *p = &r->p;
	for (uint32_t i = 0; i < p->nparts; i++) {
		coord_item *it = &r->items[i];
		proto_msg_init(&it->req,
		    r->mode == PROTO_MODE_3PC ? PROTO_CAN_COMMIT
		                              : PROTO_PREPARE);
		proto_prepare *pr = &it->req.u.prepare;
		pr->txid = r->txid;
		pr->mode = r->mode;
		pr->coord = c->self;
		pr->n_peers = p->nparts;
		pr->peers = (uint32_t *)p->parts;
		pr->n_ops = p->count[i];
		pr->ops = &p->ops[p->first[i]];
		it->peer = p->parts[i];
		it->timeout_ms = (uint32_t)c->cfg.vote_timeout_ms;
		it->done = vote_done;
		it->arg = r;
		dtx_err rv = coord__send(c, it);
		if (rv != DTX_OK) {
			it->err = rv;
			vote_done(c, it);
		}
	}
}

// Why a vote that is not a YES is not one.
static void
vote_reason(const coord *c, const coord_item *it, char *reason, size_t rlen)
{
	const proto_msg *r = &it->rep;
	if (it->err == DTX_ETIMEDOUT) {
		snprintf(reason, rlen, "participant %u did not vote in %lld ms",
		    it->peer, (long long)c->cfg.vote_timeout_ms);
	} else if (it->err != DTX_OK) {
		snprintf(reason, rlen, "participant %u did not vote: %s",
		    it->peer, dtx_strerror(it->err));
	} else if (r->hdr.type == PROTO_ERROR) {
		snprintf(reason, rlen, "participant %u refused: %s", it->peer,
		    r->u.error.reason ? r->u.error.reason
		                      : dtx_strerror(r->u.error.code));
	} else {
		snprintf(reason, rlen,
		    "participant %u answered %s to a vote request", it->peer,
		    proto_type_name(r->hdr.type));
	}
}

const proto_vote *
coord__vote_of(const coord_run *r, uint32_t i)
{
	const coord_item *it = &r->items[i];
	const proto_msg *m = &it->rep;
	if (it->err != DTX_OK || m->hdr.type != PROTO_VOTE ||
	    m->u.vote.txid != r->txid)
		return NULL;
	return &m->u.vote;
}

void
coord__no_reason(const proto_vote *v, char *why, size_t n)
{
	snprintf(why, n, "%s",
	    v->reason != NULL ? v->reason : "participant voted no");
}

// Reads r's votes. On a commit vote *pts gets the largest prepare
// timestamp; on abort reason gets why and nack[i] says parts[i] voted NO.
static bool
tally_votes(
    const coord_run *r, clk_ts *pts, char *reason, size_t rlen, bool *nack)
{
	bool yes = true, have_no = false;
	clk_ts maxpts = 0;
	for (uint32_t i = 0; i < r->p.nparts; i++) {
		const proto_vote *v = coord__vote_of(r, i);
		nack[i] = false;
		if (v != NULL && v->yes) {
			if (v->prepare_ts > maxpts)
				maxpts = v->prepare_ts;
			continue;
		}
		bool first = yes;
		yes = false;
		if (v != NULL) {
			nack[i] = true;
			if (!have_no)
				coord__no_reason(v, reason, rlen);
			have_no = true;
		} else if (first && !have_no) {
			vote_reason(r->c, &r->items[i], reason, rlen);
		}
	}
	*pts = maxpts;
	return yes;
}

// Rule 5: the commit timestamp is above every prepare timestamp and the
// coordinator's own clock.
static dtx_err
commit_ts(coord *c, clk_ts pts, clk_ts *out)
{
	clk_ts now;
	dtx_err rv = clk_node_local(proto_daemon_clock(c->d), &now);
	if (rv != DTX_OK)
		return rv;
	*out = now > pts ? now : pts;
	return DTX_OK;
}

coord_tx *
coord__run_tx_locked(coord_run *r)
{
	coord *c = r->c;
	coord_tx *t = coord__tx_find(c, r->txid);
	if (t != NULL && !t->doomed)
		return t;
	pthread_mutex_unlock(&c->mu);
	coord__abort(c, r->txid, r->p.parts, r->p.nparts, NULL,
	    "a participant asked for the outcome before the decision",
	    &r->rep.u.txn_reply);
	return NULL;
}

// Appends the COMMIT record of r's transaction (2PC), unforced: its LSN
// goes to r->force.lsn. false when the transaction was aborted instead
// (the reply says why).
static bool
commit_log(coord_run *r)
{
	coord *c = r->c;
	proto_txn_reply *rep = &r->rep.u.txn_reply;
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__run_tx_locked(r);
	if (t == NULL)
		return false;
	dtx_crashpoint("coord.before_commit_log");
	t->cts = r->cts;
	dtx_err rv = coord__log_decision(c, t, false, &r->force.lsn);
	if (rv == DTX_OK)
		coord__tx_state(c, t, COORD_DECIDING);
	pthread_mutex_unlock(&c->mu);
	if (rv != DTX_OK) {
		char why[PROTO_MAX_STR];
		snprintf(why, sizeof(why),
		    "decision log refused the commit: %s", dtx_strerror(rv));
		coord__abort(
		    c, r->txid, r->p.parts, r->p.nparts, NULL, why, rep);
		return false;
	}
	return true;
}

coord_run *
coord__run_of(stor_force *f)
{
	return (coord_run *)((char *)f - offsetof(coord_run, force));
}

void
coord__run_force(coord_run *r, void (*done)(stor_force *, dtx_err))
{
	r->force.done = done;
	stor_forcer_force(r->c->forcer, &r->force);
}

void
coord__run_committed(coord_run *r, dtx_err rv)
{
	(void)coord__commit_forced(
	    r->c, r->txid, r->cts, rv, &r->rep.u.txn_reply);
	coord__run_done(r);
}

void
coord__run_commit_forced(stor_force *f, dtx_err rv)
{
	coord__run_committed(coord__run_of(f), rv);
}

// Every vote is in: abort, or commit at a timestamp above them all.
static void
decide(coord_run *r)
{
	coord *c = r->c;
	proto_txn_reply *rep = &r->rep.u.txn_reply;
	char reason[PROTO_MAX_STR];
	bool nack[COORD_MAX_PARTS];
	clk_ts pts = 0;
	dtx_err rv;
	if (r->mode == PROTO_MODE_PC) {
		coord__pc_decide(r);
		return;
	}
	if (!tally_votes(r, &pts, reason, sizeof(reason), nack)) {
		coord__abort(
		    c, r->txid, r->p.parts, r->p.nparts, nack, reason, rep);
	} else if ((rv = commit_ts(c, pts, &r->cts)) != DTX_OK) {
		snprintf(reason, sizeof(reason), "coordinator clock: %s",
		    dtx_strerror(rv));
		coord__abort(
		    c, r->txid, r->p.parts, r->p.nparts, NULL, reason, rep);
	} else if (r->mode == PROTO_MODE_3PC) {
		coord__3pc_precommit(r);
		return;
	} else if (commit_log(r)) {
		coord__run_force(r, coord__run_commit_forced);
		return;
	}
	coord__run_done(r);
}

static void
vote_done(coord *c, coord_item *it)
{
	(void)c;
	coord_run *r = it->arg;
	if (atomic_fetch_sub(&r->pending, 1) == 1)
		decide(r);
}

void
coord__run_start(coord_run *r)
{
	atomic_store(&r->pending, r->p.nparts + 1);
	send_votes(r);
	if (atomic_fetch_sub(&r->pending, 1) == 1)
		decide(r);
}
