// SPDX-License-Identifier: MIT
//
// Heuristic decisions kept for good: the table (an array, oldest first,
// with a txid -> index map) and the codec of a decision shared by the
// HEUR record and the checkpoint (layouts in storage_int.h and ckpt.c).

#include <string.h>

#include "storage_int.h"

stor_heur *
stor__heur_find(stor_kv *kv, uint64_t txid)
{
	uint64_t v;
	if (txid == 0 || !stor__map_get(&kv->heurmap, txid, &v))
		return NULL;
	return &kv->heurs[v - 1];
}

dtx_err
stor__heur_add(stor_kv *kv, const stor_heur *h)
{
	if (h->txid == 0 || stor__heur_find(kv, h->txid) != NULL)
		return DTX_ECORRUPT;
	if (kv->nheurs == kv->heur_cap) {
		size_t nc = kv->heur_cap ? kv->heur_cap * 2 : 16;
		stor_heur *p = dtx_alloc(nc * sizeof(*p));
		if (p == NULL)
			return DTX_ENOMEM;
		if (kv->nheurs > 0)
			memcpy(p, kv->heurs, kv->nheurs * sizeof(*p));
		dtx_free(kv->heurs);
		kv->heurs = p;
		kv->heur_cap = nc;
	}
	dtx_err err = stor__map_put(&kv->heurmap, h->txid, kv->nheurs + 1);
	if (err != DTX_OK)
		return err;
	kv->heurs[kv->nheurs++] = *h;
	return DTX_OK;
}

void
stor__heur_fini(stor_kv *kv)
{
	stor__map_fini(&kv->heurmap);
	dtx_free(kv->heurs);
	kv->heurs = NULL;
	kv->nheurs = kv->heur_cap = 0;
}

static void
enc_str(dtx_buf *b, const char *s)
{
	size_t n = strnlen(s, STOR_HEUR_STR_MAX);
	dtx_buf_u32(b, (uint32_t)n);
	dtx_buf_put(b, s, n);
}

void
stor__heur_enc(dtx_buf *b, const stor_heur *h)
{
	dtx_buf_u8(b, (uint8_t)h->outcome);
	dtx_buf_u64(b, h->commit_ts);
	dtx_buf_u64(b, h->wall_ms);
	dtx_buf_u32(b, h->by_node);
	enc_str(b, h->who);
	enc_str(b, h->why);
	stor__enc_meta(b, &h->meta);
}

static bool
dec_str(dtx_rd *r, char *out)
{
	uint32_t n;
	const uint8_t *p = dtx_rd_blob(r, STOR_HEUR_STR_MAX, &n);
	if (r->bad || memchr(p, 0, n) != NULL)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

dtx_err
stor__heur_dec(dtx_rd *r, stor_heur *h)
{
	uint8_t st = dtx_rd_u8(r);
	h->outcome = (stor_tx_state)st;
	h->commit_ts = dtx_rd_u64(r);
	h->wall_ms = dtx_rd_u64(r);
	h->by_node = dtx_rd_u32(r);
	if (r->bad || (st != STOR_TX_COMMITTED && st != STOR_TX_ABORTED) ||
	    (st == STOR_TX_COMMITTED) != (h->commit_ts != 0) ||
	    !dec_str(r, h->who) || !dec_str(r, h->why))
		return DTX_ECORRUPT;
	return stor__dec_meta(r, &h->meta);
}
