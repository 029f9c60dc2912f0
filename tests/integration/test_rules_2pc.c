// SPDX-License-Identifier: MIT
//
// DESIGN rules 1, 3 and 4 against real daemons, where the other 2PC tests
// leave a mutation alive: a COMMIT whose force fails reaches no
// participant (rule 1); a restarted coordinator pushes its logged COMMIT
// to participants that never ask, then logs END so a further restart has
// nothing left to recover (rule 3); concurrent transactions share PREPARE
// messages and decision-log fsyncs (rule 4).

#include <pthread.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_2pc_util.h"

#define NACCT 40
#define BAL 1000

// Participants that never resolve on their own within a test: whatever
// they learn, they learn from the coordinator.
static char *const quiet_part_env[] = { "DTX_INDOUBT_TIMEOUT_MS=600000", NULL };
static char *const *const env[] = { tu_coord_debug, quiet_part_env,
	quiet_part_env };

static int
setup(void **state)
{
	static tu_fx fx;
	return tu_setup_bank(state, &fx, 2, env, NACCT, BAL);
}

// STATUS of txid at participants 1 and 2 until ms pass: false as soon as
// either reports anything but PREPARED.
static bool
stays_prepared(tu_fx *fx, uint64_t txid, uint64_t ms)
{
	uint64_t end = dtx_mono_ns() + ms * 1000000u;
	do {
		for (uint32_t id = 1; id <= 2; id++) {
			proto_txn_state st;
			if (tu_status(fx, id, txid, &st) != DTX_OK ||
			    st != PROTO_TS_PREPARED) {
				print_message(
				    "participant %u: state %d\n", id, (int)st);
				return false;
			}
		}
		dtx_sleep_ms(50);
	} while (dtx_mono_ns() < end);
	return true;
}

// Rule 1: the COMMIT record's force fails, so the decision is not known
// to be durable: no participant may hear COMMIT. Both stay PREPARED
// until the coordinator restarts and reads its log; then they agree.
static void
test_failed_force_sends_no_commit(void **state)
{
	tu_fx *fx = *state;
	assert_true(tu_wait_resolved(fx, true, 20000));
	int64_t total0 = tu_sum(fx);
	uint64_t txid = tu_transfer_unforced(
	    fx, tu_acct_on(fx, 1, 0), tu_acct_on(fx, 2, 0));
	if (!stays_prepared(fx, txid, 2000)) {
		tu_dump_logs(fx);
		fail_msg("a participant left PREPARED after a failed force");
	}

	// (hx_cluster_signal reaps a SIGKILLed daemon itself.)
	assert_int_equal(hx_cluster_signal(fx->cl, 0, SIGKILL), DTX_OK);
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	uint32_t ids[] = { 1, 2 };
	uint64_t end = dtx_mono_ns() + 30000000000u;
	int got = -1;
	while (
	    (got = tu_outcome(fx, txid, ids, 2)) == -1 && dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	if (got == -1)
		tu_dump_logs(fx);
	assert_true(got == 0 || got == 1);
	assert_true(tu_wait_resolved(fx, true, 30000));
	assert_int_equal(tu_sum(fx), total0);
}

// Rule 3: the coordinator dies right after forcing COMMIT. The
// participants do not ask (their in-doubt timeout is ten minutes), so
// only the restarted coordinator's re-sent COMMIT can commit them; it
// then writes END, and the next restart recovers nothing.
static void
test_restart_resends_commit_then_end(void **state)
{
	tu_fx *fx = *state;
	int64_t a = tu_acct_on(fx, 1, 1), b = tu_acct_on(fx, 2, 1);
	uint64_t before = tu_last_txid(fx);
	tu_transfer_armed(fx, "coord.after_commit_log", a, b);
	uint64_t txid = tu_crashed_txid(fx, 0, before);
	// Nobody has heard the decision.
	assert_true(stays_prepared(fx, txid, 300));

	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	assert_true(tu_counter(fx, 0, "recovered") >= 1);
	uint32_t ids[] = { 1, 2 };
	uint64_t end = dtx_mono_ns() + 15000000000u;
	int got;
	while ((got = tu_outcome(fx, txid, ids, 2)) != 1 && dtx_mono_ns() < end)
		dtx_sleep_ms(50);
	if (got != 1)
		tu_dump_logs(fx);
	assert_int_equal(got, 1);
	// Every participant acknowledged: the coordinator holds nothing in
	// doubt, and its log says so (END) across a clean restart.
	assert_true(tu_wait_resolved(fx, true, 15000));
	assert_int_equal(hx_cluster_signal(fx->cl, 0, SIGTERM), DTX_OK);
	assert_int_equal(hx_cluster_wait_exit(fx->cl, 0, 10000, NULL), DTX_OK);
	assert_int_equal(tu_restart(fx, 0), DTX_OK);
	assert_int_equal(tu_counter(fx, 0, "recovered"), 0);
	tu_expect_status(fx, 0, txid, PROTO_TS_COMMITTED);
}

typedef struct worker {
	tu_fx *fx;
	int id;
	int n;
	int replied, committed;
} worker;

static void *
worker_main(void *arg)
{
	worker *w = arg;
	proto_client *cl = NULL;
	if (tu_coord_client(w->fx, 10000, &cl) != DTX_OK)
		return NULL;
	// Each worker moves money between its own pair of accounts (a
	// transfer may still find its predecessor's locks not yet released:
	// the reply comes once COMMIT is logged, not once it is applied).
	int64_t a = tu_acct_on(w->fx, 1, 2 + w->id);
	int64_t b = tu_acct_on(w->fx, 2, 2 + w->id);
	for (int i = 0; i < w->n; i++) {
		proto_msg rep;
		if (tu_transfer(w->fx, cl, PROTO_MODE_2PC, i % 2 ? b : a,
		        i % 2 ? a : b, 1, &rep, 10000) != DTX_OK)
			continue;
		w->replied++;
		if (rep.u.txn_reply.outcome == PROTO_COMMITTED)
			w->committed++;
		proto_msg_free(&rep);
	}
	proto_client_close(cl);
	return NULL;
}

// Rule 4: 6 clients at once. PREPAREs for one participant travel
// together (more items than messages) and decision-log records share
// fsyncs (fewer syncs than records).
static void
test_batches_and_group_commit(void **state)
{
	tu_fx *fx = *state;
	assert_true(tu_wait_resolved(fx, true, 20000));
	int64_t batches0 = tu_counter(fx, 0, "batches_sent");
	int64_t items0 = tu_counter(fx, 0, "batch_items");
	int64_t appends0 = tu_counter(fx, 0, "log_appends");
	int64_t syncs0 = tu_counter(fx, 0, "log_syncs");
	assert_true(batches0 >= 0 && items0 >= 0);
	assert_true(appends0 >= 0 && syncs0 >= 0);
	enum { W = 6, N = 30 };
	worker w[W];
	pthread_t th[W];
	for (int i = 0; i < W; i++) {
		w[i] = (worker) { .fx = fx, .id = i, .n = N };
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	int replied = 0, committed = 0;
	for (int i = 0; i < W; i++) {
		pthread_join(th[i], NULL);
		replied += w[i].replied;
		committed += w[i].committed;
	}
	assert_int_equal(replied, W * N);
	assert_true(committed >= W);
	assert_true(tu_wait_resolved(fx, true, 20000));
	int64_t batches = tu_counter(fx, 0, "batches_sent") - batches0;
	int64_t items = tu_counter(fx, 0, "batch_items") - items0;
	int64_t appends = tu_counter(fx, 0, "log_appends") - appends0;
	int64_t syncs = tu_counter(fx, 0, "log_syncs") - syncs0;
	print_message("%d transfers (%d committed): %lld items in %lld "
	              "messages, %lld log records in %lld fsyncs\n",
	    W * N, committed, (long long)items, (long long)batches,
	    (long long)appends, (long long)syncs);
	// Every transfer sent a PREPARE to each of its two participants.
	assert_true(items >= 2 * W * N);
	assert_true(batches > 0);
	assert_true(items * 10 >= batches * 11); // 1.1 items per message
	assert_true(appends >= committed); // a COMMIT record each, at least
	assert_true(syncs > 0);
	assert_true(syncs * 5 <= appends * 4); // fewer fsyncs than records
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_force_sends_no_commit),
		cmocka_unit_test(test_restart_resends_commit_then_end),
		cmocka_unit_test(test_batches_and_group_commit),
	};
	return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
