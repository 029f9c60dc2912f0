// SPDX-License-Identifier: MIT
//
// PREPARE (2PC) and CAN_COMMIT (3PC): lock and compute the operations in a
// store transaction, vote NO at once on a locked key or a broken
// condition (and remember the abort), or install the intents and
// force-log PREPARED before voting YES (rule 6).

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "participant_int.h"

#define KEYTXT 96

// Fills rep with a NO vote for txid and, with record, remembers the
// abort so that a later PREPARE of the same txid is refused too.
static dtx_err vote_no(part *p, uint64_t txid, bool record, proto_msg *rep,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static dtx_err
vote_no(
    part *p, uint64_t txid, bool record, proto_msg *rep, const char *fmt, ...)
{
	char why[PROTO_MAX_STR + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	stor_tx_state st;
	if (record && stor_kv_tx_state(p->kv, txid, &st, NULL) == DTX_ENOENT)
		(void)stor_kv_abort(p->kv, txid);
	part__count(p, PART_CTR_VOTES_NO);
	proto_daemon_trace(p->d, PROTO_EV_DECIDE, txid, NULL, "VOTE_NO", 0);
	DTX_LOGF(DTX_LOG_DEBUG, "VOTE_NO_WHY",
	    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_S("why", why)), NULL);
	rep->hdr.type = PROTO_VOTE;
	rep->u.vote.txid = txid;
	rep->u.vote.yes = false;
	rep->u.vote.prepare_ts = 0;
	return proto_str_set(&rep->u.vote.reason, why);
}

// A PREPARE of a txid the store already knows: YES again with the same
// prepare ts while it is in doubt (once its record is durable), NO once
// it is decided. False when the store does not know txid.
static bool
known_txid(
    part *p, uint64_t txid, proto_msg *rep, part__pending *pend, dtx_err *rv)
{
	stor_tx_state st;
	if (stor_kv_tx_state(p->kv, txid, &st, NULL) != DTX_OK)
		return false;
	if (st == STOR_TX_PREPARED || st == STOR_TX_PRECOMMITTED) {
		stor_indoubt x;
		*rv = stor_kv_indoubt_find(p->kv, txid, &x);
		if (*rv == DTX_OK) {
			rep->hdr.type = PROTO_VOTE;
			rep->u.vote.txid = txid;
			*pend = (part__pending) { .kind = PART__PEND_VOTE,
				.lsn = x.lsn,
				.txid = txid,
				.ts = x.meta.prepare_ts };
			return true;
		}
		if (*rv != DTX_ENOENT)
			return true;
		// Decided between the two looks: committed, since only a
		// commit makes it leave the in-doubt list without an abort.
		st = STOR_TX_COMMITTED;
	}
	*rv = vote_no(p, txid, false, rep, "already decided (%s)",
	    stor_tx_state_name(st));
	return true;
}

typedef enum op_res {
	OP_OK,
	OP_NO, // why holds the reason
	OP_SELF, // the key is locked by this very txid (a racing duplicate)
	OP_WAIT, // the key is locked by a prepared transaction: w->blocker
} op_res;

// Whether a PREPARE may wait for the holder blk of a lock: a distributed
// transaction prepared here (or committing) waits for nothing but its
// decision (or its commit's fsync), so waiting for it cannot deadlock. A
// local transaction (txid 0) is not waited for.
static bool
may_wait(part *p, const stor_blocker *blk, const part__wait *w)
{
	stor_tx_state st;
	if (w == NULL || !w->allow || blk->txid == 0 ||
	    stor_kv_tx_state(p->kv, blk->txid, &st, NULL) != DTX_OK)
		return false;
	return st == STOR_TX_PREPARED || st == STOR_TX_PRECOMMITTED ||
	    st == STOR_TX_COMMITTED;
}

static op_res
lock_msg(part *p, const proto_bytes *key, const stor_blocker *blk,
    uint64_t txid, part__wait *w, char *why, size_t n)
{
	char k[KEYTXT];
	if (blk->txid == txid)
		return OP_SELF;
	if (may_wait(p, blk, w)) {
		w->blocker = blk->txid;
		return OP_WAIT;
	}
	part__key_fmt(key->p, key->n, k, sizeof(k));
	part__count(p, PART_CTR_CONFLICTS);
	if (blk->txid == 0)
		snprintf(
		    why, n, "conflict: %s locked by a local transaction", k);
	else
		snprintf(
		    why, n, "conflict: %s locked by tx %" PRIu64, k, blk->txid);
	return OP_NO;
}

// APPEND: the key's list (see PROTO_OP_APPEND) with op->delta added at
// the end; a missing key starts an empty list. Refused for a value that
// is not a list and for a list already holding PART_MAX_LIST elements.
static op_res
append_op(part *p, stor_txn *t, uint64_t txid, const proto_op *op,
    part__wait *w, char *why, size_t n)
{
	char k[KEYTXT];
	stor_blocker blk = { 0 };
	uint8_t *val = NULL, *nv = NULL;
	size_t vlen = 0;
	dtx_err rv =
	    stor_txn_get(t, op->key.p, op->key.n, (void **)&val, &vlen, &blk);
	op_res res = OP_NO;

	part__key_fmt(op->key.p, op->key.n, k, sizeof(k));
	if (rv == DTX_EAGAIN)
		return lock_msg(p, &op->key, &blk, txid, w, why, n);
	if (rv == DTX_ENOENT) {
		vlen = 0;
	} else if (rv != DTX_OK) {
		snprintf(why, n, "cannot read %s: %s", k, dtx_strerror(rv));
		goto done;
	} else if (vlen < PROTO_LIST_HDR ||
	    memcmp(val, PROTO_LIST_MAGIC, PROTO_LIST_HDR) != 0 ||
	    (vlen - PROTO_LIST_HDR) % 8 != 0) {
		snprintf(why, n, "not a list: %s", k);
		goto done;
	}
	size_t elems = vlen ? (vlen - PROTO_LIST_HDR) / 8 : 0;
	if (elems >= PART_MAX_LIST) {
		snprintf(why, n,
		    "list full: %s holds %zu elements (at most %u)", k, elems,
		    PART_MAX_LIST);
		goto done;
	}
	size_t nlen = PROTO_LIST_HDR + (elems + 1) * 8;
	if ((nv = dtx_alloc(nlen)) == NULL) {
		snprintf(
		    why, n, "cannot write %s: %s", k, dtx_strerror(DTX_ENOMEM));
		goto done;
	}
	memcpy(nv, PROTO_LIST_MAGIC, PROTO_LIST_HDR);
	if (elems > 0)
		memcpy(nv + PROTO_LIST_HDR, val + PROTO_LIST_HDR, elems * 8);
	uint64_t u = (uint64_t)op->delta;
	for (int b = 0; b < 8; b++)
		nv[PROTO_LIST_HDR + elems * 8 + (size_t)b] =
		    (uint8_t)(u >> (8 * b));
	rv = stor_txn_put(t, op->key.p, op->key.n, nv, nlen);
	if (rv != DTX_OK)
		snprintf(why, n, "cannot write %s: %s", k, dtx_strerror(rv));
	else
		res = OP_OK;
done:
	dtx_free(val);
	dtx_free(nv);
	return res;
}

// Applies one operation to t. Returns OP_NO with the reason in why.
static op_res
apply_op(part *p, stor_txn *t, uint64_t txid, const proto_op *op, part__wait *w,
    bool *wrote, char *why, size_t n)
{
	char k[KEYTXT];
	stor_blocker blk = { 0 };
	void *val = NULL;
	size_t vlen = 0;
	dtx_err rv;

	if (op->kind == PROTO_OP_APPEND) {
		*wrote = true;
		return append_op(p, t, txid, op, w, why, n);
	}
	part__key_fmt(op->key.p, op->key.n, k, sizeof(k));
	if (op->kind == PROTO_OP_ADD) {
		int64_t old, sum;
		rv = stor_txn_get_i64(t, op->key.p, op->key.n, &old, &blk);
		if (rv == DTX_EAGAIN)
			return lock_msg(p, &op->key, &blk, txid, w, why, n);
		if (rv == DTX_ENOENT) {
			snprintf(why, n, "no such key %s", k);
			return OP_NO;
		}
		if (rv == DTX_EINVAL) {
			snprintf(why, n, "not an integer: %s", k);
			return OP_NO;
		}
		if (rv != DTX_OK) {
			snprintf(
			    why, n, "cannot read %s: %s", k, dtx_strerror(rv));
			return OP_NO;
		}
		if (__builtin_add_overflow(old, op->delta, &sum)) {
			snprintf(why, n,
			    "overflow: %s has %" PRId64 ", cannot add %" PRId64,
			    k, old, op->delta);
			return OP_NO;
		}
		if (sum < op->min) {
			snprintf(why, n,
			    "insufficient funds: %s has %" PRId64
			    ", needs >= %" PRId64 " after %" PRId64,
			    k, old, op->min, op->delta);
			return OP_NO;
		}
		rv = stor_txn_put_i64(t, op->key.p, op->key.n, sum);
		*wrote = true;
	} else {
		// PUT and GET: the read puts the key in the read set and
		// finds another transaction's intent at once.
		rv = stor_txn_get(t, op->key.p, op->key.n, &val, &vlen, &blk);
		dtx_free(val);
		if (rv == DTX_EAGAIN)
			return lock_msg(p, &op->key, &blk, txid, w, why, n);
		if (rv != DTX_OK && rv != DTX_ENOENT) {
			snprintf(
			    why, n, "cannot read %s: %s", k, dtx_strerror(rv));
			return OP_NO;
		}
		rv = DTX_OK;
		if (op->kind == PROTO_OP_PUT) {
			*wrote = true;
			if (op->value.n == 8) {
				uint64_t u = 0;
				for (int i = 7; i >= 0; i--)
					u = (u << 8) | op->value.p[i];
				rv = stor_txn_put_i64(
				    t, op->key.p, op->key.n, (int64_t)u);
			} else {
				rv = stor_txn_put(t, op->key.p, op->key.n,
				    op->value.p, op->value.n);
			}
		}
	}
	if (rv != DTX_OK) {
		snprintf(why, n, "cannot write %s: %s", k, dtx_strerror(rv));
		return OP_NO;
	}
	return OP_OK;
}

// A transaction that only reads here still needs a durable PREPARED
// record (so STATUS never answers "never voted" for a YES vote): write
// every key read back unchanged, which also holds it until the outcome.
static dtx_err
write_back(stor_txn *t, const proto_prepare *pr)
{
	for (uint32_t i = 0; i < pr->n_ops; i++) {
		const proto_op *op = &pr->ops[i];
		void *val = NULL;
		size_t vlen = 0;
		dtx_err rv =
		    stor_txn_get(t, op->key.p, op->key.n, &val, &vlen, NULL);
		if (rv == DTX_OK)
			rv = stor_txn_put(t, op->key.p, op->key.n, val, vlen);
		else if (rv == DTX_ENOENT)
			rv = stor_txn_del(t, op->key.p, op->key.n);
		dtx_free(val);
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

static void
fill_meta(part *p, const proto_msg *req, stor_prep_meta *m)
{
	const proto_prepare *pr = &req->u.prepare;
	*m = (stor_prep_meta) { .coordinator = pr->coord,
		.mode = req->hdr.type == PROTO_CAN_COMMIT ||
		        pr->mode == PROTO_MODE_3PC
		    ? STOR_MODE_3PC
		    : pr->mode == PROTO_MODE_PC ? STOR_MODE_PC
		                                : STOR_MODE_2PC };
	for (uint32_t i = 0; i < pr->n_peers; i++) {
		uint32_t id = pr->peers[i];
		bool dup = id == p->self || id == pr->coord;
		for (uint32_t j = 0; j < m->npeers && !dup; j++)
			dup = m->peers[j] == id;
		if (!dup && m->npeers < STOR_PEERS_MAX)
			m->peers[m->npeers++] = id;
	}
}

static dtx_err
prepare_vote(part *p, const proto_msg *req, proto_msg *rep, part__pending *pend,
    part__wait *w)
{
	const proto_prepare *pr = &req->u.prepare;
	char why[PROTO_MAX_STR + 1];
	stor_prep_meta meta;
	stor_txn *t = NULL;
	dtx_err rv;

	if (pr->txid == 0)
		return DTX_EINVAL;
	if (known_txid(p, pr->txid, rep, pend, &rv))
		return rv;
	// Waiters for a key are served in arrival order: one that came
	// later queues behind them even when the key is free right now.
	if (w != NULL && w->allow && part__lw_queued(p, pr, w->seq)) {
		w->blocker = 0;
		*pend = (part__pending) { .kind = PART__PEND_WAIT,
			.txid = pr->txid };
		return DTX_OK;
	}
	fill_meta(p, req, &meta);
	if ((rv = stor_txn_begin(p->kv, CLK_TS_MAX, &t)) != DTX_OK)
		return vote_no(
		    p, pr->txid, true, rep, "store: %s", dtx_strerror(rv));
	bool wrote = false;
	for (uint32_t i = 0; i < pr->n_ops; i++) {
		op_res r = apply_op(
		    p, t, pr->txid, &pr->ops[i], w, &wrote, why, sizeof(why));
		if (r == OP_OK)
			continue;
		stor_txn_abort(t);
		if (r == OP_WAIT) {
			// Nothing recorded: it is tried again as a new one.
			*pend = (part__pending) { .kind = PART__PEND_WAIT,
				.txid = pr->txid };
			return DTX_OK;
		}
		if (r == OP_SELF && known_txid(p, pr->txid, rep, pend, &rv))
			return rv;
		return vote_no(p, pr->txid, true, rep, "%s", why);
	}
	if (!wrote && (rv = write_back(t, pr)) != DTX_OK) {
		stor_txn_abort(t);
		return vote_no(
		    p, pr->txid, true, rep, "store: %s", dtx_strerror(rv));
	}

	// Take the prepare ts and install the intents as one step with
	// respect to snapshot reads (see part.ts_lock).
	uint64_t lsn = 0;
	pthread_rwlock_rdlock(&p->ts_lock);
	rv = clk_node_local(p->clock, &meta.prepare_ts);
	if (rv == DTX_OK) {
		dtx_crashpoint("part.before_prepare_log");
		rv = stor_txn_prepare_async(t, pr->txid, &meta, &lsn);
	} else {
		stor_txn_abort(t);
	}
	pthread_rwlock_unlock(&p->ts_lock);
	if (rv == DTX_OK) {
		// Who may decide it, and what a repeated PREPARE must say.
		part__txmeta tm = { .txid = pr->txid,
			.digest = part__prepare_digest(req),
			.have_digest = true,
			.meta = meta };
		(void)part__txtab_put(p->txtab, &tm);
	}
	switch (rv) {
	case DTX_OK:
		rep->hdr.type = PROTO_VOTE;
		rep->u.vote.txid = pr->txid;
		*pend = (part__pending) { .kind = PART__PEND_VOTE,
			.lsn = lsn,
			.txid = pr->txid,
			.ts = meta.prepare_ts,
			.fresh = true };
		return DTX_OK;
	case DTX_EEXIST:
		if (known_txid(p, pr->txid, rep, pend, &rv))
			return rv;
		return vote_no(p, pr->txid, true, rep, "already decided");
	case DTX_ECONFLICT:
		part__count(p, PART_CTR_CONFLICTS);
		return vote_no(p, pr->txid, true, rep,
		    "conflict: a key was changed or locked concurrently");
	case DTX_EFAILED:
	case DTX_EIO:
		// The store takes no more writes: the abort cannot be
		// recorded either, and presumed abort covers it.
		return vote_no(p, pr->txid, false, rep, "store failed: %s",
		    dtx_strerror(rv));
	default:
		return vote_no(p, pr->txid, true, rep, "cannot prepare: %s",
		    dtx_strerror(rv));
	}
}

// A pc NO vote is a decision (rule 25): the abort it remembered is made
// durable before the vote leaves (with the batch's fsync: a pending vote
// with prepare ts 0), so no later PREPARE of the same txid can turn it
// into a YES after a crash.
dtx_err
part__prepare_start(part *p, const proto_msg *req, proto_msg *rep,
    part__pending *pend, part__wait *w)
{
	dtx_err rv = prepare_vote(p, req, rep, pend, w);
	if (rv != DTX_OK || req->u.prepare.mode != PROTO_MODE_PC ||
	    pend->kind != PART__PEND_NONE || rep->hdr.type != PROTO_VOTE ||
	    rep->u.vote.yes)
		return rv;
	stor_tx_state st;
	if (stor_kv_tx_state(p->kv, req->u.prepare.txid, &st, NULL) == DTX_OK &&
	    st == STOR_TX_ABORTED)
		*pend = (part__pending) { .kind = PART__PEND_VOTE,
			.lsn = stor_wal_last_lsn(stor_kv_wal(p->kv)),
			.txid = req->u.prepare.txid,
			.ts = 0 };
	return DTX_OK;
}

dtx_err
part__prepare_finish(
    part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep)
{
	if (pend->ts == 0) {
		// A pc NO (rep holds it): sent only once its abort is
		// durable; otherwise no vote at all (the peers decide).
		if (sync_err == DTX_OK)
			return DTX_OK;
		return proto_msg_set_error(rep, sync_err,
		    "tx %" PRIu64 ": the abort of a pc NO is not durable: %s",
		    pend->txid, dtx_strerror(sync_err));
	}
	if (sync_err != DTX_OK) {
		DTX_LOGF(DTX_LOG_ERROR, "PREPARE_SYNC",
		    DTX_FIELDS(DTX_LF_TXID(pend->txid),
		        DTX_LF_S("why", dtx_strerror(sync_err))),
		    "PREPARED record not durable");
		return vote_no(p, pend->txid, false, rep, "store failed: %s",
		    dtx_strerror(sync_err));
	}
	if (pend->fresh) {
		// Durable, vote not yet sent.
		proto_daemon_trace(p->d, PROTO_EV_FORCE, pend->txid, NULL,
		    "PREPARED", pend->ts);
		dtx_crashpoint("part.after_prepare_log");
		part__count(p, PART_CTR_PREPARED);
	}
	rep->hdr.type = PROTO_VOTE;
	rep->u.vote.txid = pend->txid;
	rep->u.vote.yes = true;
	rep->u.vote.prepare_ts = pend->ts;
	return DTX_OK;
}
