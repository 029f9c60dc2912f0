// SPDX-License-Identifier: MIT
//
// Local transactions (stor_txn): reads through a pinned snapshot, buffered
// writes, barrier checks and puts, first-committer-wins validation and the
// local commit. The validation and the hand-over of the write set to a
// stor__tx are shared with txdist.c's PREPARE.

#include <string.h>

#include "storage_int.h"

dtx_err
stor_txn_begin(stor_kv *kv, clk_ts snap, stor_txn **out)
{
	if (kv == NULL || out == NULL || snap == 0)
		return DTX_EINVAL;
	stor_txn *t = dtx_calloc(1, sizeof(*t));
	if (t == NULL)
		return DTX_ENOMEM;
	t->kv = kv;
	t->snap = snap;
	if (snap != CLK_TS_MAX) {
		dtx_err err = stor_kv_snap_pin(kv, snap, &t->pin);
		if (err != DTX_OK) {
			dtx_free(t);
			return err;
		}
	}
	*out = t;
	return DTX_OK;
}

static void
bars_free(stor__bar *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dtx_free(b[i].gid);
	dtx_free(b);
}

void
stor__txn_free(stor_txn *t)
{
	if (t->pin != 0)
		stor_kv_snap_unpin(t->kv, t->pin);
	for (size_t i = 0; i < t->nw; i++) {
		dtx_free(t->w[i].key);
		dtx_free(t->w[i].ver);
	}
	dtx_free(t->w);
	stor__map_fini(&t->idx);
	bars_free(t->puts, t->nputs);
	bars_free(t->chk, t->nchk);
	dtx_free(t);
}

void
stor_txn_abort(stor_txn *t)
{
	if (t != NULL)
		stor__txn_free(t);
}

static uint64_t
w_key(const void *key, size_t klen)
{
	return ((uint64_t)stor__hash(key, klen) << 32) | (uint64_t)(klen + 1);
}

static bool
w_is(const stor__w *w, const void *key, size_t klen)
{
	return w->klen == klen && (klen == 0 || memcmp(w->key, key, klen) == 0);
}

static ptrdiff_t
w_find(const stor_txn *t, const void *key, size_t klen)
{
	uint64_t v;
	if (!stor__map_get(&t->idx, w_key(key, klen), &v))
		return -1;
	if (w_is(&t->w[v - 1], key, klen))
		return (ptrdiff_t)(v - 1);
	for (size_t i = 0; i < t->nw; i++)
		if (w_is(&t->w[i], key, klen))
			return (ptrdiff_t)i;
	return -1;
}

// Adds key to the touched set with base ts; returns its index or -1 when
// out of memory.
static ptrdiff_t
w_add(stor_txn *t, const void *key, size_t klen, clk_ts base)
{
	if (DTX_GROW(t->w, t->nw, t->wcap, 8) != DTX_OK)
		return -1;
	uint8_t *k = dtx_alloc(klen);
	if (k == NULL)
		return -1;
	if (klen > 0)
		memcpy(k, key, klen);
	uint64_t hk = w_key(key, klen);
	if (!stor__map_get(&t->idx, hk, NULL) &&
	    stor__map_put(&t->idx, hk, t->nw + 1) != DTX_OK) {
		dtx_free(k);
		return -1;
	}
	t->w[t->nw] =
	    (stor__w) { .key = k, .klen = (uint32_t)klen, .base = base };
	return (ptrdiff_t)t->nw++;
}

static clk_ts
newest_ts(const stor__ent *e)
{
	return e != NULL && e->head != NULL ? e->head->ts : 0;
}

dtx_err
stor_txn_get(stor_txn *t, const void *key, size_t klen, void **val,
    size_t *vlen, stor_blocker *blk)
{
	if (t == NULL || (key == NULL && klen > 0) || klen > STOR_KEY_MAX ||
	    val == NULL || vlen == NULL)
		return DTX_EINVAL;
	ptrdiff_t i = w_find(t, key, klen);
	if (i >= 0 && t->w[i].write) {
		const stor__ver *v = t->w[i].ver;
		if (v->tomb)
			return DTX_ENOENT;
		void *copy = NULL;
		if (v->len > 0 && (copy = dtx_memdup(v->val, v->len)) == NULL)
			return DTX_ENOMEM;
		*val = copy;
		*vlen = v->len;
		return DTX_OK;
	}
	stor_kv *kv = t->kv;
	pthread_mutex_lock(&kv->mu);
	const stor__ver *v;
	dtx_err err = stor__read(kv, key, klen, t->snap, &v, blk);
	clk_ts base = newest_ts(stor__tab_find(&kv->tab, key, klen));
	void *copy = NULL;
	if (err == DTX_OK && v != NULL && v->len > 0 &&
	    (copy = dtx_memdup(v->val, v->len)) == NULL)
		err = DTX_ENOMEM;
	size_t len = v != NULL && err == DTX_OK ? v->len : 0;
	bool found = err == DTX_OK && v != NULL;
	pthread_mutex_unlock(&kv->mu);
	if (err == DTX_OK && i < 0 && w_add(t, key, klen, base) < 0)
		err = DTX_ENOMEM;
	if (err != DTX_OK) {
		dtx_free(copy);
		return err;
	}
	if (!found)
		return DTX_ENOENT;
	*val = copy;
	*vlen = len;
	return DTX_OK;
}

dtx_err
stor_txn_get_i64(
    stor_txn *t, const void *key, size_t klen, int64_t *out, stor_blocker *blk)
{
	if (out == NULL)
		return DTX_EINVAL;
	void *v = NULL;
	size_t n = 0;
	dtx_err err = stor_txn_get(t, key, klen, &v, &n, blk);
	if (err == DTX_OK && n != 8)
		err = DTX_EINVAL;
	if (err == DTX_OK)
		*out = (int64_t)dtx_get_le64(v);
	dtx_free(v);
	return err;
}

static dtx_err
txn_write(stor_txn *t, const void *key, size_t klen, const void *val,
    size_t vlen, bool tomb)
{
	if (t == NULL || (key == NULL && klen > 0) || klen > STOR_KEY_MAX ||
	    (val == NULL && vlen > 0) || vlen > STOR_VAL_MAX)
		return DTX_EINVAL;
	stor__ver *v = stor__ver_new(val, vlen, tomb, 0);
	if (v == NULL)
		return DTX_ENOMEM;
	ptrdiff_t i = w_find(t, key, klen);
	if (i < 0) {
		stor_kv *kv = t->kv;
		pthread_mutex_lock(&kv->mu);
		clk_ts base = newest_ts(stor__tab_find(&kv->tab, key, klen));
		pthread_mutex_unlock(&kv->mu);
		i = w_add(t, key, klen, base);
		if (i < 0) {
			dtx_free(v);
			return DTX_ENOMEM;
		}
	}
	dtx_free(t->w[i].ver);
	t->w[i].ver = v;
	t->w[i].write = true;
	return DTX_OK;
}

dtx_err
stor_txn_put(
    stor_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
	return txn_write(t, key, klen, val, vlen, false);
}

dtx_err
stor_txn_put_i64(stor_txn *t, const void *key, size_t klen, int64_t v)
{
	uint8_t b[8];
	dtx_put_le64(b, (uint64_t)v);
	return txn_write(t, key, klen, b, 8, false);
}

dtx_err
stor_txn_del(stor_txn *t, const void *key, size_t klen)
{
	return txn_write(t, key, klen, NULL, 0, true);
}

static bool
bar_args_ok(const char *gid, stor_barrier_op op)
{
	size_t n = gid != NULL ? strlen(gid) : 0;
	return n >= 1 && n <= STOR_GID_MAX &&
	    (op == STOR_BARRIER_ACTION || op == STOR_BARRIER_COMPENSATE);
}

static dtx_err
bar_push(stor__bar **arr, size_t *n, size_t *cap, const char *gid,
    int64_t branch, stor_barrier_op op)
{
	if (DTX_GROW(*arr, *n, *cap, 4) != DTX_OK)
		return DTX_ENOMEM;
	size_t glen = strlen(gid);
	uint8_t *g = dtx_memdup(gid, glen);
	if (g == NULL)
		return DTX_ENOMEM;
	(*arr)[(*n)++] = (stor__bar) { .gid = g,
		.glen = (uint32_t)glen,
		.op = (uint8_t)op,
		.branch = branch };
	return DTX_OK;
}

static bool
bar_in(const stor__bar *arr, size_t n, const char *gid, int64_t branch,
    stor_barrier_op op)
{
	size_t glen = strlen(gid);
	for (size_t i = 0; i < n; i++)
		if (stor__bar_is(&arr[i], (const uint8_t *)gid, glen, branch,
		        (uint8_t)op))
			return true;
	return false;
}

dtx_err
stor_txn_barrier_get(stor_txn *t, const char *gid, int64_t branch,
    stor_barrier_op op, bool *exists)
{
	if (t == NULL || exists == NULL || !bar_args_ok(gid, op))
		return DTX_EINVAL;
	if (bar_in(t->puts, t->nputs, gid, branch, op)) {
		*exists = true;
		return DTX_OK;
	}
	stor_kv *kv = t->kv;
	pthread_mutex_lock(&kv->mu);
	ptrdiff_t at = stor__bar_find(
	    kv, (const uint8_t *)gid, strlen(gid), branch, (uint8_t)op);
	bool pending = at >= 0 && kv->bars[at].pending;
	pthread_mutex_unlock(&kv->mu);
	if (pending)
		return DTX_EAGAIN; // its local commit is being made durable
	if (at < 0 && !bar_in(t->chk, t->nchk, gid, branch, op)) {
		dtx_err err =
		    bar_push(&t->chk, &t->nchk, &t->chkcap, gid, branch, op);
		if (err != DTX_OK)
			return err;
	}
	*exists = at >= 0;
	return DTX_OK;
}

dtx_err
stor_txn_barrier_put(
    stor_txn *t, const char *gid, int64_t branch, stor_barrier_op op)
{
	if (t == NULL || !bar_args_ok(gid, op))
		return DTX_EINVAL;
	if (bar_in(t->puts, t->nputs, gid, branch, op))
		return DTX_OK;
	stor_kv *kv = t->kv;
	pthread_mutex_lock(&kv->mu);
	ptrdiff_t at = stor__bar_find(
	    kv, (const uint8_t *)gid, strlen(gid), branch, (uint8_t)op);
	pthread_mutex_unlock(&kv->mu);
	if (at >= 0)
		return DTX_EEXIST;
	return bar_push(&t->puts, &t->nputs, &t->putcap, gid, branch, op);
}

// Checks first-committer-wins and intents for every touched key, and that
// no barrier read as absent or about to be written exists. kv->mu held.
dtx_err
stor__txn_validate(stor_txn *t)
{
	stor_kv *kv = t->kv;
	for (size_t i = 0; i < t->nw; i++) {
		const stor__w *w = &t->w[i];
		const stor__ent *e = stor__tab_find(&kv->tab, w->key, w->klen);
		clk_ts newest = newest_ts(e);
		if (e != NULL && e->intent != NULL)
			return DTX_ECONFLICT;
		if (newest != w->base || (w->write && newest > t->snap))
			return DTX_ECONFLICT;
	}
	for (size_t i = 0; i < t->nchk; i++) {
		const stor__bar *b = &t->chk[i];
		if (stor__bar_find(kv, b->gid, b->glen, b->branch, b->op) >= 0)
			return DTX_ECONFLICT;
	}
	for (size_t i = 0; i < t->nputs; i++) {
		const stor__bar *b = &t->puts[i];
		if (stor__bar_find(kv, b->gid, b->glen, b->branch, b->op) >= 0)
			return DTX_ECONFLICT;
	}
	return DTX_OK;
}

// Moves t's writes (and barriers) into a new tx. Read-only keys are left in
// t to be freed with it.
stor__tx *
stor__txn_take(stor_txn *t, stor__txkind kind)
{
	size_t nw = 0;
	for (size_t i = 0; i < t->nw; i++)
		nw += t->w[i].write;
	stor__tx *tx = dtx_calloc(1, sizeof(*tx));
	stor__w *w = nw > 0 ? dtx_alloc(nw * sizeof(*w)) : NULL;
	if (tx == NULL || (nw > 0 && w == NULL)) {
		dtx_free(tx);
		dtx_free(w);
		return NULL;
	}
	size_t j = 0, k = 0;
	for (size_t i = 0; i < t->nw; i++) {
		if (t->w[i].write)
			w[j++] = t->w[i];
		else
			t->w[k++] = t->w[i];
	}
	t->nw = k;
	tx->kind = kind;
	tx->w = w;
	tx->nw = nw;
	if (kind == STOR__TX_LOCAL) {
		tx->bars = t->puts;
		tx->nbars = t->nputs;
		t->puts = NULL;
		t->nputs = t->putcap = 0;
	}
	return tx;
}

// Puts tx's pending barriers into the table. kv->mu held.
static dtx_err
bars_insert(stor_kv *kv, stor__tx *tx, uint64_t wall)
{
	for (size_t i = 0; i < tx->nbars; i++) {
		tx->bars[i].wall_ms = wall;
		stor__bar b = tx->bars[i];
		b.pending = true;
		dtx_err err = stor__bar_add(kv, &b);
		if (err != DTX_OK) {
			for (size_t j = 0; j < i; j++) {
				const stor__bar *c = &tx->bars[j];
				ptrdiff_t at = stor__bar_find(
				    kv, c->gid, c->glen, c->branch, c->op);
				if (at >= 0)
					stor__bar_remove_at(kv, (size_t)at);
			}
			return err;
		}
	}
	return DTX_OK;
}

// The end of an async commit or prepare, with kv->mu held: unlocks it,
// frees the transaction tx not handed over (may be NULL), rec and t, and
// on success writes lsn to *out (may be NULL). Returns err.
dtx_err
stor__txn_end(stor_kv *kv, stor__tx *tx, dtx_buf *rec, stor_txn *t, dtx_err err,
    uint64_t lsn, uint64_t *out)
{
	pthread_mutex_unlock(&kv->mu);
	stor__tx_free(tx);
	dtx_buf_fini(rec);
	stor__txn_free(t);
	if (err == DTX_OK && out != NULL)
		*out = lsn;
	return err;
}

dtx_err
stor_txn_commit_async(stor_txn *t, clk_ts commit_ts, uint64_t *lsn_out)
{
	if (t == NULL)
		return DTX_EINVAL;
	stor_kv *kv = t->kv;
	if (commit_ts == 0 || commit_ts == CLK_TS_MAX) {
		stor__txn_free(t);
		return DTX_EINVAL;
	}
	size_t nwrites = 0;
	for (size_t i = 0; i < t->nw; i++)
		nwrites += t->w[i].write;
	dtx_buf rec = { 0 };
	stor__tx *tx = NULL;
	uint64_t lsn = 0;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = stor_wal_status(kv->wal);
	if (err == DTX_OK)
		err = stor__txn_validate(t);
	if (err != DTX_OK || (nwrites == 0 && t->nputs == 0))
		goto unlock;
	tx = stor__txn_take(t, STOR__TX_LOCAL);
	if (tx == NULL) {
		err = DTX_ENOMEM;
		goto unlock;
	}
	tx->commit_ts = commit_ts;
	uint64_t wall = stor__wall_ms();
	for (size_t i = 0; i < tx->nbars; i++)
		tx->bars[i].wall_ms = wall;
	dtx_buf_u64(&rec, commit_ts);
	stor__enc_writes(&rec, tx->w, tx->nw);
	stor__enc_bars(&rec, tx->bars, tx->nbars);
	if ((err = stor__rec_check(&rec)) != DTX_OK)
		goto unlock;
	err = stor__tx_install(kv, tx);
	if (err != DTX_OK)
		goto unlock;
	err = bars_insert(kv, tx, wall);
	if (err != DTX_OK) {
		stor__tx_release(kv, tx);
		goto unlock;
	}
	err = stor_wal_append(
	    kv->wal, STOR__REC_LOCAL, rec.p, rec.len, false, &lsn);
	if (err != DTX_OK) {
		stor__tx_release(kv, tx);
		stor__bar_settle(kv, tx->bars, tx->nbars, false);
		goto unlock;
	}
	tx->committing = true;
	tx->commit_lsn = lsn;
	stor__tx_link(kv, tx);
	stor__cq_push(kv, tx);
	tx = NULL;
unlock:
	return stor__txn_end(kv, tx, &rec, t, err, lsn, lsn_out);
}

dtx_err
stor_txn_commit(stor_txn *t, clk_ts commit_ts)
{
	stor_kv *kv = t != NULL ? t->kv : NULL;
	uint64_t lsn = 0;
	dtx_err err = stor_txn_commit_async(t, commit_ts, &lsn);
	if (err == DTX_OK)
		err = stor_kv_sync(kv, lsn);
	return err;
}
