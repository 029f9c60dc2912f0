// SPDX-License-Identifier: MIT
//
// Snapshot reads at a timestamp T (rule 10): advance the HLC past T so no
// later prepare or commit here can land at or below T, then return the
// newest committed version <= T of each key. A prepared intent with
// prepare ts <= T may still commit at or below T: wait for its outcome up
// to a bound, then answer RETRY naming it. A READ with a page size
// ("pg", proto/wire.h) is answered one page at a time: all keys in key
// order from a cursor, or a prefix of the listed keys.

#include <inttypes.h>
#include <stdlib.h>
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

// Frees the entries and cursor of rr (a read that must start over).
static void
clear_entries(proto_read_reply *rr)
{
	dtx_free(rr->next.p);
	rr->next = (proto_bytes) { 0 };
	for (uint32_t i = 0; i < rr->n_entries; i++) {
		dtx_free(rr->entries[i].key.p);
		dtx_free(rr->entries[i].bval.p);
	}
	dtx_free(rr->entries);
	rr->entries = NULL;
	rr->n_entries = 0;
}

// ---------------------------------------------------------------- pages

// Key order of paged reads: bytewise, a prefix before its extensions.
static int
key_cmp(const void *a, size_t an, const void *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int r = m > 0 ? memcmp(a, b, m) : 0;
	if (r != 0)
		return r;
	return an < bn ? -1 : an > bn;
}

// An upper bound on the encoded bytes of one READ_REPLY entry (map, the
// "k", "f" and "i" or "b" keys and headers, key and value).
static size_t
entry_cost(size_t klen, size_t vlen)
{
	return 24 + klen + (vlen == 8 ? 9 : vlen + 5);
}

// A key of a paged scan: its copy and the size of its value at T.
typedef struct cand {
	uint8_t *key;
	uint32_t klen;
	uint32_t vlen;
} cand;

typedef struct page_ctx {
	const proto_bytes *after; // the cursor, or NULL
	cand *c;
	size_t n, cap;
} page_ctx;

static dtx_err
page_collect(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen, clk_ts vts)
{
	page_ctx *pc = arg;
	(void)val;
	(void)vts;
	if (pc->after != NULL &&
	    key_cmp(key, klen, pc->after->p, pc->after->n) <= 0)
		return DTX_OK;
	if (DTX_GROW(pc->c, pc->n, pc->cap, 64) != DTX_OK)
		return DTX_ENOMEM;
	uint8_t *k = dtx_memdup(key, klen);
	if (k == NULL)
		return DTX_ENOMEM;
	pc->c[pc->n++] = (cand) { k, (uint32_t)klen, (uint32_t)vlen };
	return DTX_OK;
}

static int
cand_cmp(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	return key_cmp(x->key, x->klen, y->key, y->klen);
}

static void
cands_free(page_ctx *pc)
{
	for (size_t i = 0; i < pc->n; i++)
		dtx_free(pc->c[i].key);
	dtx_free(pc->c);
}

// Fills entry e with key k as of T: found or not (ENOENT is no error).
static dtx_err
get_entry(part *p, const void *k, size_t klen, clk_ts T, proto_entry *e,
    size_t *vlen, stor_blocker *blk)
{
	void *val = NULL;
	*vlen = 0;
	dtx_err rv = stor_kv_get(p->kv, k, klen, T, &val, vlen, NULL, blk);
	if (rv == DTX_OK) {
		rv = fill_entry(e, k, klen, val, *vlen);
		dtx_free(val);
	} else if (rv == DTX_ENOENT) {
		rv = proto_bytes_set(&e->key, k, klen);
	}
	return rv;
}

// One page of a read of all keys: the keys after the cursor in key order,
// as many as budget bytes hold (at least one), and the cursor of the next
// page when keys are left. The scan takes the keys and value sizes as one
// snapshot at T; the values are then read at T one by one, which gives
// the same versions: the HLC has passed T, and the scan found no intent
// at or below T, so nothing can commit at or below T any more.
static dtx_err
read_all_page(part *p, const proto_read *rq, clk_ts T, size_t budget,
    proto_read_reply *rr, stor_blocker *blk)
{
	page_ctx pc = { .after = rq->after.n > 0 ? &rq->after : NULL };
	dtx_err rv = stor_kv_scan(p->kv, T, page_collect, &pc, blk);
	if (rv != DTX_OK) {
		cands_free(&pc);
		return rv;
	}
	if (pc.n > 1)
		qsort(pc.c, pc.n, sizeof(*pc.c), cand_cmp);
	size_t k = 0, used = 0;
	while (k < pc.n && k < PROTO_MAX_KEYS) {
		size_t cost = entry_cost(pc.c[k].klen, pc.c[k].vlen);
		if (k > 0 && used + cost > budget)
			break;
		used += cost;
		k++;
	}
	if (k > 0 && (rr->entries = dtx_calloc(k, sizeof(proto_entry))) == NULL)
		rv = DTX_ENOMEM;
	for (size_t i = 0; rv == DTX_OK && i < k; i++) {
		size_t vlen;
		rr->n_entries = (uint32_t)i + 1;
		rv = get_entry(p, pc.c[i].key, pc.c[i].klen, T, &rr->entries[i],
		    &vlen, blk);
		// A key the scan saw at T is still there at T (see above).
		if (rv == DTX_OK && !rr->entries[i].found)
			rv = DTX_EAGAIN;
	}
	if (rv == DTX_OK && k < pc.n)
		rv = proto_bytes_set(
		    &rr->next, pc.c[k - 1].key, pc.c[k - 1].klen);
	cands_free(&pc);
	return rv;
}

// The listed keys in order, as many as budget bytes hold (at least one;
// SIZE_MAX: all of them).
static dtx_err
read_listed(part *p, const proto_read *rq, clk_ts T, size_t budget,
    proto_read_reply *rr, stor_blocker *blk)
{
	rr->entries = dtx_calloc(rq->n_keys, sizeof(proto_entry));
	if (rr->entries == NULL)
		return DTX_ENOMEM;
	size_t used = 0;
	for (uint32_t i = 0; i < rq->n_keys; i++) {
		const proto_bytes *k = &rq->keys[i];
		proto_entry *e = &rr->entries[i];
		size_t vlen;
		rr->n_entries = i + 1;
		dtx_err rv = get_entry(p, k->p, k->n, T, e, &vlen, blk);
		if (rv != DTX_OK)
			return rv;
		size_t cost = entry_cost(k->n, e->found ? vlen : 0);
		if (budget != SIZE_MAX && i > 0 && used + cost > budget) {
			// Not on this page: the next READ asks for it.
			dtx_free(e->key.p);
			dtx_free(e->bval.p);
			memset(e, 0, sizeof(*e));
			rr->n_entries = i;
			break;
		}
		used += cost;
	}
	return DTX_OK;
}

// One attempt: DTX_EAGAIN with *blk when an intent at or below T is in
// the way.
static dtx_err
read_once(part *p, const proto_read *rq, clk_ts T, proto_read_reply *rr,
    stor_blocker *blk)
{
	size_t budget = SIZE_MAX;
	if (rq->page != 0)
		budget = rq->page < PROTO_READ_PAGE_MAX ? rq->page
		                                        : PROTO_READ_PAGE_MAX;
	if (rq->n_keys > 0)
		return read_listed(p, rq, T, budget, rr, blk);
	if (rq->page != 0)
		return read_all_page(p, rq, T, budget, rr, blk);
	scan_ctx sc = { rr, 0 };
	return stor_kv_scan(p->kv, T, scan_one, &sc, blk);
}

dtx_err
part__read(part *p, const proto_msg *req, proto_msg *rep)
{
	const proto_read *rq = &req->u.read;
	proto_read_reply *rr = &rep->u.read_reply;
	clk_ts T = rq->ts;
	dtx_err rv;

	part__count(p, PART_CTR_READS);
	if (rq->after.n > 0 && (rq->page == 0 || rq->n_keys > 0))
		return proto_msg_set_error(rep, DTX_EINVAL,
		    "a read cursor ('aft') goes with a page size ('pg') and "
		    "no keys");
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
