// SPDX-License-Identifier: MIT
//
// Outcomes and state queries: COMMIT and DO_COMMIT (force-logged before
// the ACK, applied at the commit ts: rule 7), ABORT, PRE_COMMIT (3PC,
// forced), and STATUS, which for a txid this participant never saw
// records the abort first and answers NEVER_VOTED (rule 8).

#include <inttypes.h>

#include "participant_int.h"

// A commit at cts is an event at cts: move the HLC past it before the
// intents are released. Then every later prepare or local commit here
// takes a timestamp above this version, so versions of a key stay in
// commit order, and a read at "now" after the ACK sees the commit. No
// message may move the clock more than max_offset past physical time
// (rule 23): a cts beyond that is refused with an error reply and the
// transaction stays as it was (prepared, in doubt) until a commit ts this
// node can cover arrives. False when the handler must return *rv.
static bool
observe_cts(
    part *p, const proto_msg *req, clk_ts cts, proto_msg *rep, dtx_err *rv)
{
	if (cts == 0 || cts <= clk_node_now(p->clock))
		return true;
	*rv = clk_node_witness(p->clock, cts);
	if (*rv == DTX_OK)
		return true;
	if (*rv != DTX_ECLOCK && *rv != DTX_ERANGE)
		return false;
	uint64_t txid = req->u.txid.txid;
	char cts_s[32];
	snprintf(cts_s, sizeof(cts_s), "%" PRIu64 ".%u", clk_ts_l(cts),
	    clk_ts_c(cts));
	DTX_LOGF_RL(DTX_LOG_WARN, "COMMIT_TS_REFUSED", req->hdr.from,
	    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from),
	        DTX_LF_S("type", proto_type_name(req->hdr.type)),
	        DTX_LF_S("cts", cts_s), DTX_LF_S("why", dtx_strerror(*rv))),
	    "commit ts too far ahead of this node's clock; the transaction "
	    "stays in doubt");
	*rv = proto_msg_set_error(rep, *rv,
	    "commit ts %" PRIu64 ".%u of tx %" PRIu64
	    " is too far ahead of this node's clock: refused, the transaction "
	    "stays in doubt",
	    clk_ts_l(cts), clk_ts_c(cts), txid);
	return false;
}

static void
ack(proto_msg *rep, uint64_t txid)
{
	rep->hdr.type = PROTO_ACK;
	rep->u.txid.txid = txid;
	rep->u.txid.commit_ts = 0;
}

dtx_err
part__commit_start(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend)
{
	uint64_t txid = req->u.txid.txid;
	bool do_commit = req->hdr.type == PROTO_DO_COMMIT;
	clk_ts cts = do_commit ? 0 : req->u.txid.commit_ts;
	stor_tx_state st;
	clk_ts known_cts = 0;

	if (txid == 0 || (!do_commit && cts == 0))
		return DTX_EINVAL;
	dtx_err rv = stor_kv_tx_state(p->kv, txid, &st, &known_cts);
	if (rv == DTX_ENOENT) {
		// The coordinator commits only after every YES, so a txid
		// we do not know was committed and its outcome collected.
		part__count(p, PART_CTR_COMMIT_UNKNOWN);
		DTX_LOGF_RL(DTX_LOG_WARN, "COMMIT_UNKNOWN", req->hdr.from,
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from),
		        DTX_LF_S("type", proto_type_name(req->hdr.type))),
		    "no record here (already collected)");
		ack(rep, txid);
		return DTX_OK;
	}
	if (rv != DTX_OK)
		return rv;
	switch (st) {
	case STOR_TX_ABORTED:
		DTX_LOGF(DTX_LOG_ERROR, "COMMIT_ABORTED",
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from),
		        DTX_LF_S("type", proto_type_name(req->hdr.type))),
		    "told to commit but it was aborted here");
		return proto_msg_set_error(rep, DTX_ECONFLICT,
		    "tx %" PRIu64 " was aborted here", txid);
	case STOR_TX_PREPARED:
		if (do_commit)
			return proto_msg_set_error(rep, DTX_EINVAL,
			    "tx %" PRIu64 " is not precommitted", txid);
		break;
	case STOR_TX_PRECOMMITTED:
		if (do_commit)
			cts = known_cts;
		break;
	default:
		if (do_commit)
			cts = known_cts;
		break;
	}
	bool fresh = st == STOR_TX_PREPARED || st == STOR_TX_PRECOMMITTED;
	if (!observe_cts(p, req, cts, rep, &rv))
		return rv;
	if (fresh)
		dtx_crashpoint("part.before_commit_log");
	uint64_t lsn = 0;
	rv = stor_kv_commit_async(p->kv, txid, cts, &lsn);
	if (rv == DTX_ENOENT) {
		ack(rep, txid); // collected between the two looks
		return DTX_OK;
	}
	if (rv == DTX_ECONFLICT)
		return proto_msg_set_error(rep, DTX_ECONFLICT,
		    "tx %" PRIu64 " was aborted here", txid);
	if (rv == DTX_EINVAL)
		return proto_msg_set_error(rep, DTX_EINVAL,
		    "commit ts of tx %" PRIu64 " is below its prepare ts",
		    txid);
	if (rv != DTX_OK)
		return rv;
	part__txtab_del(p->txtab, txid);
	ack(rep, txid);
	*pend = (part__pending) { .kind = PART__PEND_COMMIT,
		.lsn = lsn,
		.txid = txid,
		.ts = cts,
		.fresh = fresh };
	return DTX_OK;
}

dtx_err
part__commit_finish(
    part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep)
{
	if (sync_err != DTX_OK) {
		DTX_LOGF(DTX_LOG_ERROR, "COMMIT_SYNC",
		    DTX_FIELDS(DTX_LF_TXID(pend->txid),
		        DTX_LF_S("why", dtx_strerror(sync_err))),
		    "COMMIT record not durable");
		return proto_msg_set_error(rep, sync_err,
		    "commit of tx %" PRIu64 " is not durable: %s", pend->txid,
		    dtx_strerror(sync_err));
	}
	if (pend->fresh) {
		// Durable, ACK not yet sent.
		proto_daemon_trace(p->d, PROTO_EV_APPLY, pend->txid, NULL,
		    "COMMITTED", pend->ts);
		dtx_crashpoint("part.after_commit_log");
		part__count(p, PART_CTR_COMMITTED);
		part__outcome_signal(p);
	}
	ack(rep, pend->txid);
	return DTX_OK;
}

dtx_err
part__abort(part *p, const proto_msg *req, proto_msg *rep)
{
	uint64_t txid = req->u.txid.txid;
	stor_tx_state st;
	if (txid == 0)
		return DTX_EINVAL;
	bool in_doubt = stor_kv_tx_state(p->kv, txid, &st, NULL) == DTX_OK &&
	    (st == STOR_TX_PREPARED || st == STOR_TX_PRECOMMITTED);
	dtx_err rv = stor_kv_abort(p->kv, txid);
	if (rv == DTX_ECONFLICT) {
		DTX_LOGF(DTX_LOG_ERROR, "ABORT_COMMITTED",
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from)),
		    "told to abort but it was committed here");
		return proto_msg_set_error(rep, DTX_ECONFLICT,
		    "tx %" PRIu64 " was committed here", txid);
	}
	if (rv != DTX_OK)
		return rv;
	part__txtab_del(p->txtab, txid);
	if (in_doubt) {
		proto_daemon_trace(
		    p->d, PROTO_EV_APPLY, txid, NULL, "ABORTED", 0);
		part__count(p, PART_CTR_ABORTED);
		part__outcome_signal(p);
	}
	ack(rep, txid);
	return DTX_OK;
}

dtx_err
part__precommit_start(
    part *p, const proto_msg *req, proto_msg *rep, part__pending *pend)
{
	uint64_t txid = req->u.txid.txid;
	clk_ts cts = req->u.txid.commit_ts;
	stor_tx_state st;
	if (txid == 0 || cts == 0)
		return DTX_EINVAL;
	dtx_err rv = stor_kv_tx_state(p->kv, txid, &st, NULL);
	if (rv == DTX_ENOENT) {
		DTX_LOGF_RL(DTX_LOG_WARN, "PRECOMMIT_UNKNOWN", req->hdr.from,
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from)),
		    "PRE_COMMIT with no record here");
		ack(rep, txid);
		return DTX_OK;
	}
	if (rv != DTX_OK)
		return rv;
	if (st == STOR_TX_ABORTED)
		return proto_msg_set_error(rep, DTX_ECONFLICT,
		    "tx %" PRIu64 " was aborted here", txid);
	if (st == STOR_TX_COMMITTED) {
		ack(rep, txid);
		return DTX_OK;
	}
	if (!observe_cts(p, req, cts, rep, &rv))
		return rv;
	uint64_t lsn = 0;
	rv = stor_kv_precommit_async(p->kv, txid, cts, &lsn);
	if (rv == DTX_EINVAL)
		return proto_msg_set_error(rep, DTX_EINVAL,
		    "pre-commit ts of tx %" PRIu64 " is below its prepare ts",
		    txid);
	if (rv != DTX_OK && rv != DTX_ENOENT)
		return rv;
	// The ACK waits for the batch's one fsync (part__precommit_finish).
	pend->kind = PART__PEND_PRECOMMIT;
	pend->lsn = lsn;
	pend->txid = txid;
	pend->ts = cts;
	pend->fresh = rv == DTX_OK && st == STOR_TX_PREPARED;
	return DTX_OK;
}

dtx_err
part__precommit_finish(
    part *p, const part__pending *pend, dtx_err sync_err, proto_msg *rep)
{
	if (sync_err != DTX_OK)
		return sync_err;
	if (pend->fresh) {
		// Durable, ACK not yet sent.
		proto_daemon_trace(p->d, PROTO_EV_FORCE, pend->txid, NULL,
		    "PRECOMMITTED", pend->ts);
		dtx_crashpoint("part.after_precommit_log");
		part__count(p, PART_CTR_PRECOMMITTED);
	}
	ack(rep, pend->txid);
	return DTX_OK;
}

proto_txn_state
part__wire_state(stor_tx_state st)
{
	switch (st) {
	case STOR_TX_PREPARED:
		return PROTO_TS_PREPARED;
	case STOR_TX_PRECOMMITTED:
		return PROTO_TS_PRECOMMITTED;
	case STOR_TX_COMMITTED:
		return PROTO_TS_COMMITTED;
	case STOR_TX_ABORTED:
		return PROTO_TS_ABORTED;
	default:
		return PROTO_TS_UNKNOWN;
	}
}

// Whether from may ask about txid here. The daemon runtime has already
// admitted the sender's role for STATUS (coordinator, participant, admin,
// harness; proto/authz.c) and, over TLS, checked that a node of the
// topology holds the role the topology gives it and that "from" is the
// node its certificate names: a sender on a client line of the topology,
// or outside it, is therefore an admin or the harness, and may ask about
// anything. While txid is in doubt here, its PREPARED record names who
// else may ask: its coordinator and its peers (cooperative termination,
// 3PC termination, coordinator recovery). Once it is decided the record
// is gone and the outcome is told to any coordinator or participant (a
// peer whose COMMIT was lost needs it; it changes nothing). A txid never
// seen here is answered NEVER_VOTED (aborted first) to them too: the
// asker's own record names this node, which only the asker can know, and
// a txid is 64 random bits nobody outside the transaction can guess.
static bool
status_allowed(part *p, uint64_t txid, uint32_t from)
{
	const dtx_node *nd = dtx_topo_find(proto_daemon_topo(p->d), from);
	if (nd == NULL || nd->role == DTX_ROLE_CLIENT)
		return true;
	part__txmeta m;
	if (!part__txtab_get(p->txtab, txid, &m))
		return true;
	if (from == m.meta.coordinator)
		return true;
	for (uint32_t i = 0; i < m.meta.npeers; i++)
		if (m.meta.peers[i] == from)
			return true;
	return false;
}

dtx_err
part__status(part *p, const proto_msg *req, proto_msg *rep)
{
	uint64_t txid = req->u.txid.txid;
	stor_tx_state st;
	clk_ts cts = 0;
	proto_txn_state ws;

	if (txid == 0)
		return DTX_EINVAL;
	if (!status_allowed(p, txid, req->hdr.from)) {
		part__count(p, PART_CTR_REFUSED_STATUS);
		DTX_LOGF_RL(DTX_LOG_WARN, "REFUSED",
		    dtx_log_rl_key(req->hdr.from, "STATUS"),
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from),
		        DTX_LF_S("type", "status"),
		        DTX_LF_S("why", "the transaction does not name it")),
		    "STATUS from node %u refused", req->hdr.from);
		return proto_msg_set_error(rep, DTX_EPERM,
		    "STATUS refused: tx %" PRIu64 " does not name node %u",
		    txid, req->hdr.from);
	}
	dtx_err rv = stor_kv_tx_state(p->kv, txid, &st, &cts);
	bool never = false;
	if (rv == DTX_ENOENT) {
		// Never voted: abort first, durably, so that a PREPARE
		// arriving later is refused and whoever learns NEVER_VOTED
		// may abort safely (cooperative termination, rule 8). The
		// write lock keeps a PREPARE from installing its intents
		// between the look and the abort.
		pthread_rwlock_wrlock(&p->ts_lock);
		rv = stor_kv_tx_state(p->kv, txid, &st, &cts);
		if (rv == DTX_ENOENT) {
			never = true;
			rv = stor_kv_abort(p->kv, txid);
		}
		pthread_rwlock_unlock(&p->ts_lock);
		if (never && rv == DTX_OK)
			rv = stor_kv_sync(
			    p->kv, stor_wal_last_lsn(stor_kv_wal(p->kv)));
	}
	if (rv != DTX_OK)
		return rv;
	if (never) {
		part__count(p, PART_CTR_STATUS_NEVER_VOTED);
		// One line a second for each asker: a peer resolving many
		// transactions at once (the coordinator's batches to this
		// node were refused) asks about each; the counter has them
		// all, the trace ring each one.
		DTX_LOGF_RL(DTX_LOG_INFO, "NEVER_VOTED", req->hdr.from,
		    DTX_FIELDS(DTX_LF_TXID(txid), DTX_LF_PEER(req->hdr.from),
		        DTX_LF_S("state", "aborted")),
		    "STATUS for a transaction never voted on: aborted");
		ws = PROTO_TS_NEVER_VOTED;
		cts = 0;
	} else {
		ws = part__wire_state(st);
		if (ws != PROTO_TS_COMMITTED && ws != PROTO_TS_PRECOMMITTED)
			cts = 0;
		part__heur_status(p, txid, req->hdr.from, &ws, &cts);
	}
	clk_ts pts = 0;
	if (ws == PROTO_TS_PREPARED &&
	    (rv = part__pc_vote(p, txid, &pts)) != DTX_OK)
		return rv;
	rep->u.status_reply.prepare_ts = pts;
	rep->hdr.type = PROTO_STATUS_REPLY;
	rep->u.status_reply.txid = txid;
	rep->u.status_reply.state = ws;
	rep->u.status_reply.commit_ts = cts;
	return DTX_OK;
}
