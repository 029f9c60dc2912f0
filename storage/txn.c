// SPDX-License-Identifier: MIT
//
// Transactions on the MVCC store: local first-committer-wins commits,
// distributed PREPARE with intents, PRECOMMIT, COMMIT and ABORT, the
// remembered outcomes that answer STATUS queries, and saga barriers.

#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

struct stor_txn {
	stor_kv *kv;
	clk_ts snap;
	uint64_t pin; // 0: not pinned (snap is CLK_TS_MAX)
	stor__w *w; // keys touched
	size_t nw, wcap;
	stor__map idx; // key hash -> index + 1 into w
	stor__bar *puts; // barriers to insert
	size_t nputs, putcap;
	stor__bar *chk; // barriers read as absent
	size_t nchk, chkcap;
};

uint64_t
stor__wall_ms(void)
{
	return dtx_wall_ns() / 1000000u;
}

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

// ---------------------------------------------------------------- tx

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

static void
release_intents(stor_kv *kv, stor__tx *tx)
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

static void
bars_settle(stor_kv *kv, stor__tx *tx, bool keep)
{
	for (size_t i = 0; i < tx->nbars; i++) {
		const stor__bar *b = &tx->bars[i];
		ptrdiff_t at =
		    stor__bar_find(kv, b->gid, b->glen, b->branch, b->op);
		if (at < 0)
			continue;
		if (keep)
			kv->bars[at].pending = false;
		else
			stor__bar_remove_at(kv, (size_t)at);
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
	release_intents(kv, tx);
	bars_settle(kv, tx, true);
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
	release_intents(kv, tx);
	bars_settle(kv, tx, false);
	if (tx->kind == STOR__TX_DIST)
		stor__map_del(&kv->txmap, tx->txid);
	if (tx->prev_all != NULL)
		stor__tx_unlink(kv, tx);
	stor__tx_free(tx);
}

// ---------------------------------------------------------------- outcomes

const stor__out *
stor__outcome_get(stor_kv *kv, uint64_t txid)
{
	uint64_t seq;
	if (!stor__map_get(&kv->outmap, txid, &seq))
		return NULL;
	size_t i = (kv->out_head + (size_t)(seq - kv->out_seq)) % kv->out_cap;
	return &kv->outs[i];
}

static void
outcome_pop(stor_kv *kv)
{
	const stor__out *o = &kv->outs[kv->out_head];
	uint64_t seq;
	if (stor__map_get(&kv->outmap, o->txid, &seq) && seq == kv->out_seq)
		stor__map_del(&kv->outmap, o->txid);
	kv->out_head = (kv->out_head + 1) % kv->out_cap;
	kv->out_n--;
	kv->out_seq++;
}

void
stor__outcome_put(
    stor_kv *kv, uint64_t txid, stor_tx_state st, clk_ts ts, uint64_t wall)
{
	if (kv->out_n == kv->out_cap && kv->out_cap < kv->opts.outcome_max) {
		size_t nc = kv->out_cap ? kv->out_cap * 2 : 256;
		if (nc > kv->opts.outcome_max)
			nc = kv->opts.outcome_max;
		stor__out *p = dtx_alloc(nc * sizeof(*p));
		if (p != NULL) {
			for (size_t i = 0; i < kv->out_n; i++)
				p[i] =
				    kv->outs[(kv->out_head + i) % kv->out_cap];
			dtx_free(kv->outs);
			kv->outs = p;
			kv->out_cap = nc;
			kv->out_head = 0;
		}
	}
	if (kv->out_cap == 0)
		return;
	if (kv->out_n == kv->out_cap)
		outcome_pop(kv);
	uint64_t seq = kv->out_seq + kv->out_n;
	if (stor__map_put(&kv->outmap, txid, seq) != DTX_OK) {
		DTX_LOG(DTX_LOG_WARN, "OUTCOMEOOM",
		    "cannot remember the outcome of txn %llu: out of memory",
		    (unsigned long long)txid);
		return;
	}
	size_t i = (kv->out_head + kv->out_n) % kv->out_cap;
	kv->outs[i] = (stor__out) {
		.txid = txid, .commit_ts = ts, .wall_ms = wall, .state = st
	};
	kv->out_n++;
}

void
stor_kv_outcome_gc(stor_kv *kv, uint64_t older_than_ms)
{
	if (kv == NULL)
		return;
	uint64_t now = stor__wall_ms();
	pthread_mutex_lock(&kv->mu);
	while (kv->out_n > 0 &&
	    now - kv->outs[kv->out_head].wall_ms > older_than_ms)
		outcome_pop(kv);
	pthread_mutex_unlock(&kv->mu);
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
		if (o == NULL) {
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

// ---------------------------------------------------------------- barriers

static uint64_t
bar_key(const uint8_t *gid, size_t glen, int64_t branch, uint8_t op)
{
	uint64_t h = stor__hash(gid, glen);
	h = (h << 32) ^ ((uint64_t)branch * 0x9E3779B97F4A7C15ULL) ^ op;
	return h == 0 ? 1 : h;
}

static bool
bar_is(const stor__bar *b, const uint8_t *gid, size_t glen, int64_t branch,
    uint8_t op)
{
	return b->glen == glen && b->branch == branch && b->op == op &&
	    memcmp(b->gid, gid, glen) == 0;
}

static uint64_t
gid_key(const uint8_t *gid, size_t glen)
{
	uint64_t h = ((uint64_t)stor__hash(gid, glen) << 32) | (uint32_t)glen;
	return h == 0 ? 1 : h;
}

ptrdiff_t
stor__bar_find(
    stor_kv *kv, const uint8_t *gid, size_t glen, int64_t branch, uint8_t op)
{
	uint64_t v;
	if (!stor__map_get(&kv->barmap, bar_key(gid, glen, branch, op), &v))
		return -1;
	if (bar_is(&kv->bars[v - 1], gid, glen, branch, op))
		return (ptrdiff_t)(v - 1);
	// Two barriers share a hash (rare, counted in bar_dups): the one the
	// map does not point to is found by a plain scan.
	for (size_t i = 0; kv->bar_dups > 0 && i < kv->nbars; i++)
		if (bar_is(&kv->bars[i], gid, glen, branch, op))
			return (ptrdiff_t)i;
	return -1;
}

ptrdiff_t
stor__bar_first_of(stor_kv *kv, const uint8_t *gid, size_t glen, bool settled)
{
	uint64_t v;
	if (!stor__map_get(&kv->gidmap, gid_key(gid, glen), &v))
		return -1;
	for (size_t i = (size_t)v; i != 0; i = kv->bars[i - 1].gnext) {
		const stor__bar *b = &kv->bars[i - 1];
		if (b->glen == glen && memcmp(b->gid, gid, glen) == 0 &&
		    !(settled && b->pending))
			return (ptrdiff_t)(i - 1);
	}
	return -1;
}

dtx_err
stor__bar_add(stor_kv *kv, const stor__bar *b)
{
	if (stor__bar_find(kv, b->gid, b->glen, b->branch, b->op) >= 0)
		return DTX_OK;
	if (DTX_GROW(kv->bars, kv->nbars, kv->bar_cap, 64) != DTX_OK)
		return DTX_ENOMEM;
	uint8_t *gid = dtx_memdup(b->gid, b->glen);
	if (gid == NULL)
		return DTX_ENOMEM;
	uint64_t k = bar_key(b->gid, b->glen, b->branch, b->op);
	uint64_t gk = gid_key(b->gid, b->glen), head = 0;
	bool dup = stor__map_get(&kv->barmap, k, NULL);
	(void)stor__map_get(&kv->gidmap, gk, &head);
	if (stor__map_put(&kv->gidmap, gk, kv->nbars + 1) != DTX_OK) {
		dtx_free(gid);
		return DTX_ENOMEM;
	}
	if (!dup && stor__map_put(&kv->barmap, k, kv->nbars + 1) != DTX_OK) {
		// Undo the chain head: the barrier is not added.
		if (head != 0)
			(void)stor__map_put(&kv->gidmap, gk, head);
		else
			stor__map_del(&kv->gidmap, gk);
		dtx_free(gid);
		return DTX_ENOMEM;
	}
	kv->bar_dups += dup;
	kv->bars[kv->nbars] = *b;
	kv->bars[kv->nbars].gid = gid;
	kv->bars[kv->nbars].gnext = (size_t)head;
	kv->nbars++;
	return DTX_OK;
}

// Replaces the link to barrier index + 1 from in its gid's chain (the
// chain head or the barrier before it) with to.
static void
gid_relink(stor_kv *kv, const stor__bar *b, size_t from, size_t to)
{
	uint64_t gk = gid_key(b->gid, b->glen), head;
	if (!stor__map_get(&kv->gidmap, gk, &head))
		return;
	if (head == from) {
		if (to != 0)
			(void)stor__map_put(&kv->gidmap, gk, to);
		else
			stor__map_del(&kv->gidmap, gk);
		return;
	}
	for (size_t i = (size_t)head; i != 0; i = kv->bars[i - 1].gnext) {
		if (kv->bars[i - 1].gnext == from) {
			kv->bars[i - 1].gnext = to;
			return;
		}
	}
}

void
stor__bar_remove_at(stor_kv *kv, size_t i)
{
	stor__bar *b = &kv->bars[i];
	uint64_t k = bar_key(b->gid, b->glen, b->branch, b->op), v;
	bool indexed = stor__map_get(&kv->barmap, k, &v) && v == i + 1;
	if (indexed)
		stor__map_del(&kv->barmap, k);
	else
		kv->bar_dups--;
	// Unlink it from its gid's chain (a put that replaces a key's value
	// never fails).
	gid_relink(kv, b, i + 1, b->gnext);
	dtx_free(b->gid);
	size_t last = kv->nbars - 1;
	if (i != last) {
		stor__bar *l = &kv->bars[last];
		uint64_t lk = bar_key(l->gid, l->glen, l->branch, l->op);
		gid_relink(kv, l, last + 1, i + 1);
		kv->bars[i] = *l;
		if (stor__map_get(&kv->barmap, lk, &v) && v == last + 1)
			(void)stor__map_put(&kv->barmap, lk, i + 1);
	}
	kv->nbars--;
	// A barrier that shared the removed one's hash is found only if the
	// map has its key again: re-index it.
	for (size_t j = 0; indexed && kv->bar_dups > 0 && j < kv->nbars; j++) {
		const stor__bar *c = &kv->bars[j];
		if (bar_key(c->gid, c->glen, c->branch, c->op) == k) {
			(void)stor__map_put(&kv->barmap, k, j + 1);
			kv->bar_dups--;
			break;
		}
	}
}

// ---------------------------------------------------------------- stor_txn

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

static void
txn_free(stor_txn *t)
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
		txn_free(t);
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
		if (bar_is(&arr[i], (const uint8_t *)gid, glen, branch,
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
static dtx_err
validate(stor_txn *t)
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
static stor__tx *
tx_from(stor_txn *t, stor__txkind kind)
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

static void
enc_bars(dtx_buf *b, const stor__bar *bars, size_t n)
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
static dtx_err
rec_check(const dtx_buf *rec)
{
	if (rec->oom)
		return DTX_ENOMEM;
	if (rec->len > STOR_WAL_MAX_RECORD)
		return DTX_EINVAL;
	return DTX_OK;
}

// The end of an async commit or prepare, with kv->mu held: unlocks it,
// frees the transaction tx not handed over (may be NULL), rec and t, and
// on success writes lsn to *out (may be NULL). Returns err.
static dtx_err
async_end(stor_kv *kv, stor__tx *tx, dtx_buf *rec, stor_txn *t, dtx_err err,
    uint64_t lsn, uint64_t *out)
{
	pthread_mutex_unlock(&kv->mu);
	stor__tx_free(tx);
	dtx_buf_fini(rec);
	txn_free(t);
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
		txn_free(t);
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
		err = validate(t);
	if (err != DTX_OK || (nwrites == 0 && t->nputs == 0))
		goto unlock;
	tx = tx_from(t, STOR__TX_LOCAL);
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
	enc_bars(&rec, tx->bars, tx->nbars);
	if ((err = rec_check(&rec)) != DTX_OK)
		goto unlock;
	err = stor__tx_install(kv, tx);
	if (err != DTX_OK)
		goto unlock;
	err = bars_insert(kv, tx, wall);
	if (err != DTX_OK) {
		release_intents(kv, tx);
		goto unlock;
	}
	err = stor_wal_append(
	    kv->wal, STOR__REC_LOCAL, rec.p, rec.len, false, &lsn);
	if (err != DTX_OK) {
		release_intents(kv, tx);
		bars_settle(kv, tx, false);
		goto unlock;
	}
	tx->committing = true;
	tx->commit_lsn = lsn;
	stor__tx_link(kv, tx);
	stor__cq_push(kv, tx);
	tx = NULL;
unlock:
	return async_end(kv, tx, &rec, t, err, lsn, lsn_out);
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

static bool
meta_ok(const stor_prep_meta *m)
{
	return m != NULL && m->prepare_ts != 0 && m->prepare_ts != CLK_TS_MAX &&
	    (m->mode == STOR_MODE_2PC || m->mode == STOR_MODE_3PC) &&
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
		txn_free(t);
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
		err = validate(t);
	if (err != DTX_OK)
		goto unlock;
	tx = tx_from(t, STOR__TX_DIST);
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
	if ((err = rec_check(&rec)) != DTX_OK)
		goto unlock;
	err = stor__map_put(&kv->txmap, txid, (uint64_t)(uintptr_t)tx);
	if (err != DTX_OK)
		goto unlock;
	err = stor__tx_install(kv, tx);
	if (err == DTX_OK) {
		err = stor_wal_append(
		    kv->wal, STOR__REC_PREPARE, rec.p, rec.len, false, &l);
		if (err != DTX_OK)
			release_intents(kv, tx);
	}
	if (err != DTX_OK) {
		stor__map_del(&kv->txmap, txid);
		goto unlock;
	}
	tx->lsn = l;
	stor__tx_link(kv, tx);
	tx = NULL;
unlock:
	return async_end(kv, tx, &rec, t, err, l, lsn);
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

// ---------------------------------------------------------------- outcomes

static stor__tx *
tx_get(stor_kv *kv, uint64_t txid)
{
	uint64_t v;
	if (!stor__map_get(&kv->txmap, txid, &v))
		return NULL;
	return (stor__tx *)(uintptr_t)v;
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
	if (kv == NULL || txid == 0 || commit_ts == 0)
		return DTX_EINVAL;
	uint64_t lsn = 0;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	stor__tx *tx = tx_get(kv, txid);
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
	if (err == DTX_OK && lsn != 0)
		err = stor_wal_sync(kv->wal, lsn);
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
	stor__tx *tx = tx_get(kv, txid);
	if (tx == NULL) {
		const stor__out *o = stor__outcome_get(kv, txid);
		err = o == NULL                   ? DTX_ENOENT
		    : o->state == STOR_TX_ABORTED ? DTX_ECONFLICT
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
	stor__tx *tx = tx_get(kv, txid);
	const stor__out *o = tx == NULL ? stor__outcome_get(kv, txid) : NULL;
	if (tx != NULL && tx->committing) {
		err = DTX_ECONFLICT;
	} else if (o != NULL) {
		err = o->state == STOR_TX_COMMITTED ? DTX_ECONFLICT : DTX_OK;
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
