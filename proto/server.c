// SPDX-License-Identifier: MIT
//
// The RPC server: a REP socket served by K worker threads, each owning one
// nng context and aio, so K handlers can block at once (on an fsync, on
// RPCs to other daemons). Decode failures are answered with an ERROR reply
// and counted; a BATCH is unpacked into one handler call per element unless
// the daemon asks for whole batches.

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "proto_int.h"

#include <nng/protocol/reqrep0/rep.h>

typedef struct worker {
	proto_server *s;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t th;
	bool started;
} worker;

struct proto_server {
	proto_server_cfg cfg;
	proto_limits lim;
	char *url; // bound URL
	nng_socket sock;
	bool sock_open;
	uint32_t n_workers;
	worker *workers;
	atomic_bool stopping; // set by close: workers leave their loops
	_Atomic uint64_t requests, replies, decode_errors, handler_errors;
};

// Fills the header of an outgoing reply and stamps its clocks.
static void
finish_hdr(proto_server *s, proto_msg *rep, uint64_t id)
{
	rep->hdr.version = PROTO_VERSION;
	rep->hdr.id = id;
	rep->hdr.from = s->cfg.node_id;
	if (s->cfg.stamp != NULL)
		s->cfg.stamp(s->cfg.arg, &rep->hdr);
}

// Calls the observe hook for a request and each element of a BATCH.
static void
observe(proto_server *s, const proto_msg *req)
{
	if (s->cfg.observe == NULL)
		return;
	s->cfg.observe(s->cfg.arg, &req->hdr);
	if (req->hdr.type == PROTO_BATCH)
		for (uint32_t i = 0; i < req->u.batch.n; i++)
			s->cfg.observe(s->cfg.arg, &req->u.batch.msgs[i].hdr);
}

// Runs the handler for one request and leaves a reply (possibly an ERROR)
// in *rep. Returns DTX_ENOMEM only when not even an ERROR could be built.
static dtx_err
handle_one(proto_server *s, const proto_msg *req, proto_msg *rep)
{
	proto_msg_init(rep, PROTO_NONE);
	rep->hdr.id = req->hdr.id;
	dtx_err err = s->cfg.handler(s->cfg.arg, req, rep);
	if (err == DTX_OK && rep->hdr.type == PROTO_NONE)
		err = DTX_EINVAL;
	if (err != DTX_OK) {
		atomic_fetch_add(&s->handler_errors, 1);
		err = proto_msg_set_error(rep, err, "%s request failed: %s",
		    proto_type_name(req->hdr.type), dtx_strerror(err));
		if (err != DTX_OK)
			return err;
	}
	// A whole-batch handler's elements get their header fields here.
	if (rep->hdr.type == PROTO_BATCH && rep->u.batch.msgs != NULL)
		for (uint32_t i = 0; i < rep->u.batch.n; i++)
			finish_hdr(s, &rep->u.batch.msgs[i],
			    rep->u.batch.msgs[i].hdr.id);
	finish_hdr(s, rep, req->hdr.id);
	return DTX_OK;
}

static dtx_err
handle_batch(proto_server *s, const proto_msg *req, proto_msg *rep)
{
	const proto_batch *b = &req->u.batch;
	proto_msg_init(rep, PROTO_BATCH);
	rep->u.batch.msgs = dtx_calloc(b->n, sizeof(proto_msg));
	if (rep->u.batch.msgs == NULL)
		return DTX_ENOMEM;
	rep->u.batch.n = b->n;
	for (uint32_t i = 0; i < b->n; i++) {
		dtx_err err = handle_one(s, &b->msgs[i], &rep->u.batch.msgs[i]);
		if (err != DTX_OK) {
			proto_msg_free(rep);
			return err;
		}
	}
	finish_hdr(s, rep, req->hdr.id);
	return DTX_OK;
}

// Encodes an ERROR for a request that could not be decoded into msg.
static dtx_err
error_reply(proto_server *s, nng_msg *msg, dtx_err code, const char *why)
{
	proto_msg rep;
	proto_msg_init(&rep, PROTO_NONE);
	dtx_err err = proto_msg_set_error(&rep, code, "%s", why);
	if (err != DTX_OK)
		return err;
	finish_hdr(s, &rep, 0);
	nng_msg_clear(msg);
	err = proto_encode(&rep, msg);
	proto_msg_free(&rep);
	return err;
}

// Turns the request in msg into the reply, reusing the message buffer.
static dtx_err
serve(proto_server *s, nng_msg *msg)
{
	char why[256];
	proto_msg req, rep;
	atomic_fetch_add(&s->requests, 1);
	dtx_err err = proto_decode_nng(msg, &s->lim, &req, why, sizeof(why));
	if (err != DTX_OK) {
		if (err == DTX_EPROTO) {
			atomic_fetch_add(&s->decode_errors, 1);
			DTX_LOG(DTX_LOG_DEBUG, "PROTO_BADREQ", "%s", why);
		}
		return error_reply(s, msg, err, why);
	}
	observe(s, &req);
	if (req.hdr.type == PROTO_BATCH && !s->cfg.whole_batches)
		err = handle_batch(s, &req, &rep);
	else
		err = handle_one(s, &req, &rep);
	proto_msg_free(&req);
	if (err != DTX_OK)
		return err;
	nng_msg_clear(msg);
	err = proto_encode(&rep, msg);
	proto_msg_free(&rep);
	if (err == DTX_EINVAL) {
		DTX_LOG(DTX_LOG_WARN, "PROTO_BADREPLY",
		    "handler built a reply that cannot be encoded");
		return error_reply(
		    s, msg, DTX_EINVAL, "server built an invalid reply");
	}
	return err;
}

static void *
worker_main(void *arg)
{
	worker *w = arg;
	proto_server *s = w->s;
	for (;;) {
		if (atomic_load(&s->stopping))
			break;
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		int rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED || atomic_load(&s->stopping)) {
			if (rv == 0)
				nng_msg_free(nng_aio_get_msg(w->aio));
			break;
		}
		if (rv != 0)
			continue;
		nng_msg *msg = nng_aio_get_msg(w->aio);
		if (serve(s, msg) != DTX_OK) {
			// Not even an ERROR fits in memory: let the client
			// time out rather than stop serving.
			nng_msg_free(msg);
			continue;
		}
		if (atomic_load(&s->stopping)) {
			nng_msg_free(msg);
			break;
		}
		nng_aio_set_msg(w->aio, msg);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED)
				break;
			continue;
		}
		atomic_fetch_add(&s->replies, 1);
	}
	return NULL;
}

// The bound URL: a tcp port 0 is replaced by the port the kernel chose.
static dtx_err
bound_url(proto_server *s, nng_listener l, const char *url)
{
	int port = 0;
	const char *colon = strrchr(url, ':');
	if (strncmp(url, "tcp", 3) == 0 && colon != NULL &&
	    strcmp(colon, ":0") == 0 &&
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		size_t n = (size_t)(colon - url) + 16;
		if ((s->url = dtx_alloc(n)) == NULL)
			return DTX_ENOMEM;
		snprintf(s->url, n, "%.*s:%d", (int)(colon - url), url, port);
		return DTX_OK;
	}
	s->url = dtx_strdup(url);
	return s->url == NULL ? DTX_ENOMEM : DTX_OK;
}

dtx_err
proto_server_open(const proto_server_cfg *cfg, proto_server **out)
{
	if (cfg == NULL || cfg->url == NULL || cfg->handler == NULL ||
	    out == NULL || cfg->vc_nodes > CLK_VC_MAX)
		return DTX_EINVAL;
	proto_server *s = dtx_calloc(1, sizeof(*s));
	if (s == NULL)
		return DTX_ENOMEM;
	s->cfg = *cfg;
	s->cfg.url = NULL;
	proto_limits in = { cfg->max_msg, cfg->vc_nodes };
	proto__limits(&in, &s->lim);
	s->n_workers = cfg->workers == 0 ? 8 : cfg->workers;
	dtx_err err;
	int rv;
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		err = proto_from_nng(rv);
		goto fail;
	}
	s->sock_open = true;
	if ((err = proto__sock_limits(s->sock, s->lim.max_msg)) != DTX_OK)
		goto fail;
	s->workers = dtx_calloc(s->n_workers, sizeof(*s->workers));
	if (s->workers == NULL) {
		err = DTX_ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < s->n_workers; i++) {
		worker *w = &s->workers[i];
		w->s = s;
		if ((rv = nng_ctx_open(&w->ctx, s->sock)) != 0 ||
		    (rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
			err = proto_from_nng(rv);
			goto fail;
		}
	}
	nng_listener l;
	if ((rv = nng_listen(s->sock, cfg->url, &l, 0)) != 0) {
		err = proto_from_nng(rv);
		DTX_LOG(DTX_LOG_ERROR, "PROTO_LISTEN",
		    "cannot listen on %s: %s", cfg->url, nng_strerror(rv));
		goto fail;
	}
	if ((err = bound_url(s, l, cfg->url)) != DTX_OK)
		goto fail;
	for (uint32_t i = 0; i < s->n_workers; i++) {
		worker *w = &s->workers[i];
		if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
			err = DTX_ENOMEM;
			goto fail;
		}
		w->started = true;
	}
	*out = s;
	return DTX_OK;
fail:
	proto_server_close(s);
	return err;
}

const char *
proto_server_url(const proto_server *s)
{
	return s->url;
}

void
proto_server_stats_get(const proto_server *s, proto_server_stats *out)
{
	proto_server *m = (proto_server *)(uintptr_t)s;
	out->requests = atomic_load(&m->requests);
	out->replies = atomic_load(&m->replies);
	out->decode_errors = atomic_load(&m->decode_errors);
	out->handler_errors = atomic_load(&m->handler_errors);
}

void
proto_server_close(proto_server *s)
{
	if (s == NULL)
		return;
	// Workers must be gone before the socket closes: nng 1.5 frees a
	// socket's contexts on close, and a worker that finishes a handler
	// afterwards would send on a freed context. So: flag, cancel every
	// pending receive (a handler in progress finishes first), join.
	atomic_store(&s->stopping, true);
	if (s->workers != NULL) {
		for (uint32_t i = 0; i < s->n_workers; i++)
			if (s->workers[i].aio != NULL)
				nng_aio_cancel(s->workers[i].aio);
		for (uint32_t i = 0; i < s->n_workers; i++) {
			worker *w = &s->workers[i];
			if (w->started) {
				// A cancel can race a receive being posted:
				// keep cancelling until the worker is gone.
				while (pthread_tryjoin_np(w->th, NULL) != 0) {
					nng_aio_cancel(w->aio);
					dtx_sleep_ms(1);
				}
			}
		}
	}
	if (s->sock_open)
		nng_close(s->sock);
	if (s->workers != NULL) {
		for (uint32_t i = 0; i < s->n_workers; i++)
			if (s->workers[i].aio != NULL)
				nng_aio_free(s->workers[i].aio);
		dtx_free(s->workers);
	}
	dtx_free(s->url);
	dtx_free(s);
}
