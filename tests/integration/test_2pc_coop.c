// SPDX-License-Identifier: MIT
//
// Cooperative termination end to end (DESIGN rules 8 and 9). The
// coordinator dies after sending COMMIT to participant 1 only and stays
// down: participant 2, in doubt, learns COMMITTED from its peer. The
// coordinator dies right after forcing COMMIT, before telling anyone:
// both participants are in doubt, neither may guess, so each reports
// "blocked" with the txid until the coordinator comes back and the
// transaction resolves to committed.

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_2pc_util.h"

#define NACCT 8
#define BAL 1000

static int
setup(void **state)
{
	static tu_fx fx;
	return tu_setup_bank(state, &fx, 2, tu_env_debug, NACCT, BAL);
}

// Arms point at the coordinator, runs a transfer, waits for the crash and
// returns the transfer's txid.
static uint64_t
crash_coord(tu_fx *fx, const char *point, int n)
{
	int64_t a = tu_acct_on(fx, 1, n), b = tu_acct_on(fx, 2, n);
	uint64_t before = tu_last_txid(fx);
	tu_transfer_armed(fx, point, a, b);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 0, 20000, NULL), DTX_OK);
	uint64_t txid = tu_last_txid(fx);
	assert_true(txid != 0 && txid != before);
	return txid;
}

static void
test_peer_knows_outcome(void **state)
{
	tu_fx *fx = *state;
	int64_t total0 = tu_sum(fx);
	uint64_t txid = crash_coord(fx, "coord.after_some_commits", 0);
	// Participant 1 heard COMMIT before the crash.
	tu_expect_status(fx, 1, txid, PROTO_TS_COMMITTED);
	// Without the coordinator, participant 2 asks its peer.
	tu_settle(fx, false, 60000, "participant 2 still in doubt");
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, 1);
	assert_int_equal(tu_sum(fx), total0);
	// The restarted coordinator finishes its bookkeeping (END).
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	assert_true(tu_wait_resolved(fx, true, 30000));
	tu_expect_status(fx, 0, txid, PROTO_TS_COMMITTED);
}

static void
test_blocked_until_coordinator_returns(void **state)
{
	tu_fx *fx = *state;
	int64_t total0 = tu_sum(fx);
	uint64_t txid = crash_coord(fx, "coord.after_commit_log", 1);

	// Both participants end up blocked on txid.
	uint64_t end = dtx_mono_ns() + 60000000000u;
	bool both = false;
	while (!both && dtx_mono_ns() < end) {
		both = true;
		for (uint32_t id = 1; id <= 2; id++) {
			char st[32];
			bool blk = false;
			if (tu_health(fx, id, st, sizeof(st), NULL, txid,
			        &blk) != DTX_OK ||
			    strcmp(st, "blocked") != 0 || !blk)
				both = false;
		}
		if (!both)
			dtx_sleep_ms(50);
	}
	if (!both)
		tu_dump_logs(fx);
	assert_true(both);
	// They stay blocked and never guess while the coordinator is away.
	for (int i = 0; i < 10; i++) {
		for (uint32_t id = 1; id <= 2; id++) {
			uint64_t in_doubt = 0;
			tu_expect_status(fx, id, txid, PROTO_TS_PREPARED);
			assert_int_equal(
			    tu_health(fx, id, NULL, 0, &in_doubt, 0, NULL),
			    DTX_OK);
			assert_true(in_doubt >= 1);
		}
		dtx_sleep_ms(200);
	}
	// The coordinator comes back with its logged COMMIT.
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	tu_settle(
	    fx, true, 60000, "still in doubt after the coordinator returned");
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, 1);
	// The resolver drops its blocked entry on its next round.
	for (uint32_t id = 1; id <= 2; id++) {
		char st[32] = "blocked";
		end = dtx_mono_ns() + 10000000000u;
		while (strcmp(st, "blocked") == 0 && dtx_mono_ns() < end) {
			assert_int_equal(
			    tu_health(fx, id, st, sizeof(st), NULL, 0, NULL),
			    DTX_OK);
			if (strcmp(st, "blocked") == 0)
				dtx_sleep_ms(50);
		}
		assert_string_not_equal(st, "blocked");
	}
	assert_int_equal(tu_sum(fx), total0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_knows_outcome),
		cmocka_unit_test(test_blocked_until_coordinator_returns),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
