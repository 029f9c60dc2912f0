// SPDX-License-Identifier: MIT
//
// The RPC server: a REP socket served by K worker threads, each owning one
// nng context and aio, so K handlers can block at once (on an fsync, on
// RPCs to other daemons). Decode failures are answered with an ERROR reply
// and counted; a BATCH is unpacked into one handler call per element unless
// the daemon asks for whole batches. Each connection has an entry in a
// table (the connection cap counts them); over TLS the entry holds the
// hello's nonce and then the identity the connection is bound to.

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "proto_int.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

// One connection: its nng pipe id, the nonce of a hello in progress, and
// once the hello succeeded, who is at the other end.
typedef struct conn {
	uint32_t pipe;
	bool has_nonce;
	uint8_t nonce[PROTO_NONCE_LEN];
	proto_peer peer; // authenticated once bound
} conn;

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

	// Deferred replies: how many are outstanding (close waits for 0)
	// and the contexts they gave back, for the next worker that hands
	// its own context to a token.
	pthread_mutex_t dmu;
	pthread_cond_t dcv;
	uint32_t deferred;
	nng_ctx *spare;
	uint32_t nspare;
	// Ended tokens kept with their aio for the next deferred request
	// (through batch): an aio made and reaped per request costs nng's
	// reaper thread a wake-up each.
	proto_defer *tspare;
	uint32_t ntspare;

	// The connections (pmu guards conns and nconns).
	pthread_mutex_t pmu;
	conn *conns;
	uint32_t nconns, capconns;
	_Atomic uint64_t conns_refused, hellos, hello_failed, unauth, from_bad;
	_Atomic uint64_t cap_logged_ns, auth_logged_ns; // rate limits
};

// A request taken over by its handler (proto_server_defer). A whole
// request's token owns the request and the context it arrived on, which
// its reply must go out on. An element of an unpacked BATCH gets a token
// of its own that points at the batch's token; the batch's token owns
// the BATCH, its context and its reply, which goes out once every element
// has its answer.
struct proto_defer {
	proto_server *s;
	proto_defer *batch; // an element's batch, or NULL
	uint32_t idx; // an element's index in the batch
	nng_ctx ctx;
	nng_aio *aio;
	proto_msg req; // a whole request or the BATCH (owned)
	proto_msg rep; // a batch's reply, filled element by element
	// A batch's elements still to answer, plus one while the worker
	// still runs handlers for it.
	_Atomic uint32_t left;
	// While its reply goes out, a token is held by the thread inside
	// nng_ctx_send and by the send's completion, which nng may run
	// before nng_ctx_send returns; the last to let go ends the token.
	_Atomic uint32_t holds;
	int rv; // the send's result, once it completed
	uint64_t types; // what the reply answers (req_types)
	uint64_t id;
	uint64_t start_ns; // when the request arrived (dtx_mono_ns)
};

// Contexts kept for reuse at most; more are closed.
#define SPARE_MAX 256

// What a worker is serving, passed to its handler so that the handler can
// take the request over (proto_server_defer), as nng passes an aio: the
// request the handler runs for, and for an element of an unpacked BATCH
// the batch, its reply and the index; the token the handler took, and the
// batch's token once one element was deferred. Lives on the worker's
// stack for one received message.
struct proto_call {
	proto_server *s;
	nng_ctx ctx; // the context the message came on
	proto_msg *req; // the request being handled
	proto_msg *breq, *brep; // an element's BATCH and its reply, or NULL
	uint32_t idx; // an element's index in the batch
	proto_defer *taken; // the token the handler took, or NULL
	proto_defer *bt; // the batch's token, or NULL
	proto_peer peer; // who sent the message
	uint64_t start_ns; // when the message arrived (dtx_mono_ns)
};

const proto_peer *
proto_call_peer(const proto_call *call)
{
	return call != NULL ? &call->peer : NULL;
}

// The bit of type in req_types (a decoded type is always below 64).
static uint64_t
type_bit(proto_type type)
{
	_Static_assert(PROTO_TYPE_COUNT <= 64, "a type is a bit of a uint64");
	return (unsigned)type < PROTO_TYPE_COUNT ? 1ull << type : 0;
}

// The request types a reply answers, one bit each: a BATCH's elements'
// types, or the request's own.
static uint64_t
req_types(const proto_msg *req)
{
	if (req->hdr.type != PROTO_BATCH)
		return type_bit(req->hdr.type);
	uint64_t t = 0;
	for (uint32_t i = 0; i < req->u.batch.n; i++)
		t |= type_bit(req->u.batch.msgs[i].hdr.type);
	return t;
}

// How long a process lives on after a reply crash point was reached: time
// for the reply to leave, with no fsync (dtx_crashpoint_soon).
#define REPLY_CRASH_MS 50

// A reply went out: the crash points named after what it answers, e.g.
// "rpc.after_reply.commit" for a COMMIT's ACK, alone or in a BATCH. Armed
// with lost unsynced writes, they catch a daemon that answers before what
// it answered for is durable.
static void
replied(uint64_t types)
{
	if (types == 0 || !dtx_crashpoint_armed())
		return;
	for (int t = PROTO_NONE + 1; t < PROTO_TYPE_COUNT; t++) {
		if ((types & (1ull << t)) == 0)
			continue;
		char name[64];
		snprintf(name, sizeof(name), "rpc.after_reply.%s",
		    proto_type_name((proto_type)t));
		dtx_crashpoint_soon(name, REPLY_CRASH_MS);
	}
}

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
	// A request's clock is judged by its handler (a daemon refuses one
	// too far ahead with an ERROR), so the result is not used here.
	(void)s->cfg.observe(s->cfg.arg, &req->hdr);
	if (req->hdr.type == PROTO_BATCH)
		for (uint32_t i = 0; i < req->u.batch.n; i++)
			(void)s->cfg.observe(
			    s->cfg.arg, &req->u.batch.msgs[i].hdr);
}

// Runs the handler for one request and leaves a reply (possibly an ERROR)
// in *rep. Returns DTX_ENOMEM only when not even an ERROR could be built.
static dtx_err
handle_one(
    proto_server *s, proto_call *call, const proto_msg *req, proto_msg *rep)
{
	proto_msg_init(rep, PROTO_NONE);
	rep->hdr.id = req->hdr.id;
	dtx_err err = s->cfg.handler(s->cfg.arg, req, rep, call);
	if (call->taken != NULL)
		return DTX_OK; // the token answers
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
	if (s->cfg.replied != NULL)
		s->cfg.replied(
		    s->cfg.arg, req, rep, dtx_mono_ns() - call->start_ns);
	return DTX_OK;
}

static void batch_send(proto_defer *bt);

// Runs the handler for every element of a BATCH. When some element was
// deferred the batch's token owns req and rep once this returns, and
// DTX_EAGAIN says so.
static dtx_err
handle_batch(proto_server *s, proto_call *call, proto_msg *req, proto_msg *rep)
{
	// Read before the loop: deferring an element moves *req away.
	uint32_t n = req->u.batch.n;
	proto_msg *msgs = req->u.batch.msgs;
	uint64_t id = req->hdr.id;
	proto_msg_init(rep, PROTO_BATCH);
	rep->u.batch.msgs = dtx_calloc(n, sizeof(proto_msg));
	if (rep->u.batch.msgs == NULL)
		return DTX_ENOMEM;
	rep->u.batch.n = n;
	proto_msg *out = rep->u.batch.msgs; // moves with rep, stays put
	call->breq = req;
	call->brep = rep;
	dtx_err err = DTX_OK;
	if (s->cfg.batch != NULL)
		s->cfg.batch(s->cfg.arg, true);
	for (uint32_t i = 0; i < n && err == DTX_OK; i++) {
		call->req = &msgs[i];
		call->idx = i;
		err = handle_one(s, call, &msgs[i], &out[i]);
		call->taken = NULL;
	}
	if (s->cfg.batch != NULL)
		s->cfg.batch(s->cfg.arg, false);
	proto_defer *bt = call->bt;
	if (bt != NULL) {
		// Elements that could not even get an ERROR stay empty and
		// the BATCH cannot be encoded: its client times out.
		if (atomic_fetch_sub(&bt->left, 1) == 1)
			batch_send(bt);
		return DTX_EAGAIN;
	}
	if (err != DTX_OK) {
		proto_msg_free(rep);
		return err;
	}
	finish_hdr(s, rep, id);
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

// msg holds an encoded reply to request id that is over the body limit,
// which the client's socket would drop (it would time out): replaces it
// with an ERROR DTX_EPROTO that says so.
static dtx_err
oversized_reply(proto_server *s, nng_msg *msg, uint64_t id)
{
	size_t n = nng_msg_len(msg);
	proto_msg rep;
	proto_msg_init(&rep, PROTO_NONE);
	dtx_err err = proto_msg_set_error(&rep, DTX_EPROTO,
	    "the reply (%zu bytes) is over the body limit of %zu bytes; read "
	    "many keys in pages ('pg')",
	    n, s->lim.max_msg);
	if (err != DTX_OK)
		return err;
	finish_hdr(s, &rep, id);
	nng_msg_clear(msg);
	err = proto_encode(&rep, msg);
	proto_msg_free(&rep);
	return err;
}

// Ends a whole request's or a batch's token once its reply went out (or
// failed) and no thread is inside nng for it: gives its context back for
// reuse (or closes it), and counts it as answered, which lets close go on.
// Until then the server's socket must stay open: nng_ctx_send releases
// the context after the send completed, and a context released after its
// socket closed is torn down against the socket's destroyed lock (nng 1.5).
static void
tok_end(proto_defer *tok)
{
	proto_server *s = tok->s;
	// Only a context whose reply went out is reused: after a failed
	// send it may still hold its request. The token itself is kept
	// with its aio likewise; another thread may take it before this
	// returns (nng lets an aio start again while its callback runs), so
	// it is not touched once kept.
	bool keep = false, keep_tok = false;
	nng_ctx ctx = tok->ctx;
	pthread_mutex_lock(&s->dmu);
	if (tok->rv == 0 && s->nspare < SPARE_MAX) {
		s->spare[s->nspare++] = ctx;
		keep = true;
	}
	if (tok->rv == 0 && s->ntspare < SPARE_MAX) {
		tok->batch = s->tspare;
		s->tspare = tok;
		s->ntspare++;
		keep_tok = true;
	}
	pthread_mutex_unlock(&s->dmu);
	if (!keep_tok) {
		nng_aio_reap(tok->aio); // may run inside the aio's callback
		dtx_free(tok);
	}
	if (!keep)
		nng_ctx_close(ctx);
	pthread_mutex_lock(&s->dmu);
	if (--s->deferred == 0)
		pthread_cond_broadcast(&s->dcv);
	pthread_mutex_unlock(&s->dmu);
}

static void
tok_release(proto_defer *tok)
{
	if (atomic_fetch_sub(&tok->holds, 1) == 1)
		tok_end(tok);
}

// The reply of a deferred request went out (or failed).
static void
defer_sent(void *arg)
{
	proto_defer *tok = arg;
	int rv = nng_aio_result(tok->aio);
	if (rv != 0)
		nng_msg_free(nng_aio_get_msg(tok->aio));
	else
		atomic_fetch_add(&tok->s->replies, 1);
	nng_aio_set_msg(tok->aio, NULL);
	tok->rv = rv;
	if (rv == 0)
		replied(tok->types);
	tok_release(tok);
}

// A new token; with own_ctx it owns the context ctx (the reply goes out
// on it) and counts as outstanding until its reply was sent.
static proto_defer *
tok_new(proto_server *s, bool own_ctx, nng_ctx ctx)
{
	proto_defer *tok = NULL;
	if (own_ctx) {
		pthread_mutex_lock(&s->dmu);
		if ((tok = s->tspare) != NULL) {
			s->tspare = tok->batch;
			s->ntspare--;
		}
		pthread_mutex_unlock(&s->dmu);
	}
	if (tok != NULL) {
		nng_aio *aio = tok->aio;
		memset(tok, 0, sizeof(*tok));
		tok->aio = aio;
	} else if ((tok = dtx_calloc(1, sizeof(*tok))) == NULL) {
		return NULL;
	}
	tok->s = s;
	if (own_ctx) {
		if (tok->aio == NULL &&
		    nng_aio_alloc(&tok->aio, defer_sent, tok) != 0) {
			dtx_free(tok);
			return NULL;
		}
		tok->ctx = ctx;
		pthread_mutex_lock(&s->dmu);
		s->deferred++;
		pthread_mutex_unlock(&s->dmu);
	}
	return tok;
}

proto_defer *
proto_server_defer(proto_call *call)
{
	if (call == NULL || call->req == NULL || call->taken != NULL)
		return NULL;
	proto_defer *tok;
	if (call->breq == NULL) {
		if ((tok = tok_new(call->s, true, call->ctx)) == NULL)
			return NULL;
		tok->req = *call->req;
		tok->id = call->req->hdr.id;
		tok->start_ns = call->start_ns;
		proto_msg_init(call->req, PROTO_NONE); // the token owns it now
		call->taken = tok;
		return tok;
	}
	if (call->bt == NULL) {
		// The first deferred element: the batch gets its token,
		// which takes the BATCH and its reply (whose elements stay
		// where they are, so call->req stays valid).
		proto_defer *bt = tok_new(call->s, true, call->ctx);
		if (bt == NULL)
			return NULL;
		bt->req = *call->breq;
		bt->rep = *call->brep;
		bt->id = call->breq->hdr.id;
		atomic_store(&bt->left, 1);
		proto_msg_init(call->breq, PROTO_NONE);
		proto_msg_init(call->brep, PROTO_NONE);
		call->bt = bt;
	}
	if ((tok = tok_new(call->s, false, call->ctx)) == NULL)
		return NULL;
	tok->batch = call->bt;
	tok->idx = call->idx;
	tok->start_ns = call->start_ns;
	atomic_fetch_add(&call->bt->left, 1);
	call->taken = tok;
	return tok;
}

const proto_msg *
proto_defer_req(const proto_defer *tok)
{
	if (tok->batch != NULL)
		return &tok->batch->req.u.batch.msgs[tok->idx];
	return &tok->req;
}

// Encodes rep (consumed) and sends it on tok's context; defer_sent ends
// tok.
static void
tok_send(proto_defer *tok, proto_msg *rep)
{
	proto_server *s = tok->s;
	finish_hdr(s, rep, tok->id);
	tok->types = req_types(&tok->req);
	proto_msg_free(&tok->req);
	nng_msg *msg = NULL;
	dtx_err e =
	    nng_msg_alloc(&msg, 0) == 0 ? proto_encode(rep, msg) : DTX_ENOMEM;
	proto_msg_free(rep);
	if (e == DTX_OK && nng_msg_len(msg) > s->lim.max_msg)
		e = oversized_reply(s, msg, tok->id);
	if (e != DTX_OK) {
		// Nothing can be sent: the client times out.
		DTX_LOG(DTX_LOG_WARN, "PROTO_BADREPLY",
		    "a deferred reply cannot be encoded: %s", dtx_strerror(e));
		nng_msg_free(msg);
		tok->rv = NNG_ENOMEM;
		tok_end(tok);
		return;
	}
	atomic_store(&tok->holds, 2);
	nng_aio_set_msg(tok->aio, msg);
	nng_ctx_send(tok->ctx, tok->aio);
	tok_release(tok);
}

static void
batch_send(proto_defer *bt)
{
	tok_send(bt, &bt->rep);
}

void
proto_defer_reply(proto_defer *tok, dtx_err err, proto_msg *rep)
{
	proto_server *s = tok->s;
	proto_msg none;
	if (rep == NULL) {
		proto_msg_init(&none, PROTO_NONE);
		rep = &none;
	}
	if (err == DTX_OK && rep->hdr.type == PROTO_NONE)
		err = DTX_EINVAL;
	if (err != DTX_OK) {
		atomic_fetch_add(&s->handler_errors, 1);
		proto_msg_free(rep);
		proto_msg_init(rep, PROTO_NONE);
		(void)proto_msg_set_error(rep, err, "%s request failed: %s",
		    proto_type_name(proto_defer_req(tok)->hdr.type),
		    dtx_strerror(err));
	}
	if (s->cfg.replied != NULL)
		s->cfg.replied(s->cfg.arg, proto_defer_req(tok), rep,
		    dtx_mono_ns() - tok->start_ns);
	proto_defer *bt = tok->batch;
	if (bt == NULL) {
		tok_send(tok, rep);
		return;
	}
	proto_msg *slot = &bt->rep.u.batch.msgs[tok->idx];
	*slot = *rep;
	finish_hdr(s, slot, bt->req.u.batch.msgs[tok->idx].hdr.id);
	dtx_free(tok);
	if (atomic_fetch_sub(&bt->left, 1) == 1)
		batch_send(bt);
}

// A context for a worker whose own went to a token: a spare one, or new.
static int
ctx_replace(proto_server *s, nng_ctx *ctx)
{
	pthread_mutex_lock(&s->dmu);
	if (s->nspare > 0) {
		*ctx = s->spare[--s->nspare];
		pthread_mutex_unlock(&s->dmu);
		return 0;
	}
	pthread_mutex_unlock(&s->dmu);
	return nng_ctx_open(ctx, s->sock);
}

// ---------------------------------------------------------------- connections

// The entry of pipe id, or NULL. Called with pmu held.
static conn *
conn_find(proto_server *s, uint32_t pipe)
{
	for (uint32_t i = 0; i < s->nconns; i++)
		if (s->conns[i].pipe == pipe)
			return &s->conns[i];
	return NULL;
}

// A new connection gets an entry, or is closed when the cap is reached
// (before nng adds it to the socket); a closed one loses its entry (and
// with it the identity it was bound to).
static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	proto_server *s = arg;
	uint32_t id = (uint32_t)nng_pipe_id(p);
	pthread_mutex_lock(&s->pmu);
	if (ev == NNG_PIPE_EV_REM_POST) {
		conn *c = conn_find(s, id);
		if (c != NULL)
			*c = s->conns[--s->nconns];
		pthread_mutex_unlock(&s->pmu);
		return;
	}
	bool full = s->cfg.max_conns != 0 && s->nconns >= s->cfg.max_conns;
	if (!full && s->nconns == s->capconns) {
		uint32_t cap = s->capconns ? s->capconns * 2 : 16;
		conn *nc = dtx_realloc(s->conns, cap * sizeof(*nc));
		if (nc == NULL) {
			full = true;
		} else {
			s->conns = nc;
			s->capconns = cap;
		}
	}
	if (!full)
		s->conns[s->nconns++] = (conn) { .pipe = id };
	uint32_t n = s->nconns;
	pthread_mutex_unlock(&s->pmu);
	if (!full)
		return;
	uint64_t k = atomic_fetch_add(&s->conns_refused, 1) + 1;
	nng_pipe_close(p);
	if (proto__once_a_second(&s->cap_logged_ns))
		DTX_LOG(DTX_LOG_WARN, "CONN_CAP",
		    "a connection over the cap of %u closed (%u open; %llu "
		    "refused so far)",
		    s->cfg.max_conns, n, (unsigned long long)k);
}

// The connection's identity into *out; false when it has none (unbound,
// or gone).
static bool
conn_peer(proto_server *s, uint32_t pipe, proto_peer *out)
{
	pthread_mutex_lock(&s->pmu);
	conn *c = conn_find(s, pipe);
	bool ok = c != NULL && c->peer.authenticated;
	if (ok)
		*out = c->peer;
	pthread_mutex_unlock(&s->pmu);
	return ok;
}

// Builds an ERROR for the request with this id into msg.
static dtx_err refuse(proto_server *s, nng_msg *msg, uint64_t id, dtx_err code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static dtx_err
refuse(proto_server *s, nng_msg *msg, uint64_t id, dtx_err code,
    const char *fmt, ...)
{
	char why[PROTO_MAX_STR + 1];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	proto_msg rep;
	proto_msg_init(&rep, PROTO_NONE);
	dtx_err err = proto_msg_set_error(&rep, code, "%s", why);
	if (err != DTX_OK)
		return err;
	finish_hdr(s, &rep, id);
	nng_msg_clear(msg);
	err = proto_encode(&rep, msg);
	proto_msg_free(&rep);
	return err;
}

// Encodes rep (consumed) as the answer in msg.
static dtx_err
answer(proto_server *s, nng_msg *msg, proto_msg *rep, uint64_t id)
{
	finish_hdr(s, rep, id);
	nng_msg_clear(msg);
	dtx_err err = proto_encode(rep, msg);
	proto_msg_free(rep);
	return err;
}

// HELLO: a fresh nonce for this connection (any earlier one is void).
static dtx_err
serve_hello(proto_server *s, uint32_t pipe, const proto_msg *req, nng_msg *msg)
{
	uint8_t nonce[PROTO_NONCE_LEN];
	if (proto__random(nonce, sizeof(nonce)) != DTX_OK)
		return refuse(s, msg, req->hdr.id, DTX_EIO, "no randomness");
	pthread_mutex_lock(&s->pmu);
	conn *c = conn_find(s, pipe);
	if (c != NULL) {
		memcpy(c->nonce, nonce, sizeof(nonce));
		c->has_nonce = true;
	}
	pthread_mutex_unlock(&s->pmu);
	if (c == NULL)
		return refuse(
		    s, msg, req->hdr.id, DTX_ECLOSED, "no connection");
	proto_msg rep;
	proto_msg_init(&rep, PROTO_CHALLENGE);
	dtx_err err = proto_bytes_set(&rep.u.auth.nonce, nonce, sizeof(nonce));
	if (err != DTX_OK) {
		proto_msg_free(&rep);
		return err;
	}
	return answer(s, msg, &rep, req->hdr.id);
}

// AUTH: checks the certificate and the signature over this connection's
// nonce (used once), then binds the connection to the certificate's node.
static dtx_err
serve_auth(proto_server *s, uint32_t pipe, const proto_msg *req, nng_msg *msg)
{
	uint8_t nonce[PROTO_NONCE_LEN];
	char why[200] = "no HELLO before AUTH on this connection";
	uint32_t node = 0;
	proto_role role = PROTO_ROLE_NONE;
	pthread_mutex_lock(&s->pmu);
	conn *c = conn_find(s, pipe);
	bool have = c != NULL && c->has_nonce;
	if (have) {
		memcpy(nonce, c->nonce, sizeof(nonce));
		c->has_nonce = false;
	}
	pthread_mutex_unlock(&s->pmu);
	dtx_err err = have
	    ? proto_tls_verify_hello(s->cfg.tls, s->cfg.node_id, nonce,
	          &req->u.auth, &node, &role, why, sizeof(why))
	    : DTX_EPERM;
	if (err == DTX_OK) {
		pthread_mutex_lock(&s->pmu);
		if ((c = conn_find(s, pipe)) != NULL)
			c->peer = (proto_peer) { .node = node,
				.role = role,
				.authenticated = true };
		pthread_mutex_unlock(&s->pmu);
		atomic_fetch_add(&s->hellos, 1);
		DTX_LOG(DTX_LOG_DEBUG, "AUTH_OK", "connection %u is %s %u",
		    pipe, proto_role_name(role), node);
		proto_msg rep;
		proto_msg_init(&rep, PROTO_ACK);
		return answer(s, msg, &rep, req->hdr.id);
	}
	if (err == DTX_ENOMEM)
		return err;
	uint64_t k = atomic_fetch_add(&s->hello_failed, 1) + 1;
	if (proto__once_a_second(&s->auth_logged_ns))
		DTX_LOG(DTX_LOG_WARN, "AUTH_REFUSED",
		    "hello from node %u refused: %s (%llu refused so far)",
		    req->hdr.from, why, (unsigned long long)k);
	return refuse(s, msg, req->hdr.id, DTX_EPERM, "auth refused: %s", why);
}

// Who sent req, or a refusal in msg (*refused set): over TLS the
// connection must be bound and every "from" must be its node id.
static dtx_err
admit(proto_server *s, uint32_t pipe, const proto_msg *req, nng_msg *msg,
    proto_peer *peer, bool *refused)
{
	*refused = false;
	if (s->cfg.tls == NULL) {
		*peer = (proto_peer) { .node = req->hdr.from };
		return DTX_OK;
	}
	*refused = true;
	if (!conn_peer(s, pipe, peer)) {
		atomic_fetch_add(&s->unauth, 1);
		return refuse(s, msg, req->hdr.id, DTX_EPERM,
		    "unauthenticated: say HELLO first");
	}
	bool same = req->hdr.from == peer->node;
	if (req->hdr.type == PROTO_BATCH)
		for (uint32_t i = 0; i < req->u.batch.n && same; i++)
			same = req->u.batch.msgs[i].hdr.from == peer->node;
	if (!same) {
		atomic_fetch_add(&s->from_bad, 1);
		return refuse(s, msg, req->hdr.id, DTX_EPERM,
		    "from %u is not this connection's node %u", req->hdr.from,
		    peer->node);
	}
	*refused = false;
	return DTX_OK;
}

// Turns the request in msg into the reply, reusing the message buffer;
// *types gets what a handler answered (req_types; 0 for a refusal).
// DTX_EAGAIN: the handler deferred it (msg is left alone, ctx, the
// context it came on, belongs to the token).
static dtx_err
serve(proto_server *s, nng_ctx ctx, nng_msg *msg, uint64_t *types)
{
	char why[256];
	proto_msg req, rep;
	uint64_t t0 = dtx_mono_ns();
	*types = 0;
	atomic_fetch_add(&s->requests, 1);
	dtx_err err = proto_decode_nng(msg, &s->lim, &req, why, sizeof(why));
	if (err != DTX_OK) {
		if (err == DTX_EPROTO) {
			atomic_fetch_add(&s->decode_errors, 1);
			DTX_LOG(DTX_LOG_DEBUG, "PROTO_BADREQ", "%s", why);
		}
		return error_reply(s, msg, err, why);
	}
	uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
	if (s->cfg.tls != NULL &&
	    (req.hdr.type == PROTO_HELLO || req.hdr.type == PROTO_AUTH)) {
		err = req.hdr.type == PROTO_HELLO
		    ? serve_hello(s, pipe, &req, msg)
		    : serve_auth(s, pipe, &req, msg);
		proto_msg_free(&req);
		return err;
	}
	proto_call call = { .s = s, .ctx = ctx, .start_ns = t0 };
	bool refused;
	err = admit(s, pipe, &req, msg, &call.peer, &refused);
	if (refused || err != DTX_OK) {
		proto_msg_free(&req);
		return err;
	}
	observe(s, &req);
	*types = req_types(&req);
	if (req.hdr.type == PROTO_BATCH && !s->cfg.whole_batches) {
		err = handle_batch(s, &call, &req, &rep);
	} else {
		call.req = &req;
		err = handle_one(s, &call, &req, &rep);
		if (call.taken != NULL)
			err = DTX_EAGAIN;
	}
	if (err == DTX_EAGAIN) {
		// A token owns the request and the reply now.
		proto_msg_free(&req);
		proto_msg_free(&rep);
		return DTX_EAGAIN;
	}
	uint64_t id = req.hdr.id;
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
	if (err == DTX_OK && nng_msg_len(msg) > s->lim.max_msg)
		return oversized_reply(s, msg, id);
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
		uint64_t types;
		dtx_err err = serve(s, w->ctx, msg, &types);
		if (err == DTX_EAGAIN) {
			// The context belongs to the token now; nng keeps
			// the request's routing in the context, not in msg.
			nng_msg_free(msg);
			nng_aio_set_msg(w->aio, NULL);
			if ((rv = ctx_replace(s, &w->ctx)) != 0) {
				DTX_LOG(DTX_LOG_ERROR, "PROTO_CTX",
				    "a worker cannot open a context (%s) and "
				    "stops",
				    nng_strerror(rv));
				break;
			}
			continue;
		}
		if (err != DTX_OK) {
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
		replied(types);
	}
	return NULL;
}

// The bound URL: a tcp port 0 is replaced by the port the kernel chose.
static dtx_err
bound_url(proto_server *s, nng_listener l, const char *url)
{
	int port = 0;
	const char *colon = strrchr(url, ':');
	bool tcp = strncmp(url, "tcp://", 6) == 0 || proto__url_tls(url);
	if (tcp && colon != NULL && strcmp(colon, ":0") == 0 &&
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
	    out == NULL || cfg->vc_nodes > CLK_VC_MAX ||
	    proto__url_check(cfg->url, cfg->tls) != DTX_OK)
		return DTX_EINVAL;
	proto_server *s = dtx_calloc(1, sizeof(*s));
	if (s == NULL)
		return DTX_ENOMEM;
	s->cfg = *cfg;
	s->cfg.url = NULL;
	proto_limits in = { cfg->max_msg, cfg->vc_nodes };
	proto__limits(&in, &s->lim);
	s->n_workers = cfg->workers == 0 ? 8 : cfg->workers;
	pthread_mutex_init(&s->dmu, NULL);
	pthread_cond_init(&s->dcv, NULL);
	pthread_mutex_init(&s->pmu, NULL);
	s->spare = dtx_calloc(SPARE_MAX, sizeof(nng_ctx));
	if (s->spare == NULL) {
		pthread_mutex_destroy(&s->pmu);
		pthread_cond_destroy(&s->dcv);
		pthread_mutex_destroy(&s->dmu);
		dtx_free(s);
		return DTX_ENOMEM;
	}
	dtx_err err;
	int rv;
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		err = proto_from_nng(rv);
		goto fail;
	}
	s->sock_open = true;
	if ((err = proto__sock_limits(s->sock, s->lim.max_msg)) != DTX_OK)
		goto fail;
	if ((rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, on_pipe, s)) !=
	        0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, on_pipe, s)) !=
	        0) {
		err = proto_from_nng(rv);
		goto fail;
	}
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
	if ((rv = nng_listener_create(&l, s->sock, cfg->url)) == 0 &&
	    cfg->tls != NULL)
		rv = nng_listener_set_ptr(
		    l, NNG_OPT_TLS_CONFIG, proto__tls_nng(cfg->tls, true));
	if (rv == 0)
		rv = nng_listener_start(l, 0);
	if (rv != 0) {
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
	pthread_mutex_lock(&m->pmu);
	out->conns = m->nconns;
	pthread_mutex_unlock(&m->pmu);
	out->conns_refused = atomic_load(&m->conns_refused);
	out->hellos = atomic_load(&m->hellos);
	out->hello_failed = atomic_load(&m->hello_failed);
	out->unauthenticated = atomic_load(&m->unauth);
	out->from_mismatch = atomic_load(&m->from_bad);
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
	// Deferred requests are answered by their handlers' completions
	// (which end within their own timeouts): wait for the last reply to
	// be out, and its sender out of nng (tok_end), before the contexts
	// go.
	pthread_mutex_lock(&s->dmu);
	while (s->deferred > 0)
		pthread_cond_wait(&s->dcv, &s->dmu);
	pthread_mutex_unlock(&s->dmu);
	// Kept tokens' aios (freeing waits for a callback that kept one
	// and still runs).
	while (s->tspare != NULL) {
		proto_defer *tok = s->tspare;
		s->tspare = tok->batch;
		nng_aio_free(tok->aio);
		dtx_free(tok);
	}
	if (s->sock_open) {
		nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, NULL, NULL);
		nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
		nng_close(s->sock);
	}
	if (s->workers != NULL) {
		for (uint32_t i = 0; i < s->n_workers; i++)
			if (s->workers[i].aio != NULL)
				nng_aio_free(s->workers[i].aio);
		dtx_free(s->workers);
	}
	dtx_free(s->spare);
	dtx_free(s->conns);
	pthread_mutex_destroy(&s->pmu);
	pthread_cond_destroy(&s->dcv);
	pthread_mutex_destroy(&s->dmu);
	dtx_free(s->url);
	dtx_free(s);
}
