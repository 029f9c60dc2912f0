// SPDX-License-Identifier: MIT
//
// DESIGN rules 7 and 10 against a real dtx-participant, where the other
// participant tests leave a mutation alive: a COMMIT whose record cannot
// be forced is not acknowledged (rule 7), and a snapshot read at T first
// advances the participant's HLC past T, so a later PREPARE there gets a
// prepare timestamp above T and cannot slip under the snapshot (rule 10).

#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_part_harness.h"

#define P1 1u

static int
setup(void **state)
{
	return h_setup(state, 1, 1, NULL);
}

// Rule 7: the fsync of the COMMIT record fails. The participant must not
// acknowledge the commit (the coordinator would write END and forget a
// transaction this participant may lose), and it stops taking writes.
static void
test_commit_not_acked_when_not_durable(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 10, "acct:c", 50));
	proto_op op = op_add("acct:c", -5, 0);
	clk_ts pts = h_prepare1(h, P1, 11, &op);

	assert_int_equal(h_fault(h, P1, "wal_sync", 1), PROTO_ACK);

	proto_type t =
	    h_txid(h, P1, PROTO_COMMIT, 11, ts_plus_ms(pts, 1), NULL);
	assert_true(t != PROTO_NONE);
	assert_int_not_equal(t, PROTO_ACK);
	assert_true(h_await_state(h, P1, "failed", 2000));
	// A resent COMMIT is not acknowledged either.
	t = h_txid(h, P1, PROTO_COMMIT, 11, ts_plus_ms(pts, 1), NULL);
	assert_int_not_equal(t, PROTO_ACK);
}

// Rule 10: a read at T ahead of the participant's clock (within the
// allowed offset) moves the clock past T first.
static void
test_read_advances_clock_past_t(void **state)
{
	harness *h = *state;
	assert_true(h_put(h, P1, 20, "acct:r", 7));
	// The participant's clock now: the prepare ts of a throw-away
	// transaction.
	proto_op op = op_add("acct:r", 1, 0);
	clk_ts p0 = h_prepare1(h, P1, 21, &op);
	assert_int_equal(h_txid(h, P1, PROTO_ABORT, 21, 0, NULL), PROTO_ACK);

	clk_ts T = ts_plus_ms(p0, 300);
	h_expect(h, P1, T, "acct:r", 7);
	// Right after the read: a new prepare lands above T, so it can
	// never commit at or below a snapshot already served.
	clk_ts p1 = h_prepare1(h, P1, 22, &op);
	if (p1 <= T)
		fail_msg("prepare ts %llu.%u is not above the read ts %llu.%u",
		    (unsigned long long)clk_ts_l(p1), clk_ts_c(p1),
		    (unsigned long long)clk_ts_l(T), clk_ts_c(T));
	assert_int_equal(h_txid(h, P1, PROTO_COMMIT, 22, p1, NULL), PROTO_ACK);
	// The snapshot at T still reads the old value.
	h_expect(h, P1, T, "acct:r", 7);
	h_expect(h, P1, p1, "acct:r", 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_commit_not_acked_when_not_durable, setup, h_teardown),
		cmocka_unit_test_setup_teardown(
		    test_read_advances_clock_past_t, setup, h_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
