// SPDX-License-Identifier: MIT
//
// The daemon runtime in one process: flags and their errors, PING, HEALTH,
// the generic FAULT kinds (clock, partition, delay, unknown), a clock too
// far ahead refused, and the daemon's own handler reached for the rest.

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto.h"

#include <nng/protocol/reqrep0/req.h>

typedef struct fixture {
	char dir[64];
	char topo[128];
	char data[128];
	proto_daemon *d;
	proto_client *c;
	int handled;
} fixture;

// The daemon's own handler: answers STATUS with ABORTED.
static dtx_err
own_handler(void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	(void)call;
	fixture *f = arg;
	if (req->hdr.type != PROTO_STATUS)
		return DTX_EINVAL;
	f->handled++;
	rep->hdr.type = PROTO_STATUS_REPLY;
	rep->u.status_reply.txid = req->u.txid.txid;
	rep->u.status_reply.state = PROTO_TS_ABORTED;
	return DTX_OK;
}

static dtx_err
own_health(void *arg, proto_health_reply *rep)
{
	(void)arg;
	rep->in_doubt = 7;
	return proto_health_counter(rep, "own_counter", 42);
}

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/dtx-daemon-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->topo, sizeof(f->topo), "%s/topology", f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	FILE *fp = fopen(f->topo, "w");
	fprintf(fp,
	    "coordinator 0 ipc://%s/c.sock\nparticipant 1 ipc://%s/p1.sock\n"
	    "participant 2 ipc://%s/p2.sock\nclient 3\n",
	    f->dir, f->dir, f->dir);
	fclose(fp);
	char *argv[] = { "dtx-test", "--node-id", "1", "--topology", f->topo,
		"--data", f->data, "--workers", "4", "--timeout-ms", "200",
		"--max-offset-ms", "1000", "--log-level", "error", "--insecure",
		"--enable-faults", NULL };
	assert_int_equal(proto_daemon_open("dtx-test", DTX_ROLE_PARTICIPANT, 17,
	                     argv, NULL, 0, NULL, &f->d),
	    DTX_OK);
	proto_daemon_hooks h = {
		.role = DTX_ROLE_PARTICIPANT,
		.handler = own_handler,
		.health = own_health,
		.arg = f,
	};
	assert_int_equal(proto_daemon_serve(f->d, &h), DTX_OK);
	char url[256];
	snprintf(url, sizeof(url), "ipc://%s/p1.sock", f->dir);
	proto_client_cfg cc = {
		.url = url, .node_id = 3, .timeout_ms = 2000, .vc_nodes = 4
	};
	assert_int_equal(proto_client_open(&cc, &f->c), DTX_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	proto_client_close(f->c);
	proto_daemon_close(f->d);
	assert_int_equal(dtx_rmtree(f->dir), DTX_OK);
	free(f);
	return 0;
}

static dtx_err
call(fixture *f, proto_msg *req, proto_msg *rep)
{
	return proto_client_call(f->c, req, rep, NULL);
}

static void
test_ping_health(void **state)
{
	fixture *f = *state;
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(call(f, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	assert_int_equal(rep.hdr.from, 1);
	// The reply carries the daemon's clocks, which saw our message.
	assert_true(rep.hdr.hlc > 0);
	assert_true(rep.hdr.vc.c[1] >= 2);
	proto_msg_free(&rep);

	proto_msg_init(&req, PROTO_HEALTH);
	assert_int_equal(call(f, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_HEALTH_REPLY);
	assert_string_equal(rep.u.health_reply.role, "participant");
	assert_string_equal(rep.u.health_reply.state, "ok");
	assert_int_equal(rep.u.health_reply.node, 1);
	assert_int_equal(rep.u.health_reply.in_doubt, 7);
	bool own = false, req_ctr = false;
	for (uint32_t i = 0; i < rep.u.health_reply.n_counters; i++) {
		proto_counter *c = &rep.u.health_reply.counters[i];
		own |= strcmp(c->name, "own_counter") == 0 && c->value == 42;
		req_ctr |= strcmp(c->name, "requests") == 0 && c->value >= 2;
	}
	assert_true(own);
	assert_true(req_ctr);
	proto_msg_free(&rep);
}

static void
test_own_handler(void **state)
{
	fixture *f = *state;
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = 99;
	assert_int_equal(call(f, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_STATUS_REPLY);
	assert_int_equal(rep.u.status_reply.txid, 99);
	assert_int_equal(f->handled, 1);
	proto_msg_free(&rep);
	// ABORT from a client is refused by the authorisation table before
	// the daemon's handler sees it.
	proto_msg_init(&req, PROTO_ABORT);
	req.u.txid.txid = 5;
	assert_int_equal(call(f, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EPERM);
	proto_msg_free(&rep);
	assert_int_equal(f->handled, 1);
	// A type the daemon refuses comes back as a definite ERROR (sent as
	// the coordinator, whom the table lets send it).
	char url[256];
	snprintf(url, sizeof(url), "ipc://%s/p1.sock", f->dir);
	proto_client_cfg cc = {
		.url = url, .node_id = 0, .timeout_ms = 2000, .vc_nodes = 4
	};
	proto_client *coord = NULL;
	assert_int_equal(proto_client_open(&cc, &coord), DTX_OK);
	proto_msg_init(&req, PROTO_ABORT);
	req.u.txid.txid = 5;
	assert_int_equal(
	    proto_client_call(coord, &req, &rep, NULL), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	proto_msg_free(&rep);
	proto_client_close(coord);
}

static dtx_err
fault(fixture *f, const char *kind, const int64_t *args, uint32_t n,
    const char *s)
{
	proto_msg req, rep;
	assert_int_equal(proto_fault_init(&req, kind, args, n, s), DTX_OK);
	dtx_err rv = call(f, &req, &rep);
	if (rv == DTX_OK)
		assert_int_equal(rep.hdr.type, PROTO_ACK);
	if (rv == DTX_OK || rv == DTX_EREFUSED)
		proto_msg_free(&rep);
	return rv;
}

// How far src reads from this machine's wall clock, in ms.
static int64_t
skew_ms(clk_source *src)
{
	int64_t wall = (int64_t)(dtx_wall_ns() / 1000000u);
	return (int64_t)clk_source_now_ms(src) - wall;
}

// FAULT "clock" (max offset 1000 ms here): a bump of up to 2 x max_offset
// + 1 ms moves physical time by it; a larger one is refused and changes
// nothing; a rate drifts it no further than that; the reset (0, 1000)
// puts it back on the configured clock, the drift undone.
static void
test_fault_clock(void **state)
{
	fixture *f = *state;
	clk_source *src = clk_node_source(proto_daemon_clock(f->d));
	const int64_t max = 2 * 1000 + 1;
	proto_msg req, rep;
	int64_t big[] = { 60000, 1000 };
	assert_int_equal(proto_fault_init(&req, "clock", big, 2, NULL), DTX_OK);
	assert_int_equal(call(f, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	assert_non_null(
	    strstr(rep.u.error.reason, "2 x max_offset + 1 = 2001"));
	proto_msg_free(&rep);
	int64_t off;
	double rate;
	clk_source_get(src, &off, &rate);
	assert_int_equal(off, 0);
	assert_true(llabs(skew_ms(src)) < 50);
	int64_t a[] = { max, 1000 };
	assert_int_equal(fault(f, "clock", a, 2, NULL), DTX_OK);
	clk_source_get(src, &off, &rate);
	assert_int_equal(off, max);
	assert_true(skew_ms(src) > max - 50 && skew_ms(src) <= max);
	int64_t back[] = { -max, 1000 };
	assert_int_equal(fault(f, "clock", back, 2, NULL), DTX_OK);
	assert_true(skew_ms(src) < -max + 50 && skew_ms(src) >= -max);
	// Twenty times as fast: 300 ms would drift it 5.7 s; held to max.
	int64_t fast[] = { 0, 20000 };
	assert_int_equal(fault(f, "clock", fast, 2, NULL), DTX_OK);
	dtx_sleep_ms(300);
	assert_true(skew_ms(src) > max - 50 && skew_ms(src) <= max);
	int64_t z[] = { 0, 1000 };
	assert_int_equal(fault(f, "clock", z, 2, NULL), DTX_OK);
	assert_true(llabs(skew_ms(src)) < 50);
	clk_source_get(src, &off, &rate);
	assert_int_equal(off, 0);
	assert_true(rate == 1.0);
	assert_int_equal(
	    fault(f, "no-such-fault", NULL, 0, NULL), DTX_EREFUSED);
	int64_t bad[] = { -1, 5 };
	assert_int_equal(fault(f, "delay", bad, 2, NULL), DTX_EREFUSED);
}

static void
test_partition_and_delay(void **state)
{
	fixture *f = *state;
	proto_msg req, rep;
	// Node 2 is not running: a call to it is certainly not delivered.
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(
	    proto_daemon_call(f->d, 2, &req, &rep, NULL), DTX_EUNREACH);
	// Cut off from itself, node 1's call times out like a lost packet.
	int64_t cut[] = { 1 };
	assert_int_equal(fault(f, "partition", cut, 1, NULL), DTX_OK);
	uint64_t t0 = dtx_mono_ns();
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(
	    proto_daemon_call(f->d, 1, &req, &rep, NULL), DTX_ETIMEDOUT);
	assert_true(dtx_mono_ns() - t0 >= 190 * 1000000ull);
	assert_int_equal(fault(f, "partition", NULL, 0, NULL), DTX_OK);
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(proto_daemon_call(f->d, 1, &req, &rep, NULL), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_PONG);
	proto_msg_free(&rep);
	int64_t dl[] = { 1, 150 };
	assert_int_equal(fault(f, "delay", dl, 2, NULL), DTX_OK);
	t0 = dtx_mono_ns();
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(proto_daemon_call(f->d, 1, &req, &rep, NULL), DTX_OK);
	assert_true(dtx_mono_ns() - t0 >= 150 * 1000000ull);
	proto_msg_free(&rep);
	assert_int_equal(
	    proto_daemon_call(f->d, 9, &req, &rep, NULL), DTX_EINVAL);
}

// Replies of asynchronous calls, counted as they come in.
typedef struct answers {
	_Atomic int n; // answered
	_Atomic int pongs; // DTX_OK with a PONG
} answers;

static void
answer(void *arg, dtx_err err, proto_msg *rep)
{
	answers *a = arg;
	if (err == DTX_OK && rep->hdr.type == PROTO_PONG)
		atomic_fetch_add(&a->pongs, 1);
	if (rep != NULL)
		proto_msg_free(rep);
	atomic_fetch_add(&a->n, 1);
}

static void
await_answers(answers *a, int n)
{
	for (int i = 0; i < 500 && atomic_load(&a->n) < n; i++)
		dtx_sleep_ms(10);
	assert_int_equal(atomic_load(&a->n), n);
}

// A sender of a batcher over the daemon's delayed peer calls, as the
// saga orchestrator's step batchers are.
static dtx_err
send_to_self(void *arg, proto_msg *req, const proto_call_opts *opts,
    proto_done_fn done, void *done_arg)
{
	return proto_daemon_call_async(arg, 1, req, opts, done, done_arg);
}

// Queues a STEP-like burst on a batcher with one batch in flight: the
// first call goes alone, the rest leave as one BATCH from the batcher's
// stack when its reply comes in.
static void
batch_under_delay(fixture *f)
{
	proto_batcher *b;
	assert_int_equal(
	    proto_batcher_open_send(send_to_self, f->d, 8, 1, &b), DTX_OK);
	answers a = { 0 };
	proto_msg reqs[5];
	for (int i = 0; i < 5; i++) {
		proto_msg_init(&reqs[i], PROTO_PING);
		assert_int_equal(
		    proto_batcher_call_async(b, &reqs[i], 2000, answer, &a),
		    DTX_OK);
	}
	await_answers(&a, 5);
	assert_int_equal(atomic_load(&a.pongs), 5);
	uint64_t batches, items;
	proto_batcher_stats(b, &batches, &items);
	assert_int_equal(items, 5);
	assert_true(batches < 5); // a BATCH did carry several
	proto_batcher_close(b);
}

static void
test_delayed_async_call(void **state)
{
	fixture *f = *state;
	int64_t dl[] = { 1, 100 };
	assert_int_equal(fault(f, "delay", dl, 2, NULL), DTX_OK);
	// The request and the retry policy are the caller's only during the
	// call: the delayed call sends what they were then.
	answers a = { 0 };
	proto_msg req;
	proto_msg_init(&req, PROTO_PING);
	{
		proto_retry once = { .attempts = 1 };
		proto_call_opts o = { .timeout_ms = 2000, .retry = &once };
		uint64_t t0 = dtx_mono_ns();
		assert_int_equal(
		    proto_daemon_call_async(f->d, 1, &req, &o, answer, &a),
		    DTX_OK);
		// Reused at once, as a caller may.
		proto_msg_init(&req, PROTO_STATUS);
		req.u.txid.txid = 7;
		memset(&once, 0xa5, sizeof(once));
		await_answers(&a, 1);
		assert_true(dtx_mono_ns() - t0 >= 100 * 1000000ull);
	}
	assert_int_equal(atomic_load(&a.pongs), 1);
	assert_int_equal(f->handled, 0);
	batch_under_delay(f);
	// A call cut off by a partition is still dropped (no copy made).
	int64_t cut[] = { 1 };
	assert_int_equal(fault(f, "partition", cut, 1, NULL), DTX_OK);
	answers c = { 0 };
	proto_msg_init(&req, PROTO_PING);
	assert_int_equal(
	    proto_daemon_call_async(f->d, 1, &req, NULL, answer, &c), DTX_OK);
	await_answers(&c, 1);
	assert_int_equal(atomic_load(&c.pongs), 0);
	assert_int_equal(fault(f, "partition", NULL, 0, NULL), DTX_OK);
}

static void
test_clock_too_far_ahead(void **state)
{
	fixture *f = *state;
	proto_msg req, rep;
	// A client whose stamp claims a clock an hour ahead is refused.
	proto_msg_init(&req, PROTO_PING);
	uint64_t now_ms = dtx_wall_ns() / 1000000u;
	req.hdr.hlc = clk_ts_make(now_ms + 3600 * 1000, 0);
	uint8_t *buf;
	size_t len;
	// Encode by hand so that our own stamp is kept.
	assert_int_equal(proto_encode_buf(&req, &buf, &len), DTX_OK);
	proto_msg dec;
	assert_int_equal(proto_decode(buf, len, NULL, &dec, NULL, 0), DTX_OK);
	dtx_free(buf);
	assert_true(dec.hdr.hlc == req.hdr.hlc);
	proto_msg_free(&dec);
	nng_socket s;
	assert_int_equal(nng_req0_open(&s), 0);
	char url[256];
	snprintf(url, sizeof(url), "ipc://%s/p1.sock", f->dir);
	assert_int_equal(nng_dial(s, url, NULL, 0), 0);
	nng_msg *m;
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	req.hdr.id = 1;
	req.hdr.from = 3;
	assert_int_equal(proto_encode(&req, m), DTX_OK);
	assert_int_equal(nng_sendmsg(s, m, 0), 0);
	assert_int_equal(nng_recvmsg(s, &m, 0), 0);
	assert_int_equal(proto_decode_nng(m, NULL, &rep, NULL, 0), DTX_OK);
	nng_msg_free(m);
	nng_close(s);
	assert_int_equal(rep.hdr.type, PROTO_ERROR);
	assert_int_equal(rep.u.error.code, DTX_ECLOCK);
	proto_msg_free(&rep);
	// The daemon's clock did not jump to the liar's.
	assert_true(
	    clk_ts_l(clk_node_now(proto_daemon_clock(f->d))) < now_ms + 60000);
}

static void
test_bad_flags(void **state)
{
	(void)state;
	proto_daemon *d = NULL;
	char *a1[] = { "x", "--node-id", "1", "--bogus", "2", NULL };
	assert_int_equal(proto_daemon_open("x", DTX_ROLE_PARTICIPANT, 5, a1,
	                     NULL, 0, NULL, &d),
	    DTX_EINVAL);
	char *a2[] = { "x", "--node-id", "1", NULL };
	assert_int_equal(proto_daemon_open("x", DTX_ROLE_PARTICIPANT, 3, a2,
	                     NULL, 0, NULL, &d),
	    DTX_EINVAL);
	char *a3[] = { "x", "--node-id", "1", "--topology", "/nonexistent",
		"--data", "/tmp/x", NULL };
	assert_int_equal(proto_daemon_open("x", DTX_ROLE_PARTICIPANT, 7, a3,
	                     NULL, 0, NULL, &d),
	    DTX_ENOENT);
	assert_null(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_ping_health, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_own_handler, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_fault_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_partition_and_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_delayed_async_call, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_clock_too_far_ahead, setup, teardown),
		cmocka_unit_test(test_bad_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
