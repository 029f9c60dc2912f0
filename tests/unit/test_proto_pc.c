// SPDX-License-Identifier: MIT
//
// The wire parts of parallel commit (pc): mode 2 in TXN and PREPARE
// survives a round trip and a mode past it is refused; STATUS_REPLY's
// optional "pts" (a pc peer's durable prepare ts) round-trips, and a
// reply without it encodes exactly as before it existed.

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto.h"

static void
round_trip(const proto_msg *m, proto_msg *d, size_t *len)
{
	uint8_t *buf = NULL;
	assert_int_equal(proto_encode_buf(m, &buf, len), DTX_OK);
	char why[256];
	dtx_err rv = proto_decode(buf, *len, NULL, d, why, sizeof(why));
	if (rv != DTX_OK)
		fail_msg("%s", why);
	dtx_free(buf);
}

static void
test_mode_pc(void **state)
{
	(void)state;
	uint8_t kb[] = { 'k' };
	proto_op op = {
		.kind = PROTO_OP_ADD, .key = { kb, 1 }, .delta = 1, .min = 0
	};
	proto_msg m, d;
	size_t len;
	proto_msg_init(&m, PROTO_TXN);
	m.u.txn = (proto_txn) { .mode = PROTO_MODE_PC, .n_ops = 1, .ops = &op };
	round_trip(&m, &d, &len);
	assert_int_equal(d.u.txn.mode, PROTO_MODE_PC);
	proto_msg_free(&d);

	uint32_t peers[] = { 1, 2, 3 };
	proto_msg_init(&m, PROTO_PREPARE);
	m.u.prepare = (proto_prepare) { .txid = 5,
		.mode = PROTO_MODE_PC,
		.coord = 0,
		.n_peers = 3,
		.peers = peers,
		.n_ops = 1,
		.ops = &op };
	round_trip(&m, &d, &len);
	assert_int_equal(d.u.prepare.mode, PROTO_MODE_PC);
	assert_int_equal(d.u.prepare.n_peers, 3);
	proto_msg_free(&d);

	// One past the last mode: the encoder refuses it.
	m.u.prepare.mode = (proto_mode)(PROTO_MODE_PC + 1);
	uint8_t *buf = NULL;
	assert_int_equal(proto_encode_buf(&m, &buf, &len), DTX_EINVAL);
	dtx_free(buf);
}

static void
test_status_reply_pts(void **state)
{
	(void)state;
	proto_msg m, d;
	size_t len0, len1;
	proto_msg_init(&m, PROTO_STATUS_REPLY);
	m.u.status_reply =
	    (proto_status_reply) { .txid = 9, .state = PROTO_TS_PREPARED };
	round_trip(&m, &d, &len0);
	assert_true(d.u.status_reply.prepare_ts == 0);
	assert_int_equal(d.u.status_reply.state, PROTO_TS_PREPARED);
	proto_msg_free(&d);

	m.u.status_reply.prepare_ts = clk_ts_make(1700000000000ull, 3);
	round_trip(&m, &d, &len1);
	assert_true(d.u.status_reply.prepare_ts == m.u.status_reply.prepare_ts);
	assert_true(d.u.status_reply.commit_ts == 0);
	assert_true(len1 > len0);
	proto_msg_free(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_pc),
		cmocka_unit_test(test_status_reply_pts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
