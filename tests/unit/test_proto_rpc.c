// SPDX-License-Identifier: MIT
//
// The RPC helpers over real sockets: echo over tcp and ipc, ERROR replies to
// garbage and to failing handlers, oversized messages, the definite versus
// indefinite failures (unreachable, timed out), retries only where safe,
// many concurrent callers, and batches answered in order.

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

// ---------------------------------------------------------------- handler

// Answers PING with PONG, ACK/ABORT with an ACK of the same txid, FAULT
// with an ERROR, STATUS with a handler error, and counts its calls.
typedef struct echo {
	atomic_int calls;
	atomic_int stamps;
	atomic_int observed;
} echo;

static dtx_err
echo_handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	(void)call;
	echo *e = arg;
	atomic_fetch_add(&e->calls, 1);
	switch (req->hdr.type) {
	case PROTO_PING:
		rep->hdr.type = PROTO_PONG;
		return DTX_OK;
	case PROTO_ACK:
	case PROTO_ABORT:
		rep->hdr.type = PROTO_ACK;
		rep->u.txid.txid = req->u.txid.txid;
		return DTX_OK;
	case PROTO_FAULT:
		return proto_msg_set_error(
		    rep, DTX_EPERM, "fault '%s' refused", req->u.fault.kind);
	case PROTO_STATUS:
		return DTX_ENOENT;
	case PROTO_READ: // echo the number of keys back
		rep->hdr.type = PROTO_ACK;
		rep->u.txid.txid = req->u.read.n_keys;
		return DTX_OK;
	case PROTO_BATCH: // only with whole_batches
		rep->hdr.type = PROTO_BATCH;
		rep->u.batch.msgs =
		    dtx_calloc(req->u.batch.n, sizeof(proto_msg));
		if (rep->u.batch.msgs == NULL)
			return DTX_ENOMEM;
		rep->u.batch.n = req->u.batch.n;
		for (uint32_t i = 0; i < req->u.batch.n; i++) {
			proto_msg *r = &rep->u.batch.msgs[i];
			proto_msg_init(r, PROTO_ACK);
			r->hdr.id = req->u.batch.msgs[i].hdr.id;
			r->u.txid.txid =
			    req->u.batch.msgs[i].u.txid.txid + 1000;
		}
		return DTX_OK;
	default:
		return DTX_EINVAL;
	}
}

static void
echo_stamp(void *arg, proto_hdr *hdr)
{
	echo *e = arg;
	atomic_fetch_add(&e->stamps, 1);
	hdr->hlc = clk_ts_make(1000, 1);
	hdr->vc.n = 4;
	hdr->vc.c[1] = 77;
}

static dtx_err
echo_observe(void *arg, const proto_hdr *hdr)
{
	echo *e = arg;
	(void)hdr;
	atomic_fetch_add(&e->observed, 1);
	return DTX_OK;
}

static proto_server *
start_server(const char *url, echo *e, size_t max_msg, bool whole)
{
	proto_server_cfg cfg = {
		.url = url,
		.workers = 4,
		.max_msg = max_msg,
		.node_id = 9,
		.whole_batches = whole,
		.handler = echo_handler,
		.stamp = echo_stamp,
		.observe = echo_observe,
		.arg = e,
	};
	proto_server *s = NULL;
	assert_int_equal(proto_server_open(&cfg, &s), DTX_OK);
	return s;
}

static proto_client *
start_client(const char *url, uint32_t timeout_ms)
{
	proto_client_cfg cfg = {
		.url = url,
		.node_id = 3,
		.timeout_ms = timeout_ms,
		.connect_wait_ms = 1000,
		.seed = 1,
	};
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cfg, &c), DTX_OK);
	return c;
}

static void
ping_ok(proto_client *c)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	assert_true(rep.hdr.id == req.hdr.id);
	assert_int_equal(rep.hdr.from, 9);
	proto_msg_free(&rep);
}

// ---------------------------------------------------------------- tests

static void
echo_over(const char *url)
{
	echo e = { 0 };
	proto_server *s = start_server(url, &e, 0, false);
	const char *bound = proto_server_url(s);
	assert_non_null(bound);
	if (strncmp(url, "tcp", 3) == 0)
		assert_null(strstr(bound, ":0\0"));
	proto_client *c = start_client(bound, 2000);
	for (int i = 0; i < 20; i++)
		ping_ok(c);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_ACK);
	req.u.txid.txid = 4242;
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	assert_true(rep.u.txid.txid == 4242);
	// The server stamped its clocks and echoed the request id.
	assert_true(rep.hdr.hlc == clk_ts_make(1000, 1));
	assert_true(rep.hdr.vc.c[1] == 77);
	assert_true(rep.hdr.id == req.hdr.id);
	assert_int_equal(req.hdr.from, 3);
	proto_msg_free(&rep);
	assert_int_equal(atomic_load(&e.calls), 21);
	assert_int_equal(atomic_load(&e.observed), 21);
	proto_server_stats st;
	proto_server_stats_get(s, &st);
	assert_true(st.requests == 21);
	assert_true(st.decode_errors == 0);
	proto_client_close(c);
	proto_server_close(s);
}

static void
test_echo_tcp(void **state)
{
	(void)state;
	echo_over("tcp://127.0.0.1:0");
}

static void
test_echo_ipc(void **state)
{
	(void)state;
	char url[128];
	snprintf(url, sizeof(url), "ipc:///tmp/dtx-test-proto-%d.sock",
	    (int)getpid());
	echo_over(url);
	unlink(url + strlen("ipc://"));
}

// A client's observe hook that refuses every reply whose header says it
// came from node 9 (as a daemon refuses a sender whose clock is too far
// ahead), counting what it saw.
static dtx_err
refuse_node9(void *arg, const proto_hdr *hdr)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	return hdr->from == 9 ? DTX_ECLOCK : DTX_OK;
}

// A reply the client's observer refuses is dropped: the call fails with
// the observer's error, and no reply reaches the caller, whole or in a
// BATCH, even though the server did the work.
static void
test_reply_refused_by_observer(void **state)
{
	(void)state;
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, false);
	atomic_int seen = 0;
	proto_client_cfg cfg = {
		.url = proto_server_url(s),
		.node_id = 3,
		.timeout_ms = 2000,
		.connect_wait_ms = 1000,
		.seed = 1,
		.observe = refuse_node9,
		.arg = &seen,
	};
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cfg, &c), DTX_OK);
	proto_msg req, rep;
	memset(&rep, 0, sizeof(rep));
	proto_msg_init(&req, PROTO_PING);
	char why[128] = "";
	proto_call_opts o = { .why = why, .why_len = sizeof(why) };
	assert_int_equal(proto_client_call(c, &req, &rep, &o), DTX_ECLOCK);
	assert_int_equal(rep.hdr.type, PROTO_NONE);
	assert_non_null(strstr(why, "dropped"));
	assert_int_equal(atomic_load(&e.calls), 1); // served all the same
	assert_int_equal(atomic_load(&seen), 1);
	// A BATCH: the whole reply goes, though every element was observed.
	proto_msg b, elems[2];
	proto_msg_init(&elems[0], PROTO_PING);
	proto_msg_init(&elems[1], PROTO_PING);
	proto_msg_init(&b, PROTO_BATCH);
	b.u.batch.n = 2;
	b.u.batch.msgs = elems;
	assert_int_equal(proto_client_call(c, &b, &rep, NULL), DTX_ECLOCK);
	assert_int_equal(rep.hdr.type, PROTO_NONE);
	assert_int_equal(atomic_load(&seen), 4);
	proto_client_close(c);
	proto_server_close(s);
}

static void
test_refused(void **state)
{
	(void)state;
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, false);
	proto_client *c = start_client(proto_server_url(s), 2000);
	proto_msg req, rep;

	// The handler answers with an ERROR of its own.
	proto_msg_init(&req, PROTO_FAULT);
	req.u.fault.kind = "crash_at";
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_EREFUSED);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_int_equal(rep.u.error.code, DTX_EPERM);
	assert_string_equal(rep.u.error.reason, "fault 'crash_at' refused");
	proto_msg_free(&rep);

	// The handler fails: the server turns the code into an ERROR.
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = 1;
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_ENOENT);
	assert_non_null(strstr(rep.u.error.reason, "status"));
	proto_msg_free(&rep);
	proto_server_stats st;
	proto_server_stats_get(s, &st);
	assert_true(st.handler_errors == 1);

	// A request the client cannot encode never leaves.
	proto_msg_init(&req, PROTO_SAGA_FORGET);
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_EINVAL);

	proto_client_close(c);
	proto_server_close(s);
}

// A raw REQ socket sends bytes that are not msgpack: the server answers
// with ERROR EPROTO, counts it, and keeps serving.
static void
test_garbage_answered(void **state)
{
	(void)state;
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, false);
	nng_socket raw;
	assert_int_equal(nng_req0_open(&raw), 0);
	assert_int_equal(nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_dial(raw, proto_server_url(s), NULL, 0), 0);
	const char *junk[] = { "hello, not msgpack", "\xc1", "\x81\xa1v\x01" };
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		assert_int_equal(
		    nng_send(raw, (void *)junk[i], strlen(junk[i]), 0), 0);
		nng_msg *m;
		assert_int_equal(nng_recvmsg(raw, &m, 0), 0);
		proto_msg rep;
		char why[256];
		assert_int_equal(
		    proto_decode_nng(m, NULL, &rep, why, sizeof(why)), DTX_OK);
		nng_msg_free(m);
		assert_int_equal(rep.hdr.type, PROTO_ERROR);
		assert_int_equal(rep.u.error.code, DTX_EPROTO);
		assert_non_null(rep.u.error.reason);
		assert_true(strlen(rep.u.error.reason) > 0);
		proto_msg_free(&rep);
	}
	nng_close(raw);
	proto_server_stats st;
	proto_server_stats_get(s, &st);
	assert_true(st.decode_errors == 3);
	assert_int_equal(atomic_load(&e.calls), 0);

	proto_client *c = start_client(proto_server_url(s), 2000);
	ping_ok(c);
	proto_client_close(c);
	proto_server_close(s);
}

// A message over the server's receive limit costs the connection, not the
// server; the client sees an indefinite failure and recovers.
static void
test_oversized(void **state)
{
	(void)state;
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 4096, false);
	proto_client *c = start_client(proto_server_url(s), 3000);
	ping_ok(c);

	proto_msg req, rep;
	proto_msg_init(&req, PROTO_READ);
	uint32_t n = 2000;
	req.u.read.keys = dtx_calloc(n, sizeof(proto_bytes));
	assert_non_null(req.u.read.keys);
	req.u.read.n_keys = n;
	for (uint32_t i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "key-%u", i);
		assert_int_equal(
		    proto_bytes_set(&req.u.read.keys[i], k, strlen(k)), DTX_OK);
	}
	uint64_t t0 = dtx_mono_ns();
	dtx_err err = proto_client_call(c, &req, &rep, NULL);
	assert_true(err == DTX_ETIMEDOUT || err == DTX_EUNREACH);
	// The lost connection ends the call early, not at the timeout.
	assert_true(dtx_mono_ns() - t0 < 2500ull * 1000000);
	proto_msg_free(&req);
	assert_int_equal(atomic_load(&e.calls), 1);

	// A small request goes through once the client has reconnected.
	proto_msg_init(&req, PROTO_PING);
	proto_retry retry = { .attempts = 50, .base_ms = 10, .cap_ms = 50 };
	proto_call_opts opts = { .retry = &retry, .idempotent = true };
	assert_int_equal(proto_client_call(c, &req, &rep, &opts), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	proto_client_close(c);
	proto_server_close(s);
}

// The encoded size of req as a client numbering its requests below 128
// sends it (node 3, no clock stamp).
static size_t
wire_size(const proto_msg *req)
{
	proto_msg m = *req;
	m.hdr.version = PROTO_VERSION;
	m.hdr.id = 1;
	m.hdr.from = 3;
	nng_msg *msg;
	assert_int_equal(nng_msg_alloc(&msg, 0), 0);
	assert_int_equal(proto_encode(&m, msg), DTX_OK);
	size_t n = nng_msg_len(msg);
	nng_msg_free(msg);
	return n;
}

// A READ of 26 keys whose body is exactly n bytes (keys stay under 256
// bytes, so each length byte keeps its size).
static void
read_of_size(proto_msg *req, uint8_t *buf, size_t n)
{
	proto_msg_init(req, PROTO_READ);
	req->u.read.n_keys = 26;
	req->u.read.keys = dtx_calloc(26, sizeof(proto_bytes));
	assert_non_null(req->u.read.keys);
	for (int i = 0; i < 26; i++)
		req->u.read.keys[i] = (proto_bytes) { .p = buf, .n = 150 };
	size_t base = wire_size(req);
	int64_t last = 150 + (int64_t)n - (int64_t)base;
	assert_true(last >= 1 && last <= 255);
	req->u.read.keys[25].n = (uint32_t)last;
	assert_int_equal(wire_size(req), n);
}

// The body limit is exact: limit - 1 and limit are served, limit + 1 is
// answered with an ERROR naming the limit (the connection stays).
static void
test_body_limit(void **state)
{
	(void)state;
	echo e = { 0 };
	const size_t limit = 4096;
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, limit, false);
	proto_client *c = start_client(proto_server_url(s), 3000);
	static uint8_t buf[256];
	memset(buf, 'k', sizeof(buf));
	for (size_t n = limit - 1; n <= limit + 1; n++) {
		proto_msg req, rep;
		read_of_size(&req, buf, n);
		dtx_err err = proto_client_call(c, &req, &rep, NULL);
		dtx_free(req.u.read.keys);
		if (n <= limit) {
			assert_int_equal(err, DTX_OK);
			assert_int_equal(rep.hdr.type, PROTO_ACK);
			assert_int_equal(rep.u.txid.txid, 26);
		} else {
			assert_int_equal(err, DTX_EREFUSED);
			assert_int_equal(rep.u.error.code, DTX_EPROTO);
			assert_non_null(strstr(rep.u.error.reason, "4096"));
		}
		proto_msg_free(&rep);
	}
	assert_int_equal(atomic_load(&e.calls), 2);
	proto_server_stats st;
	proto_server_stats_get(s, &st);
	assert_int_equal(st.decode_errors, 1);
	proto_client_close(c);
	proto_server_close(s);
}

// A port nobody listens on: not delivered, and said quickly.
static void
test_unreachable(void **state)
{
	(void)state;
	// Find a free port by binding and closing a listener.
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, false);
	char url[128];
	snprintf(url, sizeof(url), "%s", proto_server_url(s));
	proto_server_close(s);

	proto_client_cfg cfg = { .url = url, .timeout_ms = 5000 };
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cfg, &c), DTX_OK);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_EUNREACH);
	uint64_t ms = (dtx_mono_ns() - t0) / 1000000;
	assert_true(ms < 1000);
	assert_false(proto_client_connected(c));
	proto_client_close(c);

	// Bad URLs are refused at open.
	cfg.url = "nosuch://x";
	assert_int_equal(proto_client_open(&cfg, &c), DTX_EINVAL);
	proto_server_cfg scfg = {
		.url = "tcp://256.1.1.1:1", .handler = echo_handler, .arg = &e
	};
	assert_int_not_equal(proto_server_open(&scfg, &s), DTX_OK);
}

// A peer that takes requests but never answers them, or with pings,
// answers PING alone; it counts the connections made to it and closed.
typedef struct mute {
	nng_socket sock;
	bool pings;
	atomic_int received, answered, added, removed;
	pthread_t th;
} mute;

// Answers a PING in msg (consumed); anything else is dropped.
static void
mute_answer(mute *m, nng_msg *msg)
{
	proto_msg req, rep;
	char why[128];
	if (proto_decode_nng(msg, NULL, &req, why, sizeof(why)) != DTX_OK) {
		nng_msg_free(msg);
		return;
	}
	bool ping = req.hdr.type == PROTO_PING;
	uint64_t id = req.hdr.id;
	proto_msg_free(&req);
	if (!ping) {
		nng_msg_free(msg);
		return;
	}
	proto_msg_init(&rep, PROTO_PONG);
	rep.hdr.version = PROTO_VERSION;
	rep.hdr.id = id;
	nng_msg_clear(msg);
	assert_int_equal(proto_encode(&rep, msg), DTX_OK);
	atomic_fetch_add(&m->answered, 1);
	if (nng_sendmsg(m->sock, msg, 0) != 0)
		nng_msg_free(msg);
}

static void *
mute_main(void *arg)
{
	mute *m = arg;
	for (;;) {
		nng_msg *msg;
		int rv = nng_recvmsg(m->sock, &msg, 0);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue;
		atomic_fetch_add(&m->received, 1);
		if (m->pings)
			mute_answer(m, msg);
		else
			nng_msg_free(msg);
	}
	return NULL;
}

static void
mute_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	mute *m = arg;
	atomic_fetch_add(
	    ev == NNG_PIPE_EV_ADD_POST ? &m->added : &m->removed, 1);
}

static void
mute_start(mute *m, char *url, size_t len)
{
	atomic_store(&m->received, 0);
	atomic_store(&m->answered, 0);
	atomic_store(&m->added, 0);
	atomic_store(&m->removed, 0);
	assert_int_equal(nng_rep0_open(&m->sock), 0);
	assert_int_equal(
	    nng_pipe_notify(m->sock, NNG_PIPE_EV_ADD_POST, mute_pipe, m), 0);
	assert_int_equal(
	    nng_pipe_notify(m->sock, NNG_PIPE_EV_REM_POST, mute_pipe, m), 0);
	nng_listener l;
	assert_int_equal(nng_listen(m->sock, "tcp://127.0.0.1:0", &l, 0), 0);
	int port;
	assert_int_equal(
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	snprintf(url, len, "tcp://127.0.0.1:%d", port);
	assert_int_equal(pthread_create(&m->th, NULL, mute_main, m), 0);
}

static void
mute_stop(mute *m)
{
	nng_close(m->sock);
	pthread_join(m->th, NULL);
}

static void
test_timeout_and_retry_policy(void **state)
{
	(void)state;
	mute m = { 0 };
	char url[128];
	mute_start(&m, url, sizeof(url));
	proto_client *c = start_client(url, 5000);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_ABORT);
	req.u.txid.txid = 1;
	proto_retry retry = { .attempts = 3, .base_ms = 5, .cap_ms = 10 };

	// Not idempotent: one try, the outcome is unknown.
	proto_call_opts opts = { .timeout_ms = 150, .retry = &retry };
	uint64_t t0 = dtx_mono_ns();
	assert_int_equal(
	    proto_client_call(c, &req, &rep, &opts), DTX_ETIMEDOUT);
	uint64_t ms = (dtx_mono_ns() - t0) / 1000000;
	assert_true(ms >= 140 && ms < 2000);
	assert_int_equal(atomic_load(&m.received), 1);

	// Idempotent: all three tries reach the peer.
	opts.idempotent = true;
	assert_int_equal(
	    proto_client_call(c, &req, &rep, &opts), DTX_ETIMEDOUT);
	assert_int_equal(atomic_load(&m.received), 4);

	// No timed resends by nng underneath: nothing more arrives.
	dtx_sleep_ms(300);
	assert_int_equal(atomic_load(&m.received), 4);
	proto_client_close(c);
	mute_stop(&m);
}

// Calls ABORT (swallowed: times out after 200 ms) and, with pings, PING
// (answered) in turn, for ms.
static void
mute_calls(proto_client *c, uint32_t ms, bool pings)
{
	proto_call_opts opts = { .timeout_ms = 200 };
	uint64_t end = dtx_mono_ns() + (uint64_t)ms * 1000000ULL;
	while (dtx_mono_ns() < end) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_ABORT);
		req.u.txid.txid = 1;
		dtx_err err = proto_client_call(c, &req, &rep, &opts);
		assert_true(err == DTX_ETIMEDOUT || err == DTX_EUNREACH);
		if (!pings)
			continue;
		proto_msg_init(&req, PROTO_PING);
		if (proto_client_call(c, &req, &rep, &opts) == DTX_OK)
			proto_msg_free(&rep);
	}
}

// A connection that brings nothing back while calls time out is closed
// and dialled again (CONN_SILENT: a peer that died unnoticed behind a
// partition); one that answers some calls is kept however many others
// time out.
static void
test_silent_connection_redialled(void **state)
{
	(void)state;
	mute m = { .pings = true };
	char url[128];
	mute_start(&m, url, sizeof(url));
	proto_client *c = start_client(url, 1000);

	// Answered now and then: the one connection stays for 7 s.
	mute_calls(c, 7000, true);
	assert_true(atomic_load(&m.answered) > 0);
	assert_int_equal(atomic_load(&m.added), 1);
	assert_int_equal(atomic_load(&m.removed), 0);

	// Nothing answered: closed after 5 s of timeouts, and dialled again.
	mute_calls(c, 7500, false);
	assert_true(atomic_load(&m.removed) >= 1);
	assert_true(atomic_load(&m.added) >= 2);
	proto_client_close(c);
	mute_stop(&m);
}

// Unreachable calls are retried even when not idempotent, since the
// request never left: a server that comes up late is reached.
typedef struct late {
	char url[128];
	echo e;
	proto_server *s;
} late;

static void *
late_main(void *arg)
{
	late *l = arg;
	dtx_sleep_ms(150);
	proto_server_cfg cfg = {
		.url = l->url, .handler = echo_handler, .arg = &l->e
	};
	if (proto_server_open(&cfg, &l->s) != DTX_OK)
		l->s = NULL;
	return NULL;
}

static void
test_retry_unreachable(void **state)
{
	(void)state;
	late l;
	memset(&l, 0, sizeof(l));
	snprintf(l.url, sizeof(l.url), "ipc:///tmp/dtx-test-late-%d.sock",
	    (int)getpid());
	unlink(l.url + strlen("ipc://"));
	proto_client_cfg cfg = { .url = l.url,
		.timeout_ms = 2000,
		.connect_wait_ms = 20,
		.retry = { .attempts = 100, .base_ms = 10, .cap_ms = 40 } };
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cfg, &c), DTX_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, late_main, &l), 0);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_ABORT);
	req.u.txid.txid = 5;
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_OK);
	assert_true(rep.u.txid.txid == 5);
	proto_msg_free(&rep);
	pthread_join(th, NULL);
	assert_non_null(l.s);
	assert_int_equal(atomic_load(&l.e.calls), 1);
	proto_client_close(c);
	proto_server_close(l.s);
	unlink(l.url + strlen("ipc://"));
}

typedef struct caller {
	proto_client *c;
	int id;
	int bad;
} caller;

static void *
caller_main(void *arg)
{
	caller *k = arg;
	for (int i = 0; i < 300; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_ACK);
		req.u.txid.txid = (uint64_t)k->id * 100000 + (uint64_t)i;
		if (proto_client_call(k->c, &req, &rep, NULL) != DTX_OK) {
			k->bad++;
			continue;
		}
		if (rep.hdr.type != PROTO_ACK ||
		    rep.u.txid.txid != req.u.txid.txid ||
		    rep.hdr.id != req.hdr.id)
			k->bad++;
		proto_msg_free(&rep);
	}
	return NULL;
}

static void
test_concurrent_callers(void **state)
{
	(void)state;
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, false);
	proto_client *c = start_client(proto_server_url(s), 10000);
	enum { N = 12 };
	caller k[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		k[i] = (caller) { .c = c, .id = i + 1 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, caller_main, &k[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(k[i].bad, 0);
	}
	assert_int_equal(atomic_load(&e.calls), N * 300);
	proto_client_close(c);
	proto_server_close(s);
}

static void
batch_round(bool whole)
{
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, whole);
	proto_client *c = start_client(proto_server_url(s), 5000);
	enum { N = 200 };
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_BATCH);
	req.u.batch.msgs = dtx_calloc(N, sizeof(proto_msg));
	assert_non_null(req.u.batch.msgs);
	req.u.batch.n = N;
	for (uint32_t i = 0; i < N; i++) {
		proto_msg_init(&req.u.batch.msgs[i], PROTO_ABORT);
		req.u.batch.msgs[i].u.txid.txid = i;
	}
	// One element the handler refuses: its slot holds an ERROR.
	if (!whole)
		proto_msg_init(&req.u.batch.msgs[7], PROTO_STATUS);
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_BATCH);
	assert_int_equal(rep.u.batch.n, N);
	for (uint32_t i = 0; i < N; i++) {
		const proto_msg *r = &rep.u.batch.msgs[i];
		assert_true(r->hdr.id == req.u.batch.msgs[i].hdr.id);
		if (!whole && i == 7) {
			assert_int_equal(r->hdr.type, PROTO_ERROR);
			assert_int_equal(r->u.error.code, DTX_ENOENT);
			continue;
		}
		assert_int_equal(r->hdr.type, PROTO_ACK);
		assert_true(r->u.txid.txid == (whole ? i + 1000 : i));
	}
	// Element ids are distinct.
	assert_true(req.u.batch.msgs[0].hdr.id != req.u.batch.msgs[1].hdr.id);
	assert_int_equal(atomic_load(&e.calls), whole ? 1 : N);
	// Each element and the envelope were stamped and observed.
	assert_int_equal(atomic_load(&e.observed), N + 1);
	assert_int_equal(atomic_load(&e.stamps), N + 1);
	assert_true(rep.u.batch.msgs[N - 1].hdr.hlc == clk_ts_make(1000, 1));
	assert_int_equal(rep.u.batch.msgs[N - 1].hdr.from, 9);
	proto_msg_free(&rep);
	proto_msg_free(&req);
	proto_client_close(c);
	proto_server_close(s);
}

static void
test_batch_in_order(void **state)
{
	(void)state;
	batch_round(false);
	batch_round(true);
}

// Results of asynchronous calls, collected under a lock.
typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	dtx_err err[256];
	uint64_t tx[256];
} waiter;

typedef struct wslot {
	waiter *w;
	int i;
} wslot;

static void
on_done(void *arg, dtx_err err, proto_msg *rep)
{
	wslot *s = arg;
	waiter *w = s->w;
	uint64_t tx = UINT64_MAX;
	if (rep != NULL) {
		if (rep->hdr.type == PROTO_ACK)
			tx = rep->u.txid.txid;
		proto_msg_free(rep);
	}
	pthread_mutex_lock(&w->mu);
	w->err[s->i] = err;
	w->tx[s->i] = tx;
	w->done++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
wait_for(waiter *w, int n)
{
	pthread_mutex_lock(&w->mu);
	while (w->done < n)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void
test_async_calls(void **state)
{
	(void)state;
	static waiter w = { .mu = PTHREAD_MUTEX_INITIALIZER,
		.cv = PTHREAD_COND_INITIALIZER };
	static wslot slots[256];
	echo e = { 0 };
	proto_server *s = start_server("tcp://127.0.0.1:0", &e, 0, false);
	proto_client *c = start_client(proto_server_url(s), 5000);
	enum { N = 200 };
	for (int i = 0; i < N; i++) {
		slots[i] = (wslot) { &w, i };
		proto_msg req;
		proto_msg_init(&req, PROTO_ACK);
		req.u.txid.txid = 5000 + (uint64_t)i;
		assert_int_equal(
		    proto_client_call_async(c, &req, NULL, on_done, &slots[i]),
		    DTX_OK);
	}
	wait_for(&w, N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(w.err[i], DTX_OK);
		assert_true(w.tx[i] == 5000 + (uint64_t)i);
	}
	// A refusal carries the ERROR reply.
	w.done = 0;
	proto_msg req;
	proto_msg_init(&req, PROTO_STATUS);
	assert_int_equal(
	    proto_client_call_async(c, &req, NULL, on_done, &slots[0]), DTX_OK);
	wait_for(&w, 1);
	assert_int_equal(w.err[0], DTX_EREFUSED);
	// Bad requests fail at once and never call back.
	proto_msg_init(&req, PROTO_SAGA_FORGET);
	assert_int_equal(
	    proto_client_call_async(c, &req, NULL, on_done, &slots[0]),
	    DTX_EINVAL);
	proto_client_close(c);
	proto_server_close(s);

	// Timeouts, with retries only for idempotent calls.
	mute m = { 0 };
	char url[128];
	mute_start(&m, url, sizeof(url));
	c = start_client(url, 5000);
	proto_retry retry = { .attempts = 3, .base_ms = 5, .cap_ms = 10 };
	proto_call_opts opts = { .timeout_ms = 100, .retry = &retry };
	w.done = 0;
	proto_msg_init(&req, PROTO_ABORT);
	assert_int_equal(
	    proto_client_call_async(c, &req, &opts, on_done, &slots[0]),
	    DTX_OK);
	opts.idempotent = true;
	assert_int_equal(
	    proto_client_call_async(c, &req, &opts, on_done, &slots[1]),
	    DTX_OK);
	wait_for(&w, 2);
	assert_int_equal(w.err[0], DTX_ETIMEDOUT);
	assert_int_equal(w.err[1], DTX_ETIMEDOUT);
	assert_int_equal(atomic_load(&m.received), 4);
	proto_client_close(c);
	mute_stop(&m);

	// Nobody listening: not delivered.
	proto_client_cfg cfg = { .url = url, .connect_wait_ms = 50 };
	assert_int_equal(proto_client_open(&cfg, &c), DTX_OK);
	w.done = 0;
	assert_int_equal(
	    proto_client_call_async(c, &req, NULL, on_done, &slots[0]), DTX_OK);
	wait_for(&w, 1);
	assert_int_equal(w.err[0], DTX_EUNREACH);
	proto_client_close(c);
}

// ---------------------------------------------------------------- deferred

// A handler that defers: ACK with an odd txid is answered later by the
// replier thread (newest first, so replies overtake each other), an even
// one at once; STATUS is deferred and answered with an error; txid 1 is
// held until a request with txid 2 has been answered inline, which can
// only happen if the held request gave its worker back.
typedef struct held {
	proto_defer *tok;
	uint64_t txid;
	dtx_err err;
} held;

typedef struct dfx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	held q[4096];
	size_t n;
	size_t taken; // requests deferred so far
	size_t started; // proto_defer_reply calls begun so far
	bool two_seen, stop;
	bool after_stop; // hold every reply until the server is closing
	uint32_t delay_ms; // before each reply
	uint64_t stop_ns, close_ns; // close called, close returned
	size_t started_at_close; // started when close returned
	pthread_t th;
} dfx;

static dtx_err
defer_handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	dfx *d = arg;
	if (req->hdr.type == PROTO_ACK && req->u.txid.txid % 2 == 0) {
		rep->hdr.type = PROTO_ACK;
		rep->u.txid.txid = req->u.txid.txid;
		if (req->u.txid.txid == 2) {
			pthread_mutex_lock(&d->mu);
			d->two_seen = true;
			pthread_cond_broadcast(&d->cv);
			pthread_mutex_unlock(&d->mu);
		}
		return DTX_OK;
	}
	if (req->hdr.type != PROTO_ACK && req->hdr.type != PROTO_STATUS)
		return DTX_EINVAL;
	proto_defer *tok = proto_server_defer(call);
	if (tok == NULL)
		return DTX_ENOMEM;
	const proto_msg *r = proto_defer_req(tok); // req is emptied now
	pthread_mutex_lock(&d->mu);
	assert_true(d->n < 4096);
	d->taken++;
	d->q[d->n++] =
	    (held) { tok, r->hdr.type == PROTO_ACK ? r->u.txid.txid : 0,
		    r->hdr.type == PROTO_STATUS ? DTX_ENOENT : DTX_OK };
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return DTX_OK;
}

static void *
replier_main(void *arg)
{
	dfx *d = arg;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		// txid 1 waits for txid 2; the rest go newest first.
		size_t pick = d->n;
		for (size_t i = d->n; i-- > 0;)
			if (d->q[i].txid != 1 || d->two_seen) {
				pick = i;
				break;
			}
		if (pick == d->n || (d->after_stop && !d->stop)) {
			if (d->stop && d->n == 0)
				break;
			pthread_cond_wait(&d->cv, &d->mu);
			continue;
		}
		held h = d->q[pick];
		d->q[pick] = d->q[--d->n];
		pthread_mutex_unlock(&d->mu);
		if (d->delay_ms > 0)
			dtx_sleep_ms(d->delay_ms);
		pthread_mutex_lock(&d->mu);
		d->started++;
		pthread_mutex_unlock(&d->mu);
		proto_msg rep;
		proto_msg_init(&rep, PROTO_ACK);
		rep.u.txid.txid = h.txid;
		proto_defer_reply(h.tok, h.err, h.err == DTX_OK ? &rep : NULL);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

static proto_server *
start_deferring(dfx *d, uint32_t workers, uint32_t delay_ms)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->delay_ms = delay_ms;
	d->after_stop = delay_ms > 0; // a delayed reply waits for close
	assert_int_equal(pthread_create(&d->th, NULL, replier_main, d), 0);
	proto_server_cfg cfg = { .url = "tcp://127.0.0.1:0",
		.workers = workers,
		.node_id = 9,
		.handler = defer_handler,
		.arg = d };
	proto_server *s = NULL;
	assert_int_equal(proto_server_open(&cfg, &s), DTX_OK);
	return s;
}

static void
stop_deferring(dfx *d, proto_server *s)
{
	pthread_mutex_lock(&d->mu);
	d->stop = true;
	d->two_seen = true;
	d->stop_ns = dtx_mono_ns();
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	proto_server_close(s);
	pthread_mutex_lock(&d->mu);
	d->close_ns = dtx_mono_ns();
	d->started_at_close = d->started;
	size_t taken = d->taken;
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->th, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	// Close returns only once every deferred request was answered.
	assert_int_equal(d->started_at_close, taken);
}

// Waits until the handler deferred a request.
static void
wait_taken(dfx *d)
{
	for (int i = 0; i < 400; i++) {
		pthread_mutex_lock(&d->mu);
		size_t n = d->taken;
		pthread_mutex_unlock(&d->mu);
		if (n > 0)
			return;
		dtx_sleep_ms(5);
	}
	fail_msg("no request was deferred in 2 s");
}

typedef struct bcaller {
	proto_client *c;
	proto_batcher *b; // NULL: call c directly
	uint64_t txid;
	int n, bad;
	dtx_err err;
} bcaller;

static void *
bcaller_main(void *arg)
{
	bcaller *k = arg;
	for (int i = 0; i < k->n; i++) {
		proto_msg req, rep;
		proto_msg_init(&req, PROTO_ACK);
		req.u.txid.txid = k->txid + (uint64_t)i;
		proto_call_opts o = { .timeout_ms = 5000 };
		k->err = k->b != NULL
		    ? proto_batcher_call(k->b, &req, &rep, 5000)
		    : proto_client_call(k->c, &req, &rep, &o);
		if (k->err != DTX_OK) {
			k->bad++;
			continue;
		}
		if (rep.hdr.type != PROTO_ACK ||
		    rep.u.txid.txid != req.u.txid.txid)
			k->bad++;
		proto_msg_free(&rep);
	}
	return NULL;
}

// Deferred answers reach the right callers, whole or as BATCH elements
// (some deferred, some not, answered out of order), and an error given
// to proto_defer_reply arrives as an ERROR.
static void
test_deferred_replies(void **state)
{
	(void)state;
	dfx d;
	proto_server *s = start_deferring(&d, 2, 0);
	proto_client *c = start_client(proto_server_url(s), 5000);
	proto_batcher *b = NULL;
	assert_int_equal(proto_batcher_open(c, 16, 1, &b), DTX_OK);
	enum { N = 12 };
	bcaller k[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		k[i] = (bcaller) { .c = c,
			.b = i % 2 ? b : NULL,
			.txid = 1000 + (uint64_t)i * 1000,
			.n = 200 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, bcaller_main, &k[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(k[i].bad, 0);
	}
	uint64_t msgs = 0, items = 0;
	proto_batcher_stats(b, &msgs, &items);
	assert_true(items == (N / 2) * 200);
	assert_true(msgs < items); // some requests shared a message
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	assert_int_equal(proto_batcher_call(b, &req, &rep, 5000), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_ENOENT);
	proto_msg_free(&rep);
	assert_int_equal(proto_client_call(c, &req, &rep, NULL), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_ENOENT);
	proto_msg_free(&rep);
	proto_batcher_close(b);
	proto_client_close(c);
	stop_deferring(&d, s);
}

// Starts k's call on a thread of its own and waits until the handler
// deferred it.
static pthread_t
call_deferred(dfx *d, bcaller *k)
{
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bcaller_main, k), 0);
	wait_taken(d);
	return th;
}

// Asynchronous batcher calls: each completion gets its own answer.
static struct {
	atomic_int done, bad;
	uint64_t want[64];
	proto_msg req[64];
} A;

static void
async_answer(void *arg, dtx_err err, proto_msg *rep)
{
	const uint64_t *want = arg;
	if (err != DTX_OK || rep->hdr.type != PROTO_ACK ||
	    rep->u.txid.txid != *want)
		atomic_fetch_add(&A.bad, 1);
	if (rep != NULL)
		proto_msg_free(rep);
	atomic_fetch_add(&A.done, 1);
}

static void
test_batcher_async(void **state)
{
	(void)state;
	dfx d;
	proto_server *s = start_deferring(&d, 2, 0);
	proto_client *c = start_client(proto_server_url(s), 5000);
	proto_batcher *b = NULL;
	assert_int_equal(proto_batcher_open(c, 8, 2, &b), DTX_OK);
	for (uint64_t i = 0; i < 64; i++) {
		A.want[i] = 6400 + i;
		proto_msg_init(&A.req[i], PROTO_ACK);
		A.req[i].u.txid.txid = A.want[i];
		assert_int_equal(proto_batcher_call_async(b, &A.req[i], 5000,
		                     async_answer, &A.want[i]),
		    DTX_OK);
	}
	for (int i = 0; i < 400 && atomic_load(&A.done) < 64; i++)
		dtx_sleep_ms(5);
	assert_int_equal(atomic_load(&A.done), 64);
	assert_int_equal(atomic_load(&A.bad), 0);
	uint64_t msgs = 0, items = 0;
	proto_batcher_stats(b, &msgs, &items);
	assert_true(items == 64 && msgs < 64);
	proto_batcher_close(b);
	proto_client_close(c);
	stop_deferring(&d, s);
}

// A deferred request gives its worker back: with one worker, a request
// held until another one is answered does not deadlock.
static void
test_deferred_frees_worker(void **state)
{
	(void)state;
	dfx d;
	proto_server *s = start_deferring(&d, 1, 0);
	proto_client *c = start_client(proto_server_url(s), 3000);
	bcaller one = { .c = c, .txid = 1, .n = 1 };
	pthread_t th = call_deferred(&d, &one);
	bcaller two = { .c = c, .txid = 2, .n = 1 };
	bcaller_main(&two);
	pthread_join(th, NULL);
	assert_int_equal(two.err, DTX_OK);
	assert_int_equal(one.err, DTX_OK);
	assert_int_equal(one.bad + two.bad, 0);
	proto_client_close(c);
	stop_deferring(&d, s);
}

// Closing the server waits until deferred requests are answered: the
// reply is held until close was called, then for 300 ms more.
static void
test_close_waits_for_deferred(void **state)
{
	(void)state;
	dfx d;
	proto_server *s = start_deferring(&d, 2, 300);
	proto_client *c = start_client(proto_server_url(s), 3000);
	bcaller k = { .c = c, .txid = 7, .n = 1 };
	pthread_t th = call_deferred(&d, &k);
	stop_deferring(&d, s);
	assert_int_equal(d.started_at_close, 1);
	assert_true(d.close_ns - d.stop_ns >= 300000000u);
	pthread_join(th, NULL);
	assert_int_equal(k.err, DTX_OK);
	assert_int_equal(k.bad, 0);
	proto_client_close(c);
}

// Async callers of the close race below: how many got their ACK.
typedef struct racers {
	atomic_int done, ok;
} racers;

static void
race_done(void *arg, dtx_err err, proto_msg *rep)
{
	racers *r = arg;
	if (err == DTX_OK && rep->hdr.type == PROTO_ACK)
		atomic_fetch_add(&r->ok, 1);
	if (rep != NULL)
		proto_msg_free(rep);
	atomic_fetch_add(&r->done, 1);
}

// Deferred replies sent while the server closes: close waits for each of
// them, including the nng calls that send them (a context released after
// its socket closed made nng panic), and every caller gets its answer.
// The replier runs at the lowest priority so that it is preempted inside
// nng_ctx_send while the completion lets close go on.
static void
test_close_races_deferred(void **state)
{
	(void)state;
	enum { ROUNDS = 15, CALLS = 6 };
	for (int round = 0; round < ROUNDS; round++) {
		dfx d;
		proto_server *s = start_deferring(&d, 3, 0);
		pthread_mutex_lock(&d.mu);
		d.after_stop = true;
		pthread_mutex_unlock(&d.mu);
		struct sched_param sp = { 0 };
		(void)pthread_setschedparam(d.th, SCHED_IDLE, &sp);
		proto_client *c = start_client(proto_server_url(s), 5000);
		racers r = { 0 };
		proto_msg req[CALLS];
		for (int i = 0; i < CALLS; i++) {
			proto_msg_init(&req[i], PROTO_ACK);
			req[i].u.txid.txid = 2 * (uint64_t)i + 3;
			assert_int_equal(proto_client_call_async(
			                     c, &req[i], NULL, race_done, &r),
			    DTX_OK);
		}
		for (int i = 0; i < 400; i++) {
			pthread_mutex_lock(&d.mu);
			size_t n = d.taken;
			pthread_mutex_unlock(&d.mu);
			if (n == CALLS)
				break;
			dtx_sleep_ms(5);
		}
		assert_int_equal(d.taken, CALLS);
		stop_deferring(&d, s);
		for (int i = 0; i < 400 && atomic_load(&r.done) < CALLS; i++)
			dtx_sleep_ms(5);
		assert_int_equal(atomic_load(&r.ok), CALLS);
		proto_client_close(c);
	}
}

static void
test_close_null(void **state)
{
	(void)state;
	proto_client_close(NULL);
	proto_server_close(NULL);
	proto_msg_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_tcp),
		cmocka_unit_test(test_echo_ipc),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_reply_refused_by_observer),
		cmocka_unit_test(test_garbage_answered),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_timeout_and_retry_policy),
		cmocka_unit_test(test_retry_unreachable),
		cmocka_unit_test(test_silent_connection_redialled),
		cmocka_unit_test(test_concurrent_callers),
		cmocka_unit_test(test_batch_in_order),
		cmocka_unit_test(test_async_calls),
		cmocka_unit_test(test_deferred_replies),
		cmocka_unit_test(test_deferred_frees_worker),
		cmocka_unit_test(test_batcher_async),
		cmocka_unit_test(test_close_waits_for_deferred),
		cmocka_unit_test(test_close_races_deferred),
		cmocka_unit_test(test_close_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
