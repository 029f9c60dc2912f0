// SPDX-License-Identifier: MIT
//
// Client-side batching: the requests of many calling threads to one
// server share BATCH messages. While `inflight` batches are on the wire
// new requests queue; the reply of a batch sends whatever queued up
// meanwhile (up to max_batch requests) as the next BATCH. Each caller
// blocks until its own answer is in, as with proto_client_call, so a
// closed-loop client keeps its shape while the server sees one message
// (one decode, one send, one wake-up) per batch instead of per request.

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "proto_int.h"

// One caller's request, on the caller's stack until it is answered.
typedef struct bcall {
	proto_msg *req; // borrowed
	proto_msg rep; // the answer (owned by the caller once done)
	dtx_err err;
	uint32_t timeout_ms;
	bool done;
	pthread_cond_t cv; // a waiting caller's (cb == NULL)
	proto_done_fn cb; // an asynchronous call's completion, or NULL
	void *cb_arg;
	struct bcall *next;
} bcall;

// Reports an asynchronous call's outcome and frees it. No lock held.
static void
finish_async(bcall *k)
{
	bool have = k->err == DTX_OK || k->err == DTX_EREFUSED;
	k->cb(k->cb_arg, k->err, have ? &k->rep : NULL);
	if (!have)
		proto_msg_free(&k->rep);
	dtx_free(k);
}

struct proto_batcher {
	proto_send_fn send;
	void *send_arg;
	uint32_t max_batch;
	uint32_t max_inflight;
	pthread_mutex_t mu;
	pthread_cond_t idle_cv; // inflight reached 0
	bcall *head, *tail;
	uint32_t inflight;
	_Atomic uint64_t batches, items;
};

// One BATCH on the wire and the calls it answers.
typedef struct bflight {
	proto_batcher *b;
	uint32_t n;
	bcall *calls[];
} bflight;

static void launch(proto_batcher *b);

static dtx_err
client_send(void *arg, proto_msg *req, const proto_call_opts *opts,
    proto_done_fn done, void *done_arg)
{
	return proto_client_call_async(arg, req, opts, done, done_arg);
}

dtx_err
proto_batcher_open(
    proto_client *c, uint32_t max_batch, uint32_t inflight, proto_batcher **out)
{
	if (c == NULL)
		return DTX_EINVAL;
	return proto_batcher_open_send(
	    client_send, c, max_batch, inflight, out);
}

dtx_err
proto_batcher_open_send(proto_send_fn send, void *arg, uint32_t max_batch,
    uint32_t inflight, proto_batcher **out)
{
	if (send == NULL || out == NULL || max_batch == 0 ||
	    max_batch > PROTO_MAX_BATCH || inflight == 0)
		return DTX_EINVAL;
	proto_batcher *b = dtx_calloc(1, sizeof(*b));
	if (b == NULL)
		return DTX_ENOMEM;
	b->send = send;
	b->send_arg = arg;
	b->max_batch = max_batch;
	b->max_inflight = inflight;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->idle_cv, NULL);
	*out = b;
	return DTX_OK;
}

void
proto_batcher_close(proto_batcher *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	while (b->inflight > 0 || b->head != NULL)
		pthread_cond_wait(&b->idle_cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	pthread_cond_destroy(&b->idle_cv);
	pthread_mutex_destroy(&b->mu);
	dtx_free(b);
}

void
proto_batcher_stats(const proto_batcher *b, uint64_t *batches, uint64_t *items)
{
	proto_batcher *m = (proto_batcher *)(uintptr_t)b;
	*batches = atomic_load(&m->batches);
	*items = atomic_load(&m->items);
}

// Answers every call of f (err, and the matching element of rep when
// the BATCH came back whole), then sends what queued up.
static void
flight_done(void *arg, dtx_err err, proto_msg *rep)
{
	bflight *f = arg;
	proto_batcher *b = f->b;
	if (f->n > 1 && (err == DTX_OK || err == DTX_EREFUSED) &&
	    (rep->hdr.type != PROTO_BATCH || rep->u.batch.n != f->n)) {
		// An ERROR for the whole BATCH, or a reply that does not
		// match it: no call has its own answer.
		err = err == DTX_EREFUSED ? DTX_EREFUSED : DTX_EPROTO;
		if (err == DTX_EREFUSED) {
			// Every call gets a copy of the refusal's code.
			for (uint32_t i = 0; i < f->n; i++)
				(void)proto_msg_set_error(&f->calls[i]->rep,
				    rep->u.error.code, "%s",
				    rep->u.error.reason ? rep->u.error.reason
				                        : "batch refused");
		}
		proto_msg_free(rep);
		rep = NULL;
	}
	bcall *async = NULL; // answered outside the lock
	pthread_mutex_lock(&b->mu);
	for (uint32_t i = 0; i < f->n; i++) {
		bcall *k = f->calls[i];
		if (rep == NULL) {
			k->err = err;
		} else if (f->n == 1) {
			k->rep = *rep;
			k->err = err;
		} else {
			k->rep = rep->u.batch.msgs[i];
			memset(&rep->u.batch.msgs[i], 0, sizeof(proto_msg));
			k->err = k->rep.hdr.type == PROTO_ERROR ? DTX_EREFUSED
			                                        : DTX_OK;
		}
		k->done = true;
		if (k->cb != NULL) {
			k->next = async;
			async = k;
		} else {
			pthread_cond_signal(&k->cv);
		}
	}
	if (rep != NULL && f->n > 1)
		proto_msg_free(rep);
	b->inflight--;
	bool more = b->head != NULL;
	if (!more && b->inflight == 0)
		pthread_cond_broadcast(&b->idle_cv);
	pthread_mutex_unlock(&b->mu);
	dtx_free(f);
	while (async != NULL) {
		bcall *next = async->next;
		finish_async(async);
		async = next;
	}
	if (more)
		launch(b);
}

// Sends the queued calls (up to max_batch) as one message while fewer
// than max_inflight are on the wire.
static void
launch(proto_batcher *b)
{
	pthread_mutex_lock(&b->mu);
	while (b->head != NULL && b->inflight < b->max_inflight) {
		uint32_t n = 0;
		for (bcall *k = b->head; k != NULL && n < b->max_batch;
		     k = k->next)
			n++;
		bflight *f = dtx_alloc(sizeof(*f) + n * sizeof(bcall *));
		proto_msg *msgs =
		    n > 1 ? dtx_alloc(n * sizeof(proto_msg)) : NULL;
		if (f == NULL || (n > 1 && msgs == NULL)) {
			dtx_free(f);
			dtx_free(msgs);
			// Fail the first call rather than leave it waiting.
			bcall *k = b->head;
			b->head = k->next;
			if (b->head == NULL)
				b->tail = NULL;
			k->err = DTX_ENOMEM;
			k->done = true;
			if (k->cb != NULL) {
				pthread_mutex_unlock(&b->mu);
				finish_async(k);
				pthread_mutex_lock(&b->mu);
			} else {
				pthread_cond_signal(&k->cv);
			}
			continue;
		}
		f->b = b;
		f->n = n;
		uint32_t timeout = 0;
		for (uint32_t i = 0; i < n; i++) {
			bcall *k = b->head;
			b->head = k->next;
			f->calls[i] = k;
			if (k->timeout_ms > timeout)
				timeout = k->timeout_ms;
		}
		if (b->head == NULL)
			b->tail = NULL;
		b->inflight++;
		pthread_mutex_unlock(&b->mu);

		proto_msg batch;
		proto_msg *req = f->calls[0]->req;
		if (n > 1) {
			for (uint32_t i = 0; i < n; i++)
				msgs[i] = *f->calls[i]->req;
			proto_msg_init(&batch, PROTO_BATCH);
			batch.u.batch.n = n;
			batch.u.batch.msgs = msgs;
			req = &batch;
		}
		atomic_fetch_add(&b->batches, 1);
		atomic_fetch_add(&b->items, n);
		proto_call_opts o = { .timeout_ms = timeout };
		// The request is encoded before this returns: msgs may go.
		dtx_err err = b->send(b->send_arg, req, &o, flight_done, f);
		dtx_free(msgs);
		if (err != DTX_OK)
			flight_done(f, err, NULL);
		pthread_mutex_lock(&b->mu);
	}
	pthread_mutex_unlock(&b->mu);
}

// Queues k and sends it at once when fewer than max_inflight batches are
// on the wire.
static void
enqueue(proto_batcher *b, bcall *k)
{
	pthread_mutex_lock(&b->mu);
	DTX_QUEUE_PUSH(b->head, b->tail, k, next);
	bool idle = b->inflight < b->max_inflight;
	pthread_mutex_unlock(&b->mu);
	if (idle)
		launch(b);
}

dtx_err
proto_batcher_call_async(proto_batcher *b, proto_msg *req, uint32_t timeout_ms,
    proto_done_fn done, void *arg)
{
	if (b == NULL || req == NULL || done == NULL ||
	    req->hdr.type == PROTO_BATCH)
		return DTX_EINVAL;
	bcall *k = dtx_calloc(1, sizeof(*k));
	if (k == NULL)
		return DTX_ENOMEM;
	k->req = req;
	k->timeout_ms = timeout_ms != 0 ? timeout_ms : 5000;
	k->cb = done;
	k->cb_arg = arg;
	enqueue(b, k);
	return DTX_OK;
}

dtx_err
proto_batcher_call(
    proto_batcher *b, proto_msg *req, proto_msg *rep, uint32_t timeout_ms)
{
	if (b == NULL || req == NULL || rep == NULL ||
	    req->hdr.type == PROTO_BATCH)
		return DTX_EINVAL;
	bcall k;
	memset(&k, 0, sizeof(k));
	k.req = req;
	k.timeout_ms = timeout_ms != 0 ? timeout_ms : 5000;
	pthread_cond_init(&k.cv, NULL);
	enqueue(b, &k);
	pthread_mutex_lock(&b->mu);
	while (!k.done)
		pthread_cond_wait(&k.cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	pthread_cond_destroy(&k.cv);
	if (k.err == DTX_OK || k.err == DTX_EREFUSED)
		*rep = k.rep;
	else
		proto_msg_free(&k.rep);
	return k.err;
}
