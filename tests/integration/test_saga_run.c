// SPDX-License-Identifier: MIT
//
// Sagas end to end on real daemons (two participants and dtx-saga): the
// happy path, a failing second step compensating the first, idempotent
// resubmission, many sagas at once with the total conserved (also with the
// orchestrator's calls delayed, so that STEPs leave in BATCHes), a snapshot
// read seeing a debit before its credit (sagas give up isolation), a
// participant unreachable past the retry budget (compensation), a saga
// stuck in compensation visible in SAGA_STATUS and HEALTH, and a
// participant killed in the middle of a step.

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_saga_util.h"

#define NACCT 8
#define INIT 100

static tsaga T;
static int acct_on[3][NACCT]; // accounts owned by participant 1 and 2
static int nacct_on[3];

static int
setup(void **state)
{
	*state = &T;
	if (ts_create(&T, 2) != 0)
		return -1;
	for (uint32_t i = 1; i <= 2; i++)
		if (ts_start(&T, i, NULL) != 0)
			return -1;
	// Short timings so the failure cases run in seconds.
	char *env[] = { "DTX_STUCK_MS=1000", "DTX_REPLY_WAIT_MS=4000",
		"DTX_ACTION_BUDGET_MS=1500", "DTX_STEP_TIMEOUT_MS=300",
		"DTX_BACKOFF_MAX_MS=200", NULL };
	if (ts_start(&T, T.saga_id, env) != 0)
		return -1;
	for (int a = 0; a < NACCT; a++) {
		uint32_t p = ts_owner(&T, a);
		acct_on[p][nacct_on[p]++] = a;
	}
	if (nacct_on[1] < 2 || nacct_on[2] < 2)
		return -1; // the routing put too few accounts on one shard
	return ts_init_accounts(&T, NACCT, INIT);
}

static int64_t
total(int64_t *bal)
{
	int64_t b[NACCT];
	return ts_total(&T, NACCT, bal != NULL ? bal : b);
}

static void
gid_of(char *buf, size_t n, const char *what)
{
	snprintf(buf, n, "%s-%llu", what, (unsigned long long)++T.gidseq);
}

static void
test_happy_path(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	char gid[64], why[300];
	int32_t failed = 7;
	int a = acct_on[1][0], b = acct_on[2][0];
	total(before);
	int64_t threaded0 = -1, threaded1 = -1;
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "to_thread", &threaded0), 0);
	gid_of(gid, sizeof(gid), "happy");
	assert_int_equal(
	    ts_transfer(&T, gid, a, b, 30, &failed, why, sizeof(why)),
	    PROTO_COMMITTED);
	assert_int_equal(failed, -1);
	assert_int_equal(total(after), NACCT * INIT);
	assert_int_equal(after[a], before[a] - 30);
	assert_int_equal(after[b], before[b] + 30);
	// A saga on the straight path runs from completions: it never
	// needs a submitter thread.
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "to_thread", &threaded1), 0);
	assert_int_equal(threaded1, threaded0);
	uint8_t st[4];
	uint32_t n = 0;
	assert_int_equal(
	    ts_status(&T, gid, st, &n, NULL, NULL, 0), PROTO_SAGA_COMMITTED);
	assert_int_equal(n, 2);
	assert_int_equal(st[0], PROTO_SS_DONE);
	assert_int_equal(st[1], PROTO_SS_DONE);
	clk_ts cts[2];
	assert_int_equal(ts_comp_ts(&T, gid, cts, 2), 0); // none compensated
	// Resubmitting the same gid answers the same outcome and moves no
	// money a second time.
	assert_int_equal(
	    ts_transfer(&T, gid, a, b, 30, &failed, why, sizeof(why)),
	    PROTO_COMMITTED);
	total(after);
	assert_int_equal(after[a], before[a] - 30);
	assert_int_equal(
	    ts_status(&T, "never-submitted", NULL, NULL, NULL, NULL, 0),
	    PROTO_SAGA_UNKNOWN);
}

// The orchestrator names a saga to the participants by a barrier id of
// its own, not by the client's gid (which a client chooses, may reuse
// after the orchestrator forgot it, and others may guess): a STEP sent
// with the client's gid meets no barrier at the participant.
static void
test_barrier_id_is_not_the_gid(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	char gid[64], why[300], k[32];
	int32_t failed = 7;
	int a = acct_on[1][1], b = acct_on[2][1];
	total(before);
	gid_of(gid, sizeof(gid), "bid");
	assert_int_equal(
	    ts_transfer(&T, gid, a, b, 10, &failed, why, sizeof(why)),
	    PROTO_COMMITTED);
	proto_op op;
	bool dup = true;
	ts_key(k, sizeof(k), a);
	ts_op_add(&op, k, -10, 0);
	assert_int_equal(ts_step(&T, (uint32_t)ts_owner(&T, a), gid, 0,
	                     PROTO_PHASE_ACTION, &op, 1, &dup),
	    PROTO_STEP_OK);
	assert_false(dup);
	total(after);
	assert_int_equal(after[a], before[a] - 20);
	// Undo the extra debit with its own compensation.
	ts_op_add(&op, k, 10, INT64_MIN);
	assert_int_equal(ts_step(&T, (uint32_t)ts_owner(&T, a), gid, 0,
	                     PROTO_PHASE_COMPENSATE, &op, 1, &dup),
	    PROTO_STEP_OK);
	assert_int_equal(total(after), NACCT * INIT);
	assert_int_equal(after[a], before[a] - 10);
	assert_int_equal(after[b], before[b] + 10);
}

static void
test_second_step_fails(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	char gid[64], why[300], k0[32], k1[32];
	int32_t failed = -1;
	int a = acct_on[1][1], b = acct_on[2][1];
	total(before);
	// Step 0 credits a; step 1 debits b by more than it holds.
	proto_saga_step st[2];
	ts_add_step(&T, &st[0], k0, a, 40, INT64_MIN);
	ts_add_step(&T, &st[1], k1, b, -(before[b] + 1), 0);
	gid_of(gid, sizeof(gid), "fail2");
	assert_int_equal(ts_submit(&T, gid, st, 2, &failed, why, sizeof(why)),
	    PROTO_ABORTED);
	assert_int_equal(failed, 1);
	assert_non_null(strstr(why, "insufficient funds"));
	assert_int_equal(total(after), NACCT * INIT);
	assert_int_equal(after[a], before[a]); // step 0 compensated
	assert_int_equal(after[b], before[b]);
	uint8_t ss[4];
	uint32_t n = 0;
	assert_int_equal(
	    ts_status(&T, gid, ss, &n, NULL, NULL, 0), PROTO_SAGA_ABORTED);
	assert_int_equal(ss[0], PROTO_SS_COMPENSATED);
	assert_int_equal(ss[1], PROTO_SS_COMPENSATED); // null compensation
	// Rule 12's reverse order, as the participants' stamps show it:
	// step 1's compensation was answered before step 0's was sent.
	clk_ts cts[3];
	assert_int_equal(ts_comp_ts(&T, gid, cts, 3), 2);
	assert_true(cts[1] != 0 && cts[0] > cts[1]);
	assert_true(cts[2] == 0);
	// A plain transfer with too little money fails at step 0.
	gid_of(gid, sizeof(gid), "fail1");
	assert_int_equal(
	    ts_transfer(&T, gid, a, b, 100000, &failed, why, sizeof(why)),
	    PROTO_ABORTED);
	assert_int_equal(failed, 0);
	total(after);
	assert_memory_equal(after, before, sizeof(before));
}

typedef struct worker_arg {
	int id;
	int n;
	int committed, aborted, other;
} worker_arg;

static void *
worker(void *p)
{
	worker_arg *w = p;
	uint64_t seed = 1234 + (uint64_t)w->id;
	for (int i = 0; i < w->n; i++) {
		char gid[64];
		snprintf(gid, sizeof(gid), "many-%d-%d", w->id, i);
		int from, to;
		ts_pick_pair(&seed, NACCT, &from, &to);
		int64_t amt = 1 + (int64_t)dtx_rand_below(&seed, 60);
		int out = ts_transfer(&T, gid, from, to, amt, NULL, NULL, 0);
		if (out == PROTO_COMMITTED)
			w->committed++;
		else if (out == PROTO_ABORTED)
			w->aborted++;
		else
			w->other++;
	}
	return NULL;
}

static void
test_many_concurrent(void **state)
{
	(void)state;
	enum { NW = 16 };
	pthread_t th[NW];
	worker_arg w[NW];
	for (int i = 0; i < NW; i++) {
		w[i] = (worker_arg) { .id = i, .n = 40 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	int c = 0, a = 0, o = 0;
	for (int i = 0; i < NW; i++) {
		pthread_join(th[i], NULL);
		c += w[i].committed;
		a += w[i].aborted;
		o += w[i].other;
	}
	fprintf(stderr, "# %d committed, %d aborted, %d other\n", c, a, o);
	assert_int_equal(o, 0);
	assert_true(c > 0);
	int64_t bal[NACCT];
	ts_expect_conserved(&T, NACCT, INIT, bal);
	// The random transfers left some accounts nearly empty; the cases
	// after this one debit fixed accounts, so give every account its
	// starting balance back (richest to poorest, total unchanged).
	for (int round = 0; round < NACCT; round++) {
		int rich = 0, poor = 0;
		for (int i = 1; i < NACCT; i++) {
			if (bal[i] > bal[rich])
				rich = i;
			if (bal[i] < bal[poor])
				poor = i;
		}
		if (bal[poor] == INIT)
			break;
		int64_t amt = INIT - bal[poor];
		if (bal[rich] - INIT < amt)
			amt = bal[rich] - INIT;
		char gid[64];
		snprintf(gid, sizeof(gid), "rebalance-%d", round);
		assert_int_equal(
		    ts_transfer(&T, gid, rich, poor, amt, NULL, NULL, 0),
		    PROTO_COMMITTED);
		bal[rich] -= amt;
		bal[poor] += amt;
	}
	int64_t now[NACCT];
	assert_int_equal(total(now), NACCT * INIT);
	for (int i = 0; i < NACCT; i++)
		assert_int_equal(now[i], INIT);
}

// Many sagas at once while every call of the orchestrator to the
// participants is delayed: the STEPs of concurrent sagas queue behind the
// one batch in flight and leave together as a BATCH, each after the
// delay. The orchestrator must survive (it once stamped a BATCH freed
// before the delay ended) and every saga still finish.
static void
test_many_under_delay(void **state)
{
	(void)state;
	enum { NW = 8 };
	for (int64_t p = 1; p <= 2; p++) {
		int64_t delay[2] = { p, 40 };
		assert_int_equal(
		    ts_fault(&T, T.saga_id, "delay", delay, 2, NULL), 0);
	}
	pthread_t th[NW];
	worker_arg w[NW];
	for (int i = 0; i < NW; i++) {
		w[i] = (worker_arg) { .id = 100 + i, .n = 8 };
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	int c = 0, o = 0;
	for (int i = 0; i < NW; i++) {
		pthread_join(th[i], NULL);
		c += w[i].committed;
		o += w[i].other;
	}
	for (int64_t p = 1; p <= 2; p++) {
		int64_t zero[2] = { p, 0 };
		assert_int_equal(
		    ts_fault(&T, T.saga_id, "delay", zero, 2, NULL), 0);
	}
	fprintf(stderr, "# under delay: %d committed, %d other\n", c, o);
	assert_int_equal(o, 0);
	assert_true(c > 0);
	// The orchestrator is alive and made every STEP call.
	int64_t calls = 0;
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "step_calls", &calls), 0);
	assert_true(calls >= 2 * c);
	int64_t bal[NACCT];
	ts_expect_conserved(&T, NACCT, INIT, bal);
}

typedef struct bg_submit {
	int from, to;
	int64_t amount;
	char gid[64];
	int out;
} bg_submit;

static void *
bg_transfer(void *p)
{
	bg_submit *b = p;
	b->out =
	    ts_transfer(&T, b->gid, b->from, b->to, b->amount, NULL, NULL, 0);
	return NULL;
}

static void
test_snapshot_sees_debit_before_credit(void **state)
{
	(void)state;
	// Calls from the orchestrator to participant 2 (the credit) wait
	// 1.5 s: a snapshot read in between sees the debit only.
	int64_t delay[2] = { 2, 1500 };
	assert_int_equal(ts_fault(&T, T.saga_id, "delay", delay, 2, NULL), 0);
	bg_submit b = {
		.from = acct_on[1][0], .to = acct_on[2][0], .amount = 9
	};
	gid_of(b.gid, sizeof(b.gid), "iso");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &b), 0);
	dtx_sleep_ms(600);
	int64_t mid[NACCT];
	clk_ts at = 0;
	int64_t t_mid = ts_read(&T, NACCT, mid, &at);
	pthread_join(th, NULL);
	int64_t zero[2] = { 2, 0 };
	assert_int_equal(ts_fault(&T, T.saga_id, "delay", zero, 2, NULL), 0);
	assert_int_equal(b.out, PROTO_COMMITTED);
	// One consistent snapshot (one timestamp on both shards) shows the
	// money in flight: the total is short by the amount.
	assert_int_equal(t_mid, NACCT * INIT - 9);
	// The same snapshot read again later still shows it (it is a
	// snapshot, not a torn read), and now the total is whole.
	int64_t again[NACCT];
	assert_int_equal(ts_read(&T, NACCT, again, &at), NACCT * INIT - 9);
	assert_int_equal(total(NULL), NACCT * INIT);
}

static void
test_unreachable_participant_compensates(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	char why[300];
	total(before);
	int64_t threaded0 = -1, threaded1 = -1;
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "to_thread", &threaded0), 0);
	int64_t cut[1] = { 2 };
	assert_int_equal(ts_fault(&T, T.saga_id, "partition", cut, 1, NULL), 0);
	bg_submit b = {
		.from = acct_on[1][1], .to = acct_on[2][1], .amount = 5
	};
	gid_of(b.gid, sizeof(b.gid), "unreach");
	uint64_t t0 = dtx_mono_ns();
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &b), 0);
	// The credit's retry budget (1.5 s) runs out: the saga turns to
	// compensation. Its first compensation (the credit's, a null one)
	// needs participant 2 too, so heal the partition then.
	int st = -1;
	why[0] = '\0';
	// Up to 15 s: the budget plus an attempt's timeout can take several
	// seconds on a loaded machine; the saga cannot leave compensation
	// while the partition holds, so waiting longer hides nothing.
	for (int i = 0; i < 300 && st != PROTO_SAGA_COMPENSATING; i++) {
		dtx_sleep_ms(50);
		st = ts_status(&T, b.gid, NULL, NULL, NULL, why, sizeof(why));
	}
	uint64_t ms = (dtx_mono_ns() - t0) / 1000000u;
	assert_int_equal(
	    ts_fault(&T, T.saga_id, "partition", NULL, 0, NULL), 0);
	pthread_join(th, NULL);
	fprintf(stderr, "# compensating after %llu ms (%s)\n",
	    (unsigned long long)ms, why);
	assert_int_equal(st, PROTO_SAGA_COMPENSATING);
	assert_true(ms >= 1500); // the budget was spent first
	assert_int_equal(b.out, PROTO_ABORTED);
	int32_t failed = -1;
	assert_int_equal(
	    ts_transfer(&T, b.gid, b.from, b.to, 5, &failed, why, sizeof(why)),
	    PROTO_ABORTED);
	assert_int_equal(failed, 1);
	assert_non_null(strstr(why, "retries exhausted"));
	assert_int_equal(total(after), NACCT * INIT);
	assert_memory_equal(after, before, sizeof(before));
	int64_t gave_up = 0;
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "steps_gave_up", &gave_up), 0);
	assert_true(gave_up >= 1);
	// The unreachable step was retried with pauses on a submitter
	// thread, where its job handed it.
	assert_int_equal(
	    ts_health(&T, T.saga_id, NULL, 0, "to_thread", &threaded1), 0);
	assert_true(threaded1 > threaded0);
}

typedef struct bg_saga {
	proto_saga_step *st;
	uint32_t n;
	const char *gid;
	int out;
	int32_t failed;
	char why[300];
} bg_saga;

static void *
bg_submit_saga(void *p)
{
	bg_saga *b = p;
	b->out = ts_submit(
	    &T, b->gid, b->st, b->n, &b->failed, b->why, sizeof(b->why));
	return NULL;
}

static void
test_stuck_compensation_visible(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	char gid[64], k0[32], k1[32], err[256], hs[300];
	total(before);
	int a = acct_on[1][1], b = acct_on[2][1];
	// Step 0 debits a on participant 1; step 1 fails on participant 2
	// after 800 ms (delayed calls); by then participant 1 is cut off,
	// so the compensation of step 0 cannot get through.
	proto_saga_step st[2];
	ts_add_step(&T, &st[0], k0, a, -3, 0);
	ts_add_step(&T, &st[1], k1, b, -(before[b] + 1), 0);
	int64_t delay[2] = { 2, 800 };
	assert_int_equal(ts_fault(&T, T.saga_id, "delay", delay, 2, NULL), 0);
	gid_of(gid, sizeof(gid), "stuck");
	bg_saga bs = { .st = st, .n = 2, .gid = gid, .out = -1 };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_submit_saga, &bs), 0);
	dtx_sleep_ms(300);
	int64_t cut[1] = { 1 };
	assert_int_equal(ts_fault(&T, T.saga_id, "partition", cut, 1, NULL), 0);
	// SAGA_STATUS shows it compensating, with its age and last error.
	int st_now = -1;
	uint64_t age = 0;
	err[0] = '\0';
	for (int i = 0; i < 100; i++) {
		st_now = ts_status(&T, gid, NULL, NULL, &age, err, sizeof(err));
		if (st_now == PROTO_SAGA_COMPENSATING && strstr(err, "node 1"))
			break;
		dtx_sleep_ms(50);
	}
	fprintf(stderr, "# status %d age %llu ms: %s\n", st_now,
	    (unsigned long long)age, err);
	assert_int_equal(st_now, PROTO_SAGA_COMPENSATING);
	assert_non_null(strstr(err, "node 1"));
	// HEALTH calls it stuck once it compensated for over 1 s.
	hs[0] = '\0';
	for (int i = 0; i < 100 && strncmp(hs, "stuck", 5) != 0; i++) {
		assert_int_equal(
		    ts_health(&T, T.saga_id, hs, sizeof(hs), NULL, NULL), 0);
		dtx_sleep_ms(50);
	}
	fprintf(stderr, "# health: %s\n", hs);
	assert_non_null(strstr(hs, gid));
	// The client was told "unknown" after its wait (4 s).
	pthread_join(th, NULL);
	assert_int_equal(bs.out, PROTO_UNKNOWN);
	// Heal: the compensation goes through and the saga is aborted.
	assert_int_equal(
	    ts_fault(&T, T.saga_id, "partition", NULL, 0, NULL), 0);
	int64_t zero[2] = { 2, 0 };
	assert_int_equal(ts_fault(&T, T.saga_id, "delay", zero, 2, NULL), 0);
	assert_int_equal(ts_wait_final(&T, gid, 15000), PROTO_SAGA_ABORTED);
	assert_int_equal(total(after), NACCT * INIT);
	assert_memory_equal(after, before, sizeof(before));
	assert_int_equal(
	    ts_health(&T, T.saga_id, hs, sizeof(hs), NULL, NULL), 0);
	assert_string_equal(hs, "ok");
}

static void
test_participant_killed_mid_step(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	total(before);
	// Participant 2 dies right after committing the credit, before it
	// answers; it is restarted while the orchestrator retries.
	assert_int_equal(ts_fault(&T, 2, "crash_at", (int64_t[]) { 1 }, 1,
	                     "part.saga_step_after_commit"),
	    0);
	bg_submit b = {
		.from = acct_on[1][0], .to = acct_on[2][0], .amount = 4
	};
	gid_of(b.gid, sizeof(b.gid), "pkill");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bg_transfer, &b), 0);
	int status = 0;
	assert_int_equal(hx_cluster_wait_exit(T.c, 2, 10000, &status), DTX_OK);
	ts_drop_client(&T, 2);
	assert_int_equal(ts_start(&T, 2, NULL), 0);
	pthread_join(th, NULL);
	// The retried credit met its barrier: applied once, committed.
	assert_int_equal(b.out, PROTO_COMMITTED);
	assert_int_equal(total(after), NACCT * INIT);
	assert_int_equal(after[b.from], before[b.from] - 4);
	assert_int_equal(after[b.to], before[b.to] + 4);
}

// Submits one saga of the n steps st and expects an ERROR DTX_EINVAL
// whose reason holds want.
static void
submit_refused(proto_saga_step *st, uint32_t n, const char *want)
{
	char gid[64];
	gid_of(gid, sizeof(gid), "refused");
	proto_msg req, rep;
	proto_msg_init(&req, PROTO_SAGA_SUBMIT);
	req.u.saga_submit =
	    (proto_saga_submit) { .gid = gid, .n_steps = n, .steps = st };
	assert_int_equal(ts_call(&T, T.saga_id, &req, &rep), DTX_EREFUSED);
	assert_int_equal(rep.u.error.code, DTX_EINVAL);
	if (strstr(rep.u.error.reason, want) == NULL)
		fail_msg(
		    "reason \"%s\" lacks \"%s\"", rep.u.error.reason, want);
	proto_msg_free(&rep);
}

// A client's saga means what a saga can mean: a debit with the floor
// INT64_MIN (overdraw at will), an amount of 0 or beyond the limit, and a
// compensation that is not its action's exact inverse (a credit of 1
// "compensated" by a debit of a million, floor INT64_MIN, on another key)
// are each refused before anything runs; the balances do not move.
static void
test_submit_means_something(void **state)
{
	(void)state;
	int64_t before[NACCT], after[NACCT];
	int a = acct_on[1][1], b = acct_on[2][1];
	total(before);
	char k0[32], k1[32];
	proto_saga_step st[2];
	ts_add_step(&T, &st[0], k0, a, -(before[a] + 500), INT64_MIN);
	ts_add_step(&T, &st[1], k1, b, before[a] + 500, INT64_MIN);
	submit_refused(st, 2, "step 0: the action debits with a floor");
	ts_add_step(&T, &st[0], k0, a, 0, 0);
	submit_refused(st, 2, "step 0: the action's amount");
	ts_add_step(&T, &st[0], k0, a, -3, 0);
	ts_add_step(&T, &st[1], k1, b, 3, 0);
	st[1].action.delta = INT64_MIN;
	submit_refused(st, 2, "step 1: the action's amount");
	ts_add_step(&T, &st[1], k1, b, 1, INT64_MIN);
	st[1].compensate.delta = -1000000;
	submit_refused(st, 2, "step 1: an add compensation must undo");
	st[1].compensate.delta = -1;
	st[1].compensate.key = st[0].action.key;
	submit_refused(st, 2, "step 1: an add compensation must undo");
	assert_int_equal(total(after), NACCT * INIT);
	assert_memory_equal(after, before, sizeof(before));
	// The same transfer, well formed, commits.
	char gid[64], why[200];
	int32_t failed = -1;
	gid_of(gid, sizeof(gid), "meant");
	assert_int_equal(
	    ts_transfer(&T, gid, a, b, 3, &failed, why, sizeof(why)),
	    PROTO_COMMITTED);
	assert_int_equal(total(after), NACCT * INIT);
	assert_int_equal(after[a], before[a] - 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_path),
		cmocka_unit_test(test_barrier_id_is_not_the_gid),
		cmocka_unit_test(test_second_step_fails),
		cmocka_unit_test(test_submit_means_something),
		cmocka_unit_test(test_many_under_delay),
		cmocka_unit_test(test_many_concurrent),
		cmocka_unit_test(test_snapshot_sees_debit_before_credit),
		cmocka_unit_test(test_unreachable_participant_compensates),
		cmocka_unit_test(test_stuck_compensation_visible),
		cmocka_unit_test(test_participant_killed_mid_step),
	};
	return cmocka_run_group_tests(tests, setup, ts_group_teardown);
}
