// SPDX-License-Identifier: MIT
//
// 2PC under kill -9 at every crash point, with real daemons: the victim
// (coordinator or participant 1) dies at the point during a transfer, is
// restarted, and once every node reports nothing in doubt the transfer's
// outcome must be the same at every participant (and the one the point
// implies) and the bank total must be unchanged. Also presumed abort: a
// coordinator killed before it decided answers ABORTED after a restart.

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
	// Votes may take up to 3 s: long enough for a participant to
	// restart within one (test_part_restarting).
	static char *const coord_env[] = { "DTX_LOG_LEVEL=debug",
		"DTX_VOTE_TIMEOUT_MS=3000", NULL };
	static char *const *const env[] = { coord_env, NULL, NULL, NULL };
	static tu_fx fx;
	return tu_setup_bank(state, &fx, 2, env, NACCT, BAL);
}

// Runs one transfer with crash point `point` armed at node victim and
// checks the outcome: 1 committed everywhere, 0 aborted everywhere.
static void
crash_case(tu_fx *fx, uint32_t victim, const char *point, int expect, int n)
{
	tu_pair p = tu_pair_of(fx, n, 20000);
	int64_t total0 = tu_sum(fx);
	uint64_t before = tu_last_txid(fx);

	assert_int_equal(tu_arm(fx, victim, point), DTX_OK);
	proto_msg rep;
	dtx_err rv =
	    tu_transfer(fx, NULL, PROTO_MODE_2PC, p.a, p.b, 10, &rep, 3000);
	if (rv == DTX_OK) {
		// The client may hear the outcome (participant crashes); it
		// must then be the one expected.
		proto_outcome want = expect ? PROTO_COMMITTED : PROTO_ABORTED;
		if (rep.u.txn_reply.outcome != want) {
			tu_dump_logs(fx);
			fail_msg("%s: outcome %d (reason %s), expected %d",
			    point, (int)rep.u.txn_reply.outcome,
			    rep.u.txn_reply.reason ? rep.u.txn_reply.reason
			                           : "-",
			    (int)want);
		}
		proto_msg_free(&rep);
	}
	uint64_t txid = tu_crashed_txid(fx, victim, before);

	assert_int_equal(tu_restart(fx, victim), DTX_OK);
	tu_settle(fx, true, 60000, "%s: still in doubt after 60 s", point);
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, expect);
	tu_expect_status(
	    fx, 0, txid, expect ? PROTO_TS_COMMITTED : PROTO_TS_ABORTED);
	assert_int_equal(tu_sum(fx), total0);
	tu_pair_moved(fx, &p, expect ? 10 : 0, 20000);
}

// A test of one crash point: crash_case at node victim, with the outcome
// expect the point implies (1 committed, 0 aborted), on account pair n.
#define CRASH_TEST(name, victim, point, expect, n)                             \
	static void name(void **state)                                         \
	{                                                                      \
		crash_case(*state, victim, point, expect, n);                  \
	}

CRASH_TEST(test_coord_before_commit_log, 0, "coord.before_commit_log", 0, 0)
CRASH_TEST(test_coord_after_commit_log, 0, "coord.after_commit_log", 1, 1)
CRASH_TEST(test_coord_after_some_commits, 0, "coord.after_some_commits", 1, 2)
CRASH_TEST(test_part_after_prepare_log, 1, "part.after_prepare_log", 0, 3)
CRASH_TEST(test_part_before_commit_log, 1, "part.before_commit_log", 1, 4)
CRASH_TEST(test_part_after_commit_log, 1, "part.after_commit_log", 1, 5)

typedef struct bg {
	tu_fx *fx;
	int64_t a, b;
	proto_client *cl;
	dtx_err rv; // of the transfer
	int outcome; // the reply's, when rv is DTX_OK
} bg;

static void *
bg_transfer(void *arg)
{
	bg *g = arg;
	proto_msg rep;
	g->rv = tu_transfer(
	    g->fx, g->cl, PROTO_MODE_2PC, g->a, g->b, 10, &rep, 8000);
	if (g->rv == DTX_OK) {
		g->outcome = (int)rep.u.txn_reply.outcome;
		proto_msg_free(&rep);
	}
	return NULL;
}

// A transfer that begins while a participant is down and restarting: the
// coordinator's PREPARE finds no connection (its dialer waits between
// attempts), which means "not delivered", so it is sent again within the
// vote timeout and the transfer commits instead of aborting.
static void
test_part_restarting(void **state)
{
	tu_fx *fx = *state;
	tu_pair p = tu_pair_of(fx, 7, 20000);
	assert_int_equal(hx_cluster_signal(fx->cl, 2, SIGKILL), DTX_OK);
	// Past participant 2's persisted HLC bound, so that its restart
	// does not wait for its clock, and past the coordinator's first
	// reconnect attempts, so that its dialer backs off.
	dtx_sleep_ms(1500);
	bg g = { .fx = fx, .a = p.a, .b = p.b };
	assert_int_equal(tu_coord_client(fx, 0, &g.cl), DTX_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &g), 0);
	dtx_sleep_ms(300); // longer than one wait for a connection (200 ms)
	assert_int_equal(tu_restart(fx, 2), DTX_OK);
	pthread_join(th, NULL);
	proto_client_close(g.cl);
	assert_int_equal(g.rv, DTX_OK);
	assert_int_equal(g.outcome, PROTO_COMMITTED);
	assert_true(tu_wait_resolved(fx, true, 60000));
	tu_pair_moved(fx, &p, 10, 20000);
}

// The coordinator dies while participant 1 is prepared and participant 2
// has not even been asked: no decision was logged, so after the restart
// STATUS answers ABORTED and participant 1 aborts (presumed abort).
static void
test_presumed_abort(void **state)
{
	tu_fx *fx = *state;
	int64_t a = tu_acct_on(fx, 1, 6), b = tu_acct_on(fx, 2, 6);
	int64_t total0 = tu_sum(fx);
	int64_t ba = tu_must_balance(fx, a, 20000);
	int64_t delay[] = { 2, 5000 };
	assert_int_equal(tu_fault(fx, 0, "delay", NULL, delay, 2), DTX_OK);
	bg g = { .fx = fx, .a = a, .b = b };
	assert_int_equal(tu_coord_client(fx, 0, &g.cl), DTX_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &g), 0);

	// Wait until participant 1 holds the prepared intent on a.
	uint64_t txid = 0;
	uint64_t end = dtx_mono_ns() + 4000000000u;
	char k[32];
	tu_key(k, sizeof(k), a);
	while (txid == 0 && dtx_mono_ns() < end) {
		proto_msg req, rep;
		proto_bytes key = { (uint8_t *)k, (uint32_t)strlen(k) };
		proto_msg_init(&req, PROTO_READ);
		req.u.read.n_keys = 1;
		req.u.read.keys = &key;
		if (tu_call(fx, 1, &req, &rep, 3000) == DTX_OK) {
			if (rep.hdr.type == PROTO_READ_REPLY &&
			    rep.u.read_reply.status == PROTO_READ_RETRY)
				txid = rep.u.read_reply.blocked_txid;
			proto_msg_free(&rep);
		}
		if (txid == 0)
			dtx_sleep_ms(10);
	}
	assert_true(txid != 0);
	assert_int_equal(hx_cluster_signal(fx->cl, 0, SIGKILL), DTX_OK);
	pthread_join(th, NULL);
	proto_client_close(g.cl);
	tu_expect_status(fx, 1, txid, PROTO_TS_PREPARED);

	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	assert_true(tu_wait_resolved(fx, true, 60000));
	uint32_t ids[] = { 1, 2 };
	tu_expect_outcome(fx, txid, ids, 2, 0);
	tu_expect_status(fx, 1, txid, PROTO_TS_ABORTED);
	assert_int_equal(tu_sum(fx), total0);
	assert_int_equal(tu_must_balance(fx, a, 20000), ba);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_coord_before_commit_log),
		cmocka_unit_test(test_coord_after_commit_log),
		cmocka_unit_test(test_coord_after_some_commits),
		cmocka_unit_test(test_part_after_prepare_log),
		cmocka_unit_test(test_part_before_commit_log),
		cmocka_unit_test(test_part_after_commit_log),
		cmocka_unit_test(test_presumed_abort),
		cmocka_unit_test(test_part_restarting),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
