// SPDX-License-Identifier: MIT
//
// The operator's message bodies (wire.h, "operator messages"): the
// TXN_LIST_REPLY with its transactions in doubt and heuristic decisions,
// TXN_RESOLVE and TXN_RESOLVE_REPLY. Their rows are in bodies.c's table.

#include <string.h>

#include "wire_int.h"

typedef proto__rd rd;
typedef proto__flds flds;

static bool
state_ok(proto_txn_state st, bool decided)
{
	if (decided)
		return st == PROTO_TS_COMMITTED || st == PROTO_TS_ABORTED;
	return st == PROTO_TS_PREPARED || st == PROTO_TS_PRECOMMITTED;
}

// ---------------------------------------------------------------- entries

static bool
indoubt_ok(const proto_indoubt *x)
{
	if (!state_ok(x->state, false) || (unsigned)x->mode > PROTO_MODE_PC ||
	    x->n_peers > PROTO_MAX_PEERS || x->n_keys > PROTO_MAX_LIST_KEYS ||
	    proto__check_str(x->wait, 1) != DTX_OK)
		return false;
	for (uint32_t i = 0; i < x->n_keys; i++)
		if (proto__check_key(&x->keys[i]) != DTX_OK)
			return false;
	return true;
}

static dtx_err
enc_indoubt(msgpack_packer *pk, const proto_indoubt *x)
{
	PROTO__PACK(msgpack_pack_map(pk, 11));
	PROTO__TRY(proto__kv_uint(pk, "tx", x->txid));
	PROTO__TRY(proto__kv_uint(pk, "st", (uint64_t)x->state));
	PROTO__TRY(proto__kv_uint(pk, "m", (uint64_t)x->mode));
	PROTO__TRY(proto__kv_uint(pk, "co", x->coord));
	PROTO__TRY(proto__key(pk, "peers"));
	PROTO__PACK(msgpack_pack_array(pk, x->n_peers));
	for (uint32_t i = 0; i < x->n_peers; i++)
		PROTO__PACK(msgpack_pack_uint32(pk, x->peers[i]));
	PROTO__TRY(proto__kv_uint(pk, "age", x->age_ms));
	PROTO__TRY(proto__kv_ts(pk, "pts", x->prepare_ts));
	PROTO__TRY(proto__kv_ts(pk, "cts", x->commit_ts));
	PROTO__TRY(proto__key(pk, "keys"));
	PROTO__PACK(msgpack_pack_array(pk, x->n_keys));
	for (uint32_t i = 0; i < x->n_keys; i++)
		PROTO__TRY(proto__pack_bin(pk, &x->keys[i]));
	PROTO__TRY(proto__kv_uint(pk, "nk", x->keys_total));
	return proto__kv_str(pk, "wait", x->wait);
}

static dtx_err
rd_indoubt(rd *r, int depth, proto_indoubt *x)
{
	flds fs;
	uint64_t v = 0;
	rd s;
	uint32_t n;
	const char *ctx = r->ctx;
	r->ctx = "indoubt";
	PROTO__TRY(proto__rd_fields(r, "txs", depth, &fs));
	PROTO__TRY(proto__f_uint(r, &fs, "tx", UINT64_MAX, &x->txid));
	PROTO__TRY(proto__f_uint(r, &fs, "st", PROTO_TS_NEVER_VOTED, &v));
	x->state = (proto_txn_state)v;
	if (!state_ok(x->state, false))
		return PROTO__BAD(
		    r, "indoubt: key 'st': %u is not in doubt", (unsigned)v);
	PROTO__TRY(proto__f_uint(r, &fs, "m", PROTO_MODE_PC, &v));
	x->mode = (proto_mode)v;
	PROTO__TRY(proto__f_u32(r, &fs, "co", UINT32_MAX, &x->coord));
	PROTO__TRY(proto__f_array(r, &fs, "peers", 0, PROTO_MAX_PEERS, &s, &n));
	for (uint32_t i = 0; i < n; i++) {
		PROTO__TRY(proto__rd_uint(&s, "peers", UINT32_MAX, &v));
		x->peers[i] = (uint32_t)v;
	}
	x->n_peers = n;
	PROTO__TRY(proto__f_uint(r, &fs, "age", UINT64_MAX, &x->age_ms));
	PROTO__TRY(proto__f_ts(r, &fs, "pts", &x->prepare_ts));
	PROTO__TRY(proto__f_ts(r, &fs, "cts", &x->commit_ts));
	PROTO__TRY(
	    proto__f_array(r, &fs, "keys", 0, PROTO_MAX_LIST_KEYS, &s, &n));
	for (uint32_t i = 0; i < n; i++) {
		PROTO__TRY(
		    proto__rd_bytes(&s, "keys", 1, PROTO_MAX_KEY, &x->keys[i]));
		x->n_keys = i + 1;
	}
	PROTO__TRY(proto__f_uint(r, &fs, "nk", UINT64_MAX, &x->keys_total));
	PROTO__TRY(proto__f_str(r, &fs, "wait", true, 1, &x->wait));
	PROTO__TRY(proto__done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

static void
free_indoubt(proto_indoubt *x)
{
	for (uint32_t i = 0; i < x->n_keys; i++)
		dtx_free(x->keys[i].p);
	dtx_free(x->wait);
}

static bool
heur_ok(const proto_heur *h)
{
	bool known = h->verdict != PROTO_HEUR_UNCONFIRMED;
	return state_ok(h->outcome, true) &&
	    (unsigned)h->mode <= PROTO_MODE_PC &&
	    (unsigned)h->verdict <= PROTO_HEUR_HAZARD &&
	    (known ? state_ok(h->coord_outcome, true)
	           : h->coord_outcome == PROTO_TS_UNKNOWN) &&
	    proto__check_str(h->who, 1) == DTX_OK &&
	    proto__check_str(h->why, 0) == DTX_OK;
}

static dtx_err
enc_heur(msgpack_packer *pk, const proto_heur *h)
{
	PROTO__PACK(msgpack_pack_map(pk, 12));
	PROTO__TRY(proto__kv_uint(pk, "tx", h->txid));
	PROTO__TRY(proto__kv_uint(pk, "out", (uint64_t)h->outcome));
	PROTO__TRY(proto__kv_ts(pk, "cts", h->commit_ts));
	PROTO__TRY(proto__kv_uint(pk, "at", h->at_ms));
	PROTO__TRY(proto__kv_uint(pk, "by", h->by));
	PROTO__TRY(proto__kv_str(pk, "who", h->who));
	PROTO__TRY(proto__kv_str(pk, "why", h->why));
	PROTO__TRY(proto__kv_uint(pk, "co", h->coord));
	PROTO__TRY(proto__kv_uint(pk, "m", (uint64_t)h->mode));
	PROTO__TRY(proto__kv_uint(pk, "v", (uint64_t)h->verdict));
	PROTO__TRY(proto__kv_uint(pk, "cout", (uint64_t)h->coord_outcome));
	return proto__kv_uint(pk, "vat", h->verdict_ms);
}

static dtx_err
rd_heur(rd *r, int depth, proto_heur *h)
{
	flds fs;
	uint64_t v = 0;
	const char *ctx = r->ctx;
	r->ctx = "heur";
	PROTO__TRY(proto__rd_fields(r, "heur", depth, &fs));
	PROTO__TRY(proto__f_uint(r, &fs, "tx", UINT64_MAX, &h->txid));
	PROTO__TRY(proto__f_uint(r, &fs, "out", PROTO_TS_NEVER_VOTED, &v));
	h->outcome = (proto_txn_state)v;
	PROTO__TRY(proto__f_ts(r, &fs, "cts", &h->commit_ts));
	PROTO__TRY(proto__f_uint(r, &fs, "at", UINT64_MAX, &h->at_ms));
	PROTO__TRY(proto__f_u32(r, &fs, "by", UINT32_MAX, &h->by));
	PROTO__TRY(proto__f_str(r, &fs, "who", true, 1, &h->who));
	PROTO__TRY(proto__f_str(r, &fs, "why", true, 0, &h->why));
	PROTO__TRY(proto__f_u32(r, &fs, "co", UINT32_MAX, &h->coord));
	PROTO__TRY(proto__f_uint(r, &fs, "m", PROTO_MODE_PC, &v));
	h->mode = (proto_mode)v;
	PROTO__TRY(proto__f_uint(r, &fs, "v", PROTO_HEUR_HAZARD, &v));
	h->verdict = (proto_heur_verdict)v;
	PROTO__TRY(proto__f_uint(r, &fs, "cout", PROTO_TS_NEVER_VOTED, &v));
	h->coord_outcome = (proto_txn_state)v;
	PROTO__TRY(proto__f_uint(r, &fs, "vat", UINT64_MAX, &h->verdict_ms));
	if (!heur_ok(h))
		return PROTO__BAD(r,
		    "heur: outcome %u, verdict %u and coordinator's outcome "
		    "%u do not fit",
		    (unsigned)h->outcome, (unsigned)h->verdict,
		    (unsigned)h->coord_outcome);
	PROTO__TRY(proto__done(r, &fs));
	r->ctx = ctx;
	return DTX_OK;
}

// ----------------------------------------------------------------
// TXN_LIST_REPLY

int
proto__keys_txn_list_reply(const proto_msg *m)
{
	const proto_txn_list_reply *l = &m->u.txn_list_reply;
	if (l->n_txs > PROTO_MAX_LIST || l->n_heur > PROTO_MAX_LIST ||
	    (l->n_txs > 0 && l->txs == NULL) ||
	    (l->n_heur > 0 && l->heur == NULL))
		return -1;
	for (uint32_t i = 0; i < l->n_txs; i++)
		if (!indoubt_ok(&l->txs[i]))
			return -1;
	for (uint32_t i = 0; i < l->n_heur; i++)
		if (!heur_ok(&l->heur[i]))
			return -1;
	return (unsigned)l->state <= PROTO_TS_ABORTED ? 5 : -1;
}

dtx_err
proto__enc_txn_list_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_txn_list_reply *l = &m->u.txn_list_reply;
	PROTO__TRY(proto__key(pk, "txs"));
	PROTO__PACK(msgpack_pack_array(pk, l->n_txs));
	for (uint32_t i = 0; i < l->n_txs; i++)
		PROTO__TRY(enc_indoubt(pk, &l->txs[i]));
	PROTO__TRY(proto__key(pk, "heur"));
	PROTO__PACK(msgpack_pack_array(pk, l->n_heur));
	for (uint32_t i = 0; i < l->n_heur; i++)
		PROTO__TRY(enc_heur(pk, &l->heur[i]));
	PROTO__TRY(proto__kv_uint(pk, "more", l->more));
	PROTO__TRY(proto__kv_uint(pk, "st", (uint64_t)l->state));
	return proto__kv_ts(pk, "cts", l->commit_ts);
}

dtx_err
proto__dec_txn_list_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_txn_list_reply *l = &m->u.txn_list_reply;
	rd s;
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "txs", 0, PROTO_MAX_LIST, &s, l->txs, l->n_txs));
	for (uint32_t i = 0; i < l->n_txs; i++)
		PROTO__TRY(rd_indoubt(&s, depth + 2, &l->txs[i]));
	PROTO__TRY(PROTO__F_ARRAY_NEW(
	    r, fs, "heur", 0, PROTO_MAX_LIST, &s, l->heur, l->n_heur));
	for (uint32_t i = 0; i < l->n_heur; i++)
		PROTO__TRY(rd_heur(&s, depth + 2, &l->heur[i]));
	uint64_t v = 0;
	PROTO__TRY(proto__f_uint(r, fs, "more", UINT64_MAX, &l->more));
	PROTO__TRY(proto__f_uint(r, fs, "st", PROTO_TS_ABORTED, &v));
	l->state = (proto_txn_state)v;
	return proto__f_ts(r, fs, "cts", &l->commit_ts);
}

void
proto__free_txn_list_reply(proto_msg *m)
{
	proto_txn_list_reply *l = &m->u.txn_list_reply;
	if (l->txs != NULL)
		for (uint32_t i = 0; i < l->n_txs; i++)
			free_indoubt(&l->txs[i]);
	if (l->heur != NULL)
		for (uint32_t i = 0; i < l->n_heur; i++) {
			dtx_free(l->heur[i].who);
			dtx_free(l->heur[i].why);
		}
	dtx_free(l->txs);
	dtx_free(l->heur);
}

// ---------------------------------------------------------------- TXN_RESOLVE

int
proto__keys_txn_resolve(const proto_msg *m)
{
	const proto_txn_resolve *q = &m->u.txn_resolve;
	if (q->txid == 0)
		return -1;
	if (q->reason == NULL)
		return 2;
	return proto__check_str(q->reason, 0) == DTX_OK ? 3 : -1;
}

dtx_err
proto__enc_txn_resolve(msgpack_packer *pk, const proto_msg *m)
{
	const proto_txn_resolve *q = &m->u.txn_resolve;
	PROTO__TRY(proto__kv_uint(pk, "tx", q->txid));
	PROTO__TRY(proto__kv_bool(pk, "c", q->commit));
	if (q->reason != NULL)
		PROTO__TRY(proto__kv_str(pk, "why", q->reason));
	return DTX_OK;
}

dtx_err
proto__dec_txn_resolve(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_txn_resolve *q = &m->u.txn_resolve;
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &q->txid));
	if (q->txid == 0)
		return PROTO__BAD(
		    r, "%s: key 'tx': 0 is no transaction id", r->ctx);
	PROTO__TRY(proto__f_bool(r, fs, "c", &q->commit));
	return proto__f_str(r, fs, "why", false, 0, &q->reason);
}

void
proto__free_txn_resolve(proto_msg *m)
{
	dtx_free(m->u.txn_resolve.reason);
}

// ----------------------------------------------------------------
// TXN_RESOLVE_REPLY

int
proto__keys_txn_resolve_reply(const proto_msg *m)
{
	const proto_txn_resolve_reply *q = &m->u.txn_resolve_reply;
	if (!state_ok(q->outcome, true) ||
	    proto__check_str(q->reason, 1) != DTX_OK)
		return -1;
	return 5;
}

dtx_err
proto__enc_txn_resolve_reply(msgpack_packer *pk, const proto_msg *m)
{
	const proto_txn_resolve_reply *q = &m->u.txn_resolve_reply;
	PROTO__TRY(proto__kv_uint(pk, "tx", q->txid));
	PROTO__TRY(proto__kv_uint(pk, "out", (uint64_t)q->outcome));
	PROTO__TRY(proto__kv_ts(pk, "cts", q->commit_ts));
	PROTO__TRY(proto__kv_bool(pk, "h", q->heuristic));
	return proto__kv_str(pk, "why", q->reason);
}

dtx_err
proto__dec_txn_resolve_reply(rd *r, flds *fs, int depth, proto_msg *m)
{
	proto_txn_resolve_reply *q = &m->u.txn_resolve_reply;
	uint64_t v = 0;
	(void)depth;
	PROTO__TRY(proto__f_uint(r, fs, "tx", UINT64_MAX, &q->txid));
	PROTO__TRY(proto__f_uint(r, fs, "out", PROTO_TS_NEVER_VOTED, &v));
	q->outcome = (proto_txn_state)v;
	if (!state_ok(q->outcome, true))
		return PROTO__BAD(r, "%s: key 'out': %u is not an outcome",
		    r->ctx, (unsigned)v);
	PROTO__TRY(proto__f_ts(r, fs, "cts", &q->commit_ts));
	PROTO__TRY(proto__f_bool(r, fs, "h", &q->heuristic));
	return proto__f_str(r, fs, "why", true, 1, &q->reason);
}

void
proto__free_txn_resolve_reply(proto_msg *m)
{
	dtx_free(m->u.txn_resolve_reply.reason);
}
