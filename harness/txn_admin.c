// SPDX-License-Identifier: MIT
//
// Transactions in doubt and heuristic decisions across a cluster: TXN_LIST
// of every participant, STATUS of a coordinator, TXN_RESOLVE of one
// participant, and the atomicity observations they give (harness.h,
// "in-doubt transactions and heuristic decisions").

#include <string.h>

#include "harness_int.h"

#define DEFAULT_TIMEOUT_MS 5000

static void
note_refusal(proto_msg *rep, dtx_err *code, char *why, size_t n)
{
	if (rep->hdr.type == PROTO_ERROR) {
		if (code != NULL)
			*code = rep->u.error.code;
		snprintf(why, n, "%s",
		    rep->u.error.reason ? rep->u.error.reason : "refused");
	}
	proto_msg_free(rep);
}

dtx_err
hx_txn_list_all(hx_conn *c, uint64_t txid, uint32_t timeout_ms,
    hx_txn_node **out, size_t *n)
{
	const dtx_topo *t = hx_conn_topo(c);
	hx_txn_node *l = dtx_calloc(t->nparts + 1, sizeof(*l));
	if (l == NULL)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < t->nparts; i++) {
		proto_msg req;
		proto_msg_init(&req, PROTO_TXN_LIST);
		req.u.txid.txid = txid;
		l[i].node = t->parts[i];
		l[i].err = hx_conn_call(c, t->parts[i], &req, &l[i].rep,
		    timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS, true);
		if (l[i].err == DTX_EREFUSED)
			note_refusal(
			    &l[i].rep, NULL, l[i].why, sizeof(l[i].why));
		else if (l[i].err == DTX_OK &&
		    l[i].rep.hdr.type != PROTO_TXN_LIST_REPLY) {
			proto_msg_free(&l[i].rep);
			l[i].err = DTX_EPROTO;
		}
	}
	*out = l;
	*n = t->nparts;
	return DTX_OK;
}

void
hx_txn_nodes_free(hx_txn_node *l, size_t n)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (l[i].err == DTX_OK)
			proto_msg_free(&l[i].rep);
	dtx_free(l);
}

dtx_err
hx_txn_coord_status(hx_conn *c, uint32_t id, uint64_t txid, uint32_t timeout_ms,
    proto_txn_state *st, clk_ts *cts, char *why, size_t n)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	if (n > 0)
		why[0] = '\0';
	dtx_err rv = hx_conn_call(c, id, &req, &rep,
	    timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS, true);
	if (rv == DTX_EREFUSED) {
		note_refusal(&rep, NULL, why, n);
		return rv;
	}
	if (rv != DTX_OK)
		return rv;
	if (rep.hdr.type != PROTO_STATUS_REPLY ||
	    rep.u.status_reply.txid != txid) {
		proto_msg_free(&rep);
		return DTX_EPROTO;
	}
	*st = rep.u.status_reply.state;
	*cts = rep.u.status_reply.commit_ts;
	proto_msg_free(&rep);
	return DTX_OK;
}

dtx_err
hx_txn_resolve(hx_conn *c, uint32_t id, uint64_t txid, bool commit,
    const char *reason, uint32_t timeout_ms, proto_msg *rep, dtx_err *code,
    char *why, size_t n)
{
	proto_msg req, r;
	proto_msg_init(&req, PROTO_TXN_RESOLVE);
	req.u.txn_resolve.txid = txid;
	req.u.txn_resolve.commit = commit;
	req.u.txn_resolve.reason = (char *)reason;
	if (n > 0)
		why[0] = '\0';
	// Not idempotent: a decision by hand is not sent twice.
	dtx_err rv = hx_conn_call(c, id, &req, &r,
	    timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS, false);
	if (rv == DTX_EREFUSED) {
		note_refusal(&r, code, why, n);
		return rv;
	}
	if (rv != DTX_OK)
		return rv;
	if (r.hdr.type != PROTO_TXN_RESOLVE_REPLY) {
		proto_msg_free(&r);
		return DTX_EPROTO;
	}
	*rep = r;
	return DTX_OK;
}

const char *
hx_heur_verdict_name(proto_heur_verdict v)
{
	switch (v) {
	case PROTO_HEUR_AGREED:
		return "agreed";
	case PROTO_HEUR_HAZARD:
		return "hazard";
	default:
		return "unconfirmed";
	}
}

// ---------------------------------------------------------------- observations

static dtx_err
obs_push(hx_txn_obs **obs, size_t *n, size_t *cap, hx_txn_obs o)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		hx_txn_obs *p = dtx_realloc(*obs, nc * sizeof(*p));
		if (p == NULL)
			return DTX_ENOMEM;
		*obs = p;
		*cap = nc;
	}
	(*obs)[(*n)++] = o;
	return DTX_OK;
}

static bool
has_txid(const hx_txn_obs *obs, size_t n, uint64_t txid)
{
	for (size_t i = 0; i < n; i++)
		if (obs[i].txid == txid)
			return true;
	return false;
}

// Applies one node's heuristic decision h to the observations.
static dtx_err
heur_apply(
    hx_txn_obs **obs, size_t *n, size_t *cap, int32_t node, const proto_heur *h)
{
	hx_txn_outcome o = h->outcome == PROTO_TS_COMMITTED
	    ? HX_TXN_HEUR_COMMITTED
	    : HX_TXN_HEUR_ABORTED;
	bool found = false;
	for (size_t i = 0; i < *n; i++) {
		hx_txn_obs *x = &(*obs)[i];
		if (x->txid == h->txid && x->node == node &&
		    x->outcome != HX_TXN_HEUR_HAZARD) {
			x->outcome = o;
			found = true;
		}
	}
	dtx_err rv = DTX_OK;
	if (!found)
		rv = obs_push(obs, n, cap, (hx_txn_obs) { h->txid, node, o });
	if (rv == DTX_OK && h->verdict == PROTO_HEUR_HAZARD)
		rv = obs_push(obs, n, cap,
		    (hx_txn_obs) { h->txid, node, HX_TXN_HEUR_HAZARD });
	return rv;
}

dtx_err
hx_txn_heur_obs(hx_conn *c, bool only_known, hx_txn_obs **obs, size_t *n)
{
	hx_txn_node *l = NULL;
	size_t nl = 0, cap = *n, known = *n;
	dtx_err rv = hx_txn_list_all(c, 0, 2000, &l, &nl);
	for (size_t i = 0; i < nl && rv == DTX_OK; i++) {
		if (l[i].err != DTX_OK)
			continue;
		const proto_txn_list_reply *r = &l[i].rep.u.txn_list_reply;
		for (uint32_t k = 0; k < r->n_heur && rv == DTX_OK; k++) {
			const proto_heur *h = &r->heur[k];
			if (only_known && !has_txid(*obs, known, h->txid))
				continue;
			rv = heur_apply(obs, n, &cap, (int32_t)l[i].node, h);
		}
	}
	hx_txn_nodes_free(l, nl);
	return rv;
}

// The txids in doubt or decided by hand in the lists l, each once, with
// the coordinator each names.
static dtx_err
live_txids(const hx_txn_node *l, size_t nl, uint64_t **ids, uint32_t **coords,
    size_t *nids)
{
	size_t cap = 0, n = 0;
	for (size_t i = 0; i < nl; i++)
		if (l[i].err == DTX_OK)
			cap += l[i].rep.u.txn_list_reply.n_txs +
			    l[i].rep.u.txn_list_reply.n_heur;
	*ids = dtx_calloc(cap + 1, sizeof(**ids));
	*coords = dtx_calloc(cap + 1, sizeof(**coords));
	if (*ids == NULL || *coords == NULL)
		return DTX_ENOMEM;
	for (size_t i = 0; i < nl; i++) {
		if (l[i].err != DTX_OK)
			continue;
		const proto_txn_list_reply *r = &l[i].rep.u.txn_list_reply;
		for (uint32_t k = 0; k < r->n_txs + r->n_heur; k++) {
			uint64_t id = k < r->n_txs ? r->txs[k].txid
			                           : r->heur[k - r->n_txs].txid;
			uint32_t co = k < r->n_txs
			    ? r->txs[k].coord
			    : r->heur[k - r->n_txs].coord;
			bool dup = false;
			for (size_t j = 0; j < n && !dup; j++)
				dup = (*ids)[j] == id;
			if (!dup) {
				(*ids)[n] = id;
				(*coords)[n++] = co;
			}
		}
	}
	*nids = n;
	return DTX_OK;
}

// What every participant and the coordinator know of txid.
static dtx_err
observe_txid(hx_conn *c, uint64_t txid, uint32_t coord, uint32_t timeout_ms,
    hx_txn_obs **obs, size_t *n, size_t *cap)
{
	hx_txn_node *l = NULL;
	size_t nl = 0;
	dtx_err rv = hx_txn_list_all(c, txid, timeout_ms, &l, &nl);
	for (size_t i = 0; i < nl && rv == DTX_OK; i++) {
		const proto_txn_list_reply *r = &l[i].rep.u.txn_list_reply;
		hx_txn_outcome o = l[i].err != DTX_OK ? HX_TXN_UNKNOWN
		    : r->state == PROTO_TS_UNKNOWN
		    ? HX_TXN_ABORTED
		    : hx__txn_outcome_of(r->state, false);
		rv = obs_push(
		    obs, n, cap, (hx_txn_obs) { txid, (int32_t)l[i].node, o });
	}
	hx_txn_nodes_free(l, nl);
	const dtx_node *nd = dtx_topo_find(hx_conn_topo(c), coord);
	if (rv == DTX_OK && nd != NULL && nd->role == DTX_ROLE_COORDINATOR) {
		proto_txn_state st;
		clk_ts cts;
		char why[8];
		hx_txn_outcome o = HX_TXN_UNKNOWN;
		if (hx_txn_coord_status(c, coord, txid, timeout_ms, &st, &cts,
		        why, sizeof(why)) == DTX_OK)
			o = hx__txn_outcome_of(st, true);
		rv = obs_push(
		    obs, n, cap, (hx_txn_obs) { txid, (int32_t)coord, o });
	}
	return rv;
}

dtx_err
hx_txn_live_obs(hx_conn *c, uint32_t timeout_ms, hx_txn_obs **obs, size_t *n,
    size_t *unreachable)
{
	hx_txn_node *l = NULL;
	size_t nl = 0, nids = 0, cap = 0;
	uint64_t *ids = NULL;
	uint32_t *coords = NULL;
	*obs = NULL;
	*n = 0;
	*unreachable = 0;
	dtx_err rv = hx_txn_list_all(c, 0, timeout_ms, &l, &nl);
	if (rv == DTX_OK)
		rv = live_txids(l, nl, &ids, &coords, &nids);
	for (size_t i = 0; i < nl; i++)
		*unreachable += l[i].err != DTX_OK;
	hx_txn_nodes_free(l, nl);
	for (size_t i = 0; i < nids && rv == DTX_OK; i++)
		rv = observe_txid(
		    c, ids[i], coords[i], timeout_ms, obs, n, &cap);
	if (rv == DTX_OK)
		rv = hx_txn_heur_obs(c, false, obs, n);
	dtx_free(ids);
	dtx_free(coords);
	if (rv != DTX_OK) {
		dtx_free(*obs);
		*obs = NULL;
		*n = 0;
	}
	return rv;
}
