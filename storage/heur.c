// SPDX-License-Identifier: MIT
//
// Heuristic decisions (XA's heuristic completion): an in-doubt
// transaction committed or aborted by an operator's word, force-logged as
// such with who, when and why, and later the coordinator's own decision
// recorded beside it (agreed, or a heuristic hazard). The entries are
// kept for good; see "heuristic decisions" in storage.h.

#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

const char *
stor_heur_verdict_name(stor_heur_verdict v)
{
	switch (v) {
	case STOR_HEUR_AGREED:
		return "agreed";
	case STOR_HEUR_HAZARD:
		return "hazard";
	default:
		return "unconfirmed";
	}
}

static void
copy_str(char *dst, const char *src)
{
	size_t n = src != NULL ? strnlen(src, STOR_HEUR_STR_MAX) : 0;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

dtx_err
stor_kv_heuristic(stor_kv *kv, uint64_t txid, bool commit, clk_ts commit_ts,
    uint32_t by_node, const char *who, const char *why, stor_heur *out)
{
	if (kv == NULL || txid == 0 ||
	    (commit && (commit_ts == 0 || commit_ts == CLK_TS_MAX)))
		return DTX_EINVAL;
	stor_heur h = { .txid = txid,
		.outcome = commit ? STOR_TX_COMMITTED : STOR_TX_ABORTED,
		.commit_ts = commit ? commit_ts : 0,
		.wall_ms = stor__wall_ms(),
		.by_node = by_node };
	copy_str(h.who, who);
	copy_str(h.why, why);
	dtx_buf rec = { 0 };
	uint64_t lsn = 0;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = stor_wal_status(kv->wal);
	stor__tx *tx = err == DTX_OK ? stor__tx_get(kv, txid) : NULL;
	if (err == DTX_OK && (tx == NULL || tx->committing))
		err = DTX_ENOENT;
	else if (err == DTX_OK && commit && commit_ts < tx->meta.prepare_ts)
		err = DTX_EINVAL;
	if (err != DTX_OK)
		goto unlock;
	h.meta = tx->meta;
	dtx_buf_u64(&rec, txid);
	dtx_buf_u8(&rec, 1);
	stor__heur_enc(&rec, &h);
	if ((err = stor__rec_check(&rec)) != DTX_OK)
		goto unlock;
	// Room in the table first, so that nothing can fail once the
	// record is in the log.
	if ((err = stor__heur_add(kv, &h)) != DTX_OK)
		goto unlock;
	err = stor_wal_append(
	    kv->wal, STOR__REC_HEUR, rec.p, rec.len, false, &lsn);
	if (err != DTX_OK) {
		stor__map_del(&kv->heurmap, txid);
		kv->nheurs--;
		goto unlock;
	}
	if (commit) {
		tx->committing = true;
		tx->commit_ts = commit_ts;
		tx->commit_lsn = lsn;
		stor__cq_push(kv, tx);
	} else {
		stor__tx_drop(kv, tx);
		stor__outcome_put(kv, txid, STOR_TX_ABORTED, 0, h.wall_ms);
	}
unlock:
	pthread_mutex_unlock(&kv->mu);
	dtx_buf_fini(&rec);
	if (err == DTX_OK)
		err = stor_wal_sync(kv->wal, lsn);
	if (err == DTX_OK && out != NULL)
		*out = h;
	return err;
}

dtx_err
stor_kv_heur_verdict(
    stor_kv *kv, uint64_t txid, stor_tx_state coord, stor_heur_verdict *verdict)
{
	if (kv == NULL || txid == 0 ||
	    (coord != STOR_TX_COMMITTED && coord != STOR_TX_ABORTED))
		return DTX_EINVAL;
	uint64_t lsn = 0;
	stor_heur_verdict v = STOR_HEUR_UNCONFIRMED;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = stor_wal_status(kv->wal);
	stor_heur *h = err == DTX_OK ? stor__heur_find(kv, txid) : NULL;
	if (err == DTX_OK && h == NULL)
		err = DTX_ENOENT;
	if (err == DTX_OK && h->verdict != STOR_HEUR_UNCONFIRMED) {
		v = h->verdict;
	} else if (err == DTX_OK) {
		v = coord == h->outcome ? STOR_HEUR_AGREED : STOR_HEUR_HAZARD;
		uint64_t wall = stor__wall_ms();
		uint8_t b[8 + 1 + 1 + 1 + 8];
		dtx_put_le64(b, txid);
		b[8] = 2;
		b[9] = (uint8_t)coord;
		b[10] = (uint8_t)v;
		dtx_put_le64(b + 11, wall);
		err = stor_wal_append(
		    kv->wal, STOR__REC_HEUR, b, sizeof(b), false, &lsn);
		if (err == DTX_OK) {
			h->verdict = v;
			h->coord_outcome = coord;
			h->verdict_wall_ms = wall;
		}
	}
	pthread_mutex_unlock(&kv->mu);
	if (err == DTX_OK && lsn != 0)
		err = stor_wal_sync(kv->wal, lsn);
	if (err == DTX_OK && verdict != NULL)
		*verdict = v;
	return err;
}

dtx_err
stor_kv_heur_get(stor_kv *kv, uint64_t txid, stor_heur *out)
{
	if (kv == NULL || out == NULL || txid == 0)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	const stor_heur *h = stor__heur_find(kv, txid);
	if (h != NULL)
		*out = *h;
	pthread_mutex_unlock(&kv->mu);
	return h != NULL ? DTX_OK : DTX_ENOENT;
}

dtx_err
stor_kv_heur_list(stor_kv *kv, stor_heur **list, size_t *n)
{
	if (kv == NULL || list == NULL || n == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	size_t cnt = kv->nheurs;
	stor_heur *out = cnt > 0 ? dtx_alloc(cnt * sizeof(*out)) : NULL;
	if (cnt > 0 && out == NULL) {
		pthread_mutex_unlock(&kv->mu);
		return DTX_ENOMEM;
	}
	if (cnt > 0)
		memcpy(out, kv->heurs, cnt * sizeof(*out));
	pthread_mutex_unlock(&kv->mu);
	*list = out;
	*n = cnt;
	return DTX_OK;
}

dtx_err
stor_kv_indoubt_keys(stor_kv *kv, uint64_t txid, stor_key_fn fn, void *arg)
{
	if (kv == NULL || fn == NULL || txid == 0)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	const stor__tx *tx = stor__tx_get(kv, txid);
	dtx_err err = tx == NULL || tx->committing ? DTX_ENOENT : DTX_OK;
	for (size_t i = 0; err == DTX_OK && tx != NULL && i < tx->nw; i++)
		if (tx->w[i].write)
			err = fn(arg, tx->w[i].key, tx->w[i].klen);
	pthread_mutex_unlock(&kv->mu);
	return err;
}
