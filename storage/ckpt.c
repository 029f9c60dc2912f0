// SPDX-License-Identifier: MIT
//
// The store's checkpoint (the WAL's checkpoint hook): the blob of
// committed versions, queued commits, in-doubt transactions, outcomes and
// barriers, its strict decoder, and the upkeep that writes one once the
// WAL has grown.

#include <inttypes.h>
#include <string.h>

#include "storage_int.h"

#define KVC_MAGIC "KVC1"

// Blob layout (little-endian):
//   "KVC1", u32 version (1 or 2; written: 2), u64 gc horizon
//   u64 nkeys, nkeys x (u32 klen, key, u32 nver, nver x (u64 ts, u8 tomb,
//       u32 len, value)), versions newest first
//   u64 nextra, nextra x (u32 klen, key, u64 ts, u8 tomb, u32 len, value):
//       writes of commits queued but not yet applied
//   u32 ntx, ntx x (u64 txid, u8 state, u64 lsn, u64 commit ts, meta,
//       writes): in-doubt transactions
//   u64 nout, nout x (u64 txid, u8 state, u64 commit ts, u64 wall ms),
//       oldest first
//   u64 nbar, nbar x (u32 glen, gid, u64 branch, u8 op, u64 wall ms)
//   version 2 only: u32 nheur, nheur x (u64 txid, decision (as in a HEUR
//       record, storage_int.h), u8 verdict, u8 coordinator's outcome, u64
//       verdict wall ms), oldest first; version 1 has no heuristic
//       decisions

static void
enc_ckpt(stor_kv *kv, dtx_buf *b, uint64_t *keep)
{
	dtx_buf_put(b, KVC_MAGIC, 4);
	dtx_buf_u32(b, 2);
	dtx_buf_u64(b, kv->gc_horizon);
	// Keys without versions (only an intent) are not part of the
	// committed state.
	const stor__tab *t = &kv->tab;
	uint64_t nkeys = 0;
	for (size_t i = 0; t->slot != NULL && i <= t->mask; i++)
		nkeys += t->slot[i] != NULL && t->slot[i]->head != NULL;
	dtx_buf_u64(b, nkeys);
	for (size_t i = 0; t->slot != NULL && i <= t->mask; i++) {
		const stor__ent *e = t->slot[i];
		if (e == NULL || e->head == NULL)
			continue;
		uint32_t nv = 0;
		for (const stor__ver *v = e->head; v != NULL; v = v->next)
			nv++;
		dtx_buf_u32(b, e->klen);
		dtx_buf_put(b, e->key, e->klen);
		dtx_buf_u32(b, nv);
		for (const stor__ver *v = e->head; v != NULL; v = v->next) {
			dtx_buf_u64(b, v->ts);
			dtx_buf_u8(b, v->tomb);
			dtx_buf_u32(b, v->len);
			dtx_buf_put(b, v->val, v->len);
		}
	}
	uint64_t nextra = 0;
	uint32_t ntx = 0;
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all) {
		if (tx->committing)
			nextra += tx->nw;
		else
			ntx++;
	}
	dtx_buf_u64(b, nextra);
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all) {
		if (!tx->committing)
			continue;
		for (size_t i = 0; i < tx->nw; i++) {
			const stor__w *w = &tx->w[i];
			dtx_buf_u32(b, w->klen);
			dtx_buf_put(b, w->key, w->klen);
			dtx_buf_u64(b, tx->commit_ts);
			dtx_buf_u8(b, w->ver->tomb);
			dtx_buf_u32(b, w->ver->len);
			dtx_buf_put(b, w->ver->val, w->ver->len);
		}
	}
	*keep = 0;
	dtx_buf_u32(b, ntx);
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all) {
		if (tx->committing)
			continue;
		if (*keep == 0 || tx->lsn < *keep)
			*keep = tx->lsn;
		dtx_buf_u64(b, tx->txid);
		dtx_buf_u8(b, (uint8_t)tx->state);
		dtx_buf_u64(b, tx->lsn);
		dtx_buf_u64(b, tx->commit_ts);
		stor__enc_meta(b, &tx->meta);
		stor__enc_writes(b, tx->w, tx->nw);
	}
	uint64_t ncommitting = 0;
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all)
		ncommitting += tx->committing && tx->kind == STOR__TX_DIST;
	dtx_buf_u64(b, kv->out_n + ncommitting);
	for (size_t i = 0; i < kv->out_n; i++) {
		const stor__out *o =
		    &kv->outs[(kv->out_head + i) % kv->out_cap];
		dtx_buf_u64(b, o->txid);
		dtx_buf_u8(b, o->state);
		dtx_buf_u64(b, o->commit_ts);
		dtx_buf_u64(b, o->wall_ms);
	}
	uint64_t now = stor__wall_ms();
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all) {
		if (!tx->committing || tx->kind != STOR__TX_DIST)
			continue;
		dtx_buf_u64(b, tx->txid);
		dtx_buf_u8(b, STOR_TX_COMMITTED);
		dtx_buf_u64(b, tx->commit_ts);
		dtx_buf_u64(b, now);
	}
	// Pending barriers belong to queued commits the checkpoint counts as
	// done, so every barrier goes in.
	dtx_buf_u64(b, kv->nbars);
	for (size_t i = 0; i < kv->nbars; i++) {
		const stor__bar *r = &kv->bars[i];
		dtx_buf_u32(b, r->glen);
		dtx_buf_put(b, r->gid, r->glen);
		dtx_buf_u64(b, (uint64_t)r->branch);
		dtx_buf_u8(b, r->op);
		dtx_buf_u64(b, r->wall_ms);
	}
	dtx_buf_u32(b, (uint32_t)kv->nheurs);
	for (size_t i = 0; i < kv->nheurs; i++) {
		const stor_heur *h = &kv->heurs[i];
		dtx_buf_u64(b, h->txid);
		stor__heur_enc(b, h);
		dtx_buf_u8(b, (uint8_t)h->verdict);
		dtx_buf_u8(b, (uint8_t)h->coord_outcome);
		dtx_buf_u64(b, h->verdict_wall_ms);
	}
}

// The heuristic decisions of a version 2 checkpoint.
static dtx_err
load_heurs(stor_kv *kv, dtx_rd *r)
{
	uint32_t n = dtx_rd_u32(r);
	if (r->bad || n > (r->len - r->off) / 40)
		return DTX_ECORRUPT;
	for (uint32_t i = 0; i < n; i++) {
		stor_heur h = { .txid = dtx_rd_u64(r) };
		if (r->bad || stor__heur_dec(r, &h) != DTX_OK)
			return DTX_ECORRUPT;
		uint8_t v = dtx_rd_u8(r), co = dtx_rd_u8(r);
		h.verdict_wall_ms = dtx_rd_u64(r);
		bool known = co == STOR_TX_COMMITTED || co == STOR_TX_ABORTED;
		if (r->bad ||
		    (v == STOR_HEUR_UNCONFIRMED     ? co != STOR_TX_UNKNOWN
		            : v == STOR_HEUR_AGREED ? !known || co != h.outcome
		            : v == STOR_HEUR_HAZARD ? !known || co == h.outcome
		                                    : true))
			return DTX_ECORRUPT;
		h.verdict = (stor_heur_verdict)v;
		h.coord_outcome = (stor_tx_state)co;
		dtx_err err = stor__heur_add(kv, &h);
		if (err != DTX_OK)
			return err;
	}
	return DTX_OK;
}

static dtx_err
load_versions(stor_kv *kv, dtx_rd *r)
{
	uint64_t n = dtx_rd_u64(r);
	if (r->bad || n > (r->len - r->off) / 8)
		return DTX_ECORRUPT;
	dtx_err err = stor__tab_reserve(&kv->tab, (size_t)n);
	if (err != DTX_OK)
		return err;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t klen;
		const uint8_t *k = dtx_rd_blob(r, STOR_KEY_MAX, &klen);
		uint32_t nv = dtx_rd_u32(r);
		if (r->bad || nv == 0 ||
		    stor__tab_find(&kv->tab, k, klen) != NULL)
			return DTX_ECORRUPT;
		stor__ent *e = stor__tab_get(&kv->tab, k, klen);
		if (e == NULL)
			return DTX_ENOMEM;
		stor__ver **tail = &e->head;
		clk_ts prev = CLK_TS_MAX;
		for (uint32_t j = 0; j < nv; j++) {
			clk_ts ts = dtx_rd_u64(r);
			uint8_t tomb = dtx_rd_u8(r);
			uint32_t len;
			const uint8_t *v = dtx_rd_blob(r, STOR_VAL_MAX, &len);
			if (r->bad || tomb > 1 || ts == 0 || ts >= prev)
				return DTX_ECORRUPT;
			prev = ts;
			stor__ver *ver = stor__ver_new(v, len, tomb, ts);
			if (ver == NULL)
				return DTX_ENOMEM;
			*tail = ver;
			tail = &ver->next;
			kv->nversions++;
		}
	}
	return DTX_OK;
}

static dtx_err
load_extra(stor_kv *kv, dtx_rd *r)
{
	uint64_t n = dtx_rd_u64(r);
	if (r->bad || n > (r->len - r->off) / 8)
		return DTX_ECORRUPT;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t klen;
		const uint8_t *k = dtx_rd_blob(r, STOR_KEY_MAX, &klen);
		clk_ts ts = dtx_rd_u64(r);
		uint8_t tomb = dtx_rd_u8(r);
		uint32_t len;
		const uint8_t *v = dtx_rd_blob(r, STOR_VAL_MAX, &len);
		if (r->bad || tomb > 1 || ts == 0)
			return DTX_ECORRUPT;
		stor__ent *e = stor__tab_get(&kv->tab, k, klen);
		stor__ver *ver = stor__ver_new(v, len, tomb, ts);
		if (e == NULL || ver == NULL) {
			dtx_free(ver);
			return DTX_ENOMEM;
		}
		stor__ver_insert(kv, e, ver);
	}
	return DTX_OK;
}

dtx_err
stor__load_ckpt(void *arg, uint64_t lsn, const void *p, size_t len)
{
	stor_kv *kv = arg;
	dtx_rd r = { .p = p, .len = len };
	const uint8_t *magic = dtx_rd_bytes(&r, 4);
	uint32_t ver = dtx_rd_u32(&r);
	kv->gc_horizon = dtx_rd_u64(&r);
	dtx_err err = DTX_OK;
	if (r.bad || memcmp(magic, KVC_MAGIC, 4) != 0 || ver < 1 || ver > 2)
		err = DTX_ECORRUPT;
	if (err == DTX_OK)
		err = load_versions(kv, &r);
	if (err == DTX_OK)
		err = load_extra(kv, &r);
	uint32_t ntx = err == DTX_OK ? dtx_rd_u32(&r) : 0;
	if (r.bad)
		err = DTX_ECORRUPT;
	for (uint32_t i = 0; i < ntx && err == DTX_OK; i++) {
		uint64_t txid = dtx_rd_u64(&r);
		uint8_t st = dtx_rd_u8(&r);
		uint64_t tlsn = dtx_rd_u64(&r);
		clk_ts cts = dtx_rd_u64(&r);
		if (r.bad ||
		    (st != STOR_TX_PREPARED && st != STOR_TX_PRECOMMITTED) ||
		    tlsn == 0 || tlsn > lsn)
			err = DTX_ECORRUPT;
		else
			err = stor__load_prepared(
			    kv, &r, txid, (stor_tx_state)st, cts, tlsn);
	}
	uint64_t nout = err == DTX_OK ? dtx_rd_u64(&r) : 0;
	if (r.bad || nout > len / 25)
		err = DTX_ECORRUPT;
	for (uint64_t i = 0; i < nout && err == DTX_OK; i++) {
		uint64_t txid = dtx_rd_u64(&r);
		uint8_t st = dtx_rd_u8(&r);
		clk_ts cts = dtx_rd_u64(&r);
		uint64_t wall = dtx_rd_u64(&r);
		if (r.bad || txid == 0 ||
		    (st != STOR_TX_COMMITTED && st != STOR_TX_ABORTED))
			err = DTX_ECORRUPT;
		else
			stor__outcome_put(
			    kv, txid, (stor_tx_state)st, cts, wall);
	}
	uint64_t nbar = err == DTX_OK ? dtx_rd_u64(&r) : 0;
	if (r.bad || nbar > len / 22)
		err = DTX_ECORRUPT;
	for (uint64_t i = 0; i < nbar && err == DTX_OK; i++) {
		stor__bar b;
		err = stor__dec_bar(&r, &b);
		if (err == DTX_OK)
			err = stor__bar_add(kv, &b);
	}
	if (err == DTX_OK && ver >= 2)
		err = load_heurs(kv, &r);
	if (err == DTX_OK && r.off != r.len)
		err = DTX_ECORRUPT;
	if (err == DTX_ECORRUPT)
		DTX_LOG(DTX_LOG_ERROR, "KVCORRUPT",
		    "checkpoint at LSN %" PRIu64 " does not decode", lsn);
	return err;
}

dtx_err
stor_kv_checkpoint(stor_kv *kv)
{
	if (kv == NULL)
		return DTX_EINVAL;
	dtx_buf b = { 0 };
	uint64_t keep = 0;
	pthread_mutex_lock(&kv->mu);
	// Every record of the store is appended under kv->mu, so the state
	// copied here is exactly that of the records up to this LSN.
	uint64_t lsn = stor_wal_last_lsn(kv->wal);
	enc_ckpt(kv, &b, &keep);
	pthread_mutex_unlock(&kv->mu);
	dtx_err err = b.oom ? DTX_ENOMEM : DTX_OK;
	if (err == DTX_OK)
		err = stor_wal_checkpoint(kv->wal, lsn, keep, b.p, b.len);
	dtx_buf_fini(&b);
	if (err == DTX_OK) {
		stor_wal_stats ws;
		stor_wal_stats_get(kv->wal, &ws);
		pthread_mutex_lock(&kv->mu);
		kv->ckpt_wal_bytes = ws.bytes;
		pthread_mutex_unlock(&kv->mu);
	}
	return err;
}

dtx_err
stor_kv_maintain(stor_kv *kv)
{
	if (kv == NULL)
		return DTX_EINVAL;
	stor_kv_outcome_gc(kv, kv->opts.outcome_ttl_ms);
	stor_wal_stats ws;
	stor_wal_stats_get(kv->wal, &ws);
	pthread_mutex_lock(&kv->mu);
	bool due = ws.bytes - kv->ckpt_wal_bytes >= kv->opts.checkpoint_bytes;
	pthread_mutex_unlock(&kv->mu);
	return due ? stor_kv_checkpoint(kv) : DTX_OK;
}
