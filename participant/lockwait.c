// SPDX-License-Identifier: MIT
//
// PREPAREs that wait for a lock. A PREPARE (or CAN_COMMIT) that meets a
// key locked by a transaction prepared here does not vote NO at once: it
// waits, up to --lock-wait-ms, for that transaction's decision. The
// holder waits for nothing but its decision (or its commit's fsync), so
// such waits form no cycle. The request's reply is deferred
// (proto_server_defer): no server worker is held, and the COMMIT or
// ABORT that releases the lock is served meanwhile. Every release of
// intents the participant applies (part__outcome_signal) kicks the
// waiter thread, which tries the waiters again in arrival order, each as
// a new PREPARE (balance floors, conflicts and timestamps checked anew);
// a later PREPARE for a key someone waits for queues behind them, so
// waiters for a key are served first come, first served. One that still
// meets a lock waits on until its deadline, then is tried once more
// without waiting: it votes as it would have without the wait.

#include <string.h>
#include <time.h>

#include "participant_int.h"

// A request held because some of its elements wait: a BATCH (its reply
// filled element by element) or a single PREPARE.
typedef struct held {
	proto_defer *tok; // NULL while settled on the worker (no defer)
	const proto_msg *req; // the request (owned by tok, or borrowed)
	proto_msg *rep; // the reply being built
	proto_msg own; // the reply, once taken over from the worker
	// Elements still to answer, plus one while part__lw_hold still
	// registers them.
	_Atomic uint32_t waiting;
} held;

struct part__waiter {
	held *h;
	uint32_t idx; // the element's index in a BATCH
	uint64_t seq; // arrival order
	uint64_t deadline_ns;
	bool done; // answered: leaves the list at the end of the round
	part__waiter *next;
};

// Retries every waiter this often even without a kick: an outcome the
// participant does not see being applied (a commit made durable by the
// WAL's flusher) still wakes them.
#define LW_POLL_NS 5000000u

static const proto_msg *
elem(const held *h, uint32_t idx)
{
	return h->req->hdr.type == PROTO_BATCH ? &h->req->u.batch.msgs[idx]
	                                       : h->req;
}

static proto_msg *
slot(held *h, uint32_t idx)
{
	return h->rep->hdr.type == PROTO_BATCH ? &h->rep->u.batch.msgs[idx]
	                                       : h->rep;
}

// Sends a held request's reply once its last element is answered.
static void
held_answered(held *h)
{
	if (atomic_fetch_sub(&h->waiting, 1) > 1)
		return;
	proto_defer_reply(h->tok, DTX_OK, h->rep); // consumes the reply
	dtx_free(h);
}

// Tries the waiters ws[0..n) again (in arrival order), each as a new
// PREPARE; those whose deadline passed (or all, without allow) may not
// wait any more. The answered ones are marked done; their records share
// one fsync. Returns how many still wait.
static size_t
settle(part *p, part__waiter **ws, size_t n, bool allow)
{
	part__lw *lw = &p->lw;
	part__pending *pend = dtx_calloc(n ? n : 1, sizeof(*pend));
	uint64_t now = dtx_mono_ns(), max_lsn = 0;
	size_t left = 0;
	for (size_t i = 0; i < n; i++) {
		part__waiter *w = ws[i];
		const proto_msg *req = elem(w->h, w->idx);
		proto_msg *r = slot(w->h, w->idx);
		part__wait wc = { .allow = allow && now < w->deadline_ns &&
			    pend != NULL,
			.seq = w->seq };
		part__pending one = { 0 };
		proto_msg_free(r);
		proto_msg_init(r, PROTO_NONE);
		r->hdr.id = req->hdr.id;
		if (!wc.allow && allow)
			part__count(p, PART_CTR_LOCK_WAIT_TIMEOUTS);
		dtx_err rv = part__start_one(p, req, r, &one, &wc);
		if (rv == DTX_OK && one.kind == PART__PEND_WAIT) {
			left++;
			continue;
		}
		if (pend != NULL)
			pend[i] = one;
		if (rv == DTX_OK && one.kind != PART__PEND_NONE &&
		    one.lsn > max_lsn)
			max_lsn = one.lsn;
		pthread_mutex_lock(&lw->mu);
		w->done = true;
		pthread_mutex_unlock(&lw->mu);
		if (pend == NULL && one.kind != PART__PEND_NONE)
			(void)part__finish_one(
			    p, req, &one, stor_kv_sync(p->kv, one.lsn), r);
	}
	dtx_err sync_err = stor_kv_sync(p->kv, max_lsn);
	for (size_t i = 0; i < n; i++) {
		part__waiter *w = ws[i];
		if (!w->done)
			continue;
		const proto_msg *req = elem(w->h, w->idx);
		proto_msg *r = slot(w->h, w->idx);
		if (pend != NULL)
			(void)part__finish_one(p, req, &pend[i], sync_err, r);
		if (w->h->rep->hdr.type == PROTO_BATCH)
			part__stamp(p, r);
	}
	dtx_free(pend);
	return left;
}

// Answers the done waiters of ws and frees them (they have left the
// list).
static void
reply_done(part__waiter **ws, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!ws[i]->done)
			continue;
		held_answered(ws[i]->h);
		dtx_free(ws[i]);
	}
}

// Takes the done waiters out of the list. Caller holds lw->mu.
static void
unlink_done(part__lw *lw)
{
	part__waiter **pp = &lw->head, *last = NULL;
	while (*pp != NULL) {
		part__waiter *w = *pp;
		if (w->done) {
			*pp = w->next;
			atomic_fetch_sub(&lw->n, 1);
			continue;
		}
		last = w;
		pp = &w->next;
	}
	lw->tail = last;
}

// The list's waiters, in order, in a new array (*n of them). Caller holds
// lw->mu. NULL when there are none or memory ran out.
static part__waiter **
snapshot(part__lw *lw, size_t *n)
{
	size_t k = 0;
	for (part__waiter *w = lw->head; w != NULL; w = w->next)
		k++;
	part__waiter **ws = k ? dtx_calloc(k, sizeof(*ws)) : NULL;
	*n = 0;
	if (ws == NULL)
		return NULL;
	for (part__waiter *w = lw->head; w != NULL; w = w->next)
		ws[(*n)++] = w;
	return ws;
}

// One round: every waiter tried again, the answered ones replied to.
static void
round_once(part *p)
{
	part__lw *lw = &p->lw;
	size_t n;
	pthread_mutex_lock(&lw->mu);
	part__waiter **ws = snapshot(lw, &n);
	pthread_mutex_unlock(&lw->mu);
	if (ws == NULL)
		return;
	settle(p, ws, n, true);
	pthread_mutex_lock(&lw->mu);
	unlink_done(lw);
	pthread_mutex_unlock(&lw->mu);
	reply_done(ws, n);
	dtx_free(ws);
}

static void *
lw_main(void *arg)
{
	part *p = arg;
	part__lw *lw = &p->lw;
	pthread_mutex_lock(&lw->mu);
	while (!lw->stop) {
		if (lw->head == NULL && !lw->kick) {
			pthread_cond_wait(&lw->cv, &lw->mu);
			continue;
		}
		if (!lw->kick) {
			uint64_t now = dtx_mono_ns(), due = now + LW_POLL_NS;
			for (part__waiter *w = lw->head; w != NULL; w = w->next)
				if (w->deadline_ns < due)
					due = w->deadline_ns;
			if (due > now) {
				struct timespec ts =
				    dtx_time_after(CLOCK_MONOTONIC, due - now);
				pthread_cond_timedwait(&lw->cv, &lw->mu, &ts);
			}
		}
		lw->kick = false;
		pthread_mutex_unlock(&lw->mu);
		round_once(p);
		pthread_mutex_lock(&lw->mu);
	}
	pthread_mutex_unlock(&lw->mu);
	return NULL;
}

dtx_err
part__lw_start(part *p)
{
	part__lw *lw = &p->lw;
	pthread_mutex_init(&lw->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lw->cv, &ca);
	pthread_condattr_destroy(&ca);
	lw->init = true;
	if (pthread_create(&lw->th, NULL, lw_main, p) != 0)
		return DTX_ENOMEM;
	lw->started = true;
	return DTX_OK;
}

void
part__lw_stop(part *p)
{
	part__lw *lw = &p->lw;
	if (!lw->init)
		return;
	pthread_mutex_lock(&lw->mu);
	lw->stop = true;
	pthread_cond_signal(&lw->cv);
	pthread_mutex_unlock(&lw->mu);
	if (lw->started) {
		pthread_join(lw->th, NULL);
		lw->started = false;
	}
	// Nobody retries them any more: they vote now, without waiting.
	for (;;) {
		pthread_mutex_lock(&lw->mu);
		size_t n;
		part__waiter **ws = snapshot(lw, &n);
		pthread_mutex_unlock(&lw->mu);
		if (ws == NULL && n == 0 && atomic_load(&lw->n) > 0) {
			dtx_sleep_ms(1); // out of memory: try again
			continue;
		}
		if (ws == NULL)
			return;
		settle(p, ws, n, false);
		pthread_mutex_lock(&lw->mu);
		unlink_done(lw);
		pthread_mutex_unlock(&lw->mu);
		reply_done(ws, n);
		dtx_free(ws);
	}
}

void
part__lw_fini(part *p)
{
	part__lw *lw = &p->lw;
	if (!lw->init)
		return;
	pthread_cond_destroy(&lw->cv);
	pthread_mutex_destroy(&lw->mu);
	lw->init = false;
}

void
part__lw_kick(part *p)
{
	part__lw *lw = &p->lw;
	if (atomic_load(&lw->n) == 0)
		return;
	pthread_mutex_lock(&lw->mu);
	lw->kick = true;
	pthread_cond_signal(&lw->cv);
	pthread_mutex_unlock(&lw->mu);
}

static bool
same_key(const proto_prepare *a, const proto_prepare *b)
{
	for (uint32_t i = 0; i < a->n_ops; i++)
		for (uint32_t j = 0; j < b->n_ops; j++)
			if (a->ops[i].key.n == b->ops[j].key.n &&
			    memcmp(a->ops[i].key.p, b->ops[j].key.p,
			        a->ops[i].key.n) == 0)
				return true;
	return false;
}

bool
part__lw_queued(part *p, const proto_prepare *pr, uint64_t seq)
{
	part__lw *lw = &p->lw;
	if (atomic_load(&lw->n) == 0)
		return false;
	bool q = false;
	pthread_mutex_lock(&lw->mu);
	for (part__waiter *w = lw->head; w != NULL && !q; w = w->next)
		if (w->seq < seq && !w->done)
			q = same_key(&elem(w->h, w->idx)->u.prepare, pr);
	pthread_mutex_unlock(&lw->mu);
	return q;
}

// Settles the waiting elements of h on this thread, without waiting
// (waiting is off, or the reply cannot be deferred).
static void
settle_now(part *p, held *h, const part__pending *pend, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (pend[i].kind != PART__PEND_WAIT)
			continue;
		part__waiter w = { .h = h, .idx = i }, *ws = &w;
		settle(p, &ws, 1, false);
	}
}

dtx_err
part__lw_hold(part *p, proto_call *call, const proto_msg *req, proto_msg *rep,
    const part__pending *pend)
{
	part__lw *lw = &p->lw;
	uint32_t n = req->hdr.type == PROTO_BATCH ? req->u.batch.n : 1;
	held *h = dtx_calloc(1, sizeof(*h));
	held tmp = { .req = req, .rep = rep };
	pthread_mutex_lock(&lw->mu);
	bool open = lw->started && !lw->stop;
	pthread_mutex_unlock(&lw->mu);
	proto_defer *tok = h != NULL && open ? proto_server_defer(call) : NULL;
	if (tok == NULL) {
		dtx_free(h);
		settle_now(p, &tmp, pend, n);
		return DTX_OK;
	}
	// The token owns the request now; the reply moves here.
	h->tok = tok;
	h->req = proto_defer_req(tok);
	h->own = *rep;
	h->rep = &h->own;
	proto_msg_init(rep, PROTO_NONE);
	uint64_t deadline =
	    dtx_mono_ns() + (uint64_t)p->cfg->lock_wait_ms * 1000000u;
	atomic_store(&h->waiting, 1);
	pthread_mutex_lock(&lw->mu);
	for (uint32_t i = 0; i < n; i++) {
		if (pend[i].kind != PART__PEND_WAIT)
			continue;
		part__waiter *w = dtx_calloc(1, sizeof(*w));
		if (w == NULL || lw->stop) {
			// Answered now, on this thread, without waiting.
			pthread_mutex_unlock(&lw->mu);
			part__waiter one = { .h = h, .idx = i }, *ws = &one;
			settle(p, &ws, 1, false);
			dtx_free(w);
			pthread_mutex_lock(&lw->mu);
			continue;
		}
		*w = (part__waiter) { .h = h,
			.idx = i,
			.seq = lw->seq++,
			.deadline_ns = deadline };
		atomic_fetch_add(&h->waiting, 1);
		if (lw->tail != NULL)
			lw->tail->next = w;
		else
			lw->head = w;
		lw->tail = w;
		atomic_fetch_add(&lw->n, 1);
		part__count(p, PART_CTR_LOCK_WAITS);
	}
	// One round at once: the holder may have gone between the look and
	// now, and its kick found nobody waiting.
	lw->kick = true;
	pthread_cond_signal(&lw->cv);
	pthread_mutex_unlock(&lw->mu);
	held_answered(h); // registered: drops the hold's own count
	return DTX_OK;
}
