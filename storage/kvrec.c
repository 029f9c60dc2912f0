// SPDX-License-Identifier: MIT
//
// The store's record payloads: encoding and strict decoding of write sets,
// PREPARED metadata and barriers, shared by the files that append records
// (txlocal.c, txdist.c, barrier.c) and those that replay them (kvlog.c,
// ckpt.c). The payload layouts are documented in storage_int.h.

#include <string.h>

#include "storage_int.h"

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
	    (m->mode < STOR_MODE_2PC || m->mode > STOR_MODE_PC) ||
	    m->prepare_ts == 0)
		return DTX_ECORRUPT;
	for (uint32_t i = 0; i < m->npeers; i++)
		m->peers[i] = dtx_rd_u32(r);
	return r->bad ? DTX_ECORRUPT : DTX_OK;
}

void
stor__writes_free(stor__w *w, size_t n)
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
		stor__writes_free(w, i);
		return err;
	}
	*out = w;
	*nout = n;
	return DTX_OK;
}

dtx_err
stor__dec_bar(dtx_rd *r, stor__bar *b)
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

void
stor__enc_bars(dtx_buf *b, const stor__bar *bars, size_t n)
{
	dtx_buf_u32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		dtx_buf_u32(b, bars[i].glen);
		dtx_buf_put(b, bars[i].gid, bars[i].glen);
		dtx_buf_u64(b, (uint64_t)bars[i].branch);
		dtx_buf_u8(b, bars[i].op);
		dtx_buf_u64(b, bars[i].wall_ms);
	}
}

// Whether an encoded record can be appended: DTX_ENOMEM when its
// encoding ran out of memory, DTX_EINVAL when it is too large for the WAL.
dtx_err
stor__rec_check(const dtx_buf *rec)
{
	if (rec->oom)
		return DTX_ENOMEM;
	if (rec->len > STOR_WAL_MAX_RECORD)
		return DTX_EINVAL;
	return DTX_OK;
}
