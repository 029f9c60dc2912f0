// SPDX-License-Identifier: MIT
//
// 3PC end to end with three participants. Crash-stop: the coordinator
// dies after logging PRECOMMIT (nobody pre-committed: the participants'
// termination protocol aborts everywhere) or after pre-committing
// participant 1 only (the protocol pre-commits the others and commits
// everywhere); both without the coordinator, consistently.
//
// Partition: this test demonstrates the textbook flaw of 3PC. It is
// correct only under crash-stop failures with bounded delays; under a
// network partition a cut-off participant looks exactly like a crashed
// one. The coordinator pre-commits participant 1, the partition
// {coordinator, 1} | {2, 3} falls before 2 and 3 hear PRE_COMMIT, the
// coordinator presumes 2 and 3 crashed and commits, while 2 and 3, all
// uncertain, run the termination protocol and abort. The test asserts
// that this split decision HAPPENS and that the atomicity checker
// reports it.

#include <pthread.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_2pc_util.h"

#define NACCT 24
#define BAL 1000

// Participant 1 must not ask the coordinator for the outcome while the
// coordinator waits for the delayed votes of 2 and 3 (it would answer
// ABORTED and the transaction would abort, a correct but different run).
static char *const slow_p1_env[] = { "DTX_INDOUBT_TIMEOUT_MS=60000", NULL };

static int
setup_plain(void **state)
{
	static tu_fx fx;
	return tu_setup_bank(state, &fx, 3, tu_env_debug, NACCT, BAL);
}

static int
setup_slow_p1(void **state)
{
	static tu_fx fx;
	static char *const *const env[] = { tu_coord_debug, slow_p1_env, NULL,
		NULL };
	return tu_setup_bank(state, &fx, 3, env, NACCT, BAL);
}

// A 3PC transfer touching all three participants: 2 from an account on
// participant 1 to one each on 2 and 3.
static dtx_err
transfer3(
    tu_fx *fx, proto_client *cl, int n, proto_msg *rep, uint32_t timeout_ms)
{
	char k[3][32];
	proto_op ops[3];
	memset(ops, 0, sizeof(ops));
	for (uint32_t i = 0; i < 3; i++) {
		tu_key(k[i], sizeof(k[i]), tu_acct_on(fx, i + 1, n));
		ops[i].kind = PROTO_OP_ADD;
		ops[i].key.p = (uint8_t *)k[i];
		ops[i].key.n = (uint32_t)strlen(k[i]);
		ops[i].delta = i == 0 ? -2 : 1;
		ops[i].min = 0;
	}
	return tu_txn(fx, cl, PROTO_MODE_3PC, ops, 3, rep, timeout_ms);
}

static void
crash_3pc(tu_fx *fx, const char *point, int expect, int n)
{
	int64_t total0 = tu_sum(fx);
	uint64_t before = tu_last_txid(fx);
	assert_int_equal(tu_arm(fx, 0, point), DTX_OK);
	proto_msg rep;
	if (transfer3(fx, NULL, n, &rep, 3000) == DTX_OK)
		proto_msg_free(&rep);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 0, 20000, NULL), DTX_OK);
	uint64_t txid = tu_last_txid(fx);
	assert_true(txid != 0 && txid != before);
	// The participants terminate without the coordinator.
	tu_settle(fx, false, 60000, "%s: participants still in doubt", point);
	uint32_t ids[] = { 1, 2, 3 };
	tu_expect_outcome(fx, txid, ids, 3, expect);
	assert_int_equal(tu_sum(fx), total0);
	// The coordinator comes back, settles its PRECOMMIT record the
	// same way, and STATUS agrees.
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	tu_settle(fx, true, 30000, "%s: coordinator did not settle", point);
	tu_expect_status(
	    fx, 0, txid, expect ? PROTO_TS_COMMITTED : PROTO_TS_ABORTED);
	tu_expect_outcome(fx, txid, ids, 3, expect);
}

static void
test_crash_after_precommit_log(void **state)
{
	crash_3pc(*state, "coord.after_precommit_log", 0, 0);
}

static void
test_crash_after_some_precommits(void **state)
{
	crash_3pc(*state, "coord.after_some_precommits", 1, 1);
}

typedef struct bg {
	tu_fx *fx;
	proto_client *cl;
	dtx_err rv;
	proto_msg rep;
} bg;

static void *
bg_transfer(void *arg)
{
	bg *g = arg;
	g->rv = transfer3(g->fx, g->cl, 2, &g->rep, 60000);
	return NULL;
}

static void
partition(tu_fx *fx, uint32_t id, int64_t a, int64_t b)
{
	int64_t args[] = { a, b };
	assert_int_equal(tu_fault(fx, id, "partition", NULL, args, 2), DTX_OK);
}

static void
test_partition_split_decision(void **state)
{
	tu_fx *fx = *state;
	// The accounts' creation must be fully acknowledged first, or a
	// delayed COMMIT of it would make the transfer conflict.
	assert_true(tu_wait_resolved(fx, true, 30000));
	// Messages from the coordinator to 2 and 3 wait 8 s: their votes
	// come late, and so will their PRE_COMMITs.
	for (int64_t id = 2; id <= 3; id++) {
		int64_t delay[] = { id, 8000 };
		assert_int_equal(
		    tu_fault(fx, 0, "delay", NULL, delay, 2), DTX_OK);
	}
	bg g = { .fx = fx };
	assert_int_equal(tu_coord_client(fx, 0, &g.cl), DTX_OK);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &g), 0);

	// Wait until participant 1 is pre-committed, then cut the network
	// into {0, 1} and {2, 3}, in both directions, while the PRE_COMMITs
	// to 2 and 3 are still held back.
	uint64_t txid = 0;
	uint64_t end = dtx_mono_ns() + 30000000000u;
	while (txid == 0 && dtx_mono_ns() < end) {
		uint64_t cand = tu_last_txid(fx);
		proto_txn_state st;
		if (cand != 0 && tu_status(fx, 1, cand, &st) == DTX_OK &&
		    st == PROTO_TS_PRECOMMITTED)
			txid = cand;
		else
			dtx_sleep_ms(5);
	}
	assert_true(txid != 0);
	partition(fx, 0, 2, 3);
	partition(fx, 1, 2, 3);
	partition(fx, 2, 0, 1);
	partition(fx, 3, 0, 1);

	// The coordinator presumes 2 and 3 crashed and commits.
	pthread_join(th, NULL);
	proto_client_close(g.cl);
	assert_int_equal(g.rv, DTX_OK);
	assert_int_equal(g.rep.u.txn_reply.outcome, PROTO_COMMITTED);
	assert_int_equal(g.rep.u.txn_reply.txid, txid);
	proto_msg_free(&g.rep);

	// 2 and 3, uncertain and cut off from everyone who saw PRE_COMMIT,
	// abort by the termination protocol.
	proto_txn_state s1 = PROTO_TS_UNKNOWN, s2 = PROTO_TS_UNKNOWN,
	                s3 = PROTO_TS_UNKNOWN;
	end = dtx_mono_ns() + 60000000000u;
	while (dtx_mono_ns() < end) {
		(void)tu_status(fx, 1, txid, &s1);
		(void)tu_status(fx, 2, txid, &s2);
		(void)tu_status(fx, 3, txid, &s3);
		if (s1 == PROTO_TS_COMMITTED && s2 == PROTO_TS_ABORTED &&
		    s3 == PROTO_TS_ABORTED)
			break;
		dtx_sleep_ms(50);
	}
	if (s2 != PROTO_TS_ABORTED || s3 != PROTO_TS_ABORTED)
		tu_dump_logs(fx);
	assert_int_equal(s1, PROTO_TS_COMMITTED);
	assert_int_equal(s2, PROTO_TS_ABORTED);
	assert_int_equal(s3, PROTO_TS_ABORTED);
	tu_expect_status(fx, 0, txid, PROTO_TS_COMMITTED);

	// Our own check and the CLI's atomicity checker both see it.
	uint32_t ids[] = { 1, 2, 3 };
	tu_expect_outcome(fx, txid, ids, 3, -1);
	hx_txn_obs obs[3] = {
		{ txid, 1, HX_TXN_COMMITTED },
		{ txid, 2, HX_TXN_ABORTED },
		{ txid, 3, HX_TXN_ABORTED },
	};
	hx_history *h = hx_history_new();
	assert_non_null(h);
	hx_atom_result ar;
	assert_int_equal(hx_check_atomicity(h, obs, 3, &ar), DTX_OK);
	assert_int_equal(ar.split, 1);
	assert_int_equal(ar.c.valid, HX_VALID_FALSE);
	print_message("atomicity: %s\n", ar.c.summary);
	hx_check_fini(&ar.c);
	hx_history_free(h);
}

// A DO_COMMIT does not start a batch of its own: it rides the next one to
// its participant (coordinator/batch.c). On an idle cluster there is no
// next one, and the linger thread sends it within a millisecond: every
// participant leaves doubt long before it would ask the coordinator for
// the outcome itself (indoubt-timeout-ms, 2000), and none asks.
static void
test_do_commit_on_idle_cluster(void **state)
{
	tu_fx *fx = *state;
	assert_true(tu_wait_resolved(fx, true, 20000));
	int64_t asked0 = tu_counter(fx, 0, "status_queries");
	int64_t redriven0 = tu_counter(fx, 0, "redriven");
	int64_t total0 = tu_sum(fx);
	for (int n = 0; n < 3; n++) {
		proto_msg rep;
		assert_int_equal(transfer3(fx, NULL, n, &rep, 10000), DTX_OK);
		assert_int_equal(rep.hdr.type, PROTO_TXN_REPLY);
		assert_int_equal(rep.u.txn_reply.outcome, PROTO_COMMITTED);
		proto_msg_free(&rep);
		assert_true(tu_wait_resolved(fx, true, 1000));
	}
	assert_int_equal(tu_counter(fx, 0, "status_queries"), asked0);
	assert_int_equal(tu_counter(fx, 0, "redriven"), redriven0);
	assert_int_equal(tu_sum(fx), total0);
}

// Rule 4: the CAN_COMMITs of the transactions in one client BATCH leave
// in one batch per participant, not the first one alone and the rest a
// round trip later. Every vote here is NO (each transfer takes more than
// the balance on both sides), so the votes are all the coordinator sends.
static void
test_client_batch_shares_votes(void **state)
{
	tu_fx *fx = *state;
	assert_true(tu_wait_resolved(fx, true, 20000));
	enum { N = 6 };
	char k[N][2][32];
	proto_op ops[N][2];
	proto_msg el[N];
	memset(ops, 0, sizeof(ops));
	for (int i = 0; i < N; i++) {
		for (uint32_t j = 0; j < 2; j++) {
			tu_key(k[i][j], sizeof(k[i][j]),
			    tu_acct_on(fx, j + 1, i % 4));
			ops[i][j].kind = PROTO_OP_ADD;
			ops[i][j].key.p = (uint8_t *)k[i][j];
			ops[i][j].key.n = (uint32_t)strlen(k[i][j]);
			ops[i][j].delta = -(BAL + 1);
			ops[i][j].min = 0;
		}
		proto_msg_init(&el[i], PROTO_TXN);
		el[i].u.txn.mode = PROTO_MODE_3PC;
		el[i].u.txn.n_ops = 2;
		el[i].u.txn.ops = ops[i];
	}
	int64_t batches0 = tu_counter(fx, 0, "batches_sent");
	int64_t items0 = tu_counter(fx, 0, "batch_items");
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_BATCH);
	req.u.batch.n = N;
	req.u.batch.msgs = el;
	assert_int_equal(tu_call(fx, 0, &req, &rep, 10000), DTX_OK);
	assert_int_equal(rep.hdr.type, PROTO_BATCH);
	assert_int_equal(rep.u.batch.n, N);
	for (int i = 0; i < N; i++) {
		const proto_msg *m = &rep.u.batch.msgs[i];
		assert_int_equal(m->hdr.type, PROTO_TXN_REPLY);
		assert_int_equal(m->u.txn_reply.outcome, PROTO_ABORTED);
	}
	proto_msg_free(&rep);
	int64_t batches = tu_counter(fx, 0, "batches_sent") - batches0;
	int64_t items = tu_counter(fx, 0, "batch_items") - items0;
	print_message("%d transactions: %lld messages in %lld batches\n", N,
	    (long long)items, (long long)batches);
	assert_int_equal(items, 2 * N);
	assert_int_equal(batches, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_crash_after_precommit_log,
		    setup_plain, tu_group_teardown),
		cmocka_unit_test_setup_teardown(
		    test_crash_after_some_precommits, setup_plain,
		    tu_group_teardown),
		cmocka_unit_test_setup_teardown(test_partition_split_decision,
		    setup_slow_p1, tu_group_teardown),
		cmocka_unit_test_setup_teardown(test_do_commit_on_idle_cluster,
		    setup_plain, tu_group_teardown),
		cmocka_unit_test_setup_teardown(test_client_batch_shares_votes,
		    setup_plain, tu_group_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
