// SPDX-License-Identifier: MIT
//
// The STATUS sweep after a bank run gives a node up when it stops
// answering. A fake cluster (a coordinator and a participant that answer
// STATUS, and a participant that is either a listener that takes requests
// and never answers, or a port nobody listens on) is asked about 300
// transfers: every call to the silent node waits its 2 s (or its
// connection wait) out, so a sweep without a bound would last 600 s (or
// 90 s). The sweep gives the node up after HX__SWEEP_NODE_WAIT_MS, asks it
// nothing more, still asks the others about every transfer, and names the
// node (the run's verdict then rests on the answers it has; the log
// checker reports a daemon that died). The meson timeout (60 s) turns a
// sweep that does not end into a failure. With every node answering, the
// sweep observes every transfer.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness_int.h"

#include <nng/protocol/reqrep0/rep.h>

#define NREC 300

static dtx_err
status_handler(
    void *arg, const proto_msg *req, proto_msg *rep, proto_call *call)
{
	(void)arg;
	(void)call;
	if (req->hdr.type != PROTO_STATUS)
		return proto_msg_set_error(rep, DTX_EINVAL, "STATUS only");
	rep->hdr.type = PROTO_STATUS_REPLY;
	rep->u.status_reply.txid = req->u.txid.txid;
	rep->u.status_reply.state = PROTO_TS_COMMITTED;
	rep->u.status_reply.commit_ts = 1000 + req->u.txid.txid;
	return DTX_OK;
}

static proto_server *
answering(uint32_t id)
{
	proto_server_cfg sc = { .url = "tcp://127.0.0.1:0",
		.workers = 2,
		.node_id = id,
		.handler = status_handler };
	proto_server *s = NULL;
	assert_int_equal(proto_server_open(&sc, &s), DTX_OK);
	return s;
}

// A REP socket listening on a free port that reads requests and never
// answers them (a node whose workers are all stuck); its url into url.
static nng_socket
silent(char *url, size_t n)
{
	nng_socket s;
	nng_listener l;
	nng_sockaddr sa;
	assert_int_equal(nng_rep0_open(&s), 0);
	assert_int_equal(nng_listen(s, "tcp://127.0.0.1:0", &l, 0), 0);
	assert_int_equal(nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa), 0);
	snprintf(url, n, "tcp://127.0.0.1:%u",
	    (unsigned)((sa.s_in.sa_port >> 8) | (sa.s_in.sa_port << 8)) &
	        0xffffu);
	return s;
}

typedef enum third { ANSWERS, NEVER_ANSWERS, NOT_LISTENING } third;

// Runs the sweep over NREC transfers between participants 1 and 2 run
// by coordinator 0, with participant 2 as third says; *secs gets how
// long it took.
static dtx_err
sweep(third how, hx_bankrun_err *e, size_t *nobs, double *secs,
    uint32_t *unanswered)
{
	proto_server *s0 = answering(0), *s1 = answering(1), *s2 = NULL;
	nng_socket quiet = NNG_SOCKET_INITIALIZER;
	char url2[128];
	if (how == ANSWERS) {
		s2 = answering(2);
		snprintf(url2, sizeof(url2), "%s", proto_server_url(s2));
	} else {
		quiet = silent(url2, sizeof(url2));
		if (how == NOT_LISTENING)
			nng_close(quiet); // its port is free again
	}
	char text[1024], err[256];
	snprintf(text, sizeof(text),
	    "coordinator 0 %s\nparticipant 1 %s\nparticipant 2 %s\n"
	    "client 3\n",
	    proto_server_url(s0), proto_server_url(s1), url2);
	dtx_topo topo;
	assert_int_equal(dtx_topo_parse(text, &topo, err, sizeof(err)), 0);
	hx_bankrun_conf conf = { .timeout_ms = 2000 };
	hx_bankrun b = { .conf = &conf };
	assert_int_equal(hx_conn_open(&topo, &b.conn), DTX_OK);
	b.recs = calloc(NREC, sizeof(*b.recs));
	assert_non_null(b.recs);
	for (size_t i = 0; i < NREC; i++)
		b.recs[i] = (hx__xrec) { .txid = i + 1,
			.from = 0,
			.to = 1,
			.coord = 0,
			.nparts = 2,
			.parts = { 1, 2 } };
	b.nrec = NREC;
	uint64_t t0 = dtx_mono_ns();
	dtx_err rv = hx__bank_txn_obs(&b, e);
	*secs = (double)(dtx_mono_ns() - t0) / 1e9;
	*nobs = b.nobs;
	*unanswered = b.out.unanswered;
	// The silent node's answers are unknown, every other one is had.
	if (rv == DTX_OK)
		for (size_t i = 0; i < b.nobs; i++)
			assert_int_equal(b.obs[i].outcome,
			    how != ANSWERS && b.obs[i].node == 2
			        ? HX_TXN_UNKNOWN
			        : HX_TXN_COMMITTED);
	free(b.obs);
	free(b.cts);
	free(b.recs);
	hx_conn_close(b.conn);
	if (how == NEVER_ANSWERS)
		nng_close(quiet);
	proto_server_close(s2);
	proto_server_close(s1);
	proto_server_close(s0);
	return rv;
}

static void
expect_given_up(third how)
{
	hx_bankrun_err e = { .usage = false };
	size_t nobs = 0;
	double secs = 0;
	uint32_t lost = 0;
	assert_int_equal(sweep(how, &e, &nobs, &secs, &lost), DTX_OK);
	printf("gave node 2 up; the sweep took %.1f s\n", secs);
	assert_int_equal(lost, 1u << 2);
	assert_string_equal(e.msg, "");
	// At least the node's wait, and not much more: the calls before the
	// redial and one past the wait (2 s each), and the other nodes'
	// answers to the rest of the transfers (a few ms each).
	assert_true(secs >= HX__SWEEP_NODE_WAIT_MS / 1e3);
	assert_true(secs < HX__SWEEP_NODE_WAIT_MS / 1e3 + 15);
	// Every transfer observed at the coordinator and participant 1.
	assert_int_equal(nobs, NREC * 3);
}

static void
test_node_never_answers(void **state)
{
	(void)state;
	expect_given_up(NEVER_ANSWERS);
}

static void
test_node_not_listening(void **state)
{
	(void)state;
	expect_given_up(NOT_LISTENING);
}

static void
test_every_node_answers(void **state)
{
	(void)state;
	hx_bankrun_err e = { .usage = false };
	size_t nobs = 0;
	double secs = 0;
	uint32_t lost = 0;
	assert_int_equal(sweep(ANSWERS, &e, &nobs, &secs, &lost), DTX_OK);
	assert_int_equal(nobs, NREC * 3);
	assert_int_equal(lost, 0);
	assert_string_equal(e.msg, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_node_answers),
		cmocka_unit_test(test_node_never_answers),
		cmocka_unit_test(test_node_not_listening),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
