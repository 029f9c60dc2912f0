// SPDX-License-Identifier: MIT
//
// Snapshot reads at a timestamp T (rule 10): advance the HLC past T so no
// later prepare or commit here can land at or below T, then return the
// newest committed version <= T of each key. A prepared intent with
// prepare ts <= T may still commit at or below T: wait for its outcome up
// to a bound, then answer RETRY naming it.

#include <inttypes.h>
#include <string.h>

#include "participant_int.h"

// Fills entry e from a stored value (borrowed).
static dtx_err
fill_entry(
    proto_entry *e, const void *key, size_t klen, const void *val, size_t vlen)
{
	dtx_err rv = proto_bytes_set(&e->key, key, klen);
	if (rv != DTX_OK)
		return rv;
	e->found = true;
	if (vlen == 8) {
		const uint8_t *b = val;
		uint64_t u = 0;
		for (int i = 7; i >= 0; i--)
			u = (u << 8) | b[i];
		e->ival = (int64_t)u;
		return DTX_OK;
	}
	e->is_bytes = true;
	return proto_bytes_set(&e->bval, val, vlen);
}

typedef struct scan_ctx {
	proto_read_reply *rr;
	uint32_t cap;
} scan_ctx;

static dtx_err
scan_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen,
    clk_ts vts)
{
	scan_ctx *sc = arg;
	proto_read_reply *rr = sc->rr;
	(void)vts;
	if (rr->n_entries >= PROTO_MAX_KEYS)
		return DTX_ERANGE;
	if (rr->n_entries == sc->cap) {
		uint32_t cap = sc->cap ? sc->cap * 2 : 64;
		proto_entry *e =
		    dtx_realloc(rr->entries, (size_t)cap * sizeof(*e));
		if (e == NULL)
			return DTX_ENOMEM;
		memset(e + sc->cap, 0, (size_t)(cap - sc->cap) * sizeof(*e));
		rr->entries = e;
		sc->cap = cap;
	}
	dtx_err rv =
	    fill_entry(&rr->entries[rr->n_entries], key, klen, val, vlen);
	// Counted even on failure so that proto_msg_free frees its parts.
	rr->n_entries++;
	return rv;
}

// Frees the entries of rr (a read that must start over).
static void
clear_entries(proto_read_reply *rr)
{
	for (uint32_t i = 0; i < rr->n_entries; i++) {
		dtx_free(rr->entries[i].key.p);
		dtx_free(rr->entries[i].bval.p);
	}
	dtx_free(rr->entries);
	rr->entries = NULL;
	rr->n_entries = 0;
}

// One attempt: DTX_EAGAIN with *blk when an intent at or below T is in
// the way.
static dtx_err
read_once(part *p, const proto_read *rq, clk_ts T, proto_read_reply *rr,
    stor_blocker *blk)
{
	if (rq->n_keys == 0) {
		scan_ctx sc = { rr, 0 };
		return stor_kv_scan(p->kv, T, scan_one, &sc, blk);
	}
	rr->entries = dtx_calloc(rq->n_keys, sizeof(proto_entry));
	if (rr->entries == NULL)
		return DTX_ENOMEM;
	for (uint32_t i = 0; i < rq->n_keys; i++) {
		const proto_bytes *k = &rq->keys[i];
		proto_entry *e = &rr->entries[i];
		void *val = NULL;
		size_t vlen = 0;
		rr->n_entries = i + 1;
		dtx_err rv =
		    stor_kv_get(p->kv, k->p, k->n, T, &val, &vlen, NULL, blk);
		if (rv == DTX_OK) {
			rv = fill_entry(e, k->p, k->n, val, vlen);
			dtx_free(val);
		} else if (rv == DTX_ENOENT) {
			rv = proto_bytes_set(&e->key, k->p, k->n);
		}
		if (rv != DTX_OK)
			return rv;
	}
	return DTX_OK;
}

dtx_err
part__read(part *p, const proto_msg *req, proto_msg *rep)
{
	const proto_read *rq = &req->u.read;
	proto_read_reply *rr = &rep->u.read_reply;
	clk_ts T = rq->ts;
	dtx_err rv;

	part__count(p, PART_CTR_READS);
	// Advance the HLC past T with no prepare between taking its
	// timestamp and installing its intents (see part.ts_lock).
	// A T the clock has already reached needs no receive event (and
	// must not be refused as "ahead": after a restart this node's own
	// timestamps can run ahead of physical time by the HLC's persisted
	// bound window).
	pthread_rwlock_wrlock(&p->ts_lock);
	if (T == 0)
		rv = clk_node_local(p->clock, &T);
	else if (T <= clk_node_now(p->clock))
		rv = DTX_OK;
	else
		rv = clk_node_recv(p->clock, T, NULL, NULL);
	pthread_rwlock_unlock(&p->ts_lock);
	if (rv == DTX_ECLOCK)
		return proto_msg_set_error(rep, DTX_ECLOCK,
		    "read ts %" PRIu64 " ms is too far ahead of this node's "
		    "clock",
		    clk_ts_l(T));
	if (rv != DTX_OK)
		return rv;

	rep->hdr.type = PROTO_READ_REPLY;
	rr->ts = T;
	uint64_t deadline =
	    dtx_mono_ns() + (uint64_t)p->cfg->read_wait_ms * 1000000u;
	bool waited = false;
	for (;;) {
		stor_blocker blk = { 0 };
		rv = read_once(p, rq, T, rr, &blk);
		if (rv == DTX_OK)
			return DTX_OK;
		clear_entries(rr);
		if (rv == DTX_ERANGE)
			return proto_msg_set_error(rep, DTX_ERANGE,
			    "snapshot %" PRIu64 " is too old (versions "
			    "collected) or has too many keys",
			    clk_ts_l(T));
		if (rv != DTX_EAGAIN)
			return rv;
		if (dtx_mono_ns() >= deadline) {
			part__count(p, PART_CTR_READ_RETRIES);
			rr->status = PROTO_READ_RETRY;
			rr->blocked_txid = blk.txid;
			return DTX_OK;
		}
		if (!waited)
			part__count(p, PART_CTR_READ_WAITS);
		waited = true;
		part__outcome_wait(p, deadline);
	}
}
