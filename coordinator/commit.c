// SPDX-License-Identifier: MIT
//
// A decision's messages: the COMMIT phase with its acknowledgement
// tracking, which ends a transaction once every participant acked (DESIGN
// rule 3), and ABORT, which needs no acknowledgement (presumed abort,
// rule 2). The forced COMMIT record comes first (rule 1): every path to
// the commit phase goes through coord__commit_forced.

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coordinator_int.h"

dtx_err
coord__reason(proto_txn_reply *r, const char *fmt, ...)
{
	char buf[PROTO_MAX_STR + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return proto_str_set(&r->reason, buf);
}

void
coord__send_outcome(
    coord *c, uint64_t txid, uint32_t peer, proto_type type, clk_ts cts)
{
	coord_item *it = coord__item_new();
	if (it == NULL)
		return; // the participant finds the outcome itself
	proto_msg_init(&it->req, type);
	it->req.u.txid.txid = txid;
	if (type == PROTO_COMMIT)
		it->req.u.txid.commit_ts = cts;
	it->peer = peer;
	it->timeout_ms = (uint32_t)c->cfg.ack_timeout_ms;
	if (coord__send(c, it) != DTX_OK)
		coord__item_free(it);
}

void
coord__send_abort(coord *c, uint64_t txid, uint32_t peer)
{
	coord__send_outcome(c, txid, peer, PROTO_ABORT, 0);
}

void
coord__abort(coord *c, uint64_t txid, const uint32_t *parts, uint32_t nparts,
    const bool *skip, const char *reason, proto_txn_reply *rep)
{
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL)
		coord__tx_remove(c, t);
	(void)coord__log_abort(c, txid); // unforced: presumed abort
	pthread_mutex_unlock(&c->mu);
	proto_daemon_trace(c->d, PROTO_EV_DECIDE, txid, NULL, "ABORT", 0);
	for (uint32_t i = 0; i < nparts; i++)
		if (skip == NULL || !skip[i])
			coord__send_abort(c, txid, parts[i]);
	atomic_fetch_add(&c->n_aborted, 1);
	rep->outcome = PROTO_ABORTED;
	rep->txid = txid;
	(void)coord__reason(rep, "%s", reason);
}

// Completion of a COMMIT / DO_COMMIT: the ack logic (DESIGN rule 3).
static void
commit_done(coord *c, coord_item *it)
{
	bool ok = it->err == DTX_OK && it->rep.hdr.type == PROTO_ACK;
	if (!ok) {
		const char *why = it->err != DTX_OK ? dtx_strerror(it->err)
		    : it->rep.hdr.type == PROTO_ERROR && it->rep.u.error.reason
		    ? it->rep.u.error.reason
		    : proto_type_name(it->rep.hdr.type);
		proto_daemon_trace(
		    c->d, PROTO_EV_RETRY, it->txid, NULL, "COMMIT_RETRY", 0);
		DTX_LOGF(DTX_LOG_DEBUG, "COMMIT_UNACKED",
		    DTX_FIELDS(DTX_LF_TXID(it->txid), DTX_LF_PEER(it->peer),
		        DTX_LF_S("why", why)),
		    NULL);
	}
	uint64_t rng = it->txid ^ dtx_mono_ns();
	clk_ts cts = 0;
	uint32_t nparts = 0, parts[COORD_MAX_PARTS];
	proto_type types[COORD_MAX_PARTS];
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, it->txid);
	if (t != NULL && t->state == COORD_COMMITTED) {
		if (t->inflight > 0)
			t->inflight--;
		if (ok) {
			t->acked |= UINT32_C(1) << it->idx;
		} else {
			t->redrive = true;
			t->next_try_ns = dtx_mono_ns() +
			    coord__backoff_ns(c, t->attempts, &rng);
		}
		uint32_t all = t->nparts == 32 ? UINT32_MAX
		                               : (UINT32_C(1) << t->nparts) - 1;
		if (t->acked == all) {
			(void)coord__log_end(c, t->txid);
			coord__tx_end(c, t);
			proto_daemon_trace(
			    c->d, PROTO_EV_APPLY, it->txid, NULL, "END", 0);
		} else if (it->chain) {
			cts = t->cts;
			nparts = t->nparts;
			memcpy(parts, t->parts, nparts * sizeof(uint32_t));
			for (uint32_t i = 0; i < nparts; i++)
				types[i] = coord__3pc_commit_type(t, i);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (it->chain) {
		dtx_crashpoint("coord.after_some_commits");
		for (uint32_t i = 1; i < nparts; i++)
			coord__send_commit(
			    c, it->txid, cts, parts[i], i, types[i], false);
	}
	coord__item_free(it);
}

static void
send_commit(coord *c, uint64_t txid, clk_ts cts, uint32_t peer, uint32_t idx,
    proto_type type, bool chain, bool lazy)
{
	coord_item *it = coord__item_new();
	if (it == NULL) {
		// Leave it to the re-drive.
		pthread_mutex_lock(&c->mu);
		coord_tx *t = coord__tx_find(c, txid);
		if (t != NULL && t->state == COORD_COMMITTED) {
			t->redrive = true;
			t->next_try_ns = dtx_mono_ns();
		}
		pthread_mutex_unlock(&c->mu);
		return;
	}
	proto_msg_init(&it->req, type);
	it->req.u.txid.txid = txid;
	if (type == PROTO_COMMIT)
		it->req.u.txid.commit_ts = cts;
	it->peer = peer;
	it->idx = idx;
	it->txid = txid;
	it->chain = chain;
	it->lazy = lazy;
	it->timeout_ms = (uint32_t)c->cfg.ack_timeout_ms;
	it->done = commit_done;
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL)
		t->inflight++;
	pthread_mutex_unlock(&c->mu);
	dtx_err rv = coord__send(c, it);
	if (rv != DTX_OK) {
		it->err = rv;
		commit_done(c, it);
	}
}

void
coord__send_commit(coord *c, uint64_t txid, clk_ts cts, uint32_t peer,
    uint32_t idx, proto_type type, bool chain)
{
	send_commit(c, txid, cts, peer, idx, type, chain, false);
}

void
coord__commit_phase(coord *c, uint64_t txid)
{
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t == NULL || t->state != COORD_COMMITTED) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	clk_ts cts = t->cts;
	uint32_t nparts = t->nparts, parts[COORD_MAX_PARTS];
	proto_type types[COORD_MAX_PARTS];
	memcpy(parts, t->parts, nparts * sizeof(uint32_t));
	for (uint32_t i = 0; i < nparts; i++)
		types[i] = coord__3pc_commit_type(t, i);
	pthread_mutex_unlock(&c->mu);
	// The crash point coord.after_some_commits needs a moment when the
	// first participant has the COMMIT and the others do not: only then
	// the others wait for the first one's answer. Otherwise every COMMIT
	// is queued at once, so the participants' locks are held one round
	// trip less and the COMMITs share batches.
	if (proto_daemon_crash_armed(c->d)) {
		coord__send_commit(c, txid, cts, parts[0], 0, types[0], true);
		return;
	}
	// A DO_COMMIT is lazy (batch.c): the client has its answer already,
	// and the participant holds the outcome durably (PRECOMMITTED), so
	// it can wait for the next batch its participant gets anyway, up to
	// COORD_LINGER_MS, instead of taking a round trip and an fsync of its
	// own. A COMMIT goes at once: it is what a 2PC participant (or a 3PC
	// one that missed the PRE_COMMIT) waits for to leave doubt.
	for (uint32_t i = 0; i < nparts; i++)
		send_commit(c, txid, cts, parts[i], i, types[i], false,
		    types[i] == PROTO_DO_COMMIT);
}

// Marks txid COMMITTED (if still tracked), counts it, starts the COMMIT
// phase and fills r as committed at cts.
static dtx_err
committed(coord *c, uint64_t txid, clk_ts cts, proto_txn_reply *r)
{
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL)
		coord__tx_state(c, t, COORD_COMMITTED);
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_add(&c->n_committed, 1);
	proto_daemon_trace(c->d, PROTO_EV_DECIDE, txid, NULL, "COMMIT", cts);
	coord__commit_phase(c, txid);
	r->outcome = PROTO_COMMITTED;
	r->txid = txid;
	r->commit_ts = cts;
	return DTX_OK;
}

dtx_err
coord__commit_forced(
    coord *c, uint64_t txid, clk_ts cts, dtx_err rv, proto_txn_reply *r)
{
	if (rv != DTX_OK) {
		// The record may or may not be on disk: nobody can tell
		// until the log is read again. STATUS answers unknown.
		atomic_store(&c->failed, true);
		atomic_fetch_add(&c->n_unknown, 1);
		DTX_LOGF(DTX_LOG_ERROR, "LOG_FAILED",
		    DTX_FIELDS(
		        DTX_LF_TXID(txid), DTX_LF_S("why", dtx_strerror(rv))),
		    "forcing the commit failed");
		r->outcome = PROTO_UNKNOWN;
		r->txid = txid;
		return coord__reason(
		    r, "decision log failed: %s", dtx_strerror(rv));
	}
	proto_daemon_trace(
	    c->d, PROTO_EV_FORCE, txid, NULL, "COMMIT_LOGGED", cts);
	dtx_crashpoint("coord.after_commit_log");
	return committed(c, txid, cts, r);
}
