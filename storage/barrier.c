// SPDX-License-Identifier: MIT
//
// Saga barriers (DESIGN rule 13): the store's table of (gid, branch, op)
// records with its hash index and per-gid chains, settling the pending
// barriers of a local commit once its record is durable (or dropping them
// when it failed), and collecting barriers by gid or by age, logged as
// BARGC records.

#include <string.h>

#include "storage_int.h"

static uint64_t
bar_key(const uint8_t *gid, size_t glen, int64_t branch, uint8_t op)
{
	uint64_t h = stor__hash(gid, glen);
	h = (h << 32) ^ ((uint64_t)branch * 0x9E3779B97F4A7C15ULL) ^ op;
	return h == 0 ? 1 : h;
}

bool
stor__bar_is(const stor__bar *b, const uint8_t *gid, size_t glen,
    int64_t branch, uint8_t op)
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
	if (stor__bar_is(&kv->bars[v - 1], gid, glen, branch, op))
		return (ptrdiff_t)(v - 1);
	// Two barriers share a hash (rare, counted in bar_dups): the one the
	// map does not point to is found by a plain scan.
	for (size_t i = 0; kv->bar_dups > 0 && i < kv->nbars; i++)
		if (stor__bar_is(&kv->bars[i], gid, glen, branch, op))
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

void
stor__bar_settle(stor_kv *kv, const stor__bar *bars, size_t n, bool keep)
{
	for (size_t i = 0; i < n; i++) {
		const stor__bar *b = &bars[i];
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
stor__bar_gc_apply(
    stor_kv *kv, const uint8_t *gid, size_t glen, uint64_t cutoff, size_t *n)
{
	size_t cnt = 0;
	if (glen > 0) {
		// A saga's barriers are chained by gid: no scan of the table.
		ptrdiff_t at;
		while ((at = stor__bar_first_of(kv, gid, glen, true)) >= 0) {
			stor__bar_remove_at(kv, (size_t)at);
			cnt++;
		}
		if (n != NULL)
			*n = cnt;
		return;
	}
	for (size_t i = 0; i < kv->nbars;) {
		const stor__bar *b = &kv->bars[i];
		bool hit = !b->pending &&
		    (glen > 0
		            ? b->glen == glen && memcmp(b->gid, gid, glen) == 0
		            : b->wall_ms < cutoff);
		if (hit) {
			stor__bar_remove_at(kv, i);
			cnt++;
		} else {
			i++;
		}
	}
	if (n != NULL)
		*n = cnt;
}

dtx_err
stor_kv_barrier_gc(
    stor_kv *kv, const char *gid, uint64_t older_than_ms, size_t *removed)
{
	if (kv == NULL)
		return DTX_EINVAL;
	size_t glen = gid != NULL ? strlen(gid) : 0;
	if (gid != NULL && (glen == 0 || glen > STOR_GID_MAX))
		return DTX_EINVAL;
	uint64_t now = stor__wall_ms();
	uint64_t cutoff = now > older_than_ms ? now - older_than_ms : 0;
	uint8_t hdr[4];
	dtx_put_le32(hdr, (uint32_t)glen);
	dtx_buf rec = { 0 };
	dtx_buf_put(&rec, hdr, 4);
	dtx_buf_put(&rec, gid, glen);
	dtx_buf_u64(&rec, cutoff);
	if (rec.oom) {
		dtx_buf_fini(&rec);
		return DTX_ENOMEM;
	}
	pthread_mutex_lock(&kv->mu);
	dtx_err err = stor_wal_append(
	    kv->wal, STOR__REC_BARGC, rec.p, rec.len, false, NULL);
	size_t n = 0;
	if (err == DTX_OK)
		stor__bar_gc_apply(kv, (const uint8_t *)gid, glen, cutoff, &n);
	pthread_mutex_unlock(&kv->mu);
	dtx_buf_fini(&rec);
	if (err == DTX_OK && removed != NULL)
		*removed = n;
	return err;
}

dtx_err
stor_kv_barrier_gc_every(
    stor_kv *kv, uint64_t older_than_ms, uint64_t every_ms, size_t *removed)
{
	if (kv == NULL)
		return DTX_EINVAL;
	uint64_t now = stor__wall_ms();
	pthread_mutex_lock(&kv->mu);
	// A wall clock that stepped back also counts as due.
	bool due =
	    now - kv->bar_gc_wall_ms >= every_ms || now < kv->bar_gc_wall_ms;
	if (due)
		kv->bar_gc_wall_ms = now;
	pthread_mutex_unlock(&kv->mu);
	if (!due) {
		if (removed != NULL)
			*removed = 0;
		return DTX_OK;
	}
	return stor_kv_barrier_gc(kv, NULL, older_than_ms, removed);
}
