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

// One participant whose clock runs 2 s behind (max offset stays 500 ms).
static int
setup(void **state)
{
	static char *env[] = { "DTX_CLOCK_OFFSET_MS=-2000", NULL };
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_ahead_of_skewed_clock),
	};
	// Group fixtures: cmocka runs a group teardown even after a failed
	// test (a test's own teardown it skips), so the daemon always stops.
	return cmocka_run_group_tests(tests, setup, h_teardown);
}
