// SPDX-License-Identifier: MIT
//
// The MVCC store's durable side: encoding of its WAL records, their
// replay on open, applying commits once the WAL says they are durable,
// and the checkpoint blob (committed versions, in-doubt transactions,
// outcomes, barriers) with its strict decoder.
//
// Record payloads (little-endian; "writes" is u32 n, then n times: u32
// klen, key, u8 tomb, u32 vlen, value; "meta" is u32 coordinator, u32
// mode, u64 prepare ts, u32 npeers, npeers x u32):
//   LOCAL      u64 commit ts, writes, u32 nbar, nbar x (u32 glen, gid,
//              u64 branch, u8 op, u64 wall ms)
//   PREPARE    u64 txid, meta, writes
//   PRECOMMIT  u64 txid, u64 commit ts
//   COMMIT     u64 txid, u64 commit ts
//   ABORT      u64 txid, u64 zero
//   BARGC      u32 glen, gid (glen 0: by age), u64 cut-off wall ms

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

#define KVC_MAGIC "KVC1"

// ---------------------------------------------------------------- records

void
stor__enc_writes(dtx_buf *b, const stor__w *w, size_t nw)
{
	dtx_buf_u32(b, (uint32_t)nw);
	for (size_t i = 0; i < nw; i++) {
		dtx_buf_u32(b, w[i].klen);
		dtx_buf_put(b, w[i].key, w[i].klen);
		dtx_buf_u8(b, w[i].ver->tomb);
		dtx_buf_u32(b, w[i].ver->len);
		dtx_buf_put(b, w[i].ver->val, w[i].ver->len);
	}
}

void
stor__enc_meta(dtx_buf *b, const stor_prep_meta *m)
{
	dtx_buf_u32(b, m->coordinator);
	dtx_buf_u32(b, m->mode);
	dtx_buf_u64(b, m->prepare_ts);
	dtx_buf_u32(b, m->npeers);
	for (uint32_t i = 0; i < m->npeers; i++)
		dtx_buf_u32(b, m->peers[i]);
}

dtx_err
stor__dec_meta(dtx_rd *r, stor_prep_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->coordinator = dtx_rd_u32(r);
	m->mode = dtx_rd_u32(r);
	m->prepare_ts = dtx_rd_u64(r);
	m->npeers = dtx_rd_u32(r);
	if (r->bad || m->npeers > STOR_PEERS_MAX ||
	    (m->mode != STOR_MODE_2PC && m->mode != STOR_MODE_3PC) ||
	    m->prepare_ts == 0)
		return DTX_ECORRUPT;
	for (uint32_t i = 0; i < m->npeers; i++)
		m->peers[i] = dtx_rd_u32(r);
	return r->bad ? DTX_ECORRUPT : DTX_OK;
}

static void
writes_free(stor__w *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dtx_free(w[i].key);
		dtx_free(w[i].ver);
	}
	dtx_free(w);
}

dtx_err
stor__dec_writes(dtx_rd *r, stor__w **out, size_t *nout)
{
	uint32_t n = dtx_rd_u32(r);
	// Each write takes at least 9 bytes: a count beyond that is damage.
	if (r->bad || n > (r->len - r->off) / 9)
		return DTX_ECORRUPT;
	stor__w *w = n > 0 ? dtx_calloc(n, sizeof(*w)) : NULL;
	if (n > 0 && w == NULL)
		return DTX_ENOMEM;
	dtx_err err = DTX_OK;
	size_t i = 0;
	for (; i < n; i++) {
		uint32_t klen;
		const uint8_t *k = dtx_rd_blob(r, STOR_KEY_MAX, &klen);
		uint8_t tomb = dtx_rd_u8(r);
		uint32_t vlen;
		const uint8_t *v = dtx_rd_blob(r, STOR_VAL_MAX, &vlen);
		if (r->bad || tomb > 1 || (tomb && vlen > 0)) {
			err = DTX_ECORRUPT;
			break;
		}
		w[i].key = dtx_alloc(klen);
		w[i].ver = stor__ver_new(v, vlen, tomb, 0);
		if (w[i].key == NULL || w[i].ver == NULL) {
			i++;
			err = DTX_ENOMEM;
			break;
		}
		if (klen > 0)
			memcpy(w[i].key, k, klen);
		w[i].klen = klen;
		w[i].write = true;
	}
	if (err != DTX_OK) {
		writes_free(w, i);
		return err;
	}
	*out = w;
	*nout = n;
	return DTX_OK;
}

// Applies decoded writes as versions at ts (replay and checkpoint load).
// Consumes the versions (set to NULL) as they are linked.
static dtx_err
apply_writes(stor_kv *kv, stor__w *w, size_t n, clk_ts ts)
{
	for (size_t i = 0; i < n; i++) {
		stor__ent *e = stor__tab_get(&kv->tab, w[i].key, w[i].klen);
		if (e == NULL)
			return DTX_ENOMEM;
		if (e->intent != NULL)
			return DTX_ECORRUPT;
		w[i].ver->ts = ts;
		stor__ver_insert(kv, e, w[i].ver);
		w[i].ver = NULL;
	}
	return DTX_OK;
}

static dtx_err
dec_bar(dtx_rd *r, stor__bar *b)
{
	memset(b, 0, sizeof(*b));
	b->glen = dtx_rd_u32(r);
	if (r->bad || b->glen == 0 || b->glen > STOR_GID_MAX)
		return DTX_ECORRUPT;
	b->gid = (uint8_t *)dtx_rd_bytes(r, b->glen);
	b->branch = (int64_t)dtx_rd_u64(r);
	b->op = dtx_rd_u8(r);
	b->wall_ms = dtx_rd_u64(r);
	if (r->bad ||
	    (b->op != STOR_BARRIER_ACTION && b->op != STOR_BARRIER_COMPENSATE))
		return DTX_ECORRUPT;
	return DTX_OK;
}

static dtx_err
replay_local(stor_kv *kv, dtx_rd *r)
{
	clk_ts ts = dtx_rd_u64(r);
	if (r->bad || ts == 0)
		return DTX_ECORRUPT;
	stor__w *w = NULL;
	size_t nw = 0;
	dtx_err err = stor__dec_writes(r, &w, &nw);
	if (err != DTX_OK)
		return err;
	err = apply_writes(kv, w, nw, ts);
	writes_free(w, nw);
	if (err != DTX_OK)
		return err;
	uint32_t nb = dtx_rd_u32(r);
	if (r->bad)
		return DTX_ECORRUPT;
	for (uint32_t i = 0; i < nb && err == DTX_OK; i++) {
		stor__bar b;
		err = dec_bar(r, &b);
		if (err == DTX_OK)
			err = stor__bar_add(kv, &b);
	}
	return err;
}

// Reloads one prepared transaction with its intents.
static dtx_err
load_prepared(stor_kv *kv, dtx_rd *r, uint64_t txid, stor_tx_state st,
    clk_ts commit_ts, uint64_t lsn)
{
	if (txid == 0 || stor__map_get(&kv->txmap, txid, NULL))
		return DTX_ECORRUPT;
	stor__tx *tx = dtx_calloc(1, sizeof(*tx));
	if (tx == NULL)
		return DTX_ENOMEM;
	tx->kind = STOR__TX_DIST;
	tx->txid = txid;
	tx->state = st;
	tx->commit_ts = commit_ts;
	tx->lsn = lsn;
	dtx_err err = stor__dec_meta(r, &tx->meta);
	if (err == DTX_OK)
		err = stor__dec_writes(r, &tx->w, &tx->nw);
	if (err == DTX_OK && tx->nw == 0)
		err = DTX_ECORRUPT;
	if (err == DTX_OK)
		err = stor__map_put(&kv->txmap, txid, (uint64_t)(uintptr_t)tx);
	if (err != DTX_OK) {
		stor__tx_free(tx);
		return err;
	}
	err = stor__tx_install(kv, tx);
	if (err != DTX_OK) {
		stor__map_del(&kv->txmap, txid);
		stor__tx_free(tx);
		// Two prepared transactions holding one key: damage.
		return err == DTX_ECONFLICT ? DTX_ECORRUPT : err;
	}
	stor__tx_link(kv, tx);
	return DTX_OK;
}

void
stor__bar_gc_apply(
    stor_kv *kv, const uint8_t *gid, size_t glen, uint64_t cutoff, size_t *n)
{
	size_t cnt = 0;
	if (glen > 0) {
		// A saga's barriers are chained by gid: no scan of the table.
		ptrdiff_t at;
		while ((at = stor__bar_first_of(kv, gid, glen, true)) >= 0) {
			stor__bar_remove_at(kv, (size_t)at);
			cnt++;
		}
		if (n != NULL)
			*n = cnt;
		return;
	}
	for (size_t i = 0; i < kv->nbars;) {
		const stor__bar *b = &kv->bars[i];
		bool hit = !b->pending &&
		    (glen > 0
		            ? b->glen == glen && memcmp(b->gid, gid, glen) == 0
		            : b->wall_ms < cutoff);
		if (hit) {
			stor__bar_remove_at(kv, i);
			cnt++;
		} else {
			i++;
		}
	}
	if (n != NULL)
		*n = cnt;
}

dtx_err
stor__replay(void *arg, uint64_t lsn, uint8_t type, const void *p, size_t len)
{
	stor_kv *kv = arg;
	dtx_rd r = { .p = p, .len = len };
	dtx_err err = DTX_OK;
	switch (type) {
	case STOR__REC_LOCAL:
		err = replay_local(kv, &r);
		break;
	case STOR__REC_PREPARE: {
		uint64_t txid = dtx_rd_u64(&r);
		err = r.bad
		    ? DTX_ECORRUPT
		    : load_prepared(kv, &r, txid, STOR_TX_PREPARED, 0, lsn);
		break;
	}
	case STOR__REC_PRECOMMIT:
	case STOR__REC_COMMIT:
	case STOR__REC_ABORT: {
		uint64_t txid = dtx_rd_u64(&r);
		clk_ts ts = dtx_rd_u64(&r);
		if (r.bad || txid == 0) {
			err = DTX_ECORRUPT;
			break;
		}
		uint64_t v;
		stor__tx *tx = stor__map_get(&kv->txmap, txid, &v)
		    ? (stor__tx *)(uintptr_t)v
		    : NULL;
		if (type == STOR__REC_ABORT) {
			if (tx != NULL)
				stor__tx_drop(kv, tx);
			stor__outcome_put(
			    kv, txid, STOR_TX_ABORTED, 0, stor__wall_ms());
		} else if (tx == NULL || ts < tx->meta.prepare_ts) {
			err = DTX_ECORRUPT;
		} else if (type == STOR__REC_PRECOMMIT) {
			tx->state = STOR_TX_PRECOMMITTED;
			tx->commit_ts = ts;
		} else {
			tx->commit_ts = ts;
			stor__tx_apply(kv, tx);
		}
		break;
	}
	case STOR__REC_BARGC: {
		uint32_t glen;
		const uint8_t *gid = dtx_rd_blob(&r, STOR_GID_MAX, &glen);
		uint64_t cutoff = dtx_rd_u64(&r);
		if (r.bad)
			err = DTX_ECORRUPT;
		else
			stor__bar_gc_apply(kv, gid, glen, cutoff, NULL);
		break;
	}
	default:
		err = DTX_ECORRUPT;
	}
	if (err == DTX_OK && r.off != r.len)
		err = DTX_ECORRUPT;
	if (err == DTX_ECORRUPT)
		DTX_LOG(DTX_LOG_ERROR, "KVCORRUPT",
		    "record LSN %" PRIu64
		    " (type %u, %zu bytes) does not decode",
		    lsn, type, len);
	return err;
}

void
stor__on_durable(void *arg, uint64_t lsn)
{
	stor_kv *kv = arg;
	pthread_mutex_lock(&kv->mu);
	while (kv->cq_head != NULL && kv->cq_head->commit_lsn <= lsn) {
		stor__tx *tx = kv->cq_head;
		kv->cq_head = tx->next_q;
		if (kv->cq_head == NULL)
			kv->cq_tail = &kv->cq_head;
		stor__tx_apply(kv, tx);
	}
	pthread_mutex_unlock(&kv->mu);
}

// ---------------------------------------------------------------- checkpoint

// Blob layout (little-endian):
//   "KVC1", u32 version 1, u64 gc horizon
//   u64 nkeys, nkeys x (u32 klen, key, u32 nver, nver x (u64 ts, u8 tomb,
//       u32 len, value)), versions newest first
//   u64 nextra, nextra x (u32 klen, key, u64 ts, u8 tomb, u32 len, value):
//       writes of commits queued but not yet applied
//   u32 ntx, ntx x (u64 txid, u8 state, u64 lsn, u64 commit ts, meta,
//       writes): in-doubt transactions
//   u64 nout, nout x (u64 txid, u8 state, u64 commit ts, u64 wall ms),
//       oldest first
//   u64 nbar, nbar x (u32 glen, gid, u64 branch, u8 op, u64 wall ms)

static void
enc_ckpt(stor_kv *kv, dtx_buf *b, uint64_t *keep)
{
	dtx_buf_put(b, KVC_MAGIC, 4);
	dtx_buf_u32(b, 1);
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
	if (r.bad || memcmp(magic, KVC_MAGIC, 4) != 0 || ver != 1)
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
			err = load_prepared(
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
		err = dec_bar(&r, &b);
		if (err == DTX_OK)
			err = stor__bar_add(kv, &b);
	}
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

dtx_err
stor_kv_barrier_gc(
    stor_kv *kv, const char *gid, uint64_t older_than_ms, size_t *removed)
{
	if (kv == NULL)
		return DTX_EINVAL;
	size_t glen = gid != NULL ? strlen(gid) : 0;
	if (gid != NULL && (glen == 0 || glen > STOR_GID_MAX))
		return DTX_EINVAL;
	uint64_t now = stor__wall_ms();
	uint64_t cutoff = now > older_than_ms ? now - older_than_ms : 0;
	uint8_t hdr[4];
	dtx_put_le32(hdr, (uint32_t)glen);
	dtx_buf rec = { 0 };
	dtx_buf_put(&rec, hdr, 4);
	dtx_buf_put(&rec, gid, glen);
	dtx_buf_u64(&rec, cutoff);
	if (rec.oom) {
		dtx_buf_fini(&rec);
		return DTX_ENOMEM;
	}
	pthread_mutex_lock(&kv->mu);
	dtx_err err = stor_wal_append(
	    kv->wal, STOR__REC_BARGC, rec.p, rec.len, false, NULL);
	size_t n = 0;
	if (err == DTX_OK)
		stor__bar_gc_apply(kv, (const uint8_t *)gid, glen, cutoff, &n);
	pthread_mutex_unlock(&kv->mu);
	dtx_buf_fini(&rec);
	if (err == DTX_OK && removed != NULL)
		*removed = n;
	return err;
}

dtx_err
stor_kv_barrier_gc_every(
    stor_kv *kv, uint64_t older_than_ms, uint64_t every_ms, size_t *removed)
{
	if (kv == NULL)
		return DTX_EINVAL;
	uint64_t now = stor__wall_ms();
	pthread_mutex_lock(&kv->mu);
	// A wall clock that stepped back also counts as due.
	bool due =
	    now - kv->bar_gc_wall_ms >= every_ms || now < kv->bar_gc_wall_ms;
	if (due)
		kv->bar_gc_wall_ms = now;
	pthread_mutex_unlock(&kv->mu);
	if (!due) {
		if (removed != NULL)
			*removed = 0;
		return DTX_OK;
	}
	return stor_kv_barrier_gc(kv, NULL, older_than_ms, removed);
}
