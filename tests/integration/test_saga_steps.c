// SPDX-License-Identifier: MIT
//
// The participant's side of sagas (rule 13), on a real dtx-participant
// driven by STEP messages sent straight to it: duplicate actions and
// compensations are no-ops that answer the first result, a compensation
// whose action never ran is a null compensation, an action arriving after
// its compensation is refused, a failed action's compensation changes
// nothing, SAGA_FORGET drops the barriers and leaves a tombstone that
// refuses any later step of the saga (also after a restart), a step of a
// saga older than the barrier horizon is refused, and bad steps are
// refused without hurting the daemon.

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_saga_util.h"

#define NACCT 4

static tsaga T;

static int
setup(void **state)
{
	*state = &T;
	if (ts_create(&T, 1) != 0 || ts_start(&T, 1, NULL) != 0)
		return -1;
	return ts_init_accounts(&T, NACCT, 100);
}

static int64_t
balance(int acct)
{
	int64_t bal[NACCT];
	ts_total(&T, NACCT, bal);
	return bal[acct];
}

static int
step(const char *gid, uint32_t br, proto_phase ph, int acct, int64_t delta,
    int64_t min, bool *dup)
{
	char k[32];
	proto_op op;
	ts_key(k, sizeof(k), acct);
	ts_op_add(&op, k, delta, min);
	return ts_step(&T, 1, gid, br, ph, &op, 1, dup);
}

// Sends a STEP of one ADD of delta to acct (floored at 0 for an action,
// unfloored for a compensation) and asserts its result and whether the
// participant took it for a duplicate.
static void
expect_step(const char *gid, uint32_t br, proto_phase ph, int acct,
    int64_t delta, int want, bool want_dup)
{
	bool dup = !want_dup;
	int64_t min = ph == PROTO_PHASE_ACTION ? 0 : INT64_MIN;
	assert_int_equal(step(gid, br, ph, acct, delta, min, &dup), want);
	if (dup != want_dup)
		fail_msg("step %s/%u: duplicate is %d, expected %d", gid, br,
		    (int)dup, (int)want_dup);
}

static void
test_duplicate_action_and_compensation(void **state)
{
	(void)state;
	expect_step(
	    "g-dup", 0, PROTO_PHASE_ACTION, 0, -10, PROTO_STEP_OK, false);
	assert_int_equal(balance(0), 90);
	// Delivered again (a retry after a lost reply): no second debit.
	for (int i = 0; i < 3; i++) {
		expect_step("g-dup", 0, PROTO_PHASE_ACTION, 0, -10,
		    PROTO_STEP_OK, true);
	}
	assert_int_equal(balance(0), 90);
	// Its compensation, delivered three times, credits once.
	expect_step(
	    "g-dup", 0, PROTO_PHASE_COMPENSATE, 0, 10, PROTO_STEP_OK, false);
	for (int i = 0; i < 2; i++) {
		expect_step("g-dup", 0, PROTO_PHASE_COMPENSATE, 0, 10,
		    PROTO_STEP_OK, true);
	}
	assert_int_equal(balance(0), 100);
	// A late copy of the action answers its first result and changes
	// nothing.
	expect_step(
	    "g-dup", 0, PROTO_PHASE_ACTION, 0, -10, PROTO_STEP_OK, true);
	assert_int_equal(balance(0), 100);
}

static void
test_null_compensation_and_hanging_action(void **state)
{
	(void)state;
	// The compensation overtakes its action (the action's message was
	// delayed): nothing to undo, but it is recorded.
	expect_step(
	    "g-null", 3, PROTO_PHASE_COMPENSATE, 1, 25, PROTO_STEP_OK, false);
	assert_int_equal(balance(1), 100);
	// The delayed action arrives: refused, no debit (no hanging).
	expect_step(
	    "g-null", 3, PROTO_PHASE_ACTION, 1, -25, PROTO_STEP_REFUSED, false);
	assert_int_equal(balance(1), 100);
	assert_int_equal(step("g-null", 3, PROTO_PHASE_ACTION, 1, -25, 0, NULL),
	    PROTO_STEP_REFUSED);
	assert_int_equal(balance(1), 100);
	// A second copy of the null compensation is a duplicate.
	expect_step(
	    "g-null", 3, PROTO_PHASE_COMPENSATE, 1, 25, PROTO_STEP_OK, true);
	assert_int_equal(balance(1), 100);
}

static void
test_failed_action(void **state)
{
	(void)state;
	// Insufficient funds: FAILED, nothing changes.
	expect_step("g-fail", 0, PROTO_PHASE_ACTION, 2, -1000,
	    PROTO_STEP_FAILED, false);
	assert_int_equal(balance(2), 100);
	// A duplicate answers FAILED again, even though the balance would
	// now allow a smaller debit: the first result stands.
	expect_step(
	    "g-fail", 0, PROTO_PHASE_ACTION, 2, -1000, PROTO_STEP_FAILED, true);
	// Its compensation must change nothing (the action changed nothing).
	expect_step(
	    "g-fail", 0, PROTO_PHASE_COMPENSATE, 2, 1000, PROTO_STEP_OK, false);
	assert_int_equal(balance(2), 100);
	// A missing account fails the same way.
	char k[32] = "no-such-account";
	proto_op op;
	ts_op_add(&op, k, 5, INT64_MIN);
	assert_int_equal(
	    ts_step(&T, 1, "g-missing", 0, PROTO_PHASE_ACTION, &op, 1, NULL),
	    PROTO_STEP_FAILED);
}

static void
test_forget_drops_barriers(void **state)
{
	(void)state;
	assert_int_equal(
	    step("g-forget", 0, PROTO_PHASE_ACTION, 3, -1, 0, NULL),
	    PROTO_STEP_OK);
	assert_int_equal(balance(3), 99);
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_SAGA_FORGET);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.gid.gid = "g-forget";
	assert_int_equal(ts_call(&T, 1, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
	// Its barriers are gone, but the tombstone the forget left refuses
	// the same step replayed (and its compensation, and any other
	// branch): nothing is applied a second time.
	for (int i = 0; i < 2; i++)
		expect_step("g-forget", 0, PROTO_PHASE_ACTION, 3, -1,
		    PROTO_STEP_REFUSED, false);
	expect_step("g-forget", 1, PROTO_PHASE_ACTION, 3, -1,
	    PROTO_STEP_REFUSED, false);
	expect_step("g-forget", 0, PROTO_PHASE_COMPENSATE, 3, 1,
	    PROTO_STEP_REFUSED, false);
	assert_int_equal(balance(3), 99);
	// A second forget of the same saga is answered and changes nothing.
	proto_msg_init(&rep, PROTO_NONE);
	assert_int_equal(ts_call(&T, 1, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
	expect_step("g-forget", 0, PROTO_PHASE_ACTION, 3, -1,
	    PROTO_STEP_REFUSED, false);
	assert_int_equal(balance(3), 99);
	// Restore the account for the other cases.
	assert_int_equal(
	    step("g-forget-undo", 0, PROTO_PHASE_ACTION, 3, 1, INT64_MIN, NULL),
	    PROTO_STEP_OK);
	assert_int_equal(balance(3), 100);
}

static void
test_bad_steps_refused(void **state)
{
	(void)state;
	char k[32] = "acct-0";
	proto_op op = { .kind = PROTO_OP_GET, .key = { (uint8_t *)k, 6 } };
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_STEP);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.step = (proto_step) { .gid = "g-bad",
		.branch = 0,
		.phase = PROTO_PHASE_ACTION,
		.n_ops = 1,
		.ops = &op };
	assert_int_equal(ts_call(&T, 1, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	proto_msg_free(&rep);
	// An APPEND has no compensation: a step refuses it too (it would
	// otherwise be taken for an ADD of the element to the balance).
	op = (proto_op) {
		.kind = PROTO_OP_APPEND, .key = { (uint8_t *)k, 6 }, .delta = 7
	};
	proto_msg_init(&rep, PROTO_NONE);
	assert_int_equal(ts_call(&T, 1, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	assert_non_null(strstr(rep.u.error.reason, "add or put"));
	proto_msg_free(&rep);
	// Still serving, balances intact.
	assert_int_equal(balance(0), 100);
	char state_s[64];
	assert_int_equal(
	    ts_health(&T, 1, state_s, sizeof(state_s), NULL, NULL), 0);
}

static void
forget(const char *gid)
{
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_SAGA_FORGET);
	proto_msg_init(&rep, PROTO_NONE);
	req.u.gid.gid = (char *)gid;
	assert_int_equal(ts_call(&T, 1, &req, &rep), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_ACK);
	proto_msg_free(&rep);
}

// A barrier id as the orchestrator mints it (saga/saga_int.h), for a
// saga that began age_ms ago.
static void
bid_of_age(char *out, size_t n, uint64_t age_ms)
{
	uint64_t now = dtx_wall_ns() / 1000000u;
	clk_ts ts = clk_ts_make(now - age_ms, 3);
	snprintf(out, n, "s%016" PRIx64 "-%016" PRIx64, (uint64_t)ts,
	    UINT64_C(0x5eed5eed5eed5eed));
}

static void
test_step_past_horizon_refused(void **state)
{
	(void)state;
	char old[64], young[64];
	// Eight days old: its barriers (or tombstone) may have been
	// collected by age, so no step of it runs, first time or not.
	bid_of_age(old, sizeof(old), 8ull * 24 * 3600 * 1000);
	expect_step(
	    old, 0, PROTO_PHASE_ACTION, 2, -5, PROTO_STEP_REFUSED, false);
	expect_step(
	    old, 0, PROTO_PHASE_COMPENSATE, 2, 5, PROTO_STEP_REFUSED, false);
	assert_int_equal(balance(2), 100);
	// A day old: well inside the horizon, it runs (and is undone).
	bid_of_age(young, sizeof(young), 24ull * 3600 * 1000);
	expect_step(young, 0, PROTO_PHASE_ACTION, 2, -5, PROTO_STEP_OK, false);
	assert_int_equal(balance(2), 95);
	expect_step(
	    young, 0, PROTO_PHASE_COMPENSATE, 2, 5, PROTO_STEP_OK, false);
	assert_int_equal(balance(2), 100);
	int64_t n = -1;
	assert_int_equal(
	    ts_health(&T, 1, NULL, 0, "refused_stale_step", &n), 0);
	assert_true(n >= 2);
}

static void
test_barriers_survive_restart(void **state)
{
	(void)state;
	assert_int_equal(
	    step("g-restart", 1, PROTO_PHASE_ACTION, 0, -7, 0, NULL),
	    PROTO_STEP_OK);
	assert_int_equal(step("g-restart2", 1, PROTO_PHASE_COMPENSATE, 0, 7,
	                     INT64_MIN, NULL),
	    PROTO_STEP_OK);
	// A forgotten saga: its tombstone must survive the crash too.
	assert_int_equal(
	    step("g-restart3", 0, PROTO_PHASE_ACTION, 1, -4, 0, NULL),
	    PROTO_STEP_OK);
	forget("g-restart3");
	assert_int_equal(balance(1), 96);
	assert_int_equal(hx_cluster_signal(T.c, 1, SIGKILL), DTX_OK);
	ts_drop_client(&T, 1);
	assert_int_equal(ts_start(&T, 1, NULL), 0);
	expect_step("g-restart3", 0, PROTO_PHASE_ACTION, 1, -4,
	    PROTO_STEP_REFUSED, false);
	assert_int_equal(balance(1), 96);
	assert_int_equal(step("g-restart3-undo", 0, PROTO_PHASE_ACTION, 1, 4,
	                     INT64_MIN, NULL),
	    PROTO_STEP_OK);
	assert_int_equal(balance(1), 100);
	// The barriers came back from the participant's WAL.
	expect_step(
	    "g-restart", 1, PROTO_PHASE_ACTION, 0, -7, PROTO_STEP_OK, true);
	assert_int_equal(
	    step("g-restart2", 1, PROTO_PHASE_ACTION, 0, -7, 0, NULL),
	    PROTO_STEP_REFUSED);
	assert_int_equal(balance(0), 93);
	assert_int_equal(
	    step("g-restart", 1, PROTO_PHASE_COMPENSATE, 0, 7, INT64_MIN, NULL),
	    PROTO_STEP_OK);
	assert_int_equal(balance(0), 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duplicate_action_and_compensation),
		cmocka_unit_test(test_null_compensation_and_hanging_action),
		cmocka_unit_test(test_failed_action),
		cmocka_unit_test(test_forget_drops_barriers),
		cmocka_unit_test(test_bad_steps_refused),
		cmocka_unit_test(test_step_past_horizon_refused),
		cmocka_unit_test(test_barriers_survive_restart),
	};
	return cmocka_run_group_tests(tests, setup, ts_group_teardown);
}
