// SPDX-License-Identifier: MIT
//
// A participant whose physical clock is behind must still keep the
// versions of a key in commit order: after applying a commit whose
// timestamp is ahead of its clock (chosen from a peer's prepare timestamp
// or the coordinator's clock), every later prepare here must take a
// timestamp above it. Otherwise the newer write sorts below the older one
// and is lost to every later reader (a regression found by the bank
// workload under a clock strobe).

#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_part_harness.h"

// One participant whose clock runs 2 s behind, with a max offset of 2 s
// that covers it: a commit timestamp from a coordinator whose clock is
// right is then within max_offset of this node's clock, and witnessed (one
// beyond max_offset is refused: no message moves a clock further).
static int
setup(void **state)
{
	static char *env[] = { "DTX_CLOCK_OFFSET_MS=-2000",
		"DTX_MAX_OFFSET_MS=2000", NULL };
	return h_setup(state, 1, 1, env);
}

static void
test_commit_ahead_of_skewed_clock(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, 1, 1, "acct:1", 100));

	proto_op op = op_add("acct:1", 10, 0);
	clk_ts p1 = h_prepare1(h, 1, 2, &op);
	// Committed 1.5 s above this node's clock, as a coordinator whose
	// clock is right would choose.
	clk_ts cts1 = ts_plus_ms(p1, 1500);
	assert_int_equal(h_txid(h, 1, PROTO_COMMIT, 2, cts1, NULL), PROTO_ACK);

	op = op_add("acct:1", 5, 0);
	clk_ts p2 = h_prepare1(h, 1, 3, &op);
	assert_true(p2 > cts1);
	assert_int_equal(h_txid(h, 1, PROTO_COMMIT, 3, p2, NULL), PROTO_ACK);

	// No update lost: at the first commit's timestamp the first one is
	// visible, and the latest state holds both.
	h_expect(h, 1, cts1, "acct:1", 110);
	h_expect(h, 1, 0, "acct:1", 115);
}

// A commit timestamp more than max_offset ahead of this node's clock (a
// forged one, or the HLC maximum) is refused with DTX_ECLOCK and moves
// nothing: the transaction stays prepared, in doubt, this node's clock
// stays near its physical time, and a commit at a timestamp it can cover
// then goes through.
static void
test_commit_beyond_max_offset(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, 1, 4, "acct:2", 100));
	proto_op op = op_add("acct:2", 7, 0);
	clk_ts p1 = h_prepare1(h, 1, 5, &op);

	clk_ts bad[] = { ts_plus_ms(p1, 2000 + 60000),
		ts_plus_ms(p1, UINT64_C(10) * 365 * 86400000),
		clk_ts_make(CLK_L_MAX, 0) };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		proto_msg rep;
		proto_msg_init(&rep, PROTO_NONE);
		assert_int_equal(
		    h_txid(h, 1, PROTO_COMMIT, 5, bad[i], &rep), PROTO_ERROR);
		assert_true(rep.u.error.code == DTX_ECLOCK ||
		    rep.u.error.code == DTX_ERANGE);
		proto_msg_free(&rep);
		assert_int_equal(h_status(h, 1, 5, NULL), PROTO_TS_PREPARED);
	}
	// A sane commit timestamp resolves it.
	clk_ts cts = ts_plus_ms(p1, 10);
	assert_int_equal(h_txid(h, 1, PROTO_COMMIT, 5, cts, NULL), PROTO_ACK);
	h_expect_committed(h, 1, 5, cts);
	h_expect(h, 1, 0, "acct:2", 107);

	// The clock was not moved by the refused ones: the next prepare
	// takes a timestamp above the commit, not a minute or years ahead.
	op = op_add("acct:2", 1, 0);
	clk_ts p2 = h_prepare1(h, 1, 6, &op);
	assert_true(p2 > cts);
	assert_true(clk_ts_l(p2) < clk_ts_l(p1) + 60000);
	assert_int_equal(h_txid(h, 1, PROTO_ABORT, 6, 0, NULL), PROTO_ACK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_ahead_of_skewed_clock),
		cmocka_unit_test(test_commit_beyond_max_offset),
	};
	// Group fixtures: cmocka runs a group teardown even after a failed
	// test (a test's own teardown it skips), so the daemon always stops.
	return cmocka_run_group_tests(tests, setup, h_teardown);
}
