// SPDX-License-Identifier: MIT
//
// Distributed transactions: PREPARE of a stor_txn's writes as intents
// under a txid, PRECOMMIT, COMMIT and ABORT, the state of a txid (in doubt
// or a remembered outcome), and the in-doubt list and its look-up by txid.

#include <stdlib.h>

#include "storage_int.h"

const char *
stor_tx_state_name(stor_tx_state s)
{
	switch (s) {
	case STOR_TX_PREPARED:
		return "prepared";
	case STOR_TX_PRECOMMITTED:
		return "precommitted";
	case STOR_TX_COMMITTED:
		return "committed";
	case STOR_TX_ABORTED:
		return "aborted";
	default:
		return "unknown";
	}
}

static bool
meta_ok(const stor_prep_meta *m)
{
	return m != NULL && m->prepare_ts != 0 && m->prepare_ts != CLK_TS_MAX &&
	    m->mode >= STOR_MODE_2PC && m->mode <= STOR_MODE_PC &&
	    m->npeers <= STOR_PEERS_MAX;
}

dtx_err
stor_txn_prepare_async(
    stor_txn *t, uint64_t txid, const stor_prep_meta *meta, uint64_t *lsn)
{
	if (t == NULL)
		return DTX_EINVAL;
	stor_kv *kv = t->kv;
	size_t nwrites = 0;
	for (size_t i = 0; i < t->nw; i++)
		nwrites += t->w[i].write;
	if (txid == 0 || !meta_ok(meta) || nwrites == 0 || t->nputs > 0) {
		stor__txn_free(t);
		return DTX_EINVAL;
	}
	dtx_buf rec = { 0 };
	stor__tx *tx = NULL;
	uint64_t l = 0;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = stor_wal_status(kv->wal);
	if (err == DTX_OK &&
	    (stor__map_get(&kv->txmap, txid, NULL) ||
	        stor__outcome_get(kv, txid) != NULL))
		err = DTX_EEXIST;
	if (err == DTX_OK)
		err = stor__txn_validate(t);
	if (err != DTX_OK)
		goto unlock;
	tx = stor__txn_take(t, STOR__TX_DIST);
	if (tx == NULL) {
		err = DTX_ENOMEM;
		goto unlock;
	}
	tx->txid = txid;
	tx->state = STOR_TX_PREPARED;
	tx->meta = *meta;
	dtx_buf_u64(&rec, txid);
	stor__enc_meta(&rec, meta);
	stor__enc_writes(&rec, tx->w, tx->nw);
	if ((err = stor__rec_check(&rec)) != DTX_OK)
		goto unlock;
	err = stor__map_put(&kv->txmap, txid, (uint64_t)(uintptr_t)tx);
	if (err != DTX_OK)
		goto unlock;
	err = stor__tx_install(kv, tx);
	if (err == DTX_OK) {
		err = stor_wal_append(
		    kv->wal, STOR__REC_PREPARE, rec.p, rec.len, false, &l);
		if (err != DTX_OK)
			stor__tx_release(kv, tx);
	}
	if (err != DTX_OK) {
		stor__map_del(&kv->txmap, txid);
		goto unlock;
	}
	tx->lsn = l;
	stor__tx_link(kv, tx);
	tx = NULL;
unlock:
	return stor__txn_end(kv, tx, &rec, t, err, l, lsn);
}

dtx_err
stor_txn_prepare(stor_txn *t, uint64_t txid, const stor_prep_meta *meta)
{
	stor_kv *kv = t != NULL ? t->kv : NULL;
	uint64_t lsn;
	dtx_err err = stor_txn_prepare_async(t, txid, meta, &lsn);
	if (err == DTX_OK)
		err = stor_wal_sync(kv->wal, lsn);
	return err;
}

static dtx_err
log_txid_ts(stor_kv *kv, uint8_t type, uint64_t txid, clk_ts ts, uint64_t *lsn)
{
	uint8_t b[16];
	dtx_put_le64(b, txid);
	dtx_put_le64(b + 8, ts);
	return stor_wal_append(kv->wal, type, b, sizeof(b), false, lsn);
}

dtx_err
stor_kv_precommit(stor_kv *kv, uint64_t txid, clk_ts commit_ts)
{
	uint64_t lsn = 0;
	dtx_err err = stor_kv_precommit_async(kv, txid, commit_ts, &lsn);
	if (err == DTX_OK && lsn != 0)
		err = stor_wal_sync(kv->wal, lsn);
	return err;
}

dtx_err
stor_kv_precommit_async(
    stor_kv *kv, uint64_t txid, clk_ts commit_ts, uint64_t *lsnp)
{
	if (kv == NULL || txid == 0 || commit_ts == 0 || lsnp == NULL)
		return DTX_EINVAL;
	uint64_t lsn = 0;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	stor__tx *tx = stor__tx_get(kv, txid);
	if (tx == NULL) {
		err = DTX_ENOENT;
	} else if (tx->committing ||
	    (tx->state == STOR_TX_PRECOMMITTED && tx->commit_ts == commit_ts)) {
		err = DTX_OK; // a repeated PRECOMMIT or one overtaken by COMMIT
	} else if (commit_ts < tx->meta.prepare_ts) {
		err = DTX_EINVAL;
	} else {
		err =
		    log_txid_ts(kv, STOR__REC_PRECOMMIT, txid, commit_ts, &lsn);
		if (err == DTX_OK) {
			tx->state = STOR_TX_PRECOMMITTED;
			tx->commit_ts = commit_ts;
		}
	}
	pthread_mutex_unlock(&kv->mu);
	if (err == DTX_OK)
		*lsnp = lsn;
	return err;
}

dtx_err
stor_kv_commit_async(
    stor_kv *kv, uint64_t txid, clk_ts commit_ts, uint64_t *lsn)
{
	if (kv == NULL || txid == 0 || commit_ts == 0 ||
	    commit_ts == CLK_TS_MAX)
		return DTX_EINVAL;
	uint64_t l = 0;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	stor__tx *tx = stor__tx_get(kv, txid);
	if (tx == NULL) {
		// A heuristic decision outlives the remembered outcome.
		const stor__out *o = stor__outcome_get(kv, txid);
		const stor_heur *h =
		    o == NULL ? stor__heur_find(kv, txid) : NULL;
		stor_tx_state st = o != NULL ? (stor_tx_state)o->state
		    : h != NULL              ? h->outcome
		                             : STOR_TX_UNKNOWN;
		err = st == STOR_TX_UNKNOWN ? DTX_ENOENT
		    : st == STOR_TX_ABORTED ? DTX_ECONFLICT
		                            : DTX_OK;
	} else if (tx->committing) {
		l = tx->commit_lsn;
	} else if (commit_ts < tx->meta.prepare_ts) {
		err = DTX_EINVAL;
	} else {
		err = log_txid_ts(kv, STOR__REC_COMMIT, txid, commit_ts, &l);
		if (err == DTX_OK) {
			tx->committing = true;
			tx->commit_ts = commit_ts;
			tx->commit_lsn = l;
			stor__cq_push(kv, tx);
		}
	}
	pthread_mutex_unlock(&kv->mu);
	if (err == DTX_OK && lsn != NULL)
		*lsn = l;
	return err;
}

dtx_err
stor_kv_commit(stor_kv *kv, uint64_t txid, clk_ts commit_ts)
{
	uint64_t lsn;
	dtx_err err = stor_kv_commit_async(kv, txid, commit_ts, &lsn);
	if (err == DTX_OK)
		err = stor_kv_sync(kv, lsn);
	return err;
}

dtx_err
stor_kv_abort(stor_kv *kv, uint64_t txid)
{
	if (kv == NULL || txid == 0)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	stor__tx *tx = stor__tx_get(kv, txid);
	const stor__out *o = tx == NULL ? stor__outcome_get(kv, txid) : NULL;
	if (tx != NULL && tx->committing) {
		err = DTX_ECONFLICT;
	} else if (o != NULL) {
		err = o->state == STOR_TX_COMMITTED ? DTX_ECONFLICT : DTX_OK;
	} else if (tx == NULL && stor__heur_find(kv, txid) != NULL) {
		err = stor__heur_find(kv, txid)->outcome == STOR_TX_COMMITTED
		    ? DTX_ECONFLICT
		    : DTX_OK;
	} else {
		err = log_txid_ts(kv, STOR__REC_ABORT, txid, 0, NULL);
		if (err == DTX_OK) {
			if (tx != NULL)
				stor__tx_drop(kv, tx);
			stor__outcome_put(
			    kv, txid, STOR_TX_ABORTED, 0, stor__wall_ms());
		}
	}
	pthread_mutex_unlock(&kv->mu);
	return err;
}

dtx_err
stor_kv_tx_state(
    stor_kv *kv, uint64_t txid, stor_tx_state *state, clk_ts *commit_ts)
{
	if (kv == NULL || state == NULL || txid == 0)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	uint64_t v;
	stor_tx_state st = STOR_TX_UNKNOWN;
	clk_ts ts = 0;
	if (stor__map_get(&kv->txmap, txid, &v)) {
		const stor__tx *tx = (const stor__tx *)(uintptr_t)v;
		st = tx->committing ? STOR_TX_COMMITTED : tx->state;
		ts = st == STOR_TX_PREPARED ? 0 : tx->commit_ts;
	} else {
		const stor__out *o = stor__outcome_get(kv, txid);
		const stor_heur *h = stor__heur_find(kv, txid);
		if (o == NULL && h != NULL) {
			st = h->outcome;
			ts = h->commit_ts;
		} else if (o == NULL) {
			err = DTX_ENOENT;
		} else {
			st = (stor_tx_state)o->state;
			ts = o->commit_ts;
		}
	}
	pthread_mutex_unlock(&kv->mu);
	if (err == DTX_OK) {
		*state = st;
		if (commit_ts != NULL)
			*commit_ts = ts;
	}
	return err;
}

static int
cmp_indoubt(const void *a, const void *b)
{
	uint64_t x = ((const stor_indoubt *)a)->txid;
	uint64_t y = ((const stor_indoubt *)b)->txid;
	return x < y ? -1 : x > y;
}

// The stor_indoubt entry of tx, a distributed transaction not yet
// committing.
static stor_indoubt
indoubt_of(const stor__tx *tx)
{
	return (stor_indoubt) { .txid = tx->txid,
		.state = tx->state,
		.commit_ts =
		    tx->state == STOR_TX_PRECOMMITTED ? tx->commit_ts : 0,
		.lsn = tx->lsn,
		.nwrites = (uint32_t)tx->nw,
		.meta = tx->meta };
}

dtx_err
stor_kv_indoubt(stor_kv *kv, stor_indoubt **list, size_t *n)
{
	if (kv == NULL || list == NULL || n == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	size_t cnt = 0;
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all)
		if (tx->kind == STOR__TX_DIST && !tx->committing)
			cnt++;
	stor_indoubt *out = NULL;
	if (cnt > 0) {
		out = dtx_calloc(cnt, sizeof(*out));
		if (out == NULL) {
			pthread_mutex_unlock(&kv->mu);
			return DTX_ENOMEM;
		}
	}
	size_t i = 0;
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all) {
		if (tx->kind != STOR__TX_DIST || tx->committing)
			continue;
		out[i++] = indoubt_of(tx);
	}
	pthread_mutex_unlock(&kv->mu);
	if (cnt > 1)
		qsort(out, cnt, sizeof(*out), cmp_indoubt);
	*list = out;
	*n = cnt;
	return DTX_OK;
}

dtx_err
stor_kv_indoubt_find(stor_kv *kv, uint64_t txid, stor_indoubt *out)
{
	if (kv == NULL || out == NULL || txid == 0)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	uint64_t v;
	dtx_err err = DTX_ENOENT;
	if (stor__map_get(&kv->txmap, txid, &v)) {
		const stor__tx *tx = (const stor__tx *)(uintptr_t)v;
		if (!tx->committing) {
			*out = indoubt_of(tx);
			err = DTX_OK;
		}
	}
	pthread_mutex_unlock(&kv->mu);
	return err;
}
