// SPDX-License-Identifier: MIT
//
// The MVCC store's lifecycle: open (load the checkpoint, replay the WAL and
// reload the in-doubt transactions with their intents before anything is
// served), close, status and statistics. Only this file wires the
// lower layers' hooks into the WAL (see the layering in storage_int.h).

#include <inttypes.h>
#include <string.h>

#include "storage_int.h"

void
stor_kv_opts_init(stor_kv_opts *o)
{
	memset(o, 0, sizeof(*o));
	stor_wal_opts_init(&o->wal);
	o->outcome_max = 65536;
	o->outcome_ttl_ms = 600000;
	o->checkpoint_bytes = 64u << 20;
}

static void
kv_free(stor_kv *kv)
{
	while (kv->txs != NULL) {
		stor__tx *tx = kv->txs;
		stor__tx_unlink(kv, tx);
		stor__tx_free(tx);
	}
	stor__tab_fini(&kv->tab);
	stor__map_fini(&kv->txmap);
	stor__map_fini(&kv->outmap);
	stor__map_fini(&kv->pins);
	stor__map_fini(&kv->barmap);
	stor__map_fini(&kv->gidmap);
	dtx_free(kv->outs);
	for (size_t i = 0; i < kv->nbars; i++)
		dtx_free(kv->bars[i].gid);
	dtx_free(kv->bars);
	stor__heur_fini(kv);
	pthread_mutex_destroy(&kv->mu);
	dtx_free(kv);
}

dtx_err
stor_kv_open(const char *dir, const stor_kv_opts *opts, stor_kv **out)
{
	if (dir == NULL || out == NULL)
		return DTX_EINVAL;
	stor_kv *kv = dtx_calloc(1, sizeof(*kv));
	if (kv == NULL)
		return DTX_ENOMEM;
	pthread_mutex_init(&kv->mu, NULL);
	if (opts != NULL)
		kv->opts = *opts;
	else
		stor_kv_opts_init(&kv->opts);
	if (kv->opts.outcome_max == 0)
		kv->opts.outcome_max = 65536;
	kv->replaying = true;
	dtx_err err = stor__wal_open(dir, &kv->opts.wal, stor__load_ckpt,
	    stor__replay, kv, stor__on_durable, kv, &kv->wal);
	kv->replaying = false;
	if (err != DTX_OK) {
		kv_free(kv);
		return err;
	}
	stor_wal_stats ws;
	stor_wal_stats_get(kv->wal, &ws);
	kv->ckpt_wal_bytes = 0;
	size_t nd = 0;
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all)
		nd++;
	DTX_LOG(DTX_LOG_INFO, "KVOPEN",
	    "%s: %zu keys, %" PRIu64 " versions, %zu in-doubt transactions, "
	    "%" PRIu64 " records replayed after checkpoint LSN %" PRIu64,
	    dir, kv->tab.n, kv->nversions, nd, ws.replayed, ws.checkpoint_lsn);
	*out = kv;
	return DTX_OK;
}

void
stor_kv_close(stor_kv *kv)
{
	if (kv == NULL)
		return;
	// Closing the WAL flushes the last batch; its durability callback
	// applies waiting commits, so it must run before the memory goes.
	stor_wal_close(kv->wal);
	kv_free(kv);
}

dtx_err
stor_kv_status(stor_kv *kv)
{
	return kv == NULL ? DTX_EINVAL : stor_wal_status(kv->wal);
}

stor_wal *
stor_kv_wal(stor_kv *kv)
{
	return kv->wal;
}

void
stor_kv_stats_get(stor_kv *kv, stor_kv_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&kv->mu);
	out->keys = kv->tab.n;
	out->versions = kv->nversions;
	out->intents = kv->nintents;
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all)
		if (tx->kind == STOR__TX_DIST && !tx->committing)
			out->indoubt++;
	out->outcomes = kv->outmap.n;
	out->barriers = kv->nbars;
	out->gc_horizon = kv->gc_horizon;
	for (size_t i = 0; i < kv->nheurs; i++) {
		const stor_heur *h = &kv->heurs[i];
		out->heur_commits += h->outcome == STOR_TX_COMMITTED;
		out->heur_aborts += h->outcome == STOR_TX_ABORTED;
		out->heur_hazards += h->verdict == STOR_HEUR_HAZARD;
		out->heur_unconfirmed += h->verdict == STOR_HEUR_UNCONFIRMED;
	}
	pthread_mutex_unlock(&kv->mu);
	stor_wal_stats_get(kv->wal, &out->wal);
}
