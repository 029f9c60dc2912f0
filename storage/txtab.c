// SPDX-License-Identifier: MIT
//
// The transaction table: every transaction holding intents (a prepared
// distributed transaction, or a local commit waiting to become durable),
// installing and releasing its intents, the queue of committing
// transactions in LSN order, and applying them as versions once the WAL
// reports them durable (the store's durability hook), for which
// stor_kv_sync waits.

#include "storage_int.h"

void
stor__tx_free(stor__tx *tx)
{
	if (tx == NULL)
		return;
	for (size_t i = 0; i < tx->nw; i++) {
		dtx_free(tx->w[i].key);
		dtx_free(tx->w[i].ver);
	}
	dtx_free(tx->w);
	for (size_t i = 0; i < tx->nbars; i++)
		dtx_free(tx->bars[i].gid);
	dtx_free(tx->bars);
	dtx_free(tx);
}

void
stor__tx_link(stor_kv *kv, stor__tx *tx)
{
	tx->next_all = kv->txs;
	if (kv->txs != NULL)
		kv->txs->prev_all = &tx->next_all;
	tx->prev_all = &kv->txs;
	kv->txs = tx;
}

void
stor__tx_unlink(stor_kv *kv, stor__tx *tx)
{
	(void)kv;
	*tx->prev_all = tx->next_all;
	if (tx->next_all != NULL)
		tx->next_all->prev_all = tx->prev_all;
	tx->next_all = NULL;
	tx->prev_all = NULL;
}

void
stor__cq_push(stor_kv *kv, stor__tx *tx)
{
	tx->next_q = NULL;
	if (kv->cq_head == NULL)
		kv->cq_tail = &kv->cq_head;
	*kv->cq_tail = tx;
	kv->cq_tail = &tx->next_q;
}

dtx_err
stor__tx_install(stor_kv *kv, stor__tx *tx)
{
	for (size_t i = 0; i < tx->nw; i++) {
		stor__ent *e =
		    stor__tab_get(&kv->tab, tx->w[i].key, tx->w[i].klen);
		if (e == NULL || (e->intent != NULL && e->intent != tx)) {
			for (size_t j = 0; j < i; j++) {
				tx->w[j].ent->intent = NULL;
				tx->w[j].ent = NULL;
				kv->nintents--;
			}
			return e == NULL ? DTX_ENOMEM : DTX_ECONFLICT;
		}
		e->intent = tx;
		tx->w[i].ent = e;
		kv->nintents++;
	}
	return DTX_OK;
}

void
stor__tx_release(stor_kv *kv, stor__tx *tx)
{
	for (size_t i = 0; i < tx->nw; i++) {
		stor__ent *e = tx->w[i].ent;
		if (e != NULL && e->intent == tx) {
			e->intent = NULL;
			kv->nintents--;
		}
		tx->w[i].ent = NULL;
	}
}

void
stor__tx_apply(stor_kv *kv, stor__tx *tx)
{
	for (size_t i = 0; i < tx->nw; i++) {
		stor__w *w = &tx->w[i];
		if (w->ent == NULL) {
			// Replay of a record whose intents were never
			// installed cannot happen; keep memory safe anyway.
			continue;
		}
		w->ver->ts = tx->commit_ts;
		stor__ver_insert(kv, w->ent, w->ver);
		w->ver = NULL;
	}
	stor__tx_release(kv, tx);
	stor__bar_settle(kv, tx->bars, tx->nbars, true);
	if (tx->kind == STOR__TX_DIST) {
		stor__map_del(&kv->txmap, tx->txid);
		stor__outcome_put(kv, tx->txid, STOR_TX_COMMITTED,
		    tx->commit_ts, stor__wall_ms());
	}
	stor__tx_unlink(kv, tx);
	stor__tx_free(tx);
}

void
stor__tx_drop(stor_kv *kv, stor__tx *tx)
{
	stor__tx_release(kv, tx);
	stor__bar_settle(kv, tx->bars, tx->nbars, false);
	if (tx->kind == STOR__TX_DIST)
		stor__map_del(&kv->txmap, tx->txid);
	if (tx->prev_all != NULL)
		stor__tx_unlink(kv, tx);
	stor__tx_free(tx);
}

stor__tx *
stor__tx_get(stor_kv *kv, uint64_t txid)
{
	uint64_t v;
	if (!stor__map_get(&kv->txmap, txid, &v))
		return NULL;
	return (stor__tx *)(uintptr_t)v;
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

dtx_err
stor_kv_sync(stor_kv *kv, uint64_t lsn)
{
	if (kv == NULL)
		return DTX_EINVAL;
	return lsn == 0 ? DTX_OK : stor_wal_sync(kv->wal, lsn);
}
