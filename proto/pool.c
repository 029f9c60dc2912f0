// SPDX-License-Identifier: MIT
//
// Runner threads for deferred requests whose handlers block (they wait
// for other daemons or an fsync the whole time): the server worker that
// received one defers it and hands it here, so the next request (or the
// next element of the same BATCH) does not wait behind it. Each thread
// runs the handler the ordinary, blocking way and answers the token.

#include <pthread.h>
#include <string.h>

#include "proto_int.h"

typedef struct job {
	proto_defer *tok;
	struct job *next;
} job;

struct proto_pool {
	proto_handler_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job *head, *tail;
	bool stop;
	pthread_t *th;
	uint32_t n; // threads started
};

static void *
pool_main(void *a)
{
	proto_pool *p = a;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		job *j = p->head;
		if (j == NULL)
			break; // stopping, and nothing queued
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		// On this thread the handler cannot defer again.
		const proto_msg *req = proto_defer_req(j->tok);
		proto_msg rep;
		proto_msg_init(&rep, PROTO_NONE);
		rep.hdr.id = req->hdr.id;
		dtx_err rv = p->fn(p->arg, req, &rep, NULL);
		proto_defer_reply(j->tok, rv, &rep);
		dtx_free(j);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

dtx_err
proto_pool_open(
    uint32_t threads, proto_handler_fn fn, void *arg, proto_pool **out)
{
	if (threads == 0 || fn == NULL || out == NULL)
		return DTX_EINVAL;
	proto_pool *p = dtx_calloc(1, sizeof(*p));
	if (p == NULL)
		return DTX_ENOMEM;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if ((p->th = dtx_calloc(threads, sizeof(pthread_t))) == NULL) {
		proto_pool_close(p);
		return DTX_ENOMEM;
	}
	for (; p->n < threads; p->n++)
		if (pthread_create(&p->th[p->n], NULL, pool_main, p) != 0) {
			proto_pool_close(p);
			return DTX_ENOMEM;
		}
	*out = p;
	return DTX_OK;
}

void
proto_pool_run(proto_pool *p, proto_defer *tok)
{
	job *j = dtx_alloc(sizeof(*j));
	pthread_mutex_lock(&p->mu);
	if (j == NULL || p->stop) {
		pthread_mutex_unlock(&p->mu);
		dtx_err err = j == NULL ? DTX_ENOMEM : DTX_ECLOSED;
		dtx_free(j);
		proto_defer_reply(tok, err, NULL);
		return;
	}
	j->tok = tok;
	DTX_QUEUE_PUSH(p->head, p->tail, j, next);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
proto_pool_close(proto_pool *p)
{
	if (p == NULL)
		return;
	dtx_threads_stop(&p->mu, &p->cv, &p->stop, p->th, p->n);
	dtx_free(p->th);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	dtx_free(p);
}
