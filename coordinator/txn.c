// SPDX-License-Identifier: MIT
//
// TXN handling: a client's transaction is split by participant, voted on
// with PREPARE (2PC) or CAN_COMMIT (3PC), decided, and for a commit the
// decision is force-logged before any participant hears it (DESIGN rules
// 1, 2 and 5). Also STATUS, which answers from the table with presumed
// abort, and the COMMIT acknowledgement tracking that ends a transaction.
//
// Transaction ids are the coordinator's HLC timestamps (clk_node_local):
// strictly increasing within a run and, thanks to the clock's persisted
// bound in <data>/clock.bound, above every id issued before a restart, so
// an id is never reused.

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coordinator_int.h"

// The transaction's ops grouped by participant, in increasing id order.
typedef struct plan {
	uint32_t nparts;
	uint32_t parts[COORD_MAX_PARTS];
	uint32_t first[COORD_MAX_PARTS];
	uint32_t count[COORD_MAX_PARTS];
	proto_op *ops; // grouped shallow copies (borrow the request)
} plan;

static dtx_err
make_plan(coord *c, const proto_txn *tx, plan *p)
{
	const dtx_topo *topo = proto_daemon_topo(c->d);
	uint32_t *owner = dtx_calloc(tx->n_ops, sizeof(uint32_t));
	p->ops = dtx_calloc(tx->n_ops, sizeof(proto_op));
	if (owner == NULL || p->ops == NULL) {
		dtx_free(owner);
		dtx_free(p->ops);
		p->ops = NULL;
		return DTX_ENOMEM;
	}
	p->nparts = 0;
	for (uint32_t i = 0; i < tx->n_ops; i++) {
		owner[i] =
		    dtx_topo_route(topo, tx->ops[i].key.p, tx->ops[i].key.n);
		uint32_t k = 0;
		while (k < p->nparts && p->parts[k] < owner[i])
			k++;
		if (k < p->nparts && p->parts[k] == owner[i])
			continue;
		memmove(&p->parts[k + 1], &p->parts[k],
		    (p->nparts - k) * sizeof(uint32_t));
		p->parts[k] = owner[i];
		p->nparts++;
	}
	uint32_t at = 0;
	for (uint32_t k = 0; k < p->nparts; k++) {
		p->first[k] = at;
		for (uint32_t i = 0; i < tx->n_ops; i++)
			if (owner[i] == p->parts[k])
				p->ops[at++] = tx->ops[i];
		p->count[k] = at - p->first[k];
	}
	dtx_free(owner);
	return DTX_OK;
}

static dtx_err set_reason(proto_txn_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static dtx_err
set_reason(proto_txn_reply *r, const char *fmt, ...)
{
	char buf[PROTO_MAX_STR + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return proto_str_set(&r->reason, buf);
}

void
coord__send_abort(coord *c, uint64_t txid, uint32_t peer)
{
	coord_item *it = coord__item_new();
	if (it == NULL)
		return; // the participant learns ABORTED through STATUS
	proto_msg_init(&it->req, PROTO_ABORT);
	it->req.u.txid.txid = txid;
	it->peer = peer;
	it->timeout_ms = (uint32_t)c->cfg.ack_timeout_ms;
	if (coord__send(c, it) != DTX_OK)
		coord__item_free(it);
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
	for (uint32_t i = 0; i < nparts; i++)
		if (skip == NULL || !skip[i])
			coord__send_abort(c, txid, parts[i]);
	atomic_fetch_add(&c->n_aborted, 1);
	rep->outcome = PROTO_ABORTED;
	rep->txid = txid;
	(void)set_reason(rep, "%s", reason);
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
		DTX_LOG(DTX_LOG_DEBUG, "COMMIT_RETRY",
		    "txn %llu: participant %u did not ack the commit: %s",
		    (unsigned long long)it->txid, it->peer, why);
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

void
coord__send_commit(coord *c, uint64_t txid, clk_ts cts, uint32_t peer,
    uint32_t idx, proto_type type, bool chain)
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
	for (uint32_t i = 0; i < nparts; i++)
		coord__send_commit(c, txid, cts, parts[i], i, types[i], false);
}

dtx_err
coord__committed(coord *c, uint64_t txid, clk_ts cts, proto_txn_reply *r)
{
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL)
		coord__tx_state(c, t, COORD_COMMITTED);
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_add(&c->n_committed, 1);
	coord__commit_phase(c, txid);
	r->outcome = PROTO_COMMITTED;
	r->txid = txid;
	r->commit_ts = cts;
	return DTX_OK;
}

static void vote_done(coord *c, coord_item *it);

// Phase one: sends PREPARE / CAN_COMMIT for txid to every participant of
// p, one item each in items[0..p->nparts). With a waiter w the items
// complete into it; without one each completes through vote_done with
// arg (an atxn), and a send that fails at once completes there too.
static void
send_votes(coord *c, uint64_t txid, proto_mode mode, const plan *p,
    coord_item *items, coord_waiter *w, void *arg)
{
	for (uint32_t i = 0; i < p->nparts; i++) {
		coord_item *it = &items[i];
		proto_msg_init(&it->req,
		    mode == PROTO_MODE_3PC ? PROTO_CAN_COMMIT : PROTO_PREPARE);
		proto_prepare *pr = &it->req.u.prepare;
		pr->txid = txid;
		pr->mode = mode;
		pr->coord = c->self;
		pr->n_peers = p->nparts;
		pr->peers = (uint32_t *)p->parts;
		pr->n_ops = p->count[i];
		pr->ops = &p->ops[p->first[i]];
		it->peer = p->parts[i];
		it->timeout_ms = (uint32_t)c->cfg.vote_timeout_ms;
		it->w = w;
		it->done = w == NULL ? vote_done : NULL;
		it->arg = arg;
		dtx_err rv = coord__send(c, it);
		if (rv == DTX_OK)
			continue;
		it->err = rv;
		if (w == NULL) {
			vote_done(c, it);
		} else {
			pthread_mutex_lock(&w->mu);
			w->pending--;
			pthread_mutex_unlock(&w->mu);
		}
	}
}

// Reads the votes in items. On a commit vote *pts gets the largest
// prepare timestamp; on abort reason gets why and nack[i] says parts[i]
// voted NO.
static bool
tally_votes(const coord *c, uint64_t txid, const plan *p,
    const coord_item *items, clk_ts *pts, char *reason, size_t rlen, bool *nack)
{
	bool yes = true, have_no = false;
	clk_ts maxpts = 0;
	for (uint32_t i = 0; i < p->nparts; i++) {
		const coord_item *it = &items[i];
		const proto_msg *r = &it->rep;
		nack[i] = false;
		if (it->err == DTX_OK && r->hdr.type == PROTO_VOTE &&
		    r->u.vote.txid == txid && r->u.vote.yes) {
			if (r->u.vote.prepare_ts > maxpts)
				maxpts = r->u.vote.prepare_ts;
			continue;
		}
		bool first = yes;
		yes = false;
		if (it->err == DTX_OK && r->hdr.type == PROTO_VOTE &&
		    r->u.vote.txid == txid) {
			nack[i] = true;
			if (!have_no)
				snprintf(reason, rlen, "%s",
				    r->u.vote.reason != NULL
				        ? r->u.vote.reason
				        : "participant voted no");
			have_no = true;
		} else if (!first || have_no) {
			continue;
		} else if (it->err == DTX_ETIMEDOUT) {
			snprintf(reason, rlen,
			    "participant %u did not vote in %lld ms", it->peer,
			    (long long)c->cfg.vote_timeout_ms);
		} else if (it->err != DTX_OK) {
			snprintf(reason, rlen,
			    "participant %u did not vote: %s", it->peer,
			    dtx_strerror(it->err));
		} else if (r->hdr.type == PROTO_ERROR) {
			snprintf(reason, rlen, "participant %u refused: %s",
			    it->peer,
			    r->u.error.reason ? r->u.error.reason
			                      : dtx_strerror(r->u.error.code));
		} else {
			snprintf(reason, rlen,
			    "participant %u answered %s to a vote request",
			    it->peer, proto_type_name(r->hdr.type));
		}
	}
	*pts = maxpts;
	return yes;
}

// Phase one on the calling thread: sends the votes and waits for them.
static bool
collect_votes(coord *c, uint64_t txid, proto_mode mode, const plan *p,
    clk_ts *pts, char *reason, size_t rlen, bool *nack)
{
	coord_item *items = dtx_calloc(p->nparts, sizeof(coord_item));
	if (items == NULL) {
		snprintf(reason, rlen, "coordinator out of memory");
		return false;
	}
	coord_waiter w;
	coord__waiter_init(&w);
	w.pending = p->nparts;
	send_votes(c, txid, mode, p, items, &w, NULL);
	coord__waiter_wait(&w);
	coord__waiter_fini(&w);
	bool yes = tally_votes(c, txid, p, items, pts, reason, rlen, nack);
	for (uint32_t i = 0; i < p->nparts; i++)
		proto_msg_free(&items[i].rep);
	dtx_free(items);
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

// Appends the COMMIT record of txid (2PC), unforced: *lsn gets its LSN.
// false when the transaction was aborted instead (r says why).
static bool
commit_log(coord *c, uint64_t txid, clk_ts cts, const plan *p,
    proto_txn_reply *r, uint64_t *lsn)
{
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t == NULL || t->doomed) {
		pthread_mutex_unlock(&c->mu);
		coord__abort(c, txid, p->parts, p->nparts, NULL,
		    "a participant asked for the outcome before the decision",
		    r);
		return false;
	}
	dtx_crashpoint("coord.before_commit_log");
	t->cts = cts;
	dtx_err rv = coord__log_decision(c, t, false, lsn);
	if (rv == DTX_OK)
		coord__tx_state(c, t, COORD_DECIDING);
	pthread_mutex_unlock(&c->mu);
	if (rv != DTX_OK) {
		char why[PROTO_MAX_STR];
		snprintf(why, sizeof(why),
		    "decision log refused the commit: %s", dtx_strerror(rv));
		coord__abort(c, txid, p->parts, p->nparts, NULL, why, r);
		return false;
	}
	return true;
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
		DTX_LOG(DTX_LOG_ERROR, "LOG_FAILED",
		    "txn %llu: forcing the commit failed: %s",
		    (unsigned long long)txid, dtx_strerror(rv));
		r->outcome = PROTO_UNKNOWN;
		r->txid = txid;
		return set_reason(
		    r, "decision log failed: %s", dtx_strerror(rv));
	}
	dtx_crashpoint("coord.after_commit_log");
	return coord__committed(c, txid, cts, r);
}

// Forces the COMMIT record of txid (2PC) and starts the commit phase.
static dtx_err
commit_2pc(
    coord *c, uint64_t txid, clk_ts cts, const plan *p, proto_txn_reply *r)
{
	uint64_t lsn = 0;
	if (!commit_log(c, txid, cts, p, r, &lsn))
		return DTX_OK;
	return coord__commit_forced(
	    c, txid, cts, stor_wal_sync(c->wal, lsn), r);
}

// ---------------------------------------------------------------- async

// A 2PC transaction answered without holding a server worker: the last
// vote's completion (on a channel's nng thread) decides; a commit's
// record is forced by the forcer thread together with every other
// commit waiting at that moment, and the reply goes out from there.
typedef struct coord_atxn coord_atxn;
struct coord_atxn {
	coord *c;
	proto_defer *tok;
	uint64_t txid;
	plan p;
	clk_ts cts;
	stor_force force; // the COMMIT record's LSN, for the forcer
	_Atomic uint32_t pending; // votes out, plus one for the sender
	proto_msg rep;
	coord_item items[]; // p.nparts
};

// Sends the reply and frees a.
static void
atxn_finish(coord_atxn *a)
{
	proto_defer_reply(a->tok, DTX_OK, &a->rep);
	for (uint32_t i = 0; i < a->p.nparts; i++)
		proto_msg_free(&a->items[i].rep);
	dtx_free(a->p.ops);
	dtx_free(a);
}

// The forcer made a's COMMIT record durable (or failed to): commit phase
// (or unknown), then the reply.
static void
atxn_forced(stor_force *f, dtx_err rv)
{
	coord_atxn *a = (coord_atxn *)((char *)f - offsetof(coord_atxn, force));
	(void)coord__commit_forced(
	    a->c, a->txid, a->cts, rv, &a->rep.u.txn_reply);
	atxn_finish(a);
}

static void
atxn_decide(coord_atxn *a)
{
	coord *c = a->c;
	proto_txn_reply *r = &a->rep.u.txn_reply;
	char reason[PROTO_MAX_STR];
	bool nack[COORD_MAX_PARTS];
	clk_ts pts = 0;
	dtx_err rv;
	if (!tally_votes(c, a->txid, &a->p, a->items, &pts, reason,
	        sizeof(reason), nack)) {
		coord__abort(
		    c, a->txid, a->p.parts, a->p.nparts, nack, reason, r);
	} else if ((rv = commit_ts(c, pts, &a->cts)) != DTX_OK) {
		snprintf(reason, sizeof(reason), "coordinator clock: %s",
		    dtx_strerror(rv));
		coord__abort(
		    c, a->txid, a->p.parts, a->p.nparts, NULL, reason, r);
	} else if (commit_log(c, a->txid, a->cts, &a->p, r, &a->force.lsn)) {
		a->force.done = atxn_forced;
		stor_forcer_force(c->forcer, &a->force);
		return;
	}
	atxn_finish(a);
}

static void
vote_done(coord *c, coord_item *it)
{
	(void)c;
	coord_atxn *a = it->arg;
	if (atomic_fetch_sub(&a->pending, 1) == 1)
		atxn_decide(a);
}

// Starts txid's votes and returns; the reply follows through tok.
static void
txn_async(coord *c, proto_defer *tok, uint64_t txid, const plan *p)
{
	coord_atxn *a =
	    dtx_calloc(1, sizeof(*a) + p->nparts * sizeof(coord_item));
	if (a == NULL) {
		pthread_mutex_lock(&c->mu);
		coord_tx *t = coord__tx_find(c, txid);
		if (t != NULL)
			coord__tx_remove(c, t);
		pthread_mutex_unlock(&c->mu);
		dtx_free(p->ops);
		proto_defer_reply(tok, DTX_ENOMEM, NULL);
		return;
	}
	a->c = c;
	a->tok = tok;
	a->txid = txid;
	a->p = *p;
	proto_msg_init(&a->rep, PROTO_TXN_REPLY);
	atomic_store(&a->pending, p->nparts + 1);
	send_votes(c, txid, PROTO_MODE_2PC, &a->p, a->items, NULL, a);
	if (atomic_fetch_sub(&a->pending, 1) == 1)
		atxn_decide(a);
}

dtx_err
coord__txn(coord *c, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	const proto_txn *tx = &req->u.txn;
	proto_txn_reply *r = &rep->u.txn_reply;
	plan p = { .ops = NULL };
	char reason[PROTO_MAX_STR];
	bool nack[COORD_MAX_PARTS];
	clk_ts pts = 0, cts = 0;
	uint64_t txid;
	dtx_err rv;

	if (atomic_load(&c->failed))
		return DTX_EFAILED;
	if (atomic_load(&c->stopped))
		return DTX_ECLOSED;
	if (tx->n_ops < 1 || tx->ops == NULL ||
	    proto_daemon_topo(c->d)->nparts == 0)
		return DTX_EINVAL;
	// A transaction does not hold this worker while it waits: the
	// request moves to a token (and tx with it). A 2PC one goes on
	// asynchronously from here, a 3PC one on a runner thread.
	proto_defer *tok = proto_server_defer(call);
	if (tok != NULL) {
		tx = &proto_defer_req(tok)->u.txn;
		if (tx->mode == PROTO_MODE_3PC) {
			proto_pool_run(c->runners, tok);
			return DTX_OK;
		}
	}
	if ((rv = make_plan(c, tx, &p)) != DTX_OK)
		goto fail;
	if ((rv = clk_node_local(proto_daemon_clock(c->d), &txid)) != DTX_OK)
		goto fail;
	pthread_mutex_lock(&c->mu);
	coord_tx *t;
	rv = coord__tx_insert(c, txid, &t);
	if (rv == DTX_OK) {
		t->mode = tx->mode;
		t->nparts = p.nparts;
		memcpy(t->parts, p.parts, p.nparts * sizeof(uint32_t));
	}
	pthread_mutex_unlock(&c->mu);
	if (rv != DTX_OK)
		goto fail;
	atomic_fetch_add(&c->n_txns, 1);
	rep->hdr.type = PROTO_TXN_REPLY;
	DTX_LOG(DTX_LOG_DEBUG, "TXN_START", "txn %llu: %s over %u participants",
	    (unsigned long long)txid,
	    tx->mode == PROTO_MODE_3PC ? "3pc" : "2pc", p.nparts);
	if (tok != NULL) {
		txn_async(c, tok, txid, &p);
		return DTX_OK;
	}

	if (!collect_votes(
	        c, txid, tx->mode, &p, &pts, reason, sizeof(reason), nack)) {
		coord__abort(c, txid, p.parts, p.nparts, nack, reason, r);
		rv = DTX_OK;
	} else if ((rv = commit_ts(c, pts, &cts)) != DTX_OK) {
		snprintf(reason, sizeof(reason), "coordinator clock: %s",
		    dtx_strerror(rv));
		coord__abort(c, txid, p.parts, p.nparts, NULL, reason, r);
		rv = DTX_OK;
	} else if (tx->mode == PROTO_MODE_3PC) {
		rv = coord__3pc_finish(c, txid, cts, p.parts, p.nparts, r);
	} else {
		rv = commit_2pc(c, txid, cts, &p, r);
	}
fail:
	dtx_free(p.ops);
	if (tok != NULL) {
		proto_defer_reply(tok, rv, NULL);
		return DTX_OK;
	}
	return rv;
}

dtx_err
coord__status(coord *c, const proto_msg *req, proto_msg *rep)
{
	uint64_t txid = req->u.txid.txid;
	proto_status_reply *s = &rep->u.status_reply;
	rep->hdr.type = PROTO_STATUS_REPLY;
	s->txid = txid;
	s->state = PROTO_TS_ABORTED; // presumed abort (rule 2)
	atomic_fetch_add(&c->n_status, 1);
	pthread_mutex_lock(&c->mu);
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL) {
		switch (t->state) {
		case COORD_VOTING:
			// Not decided yet: decide abort now, so the answer
			// stays true.
			t->doomed = true;
			break;
		case COORD_DECIDING:
			// The COMMIT record is being forced: the outcome is
			// not known yet. PREPARED tells the asker to wait
			// and ask again (UNKNOWN would read as "no record",
			// i.e. presumed abort, and could split the decision).
			s->state = PROTO_TS_PREPARED;
			break;
		case COORD_PRECOMMITTED:
			s->state = PROTO_TS_PRECOMMITTED;
			s->commit_ts = t->cts;
			break;
		case COORD_COMMITTED:
		case COORD_ENDED:
			s->state = PROTO_TS_COMMITTED;
			s->commit_ts = t->cts;
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return DTX_OK;
}
