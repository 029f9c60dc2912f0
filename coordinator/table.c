// SPDX-License-Identifier: MIT
//
// The coordinator's transaction table: a hash from txid to what the
// coordinator knows of it, the list of transactions whose decision is
// not yet fully acknowledged, and a ring of recently ended ones that
// STATUS still answers exactly.

#include <string.h>

#include "coordinator_int.h"

static size_t
bucket_of(uint64_t txid)
{
	// Txids are random, but a hash that mixes costs nothing and keeps
	// the table even for ids a test or an old log chose in sequence.
	uint64_t x = txid * UINT64_C(0x9E3779B97F4A7C15);
	return (size_t)(x >> 48) & (COORD_HASH_BUCKETS - 1);
}

dtx_err
coord__table_init(coord *c)
{
	c->buckets = dtx_calloc(COORD_HASH_BUCKETS, sizeof(coord_tx *));
	c->ended = dtx_calloc((size_t)c->cfg.ended_keep, sizeof(uint64_t));
	if (c->buckets == NULL || c->ended == NULL) {
		dtx_free(c->buckets);
		dtx_free(c->ended);
		c->buckets = NULL;
		c->ended = NULL;
		return DTX_ENOMEM;
	}
	c->pending.pnext = &c->pending;
	c->pending.pprev = &c->pending;
	return DTX_OK;
}

void
coord__table_fini(coord *c)
{
	if (c->buckets != NULL) {
		for (size_t i = 0; i < COORD_HASH_BUCKETS; i++) {
			coord_tx *t = c->buckets[i];
			while (t != NULL) {
				coord_tx *n = t->hnext;
				dtx_free(t);
				t = n;
			}
		}
	}
	dtx_free(c->buckets);
	dtx_free(c->ended);
	c->buckets = NULL;
	c->ended = NULL;
}

dtx_err
coord__txid_draw(uint64_t *out)
{
	uint64_t x;
	do {
		dtx_err rv = dtx_random_u64(&x);
		if (rv != DTX_OK)
			return rv;
	} while (x == 0 || x == UINT64_MAX);
	*out = x;
	return DTX_OK;
}

coord_tx *
coord__tx_find(coord *c, uint64_t txid)
{
	for (coord_tx *t = c->buckets[bucket_of(txid)]; t != NULL; t = t->hnext)
		if (t->txid == txid)
			return t;
	return NULL;
}

dtx_err
coord__tx_insert(coord *c, uint64_t txid, coord_tx **out)
{
	coord_tx *t = coord__tx_find(c, txid);
	if (t != NULL) {
		*out = t;
		return DTX_EEXIST;
	}
	t = dtx_calloc(1, sizeof(*t));
	if (t == NULL)
		return DTX_ENOMEM;
	t->txid = txid;
	size_t b = bucket_of(txid);
	t->hnext = c->buckets[b];
	c->buckets[b] = t;
	t->pnext = c->pending.pnext;
	t->pprev = &c->pending;
	c->pending.pnext->pprev = t;
	c->pending.pnext = t;
	*out = t;
	return DTX_OK;
}

static void
unlink_pending(coord_tx *t)
{
	if (t->pnext == NULL)
		return;
	t->pprev->pnext = t->pnext;
	t->pnext->pprev = t->pprev;
	t->pnext = NULL;
	t->pprev = NULL;
}

void
coord__tx_remove(coord *c, coord_tx *t)
{
	coord_tx **pp = &c->buckets[bucket_of(t->txid)];
	while (*pp != NULL && *pp != t)
		pp = &(*pp)->hnext;
	if (*pp == t)
		*pp = t->hnext;
	if (t->state == COORD_COMMITTED || t->state == COORD_PRECOMMITTED ||
	    t->state == COORD_DECIDING)
		c->npending_commits--;
	unlink_pending(t);
	dtx_free(t);
}

void
coord__tx_end(coord *c, coord_tx *t)
{
	if (t->state == COORD_COMMITTED || t->state == COORD_PRECOMMITTED ||
	    t->state == COORD_DECIDING)
		c->npending_commits--;
	t->state = COORD_ENDED;
	unlink_pending(t);
	size_t cap = (size_t)c->cfg.ended_keep;
	if (c->ended_n == cap) {
		uint64_t old = c->ended[c->ended_head];
		coord_tx *o = coord__tx_find(c, old);
		if (o != NULL && o->state == COORD_ENDED)
			coord__tx_remove(c, o);
		c->ended[c->ended_head] = t->txid;
		c->ended_head = (c->ended_head + 1) % cap;
	} else {
		c->ended[(c->ended_head + c->ended_n) % cap] = t->txid;
		c->ended_n++;
	}
}

static bool
holds_decision(coord_state s)
{
	return s == COORD_COMMITTED || s == COORD_PRECOMMITTED ||
	    s == COORD_DECIDING;
}

void
coord__tx_state(coord *c, coord_tx *t, coord_state s)
{
	if (!holds_decision(t->state) && holds_decision(s))
		c->npending_commits++;
	else if (holds_decision(t->state) && !holds_decision(s))
		c->npending_commits--;
	t->state = s;
}
