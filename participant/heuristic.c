// SPDX-License-Identifier: MIT
//
// The operator's view of and hand on transactions in doubt here (rule 27).
//
// TXN_LIST answers what this participant holds in doubt (state, age,
// coordinator, peers, the keys it locks, what it waits for) and every
// heuristic decision it ever made. TXN_RESOLVE decides a transaction in
// doubt by hand, as XA's heuristic completion and PostgreSQL's COMMIT /
// ROLLBACK PREPARED do, but only when the protocol cannot: it asks the
// coordinator first (a pc transaction has none: its peers' votes, as the
// resolver asks them). A coordinator that answers with a decision (a
// COMMIT record, or no record: presumed abort) decides, and the operator's
// wish is not applied (the reply says so); one still deciding refuses it
// (ask again). Only when the coordinator cannot be reached is the
// operator's decision applied, force-logged as heuristic with who, when
// and why (storage.h, "heuristic decisions"). It stays this node's alone:
// STATUS tells the protocol's other nodes "prepared" (part__heur_status),
// so that cooperative termination does not spread it.
//
// A decision is then watched until the coordinator's is known: a COMMIT,
// DO_COMMIT or ABORT that arrives for it, or the coordinator's answer to
// the STATUS this file's check sends every few seconds. The same decision
// is recorded as agreed; the other one is a heuristic hazard (XA's name):
// logged at ERROR (HEURHAZARD), counted in HEALTH and /metrics for good,
// shown by TXN_LIST. The contradicting decision is acknowledged once the
// hazard is durable, so that the coordinator can finish; what this node
// did by hand is not undone.

#include <inttypes.h>
#include <string.h>

#include "participant_int.h"

#define CHECK_EVERY_NS (2000u * 1000000ull)
#define CHECK_MAX 32 // heuristic decisions looked at per check

static proto_mode
wire_mode(uint32_t m)
{
	return m == STOR_MODE_3PC ? PROTO_MODE_3PC
	    : m == STOR_MODE_PC   ? PROTO_MODE_PC
	                          : PROTO_MODE_2PC;
}

// ---------------------------------------------------------------- TXN_LIST

static dtx_err
add_key(void *arg, const void *key, size_t klen)
{
	proto_indoubt *x = arg;
	x->keys_total++;
	if (x->n_keys >= PROTO_MAX_LIST_KEYS || klen < 1 ||
	    klen > PROTO_MAX_KEY)
		return DTX_OK;
	dtx_err rv = proto_bytes_set(&x->keys[x->n_keys], key, klen);
	if (rv == DTX_OK)
		x->n_keys++;
	return rv;
}

// DTX_ENOENT when s was decided meanwhile.
static dtx_err
fill_indoubt(part *p, const stor_indoubt *s, proto_indoubt *x)
{
	uint64_t now = clk_ts_l(clk_node_now(p->clock));
	uint64_t then = clk_ts_l(s->meta.prepare_ts);
	*x = (proto_indoubt) { .txid = s->txid,
		.state = part__wire_state(s->state),
		.mode = wire_mode(s->meta.mode),
		.coord = s->meta.coordinator,
		.n_peers = s->meta.npeers,
		.age_ms = now > then ? now - then : 0,
		.prepare_ts = s->meta.prepare_ts,
		.commit_ts = s->commit_ts };
	memcpy(x->peers, s->meta.peers, s->meta.npeers * sizeof(uint32_t));
	dtx_err rv = stor_kv_indoubt_keys(p->kv, s->txid, add_key, x);
	if (rv != DTX_OK)
		return rv;
	char wait[PROTO_MAX_STR];
	part__resolver_describe(p, s, wait, sizeof(wait));
	return proto_str_set(&x->wait, wait);
}

static dtx_err
fill_heur(const stor_heur *h, proto_heur *o)
{
	*o = (proto_heur) { .txid = h->txid,
		.outcome = part__wire_state(h->outcome),
		.commit_ts = h->commit_ts,
		.at_ms = h->wall_ms,
		.by = h->by_node,
		.coord = h->meta.coordinator,
		.mode = wire_mode(h->meta.mode),
		.verdict = (proto_heur_verdict)h->verdict,
		.coord_outcome = h->verdict == STOR_HEUR_UNCONFIRMED
		    ? PROTO_TS_UNKNOWN
		    : part__wire_state(h->coord_outcome),
		.verdict_ms = h->verdict_wall_ms };
	dtx_err rv = proto_str_set(&o->who, h->who[0] ? h->who : "?");
	if (rv == DTX_OK)
		rv = proto_str_set(&o->why, h->why);
	return rv;
}

static dtx_err
list_fill(part *p, uint64_t only, const stor_indoubt *list, size_t n,
    const stor_heur *hl, size_t nh, proto_txn_list_reply *l)
{
	size_t ni = 0, nhh = 0;
	for (size_t i = 0; i < n; i++)
		ni += only == 0 || list[i].txid == only;
	for (size_t i = 0; i < nh; i++)
		nhh += only == 0 || hl[i].txid == only;
	size_t ki = ni < PROTO_MAX_LIST ? ni : PROTO_MAX_LIST;
	size_t kh = nhh < PROTO_MAX_LIST ? nhh : PROTO_MAX_LIST;
	l->more = (ni - ki) + (nhh - kh);
	if ((ki > 0 && (l->txs = dtx_calloc(ki, sizeof(*l->txs))) == NULL) ||
	    (kh > 0 && (l->heur = dtx_calloc(kh, sizeof(*l->heur))) == NULL))
		return DTX_ENOMEM;
	dtx_err rv = DTX_OK;
	for (size_t i = 0; i < n && l->n_txs < ki && rv == DTX_OK; i++) {
		if (only != 0 && list[i].txid != only)
			continue;
		proto_indoubt *x = &l->txs[l->n_txs++];
		rv = fill_indoubt(p, &list[i], x);
		if (rv == DTX_ENOENT) { // decided meanwhile
			dtx_free(x->wait);
			for (uint32_t k = 0; k < x->n_keys; k++)
				dtx_free(x->keys[k].p);
			memset(x, 0, sizeof(*x));
			l->n_txs--;
			rv = DTX_OK;
		}
	}
	// The newest decisions when there are too many.
	size_t skip = nhh - kh;
	for (size_t i = 0; i < nh && rv == DTX_OK; i++) {
		if (only != 0 && hl[i].txid != only)
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		rv = fill_heur(&hl[i], &l->heur[l->n_heur++]);
	}
	return rv;
}

dtx_err
part__txn_list(part *p, const proto_msg *req, proto_msg *rep)
{
	stor_indoubt *list = NULL;
	stor_heur *hl = NULL;
	size_t n = 0, nh = 0;
	dtx_err rv = stor_kv_indoubt(p->kv, &list, &n);
	if (rv == DTX_OK)
		rv = stor_kv_heur_list(p->kv, &hl, &nh);
	if (rv == DTX_OK) {
		proto_txn_list_reply *l = &rep->u.txn_list_reply;
		uint64_t only = req->u.txid.txid;
		stor_tx_state st;
		clk_ts cts = 0;
		rep->hdr.type = PROTO_TXN_LIST_REPLY;
		if (only != 0 &&
		    stor_kv_tx_state(p->kv, only, &st, &cts) == DTX_OK) {
			l->state = part__wire_state(st);
			l->commit_ts = cts;
		}
		rv = list_fill(p, only, list, n, hl, nh, l);
	}
	dtx_free(list);
	dtx_free(hl);
	return rv;
}

// ---------------------------------------------------------------- verdicts

// STATUS{txid} to node: *st and *cts on DTX_OK.
static dtx_err
status_of(
    part *p, uint32_t node, uint64_t txid, proto_txn_state *st, clk_ts *cts)
{
	proto_msg req, rep;
	proto_call_opts o = { .timeout_ms =
		                  (uint32_t)p->cfg->resolve_timeout_ms,
		.idempotent = true };
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	dtx_err rv = proto_daemon_call(p->d, node, &req, &rep, &o);
	if (rv == DTX_OK &&
	    (rep.hdr.type != PROTO_STATUS_REPLY ||
	        rep.u.status_reply.txid != txid))
		rv = DTX_EPROTO;
	if (rv == DTX_OK) {
		*st = rep.u.status_reply.state;
		*cts = rep.u.status_reply.commit_ts;
	}
	if (rv == DTX_OK || rv == DTX_EREFUSED)
		proto_msg_free(&rep);
	return rv;
}

static const char *
done_name(stor_tx_state s)
{
	return s == STOR_TX_COMMITTED ? "committed" : "aborted";
}

// Records that `by` decided coord for h, a heuristic decision here not
// yet confirmed, and says what it came to.
static void
learn(part *p, const stor_heur *h, stor_tx_state coord, const char *by)
{
	if (h->verdict != STOR_HEUR_UNCONFIRMED)
		return;
	stor_heur_verdict v;
	dtx_err rv = stor_kv_heur_verdict(p->kv, h->txid, coord, &v);
	if (rv != DTX_OK) {
		DTX_LOG(DTX_LOG_WARN, "HEURVERDICT",
		    "tx=%" PRIu64 ": cannot record that %s decided %s: %s",
		    h->txid, by, done_name(coord), dtx_strerror(rv));
		return;
	}
	if (v == STOR_HEUR_HAZARD)
		DTX_LOG(DTX_LOG_ERROR, "HEURHAZARD",
		    "tx=%" PRIu64 " was %s here by hand (%s: %s) but %s "
		    "decided it %s: heuristic hazard, its outcome differs "
		    "between nodes",
		    h->txid, done_name(h->outcome), h->who,
		    h->why[0] ? h->why : "no reason given", by,
		    done_name(coord));
	else
		DTX_LOG(DTX_LOG_INFO, "HEURAGREED",
		    "tx=%" PRIu64 " was %s here by hand (%s), as %s decided",
		    h->txid, done_name(h->outcome), h->who, by);
}

bool
part__heur_decision(part *p, const proto_msg *req, proto_msg *rep, dtx_err *rv)
{
	uint64_t txid = req->u.txid.txid;
	stor_heur h;
	if (txid == 0 || stor_kv_heur_get(p->kv, txid, &h) != DTX_OK)
		return false;
	stor_tx_state coord =
	    req->hdr.type == PROTO_ABORT ? STOR_TX_ABORTED : STOR_TX_COMMITTED;
	char by[64];
	snprintf(by, sizeof(by), "node %u's %s", req->hdr.from,
	    proto_type_name(req->hdr.type));
	learn(p, &h, coord, by);
	if (coord == h.outcome)
		return false; // the ordinary path acknowledges it
	// The hazard is durable (or logged as not): acknowledge, so that
	// the coordinator can finish; this node keeps what it did.
	rep->hdr.type = PROTO_ACK;
	rep->u.txid.txid = txid;
	rep->u.txid.commit_ts = 0;
	*rv = DTX_OK;
	return true;
}

void
part__heur_status(
    part *p, uint64_t txid, uint32_t from, proto_txn_state *ws, clk_ts *cts)
{
	const dtx_node *nd = dtx_topo_find(proto_daemon_topo(p->d), from);
	stor_heur h;
	if (nd == NULL || nd->role == DTX_ROLE_CLIENT ||
	    stor_kv_heur_get(p->kv, txid, &h) != DTX_OK)
		return; // admins and the harness see what was done
	// Spreading a decision by hand through cooperative termination
	// would make it the peers' too, decided by nobody's protocol.
	if (h.verdict != STOR_HEUR_UNCONFIRMED &&
	    h.coord_outcome == STOR_TX_ABORTED) {
		*ws = PROTO_TS_ABORTED;
	} else {
		*ws = PROTO_TS_PREPARED;
	}
	*cts = 0;
}

// Asks h's coordinator (a pc transaction: its peers) for its decision;
// true with *out when one answered with one.
static bool
ask_decision(
    part *p, const stor_heur *h, stor_tx_state *out, char *by, size_t n)
{
	proto_txn_state st;
	clk_ts cts = 0;
	bool pc = h->meta.mode == STOR_MODE_PC;
	uint32_t nask = pc ? h->meta.npeers : 1;
	for (uint32_t i = 0; i < nask; i++) {
		uint32_t node = pc ? h->meta.peers[i] : h->meta.coordinator;
		if (status_of(p, node, h->txid, &st, &cts) != DTX_OK)
			continue;
		snprintf(by, n, "%s %u", pc ? "peer" : "coordinator", node);
		if (st == PROTO_TS_COMMITTED && cts != 0) {
			*out = STOR_TX_COMMITTED;
			return true;
		}
		// Presumed abort: a coordinator without a record aborted.
		if (st == PROTO_TS_ABORTED || st == PROTO_TS_NEVER_VOTED ||
		    (!pc && st == PROTO_TS_UNKNOWN)) {
			*out = STOR_TX_ABORTED;
			return true;
		}
	}
	return false;
}

void
part__heur_check(part *p)
{
	uint64_t now = dtx_mono_ns();
	if (now < p->heur_next_ns || stor_kv_status(p->kv) != DTX_OK)
		return;
	p->heur_next_ns = now + CHECK_EVERY_NS;
	stor_heur *hl = NULL;
	size_t nh = 0, asked = 0;
	if (stor_kv_heur_list(p->kv, &hl, &nh) != DTX_OK)
		return;
	for (size_t i = 0; i < nh && asked < CHECK_MAX; i++) {
		if (hl[i].verdict != STOR_HEUR_UNCONFIRMED ||
		    proto_daemon_stopping(p->d))
			continue;
		asked++;
		stor_tx_state coord;
		char by[64];
		if (ask_decision(p, &hl[i], &coord, by, sizeof(by)))
			learn(p, &hl[i], coord, by);
	}
	dtx_free(hl);
}

// ---------------------------------------------------------------- TXN_RESOLVE

static dtx_err
reply(proto_msg *rep, uint64_t txid, stor_tx_state st, clk_ts cts, bool heur,
    const char *why)
{
	proto_txn_resolve_reply *r = &rep->u.txn_resolve_reply;
	rep->hdr.type = PROTO_TXN_RESOLVE_REPLY;
	r->txid = txid;
	r->outcome = part__wire_state(st);
	r->commit_ts = st == STOR_TX_COMMITTED ? cts : 0;
	r->heuristic = heur;
	return proto_str_set(&r->reason, why);
}

// The answer for a txid that is not in doubt here.
static dtx_err
not_in_doubt(part *p, uint64_t txid, proto_msg *rep)
{
	stor_tx_state st;
	clk_ts cts = 0;
	if (stor_kv_tx_state(p->kv, txid, &st, &cts) == DTX_OK &&
	    (st == STOR_TX_COMMITTED || st == STOR_TX_ABORTED))
		return proto_msg_set_error(rep, DTX_EEXIST,
		    "tx %" PRIu64 " is not in doubt here: it is %s", txid,
		    done_name(st));
	return proto_msg_set_error(rep, DTX_ENOENT,
	    "tx %" PRIu64 " is not in doubt here: no record of it", txid);
}

// The operator's decision, applied: nobody reachable can decide x.
static dtx_err
apply_heuristic(part *p, const proto_msg *req, const stor_indoubt *x,
    const char *asked, proto_msg *rep)
{
	const proto_txn_resolve *q = &req->u.txn_resolve;
	char who[64], why[PROTO_MAX_STR];
	snprintf(who, sizeof(who), "admin %u", req->hdr.from);
	clk_ts cts = 0;
	dtx_err rv = DTX_OK;
	stor_heur h;
	// As a local commit: the commit ts comes from the clock with the
	// timestamp lock shared (participant_int.h, ts_lock).
	pthread_rwlock_rdlock(&p->ts_lock);
	if (q->commit && x->state == STOR_TX_PRECOMMITTED)
		cts = x->commit_ts;
	else if (q->commit && (rv = clk_node_local(p->clock, &cts)) == DTX_OK &&
	    cts < x->meta.prepare_ts)
		cts = x->meta.prepare_ts;
	if (rv == DTX_OK)
		rv = stor_kv_heuristic(p->kv, x->txid, q->commit, cts,
		    req->hdr.from, who, q->reason, &h);
	pthread_rwlock_unlock(&p->ts_lock);
	if (rv == DTX_ENOENT)
		return not_in_doubt(p, x->txid, rep); // decided meanwhile
	if (rv != DTX_OK)
		return rv;
	part__txtab_del(p->txtab, x->txid);
	part__count(p, q->commit ? PART_CTR_COMMITTED : PART_CTR_ABORTED);
	part__outcome_signal(p);
	DTX_LOG(DTX_LOG_WARN, "HEURISTIC",
	    "tx=%" PRIu64 " %s by hand by %s (%s): %s; a heuristic decision, "
	    "checked against coordinator %u's once it answers",
	    x->txid, q->commit ? "committed" : "aborted", who,
	    q->reason && q->reason[0] ? q->reason : "no reason given", asked,
	    x->meta.coordinator);
	snprintf(why, sizeof(why), "decided by hand by %s: %s", who, asked);
	return reply(rep, x->txid, h.outcome, h.commit_ts, true, why);
}

// Asks x's coordinator first: on its decision, applies it and answers
// (true, *rv). A pc transaction has no coordinator to ask: its peers'
// votes decide, as the resolver asks them. False when nobody reachable
// decides: *why says so.
static bool
ask_first(part *p, const stor_indoubt *x, proto_msg *rep, dtx_err *rv,
    char *why, size_t n)
{
	char who[PROTO_MAX_STR];
	stor_tx_state st;
	clk_ts cts = 0;
	if (x->meta.mode == STOR_MODE_PC) {
		int r = part__resolve_once(p, x);
		if (r == 0 &&
		    stor_kv_tx_state(p->kv, x->txid, &st, &cts) == DTX_OK &&
		    (st == STOR_TX_COMMITTED || st == STOR_TX_ABORTED)) {
			snprintf(who, sizeof(who),
			    "the peers' votes decided it: %s (not decided "
			    "by hand)",
			    done_name(st));
			*rv = reply(rep, x->txid, st, cts, false, who);
			return true;
		}
		snprintf(why, n, "a peer's vote cannot be learned");
		return false;
	}
	proto_txn_state cst;
	dtx_err crv = status_of(p, x->meta.coordinator, x->txid, &cst, &cts);
	if (crv != DTX_OK) {
		snprintf(why, n, "coordinator %u cannot be reached (%s)",
		    x->meta.coordinator, dtx_strerror(crv));
		return false;
	}
	bool commit = cst == PROTO_TS_COMMITTED && cts != 0;
	if (!commit && cst != PROTO_TS_ABORTED && cst != PROTO_TS_UNKNOWN &&
	    cst != PROTO_TS_NEVER_VOTED) {
		*rv = proto_msg_set_error(rep, DTX_EAGAIN,
		    "tx %" PRIu64 ": coordinator %u is still deciding it; not "
		    "decided by hand, ask again",
		    x->txid, x->meta.coordinator);
		return true;
	}
	// Presumed abort: a coordinator without a record aborted.
	snprintf(who, sizeof(who),
	    "coordinator %u answered: %s (not decided "
	    "by hand)",
	    x->meta.coordinator, commit ? "committed" : "aborted");
	if (!part__decide(p, x->txid, commit, cts, who)) {
		*rv = proto_msg_set_error(rep, DTX_EFAILED,
		    "tx %" PRIu64 ": cannot apply what coordinator %u "
		    "answered (see the log)",
		    x->txid, x->meta.coordinator);
		return true;
	}
	*rv = reply(rep, x->txid, commit ? STOR_TX_COMMITTED : STOR_TX_ABORTED,
	    cts, false, who);
	return true;
}

dtx_err
part__txn_resolve(part *p, const proto_msg *req, proto_msg *rep)
{
	uint64_t txid = req->u.txn_resolve.txid;
	stor_indoubt x;
	dtx_err rv = stor_kv_indoubt_find(p->kv, txid, &x);
	if (rv == DTX_ENOENT)
		return not_in_doubt(p, txid, rep);
	if (rv != DTX_OK)
		return rv;
	char why[PROTO_MAX_STR];
	if (ask_first(p, &x, rep, &rv, why, sizeof(why)))
		return rv;
	return apply_heuristic(p, req, &x, why, rep);
}
