// SPDX-License-Identifier: MIT
//
// Parallel commit (--mode pc) end to end with real daemons: a coordinator
// and three participants (rules 25, 26). A committed transfer carries the
// commit ts every participant applies; with the coordinator killed right
// after it answered (before any COMMIT left) and never restarted, the
// participants settle it themselves, at the same ts; a participant that
// is down during the vote leaves the coordinator unable to count a YES
// for it, so the client hears UNKNOWN, and once it is back it is fenced
// and the transfer aborts everywhere.

#include <pthread.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_2pc_util.h"

#define NACCT 16
#define BAL 1000

static int
setup(void **state)
{
	static char *const coord_env[] = { "DTX_LOG_LEVEL=debug",
		"DTX_VOTE_TIMEOUT_MS=1000", NULL };
	static char *const part_env[] = { "DTX_INDOUBT_TIMEOUT_MS=300",
		"DTX_RESOLVE_TIMEOUT_MS=300", "DTX_RESOLVE_BACKOFF_MAX_MS=400",
		NULL };
	static char *const *const env[] = { coord_env, part_env, part_env,
		part_env, NULL };
	static tu_fx fx;
	return tu_setup_bank(state, &fx, 3, env, NACCT, BAL);
}

// STATUS of txid at node id: the state, and the commit ts in *cts.
static proto_txn_state
status_cts(tu_fx *fx, uint32_t id, uint64_t txid, clk_ts *cts)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STATUS);
	req.u.txid.txid = txid;
	assert_int_equal(tu_call(fx, id, &req, &rep, 3000), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_STATUS_REPLY);
	proto_txn_state st = rep.u.status_reply.state;
	*cts = rep.u.status_reply.commit_ts;
	proto_msg_free(&rep);
	return st;
}

// Participants 1 and 2 committed txid at one ts, and it is want
// when want is not 0.
static void
same_cts(tu_fx *fx, uint64_t txid, clk_ts want)
{
	clk_ts a = 0, b = 0;
	assert_int_equal(status_cts(fx, 1, txid, &a), PROTO_TS_COMMITTED);
	assert_int_equal(status_cts(fx, 2, txid, &b), PROTO_TS_COMMITTED);
	assert_true(a != 0 && a == b);
	if (want != 0 && a != want) {
		tu_dump_logs(fx);
		fail_msg("client told %llx, participants applied %llx",
		    (unsigned long long)want, (unsigned long long)a);
	}
}

static void
test_pc_commit(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 0, 20000);
	proto_msg rep;
	assert_int_equal(
	    tu_transfer(fx, NULL, PROTO_MODE_PC, p.a, p.b, 7, &rep, 5000),
	    DTX_OK);
	assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
	clk_ts cts = rep.u.txn_reply.commit_ts;
	uint64_t txid = rep.u.txn_reply.txid;
	proto_msg_free(&rep);
	assert_true(cts != 0 && txid != 0);
	tu_settle(fx, false, 20000, "pc commit still in doubt");
	same_cts(fx, txid, cts);
	tu_pair_moved(fx, &p, 7, 20000);
}

// The coordinator dies after the reply, before any COMMIT, and stays
// dead: the participants find every YES among themselves.
static void
test_pc_coord_killed(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 1, 20000);
	uint64_t before = tu_last_txid(fx);
	assert_int_equal(tu_arm(fx, 0, "coord.pc_after_reply"), DTX_OK);
	proto_msg rep;
	clk_ts told = 0;
	dtx_err rv =
	    tu_transfer(fx, NULL, PROTO_MODE_PC, p.a, p.b, 10, &rep, 3000);
	if (rv == DTX_OK) {
		assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
		told = rep.u.txn_reply.commit_ts;
		proto_msg_free(&rep);
	}
	uint64_t txid = tu_crashed_txid(fx, 0, before);
	tu_settle(fx, false, 30000, "pc: in doubt without the coordinator");
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, 1);
	same_cts(fx, txid, told);
	assert_true(tu_counter(fx, 1, "resolved_by_peers") >= 1 ||
	    tu_counter(fx, 2, "resolved_by_peers") >= 1);
	tu_pair_moved(fx, &p, 10, 20000);
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
}

// Participant 2 is down for the whole vote: its YES is not there to
// count, so the coordinator cannot say committed (nor abort on its own).
static void
test_pc_missing_vote(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 2, 20000);
	assert_int_equal(hx_cluster_signal(fx->cl, 2, SIGKILL), DTX_OK);
	proto_msg rep;
	assert_int_equal(
	    tu_transfer(fx, NULL, PROTO_MODE_PC, p.a, p.b, 5, &rep, 8000),
	    DTX_OK);
	assert_int_equal(rep.u.txn_reply.outcome, PROTO_UNKNOWN);
	uint64_t txid = rep.u.txn_reply.txid;
	proto_msg_free(&rep);
	// Participant 1 voted YES and cannot reach 2: it stays in doubt.
	dtx_sleep_ms(1500);
	proto_txn_state st;
	assert_int_equal(tu_status(fx, 1, txid, &st), DTX_OK);
	assert_int_equal(st, PROTO_TS_PREPARED);
	assert_int_equal(tu_restart(fx, 2), DTX_OK);
	tu_settle(fx, false, 30000, "pc: in doubt after the peer came back");
	// Aborted, as participant 2 is fenced when asked; committed only if
	// the PREPARE still reached it first. Never split.
	uint32_t ids[] = { 1, 2 };
	int out = tu_outcome(fx, txid, ids, 2);
	if (out < 0)
		tu_dump_logs(fx);
	assert_true(out >= 0);
	tu_pair_moved(fx, &p, out == 1 ? 5 : 0, 20000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pc_commit),
		cmocka_unit_test(test_pc_coord_killed),
		cmocka_unit_test(test_pc_missing_vote),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
