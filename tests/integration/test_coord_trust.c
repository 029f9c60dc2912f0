// SPDX-License-Identifier: MIT
//
// Transaction ids and STATUS on real daemons: the coordinator's txids are
// neither ordered nor clock values and do not repeat across a restart;
// the coordinator answers STATUS for a transaction only to its
// participants and to admins (presumed abort still answers any
// participant for an id it does not know); a participant answers STATUS
// for a transaction in doubt only to the coordinator and peers its
// PREPARED record names, and to admins. The cluster runs --insecure, so a
// sender's role is the topology's role for the id it claims: a client
// claiming a participant's id stands for a participant certificate.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_2pc_util.h"

#define NP 3
#define NACCT 12
#define NTXN 40

static tu_fx F;

static int
setup(void **state)
{
	return tu_setup_bank(state, &F, NP, NULL, NACCT, 1000);
}

// Accounts a and b owned by two different participants; *other is the
// third participant.
static void
pick_pair(int64_t *a, int64_t *b, uint32_t *other)
{
	for (int64_t i = 0; i < NACCT; i++)
		for (int64_t j = 0; j < NACCT; j++) {
			uint32_t oi = tu_owner(&F, i), oj = tu_owner(&F, j);
			if (oi == oj)
				continue;
			*a = i;
			*b = j;
			*other = 6 - oi - oj; // {1, 2, 3} without both
			return;
		}
	fail_msg("no two accounts on different participants");
}

// A client to node id that claims to be node as (over --insecure the
// daemon takes the topology's role for that id).
static proto_client *
client_as(uint32_t id, uint32_t as)
{
	proto_client_cfg cc;
	memset(&cc, 0, sizeof(cc));
	cc.url = dtx_topo_find(F.topo, id)->url;
	cc.node_id = as;
	cc.timeout_ms = 5000;
	cc.connect_wait_ms = 1000;
	proto_client *c = NULL;
	assert_int_equal(proto_client_open(&cc, &c), DTX_OK);
	return c;
}

// STATUS of txid at a client's daemon: its state, or -1 with *code the
// ERROR's code.
static int
status_via(proto_client *c, uint64_t txid, dtx_err *code)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	memset(&rep, 0, sizeof(rep));
	proto_call_opts o = { .timeout_ms = 3000 };
	dtx_err rv = proto_client_call(c, &req, &rep, &o);
	int st = -1;
	*code = rv;
	if (rv == DTX_OK && rep.hdr.type == PROTO_STATUS_REPLY)
		st = (int)rep.u.status_reply.state;
	else if (rv == DTX_EREFUSED)
		*code = rep.u.error.code;
	if (rv == DTX_OK || rv == DTX_EREFUSED)
		proto_msg_free(&rep);
	return st;
}

// Commits transfers of 1 between a and b and collects their txids.
static void
run_txns(int64_t a, int64_t b, uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		proto_msg rep;
		assert_int_equal(
		    tu_transfer(&F, NULL, PROTO_MODE_2PC, i % 2 ? a : b,
		        i % 2 ? b : a, 1, &rep, 10000),
		    DTX_OK);
		assert_int_equal(rep.hdr.type, PROTO_TXN_REPLY);
		assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
		ids[i] = rep.u.txn_reply.txid;
		proto_msg_free(&rep);
	}
}

// Txids in issue order are not increasing, carry no clock, are never
// reserved, and a restarted coordinator draws none of its earlier ones.
static void
test_txids_random(void **state)
{
	(void)state;
	int64_t a, b;
	uint32_t other;
	pick_pair(&a, &b, &other);
	static uint64_t ids[2 * NTXN];
	run_txns(a, b, ids, NTXN);
	assert_int_equal(hx_cluster_signal(F.cl, 0, SIGKILL), DTX_OK);
	assert_int_equal(tu_restart(&F, 0), DTX_OK);
	run_txns(a, b, ids + NTXN, NTXN);
	uint64_t now_ms = dtx_wall_ns() / 1000000u;
	size_t ups = 0;
	for (size_t i = 0; i < 2 * NTXN; i++) {
		assert_true(ids[i] != 0 && ids[i] != UINT64_MAX);
		// The old ids were ms << 16 | counter: the top 48 bits were
		// the wall clock. Random ones are within a day of it with
		// odds of 2^-20.
		uint64_t hi = ids[i] >> 16, day = 86400000u;
		if (hi + day > now_ms && hi < now_ms + day)
			fail_msg("txid %" PRIu64 " carries the clock", ids[i]);
		for (size_t j = 0; j < i; j++)
			if (ids[j] == ids[i])
				fail_msg(
				    "txid %" PRIu64 " issued twice", ids[i]);
		if (i > 0 && ids[i] > ids[i - 1])
			ups++;
	}
	// Ordered ids would rise every time; random ones about half.
	if (ups < NTXN / 2 || ups > 3 * NTXN / 2)
		fail_msg("%zu of %d txids rose over the previous one", ups,
		    2 * NTXN - 1);
}

// The coordinator answers STATUS to the transaction's participants and to
// an admin, refuses a participant outside it, and answers presumed abort
// to any participant for an id it does not know.
static void
test_coord_status_members_only(void **state)
{
	(void)state;
	int64_t a, b;
	uint32_t other;
	pick_pair(&a, &b, &other);
	uint64_t txid;
	run_txns(a, b, &txid, 1);
	dtx_err code;
	proto_client *out = client_as(0, other);
	proto_client *in = client_as(0, tu_owner(&F, a));
	assert_int_equal(status_via(out, txid, &code), -1);
	assert_int_equal(code, DTX_EPERM);
	assert_int_equal(status_via(in, txid, &code), PROTO_TS_COMMITTED);
	// The client line's id stands for admin (a client certificate is
	// refused STATUS by the role table before this).
	assert_int_equal(status_via(F.cli[0], txid, &code), PROTO_TS_COMMITTED);
	// An id nobody issued: presumed abort, to anyone a participant.
	assert_int_equal(
	    status_via(out, txid ^ 0x5a5a5a5a5a5aull, &code), PROTO_TS_ABORTED);
	assert_int_equal(tu_counter(&F, 0, "refused_status"), 1);
	proto_client_close(out);
	proto_client_close(in);
}

// PREPAREs txid at participant p from a client claiming the coordinator's
// id, naming peer as the other participant. True for a YES; a NO (the
// key still held by the COMMIT of an earlier transfer) is printed.
static bool
prepare_at(uint32_t p, uint64_t txid, int64_t acct, uint32_t peer)
{
	char k[32];
	tu_key(k, sizeof(k), acct);
	proto_op op = { .kind = PROTO_OP_ADD,
		.key = { (uint8_t *)k, (uint32_t)strlen(k) },
		.delta = 5 };
	uint32_t peers[2] = { p, peer };
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_PREPARE);
	req.u.prepare = (proto_prepare) { .txid = txid,
		.mode = PROTO_MODE_2PC,
		.coord = 0,
		.n_peers = 2,
		.peers = peers,
		.n_ops = 1,
		.ops = &op };
	proto_client *co = client_as(p, 0);
	memset(&rep, 0, sizeof(rep));
	proto_call_opts o = { .timeout_ms = 5000 };
	assert_int_equal(proto_client_call(co, &req, &rep, &o), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_VOTE);
	bool yes = rep.u.vote.yes;
	if (!yes)
		fprintf(stderr, "tx %" PRIu64 " voted NO: %s\n", txid,
		    rep.u.vote.reason ? rep.u.vote.reason : "");
	proto_msg_free(&rep);
	proto_client_close(co);
	return yes;
}

static void
abort_at(uint32_t p, uint64_t txid)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_ABORT);
	req.u.txid.txid = txid;
	proto_client *co = client_as(p, 0);
	memset(&rep, 0, sizeof(rep));
	proto_call_opts o = { .timeout_ms = 5000 };
	assert_int_equal(proto_client_call(co, &req, &rep, &o), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
	proto_client_close(co);
}

// A participant answers STATUS for a transaction in doubt only to the
// coordinator and the peers its PREPARED record names, and to admins.
static void
test_part_status_named_only(void **state)
{
	(void)state;
	int64_t a, b;
	uint32_t other;
	pick_pair(&a, &b, &other);
	uint32_t pa = tu_owner(&F, a), pb = tu_owner(&F, b);
	uint64_t txid = 0x7e57000000000000ull | (dtx_mono_ns() & 0xffffffff);
	// A NO is remembered as the txid's abort: try again with another.
	uint64_t end = dtx_mono_ns() + 5000000000ull;
	while (!prepare_at(pa, txid, a, pb)) {
		assert_true(dtx_mono_ns() < end);
		dtx_sleep_ms(50);
		txid++;
	}
	dtx_err code;
	proto_client *stranger = client_as(pa, other);
	proto_client *peer = client_as(pa, pb);
	proto_client *coord = client_as(pa, 0);
	assert_int_equal(status_via(stranger, txid, &code), -1);
	assert_int_equal(code, DTX_EPERM);
	assert_int_equal(status_via(peer, txid, &code), PROTO_TS_PREPARED);
	assert_int_equal(status_via(coord, txid, &code), PROTO_TS_PREPARED);
	assert_int_equal(status_via(F.cli[pa], txid, &code), PROTO_TS_PREPARED);
	// The refused STATUS changed nothing: still in doubt.
	assert_int_equal(tu_counter(&F, pa, "refused_status"), 1);
	abort_at(pa, txid);
	// Decided: the record is gone and the outcome may be told.
	assert_int_equal(status_via(stranger, txid, &code), PROTO_TS_ABORTED);
	proto_client_close(stranger);
	proto_client_close(peer);
	proto_client_close(coord);
	assert_int_equal(tu_sum(&F), NACCT * 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txids_random),
		cmocka_unit_test(test_coord_status_members_only),
		cmocka_unit_test(test_part_status_named_only),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
