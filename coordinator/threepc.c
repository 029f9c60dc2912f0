// SPDX-License-Identifier: MIT
//
// 3PC (DESIGN rule 11): after every CAN_COMMIT vote was YES the
// coordinator force-logs PRECOMMIT, sends PRE_COMMIT to every participant
// and waits for the acknowledgements (one that does not answer in time is
// presumed crashed, as 3PC assumes crash-stop failures with bounded
// delays), then force-logs COMMIT and sends DO_COMMIT. Participants that
// lose the coordinator run the termination protocol among themselves.
// Under a network partition that assumption is false: the coordinator's
// side may commit while a cut-off side that never pre-committed aborts.

#include <stdio.h>
#include <string.h>
#include <time.h>

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

// One PRE_COMMIT round. The coordinator waits for the acknowledgements
// only until its deadline (a participant that has not answered by then is
// presumed crashed), so the round is shared with the items still in
// flight and freed by whichever side lets go last.
typedef struct pc_round {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t pending; // items not completed
	uint32_t refs; // items in flight + the waiting handler
	uint32_t acked; // bit i: parts[i] acknowledged
} pc_round;

static void
round_unref(pc_round *r)
{
	pthread_mutex_lock(&r->mu);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (last) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		dtx_free(r);
	}
}

static void
precommit_done(coord *c, coord_item *it)
{
	pc_round *r = it->arg;
	bool ok = it->err == DTX_OK && it->rep.hdr.type == PROTO_ACK;
	(void)c;
	if (!ok)
		DTX_LOG(DTX_LOG_WARN, "PRECOMMIT_LOST",
		    "txn %llu: participant %u did not ack PRE_COMMIT (%s)",
		    (unsigned long long)it->txid, it->peer,
		    it->err != DTX_OK ? dtx_strerror(it->err)
		                      : proto_type_name(it->rep.hdr.type));
	pthread_mutex_lock(&r->mu);
	if (ok)
		r->acked |= UINT32_C(1) << it->idx;
	r->pending--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	round_unref(r);
	coord__item_free(it);
}

// Sends PRE_COMMIT to parts[from .. to) and waits for the acks until
// ack_timeout_ms has passed; sets the acknowledged ones' bits in *acked.
static void
precommit_range(coord *c, uint64_t txid, clk_ts cts, const uint32_t *parts,
    uint32_t from, uint32_t to, uint32_t *acked)
{
	if (from >= to)
		return;
	pc_round *r = dtx_calloc(1, sizeof(*r));
	if (r == NULL)
		return; // presumed crashed, all of them: COMMIT reaches them
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->refs = 1;
	for (uint32_t i = from; i < to; i++) {
		coord_item *it = coord__item_new();
		if (it == NULL)
			continue;
		proto_msg_init(&it->req, PROTO_PRE_COMMIT);
		it->req.u.txid.txid = txid;
		it->req.u.txid.commit_ts = cts;
		it->peer = parts[i];
		it->idx = i;
		it->txid = txid;
		it->timeout_ms = (uint32_t)c->cfg.ack_timeout_ms;
		it->done = precommit_done;
		it->arg = r;
		pthread_mutex_lock(&r->mu);
		r->pending++;
		r->refs++;
		pthread_mutex_unlock(&r->mu);
		if (coord__send(c, it) != DTX_OK) {
			it->err = DTX_ECLOSED;
			precommit_done(c, it);
		}
	}
	struct timespec dl = dtx_time_after(
	    CLOCK_REALTIME, (uint64_t)c->cfg.ack_timeout_ms * 1000000u);
	pthread_mutex_lock(&r->mu);
	while (r->pending > 0)
		if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) != 0)
			break;
	uint32_t got = r->acked;
	pthread_mutex_unlock(&r->mu);
	round_unref(r);
	for (uint32_t i = from; i < to; i++)
		if (!((got >> i) & 1u))
			DTX_LOG(DTX_LOG_WARN, "PRECOMMIT_TIMEOUT",
			    "txn %llu: participant %u did not ack PRE_COMMIT "
			    "in "
			    "%lld ms: presumed crashed",
			    (unsigned long long)txid, parts[i],
			    (long long)c->cfg.ack_timeout_ms);
	*acked |= got;
}

dtx_err
coord__3pc_finish(coord *c, uint64_t txid, clk_ts cts, const uint32_t *parts,
    uint32_t nparts, proto_txn_reply *r)
{
	uint64_t lsn = 0;
	char why[PROTO_MAX_STR];

	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t == NULL || t->doomed) {
		pthread_mutex_unlock(&c->mu);
		coord__abort(c, txid, parts, nparts, NULL,
		    "a participant asked for the outcome before the decision",
		    r);
		return DTX_OK;
	}
	t->cts = cts;
	dtx_err rv = coord__log_decision(c, t, true, &lsn);
	if (rv == DTX_OK)
		coord__tx_state(c, t, COORD_PRECOMMITTED);
	pthread_mutex_unlock(&c->mu);
	if (rv == DTX_OK)
		rv = stor_wal_sync(c->wal, lsn);
	if (rv != DTX_OK) {
		// No participant heard PRE_COMMIT, so abort is safe: a
		// restart that finds the record asks them and aborts too.
		if (lsn != 0)
			atomic_store(&c->failed, true);
		snprintf(why, sizeof(why),
		    "decision log refused the precommit: %s", dtx_strerror(rv));
		coord__abort(c, txid, parts, nparts, NULL, why, r);
		return DTX_OK;
	}
	dtx_crashpoint("coord.after_precommit_log");

	uint32_t acked = 0;
	precommit_range(c, txid, cts, parts, 0, 1, &acked);
	dtx_crashpoint("coord.after_some_precommits");
	precommit_range(c, txid, cts, parts, 1, nparts, &acked);

	pthread_mutex_lock(&c->mu);
	t = coord__tx_find(c, txid);
	rv = DTX_ENOENT;
	if (t != NULL) {
		t->pre_acked = acked;
		rv = coord__log_decision(c, t, false, &lsn);
	}
	pthread_mutex_unlock(&c->mu);
	if (rv == DTX_OK)
		rv = stor_wal_sync(c->wal, lsn);
	// On failure participants may already hold PRE_COMMIT and will
	// commit by the termination protocol; the client cannot be told.
	return coord__commit_forced(c, txid, cts, rv, r);
}
