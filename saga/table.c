// SPDX-License-Identifier: MIT
//
// The saga table: a hash table of every saga the orchestrator knows by gid
// (running, compensating, or finished and remembered so that a resubmitted
// gid gets its outcome), the list of finished sagas in the order they
// finished (for eviction), the recovered sagas to resume and the queue of
// SAGA_FORGET messages due. Every function here runs with saga->mu held.

#include <string.h>

#include "saga_int.h"

static size_t
bucket_of(const saga *s, const char *gid)
{
	return dtx_crc32c(0, gid, strlen(gid)) & (s->nbuckets - 1);
}

saga__rec *
saga__find(saga *s, const char *gid)
{
	if (s->nbuckets == 0)
		return NULL;
	for (saga__rec *r = s->buckets[bucket_of(s, gid)]; r != NULL;
	     r = r->hnext)
		if (strcmp(r->gid, gid) == 0)
			return r;
	return NULL;
}

// Doubles the bucket array (or creates it). DTX_ENOMEM leaves it as it was.
static dtx_err
grow(saga *s)
{
	size_t nb = s->nbuckets ? s->nbuckets * 2 : 1024;
	saga__rec **b = dtx_calloc(nb, sizeof(*b));
	if (b == NULL)
		return DTX_ENOMEM;
	saga__rec **old = s->buckets;
	size_t on = s->nbuckets;
	s->buckets = b;
	s->nbuckets = nb;
	for (size_t i = 0; i < on; i++) {
		saga__rec *r = old[i];
		while (r != NULL) {
			saga__rec *next = r->hnext;
			size_t at = bucket_of(s, r->gid);
			r->hnext = b[at];
			b[at] = r;
			r = next;
		}
	}
	dtx_free(old);
	return DTX_OK;
}

dtx_err
saga__insert(saga *s, saga__rec *r)
{
	if (s->count >= s->nbuckets) {
		dtx_err rv = grow(s);
		if (rv != DTX_OK && s->nbuckets == 0)
			return rv;
	}
	size_t at = bucket_of(s, r->gid);
	r->hnext = s->buckets[at];
	s->buckets[at] = r;
	s->count++;
	return DTX_OK;
}

static void
unlink_rec(saga *s, saga__rec *r)
{
	saga__rec **pp = &s->buckets[bucket_of(s, r->gid)];
	while (*pp != NULL && *pp != r)
		pp = &(*pp)->hnext;
	if (*pp == r) {
		*pp = r->hnext;
		s->count--;
	}
}

void
saga__rec_free(saga__rec *r)
{
	if (r == NULL)
		return;
	if (r->steps != NULL) {
		// The steps came out of a decoded message: hand them back to
		// one so that proto_msg_free releases every key and value.
		proto_msg m;
		proto_msg_init(&m, PROTO_SAGA_SUBMIT);
		m.u.saga_submit.n_steps = r->n_steps;
		m.u.saga_submit.steps = r->steps;
		proto_msg_free(&m);
	}
	dtx_free(r->st);
	dtx_free(r->comp_ts);
	dtx_free(r->gid);
	dtx_free(r->reason);
	dtx_free(r);
}

// Queues a SAGA_FORGET for r's participants (those whose action was
// started: the others never saw the saga).
static void
queue_forget(saga *s, const saga__rec *r)
{
	uint32_t parts = 0;
	for (uint32_t i = 0; i < r->n_steps; i++)
		if (r->st[i] != PROTO_SS_PENDING &&
		    r->steps[i].participant < 32)
			parts |= UINT32_C(1) << r->steps[i].participant;
	if (parts == 0)
		return;
	if (s->fq_len == s->fq_cap) {
		size_t cap = s->fq_cap ? s->fq_cap * 2 : 1024;
		if (cap > (1u << 20))
			return; // barriers are then collected by age
		saga__forget *n = dtx_alloc(cap * sizeof(*n));
		if (n == NULL)
			return;
		for (size_t i = 0; i < s->fq_len; i++)
			n[i] = s->fq[(s->fq_head + i) % s->fq_cap];
		dtx_free(s->fq);
		s->fq = n;
		s->fq_cap = cap;
		s->fq_head = 0;
	}
	// The participants know the saga by its barrier id (one read back
	// from an END record alone has none: it was never sent again).
	char *gid = dtx_strdup(r->bid[0] != '\0' ? r->bid : r->gid);
	if (gid == NULL)
		return;
	s->fq[(s->fq_head + s->fq_len) % s->fq_cap] = (saga__forget) {
		.gid = gid,
		.parts = parts,
		.due_ns = dtx_mono_ns() +
		    (uint64_t)s->cfg->forget_delay_ms * 1000000u,
	};
	s->fq_len++;
}

void
saga__finished(saga *s, saga__rec *r)
{
	r->end_ns = dtx_mono_ns();
	DTX_QUEUE_PUSH(s->fin_head, s->fin_tail, r, fnext);
	s->nfinished++;
	if (!s->replaying)
		queue_forget(s, r);
	pthread_cond_broadcast(&s->done_cv);
}

void
saga__evict(saga *s)
{
	uint64_t now = dtx_mono_ns();
	uint64_t ttl = (uint64_t)s->cfg->retain_ms * 1000000u;
	while (s->fin_head != NULL) {
		saga__rec *r = s->fin_head;
		bool old = now - r->end_ns > ttl;
		// A saga still being answered or waited for stays.
		if ((s->nfinished <= (size_t)s->cfg->retain_max && !old) ||
		    r->waiters > 0 || r->owned)
			break;
		s->fin_head = r->fnext;
		if (s->fin_head == NULL)
			s->fin_tail = NULL;
		s->nfinished--;
		unlink_rec(s, r);
		saga__rec_free(r);
		saga__count(s, SAGA_CTR_EVICTED);
	}
}

void
saga__enqueue(saga *s, saga__rec *r)
{
	r->owned = false;
	DTX_QUEUE_PUSH(s->q_head, s->q_tail, r, fnext);
	pthread_cond_signal(&s->q_cv);
}
