// SPDX-License-Identifier: MIT
//
// Re-drive (DESIGN rule 3): the upkeep thread resends COMMIT to every
// participant that has not acknowledged a logged commit, with capped
// exponential backoff and jitter, until all have (then the ack logic
// writes END). After a restart that covers every COMMIT found in the log
// without an END. It also settles 3PC transactions whose PRECOMMIT was
// logged but whose decision was not (by asking the participants, with the
// termination protocol's rule), and checkpoints the decision log
// periodically so that a restart reads only what is still pending.

#include <string.h>

#include "coordinator_int.h"

#define TICK_MS 20
#define BACKOFF_BASE_MS 50

uint64_t
coord__backoff_ns(coord *c, uint32_t n, uint64_t *rng)
{
	uint64_t d = BACKOFF_BASE_MS;
	for (uint32_t i = 0; i < n && d < (uint64_t)c->cfg.redrive_cap_ms; i++)
		d *= 2;
	if (d > (uint64_t)c->cfg.redrive_cap_ms)
		d = (uint64_t)c->cfg.redrive_cap_ms;
	uint64_t half = d / 2;
	return (half + dtx_rand_below(rng, half + 1)) * 1000000u;
}

void
coord__upkeep_kick(coord *c)
{
	pthread_mutex_lock(&c->up_mu);
	pthread_cond_signal(&c->up_cv);
	pthread_mutex_unlock(&c->up_mu);
}

typedef struct resend {
	uint64_t txid;
	clk_ts cts;
	uint32_t peer, idx;
	int ev; // -1, or the trace event of this transaction's re-drive
} resend;

// Resends the COMMITs that are due. Returns how many went out.
static size_t
redrive_due(coord *c)
{
	size_t n = 0, cap = 0;
	resend *rs = NULL;
	uint64_t now = dtx_mono_ns();
	pthread_mutex_lock(&c->mu);
	for (coord_tx *t = c->pending.pnext; t != &c->pending; t = t->pnext)
		if (t->state == COORD_COMMITTED && t->redrive &&
		    t->inflight == 0 && t->next_try_ns <= now)
			cap += t->nparts;
	if (cap > 0)
		rs = dtx_calloc(cap, sizeof(resend));
	for (coord_tx *t = c->pending.pnext; rs != NULL && t != &c->pending;
	     t = t->pnext) {
		if (t->state != COORD_COMMITTED || !t->redrive ||
		    t->inflight != 0 || t->next_try_ns > now)
			continue;
		t->redrive = false;
		t->attempts++;
		atomic_fetch_add(&c->n_redriven, 1);
		// The first re-drive of a decision found in the log at open
		// is its recovery; any later one a retry.
		int ev = t->recovered && t->attempts == 1 ? PROTO_EV_RECOVER
		                                          : PROTO_EV_RETRY;
		for (uint32_t i = 0; i < t->nparts && n < cap; i++) {
			if ((t->acked >> i) & 1u)
				continue;
			rs[n].txid = t->txid;
			rs[n].cts = t->cts;
			rs[n].peer = t->parts[i];
			rs[n].idx = i;
			rs[n].ev = ev;
			ev = -1;
			n++;
		}
	}
	pthread_mutex_unlock(&c->mu);
	for (size_t i = 0; i < n; i++) {
		if (rs[i].ev >= 0)
			proto_daemon_trace(c->d, (proto_ev_kind)rs[i].ev,
			    rs[i].txid, NULL, "REDRIVE", rs[i].cts);
		coord__send_commit(c, rs[i].txid, rs[i].cts, rs[i].peer,
		    rs[i].idx, PROTO_COMMIT, false);
	}
	dtx_free(rs);
	return n;
}

// Settles one 3PC transaction found PRECOMMITTED without a decision at
// open: any participant committed or pre-committed -> commit; every
// participant answered and none did -> abort; otherwise try again later.
static void
resolve_one(coord *c, uint64_t txid, const uint32_t *parts, uint32_t nparts)
{
	bool commit = false, all = true;
	for (uint32_t i = 0; i < nparts; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_STATUS);
		req.u.txid.txid = txid;
		memset(&rep, 0, sizeof(rep));
		proto_call_opts o = { .timeout_ms =
			                  (uint32_t)c->cfg.ack_timeout_ms };
		dtx_err rv = proto_daemon_call(c->d, parts[i], &req, &rep, &o);
		if (rv != DTX_OK || rep.hdr.type != PROTO_STATUS_REPLY) {
			all = false;
		} else if (rep.u.status_reply.state == PROTO_TS_COMMITTED ||
		    rep.u.status_reply.state == PROTO_TS_PRECOMMITTED) {
			commit = true;
		} else if (rep.u.status_reply.state == PROTO_TS_PREPARED) {
			// Uncertain: settles nothing by itself.
		}
		proto_msg_free(&rep);
	}
	uint64_t rng = txid ^ dtx_mono_ns();
	uint64_t lsn = 0;
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t == NULL || t->state != COORD_PRECOMMITTED) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (commit) {
		dtx_err rv = coord__log_decision(c, t, false, &lsn);
		t->resolve = rv != DTX_OK;
		pthread_mutex_unlock(&c->mu);
		if (rv == DTX_OK)
			rv = stor_wal_sync(c->wal, lsn);
		if (rv != DTX_OK) {
			atomic_store(&c->failed, true);
			return;
		}
		proto_daemon_trace(
		    c->d, PROTO_EV_RECOVER, txid, NULL, "RESOLVE_COMMIT", 0);
		DTX_LOGF(DTX_LOG_INFO, "RESOLVE_COMMIT",
		    DTX_FIELDS(
		        DTX_LF_TXID(txid), DTX_LF_S("state", "committed")),
		    "a participant pre-committed: commit");
		pthread_mutex_lock(&c->mu);
		t = coord__tx_find(c, txid);
		if (t != NULL) {
			coord__tx_state(c, t, COORD_COMMITTED);
			t->redrive = true;
			t->next_try_ns = 0;
		}
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (!all) {
		t->attempts++;
		t->next_try_ns =
		    dtx_mono_ns() + coord__backoff_ns(c, t->attempts, &rng);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	pthread_mutex_unlock(&c->mu);
	proto_daemon_trace(
	    c->d, PROTO_EV_RECOVER, txid, NULL, "RESOLVE_ABORT", 0);
	DTX_LOGF(DTX_LOG_INFO, "RESOLVE_ABORT",
	    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_S("state", "aborted")),
	    "no participant pre-committed: abort");
	proto_txn_reply dummy;
	memset(&dummy, 0, sizeof(dummy));
	coord__abort(c, txid, parts, nparts, NULL, "resolved", &dummy);
	dtx_free(dummy.reason);
}

static void
resolve_due(coord *c)
{
	for (;;) {
		uint64_t txid = 0;
		uint32_t nparts = 0, parts[COORD_MAX_PARTS];
		uint64_t now = dtx_mono_ns();
		pthread_mutex_lock(&c->mu);
		for (coord_tx *t = c->pending.pnext; t != &c->pending;
		     t = t->pnext) {
			if (t->state == COORD_PRECOMMITTED && t->resolve &&
			    t->next_try_ns <= now) {
				txid = t->txid;
				nparts = t->nparts;
				memcpy(
				    parts, t->parts, nparts * sizeof(uint32_t));
				// Not again before the answer (or a retry).
				t->next_try_ns = UINT64_MAX;
				break;
			}
		}
		pthread_mutex_unlock(&c->mu);
		if (txid == 0)
			return;
		resolve_one(c, txid, parts, nparts);
		pthread_mutex_lock(&c->mu);
		coord_tx *t = coord__tx_find(c, txid);
		if (t != NULL && t->next_try_ns == UINT64_MAX)
			t->next_try_ns = now + 100000000u;
		pthread_mutex_unlock(&c->mu);
		if (atomic_load(&c->stopped))
			return;
	}
}

static void *
upkeep_main(void *arg)
{
	coord *c = arg;
	uint64_t last_ckpt = dtx_mono_ns();
	for (;;) {
		pthread_mutex_lock(&c->up_mu);
		if (!c->up_stop) {
			struct timespec ts =
			    dtx_time_after(CLOCK_REALTIME, TICK_MS * 1000000u);
			pthread_cond_timedwait(&c->up_cv, &c->up_mu, &ts);
		}
		bool stop = c->up_stop;
		pthread_mutex_unlock(&c->up_mu);
		if (stop)
			break;
		redrive_due(c);
		resolve_due(c);
		uint64_t now = dtx_mono_ns();
		if (now - last_ckpt >=
		        (uint64_t)c->cfg.checkpoint_ms * 1000000u &&
		    !atomic_load(&c->failed)) {
			(void)coord__log_checkpoint(c);
			last_ckpt = now;
		}
	}
	return NULL;
}

dtx_err
coord__upkeep_start(coord *c)
{
	pthread_mutex_init(&c->up_mu, NULL);
	pthread_cond_init(&c->up_cv, NULL);
	if (pthread_create(&c->up_th, NULL, upkeep_main, c) != 0) {
		pthread_cond_destroy(&c->up_cv);
		pthread_mutex_destroy(&c->up_mu);
		return DTX_ENOMEM;
	}
	c->up_started = true;
	return DTX_OK;
}

void
coord__upkeep_stop(coord *c)
{
	if (!c->up_started)
		return;
	dtx_threads_stop(&c->up_mu, &c->up_cv, &c->up_stop, &c->up_th, 1);
	pthread_cond_destroy(&c->up_cv);
	pthread_mutex_destroy(&c->up_mu);
	c->up_started = false;
}
