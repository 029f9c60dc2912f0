// SPDX-License-Identifier: MIT
//
// The MVCC store's memory: an open-addressing table of keys, each with a
// newest-first chain of versions and at most one intent; snapshot reads,
// whole-store scans, snapshot pins and garbage collection of versions no
// snapshot can see. It knows a transaction only by the intent it holds
// on a key (see stor__tx_intent_ts).

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage_int.h"

// ---------------------------------------------------------------- hashing

static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint32_t
stor__hash(const void *key, size_t klen)
{
	const uint8_t *p = key;
	uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)klen;
	while (klen >= 8) {
		uint64_t x;
		memcpy(&x, p, 8);
		h = (h ^ x) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 29;
		p += 8;
		klen -= 8;
	}
	uint64_t x = 0;
	for (size_t i = 0; i < klen; i++)
		x |= (uint64_t)p[i] << (8 * i);
	h = mix64(h ^ x);
	return (uint32_t)(h ^ (h >> 32));
}

// ---------------------------------------------------------------- u64 map

static size_t
map_slot(uint64_t k, size_t mask)
{
	return (size_t)mix64(k) & mask;
}

static dtx_err
map_grow(stor__map *m)
{
	size_t ncap = m->mask ? (m->mask + 1) * 2 : 16;
	uint64_t *nk = dtx_calloc(ncap, sizeof(uint64_t));
	uint64_t *nv = dtx_calloc(ncap, sizeof(uint64_t));
	if (nk == NULL || nv == NULL) {
		dtx_free(nk);
		dtx_free(nv);
		return DTX_ENOMEM;
	}
	size_t nmask = ncap - 1;
	if (m->k != NULL) {
		for (size_t i = 0; i <= m->mask; i++) {
			if (m->k[i] == 0)
				continue;
			size_t j = map_slot(m->k[i], nmask);
			while (nk[j] != 0)
				j = (j + 1) & nmask;
			nk[j] = m->k[i];
			nv[j] = m->v[i];
		}
	}
	dtx_free(m->k);
	dtx_free(m->v);
	m->k = nk;
	m->v = nv;
	m->mask = nmask;
	return DTX_OK;
}

dtx_err
stor__map_put(stor__map *m, uint64_t k, uint64_t v)
{
	DTX_ASSERT(k != 0);
	if (m->k == NULL || (m->n + 1) * 2 > m->mask + 1) {
		dtx_err err = map_grow(m);
		// A full table cannot take the key; a half-full one still can.
		if (err != DTX_OK && (m->k == NULL || m->n + 1 > m->mask))
			return err;
	}
	size_t i = map_slot(k, m->mask);
	while (m->k[i] != 0 && m->k[i] != k)
		i = (i + 1) & m->mask;
	if (m->k[i] == 0)
		m->n++;
	m->k[i] = k;
	m->v[i] = v;
	return DTX_OK;
}

bool
stor__map_get(const stor__map *m, uint64_t k, uint64_t *v)
{
	if (m->k == NULL || k == 0)
		return false;
	size_t i = map_slot(k, m->mask);
	while (m->k[i] != 0) {
		if (m->k[i] == k) {
			if (v != NULL)
				*v = m->v[i];
			return true;
		}
		i = (i + 1) & m->mask;
	}
	return false;
}

bool
stor__map_del(stor__map *m, uint64_t k)
{
	if (m->k == NULL || k == 0)
		return false;
	size_t i = map_slot(k, m->mask);
	while (m->k[i] != k) {
		if (m->k[i] == 0)
			return false;
		i = (i + 1) & m->mask;
	}
	// Backward-shift deletion keeps every probe sequence unbroken.
	size_t j = i;
	for (;;) {
		j = (j + 1) & m->mask;
		if (m->k[j] == 0)
			break;
		size_t home = map_slot(m->k[j], m->mask);
		// Move j back to i unless its home lies cyclically in (i, j].
		bool stays =
		    i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		m->k[i] = m->k[j];
		m->v[i] = m->v[j];
		i = j;
	}
	m->k[i] = 0;
	m->v[i] = 0;
	m->n--;
	return true;
}

void
stor__map_fini(stor__map *m)
{
	dtx_free(m->k);
	dtx_free(m->v);
	memset(m, 0, sizeof(*m));
}

// ---------------------------------------------------------------- key table

static bool
ent_is(const stor__ent *e, uint32_t h, const void *key, size_t klen)
{
	return e->hash == h && e->klen == klen &&
	    (klen == 0 || memcmp(e->key, key, klen) == 0);
}

stor__ent *
stor__tab_find(const stor__tab *t, const void *key, size_t klen)
{
	if (t->slot == NULL)
		return NULL;
	uint32_t h = stor__hash(key, klen);
	size_t i = h & t->mask;
	for (stor__ent *e; (e = t->slot[i]) != NULL; i = (i + 1) & t->mask)
		if (ent_is(e, h, key, klen))
			return e;
	return NULL;
}

static dtx_err
tab_grow(stor__tab *t)
{
	size_t ncap = t->slot ? (t->mask + 1) * 2 : 1024;
	stor__ent **ns = dtx_calloc(ncap, sizeof(*ns));
	if (ns == NULL)
		return DTX_ENOMEM;
	size_t nmask = ncap - 1;
	if (t->slot != NULL) {
		for (size_t i = 0; i <= t->mask; i++) {
			stor__ent *e = t->slot[i];
			if (e == NULL)
				continue;
			size_t j = e->hash & nmask;
			while (ns[j] != NULL)
				j = (j + 1) & nmask;
			ns[j] = e;
		}
	}
	dtx_free(t->slot);
	t->slot = ns;
	t->mask = nmask;
	return DTX_OK;
}

dtx_err
stor__tab_reserve(stor__tab *t, size_t n)
{
	while (t->slot == NULL || (t->n + n) * 4 > (t->mask + 1) * 3) {
		dtx_err err = tab_grow(t);
		if (err != DTX_OK)
			return err;
	}
	return DTX_OK;
}

stor__ent *
stor__tab_get(stor__tab *t, const void *key, size_t klen)
{
	stor__ent *e = stor__tab_find(t, key, klen);
	if (e != NULL)
		return e;
	// Grow at a load of 3/4; a failed growth still leaves room below 7/8.
	if (t->slot == NULL || (t->n + 1) * 4 > (t->mask + 1) * 3) {
		if (tab_grow(t) != DTX_OK &&
		    (t->slot == NULL || (t->n + 1) * 8 > (t->mask + 1) * 7))
			return NULL;
	}
	e = dtx_alloc(sizeof(*e) + klen);
	if (e == NULL)
		return NULL;
	e->head = NULL;
	e->intent = NULL;
	e->hash = stor__hash(key, klen);
	e->klen = (uint32_t)klen;
	if (klen > 0)
		memcpy(e->key, key, klen);
	size_t i = e->hash & t->mask;
	while (t->slot[i] != NULL)
		i = (i + 1) & t->mask;
	t->slot[i] = e;
	t->n++;
	return e;
}

// Removes the entry at slot i (backward-shift) and frees it with its
// versions.
static void
tab_remove_at(stor_kv *kv, size_t i)
{
	stor__tab *t = &kv->tab;
	stor__ent *e = t->slot[i];
	for (stor__ver *v = e->head, *nx; v != NULL; v = nx) {
		nx = v->next;
		dtx_free(v);
		kv->nversions--;
	}
	dtx_free(e);
	size_t j = i;
	for (;;) {
		j = (j + 1) & t->mask;
		stor__ent *f = t->slot[j];
		if (f == NULL)
			break;
		size_t home = f->hash & t->mask;
		bool stays =
		    i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		t->slot[i] = f;
		i = j;
	}
	t->slot[i] = NULL;
	t->n--;
}

void
stor__tab_fini(stor__tab *t)
{
	if (t->slot != NULL) {
		for (size_t i = 0; i <= t->mask; i++) {
			stor__ent *e = t->slot[i];
			if (e == NULL)
				continue;
			for (stor__ver *v = e->head, *nx; v != NULL; v = nx) {
				nx = v->next;
				dtx_free(v);
			}
			dtx_free(e);
		}
	}
	dtx_free(t->slot);
	memset(t, 0, sizeof(*t));
}

// ---------------------------------------------------------------- versions

stor__ver *
stor__ver_new(const void *val, size_t len, bool tomb, clk_ts ts)
{
	stor__ver *v = dtx_alloc(sizeof(*v) + len);
	if (v == NULL)
		return NULL;
	v->next = NULL;
	v->ts = ts;
	v->len = (uint32_t)len;
	v->tomb = tomb;
	if (len > 0)
		memcpy(v->val, val, len);
	return v;
}

const stor__ver *
stor__visible(const stor__ent *e, clk_ts at)
{
	const stor__ver *v = e->head;
	while (v != NULL && v->ts > at)
		v = v->next;
	return v;
}

void
stor__ver_insert(stor_kv *kv, stor__ent *e, stor__ver *v)
{
	stor__ver **pp = &e->head;
	while (*pp != NULL && (*pp)->ts > v->ts)
		pp = &(*pp)->next;
	if (*pp != NULL && (*pp)->ts == v->ts) {
		// The same version again (a replayed record): replace it.
		stor__ver *old = *pp;
		v->next = old->next;
		*pp = v;
		dtx_free(old);
		return;
	}
	v->next = *pp;
	*pp = v;
	kv->nversions++;
}

// ---------------------------------------------------------------- reads

// True when tx's intent lies at or below ts, so that a read at ts must
// wait for it; *blk (may be NULL) then names it.
static bool
intent_blocks(const stor__tx *tx, clk_ts ts, stor_blocker *blk)
{
	clk_ts its = stor__tx_intent_ts(tx);
	if (its > ts)
		return false;
	if (blk != NULL) {
		blk->txid = tx->txid;
		blk->prepare_ts = its;
	}
	return true;
}

dtx_err
stor__read(stor_kv *kv, const void *key, size_t klen, clk_ts ts,
    const stor__ver **out, stor_blocker *blk)
{
	if (ts < kv->gc_horizon)
		return DTX_ERANGE;
	const stor__ent *e = stor__tab_find(&kv->tab, key, klen);
	if (e == NULL) {
		*out = NULL;
		return DTX_OK;
	}
	if (e->intent != NULL && intent_blocks(e->intent, ts, blk))
		return DTX_EAGAIN;
	const stor__ver *v = stor__visible(e, ts);
	*out = v != NULL && !v->tomb ? v : NULL;
	return DTX_OK;
}

// stor__read for the public getters, which report a missing or deleted
// key as DTX_ENOENT. Called with kv->mu held.
static dtx_err
read_live(stor_kv *kv, const void *key, size_t klen, clk_ts ts,
    const stor__ver **out, stor_blocker *blk)
{
	dtx_err err = stor__read(kv, key, klen, ts, out, blk);
	if (err == DTX_OK && *out == NULL)
		err = DTX_ENOENT;
	return err;
}

dtx_err
stor_kv_get(stor_kv *kv, const void *key, size_t klen, clk_ts ts, void **val,
    size_t *vlen, clk_ts *vts, stor_blocker *blk)
{
	if (kv == NULL || (key == NULL && klen > 0) || klen > STOR_KEY_MAX ||
	    val == NULL || vlen == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	const stor__ver *v;
	dtx_err err = read_live(kv, key, klen, ts, &v, blk);
	if (err == DTX_OK) {
		void *copy = NULL;
		if (v->len > 0 && (copy = dtx_memdup(v->val, v->len)) == NULL) {
			err = DTX_ENOMEM;
		} else {
			*val = copy;
			*vlen = v->len;
			if (vts != NULL)
				*vts = v->ts;
		}
	}
	pthread_mutex_unlock(&kv->mu);
	return err;
}

dtx_err
stor_kv_get_i64(stor_kv *kv, const void *key, size_t klen, clk_ts ts,
    int64_t *out, clk_ts *vts, stor_blocker *blk)
{
	if (kv == NULL || (key == NULL && klen > 0) || klen > STOR_KEY_MAX ||
	    out == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	const stor__ver *v;
	dtx_err err = read_live(kv, key, klen, ts, &v, blk);
	if (err == DTX_OK && v->len != 8)
		err = DTX_EINVAL;
	if (err == DTX_OK) {
		*out = (int64_t)dtx_get_le64(v->val);
		if (vts != NULL)
			*vts = v->ts;
	}
	pthread_mutex_unlock(&kv->mu);
	return err;
}

dtx_err
stor_kv_scan(
    stor_kv *kv, clk_ts ts, stor_scan_fn fn, void *arg, stor_blocker *blk)
{
	if (kv == NULL || fn == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	if (ts < kv->gc_horizon) {
		err = DTX_ERANGE;
		goto out;
	}
	// Intents are few next to keys: check them first so the scan is
	// all-or-nothing.
	for (const stor__tx *tx = kv->txs; tx != NULL; tx = tx->next_all) {
		if (intent_blocks(tx, ts, blk)) {
			err = DTX_EAGAIN;
			goto out;
		}
	}
	const stor__tab *t = &kv->tab;
	for (size_t i = 0; t->slot != NULL && i <= t->mask; i++) {
		const stor__ent *e = t->slot[i];
		if (e == NULL)
			continue;
		const stor__ver *v = stor__visible(e, ts);
		if (v == NULL || v->tomb)
			continue;
		err = fn(arg, e->key, e->klen, v->val, v->len, v->ts);
		if (err != DTX_OK)
			break;
	}
out:
	pthread_mutex_unlock(&kv->mu);
	return err;
}

// ---------------------------------------------------------------- pins, GC

// Wall-clock milliseconds: what outcomes and barriers record as their age.
uint64_t
stor__wall_ms(void)
{
	return dtx_wall_ns() / 1000000u;
}

dtx_err
stor_kv_snap_pin(stor_kv *kv, clk_ts ts, uint64_t *pin)
{
	if (kv == NULL || pin == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	dtx_err err = DTX_OK;
	if (ts < kv->gc_horizon) {
		err = DTX_ERANGE;
	} else {
		uint64_t id = ++kv->next_pin;
		err = stor__map_put(&kv->pins, id, ts);
		if (err == DTX_OK)
			*pin = id;
	}
	pthread_mutex_unlock(&kv->mu);
	return err;
}

void
stor_kv_snap_unpin(stor_kv *kv, uint64_t pin)
{
	if (kv == NULL)
		return;
	pthread_mutex_lock(&kv->mu);
	stor__map_del(&kv->pins, pin);
	pthread_mutex_unlock(&kv->mu);
}

clk_ts
stor__min_pinned(stor_kv *kv)
{
	clk_ts m = CLK_TS_MAX;
	const stor__map *p = &kv->pins;
	for (size_t i = 0; p->k != NULL && i <= p->mask; i++)
		if (p->k[i] != 0 && p->v[i] < m)
			m = p->v[i];
	return m;
}

dtx_err
stor_kv_gc(stor_kv *kv, clk_ts horizon, size_t *removed)
{
	if (kv == NULL)
		return DTX_EINVAL;
	pthread_mutex_lock(&kv->mu);
	clk_ts h = horizon;
	clk_ts pinned = stor__min_pinned(kv);
	if (pinned < h)
		h = pinned;
	size_t n = 0;
	stor__tab *t = &kv->tab;
	for (size_t i = 0; t->slot != NULL && i <= t->mask; i++) {
		stor__ent *e = t->slot[i];
		if (e == NULL)
			continue;
		stor__ver *keep = e->head;
		while (keep != NULL && keep->ts > h)
			keep = keep->next;
		if (keep == NULL) {
			// An entry left without versions by a failed write.
			if (e->head == NULL && e->intent == NULL) {
				tab_remove_at(kv, i);
				i--;
			}
			continue;
		}
		for (stor__ver *v = keep->next, *nx; v != NULL; v = nx) {
			nx = v->next;
			dtx_free(v);
			kv->nversions--;
			n++;
		}
		keep->next = NULL;
		if (keep == e->head && keep->tomb && e->intent == NULL) {
			n++;
			tab_remove_at(kv, i);
			i--; // re-examine the slot an entry may have moved into
		}
	}
	if (h > kv->gc_horizon && h != CLK_TS_MAX)
		kv->gc_horizon = h;
	pthread_mutex_unlock(&kv->mu);
	if (removed != NULL)
		*removed = n;
	return DTX_OK;
}
