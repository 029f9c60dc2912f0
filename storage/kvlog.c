// SPDX-License-Identifier: MIT
//
// Replay of the store's WAL records on open (the WAL's record hook): local
// commits applied as versions with their barriers, prepared transactions
// reloaded with their intents, their decisions, and barrier collections.

#include <inttypes.h>
#include <string.h>

#include "storage_int.h"

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
	stor__writes_free(w, nw);
	if (err != DTX_OK)
		return err;
	uint32_t nb = dtx_rd_u32(r);
	if (r->bad)
		return DTX_ECORRUPT;
	for (uint32_t i = 0; i < nb && err == DTX_OK; i++) {
		stor__bar b;
		err = stor__dec_bar(r, &b);
		if (err == DTX_OK)
			err = stor__bar_add(kv, &b);
	}
	return err;
}

// Reloads one prepared transaction with its intents.
dtx_err
stor__load_prepared(stor_kv *kv, dtx_rd *r, uint64_t txid, stor_tx_state st,
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

dtx_err
stor__heur_replay(stor_kv *kv, dtx_rd *r)
{
	uint64_t txid = dtx_rd_u64(r);
	uint8_t kind = dtx_rd_u8(r);
	if (r->bad || txid == 0)
		return DTX_ECORRUPT;
	if (kind == 2) {
		uint8_t co = dtx_rd_u8(r), v = dtx_rd_u8(r);
		uint64_t wall = dtx_rd_u64(r);
		stor_heur *h = stor__heur_find(kv, txid);
		if (r->bad || h == NULL ||
		    (co != STOR_TX_COMMITTED && co != STOR_TX_ABORTED) ||
		    v !=
		        (co == h->outcome ? STOR_HEUR_AGREED
		                          : STOR_HEUR_HAZARD))
			return DTX_ECORRUPT;
		h->coord_outcome = (stor_tx_state)co;
		h->verdict = (stor_heur_verdict)v;
		h->verdict_wall_ms = wall;
		return DTX_OK;
	}
	stor_heur h = { .txid = txid };
	if (kind != 1 || stor__heur_dec(r, &h) != DTX_OK)
		return DTX_ECORRUPT;
	stor__tx *tx = stor__tx_get(kv, txid);
	bool commit = h.outcome == STOR_TX_COMMITTED;
	if (tx == NULL || tx->committing ||
	    (commit && h.commit_ts < tx->meta.prepare_ts))
		return DTX_ECORRUPT;
	dtx_err err = stor__heur_add(kv, &h);
	if (err != DTX_OK)
		return err;
	if (commit) {
		tx->commit_ts = h.commit_ts;
		stor__tx_apply(kv, tx);
	} else {
		stor__tx_drop(kv, tx);
		stor__outcome_put(kv, txid, STOR_TX_ABORTED, 0, h.wall_ms);
	}
	return DTX_OK;
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
		err = r.bad ? DTX_ECORRUPT
		            : stor__load_prepared(
		                  kv, &r, txid, STOR_TX_PREPARED, 0, lsn);
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
	case STOR__REC_HEUR:
		err = stor__heur_replay(kv, &r);
		break;
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
