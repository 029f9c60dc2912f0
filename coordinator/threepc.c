// SPDX-License-Identifier: MIT
//
// 3PC (DESIGN rule 11) on the engine: after every CAN_COMMIT vote was YES
// the coordinator force-logs PRECOMMIT, sends PRE_COMMIT to every
// participant and collects the acknowledgements (one that does not
// answer within its ack timeout is presumed crashed, as 3PC assumes
// crash-stop failures with bounded delays), then force-logs COMMIT and
// goes on as 2PC, with DO_COMMIT for those that acknowledged. Each step
// is started by the completion that ends the one before: no thread waits.
// Participants that lose the coordinator run the termination protocol
// among themselves. Under a network partition that assumption is false:
// the coordinator's side may commit while a cut-off side that never
// pre-committed aborts.

#include <stdio.h>
#include <string.h>

#include "coordinator_int.h"

proto_type
coord__3pc_commit_type(const coord_tx *t, uint32_t idx)
{
	// DO_COMMIT carries no timestamp: only a participant that holds the
	// PRE_COMMIT's can take it; the others get a full COMMIT.
	if (t->mode == PROTO_MODE_3PC && (t->pre_acked >> idx) & 1u)
		return PROTO_DO_COMMIT;
	return PROTO_COMMIT;
}

// Every PRE_COMMIT was acknowledged or presumed lost: the COMMIT record
// (with the acknowledged set) is written, then the commit phase as 2PC.
//
// The record is forced only when no participant acknowledged. An ACK
// means that participant's PRECOMMITTED record is durable, and from then
// on commit is the only outcome any recovery can reach: the termination
// protocol commits when any participant is PRECOMMITTED, and a restarted
// coordinator that finds PRECOMMIT without a decision asks the
// participants and commits for the same reason (recover.c). The forced
// PRECOMMIT record plus one durable participant vote thus already make
// the decision durable, and the client is answered one fsync earlier;
// later forces (or the next checkpoint) make the COMMIT record durable.
// With no ACK nobody holds the decision but this log, so it is forced
// before anyone hears it, as 2PC does (rule 1).
//
// The client is answered here, once the whole round is in, and never at
// the first ACK, although that one ACK already rules out an abort by
// this coordinator's recovery. The termination protocol runs among the
// participants that are reachable: with the coordinator gone, the one
// that acknowledged unreachable too, and the others merely PREPARED
// (their PRE_COMMIT still on the wire), it finds all of them uncertain
// and aborts a transaction the client was told had committed. Once every
// PRE_COMMIT is acknowledged or its participant presumed crashed (3PC's
// crash-stop model: it does not come back to vote), every participant
// the protocol can reach holds PRECOMMITTED durably, so it commits. The
// DO_COMMITs that follow change none of this: they are lazy (commit.c).
static void
precommits_done(coord_run *r)
{
	coord *c = r->c;
	uint32_t acked = atomic_load(&r->pre_acked);
	for (uint32_t i = 0; i < r->p.nparts; i++)
		if (!((acked >> i) & 1u))
			DTX_LOGF(DTX_LOG_WARN, "PRECOMMIT_TIMEOUT",
			    DTX_FIELDS(DTX_LF_TXID(r->txid),
			        DTX_LF_PEER(r->p.parts[i]),
			        DTX_LF_I("timeout_ms", c->cfg.ack_timeout_ms)),
			    "no ack of PRE_COMMIT in time: presumed crashed");
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, r->txid);
	dtx_err rv = DTX_ENOENT;
	if (t != NULL) {
		t->pre_acked = acked;
		rv = coord__log_decision(c, t, false, &r->force.lsn);
	}
	pthread_mutex_unlock(&c->mu);
	// On failure participants may already hold PRE_COMMIT and will
	// commit by the termination protocol; the client cannot be told.
	if (rv != DTX_OK || acked != 0) {
		coord__run_committed(r, rv);
		return;
	}
	coord__run_force(r, coord__run_commit_forced);
}

static void send_precommits(coord_run *r, uint32_t from, uint32_t to);

// The last PRE_COMMIT of a round completed. A chained first round (to
// parts[0] alone) is followed by the crash point
// coord.after_some_precommits and the round to the others.
static void
round_done(coord_run *r)
{
	if (r->pre_chain) {
		r->pre_chain = false;
		dtx_crashpoint("coord.after_some_precommits");
		send_precommits(r, 1, r->p.nparts);
		return;
	}
	precommits_done(r);
}

static void
precommit_done(coord *c, coord_item *it)
{
	coord_run *r = it->arg;
	(void)c;
	if (it->err == DTX_OK && it->rep.hdr.type == PROTO_ACK)
		atomic_fetch_or(&r->pre_acked, UINT32_C(1) << it->idx);
	else
		DTX_LOGF(DTX_LOG_WARN, "PRECOMMIT_LOST",
		    DTX_FIELDS(DTX_LF_TXID(r->txid), DTX_LF_PEER(it->peer),
		        DTX_LF_S("why",
		            it->err != DTX_OK
		                ? dtx_strerror(it->err)
		                : proto_type_name(it->rep.hdr.type))),
		    "no ack of PRE_COMMIT");
	if (atomic_fetch_sub(&r->pending, 1) == 1)
		round_done(r);
}

// Sends PRE_COMMIT to parts[from .. to), reusing the votes' items; the
// last completion (or this thread, when they all completed first) goes
// on in round_done.
static void
send_precommits(coord_run *r, uint32_t from, uint32_t to)
{
	coord *c = r->c;
	atomic_store(&r->pending, (to > from ? to - from : 0) + 1);
	for (uint32_t i = from; i < to; i++) {
		coord_item *it = &r->items[i];
		proto_msg_free(&it->rep);
		memset(it, 0, sizeof(*it));
		proto_msg_init(&it->req, PROTO_PRE_COMMIT);
		it->req.u.txid.txid = r->txid;
		it->req.u.txid.commit_ts = r->cts;
		it->peer = r->p.parts[i];
		it->idx = i;
		it->txid = r->txid;
		it->timeout_ms = (uint32_t)c->cfg.ack_timeout_ms;
		it->done = precommit_done;
		it->arg = r;
		dtx_err rv = coord__send(c, it);
		if (rv != DTX_OK) {
			it->err = rv;
			precommit_done(c, it);
		}
	}
	if (atomic_fetch_sub(&r->pending, 1) == 1)
		round_done(r);
}

// The forcer made the PRECOMMIT record durable (or failed to).
static void
precommit_forced(stor_force *f, dtx_err rv)
{
	coord_run *r = coord__run_of(f);
	coord *c = r->c;
	if (rv != DTX_OK) {
		// No participant heard PRE_COMMIT, so abort is safe: a
		// restart that finds the record asks them and aborts too.
		char why[PROTO_MAX_STR];
		atomic_store(&c->failed, true);
		snprintf(why, sizeof(why),
		    "decision log refused the precommit: %s", dtx_strerror(rv));
		coord__abort(c, r->txid, r->p.parts, r->p.nparts, NULL, why,
		    &r->rep.u.txn_reply);
		coord__run_done(r);
		return;
	}
	proto_daemon_trace(
	    c->d, PROTO_EV_FORCE, r->txid, NULL, "PRECOMMIT_LOGGED", 0);
	dtx_crashpoint("coord.after_precommit_log");
	// The crash point coord.after_some_precommits needs a moment when
	// the first participant has the PRE_COMMIT and the others do not:
	// only then the others wait for the first one's answer. Otherwise
	// all go out at once and share batches.
	r->pre_chain = proto_daemon_crash_armed(c->d);
	send_precommits(r, 0, r->pre_chain ? 1 : r->p.nparts);
}

void
coord__3pc_precommit(coord_run *r)
{
	coord *c = r->c;
	proto_txn_reply *rep = &r->rep.u.txn_reply;
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__run_tx_locked(r);
	if (t == NULL) {
		coord__run_done(r);
		return;
	}
	t->cts = r->cts;
	dtx_err rv = coord__log_decision(c, t, true, &r->force.lsn);
	if (rv == DTX_OK)
		coord__tx_state(c, t, COORD_PRECOMMITTED);
	pthread_mutex_unlock(&c->mu);
	if (rv != DTX_OK) {
		char why[PROTO_MAX_STR];
		snprintf(why, sizeof(why),
		    "decision log refused the precommit: %s", dtx_strerror(rv));
		coord__abort(
		    c, r->txid, r->p.parts, r->p.nparts, NULL, why, rep);
		coord__run_done(r);
		return;
	}
	coord__run_force(r, precommit_forced);
}
